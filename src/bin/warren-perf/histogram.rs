//! Latency histogram.

use std::sync::Mutex;

use crate::stats::lock;

/// Log-linear histogram of nanosecond values: 128 linear sub-buckets per power of two, so a
/// reported percentile is within 0.8% of the true value. Fixed size (58 KiB); merging only
/// walks the range of buckets in use.
#[derive(Clone)]
pub(crate) struct Histogram {
    counts: Vec<u64>,
    total: u64,
    pub(crate) max: u64,
    lo: usize,
    hi: usize,
}

const SUB_BITS: u32 = 7;
const SUB: usize = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize + 1) * SUB;

impl Histogram {
    pub(crate) fn new() -> Histogram {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
            lo: BUCKETS,
            hi: 0,
        }
    }

    fn index(v: u64) -> usize {
        if v < SUB as u64 {
            v as usize
        } else {
            let shift = 63 - v.leading_zeros() - SUB_BITS;
            ((shift as usize + 1) << SUB_BITS) + ((v >> shift) as usize & (SUB - 1))
        }
    }

    /// The middle of bucket `i`.
    fn value(i: usize) -> u64 {
        if i < SUB {
            i as u64
        } else {
            let shift = (i >> SUB_BITS) - 1;
            let low = ((SUB + (i & (SUB - 1))) as u64) << shift;
            low + ((1u64 << shift) >> 1)
        }
    }

    pub(crate) fn record(&mut self, v: u64) {
        let i = Self::index(v);
        self.counts[i] += 1;
        self.total += 1;
        self.max = self.max.max(v);
        self.lo = self.lo.min(i);
        self.hi = self.hi.max(i);
    }

    pub(crate) fn merge(&mut self, other: &Histogram) {
        if other.total == 0 {
            return;
        }
        for i in other.lo..=other.hi {
            self.counts[i] += other.counts[i];
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
        self.lo = self.lo.min(other.lo);
        self.hi = self.hi.max(other.hi);
    }

    pub(crate) fn clear(&mut self) {
        if self.total > 0 {
            self.counts[self.lo..=self.hi].fill(0);
        }
        self.total = 0;
        self.max = 0;
        self.lo = BUCKETS;
        self.hi = 0;
    }

    /// Value at quantile `q` (0..=1), in ns; None when empty.
    pub(crate) fn percentile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for i in self.lo..=self.hi {
            seen += self.counts[i];
            if seen >= rank {
                return Some(Self::value(i).min(self.max));
            }
        }
        Some(self.max)
    }

    /// Moves the samples into `shared` (used by the tasks every 100 ms and at their end).
    pub(crate) fn flush_into(&mut self, shared: &Mutex<Histogram>) {
        if self.total > 0 {
            lock(shared).merge(self);
            self.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram() {
        let mut h = Histogram::new();
        for v in 1..=100_000u64 {
            h.record(v * 1000);
        }
        let p50 = h.percentile(0.5).unwrap() as f64;
        assert!((p50 / 50_000_000.0 - 1.0).abs() < 0.01, "{p50}");
        assert_eq!(h.max, 100_000_000);
        assert_eq!(Histogram::index(u64::MAX), BUCKETS - 1);
        for v in [0u64, 1, 127, 128, 255, 256, 1 << 40] {
            let i = Histogram::index(v);
            assert!(Histogram::value(i).abs_diff(v) <= v / 128 + 1, "{v}");
        }
    }
}
