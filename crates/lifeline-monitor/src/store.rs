//! Storage through sqlx: SQLite (WAL, the default) or PostgreSQL, with the same migrations (one file per
//! dialect, same tables and columns) and the same SQL. [`Store`] holds one pool of either kind and runs every
//! statement through a macro that expands the same code for both, so the two backends cannot drift apart.
//!
//! Why not `sqlx::Any`: it cannot set SQLite's WAL and busy timeout per connection, and hides the pool type we
//! need for both. The SQL is portable on purpose: `$n` placeholders (SQLite accepts them), `ON CONFLICT`,
//! `RETURNING`, partial unique indexes, and only BIGINT/DOUBLE/TEXT/BLOB values bound as `i64`/`f64`/`String`/
//! `Vec<u8>`, or as a [`Label`] (an enum stored as its `TEXT` label).
//!
//! Rows are read by column name (`sqlx::FromRow`) and written from one column list: a probe result has one
//! shape, [`ProbeRow`]. Migrations are embedded per dialect with `sqlx::migrate!`. This module must not hold
//! monitor policy (what is up, when an incident opens): that is `evaluate.rs`.

use std::str::FromStr;
use std::time::Duration;

use sqlx::migrate::Migrator;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

mod agents;
mod label;
mod outbox;
mod probe_row;
mod query;
mod record;
mod region;
mod rollup;
mod shard;

pub use agents::{AgentCall, AgentSeen};
pub use label::{EventKind, Flag, Label, Severity, Vocabulary};
pub use outbox::{ClaimedAlert, FiringIncident, OutboxState};
pub use probe_row::{ProbeRow, ResultRow};
pub use query::{
    DayRow, DayStat, EventRow, HistoryPoint, IncidentRow, UptimeCounts, MAX_PHASE_HOURS,
};
pub use record::{AlertKindTag, IncidentOp, NewAlert, NewEvent, RecordOp, Recorded};
pub use region::JudgedRound;
pub use rollup::HourRollup;
pub use shard::{shard_of, Fence, HeldShard, ShardLease, SHARDS};

/// Runs `$body` with `$pool` bound to the SQLite or the PostgreSQL pool: the same code, compiled for each.
macro_rules! with_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match &$store.db {
            $crate::store::Db::Sqlite($pool) => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}
pub(crate) use with_pool;

/// A storage failure. Never fatal to the monitor: the caller logs it, counts it and retries later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The storage URL is not `sqlite:` or `postgres://`, or could not be parsed.
    #[error("bad storage URL: {0}")]
    BadUrl(String),
    /// The database refused or failed a statement, or could not be reached.
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// Applying the migrations failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// A stored blob could not be decoded.
    #[error("{0}")]
    Corrupt(#[from] crate::sketch::DecodeError),
}

impl StoreError {
    /// A bounded label for metrics and logs.
    pub fn reason(&self) -> &'static str {
        match self {
            StoreError::BadUrl(_) => "bad_url",
            StoreError::Database(_) => "database",
            StoreError::Migrate(_) => "migrate",
            StoreError::Corrupt(_) => "corrupt",
        }
    }

    /// True when trying again later may succeed (a database that is down or busy).
    pub fn is_retryable(&self) -> bool {
        matches!(self, StoreError::Database(_))
    }
}

/// Which database a [`Store`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// An SQLite file (WAL journal).
    Sqlite,
    /// A PostgreSQL server.
    Postgres,
}

#[derive(Debug, Clone)]
pub(crate) enum Db {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// The monitor's database. Cheap to clone (pools are shared).
#[derive(Debug, Clone)]
pub struct Store {
    pub(crate) db: Db,
}

/// The persisted state of one target: what the evaluator needs to carry over a restart (a row of `targets`
/// with its open incident, read by column name).
///
/// Not a [`ProbeRow`]: it carries counters and the last *seen* attributes across failed probes. Its labels stay
/// text for now because the status page reads them as `String`.
#[derive(Debug, Clone, Default, PartialEq, sqlx::FromRow)]
pub struct TargetState {
    /// Row id.
    pub id: i64,
    /// Unique name.
    pub name: String,
    /// Display URL (secrets removed).
    pub url: String,
    /// Failures in a row (outside maintenance).
    pub consecutive_failures: i64,
    /// Successes in a row.
    pub consecutive_successes: i64,
    /// The open incident, if any.
    #[sqlx(flatten, try_from = "OpenIncidentColumns")]
    pub open_incident: Option<OpenIncident>,
    /// When the last probe started (Unix ms).
    pub last_checked_ms: Option<i64>,
    /// Its verdict label.
    pub last_verdict: Option<String>,
    /// Its reason label.
    pub last_reason: Option<String>,
    /// Its failure message.
    pub last_message: Option<String>,
    /// Its total time in ms.
    pub last_latency_ms: Option<f64>,
    /// Last era seen (`modern`, `legacy`, `sse`).
    pub era: Option<String>,
    /// Last protocol version seen.
    pub protocol_version: Option<String>,
    /// Last server name seen.
    pub server_name: Option<String>,
    /// Last server version seen.
    pub server_version: Option<String>,
    /// Last tool count seen.
    pub tools_count: Option<i64>,
    /// Last tool-schema hash seen.
    pub schema_hash: Option<String>,
    /// Certificate `notAfter` (Unix ms) last seen.
    pub tls_not_after_ms: Option<i64>,
    /// Days left on it at the last probe.
    pub tls_days_left: Option<i64>,
    /// The smallest warning threshold (30/14/7) already reported for this certificate.
    pub cert_warned_days: Option<i64>,
}

/// An open incident as the evaluator tracks it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenIncident {
    /// Row id.
    pub id: i64,
    /// When it opened (Unix ms).
    pub opened_ms: i64,
    /// When an alert for it was last queued (Unix ms).
    pub last_notified_ms: i64,
    /// Reminders queued so far.
    pub reminders: i64,
}

