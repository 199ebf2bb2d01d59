//! The signals a forecaster tracks and how each is aggregated per step.

/// A load signal with its own bounded history and model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Signal {
    /// Requests per second: record `1.0` per request.
    RequestRate,
    /// Mean request latency in seconds: record each request's latency.
    Latency,
    /// Active sessions: record the current count whenever it changes.
    ActiveSessions,
    /// Errors per second: record `1.0` per failed request.
    Errors,
    /// Host CPU utilisation in percent (sampled through `sysinfo`).
    Cpu,
    /// Host memory in use, in bytes (sampled through `sysinfo`).
    Memory,
    /// Bytes received per second on all interfaces (sampled).
    NetworkIn,
    /// Bytes sent per second on all interfaces (sampled).
    NetworkOut,
}

/// How the values recorded during one step become one sample.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aggregation {
    /// Sum divided by the step length (events per second); an empty step
    /// is zero.
    Rate,
    /// Mean of the values; an empty step is a gap (NaN), filled by the
    /// model with the previous value.
    Mean,
    /// Mean of the values; an empty step repeats the previous sample (the
    /// gauge has not moved).
    Gauge,
}

pub(crate) const COUNT: usize = 8;

impl Signal {
    /// Every signal, in index order.
    pub const ALL: [Signal; COUNT] = [
        Signal::RequestRate,
        Signal::Latency,
        Signal::ActiveSessions,
        Signal::Errors,
        Signal::Cpu,
        Signal::Memory,
        Signal::NetworkIn,
        Signal::NetworkOut,
    ];

    /// The signal's name in metric labels.
    pub fn name(self) -> &'static str {
        match self {
            Signal::RequestRate => "request_rate",
            Signal::Latency => "latency",
            Signal::ActiveSessions => "active_sessions",
            Signal::Errors => "errors",
            Signal::Cpu => "cpu",
            Signal::Memory => "memory",
            Signal::NetworkIn => "network_in",
            Signal::NetworkOut => "network_out",
        }
    }

    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// How this signal is aggregated per step.
    pub fn aggregation(self) -> Aggregation {
        match self {
            Signal::RequestRate | Signal::Errors => Aggregation::Rate,
            Signal::Latency => Aggregation::Mean,
            Signal::ActiveSessions
            | Signal::Cpu
            | Signal::Memory
            | Signal::NetworkIn
            | Signal::NetworkOut => Aggregation::Gauge,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_all() {
        for (i, s) in Signal::ALL.iter().enumerate() {
            assert_eq!(s.index(), i);
        }
    }
}
