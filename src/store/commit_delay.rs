//! The group commit's wait: how long the writer lets a group gather more
//! units before its journal fdatasync (PostgreSQL's `commit_delay` and
//! `commit_siblings`).
//!
//! Without a wait a group is whatever queued while the previous one was
//! applied and synced. At a steady 10,000 MOs/s that is a few units, and
//! the journal's fdatasync (its kernel time, its I/O, the wake-ups of the
//! waiters it answers) is paid every few units. Waiting a fraction of a
//! millisecond before taking the group makes groups bigger and syncs
//! rarer, for a bounded price in latency; but only when units are coming
//! fast enough that the wait gathers some, and from more than one
//! sender: a caller that waits for each answer before sending the next
//! would only be slowed. So the wait is taken only when the previous
//! group held at least [`MIN_SIBLINGS`] units (units come from several
//! senders at once) and the arrival rate, as measured between groups,
//! promises at least [`MIN_EXPECTED`] more units within it: PostgreSQL's
//! siblings rule, told from the groups rather than from a count of
//! sessions.

use std::time::{Duration, Instant};

/// Units the wait must be expected to gather for it to be taken.
pub(crate) const MIN_EXPECTED: f64 = 1.0;

/// Units the previous group must have held: one at a time means a single
/// sender waiting for each answer, which a wait would only slow.
pub(crate) const MIN_SIBLINGS: usize = 2;

/// How much one group's rate moves the average (exponential, so a burst
/// is followed within a few groups and an idle spell forgotten as fast).
const WEIGHT: f64 = 0.25;

/// The arrival rate the writer has seen, and the wait it allows.
#[derive(Debug)]
pub(crate) struct CommitDelay {
    /// The longest wait; zero turns waiting off.
    delay: Duration,
    /// Units per second, averaged over groups.
    rate: f64,
    /// When the previous group was taken.
    last: Option<Instant>,
    /// The units it held.
    last_units: usize,
}

impl CommitDelay {
    pub(crate) fn new(delay: Duration) -> CommitDelay {
        CommitDelay {
            delay,
            rate: 0.0,
            last: None,
            last_units: 0,
        }
    }

    /// How long the group being taken (`units` so far, at `now`) should
    /// wait for more before it is synced, if at all.
    pub(crate) fn wait(&self, units: usize, now: Instant) -> Option<Duration> {
        if self.delay.is_zero() || units == 0 || self.last_units < MIN_SIBLINGS {
            return None;
        }
        // The units since the previous group count too: a group taken
        // after a pause has a low rate to show even if it is large.
        let rate = match self.last {
            Some(last) => {
                let since = now.saturating_duration_since(last).as_secs_f64();
                let now_rate = if since > 0.0 {
                    units as f64 / since
                } else {
                    self.rate
                };
                self.rate + WEIGHT * (now_rate - self.rate)
            }
            None => return None,
        };
        (rate * self.delay.as_secs_f64() >= MIN_EXPECTED).then_some(self.delay)
    }

    /// A group of `units` was taken at `now` (its wait, if any, included).
    pub(crate) fn taken(&mut self, units: usize, now: Instant) {
        if let Some(last) = self.last {
            let since = now.saturating_duration_since(last).as_secs_f64();
            if since > 0.0 {
                let now_rate = units as f64 / since;
                self.rate += WEIGHT * (now_rate - self.rate);
            }
        }
        self.last = Some(now);
        self.last_units = units;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_micros(200);

    /// Feeds groups of `units` every `every`, returning the last wait asked.
    fn steady(delay: &mut CommitDelay, units: usize, every: Duration, groups: u32) -> Instant {
        let start = Instant::now();
        for i in 0..groups {
            delay.taken(units, start + every * i);
        }
        start + every * groups
    }

    #[test]
    fn a_unit_alone_never_waits() {
        let delay = CommitDelay::new(DELAY);
        assert_eq!(delay.wait(1, Instant::now()), None, "first group");
        let mut delay = CommitDelay::new(DELAY);
        // One unit every 10 ms: 100/s, a wait of 200 µs gathers 0.02.
        let now = steady(&mut delay, 1, Duration::from_millis(10), 50);
        assert_eq!(delay.wait(1, now), None);
    }

    #[test]
    fn one_sender_waiting_for_each_answer_never_waits_however_fast() {
        let mut delay = CommitDelay::new(DELAY);
        // One unit per group every 100 µs: 10,000/s, but never two at once.
        let now = steady(&mut delay, 1, Duration::from_micros(100), 50);
        assert_eq!(delay.wait(1, now), None);
    }

    #[test]
    fn a_steady_high_rate_waits_the_delay() {
        let mut delay = CommitDelay::new(DELAY);
        // Three units every 300 µs: 10,000/s, two expected per wait.
        let now = steady(&mut delay, 3, Duration::from_micros(300), 50);
        assert_eq!(delay.wait(3, now), Some(DELAY));
    }

    #[test]
    fn an_idle_spell_stops_the_waiting_within_a_few_groups() {
        let mut delay = CommitDelay::new(DELAY);
        let mut now = steady(&mut delay, 3, Duration::from_micros(300), 50);
        let mut waited = 0;
        for _ in 0..20 {
            now += Duration::from_millis(50);
            if delay.wait(1, now).is_some() {
                waited += 1;
            }
            delay.taken(1, now);
        }
        assert!(waited <= 3, "waited {waited} times after the rate fell");
    }

    #[test]
    fn a_zero_delay_never_waits() {
        let mut delay = CommitDelay::new(Duration::ZERO);
        let now = steady(&mut delay, 100, Duration::from_micros(100), 50);
        assert_eq!(delay.wait(100, now), None);
    }
}
