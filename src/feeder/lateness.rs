//! How late the feeder wakes: a histogram the feeder writes without allocating and the
//! status thread reads without a lock.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::time::duration_to_nanos;

/// How late the feeder woke, in a fixed histogram of atomics: recording allocates nothing,
/// and the status thread reads it without a lock. Buckets are log-linear over microseconds
/// (eight per power of two), so a quantile is known within 12.5 %.
#[derive(Debug)]
pub struct Lateness {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    max_ns: AtomicU64,
    sum_ns: AtomicU64,
}

const SUB: u32 = 8;
const BUCKETS: usize = 33 * SUB as usize;

impl Default for Lateness {
    fn default() -> Self {
        Lateness {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            count: AtomicU64::new(0),
            max_ns: AtomicU64::new(0),
            sum_ns: AtomicU64::new(0),
        }
    }
}

/// The bucket of `us` microseconds: values below 8 have one bucket each; above, each power
/// of two is cut in eight.
fn bucket_of(us: u32) -> usize {
    if us < SUB {
        return us as usize;
    }
    let octave = 31 - us.leading_zeros(); // >= 3
    let sub = (us >> (octave - 3)) & (SUB - 1);
    ((octave - 2) * SUB + sub) as usize
}

/// The largest value (in microseconds) that falls in bucket `b`.
fn bucket_upper(b: usize) -> u64 {
    let b = b as u64;
    let sub = u64::from(SUB);
    if b < sub {
        return b;
    }
    let octave = b / sub + 2;
    let low = (1u64 << octave) + (b % sub) * (1u64 << (octave - 3));
    low + (1u64 << (octave - 3)) - 1
}

impl Lateness {
    pub fn record(&self, late: Duration) {
        let us = u32::try_from(late.as_micros()).unwrap_or(u32::MAX);
        self.buckets[bucket_of(us).min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.max_ns
            .fetch_max(duration_to_nanos(late), Ordering::Relaxed);
        self.sum_ns
            .fetch_add(duration_to_nanos(late), Ordering::Relaxed);
    }

    /// The sum of every recorded lateness.
    pub fn sum(&self) -> Duration {
        Duration::from_nanos(self.sum_ns.load(Ordering::Relaxed))
    }

    /// Cumulative counts at each power of two from 16 us to 2^26 us (67 s, past any stall threshold): `(le_us, n)` where `n`
    /// wake-ups were less late than `le_us` microseconds. The log-linear buckets end exactly
    /// at these bounds, so the counts are exact.
    pub fn cumulative(&self) -> Vec<(u64, u64)> {
        let mut out = Vec::with_capacity(23);
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n.load(Ordering::Relaxed);
            let le = bucket_upper(i) + 1;
            if le >= 16 && le.is_power_of_two() && le <= 1 << 26 {
                out.push((le, seen));
            }
        }
        out
    }

    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    pub fn max(&self) -> Duration {
        Duration::from_nanos(self.max_ns.load(Ordering::Relaxed))
    }

    /// An upper bound on quantile `q` (0..=1): the top of the bucket that holds it.
    pub fn quantile_upper(&self, q: f64) -> Duration {
        let count = self.count();
        if count == 0 {
            return Duration::ZERO;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "q is within 0..=1, so the target is within 1..=count"
        )]
        let target = ((count as f64) * q).ceil().max(1.0) as u64;
        let mut seen = 0;
        for (i, n) in self.buckets.iter().enumerate() {
            seen += n.load(Ordering::Relaxed);
            if seen >= target {
                return Duration::from_micros(bucket_upper(i)).min(self.max());
            }
        }
        self.max()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lateness_quantiles_are_upper_bounds() {
        let l = Lateness::default();
        for us in [10u64, 20, 30, 5000] {
            l.record(Duration::from_micros(us));
        }
        assert_eq!(l.count(), 4);
        assert_eq!(l.max(), Duration::from_micros(5000));
        // The median (20 us) is known within one bucket: 20..=21 us.
        assert!(l.quantile_upper(0.5) >= Duration::from_micros(20));
        assert!(l.quantile_upper(0.5) <= Duration::from_micros(21));
        assert_eq!(l.quantile_upper(1.0), Duration::from_micros(5000));
        assert_eq!(l.sum(), Duration::from_micros(5060));
    }

    #[test]
    fn cumulative_counts_are_exact_at_powers_of_two() {
        let l = Lateness::default();
        for us in [10u64, 15, 16, 31, 32, 5000] {
            l.record(Duration::from_micros(us));
        }
        let c = l.cumulative();
        assert_eq!(c.first(), Some(&(16, 2)), "10 and 15 us are below 16 us");
        assert!(c.contains(&(32, 4)));
        assert!(c.contains(&(64, 5)));
        assert!(c.contains(&(8192, 6)));
        assert_eq!(c.last(), Some(&(1 << 26, 6)));
        assert_eq!(c.len(), 23);
    }

    #[test]
    fn lateness_buckets_cover_every_value_within_an_eighth() {
        for us in (0u32..70_000).chain([u32::MAX / 2, u32::MAX]) {
            let b = bucket_of(us);
            let upper = bucket_upper(b);
            assert!(
                u64::from(us) <= upper,
                "{us} above its bucket's top {upper}"
            );
            if b > 0 {
                assert!(
                    u64::from(us) > bucket_upper(b - 1),
                    "{us} belongs to a lower bucket"
                );
            }
            assert!(
                upper - u64::from(us) <= u64::from(us) / 8 + 1,
                "{us}: bucket top {upper} too far"
            );
        }
    }
}
