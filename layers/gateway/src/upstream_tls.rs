//! TLS from the gateway to its instances, with rustls: the connector of
//! every instance's connections, over plain HTTP or over TLS as
//! [`[upstream_tls]`](crate::config::UpstreamTlsConfig) says.
//!
//! One connector type serves both cases, hyper-rustls' [`HttpsConnector`]
//! around hyper-util's [`HttpConnector`], so the pool's type does not follow
//! the configuration:
//!
//! - TLS off (the default): the connector takes `http` URIs only as they
//!   are, over TCP; the instances' URIs are `http`.
//! - TLS on: the instances' URIs are `https` ([`UpstreamTls::scheme`]) and
//!   the connector refuses anything else (`https_only`), so no request falls
//!   back to plain text. Certificates are verified against `ca_file`'s
//!   certificates, or the system's roots without it, for the instance's host
//!   (its IP address; the certificate must name it) or `server_name`. With
//!   `client_cert` and `client_key`, the gateway authenticates itself to the
//!   instances (mutual TLS).
//!
//! ```
//! use foresight_gateway::config::UpstreamTlsConfig;
//! use foresight_gateway::upstream_tls::UpstreamTls;
//!
//! let plain = UpstreamTls::from_config(&UpstreamTlsConfig::default()).unwrap();
//! assert_eq!(plain.scheme(), http::uri::Scheme::HTTP);
//! ```

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use foresight::forward::Upstream;
use http::uri::Scheme;
use hyper_rustls::{FixedServerNameResolver, HttpsConnector, HttpsConnectorBuilder};
use hyper_util::client::legacy::connect::HttpConnector;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};

use crate::config::UpstreamTlsConfig;

/// The connector of the instances' connections, for plain HTTP and TLS
/// alike.
pub type UpstreamConnector = HttpsConnector<HttpConnector>;

/// Why the `[upstream_tls]` settings cannot be used, and the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("[upstream_tls] {key}: {message}")]
pub struct TlsSetupError {
    /// The key of `[upstream_tls]` at fault (`ca_file`, `server_name`,
    /// `client_cert`, `client_key`).
    pub key: &'static str,
    /// What is wrong.
    pub message: String,
}

impl TlsSetupError {
    fn new(key: &'static str, message: impl Into<String>) -> Self {
        Self {
            key,
            message: message.into(),
        }
    }
}

/// The upstream leg's TLS, ready to build the connector: off, or a rustls
/// configuration with an optional fixed server name.
#[derive(Debug, Clone)]
pub struct UpstreamTls {
    config: Option<ClientConfig>,
    server_name: Option<ServerName<'static>>,
}

impl UpstreamTls {
    /// Plain HTTP to the instances.
    pub fn off() -> Self {
        Self {
            config: None,
            server_name: None,
        }
    }

    /// TLS with `config`, verifying each instance's certificate for its
    /// host.
    pub fn on(config: ClientConfig) -> Self {
        Self {
            config: Some(config),
            server_name: None,
        }
    }

    /// Verifies every instance's certificate for `name` instead of the
    /// instance's host (no effect while TLS is off).
    pub fn with_server_name(mut self, name: ServerName<'static>) -> Self {
        self.server_name = Some(name);
        self
    }

    /// The settings of `section`, its files read: [`UpstreamTls::off`] when
    /// it is not enabled (its files are then not read).
    pub fn from_config(section: &UpstreamTlsConfig) -> Result<Self, TlsSetupError> {
        if !*section.enabled.get_ref() {
            return Ok(Self::off());
        }
        let roots = match &section.ca_file {
            Some(path) => ca_roots(path.get_ref())?,
            None => system_roots()?,
        };
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(|e| TlsSetupError::new("enabled", e.to_string()))?
                .with_root_certificates(roots);
        let config = match (&section.client_cert, &section.client_key) {
            (None, None) => builder.with_no_client_auth(),
            (Some(cert), Some(key)) => {
                let chain = certificates("client_cert", cert.get_ref())?;
                let key_der = PrivateKeyDer::from_pem_file(key.get_ref()).map_err(|e| {
                    TlsSetupError::new(
                        "client_key",
                        format!("{}: no private key: {e}", key.get_ref().display()),
                    )
                })?;
                builder
                    .with_client_auth_cert(chain, key_der)
                    .map_err(|e| TlsSetupError::new("client_key", e.to_string()))?
            }
            (Some(_), None) => {
                return Err(TlsSetupError::new(
                    "client_cert",
                    "needs client_key beside it",
                ));
            }
            (None, Some(_)) => {
                return Err(TlsSetupError::new(
                    "client_key",
                    "needs client_cert beside it",
                ));
            }
        };
        let tls = Self::on(config);
        match &section.server_name {
            Some(name) => {
                let name = ServerName::try_from(name.get_ref().clone()).map_err(|_| {
                    TlsSetupError::new(
                        "server_name",
                        format!("{:?} is not a DNS name or IP address", name.get_ref()),
                    )
                })?;
                Ok(tls.with_server_name(name))
            }
            None => Ok(tls),
        }
    }

