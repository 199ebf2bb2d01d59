//! Idempotency keys, as Stripe's API has them: a client that retries a
//! request with the same `Idempotency-Key` gets the first answer again, and
//! the handler does not run a second time.
//!
//! For a request whose method is not idempotent (RFC 9110 §9.2.2: POST,
//! PATCH, …) that carries the header and a live session, the layer:
//! 1. loads the session and looks the key up among the session's records;
//! 2. a completed record answers at once with its stored status,
//!    `content-type` and body, plus `idempotent-replayed: true`; a record of
//!    the same key for another method or path is a 422; a record still
//!    running (another request with the key, for less than [`LEASE`]) is a
//!    409;
//! 3. otherwise it reserves the key with a compare-and-set, runs the
//!    handler, and saves the session's changes together with the answer,
//!    in one compare-and-set.
//!
//! The records live in the session (the last [`KEPT`], under a key the
//! handlers never see), so they are as durable and as consistent as the
//! session store, and they die with the session. A stored body is at most
//! [`MAX_STORED_BODY`] bytes; a larger answer is replayed with its status
//! and headers but an empty body, marked `idempotent-replayed: truncated`.
//! A request without a session, or without the header, is not deduplicated.
//! Keys are 1 to [`MAX_KEY_LEN`] visible ASCII characters; anything else is
//! a 400.

use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use bytes::Bytes;
use foresight_core::attempt::Attempt;
use foresight_store::{DataError, SessionData};
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Response, StatusCode, Uri};
use http_body_util::Full;
use serde::{Deserialize, Serialize};

/// The request header that names a request for deduplication.
pub static IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");

/// Set on an answer replayed from a record: `true`, or `truncated` when the
/// stored body was too large to keep.
pub static IDEMPOTENT_REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");

/// Longest key accepted.
pub const MAX_KEY_LEN: usize = 255;

/// Records kept per session, newest last.
pub const KEPT: usize = 10;

/// Largest answer body stored for replay.
pub const MAX_STORED_BODY: usize = 2 * 1024;

/// Largest answer body buffered at all; a larger one is a 500 (the request
/// was applied, but its answer cannot be both sent and kept).
pub const MAX_BUFFERED_BODY: usize = 1024 * 1024;

/// How long a reservation holds before another request with the key may
/// take it over (its first request died without an answer), in seconds.
pub const LEASE: u64 = 60;

/// The session key under which the records are kept.
pub(crate) const RECORDS_KEY: &str = "__foresight_idempotency";

/// What the request's header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum KeyHeader {
    /// No header, or an idempotent method: nothing to deduplicate.
    Absent,
    /// A valid key.
    Key(String),
    /// Empty, too long, repeated or not visible ASCII.
    Invalid,
}

/// The key of a request with a method that is not idempotent.
pub(crate) fn key_of(method: &Method, headers: &HeaderMap) -> KeyHeader {
    if method.is_idempotent() {
        return KeyHeader::Absent;
    }
    let mut values = headers.get_all(&IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return KeyHeader::Absent;
    };
    let bytes = value.as_bytes();
    if values.next().is_some()
        || bytes.is_empty()
        || bytes.len() > MAX_KEY_LEN
        || !bytes.iter().all(|b| b.is_ascii_graphic())
    {
        return KeyHeader::Invalid;
    }
    // Visible ASCII: valid UTF-8.
    KeyHeader::Key(String::from_utf8_lossy(bytes).into_owned())
}

/// What a request is, for telling a retry from a different request that
/// reuses its key.
pub(crate) fn request_of(method: &Method, uri: &Uri) -> String {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    format!("{method} {path}")
}

/// One key's record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Record {
    key: String,
    request: String,
    /// Unix seconds of the reservation.
    at: u64,
    /// The routing tier's request id of the reserving attempt, if tagged.
    attempt: Option<u64>,
    answer: Option<Answer>,
}

/// A stored answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Answer {
    status: u16,
    content_type: Option<String>,
    /// Base64.
    body: String,
    truncated: bool,
}

