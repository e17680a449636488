//! `[[sms_services]]` and `[smsbox]`: Kannel's `group = sms-service` and
//! the smsbox group's keys that shape services, with Kannel's key names in
//! snake_case and its defaults (gwlib/cfg.def, gw/urltrans.c
//! `create_onetrans`, gw/smsbox.c `init_smsbox`).
//!
//! The services run as the router app of kind `sms_services`
//! (`[router] apps = ["sms_services"]`). Where Kannel writes a list as one
//! `;`-separated string (`aliases`, `accepted-smsc`, the prefix lists),
//! rapidbox takes a TOML list; `import-kannel-conf` splits them.
//! Patterns (URLs, texts, `exec` arguments, header, footer) are checked
//! with [`crate::escape::Pattern::compile`] and regexes compiled by
//! `check-config`, so a typo is found before a message is.

use serde::{Deserialize, Serialize};

/// One `[[sms_services]]` entry: Kannel's `group = sms-service`.
///
/// Exactly one of `get_url` (or its old name `url`), `post_url`,
/// `post_xml`, `text`, `file` and `exec` says what the service does, and
/// exactly one of `keyword` and `keyword_regex` when it is picked; the
/// keyword `default` makes it a service for messages no other takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "an sms service (a table)")]
pub struct SmsService {
    /// The service's name: `%n`, and how reports name it. Kannel's default
    /// is the keyword's regex (`^[ ]*(kw|alias)[ ]*`), or `default`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The first word that picks this service, ignoring case; `default`
    /// for the fallback service.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword: Option<String>,
    /// Other first words that pick it.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub aliases: Vec<String>,
    /// A regex (case-sensitive, unanchored) the message text must match,
    /// instead of `keyword`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub keyword_regex: Option<String>,
    /// Take the message whatever its number of words (else a service
    /// without `%a`/`%r` needs exactly as many words after the keyword as
    /// it has `%s`/`%S`).
    pub catch_all: bool,
    /// GET this URL (escapes URL-encoded) and answer with its body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub get_url: Option<String>,
    /// The old name of `get_url`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// POST the message text to this URL, with X-Kannel-* headers.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_url: Option<String>,
    /// POST the message as Kannel's XML to this URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub post_xml: Option<String>,
    /// Answer with this text.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// Answer with the contents of this file (the path may use escapes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// Run this program with these arguments, without a shell, and answer
    /// with what it prints. Each element is one argument.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// Only messages from these smsc-ids.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_smsc: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_smsc_regex: Option<String>,
    /// Only messages with these accounts.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub accepted_account: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted_account_regex: Option<String>,
    /// Read as Kannel reads it, and ignored as smsbox 1.4.5 ignores it in
    /// an sms-service (urltrans.c reads it only for sendsms users).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub forced_smsc: Option<String>,
    /// Read and ignored, as `forced_smsc`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_smsc: Option<String>,
    /// The replies' sender (beats `kannel.global_sender`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub faked_sender: Option<String>,
    /// At most this many SMS per answer; 0 sends none. Kannel's default
    /// is 1 (so is [`SmsService::new`]'s).
    #[serde(default = "one")]
    pub max_messages: u32,
    /// A long answer goes as one concatenated SMS instead of parts.
    pub concatenation: bool,
    /// Where a long answer may be split (any of these characters).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_chars: Option<String>,
    /// Appended to every part but the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub split_suffix: Option<String>,
    /// An empty answer sends nothing (else `smsbox.reply_emptymessage`).
    pub omit_empty: bool,
    /// Put before every SMS of the answer, as written (no escapes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Put after every SMS of the answer, as written (no escapes).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// With `suffix`: an HTML answer is cut to what lies between them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefix: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub suffix: Option<String>,
    /// Kept for Kannel's files; smsbox 1.4.5 reads it and uses it nowhere.
    pub assume_plain_text: bool,
    /// Obey the answer's X-Kannel-* headers (sender, smsc, coding, UDH...).
    pub accept_x_kannel_headers: bool,
    /// Take the keyword off the text before the service sees it.
    pub strip_keyword: bool,
    /// Send X-Kannel-From (the number the MO was sent to).
    pub send_sender: bool,
    /// Senders must start with one of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_prefix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_prefix_regex: Option<String>,
    /// Senders starting with one of these are refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_prefix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_prefix_regex: Option<String>,
    /// Receivers must start with one of these.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_receiver_prefix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_receiver_prefix_regex: Option<String>,
    /// Receivers starting with one of these are refused.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub denied_receiver_prefix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_receiver_prefix_regex: Option<String>,
    /// Only these senders (numbers as written).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub white_list: Option<Vec<String>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub white_list_regex: Option<String>,
    /// Never these senders.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub black_list: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub black_list_regex: Option<String>,
    /// The replies' dlr-url (with escapes) and the reports it asks for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlr_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dlr_mask: Option<i32>,
    /// The charset the service speaks instead of UTF-8.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub alt_charset: Option<String>,
}

