//! A recorded `timestamp,value` series.

use std::path::Path;

/// Why a trace could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TraceError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `YYYY-MM-DD HH:MM:SS,number`.
    #[error("line {line}: expected `YYYY-MM-DD HH:MM:SS,value`")]
    Format {
        /// The 1-based line number.
        line: usize,
    },
    /// Fewer than two samples, or timestamps not increasing.
    #[error("a trace needs at least two samples in increasing time order")]
    Shape,
    /// The trace is too short for the training days and the replayed day.
    #[error("the trace ends before the replay window does")]
    TooShort,
}

/// A `timestamp,value` series (as the Numenta Anomaly Benchmark stores
/// them), timestamps read as UTC.
#[derive(Debug, Clone)]
pub struct Trace {
    name: String,
    times: Vec<f64>,
    values: Vec<f64>,
    step: f64,
}

impl Trace {
    /// Parses CSV text with a header line and `YYYY-MM-DD HH:MM:SS,value`
    /// rows.
    pub fn parse(name: impl Into<String>, csv: &str) -> Result<Self, TraceError> {
        let mut times = Vec::new();
        let mut values = Vec::new();
        for (i, line) in csv.lines().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let (ts, value) = line
                .split_once(',')
                .ok_or(TraceError::Format { line: i + 1 })?;
            let time = parse_time(ts.trim()).ok_or(TraceError::Format { line: i + 1 })?;
            let value: f64 = value
                .trim()
                .parse()
                .ok()
                .filter(|v: &f64| v.is_finite())
                .ok_or(TraceError::Format { line: i + 1 })?;
            times.push(time);
            values.push(value);
        }
        if times.len() < 2 || times.windows(2).any(|w| w[1] <= w[0]) {
            return Err(TraceError::Shape);
        }
        let mut gaps: Vec<f64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        gaps.sort_by(f64::total_cmp);
        let step = gaps[gaps.len() / 2];
        Ok(Self {
            name: name.into(),
            times,
            values,
            step,
        })
    }

    /// Reads and parses a file; the trace is named after the file.
    pub fn load(path: &Path) -> Result<Self, TraceError> {
        let text = std::fs::read_to_string(path).map_err(|source| TraceError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let name = path.file_stem().map_or_else(
            || path.display().to_string(),
            |s| s.to_string_lossy().into_owned(),
        );
        Self::parse(name, &text)
    }

    /// The name (the file's stem).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Sample times, Unix seconds.
    pub fn times(&self) -> &[f64] {
        &self.times
    }

    /// Sample values.
    pub fn values(&self) -> &[f64] {
        &self.values
    }

    /// The usual time between samples (the median gap), seconds.
    pub fn step(&self) -> f64 {
        self.step
    }

    /// The value at `t`, interpolated linearly between samples (held
    /// outside them).
    pub fn value_at(&self, t: f64) -> f64 {
        let i = self.times.partition_point(|&x| x <= t);
        if i == 0 {
            return self.values[0];
        }
        if i == self.times.len() {
            return self.values[i - 1];
        }
        let (t0, t1) = (self.times[i - 1], self.times[i]);
        let f = (t - t0) / (t1 - t0);
        self.values[i - 1] * (1.0 - f) + self.values[i] * f
    }
}

/// The `q` quantile (nearest rank) of `values`; `NaN` when empty.
pub(crate) fn quantile(values: impl IntoIterator<Item = f64>, q: f64) -> f64 {
    let mut v: Vec<f64> = values.into_iter().collect();
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// `YYYY-MM-DD HH:MM:SS` (UTC) as Unix seconds.
fn parse_time(s: &str) -> Option<f64> {
    let (date, time) = s.split_once(' ')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.split(':').map(|p| p.parse::<i64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    Some((days_from_civil(y, m, day) * 86_400 + hh * 3600 + mm * 60 + ss) as f64)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
/// algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_timestamps_and_the_step() {
        let t = Trace::parse(
            "t",
            "timestamp,value\n2014-07-01 00:00:00,10\n2014-07-01 00:30:00,20\n2014-07-01 01:00:00,40\n",
        )
        .unwrap();
        assert_eq!(t.times()[0], 1_404_172_800.0);
        assert_eq!(t.step(), 1800.0);
        assert_eq!(t.value_at(1_404_172_800.0 + 900.0), 15.0);
        assert_eq!(t.value_at(0.0), 10.0);
        assert_eq!(t.value_at(2e9), 40.0);
    }

    #[test]
    fn rejects_malformed_rows() {
        let bad = Trace::parse("t", "timestamp,value\n2014-07-01,10\n");
        assert!(
            matches!(bad, Err(TraceError::Format { line: 2 })),
            "{bad:?}"
        );
        let backwards = Trace::parse(
            "t",
            "timestamp,value\n2014-07-01 01:00:00,1\n2014-07-01 00:00:00,2\n",
        );
        assert!(matches!(backwards, Err(TraceError::Shape)), "{backwards:?}");
    }

    #[test]
    fn quantiles_by_nearest_rank() {
        assert_eq!(quantile([3.0, 1.0, 2.0, 4.0], 0.5), 2.0);
        assert_eq!(quantile([3.0, 1.0, 2.0, 4.0], 0.99), 4.0);
        assert!(quantile([], 0.5).is_nan());
    }
}