/// What to do with a keyed request.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Decision {
    Run,
    Replay(Answer),
    InUse,
    Reused,
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Looks `key` up among `records`.
pub(crate) fn decide(records: &[Record], key: &str, request: &str, now: u64) -> Decision {
    let Some(record) = records.iter().find(|r| r.key == key) else {
        return Decision::Run;
    };
    if record.request != request {
        return Decision::Reused;
    }
    match &record.answer {
        Some(answer) => Decision::Replay(answer.clone()),
        None if now < record.at.saturating_add(LEASE) => Decision::InUse,
        // The request that reserved it died without answering.
        None => Decision::Run,
    }
}

/// Reserves `key` for this request (replacing a lapsed reservation).
pub(crate) fn reserve(
    records: &mut Vec<Record>,
    key: &str,
    request: &str,
    now: u64,
    attempt: Option<Attempt>,
) {
    records.retain(|r| r.key != key);
    records.push(Record {
        key: key.to_owned(),
        request: request.to_owned(),
        at: now,
        attempt: attempt.map(|a| a.request()),
        answer: None,
    });
}

/// Whether `key` is reserved by another attempt of `attempt`'s request (a
/// hedge or a replay of it, which the caller waits for instead of refusing).
pub(crate) fn reserved_by(records: &[Record], key: &str, attempt: Option<Attempt>) -> bool {
    let Some(ours) = attempt else {
        return false;
    };
    records
        .iter()
        .any(|r| r.key == key && r.answer.is_none() && r.attempt == Some(ours.request()))
}

/// Stores the answer of `key`'s request.
pub(crate) fn complete(
    records: &mut [Record],
    key: &str,
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
) {
    let truncated = body.len() > MAX_STORED_BODY;
    let answer = Answer {
        status: status.as_u16(),
        content_type: headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        body: if truncated {
            String::new()
        } else {
            BASE64.encode(body)
        },
        truncated,
    };
    if let Some(record) = records.iter_mut().find(|r| r.key == key) {
        record.answer = Some(answer);
    }
}

/// The stored answer as a response.
pub(crate) fn replay(answer: &Answer) -> Response<Full<Bytes>> {
    let body = BASE64.decode(&answer.body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() =
        StatusCode::from_u16(answer.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    if let Some(value) = answer
        .content_type
        .as_deref()
        .and_then(|c| HeaderValue::from_str(c).ok())
    {
        headers.insert(CONTENT_TYPE, value);
    }
    let marker = if answer.truncated {
        "truncated"
    } else {
        "true"
    };
    headers.insert(&IDEMPOTENT_REPLAYED, HeaderValue::from_static(marker));
    response
}

/// The records kept in `data`, taken out of it. A malformed record set is
/// dropped.
pub(crate) fn take(data: &mut SessionData) -> Vec<Record> {
    data.remove(RECORDS_KEY)
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default()
}

/// `theirs` (the records of the session as stored) with `key`'s record
/// taken from `ours`: a request changes its own key's record only.
pub(crate) fn merge(theirs: &[Record], ours: &[Record], key: Option<&str>) -> Vec<Record> {
    let mut out: Vec<Record> = theirs
        .iter()
        .filter(|r| Some(r.key.as_str()) != key)
        .cloned()
        .collect();
    if let Some(record) = key.and_then(|k| ours.iter().find(|r| r.key == k)) {
        out.push(record.clone());
    }
    out
}

/// Puts the last [`KEPT`] records back into `data`, dropping the oldest
/// ones while the data would exceed its size limit.
pub(crate) fn stamp(data: &mut SessionData, records: &[Record]) -> Result<(), DataError> {
    let mut from = records.len().saturating_sub(KEPT);
    loop {
        let kept = &records[from..];
        if kept.is_empty() {
            return Ok(());
        }
        let value = serde_json::to_value(kept).expect("records serialize");
        match data.insert_value(RECORDS_KEY, value) {
            Ok(_) => return Ok(()),
            Err(DataError::TooLarge { .. }) if from + 1 < records.len() => from += 1,
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
