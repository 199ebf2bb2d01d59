//! What the gateway's end-to-end tests share: the binary, a backend that
//! echoes (over plain HTTP or TLS, with certificates made by a test CA), a
//! config writer, a gateway process that reports where it listens, and a
//! raw HTTP/1.1 client. [`instance`], [`stack`] and [`load`] hold the
//! composed stack: instance processes over a Redis Cluster behind the
//! gateway, and a load of idempotent requests over it; [`fault`] the
//! fault matrix's rows.
#![allow(dead_code)] // Each test file uses its own part.

pub mod fault;
pub mod instance;
pub mod load;
pub mod stack;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::process::{Child, Command};

pub const BIN: &str = env!("CARGO_BIN_EXE_foresight-gateway");

/// A backend that answers with its name, the path, and the request headers
/// it received, one per line; `/slow` takes a second.
pub async fn backend(name: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = echo_app(name);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The echo of [`backend`].
fn echo_app(name: &'static str) -> Router {
    async fn echo(name: &'static str, uri: axum::http::Uri, headers: HeaderMap) -> String {
        if uri.path() == "/slow" {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        let mut lines: Vec<String> = headers
            .iter()
            .map(|(n, v)| format!("{n}: {}", v.to_str().unwrap_or("?")))
            .collect();
        lines.sort();
        format!("name={name}\npath={}\n{}\n", uri.path(), lines.join("\n"))
    }
    Router::new().fallback(move |uri, headers| echo(name, uri, headers))
}

/// A certificate authority made for a test, which issues server and client
/// certificates.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: rcgen::KeyPair,
}

/// A certificate and its private key.
pub struct Issued {
    pub chain: Vec<CertificateDer<'static>>,
    pub key: PrivatePkcs8KeyDer<'static>,
    pub cert_pem: String,
    pub key_pem: String,
}

impl TestCa {
    pub fn new(name: &str) -> Self {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let cert = params.self_signed(&key).unwrap();
        Self { cert, key }
    }

    /// The CA certificate in PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for the names and IP addresses in `names`, signed by
    /// this CA.
    pub fn issue(&self, names: &[&str]) -> Issued {
        let key = rcgen::KeyPair::generate().unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let params = rcgen::CertificateParams::new(names).unwrap();
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Issued {
            chain: vec![cert.der().clone()],
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The roots of a verifier that trusts this CA alone.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        roots
    }
}

fn ring() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A server configuration presenting `cert`; with `clients_of`, it asks for
/// a client certificate signed by that CA and refuses a client without one.
pub fn server_tls(cert: &Issued, clients_of: Option<&TestCa>) -> rustls::ServerConfig {
    let builder = rustls::ServerConfig::builder_with_provider(ring())
        .with_safe_default_protocol_versions()
        .unwrap();
    let builder = match clients_of {
        None => builder.with_no_client_auth(),
        Some(ca) => builder.with_client_cert_verifier(
            rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(ca.roots()),
                ring(),
            )
            .build()
            .unwrap(),
        ),
    };
    builder
        .with_single_cert(
            cert.chain.clone(),
            PrivateKeyDer::Pkcs8(cert.key.clone_key()),
        )
        .unwrap()
}

/// A backend like [`backend`] that speaks HTTPS only, with `tls`.
pub struct TlsBackend {
    pub addr: SocketAddr,
    /// TLS handshakes that completed.
    pub handshakes: Arc<AtomicUsize>,
    /// Requests answered.
    pub requests: Arc<AtomicUsize>,
}

impl TlsBackend {
    pub async fn start(name: &'static str, tls: rustls::ServerConfig) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let handshakes = Arc::new(AtomicUsize::new(0));
        let requests = Arc::new(AtomicUsize::new(0));
        let app = echo_app(name);
        let (done, served) = (handshakes.clone(), requests.clone());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app, done, served) =
                    (acceptor.clone(), app.clone(), done.clone(), served.clone());
                tokio::spawn(async move {
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    done.fetch_add(1, Ordering::SeqCst);
                    let service = hyper::service::service_fn(move |request| {
                        served.fetch_add(1, Ordering::SeqCst);
                        tower::ServiceExt::oneshot(app.clone(), request)
                    });
                    let io = hyper_util::rt::TokioIo::new(tls);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(io, service)
                        .await;
                });
            }
        });
        Self {
            addr,
            handshakes,
            requests,
        }
    }

    pub fn handshakes(&self) -> usize {
        self.handshakes.load(Ordering::SeqCst)
    }

    pub fn requests(&self) -> usize {
        self.requests.load(Ordering::SeqCst)
    }
}

pub fn config(instances: &[(&str, SocketAddr, f64)], extra: &str) -> String {
    let mut text = String::from(
        "[listen]\npublic = \"127.0.0.1:0\"\nadmin = \"127.0.0.1:0\"\n\n[key]\nkind = \"cookie\"\nname = \"sid\"\n\n",
    );
    text.push_str(extra);
    for (id, addr, weight) in instances {
        text.push_str(&format!(
            "\n[[instance]]\nid = \"{id}\"\naddr = \"{addr}\"\nweight = {weight}\n"
        ));
    }
    text
}

pub struct Gateway {
    pub child: Child,
    pub public: SocketAddr,
    pub admin: SocketAddr,
    pub path: PathBuf,
    /// The lines the gateway wrote to stderr after it listened.
    pub log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl Gateway {
    pub async fn start(text: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gateway.toml");
        std::fs::write(&path, text).unwrap();
        let mut child = Command::new(BIN)
            .arg("--config")
            .arg(&path)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let listening = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.strip_prefix("LISTENING ") {
                    return rest.to_owned();
                }
                eprintln!("gateway: {line}");
            }
            panic!("the gateway exited before listening");
        })
        .await
        .expect("the gateway listens within a minute");
        // Keep draining stderr so the child never blocks on it.
        let log = Arc::new(Mutex::new(Vec::new()));
        let kept = log.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                kept.lock().unwrap().push(line);
            }
        });
        let addr = |key: &str| -> SocketAddr {
            listening
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(key))
                .unwrap()
                .parse()
                .unwrap()
        };
        Gateway {
            public: addr("public="),
            admin: addr("admin="),
            child,
            path,
            log,
            _dir: dir,
        }
    }

    pub fn signal(&self, name: &str) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// Sends `request` as it is and reads the answer until the server closes.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
        .await
        .expect("the gateway answers and closes")
        .ok();
    String::from_utf8_lossy(&out).into_owned()
}

pub async fn get(addr: SocketAddr, path: &str, headers: &str) -> String {
    let request =
        format!("GET {path} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n{headers}\r\n");
    raw(addr, request.as_bytes()).await
}

pub fn status(response: &str) -> u16 {
    response
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

pub fn served_by(response: &str) -> &str {
    response
        .lines()
        .find_map(|l| l.strip_prefix("name="))
        .unwrap_or_else(|| panic!("no backend answered:\n{response}"))
}
