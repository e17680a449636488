//! Which MTs the bearerbox link sends next.
//!
//! The store is the source of truth: every outgoing message is durably
//! queued (Q) before anybody tries to send it. The outbox is a bounded
//! in-memory window onto that queue, fed two ways:
//!
//! - **fresh**: the router offers each reply right after its commit, so the
//!   common case costs no store read at all;
//! - **sweep**: a periodic scan of the store picks up everything the fresh
//!   path could not hold (the outbox was full, the link was down, rapidbox
//!   restarted) and E messages whose retry time has come.
//!
//! A message must never be sent twice while it is known to be in hand. The
//! `scheduled` set holds every id in the backlog or in flight; `settling`
//! holds ids just answered by the bearerbox whose new status may not be
//! committed yet, so a sweep that still reads them as Q leaves them alone;
//! `finished_in_sweep` holds the ids whose answer was committed while a
//! sweep was reading, so a sweep whose snapshot predates that commit (and
//! still reads the message as Q) leaves it alone too. It is kept only
//! while a sweep runs, so it holds a sweep's worth of ids, not every MT
//! of the last seconds.
//! And a sweep only takes Q messages that have been queued for a while
//! ([`FRESH_GRACE`]) or since before this process started, so it never races
//! the fresh path for a message that is on its way.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::Notify;
use tracing::{debug, warn};

use crate::model::{now_micros, Message, MessageId, Micros, Status};
use crate::store::Store;

/// How many messages the outbox holds in memory, waiting to be sent. More
/// stay queued in the store until there is room.
pub const DEFAULT_CAPACITY: usize = 4096;

/// A Q message younger than this is left to the fresh path by the bearerbox
/// link's sweeps.
pub const FRESH_GRACE: Duration = Duration::from_secs(10);

/// How long an answered id is kept from sweeps while its status commits.
pub const SETTLE_FOR: Duration = Duration::from_secs(15);

/// How often the bearerbox link's outbox sweeps the store.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);

/// Which stored messages an outbox takes, and how it sweeps for them.
#[derive(Clone)]
pub struct Policy {
    /// How often to sweep the store.
    pub sweep_every: Duration,
    /// Q messages younger than this are left to the fresh path.
    pub fresh_grace: Duration,
    /// Whether messages of this backend are this outbox's to send.
    pub serves: Arc<dyn Fn(&str) -> bool + Send + Sync>,
}

impl Policy {
    /// The bearerbox link's policy: every backend, [`SWEEP_EVERY`],
    /// [`FRESH_GRACE`].
    pub fn every_backend() -> Policy {
        Policy {
            sweep_every: SWEEP_EVERY,
            fresh_grace: FRESH_GRACE,
            serves: Arc::new(|_| true),
        }
    }
}

/// The outbox; cheap to clone.
#[derive(Clone)]
pub struct Outbox {
    inner: Arc<Inner>,
}

struct Inner {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    policy: Policy,
    /// Messages queued before this moment belong to an earlier run: no
    /// fresh offer can be on its way for them.
    started: Micros,
}

#[derive(Default)]
struct State {
    backlog: VecDeque<Message>,
    scheduled: HashSet<MessageId>,
    settling: HashMap<MessageId, Instant>,
    /// Sweeps reading the store now.
    sweeps: usize,
    /// Ids whose answer was committed ([`Outbox::finished`]) while a sweep
    /// was reading: its snapshot may be stale for them. Emptied when the
    /// last sweep ends.
    finished_in_sweep: HashSet<MessageId>,
    /// Resume points of the sweep, per status.
    cursor_queued: Option<MessageId>,
    cursor_errored: Option<MessageId>,
    /// Fresh offers dropped for lack of room since the last sweep.
    dropped: u64,
}

impl Outbox {
    /// An outbox holding at most `capacity` messages in memory, taking
    /// what `policy` says.
    pub fn new(capacity: usize, policy: Policy) -> Outbox {
        Outbox {
            inner: Arc::new(Inner {
                state: Mutex::new(State::default()),
                ready: Notify::new(),
                capacity: capacity.max(1),
                policy,
                started: now_micros(),
            }),
        }
    }

