//! `[[sendsms_users]]`: who may send through `/cgi-bin/sendsms`, as
//! Kannel's `group = sendsms-user`.
//!
//! ```toml
//! [[sendsms_users]]
//! username = "shop"
//! password = "s3cret"
//! default_sender = "8500"   # when a request has no `from`
//! forced_sender = "8500"    # Kannel's faked-sender: replaces any `from`
//! default_smsc = "tigo"     # when a request has no `smsc`
//! forced_smsc = "tigo"      # replaces any `smsc`
//! name = "shop-api"         # the MTs' `service` (default: the username)
//! user_deny_ip = "*.*.*.*"  # refuse the user from these addresses...
//! user_allow_ip = "127.0.0.1;10.0.*.*"  # ...but for these
//!
//! # How long texts are cut, as Kannel's keys of the same names
//! max_messages = 3          # at most this many SMS (default: no limit)
//! concatenation = true      # one concatenated SMS instead of separate ones
//! split_chars = " "         # cut a part after one of these, not mid-word
//! split_suffix = "+"        # ends every part but the last
//! header = ""               # begins every part
//! footer = ""               # ends every part
//!
//! # Which receivers the user may send to, as Kannel's keys of these names
//! white_list_regex = "^\\+256"  # only receivers this matches
//! black_list_regex = "^\\+25670" # never receivers this matches
//!
//! # smsbox's exact behaviour where rapidbox differs on purpose
//! smsbox_compat = false     # the default of the four keys below
//! auto_ucs2 = true          # text without `coding` outside GSM goes UCS-2
//! refuse_undecodable = true # text not valid in its charset is refused
//! form_post = true          # POSTs of application/x-www-form-urlencoded
//! ```
//!
//! A receiver the lists deny is dropped; a request left with none is
//! refused (`Number(s) has/have been denied by white- and/or
//! black-lists.`), as smsbox does. The patterns are searched anywhere in
//! the receiver (anchor them with `^`), in the regex crate's syntax, which
//! agrees with Kannel's POSIX extended expressions for number patterns.
//! Kannel's `allowed-prefix`, `denied-prefix` and `omit-empty` do nothing
//! to a sendsms request in smsbox 1.4.5 (measured), so there are none.
//!
//! A request's `smsc` (or the user's default) is the message's backend,
//! which picks its transport; for the kannel transport it is also the MT's
//! `smsc_id`.
//!
//! # Where rapidbox differs from smsbox, and the keys that undo it
//!
//! Measured against smsbox 1.4.5 (`tests/sendsms_vs_smsbox.rs`):
//!
//! - text without a `coding` that the GSM alphabet cannot say: smsbox
//!   sends it 7-bit with each such character turned into `?`; rapidbox
//!   sends it as UCS-2. `auto_ucs2 = false` gives smsbox's `?`. (An
//!   explicit `coding=0` always gets smsbox's `?`.)
//! - text whose bytes are not valid in its charset (UTF-8 without a
//!   `charset`, an odd number of bytes for UCS-2): smsbox sends them
//!   anyway, UCS-2 as the bytes they are, 7-bit as its conversion to GSM
//!   leaves them (a stray byte read as Latin-1, a cut sequence dropped),
//!   and the phone shows garbage; rapidbox refuses the request
//!   (`Charset or body misformed, rejected`). `refuse_undecodable = false`
//!   sends them as smsbox does.
//! - a user without `max-messages`: smsbox's default is 1, so it cuts the
//!   text to one SMS (160 GSM characters) without a word; rapidbox sends
//!   the whole text (the bearerbox concatenates it). With
//!   `smsbox_compat = true` an unset `max_messages` is 1, as in Kannel.
//! - a POST form (`application/x-www-form-urlencoded`): smsbox refuses it
//!   (`Invalid content-type`, 400); rapidbox reads its parameters as a
//!   GET's. `form_post = false` refuses it as smsbox does.
//!
//! `smsbox_compat = true` sets all four to smsbox's way; a finer key set
//! beside it wins. `max_messages = 0`, which makes smsbox 1.4.5 hang the
//! request forever, is refused by the configuration check.

use serde::{Deserialize, Serialize};

