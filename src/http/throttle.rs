//! The limit on wrong credentials per client address, for
//! `/cgi-bin/sendsms` (whose users' passwords are plain strings an
//! attacker could otherwise guess at the speed of the network).
//!
//! Every request from an address counts as a failure the moment it is
//! taken ([`AddressThrottle::attempt`]), so parallel guesses cannot all
//! pass the check before any has failed; a request whose credentials were
//! right is taken back ([`AddressThrottle::succeeded`]). After
//! [`MAX_FAILURES`] failures within [`WINDOW`] the address is refused,
//! whatever it sends, until the oldest of them is older than the window.
//! Counted per address only: a username's budget would let anyone lock a
//! legitimate application out by guessing at its name.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Wrong credentials allowed per address within [`WINDOW`]. An
/// application with a typo in its password fails ten times before it is
/// slowed; a guesser gets ten guesses per window.
pub const MAX_FAILURES: usize = 10;

/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Addresses tracked at once, so that failures from endless addresses do
/// not grow memory: when full, the address whose last failure is oldest
/// is forgotten. An entry is an address and at most [`MAX_FAILURES`]
/// instants, well under 1 MiB in all.
pub const MAX_TRACKED: usize = 10_000;

/// Recent failures, per address.
#[derive(Debug, Default)]
pub struct AddressThrottle {
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

/// One request's attempt, counted as a failure until
/// [`AddressThrottle::succeeded`] takes it back.
#[derive(Debug)]
#[must_use = "a successful attempt must be taken back"]
pub struct Attempt {
    ip: IpAddr,
    at: Instant,
}

impl AddressThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes an attempt from `ip`: counted as a failure at once, or
    /// refused with how long until the address may try again. Without an
    /// address (not a TCP client) nothing is counted.
    pub fn attempt(&self, ip: Option<IpAddr>, now: Instant) -> Result<Option<Attempt>, Duration> {
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return Ok(None);
        };
        let mut failures = self.lock();
        if let Some(times) = failures.get_mut(&ip) {
            times.retain(|t| now.duration_since(*t) < WINDOW);
            if times.len() >= MAX_FAILURES {
                let oldest = times.front().copied().unwrap_or(now);
                return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
            }
        } else if failures.len() >= MAX_TRACKED {
            let stalest = failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(ip, _)| *ip);
            if let Some(stalest) = stalest {
                failures.remove(&stalest);
            }
        }
        failures.entry(ip).or_default().push_back(now);
        Ok(Some(Attempt { ip, at: now }))
    }

    /// Takes back an attempt whose credentials were right.
    pub fn succeeded(&self, attempt: Option<Attempt>) {
        let Some(attempt) = attempt else { return };
        let mut failures = self.lock();
        if let Some(times) = failures.get_mut(&attempt.ip) {
            if let Some(at) = times.iter().position(|t| *t == attempt.at) {
                times.remove(at);
            }
            if times.is_empty() {
                failures.remove(&attempt.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(last: u8) -> Option<IpAddr> {
        Some(IpAddr::from([127, 0, 0, last]))
    }

    #[test]
    fn an_address_is_refused_after_max_failures_until_the_window_passes() {
        let throttle = AddressThrottle::default();
        let start = Instant::now();
        for _ in 0..MAX_FAILURES {
            let attempt = throttle.attempt(ip(1), start);
            assert!(matches!(attempt, Ok(Some(_))));
        }
        let wait = throttle.attempt(ip(1), start).expect_err("throttled");
        assert_eq!(wait, WINDOW);
        // Another address is not affected.
        assert!(throttle.attempt(ip(2), start).is_ok());
        // Once the window has passed, the address may try again.
        assert!(throttle.attempt(ip(1), start + WINDOW).is_ok());
    }

    #[test]
    fn successful_attempts_are_taken_back() {
        let throttle = AddressThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES * 3 {
            let attempt = throttle.attempt(ip(1), now).expect("allowed");
            throttle.succeeded(attempt);
        }
        assert!(throttle.lock().is_empty());
    }

    #[test]
    fn requests_without_an_address_are_not_counted() {
        let throttle = AddressThrottle::default();
        for _ in 0..MAX_FAILURES * 2 {
            assert!(matches!(throttle.attempt(None, Instant::now()), Ok(None)));
        }
    }

    #[test]
    fn the_tracked_addresses_are_bounded() {
        let throttle = AddressThrottle::default();
        let now = Instant::now();
        for n in 0..MAX_TRACKED as u32 + 10 {
            let addr = IpAddr::from(n.to_be_bytes());
            assert!(throttle.attempt(Some(addr), now).is_ok());
        }
        assert_eq!(throttle.lock().len(), MAX_TRACKED);
    }
}
