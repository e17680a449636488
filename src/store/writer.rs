//! The one writer: a dedicated thread (redb is blocking) that turns queued
//! units into durable transactions, many units per fsync.
//!
//! It takes the first unit off the queue, drains whatever else is already
//! waiting (up to a batch bound), applies them all as one *group*, makes
//! the group durable, and only then answers the waiters. While one group
//! waits for the disk the queue fills, so the next group is bigger: the
//! group size follows the load and throughput is not capped by the disk's
//! fsync rate. With the journal and a commit delay
//! ([`StoreOptions::commit_delay`](super::StoreOptions::commit_delay)), a
//! group of units from several senders, coming fast, first waits that
//! long for more (`commit_delay.rs`), so that one fdatasync answers more.
//!
//! How a group becomes durable:
//!
//! - Without the journal, it is one redb transaction committed with
//!   [`Durability::Immediate`].
//! - With the journal (`journal.rs`), the group is applied to an *open*
//!   redb transaction, its units are appended to the journal as one
//!   record and fdatasync'ed, and the waiters are answered: the ack waits
//!   for one sequential write, not for redb. The open transaction gathers
//!   group after group and is committed without an fsync once it holds
//!   [`APPLY_MAX_UNITS`] units or [`APPLY_MAX_BYTES`], has been open
//!   [`APPLY_MAX_DELAY`], a reader asks for it (below), or a purge or a
//!   checkpoint comes. At moderate load a group holds a few units, and a
//!   redb transaction (its copy-on-write of every B-tree page it touches,
//!   its commit) used to be paid per group; now it is paid per thousands
//!   of units.
//!
//! Applying before the journal append keeps every answer exact: a
//! duplicate or a refused unit is found by the transaction itself, as
//! without the journal, and only applied units are journaled. A failure
//! in the open transaction or the journal fails the group being applied;
//! the groups acked into it before are in the journal, and the writer
//! lets go of the file and reopens it (below), which replays them.
//!
//! # Checkpoints, in the background
//!
//! Every `checkpoint_secs` (or once the journal holds `checkpoint_bytes`)
//! redb commits durably and the journal is emptied: a *checkpoint*. That
//! durable commit writes and fsyncs every page dirtied since the last one
//! (33-38 ms at 10,000 MOs/s, ~10 of them for an empty commit), and redb
//! takes one write transaction at a time, so done in line every ack
//! waited for it. Instead (`checkpoint.rs`):
//!
//! 1. The open transaction is committed without durability, so that a
//!    read snapshot holds every acked group.
//! 2. The journal *rotates*: new records go to its other file (the two
//!    are `.journal` and `.journal.1`, used in turn; see `journal.rs`).
//!    Every record in the old file is in that snapshot; the journal
//!    sequence redb holds is the old file's last.
//! 3. A thread commits an empty write transaction durably, which makes
//!    every commit before it durable.
//! 4. Meanwhile groups are still journaled (in the new file), fsynced and
//!    acked. Their outcomes are *foreseen* from the snapshot and what the
//!    groups acked since add to it (the MO keys they claimed, the messages
//!    they put); readers' MO lookups find their keys in memory as before.
//!    The groups are held, at most [`APPLY_MAX_UNITS`] units and
//!    [`APPLY_MAX_BYTES`]; beyond that the writer waits for the
//!    checkpoint (and callers for room in the queue). A unit whose outcome
//!    only applying can tell, a put that replaces a stored message, also
//!    waits for it: callers put new messages under fresh ids, so that is
//!    rare.
//! 5. When the durable commit returns, the old journal file is deleted
//!    and the held groups are applied, in order, to a new open
//!    transaction, which notes the last one's journal sequence.
//!
//! Every read other than the MO lookup (below) waits for that, being one
//! of acked groups not yet committed to redb: a read during a checkpoint
//! may wait for it, and never misses an acked unit. Purges wait for it
//! too. If the durable commit fails, nothing is lost: both journal files
//! stay, the writer lets go of the file, and reopening replays both, in
//! sequence order, past the sequence redb holds durably. A crash at any
//! step is the same: on open both files are read, records at or before
//! that sequence skipped, so a kill after the durable commit but before
//! the old file's deletion applies nothing twice.
//!
//! # Reads
//!
//! Reads see every acked unit (`read.rs`): lookups of MO keys (the
//! dedupe of every MO) find the keys of acked units in memory, published
//! before the answer, and keys moved to `mo_keys` leave memory only once
//! that move is committed; the point lookups of a message and of an
//! opt-out look first at what acked, unapplied units touched
//! (`unapplied.rs`, noted before each group is answered, forgotten once
//! a commit holding it is visible) and fence only when that says they
//! must; every other read first calls
//! [`RedbStore::fence`](super::RedbStore::fence), which is two atomic loads when
//! everything acked is committed, and otherwise flags the writer, which
//! commits the open transaction after the group it is applying (or after
//! the checkpoint under way), and waits for that commit. Memory stays
//! bounded: the open transaction and the held groups by the bounds above,
//! the queue by its capacity (callers wait for room).
//!
//! # Purges and failures
//!
//! A purge batch (retention, `rapidbox purge`) is its own short
//! transaction, run between batches of units when none wait, or once it
//! has waited [`MAX_PURGE_WAIT`]: the hot path's units wait for at most
//! one purge transaction, and only when the writer has no moment to spare.
//!
//! After a batch fails in storage (a full disk, an I/O error), redb refuses
//! every later transaction until the file is reopened. So the writer then
//! lets go of the file (readers get [`StoreError::Recovering`]) and reopens
//! it before the next batch: at once, then after pauses that double from
//! [`FIRST_REOPEN_PAUSE`] to [`MAX_REOPEN_PAUSE`] while opening keeps
//! failing, whether units come or not. Units that come meanwhile are
//! answered `Recovering` at once; callers treat that as transient (a
//! bearerbox MO is acked `failed_tmp` and kept by the bearerbox).

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use redb::{Database, Durability, WriteTransaction};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::apply::{Batch, Finished, RecentMos, Tables};
use super::checkpoint::{self, Checkpoint, Held};
use super::commit_delay::CommitDelay;
use super::error::{uuid_text, StoreError};
use super::journal::{self, Journal};
use super::purge::{self, Job, PurgeReport};
use super::read::MoKeysView;
use super::schema::{META, META_JOURNAL_SEQ};
use super::unapplied::Unapplied;
use super::unit::{Outcome, Unit};
use super::{Opened, Opener, RecentMoKeys};
use crate::model::MoKey;