/// One sendsms user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a sendsms user (a table)")]
pub struct SendsmsUser {
    pub username: String,
    pub password: String,
    /// The sender of a request without `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_sender: Option<String>,
    /// The sender of every message, whatever `from` says (Kannel's
    /// `faked-sender`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_sender: Option<String>,
    /// The backend of a request without `smsc`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default_smsc: Option<String>,
    /// The backend of every message, whatever `smsc` says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forced_smsc: Option<String>,
    /// Kannel's `user-deny-ip`: addresses (`;`-separated, `*` for any
    /// number in a place) the user may not send from, unless
    /// `user_allow_ip` lets them; unset, any address may.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_deny_ip: Option<String>,
    /// Kannel's `user-allow-ip`: exceptions to `user_deny_ip`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_allow_ip: Option<String>,
    /// Kannel's `name`: the `service` of the user's MTs (what the
    /// bearerbox's access log and `%n` show); the username when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Kannel's `max-messages`: the most SMS one request's text may take;
    /// the rest is cut. Unset: no limit (1 with `smsbox_compat`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_messages: Option<u32>,
    /// Kannel's `concatenation`: a text of several SMS goes as one
    /// concatenated message instead of separate ones.
    #[serde(default, skip_serializing_if = "is_false")]
    pub concatenation: bool,
    /// Kannel's `split-chars`: a part ends after the last of these that
    /// fits, rather than in the middle of a word.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_chars: Option<String>,
    /// Kannel's `split-suffix`: appended to every part but the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub split_suffix: Option<String>,
    /// Kannel's `header`: put before the text of every part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<String>,
    /// Kannel's `footer`: put after the text of every part.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<String>,
    /// Kannel's `white-list-regex`: only receivers it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub white_list_regex: Option<Pattern>,
    /// Kannel's `black-list-regex`: no receiver it matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub black_list_regex: Option<Pattern>,
    /// smsbox's exact behaviour wherever rapidbox differs on purpose: the
    /// default of `auto_ucs2`, `refuse_undecodable`, `form_post` and of an
    /// unset `max_messages`.
    #[serde(default, skip_serializing_if = "is_false")]
    pub smsbox_compat: bool,
    /// Text without a `coding` that does not fit the GSM alphabet goes as
    /// UCS-2 (true) or, as smsbox, 7-bit with `?` for what does not fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auto_ucs2: Option<bool>,
    /// Text that is not valid in its charset is refused (true) or, as
    /// smsbox, sent as the bytes it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refuse_undecodable: Option<bool>,
    /// POST forms are read as a GET's parameters (true) or, as smsbox,
    /// refused with `Invalid content-type`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub form_post: Option<bool>,
}

/// Whether one of the `;`-separated Kannel IP patterns matches `ip`
/// (gwlib/utils.c `pattern_list_matches_ip`).
fn ip_list_matches(patterns: &str, ip: &str) -> bool {
    patterns.split(';').any(|p| ip_matches(p.trim(), ip))
}

/// One Kannel IP pattern: characters match themselves, a `*` matches the
/// rest of one dot-separated place (`pattern_matches_ip`).
fn ip_matches(pattern: &str, ip: &str) -> bool {
    let (pattern, ip) = (pattern.as_bytes(), ip.as_bytes());
    let (mut i, mut j) = (0, 0);
    while i < pattern.len() && j < ip.len() {
        if pattern[i] == ip[j] {
            i += 1;
            j += 1;
        } else if pattern[i] != b'*' {
            return false;
        } else {
            i += 1;
            while j < ip.len() && ip[j] != b'.' {
                j += 1;
            }
        }
    }
    i >= pattern.len() && j >= ip.len()
}

fn is_false(value: &bool) -> bool {
    !*value
}

/// A regular expression from the configuration, compiled once when the
/// file is read (a bad one is a configuration error at its key) and
/// written back as it was given.
#[derive(Debug, Clone)]
pub struct Pattern(regex::Regex);

impl Pattern {
    /// Compiles `pattern`.
    pub fn new(pattern: &str) -> Result<Pattern, regex::Error> {
        regex::Regex::new(pattern).map(Pattern)
    }

    /// Whether it matches anywhere in `text`.
    pub fn is_match(&self, text: &str) -> bool {
        self.0.is_match(text)
    }
}

impl PartialEq for Pattern {
    fn eq(&self, other: &Pattern) -> bool {
        self.0.as_str() == other.0.as_str()
    }
}

impl Eq for Pattern {}

impl Serialize for Pattern {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.0.as_str())
    }
}

impl<'de> Deserialize<'de> for Pattern {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Pattern, D::Error> {
        let pattern = String::deserialize(deserializer)?;
        Pattern::new(&pattern).map_err(serde::de::Error::custom)
    }
}

/// What a user's settings mean for a request, resolved once:
/// [`SendsmsUser::behaviour`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// The most SMS a text may take; `None` for no limit.
    pub max_messages: Option<u32>,
    pub auto_ucs2: bool,
    pub refuse_undecodable: bool,
    pub form_post: bool,
}

impl SendsmsUser {
    /// Whether the user may send from `ip`, as Kannel's `is_allowed_ip`:
    /// anyone when there is no `user_deny_ip`; else an address
    /// `user_allow_ip` matches, or one `user_deny_ip` does not. An unknown
    /// address is refused once there is a deny list.
    pub fn allows_ip(&self, ip: Option<std::net::IpAddr>) -> bool {
        let Some(deny) = self.user_deny_ip.as_deref().filter(|d| !d.is_empty()) else {
            return true;
        };
        let Some(ip) = ip else {
            return false;
        };
        let ip = ip.to_canonical().to_string();
        if self
            .user_allow_ip
            .as_deref()
            .is_some_and(|allow| ip_list_matches(allow, &ip))
        {
            return true;
        }
        !ip_list_matches(deny, &ip)
    }

