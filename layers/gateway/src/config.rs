//! The gateway's TOML configuration, validated with the line and column of
//! every error.
//!
//! ```
//! use foresight_gateway::config::Config;
//!
//! let config = Config::parse("gateway.toml", r#"
//! [listen]
//! public = "127.0.0.1:8080"
//! admin = "127.0.0.1:9090"
//!
//! [[instance]]
//! id = "alpha"
//! addr = "127.0.0.1:9001"
//!
//! [[instance]]
//! id = "beta"
//! addr = "127.0.0.1:9002"
//! weight = 2.0
//! "#).unwrap();
//! assert_eq!(config.instances.len(), 2);
//! assert_eq!(config.limits.header_read_timeout, std::time::Duration::from_secs(30));
//!
//! let error = Config::parse("gateway.toml", "[listen]\npublic = 8080\n").unwrap_err();
//! assert!(error.to_string().starts_with("gateway.toml:2:10: "), "{error}");
//! ```

use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use foresight::shadow::ShadowPolicy;
use ipnet::IpNet;
use serde::Deserialize;
use toml::Spanned;

/// The whole configuration file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where the gateway listens.
    pub listen: Listen,
    /// The instances (`[[instance]]` tables), at least one.
    #[serde(rename = "instance")]
    pub instances: Vec<Spanned<InstanceConfig>>,
    /// How a request's client key is read.
    #[serde(default)]
    pub key: KeyConfig,
    /// Limits and timeouts.
    #[serde(default)]
    pub limits: Limits,
    /// Forwarding headers and trusted proxies.
    #[serde(default)]
    pub proxy: ProxyConfig,
    /// Shadow copies to the secondary.
    #[serde(default)]
    pub shadow: ShadowConfig,
    /// The shared forecaster.
    #[serde(default)]
    pub forecast: ForecastConfig,
    /// CORS for browser clients.
    #[serde(default)]
    pub cors: CorsConfig,
    /// Routing options.
    #[serde(default)]
    pub routing: RoutingConfig,
    /// TLS to the instances.
    #[serde(default)]
    pub upstream_tls: UpstreamTlsConfig,
    /// The process's runtime.
    #[serde(default)]
    pub server: ServerConfig,
}

/// `[routing]`: how keys are spread.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RoutingConfig {
    /// Slow start: an instance that joins on a reload, or is readmitted
    /// after an ejection, takes new sessions gradually over this time, its
    /// share growing linearly to its full weight (default 10 s; `"0s"`
    /// turns it off).
    #[serde(with = "humantime_serde")]
    pub slow_start: Duration,
    /// Consistent hashing with bounded loads: no instance takes more than
    /// `balance_factor` × the mean of the requests in flight; a key whose
    /// primary is full goes to its secondary. At least 1 (1.25 is usual);
    /// absent: off.
    pub balance_factor: Option<Spanned<f64>>,
}

impl Default for RoutingConfig {
    fn default() -> Self {
        Self {
            slow_start: Duration::from_secs(10),
            balance_factor: None,
        }
    }
}

/// `[listen]`: the public listener and the separate admin listener.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listen {
    /// Address of the public listener (HTTP/1.1 and HTTP/2).
    pub public: Spanned<SocketAddr>,
    /// Address of the admin listener (`/metrics`, `/instances`, `/healthz`,
    /// `/readyz`); keep it off the public network.
    pub admin: Spanned<SocketAddr>,
}

/// One `[[instance]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InstanceConfig {
    /// Unique name.
    pub id: Spanned<String>,
    /// Address the gateway forwards to.
    pub addr: SocketAddr,
    /// Relative share of keys (default 1).
    #[serde(default = "one")]
    pub weight: Spanned<f64>,
    /// Draining: no new sessions; its sessions move to their secondaries at
    /// their next request while open requests finish (default false). The
    /// admin listener can also drain an instance until the next reload.
    #[serde(default)]
    pub draining: bool,
}

fn one() -> Spanned<f64> {
    Spanned::new(0..0, 1.0)
}

/// `[key]`: where the client key is read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// `cookie`, `header` or `jwt` (the bearer token's `sub`).
    #[serde(default = "KeyConfig::default_kind")]
    pub kind: KeyKind,
    /// Cookie or header name (not for `jwt`).
    pub name: Option<Spanned<String>>,
    /// What to do without a key: `spread` (a fresh random key, the default)
    /// or `reject` (400).
    #[serde(default)]
    pub missing: MissingKey,
}

