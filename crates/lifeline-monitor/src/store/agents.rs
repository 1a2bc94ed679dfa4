//! The probe agents' liveness (issue 14, "Regions"; migration 0009 `agents`): one row per agent, upserted by
//! whichever replica receives its pull ([`Store::agent_pulled`]) or its push (in the same transaction as the
//! pushed results, [`Store::record_region_results`]), and read by every replica ([`Store::agents_seen`]) for
//! `GET /api/v1/agents` and the agent metrics. Each write is one `INSERT … ON CONFLICT DO UPDATE` whose new
//! values are computed from the row's old ones inside the statement: times only move forward (a late write
//! from a replica with a slower clock never moves one back), counters only add, and two replicas writing at
//! once never lose an update (the database serialises the upserts of one row).

use sqlx::Row as _;

use super::{with_pool, Store, StoreError};

/// A clock minute, in milliseconds (the per-minute buckets of the `agents` row).
const MINUTE_MS: i64 = 60_000;

/// Who called and when: the agent's configured name and region, and the receive time (Unix ms, the
/// receiving replica's clock).
#[derive(Debug, Clone, Copy)]
pub struct AgentCall<'a> {
    /// The agent's configured name.
    pub name: &'a str,
    /// Its configured region.
    pub region: &'a str,
    /// When the call was received, Unix ms.
    pub at_ms: i64,
}

/// One agent's stored liveness, as every replica reads it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AgentSeen {
    /// Its last pull or push, whichever is later, Unix ms; `None` before the first.
    pub last_seen_ms: Option<i64>,
    /// Its last push, Unix ms (the fleet check's stale agents); `None` before the first.
    #[serde(skip)]
    pub last_push_ms: Option<i64>,
    /// Receive time minus the newest probe time of its latest push with results, ms (large while a spool
    /// drains); `None` before the first result.
    pub lag_ms: Option<i64>,
    /// Results stored in the last minute: the sliding-window estimate from two clock-minute counts (the
    /// previous minute's weighted by the share of it still inside the last 60 s and rounded up, plus the
    /// current one's).
    pub results_last_minute: i64,
    /// Results stored in all (a re-sent result counts once).
    pub results_total: i64,
}

impl Store {
    /// Records a pull of `call.name`: its last pull time moves to `call.at_ms` unless a later one is stored.
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn agent_pulled(&self, call: &AgentCall<'_>) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO agents (name, region, last_pull_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET region = excluded.region, \
                 last_pull_ms = CASE WHEN agents.last_pull_ms IS NULL \
                   OR excluded.last_pull_ms > agents.last_pull_ms THEN excluded.last_pull_ms \
                   ELSE agents.last_pull_ms END",
            )
            .bind(call.name)
            .bind(call.region)
            .bind(call.at_ms)
            .execute(pool)
            .await?;
            Ok(())
        })
    }

    /// The stored liveness of every agent that ever called, by name, judged at `now_ms` (the minute
    /// estimate).
    ///
    /// Errors: [`StoreError`] when the database fails.
    pub async fn agents_seen(
        &self,
        now_ms: i64,
    ) -> Result<std::collections::BTreeMap<String, AgentSeen>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query(
                "SELECT name, last_pull_ms, last_push_ms, lag_ms, results_total, minute_ms, minute_results, \
                 prev_minute_results FROM agents",
            )
            .fetch_all(pool)
            .await?
            .into_iter()
            .map(|r| -> Result<(String, AgentSeen), sqlx::Error> {
                let pull: Option<i64> = r.try_get("last_pull_ms")?;
                let push: Option<i64> = r.try_get("last_push_ms")?;
                let seen = AgentSeen {
                    last_seen_ms: pull.max(push),
                    last_push_ms: push,
                    lag_ms: r.try_get("lag_ms")?,
                    results_last_minute: per_minute(
                        now_ms,
                        r.try_get("minute_ms")?,
                        r.try_get("minute_results")?,
                        r.try_get("prev_minute_results")?,
                    ),
                    results_total: r.try_get("results_total")?,
                };
                Ok((r.try_get("name")?, seen))
            })
            .collect::<Result<_, _>>()?
        });
        Ok(rows)
    }
}

