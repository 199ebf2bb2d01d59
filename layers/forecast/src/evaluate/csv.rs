//! Reading NAB-format CSV files.

use std::path::Path;

use thiserror::Error;

/// Errors reading a series.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The file could not be read.
    #[error("cannot read {path}")]
    Io {
        /// The file.
        path: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// A line is not `timestamp,value`.
    #[error("{path}:{line}: expected `YYYY-MM-DD HH:MM:SS,value`")]
    Parse {
        /// The file.
        path: String,
        /// One-based line number.
        line: usize,
    },
}

/// One series: values and their times (seconds since the Unix epoch).
#[derive(Debug, Clone)]
pub struct Series {
    /// A name for reports (the file stem).
    pub name: String,
    /// Sample values, oldest first.
    pub values: Vec<f64>,
    /// Sample times, seconds since the Unix epoch, UTC.
    pub times: Vec<f64>,
}

/// Reads a NAB CSV file (`timestamp,value` with a header line).
pub fn read_csv(path: &Path) -> Result<Series, EvalError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Io {
        path: shown.clone(),
        source,
    })?;
    let mut values = Vec::new();
    let mut times = Vec::new();
    for (i, line) in text.lines().enumerate().skip(1) {
        if line.trim().is_empty() {
            continue;
        }
        let bad = || EvalError::Parse {
            path: shown.clone(),
            line: i + 1,
        };
        let (ts, v) = line.split_once(',').ok_or_else(bad)?;
        times.push(parse_timestamp(ts.trim()).ok_or_else(bad)?);
        values.push(v.trim().parse::<f64>().map_err(|_| bad())?);
    }
    let name = path
        .file_stem()
        .map_or_else(|| shown.clone(), |s| s.to_string_lossy().into_owned());
    Ok(Series {
        name,
        values,
        times,
    })
}

/// Parses `YYYY-MM-DD HH:MM:SS` (UTC) into seconds since the Unix epoch.
pub fn parse_timestamp(s: &str) -> Option<f64> {
    let (date, time) = s.split_once([' ', 'T'])?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let mut t = time.splitn(3, ':').map(|p| p.parse::<f64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next().flatten().unwrap_or(0.0));
    if !(1..=12).contains(&m) || !(1..=31).contains(&day) {
        return None;
    }
    // Days from the civil date (proleptic Gregorian), after H. Hinnant.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days as f64 * 86_400.0 + hh * 3600.0 + mm * 60.0 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("1970-01-01 00:00:00"), Some(0.0));
        assert_eq!(
            parse_timestamp("2014-02-14 14:30:00"),
            Some(1_392_388_200.0)
        );
        assert_eq!(parse_timestamp("2000-03-01 00:00:01"), Some(951_868_801.0));
        assert_eq!(parse_timestamp("garbage"), None);
    }
}