/// The pause before the second try at reopening the file.
pub(crate) const FIRST_REOPEN_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between tries.
pub(crate) const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(30);
/// While the file is let go, how often the writer looks for units between
/// tries (a unit then waits this long at most to be answered).
const RECOVERY_POLL: Duration = Duration::from_millis(20);

/// With the journal, acked groups gather in one redb transaction, which is
/// committed (without an fsync) once it holds this many units, ...
pub(crate) const APPLY_MAX_UNITS: usize = 8192;
/// ... or about this many bytes of units (bounding the dirty pages redb
/// keeps in memory for it), ...
pub(crate) const APPLY_MAX_BYTES: usize = 32 << 20;
/// ... or has been open this long (the most a reader that does not ask,
/// such as a [`Store::changes`](super::Store::changes) watcher, waits to
/// see an acked unit). A reader that asks gets it committed at once.
pub(crate) const APPLY_MAX_DELAY: Duration = Duration::from_millis(200);

/// The longest a purge batch waits for a moment when no unit does.
const MAX_PURGE_WAIT: Duration = Duration::from_millis(100);

/// What callers send the writer.
pub(crate) enum Request {
    /// A unit to apply; `reply` is `None` for [`Store::enqueue`](super::Store::enqueue).
    Unit(Pending),
    /// A purge batch, run in its own transaction between batches of units
    /// (see the module's docs and `purge.rs`).
    Purge(Job),
    /// Commit what is queued, then stop.
    Close(oneshot::Sender<()>),
    /// Wakes the writer for a reader that waits for acked groups to be
    /// committed ([`Shared::flush_wanted`] says what to do).
    Flush,
}

pub(crate) struct Pending {
    pub(crate) unit: Unit,
    pub(crate) reply: Option<oneshot::Sender<Result<Outcome, StoreError>>>,
    /// The unit's approximate size, for the batch byte budget.
    pub(crate) bytes: usize,
}

impl Pending {
    /// Tells the unit's waiter, if any (and logs a refusal, or the loss
    /// of an enqueued unit); the unit itself stays, to be dropped with
    /// its group ([`answer_group`]).
    fn answer(&mut self, answer: Result<Outcome, StoreError>) {
        if let Err(e) = &answer {
            let uuid = self
                .unit
                .unless_mo_known
                .as_ref()
                .map(|k| uuid_text(&k.uuid));
            if matches!(e, StoreError::Rejected(_) | StoreError::Corrupt { .. }) {
                warn!(error = %e, uuid, ops = self.unit.ops.len(), "unit refused");
            } else if self.reply.is_none() {
                // No caller waits for an enqueued unit; this log is all
                // that is left of its failure.
                warn!(error = %e, uuid, ops = self.unit.ops.len(), "enqueued unit lost");
            }
        }
        if let Some(reply) = self.reply.take() {
            // A caller that stopped waiting has nothing to learn.
            let _ = reply.send(answer);
        }
    }
}

/// Answers every unit of a group, in order, then drops the units.
///
/// The answers go out in one tight run, and the units (their messages,
/// the costly part to free) are dropped only after the last: waiters that
/// one task polls together (the link's session polls all of its MOs, see
/// `link/session.rs`) are then all ready by the time that task runs, so a
/// group wakes it once rather than once per unit. Each unit still gets
/// its own exact answer.
fn answer_group(
    batch: &mut Vec<Pending>,
    answers: impl IntoIterator<Item = Result<Outcome, StoreError>>,
) {
    for (pending, answer) in batch.iter_mut().zip(answers) {
        pending.answer(answer);
    }
    batch.clear();
}

/// Answers every unit of a group with the same error ([`answer_group`]).
fn fail_group(batch: &mut Vec<Pending>, error: &StoreError) {
    let units = batch.len();
    answer_group(
        batch,
        std::iter::repeat_n(error, units).map(|e| Err(e.clone())),
    );
}

/// How much one transaction may carry.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub(crate) max_units: usize,
    pub(crate) max_bytes: usize,
    /// With the journal: the most time, and journal bytes, between
    /// checkpoints.
    pub(crate) checkpoint_interval: Duration,
    pub(crate) checkpoint_bytes: u64,
    /// Move the keys in `mo_recent` to `mo_keys` once this many wait.
    pub(crate) move_mo_keys_at: usize,
}

/// Counters shared between the writer and the handles.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// The next id [`Store::allocate_id`](super::Store::allocate_id) gives.
    pub(crate) next_id: AtomicU64,
    pub(crate) transactions: AtomicU64,
    /// Durable redb commits with the journal on (every commit without it
    /// is durable and is not counted here).
    pub(crate) checkpoints: AtomicU64,
    pub(crate) units: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
    /// Wall time applying units, and committing them (mostly the disk).
    pub(crate) apply_micros: AtomicU64,
    pub(crate) commit_micros: AtomicU64,
    /// Messages purged, and purge transactions committed (retention's
    /// progress).
    pub(crate) purged: AtomicU64,
    pub(crate) purge_transactions: AtomicU64,
    /// Wall time in purge transactions, committing included: the time
    /// units may have waited for retention.
    pub(crate) purge_micros: AtomicU64,
    /// The number of durable commits, sent after each one so that readers
    /// showing live data (the console) learn that something changed
    /// without polling; see [`Store::changes`](super::Store::changes).
    pub(crate) committed: tokio::sync::watch::Sender<u64>,
    /// The open file, for readers; `None` once closed, or while the
    /// writer reopens it.
    pub(crate) db: RwLock<Option<Arc<Database>>>,
    /// The writer let go of the file after a storage failure and has not
    /// reopened it yet.
    pub(crate) recovering: AtomicBool,
    /// The snapshot of `mo_keys` that MO lookups share until the next
    /// commit (see [`MoKeysView`]). The writer empties it after every
    /// commit, so that it never keeps the file open or holds back pages
    /// freed since.
    pub(crate) mo_keys_view: Mutex<Option<MoKeysView>>,
    /// The keys in `mo_recent` as of the last commit, by key: where MO
    /// lookups look first (see [`MO_RECENT`](super::schema::MO_RECENT)).
    /// Only the writer changes it, after each commit.
    pub(crate) recent_mos: RwLock<RecentMoKeys>,
    /// Commit latency and batch size, observed once per transaction (not
    /// per unit), for the metrics ([`Store::histograms`](super::Store::histograms)).
    pub(crate) histograms: WriterHistograms,
    /// redb commits: what tags the shared `mo_keys` view. With the journal
    /// one commits many acked groups.
    pub(crate) redb_commits: AtomicU64,
    /// Groups made durable (journaled, or committed durably) and answered
    /// so far; with the journal some may not be committed to redb yet.
    pub(crate) acked: AtomicU64,
    /// Of those, the groups readers see (committed to redb): see
    /// [`RedbStore::fence`](super::RedbStore::fence). Changed under
    /// `visible_lock`, and `visible_changed` notified.
    pub(crate) visible: AtomicU64,
    pub(crate) visible_lock: Mutex<()>,
    pub(crate) visible_changed: Condvar,
    /// A reader waits for the open transaction: commit it at the next
    /// chance.
    pub(crate) flush_wanted: AtomicBool,
    /// What acked groups not yet visible changed, for point lookups that
    /// need no fence (`unapplied.rs`).
    pub(crate) unapplied: Unapplied,
}