/// The upsert of a push, run in the transaction that stores its results ([`Store::record_region_results`]);
/// binds `$1` name, `$2` region, `$3` receive time, `$4` lag ([`push_lag`]), `$5` results newly stored,
/// `$6` the receive time's minute ([`minute_of`]) and `$7` the results newly stored again.
///
/// Every SET expression reads the row as it was (PostgreSQL and SQLite alike), so the three minute columns
/// move together: the same minute adds; the next minute shifts the current count to `prev`; a later one
/// starts over; the minute before adds to `prev` (a late write); anything older is only in the total.
pub(super) const PUSH_UPSERT: &str = "INSERT INTO agents (name, region, last_push_ms, lag_ms, results_total, \
     minute_ms, minute_results) VALUES ($1, $2, $3, $4, $5, $6, $7) \
     ON CONFLICT (name) DO UPDATE SET region = excluded.region, \
     last_push_ms = CASE WHEN agents.last_push_ms IS NULL \
       OR excluded.last_push_ms > agents.last_push_ms THEN excluded.last_push_ms \
       ELSE agents.last_push_ms END, \
     lag_ms = CASE WHEN excluded.lag_ms IS NOT NULL AND (agents.last_push_ms IS NULL \
       OR excluded.last_push_ms >= agents.last_push_ms) THEN excluded.lag_ms ELSE agents.lag_ms END, \
     results_total = agents.results_total + excluded.results_total, \
     prev_minute_results = CASE \
       WHEN excluded.minute_ms = agents.minute_ms THEN agents.prev_minute_results \
       WHEN excluded.minute_ms = agents.minute_ms + 60000 THEN agents.minute_results \
       WHEN excluded.minute_ms > agents.minute_ms THEN 0 \
       WHEN excluded.minute_ms = agents.minute_ms - 60000 \
         THEN agents.prev_minute_results + excluded.minute_results \
       ELSE agents.prev_minute_results END, \
     minute_results = CASE \
       WHEN excluded.minute_ms = agents.minute_ms THEN agents.minute_results + excluded.minute_results \
       WHEN excluded.minute_ms > agents.minute_ms THEN excluded.minute_results \
       ELSE agents.minute_results END, \
     minute_ms = CASE WHEN excluded.minute_ms > agents.minute_ms THEN excluded.minute_ms \
       ELSE agents.minute_ms END";

/// The start of the clock minute of `at_ms`, Unix ms.
pub(super) fn minute_of(at_ms: i64) -> i64 {
    at_ms.div_euclid(MINUTE_MS) * MINUTE_MS
}

/// The lag of a push received at `at_ms` whose newest result was probed at `newest_probed_ms`; `None` for a
/// push without results.
pub(super) fn push_lag(at_ms: i64, newest_probed_ms: Option<i64>) -> Option<i64> {
    newest_probed_ms.map(|p| at_ms.saturating_sub(p))
}

/// Results in the 60 s before `now_ms`, estimated from the count of the clock minute starting at `minute_ms`
/// (`current`) and of the minute before it (`previous`): the previous minute's count weighted by the share of
/// it still inside the window (the sliding-window counter), rounded up; 0 once both minutes are over.
fn per_minute(now_ms: i64, minute_ms: i64, current: i64, previous: i64) -> i64 {
    let this = minute_of(now_ms);
    let (cur, prev) = if minute_ms == this {
        (current, previous)
    } else if minute_ms == this - MINUTE_MS {
        (0, current)
    } else {
        return 0;
    };
    let left = MINUTE_MS - (now_ms - this); // of the previous minute, still inside the last 60 s
                                            // Rounded up: a result just stored never shows as 0.
    cur.saturating_add(prev.saturating_mul(left).saturating_add(MINUTE_MS - 1) / MINUTE_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minute_estimate_slides() {
        // (now, minute_ms, current, previous) → estimate
        let cases = [
            (60_000, 60_000, 10, 60, 70), // the minute starts: all of the previous one counts
            (90_000, 60_000, 10, 60, 40), // half-way: half of it
            (119_999, 60_000, 10, 60, 11), // nearly over (rounded up)
            (150_000, 60_000, 10, 60, 5), // the next minute: the count became the previous one
            (180_000, 60_000, 10, 60, 0), // both over
            (30_000, 60_000, 10, 60, 0),  // a row from a clock ahead of ours: not counted
        ];
        for (now, minute, cur, prev, want) in cases {
            assert_eq!(per_minute(now, minute, cur, prev), want, "{now} {minute}");
        }
    }
}
