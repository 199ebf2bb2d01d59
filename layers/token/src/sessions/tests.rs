//! Unit tests of the session table.

use super::*;
use crate::claims::Audience;

fn claims(sid: &str, jti: &str, exp: u64) -> Claims {
    Claims {
        iss: "i".into(),
        sub: "u".into(),
        aud: Audience::One("a".into()),
        sid: sid.into(),
        jti: jti.into(),
        iat: 0,
        nbf: 0,
        exp,
        typ: "access".into(),
    }
}

#[test]
fn bounded_and_evicts_expired_sessions_first() {
    let table = SessionTable::new(16, 3600);
    for i in 0..200 {
        table.observe(&claims(&format!("s{i}"), "j", 100), 10, None, 30);
    }
    assert!(table.len() <= 16);
    // Once those expire, new sessions displace them.
    table.observe(&claims("fresh", "j", 1000), 200, None, 30);
    assert!(table.shard("fresh").contains_key("fresh"));
}

#[test]
fn a_token_ending_before_its_slot_is_refreshed_at_the_next_request_in_the_window() {
    let table = SessionTable::new(16, 3600);
    // A one-minute token ending at 160; the session's prefetch is
    // planned at 400 in a window from 100, for a token to 3,000.
    table.observe(&claims("s", "a", 160), 100, Some(10), 30);
    let plan = |merge_before| Planned {
        exp: 3000,
        window_start: 100,
        merge_before,
    };
    table.set_planned("s", plan(Some(400)));
    // Before the window nothing is due.
    let obs = table.observe(&claims("s", "a", 160), 99, Some(10), 30);
    assert!(obs.refresh.is_none());
    // Inside it, far from the margin, the planned token is issued now.
    let obs = table.observe(&claims("s", "a", 160), 120, Some(10), 30);
    assert!(obs.refresh.is_some() && obs.ahead_of_slot);
    assert_eq!(obs.planned_exp, Some(3000));
    table.cancel("s");
    // Not when merging is off, nor when the token outlasts the slot.
    table.set_planned("s", plan(None));
    let obs = table.observe(&claims("s", "a", 160), 121, Some(10), 30);
    assert!(obs.refresh.is_none());
    table.set_planned("s", plan(Some(150)));
    let obs = table.observe(&claims("s", "a", 160), 122, Some(10), 30);
    assert!(obs.refresh.is_none());
    // At the margin it is an ordinary refresh, with the planned token.
    let obs = table.observe(&claims("s", "a", 160), 150, Some(10), 30);
    assert!(obs.refresh.is_some() && !obs.ahead_of_slot);
    assert_eq!(obs.planned_exp, Some(3000));
}

#[test]
fn promotes_the_prefetched_token() {
    let table = SessionTable::new(16, 3600);
    assert!(
        table
            .observe(&claims("s", "a", 100), 10, Some(30), 30)
            .refresh
            .is_none()
    );
    let obs = table.observe(&claims("s", "a", 100), 80, Some(30), 30);
    assert!(obs.refresh.is_some());
    let next = IssuedToken {
        token: "t2".into(),
        jti: "b".into(),
        sid: "s".into(),
        nbf: 80,
        exp: 400,
    };
    table.complete("s", false, Some(&next));
    let obs = table.observe(&claims("s", "a", 100), 81, Some(30), 30);
    assert_eq!(obs.next_token.as_deref(), Some("t2"));
    let obs = table.observe(&claims("s", "b", 400), 82, Some(30), 30);
    assert!(obs.next_token.is_none() && obs.refresh.is_none());
}
