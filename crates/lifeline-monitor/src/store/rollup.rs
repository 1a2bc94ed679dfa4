//! Rollups and retention. Raw results of each complete hour (after a grace period for late results) are
//! aggregated into that hour's [`Bucket`] per target and merged into the target's `rollup_day` row, the hourly
//! bucket into its packed `hours` and the day totals beside it. [`Store::apply_hourly`] is the one path that
//! writes rollups: the rollup job and the benchmark's history loader both go through it.
//!
//! **Thinning** (issue 14, the storage goal): in the same transaction as an hour's rollup, the raw results of
//! that hour that say nothing new are deleted: a *healthy* result (up, outside maintenance) whose verdict,
//! reason, era, protocol version, server version, tool count and schema hash equal the target's previous
//! result's. What stays in `results` for `retention.raw`: every result until its hour is rolled up (the current
//! hour plus `tuning.rollup_grace`), then every failure, degraded or `auth_required` result, every result in
//! maintenance, and the first result after any change (a state change, a new version or schema). The hour's
//! mean phase timings (the status page's phase chart) go to `phase_hours` first, so the chart keeps every hour.
//! A steady healthy target therefore costs one `phase_hours` row per hour past the current one, not 60 rows.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use sqlx::{FromRow as _, Row as _};

use lifeline_mcp::probe::{Phase, Timings};

use super::{with_pool, Store, StoreError};
use crate::sketch::{Bucket, DayHours, LatencyHistogram};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// At most this many hours are rolled up per run, so one run stays short after a long outage.
const MAX_HOURS_PER_RUN: i64 = 48;
const WATERMARK_KEY: &str = "rollup_next_hour";
/// Targets per thinning `DELETE` (one bind each).
const THIN_TARGETS_PER_DELETE: usize = 1_000;

/// What makes a result new news: two results with equal attributes in a row, both healthy, are one state.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
struct Attrs {
    verdict: String,
    up: i64,
    maintenance: i64,
    reason: Option<String>,
    era: Option<String>,
    protocol_version: Option<String>,
    server_version: Option<String>,
    tools_count: Option<i64>,
    schema_hash: Option<String>,
}

/// The columns of [`Attrs`], as selected from `results` (alias `r`).
macro_rules! attrs {
    () => {
        "r.verdict, r.up, r.maintenance, r.reason, r.era, r.protocol_version, r.server_version, r.tools_count, \
         r.schema_hash"
    };
}

/// One target's pass over one hour, while its rows stream in time order.
#[derive(Default)]
struct TargetHour {
    /// Times of the healthy results kept as changes: the thinning `DELETE` must spare them.
    kept_healthy: Vec<i64>,
    /// Healthy repeats found (what the `DELETE` removes).
    repeats: u64,
    /// Sum of each phase over the usable probes, in first-seen order, and how many usable probes had timings.
    phases: Vec<(Phase, f64)>,
    probes: i64,
}

impl TargetHour {
    fn add_timings(&mut self, json: &str) {
        let Ok(t) = serde_json::from_str::<Timings>(json) else {
            return;
        };
        self.probes += 1;
        for (phase, ms) in t.0 {
            match self.phases.iter_mut().find(|(p, _)| *p == phase) {
                Some(slot) => slot.1 += ms,
                None => self.phases.push((phase, ms)),
            }
        }
    }

    /// The hour's mean timings as `results.timings` JSON: each phase's sum over all usable probes of the hour
    /// (0 where a probe lacked it), so the means of the chart's parts still add up to the mean total.
    fn mean_json(&self) -> Option<String> {
        if self.probes == 0 {
            return None;
        }
        let n = self.probes as f64;
        let mean = Timings(
            self.phases
                .iter()
                .map(|(p, sum)| (*p, (sum / n * 1000.0).round() / 1000.0))
                .collect(),
        );
        serde_json::to_string(&mean).ok()
    }
}

/// One target's aggregate over one hour.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HourRollup {
    /// Target row id.
    pub target_id: i64,
    /// Hours since the Unix epoch (UTC).
    pub hour: i64,
    /// The aggregate.
    pub bucket: Bucket,
}

