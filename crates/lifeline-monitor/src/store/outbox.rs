//! The alert outbox: sends queued in the same transaction as the incident change, claimed by one replica at a
//! time (a claim expires, so a dead replica's sends are picked up), and marked sent or failed once.

use std::time::Duration;

use sqlx::Row as _;

use super::{with_pool, AlertKindTag, Store, StoreError};

/// The final state of a send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Delivered (2xx).
    Sent,
    /// Every attempt failed.
    Failed,
    /// Its provider is no longer configured.
    Dropped,
}

impl OutboxState {
    fn as_str(self) -> &'static str {
        match self {
            OutboxState::Sent => "sent",
            OutboxState::Failed => "failed",
            OutboxState::Dropped => "dropped",
        }
    }
}

/// A send claimed for delivery, with what the payload needs.
#[derive(Debug, Clone)]
pub struct ClaimedAlert {
    /// Outbox row id.
    pub id: i64,
    /// Incident id.
    pub incident_id: i64,
    /// `opened`, `reminder`, `resolved`.
    pub kind: AlertKindTag,
    /// Reminder number (0 otherwise).
    pub seq: i64,
    /// Provider name.
    pub provider: String,
    /// Context captured when it was queued.
    pub context: serde_json::Value,
    /// Target name.
    pub target: String,
    /// Target display URL.
    pub url: String,
    /// Incident opened, Unix ms.
    pub opened_ms: i64,
    /// Incident resolved, Unix ms.
    pub resolved_ms: Option<i64>,
    /// Reason label that opened it.
    pub reason: Option<String>,
    /// Its message.
    pub message: Option<String>,
    /// Attempts made before this claim.
    pub attempts: i64,
}

/// An open incident with its target, as Alertmanager's periodic re-send needs it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct FiringIncident {
    /// Incident id.
    pub incident_id: i64,
    /// Target name.
    pub target: String,
    /// Target display URL.
    pub url: String,
    /// Incident opened, Unix ms.
    pub opened_ms: i64,
    /// Reason label that opened it.
    pub reason: Option<String>,
    /// Its message.
    pub message: Option<String>,
}

impl Store {
    /// The open incidents (oldest first, at most `limit`) with their targets: what is still firing.
    pub async fn firing_incidents(&self, limit: i64) -> Result<Vec<FiringIncident>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.id AS incident_id, t.name AS target, t.url, i.opened_ms, i.reason, i.message \
                 FROM incidents i JOIN targets t ON t.id = i.target_id WHERE i.resolved_ms IS NULL \
                 ORDER BY i.id LIMIT $1",
            )
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Claims up to `limit` due, unclaimed (or claim-expired) pending sends for `holder` until `now + lease`.
    /// The outer `WHERE` re-checks the claim, so under PostgreSQL's row locks two replicas never both win a row.
    pub async fn claim_alerts(
        &self,
        holder: &str,
        now_ms: i64,
        lease: Duration,
        limit: i64,
    ) -> Result<Vec<ClaimedAlert>, StoreError> {
        let until = now_ms + i64::try_from(lease.as_millis()).unwrap_or(60_000);
        let mut out = Vec::new();
        // PostgreSQL: candidates locked `FOR UPDATE SKIP LOCKED`, so replicas claiming at once split the due
        // sends instead of queueing on the same rows (SQLite has one writer and no row locks).
        let claim = match self.backend() {
            super::Backend::Postgres => {
                "UPDATE alert_outbox SET claimed_by = $1, claimed_until_ms = $2 \
                 WHERE id IN (SELECT id FROM alert_outbox WHERE state = 'pending' AND due_ms <= $3 \
                              AND (claimed_until_ms IS NULL OR claimed_until_ms < $3) ORDER BY id LIMIT $4 \
                              FOR UPDATE SKIP LOCKED) \
                 AND state = 'pending' AND (claimed_until_ms IS NULL OR claimed_until_ms < $3) \
                 RETURNING id"
            }
            super::Backend::Sqlite => {
                "UPDATE alert_outbox SET claimed_by = $1, claimed_until_ms = $2 \
                 WHERE id IN (SELECT id FROM alert_outbox WHERE state = 'pending' AND due_ms <= $3 \
                              AND (claimed_until_ms IS NULL OR claimed_until_ms < $3) ORDER BY id LIMIT $4) \
                 AND state = 'pending' AND (claimed_until_ms IS NULL OR claimed_until_ms < $3) \
                 RETURNING id"
            }
        };
        with_pool!(self, pool => {
            let ids: Vec<i64> = sqlx::query_scalar(claim)
            .bind(holder)
            .bind(until)
            .bind(now_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            for id in ids {
                let r = sqlx::query(
                    "SELECT o.id, o.incident_id, o.kind, o.seq, o.provider, o.payload, o.attempts, t.name, t.url, \
                     i.opened_ms, i.resolved_ms, i.reason, i.message FROM alert_outbox o \
                     JOIN targets t ON t.id = o.target_id JOIN incidents i ON i.id = o.incident_id WHERE o.id = $1",
                )
                .bind(id)
                .fetch_one(pool)
                .await?;
                let kind: String = r.try_get("kind")?;
                let payload: String = r.try_get("payload")?;
                out.push(ClaimedAlert {
                    id: r.try_get("id")?,
                    incident_id: r.try_get("incident_id")?,
                    kind: AlertKindTag::parse(&kind).unwrap_or(AlertKindTag::Opened),
                    seq: r.try_get("seq")?,
                    provider: r.try_get("provider")?,
                    context: serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null),
                    target: r.try_get("name")?,
                    url: r.try_get("url")?,
                    opened_ms: r.try_get("opened_ms")?,
                    resolved_ms: r.try_get("resolved_ms")?,
                    reason: r.try_get("reason")?,
                    message: r.try_get("message")?,
                    attempts: r.try_get("attempts")?,
                });
            }
        });
        Ok(out)
    }

    /// Records the outcome of a claimed send (`attempts` made in this claim, the last error if any).
    pub async fn finish_alert(
        &self,
        id: i64,
        state: OutboxState,
        attempts: i64,
        error: Option<&str>,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "UPDATE alert_outbox SET state = $2, attempts = attempts + $3, last_error = $4, \
                 sent_ms = CASE WHEN $2 = 'sent' THEN $5 ELSE sent_ms END, claimed_until_ms = NULL WHERE id = $1",
            )
            .bind(id)
            .bind(state.as_str())
            .bind(attempts)
            .bind(error)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Sends per state, for tests and `/metrics`: `(state, provider, kind, count)`.
    pub async fn alert_counts(&self) -> Result<Vec<(String, String, String, i64)>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as::<_, (String, String, String, i64)>(
                "SELECT state, provider, kind, COUNT(*) FROM alert_outbox GROUP BY state, provider, kind \
                 ORDER BY state, provider, kind",
            )
            .fetch_all(pool)
            .await
        })?;
        Ok(rows)
    }
}