/// The SQLite migrations, embedded from `migrations/sqlite/` (`NNNN_name.sql`, applied in order, recorded with
/// their SHA-384 in `_sqlx_migrations`). `build.rs` makes a new file rebuild the crate.
static SQLITE_MIGRATIONS: Migrator = sqlx::migrate!("migrations/sqlite");
/// The PostgreSQL migrations, from `migrations/postgres/`: the same numbers, tables and columns.
static POSTGRES_MIGRATIONS: Migrator = sqlx::migrate!("migrations/postgres");

/// The columns of a target's open incident as `LEFT JOIN`ed onto its row (all `NULL` without one).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct OpenIncidentColumns {
    /// Incident id (`i.id AS inc_id`).
    pub inc_id: Option<i64>,
    /// When it opened (Unix ms).
    pub opened_ms: Option<i64>,
    /// When an alert for it was last queued (Unix ms).
    pub last_notified_ms: Option<i64>,
    /// Reminders queued so far.
    pub reminders: Option<i64>,
}

impl From<OpenIncidentColumns> for Option<OpenIncident> {
    fn from(c: OpenIncidentColumns) -> Self {
        Some(OpenIncident {
            id: c.inc_id?,
            opened_ms: c.opened_ms.unwrap_or(0),
            last_notified_ms: c.last_notified_ms.unwrap_or(0),
            reminders: c.reminders.unwrap_or(0),
        })
    }
}

fn migrator(backend: Backend) -> &'static Migrator {
    match backend {
        Backend::Sqlite => &SQLITE_MIGRATIONS,
        Backend::Postgres => &POSTGRES_MIGRATIONS,
    }
}