/// The writer's histograms: prometheus-client's, which the metrics module
/// registers as they are (the store itself knows nothing of metrics).
#[derive(Debug, Clone)]
pub struct WriterHistograms {
    /// Seconds from a transaction's start to its durable commit.
    pub commit_seconds: Histogram,
    /// Units in each committed batch.
    pub batch_units: Histogram,
}

impl Default for WriterHistograms {
    fn default() -> WriterHistograms {
        WriterHistograms {
            // 100 µs to ~3 s: an fsync on an SSD to a disk in trouble.
            commit_seconds: Histogram::new(exponential_buckets(0.0001, 2.0, 16)),
            // 1 to 4096 units (`max_batch_units`' default).
            batch_units: Histogram::new(exponential_buckets(1.0, 2.0, 13)),
        }
    }
}

impl Shared {
    /// The recent MO keys, for reading.
    pub(crate) fn recent_mos(&self) -> std::sync::RwLockReadGuard<'_, RecentMoKeys> {
        self.recent_mos
            .read()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn recent_mos_mut(&self) -> std::sync::RwLockWriteGuard<'_, RecentMoKeys> {
        self.recent_mos
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Publishes a durable group's MO keys to lookups, before it is
    /// answered.
    fn publish_keys(&self, added: &RecentMoKeys, released: &HashSet<MoKey>) {
        if added.is_empty() && released.is_empty() {
            return;
        }
        let mut mos = self.recent_mos_mut();
        for key in released {
            mos.remove(key);
        }
        mos.extend(added.iter().map(|(k, id)| (*k, *id)));
    }

    /// Makes the groups up to `visible` visible to readers, or (`None`)
    /// just wakes them (the file was let go) and wakes those waiting.
    pub(crate) fn publish_visible(&self, visible: Option<u64>) {
        let _guard = self
            .visible_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(visible) = visible {
            self.visible.fetch_max(visible, Ordering::AcqRel);
            // After the commit: a lookup that misses these now finds
            // them in the snapshot it opens next.
            self.unapplied.settle(visible);
        }
        self.visible_changed.notify_all();
    }

    /// Notes what the next group to be acked changes, for lookups that
    /// skip the fence (`unapplied.rs`); called just before it counts as
    /// acked. Only the writer acks, so the group's number is the next.
    fn note_unapplied<'u>(&self, units: impl IntoIterator<Item = &'u Unit>) {
        let group = self.acked.load(Ordering::Acquire) + 1;
        self.unapplied.note(group, units);
    }

    /// Drops the shared `mo_keys` snapshot.
    fn forget_views(&self) {
        self.mo_keys_view
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
    }
}

/// When the writer tries to reopen the file next.
#[derive(Debug)]
pub(crate) struct Recovery {
    next_try: Instant,
    pause: Duration,
}

impl Default for Recovery {
    fn default() -> Recovery {
        Recovery {
            next_try: Instant::now(),
            pause: FIRST_REOPEN_PAUSE,
        }
    }
}

pub(crate) struct Writer {
    /// `None` after a storage failure, until reopened.
    pub(crate) db: Option<Arc<Database>>,
    /// The write-ahead journal when `[store] journal` is on (and the file
    /// is open): batches are durable through it, and redb's commits are
    /// durable only at checkpoints.
    pub(crate) journal: Option<Journal>,
    /// When redb last committed durably (the journal was emptied then).
    pub(crate) last_checkpoint: Instant,
    pub(crate) opener: Opener,
    pub(crate) recovery: Recovery,
    pub(crate) requests: mpsc::Receiver<Request>,
    pub(crate) limits: Limits,
    pub(crate) shared: Arc<Shared>,
    /// The next event sequence, as of the last group applied.
    pub(crate) next_seq: u64,
    /// The keys in `mo_recent` as the open transaction has them (the
    /// readers' copy, [`Shared::recent_mos`], also keeps the keys moved to
    /// `mo_keys` until that move is committed).
    pub(crate) recent: RecentMoKeys,
    /// With the journal: the redb transaction holding the groups acked
    /// since the last commit (see the module's docs).
    pub(crate) open: Option<OpenApply>,
    /// A durable commit under way on its own thread, and the groups acked
    /// meanwhile (`checkpoint.rs`).
    pub(crate) checkpoint: Option<Checkpoint>,
    /// With the journal: how long a group waits for more units before
    /// its fdatasync (`commit_delay.rs`).
    pub(crate) commit_delay: CommitDelay,
}

/// The transaction that groups are applied to, with the journal on, until
/// it is committed in one go.
pub(crate) struct OpenApply {
    txn: WriteTransaction,
    started: Instant,
    units: usize,
    bytes: usize,
    /// Groups acked into it, as counted by [`Shared::acked`].
    acked: u64,
    /// Keys it moved from `mo_recent` to `mo_keys`: readers find them in
    /// memory until it is committed.
    moved: Vec<MoKey>,
}

/// What one group left to do once it is applied.
struct Applied {
    answers: Vec<Result<Outcome, StoreError>>,
    wrote: bool,
    next_seq: u64,
    recent: RecentMos,
}

impl Writer {
    /// Counts an answered batch of `units` in the writer's statistics;
    /// returns how many of `answers` were refusals.
    fn count_batch(&self, units: usize, answers: &[Result<Outcome, StoreError>]) -> usize {
        let refused = answers.iter().filter(|a| a.is_err()).count();
        self.shared.units.fetch_add(units as u64, Ordering::Relaxed);
        self.shared
            .refused
            .fetch_add(refused as u64, Ordering::Relaxed);
        self.shared
            .largest_batch
            .fetch_max(units as u64, Ordering::Relaxed);
        self.shared.histograms.batch_units.observe(units as f64);
        refused
    }

