//! What the stores read back from their backend: the data field of a Redis
//! session record (as `RedisStore` decodes it) and the invalidation
//! announcements caches exchange over a bus.
//!
//! Any bytes decode to data within the limit or to a `StoreError`; any
//! text parses to a bus event or to nothing, and a parsed event writes back
//! to text that parses to the same event. Never a panic.
#![no_main]

use foresight_store::BusEvent;
use foresight_store::decode::redis_data;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for limit in [64, 64 * 1024] {
        if let Ok(session) = redis_data(data, limit) {
            assert!(session.size() <= limit);
            assert_eq!(session.limit(), limit);
        }
    }
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match BusEvent::decode(text) {
        Some(BusEvent::Invalidate(invalidation)) => {
            let wire = invalidation.encode();
            assert_eq!(
                BusEvent::decode(&wire),
                Some(BusEvent::Invalidate(invalidation))
            );
        }
        Some(BusEvent::Heartbeat(beat)) => {
            let wire = BusEvent::encode_heartbeat(beat);
            assert_eq!(BusEvent::decode(&wire), Some(BusEvent::Heartbeat(beat)));
        }
        Some(BusEvent::Ack { to, seq, from }) => {
            let wire = BusEvent::encode_ack(to, seq, from);
            assert_eq!(
                BusEvent::decode(&wire),
                Some(BusEvent::Ack { to, seq, from })
            );
        }
        Some(BusEvent::Reset) | None => {}
    }
});
