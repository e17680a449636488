//! Holding MTs back while the store cannot record the bearerbox's answers.
//!
//! An MT whose answer cannot be stored is still Q in the store, so it is
//! sent again once the store works or rapidbox restarts: a duplicate at
//! the phone. While the store fails (a full disk, I/O errors) every MT
//! sent is one more such duplicate, so the session stops taking MTs from
//! the outbox as soon as one answer fails to commit, keeps trying to
//! commit the answers it has (each holding its window slot), and resumes
//! when they are all stored. The duplicates a storage fault can cause are
//! then the MTs in flight when it began, at most `max_in_flight`, and none
//! at all when the store recovers before rapidbox stops.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

/// The first pause before an answer's commit is tried again.
pub const FIRST_RETRY: Duration = Duration::from_millis(50);

/// The longest pause between tries: how late, at most, the MTs resume
/// after the store works again. The writer answers at once while it has
/// let go of the file, so a try costs next to nothing.
pub const MAX_RETRY: Duration = Duration::from_secs(1);

/// Answers that failed to commit and are being tried again; cheap to
/// clone. MTs are held while there is any.
#[derive(Debug, Clone, Default)]
pub struct Hold {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    failing: AtomicUsize,
    released: Notify,
}

impl Hold {
    /// True while some answer waits to be stored: take no MT.
    pub fn is_held(&self) -> bool {
        self.inner.failing.load(Ordering::Acquire) > 0
    }

    /// An answer failed to commit and will be tried again; until
    /// [`Failing::drop`] MTs are held.
    pub fn failing(&self) -> Failing {
        self.inner.failing.fetch_add(1, Ordering::AcqRel);
        Failing(self.clone())
    }

    /// Completes once no answer is failing. Call it while
    /// [`is_held`](Self::is_held) is true; it may also complete early, so
    /// check again afterwards.
    pub async fn released(&self) {
        self.inner.released.notified().await;
    }

    /// The pause before try `tries` + 1 of a failing commit.
    pub fn pause(tries: u32) -> Duration {
        FIRST_RETRY
            .saturating_mul(1 << tries.saturating_sub(1).min(16))
            .min(MAX_RETRY)
    }
}

/// One answer failing to commit; dropped once it is stored or given up.
#[derive(Debug)]
pub struct Failing(Hold);

impl Drop for Failing {
    fn drop(&mut self) {
        let inner = &self.0.inner;
        if inner.failing.fetch_sub(1, Ordering::AcqRel) == 1 {
            // A permit is kept if nobody waits yet: the session looking
            // at `is_held` a moment before still wakes.
            inner.released.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn mts_are_held_until_every_failing_answer_is_done() {
        let hold = Hold::default();
        assert!(!hold.is_held());
        let first = hold.failing();
        let second = hold.failing();
        assert!(hold.is_held());
        drop(first);
        assert!(hold.is_held(), "one answer still waits");
        drop(second);
        assert!(!hold.is_held());
        // The release is not missed by a waiter that comes late.
        tokio::time::timeout(Duration::from_secs(1), hold.released())
            .await
            .expect("released");
    }

    #[test]
    fn retries_back_off_to_a_second() {
        let pauses: Vec<u128> = (1..=7).map(|t| Hold::pause(t).as_millis()).collect();
        assert_eq!(pauses, [50, 100, 200, 400, 800, 1000, 1000]);
    }
}
