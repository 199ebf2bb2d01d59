//! Keys and tokens over HTTPS: a TLS server on loopback with a certificate
//! of a test CA; the clients trust that CA only when told to, and refuse
//! plain HTTP beyond loopback.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::routing::{get, post};
use foresight_token::jwks::{fetch_jwks, fetch_jwks_with};
use foresight_token::transport::{Transport, TransportError};
use foresight_token::{
    IssueError, KeyRing, LocalIssuer, RemoteIssuer, RemoteIssuerError, SigningKey, TokenIssuer,
    TokenRequest, TokioClock,
};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpListener;

struct Pki {
    ca_pem: String,
    leaf: CertificateDer<'static>,
    leaf_key: PrivateKeyDer<'static>,
}

fn pki() -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    Pki {
        ca_pem: ca.pem(),
        leaf: leaf.der().clone(),
        leaf_key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

#[derive(serde::Deserialize)]
struct Refresh {
    sub: String,
    sid: String,
    lifetime_secs: u64,
}

/// An authentication endpoint over TLS: `/token/refresh` signs real tokens
/// with `issuer`, `/jwks` publishes its keys.
async fn https_auth_server(pki: &Pki, issuer: LocalIssuer, ring: KeyRing) -> SocketAddr {
    let app = Router::new()
        .route(
            "/token/refresh",
            post(
                |State(issuer): State<LocalIssuer>, Json(body): Json<Refresh>| async move {
                    let request = TokenRequest::new(
                        body.sub,
                        body.sid,
                        Duration::from_secs(body.lifetime_secs),
                    );
                    Json(issuer.issue(request).await.unwrap())
                },
            ),
        )
        .route("/jwks", get(move || async move { Json(ring.jwks()) }))
        .with_state(issuer);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![pki.leaf.clone()], pki.leaf_key.clone_key())
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            let app = app.clone();
            tokio::spawn(async move {
                // A client that refuses the certificate ends the handshake.
                let Ok(tls) = acceptor.accept(tcp).await else {
                    return;
                };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), service)
                    .await;
            });
        }
    });
    addr
}

fn local_issuer() -> (LocalIssuer, KeyRing) {
    let clock = TokioClock::shared();
    let ring = KeyRing::new(SigningKey::generate_ed25519("k1").unwrap(), clock.clone());
    (
        LocalIssuer::new(ring.clone(), "https://auth.test", "api", clock),
        ring,
    )
}

/// Why rustls refused the server's certificate, found in `error`'s source
/// chain.
fn refused_certificate(
    error: &(dyn std::error::Error + 'static),
) -> Option<rustls::CertificateError> {
    let mut next = Some(error);
    while let Some(e) = next {
        if let Some(rustls::Error::InvalidCertificate(why)) = e.downcast_ref::<rustls::Error>() {
            return Some(why.clone());
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(why) = refused_certificate(inner)
        {
            return Some(why);
        }
        next = e.source();
    }
    None
}

#[tokio::test]
async fn tokens_and_keys_come_over_https_from_a_configured_ca() {
    let pki = pki();
    let (issuer, ring) = local_issuer();
    let addr = https_auth_server(&pki, issuer, ring.clone()).await;
    let base = format!("https://localhost:{}", addr.port());
    let transport = Transport::new().with_ca_pem(pki.ca_pem.as_bytes()).unwrap();

    let remote = RemoteIssuer::builder(&base)
        .with_transport(transport.clone())
        .with_retries(0)
        .build()
        .unwrap();
    let token = remote
        .issue(TokenRequest::new("alice", "s1", Duration::from_secs(60)))
        .await
        .unwrap();
    assert_eq!(token.sid, "s1");

    let jwks = fetch_jwks_with(format!("{base}/jwks").parse().unwrap(), &transport)
        .await
        .unwrap();
    assert_eq!(jwks, ring.jwks());
}

#[tokio::test]
async fn a_server_the_roots_do_not_vouch_for_is_refused() {
    let pki = pki();
    let (issuer, ring) = local_issuer();
    let addr = https_auth_server(&pki, issuer, ring).await;
    let base = format!("https://localhost:{}", addr.port());

    // The system's roots do not know the test CA.
    let remote = RemoteIssuer::builder(&base)
        .with_retries(0)
        .build()
        .unwrap();
    let error = remote
        .issue(TokenRequest::new("alice", "s1", Duration::from_secs(60)))
        .await
        .unwrap_err();
    assert!(matches!(error, IssueError::Unavailable { .. }), "{error:?}");
    assert_eq!(
        refused_certificate(&error),
        Some(rustls::CertificateError::UnknownIssuer),
        "{error:?}"
    );

    // Another CA of the same (empty) name does not help either: its key did
    // not sign the server's certificate.
    let other = pki_other_ca();
    let transport = Transport::new().with_ca_pem(other.as_bytes()).unwrap();
    let error = fetch_jwks_with(format!("{base}/jwks").parse().unwrap(), &transport)
        .await
        .unwrap_err();
    assert_eq!(
        refused_certificate(&error),
        Some(rustls::CertificateError::BadSignature),
        "{error:?}"
    );
}

fn pki_other_ca() -> String {
    pki().ca_pem
}

#[tokio::test]
async fn plain_http_beyond_loopback_is_refused_before_any_connection() {
    let error = RemoteIssuer::builder("http://auth.example")
        .build()
        .unwrap_err();
    assert!(
        matches!(
            error,
            RemoteIssuerError::Transport(TransportError::Plaintext { .. })
        ),
        "{error:?}"
    );
    let error = fetch_jwks("http://auth.example/jwks".parse().unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            IssueError::Transport(TransportError::Plaintext { .. })
        ),
        "{error:?}"
    );
    // An explicit opt-in builds (and would connect).
    let open = RemoteIssuer::builder("http://auth.example")
        .with_transport(Transport::new().with_plaintext_http())
        .build();
    assert!(open.is_ok());
}