    /// How often [`Outbox::sweep`] should run.
    pub fn sweep_every(&self) -> Duration {
        self.inner.policy.sweep_every
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock leaves plain data behind; carry on.
        self.inner
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Offers a freshly committed Q message. When the outbox is full the
    /// message stays queued in the store and a later sweep brings it.
    pub fn offer(&self, msg: Message) {
        let mut state = self.state();
        if state.scheduled.contains(&msg.id) {
            return;
        }
        if state.backlog.len() >= self.inner.capacity {
            state.dropped += 1;
            return;
        }
        state.scheduled.insert(msg.id);
        state.backlog.push_back(msg);
        drop(state);
        self.inner.ready.notify_one();
    }

    /// The next message to send; waits while there is none. Cancel-safe: a
    /// message is only taken in the poll that returns it.
    pub async fn next(&self) -> Message {
        loop {
            let ready = self.inner.ready.notified();
            tokio::pin!(ready);
            ready.as_mut().enable();
            if let Some(msg) = self.state().backlog.pop_front() {
                return msg;
            }
            ready.await;
        }
    }

    /// The bearerbox answered for `id` (whatever the answer): it leaves the
    /// outbox, and sweeps ignore it until its new status has settled.
    pub fn done(&self, id: MessageId) {
        let mut state = self.state();
        state.scheduled.remove(&id);
        state.settling.insert(id, Instant::now());
    }

    /// The message's new status is already committed: it leaves the outbox
    /// and sweeps may see it again at once (an E message due for a quick
    /// retry, say).
    pub fn finished(&self, id: MessageId) {
        let mut state = self.state();
        state.scheduled.remove(&id);
        if state.sweeps > 0 {
            state.finished_in_sweep.insert(id);
        }
    }

    /// A message taken with [`Outbox::next`] was not sent after all, or its
    /// answer was lost with the connection: it goes back to the front.
    pub fn release(&self, msg: Message) {
        self.state().backlog.push_front(msg);
        self.inner.ready.notify_one();
    }

    /// Messages waiting in memory.
    pub fn len(&self) -> usize {
        self.state().backlog.len()
    }

    /// True when nothing waits in memory.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Scans the store for sendable messages the outbox does not hold, up to
    /// its free room. A long read: run it under [`Store::long_read`].
    pub async fn sweep(&self, store: &Store) {
        // Before the snapshot: anything finished from here on may still
        // read as Q in it.
        let _sweep = self.begin_sweep();
        let now = now_micros();
        let grace =
            Micros::try_from(self.inner.policy.fresh_grace.as_micros()).unwrap_or(Micros::MAX);
        let serves = &self.inner.policy.serves;
        let (room, after_q, after_e) = {
            let mut state = self.state();
            let keep = SETTLE_FOR;
            state.settling.retain(|_, at| at.elapsed() < keep);
            if state.dropped > 0 {
                debug!(dropped = state.dropped, "fresh offers left to the sweep");
                state.dropped = 0;
            }
            let room = self.inner.capacity.saturating_sub(state.backlog.len());
            (room, state.cursor_queued, state.cursor_errored)
        };
        if room == 0 {
            return;
        }
        let queued = store
            .messages_by_status(Status::Queued, None, after_q, room)
            .await;
        let errored = store
            .messages_by_status(Status::Errored, None, after_e, room)
            .await;
        let (queued, errored) = match (queued, errored) {
            (Ok(q), Ok(e)) => (q, e),
            (Err(e), _) | (_, Err(e)) => {
                warn!(error = %e, "outbox sweep could not read the store");
                return;
            }
        };
        let mut state = self.state();
        state.cursor_queued = if queued.len() < room {
            None
        } else {
            queued.last().map(|m| m.id)
        };
        state.cursor_errored = if errored.len() < room {
            None
        } else {
            errored.last().map(|m| m.id)
        };
        let started = self.inner.started;
        let eligible = queued
            .into_iter()
            .filter(|m| m.updated < started || m.updated < now.saturating_sub(grace))
            .chain(
                errored
                    .into_iter()
                    .filter(|m| m.retry_after.is_none_or(|t| t <= now)),
            )
            .filter(|m| serves(&m.connection.backend));
        let added = self.admit(&mut state, eligible);
        drop(state);
        if added > 0 {
            debug!(added, "outbox sweep found messages to send");
            self.inner.ready.notify_one();
        }
    }

    /// Marks a sweep as reading until the guard is dropped: answers
    /// committed meanwhile are remembered for it.
    fn begin_sweep(&self) -> SweepGuard<'_> {
        self.state().sweeps += 1;
        SweepGuard(self)
    }

