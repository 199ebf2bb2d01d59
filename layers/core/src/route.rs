//! The routing decision that travels with a request, and the record of who
//! served it.

use http::{HeaderMap, HeaderName, HeaderValue};
use smallvec::SmallVec;

use crate::instance::InstanceId;
use crate::key::ClientKey;

/// Header that marks the role of a request between the routing tier and an
/// instance. Its only value today is `shadow`.
///
/// Only the routing tier may set it: `ShardLayer` strips any copy a client
/// sent at the tier's entry, and `ShadowWriteLayer` sets it on the copies it
/// makes. Its value is read with [`Role::of_headers`], which ignores ASCII
/// case and surrounding spaces or tabs (`shadow`, `Shadow`, `SHADOW` and
/// ` shadow ` all mark a shadow), on both tiers alike.
pub static ROLE_HEADER: HeaderName = HeaderName::from_static("x-foresight-role");

/// Optional response header naming the instance that served a request.
pub static INSTANCE_HEADER: HeaderName = HeaderName::from_static("x-foresight-instance");

/// Ranked candidates of a route; inline up to three, the usual `k`.
pub type Ranked = SmallVec<[InstanceId; 3]>;

/// Why a request goes to its target.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// The first-ranked instance serves it.
    Primary,
    /// A later-ranked instance serves it (failover, replay, migration).
    Secondary,
    /// A copy whose response is discarded; it only warms the target.
    Shadow,
}

impl Role {
    /// The value of [`ROLE_HEADER`] for this role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Primary => "primary",
            Role::Secondary => "secondary",
            Role::Shadow => "shadow",
        }
    }

    /// The role a value of [`ROLE_HEADER`] names: compared ignoring ASCII
    /// case, after trimming the spaces and tabs HTTP allows around a field
    /// value; `None` for any other value.
    ///
    /// ```
    /// use foresight_core::Role;
    /// use http::HeaderValue;
    ///
    /// for value in ["shadow", "Shadow", "SHADOW", " shadow\t"] {
    ///     let value = HeaderValue::from_static(value);
    ///     assert_eq!(Role::from_header_value(&value), Some(Role::Shadow));
    /// }
    /// assert_eq!(Role::from_header_value(&HeaderValue::from_static("shadowy")), None);
    /// ```
    pub fn from_header_value(value: &HeaderValue) -> Option<Self> {
        let value = value.as_bytes().trim_ascii();
        [Role::Primary, Role::Secondary, Role::Shadow]
            .into_iter()
            .find(|role| value.eq_ignore_ascii_case(role.as_str().as_bytes()))
    }

    /// The role `headers` mark a request with: [`Role::Shadow`] when any
    /// value of [`ROLE_HEADER`] names it (a request marked twice is treated
    /// as a shadow, never as the client's own), else the role of the first
    /// value that names one; `None` when no value does.
    pub fn of_headers(headers: &HeaderMap) -> Option<Self> {
        let mut roles = headers
            .get_all(&ROLE_HEADER)
            .iter()
            .filter_map(Role::from_header_value);
        let first = roles.next()?;
        if first == Role::Shadow || roles.any(|role| role == Role::Shadow) {
            Some(Role::Shadow)
        } else {
            Some(first)
        }
    }

    /// Removes every value of [`ROLE_HEADER`] from `headers`, as the entry
    /// of the routing tier does with what a client sent; true when there
    /// was one.
    pub fn strip(headers: &mut HeaderMap) -> bool {
        headers.remove(&ROLE_HEADER).is_some()
    }
}

/// A routing decision, stored in request extensions by the shard layer and
/// read by the layers below it.
#[derive(Clone, Debug)]
pub struct Route {
    /// The client key the decision was made for.
    pub key: ClientKey,
    /// Candidates by rendezvous rank, best first, all distinct.
    pub ranked: Ranked,
    /// The instance this request is to be sent to.
    pub target: InstanceId,
    /// Why it goes there.
    pub role: Role,
    /// Which attempt of the request this is: 0 for the first, then 1, 2…
    /// for each replay or hedge (`HealthFailoverLayer` numbers them). The
    /// same number as the [`Attempt`](crate::attempt::Attempt) an instance
    /// reads from [`ATTEMPT_HEADER`](crate::attempt::ATTEMPT_HEADER); only
    /// a first attempt is shadowed.
    pub attempt: u16,
}

impl Route {
    /// A primary route to the first ranked candidate.
    ///
    /// Returns `None` when `ranked` is empty.
    pub fn primary(key: ClientKey, ranked: Ranked) -> Option<Self> {
        let target = ranked.first()?.clone();
        Some(Self {
            key,
            ranked,
            target,
            role: Role::Primary,
            attempt: 0,
        })
    }

    /// The candidate ranked after `instance`, if any.
    pub fn next_after(&self, instance: &InstanceId) -> Option<&InstanceId> {
        let at = self.ranked.iter().position(|c| c == instance)?;
        self.ranked.get(at + 1)
    }

    /// This route re-aimed at another target with another role, for the
    /// same attempt.
    #[must_use]
    pub fn retarget(&self, target: InstanceId, role: Role) -> Self {
        Self {
            key: self.key.clone(),
            ranked: self.ranked.clone(),
            target,
            role,
            attempt: self.attempt,
        }
    }

    /// This route for attempt `attempt` of the request (0 for the first).
    #[must_use]
    pub fn with_attempt(mut self, attempt: u16) -> Self {
        self.attempt = attempt;
        self
    }

    /// Whether this is the request's first attempt: not a replay, not a
    /// hedge.
    pub fn is_first_attempt(&self) -> bool {
        self.attempt == 0
    }
}

/// Response extension naming the instance that produced the response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServedBy(pub InstanceId);

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(values: &[&'static str]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for value in values {
            headers.append(&ROLE_HEADER, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn role_values_ignore_case_and_surrounding_whitespace() {
        for value in [
            "shadow", "Shadow", "SHADOW", "sHaDoW", " shadow", "shadow\t", " SHADOW ",
        ] {
            assert_eq!(
                Role::from_header_value(&HeaderValue::from_static(value)),
                Some(Role::Shadow),
                "{value:?}"
            );
        }
        assert_eq!(
            Role::from_header_value(&HeaderValue::from_static("Primary")),
            Some(Role::Primary)
        );
        for value in ["", "shadows", "sha dow", "shadow,primary", "shadow;q=1"] {
            assert_eq!(
                Role::from_header_value(&HeaderValue::from_static(value)),
                None,
                "{value:?}"
            );
        }
    }

    #[test]
    fn any_shadow_value_makes_a_shadow() {
        assert_eq!(Role::of_headers(&headers(&[])), None);
        assert_eq!(Role::of_headers(&headers(&["nonsense"])), None);
        assert_eq!(
            Role::of_headers(&headers(&["primary"])),
            Some(Role::Primary)
        );
        assert_eq!(
            Role::of_headers(&headers(&["primary", "SHADOW"])),
            Some(Role::Shadow)
        );
        assert_eq!(Role::of_headers(&headers(&[" Shadow"])), Some(Role::Shadow));
    }

    #[test]
    fn strip_removes_every_value() {
        let mut map = headers(&["shadow", "Shadow"]);
        map.insert("x-other", HeaderValue::from_static("kept"));
        assert!(Role::strip(&mut map));
        assert!(map.get(&ROLE_HEADER).is_none());
        assert_eq!(map["x-other"], "kept");
        assert!(!Role::strip(&mut map));
    }
}
