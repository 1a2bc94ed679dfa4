//! Latency sketch: a fixed log-bucket histogram, so percentiles of merged hours and days are exact to the
//! bucket (each bucket spans a factor of 2^(1/8), about 9 %), and a rollup [`Bucket`] of verdict counts.
//!
//! Both have a compact binary form (varints, sparse buckets) stored as a blob in the same bytes on SQLite and
//! PostgreSQL; see `docs/monitor.md` §Storage for the sizes.

use std::fmt;

/// Buckets per doubling of latency.
const PER_OCTAVE: f64 = 8.0;
/// Number of buckets: bucket `i` holds latencies in `(2^((i-1)/8), 2^(i/8)]` ms; bucket 0 everything ≤ 1 ms;
/// the last (167) everything above ~1,900 s.
pub const BUCKETS: usize = 168;

/// A latency histogram over [`BUCKETS`] logarithmic buckets, in milliseconds. Sparse (only non-empty buckets,
/// sorted by index): an hour of one target usually fills a handful, so 10,000 targets × 90 days fit in memory.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    counts: Vec<(u8, u32)>,
}

impl fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.counts.iter().map(|(i, c)| (i, c)))
            .finish()
    }
}

/// Why a blob could not be decoded (a corrupt or foreign row).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed rollup blob: {0}")]
pub struct DecodeError(&'static str);

impl LatencyHistogram {
    /// The bucket index of `ms`.
    pub fn bucket_of(ms: f64) -> usize {
        if !ms.is_finite() || ms <= 1.0 {
            return 0;
        }
        let i = (ms.log2() * PER_OCTAVE).ceil();
        (i as usize).min(BUCKETS - 1)
    }

    /// The upper bound of bucket `i`, in ms.
    pub fn upper_bound(i: usize) -> f64 {
        2f64.powf(i as f64 / PER_OCTAVE)
    }

    fn add(&mut self, i: u8, n: u32) {
        match self.counts.binary_search_by_key(&i, |(j, _)| *j) {
            Ok(pos) => self.counts[pos].1 = self.counts[pos].1.saturating_add(n),
            Err(pos) => self.counts.insert(pos, (i, n)),
        }
    }

    /// Records one latency in ms.
    pub fn record(&mut self, ms: f64) {
        self.record_n(ms, 1);
    }

    /// Records `n` latencies of `ms` at once.
    pub fn record_n(&mut self, ms: f64, n: u32) {
        if n > 0 {
            // BUCKETS ≤ 256, so the index fits a byte.
            self.add(Self::bucket_of(ms) as u8, n);
        }
    }

    /// Adds every count of `other`.
    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (i, c) in &other.counts {
            self.add(*i, *c);
        }
    }

    /// Number of latencies recorded.
    pub fn count(&self) -> u64 {
        self.counts.iter().map(|(_, c)| u64::from(*c)).sum()
    }

    /// The `q` quantile (0 < q ≤ 1) in ms: the upper bound of the bucket holding the rank-`ceil(q·n)` latency,
    /// so the true value is at most this and above the previous bound. `None` when empty.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let n = self.count();
        if n == 0 {
            return None;
        }
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as u64).max(1);
        let mut seen = 0u64;
        for (i, c) in &self.counts {
            seen += u64::from(*c);
            if seen >= rank {
                return Some(Self::upper_bound(usize::from(*i)));
            }
        }
        Some(Self::upper_bound(BUCKETS - 1))
    }

    /// Appends the sparse binary form: count of non-empty buckets, then `(index: u8, count: varint)` pairs.
    pub fn encode(&self, out: &mut Vec<u8>) {
        put_varint(out, self.counts.len() as u64);
        for (i, c) in &self.counts {
            out.push(*i);
            put_varint(out, u64::from(*c));
        }
    }

    /// Reads the form written by [`LatencyHistogram::encode`].
    pub fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let n = get_varint(input)?;
        if n > BUCKETS as u64 {
            return Err(DecodeError("too many buckets"));
        }
        let mut h = LatencyHistogram {
            counts: Vec::with_capacity(n as usize),
        };
        for _ in 0..n {
            let (&i, rest) = input.split_first().ok_or(DecodeError("truncated"))?;
            *input = rest;
            if usize::from(i) >= BUCKETS {
                return Err(DecodeError("bucket index"));
            }
            let c = get_varint(input)?;
            h.add(i, u32::try_from(c).unwrap_or(u32::MAX));
        }
        Ok(h)
    }
}

