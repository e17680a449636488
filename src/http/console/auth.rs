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

use crate::config::{ConsoleUser, MAX_USERNAME_CHARS};

/// Failed logins allowed per username, and per address, within [`WINDOW`].
pub const MAX_FAILURES: usize = 5;

/// How long a failed login counts.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);

/// Usernames and addresses tracked at once. An attacker trying endless
/// usernames from endless addresses must not grow memory; when full, the
/// entry whose last failure is oldest is forgotten. A username is kept to
/// at most [`MAX_USERNAME_CHARS`] characters (256 bytes), so an entry
/// takes at most about 450 bytes with its times and the map's own
/// overhead: under 5 MiB in all.
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
        // A longer name matches no user (the configuration allows none):
        // what is kept of it is bounded whatever the peer sent.
        let kept: String = username.chars().take(MAX_USERNAME_CHARS).collect();
        let mut keys = vec![Key::User(kept.to_lowercase())];
        keys.extend(addr.map(Key::Addr));
        keys
    }

    /// Takes a login attempt for `username` from `addr`: counted as a
    /// failure at once (so that parallel attempts cannot all pass the check
    /// before any has failed), or refused with how long until one may be
    /// made. A successful attempt is taken back with
    /// [`LoginLimiter::succeeded`].
    pub fn attempt(
        &self,
        username: &str,
        addr: Option<IpAddr>,
        now: Instant,
    ) -> Result<Attempt, Duration> {
        let mut failures = self.lock();
        let keys = Self::keys(username, addr);
        let wait = keys
            .iter()
            .filter_map(|key| {
                let times = failures.get(key)?;
                let recent: Vec<&Instant> = times
                    .iter()
                    .filter(|t| now.duration_since(**t) < WINDOW)
                    .collect();
                (recent.len() >= MAX_FAILURES)
                    .then(|| WINDOW.saturating_sub(now.duration_since(*recent[0])))
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        for key in keys.iter().cloned() {
            if !failures.contains_key(&key) && failures.len() >= MAX_TRACKED {
                make_room(&mut failures, now);
            }
            let times = failures.entry(key).or_default();
            times.push_back(now);
            // Only the last MAX_FAILURES matter.
            while times.len() > MAX_FAILURES {
                times.pop_front();
            }
        }
        Ok(Attempt { keys, at: now })
    }

    /// Takes back a successful attempt: the username's failures are
    /// forgotten; the address keeps its others (one good password does not
    /// vouch for the rest tried from there).
    pub fn succeeded(&self, attempt: Attempt) {
        let mut failures = self.lock();
        for key in attempt.keys {
            match key {
                Key::User(_) => {
                    failures.remove(&key);
                }
                Key::Addr(_) => {
                    if let Some(times) = failures.get_mut(&key) {
                        if let Some(i) = times.iter().rposition(|t| *t == attempt.at) {
                            times.remove(i);
                        }
                    }
                }
            }
        }
    }
}

/// A login attempt in progress, counted as failed until it succeeds.
#[derive(Debug)]
pub struct Attempt {
    keys: Vec<Key>,
    at: Instant,
}

/// Frees one entry of a full table: the expired ones go first, then the
/// one whose last failure is the oldest.
fn make_room(failures: &mut HashMap<Key, VecDeque<Instant>>, now: Instant) {
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

    /// What a peer sends as a username is kept only up to the longest
    /// username a user may have, however long it is.
    #[test]
    fn a_huge_username_is_kept_bounded() {
        let limiter = LoginLimiter::default();
        let huge = "é".repeat(32 * 1024);
        assert!(limiter.attempt(&huge, None, Instant::now()).is_ok());
        let failures = limiter.lock();
        let kept: Vec<usize> = failures
            .keys()
            .map(|key| match key {
                Key::User(name) => name.len(),
                Key::Addr(_) => 0,
            })
            .collect();
        assert_eq!(kept, [MAX_USERNAME_CHARS * "é".len()]);
    }

    #[test]
    fn five_failures_block_the_user_and_the_address_for_the_window() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        let other: IpAddr = [10, 0, 0, 2].into();
        // Attempts count as they are made, before they are checked.
        for i in 0..MAX_FAILURES {
            assert!(limiter.attempt("admin", Some(ip), t0).is_ok(), "{i}");
        }
        assert_eq!(limiter.attempt("admin", Some(ip), t0).unwrap_err(), WINDOW);
        // The user from elsewhere, and others from that address.
        assert!(limiter.attempt("ADMIN", Some(other), t0).is_err());
        assert!(limiter.attempt("bob", Some(ip), t0).is_err());
        assert!(limiter.attempt("bob", Some(other), t0).is_ok());
        let later = t0 + WINDOW;
        assert!(limiter.attempt("admin", Some(ip), later).is_ok());
    }

    #[test]
    fn a_success_takes_its_attempt_back() {
        let limiter = LoginLimiter::default();
        let t0 = Instant::now();
        let ip: IpAddr = [10, 0, 0, 1].into();
        for i in 0..10 {
            let attempt = limiter.attempt("admin", Some(ip), t0).expect("allowed");
            if i % 2 == 0 {
                limiter.succeeded(attempt);
            }
        }
        // Five failures from the address, none left for the user.
        assert!(limiter.attempt("admin", Some(ip), t0).is_err());
        assert!(limiter.attempt("admin", None, t0).is_ok());
    }

    #[test]
    fn memory_stays_bounded() {
        let limiter = LoginLimiter::default();
        let now = Instant::now();
        for i in 0..(MAX_TRACKED + 50) {
            let _ = limiter.attempt(&format!("user{i}"), None, now);
        }
        assert!(limiter.lock().len() <= MAX_TRACKED);
    }
}
