//! The limit on wrong credentials per client address, for
//! `/cgi-bin/sendsms`'s users and `[http] password` (httprouter's
//! `ROUTER_PASSWORD`, on `/router/*`, `/admin/backup` and `/metrics`):
//! plain strings an attacker could otherwise guess at the speed of the
//! network. One throttle counts both, so an address cannot guess twice as
//! often by taking turns. (The console's logins have their own limit, per
//! username as well, in `console::auth`.)
//!
//! A request from an address that has failed `[http] max_auth_failures`
//! ([`MAX_FAILURES`] by default; 0 turns the limit off) times within
//! [`WINDOW`] is refused ([`AddressThrottle::check`]), whatever it sends,
//! until the oldest failure is older than the window; a request with
//! wrong credentials is recorded ([`AddressThrottle::failed`]). Only
//! failures count: an application sending through one address with many
//! connections at once is never slowed. Guesses sent in parallel can pass
//! the check before the first of them is recorded, but an address holds
//! at most `[http] max_connections_per_address` connections, so that is
//! the most a guesser gains per window.
//! Counted per address only: a username's budget would let anyone lock a
//! legitimate application out by guessing at its name.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The default of wrong credentials allowed per address within
/// [`WINDOW`] (`[http] max_auth_failures`).
pub const MAX_FAILURES: usize = 10;

/// How long a failure counts.
pub const WINDOW: Duration = Duration::from_secs(5 * 60);

/// Addresses tracked at once, so that failures from endless addresses do
/// not grow memory: when full, the address whose last failure is oldest
/// is forgotten. An entry is an address and at most [`MAX_FAILURES`]
/// instants, well under 1 MiB in all.
pub const MAX_TRACKED: usize = 10_000;

/// Recent failures, per address.
#[derive(Debug)]
pub struct AddressThrottle {
    /// Failures allowed within [`WINDOW`]; 0: no limit.
    max_failures: usize,
    failures: Mutex<HashMap<IpAddr, VecDeque<Instant>>>,
}

impl Default for AddressThrottle {
    fn default() -> Self {
        AddressThrottle::new(MAX_FAILURES)
    }
}

impl AddressThrottle {
    /// A throttle allowing `max_failures` per address and window (0: no
    /// limit, nothing is tracked).
    pub fn new(max_failures: usize) -> Self {
        AddressThrottle {
            max_failures,
            failures: Mutex::default(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, VecDeque<Instant>>> {
        self.failures.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `ip` may try: refused with how long until it may try
    /// again once it has failed [`MAX_FAILURES`] times within [`WINDOW`].
    /// Without an address (not a TCP client) it always may.
    pub fn check(&self, ip: Option<IpAddr>, now: Instant) -> Result<(), Duration> {
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return Ok(());
        };
        if self.max_failures == 0 {
            return Ok(());
        }
        let mut failures = self.lock();
        let Some(times) = failures.get_mut(&ip) else {
            return Ok(());
        };
        times.retain(|t| now.duration_since(*t) < WINDOW);
        if times.is_empty() {
            failures.remove(&ip);
            return Ok(());
        }
        if times.len() >= self.max_failures {
            let oldest = times.front().copied().unwrap_or(now);
            return Err(WINDOW.saturating_sub(now.duration_since(oldest)));
        }
        Ok(())
    }

    /// Records wrong credentials from `ip`.
    pub fn failed(&self, ip: Option<IpAddr>, now: Instant) {
        let Some(ip) = ip.map(|ip| ip.to_canonical()) else {
            return;
        };
        if self.max_failures == 0 {
            return;
        }
        let mut failures = self.lock();
        if !failures.contains_key(&ip) && failures.len() >= MAX_TRACKED {
            let stalest = failures
                .iter()
                .min_by_key(|(_, times)| times.back().copied())
                .map(|(ip, _)| *ip);
            if let Some(stalest) = stalest {
                failures.remove(&stalest);
            }
        }
        let times = failures.entry(ip).or_default();
        times.push_back(now);
        // Only the newest max_failures decide; older ones need not be kept.
        while times.len() > self.max_failures {
            times.pop_front();
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
            assert!(throttle.check(ip(1), start).is_ok());
            throttle.failed(ip(1), start);
        }
        let wait = throttle.check(ip(1), start).expect_err("throttled");
        assert_eq!(wait, WINDOW);
        // Another address is not affected.
        assert!(throttle.check(ip(2), start).is_ok());
        // Once the window has passed, the address may try again.
        assert!(throttle.check(ip(1), start + WINDOW).is_ok());
        assert!(throttle.lock().is_empty(), "expired failures are forgotten");
    }

    #[test]
    fn right_credentials_in_parallel_are_never_throttled() {
        // wrk with 32 connections from one address found the first design,
        // which counted every request in flight as a failure, refusing
        // nine in ten good requests.
        let throttle = AddressThrottle::default();
        let now = Instant::now();
        for _ in 0..MAX_FAILURES * 100 {
            assert!(throttle.check(ip(1), now).is_ok());
        }
        assert!(throttle.lock().is_empty());
    }

    #[test]
    fn zero_failures_allowed_means_no_limit_as_in_smsbox() {
        let throttle = AddressThrottle::new(0);
        let now = Instant::now();
        for _ in 0..MAX_FAILURES * 3 {
            throttle.failed(ip(1), now);
            assert!(throttle.check(ip(1), now).is_ok());
        }
        assert!(throttle.lock().is_empty());
    }

    #[test]
    fn requests_without_an_address_are_not_counted() {
        let throttle = AddressThrottle::default();
        for _ in 0..MAX_FAILURES * 2 {
            throttle.failed(None, Instant::now());
            assert!(throttle.check(None, Instant::now()).is_ok());
        }
        assert!(throttle.lock().is_empty());
    }

    #[test]
    fn the_tracked_addresses_are_bounded() {
        let throttle = AddressThrottle::default();
        let now = Instant::now();
        for n in 0..MAX_TRACKED as u32 + 10 {
            throttle.failed(Some(IpAddr::from(n.to_be_bytes())), now);
        }
        assert_eq!(throttle.lock().len(), MAX_TRACKED);
    }
}