    /// Runs until every handle is gone or a close was asked for, and the
    /// queue is empty.
    pub(crate) fn run(mut self) {
        let _panic_log = PanicLog;
        // Waiting for a request with a deadline (the open transaction's
        // APPLY_MAX_DELAY) needs a timer; the queue is tokio's.
        let runtime = match tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
        {
            Ok(runtime) => runtime,
            Err(e) => {
                error!(error = %e, "the store writer cannot start its timer");
                return;
            }
        };
        let mut scratch = Vec::with_capacity(1024);
        let mut batch: Vec<Pending> = Vec::new();
        let mut closers = Vec::new();
        let mut purges = Vec::new();
        loop {
            let first = match self.next_request(&runtime) {
                Next::Request(request) => request,
                Next::Due => {
                    self.apply_due(&mut purges);
                    continue;
                }
                Next::Checkpointed(result) => {
                    self.finish_checkpoint(result);
                    self.apply_due(&mut purges);
                    continue;
                }
                Next::End => break,
            };
            let mut taken = Taken {
                batch: &mut batch,
                closers: &mut closers,
                purges: &mut purges,
            };
            let mut bytes = taken.take(first);
            bytes = self.drain(&mut taken, bytes);
            self.gather(&mut taken, &mut bytes);
            if !batch.is_empty() {
                self.commit_batch(&mut batch, bytes, &mut scratch);
            }
            self.apply_due(&mut purges);
            if !closers.is_empty() {
                // Refuse new units; those already queued still commit.
                self.requests.close();
            }
        }
        debug!("store writer stopping");
        self.wait_for_checkpoint();
        self.final_checkpoint();
        // The file closes when the last reader lets go of it too.
        drop(self.db);
        for done in closers {
            let _ = done.send(());
        }
    }

    /// Takes what is already queued into the group, up to the batch
    /// bounds; returns the group's bytes.
    fn drain(&mut self, taken: &mut Taken<'_>, mut bytes: usize) -> usize {
        while taken.batch.len() < self.limits.max_units && bytes < self.limits.max_bytes {
            match self.requests.try_recv() {
                Ok(request) => bytes += taken.take(request),
                Err(_) => break,
            }
        }
        bytes
    }

    /// With the journal, when units come fast enough: waits the commit
    /// delay and takes what came meanwhile, so that one fdatasync answers
    /// more units (`commit_delay.rs`). Never on the way out, nor for a
    /// group already at its bounds.
    fn gather(&mut self, taken: &mut Taken<'_>, bytes: &mut usize) {
        if taken.batch.is_empty() {
            // A reader's flush, a purge or a close: no group to time.
            return;
        }
        let room = taken.batch.len() < self.limits.max_units && *bytes < self.limits.max_bytes;
        if room && taken.closers.is_empty() && self.journal.is_some() {
            if let Some(wait) = self.commit_delay.wait(taken.batch.len(), Instant::now()) {
                // A sleep, not a wait on the queue: senders then wake
                // nobody, and the writer wakes once.
                std::thread::sleep(wait);
                *bytes = self.drain(taken, *bytes);
            }
        }
        self.commit_delay.taken(taken.batch.len(), Instant::now());
    }

    /// Between groups: commits the open transaction if it is due, and runs
    /// the purges that may run.
    fn apply_due(&mut self, purges: &mut Vec<(Instant, Job)>) {
        if let Some(checkpoint) = self.checkpoint.as_mut() {
            match checkpoint.done.try_recv() {
                Ok(result) => self.finish_checkpoint(result),
                Err(oneshot::error::TryRecvError::Empty) => {
                    // Nothing can be committed until it returns; purges
                    // and readers wait for it.
                    return;
                }
                Err(oneshot::error::TryRecvError::Closed) => {
                    self.finish_checkpoint(Err(checkpoint::thread_gone()));
                }
            }
        }
        // A purge runs after the units, when none wait (or once it has
        // waited MAX_PURGE_WAIT, so that a saturated writer still
        // purges): only units that come while it runs wait for it.
        let due = purges
            .first()
            .is_some_and(|(since, _)| since.elapsed() >= MAX_PURGE_WAIT);
        let purging = !purges.is_empty() && (due || self.requests.is_empty());
        let checkpoint = self.checkpoint_due();
        let flush = self.shared.flush_wanted.load(Ordering::Acquire);
        let full = self.open.as_ref().is_some_and(|open| {
            open.units >= APPLY_MAX_UNITS
                || open.bytes >= APPLY_MAX_BYTES
                || open.started.elapsed() >= APPLY_MAX_DELAY
        });
        if checkpoint && self.journal.as_ref().is_some_and(|j| j.len() > 0) {
            self.start_checkpoint();
        } else if purging || flush || full {
            self.commit_open(false);
        }
        if purging && self.checkpoint.is_none() {
            for (_, job) in purges.drain(..) {
                let answer = self.purge(&job.rule);
                let _ = job.reply.send(answer);
            }
        }
    }