/// Merges hourly rollups into the day rows inside an open transaction `$tx`.
macro_rules! merge_hours {
    ($tx:expr, $rollups:expr) => {{
        let mut by_day: HashMap<i64, Vec<&HourRollup>> = HashMap::new();
        for r in $rollups {
            by_day.entry(r.hour.div_euclid(24)).or_default().push(r);
        }
        let mut days: Vec<_> = by_day.into_iter().collect();
        days.sort_by_key(|(d, _)| *d);
        for (day, rs) in days {
            let mut existing: HashMap<i64, (Bucket, DayHours)> = HashMap::new();
            // Only the batch's targets (ids are contiguous per chunk in practice).
            let lo = rs.iter().map(|r| r.target_id).min().unwrap_or(0);
            let hi = rs.iter().map(|r| r.target_id).max().unwrap_or(0);
            let rows = sqlx::query(
                "SELECT target_id, total, up, healthy, degraded, auth_required, unhealthy, hist, hours \
                 FROM rollup_day WHERE day = $1 AND target_id >= $2 AND target_id <= $3",
            )
            .bind(day)
            .bind(lo)
            .bind(hi)
            .fetch_all(&mut *$tx)
            .await?;
            for row in rows {
                let hist: Vec<u8> = row.try_get("hist")?;
                let hours: Option<Vec<u8>> = row.try_get("hours")?;
                let b = Bucket {
                    total: to_u32(row.try_get("total")?),
                    up: to_u32(row.try_get("up")?),
                    healthy: to_u32(row.try_get("healthy")?),
                    degraded: to_u32(row.try_get("degraded")?),
                    auth_required: to_u32(row.try_get("auth_required")?),
                    unhealthy: to_u32(row.try_get("unhealthy")?),
                    latency: LatencyHistogram::decode(&mut hist.as_slice())?,
                };
                let h = DayHours::decode(hours.as_deref().unwrap_or_default())?;
                existing.insert(row.try_get("target_id")?, (b, h));
            }
            let mut touched: Vec<i64> = Vec::new();
            for r in rs {
                let entry = existing.entry(r.target_id).or_insert_with(|| {
                    touched.push(r.target_id);
                    (Bucket::default(), DayHours::default())
                });
                if !touched.contains(&r.target_id) {
                    touched.push(r.target_id);
                }
                entry.0.merge(&r.bucket);
                let slot = &mut entry.1 .0[usize::try_from(r.hour.rem_euclid(24)).unwrap_or(0)];
                match slot {
                    Some(b) => b.merge(&r.bucket),
                    None => *slot = Some(r.bucket.clone()),
                }
            }
            for target_id in touched {
                let Some((b, h)) = existing.get(&target_id) else { continue };
                let mut hist = Vec::with_capacity(16);
                b.latency.encode(&mut hist);
                sqlx::query(
                    "INSERT INTO rollup_day (day, target_id, total, up, healthy, degraded, auth_required, \
                     unhealthy, hist, hours) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
                     ON CONFLICT (day, target_id) DO UPDATE SET total = excluded.total, up = excluded.up, \
                     healthy = excluded.healthy, degraded = excluded.degraded, \
                     auth_required = excluded.auth_required, unhealthy = excluded.unhealthy, \
                     hist = excluded.hist, hours = excluded.hours",
                )
                .bind(day)
                .bind(target_id)
                .bind(i64::from(b.total))
                .bind(i64::from(b.up))
                .bind(i64::from(b.healthy))
                .bind(i64::from(b.degraded))
                .bind(i64::from(b.auth_required))
                .bind(i64::from(b.unhealthy))
                .bind(hist)
                .bind(h.encode())
                .execute(&mut *$tx)
                .await?;
            }
        }
    }};
}

/// Inside the rollup transaction `$tx` of `$hour`: writes each target's mean phase timings to `phase_hours`
/// and deletes its healthy repeats (see the module doc). Targets whose healthy results of the hour are all
/// repeats are deleted in chunks; a target with a kept healthy change spares its times.
macro_rules! thin_hour {
    ($tx:expr, $hour:expr, $passes:expr) => {{
        for (target_id, pass) in &$passes {
            if let Some(timings) = pass.mean_json() {
                sqlx::query(
                    "INSERT INTO phase_hours (target_id, hour, probes, timings) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (target_id, hour) DO UPDATE SET probes = excluded.probes, timings = excluded.timings",
                )
                .bind(*target_id)
                .bind($hour)
                .bind(pass.probes)
                .bind(timings)
                .execute(&mut *$tx)
                .await?;
            }
        }
        // The healthy results of the hour of the targets in `$ids`, except the times in `$spare`.
        macro_rules! delete_repeats {
            ($ids:expr, $spare:expr) => {{
                let mut q = sqlx::QueryBuilder::new("DELETE FROM results WHERE ts_ms >= ");
                q.push_bind($hour * HOUR_MS)
                    .push(" AND ts_ms < ")
                    .push_bind(($hour + 1) * HOUR_MS)
                    .push(" AND verdict = 'healthy' AND up = 1 AND maintenance = 0 AND target_id IN (");
                let mut ids = q.separated(", ");
                for t in $ids {
                    ids.push_bind(*t);
                }
                q.push(")");
                let spare: &[i64] = $spare;
                if !spare.is_empty() {
                    q.push(" AND ts_ms NOT IN (");
                    let mut ts = q.separated(", ");
                    for t in spare {
                        ts.push_bind(*t);
                    }
                    q.push(")");
                }
                q.build().execute(&mut *$tx).await?;
            }};
        }
        let whole: Vec<i64> = $passes
            .iter()
            .filter(|(_, p)| p.repeats > 0 && p.kept_healthy.is_empty())
            .map(|(t, _)| *t)
            .collect();
        for chunk in whole.chunks(THIN_TARGETS_PER_DELETE) {
            delete_repeats!(chunk, &[]);
        }
        // Rare (a change of version, schema or state in the hour): one statement per such target, sparing the
        // changes (at most one bind per result of the hour).
        for (target_id, pass) in $passes.iter().filter(|(_, p)| p.repeats > 0 && !p.kept_healthy.is_empty()) {
            delete_repeats!([*target_id].iter(), &pass.kept_healthy);
        }
    }};
}

