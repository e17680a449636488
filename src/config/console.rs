//! `[console]`, `[[console_users]]` and `[alerts]`: the web console at
//! `/router/console`, who may log in to it, and where httprouter's alert
//! endpoints forward to.
//!
//! ```toml
//! [console]
//! secure_cookie = false     # true when rapidbox is served over HTTPS
//! [[console_users]]
//! username = "admin"
//! password_hash = "$argon2id$v=19$m=19456,t=2,p=1$..."  # rapidbox hash-password
//! [alerts]
//! url = "https://ops.example.com/hooks/sms"   # /router/alert posts JSON here
//! smtp_host = "mail.example.com"               # ...and/or mails it
//! from = "rapidbox@example.com"
//! to = ["ops@example.com"]
//! ```
//!
//! Passwords are never in the file: only their argon2 PHC strings, which
//! `rapidbox hash-password` prints. With no console users the console is
//! disabled (404), never open.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// `[console]`: the web console's sessions and limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [console] section (a table)")]
pub struct ConsoleConfig {
    /// Mark the session cookie `Secure`, so browsers send it only over
    /// HTTPS. rapidbox serves plain HTTP; set this when a TLS proxy is in
    /// front of it, and leave it off otherwise (the browser would then
    /// never send the cookie back and no login would stick).
    pub secure_cookie: bool,
    /// Sessions held at once; logging in beyond it ends the session idle
    /// the longest.
    pub max_sessions: usize,
    /// A session unused for this long is logged out.
    pub session_idle_secs: u64,
    /// Browsers following the live log at once (server-sent events); more
    /// get 503 and fall back to reloading.
    pub max_live_clients: usize,
}

impl ConsoleConfig {
    /// The idle expiry of a session.
    pub fn session_idle(&self) -> Duration {
        Duration::from_secs(self.session_idle_secs)
    }
}

impl Default for ConsoleConfig {
    fn default() -> ConsoleConfig {
        ConsoleConfig {
            secure_cookie: false,
            // A console has a handful of users; 1000 sessions is far more
            // than they make, and ~100 KiB at most.
            max_sessions: 1000,
            session_idle_secs: 3600,
            max_live_clients: 32,
        }
    }
}

/// One console user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a console user (a table)")]
pub struct ConsoleUser {
    pub username: String,
    /// The password's argon2 hash as a PHC string (`$argon2id$...`), as
    /// `rapidbox hash-password` prints it.
    pub password_hash: String,
}

/// `[alerts]`: where `/router/alert` and `/router/relaylog` send what they
/// are given, for the administrators: a webhook, mail, or both. With
/// neither, the endpoints answer that alerts are not configured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, expecting = "the [alerts] section (a table)")]
pub struct AlertsConfig {
    /// A URL that receives each alert as a JSON POST
    /// (`{"subject": ..., "body": ..., "source": ...}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Time the URL, or the mail server, has to answer.
    pub timeout_ms: u64,
    /// The SMTP server that mails each alert to `to` (httprouter's
    /// `mail_admins`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_host: Option<String>,
    pub smtp_port: u16,
    /// How the connection to the SMTP server is protected.
    pub smtp_security: SmtpSecurity,
    /// Credentials for the SMTP server, if it wants them (never over
    /// `smtp_security = "none"`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_username: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_password: Option<String>,
    /// The alerts' sender address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// The administrators' addresses.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub to: Vec<String>,
}

/// How rapidbox talks to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    rename_all = "lowercase",
    expecting = "\"starttls\", \"tls\" or \"none\""
)]
pub enum SmtpSecurity {
    /// Plain connection upgraded with STARTTLS, which the server must
    /// offer (port 587, usually).
    Starttls,
    /// TLS from the first byte (port 465, usually).
    Tls,
    /// No encryption: only for a server on the same machine or network.
    None,
}