    /// Whether the instances are reached over TLS.
    pub fn enabled(&self) -> bool {
        self.config.is_some()
    }

    /// The scheme of the instances' URIs: `https` with TLS, else `http`.
    pub fn scheme(&self) -> Scheme {
        if self.enabled() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        }
    }

    /// The connector: TCP with `connect_timeout` and `TCP_NODELAY`, then
    /// TLS when on (HTTP/1.1 by ALPN, as the upstream leg speaks).
    pub fn connector(&self, connect_timeout: Duration) -> UpstreamConnector {
        let mut tcp = HttpConnector::new();
        tcp.set_connect_timeout(Some(connect_timeout));
        tcp.set_nodelay(true);
        // The TLS connector hands `https` URIs to the TCP connector.
        tcp.enforce_http(false);
        let Some(config) = &self.config else {
            // Never used: every URI is `http` and goes through unwrapped.
            return HttpsConnectorBuilder::new()
                .with_tls_config(unused_tls_config())
                .https_or_http()
                .enable_http1()
                .wrap_connector(tcp);
        };
        let builder = HttpsConnectorBuilder::new()
            .with_tls_config(config.clone())
            .https_only();
        let builder = match &self.server_name {
            Some(name) => {
                builder.with_server_name_resolver(FixedServerNameResolver::new(name.clone()))
            }
            None => builder,
        };
        builder.enable_http1().wrap_connector(tcp)
    }

    /// The settings the instance services are built from: the connector
    /// of [`UpstreamTls::connector`] and the scheme of
    /// [`UpstreamTls::scheme`], with the default pool limits.
    pub fn upstream(&self, connect_timeout: Duration) -> Upstream<UpstreamConnector> {
        Upstream::new(self.connector(connect_timeout)).with_scheme(self.scheme())
    }
}

/// The certificates of the PEM file at `path`, at least one.
fn certificates(
    key: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, TlsSetupError> {
    let shown = path.display();
    let found = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsSetupError::new(key, format!("cannot read {shown}: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsSetupError::new(key, format!("{shown}: not PEM: {e}")))?;
    if found.is_empty() {
        return Err(TlsSetupError::new(
            key,
            format!("{shown} holds no PEM certificate"),
        ));
    }
    Ok(found)
}

/// The CA certificates of `ca_file`.
fn ca_roots(path: &Path) -> Result<RootCertStore, TlsSetupError> {
    let mut roots = RootCertStore::empty();
    for cert in certificates("ca_file", path)? {
        roots
            .add(cert)
            .map_err(|e| TlsSetupError::new("ca_file", format!("{}: {e}", path.display())))?;
    }
    Ok(roots)
}

/// The system's root certificates, at least one.
fn system_roots() -> Result<RootCertStore, TlsSetupError> {
    let found = rustls_native_certs::load_native_certs();
    let mut roots = RootCertStore::empty();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        let reason = found
            .errors
            .first()
            .map_or_else(|| "none found".to_owned(), ToString::to_string);
        return Err(TlsSetupError::new(
            "ca_file",
            format!("absent, and no system root certificate can be used ({reason})"),
        ));
    }
    Ok(roots)
}

/// A configuration for a connector that never makes a TLS connection.
fn unused_tls_config() -> ClientConfig {
    ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(RootCertStore::empty())
        .with_no_client_auth()
}