    /// The next request; or `Due` once the open transaction (or a
    /// checkpoint) is due and none came. While the file is let go, it
    /// also tries to reopen it when a try is due, so that readers get it
    /// back without waiting for a unit to come.
    fn next_request(&mut self, runtime: &tokio::runtime::Runtime) -> Next {
        while self.db.is_none() {
            match self.requests.try_recv() {
                Ok(request) => return Next::Request(request),
                Err(mpsc::error::TryRecvError::Disconnected) => return Next::End,
                Err(mpsc::error::TryRecvError::Empty) => {
                    let now = Instant::now();
                    if now >= self.recovery.next_try {
                        let _ = self.usable_database();
                    } else {
                        std::thread::sleep((self.recovery.next_try - now).min(RECOVERY_POLL));
                    }
                }
            }
        }
        if let Some(checkpoint) = self.checkpoint.as_mut() {
            // Nothing is open while it runs: wait for a request or for it.
            let requests = &mut self.requests;
            let done = &mut checkpoint.done;
            return runtime.block_on(async {
                tokio::select! {
                    request = requests.recv() => request.map_or(Next::End, Next::Request),
                    result = done => Next::Checkpointed(
                        result.unwrap_or_else(|_| Err(checkpoint::thread_gone())),
                    ),
                }
            });
        }
        let mut deadline = self
            .open
            .as_ref()
            .map(|open| open.started + APPLY_MAX_DELAY);
        if self.journal.as_ref().is_some_and(|j| j.len() > 0) {
            let checkpoint = self.last_checkpoint + self.limits.checkpoint_interval;
            deadline = Some(deadline.map_or(checkpoint, |d| d.min(checkpoint)));
        }
        let Some(deadline) = deadline else {
            return self
                .requests
                .blocking_recv()
                .map_or(Next::End, Next::Request);
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        let requests = &mut self.requests;
        match runtime.block_on(async { tokio::time::timeout(wait, requests.recv()).await }) {
            Ok(Some(request)) => Next::Request(request),
            Ok(None) => Next::End,
            Err(_) => Next::Due,
        }
    }

    /// Applies a group of units and answers them once durable: after the
    /// journal's fsync with the journal on (the group stays in the open
    /// transaction), else after a durable commit of its own.
    fn commit_batch(&mut self, batch: &mut Vec<Pending>, bytes: usize, scratch: &mut Vec<u8>) {
        let started = Instant::now();
        let units = batch.len();
        if self.checkpoint.is_some() {
            if self.foresee_batch(batch, bytes, scratch) {
                return;
            }
            // Only applying can answer it: after the checkpoint.
            self.wait_for_checkpoint();
        }
        let Some(db) = self.usable_database() else {
            fail_group(batch, &StoreError::Recovering);
            return;
        };
        match self.write(&db, batch, bytes, scratch) {
            Ok(answers) => {
                let refused = self.count_batch(units, &answers);
                answer_group(batch, answers);
                debug!(units, refused, elapsed = ?started.elapsed(), "batch committed");
            }
            Err(e) => {
                self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                error!(error = %e, units, "batch not committed; every unit in it fails");
                fail_group(batch, &e);
                if matches!(e, StoreError::Storage { .. }) {
                    self.let_go();
                }
            }
        }
    }

    /// Lets go of the file after a storage failure: redb refuses every
    /// transaction after one until the file is reopened. Groups acked
    /// into the open transaction are in the journal, and reopening
    /// replays them.
    fn let_go(&mut self) {
        warn!("closing the store file to reopen it");
        if let Some(mut checkpoint) = self.checkpoint.take() {
            // Its thread holds the file. Whether it made it durable or
            // not, reopening replays both journal files past what is.
            let _ = checkpoint.wait();
        }
        self.shared.recovering.store(true, Ordering::Relaxed);
        self.open = None;
        self.shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.shared.forget_views();
        self.db = None;
        // Reopening replays it into the reopened file.
        self.journal = None;
        self.recovery = Recovery::default();
        // Readers waiting for acked groups learn that they must wait for
        // the reopening.
        self.shared.publish_visible(None);
    }

    /// The open file, reopening it first if it was let go and a try is
    /// due; `None` while it cannot be had.
    fn usable_database(&mut self) -> Option<Arc<Database>> {
        if let Some(db) = &self.db {
            return Some(db.clone());
        }
        let now = Instant::now();
        if now < self.recovery.next_try {
            return None;
        }
        // A reader still holding the old file makes this fail as already
        // open; the next try finds it free.
        match self.opener.open() {
            Ok(Opened {
                db,
                next_id,
                next_seq,
                recent,
                journal,
            }) => {
                let db = Arc::new(db);
                self.journal = journal;
                self.last_checkpoint = Instant::now();
                self.recent = recent.clone();
                *self.shared.recent_mos_mut() = recent;
                self.shared.next_id.fetch_max(next_id, Ordering::Relaxed);
                self.next_seq = self.next_seq.max(next_seq);
                *self
                    .shared
                    .db
                    .write()
                    .unwrap_or_else(PoisonError::into_inner) = Some(db.clone());
                self.shared.recovering.store(false, Ordering::Relaxed);
                self.db = Some(db.clone());
                // Every acked group was journaled, so the replay put it
                // in the file.
                let acked = self.shared.acked.load(Ordering::Acquire);
                self.shared.publish_visible(Some(acked));
                info!("store file reopened");
                Some(db)
            }
            Err(e) => {
                let pause = self.recovery.pause;
                warn!(error = %e, "the store file cannot be reopened yet; next try in {pause:?}");
                self.recovery = Recovery {
                    next_try: now + pause,
                    pause: (pause * 2).min(MAX_REOPEN_PAUSE),
                };
                None
            }
        }
    }

    /// One group: applied to the open transaction (beginning one if
    /// none is), then made durable: by a journal record, or without the
    /// journal by committing the transaction durably. The answers, in
    /// batch order.
    fn write(
        &mut self,
        db: &Database,
        batch: &[Pending],
        bytes: usize,
        scratch: &mut Vec<u8>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let started = Instant::now();
        if self.open.is_none() {
            let txn = db
                .begin_write()
                .map_err(|e| StoreError::storage("beginning a transaction")(e.into()))?;
            self.open = Some(OpenApply {
                txn,
                started,
                units: 0,
                bytes: 0,
                acked: self.shared.acked.load(Ordering::Relaxed),
                moved: Vec::new(),
            });
        }
        let applied = self.apply(batch, scratch);
        let applied_at = Instant::now();
        add_micros(&self.shared.apply_micros, applied_at - started);
        let Applied {
            answers,
            wrote,
            next_seq,
            recent,
        } = match applied {
            Ok(applied) => applied,
            Err(e) => {
                // The transaction is unusable; groups acked into it are in
                // the journal (the caller lets go of the file, and
                // reopening replays them).
                self.open = None;
                return Err(e);
            }
        };
        // The writer's own copy follows the transaction at once.
        for key in &recent.released {
            self.recent.remove(key);
        }
        self.recent
            .extend(recent.added.iter().map(|(k, id)| (*k, *id)));
        for key in &recent.moved {
            self.recent.remove(key);
        }
        if !wrote {
            // Only duplicates and refusals, all answered from state that
            // was already durable (or acked): nothing to sync.
            return Ok(answers);
        }
        if let Some(journal) = self.journal.as_mut() {
            let open = self.open.as_mut().expect("begun above");
            if let Err(e) = journal_batch(journal, &open.txn, batch, &answers) {
                self.open = None;
                return Err(e);
            }
            add_micros(&self.shared.commit_micros, applied_at.elapsed());
            open.units += batch.len();
            open.bytes += bytes;
            open.moved.extend(recent.moved.iter().copied());
            self.next_seq = next_seq;
            // Durable: readers may learn of its MO keys, and then of it.
            self.shared.publish_keys(&recent.added, &recent.released);
            self.shared.note_unapplied(applied_units(batch, &answers));
            let acked = self.shared.acked.fetch_add(1, Ordering::AcqRel) + 1;
            open.acked = acked;
            self.shared.transactions.fetch_add(1, Ordering::Relaxed);
        } else {
            // No journal: this group's own durable commit.
            let acked = self.shared.acked.fetch_add(1, Ordering::AcqRel) + 1;
            if let Some(open) = self.open.as_mut() {
                open.acked = acked;
                open.moved.extend(recent.moved.iter().copied());
            }
            self.next_seq = next_seq;
            self.commit_txn(true, Some(&recent))?;
            self.shared.transactions.fetch_add(1, Ordering::Relaxed);
        }
        self.shared
            .histograms
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        Ok(answers)
    }

    /// Applies `batch` to the open transaction.
    fn apply(&mut self, batch: &[Pending], scratch: &mut Vec<u8>) -> Result<Applied, StoreError> {
        self.apply_units(batch.iter().map(|p| &p.unit), scratch)
    }

    fn apply_units<'u>(
        &mut self,
        units: impl Iterator<Item = &'u Unit>,
        scratch: &mut Vec<u8>,
    ) -> Result<Applied, StoreError> {
        let open = self.open.as_ref().expect("begun by the caller");
        let mut answers = Vec::new();
        let mut work = Batch::new(
            Tables::of(&open.txn),
            scratch,
            &self.shared.next_id,
            self.next_seq,
            &self.recent,
            self.limits.move_mo_keys_at,
        );
        for unit in units {
            answers.push(work.apply(unit)?);
        }
        let Finished {
            wrote,
            next_seq,
            recent,
        } = work.finish()?;
        Ok(Applied {
            answers,
            wrote,
            next_seq,
            recent,
        })
    }