    /// A user with `username` and `password` and every other key unset.
    pub fn new(username: &str, password: &str) -> SendsmsUser {
        SendsmsUser {
            username: username.to_owned(),
            password: password.to_owned(),
            default_sender: None,
            forced_sender: None,
            default_smsc: None,
            forced_smsc: None,
            name: None,
            user_deny_ip: None,
            user_allow_ip: None,
            max_messages: None,
            concatenation: false,
            split_chars: None,
            split_suffix: None,
            header: None,
            footer: None,
            white_list_regex: None,
            black_list_regex: None,
            smsbox_compat: false,
            auto_ucs2: None,
            refuse_undecodable: None,
            form_post: None,
        }
    }

    /// The user's behaviour: each key as set, else smsbox's way under
    /// `smsbox_compat`, else rapidbox's.
    pub fn behaviour(&self) -> Behaviour {
        let ours = !self.smsbox_compat;
        Behaviour {
            // Kannel's default max-messages is 1 (gw/urltrans.c).
            max_messages: self.max_messages.or((!ours).then_some(1)),
            auto_ucs2: self.auto_ucs2.unwrap_or(ours),
            refuse_undecodable: self.refuse_undecodable.unwrap_or(ours),
            form_post: self.form_post.unwrap_or(ours),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{ip_matches, Behaviour, SendsmsUser};
    use crate::config::Config;

    #[test]
    fn addresses_are_allowed_and_denied_as_kannels_is_allowed_ip() {
        let ip = |s: &str| s.parse::<std::net::IpAddr>().ok();
        let mut user = SendsmsUser::new("u", "p");
        assert!(user.allows_ip(ip("10.1.2.3")));
        assert!(user.allows_ip(None), "no deny list: anyone");
        user.user_deny_ip = Some("*.*.*.*".into());
        user.user_allow_ip = Some("127.0.0.1; 10.0.*.*".into());
        assert!(user.allows_ip(ip("127.0.0.1")));
        assert!(user.allows_ip(ip("::ffff:10.0.7.9")));
        assert!(!user.allows_ip(ip("10.1.2.3")));
        assert!(!user.allows_ip(None));
        user.user_deny_ip = Some("192.168.*.*".into());
        user.user_allow_ip = None;
        assert!(user.allows_ip(ip("10.1.2.3")));
        assert!(!user.allows_ip(ip("192.168.0.1")));
        assert!(!ip_matches("10.0.*", "10.0.1.2"), "a * is one place");
    }

    #[test]
    fn smsbox_compat_sets_smsboxs_defaults_and_finer_keys_win() {
        let mut user = SendsmsUser::new("u", "p");
        let ours = Behaviour {
            max_messages: None,
            auto_ucs2: true,
            refuse_undecodable: true,
            form_post: true,
        };
        assert_eq!(user.behaviour(), ours);
        user.smsbox_compat = true;
        let smsbox = Behaviour {
            max_messages: Some(1),
            auto_ucs2: false,
            refuse_undecodable: false,
            form_post: false,
        };
        assert_eq!(user.behaviour(), smsbox);
        user.max_messages = Some(4);
        user.form_post = Some(true);
        assert_eq!(
            user.behaviour(),
            Behaviour {
                max_messages: Some(4),
                form_post: true,
                ..smsbox
            }
        );
    }

    #[test]
    fn users_are_read_and_checked() {
        let config = Config::from_toml_str(
            "[[sendsms_users]]\nusername = \"shop\"\npassword = \"s\"\ndefault_sender = \"8500\"\n",
        )
        .unwrap();
        assert_eq!(config.sendsms_users.len(), 1);
        assert_eq!(
            config.sendsms_users[0].default_sender.as_deref(),
            Some("8500")
        );
        // What check-config --print writes reads back the same.
        let config = Config::from_toml_str(
            "[[sendsms_users]]\nusername = \"shop\"\npassword = \"s\"\ndefault_sender = \"8500\"\n\
             max_messages = 3\nconcatenation = true\nsplit_chars = \" \"\nsplit_suffix = \"+\"\n\
             header = \"H\"\nfooter = \"F\"\nsmsbox_compat = true\nform_post = true\n\
             white_list_regex = \"^\\\\+256\"\nblack_list_regex = \"70\"\n",
        )
        .unwrap();
        let again = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
        assert_eq!(again.sendsms_users, config.sendsms_users);

        let err = Config::from_toml_str(
            "[[sendsms_users]]\nusername = \"a\"\npassword = \"\"\n\
             [[sendsms_users]]\nusername = \"a\"\npassword = \"x\"\nforced_smsc = \" \"\n\
             [[sendsms_users]]\nusername = \"b\"\npassword = \"x\"\nsender = \"1\"\n\
             [[sendsms_users]]\nusername = \"c\"\npassword = \"x\"\nmax_messages = 0\n\
             split_chars = \"\"\n",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "sendsms_users[0].password",
            "sendsms_users[1].username",
            "sendsms_users[1].forced_smsc",
            "sendsms_users[2].sender",
            "sendsms_users[3].max_messages",
            "sendsms_users[3].split_chars",
        ] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
        let err = Config::from_toml_str(
            "[[sendsms_users]]\nusername = \"e\"\npassword = \"x\"\nwhite_list_regex = \"(\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("sendsms_users[0].white_list_regex"), "{err}");
    }
}
