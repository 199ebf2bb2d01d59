use http::{HeaderMap, HeaderValue, Method, StatusCode};

use super::*;

fn headers(values: &[&str]) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for v in values {
        headers.append(&IDEMPOTENCY_KEY, HeaderValue::from_str(v).unwrap());
    }
    headers
}

#[test]
fn keys_are_read_only_on_methods_that_are_not_idempotent() {
    let key = headers(&["order-1"]);
    assert_eq!(
        key_of(&Method::POST, &key),
        KeyHeader::Key("order-1".into())
    );
    assert_eq!(
        key_of(&Method::PATCH, &key),
        KeyHeader::Key("order-1".into())
    );
    for method in [Method::GET, Method::PUT, Method::DELETE, Method::HEAD] {
        assert_eq!(key_of(&method, &key), KeyHeader::Absent, "{method}");
    }
    assert_eq!(key_of(&Method::POST, &HeaderMap::new()), KeyHeader::Absent);
    let long = "k".repeat(MAX_KEY_LEN + 1);
    for bad in [&[""][..], &["a b"], &[long.as_str()], &["a", "b"]] {
        assert_eq!(
            key_of(&Method::POST, &headers(bad)),
            KeyHeader::Invalid,
            "{bad:?}"
        );
    }
    let max = "k".repeat(MAX_KEY_LEN);
    assert_eq!(
        key_of(&Method::POST, &headers(&[&max])),
        KeyHeader::Key(max)
    );
}

#[test]
fn a_key_runs_once_then_replays_and_is_bound_to_its_request() {
    let mut records = Vec::new();
    let post = "POST /orders";
    assert_eq!(decide(&records, "k", post, 100), Decision::Run);
    reserve(&mut records, "k", post, 100, None);
    assert_eq!(
        decide(&records, "k", post, 100 + LEASE - 1),
        Decision::InUse
    );
    assert_eq!(
        decide(&records, "k", post, 100 + LEASE),
        Decision::Run,
        "lapsed"
    );
    assert_eq!(
        decide(&records, "k", "POST /refunds", 101),
        Decision::Reused
    );
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    complete(&mut records, "k", StatusCode::CREATED, &h, b"{\"id\":7}");
    let Decision::Replay(answer) = decide(&records, "k", post, 10_000) else {
        panic!("a completed key replays")
    };
    let response = replay(&answer);
    assert_eq!(response.status(), StatusCode::CREATED);
    assert_eq!(response.headers()[&IDEMPOTENT_REPLAYED], "true");
    assert_eq!(
        response.headers()[http::header::CONTENT_TYPE],
        "application/json"
    );
}

#[test]
fn a_large_answer_is_replayed_without_its_body() {
    let mut records = Vec::new();
    reserve(&mut records, "k", "POST /", 1, None);
    complete(
        &mut records,
        "k",
        StatusCode::OK,
        &HeaderMap::new(),
        &[b'x'; MAX_STORED_BODY + 1],
    );
    let Decision::Replay(answer) = decide(&records, "k", "POST /", 2) else {
        panic!("replay")
    };
    assert_eq!(replay(&answer).headers()[&IDEMPOTENT_REPLAYED], "truncated");
}

#[test]
fn records_are_bounded_fit_the_size_limit_and_merge_by_key() {
    let mut records = Vec::new();
    for i in 0..(KEPT + 5) {
        let key = format!("k{i}");
        reserve(&mut records, &key, "POST /", 1, None);
        complete(
            &mut records,
            &key,
            StatusCode::OK,
            &HeaderMap::new(),
            &[b'x'; 1500],
        );
    }
    let mut data = SessionData::with_limit(12 * 1024);
    data.insert("cart", "apple").unwrap();
    stamp(&mut data, &records).unwrap();
    let kept = take(&mut data);
    assert!(
        !kept.is_empty() && kept.len() < KEPT,
        "{} fit in 12 KiB",
        kept.len()
    );
    assert_eq!(
        kept.last().unwrap().key,
        format!("k{}", KEPT + 4),
        "newest kept"
    );
    assert!(!data.contains_key(RECORDS_KEY));

    let theirs = vec![records[0].clone(), records[1].clone()];
    let mut ours = theirs.clone();
    reserve(&mut ours, "mine", "POST /", 5, None);
    let merged = merge(&theirs, &ours, Some("mine"));
    assert_eq!(merged.len(), 3);
    assert_eq!(merge(&theirs, &ours, None), theirs);
}

#[test]
fn a_reservation_knows_the_request_that_holds_it() {
    use foresight_core::attempt::Attempt;
    let mut records = Vec::new();
    let first = Attempt::first(9);
    reserve(&mut records, "k", "POST /", 1, Some(first));
    assert!(
        reserved_by(&records, "k", Some(first.next())),
        "a hedge of the same request"
    );
    assert!(
        !reserved_by(&records, "k", Some(Attempt::first(10))),
        "another request"
    );
    assert!(!reserved_by(&records, "k", None));
    assert!(!reserved_by(&records, "other", Some(first.next())));
}
