//! `[upstream_tls]`: TLS from the gateway to its instances, off by default.
//!
//! ```toml
//! [upstream_tls]
//! enabled = true
//! ca_file = "upstream-ca.pem"        # PEM; default: the system's roots
//! server_name = "app.internal"       # default: each instance's host (its IP)
//! client_cert = "gateway.pem"        # mutual TLS: both or neither
//! client_key = "gateway-key.pem"
//! ```
//!
//! Relative paths are read from the configuration file's folder. When
//! enabled, the files are read and checked with the rest of the file (at
//! start, with `--check` and on reload); a missing or empty file is an
//! error at its key's line. The section itself is applied at start.

use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::upstream_tls::{TlsSetupError, UpstreamTls};

/// `[upstream_tls]`: TLS to the instances.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct UpstreamTlsConfig {
    /// TLS on (default false: plain HTTP).
    pub enabled: Spanned<bool>,
    /// PEM file of the CA certificates the instances' certificates are
    /// verified against (default: the system's roots).
    pub ca_file: Option<Spanned<PathBuf>>,
    /// The name every instance's certificate is verified for (default: the
    /// instance's host, which is its IP address).
    pub server_name: Option<Spanned<String>>,
    /// PEM file of the gateway's certificate chain, for instances that ask
    /// for a client certificate (with `client_key`).
    pub client_cert: Option<Spanned<PathBuf>>,
    /// PEM file of the private key of `client_cert`.
    pub client_key: Option<Spanned<PathBuf>>,
}

impl Default for UpstreamTlsConfig {
    fn default() -> Self {
        Self {
            enabled: Spanned::new(0..0, false),
            ca_file: None,
            server_name: None,
            client_cert: None,
            client_key: None,
        }
    }
}

impl UpstreamTlsConfig {
    /// Makes the relative paths relative to `folder` (the configuration
    /// file's).
    pub(crate) fn resolve_paths(&mut self, folder: &Path) {
        for path in [
            &mut self.ca_file,
            &mut self.client_cert,
            &mut self.client_key,
        ]
        .into_iter()
        .flatten()
        {
            if path.get_ref().is_relative() {
                *path = Spanned::new(path.span(), folder.join(path.get_ref()));
            }
        }
    }

    /// Reads the files and checks the settings, errors at their key.
    pub(crate) fn check(&self) -> Result<(), (Range<usize>, String)> {
        UpstreamTls::from_config(self)
            .map(drop)
            .map_err(|error| (self.span_of(&error), error.to_string()))
    }

    fn span_of(&self, error: &TlsSetupError) -> Range<usize> {
        let path = |p: &Option<Spanned<PathBuf>>| p.as_ref().map(Spanned::span);
        match error.key {
            "ca_file" => path(&self.ca_file),
            "client_cert" => path(&self.client_cert),
            "client_key" => path(&self.client_key),
            "server_name" => self.server_name.as_ref().map(Spanned::span),
            _ => None,
        }
        .unwrap_or_else(|| self.enabled.span())
    }
}
