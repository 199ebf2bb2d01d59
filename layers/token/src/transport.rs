//! How keys and tokens travel: HTTPS by default.
//!
//! [`RemoteIssuer`](crate::RemoteIssuer) (which sends the client secret)
//! and the JWKS fetch of [`jwks`](crate::jwks) (which brings the keys every
//! token is checked with) connect through a [`Transport`]: rustls with the
//! system's root certificates, or with a configured CA. Plain HTTP is
//! accepted to a loopback address (`127.0.0.0/8`, `::1`, `localhost`: the
//! bytes never leave the host), and elsewhere only after an explicit
//! [`with_plaintext_http`](Transport::with_plaintext_http), which logs a
//! warning.
//!
//! ```
//! use foresight_token::transport::{Transport, TransportError};
//!
//! let transport = Transport::new();
//! assert!(transport.check(&"https://auth.example/token".parse().unwrap()).is_ok());
//! assert!(transport.check(&"http://127.0.0.1:9000/token".parse().unwrap()).is_ok());
//! assert!(matches!(
//!     transport.check(&"http://auth.example/token".parse().unwrap()),
//!     Err(TransportError::Plaintext { .. })
//! ));
//! // Opting in, for a network that is otherwise protected:
//! let open = Transport::new().with_plaintext_http();
//! assert!(open.check(&"http://auth.internal/token".parse().unwrap()).is_ok());
//! ```

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a connection is not made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// Plain HTTP to a host that is not loopback, without
    /// [`Transport::with_plaintext_http`].
    #[error("refusing plain HTTP to {uri}: use https, or opt in with with_plaintext_http()")]
    Plaintext {
        /// The refused URI.
        uri: Uri,
    },
    /// A scheme other than `http` and `https`, or none.
    #[error("unsupported scheme in {uri}")]
    Scheme {
        /// The URI.
        uri: Uri,
    },
    /// The configured CA is not a PEM certificate rustls accepts.
    #[error("invalid CA certificate")]
    Ca(#[source] Box<dyn std::error::Error + Send + Sync>),
    /// The system has no usable root certificates.
    #[error("no root certificates available")]
    NoRoots(#[source] std::io::Error),
}

#[derive(Clone)]
enum Roots {
    System,
    Ca(Arc<[CertificateDer<'static>]>),
}

/// The TLS and plaintext policy of the crate's HTTP clients; see the
/// [module docs](self).
#[derive(Clone)]
#[must_use]
pub struct Transport {
    roots: Roots,
    plaintext: bool,
}

impl fmt::Debug for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let roots = match &self.roots {
            Roots::System => "system".to_owned(),
            Roots::Ca(certs) => format!("{} configured", certs.len()),
        };
        f.debug_struct("Transport")
            .field("roots", &roots)
            .field("plaintext", &self.plaintext)
            .finish()
    }
}

impl Default for Transport {
    fn default() -> Self {
        Self::new()
    }
}

impl Transport {
    /// HTTPS with the system's root certificates; plain HTTP to loopback
    /// only.
    pub fn new() -> Self {
        Self {
            roots: Roots::System,
            plaintext: false,
        }
    }

    /// Trusts only the CA certificates in `pem` (instead of the system's).
    pub fn with_ca_pem(mut self, pem: &[u8]) -> Result<Self, TransportError> {
        let certs = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| TransportError::Ca(e.into()))?;
        if certs.is_empty() {
            return Err(TransportError::Ca("no certificate in the PEM input".into()));
        }
        self.roots = Roots::Ca(certs.into());
        Ok(self)
    }

    /// Allows plain HTTP to any host: keys, tokens and the client secret
    /// then travel unencrypted. Logged as a warning when a client is built.
    pub fn with_plaintext_http(mut self) -> Self {
        self.plaintext = true;
        self
    }

    /// Whether `uri` may be reached under this policy.
    pub fn check(&self, uri: &Uri) -> Result<(), TransportError> {
        match uri.scheme_str() {
            Some("https") => Ok(()),
            Some("http") if self.plaintext || is_loopback(uri) => Ok(()),
            Some("http") => Err(TransportError::Plaintext { uri: uri.clone() }),
            _ => Err(TransportError::Scheme { uri: uri.clone() }),
        }
    }

    /// A connector for `uri` under this policy: HTTPS, and plain HTTP where
    /// [`check`](Self::check) allows it.
    pub(crate) fn connector(
        &self,
        uri: &Uri,
        tcp: HttpConnector,
    ) -> Result<HttpsConnector<HttpConnector>, TransportError> {
        self.check(uri)?;
        if uri.scheme_str() == Some("http") && !is_loopback(uri) {
            tracing::warn!(%uri, "plain HTTP: keys and tokens travel unencrypted");
        }
        let roots = match &self.roots {
            Roots::System => {
                let found = rustls_native_certs::load_native_certs();
                let mut store = RootCertStore::empty();
                let (added, _) = store.add_parsable_certificates(found.certs);
                if added == 0 {
                    let reason = found
                        .errors
                        .into_iter()
                        .next()
                        .map_or_else(|| "no certificate found".to_owned(), |e| e.to_string());
                    return Err(TransportError::NoRoots(std::io::Error::other(reason)));
                }
                store
            }
            Roots::Ca(certs) => {
                let mut store = RootCertStore::empty();
                for cert in certs.iter() {
                    store
                        .add(cert.clone())
                        .map_err(|e| TransportError::Ca(e.into()))?;
                }
                store
            }
        };
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TransportError::Ca(e.into()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut tcp = tcp;
        tcp.enforce_http(false);
        let builder = HttpsConnectorBuilder::new().with_tls_config(config);
        let connector = if self.plaintext || is_loopback(uri) {
            builder.https_or_http().enable_http1().wrap_connector(tcp)
        } else {
            builder.https_only().enable_http1().wrap_connector(tcp)
        };
        Ok(connector)
    }
}

fn is_loopback(uri: &Uri) -> bool {
    let Some(host) = uri.host() else {
        return false;
    };
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uri(text: &str) -> Uri {
        text.parse().unwrap()
    }

    #[test]
    fn loopback_hosts() {
        for yes in [
            "http://127.0.0.1:1/",
            "http://127.9.9.9/",
            "http://[::1]:8/",
            "http://localhost/",
            "http://LOCALHOST:1/",
        ] {
            assert!(is_loopback(&uri(yes)), "{yes}");
        }
        for no in [
            "http://10.0.0.1/",
            "http://auth.example/",
            "http://localhost.evil.example/",
            "http://[::2]/",
        ] {
            assert!(!is_loopback(&uri(no)), "{no}");
        }
    }

    #[test]
    fn plain_http_needs_loopback_or_consent() {
        let strict = Transport::new();
        assert!(matches!(
            strict.check(&uri("http://auth.example/")),
            Err(TransportError::Plaintext { .. })
        ));
        assert!(matches!(
            strict.check(&uri("ftp://auth.example/")),
            Err(TransportError::Scheme { .. })
        ));
        assert!(matches!(
            strict.check(&uri("/relative")),
            Err(TransportError::Scheme { .. })
        ));
        assert!(
            strict
                .with_plaintext_http()
                .check(&uri("http://auth.example/"))
                .is_ok()
        );
    }

    #[test]
    fn a_bad_ca_is_a_typed_error() {
        assert!(matches!(
            Transport::new().with_ca_pem(b"not pem"),
            Err(TransportError::Ca(_))
        ));
        let garbage = b"-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n";
        assert!(matches!(
            Transport::new().with_ca_pem(garbage),
            Err(TransportError::Ca(_))
        ));
    }
}