impl KeyConfig {
    fn default_kind() -> KeyKind {
        KeyKind::Cookie
    }
}

impl Default for KeyConfig {
    fn default() -> Self {
        Self {
            kind: KeyKind::Cookie,
            name: None,
            missing: MissingKey::Spread,
        }
    }
}

/// Where the key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyKind {
    /// A cookie (default name `__Host-session`).
    Cookie,
    /// A header.
    Header,
    /// The `sub` claim of the bearer token.
    Jwt,
}

/// What a request without a key gets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissingKey {
    /// Routed by a fresh random key.
    #[default]
    Spread,
    /// Refused with 400.
    Reject,
}

/// `[limits]`: every limit and timeout, with HAProxy-like defaults.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Most client connections open at once (default 10,000); further ones
    /// wait in the accept queue.
    pub max_connections: usize,
    /// Largest request body in bytes (default 1 MiB); larger ones get 413.
    pub max_body_bytes: usize,
    /// Time to receive a request's headers (default 30 s); then 408 and
    /// the connection closes.
    #[serde(with = "humantime_serde")]
    pub header_read_timeout: Duration,
    /// How long an idle keep-alive connection stays open (default 60 s).
    #[serde(with = "humantime_serde")]
    pub idle_timeout: Duration,
    /// Time for a whole request, body and upstream answer included
    /// (default 60 s); then 408 if the body was still arriving, else 504.
    #[serde(with = "humantime_serde")]
    pub request_timeout: Duration,
    /// Time to connect to an instance (default 2 s).
    #[serde(with = "humantime_serde")]
    pub upstream_connect_timeout: Duration,
    /// Most connections open to each instance, in use or idle (default
    /// 1,024). A request to an instance at its limit waits for one of them
    /// up to the pool's ready timeout (1 s), then gets 503.
    pub upstream_max_connections: usize,
    /// How long a connection to an instance stays open unused (default
    /// 90 s).
    #[serde(with = "humantime_serde")]
    pub upstream_idle_timeout: Duration,
    /// How long a draining gateway lets open requests finish on SIGTERM
    /// (default 30 s).
    #[serde(with = "humantime_serde")]
    pub drain_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_connections: 10_000,
            max_body_bytes: 1024 * 1024,
            header_read_timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(60),
            request_timeout: Duration::from_secs(60),
            upstream_connect_timeout: Duration::from_secs(2),
            upstream_max_connections: foresight::forward::DEFAULT_MAX_CONNECTIONS,
            upstream_idle_timeout: foresight::forward::DEFAULT_IDLE_TIMEOUT,
            drain_timeout: Duration::from_secs(30),
        }
    }
}

/// `[proxy]`: forwarding headers.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ProxyConfig {
    /// Peers whose `X-Forwarded-For` and `Forwarded` headers are kept and
    /// extended (CIDR, e.g. `10.0.0.0/8`); from any other peer they are
    /// replaced.
    pub trusted_proxies: Vec<IpNet>,
}

/// `[forecast]`: the shared forecaster.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ForecastConfig {
    /// Prediction on (default true): the forecaster learns from the routed
    /// requests and the host, and failover moves sessions off an instance
    /// predicted to degrade.
    pub enabled: bool,
    /// How far ahead a predicted degradation acts (default 5 s).
    #[serde(with = "humantime_serde")]
    pub health_lead: Duration,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            health_lead: Duration::from_secs(5),
        }
    }
}

/// `[cors]`: browser origins allowed to call the gateway.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CorsConfig {
    /// Exact origins (`https://app.example`); empty: no CORS headers.
    pub allow_origins: Vec<Spanned<String>>,
}

