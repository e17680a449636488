//! `[push]` and `[backends.NAME]`: how outgoing messages leave rapidbox.
//!
//! Each backend sends through one transport: `kannel` (an MT through the
//! bearerbox link), `push` (an HTTP request built from a URL template, as
//! rapidsms-httprouter's `ROUTER_URL`) or `pull` (the message waits in
//! `/router/outbox` until a relay fetches it). `[backends.default]` covers
//! backends without a section of their own; with neither, the transport is
//! push when a push URL is set, else kannel when the bearerbox link is
//! enabled, else pull.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// One of the three ways out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TransportKind {
    Kannel,
    Push,
    Pull,
}

/// `[backends.NAME]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(expecting = "a backend's section (a table)")]
pub struct BackendConfig {
    /// How this backend's outgoing messages leave.
    pub transport: TransportKind,
}

/// The HTTP method of push requests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PushMethod {
    /// Everything in the URL, as httprouter does.
    #[default]
    Get,
    /// The URL as for GET, plus a form body with backend, recipient, text
    /// and id, for relays that want a body.
    Post,
}

/// `[push]`: the URL template(s) and the client's bounds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [push] section (a table)")]
pub struct PushConfig {
    /// One URL for every push backend. `%(backend)s`, `%(recipient)s`,
    /// `%(text)s` and `%(id)s` are replaced, URL-encoded.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Or one URL per backend, with an optional `default` entry.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub urls: BTreeMap<String, String>,
    pub method: PushMethod,
    /// How long one request may take, answer included.
    pub timeout_ms: u64,
    /// Requests in flight at once.
    pub max_in_flight: usize,
    /// Failed attempts after which a message is given up (F).
    pub max_attempts: u32,
    /// How often the store is swept for messages to retry.
    pub sweep_secs: u64,
    /// The wait before the first retry; it doubles after each failure, up
    /// to an hour.
    pub retry_secs: u64,
    /// A queued message the fresh path has not sent after this long is
    /// taken by a sweep.
    pub stale_queued_secs: u64,
}

impl Default for PushConfig {
    fn default() -> PushConfig {
        PushConfig {
            url: None,
            urls: BTreeMap::new(),
            method: PushMethod::Get,
            timeout_ms: 10_000,
            max_in_flight: 32,
            // httprouter: "the third failure makes it F".
            max_attempts: 3,
            // httprouter's periodic task: every minute, E messages and Q
            // messages older than three minutes.
            sweep_secs: 60,
            retry_secs: 60,
            stale_queued_secs: 180,
        }
    }
}

impl PushConfig {
    /// Whether any push URL is configured.
    pub fn is_set(&self) -> bool {
        self.url.is_some() || !self.urls.is_empty()
    }

    /// The URL template for `backend`: its own entry, else `default`, else
    /// the single `url`. Backends match exactly first, then ignoring case.
    pub fn url_for(&self, backend: &str) -> Option<&str> {
        self.urls
            .get(backend)
            .or_else(|| {
                self.urls
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(backend))
                    .map(|(_, url)| url)
            })
            .or_else(|| self.urls.get("default"))
            .or(self.url.as_ref())
            .map(String::as_str)
    }

    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// The four placeholders a push URL may hold.
pub const PUSH_FIELDS: [&str; 4] = ["backend", "recipient", "text", "id"];

/// Checks a push URL template: http(s), and only known `%(name)s` fields.
pub(super) fn check_push_url(url: &str) -> Result<(), String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("must start with http:// or https://".into());
    }
    let mut rest = url;
    while let Some(at) = rest.find("%(") {
        let after = &rest[at + 2..];
        let Some(end) = after.find(")s") else {
            // Twenty characters, not bytes: a byte offset could fall inside
            // a character of the user's text.
            let shown: String = rest[at..].chars().take(20).collect();
            return Err(format!("`%(` without a closing `)s` at `{shown}`"));
        };
        let name = &after[..end];
        if !PUSH_FIELDS.contains(&name) {
            return Err(format!(
                "unknown field `%({name})s`; the fields are %(backend)s, %(recipient)s, %(text)s and %(id)s"
            ));
        }
        rest = &after[end + 2..];
    }
    Ok(())
}

