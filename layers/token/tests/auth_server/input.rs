//! Malformed, forged, oversized and missing input, each with its typed error.

use super::*;

#[tokio::test]
async fn malformed_forged_oversized_and_missing_input_get_their_typed_errors() {
    let auth = start(|b| b).await;
    let token = auth.logged_in("alice", ALICE).await;
    let secret = bearer(SECRET);
    let huge = format!(r#"{{"sub":"alice","password":"{}"}}"#, "x".repeat(9 * 1024));
    let long_sub = json!({"sub": "a".repeat(257), "password": ALICE}).to_string();
    let long_password = json!({"sub": "alice", "password": "x".repeat(1025)}).to_string();
    let not_json = "request body is not valid JSON";
    let no_field = "request body lacks a field or has one of the wrong type";
    let invalid = |description| (400, "invalid_request", description);
    let too_large = (413, "request_too_large", "request body is too large");
    let no_session = (403, "invalid_grant", "unknown, ended or revoked session");
    let check = async |path: &str, content_type, body: String, expected: (u16, &str, &str)| {
        let authorization = (path != LOGIN).then_some(secret.as_str());
        let answer = call(
            auth.addr,
            Method::POST,
            path,
            content_type,
            authorization,
            body,
        )
        .await;
        answer.assert_error(expected.0, expected.1, expected.2);
    };
    let refresh = |sub: &str, sid: &str, lifetime: Value| {
        json!({"sub": sub, "sid": sid, "lifetime_secs": lifetime}).to_string()
    };
    let sid = token.sid.as_str();

    check(LOGIN, JSON, "{".into(), invalid(not_json)).await;
    check(LOGIN, JSON, "".into(), invalid(not_json)).await;
    check(LOGIN, JSON, "{}".into(), invalid(no_field)).await;
    check(LOGIN, JSON, r#"{"sub":7}"#.into(), invalid(no_field)).await;
    let bad_sub = invalid("sub must be 1 to 256 bytes");
    check(LOGIN, JSON, r#"{"sub":""}"#.into(), bad_sub).await;
    check(LOGIN, JSON, long_sub, bad_sub).await;
    let bad_password = invalid("password must be at most 1024 bytes");
    check(LOGIN, JSON, long_password, bad_password).await;
    let not_declared = (
        415,
        "invalid_request",
        "request body must be application/json",
    );
    check(
        LOGIN,
        None,
        json!({"sub": "alice"}).to_string(),
        not_declared,
    )
    .await;
    check(LOGIN, JSON, huge.clone(), too_large).await;

    check(REFRESH, JSON, "[".into(), invalid(not_json)).await;
    check(
        REFRESH,
        JSON,
        json!({"sub": "alice"}).to_string(),
        invalid(no_field),
    )
    .await;
    check(
        REFRESH,
        JSON,
        refresh("alice", sid, json!(-1)),
        invalid(no_field),
    )
    .await;
    check(REFRESH, JSON, huge.clone(), too_large).await;
    // Forged: a session that does not exist, another user's session.
    check(
        REFRESH,
        JSON,
        refresh("alice", "forged", json!(60)),
        no_session,
    )
    .await;
    check(REFRESH, JSON, refresh("bob", sid, json!(60)), no_session).await;
    let no_token = invalid("token cannot be issued");
    check(REFRESH, JSON, refresh("alice", sid, json!(0)), no_token).await;

    check(REVOKE, JSON, "{}".into(), invalid("sid or jti required")).await;
    check(REVOKE, JSON, "nope".into(), invalid(not_json)).await;
    check(
        REVOKE,
        JSON,
        json!({"sid": 5}).to_string(),
        invalid(no_field),
    )
    .await;
    let bad_jti = invalid("jti must be 1 to 256 bytes");
    check(REVOKE, JSON, json!({"jti": ""}).to_string(), bad_jti).await;
    check(REVOKE, JSON, huge, too_large).await;
    // None of it touched the session.
    assert_eq!(auth.refresh("alice", &token.sid, 60).await.status, 200);
}