    /// With the journal: commits the open transaction, durably for a
    /// checkpoint (an empty durable commit if nothing is open). A failure
    /// lets go of the file; reopening replays what was acked.
    fn commit_open(&mut self, durable: bool) {
        if self.db.is_none() {
            return;
        }
        // Readers asking from now on are served by a later commit.
        self.shared.flush_wanted.store(false, Ordering::Release);
        if self.open.is_none() {
            if !durable {
                return;
            }
            let Some(db) = self.db.clone() else {
                return;
            };
            match db.begin_write() {
                Ok(txn) => {
                    self.open = Some(OpenApply {
                        txn,
                        started: Instant::now(),
                        units: 0,
                        bytes: 0,
                        acked: self.shared.acked.load(Ordering::Relaxed),
                        moved: Vec::new(),
                    });
                }
                Err(e) => {
                    error!(error = %e, "cannot begin a checkpoint");
                    self.let_go();
                    return;
                }
            }
        }
        if let Err(e) = self.commit_txn(durable, None) {
            self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
            error!(error = %e, durable, "applying the journaled groups failed; reopening replays them");
            self.let_go();
        }
    }

    /// Commits the open transaction and lets readers see it: the commit
    /// count moves, the shared `mo_keys` view is dropped, moved keys leave
    /// memory, waiting readers wake. `published` is the group's MO keys
    /// when they still are to be published (without the journal, only
    /// once the commit is durable).
    fn commit_txn(
        &mut self,
        durable: bool,
        published: Option<&RecentMos>,
    ) -> Result<(), StoreError> {
        let Some(open) = self.open.take() else {
            return Ok(());
        };
        let committing = Instant::now();
        let OpenApply {
            mut txn,
            acked,
            moved,
            units,
            ..
        } = open;
        txn.set_durability(if durable {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| StoreError::storage("setting durability")(e.into()))?;
        txn.commit()
            .map_err(|e| StoreError::storage("committing")(e.into()))?;
        let took = committing.elapsed();
        add_micros(&self.shared.commit_micros, took);
        if self.journal.is_some() {
            debug!(units, durable, ?took, "journaled groups applied");
            if durable {
                self.checkpointed();
            }
        }
        if let Some(recent) = published {
            self.shared.publish_keys(&recent.added, &recent.released);
        }
        // Release: a lookup that sees the new count opens a snapshot that
        // holds this commit (see `MoKeysView`).
        let n = self.shared.redb_commits.fetch_add(1, Ordering::Release) + 1;
        self.shared.forget_views();
        if !moved.is_empty() {
            let mut mos = self.shared.recent_mos_mut();
            // A moved key that a later group claimed again is back in
            // `mo_recent`, and stays.
            for key in moved.iter().filter(|k| !self.recent.contains_key(k)) {
                mos.remove(key);
            }
        }
        self.shared.publish_visible(Some(acked));
        self.shared.committed.send_replace(n);
        Ok(())
    }
}

/// What the writer waits for next.
enum Next {
    Request(Request),
    /// The open transaction, or a checkpoint, is due.
    Due,
    /// The checkpoint under way returned.
    Checkpointed(Result<(), StoreError>),
    /// Every handle is gone, or the queue was closed and is empty.
    End,
}

/// The units of `batch` that applied (the refused and duplicate ones
/// changed nothing).
fn applied_units<'b>(
    batch: &'b [Pending],
    answers: &'b [Result<Outcome, StoreError>],
) -> impl Iterator<Item = &'b Unit> {
    batch
        .iter()
        .zip(answers)
        .filter(|(_, answer)| matches!(answer, Ok(Outcome::Applied)))
        .map(|(pending, _)| &pending.unit)
}

/// Appends the applied units of `batch` to the journal as one record (the
/// refused and duplicate ones changed nothing) and notes its sequence in
/// `txn`, so that replay knows which records a file holds.
fn journal_batch(
    journal: &mut Journal,
    txn: &redb::WriteTransaction,
    batch: &[Pending],
    answers: &[Result<Outcome, StoreError>],
) -> Result<(), StoreError> {
    let noted: Result<(), redb::Error> =
        txn.open_table(META)
            .map_err(Into::into)
            .and_then(|mut meta| {
                meta.insert(META_JOURNAL_SEQ, journal.next_seq())?;
                Ok(())
            });
    noted.map_err(StoreError::storage("noting the journal sequence"))?;
    let applied: Vec<&Unit> = applied_units(batch, answers).collect();
    journal
        .append(&applied)
        .map_err(journal::storage("writing the journal"))
}

impl Writer {
    /// Whether a checkpoint (a durable redb commit, after which the
    /// journal is emptied) is due: once the checkpoint interval has
    /// passed or the journal has grown to its bound.
    fn checkpoint_due(&self) -> bool {
        match &self.journal {
            None => false,
            Some(journal) => {
                self.last_checkpoint.elapsed() >= self.limits.checkpoint_interval
                    || journal.len() >= self.limits.checkpoint_bytes
            }
        }
    }

