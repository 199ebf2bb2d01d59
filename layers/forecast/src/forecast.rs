//! The value a forecast read returns.

/// A point forecast with a prediction interval.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Forecast {
    /// Expected value.
    pub mean: f64,
    /// Lower bound of the prediction interval.
    pub lower: f64,
    /// Upper bound of the prediction interval.
    pub upper: f64,
}
