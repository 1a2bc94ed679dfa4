//! The in-memory view the status page, the API and `/metrics` read, rebuilt from the database on a timer (so
//! every replica serves the same data, leader or not, and no request scans history). Current state (and the
//! probe agents' liveness, with its metrics) is reloaded every `snapshot_refresh`; uptime windows and the 90
//! daily bars every `uptime_refresh`.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use crate::config::Config;
use crate::metrics::{Metrics, TargetLabels, TargetVerdictLabels};
use crate::scheduler::now_ms;
use crate::store::{EventRow, IncidentRow, Store, StoreError, TargetState, UptimeCounts};

const HOUR_MS: i64 = 3_600_000;
const DAY_MS: i64 = 86_400_000;
/// Days of bars on the status page.
pub const BAR_DAYS: i64 = 90;
/// The uptime windows reported, in hours: 24 h, 7 d, 30 d, 90 d.
pub const WINDOWS_HOURS: [(&str, i64); 4] = [("24h", 24), ("7d", 168), ("30d", 720), ("90d", 2160)];

/// One day's bar.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct DaySummary {
    /// Days since the epoch.
    pub day: i64,
    /// Probes up.
    pub up: u32,
    /// Probes.
    pub total: u32,
    /// Median latency (ms) of the day's usable probes.
    pub p50_ms: Option<f64>,
    /// 95th percentile (ms).
    pub p95_ms: Option<f64>,
}

/// One target as the pages show it.
#[derive(Debug, Clone)]
pub struct TargetView {
    /// Persisted state.
    pub state: TargetState,
    /// `up`, `down`, `failing`, `degraded`, `maintenance` or `unknown`.
    pub status: &'static str,
    /// Probe interval in seconds.
    pub interval_s: u64,
    /// Uptime per window of [`WINDOWS_HOURS`].
    pub uptime: [UptimeCounts; 4],
    /// [`BAR_DAYS`] rolled-up bars, oldest first, shared with the builder's cache; see [`TargetView::days`].
    pub rolled_days: Arc<[DaySummary]>,
    /// Today's raw results not rolled up yet (added to the last bar by [`TargetView::days`]).
    pub today_raw: UptimeCounts,
    /// For a transaction target (`<target>.<transaction>`), the configured target it belongs to.
    pub transaction_of: Option<String>,
    /// A multi-region target's regions (issue 14), empty otherwise: see [`RegionsView`].
    pub regions: Option<RegionsView>,
}

/// A multi-region target's last complete round, from the store (every replica shows the same).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct RegionsView {
    /// The round's verdict: `up`, `down`, `regional` or `unknown`.
    pub verdict: &'static str,
    /// Per configured region, in the order written: its final attempt in that round (`None`: no report).
    pub regions: Vec<(String, Option<bool>)>,
}

impl TargetView {
    /// The [`BAR_DAYS`] bars, oldest first, today's including results not rolled up yet.
    pub fn days(&self) -> Vec<DaySummary> {
        let mut days = self.rolled_days.to_vec();
        if let Some(last) = days.last_mut() {
            last.up += u32::try_from(self.today_raw.up).unwrap_or(u32::MAX);
            last.total += u32::try_from(self.today_raw.total).unwrap_or(u32::MAX);
        }
        days
    }
}

/// Everything the pages read.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// When built, Unix ms (0 before the first build).
    pub generated_ms: i64,
    /// Targets, in configuration order.
    pub targets: Vec<TargetView>,
    /// Name → index in `targets`.
    pub by_name: HashMap<String, usize>,
    /// Open incidents, newest first.
    pub open_incidents: Vec<IncidentRow>,
    /// Recent incidents (open or resolved), newest first.
    pub recent_incidents: Vec<IncidentRow>,
    /// Recent drift, version and certificate events, newest first.
    pub recent_events: Vec<EventRow>,
    /// Each agent's stored liveness by name (the `agents` table, whichever replica received its calls):
    /// `GET /api/v1/agents`.
    pub agents: std::collections::BTreeMap<String, crate::store::AgentSeen>,
    /// `/api/v1/targets` serialised once per snapshot, on first request.
    pub targets_json: std::sync::OnceLock<axum::body::Bytes>,
}

/// The rolled-up part of uptime and the bars: changes only when a rollup runs.
#[derive(Debug, Default)]
struct Rolled {
    windows: HashMap<i64, [UptimeCounts; 4]>,
    days: HashMap<i64, Arc<[DaySummary]>>,
    built_ms: Option<i64>,
}

