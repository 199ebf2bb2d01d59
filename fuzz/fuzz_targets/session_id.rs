//! `SessionId` parsing: any text either parses to an id that writes back
//! as the same text (lowercased) or is refused, never a panic.
#![no_main]

use foresight_store::SessionId;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(id) = text.parse::<SessionId>() {
        assert_eq!(id.to_string(), text.to_ascii_lowercase());
        assert_eq!(id.to_string().parse::<SessionId>(), Ok(id));
    }
});
