//! Host metrics through `sysinfo`: CPU, memory and network throughput.

use std::fmt;

use sysinfo::{Networks, System};

/// One reading of the host.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct HostSample {
    /// CPU utilisation over all cores, in percent.
    pub(crate) cpu: f64,
    /// Memory in use, in bytes.
    pub(crate) memory: f64,
    /// Bytes per second received since the previous reading.
    pub(crate) network_in: f64,
    /// Bytes per second sent since the previous reading.
    pub(crate) network_out: f64,
}

/// Keeps the `sysinfo` handles between readings (CPU usage and network
/// counters are differences against the previous refresh).
pub(crate) struct SystemSampler {
    system: System,
    networks: Networks,
}

impl fmt::Debug for SystemSampler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SystemSampler").finish_non_exhaustive()
    }
}

impl SystemSampler {
    pub(crate) fn new() -> Self {
        let mut system = System::new();
        system.refresh_cpu_usage();
        Self {
            system,
            networks: Networks::new_with_refreshed_list(),
        }
    }

    /// Reads the host; `elapsed_secs` is the time since the previous call.
    /// Blocking (it reads `/proc` on Linux): call it off the async workers.
    pub(crate) fn sample(&mut self, elapsed_secs: f64) -> HostSample {
        self.system.refresh_cpu_usage();
        self.system.refresh_memory();
        self.networks.refresh(true);
        let (rx, tx) = self
            .networks
            .list()
            .values()
            .fold((0u64, 0u64), |(r, t), n| {
                (r + n.received(), t + n.transmitted())
            });
        let per_sec = |bytes: u64| bytes as f64 / elapsed_secs.max(1e-3);
        HostSample {
            cpu: f64::from(self.system.global_cpu_usage()),
            memory: self.system.used_memory() as f64,
            network_in: per_sec(rx),
            network_out: per_sec(tx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_finite() {
        let mut s = SystemSampler::new();
        let r = s.sample(1.0);
        for v in [r.cpu, r.memory, r.network_in, r.network_out] {
            assert!(v.is_finite() && v >= 0.0);
        }
    }
}
