//! The gateway binary end to end: real processes, real sockets.

mod support;

use support::{BIN, Gateway, backend, config, get, raw, served_by, status};

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use tokio::net::{TcpListener, TcpStream};

async fn three_backends() -> Vec<(&'static str, SocketAddr, f64)> {
    vec![
        ("alpha", backend("alpha").await, 1.0),
        ("beta", backend("beta").await, 1.0),
        ("gamma", backend("gamma").await, 1.0),
    ]
}

#[tokio::test]
async fn routes_sticky_by_cookie_spreads_keyless_requests_and_keeps_admin_apart() {
    let backends = three_backends().await;
    let gateway = Gateway::start(&config(&backends, "")).await;
    let mut used = std::collections::HashSet::new();
    for user in 0..12 {
        let cookie = format!("Cookie: theme=dark; sid=user{user}\r\n");
        let first = get(gateway.public, "/page", &cookie).await;
        assert_eq!(status(&first), 200, "{first}");
        let name = served_by(&first).to_owned();
        for _ in 0..3 {
            assert_eq!(
                served_by(&get(gateway.public, "/page", &cookie).await),
                name
            );
        }
        used.insert(name);
    }
    assert!(used.len() >= 2, "12 users on one instance: {used:?}");

    // No cookie: served, not refused.
    let keyless = get(gateway.public, "/", "").await;
    assert_eq!(status(&keyless), 200, "{keyless}");

    // The public listener has no admin paths: they are the app's.
    let public = get(gateway.public, "/foresight/metrics", "").await;
    assert!(public.contains("path=/foresight/metrics"), "{public}");
    // The admin listener has them.
    let instances = get(gateway.admin, "/instances", "").await;
    assert_eq!(status(&instances), 200);
    for (id, addr, _) in &backends {
        assert!(
            instances.contains(&format!("{id}\t{addr}\t")),
            "{instances}"
        );
    }
    assert!(
        get(gateway.admin, "/metrics", "")
            .await
            .contains("foresight_")
    );
    assert!(get(gateway.admin, "/healthz", "").await.ends_with("ok\n"));
    assert!(get(gateway.admin, "/readyz", "").await.ends_with("ready\n"));
    // Request ids: one is made, and a client's is kept.
    assert!(
        keyless.to_lowercase().contains("x-request-id: "),
        "{keyless}"
    );
    let with_id = get(gateway.public, "/", "X-Request-Id: abc-123\r\n").await;
    assert!(with_id.contains("x-request-id: abc-123"), "{with_id}");
}

