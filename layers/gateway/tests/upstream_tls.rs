//! TLS from the gateway to its instances, end to end: the gateway binary in
//! front of HTTPS backends whose certificates a test CA issued.

mod support;

use support::{BIN, Gateway, TestCa, TlsBackend, config, get, served_by, server_tls, status};

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// `[upstream_tls]` on, trusting the CA in `ca_file`, and `more` keys.
fn tls_section(ca_file: &Path, more: &str) -> String {
    format!(
        "[upstream_tls]\nenabled = true\nca_file = \"{}\"\n{more}\n",
        ca_file.display()
    )
}

/// Writes `text` to `name` in `dir`.
fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

/// Whether the gateway process is still running.
fn alive(gateway: &mut Gateway) -> bool {
    gateway.child.try_wait().unwrap().is_none()
}

#[tokio::test]
async fn with_the_ca_configured_requests_reach_the_tls_backends_and_stick() {
    let ca = TestCa::new("upstream CA");
    let cert = ca.issue(&["localhost", "127.0.0.1"]);
    let mut backends = Vec::new();
    for name in ["alpha", "beta", "gamma"] {
        backends.push((name, TlsBackend::start(name, server_tls(&cert, None)).await));
    }
    let instances: Vec<(&str, SocketAddr, f64)> =
        backends.iter().map(|(n, b)| (*n, b.addr, 1.0)).collect();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let gateway = Gateway::start(&config(&instances, &tls_section(&ca_file, ""))).await;

    let mut used = HashSet::new();
    for user in 0..12 {
        let cookie = format!("Cookie: sid=user{user}\r\n");
        let first = get(gateway.public, "/page", &cookie).await;
        assert_eq!(status(&first), 200, "{first}");
        let name = served_by(&first).to_owned();
        for _ in 0..3 {
            let again = get(gateway.public, "/page", &cookie).await;
            assert_eq!(served_by(&again), name, "user{user} moved");
        }
        used.insert(name);
    }
    assert!(used.len() >= 2, "12 users on one instance: {used:?}");
    for (name, backend) in &backends {
        if used.contains(*name) {
            assert!(
                backend.handshakes() >= 1 && backend.requests() >= 4,
                "{name}"
            );
        }
    }
}

/// The gateway's answer when the only instance fails: 503, the request not
/// replayed.
fn assert_no_instance_left(answer: &str) {
    assert_eq!(status(answer), 503, "{answer}");
    assert!(answer.contains("no other instance is left"), "{answer}");
}

