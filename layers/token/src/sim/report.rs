//! The tables and figures of a replay.

use super::replay::Replay;
use super::run::{Mode, Outcome};

/// Every row of one trace, and the forecaster's warning before each onset.
#[derive(Debug, Clone)]
pub struct TraceReport {
    /// The trace's name.
    pub name: String,
    /// One outcome per mode, in [`Mode::ALL`] order where run.
    pub outcomes: Vec<Outcome>,
    /// Each onset in the replay (trace time) and how long before it (trace
    /// seconds) the learned forecaster first predicted it, continuously up
    /// to the onset; `None`: not predicted when it came.
    pub leads: Vec<(f64, Option<f64>)>,
}

impl TraceReport {
    /// Gathers the outcomes of one trace.
    pub fn new(replay: &Replay, outcomes: Vec<Outcome>) -> Self {
        let leads = outcomes
            .iter()
            .find(|o| o.mode == Mode::Predictive)
            .map(|o| lead_times(replay, o))
            .unwrap_or_default();
        Self {
            name: replay.trace().name().to_owned(),
            outcomes,
            leads,
        }
    }

    /// The outcome of `mode`, if it ran.
    pub fn get(&self, mode: Mode) -> Option<&Outcome> {
        self.outcomes.iter().find(|o| o.mode == mode)
    }

    /// Peak reduction (1 s buckets) of the predictive row against `mode`.
    pub fn reduction_vs(&self, mode: Mode) -> Option<f64> {
        let p = self.get(Mode::Predictive)?.peak_1s.max(1) as f64;
        Some(self.get(mode)?.peak_1s as f64 / p)
    }

    /// Share of oracle: (reactive peak − predictive peak) / (reactive peak
    /// − oracle peak), 1 s buckets; 1 when the oracle gains nothing and
    /// neither does the forecaster.
    pub fn share_of_oracle(&self) -> Option<f64> {
        let r = self.get(Mode::Reactive)?.peak_1s as f64;
        let p = self.get(Mode::Predictive)?.peak_1s as f64;
        let o = self.get(Mode::Oracle)?.peak_1s as f64;
        Some(if r - o <= 0.0 {
            if p <= r { 1.0 } else { 0.0 }
        } else {
            (r - p) / (r - o)
        })
    }

    /// The Markdown table of this trace.
    pub fn table(&self) -> String {
        let mut t = String::from(
            "| mode | peak auth req/s (1 s) | peak auth req/s (10 s mean) | auth requests | client requests | waited | waited in a peak | 401s | failed refreshes | longest lifetime | wall |\n\
             |---|---|---|---|---|---|---|---|---|---|---|\n",
        );
        for o in &self.outcomes {
            t.push_str(&format!(
                "| {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} s | {:.0} s |\n",
                o.mode.name(),
                o.peak_1s,
                o.peak_10s,
                o.auth_total,
                o.requests,
                o.waited,
                o.waited_in_peak,
                o.unauthorized,
                o.failed_refreshes,
                o.longest_lifetime,
                o.wall.as_secs_f64(),
            ));
        }
        t
    }

    /// One line on the forecaster's warnings.
    pub fn leads_line(&self) -> String {
        if self.leads.is_empty() {
            return "no onset in the replayed window".to_owned();
        }
        let each: Vec<String> = self
            .leads
            .iter()
            .map(|(t, lead)| {
                let hhmm = format!(
                    "{:02}:{:02}",
                    (t.rem_euclid(86_400.0) / 3600.0) as u32,
                    (t.rem_euclid(3600.0) / 60.0) as u32
                );
                match lead {
                    Some(l) => format!("onset {hhmm} UTC predicted {:.1} h ahead", l / 3600.0),
                    None => format!("onset {hhmm} UTC not predicted"),
                }
            })
            .collect();
        each.join("; ")
    }
}

/// How long before each onset the alarms ran continuously up to it.
fn lead_times(replay: &Replay, o: &Outcome) -> Vec<(f64, Option<f64>)> {
    let c = replay.scenario().compression;
    replay
        .onsets()
        .into_iter()
        .map(|onset| {
            let at = (replay.to_sim(onset) - super::replay::SIM_T0 as f64) as i64;
            let before: Vec<&(i64, bool)> = o.alarms.iter().filter(|(s, _)| *s <= at).collect();
            let on_at_onset = before.last().is_some_and(|(_, a)| *a);
            let lead = on_at_onset.then(|| {
                let first = before
                    .iter()
                    .rev()
                    .take_while(|(_, a)| *a)
                    .last()
                    .map_or(at, |(s, _)| *s);
                (at - first) as f64 * c
            });
            (onset, lead)
        })
        .collect()
}

/// The closing line: means over `reports` of the predictive row's peak
/// reduction against the reactive and the jittered rows, and of its share
/// of the oracle's reduction.
pub fn summary(reports: &[TraceReport]) -> String {
    let mean = |f: &dyn Fn(&TraceReport) -> Option<f64>| {
        let v: Vec<f64> = reports.iter().filter_map(f).collect();
        if v.is_empty() {
            f64::NAN
        } else {
            v.iter().sum::<f64>() / v.len() as f64
        }
    };
    format!(
        "peak auth reduction vs reactive: {:.2}x; vs jittered: {:.2}x; share of oracle: {:.0}%",
        mean(&|r| r.reduction_vs(Mode::Reactive)),
        mean(&|r| r.reduction_vs(Mode::Jittered)),
        100.0 * mean(&|r| r.share_of_oracle()),
    )
}
