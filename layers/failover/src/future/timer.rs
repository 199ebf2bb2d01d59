//! The timer of an attempt: it expires first at the hedge delay or the
//! attempt timeout, whichever comes first, and is armed only on the first
//! pending poll.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use pin_project_lite::pin_project;
use tokio::time::Sleep;

/// What a timer's expiry means.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Expiry {
    /// Time to hedge; the attempt timeout, if any, is `then` later.
    Hedge { then: Option<Duration> },
    /// The attempt timed out.
    Timeout,
}

pin_project! {
    #[project = TimerProj]
    pub(crate) enum Timer {
        Off,
        // Armed on the first pending poll, so an attempt that completes at
        // once never touches the timer wheel.
        Idle { after: Duration, expiry: Expiry },
        Armed { #[pin] sleep: Sleep, after: Duration, expiry: Expiry },
    }
}

impl Timer {
    /// A timer for an attempt with an optional `hedge` delay and an
    /// optional `timeout`: it first expires at whichever comes first.
    pub(crate) fn new(timeout: Option<Duration>, hedge: Option<Duration>) -> Self {
        match (hedge, timeout) {
            (Some(hedge), Some(timeout)) if hedge < timeout => Timer::Idle {
                after: hedge,
                expiry: Expiry::Hedge {
                    then: Some(timeout - hedge),
                },
            },
            (Some(hedge), None) => Timer::Idle {
                after: hedge,
                expiry: Expiry::Hedge { then: None },
            },
            (_, Some(timeout)) => Timer::Idle {
                after: timeout,
                expiry: Expiry::Timeout,
            },
            (_, None) => Timer::Off,
        }
    }

    pub(crate) fn poll_expired(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<(Duration, Expiry)> {
        loop {
            match self.as_mut().project() {
                TimerProj::Off => return Poll::Pending,
                TimerProj::Idle { after, expiry } => {
                    let (after, expiry) = (*after, *expiry);
                    self.set(Timer::Armed {
                        sleep: tokio::time::sleep(after),
                        after,
                        expiry,
                    });
                }
                TimerProj::Armed {
                    sleep,
                    after,
                    expiry,
                } => {
                    ready!(sleep.poll(cx));
                    return Poll::Ready((*after, *expiry));
                }
            }
        }
    }
}