#[tokio::test]
async fn bad_input_gets_the_answers_haproxy_gives() {
    let backends = three_backends().await;
    let extra = "[limits]\nheader_read_timeout = \"1s\"\nmax_body_bytes = 1024\n\n";
    let gateway = Gateway::start(&config(&backends, extra)).await;

    // Half a header, then silence: 408, then the connection closes.
    let half = raw(gateway.public, b"GET / HTTP/1.1\r\nHost: app.exa").await;
    assert!(
        half.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{half:?}"
    );
    // Nothing at all: 408 too.
    let nothing = raw(gateway.public, b"").await;
    assert!(
        nothing.starts_with("HTTP/1.1 408 Request Timeout\r\n"),
        "{nothing:?}"
    );

    let two_hosts = get(gateway.public, "/", "Host: evil.example\r\n").await;
    assert_eq!(status(&two_hosts), 400, "{two_hosts}");
    assert!(
        two_hosts.ends_with("more than one Host header\n"),
        "{two_hosts}"
    );

    let connect = raw(
        gateway.public,
        b"CONNECT app.example:443 HTTP/1.1\r\nHost: app.example:443\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(status(&connect), 405, "{connect}");

    let hop = get(
        gateway.public,
        "/",
        "Cookie: sid=u1\r\nKeep-Alive: timeout=5\r\nx-secret: 1\r\nConnection: close, x-secret\r\nProxy-Authorization: Basic eA==\r\nX-Forwarded-For: 6.6.6.6\r\n",
    )
    .await;
    assert_eq!(status(&hop), 200, "{hop}");
    let upstream = hop.split("\r\n\r\n").nth(1).unwrap();
    for header in [
        "keep-alive:",
        "x-secret:",
        "proxy-authorization:",
        "6.6.6.6",
    ] {
        assert!(
            !upstream.contains(header),
            "{header} reached the backend:\n{upstream}"
        );
    }
    assert!(
        upstream.contains("x-forwarded-for: 127.0.0.1\n"),
        "{upstream}"
    );
    assert!(upstream.contains("via: 1.1 foresight\n"), "{upstream}");

    let body = "x".repeat(2048);
    let large = format!(
        "POST / HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let too_large = raw(gateway.public, large.as_bytes()).await;
    assert_eq!(status(&too_large), 413, "{too_large}");
}

#[tokio::test]
async fn check_validates_without_starting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.toml");
    let check = |path: &Path| {
        std::process::Command::new(BIN)
            .arg("--config")
            .arg(path)
            .arg("--check")
            .output()
            .unwrap()
    };

    std::fs::write(
        &path,
        config(&[("a", "127.0.0.1:1".parse().unwrap(), 1.0)], ""),
    )
    .unwrap();
    let ok = check(&path);
    assert!(ok.status.success());
    assert!(String::from_utf8_lossy(&ok.stdout).contains("ok, 1 instances"));

    let bad = config(
        &[
            ("a", "127.0.0.1:1".parse().unwrap(), 1.0),
            ("a", "127.0.0.1:2".parse().unwrap(), 1.0),
        ],
        "",
    );
    std::fs::write(&path, bad).unwrap();
    let refused = check(&path);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert_eq!(
        stderr.trim(),
        format!("{}:16:6: instance \"a\" is listed twice", path.display())
    );

    let missing = check(&dir.path().join("absent.toml"));
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read"));
}

#[tokio::test]
async fn sighup_reloads_the_instances_and_sigterm_drains_open_requests() {
    let backends = three_backends().await;
    let mut gateway = Gateway::start(&config(&backends[..2], "")).await;
    let count = |report: &str| {
        report
            .lines()
            .filter(|l| l.contains("\t127.0.0.1:"))
            .count()
    };
    assert_eq!(count(&get(gateway.admin, "/instances", "").await), 2);

    // An invalid file is refused and changes nothing.
    std::fs::write(&gateway.path, "[listen]\npublic = 1\n").unwrap();
    gateway.signal("-HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(count(&get(gateway.admin, "/instances", "").await), 2);

    let mut next = backends.clone();
    next[0].2 = 3.0;
    std::fs::write(&gateway.path, config(&next, "")).unwrap();
    gateway.signal("-HUP");
    let mut report = String::new();
    for _ in 0..100 {
        report = get(gateway.admin, "/instances", "").await;
        if count(&report) == 3 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(count(&report), 3, "{report}");
    assert!(
        report.contains(&format!("alpha\t{}\t3\t", backends[0].1)),
        "{report}"
    );

    // A request in flight when SIGTERM arrives still completes.
    let public = gateway.public;
    let slow = tokio::spawn(async move { get(public, "/slow", "Cookie: sid=u1\r\n").await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gateway.signal("-TERM");
    let answered = slow.await.unwrap();
    assert_eq!(status(&answered), 200, "{answered}");
    let exit = tokio::time::timeout(Duration::from_secs(30), gateway.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(exit.success(), "{exit:?}");
    assert!(
        TcpStream::connect(public).await.is_err(),
        "still accepting after the drain"
    );
}

async fn post(addr: SocketAddr, path: &str) -> String {
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: admin\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    raw(addr, request.as_bytes()).await
}

#[tokio::test]
async fn a_drained_instance_hands_its_sessions_to_their_secondaries_without_an_error() {
    let backends = three_backends().await;
    let gateway = Gateway::start(&config(&backends, "")).await;
    let mut homes = Vec::new();
    for user in 0..30 {
        let cookie = format!("Cookie: sid=user{user}\r\n");
        let answer = get(gateway.public, "/", &cookie).await;
        homes.push((cookie, served_by(&answer).to_owned()));
    }
    let drained = homes[0].1.clone();
    let answer = post(gateway.admin, &format!("/instances/{drained}/drain")).await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(
        status(&post(gateway.admin, "/instances/nobody/drain").await),
        404
    );
    let report = get(gateway.admin, "/instances", "").await;
    assert!(
        report
            .lines()
            .any(|l| l.starts_with(&format!("{drained}\t")) && l.contains("\ttrue\t")),
        "{report}"
    );
    for (cookie, home) in &homes {
        let answer = get(gateway.public, "/", cookie).await;
        assert_eq!(status(&answer), 200, "{answer}");
        let now = served_by(&answer);
        assert_ne!(now, drained, "a draining instance takes no sessions");
        if home != &drained {
            assert_eq!(now, home, "sessions elsewhere stay where they are");
        }
    }
    assert_eq!(
        status(&post(gateway.admin, &format!("/instances/{drained}/undrain")).await),
        200
    );
    for (cookie, home) in &homes {
        assert_eq!(served_by(&get(gateway.public, "/", cookie).await), home);
    }
}

#[tokio::test]
async fn an_instance_draining_in_the_config_gets_nothing() {
    let backends = three_backends().await;
    let mut text = config(&backends, "");
    text = text.replacen("weight = 1", "weight = 1\ndraining = true", 1);
    assert!(text.contains("draining = true"), "{text}");
    let gateway = Gateway::start(&text).await;
    for user in 0..30 {
        let answer = get(gateway.public, "/", &format!("Cookie: sid=user{user}\r\n")).await;
        assert_eq!(status(&answer), 200, "{answer}");
        assert_ne!(served_by(&answer), "alpha");
    }
}

/// What reached a counting backend: its name, the path, and whether it came
/// as a shadow.
type Runs = std::sync::Arc<std::sync::Mutex<Vec<(&'static str, String, bool)>>>;

/// A backend that runs its handler for whatever reaches it, and records it.
async fn counting_backend(name: &'static str, runs: Runs) -> SocketAddr {
    let app = Router::new().fallback(move |uri: axum::http::Uri, headers: HeaderMap| {
        let runs = runs.clone();
        async move {
            let shadow = headers
                .get("x-foresight-role")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"shadow"));
            runs.lock()
                .unwrap()
                .push((name, uri.path().to_owned(), shadow));
            format!("name={name}\n")
        }
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// Sends 20 POSTs (`/w/0` to `/w/19`) and 20 GETs over 4 sessions through a
/// gateway configured with `shadow`, and returns what reached the backends
/// once `expected_copies` shadows have arrived (waiting at most 20 s).
async fn posts_through(shadow: &str, expected_copies: usize) -> Vec<(&'static str, String, bool)> {
    let runs = Runs::default();
    let mut backends = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        backends.push((name, counting_backend(name, runs.clone()).await, 1.0));
    }
    let gateway = Gateway::start(&config(&backends, shadow)).await;
    for i in 0..20 {
        let cookie = format!("Cookie: sid=user{}\r\n", i % 4);
        let post = format!(
            "POST /w/{i} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n{cookie}Content-Length: 5\r\n\r\nhello"
        );
        let response = raw(gateway.public, post.as_bytes()).await;
        assert_eq!(status(&response), 200, "{response}");
        let response = get(gateway.public, &format!("/r/{i}"), &cookie).await;
        assert_eq!(status(&response), 200, "{response}");
    }
    for _ in 0..2000 {
        let copies = runs.lock().unwrap().iter().filter(|r| r.2).count();
        if copies >= expected_copies {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    runs.lock().unwrap().clone()
}

#[tokio::test]
async fn by_default_a_post_runs_once_and_reads_warm_each_session_once() {
    // 4 sessions: one warm-up each, from their first GET.
    let runs = posts_through("", 4).await;
    for i in 0..20 {
        let path = format!("/w/{i}");
        let ran: Vec<_> = runs.iter().filter(|r| r.1 == path).collect();
        assert_eq!(ran.len(), 1, "POST {path} ran {ran:?}");
        assert!(!ran[0].2, "POST {path} ran as a shadow");
    }
    let copies: Vec<_> = runs.iter().filter(|r| r.2).collect();
    assert_eq!(copies.len(), 4, "{copies:?}");
    assert!(copies.iter().all(|r| r.1.starts_with("/r/")), "{copies:?}");
}

#[tokio::test]
async fn a_post_reaches_the_shadow_aware_secondary_too() {
    let shadow =
        "[shadow]\nshadow_aware = [\"alpha\", \"beta\", \"gamma\"]\ncoalesce_interval = \"0s\"\n\n";
    // Every request is copied once: 20 POSTs and 20 GETs.
    let runs = posts_through(shadow, 40).await;
    for i in 0..20 {
        let path = format!("/w/{i}");
        let ran: Vec<_> = runs.iter().filter(|r| r.1 == path).collect();
        let primaries: Vec<_> = ran.iter().filter(|r| !r.2).collect();
        let copies: Vec<_> = ran.iter().filter(|r| r.2).collect();
        assert_eq!((primaries.len(), copies.len()), (1, 1), "{ran:?}");
        assert_ne!(primaries[0].0, copies[0].0, "{ran:?}");
    }
    assert_eq!(runs.iter().filter(|r| r.2).count(), 40);
}
