//! `[apps.NAME]`: the settings of the built-in apps.
//!
//! An app's kind is its name (`[apps.echo]` is an echo app) unless the
//! section says `kind = "..."`, which lets two apps of one kind coexist
//! (`[apps.menu] kind = "keyword"` beside `[apps.keyword]`).

use std::time::Duration;
use std::{collections::BTreeMap, fmt};

use serde::{Deserialize, Serialize};

use super::services::SmsServicesAppConfig;
use crate::template::Template;

/// The built-in kinds of app.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AppKind {
    /// Replies with a template, to every message.
    Echo,
    /// Replies by the message's first word.
    Keyword,
    /// Hands each message to an HTTP service.
    Webhook,
    /// Keeps the list of people who sent STOP, and sends them nothing more.
    Optout,
    /// Kannel's sms-services (`[[sms_services]]`).
    #[serde(rename = "sms_services")]
    SmsServices,
}

impl AppKind {
    /// Every kind.
    pub const ALL: [AppKind; 5] = [
        AppKind::Echo,
        AppKind::Keyword,
        AppKind::Webhook,
        AppKind::Optout,
        AppKind::SmsServices,
    ];

    /// The kind's name in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            AppKind::Echo => "echo",
            AppKind::Keyword => "keyword",
            AppKind::Webhook => "webhook",
            AppKind::Optout => "optout",
            AppKind::SmsServices => "sms_services",
        }
    }

    /// The kind called `name`, if any.
    pub fn from_name(name: &str) -> Option<AppKind> {
        AppKind::ALL.into_iter().find(|kind| kind.name() == name)
    }

    /// The kind's settings when its section is absent.
    pub fn default_config(self) -> AppConfig {
        match self {
            AppKind::Echo => AppConfig::Echo(EchoConfig::default()),
            AppKind::Keyword => AppConfig::Keyword(KeywordConfig::default()),
            AppKind::Webhook => AppConfig::Webhook(WebhookConfig::default()),
            AppKind::Optout => AppConfig::Optout(OptoutConfig::default()),
            AppKind::SmsServices => AppConfig::SmsServices(SmsServicesAppConfig::default()),
        }
    }

    /// `echo, keyword, webhook, optout, sms_services`, for messages.
    pub(crate) fn list() -> String {
        let names: Vec<&str> = AppKind::ALL.iter().map(|kind| kind.name()).collect();
        names.join(", ")
    }
}

impl fmt::Display for AppKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One app's settings, by kind. Serialized with its `kind`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum AppConfig {
    Echo(EchoConfig),
    Keyword(KeywordConfig),
    Webhook(WebhookConfig),
    Optout(OptoutConfig),
    #[serde(rename = "sms_services")]
    SmsServices(SmsServicesAppConfig),
}

impl AppConfig {
    /// Which kind of app this configures.
    pub fn kind(&self) -> AppKind {
        match self {
            AppConfig::Echo(_) => AppKind::Echo,
            AppConfig::Keyword(_) => AppKind::Keyword,
            AppConfig::Webhook(_) => AppKind::Webhook,
            AppConfig::Optout(_) => AppKind::Optout,
            AppConfig::SmsServices(_) => AppKind::SmsServices,
        }
    }
}

/// `[apps.echo]`: replies to every message with a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "an echo app's section (a table)")]
pub struct EchoConfig {
    /// The reply. The default, `%a`, sends the message's words back.
    pub template: Template,
}

impl Default for EchoConfig {
    fn default() -> EchoConfig {
        EchoConfig {
            template: compiled("%a"),
        }
    }
}

/// `[apps.keyword]`: a reply per keyword, the message's first word.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "a keyword app's section (a table)")]
pub struct KeywordConfig {
    /// The reply when no rule matches; `None`: leave the message to the
    /// apps after this one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<Template>,
    /// Keyword to reply template. Keywords are single words, matched
    /// against the message's first word ignoring case.
    pub rules: BTreeMap<String, Template>,
}

impl KeywordConfig {
    /// The rule for a message whose first word is `word`, ignoring case.
    pub fn rule(&self, word: &str) -> Option<&Template> {
        self.rules
            .iter()
            .find(|(keyword, _)| same_word(keyword, word))
            .map(|(_, reply)| reply)
    }
}