#[tokio::test]
async fn a_backend_signed_by_another_ca_gets_no_request_and_the_gateway_stays_up() {
    let trusted = TestCa::new("upstream CA");
    let other = TestCa::new("another CA");
    let names = ["localhost", "127.0.0.1"];
    let good = TlsBackend::start("good", server_tls(&trusted.issue(&names), None)).await;
    let rogue = TlsBackend::start("rogue", server_tls(&other.issue(&names), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &trusted.pem());
    let section = tls_section(&ca_file, "");

    // Alone, it leaves the gateway nothing to answer with.
    let mut alone = Gateway::start(&config(&[("rogue", rogue.addr, 1.0)], &section)).await;
    for user in 0..3 {
        let cookie = format!("Cookie: sid=user{user}\r\n");
        assert_no_instance_left(&get(alone.public, "/", &cookie).await);
    }
    assert!(alive(&mut alone), "the gateway exited");
    let health = get(alone.admin, "/healthz", "").await;
    assert_eq!(status(&health), 200, "{health}");

    // Beside a trusted instance, every session is served by that one.
    let both = [("good", good.addr, 1.0), ("rogue", rogue.addr, 1.0)];
    let mut beside = Gateway::start(&config(&both, &section)).await;
    for user in 0..12 {
        let cookie = format!("Cookie: sid=user{user}\r\n");
        let answer = get(beside.public, "/", &cookie).await;
        assert_eq!(status(&answer), 200, "user{user}: {answer}");
        assert_eq!(served_by(&answer), "good");
    }
    assert!(alive(&mut beside), "the gateway exited");
    assert_eq!(
        rogue.handshakes(),
        0,
        "the gateway accepted its certificate"
    );
    assert_eq!(
        rogue.requests(),
        0,
        "a request reached the untrusted backend"
    );
}

#[tokio::test]
async fn server_name_verifies_every_instance_for_that_name() {
    let ca = TestCa::new("upstream CA");
    let backend = TlsBackend::start("alpha", server_tls(&ca.issue(&["app.internal"]), None)).await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let instances = [("alpha", backend.addr, 1.0)];

    // The certificate does not name 127.0.0.1, the instance's host.
    let by_host = Gateway::start(&config(&instances, &tls_section(&ca_file, ""))).await;
    assert_no_instance_left(&get(by_host.public, "/", "Cookie: sid=a\r\n").await);
    assert_eq!(backend.requests(), 0);

    let named = tls_section(&ca_file, "server_name = \"app.internal\"");
    let by_name = Gateway::start(&config(&instances, &named)).await;
    let answer = get(by_name.public, "/", "Cookie: sid=a\r\n").await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(served_by(&answer), "alpha");
}

#[tokio::test]
async fn a_client_certificate_is_presented_to_instances_that_ask_for_one() {
    let ca = TestCa::new("upstream CA");
    let clients = TestCa::new("client CA");
    let backend = TlsBackend::start(
        "alpha",
        server_tls(&ca.issue(&["127.0.0.1"]), Some(&clients)),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let ca_file = write(dir.path(), "ca.pem", &ca.pem());
    let instances = [("alpha", backend.addr, 1.0)];

    let anonymous = Gateway::start(&config(&instances, &tls_section(&ca_file, ""))).await;
    assert_no_instance_left(&get(anonymous.public, "/", "Cookie: sid=a\r\n").await);
    assert_eq!(backend.requests(), 0);

    let gateway_cert = clients.issue(&["gateway.internal"]);
    let cert = write(dir.path(), "gateway.pem", &gateway_cert.cert_pem);
    let key = write(dir.path(), "gateway-key.pem", &gateway_cert.key_pem);
    let mutual = tls_section(
        &ca_file,
        &format!(
            "client_cert = \"{}\"\nclient_key = \"{}\"",
            cert.display(),
            key.display()
        ),
    );
    let authenticated = Gateway::start(&config(&instances, &mutual)).await;
    let answer = get(authenticated.public, "/", "Cookie: sid=a\r\n").await;
    assert_eq!(status(&answer), 200, "{answer}");
    assert_eq!(served_by(&answer), "alpha");
}

/// Runs the binary on `text`, with `--check` or not, and returns its exit
/// code and standard error.
fn run(dir: &Path, text: &str, check: bool) -> (Option<i32>, String) {
    let path = write(dir, "gateway.toml", text);
    let mut command = std::process::Command::new(BIN);
    command.arg("--config").arg(&path);
    if check {
        command.arg("--check");
    }
    let output = command.output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.code(), stderr)
}

#[tokio::test]
async fn a_ca_file_missing_or_without_a_certificate_is_refused_at_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let instances = [("a", "127.0.0.1:1".parse().unwrap(), 1.0)];
    let gateway_toml = dir.path().join("gateway.toml");
    // `config` puts its extra text on line 9: ca_file is on line 11.
    let at = format!("{}:11:11: [upstream_tls] ca_file: ", gateway_toml.display());

    let absent = dir.path().join("absent.pem");
    let text = config(&instances, &tls_section(&absent, ""));
    for check in [true, false] {
        let (code, stderr) = run(dir.path(), &text, check);
        assert_eq!(code, Some(2), "check={check}: {stderr}");
        assert!(
            stderr.starts_with(&format!("{at}cannot read {}: ", absent.display())),
            "check={check}: {stderr}"
        );
    }

    let empty = write(dir.path(), "empty.pem", "");
    let text = config(&instances, &tls_section(&empty, ""));
    let (code, stderr) = run(dir.path(), &text, true);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        format!("{at}{} holds no PEM certificate", empty.display())
    );

    // The same file with TLS off is not read.
    let off = config(
        &instances,
        &format!("[upstream_tls]\nca_file = \"{}\"\n", absent.display()),
    );
    let (code, stderr) = run(dir.path(), &off, true);
    assert_eq!(code, Some(0), "{stderr}");
}
