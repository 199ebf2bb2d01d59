use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::HeaderValue;

use crate::clock::SharedClock;

#[derive(Clone, Debug)]
struct Held {
    authorization: HeaderValue,
    jti: Option<String>,
    exp: u64,
}

#[derive(Debug, Default)]
struct Slots {
    active: Option<Held>,
    next: Option<Held>,
}

/// The active and the pre-fetched token of one session. Clones share the
/// slots (the layer, the WebSocket task and the application).
#[derive(Clone)]
pub struct TokenSlots {
    slots: Arc<Mutex<Slots>>,
    clock: SharedClock,
    skew: u64,
    delivered: Arc<Notify>,
    connected: Arc<AtomicBool>,
    retry_wait: Duration,
}

impl fmt::Debug for TokenSlots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let slots = self.lock();
        f.debug_struct("TokenSlots")
            .field("active_exp", &slots.active.as_ref().map(|h| h.exp))
            .field("next_exp", &slots.next.as_ref().map(|h| h.exp))
            .field("skew", &self.skew)
            .finish()
    }
}

#[derive(serde::Deserialize)]
struct Times {
    exp: Option<u64>,
    jti: Option<String>,
}

/// `exp` and `jti` of a token, read without verification: the client only
/// schedules with them, the server verifies.
fn times(token: &str) -> Option<Times> {
    let payload = token.split('.').nth(1)?;
    let json = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&json).ok()
}

impl TokenSlots {
    /// Empty slots; the first [`deliver`](Self::deliver) becomes active.
    pub fn new(clock: SharedClock) -> Self {
        Self {
            slots: Arc::default(),
            clock,
            skew: 5,
            delivered: Arc::new(Notify::new()),
            connected: Arc::new(AtomicBool::new(false)),
            retry_wait: Duration::from_secs(2),
        }
    }

    /// How long a request answered 401 `invalid_token`, with no
    /// pre-fetched token in hand, waits for one to be pushed before it is
    /// retried (default 2 s; only while a WebSocket connection is open).
    #[must_use]
    pub fn with_retry_wait(mut self, wait: Duration) -> Self {
        self.retry_wait = wait;
        self
    }

    pub(crate) fn set_connected(&self, connected: bool) {
        self.connected.store(connected, Ordering::Release);
    }

    /// A wait for a pushed token, if one is worth waiting for.
    pub(crate) fn wait_for_delivery(&self) -> Option<Pin<Box<dyn Future<Output = ()> + Send>>> {
        if self.retry_wait.is_zero() || !self.connected.load(Ordering::Acquire) {
            return None;
        }
        // Registered before the check, so a delivery in between is not
        // missed.
        let mut notified = Box::pin(self.delivered.clone().notified_owned());
        notified.as_mut().enable();
        if self.has_next() {
            return None;
        }
        let wait = self.retry_wait;
        Some(Box::pin(async move {
            let _ = tokio::time::timeout(wait, notified).await;
        }))
    }

    /// Switches this long before the active token's `exp` (default 5 s).
    #[must_use]
    pub fn with_skew(mut self, skew: Duration) -> Self {
        self.skew = skew.as_secs();
        self
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Slots> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes a token: the active one if there is none, else the pre-fetched
    /// one if it lives at least as long as what is held. Returns whether it
    /// was kept.
    pub fn deliver(&self, token: &str) -> bool {
        let Ok(authorization) = HeaderValue::from_str(&format!("Bearer {token}")) else {
            return false;
        };
        let times = times(token);
        let held = Held {
            authorization,
            jti: times.as_ref().and_then(|t| t.jti.clone()),
            exp: times.and_then(|t| t.exp).unwrap_or(u64::MAX),
        };
        let mut slots = self.lock();
        let same = |h: &Option<Held>| {
            h.as_ref()
                .is_some_and(|h| h.authorization == held.authorization)
        };
        if same(&slots.active) || same(&slots.next) {
            return false;
        }
        match (&slots.active, &slots.next) {
            (None, _) => slots.active = Some(held),
            // A token issued in the same second as the one it replaces has
            // the same `exp`: still a replacement.
            (Some(active), None) if held.exp >= active.exp => slots.next = Some(held),
            (Some(_), Some(next)) if held.exp >= next.exp => slots.next = Some(held),
            _ => return false,
        }
        drop(slots);
        self.delivered.notify_waiters();
        true
    }

    /// The `Authorization` value to send now, switching to the pre-fetched
    /// token if the active one is about to expire.
    pub fn authorization(&self) -> Option<HeaderValue> {
        let now = self.clock.unix_secs();
        let mut slots = self.lock();
        let expiring = slots
            .active
            .as_ref()
            .is_none_or(|a| a.exp <= now.saturating_add(self.skew));
        if expiring && slots.next.is_some() {
            slots.active = slots.next.take();
        }
        slots.active.as_ref().map(|a| a.authorization.clone())
    }

    /// After a 401 `invalid_token` for `used`: switches to the pre-fetched
    /// token and returns it, or `None` if there is nothing else to try.
    pub fn rejected(&self, used: &HeaderValue) -> Option<HeaderValue> {
        let mut slots = self.lock();
        if slots
            .active
            .as_ref()
            .is_some_and(|a| a.authorization == *used)
        {
            let next = slots.next.take()?;
            slots.active = Some(next);
        }
        slots
            .active
            .as_ref()
            .map(|a| a.authorization.clone())
            .filter(|a| a != used)
    }

    /// Forgets both tokens (after a session revocation).
    pub fn clear(&self) {
        *self.lock() = Slots::default();
    }

    /// `jti` and `exp` of the active token.
    pub fn active(&self) -> Option<(Option<String>, u64)> {
        self.lock().active.as_ref().map(|a| (a.jti.clone(), a.exp))
    }

    /// Whether a pre-fetched token is waiting.
    pub fn has_next(&self) -> bool {
        self.lock().next.is_some()
    }
}