/// The aggregate of the probes of one target over one hour or one day.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Probes.
    pub total: u32,
    /// Probes that counted as up (healthy, degraded, and `auth_required` where the target accepts it).
    pub up: u32,
    /// Probes per verdict.
    pub healthy: u32,
    /// See `healthy`.
    pub degraded: u32,
    /// See `healthy`.
    pub auth_required: u32,
    /// See `healthy`.
    pub unhealthy: u32,
    /// Latency of the usable probes (healthy and degraded): a failed probe's time says nothing of speed.
    pub latency: LatencyHistogram,
}

impl Bucket {
    /// Adds `other` into `self`; each count saturates at `u32::MAX`, as the histogram's do (a corrupt row
    /// decodes to huge counts, and merging it must not overflow).
    pub fn merge(&mut self, other: &Bucket) {
        self.total = self.total.saturating_add(other.total);
        self.up = self.up.saturating_add(other.up);
        self.healthy = self.healthy.saturating_add(other.healthy);
        self.degraded = self.degraded.saturating_add(other.degraded);
        self.auth_required = self.auth_required.saturating_add(other.auth_required);
        self.unhealthy = self.unhealthy.saturating_add(other.unhealthy);
        self.latency.merge(&other.latency);
    }

    /// Uptime as a fraction, `None` without probes.
    pub fn uptime(&self) -> Option<f64> {
        (self.total > 0).then(|| f64::from(self.up) / f64::from(self.total))
    }

    /// Appends the binary form: six varints then the histogram.
    pub fn encode(&self, out: &mut Vec<u8>) {
        for v in [
            self.total,
            self.up,
            self.healthy,
            self.degraded,
            self.auth_required,
            self.unhealthy,
        ] {
            put_varint(out, u64::from(v));
        }
        self.latency.encode(out);
    }

    /// Reads the form written by [`Bucket::encode`].
    pub fn decode(input: &mut &[u8]) -> Result<Self, DecodeError> {
        let mut next = || get_varint(input).map(|v| u32::try_from(v).unwrap_or(u32::MAX));
        let (total, up, healthy, degraded, auth_required, unhealthy) =
            (next()?, next()?, next()?, next()?, next()?, next()?);
        Ok(Bucket {
            total,
            up,
            healthy,
            degraded,
            auth_required,
            unhealthy,
            latency: LatencyHistogram::decode(input)?,
        })
    }
}

/// The 24 hourly buckets of one day (UTC), as stored in `rollup_day.hours`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DayHours(pub [Option<Bucket>; 24]);

