//! The probe agents' region results (issue 14, "Regions"; migrations 0006 `region_results` and 0007 its
//! `reason`, `schema_hash` and probe-time index), what the shard holder judges rounds from, and the state of a
//! fleet **subject** (`fleet:probes`, `agent:<name>`, `schema:<target>`): an inactive `targets` row whose
//! incidents carry the fleet's alerts through the same outbox, keys and fencing as a target's.

use std::collections::{BTreeMap, HashMap};

use sqlx::Row as _;

use super::{
    agents, with_pool, AgentCall, Backend, HeldShard, OpenIncident, Store, StoreError, TargetState,
};
use crate::agent::{AgentResult, RegionResult};

/// A multi-region target's latest judged round, as stored in `region_rounds` (migration 0009) by the holder
/// of its shard and read by the fleet check ([`Store::latest_rounds`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JudgedRound {
    /// The round's start, Unix ms.
    pub start_ms: i64,
    /// `up`, `down`, `regional` or `unknown`.
    pub verdict: String,
    /// The regions that reported in it.
    pub reporting: i64,
    /// The regions' latest tool-schema hashes up to the round, by region; empty when fewer than two regions
    /// reported one.
    pub hashes: BTreeMap<String, String>,
}

/// Most region results [`Store::region_results_since`] returns: 100,000 (a window of rounds of every
/// multi-region target; beyond it the newest are kept out and the caller's window is too wide).
pub(crate) const MAX_WINDOW_ROWS: i64 = 100_000;

