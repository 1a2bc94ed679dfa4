//! The write path of the recorder: one transaction per batch of probe outcomes, each with its result row, the
//! target's new state, derived events, an incident change and the alert sends that change queues.

use lifeline_mcp::Reason;

use super::shard::{Fence, HeldShard};
use super::{
    with_pool, Backend, EventKind, Label, ProbeRow, Severity, Store, StoreError, TargetState,
};

/// What [`Store::record_fenced`] did, per op in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recorded {
    /// The id of the incident the op opened (or adopted), `None` otherwise.
    pub opened: Vec<Option<i64>>,
    /// True when the op was rejected by its fence (a late write of a former shard holder): nothing written.
    pub rejected: Vec<bool>,
}

/// Result rows per `INSERT`: at most 20 binds each (target id, epoch and the columns), ~5,000 per statement, far below the
/// bind limits of SQLite (32,766) and PostgreSQL (65,535).
const RESULT_ROWS_PER_INSERT: usize = 256;

/// Queues one alert send; a duplicate (same incident, kind, seq, provider) is ignored.
macro_rules! insert_alert {
    ($tx:expr, $incident_id:expr, $target_id:expr, $kind:expr, $seq:expr, $alert:expr, $now_ms:expr) => {
        sqlx::query(
            "INSERT INTO alert_outbox (incident_id, target_id, kind, seq, provider, payload, due_ms, created_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING",
        )
        .bind($incident_id)
        .bind($target_id)
        .bind($kind.as_str())
        .bind($seq)
        .bind(&$alert.provider)
        .bind($alert.context.to_string())
        .bind($alert.due_ms)
        .bind($now_ms)
        .execute($tx)
        .await?
    };
}

/// Inserts one [`NewEvent`] for target `$target_id`.
macro_rules! insert_event {
    ($tx:expr, $target_id:expr, $event:expr) => {{
        let e: &NewEvent = $event;
        sqlx::query(
            "INSERT INTO events (target_id, ts_ms, kind, severity, summary, details) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind($target_id)
        .bind(e.ts_ms)
        .bind(Label(e.kind))
        .bind(Label(e.severity))
        .bind(&e.summary)
        .bind(e.details.to_string())
        .execute($tx)
        .await?
    }};
}

/// One probe outcome to write.
#[derive(Debug, Clone)]
pub struct RecordOp {
    /// The target's state after the outcome (`open_incident` is filled in by [`Store::record`] on open).
    pub state: TargetState,
    /// New tool list JSON when the schema hash changed (or was first seen).
    pub tools_json: Option<String>,
    /// The raw result.
    pub result: ProbeRow,
    /// Events derived from it.
    pub events: Vec<NewEvent>,
    /// What happens to the target's incident.
    pub incident: IncidentOp,
}

/// A derived event.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// When, Unix ms.
    pub ts_ms: i64,
    /// What happened.
    pub kind: EventKind,
    /// How much it matters.
    pub severity: Severity,
    /// One line for people.
    pub summary: String,
    /// Kind-specific JSON object.
    pub details: serde_json::Value,
}

/// What a batch op does to the target's incident.
#[derive(Debug, Clone, Default)]
pub enum IncidentOp {
    /// Nothing.
    #[default]
    None,
    /// Open one (at most one open per target: a conflicting open is skipped with its alerts).
    Open {
        /// Unix ms.
        at_ms: i64,
        /// Reason of the failure.
        reason: Option<Reason>,
        /// Failure message.
        message: Option<String>,
        /// Event summary.
        summary: String,
        /// Sends to queue.
        alerts: Vec<NewAlert>,
    },
    /// Queue a reminder for the open incident.
    Remind {
        /// Incident id.
        incident_id: i64,
        /// Reminder number (1, 2, …).
        seq: i64,
        /// Unix ms.
        at_ms: i64,
        /// Sends to queue.
        alerts: Vec<NewAlert>,
    },
    /// Resolve the open incident.
    Resolve {
        /// Incident id.
        incident_id: i64,
        /// Unix ms.
        at_ms: i64,
        /// Event summary.
        summary: String,
        /// Sends to queue (due at the end of a maintenance window when one is active).
        alerts: Vec<NewAlert>,
    },
}

/// `opened`, `reminder` or `resolved`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKindTag {
    /// The incident opened.
    Opened,
    /// It is still open.
    Reminder,
    /// It resolved.
    Resolved,
}

