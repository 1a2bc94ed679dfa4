//! Shard leases (issue 14): the targets are split into [`SHARDS`] shards by a stable hash of their name; each
//! shard is held by one replica under a row of `shard_leases` (owner, epoch, expiry). Every statement here is a
//! conditional `UPDATE … RETURNING`, so two replicas can never both win a shard, and every acquisition bumps the
//! epoch that fences the writes of the previous holder (see [`Fence`] and [`Store::record_fenced`]).
//!
//! Expiry times are the database's clock (`clock_timestamp()` on PostgreSQL, `julianday('now')` on SQLite), so
//! the replicas' clocks need not agree; a replica measures its own trust window on its monotonic clock.

use std::time::Duration;

use super::{with_pool, Backend, Store, StoreError};

/// Number of shards: fixed, so a target's shard never moves (changing it would need a migration).
pub const SHARDS: u32 = 128;

/// The database's clock in Unix ms, as SQL.
macro_rules! db_now {
    (pg) => {
        "(EXTRACT(EPOCH FROM clock_timestamp()) * 1000)::BIGINT"
    };
    (sqlite) => {
        "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)"
    };
}

/// The shard of a target: FNV-1a (64 bit) of its name's UTF-8 bytes, modulo [`SHARDS`]. Stable across
/// processes, builds and platforms (unlike `std`'s `DefaultHasher`), so every replica agrees.
pub fn shard_of(name: &str) -> u32 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in name.as_bytes() {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    u32::try_from(h % u64::from(SHARDS)).unwrap_or(0)
}

/// A shard this replica holds: its number and the epoch of its term.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, sqlx::FromRow)]
pub struct HeldShard {
    /// Shard number, `0..SHARDS`.
    pub shard: i64,
    /// The term's epoch (grows by one at every acquisition of the shard, by anyone).
    pub epoch: i64,
}

/// One row of `shard_leases`, for the API and tests.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ShardLease {
    /// Shard number.
    pub shard: i64,
    /// Holder (a replica name), `None` when free.
    pub owner: Option<String>,
    /// Epoch of the last acquisition.
    pub epoch: i64,
    /// Expiry, Unix ms on the database's clock (0 when released).
    pub expires_ms: i64,
}

/// What a fenced write is conditional on: `owner` must still hold each op's shard at the op's epoch.
#[derive(Debug, Clone, Copy)]
pub struct Fence<'a> {
    /// This replica's name.
    pub owner: &'a str,
    /// Per op, in the same order: the shard and the epoch it was probed under.
    pub terms: &'a [HeldShard],
}

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}

impl Store {
    /// Records that `replica` is alive until now + `ttl` (the database's clock), forgets replicas silent for
    /// a minute, and returns how many replicas are alive (at least 1: this one).
    pub async fn heartbeat_replica(&self, replica: &str, ttl: Duration) -> Result<i64, StoreError> {
        let (upsert, forget, count) = match self.backend() {
            Backend::Postgres => (
                concat!(
                    "INSERT INTO replicas (replica, expires_ms) VALUES ($1, ",
                    db_now!(pg),
                    " + $2) ",
                    "ON CONFLICT (replica) DO UPDATE SET expires_ms = excluded.expires_ms"
                ),
                concat!(
                    "DELETE FROM replicas WHERE expires_ms < ",
                    db_now!(pg),
                    " - 60000"
                ),
                concat!(
                    "SELECT COUNT(*) FROM replicas WHERE expires_ms >= ",
                    db_now!(pg)
                ),
            ),
            Backend::Sqlite => (
                concat!(
                    "INSERT INTO replicas (replica, expires_ms) VALUES ($1, ",
                    db_now!(sqlite),
                    " + $2) ",
                    "ON CONFLICT (replica) DO UPDATE SET expires_ms = excluded.expires_ms"
                ),
                concat!(
                    "DELETE FROM replicas WHERE expires_ms < ",
                    db_now!(sqlite),
                    " - 60000"
                ),
                concat!(
                    "SELECT COUNT(*) FROM replicas WHERE expires_ms >= ",
                    db_now!(sqlite)
                ),
            ),
        };
        let n: i64 = with_pool!(self, pool => {
            sqlx::query(upsert).bind(replica).bind(ms(ttl)).execute(pool).await?;
            sqlx::query(forget).execute(pool).await?;
            sqlx::query_scalar(count).fetch_one(pool).await?
        });
        Ok(n.max(1))
    }