/// `[apps.webhook]`: each message goes to an HTTP service, which may reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "a webhook app's section (a table)")]
pub struct WebhookConfig {
    /// The URL to call: a template rendered in URL mode, so escapes give
    /// URL-encoded values. Required; must be http:// or https:// with the
    /// host written out.
    pub url: Template,
    /// How long to wait for the service.
    pub timeout_ms: u64,
    /// What the sender gets when the call fails.
    pub on_failure: OnFailure,
    /// The reply when `on_failure = "reply"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reply: Option<Template>,
}

impl WebhookConfig {
    /// How long to wait for the service.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl Default for WebhookConfig {
    fn default() -> WebhookConfig {
        WebhookConfig {
            url: Template::default(),
            // Routing is inline: a slow service holds up its message, so
            // the wait is short.
            timeout_ms: 5000,
            on_failure: OnFailure::None,
            failure_reply: None,
        }
    }
}

/// What a webhook app does when its service fails or times out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Nothing: the failure is logged and the next app runs.
    #[default]
    None,
    /// Send `failure_reply`.
    Reply,
}

/// `[apps.optout]`: STOP and START.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "an optout app's section (a table)")]
pub struct OptoutConfig {
    /// First words that opt the sender out (ignoring case).
    pub stop_keywords: Vec<String>,
    /// First words that opt the sender back in (ignoring case).
    pub start_keywords: Vec<String>,
    /// The reply to a stop keyword; `None`: no reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_reply: Option<Template>,
    /// The reply to a start keyword; `None`: no reply.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start_reply: Option<Template>,
}

impl OptoutConfig {
    /// Whether `word` (a message's first word) opts its sender out.
    pub fn is_stop(&self, word: &str) -> bool {
        self.stop_keywords.iter().any(|k| same_word(k, word))
    }

    /// Whether `word` (a message's first word) opts its sender back in.
    pub fn is_start(&self, word: &str) -> bool {
        self.start_keywords.iter().any(|k| same_word(k, word))
    }
}

impl Default for OptoutConfig {
    fn default() -> OptoutConfig {
        let words = |list: &[&str]| list.iter().map(|w| (*w).to_owned()).collect();
        OptoutConfig {
            // The words US carriers (CTIA) and most aggregators treat as
            // opting out and back in.
            stop_keywords: words(&["STOP", "UNSUBSCRIBE", "QUIT", "CANCEL", "END"]),
            start_keywords: words(&["START", "SUBSCRIBE"]),
            // Confirmation texts are the deployment's to word.
            stop_reply: None,
            start_reply: None,
        }
    }
}

/// Whether two words are the same ignoring case (Unicode lower case).
pub(crate) fn same_word(a: &str, b: &str) -> bool {
    a.chars()
        .flat_map(char::to_lowercase)
        .eq(b.chars().flat_map(char::to_lowercase))
}

/// A template from a constant that is known to compile.
fn compiled(source: &str) -> Template {
    // Only called with escapes from the list; the fallback keeps a typo in
    // a default from panicking, and the tests catch it.
    Template::compile(source).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in AppKind::ALL {
            assert_eq!(AppKind::from_name(kind.name()), Some(kind));
            assert_eq!(kind.default_config().kind(), kind);
        }
        assert_eq!(AppKind::from_name("Echo"), None);
        assert_eq!(
            AppKind::list(),
            "echo, keyword, webhook, optout, sms_services"
        );
    }

    #[test]
    fn default_templates_compile() {
        assert_eq!(EchoConfig::default().template.source(), "%a");
    }

    #[test]
    fn keywords_match_ignoring_case() {
        let mut keyword = KeywordConfig::default();
        keyword
            .rules
            .insert("Help".into(), Template::compile("h").unwrap());
        keyword
            .rules
            .insert("ÉTAT".into(), Template::compile("e").unwrap());
        assert_eq!(keyword.rule("HELP").map(Template::source), Some("h"));
        assert_eq!(keyword.rule("help").map(Template::source), Some("h"));
        assert_eq!(keyword.rule("état").map(Template::source), Some("e"));
        assert_eq!(keyword.rule("helps"), None);

        let optout = OptoutConfig::default();
        assert!(optout.is_stop("stop") && optout.is_stop("Unsubscribe"));
        assert!(optout.is_start("start") && !optout.is_start("stop"));
    }
}