/// A configuration error, with where it is.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}:{column}: {message}")]
pub struct ConfigError {
    /// The file's name as given.
    pub file: String,
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

/// Reading the file failed.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read {file}: {source}")]
    Read {
        /// The file.
        file: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

impl Config {
    /// Reads and validates the file at `path`.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| LoadError::Read {
            file: file.clone(),
            source,
        })?;
        Ok(Self::parse(&file, &text)?)
    }

    /// Parses and validates `text`; errors name `file`, and relative paths
    /// in it are read from `file`'s folder.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigError> {
        let at = |span: Option<Range<usize>>, message: String| {
            let (line, column) = line_column(text, span.map_or(0, |s| s.start));
            ConfigError {
                file: file.to_owned(),
                line,
                column,
                message,
            }
        };
        let mut config: Config =
            toml::from_str(text).map_err(|e| at(e.span(), e.message().to_owned()))?;
        let folder = Path::new(file).parent().unwrap_or(Path::new(""));
        config.upstream_tls.resolve_paths(folder);
        config
            .validate()
            .map_err(|(span, message)| at(Some(span), message))?;
        Ok(config)
    }

    fn validate(&self) -> Result<(), (Range<usize>, String)> {
        if self.instances.is_empty() {
            return Err((0..0, "at least one [[instance]] is required".into()));
        }
        // Port 0 asks the system for a free port, so two of them differ.
        let (public, admin) = (self.listen.public.get_ref(), self.listen.admin.get_ref());
        if public == admin && public.port() != 0 {
            return Err((
                self.listen.admin.span(),
                "the admin listener must not share the public address".into(),
            ));
        }
        let mut seen: Vec<&str> = Vec::new();
        for instance in &self.instances {
            let instance = instance.get_ref();
            let id = instance.id.get_ref();
            if id.is_empty() || id.len() > 64 {
                return Err((
                    instance.id.span(),
                    "instance id must be 1 to 64 characters".into(),
                ));
            }
            if seen.contains(&id.as_str()) {
                return Err((
                    instance.id.span(),
                    format!("instance {id:?} is listed twice"),
                ));
            }
            seen.push(id);
            let weight = *instance.weight.get_ref();
            if !(weight.is_finite() && weight > 0.0) {
                return Err((
                    instance.weight.span(),
                    format!("weight must be above 0, not {weight}"),
                ));
            }
        }
        match (self.key.kind, &self.key.name) {
            (KeyKind::Header, None) => {
                return Err((0..0, "[key] kind = \"header\" needs a name".into()));
            }
            (KeyKind::Header, Some(name))
                if http::HeaderName::try_from(name.get_ref().as_str()).is_err() =>
            {
                return Err((
                    name.span(),
                    format!("{:?} is not a header name", name.get_ref()),
                ));
            }
            (KeyKind::Jwt, Some(name)) => {
                return Err((
                    name.span(),
                    "a jwt key reads the Authorization header and takes no name".into(),
                ));
            }
            _ => {}
        }
        let _checked = self.shadow_policy()?;
        if let Some(factor) = &self.routing.balance_factor {
            let c = *factor.get_ref();
            if !(c.is_finite() && c >= 1.0) {
                return Err((
                    factor.span(),
                    format!("balance_factor must be at least 1, not {c}"),
                ));
            }
        }
        if self.limits.max_connections == 0 {
            return Err((0..0, "[limits] max_connections must be at least 1".into()));
        }
        if self.limits.upstream_max_connections == 0 {
            return Err((
                0..0,
                "[limits] upstream_max_connections must be at least 1".into(),
            ));
        }
        self.upstream_tls.check()?;
        self.server.check()?;
        for origin in &self.cors.allow_origins {
            if http::HeaderValue::try_from(origin.get_ref().as_str()).is_err()
                || !origin.get_ref().contains("://")
            {
                return Err((
                    origin.span(),
                    format!(
                        "{:?} is not an origin like https://app.example",
                        origin.get_ref()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// The `[shadow]` section's policy, checked against the instances.
    pub(crate) fn shadow_policy(&self) -> Result<ShadowPolicy, (Range<usize>, String)> {
        let ids: Vec<&str> = self
            .instances
            .iter()
            .map(|i| i.get_ref().id.get_ref().as_str())
            .collect();
        self.shadow.policy(&ids)
    }

    /// The instances as topology specs.
    pub fn instance_specs(&self) -> Vec<foresight::core::InstanceSpec> {
        self.instances
            .iter()
            .map(|i| {
                let i = i.get_ref();
                foresight::core::InstanceSpec::new(i.id.get_ref().as_str())
                    .with_addr(i.addr)
                    .with_weight(*i.weight.get_ref())
                    .with_draining(i.draining)
            })
            .collect()
    }
}

/// Line and column (from 1) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

mod server;
pub use server::ServerConfig;
mod shadow;
pub use shadow::{RuleAction, ShadowConfig, ShadowRuleConfig};
mod upstream_tls;
pub use upstream_tls::UpstreamTlsConfig;

#[cfg(test)]
mod tests;