    /// The other replicas alive now (names), for refusing a second process on SQLite.
    pub async fn other_live_replicas(&self, replica: &str) -> Result<Vec<String>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => concat!(
                "SELECT replica FROM replicas WHERE replica <> $1 AND expires_ms >= ",
                db_now!(pg)
            ),
            Backend::Sqlite => concat!(
                "SELECT replica FROM replicas WHERE replica <> $1 AND expires_ms >= ",
                db_now!(sqlite)
            ),
        };
        let v: Vec<String> = with_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(replica).fetch_all(pool).await?
        });
        Ok(v)
    }

    /// Forgets `replica` (a graceful stop), so the others' fair share grows at their next round.
    pub async fn forget_replica(&self, replica: &str) -> Result<(), StoreError> {
        with_pool!(self, pool => {
            sqlx::query("DELETE FROM replicas WHERE replica = $1").bind(replica).execute(pool).await?;
        });
        Ok(())
    }

    /// Renews every lease `owner` still holds (same owner, not expired) until now + `ttl`, and returns them
    /// with their epochs (unchanged by a renewal). A lease that expired is not renewed: it is lost, even if
    /// nobody took it yet (River's `LeaderAttemptReelect` rule).
    pub async fn renew_shards(
        &self,
        owner: &str,
        ttl: Duration,
    ) -> Result<Vec<HeldShard>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => concat!(
                "UPDATE shard_leases SET expires_ms = ",
                db_now!(pg),
                " + $2 ",
                "WHERE owner = $1 AND expires_ms >= ",
                db_now!(pg),
                " RETURNING shard, epoch"
            ),
            Backend::Sqlite => concat!(
                "UPDATE shard_leases SET expires_ms = ",
                db_now!(sqlite),
                " + $2 ",
                "WHERE owner = $1 AND expires_ms >= ",
                db_now!(sqlite),
                " RETURNING shard, epoch"
            ),
        };
        let mut v: Vec<HeldShard> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(owner).bind(ms(ttl)).fetch_all(pool).await?
        });
        v.sort();
        Ok(v)
    }

    /// Takes up to `want` free or expired shards for `owner` until now + `ttl`, each with its epoch bumped;
    /// `owner`'s own lapsed leases first (after a database outage a replica takes its shards back, so the
    /// results it buffered meanwhile stay writable), then by shard number.
    /// On PostgreSQL the candidates are locked `FOR UPDATE SKIP LOCKED`, so replicas acquiring at once take
    /// different shards instead of queueing on the same rows; the outer `WHERE` re-checks expiry.
    pub async fn acquire_shards(
        &self,
        owner: &str,
        want: i64,
        ttl: Duration,
    ) -> Result<Vec<HeldShard>, StoreError> {
        if want <= 0 {
            return Ok(Vec::new());
        }
        let sql = match self.backend() {
            Backend::Postgres => concat!(
                "UPDATE shard_leases SET owner = $1, epoch = epoch + 1, expires_ms = ",
                db_now!(pg),
                " + $2 ",
                "WHERE shard IN (SELECT shard FROM shard_leases WHERE expires_ms < ",
                db_now!(pg),
                " ORDER BY CASE WHEN owner = $1 THEN 0 ELSE 1 END, shard LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 AND expires_ms < ",
                db_now!(pg),
                " RETURNING shard, epoch"
            ),
            Backend::Sqlite => concat!(
                "UPDATE shard_leases SET owner = $1, epoch = epoch + 1, expires_ms = ",
                db_now!(sqlite),
                " + $2 ",
                "WHERE shard IN (SELECT shard FROM shard_leases WHERE expires_ms < ",
                db_now!(sqlite),
                " ORDER BY CASE WHEN owner = $1 THEN 0 ELSE 1 END, shard LIMIT $3) AND expires_ms < ",
                db_now!(sqlite),
                " RETURNING shard, epoch"
            ),
        };
        let mut v: Vec<HeldShard> = with_pool!(self, pool => {
            sqlx::query_as(sql).bind(owner).bind(ms(ttl)).bind(want).fetch_all(pool).await?
        });
        v.sort();
        Ok(v)
    }

    /// Gives up `shard` (when `Some`) or every shard `owner` holds, at once: the next acquirer need not wait
    /// for expiry. The epoch stays; the next acquisition bumps it. Returns how many were released.
    pub async fn release_shards(&self, owner: &str, shard: Option<i64>) -> Result<u64, StoreError> {
        let n = with_pool!(self, pool => {
            match shard {
                Some(s) => sqlx::query(
                    "UPDATE shard_leases SET owner = NULL, expires_ms = 0 WHERE owner = $1 AND shard = $2",
                )
                .bind(owner)
                .bind(s)
                .execute(pool)
                .await?
                .rows_affected(),
                None => sqlx::query("UPDATE shard_leases SET owner = NULL, expires_ms = 0 WHERE owner = $1")
                    .bind(owner)
                    .execute(pool)
                    .await?
                    .rows_affected(),
            }
        });
        Ok(n)
    }

    /// Milliseconds (database clock) until the earliest expiry of a lease held by another replica, if any is
    /// held and not yet expired.
    pub async fn next_foreign_expiry_ms(&self, owner: &str) -> Result<Option<i64>, StoreError> {
        let sql = match self.backend() {
            Backend::Postgres => concat!(
                "SELECT MIN(expires_ms) - ",
                db_now!(pg),
                " FROM shard_leases ",
                "WHERE owner IS NOT NULL AND owner <> $1 AND expires_ms >= ",
                db_now!(pg)
            ),
            Backend::Sqlite => concat!(
                "SELECT MIN(expires_ms) - ",
                db_now!(sqlite),
                " FROM shard_leases ",
                "WHERE owner IS NOT NULL AND owner <> $1 AND expires_ms >= ",
                db_now!(sqlite)
            ),
        };
        let v: Option<i64> = with_pool!(self, pool => {
            sqlx::query_scalar(sql).bind(owner).fetch_one(pool).await?
        });
        Ok(v)
    }

    /// Every shard lease, by shard number.
    pub async fn shard_leases(&self) -> Result<Vec<ShardLease>, StoreError> {
        let v = with_pool!(self, pool => {
            sqlx::query_as("SELECT shard, owner, epoch, expires_ms FROM shard_leases ORDER BY shard")
                .fetch_all(pool)
                .await?
        });
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_are_stable_and_spread() {
        // Fixed values: a change of hash would move every target to another shard across an upgrade.
        assert_eq!(
            shard_of(""),
            u32::try_from(0xcbf2_9ce4_8422_2325_u64 % 128).unwrap()
        );
        assert_eq!(shard_of("a"), shard_of("a"));
        let mut counts = [0_u32; SHARDS as usize];
        for i in 0..12_800 {
            counts[shard_of(&format!("t{i:05}")) as usize] += 1;
        }
        let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
        assert!(*min > 50 && *max < 150, "uneven spread: {min}..{max}");
    }
}

#[cfg(test)]
mod suite;
