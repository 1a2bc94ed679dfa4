//! The read side, for the status page, the API and the snapshot cache. Every query is bounded by a time range
//! or a limit.

use std::collections::HashMap;

use futures_util::TryStreamExt as _;
use serde::Serialize;
use sqlx::Row as _;

use lifeline_mcp::Reason;

use super::{with_pool, EventKind, Label, ProbeRow, Severity, Store, StoreError};
use crate::sketch::{Bucket, DayHours, LatencyHistogram};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// The most hours [`Store::phase_timings`] reads (two weeks; the raw window is 48 h by default).
pub const MAX_PHASE_HOURS: i64 = 14 * 24;

/// Probes up and in total over a window.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct UptimeCounts {
    /// Probes counted as up.
    pub up: u64,
    /// All probes.
    pub total: u64,
}

impl UptimeCounts {
    /// `up / total`, `None` without probes.
    pub fn ratio(&self) -> Option<f64> {
        (self.total > 0).then(|| self.up as f64 / self.total as f64)
    }
}

/// One target's day rollup (without the hourly detail).
#[derive(Debug, Clone)]
pub struct DayRow {
    /// Target id.
    pub target_id: i64,
    /// Days since the epoch (UTC).
    pub day: i64,
    /// Counts and latency.
    pub bucket: Bucket,
}

/// One target's day, summarised.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DayStat {
    /// Target id.
    pub target_id: i64,
    /// Days since the epoch.
    pub day: i64,
    /// Probes up.
    pub up: u32,
    /// Probes.
    pub total: u32,
    /// Median latency of usable probes, ms.
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
}

/// One point of a target's history at hour or day resolution.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryPoint {
    /// Bucket start, Unix ms.
    pub ts_ms: i64,
    /// Probes.
    pub total: u32,
    /// Probes up.
    pub up: u32,
    /// Per verdict.
    pub healthy: u32,
    /// Per verdict.
    pub degraded: u32,
    /// Per verdict.
    pub auth_required: u32,
    /// Per verdict.
    pub unhealthy: u32,
    /// Median latency of usable probes, ms (upper bound of its histogram bucket).
    pub p50_ms: Option<f64>,
    /// 95th percentile, ms.
    pub p95_ms: Option<f64>,
}

impl HistoryPoint {
    /// From a bucket starting at `ts_ms`.
    pub fn from_bucket(ts_ms: i64, b: &Bucket) -> Self {
        HistoryPoint {
            ts_ms,
            total: b.total,
            up: b.up,
            healthy: b.healthy,
            degraded: b.degraded,
            auth_required: b.auth_required,
            unhealthy: b.unhealthy,
            p50_ms: b.latency.quantile(0.5),
            p95_ms: b.latency.quantile(0.95),
        }
    }
}

/// An incident with its target's name.
#[derive(Debug, Clone, Serialize, sqlx::FromRow)]
pub struct IncidentRow {
    /// Id.
    pub id: i64,
    /// Target id.
    pub target_id: i64,
    /// Target name.
    pub target: String,
    /// Opened, Unix ms.
    pub opened_ms: i64,
    /// Resolved, Unix ms; `None` while open.
    pub resolved_ms: Option<i64>,
    /// Reason of the failure that opened it.
    pub reason: Option<Label<Reason>>,
    /// Its message.
    pub message: Option<String>,
    /// Reminders queued.
    pub reminders: i64,
}

/// An event with its target's name.
#[derive(Debug, Clone, Serialize)]
pub struct EventRow {
    /// Id.
    pub id: i64,
    /// Target id.
    pub target_id: i64,
    /// Target name.
    pub target: String,
    /// When, Unix ms.
    pub ts_ms: i64,
    /// What happened.
    pub kind: Label<EventKind>,
    /// How much it matters.
    pub severity: Label<Severity>,
    /// One line.
    pub summary: String,
    /// Kind-specific details.
    pub details: serde_json::Value,
}

fn u32_of(v: i64) -> u32 {
    u32::try_from(v.max(0)).unwrap_or(u32::MAX)
}