impl AlertsConfig {
    /// The time the webhook has to answer.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

impl Default for AlertsConfig {
    fn default() -> AlertsConfig {
        AlertsConfig {
            url: None,
            timeout_ms: 10_000,
            smtp_host: None,
            smtp_port: 587,
            smtp_security: SmtpSecurity::Starttls,
            smtp_username: None,
            smtp_password: None,
            from: None,
            to: Vec::new(),
        }
    }
}

impl AlertsConfig {
    /// Whether alerts are mailed.
    pub fn mails(&self) -> bool {
        self.smtp_host.is_some()
    }
}

/// Why `hash` is not a usable console password hash, if it is not.
pub fn check_password_hash(hash: &str) -> Result<(), String> {
    use argon2::password_hash::PasswordHash;
    let parsed = PasswordHash::new(hash)
        .map_err(|e| format!("not a PHC string ({e}); make one with `rapidbox hash-password`"))?;
    let algorithm = parsed.algorithm.as_str();
    if !["argon2id", "argon2i", "argon2d"].contains(&algorithm) {
        return Err(format!(
            "algorithm {algorithm:?} is not argon2; make one with `rapidbox hash-password`"
        ));
    }
    // Parameters that argon2 itself refuses would make every login fail.
    argon2::Params::try_from(&parsed).map_err(|e| format!("argon2 parameters not usable: {e}"))?;
    if parsed.hash.is_none() {
        return Err("no hash after the salt".to_owned());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    const HASH: &str =
        "$argon2id$v=19$m=19456,t=2,p=1$c29tZXNhbHQ$mZ0pS6XyPCsnJGTUVKmK0qM6k0mSMQHsVUf8mdzKCpQ";

    #[test]
    fn users_are_read_and_their_hashes_checked() {
        let config = Config::from_toml_str(&format!(
            "[console]\nsecure_cookie = true\n[[console_users]]\nusername = \"admin\"\n\
             password_hash = \"{HASH}\"\n[alerts]\nurl = \"http://h/x\"\n"
        ))
        .unwrap();
        assert_eq!(config.console_users[0].username, "admin");
        assert!(config.console.secure_cookie);
        let again = Config::from_toml_str(&config.to_toml_string().unwrap()).unwrap();
        assert_eq!(again, config);

        let err = Config::from_toml_str(&format!(
            "[[console_users]]\nusername = \"a\"\npassword_hash = \"hunter2\"\n\
             [[console_users]]\nusername = \"a\"\npassword_hash = \"{HASH}\"\n\
             [[console_users]]\nusername = \"b\"\npassword_hash = \"$pbkdf2-sha256$i=1000$c29tZXNhbHQ$mZ0pS6XyPCsnJGTUVKmK0qM6k0mSMQHsVUf8mdzKCpQ\"\n\
             [console]\nmax_sessions = 0\n[alerts]\nurl = \"mailto:x\"\n"
        ))
        .unwrap_err()
        .to_string();
        for expected in [
            "console_users[0].password_hash: not a PHC string",
            "console_users[1].username",
            "console_users[2].password_hash: algorithm \"pbkdf2-sha256\" is not argon2",
            "console.max_sessions",
            "alerts.url",
        ] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
        // Mail needs a sender and recipients that are addresses, and no
        // password in clear.
        let err = Config::from_toml_str(
            "[alerts]\nsmtp_host = \"localhost\"\nsmtp_security = \"none\"\n\
             smtp_username = \"u\"\nsmtp_password = \"p\"\nto = [\"ops@example.com\", \"not an address\"]\n",
        )
        .unwrap_err()
        .to_string();
        for expected in [
            "alerts.from: required to mail alerts",
            "alerts.to[1]: not an email address",
            "alerts.smtp_username: would be sent unencrypted",
        ] {
            assert!(err.contains(expected), "{expected} not in {err}");
        }
        let err = Config::from_toml_str("[alerts]\nfrom = \"a@b.c\"\nsmtp_security = \"ssl\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("alerts.smtp_security"), "{err}");
        assert!(
            err.contains("alerts.from: only used with alerts.smtp_host"),
            "{err}"
        );

        // Reachable from other machines over plain HTTP: a warning.
        let config = Config::from_toml_str(&format!(
            "[http]\nlisten = \"0.0.0.0:8080\"\npassword = \"p\"\n\
             [[console_users]]\nusername = \"a\"\npassword_hash = \"{HASH}\"\n"
        ))
        .unwrap();
        let warnings: Vec<String> = config.warnings().iter().map(|w| w.to_string()).collect();
        assert!(
            warnings
                .iter()
                .any(|w| w.starts_with("console.secure_cookie")),
            "{warnings:?}"
        );
        // A plain-text password is not a setting.
        let err = Config::from_toml_str("[[console_users]]\nusername = \"c\"\npassword = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("console_users[0].password"), "{err}");
    }
}