impl Store {
    /// Stores the `results` of one push of agent `call.name` in one transaction, by target name, and records
    /// the push in the agent's `agents` row (`store/agents.rs`: last push, lag, counts) in the same
    /// transaction. A result whose target is not in `targets` writes nothing, and one already stored (same
    /// target, region, probe time and attempt: a re-sent push) is ignored and not counted again. Returns the
    /// results written.
    ///
    /// Errors: [`StoreError`] when the database fails (nothing is written).
    pub async fn record_region_results(
        &self,
        call: &AgentCall<'_>,
        results: &[AgentResult],
    ) -> Result<u64, StoreError> {
        let newest = results.iter().map(|r| r.probed_at_ms).max();
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            let mut written = 0;
            for r in results {
                written += sqlx::query(
                    "INSERT INTO region_results (target_id, region, agent, probed_ms, received_ms, attempt, up, \
                     latency_ms, error, reason, schema_hash) SELECT id, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11 \
                     FROM targets WHERE name = $1 ON CONFLICT DO NOTHING",
                )
                .bind(&r.target)
                .bind(call.region)
                .bind(call.name)
                .bind(r.probed_at_ms)
                .bind(call.at_ms)
                .bind(i64::from(r.attempt))
                .bind(i64::from(r.up))
                .bind(i64::try_from(r.latency_ms).unwrap_or(i64::MAX))
                .bind(r.error.as_deref())
                .bind(r.reason.map(|x| x.as_str()))
                .bind(r.schema_hash.as_deref())
                .execute(&mut *tx)
                .await?
                .rows_affected();
            }
            let n = i64::try_from(written).unwrap_or(i64::MAX);
            sqlx::query(agents::PUSH_UPSERT)
                .bind(call.name)
                .bind(call.region)
                .bind(call.at_ms)
                .bind(agents::push_lag(call.at_ms, newest))
                .bind(n)
                .bind(agents::minute_of(call.at_ms))
                .bind(n)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(written)
        })
    }

    /// The region results of every target probed at or after `from_ms` (and, with `target`, of that target
    /// only, probed before `to_ms`), oldest first, at most 100,000 (`MAX_WINDOW_ROWS`).
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn region_results_between(
        &self,
        target: Option<&str>,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<RegionResult>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query(
                "SELECT t.name, r.region, r.agent, r.probed_ms, r.received_ms, r.attempt, r.up, r.latency_ms, \
                 r.error, r.reason, r.schema_hash FROM region_results r JOIN targets t ON t.id = r.target_id \
                 WHERE r.probed_ms >= $1 AND r.probed_ms < $2 AND ($3 IS NULL OR t.name = $3) \
                 ORDER BY r.probed_ms, r.region, r.attempt LIMIT $4",
            )
            .bind(from_ms)
            .bind(to_ms)
            .bind(target)
            .bind(MAX_WINDOW_ROWS)
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| -> Result<RegionResult, sqlx::Error> {
                let reason: Option<String> = r.try_get("reason")?;
                Ok(RegionResult {
                    region: r.try_get("region")?,
                    agent: r.try_get("agent")?,
                    received_ms: r.try_get("received_ms")?,
                    result: AgentResult {
                        target: r.try_get("name")?,
                        probed_at_ms: r.try_get("probed_ms")?,
                        attempt: u32::try_from(r.try_get::<i64, _>("attempt")?).unwrap_or(u32::MAX),
                        up: r.try_get::<i64, _>("up")? != 0,
                        latency_ms: u64::try_from(r.try_get::<i64, _>("latency_ms")?).unwrap_or(0),
                        error: r.try_get("error")?,
                        reason: reason.and_then(|x| x.parse().ok()),
                        schema_hash: r.try_get("schema_hash")?,
                    },
                })
            })
            .collect::<Result<Vec<_>, _>>()?
        });
        Ok(rows)
    }

    /// Stores `round` as target `name`'s latest judged round, if `owner` still holds the target's shard at
    /// `term`'s epoch (checked in the statement, the lease row locked `FOR SHARE` on PostgreSQL as in
    /// [`Store::record_fenced`]) and no later round is stored. Returns false when nothing was written (fenced,
    /// an older round, or an unknown target).
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn record_round(
        &self,
        name: &str,
        round: &JudgedRound,
        owner: &str,
        term: HeldShard,
    ) -> Result<bool, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => ROUND_UPSERT_PG,
            Backend::Sqlite => ROUND_UPSERT_SQLITE,
        };
        let hashes = (!round.hashes.is_empty())
            .then(|| serde_json::to_string(&round.hashes).unwrap_or_default());
        let n = with_pool!(self, pool => {
            sqlx::query(sql)
                .bind(name)
                .bind(round.start_ms)
                .bind(&round.verdict)
                .bind(round.reporting)
                .bind(hashes.as_deref())
                .bind(term.epoch)
                .bind(term.shard)
                .bind(owner)
                .execute(pool)
                .await?
                .rows_affected()
        });
        Ok(n > 0)
    }

    /// The latest judged round of every target that has one, by target name (one row per multi-region
    /// target: what the fleet check reads each second).
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn latest_rounds(&self) -> Result<HashMap<String, JudgedRound>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query(
                "SELECT t.name, r.start_ms, r.verdict, r.reporting, r.hashes FROM region_rounds r \
                 JOIN targets t ON t.id = r.target_id",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| -> Result<(String, JudgedRound), sqlx::Error> {
                let hashes: Option<String> = r.try_get("hashes")?;
                Ok((
                    r.try_get("name")?,
                    JudgedRound {
                        start_ms: r.try_get("start_ms")?,
                        verdict: r.try_get("verdict")?,
                        reporting: r.try_get("reporting")?,
                        // A row that does not parse compares nothing (as if fewer than two hashes).
                        hashes: hashes
                            .and_then(|h| serde_json::from_str(&h).ok())
                            .unwrap_or_default(),
                    },
                ))
            })
            .collect::<Result<_, _>>()?
        });
        Ok(rows)
    }

    /// The probe time of the last judged round of target `name` (its `last_checked_ms`: a multi-region
    /// target's results are written at their round's start), `None` before the first.
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn last_checked_ms(&self, name: &str) -> Result<Option<i64>, StoreError> {
        let v: Option<Option<i64>> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT last_checked_ms FROM targets WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        Ok(v.flatten())
    }

    /// The state of fleet subject `name` (created as an inactive `targets` row on first use, so it never shows
    /// among the targets): its id and open incident; every other field is left empty.
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn subject_state(&self, name: &str, now_ms: i64) -> Result<TargetState, StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO targets (name, url, active, created_ms) VALUES ($1, '', 0, $2) \
                 ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .bind(now_ms)
            .execute(pool)
            .await?;
            let r = sqlx::query(
                "SELECT t.id, i.id AS inc_id, i.opened_ms, i.last_notified_ms, i.reminders FROM targets t \
                 LEFT JOIN incidents i ON i.target_id = t.id AND i.resolved_ms IS NULL WHERE t.name = $1",
            )
            .bind(name)
            .fetch_one(pool)
            .await?;
            let inc: Option<i64> = r.try_get("inc_id")?;
            Ok(TargetState {
                id: r.try_get("id")?,
                name: name.to_owned(),
                open_incident: match inc {
                    Some(id) => Some(OpenIncident {
                        id,
                        opened_ms: r.try_get("opened_ms")?,
                        last_notified_ms: r.try_get("last_notified_ms")?,
                        reminders: r.try_get("reminders")?,
                    }),
                    None => None,
                },
                ..TargetState::default()
            })
        })
    }

    /// The number of stored region results of target `name` probed in `[from_ms, to_ms)`.
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn count_region_results(
        &self,
        name: &str,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<i64, StoreError> {
        with_pool!(self, pool => {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM region_results r JOIN targets t ON t.id = r.target_id \
                 WHERE t.name = $1 AND r.probed_ms >= $2 AND r.probed_ms < $3",
            )
            .bind(name)
            .bind(from_ms)
            .bind(to_ms)
            .fetch_one(pool)
            .await?;
            Ok(n)
        })
    }
}