/// Raw results not rolled up yet, per target: over the windows, and today's.
#[derive(Debug, Default)]
struct Tail {
    windows: HashMap<i64, UptimeCounts>,
    today: HashMap<i64, UptimeCounts>,
    built_ms: Option<i64>,
}

/// The rolled part is rebuilt at least this often even without a rollup here (another replica's rollup).
const ROLLED_REFRESH_MS: i64 = 10 * 60 * 1000;

/// Shared, swappable snapshot.
#[derive(Debug, Default)]
pub struct SnapshotCell(RwLock<Arc<Snapshot>>);

impl SnapshotCell {
    /// The current snapshot (a cheap `Arc` clone; the lock is never held across an await).
    pub fn get(&self) -> Arc<Snapshot> {
        match self.0.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    fn set(&self, s: Snapshot) {
        match self.0.write() {
            Ok(mut g) => *g = Arc::new(s),
            Err(p) => *p.into_inner() = Arc::new(s),
        }
    }
}

/// Rebuilds snapshots until cancelled.
pub(crate) struct Builder {
    store: Store,
    config: Arc<Config>,
    metrics: Arc<Metrics>,
    rolled: Rolled,
    tail: Tail,
}

/// The start of the window of `hours` ending now: the top of the hour `hours - 1` hours ago.
fn window_start(now: i64, hours: i64) -> i64 {
    (now.div_euclid(HOUR_MS) - hours + 1) * HOUR_MS
}

fn empty_days(today: i64) -> Vec<DaySummary> {
    (today - BAR_DAYS + 1..=today)
        .map(|day| DaySummary {
            day,
            ..DaySummary::default()
        })
        .collect()
}

fn status_of(s: &TargetState, in_maintenance: bool) -> &'static str {
    if s.last_checked_ms.is_none() {
        "unknown"
    } else if s.open_incident.is_some() {
        "down"
    } else if in_maintenance {
        "maintenance"
    } else if s.consecutive_failures > 0 {
        "failing"
    } else if s.last_verdict.as_deref() == Some("degraded") {
        "degraded"
    } else {
        "up"
    }
}

impl Builder {
    pub(crate) fn new(store: Store, config: Arc<Config>, metrics: Arc<Metrics>) -> Self {
        Builder {
            store,
            config,
            metrics,
            rolled: Rolled::default(),
            tail: Tail::default(),
        }
    }

    /// Forces the next build to recompute the rolled-up part (after a rollup).
    pub(crate) fn invalidate_uptime(&mut self) {
        self.rolled.built_ms = None;
    }

    async fn build_rolled(&mut self, now: i64) -> Result<(), StoreError> {
        let mut windows: HashMap<i64, [UptimeCounts; 4]> = HashMap::new();
        for (i, (_, hours)) in WINDOWS_HOURS.iter().enumerate() {
            for (id, c) in self
                .store
                .uptime_rolled_since(window_start(now, *hours))
                .await?
            {
                windows.entry(id).or_default()[i] = c;
            }
        }
        let today = now.div_euclid(DAY_MS);
        let first = today - BAR_DAYS + 1;
        let mut days: HashMap<i64, Vec<DaySummary>> = HashMap::new();
        for row in self.store.day_summaries(first).await? {
            let v = days
                .entry(row.target_id)
                .or_insert_with(|| empty_days(today));
            if let Some(slot) = usize::try_from(row.day - first)
                .ok()
                .and_then(|i| v.get_mut(i))
            {
                *slot = DaySummary {
                    day: row.day,
                    up: row.up,
                    total: row.total,
                    p50_ms: row.p50_ms,
                    p95_ms: row.p95_ms,
                };
            }
        }
        let days = days.into_iter().map(|(k, v)| (k, Arc::from(v))).collect();
        self.rolled = Rolled {
            windows,
            days,
            built_ms: Some(now),
        };
        Ok(())
    }

    async fn build_tail(&mut self, now: i64) -> Result<(), StoreError> {
        // Raw results after the rollup watermark: the same tail for every window (each starts before it).
        let windows = self
            .store
            .raw_counts_since(window_start(now, WINDOWS_HOURS[0].1))
            .await?;
        let today = self
            .store
            .raw_counts_since(now.div_euclid(DAY_MS) * DAY_MS)
            .await?;
        self.tail = Tail {
            windows,
            today,
            built_ms: Some(now),
        };
        Ok(())
    }