impl Store {
    /// Merges hourly rollups into the day rows, in one transaction. Applying the same hour twice counts it
    /// twice: the rollup job guards against that with its watermark.
    pub async fn apply_hourly(&self, rollups: &[HourRollup]) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            merge_hours!(tx, rollups);
            tx.commit().await?;
        });
        Ok(())
    }

    /// The first hour (since the epoch) not rolled up yet; `None` before the first rollup.
    pub async fn rollup_watermark(&self) -> Result<Option<i64>, StoreError> {
        let v: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                .bind(WATERMARK_KEY)
                .fetch_optional(pool)
                .await
        })?;
        Ok(v)
    }

    /// Rolls up every complete hour that ended at least `grace` before `now_ms` and is not rolled up yet (at
    /// most 48 per call). Each hour is aggregated, merged and the watermark moved in one transaction, so an
    /// hour is counted exactly once even if the process dies mid-way. Returns the hours rolled up.
    pub async fn rollup(&self, now_ms: i64, grace: Duration) -> Result<i64, StoreError> {
        let grace_ms = i64::try_from(grace.as_millis()).unwrap_or(0);
        let end_hour = (now_ms - grace_ms).div_euclid(HOUR_MS); // hours < end_hour are complete
        let start = match self.rollup_watermark().await? {
            Some(h) => h,
            None => {
                let first: Option<i64> = with_pool!(self, pool => {
                    sqlx::query_scalar("SELECT MIN(ts_ms) FROM results").fetch_one(pool).await
                })?;
                first.map_or(end_hour, |ms| ms.div_euclid(HOUR_MS))
            }
        };
        let mut done = 0;
        let mut hour = start;
        while hour < end_hour && done < MAX_HOURS_PER_RUN {
            with_pool!(self, pool => {
                let mut tx = pool.begin().await?;
                // Re-read under the transaction: another replica may have rolled this hour already.
                let current: Option<i64> = sqlx::query_scalar("SELECT value FROM meta WHERE key = $1")
                    .bind(WATERMARK_KEY)
                    .fetch_optional(&mut *tx)
                    .await?;
                if current.is_some_and(|c| c > hour) {
                    hour = current.unwrap_or(hour);
                    continue;
                }
                let mut buckets: HashMap<i64, Bucket> = HashMap::new();
                // Each target's last result before this hour (after thinning, a kept one), to tell a change at
                // the hour's first result.
                let mut prev: HashMap<i64, Attrs> = HashMap::new();
                {
                    let mut rows = sqlx::query(concat!(
                        "SELECT r.target_id, ",
                        attrs!(),
                        " FROM results r JOIN (SELECT target_id, MAX(ts_ms) AS m FROM results WHERE ts_ms < $1 \
                         GROUP BY target_id) p ON p.target_id = r.target_id AND p.m = r.ts_ms"
                    ))
                    .bind(hour * HOUR_MS)
                    .fetch(&mut *tx);
                    while let Some(row) = rows.try_next().await? {
                        prev.insert(row.try_get("target_id")?, Attrs::from_row(&row)?);
                    }
                }
                let mut passes: Vec<(i64, TargetHour)> = Vec::new();
                // Streamed: an hour of 10,000 targets is 600,000 rows, never held at once.
                let mut rows = sqlx::query(concat!(
                    "SELECT r.target_id, r.ts_ms, r.latency_ms, r.timings, ",
                    attrs!(),
                    " FROM results r WHERE r.ts_ms >= $1 AND r.ts_ms < $2 ORDER BY r.target_id, r.ts_ms"
                ))
                .bind(hour * HOUR_MS)
                .bind((hour + 1) * HOUR_MS)
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    let target_id: i64 = row.try_get("target_id")?;
                    let attrs = Attrs::from_row(&row)?;
                    let latency: Option<f64> = row.try_get("latency_ms")?;
                    add_result(buckets.entry(target_id).or_default(), &attrs.verdict, attrs.up != 0, latency);
                    if passes.last().is_none_or(|(t, _)| *t != target_id) {
                        passes.push((target_id, TargetHour::default()));
                    }
                    let Some((_, pass)) = passes.last_mut() else { continue };
                    if matches!(attrs.verdict.as_str(), "healthy" | "degraded") {
                        if let Some(t) = row.try_get::<Option<String>, _>("timings")? {
                            pass.add_timings(&t);
                        }
                    }
                    let healthy = attrs.verdict == "healthy" && attrs.up != 0 && attrs.maintenance == 0;
                    let repeat = prev.get(&target_id) == Some(&attrs);
                    if healthy && repeat {
                        pass.repeats += 1;
                    } else if healthy {
                        pass.kept_healthy.push(row.try_get("ts_ms")?);
                    }
                    if !repeat {
                        prev.insert(target_id, attrs);
                    }
                }
                drop(rows);
                thin_hour!(tx, hour, passes);
                let rollups: Vec<HourRollup> = buckets
                    .into_iter()
                    .map(|(target_id, bucket)| HourRollup { target_id, hour, bucket })
                    .collect();
                merge_hours!(tx, &rollups);
                sqlx::query(
                    "INSERT INTO meta (key, value) VALUES ($1, $2) \
                     ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                )
                .bind(WATERMARK_KEY)
                .bind(hour + 1)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
            });
            hour += 1;
            done += 1;
        }
        if done == 0 && start >= end_hour {
            // Record where rolling starts so the first hour with results is not skipped later.
            with_pool!(self, pool => {
                sqlx::query("INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING")
                    .bind(WATERMARK_KEY)
                    .bind(start)
                    .execute(pool)
                    .await
                    .map(|_| ())
            })?;
        }
        Ok(done)
    }

    /// Deletes what is past retention: raw results and their hours' phase means (`raw`), hourly detail (`hourly`), day rows, events,
    /// resolved incidents and finished alert sends (`daily`). Raw results are only deleted once rolled up; the
    /// agents' region results after `raw` (they are not rolled up).
    pub async fn prune(
        &self,
        now_ms: i64,
        raw: Duration,
        hourly: Duration,
        daily: Duration,
    ) -> Result<u64, StoreError> {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4);
        let watermark_ms = self.rollup_watermark().await?.map_or(0, |h| h * HOUR_MS);
        let raw_cut = (now_ms - ms(raw)).min(watermark_ms);
        let hourly_day = (now_ms - ms(hourly)).div_euclid(DAY_MS);
        let daily_cut = now_ms - ms(daily);
        let daily_day = daily_cut.div_euclid(DAY_MS);
        let mut n = 0;
        with_pool!(self, pool => {
            n += sqlx::query("DELETE FROM results WHERE ts_ms < $1").bind(raw_cut).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM phase_hours WHERE hour < $1")
                .bind(raw_cut.div_euclid(HOUR_MS))
                .execute(pool)
                .await?
                .rows_affected();
            // The agents' region results (issue 14) keep the raw retention; they are not rolled up, so no watermark.
            n += sqlx::query("DELETE FROM region_results WHERE probed_ms < $1").bind(now_ms - ms(raw)).execute(pool).await?.rows_affected();
            n += sqlx::query("UPDATE rollup_day SET hours = NULL WHERE day < $1 AND hours IS NOT NULL")
                .bind(hourly_day)
                .execute(pool)
                .await?
                .rows_affected();
            n += sqlx::query("DELETE FROM rollup_day WHERE day < $1").bind(daily_day).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM events WHERE ts_ms < $1").bind(daily_cut).execute(pool).await?.rows_affected();
            n += sqlx::query("DELETE FROM incidents WHERE resolved_ms IS NOT NULL AND resolved_ms < $1")
                .bind(daily_cut)
                .execute(pool)
                .await?
                .rows_affected();
            n += sqlx::query("DELETE FROM alert_outbox WHERE state <> 'pending' AND created_ms < $1")
                .bind(daily_cut)
                .execute(pool)
                .await?
                .rows_affected();
        });
        Ok(n)
    }
}

/// Adds one raw result to a bucket.
pub(crate) fn add_result(b: &mut Bucket, verdict: &str, up: bool, latency_ms: Option<f64>) {
    b.total += 1;
    if up {
        b.up += 1;
    }
    match verdict {
        "healthy" => b.healthy += 1,
        "degraded" => b.degraded += 1,
        "auth_required" => b.auth_required += 1,
        _ => b.unhealthy += 1,
    }
    if matches!(verdict, "healthy" | "degraded") {
        if let Some(ms) = latency_ms {
            b.latency.record(ms);
        }
    }
}

fn to_u32(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}
