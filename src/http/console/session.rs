//! Logged-in sessions, in memory: a random 32-byte token in a cookie, the
//! user it belongs to, and that session's CSRF token.
//!
//! Bounded two ways: a session unused for `idle` is gone, and at most
//! `max` exist; logging in when full ends the session idle the longest.
//! A restart logs everybody out, which is acceptable for an operators'
//! console and keeps the store free of secrets.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use password_hash::rand_core::{OsRng, RngCore};

/// The session cookie's name.
pub const COOKIE: &str = "rapidbox_session";

/// A random 32-byte secret, as 64 hex digits.
pub type Token = String;

/// A fresh token from the operating system's generator.
pub fn random_token() -> Token {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What a session knows.
#[derive(Debug, Clone)]
pub struct Session {
    pub username: String,
    /// The token every form of this session must carry.
    pub csrf: Token,
    last_used: Instant,
}

/// The sessions, bounded in number and idle time.
#[derive(Debug)]
pub struct Sessions {
    by_token: Mutex<HashMap<Token, Session>>,
    max: usize,
    idle: Duration,
}

impl Sessions {
    pub fn new(max: usize, idle: Duration) -> Sessions {
        Sessions {
            by_token: Mutex::new(HashMap::new()),
            max: max.max(1),
            idle,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Token, Session>> {
        // A panic while holding the lock leaves a consistent map.
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts a session for `username`; returns its token.
    pub fn start(&self, username: &str) -> Token {
        let now = Instant::now();
        let mut sessions = self.lock();
        sessions.retain(|_, s| now.duration_since(s.last_used) < self.idle);
        if sessions.len() >= self.max {
            let oldest = sessions
                .iter()
                .min_by_key(|(_, s)| s.last_used)
                .map(|(t, _)| t.clone());
            if let Some(oldest) = oldest {
                sessions.remove(&oldest);
            }
        }
        let token = random_token();
        sessions.insert(
            token.clone(),
            Session {
                username: username.to_owned(),
                csrf: random_token(),
                last_used: now,
            },
        );
        token
    }

    /// The live session with this token, marked as used now; `None` if
    /// there is none or it has been idle too long.
    pub fn touch(&self, token: &str) -> Option<Session> {
        let now = Instant::now();
        let mut sessions = self.lock();
        let session = sessions.get_mut(token)?;
        if now.duration_since(session.last_used) >= self.idle {
            sessions.remove(token);
            return None;
        }
        session.last_used = now;
        Some(session.clone())
    }

    /// Ends the session with this token, if any.
    pub fn end(&self, token: &str) {
        self.lock().remove(token);
    }

    /// How many sessions are held (expired ones included until the next
    /// login sweeps them).
    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

/// The value of cookie `name` in a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a hyper::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(hyper::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value for `name`: HttpOnly, SameSite=Strict, on
/// `path`, `Secure` when asked; `value` `None` deletes the cookie.
pub fn set_cookie(name: &str, value: Option<&str>, path: &str, secure: bool) -> String {
    let mut cookie = match value {
        Some(v) => format!("{name}={v}; Path={path}; HttpOnly; SameSite=Strict"),
        None => format!("{name}=; Path={path}; HttpOnly; SameSite=Strict; Max-Age=0"),
    };
    if secure {
        cookie.push_str("; Secure");
    }
    cookie
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sessions_expire_when_idle_and_are_bounded() {
        let sessions = Sessions::new(2, Duration::from_secs(60));
        let a = sessions.start("a");
        let b = sessions.start("b");
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert_eq!(sessions.touch(&a).map(|s| s.username), Some("a".into()));
        // Full: the session idle the longest (b) goes.
        let c = sessions.start("c");
        assert_eq!(sessions.len(), 2);
        assert!(sessions.touch(&b).is_none());
        assert!(sessions.touch(&a).is_some() && sessions.touch(&c).is_some());
        sessions.end(&a);
        assert!(sessions.touch(&a).is_none());

        let short = Sessions::new(10, Duration::from_millis(1));
        let t = short.start("x");
        std::thread::sleep(Duration::from_millis(5));
        assert!(short.touch(&t).is_none());
    }

    #[test]
    fn cookies_are_read_and_written() {
        let mut headers = hyper::HeaderMap::new();
        headers.append("cookie", "a=1; rapidbox_session=abc ".parse().unwrap());
        headers.append("cookie", "b=2".parse().unwrap());
        assert_eq!(cookie(&headers, COOKIE), Some("abc"));
        assert_eq!(cookie(&headers, "b"), Some("2"));
        assert_eq!(cookie(&headers, "c"), None);
        assert_eq!(
            set_cookie(COOKIE, Some("t"), "/router", true),
            "rapidbox_session=t; Path=/router; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(set_cookie(COOKIE, None, "/router", false).contains("Max-Age=0"));
    }
}
