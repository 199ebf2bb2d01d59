//! The health state machine as a pure function: [`step`] maps a state and
//! an event to the next state and the one action the tracker then applies
//! (arm a drain, a probe or a backoff, clear figures, count). Which events
//! happen (a streak of failures, a slow probe, the ejection cap) is decided
//! by the tracker from its figures; what they do to the state is decided
//! here, and nowhere else.
//!
//! | state | event | next | action |
//! |---|---|---|---|
//! | Healthy | slowed (latency or prediction) | Degraded | drain |
//! | Degraded | probe due | Probing | probe (still serving) |
//! | Ejected | probe due (backoff over) | Probing | probe |
//! | Probing | probe passed | Healthy | readmit |
//! | Probing | probe slow | Degraded | none |
//! | Healthy, Degraded | failing, room under the cap | Ejected | eject |
//! | Healthy, Degraded | failing, no room | unchanged | suppress |
//! | Healthy, Degraded, Probing | probe failed, room | Ejected | eject |
//! | Healthy, Degraded, Probing | probe failed, no room | Degraded | suppress |
//! | Ejected | probe failed | Degraded | none |
//!
//! Every other pair changes nothing.

use foresight_core::HealthState::{self, Degraded, Ejected, Healthy, Probing};

/// Something that happened to an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Event {
    /// Slow responses in a row, or a predicted degradation.
    Slowed,
    /// The probe of an instance out of rotation is due.
    ProbeDue,
    /// A probe answered fast enough, with no prediction holding it out.
    ProbePassed,
    /// A probe answered, but slowly or while a prediction holds.
    ProbeSlow,
    /// The instance met an ejection rule; `room`: the maximum ejected share
    /// allows one more ejection.
    Failing { room: bool },
    /// A probe failed; `room` as for [`Event::Failing`].
    ProbeFailed { room: bool },
}

/// What the tracker does besides moving the state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    None,
    /// Start the drain of the instance's keys; count a degradation.
    Drain,
    /// Arm the probe (of a still-serving instance if `serving`); count it.
    Probe {
        serving: bool,
    },
    /// Clear the failure figures; count a readmission.
    Readmit,
    /// Arm the doubled ejection backoff; count an ejection.
    Eject,
    /// Count an ejection refused by the cap.
    Suppress,
}

/// The outcome of an event: the next state and the action.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    pub(crate) to: HealthState,
    pub(crate) action: Action,
}

const fn to(to: HealthState, action: Action) -> Option<Step> {
    Some(Step { to, action })
}

/// What `event` does to an instance in `state`; `None` when nothing.
pub(crate) fn step(state: HealthState, event: Event) -> Option<Step> {
    match (state, event) {
        (Healthy, Event::Slowed) => to(Degraded, Action::Drain),
        (Degraded, Event::ProbeDue) => to(Probing, Action::Probe { serving: true }),
        (Ejected, Event::ProbeDue) => to(Probing, Action::Probe { serving: false }),
        (Probing, Event::ProbePassed) => to(Healthy, Action::Readmit),
        (Probing, Event::ProbeSlow) => to(Degraded, Action::None),
        (Healthy | Degraded, Event::Failing { room: true }) => to(Ejected, Action::Eject),
        (Healthy | Degraded, Event::Failing { room: false }) => to(state, Action::Suppress),
        (Ejected, Event::ProbeFailed { .. }) => to(Degraded, Action::None),
        (_, Event::ProbeFailed { room: true }) => to(Ejected, Action::Eject),
        (_, Event::ProbeFailed { room: false }) => to(Degraded, Action::Suppress),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [HealthState; 4] = [Healthy, Degraded, Ejected, Probing];
    const EVENTS: [Event; 8] = [
        Event::Slowed,
        Event::ProbeDue,
        Event::ProbePassed,
        Event::ProbeSlow,
        Event::Failing { room: true },
        Event::Failing { room: false },
        Event::ProbeFailed { room: true },
        Event::ProbeFailed { room: false },
    ];

    /// The full table: every state and every event.
    #[test]
    fn the_table() {
        use Action as A;
        use Event as E;
        let t = |to: HealthState, action: Action| Some(Step { to, action });
        let expected: [(HealthState, Event, Option<Step>); 32] = [
            (Healthy, E::Slowed, t(Degraded, A::Drain)),
            (Healthy, E::ProbeDue, None),
            (Healthy, E::ProbePassed, None),
            (Healthy, E::ProbeSlow, None),
            (Healthy, E::Failing { room: true }, t(Ejected, A::Eject)),
            (Healthy, E::Failing { room: false }, t(Healthy, A::Suppress)),
            (Healthy, E::ProbeFailed { room: true }, t(Ejected, A::Eject)),
            (
                Healthy,
                E::ProbeFailed { room: false },
                t(Degraded, A::Suppress),
            ),
            (Degraded, E::Slowed, None),
            (
                Degraded,
                E::ProbeDue,
                t(Probing, A::Probe { serving: true }),
            ),
            (Degraded, E::ProbePassed, None),
            (Degraded, E::ProbeSlow, None),
            (Degraded, E::Failing { room: true }, t(Ejected, A::Eject)),
            (
                Degraded,
                E::Failing { room: false },
                t(Degraded, A::Suppress),
            ),
            (
                Degraded,
                E::ProbeFailed { room: true },
                t(Ejected, A::Eject),
            ),
            (
                Degraded,
                E::ProbeFailed { room: false },
                t(Degraded, A::Suppress),
            ),
            (Ejected, E::Slowed, None),
            (
                Ejected,
                E::ProbeDue,
                t(Probing, A::Probe { serving: false }),
            ),
            (Ejected, E::ProbePassed, None),
            (Ejected, E::ProbeSlow, None),
            (Ejected, E::Failing { room: true }, None),
            (Ejected, E::Failing { room: false }, None),
            (Ejected, E::ProbeFailed { room: true }, t(Degraded, A::None)),
            (
                Ejected,
                E::ProbeFailed { room: false },
                t(Degraded, A::None),
            ),
            (Probing, E::Slowed, None),
            (Probing, E::ProbeDue, None),
            (Probing, E::ProbePassed, t(Healthy, A::Readmit)),
            (Probing, E::ProbeSlow, t(Degraded, A::None)),
            (Probing, E::Failing { room: true }, None),
            (Probing, E::Failing { room: false }, None),
            (Probing, E::ProbeFailed { room: true }, t(Ejected, A::Eject)),
            (
                Probing,
                E::ProbeFailed { room: false },
                t(Degraded, A::Suppress),
            ),
        ];
        for (state, event, want) in expected {
            assert_eq!(step(state, event), want, "{state:?} + {event:?}");
        }
        // The table above covers every pair.
        assert_eq!(expected.len(), ALL.len() * EVENTS.len());
    }

    #[test]
    fn only_a_probe_enters_or_leaves_probing() {
        for state in ALL {
            for event in EVENTS {
                let Some(next) = step(state, event) else {
                    continue;
                };
                if next.to == Probing {
                    assert_eq!(event, Event::ProbeDue);
                }
                if state == Probing && next.to != Probing {
                    assert!(matches!(
                        event,
                        Event::ProbePassed | Event::ProbeSlow | Event::ProbeFailed { .. }
                    ));
                }
            }
        }
    }

    #[test]
    fn only_a_passing_probe_readmits() {
        for state in ALL {
            for event in EVENTS {
                if let Some(next) = step(state, event)
                    && next.to == Healthy
                    && state != Healthy
                {
                    assert_eq!((state, event), (Probing, Event::ProbePassed));
                    assert_eq!(next.action, Action::Readmit);
                }
            }
        }
    }
}