    /// After a durable redb commit: everything journaled is in the file,
    /// so the journal is emptied. Failing to empty it is harmless (its
    /// records are older than the file's journal sequence, and replay
    /// skips them) but is logged.
    fn checkpointed(&mut self) {
        let Some(journal) = self.journal.as_mut() else {
            return;
        };
        self.last_checkpoint = Instant::now();
        if journal.len() > 0 {
            if let Err(e) = journal.clear() {
                warn!(error = %e, "cannot empty the journal after a checkpoint");
            }
        }
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
    }

    /// On the way out with the journal: one durable commit, so that the
    /// file holds everything and the journal is left empty. If it fails,
    /// the journal stays and the next open replays it.
    fn final_checkpoint(&mut self) {
        if self.db.is_none() || self.journal.is_none() {
            return;
        }
        if self.open.is_none() && self.journal.as_ref().is_some_and(|j| j.len() == 0) {
            return;
        }
        self.commit_open(true);
    }

    /// One purge batch in its own transaction; then the copy of
    /// `mo_recent` in memory and the readers' views follow, as after a
    /// batch of units.
    fn purge(&mut self, rule: &purge::PurgeRule) -> Result<PurgeReport, StoreError> {
        let Some(db) = self.usable_database() else {
            return Err(StoreError::Recovering);
        };
        let started = Instant::now();
        let run = purge::run(&db, rule);
        add_micros(&self.shared.purge_micros, started.elapsed());
        let purged = match run {
            Ok(purged) => purged,
            Err(e) => {
                error!(error = %e, "purge batch not committed");
                if matches!(e, StoreError::Storage { .. }) {
                    self.let_go();
                }
                return Err(e);
            }
        };
        if purged.report.purged > 0 {
            {
                let mut mos = self.shared.recent_mos_mut();
                for key in &purged.released {
                    mos.remove(key);
                }
            }
            for key in &purged.released {
                self.recent.remove(key);
            }
            // Its commit was durable: a checkpoint of every batch before it.
            self.checkpointed();
            let s = &self.shared;
            s.purged.fetch_add(purged.report.purged, Ordering::Relaxed);
            s.purge_transactions.fetch_add(1, Ordering::Relaxed);
            s.transactions.fetch_add(1, Ordering::Relaxed);
            let n = s.redb_commits.fetch_add(1, Ordering::Release) + 1;
            s.forget_views();
            s.committed.send_replace(n);
            debug!(?purged.report, elapsed = ?started.elapsed(), "purge batch committed");
        }
        Ok(purged.report)
    }
}

/// The checkpoint in the background (`checkpoint.rs`, and the module's
/// docs).
impl Writer {
    /// Commits what is applied (without durability), starts appending to
    /// the journal's other file, and has a thread commit an empty
    /// transaction durably, which makes every commit before it durable.
    /// If the other file cannot be had, the checkpoint runs here, as a
    /// durable commit of the open transaction.
    fn start_checkpoint(&mut self) {
        self.commit_open(false);
        let (Some(db), Some(journal)) = (self.db.clone(), self.journal.as_mut()) else {
            // The commit failed and the file was let go: reopening
            // replays the journal.
            return;
        };
        let begun = db
            .begin_write()
            .map_err(|e| StoreError::storage("beginning a checkpoint")(e.into()))
            .and_then(|txn| Ok((txn, checkpoint::snapshot(&db)?)));
        let (txn, snapshot) = match begun {
            Ok(begun) => begun,
            Err(e) => {
                error!(error = %e, "cannot begin a checkpoint");
                self.let_go();
                return;
            }
        };
        let old_journal = match journal.rotate() {
            Ok(old) => old,
            Err(e) => {
                warn!(error = %e, "cannot start the journal's other file; checkpointing in line");
                drop(snapshot);
                self.open = Some(OpenApply {
                    txn,
                    started: Instant::now(),
                    units: 0,
                    bytes: 0,
                    acked: self.shared.acked.load(Ordering::Relaxed),
                    moved: Vec::new(),
                });
                self.commit_open(true);
                return;
            }
        };
        // Measured from its start: the interval is between starts.
        self.last_checkpoint = Instant::now();
        match Checkpoint::start(txn, snapshot, old_journal) {
            Ok(checkpoint) => self.checkpoint = Some(checkpoint),
            Err(e) => {
                // Both journal files stay; reopening replays them.
                error!(error = %e, "cannot start a checkpoint");
                self.let_go();
            }
        }
    }

    /// Waits for the checkpoint under way, if any, and finishes it.
    fn wait_for_checkpoint(&mut self) {
        if let Some(checkpoint) = self.checkpoint.as_mut() {
            let result = checkpoint.wait();
            self.finish_checkpoint(result);
        }
    }

    /// The durable commit returned: the old journal file goes, and the
    /// groups acked meanwhile are applied to a new open transaction. If
    /// it failed, the file is let go: reopening replays both journal
    /// files.
    fn finish_checkpoint(&mut self, result: Result<(), StoreError>) {
        let Some(checkpoint) = self.checkpoint.take() else {
            return;
        };
        let Checkpoint {
            started,
            old_journal,
            foresight,
            held,
            held_units,
            ..
        } = checkpoint;
        // The snapshot holds the file; the reopening below must not find
        // it held.
        drop(foresight);
        let took = started.elapsed();
        add_micros(&self.shared.commit_micros, took);
        if let Err(e) = result {
            self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
            error!(error = %e, "checkpoint failed; reopening replays both journal files");
            self.let_go();
            return;
        }
        debug!(?took, held = held_units, "checkpoint made durable");
        self.shared.checkpoints.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = std::fs::remove_file(&old_journal) {
            // Harmless: its records are at or before the file's journal
            // sequence, and replay skips them; the next rotation empties
            // it.
            warn!(error = %e, path = %old_journal.display(), "cannot remove the old journal file");
        }
        self.apply_held(held);
    }

