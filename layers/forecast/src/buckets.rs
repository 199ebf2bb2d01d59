//! The coarse, bounded history the seasonal model reads: the mean of each
//! fixed time bucket (5 minutes by default), placed by sample timestamps.

use crate::history::History;

/// Bucket means over a fixed-capacity ring. Samples are placed by their
/// timestamp. A bucket closes when it holds as many samples as fit in it
/// (one when a bucket is one step), or when a sample of a later bucket
/// arrives; a bucket without a finite sample is a gap (NaN), and skipped
/// buckets are gaps. A sample stamped in a bucket already closed is
/// dropped. Only closed buckets are read.
#[derive(Debug, Clone)]
pub(crate) struct Buckets {
    history: History,
    bucket: f64,
    /// Samples that fill a bucket.
    per_bucket: u32,
    /// Offset from a bucket's start to the mean time of its samples.
    offset: f64,
    /// Index (time / bucket) of the open bucket, its sum, finite count
    /// and sample count.
    open: Option<(i64, f64, u32, u32)>,
    /// Index of the newest closed bucket.
    closed: Option<i64>,
    /// Whether the newest sample closed its own bucket.
    fresh: bool,
}

impl Buckets {
    /// Buckets of `bucket` seconds filled with samples every `step`
    /// seconds, keeping `capacity` closed buckets.
    pub(crate) fn new(bucket: f64, step: f64, capacity: usize) -> Self {
        Self {
            history: History::new(capacity),
            bucket,
            per_bucket: ((bucket / step).round() as u32).max(1),
            offset: ((bucket - step) / 2.0).max(0.0),
            open: None,
            closed: None,
            fresh: false,
        }
    }

    /// Adds a sample taken at `time` (seconds since the Unix epoch).
    pub(crate) fn push(&mut self, time: f64, value: f64) {
        self.fresh = false;
        if !time.is_finite() {
            return;
        }
        let index = (time / self.bucket).floor() as i64;
        if self.closed.is_some_and(|c| index <= c) {
            return;
        }
        if let Some((open, ..)) = self.open
            && index > open
        {
            self.close();
        }
        let last = self.closed.or(self.open.map(|o| o.0 - 1));
        if self.open.is_none() {
            // Skipped buckets are gaps; more than a ring's worth leaves
            // nothing of the old history.
            let skipped = last.map_or(0, |c| (index - c - 1).max(0) as usize);
            for _ in 0..skipped.min(self.history.capacity()) {
                self.history.push(f64::NAN);
            }
            self.open = Some((index, 0.0, 0, 0));
        }
        if let Some((_, sum, finite, count)) = self.open.as_mut() {
            if value.is_finite() {
                *sum += value;
                *finite += 1;
            }
            *count += 1;
            if *count >= self.per_bucket {
                self.close();
                self.fresh = true;
            }
        }
    }

    fn close(&mut self) {
        if let Some((index, sum, finite, _)) = self.open.take() {
            let mean = if finite > 0 {
                sum / f64::from(finite)
            } else {
                f64::NAN
            };
            self.history.push(mean);
            self.closed = Some(index);
        }
    }

    /// Closed buckets kept.
    pub(crate) fn len(&self) -> usize {
        self.history.len()
    }

    /// Copies the closed buckets, oldest first.
    pub(crate) fn copy_into(&self, out: &mut Vec<f64>) {
        self.history.copy_into(out);
    }

    /// Copies the newest `n` closed buckets, oldest first.
    pub(crate) fn copy_tail(&self, n: usize, out: &mut Vec<f64>) {
        self.history.copy_tail(n, out);
    }

    /// The time the newest closed bucket stands for (the mean time of its
    /// samples), if one is closed.
    pub(crate) fn last_time(&self) -> Option<f64> {
        Some(self.closed? as f64 * self.bucket + self.offset)
    }

    /// Whether the newest sample closed its own bucket (so that the
    /// newest closed bucket is the newest sample when a bucket is a step).
    pub(crate) fn fresh(&self) -> bool {
        self.fresh
    }

    /// Seconds per bucket.
    pub(crate) fn bucket(&self) -> f64 {
        self.bucket
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn means_gaps_and_late_samples() {
        let mut b = Buckets::new(300.0, 100.0, 4);
        let mut out = Vec::new();
        b.push(0.0, 1.0);
        b.push(100.0, 3.0);
        assert_eq!((b.len(), b.last_time()), (0, None));
        // The third sample fills the bucket (a NaN is a sample, not a value).
        b.push(200.0, f64::NAN);
        assert!(b.fresh());
        b.copy_into(&mut out);
        assert_eq!(out, [2.0]);
        assert_eq!(b.last_time(), Some(100.0));
        // A late sample is dropped; a later bucket stays open until full
        // or until a sample of a later bucket arrives.
        b.push(250.0, 50.0);
        b.push(300.0, 10.0);
        b.push(400.0, 20.0);
        assert!(!b.fresh());
        assert_eq!(b.len(), 1);
        // Two buckets skipped: the open one closes, two gaps follow.
        b.push(1_250.0, 7.0);
        b.copy_into(&mut out);
        assert_eq!(out.len(), 4);
        assert_eq!(out[..2], [2.0, 15.0]);
        assert!(out[2].is_nan() && out[3].is_nan());
        // A jump beyond the capacity keeps the ring bounded.
        b.push(1.0e9, 1.0);
        assert_eq!(b.len(), 4);
    }

    /// One sample per bucket: each push closes its bucket.
    #[test]
    fn a_bucket_of_one_step_closes_at_once() {
        let mut b = Buckets::new(1_800.0, 1_800.0, 10);
        b.push(3_600.0, 5.0);
        assert!(b.fresh());
        assert_eq!(b.last_time(), Some(3_600.0));
        b.push(5_400.0, 6.0);
        let mut out = Vec::new();
        b.copy_into(&mut out);
        assert_eq!(out, [5.0, 6.0]);
    }
}
