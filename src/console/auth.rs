//! Console users' passwords (argon2, PHC strings) and the limit on failed
//! logins.
//!
//! Failed logins are counted per username and per client IP address: after
//! [`MAX_FAILURES`] failures within [`WINDOW`] that username, or that
//! address, is refused until the oldest of them is older than the window,
//! whatever the password. This slows guessing one user's password from
//! many addresses, and many users' passwords from one address.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use password_hash::rand_core::OsRng;

use crate::config::ConsoleUser;

/// Failed logins allowed per username, and per address, within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;

/// How long a failed login counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Usernames and addresses tracked at once. An attacker trying endless
/// usernames from endless addresses must not grow memory; when full, the
/// entry whose last failure is oldest is forgotten (about 200 bytes an
/// entry, so ~2 MiB at most).
pub const MAX_TRACKED: usize = 10_000;

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
#[error("cannot hash the password: {0}")]
pub struct HashError(String);

/// The argon2id PHC string for `password`, with a fresh random salt and
/// the argon2 crate's default (OWASP-recommended) parameters.
pub fn hash_password(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError(e.to_string()))
}

/// Whether `password` is `user`'s. Blocking (argon2 takes tens of
/// milliseconds on purpose): run it off the async threads.
///
/// An unknown user is checked against a fixed hash, so that the answer
/// takes as long and says nothing about which usernames exist.
pub fn verify(user: Option<&ConsoleUser>, password: &str) -> bool {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let (hash, known) = match user {
        Some(u) => (u.password_hash.as_str(), true),
        None => (
            DUMMY
                .get_or_init(|| hash_password("not a password").unwrap_or_default())
                .as_str(),
            false,
        ),
    };
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    let ok = Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok();
    ok && known
}

/// Who a failed login is counted against.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    User(String),
    Addr(IpAddr),
}

/// Recent failed logins, per username and per address.
#[derive(Debug, Default)]
pub struct LoginLimiter {
    failures: Mutex<HashMap<Key, VecDeque<Instant>>>,
}

impl LoginLimiter {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn keys(username: &str, addr: Option<IpAddr>) -> Vec<Key> {
        // Usernames are matched exactly at login, but counted without case
        // so that `Admin` and `admin` share one budget.
        let mut keys = vec![Key::User(username.to_lowercase())];
        keys.extend(addr.map(Key::Addr));
        keys
    }

    /// How long until `username` from `addr` may try again; `None` if it
    /// may try now.
    pub fn blocked_for(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Option<Duration> {
        let failures = self.lock();
        Self::keys(username, addr)
            .iter()
            .filter_map(|key| {
                let recent: Vec<&Instant> = failures
                    .get(key)?
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                (recent.len() >= MAX_FAILURES)
                    .then(|| WINDOW.saturating_sub(now.duration_since(*recent[0])))
            })
            .max()
    }

    /// Counts a failed login.
    pub fn failed(&self, username: &str, addr: Option<IpAddr>, now: Instant) {
        let mut failures = self.lock();
        for key in Self::keys(username, addr) {
            if !failures.contains_key(&key) && failures.len() >= MAX_TRACKED {
                failures.retain(|_, times| {
                    times
                        .back()
                        .is_some_and(|t| now.duration_since(*t) < WINDOW)
                });
                if failures.len() >= MAX_TRACKED {
                    let oldest = failures
                        .iter()
                        .min_by_key(|(_, times)| times.back().copied())
                        .map(|(k, _)| k.clone());
                    if let Some(oldest) = oldest {
                        failures.remove(&oldest);
                    }
                }
            }
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Only the last MAX_FAILURES matter.
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
    }

    /// Forgets the username's failures after a successful login (the
    /// address's stay: one good password does not vouch for the others
    /// tried from there).
    pub fn succeeded(&self, username: &str) {
        self.lock().remove(&Key::User(username.to_lowercase()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_verify_and_unknown_users_never_do() {
        let hash = hash_password("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$"));
        assert!(crate::config::check_password_hash(&hash).is_ok());
        let user = ConsoleUser {
            username: "u".into(),
            password_hash: hash,
        };
        assert!(verify(Some(&user), "correct horse"));
        assert!(!verify(Some(&user), "correct horsE"));
        assert!(!verify(None, "not a password"));
    }

    #[test]
    fn five_failures_block_the_user_and_the_address_for_the_window() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        for i in 0..MAX_FAILURES {
            assert_eq!(limiter.blocked_for("admin", Some(ip), t0), None, "{i}");
            limiter.failed("admin", Some(ip), t0);
        }
        assert_eq!(limiter.blocked_for("admin", Some(ip), t0), Some(WINDOW));
        // The user from elsewhere, and others from that address.
        assert!(limiter.blocked_for("ADMIN", Some(other), t0).is_some());
        assert!(limiter.blocked_for("bob", Some(ip), t0).is_some());
        assert_eq!(limiter.blocked_for("bob", Some(other), t0), None);
        let later = t0 + WINDOW;
        assert_eq!(limiter.blocked_for("admin", Some(ip), later), None);
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED + 50) {
            limiter.failed(&format!("user{i}"), None, now);
        }
        assert!(limiter.lock().len() <= MAX_TRACKED);
    }
}