    /// Applies the groups acked during a checkpoint, as their journal
    /// records say, to a new open transaction.
    fn apply_held(&mut self, held: Vec<Held>) {
        if held.is_empty() {
            return;
        }
        let Some(db) = self.db.clone() else {
            return;
        };
        let started = Instant::now();
        let txn = match db.begin_write() {
            Ok(txn) => txn,
            Err(e) => {
                error!(error = %e, "cannot apply the groups acked during a checkpoint; reopening replays them");
                self.let_go();
                return;
            }
        };
        self.open = Some(OpenApply {
            txn,
            started,
            units: 0,
            bytes: 0,
            acked: self.shared.acked.load(Ordering::Acquire),
            moved: Vec::new(),
        });
        let mut scratch = Vec::new();
        for group in held {
            if let Err(e) = self.apply_group(&group, &mut scratch) {
                self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                error!(error = %e, "applying the groups acked during a checkpoint failed; reopening replays them");
                self.let_go();
                return;
            }
        }
        add_micros(&self.shared.apply_micros, started.elapsed());
    }

    fn apply_group(&mut self, group: &Held, scratch: &mut Vec<u8>) -> Result<(), StoreError> {
        let Applied {
            answers,
            next_seq,
            recent,
            ..
        } = self.apply_units(group.units.iter(), scratch)?;
        for (unit, answer) in group.units.iter().zip(&answers) {
            if !matches!(answer, Ok(Outcome::Applied)) {
                // Foreseeing and applying disagree: a bug. The unit was
                // acked and is in the journal; say so loudly.
                error!(
                    seq = group.seq,
                    ?answer,
                    ops = unit.ops.len(),
                    "a unit acked during a checkpoint did not apply as foreseen"
                );
            }
        }
        for key in &recent.released {
            self.recent.remove(key);
        }
        self.recent
            .extend(recent.added.iter().map(|(k, id)| (*k, *id)));
        for key in &recent.moved {
            self.recent.remove(key);
        }
        self.shared.publish_keys(&recent.added, &recent.released);
        self.next_seq = next_seq;
        let open = self.open.as_mut().expect("begun by the caller");
        let noted: Result<(), redb::Error> = open
            .txn
            .open_table(META)
            .map_err(Into::into)
            .and_then(|mut meta| {
                meta.insert(META_JOURNAL_SEQ, group.seq)?;
                Ok(())
            });
        noted.map_err(StoreError::storage("noting the journal sequence"))?;
        open.units += group.units.len();
        open.bytes += group.bytes;
        open.moved.extend(recent.moved.iter().copied());
        Ok(())
    }

    /// During a checkpoint: answers `batch` from what is foreseen, after
    /// journaling its applied units, and holds them to apply later.
    /// `false`, with nothing answered, if only applying can answer a unit
    /// or the held groups are at their bound: the caller then waits for
    /// the checkpoint.
    fn foresee_batch(
        &mut self,
        batch: &mut Vec<Pending>,
        bytes: usize,
        scratch: &mut Vec<u8>,
    ) -> bool {
        let started = Instant::now();
        let Some(checkpoint) = self.checkpoint.as_mut() else {
            return false;
        };
        if checkpoint.held_units + batch.len() > APPLY_MAX_UNITS
            || checkpoint.held_bytes + bytes > APPLY_MAX_BYTES
        {
            return false;
        }
        let mut answers = Vec::with_capacity(batch.len());
        let mut added = RecentMoKeys::new();
        for pending in batch.iter() {
            let known = checkpoint.foresight.foresee(
                &pending.unit,
                &self.recent,
                &self.shared.next_id,
                scratch,
                &mut added,
            );
            match known {
                Some(answer) => answers.push(answer),
                // What was foreseen of the batch goes with the checkpoint.
                None => return false,
            }
        }
        let units = batch.len();
        let applied: Vec<usize> = (0..units)
            .filter(|&i| matches!(answers[i], Ok(Outcome::Applied)))
            .collect();
        // As applying: a group that changes nothing is not journaled.
        let wrote = applied.iter().any(|&i| !batch[i].unit.ops.is_empty());
        if wrote {
            let Some(journal) = self.journal.as_mut() else {
                return false;
            };
            let seq = journal.next_seq();
            let record: Vec<&Unit> = applied.iter().map(|&i| &batch[i].unit).collect();
            if let Err(e) = journal.append(&record) {
                let e = journal::storage("writing the journal")(e);
                self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                error!(error = %e, units, "batch not journaled; every unit in it fails");
                fail_group(batch, &e);
                self.let_go();
                return true;
            }
            add_micros(&self.shared.commit_micros, started.elapsed());
            // Durable: readers may learn of its MO keys; other reads wait
            // for it to be applied, after the checkpoint.
            self.shared.publish_keys(&added, &HashSet::new());
            self.shared
                .note_unapplied(applied.iter().map(|&i| &batch[i].unit));
            self.shared.acked.fetch_add(1, Ordering::AcqRel);
            self.shared.transactions.fetch_add(1, Ordering::Relaxed);
            let checkpoint = self.checkpoint.as_mut().expect("checked above");
            let held: Vec<Unit> = applied
                .iter()
                .map(|&i| std::mem::take(&mut batch[i].unit))
                .collect();
            checkpoint.held_units += held.len();
            checkpoint.held_bytes += bytes;
            checkpoint.held.push(Held {
                seq,
                units: held,
                bytes,
            });
        }
        let refused = self.count_batch(units, &answers);
        self.shared
            .histograms
            .commit_seconds
            .observe(started.elapsed().as_secs_f64());
        answer_group(batch, answers);
        debug!(units, refused, elapsed = ?started.elapsed(), "batch acked during a checkpoint");
        true
    }
}

fn add_micros(total: &AtomicU64, elapsed: std::time::Duration) {
    let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    total.fetch_add(micros, Ordering::Relaxed);
}

/// Where the requests taken in one turn of the writer go.
struct Taken<'a> {
    batch: &'a mut Vec<Pending>,
    closers: &'a mut Vec<oneshot::Sender<()>>,
    purges: &'a mut Vec<(Instant, Job)>,
}

impl Taken<'_> {
    /// Sorts a request into the batch, the purges or the close requests;
    /// returns the bytes it adds to the batch.
    fn take(&mut self, request: Request) -> usize {
        match request {
            Request::Unit(pending) => {
                let bytes = pending.bytes;
                self.batch.push(pending);
                bytes
            }
            Request::Purge(job) => {
                self.purges.push((Instant::now(), job));
                0
            }
            Request::Close(done) => {
                self.closers.push(done);
                0
            }
            Request::Flush => 0,
        }
    }
}

/// Logs through tracing if the writer thread panics (the default hook only
/// prints to stderr). Waiters then see their reply channel close.
struct PanicLog;

impl Drop for PanicLog {
    fn drop(&mut self) {
        if std::thread::panicking() {
            error!("store writer panicked; the store is closed");
        }
    }
}