impl SmsService {
    /// Most SMS one reply becomes, whatever `max_messages` says: a bound on
    /// what one message can make rapidbox send (255 is the most parts a
    /// concatenated SMS can have).
    pub const MAX_PARTS: u32 = 255;

    /// A service with Kannel's defaults: one SMS per answer.
    pub fn new() -> SmsService {
        SmsService {
            max_messages: 1,
            ..SmsService::default()
        }
    }

    /// Whether this is the fallback service (`keyword = "default"`).
    pub fn is_default(&self) -> bool {
        self.keyword.as_deref() == Some("default")
    }

    /// Kannel's regex for the keyword and its aliases (`create_onetrans`),
    /// matched ignoring case: anchored at the start after spaces but not at
    /// the end, so `helpme` matches the keyword `help` as it does in
    /// smsbox. `None` for `default` and for a `keyword_regex` service.
    pub fn keyword_pattern(&self) -> Option<String> {
        let keyword = self.keyword.as_deref().filter(|k| *k != "default")?;
        let mut alternatives = keyword.to_owned();
        for alias in &self.aliases {
            alternatives.push('|');
            alternatives.push_str(alias);
        }
        Some(format!("^[ ]*({alternatives})[ ]*"))
    }

    /// What the service does, as `(key, value)`: every action key that is
    /// set, so a check can ask for exactly one.
    pub fn actions(&self) -> Vec<&'static str> {
        let set = [
            ("get_url", self.get_url.is_some()),
            ("url", self.url.is_some()),
            ("post_url", self.post_url.is_some()),
            ("post_xml", self.post_xml.is_some()),
            ("text", self.text.is_some()),
            ("file", self.file.is_some()),
            ("exec", self.exec.is_some()),
        ];
        set.into_iter()
            .filter(|(_, s)| *s)
            .map(|(k, _)| k)
            .collect()
    }

    /// Every regex key with its value, for checking.
    pub fn regexes(&self) -> [(&'static str, Option<&str>); 9] {
        [
            ("keyword_regex", self.keyword_regex.as_deref()),
            ("accepted_smsc_regex", self.accepted_smsc_regex.as_deref()),
            (
                "accepted_account_regex",
                self.accepted_account_regex.as_deref(),
            ),
            ("allowed_prefix_regex", self.allowed_prefix_regex.as_deref()),
            ("denied_prefix_regex", self.denied_prefix_regex.as_deref()),
            (
                "allowed_receiver_prefix_regex",
                self.allowed_receiver_prefix_regex.as_deref(),
            ),
            (
                "denied_receiver_prefix_regex",
                self.denied_receiver_prefix_regex.as_deref(),
            ),
            ("white_list_regex", self.white_list_regex.as_deref()),
            ("black_list_regex", self.black_list_regex.as_deref()),
        ]
    }

    /// Every key holding escapes, with its value: the action's pattern or
    /// `exec` arguments. (smsbox writes header and footer as they are, and
    /// expands a `dlr_url` when the report comes, leniently.)
    pub fn patterns(&self) -> Vec<(String, &str)> {
        let mut out = Vec::new();
        for (key, value) in [
            ("get_url", &self.get_url),
            ("url", &self.url),
            ("post_url", &self.post_url),
            ("post_xml", &self.post_xml),
            ("text", &self.text),
            ("file", &self.file),
        ] {
            if let Some(value) = value {
                out.push((key.to_owned(), value.as_str()));
            }
        }
        for (i, arg) in self.exec.iter().flatten().enumerate() {
            out.push((format!("exec[{i}]"), arg.as_str()));
        }
        out
    }
}