impl Store {
    /// Connects to `url` (`sqlite://PATH`, created if missing, `sqlite::memory:`, or `postgres://…`) and
    /// applies the migrations. SQLite runs in WAL mode with `synchronous=NORMAL` and a 5 s busy timeout.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        let store = Store::connect_unmigrated(url).await?;
        let m = migrator(store.backend());
        with_pool!(store, pool => m.run(pool).await)?;
        Ok(store)
    }

    /// [`Store::connect`] without applying the migrations.
    pub(crate) async fn connect_unmigrated(url: &str) -> Result<Store, StoreError> {
        let store = if url.starts_with("sqlite:") {
            let opts = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::BadUrl(e.to_string()))?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .busy_timeout(Duration::from_secs(5))
                .foreign_keys(false);
            // An in-memory database exists once per connection: keep exactly one.
            let max = if url.contains(":memory:") { 1 } else { 4 };
            let pool = SqlitePoolOptions::new()
                .max_connections(max)
                .min_connections(1)
                .idle_timeout(None)
                .max_lifetime(None)
                .connect_with(opts)
                .await?;
            Store {
                db: Db::Sqlite(pool),
            }
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await?;
            Store {
                db: Db::Postgres(pool),
            }
        } else {
            return Err(StoreError::BadUrl(format!(
                "`{}` must start with sqlite: or postgres://",
                crate::config::redact_storage(url)
            )));
        };
        Ok(store)
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.db {
            Db::Sqlite(_) => Backend::Sqlite,
            Db::Postgres(_) => Backend::Postgres,
        }
    }

    /// A cheap round trip, for `/ready`.
    pub async fn ping(&self) -> Result<(), StoreError> {
        with_pool!(self, pool => sqlx::query("SELECT 1").execute(pool).await.map(|_| ()))?;
        Ok(())
    }

    /// Closes the pools (waits for connections to be returned).
    pub async fn close(&self) {
        with_pool!(self, pool => pool.close().await);
    }

    /// The database's size in bytes (SQLite: pages in use; PostgreSQL: `pg_database_size`).
    pub async fn size_bytes(&self) -> Result<i64, StoreError> {
        let v: i64 = match &self.db {
            Db::Sqlite(pool) => {
                let pages: i64 = sqlx::query_scalar("PRAGMA page_count")
                    .fetch_one(pool)
                    .await?;
                let size: i64 = sqlx::query_scalar("PRAGMA page_size")
                    .fetch_one(pool)
                    .await?;
                pages * size
            }
            Db::Postgres(pool) => {
                sqlx::query_scalar("SELECT pg_database_size(current_database())")
                    .fetch_one(pool)
                    .await?
            }
        };
        Ok(v)
    }

    /// Inserts or updates the configured targets by name (URL refreshed, `active = 1`) and marks every other
    /// target inactive (its history stays). Returns `(name, id)` in input order.
    pub async fn sync_targets(
        &self,
        targets: &[(String, String)],
        now_ms: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let mut out = Vec::with_capacity(targets.len());
        with_pool!(self, pool => {
            let mut tx = pool.begin().await?;
            sqlx::query("UPDATE targets SET active = 0").execute(&mut *tx).await?;
            for (name, url) in targets {
                let id: i64 = sqlx::query_scalar(
                    "INSERT INTO targets (name, url, active, created_ms) VALUES ($1, $2, 1, $3) \
                     ON CONFLICT (name) DO UPDATE SET url = excluded.url, active = 1 RETURNING id",
                )
                .bind(name)
                .bind(url)
                .bind(now_ms)
                .fetch_one(&mut *tx)
                .await?;
                out.push((name.clone(), id));
            }
            tx.commit().await?;
        });
        Ok(out)
    }

    /// Takes or renews the named lease `name` (table `leases`) for `holder` until `now + ttl`; true when
    /// `holder` has it afterwards. The monitor no longer uses it (the pre-shard `scheduler` lease): replicas
    /// split the work with shard leases ([`Store::acquire_shards`], issue 14). Kept for named singletons.
    pub async fn acquire_lease(
        &self,
        name: &str,
        holder: &str,
        now_ms: i64,
        ttl: Duration,
    ) -> Result<bool, StoreError> {
        let until = now_ms + i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX / 2);
        let row: Option<String> = with_pool!(self, pool => {
            sqlx::query_scalar(
                "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
                 WHERE leases.holder = excluded.holder OR leases.expires_ms < $4 \
                 RETURNING holder",
            )
            .bind(name)
            .bind(holder)
            .bind(until)
            .bind(now_ms)
            .fetch_optional(pool)
            .await
        })?;
        Ok(row.as_deref() == Some(holder))
    }

    /// Gives the lease up (on shutdown), so another replica takes over at once.
    pub async fn release_lease(&self, name: &str, holder: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM leases WHERE name = $1 AND holder = $2")
                .bind(name)
                .bind(holder)
                .execute(pool)
                .await
                .map(|_| ())
        })?;
        Ok(())
    }

    /// The sealed secret `name` (see `crate::seal`), if stored.
    pub async fn sealed_get(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let v: Option<Vec<u8>> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT sealed FROM sealed_secrets WHERE name = $1")
                .bind(name)
                .fetch_optional(pool)
                .await
        })?;
        Ok(v)
    }

    /// Stores (or replaces) the sealed secret `name`.
    pub async fn sealed_put(
        &self,
        name: &str,
        sealed: &[u8],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query(
                "INSERT INTO sealed_secrets (name, sealed, updated_ms) VALUES ($1, $2, $3) \
                 ON CONFLICT (name) DO UPDATE SET sealed = excluded.sealed, updated_ms = excluded.updated_ms",
            )
            .bind(name)
            .bind(sealed)
            .bind(now_ms)
            .execute(pool)
            .await
            .map(|_| ())
        })?;
        Ok(())
    }

    /// Every active target's state (in `ids` order when given), with its open incident.
    pub async fn load_states(&self) -> Result<Vec<TargetState>, StoreError> {
        let rows: Vec<TargetState> = with_pool!(self, pool => {
            sqlx::query_as(
                "SELECT t.id, t.name, t.url, t.consecutive_failures, t.consecutive_successes, t.last_checked_ms, \
                 t.last_verdict, t.last_reason, t.last_message, t.last_latency_ms, t.era, t.protocol_version, \
                 t.server_name, t.server_version, t.tools_count, t.schema_hash, t.tls_not_after_ms, \
                 t.tls_days_left, t.cert_warned_days, i.id AS inc_id, i.opened_ms, i.last_notified_ms, i.reminders \
                 FROM targets t LEFT JOIN incidents i ON i.target_id = t.id AND i.resolved_ms IS NULL \
                 WHERE t.active = 1 ORDER BY t.name",
            )
            .fetch_all(pool)
            .await?
        });
        Ok(rows)
    }

    /// The tool list stored with the last schema hash of target `id` (JSON array), for drift diffs.
    pub async fn last_tools(&self, id: i64) -> Result<Option<String>, StoreError> {
        let v: Option<Option<String>> = with_pool!(self, pool => {
            sqlx::query_scalar("SELECT tools_json FROM targets WHERE id = $1")
                .bind(id)
                .fetch_optional(pool)
                .await
        })?;
        Ok(v.flatten())
    }
}

#[cfg(test)]
mod tests;
