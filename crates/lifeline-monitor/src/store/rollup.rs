//! Rollups and retention. Raw results of each complete hour (after a grace period for late results) are
//! aggregated into that hour's [`Bucket`] per target and merged into the target's `rollup_day` row, the hourly
//! bucket into its packed `hours` and the day totals beside it. [`Store::apply_hourly`] is the one path that
//! writes rollups: the rollup job and the benchmark's history loader both go through it.

use std::collections::HashMap;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use sqlx::Row as _;

use super::{with_pool, Store, StoreError};
use crate::sketch::{Bucket, DayHours, LatencyHistogram};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// At most this many hours are rolled up per run, so one run stays short after a long outage.
const MAX_HOURS_PER_RUN: i64 = 48;
const WATERMARK_KEY: &str = "rollup_next_hour";

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
                // Streamed: an hour of 10,000 targets is 600,000 rows, never held at once.
                let mut rows = sqlx::query(
                    "SELECT target_id, verdict, up, latency_ms FROM results WHERE ts_ms >= $1 AND ts_ms < $2",
                )
                .bind(hour * HOUR_MS)
                .bind((hour + 1) * HOUR_MS)
                .fetch(&mut *tx);
                while let Some(row) = rows.try_next().await? {
                    let target_id: i64 = row.try_get("target_id")?;
                    let verdict: String = row.try_get("verdict")?;
                    let up: i64 = row.try_get("up")?;
                    let latency: Option<f64> = row.try_get("latency_ms")?;
                    add_result(buckets.entry(target_id).or_default(), &verdict, up != 0, latency);
                }
                drop(rows);
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

    /// Deletes what is past retention: raw results (`raw`), hourly detail (`hourly`), day rows, events,
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