/// Which transport each backend's outgoing messages take: the part of
/// the configuration ([`Config::transports`](super::Config::transports))
/// the dispatcher and the outboxes need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Transports {
    backends: BTreeMap<String, BackendConfig>,
    push_set: bool,
    kannel_enabled: bool,
}

impl Transports {
    /// The transports of `[backends]`, `[push]` and `[kannel] enabled`.
    pub fn new(
        backends: BTreeMap<String, BackendConfig>,
        push: &PushConfig,
        kannel_enabled: bool,
    ) -> Transports {
        Transports {
            backends,
            push_set: push.is_set(),
            kannel_enabled,
        }
    }

    /// Which transport `backend` uses: its own entry (matched exactly,
    /// then ignoring case), else `default`'s, else push when a push URL is
    /// set, else the bearerbox when the link runs, else pull.
    pub fn transport_for(&self, backend: &str) -> TransportKind {
        let backends = &self.backends;
        let configured = backends
            .get(backend)
            .or_else(|| {
                backends
                    .iter()
                    .find(|(name, _)| name.eq_ignore_ascii_case(backend))
                    .map(|(_, b)| b)
            })
            .or_else(|| backends.get("default"));
        match configured {
            Some(b) => b.transport,
            None if self.push_set => TransportKind::Push,
            None if self.kannel_enabled => TransportKind::Kannel,
            None => TransportKind::Pull,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_fall_back_to_default_then_the_single_url() {
        let mut push = PushConfig::default();
        assert_eq!(push.url_for("tigo"), None);
        push.url = Some("http://one/".into());
        assert_eq!(push.url_for("tigo"), Some("http://one/"));
        push.urls.insert("default".into(), "http://default/".into());
        push.urls.insert("Tigo".into(), "http://tigo/".into());
        assert_eq!(push.url_for("tigo"), Some("http://tigo/"));
        assert_eq!(push.url_for("mtn"), Some("http://default/"));
    }

    #[test]
    fn the_transport_follows_the_documented_fallbacks() {
        let mut backends = BTreeMap::new();
        let push = PushConfig::default();
        assert_eq!(
            Transports::new(backends.clone(), &push, true).transport_for("x"),
            TransportKind::Kannel
        );
        assert_eq!(
            Transports::new(backends.clone(), &push, false).transport_for("x"),
            TransportKind::Pull
        );
        let with_url = PushConfig {
            url: Some("http://r/".into()),
            ..PushConfig::default()
        };
        assert_eq!(
            Transports::new(backends.clone(), &with_url, true).transport_for("x"),
            TransportKind::Push
        );
        backends.insert(
            "default".into(),
            BackendConfig {
                transport: TransportKind::Pull,
            },
        );
        backends.insert(
            "android".into(),
            BackendConfig {
                transport: TransportKind::Kannel,
            },
        );
        assert_eq!(
            Transports::new(backends.clone(), &with_url, true).transport_for("x"),
            TransportKind::Pull
        );
        assert_eq!(
            Transports::new(backends.clone(), &with_url, true).transport_for("Android"),
            TransportKind::Kannel
        );
    }

    #[test]
    fn an_unclosed_field_before_non_ascii_text_is_reported_not_a_panic() {
        let error = check_push_url("http://k/send?text=%(tëxtéééééééééééééééé").unwrap_err();
        assert_eq!(
            error,
            "`%(` without a closing `)s` at `%(tëxtéééééééééééééé`"
        );
    }

    #[test]
    fn push_urls_take_only_the_four_fields() {
        assert!(check_push_url(
            "http://k/send?to=%(recipient)s&text=%(text)s&smsc=%(backend)s&id=%(id)s"
        )
        .is_ok());
        assert!(check_push_url("ftp://k/").is_err());
        assert!(check_push_url("http://k/?x=%(sender)s")
            .unwrap_err()
            .contains("sender"));
        assert!(check_push_url("http://k/?x=%(text").is_err());
    }
}