impl DayHours {
    /// Binary form: a little-endian u32 bitmap of the hours present, then each present hour's [`Bucket`].
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        let mut bitmap = 0u32;
        for (h, b) in self.0.iter().enumerate() {
            if b.is_some() {
                bitmap |= 1 << h;
            }
        }
        out.extend_from_slice(&bitmap.to_le_bytes());
        for b in self.0.iter().flatten() {
            b.encode(&mut out);
        }
        out
    }

    /// Reads the form written by [`DayHours::encode`]; an empty blob is a day without hours.
    pub fn decode(blob: &[u8]) -> Result<Self, DecodeError> {
        let mut out = DayHours::default();
        if blob.is_empty() {
            return Ok(out);
        }
        let (head, mut rest) = blob
            .split_at_checked(4)
            .ok_or(DecodeError("truncated bitmap"))?;
        let bitmap = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        for h in 0..24 {
            if bitmap & (1 << h) != 0 {
                out.0[h] = Some(Bucket::decode(&mut rest)?);
            }
        }
        Ok(out)
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let (&b, rest) = input.split_first().ok_or(DecodeError("truncated varint"))?;
        *input = rest;
        v |= u64::from(b & 0x7f) << shift;
        if b & 0x80 == 0 {
            return Ok(v);
        }
    }
    Err(DecodeError("varint too long"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_exact_to_the_bucket() {
        let mut h = LatencyHistogram::default();
        for ms in 1..=1000 {
            h.record(f64::from(ms));
        }
        for (q, exact) in [(0.5, 500.0), (0.95, 950.0), (0.99, 990.0)] {
            let got = h.quantile(q).unwrap();
            assert!(
                got >= exact && got <= exact * 2f64.powf(1.0 / 8.0) + 1e-9,
                "{q}: {got}"
            );
        }
        assert_eq!(LatencyHistogram::default().quantile(0.5), None);
    }

    #[test]
    fn bucket_bounds_hold() {
        for ms in [0.0, 0.5, 1.0, 1.01, 7.3, 250.0, 9_999.0, 1e9, f64::NAN] {
            let i = LatencyHistogram::bucket_of(ms);
            if ms.is_finite() && ms > 1.0 && i < BUCKETS - 1 {
                assert!(ms <= LatencyHistogram::upper_bound(i) + 1e-9);
                assert!(ms > LatencyHistogram::upper_bound(i - 1));
            }
        }
    }

    #[test]
    fn codec_round_trips_and_is_small() {
        let mut b = Bucket {
            total: 60,
            up: 59,
            healthy: 58,
            degraded: 1,
            auth_required: 0,
            unhealthy: 1,
            ..Bucket::default()
        };
        for ms in [40.0, 41.0, 45.0, 300.0] {
            b.latency.record(ms);
        }
        let mut day = DayHours::default();
        day.0[3] = Some(b.clone());
        day.0[23] = Some(b.clone());
        let blob = day.encode();
        assert!(blob.len() < 40, "{}", blob.len());
        assert_eq!(DayHours::decode(&blob).unwrap(), day);
        assert!(DayHours::decode(&blob[..blob.len() - 1]).is_err());
        let mut merged = b.clone();
        merged.merge(&b);
        assert_eq!(merged.total, 120);
        assert_eq!(merged.latency.count(), 8);
    }

    #[test]
    fn merging_a_corrupt_row_saturates() {
        // Regression, found by `garbage_never_panics`: merging a bucket decoded from a corrupt blob (counts near
        // u32::MAX) overflowed and panicked in debug builds.
        let huge = Bucket {
            total: u32::MAX,
            up: u32::MAX - 1,
            ..Bucket::default()
        };
        let mut sum = huge.clone();
        sum.merge(&huge);
        assert_eq!(sum.total, u32::MAX);
        assert_eq!(sum.up, u32::MAX);
    }

    mod props {
        //! Property tests of the blob codec: every day round-trips, every truncation is an error, and garbage
        //! (a corrupt or foreign row) never panics, neither in decoding nor in merging what was decoded.

        use super::super::*;
        use proptest::prelude::*;

        fn histogram() -> impl Strategy<Value = LatencyHistogram> {
            let ms = prop_oneof![4 => 0.0..1e7f64, 1 => any::<f64>()];
            let n = prop_oneof![4 => 0..100u32, 1 => any::<u32>()];
            prop::collection::vec((ms, n), 0..24).prop_map(|samples| {
                let mut h = LatencyHistogram::default();
                for (ms, n) in samples {
                    h.record_n(ms, n);
                }
                h
            })
        }

        fn bucket() -> impl Strategy<Value = Bucket> {
            (any::<[u32; 6]>(), histogram()).prop_map(|(c, latency)| Bucket {
                total: c[0],
                up: c[1],
                healthy: c[2],
                degraded: c[3],
                auth_required: c[4],
                unhealthy: c[5],
                latency,
            })
        }

        fn day() -> impl Strategy<Value = DayHours> {
            prop::array::uniform24(prop::option::of(bucket())).prop_map(DayHours)
        }

        proptest! {
            #[test]
            fn days_round_trip_and_truncations_fail(
                day in day(),
                cuts in prop::collection::vec(any::<prop::sample::Index>(), 8),
            ) {
                let blob = day.encode();
                prop_assert_eq!(DayHours::decode(&blob), Ok(day.clone()));
                // Every prefix but the empty blob (a day without hours) is an error: a sample, and the last byte.
                let last = blob.len() - 1;
                for cut in cuts.iter().map(|i| 1 + i.index(last)).chain([last]) {
                    prop_assert!(DayHours::decode(&blob[..cut]).is_err(), "prefix of {} bytes decoded", cut);
                }
            }

            #[test]
            fn garbage_never_panics(
                blob in prop::collection::vec(
                    prop_oneof![3 => any::<u8>(), 1 => Just(0xffu8), 1 => Just(0x80u8), 1 => Just(0u8)],
                    0..512,
                ),
            ) {
                let Ok(day) = DayHours::decode(&blob) else { return Ok(()) };
                // What decodes is a fixed point of the codec, and can be merged and queried like any day.
                prop_assert_eq!(DayHours::decode(&day.encode()), Ok(day.clone()));
                let mut sum = Bucket::default();
                for b in day.0.iter().flatten() {
                    sum.merge(b);
                    sum.merge(b);
                    let _ = b.uptime();
                    let _ = b.latency.quantile(0.99);
                }
                prop_assert!(sum.latency.count() >= day.0.iter().flatten().map(|b| b.latency.count()).max().unwrap_or(0));
            }

            #[test]
            fn merged_counts_saturate(a in bucket(), b in bucket()) {
                let mut m = a.clone();
                m.merge(&b);
                prop_assert_eq!(m.total, a.total.saturating_add(b.total));
                prop_assert_eq!(m.unhealthy, a.unhealthy.saturating_add(b.unhealthy));
                let mut h = a.latency.clone();
                h.merge(&b.latency);
                prop_assert!(h.count() <= a.latency.count() + b.latency.count());
            }
        }
    }
}