    /// Builds a snapshot now.
    pub(crate) async fn build(&mut self, cell: &SnapshotCell) -> Result<(), StoreError> {
        let now = now_ms();
        let today = now.div_euclid(DAY_MS);
        let stale = |built: Option<i64>, every: i64| {
            built.is_none_or(|b| now.saturating_sub(b) >= every || b.div_euclid(DAY_MS) != today)
        };
        if stale(self.rolled.built_ms, ROLLED_REFRESH_MS) {
            self.build_rolled(now).await?;
        }
        let refresh =
            i64::try_from(self.config.tuning.uptime_refresh.as_millis()).unwrap_or(60_000);
        if stale(self.tail.built_ms, refresh) {
            self.build_tail(now).await?;
        }
        let states = self.store.load_states().await?;
        let regions = crate::agent::evaluate::regions_views(&self.store, &self.config, now).await?;
        let by_state: HashMap<&str, &TargetState> =
            states.iter().map(|s| (s.name.as_str(), s)).collect();
        let mut targets = Vec::with_capacity(self.config.targets.len());
        self.metrics.target_up.clear();
        self.metrics.target_verdict.clear();
        self.metrics.target_latency.clear();
        self.metrics.target_tls_days_left.clear();
        for t in &self.config.targets {
            let Some(state) = by_state.get(t.name.as_str()).map(|s| (*s).clone()) else {
                continue;
            };
            let rolled_days = self
                .rolled
                .days
                .get(&state.id)
                .cloned()
                .unwrap_or_else(|| Arc::from(empty_days(today)));
            let today_raw = self.tail.today.get(&state.id).copied().unwrap_or_default();
            let mut uptime = self
                .rolled
                .windows
                .get(&state.id)
                .copied()
                .unwrap_or_default();
            if let Some(tail) = self.tail.windows.get(&state.id) {
                for w in &mut uptime {
                    w.up += tail.up;
                    w.total += tail.total;
                }
            }
            let in_maintenance = self
                .config
                .maintenance_until(t.maintenance_name(), now)
                .is_some();
            let labels = TargetLabels {
                target: t.name.clone(),
            };
            if let Some(v) = &state.last_verdict {
                let up = v == "healthy"
                    || v == "degraded"
                    || (v == "auth_required" && t.accept_auth_required);
                self.metrics
                    .target_up
                    .get_or_create(&labels)
                    .set(i64::from(up));
                self.metrics
                    .target_verdict
                    .get_or_create(&TargetVerdictLabels {
                        target: t.name.clone(),
                        verdict: v.clone(),
                    })
                    .set(1);
            }
            if let Some(ms) = state.last_latency_ms {
                self.metrics
                    .target_latency
                    .get_or_create(&labels)
                    .set(ms / 1000.0);
            }
            if let Some(d) = state.tls_days_left {
                self.metrics
                    .target_tls_days_left
                    .get_or_create(&labels)
                    .set(d);
            }
            targets.push(TargetView {
                status: status_of(&state, in_maintenance),
                interval_s: t.interval.as_secs(),
                uptime,
                rolled_days,
                today_raw,
                state,
                transaction_of: t.transaction.as_ref().map(|j| j.parent.clone()),
                regions: regions.get(&t.name).cloned(),
            });
        }
        let open_incidents = self.store.incidents(None, true, i64::MAX, 200).await?;
        self.metrics
            .incidents_open
            .set(i64::try_from(open_incidents.len()).unwrap_or(i64::MAX));
        let recent_incidents = self.store.incidents(None, false, i64::MAX, 20).await?;
        let mut recent_events = Vec::new();
        for e in self.store.events(None, None, i64::MAX, 100).await? {
            if !e.kind.starts_with("incident_") && recent_events.len() < 30 {
                recent_events.push(e);
            }
        }
        let agents = self.store.agents_seen(now).await?;
        self.metrics.agents.show_seen(&self.config.agents, &agents);
        let by_name = targets
            .iter()
            .enumerate()
            .map(|(i, t)| (t.state.name.clone(), i))
            .collect();
        cell.set(Snapshot {
            generated_ms: now,
            targets,
            by_name,
            open_incidents,
            recent_incidents,
            recent_events,
            agents,
            targets_json: std::sync::OnceLock::new(),
        });
        Ok(())
    }
}
