//! Fencing late attempts of a request.
//!
//! A routing tier may run one request more than once: a hedge, or a replay
//! after a timeout while the first attempt still runs. Each attempt carries
//! its request's id ([`ATTEMPT_HEADER`](foresight_core::attempt::ATTEMPT_HEADER)).
//! Every write records its attempt in the session, among the last
//! [`KEPT`] attempts that wrote it, under a key the handlers never see. A
//! write from an attempt of a request that another attempt already wrote is
//! skipped: that request's effect is in the store once, and a slow attempt
//! that finishes after the client's next request cannot lay its older write
//! over it. Requests without the header are not fenced, and carry the
//! record forward untouched.

use foresight_core::attempt::Attempt;
use foresight_store::{DataError, SessionData};
use serde_json::Value;

/// The session key under which the attempts that wrote it are kept.
pub(crate) const ATTEMPTS_KEY: &str = "__foresight_attempts";

/// How many writing attempts a session remembers. A late attempt is fenced
/// as long as its sibling's write is among them: fewer than this many
/// writes to the session between its sibling's and its own.
pub(crate) const KEPT: usize = 32;

/// Counted for each write skipped because another attempt of its request
/// already wrote.
pub(crate) const FENCED_WRITES: &str = "foresight_mirror_fenced_writes_total";

/// The attempts recorded in `data`, taken out of it, oldest first. A
/// malformed record is dropped: the worst case is one write not fenced.
pub(crate) fn take(data: &mut SessionData) -> Vec<Attempt> {
    match data.remove(ATTEMPTS_KEY) {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_str().and_then(Attempt::parse))
            .collect(),
        _ => Vec::new(),
    }
}

/// Whether another attempt of `attempt`'s request is among `recorded`.
pub(crate) fn sibling_wrote(recorded: &[Attempt], attempt: Option<Attempt>) -> bool {
    attempt.is_some_and(|ours| recorded.iter().any(|a| a.same_request(&ours)))
}

/// Puts the record back into `data`, with `attempt` appended, keeping the
/// last [`KEPT`].
pub(crate) fn stamp(
    data: &mut SessionData,
    recorded: &[Attempt],
    attempt: Option<Attempt>,
) -> Result<(), DataError> {
    let all: Vec<&Attempt> = recorded.iter().chain(attempt.as_ref()).collect();
    if all.is_empty() {
        return Ok(());
    }
    let kept = &all[all.len().saturating_sub(KEPT)..];
    let items = kept.iter().map(|a| Value::from(a.to_string())).collect();
    data.insert_value(ATTEMPTS_KEY, Value::Array(items))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_record_round_trips_is_bounded_and_hidden_from_the_data() {
        let mut data = SessionData::new();
        data.insert("cart", "apple").unwrap();
        let mut recorded = Vec::new();
        for request in 0..40u64 {
            stamp(&mut data, &recorded, Some(Attempt::first(request))).unwrap();
            recorded = take(&mut data);
            assert!(!data.contains_key(ATTEMPTS_KEY));
        }
        assert_eq!(recorded.len(), KEPT);
        assert_eq!(recorded[0], Attempt::first(40 - KEPT as u64));
        assert!(sibling_wrote(&recorded, Some(Attempt::first(39).next())));
        assert!(
            !sibling_wrote(&recorded, Some(Attempt::first(3).next())),
            "forgotten"
        );
        assert!(!sibling_wrote(&recorded, None));
        assert_eq!(
            data.get::<String>("cart").unwrap().as_deref(),
            Some("apple")
        );
    }

    #[test]
    fn a_malformed_record_is_dropped() {
        let mut data = SessionData::new();
        data.insert("__foresight_attempts", "not a list").unwrap();
        assert!(take(&mut data).is_empty());
        data.insert("__foresight_attempts", &["junk", "00000000000000aa.1"])
            .unwrap();
        assert_eq!(take(&mut data), vec![Attempt::first(0xaa).next()]);
    }
}