/// The fenced upsert of [`Store::record_round`]: `$1` name, `$2` start, `$3` verdict, `$4` reporting, `$5`
/// hashes, `$6` epoch, `$7` shard, `$8` owner. SQLite needs the `WHERE` of the `SELECT` to parse the upsert.
const ROUND_UPSERT_SQLITE: &str = "INSERT INTO region_rounds (target_id, start_ms, verdict, reporting, \
     hashes, epoch) SELECT id, $2, $3, $4, $5, $6 FROM targets WHERE name = $1 AND EXISTS \
     (SELECT 1 FROM shard_leases WHERE shard = $7 AND epoch = $6 AND owner = $8) \
     ON CONFLICT (target_id) DO UPDATE SET start_ms = excluded.start_ms, verdict = excluded.verdict, \
     reporting = excluded.reporting, hashes = excluded.hashes, epoch = excluded.epoch \
     WHERE excluded.start_ms >= region_rounds.start_ms";
/// [`ROUND_UPSERT_SQLITE`] with the lease row locked against a concurrent takeover until the commit.
const ROUND_UPSERT_PG: &str = "INSERT INTO region_rounds (target_id, start_ms, verdict, reporting, \
     hashes, epoch) SELECT id, $2, $3, $4, $5, $6 FROM targets WHERE name = $1 AND EXISTS \
     (SELECT 1 FROM shard_leases WHERE shard = $7 AND epoch = $6 AND owner = $8 FOR SHARE) \
     ON CONFLICT (target_id) DO UPDATE SET start_ms = excluded.start_ms, verdict = excluded.verdict, \
     reporting = excluded.reporting, hashes = excluded.hashes, epoch = excluded.epoch \
     WHERE excluded.start_ms >= region_rounds.start_ms";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::AgentSeen;

    async fn suite(store: Store) {
        // Unique per run: the PostgreSQL database outlives a test run.
        let name = format!("region-{}", crate::scheduler::now_ms());
        let agent = format!("eu-{name}");
        store
            .sync_targets(&[(name.clone(), "http://127.0.0.1:9/mcp".into())], 1)
            .await
            .unwrap();
        let res = |target: &str, probed_at_ms: i64, attempt: u32| AgentResult {
            target: target.into(),
            probed_at_ms,
            attempt,
            up: false,
            latency_ms: 5,
            error: Some("refused".into()),
            reason: None,
            schema_hash: None,
        };
        let call = |at_ms: i64| AgentCall {
            name: &agent,
            region: "eu-west",
            at_ms,
        };
        let seen = |now: i64| {
            let store = store.clone();
            let agent = agent.clone();
            async move {
                store
                    .agents_seen(now)
                    .await
                    .unwrap()
                    .remove(&agent)
                    .unwrap()
            }
        };
        const T: i64 = 600_000; // a clock minute's start
        store.agent_pulled(&call(T + 1_000)).await.unwrap();
        assert_eq!(
            seen(T + 1_000).await,
            AgentSeen {
                last_seen_ms: Some(T + 1_000),
                ..AgentSeen::default()
            }
        );
        let first = [res(&name, T + 500, 0), res("nobody", T + 500, 0)];
        assert_eq!(
            store
                .record_region_results(&call(T + 2_000), &first)
                .await
                .unwrap(),
            1
        );
        // A re-sent push is idempotent (stored and counted once); an unknown target writes nothing.
        assert_eq!(
            store
                .record_region_results(&call(T + 3_000), &first)
                .await
                .unwrap(),
            0
        );
        // Writes from a replica whose clock is behind never move a time back.
        store.agent_pulled(&call(T + 500)).await.unwrap();
        let late = [res(&name, T + 600, 1)];
        assert_eq!(
            store
                .record_region_results(&call(T + 2_500), &late)
                .await
                .unwrap(),
            1
        );
        assert_eq!(
            seen(T + 3_000).await,
            AgentSeen {
                last_seen_ms: Some(T + 3_000),
                last_push_ms: Some(T + 3_000),
                lag_ms: Some(2_500),
                results_last_minute: 2,
                results_total: 2,
            }
        );
        // The next minute: its count starts over, the last one's slides out; a late write of the minute before
        // (another replica's slower clock) still counts in it.
        let next = [res(&name, T + 60_500, 0)];
        store
            .record_region_results(&call(T + 61_000), &next)
            .await
            .unwrap();
        let later = [res(&name, T + 700, 2)];
        store
            .record_region_results(&call(T + 59_000), &later)
            .await
            .unwrap();
        let s = seen(T + 60_000).await;
        assert_eq!(
            (s.results_last_minute, s.results_total, s.lag_ms),
            (4, 4, Some(500))
        );
        assert_eq!(s.last_seen_ms, Some(T + 61_000));
        assert_eq!(seen(T + 90_000).await.results_last_minute, 3); // 1 + ⌈3 × ½⌉
        assert_eq!(seen(T + 180_000).await.results_last_minute, 0);
        assert_eq!(
            store
                .count_region_results(&name, 0, T + 100_000)
                .await
                .unwrap(),
            4
        );
    }

    /// The latest judged round per target: fenced on the shard's owner and epoch, never moved back.
    async fn rounds_suite(store: Store) {
        let name = "api".to_owned();
        store
            .sync_targets(&[(name.clone(), "http://127.0.0.1:9/mcp".into())], 1)
            .await
            .unwrap();
        let ttl = std::time::Duration::from_secs(60);
        let held = store
            .acquire_shards("j1", i64::from(super::super::SHARDS), ttl)
            .await
            .unwrap();
        let term = *held
            .iter()
            .find(|h| h.shard == i64::from(super::super::shard_of(&name)))
            .expect("the target's shard");
        let round = |start_ms: i64, verdict: &str, hashes: &[(&str, &str)]| JudgedRound {
            start_ms,
            verdict: verdict.into(),
            reporting: 1,
            hashes: hashes
                .iter()
                .map(|(r, h)| ((*r).to_owned(), (*h).to_owned()))
                .collect(),
        };
        let first = round(1_000, "unknown", &[]);
        assert!(store.record_round(&name, &first, "j1", term).await.unwrap());
        // A former holder (another owner, an older epoch) and an older round change nothing.
        let stale = HeldShard {
            epoch: term.epoch - 1,
            ..term
        };
        let late = round(2_000, "down", &[]);
        assert!(!store.record_round(&name, &late, "j2", term).await.unwrap());
        assert!(!store.record_round(&name, &late, "j1", stale).await.unwrap());
        assert!(!store
            .record_round(&name, &round(0, "up", &[]), "j1", term)
            .await
            .unwrap());
        assert_eq!(store.latest_rounds().await.unwrap()[&name], first);
        let next = round(2_000, "regional", &[("r2", "h1"), ("r3", "h2")]);
        assert!(store.record_round(&name, &next, "j1", term).await.unwrap());
        assert_eq!(store.latest_rounds().await.unwrap()[&name], next);
    }

    #[tokio::test]
    async fn region_rounds_are_fenced_and_never_move_back_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        rounds_suite(Store::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn region_rounds_are_fenced_and_never_move_back_postgres() {
        let Some(db) = crate::store::tests::FreshPg::create("rounds").await else {
            return;
        };
        rounds_suite(Store::connect(&db.url).await.unwrap()).await;
        db.drop().await;
    }

    #[tokio::test]
    async fn region_results_and_agents_are_stored_once_sqlite() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("r.db").display());
        suite(Store::connect(&url).await.unwrap()).await;
    }

    #[tokio::test]
    async fn region_results_and_agents_are_stored_once_postgres() {
        let Some(url) = crate::store::tests::postgres_url() else {
            return;
        };
        suite(Store::connect(&url).await.unwrap()).await;
    }
}
