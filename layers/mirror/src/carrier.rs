//! Where the session id travels: a cookie (default) or a header.

use http::header::{COOKIE, SET_COOKIE};
use http::{HeaderMap, HeaderName, HeaderValue};

use foresight_store::SessionId;

/// `SameSite` attribute of the session cookie.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SameSite {
    /// Sent only with same-site requests (the default).
    #[default]
    Strict,
    /// Also sent with top-level cross-site navigations.
    Lax,
    /// Always sent (requires `Secure`).
    None,
}

/// Attributes of the session cookie.
#[derive(Clone, Debug)]
pub(crate) struct CookieConfig {
    pub(crate) name: String,
    pub(crate) host_prefix: bool,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) path: String,
    pub(crate) max_age: Option<u64>,
}

impl Default for CookieConfig {
    fn default() -> Self {
        Self {
            name: "session".to_owned(),
            host_prefix: true,
            secure: true,
            http_only: true,
            same_site: SameSite::Strict,
            path: "/".to_owned(),
            max_age: None,
        }
    }
}

impl CookieConfig {
    /// The name as sent, with the `__Host-` prefix when enabled.
    pub(crate) fn full_name(&self) -> String {
        if self.host_prefix {
            format!("__Host-{}", self.name)
        } else {
            self.name.clone()
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Carrier {
    Cookie {
        config: CookieConfig,
        full_name: String,
    },
    Header(HeaderName),
}

/// What the request presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Presented {
    None,
    Malformed,
    Id(SessionId),
}

impl Carrier {
    pub(crate) fn cookie(config: CookieConfig) -> Self {
        let full_name = config.full_name();
        Carrier::Cookie { config, full_name }
    }

    pub(crate) fn read(&self, headers: &HeaderMap) -> Presented {
        let value = match self {
            Carrier::Header(name) => headers.get(name).and_then(|v| v.to_str().ok()),
            Carrier::Cookie { full_name, .. } => headers
                .get_all(COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .find(|(name, _)| *name == full_name)
                .map(|(_, value)| value.trim_matches('"')),
        };
        match value {
            None => Presented::None,
            Some(text) => text.parse().map_or(Presented::Malformed, Presented::Id),
        }
    }

    /// Sets the id on a response; `None` removes it from the client.
    pub(crate) fn write(&self, headers: &mut HeaderMap, id: Option<SessionId>) {
        match self {
            Carrier::Header(name) => {
                let value = id.map_or_else(String::new, |id| id.to_string());
                if let Ok(value) = HeaderValue::from_str(&value) {
                    headers.insert(name.clone(), value);
                }
            }
            Carrier::Cookie { config, full_name } => {
                let mut cookie = match id {
                    Some(id) => format!("{full_name}={id}"),
                    None => format!("{full_name}=; Max-Age=0"),
                };
                // `__Host-` requires Secure, Path=/ and no Domain.
                cookie.push_str("; Path=");
                cookie.push_str(if config.host_prefix {
                    "/"
                } else {
                    &config.path
                });
                if config.secure || config.host_prefix {
                    cookie.push_str("; Secure");
                }
                if config.http_only {
                    cookie.push_str("; HttpOnly");
                }
                cookie.push_str(match config.same_site {
                    SameSite::Strict => "; SameSite=Strict",
                    SameSite::Lax => "; SameSite=Lax",
                    SameSite::None => "; SameSite=None",
                });
                if let (Some(age), Some(_)) = (config.max_age, id) {
                    cookie.push_str(&format!("; Max-Age={age}"));
                }
                if let Ok(value) = HeaderValue::from_str(&cookie) {
                    headers.append(SET_COOKIE, value);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cookie_among_others() {
        let carrier = Carrier::cookie(CookieConfig::default());
        let id = SessionId::random();
        let mut headers = HeaderMap::new();
        headers.insert(
            COOKIE,
            HeaderValue::from_str(&format!("a=b; __Host-session={id}; c=d")).unwrap(),
        );
        assert_eq!(carrier.read(&headers), Presented::Id(id));
        headers.insert(COOKIE, HeaderValue::from_static("__Host-session=nope"));
        assert_eq!(carrier.read(&headers), Presented::Malformed);
        headers.insert(COOKIE, HeaderValue::from_static("session=x"));
        assert_eq!(carrier.read(&headers), Presented::None);
    }

    #[test]
    fn writes_strict_host_cookie_by_default() {
        let carrier = Carrier::cookie(CookieConfig::default());
        let id = SessionId::random();
        let mut headers = HeaderMap::new();
        carrier.write(&mut headers, Some(id));
        assert_eq!(
            headers[SET_COOKIE],
            format!("__Host-session={id}; Path=/; Secure; HttpOnly; SameSite=Strict")
        );
    }
}