fn bucket_of_row<R>(row: &R) -> Result<Bucket, StoreError>
where
    R: sqlx::Row,
    for<'a> &'a str: sqlx::ColumnIndex<R>,
    i64: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
    Vec<u8>: for<'r> sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,
{
    let hist: Vec<u8> = row.try_get("hist")?;
    Ok(Bucket {
        total: u32_of(row.try_get("total")?),
        up: u32_of(row.try_get("up")?),
        healthy: u32_of(row.try_get("healthy")?),
        degraded: u32_of(row.try_get("degraded")?),
        auth_required: u32_of(row.try_get("auth_required")?),
        unhealthy: u32_of(row.try_get("unhealthy")?),
        latency: LatencyHistogram::decode(&mut hist.as_slice())?,
    })
}

impl Store {
    /// Uptime counts per target over `[start_ms, now)`, exact to the hour: whole days from the day rows, the
    /// first day's remaining hours from its packed hours, and raw results not rolled up yet.
    pub async fn uptime_since(
        &self,
        start_ms: i64,
    ) -> Result<HashMap<i64, UptimeCounts>, StoreError> {
        let mut out = self.uptime_rolled_since(start_ms).await?;
        for (id, c) in self.raw_counts_since(start_ms).await? {
            let e = out.entry(id).or_default();
            e.up += c.up;
            e.total += c.total;
        }
        Ok(out)
    }