    /// Puts the messages a sweep found in the backlog, but for those in
    /// hand, settling, or whose answer was committed while it read (its
    /// snapshot may predate it). Returns how many it added.
    fn admit(&self, state: &mut State, found: impl IntoIterator<Item = Message>) -> usize {
        let mut added = 0;
        for msg in found {
            if state.backlog.len() >= self.inner.capacity {
                break;
            }
            let stale = state.finished_in_sweep.contains(&msg.id);
            if stale || state.scheduled.contains(&msg.id) || state.settling.contains_key(&msg.id) {
                continue;
            }
            state.scheduled.insert(msg.id);
            state.backlog.push_back(msg);
            added += 1;
        }
        added
    }
}

/// A sweep reading the store ([`Outbox::begin_sweep`]).
struct SweepGuard<'a>(&'a Outbox);

impl Drop for SweepGuard<'_> {
    fn drop(&mut self) {
        let mut state = self.0.state();
        state.sweeps = state.sweeps.saturating_sub(1);
        if state.sweeps == 0 {
            state.finished_in_sweep.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, Direction};

    fn msg(id: MessageId) -> Message {
        Message::new(id, Connection::new("fake", "+1"), Direction::Outgoing, "x")
    }

    #[tokio::test]
    async fn offers_come_out_in_order_and_duplicates_are_ignored() {
        let outbox = Outbox::new(10, Policy::every_backend());
        outbox.offer(msg(1));
        outbox.offer(msg(2));
        outbox.offer(msg(1));
        assert_eq!(outbox.next().await.id, 1);
        assert_eq!(outbox.next().await.id, 2);
        assert!(outbox.is_empty());
    }

    #[tokio::test]
    async fn a_full_outbox_drops_offers_and_released_messages_go_first() {
        let outbox = Outbox::new(2, Policy::every_backend());
        outbox.offer(msg(1));
        outbox.offer(msg(2));
        outbox.offer(msg(3));
        assert_eq!(outbox.len(), 2);
        let first = outbox.next().await;
        outbox.release(first);
        assert_eq!(outbox.next().await.id, 1);
    }

    /// The race that sent replies twice under load: a sweep reads the
    /// store, the message is sent and its answer committed meanwhile, and
    /// the sweep then finds it Q in its stale snapshot and not in hand.
    #[tokio::test]
    async fn a_sweep_that_read_before_an_answer_was_committed_leaves_the_message_alone() {
        let outbox = Outbox::new(10, Policy::every_backend());
        outbox.offer(msg(1));
        let sent = outbox.next().await;
        let sweep = outbox.begin_sweep();
        outbox.finished(sent.id);
        let mut state = outbox.state();
        assert_eq!(outbox.admit(&mut state, [msg(1)]), 0);
        drop(state);
        drop(sweep);
        assert!(outbox.is_empty(), "a message already sent was queued again");
        // A sweep that began after the commit reads the new status; one
        // that finds the message Q then (an E retried, say) takes it.
        let _later = outbox.begin_sweep();
        let mut state = outbox.state();
        assert_eq!(outbox.admit(&mut state, [msg(1)]), 1);
    }

    #[tokio::test]
    async fn answers_are_remembered_only_while_a_sweep_reads() {
        // Remembering every answer for seconds cost 30 MB and 3% CPU at
        // 40,000 MTs/s (boxload, 1,000,000 MOs).
        let outbox = Outbox::new(10, Policy::every_backend());
        for id in 1..=5 {
            outbox.offer(msg(id));
            let sent = outbox.next().await;
            outbox.finished(sent.id);
        }
        assert!(outbox.state().finished_in_sweep.is_empty());
        let sweep = outbox.begin_sweep();
        outbox.finished(7);
        assert_eq!(outbox.state().finished_in_sweep.len(), 1);
        drop(sweep);
        assert!(outbox.state().finished_in_sweep.is_empty());
    }

    #[tokio::test]
    async fn next_waits_for_an_offer() {
        let outbox = Outbox::new(2, Policy::every_backend());
        let waiter = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.next().await.id }
        });
        tokio::task::yield_now().await;
        outbox.offer(msg(7));
        assert_eq!(waiter.await.unwrap(), 7);
    }
}