fn one() -> u32 {
    1
}

/// How the services write escapes' values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EscapeStyle {
    /// Exactly as smsbox 1.4.5 (URL-encoded even in text replies and
    /// `exec` arguments, `%a` joined with `+`): a drop-in.
    #[default]
    Smsbox,
    /// rapidbox's: values as they are in texts and arguments, RFC 3986
    /// in URLs.
    Rapidbox,
}

/// How the services send a reply with characters outside the GSM
/// alphabet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonGsmReplies {
    /// As UCS-2, so that nothing is lost.
    #[default]
    Ucs2,
    /// As smsbox 1.4.5 (`sms_split`'s round trip through GSM): 7-bit,
    /// each character the GSM alphabet lacks made `?` (and `ç` `Ç`).
    QuestionMarks,
}

/// `[smsbox]`: the smsbox group's keys that shape services.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [smsbox] section (a table)")]
pub struct SmsboxConfig {
    /// The reply when the service's URL fails (after the retries).
    pub reply_couldnotfetch: String,
    /// The reply when an answer has a content type or charset that cannot
    /// become an SMS.
    pub reply_couldnotrepresent: String,
    /// The reply when no service takes a message, or a service fails.
    pub reply_requestfailed: String,
    /// The reply for an empty answer (unless the service has omit_empty).
    pub reply_emptymessage: String,
    /// Whether services see a UCS-2 MO as UTF-8 text (coding 0), as
    /// smsbox with `mo-recode = true`; false shows it as smsbox without
    /// it does: coding 2, its escapes and `post-url` body the UTF-16BE
    /// bytes, its keyword matched on those bytes less their NULs.
    pub mo_recode: bool,
    /// How many times a failed request is tried again.
    pub http_request_retry: u32,
    /// Seconds between those tries.
    pub http_queue_delay: u64,
    /// Requests to services in progress at once, at most.
    pub max_pending_requests: usize,
    /// Seconds to wait for a service's answer.
    pub http_timeout: u64,
    /// The longest SMS, in octets, when an answer is split.
    pub sms_length: usize,
    /// How escapes' values are written (not a Kannel key).
    pub escape_style: EscapeStyle,
    /// How a reply outside the GSM alphabet goes (not a Kannel key).
    pub non_gsm_replies: NonGsmReplies,
}

impl Default for SmsboxConfig {
    fn default() -> SmsboxConfig {
        // smsbox.c's defaults (init_smsbox, HTTP_MAX_RETRIES,
        // HTTP_RETRY_DELAY, HTTP_MAX_PENDING, MAX_SMS_OCTETS; gwlib/http.c's
        // client timeout).
        SmsboxConfig {
            reply_couldnotfetch: "Could not fetch content, sorry.".into(),
            reply_couldnotrepresent: "Result could not be represented as an SMS message.".into(),
            reply_requestfailed: "Request Failed".into(),
            reply_emptymessage: "<Empty reply from service provider>".into(),
            mo_recode: false,
            http_request_retry: 0,
            http_queue_delay: 10,
            max_pending_requests: 512,
            http_timeout: 240,
            sms_length: 140,
            escape_style: EscapeStyle::Smsbox,
            non_gsm_replies: NonGsmReplies::Ucs2,
        }
    }
}

/// The app that runs the services has no settings of its own: they are
/// `[[sms_services]]` and `[smsbox]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "an sms_services app's section (a table)")]
pub struct SmsServicesAppConfig {}
