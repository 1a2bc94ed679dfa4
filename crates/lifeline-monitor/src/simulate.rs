//! Simulated history, loaded through the store's own rollup path ([`crate::Store::apply_hourly`]): for the
//! benchmark (90 days × 10,000 targets), the browser test and demos. Deterministic for a given seed: each
//! target gets a base latency, hourly jitter and rare outages.

use crate::sketch::Bucket;
use crate::store::{HourRollup, Store, StoreError};

const HOUR_MS: i64 = 3_600_000;

/// A small deterministic generator (xorshift64*), so runs are reproducible without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// Seeded generator (a zero seed is replaced).
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    /// Next value in `[0, 1)`.
    pub fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One target's simulated hour: 60 probes (a 60 s interval), a latency spread around `base_ms`, and with
/// probability `outage_p` an outage of a random share of the hour.
pub fn hour_bucket(rng: &mut Rng, base_ms: f64, outage_p: f64) -> Bucket {
    let mut b = Bucket {
        total: 60,
        ..Bucket::default()
    };
    let down = if rng.next_f64() < outage_p {
        1 + (rng.next_f64() * 59.0) as u32
    } else {
        0
    };
    b.unhealthy = down;
    b.healthy = 60 - down;
    b.up = b.healthy;
    // Six latency groups per hour: enough spread for realistic p50/p95 at a fraction of the cost.
    let mut left = b.healthy;
    for i in 0..6 {
        if left == 0 {
            break;
        }
        let n = if i == 5 {
            left
        } else {
            (b.healthy / 6).max(1).min(left)
        };
        let tail = if i == 5 {
            2.5
        } else {
            1.0 + rng.next_f64() * 0.6
        };
        b.latency
            .record_n(base_ms * tail * (0.8 + rng.next_f64() * 0.4), n);
        left -= n;
    }
    b
}

/// Targets per transaction when loading history (bounds the memory of one batch).
const LOAD_CHUNK: usize = 1000;

/// Loads `days` days of history ending at the hour before `now_ms` for every id in `target_ids`: day by day
/// (so rows are appended in key order), up to 1,000 targets per transaction. Returns the hourly rollups written.
pub async fn load_history(
    store: &Store,
    target_ids: &[i64],
    days: i64,
    now_ms: i64,
    seed: u64,
) -> Result<u64, StoreError> {
    let last_hour = now_ms.div_euclid(HOUR_MS) - 1;
    let first_hour = last_hour - days * 24 + 1;
    let mut written = 0u64;
    let mut hour = first_hour;
    while hour <= last_hour {
        let day_end = ((hour.div_euclid(24) + 1) * 24).min(last_hour + 1);
        for chunk in target_ids.chunks(LOAD_CHUNK) {
            let mut batch =
                Vec::with_capacity(chunk.len() * usize::try_from(day_end - hour).unwrap_or(24));
            for &id in chunk {
                let mut rng = Rng::new(
                    seed ^ (u64::try_from(id).unwrap_or(0) << 20)
                        ^ u64::try_from(hour).unwrap_or(0),
                );
                let base = 20.0 + (u64::try_from(id).unwrap_or(0) % 17) as f64 * 12.0;
                for h in hour..day_end {
                    batch.push(HourRollup {
                        target_id: id,
                        hour: h,
                        bucket: hour_bucket(&mut rng, base, 0.004),
                    });
                }
            }
            written += batch.len() as u64;
            store.apply_hourly(&batch).await?;
        }
        hour = day_end;
    }
    Ok(written)
}