    /// The rolled-up part of [`Store::uptime_since`]: whole days from the day rows and the first day's remaining
    /// hours from its packed buckets (changes only when a rollup runs, so callers cache it).
    pub async fn uptime_rolled_since(
        &self,
        start_ms: i64,
    ) -> Result<HashMap<i64, UptimeCounts>, StoreError> {
        let start_hour = start_ms.div_euclid(HOUR_MS);
        let start_day = start_ms.div_euclid(DAY_MS);
        let mut out: HashMap<i64, UptimeCounts> = HashMap::new();
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT target_id, CAST(SUM(up) AS BIGINT) AS up, CAST(SUM(total) AS BIGINT) AS total FROM rollup_day WHERE day > $1 GROUP BY target_id",
            )
            .bind(start_day)
            .fetch_all(pool)
            .await?;
            for r in rows {
                let e = out.entry(r.try_get("target_id")?).or_default();
                let up: Option<i64> = r.try_get("up")?;
                let total: Option<i64> = r.try_get("total")?;
                e.up += up.unwrap_or(0).max(0) as u64;
                e.total += total.unwrap_or(0).max(0) as u64;
            }
            let mut rows = sqlx::query("SELECT target_id, hours FROM rollup_day WHERE day = $1")
                .bind(start_day)
                .fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let hours: Option<Vec<u8>> = r.try_get("hours")?;
                let hours = DayHours::decode(hours.as_deref().unwrap_or_default())?;
                let e = out.entry(r.try_get("target_id")?).or_default();
                for (h, b) in hours.0.iter().enumerate() {
                    if let Some(b) = b {
                        if start_day * 24 + h as i64 >= start_hour {
                            e.up += u64::from(b.up);
                            e.total += u64::from(b.total);
                        }
                    }
                }
            }
        });
        Ok(out)
    }

    /// Per target and day (days ≥ `from_day`): counts and p50/p95, computed while streaming so the histograms of
    /// a whole fleet are never held at once.
    pub async fn day_summaries(&self, from_day: i64) -> Result<Vec<DayStat>, StoreError> {
        let mut out = Vec::new();
        with_pool!(self, pool => {
            let mut rows = sqlx::query("SELECT target_id, day, up, total, hist FROM rollup_day WHERE day >= $1")
                .bind(from_day)
                .fetch(pool);
            while let Some(r) = rows.try_next().await? {
                let hist: Vec<u8> = r.try_get("hist")?;
                let h = LatencyHistogram::decode(&mut hist.as_slice())?;
                out.push(DayStat {
                    target_id: r.try_get("target_id")?,
                    day: r.try_get("day")?,
                    up: u32_of(r.try_get("up")?),
                    total: u32_of(r.try_get("total")?),
                    p50_ms: h.quantile(0.5),
                    p95_ms: h.quantile(0.95),
                });
            }
        });
        Ok(out)
    }

    /// Day rollups (no hourly detail) of every target, or of `target_id`, for days ≥ `from_day`.
    pub async fn day_rows(
        &self,
        target_id: Option<i64>,
        from_day: i64,
    ) -> Result<Vec<DayRow>, StoreError> {
        let mut out = Vec::new();
        with_pool!(self, pool => {
            let q = match target_id {
                Some(id) => sqlx::query(
                    "SELECT target_id, day, total, up, healthy, degraded, auth_required, unhealthy, hist \
                     FROM rollup_day WHERE target_id = $1 AND day >= $2 ORDER BY day",
                )
                .bind(id)
                .bind(from_day),
                None => sqlx::query(
                    "SELECT target_id, day, total, up, healthy, degraded, auth_required, unhealthy, hist \
                     FROM rollup_day WHERE day >= $1 AND $2 = 0",
                )
                .bind(from_day)
                .bind(0_i64),
            };
            let mut rows = q.fetch(pool);
            while let Some(r) = rows.try_next().await? {
                out.push(DayRow {
                    target_id: r.try_get("target_id")?,
                    day: r.try_get("day")?,
                    bucket: bucket_of_row(&r)?,
                });
            }
        });
        Ok(out)
    }

    /// The hourly buckets of `target_id` for days in `[from_day, to_day]`, as `(hour since epoch, bucket)`.
    pub async fn hour_buckets(
        &self,
        target_id: i64,
        from_day: i64,
        to_day: i64,
    ) -> Result<Vec<(i64, Bucket)>, StoreError> {
        let mut out = Vec::new();
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT day, hours FROM rollup_day WHERE target_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
            )
            .bind(target_id)
            .bind(from_day)
            .bind(to_day)
            .fetch_all(pool)
            .await?;
            for r in rows {
                let day: i64 = r.try_get("day")?;
                let hours: Option<Vec<u8>> = r.try_get("hours")?;
                for (h, b) in DayHours::decode(hours.as_deref().unwrap_or_default())?.0.into_iter().enumerate() {
                    if let Some(b) = b {
                        out.push((day * 24 + h as i64, b));
                    }
                }
            }
        });
        Ok(out)
    }

    /// Raw results of `target_id` in `[from_ms, to_ms)`, newest first, at most `limit`.
    pub async fn results(
        &self,
        target_id: i64,
        from_ms: i64,
        to_ms: i64,
        limit: i64,
    ) -> Result<Vec<ProbeRow>, StoreError> {
        let rows = with_pool!(self, pool => {
            let mut q = sqlx::QueryBuilder::new("SELECT ");
            q.push(ProbeRow::COLUMNS.join(", "))
                .push(" FROM results WHERE target_id = ")
                .push_bind(target_id)
                .push(" AND ts_ms >= ")
                .push_bind(from_ms)
                .push(" AND ts_ms < ")
                .push_bind(to_ms)
                .push(" ORDER BY ts_ms DESC LIMIT ")
                .push_bind(limit);
            q.build_query_as::<ProbeRow>().fetch_all(pool).await?
        });
        Ok(rows)
    }

    /// The phase timings (`timings` JSON, as [`ProbeRow::timings`]) of `target_id`'s usable probes (healthy or
    /// degraded: a failed probe's phases say where it stopped, not how fast it was) in the UTC hours `hours`
    /// (hours since the epoch; at most the last [`MAX_PHASE_HOURS`] of the range are read), as `(ts_ms,
    /// timings)`, newest first: at most `per_hour` of each hour (its newest), so the rows read are bounded by the
    /// hours whatever the interval. One `LIMIT`ed range read of the `(target_id, ts_ms)` index per hour, on one
    /// connection (a window function over the whole range would read every row of it).
    pub async fn phase_timings(
        &self,
        target_id: i64,
        hours: std::ops::RangeInclusive<i64>,
        per_hour: i64,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let last = *hours.end();
        let first = (*hours.start()).max(last - MAX_PHASE_HOURS + 1);
        let mut out = Vec::new();
        with_pool!(self, pool => {
            let mut conn = pool.acquire().await?;
            // Hours already rolled up were thinned: their mean is in `phase_hours` (see `store::rollup`). It is
            // returned as min(probes, per_hour) equal samples, so a mean over them, and their count, are what the
            // newest `per_hour` raw samples gave before thinning (exactly so when the probes' phases ran in the
            // same order, as one target's do). Other hours (not rolled up yet, or rolled before thinning
            // existed) are read raw.
            let means: Vec<(i64, i64, String)> = sqlx::query_as(
                "SELECT hour, probes, timings FROM phase_hours WHERE target_id = $1 AND hour >= $2 AND hour <= $3",
            )
            .bind(target_id)
            .bind(first)
            .bind(last)
            .fetch_all(&mut *conn)
            .await?;
            let means: HashMap<i64, (i64, String)> = means.into_iter().map(|(h, n, t)| (h, (n, t))).collect();
            for hour in (first..=last).rev() {
                if let Some((probes, timings)) = means.get(&hour) {
                    let n = usize::try_from((*probes).min(per_hour)).unwrap_or(0);
                    out.extend(std::iter::repeat_n(((hour + 1) * HOUR_MS - 1, timings.clone()), n));
                    continue;
                }
                let rows: Vec<(i64, String)> = sqlx::query_as(
                    "SELECT ts_ms, timings FROM results WHERE target_id = $1 AND ts_ms >= $2 AND ts_ms < $3 \
                     AND verdict IN ('healthy', 'degraded') AND timings IS NOT NULL ORDER BY ts_ms DESC LIMIT $4",
                )
                .bind(target_id)
                .bind(hour * HOUR_MS)
                .bind((hour + 1) * HOUR_MS)
                .bind(per_hour)
                .fetch_all(&mut *conn)
                .await?;
                out.extend(rows);
            }
        });
        Ok(out)
    }

    /// Incidents, newest first: of one target or all, open only or all, opened before `before_ms`.
    pub async fn incidents(
        &self,
        target_id: Option<i64>,
        open_only: bool,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<IncidentRow>, StoreError> {
        let rows = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT i.id, i.target_id, t.name AS target, i.opened_ms, i.resolved_ms, i.reason, i.message, \
                 i.reminders FROM incidents i JOIN targets t ON t.id = i.target_id \
                 WHERE ($1 < 0 OR i.target_id = $1) AND ($2 = 0 OR i.resolved_ms IS NULL) AND i.opened_ms < $3 \
                 ORDER BY i.opened_ms DESC, i.id DESC LIMIT $4",
            )
            .bind(target_id.unwrap_or(-1))
            .bind(i64::from(open_only))
            .bind(before_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// Events, newest first: of one target or all, of one kind or all, before `before_ms`.
    pub async fn events(
        &self,
        target_id: Option<i64>,
        kind: Option<&str>,
        before_ms: i64,
        limit: i64,
    ) -> Result<Vec<EventRow>, StoreError> {
        let mut out = Vec::new();
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT e.id, e.target_id, t.name, e.ts_ms, e.kind, e.severity, e.summary, e.details \
                 FROM events e JOIN targets t ON t.id = e.target_id \
                 WHERE ($1 < 0 OR e.target_id = $1) AND ($2 = '' OR e.kind = $2) AND e.ts_ms < $3 \
                 ORDER BY e.ts_ms DESC, e.id DESC LIMIT $4",
            )
            .bind(target_id.unwrap_or(-1))
            .bind(kind.unwrap_or(""))
            .bind(before_ms)
            .bind(limit)
            .fetch_all(pool)
            .await?;
            for r in rows {
                let details: String = r.try_get("details")?;
                out.push(EventRow {
                    id: r.try_get("id")?,
                    target_id: r.try_get("target_id")?,
                    target: r.try_get("name")?,
                    ts_ms: r.try_get("ts_ms")?,
                    kind: r.try_get("kind")?,
                    severity: r.try_get("severity")?,
                    summary: r.try_get("summary")?,
                    details: serde_json::from_str(&details).unwrap_or(serde_json::Value::Null),
                });
            }
        });
        Ok(out)
    }
}

impl Store {
    /// Raw results per target since `since_ms` that are not rolled up yet (the tail after the watermark).
    pub async fn raw_counts_since(
        &self,
        since_ms: i64,
    ) -> Result<HashMap<i64, UptimeCounts>, StoreError> {
        let watermark_ms = self.rollup_watermark().await?.map_or(0, |h| h * HOUR_MS);
        let mut out = HashMap::new();
        with_pool!(self, pool => {
            let rows = sqlx::query(
                "SELECT target_id, CAST(SUM(up) AS BIGINT) AS up, COUNT(*) AS total FROM results \
                 WHERE ts_ms >= $1 GROUP BY target_id",
            )
            .bind(since_ms.max(watermark_ms))
            .fetch_all(pool)
            .await?;
            for r in rows {
                let up: Option<i64> = r.try_get("up")?;
                let total: i64 = r.try_get("total")?;
                out.insert(
                    r.try_get::<i64, _>("target_id")?,
                    UptimeCounts { up: up.unwrap_or(0).max(0) as u64, total: total.max(0) as u64 },
                );
            }
        });
        Ok(out)
    }
}