impl AlertKindTag {
    /// The stored label.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKindTag::Opened => "opened",
            AlertKindTag::Reminder => "reminder",
            AlertKindTag::Resolved => "resolved",
        }
    }

    /// Parses a stored label.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "opened" => Some(AlertKindTag::Opened),
            "reminder" => Some(AlertKindTag::Reminder),
            "resolved" => Some(AlertKindTag::Resolved),
            _ => None,
        }
    }
}

/// One alert send to queue for one provider.
#[derive(Debug, Clone, PartialEq)]
pub struct NewAlert {
    /// Provider name.
    pub provider: String,
    /// Not sent before this (Unix ms): now, or the end of a maintenance window.
    pub due_ms: i64,
    /// Context at the time (verdict, reason, message), merged into the payload.
    pub context: serde_json::Value,
}

impl Store {
    /// Writes a batch in one transaction. Returns the ids of incidents opened, per op (`None` when the op did
    /// not open one, or another replica's open incident already existed). Either everything is written or
    /// nothing.
    pub async fn record(&self, ops: &[RecordOp]) -> Result<Vec<Option<i64>>, StoreError> {
        Ok(self.record_fenced(ops, None).await?.opened)
    }

    /// [`Store::record`] conditional on shard epochs (issue 14): with a [`Fence`], an op is written only if
    /// `fence.owner` still holds its shard at its epoch, checked inside the same transaction with the lease row
    /// locked `FOR SHARE` on PostgreSQL, so a takeover (`epoch + 1`) waits for this commit or this write sees
    /// the new epoch and is rejected. Rejected ops write nothing (no result, no incident change, no alert) and
    /// are flagged in [`Recorded::rejected`]; the others commit together.
    pub async fn record_fenced(
        &self,
        ops: &[RecordOp],
        fence: Option<Fence<'_>>,
    ) -> Result<Recorded, StoreError> {
        let check = match self.backend() {
            Backend::Postgres => {
                "SELECT epoch FROM shard_leases WHERE shard = $1 AND epoch = $2 AND owner = $3 FOR SHARE"
            }
            Backend::Sqlite => "SELECT epoch FROM shard_leases WHERE shard = $1 AND epoch = $2 AND owner = $3",
        };
        let mut opened = Vec::with_capacity(ops.len());
        let mut rejected = vec![false; ops.len()];
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            if let Some(f) = fence {
                let mut terms: Vec<HeldShard> = f.terms.to_vec();
                terms.sort();
                terms.dedup();
                let mut valid = Vec::with_capacity(terms.len());
                for t in terms {
                    let ok: Option<i64> = sqlx::query_scalar(check)
                        .bind(t.shard)
                        .bind(t.epoch)
                        .bind(f.owner)
                        .fetch_optional(&mut *tx)
                        .await?;
                    if ok.is_some() {
                        valid.push(t);
                    }
                }
                for (i, r) in rejected.iter_mut().enumerate() {
                    *r = f.terms.get(i).is_none_or(|t| !valid.contains(t));
                }
            }
            let epoch_of = |i: usize| fence.and_then(|f| f.terms.get(i)).map(|t| t.epoch);
            let kept: Vec<(&RecordOp, Option<i64>)> = ops
                .iter()
                .enumerate()
                .filter(|(i, _)| !rejected[*i])
                .map(|(i, op)| (op, epoch_of(i)))
                .collect();
            for chunk in kept.chunks(RESULT_ROWS_PER_INSERT) {
                let mut insert = sqlx::QueryBuilder::new("INSERT INTO results (target_id, epoch, ");
                insert.push(ProbeRow::COLUMNS.join(", ")).push(") ");
                insert.push_values(chunk, |mut b, (op, epoch)| {
                    b.push_bind(op.state.id);
                    b.push_bind(*epoch);
                    op.result.push_binds(&mut b);
                });
                insert.build().execute(&mut *tx).await?;
            }
            for (op, skip) in ops.iter().zip(&rejected) {
                if *skip {
                    opened.push(None);
                    continue;
                }
                let s = &op.state;
                for e in &op.events {
                    insert_event!(&mut *tx, s.id, e);
                }

                let mut open_id = s.open_incident.as_ref().map(|i| i.id);
                let mut new_id = None;
                match &op.incident {
                    IncidentOp::None => {}
                    IncidentOp::Open { at_ms, reason, message, summary, alerts } => {
                        let id: Option<i64> = sqlx::query_scalar(
                            "INSERT INTO incidents (target_id, opened_ms, reason, message, last_notified_ms) \
                             VALUES ($1, $2, $3, $4, $2) ON CONFLICT DO NOTHING RETURNING id",
                        )
                        .bind(s.id)
                        .bind(*at_ms)
                        .bind(reason.map(Label))
                        .bind(message)
                        .fetch_optional(&mut *tx)
                        .await?;
                        match id {
                            Some(id) => {
                                new_id = Some(id);
                                open_id = Some(id);
                                let event = NewEvent {
                                    ts_ms: *at_ms,
                                    kind: EventKind::IncidentOpened,
                                    severity: Severity::Critical,
                                    summary: summary.clone(),
                                    details: serde_json::json!({"incident_id": id, "reason": reason.map(Reason::as_str)}),
                                };
                                insert_event!(&mut *tx, s.id, &event);
                                for a in alerts {
                                    insert_alert!(&mut *tx, id, s.id, AlertKindTag::Opened, 0_i64, a, *at_ms);
                                }
                            }
                            None => {
                                // Another replica opened it (and queued its alerts): adopt that incident.
                                open_id = sqlx::query_scalar(
                                    "SELECT id FROM incidents WHERE target_id = $1 AND resolved_ms IS NULL",
                                )
                                .bind(s.id)
                                .fetch_optional(&mut *tx)
                                .await?;
                                new_id = open_id;
                            }
                        }
                    }
                    IncidentOp::Remind { incident_id, seq, at_ms, alerts } => {
                        sqlx::query("UPDATE incidents SET last_notified_ms = $1, reminders = $2 WHERE id = $3")
                            .bind(*at_ms)
                            .bind(*seq)
                            .bind(*incident_id)
                            .execute(&mut *tx)
                            .await?;
                        for a in alerts {
                            insert_alert!(&mut *tx, *incident_id, s.id, AlertKindTag::Reminder, *seq, a, *at_ms);
                        }
                    }
                    IncidentOp::Resolve { incident_id, at_ms, summary, alerts } => {
                        let done = sqlx::query(
                            "UPDATE incidents SET resolved_ms = $1 WHERE id = $2 AND resolved_ms IS NULL",
                        )
                        .bind(*at_ms)
                        .bind(*incident_id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                        open_id = None;
                        if done == 1 {
                            let event = NewEvent {
                                ts_ms: *at_ms,
                                kind: EventKind::IncidentResolved,
                                severity: Severity::Info,
                                summary: summary.clone(),
                                details: serde_json::json!({"incident_id": incident_id}),
                            };
                            insert_event!(&mut *tx, s.id, &event);
                            for a in alerts {
                                insert_alert!(&mut *tx, *incident_id, s.id, AlertKindTag::Resolved, 0_i64, a, *at_ms);
                            }
                        }
                    }
                }
                opened.push(new_id);

                // Each column beside its value: no positional list to keep in step.
                let mut update = sqlx::QueryBuilder::new("UPDATE targets SET ");
                let mut set = update.separated(", ");
                set.push("consecutive_failures = ").push_bind_unseparated(s.consecutive_failures);
                set.push("consecutive_successes = ").push_bind_unseparated(s.consecutive_successes);
                set.push("open_incident_id = ").push_bind_unseparated(open_id);
                set.push("last_checked_ms = ").push_bind_unseparated(s.last_checked_ms);
                set.push("last_verdict = ").push_bind_unseparated(s.last_verdict.clone());
                set.push("last_reason = ").push_bind_unseparated(s.last_reason.clone());
                set.push("last_message = ").push_bind_unseparated(s.last_message.clone());
                set.push("last_latency_ms = ").push_bind_unseparated(s.last_latency_ms);
                set.push("era = ").push_bind_unseparated(s.era.clone());
                set.push("protocol_version = ").push_bind_unseparated(s.protocol_version.clone());
                set.push("server_name = ").push_bind_unseparated(s.server_name.clone());
                set.push("server_version = ").push_bind_unseparated(s.server_version.clone());
                set.push("tools_count = ").push_bind_unseparated(s.tools_count);
                set.push("schema_hash = ").push_bind_unseparated(s.schema_hash.clone());
                set.push("tools_json = COALESCE(")
                    .push_bind_unseparated(op.tools_json.clone())
                    .push_unseparated(", tools_json)");
                set.push("tls_not_after_ms = ").push_bind_unseparated(s.tls_not_after_ms);
                set.push("tls_days_left = ").push_bind_unseparated(s.tls_days_left);
                set.push("cert_warned_days = ").push_bind_unseparated(s.cert_warned_days);
                update.push(" WHERE id = ").push_bind(s.id);
                update.build().execute(&mut *tx).await?;
            }
            tx.commit().await?;
        });
        Ok(Recorded { opened, rejected })
    }
}
