//! Messages pushed to the dual-token client over its WebSocket, through
//! `client::apply_pushed_message`, the handler `client::connect_websocket`
//! runs on every text message: JSON, a `token` handed to
//! `TokenSlots::deliver` (which reads the token's `exp` and `jti` without
//! verifying it), a `revoked` clearing the slots.
//!
//! The input is a sequence of messages separated by `\n`. No message may
//! panic, a revocation must leave the slots empty, and a delivered token
//! must be what the slots then hold.
#![no_main]

use std::sync::Arc;
use std::time::Duration;

use foresight_token::client::{PushedMessage, TokenSlots, apply_pushed_message};
use foresight_token::{ManualClock, SharedClock};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let clock: SharedClock = Arc::new(ManualClock::new(Duration::from_secs(1_700_000_000)));
    let slots = TokenSlots::new(clock);
    for message in text.split('\n') {
        match apply_pushed_message(&slots, message) {
            PushedMessage::Revoked => {
                assert!(slots.active().is_none());
                assert!(!slots.has_next());
            }
            PushedMessage::Delivered => assert!(slots.active().is_some()),
            PushedMessage::Ignored => {}
        }
        let _ = slots.authorization();
        let _ = format!("{slots:?}");
    }
});
