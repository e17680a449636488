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
//! ```
//!
//! A request's `smsc` (or the user's default) is the message's backend,
//! which picks its transport; for the kannel transport it is also the MT's
//! `smsc_id`.

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
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

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
        let again = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
        assert_eq!(again.sendsms_users, config.sendsms_users);

        let err = Config::from_toml_str(
            "[[sendsms_users]]\nusername = \"a\"\npassword = \"\"\n\
             [[sendsms_users]]\nusername = \"a\"\npassword = \"x\"\nforced_smsc = \" \"\n\
             [[sendsms_users]]\nusername = \"b\"\npassword = \"x\"\nsender = \"1\"\n",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "sendsms_users[0].password",
            "sendsms_users[1].username",
            "sendsms_users[1].forced_smsc",
            "sendsms_users[2].sender",
        ] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
    }
}
