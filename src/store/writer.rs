//! The one writer: a dedicated thread (redb is blocking) that turns queued
//! units into durable transactions, many units per fsync.
//!
//! It takes the first unit off the queue, drains whatever else is already
//! waiting (up to a batch bound), applies them all in one transaction with
//! [`Durability::Immediate`], commits, and only then answers the waiters.
//! While one commit waits for the disk the queue fills, so the next batch
//! is bigger: the batch size follows the load and throughput is not capped
//! by the disk's fsync rate.
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

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant};

use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use redb::{Database, Durability};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};

use super::apply::{Batch, Finished, Tables};
use super::error::{uuid_text, StoreError};
use super::journal::{self, Journal};
use super::purge::{self, Job, PurgeReport};
use super::read::MoKeysView;
use super::schema::{META, META_JOURNAL_SEQ};
use super::unit::{Outcome, Unit};
use super::{Opened, Opener, RecentMoKeys};

/// The pause before the second try at reopening the file.
pub(crate) const FIRST_REOPEN_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between tries.
pub(crate) const MAX_REOPEN_PAUSE: Duration = Duration::from_secs(30);
/// While the file is let go, how often the writer looks for units between
/// tries (a unit then waits this long at most to be answered).
const RECOVERY_POLL: Duration = Duration::from_millis(20);

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
}

pub(crate) struct Pending {
    pub(crate) unit: Unit,
    pub(crate) reply: Option<oneshot::Sender<Result<Outcome, StoreError>>>,
    /// The unit's approximate size, for the batch byte budget.
    pub(crate) bytes: usize,
}

impl Pending {
    fn answer(self, answer: Result<Outcome, StoreError>) {
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
        if let Some(reply) = self.reply {
            // A caller that stopped waiting has nothing to learn.
            let _ = reply.send(answer);
        }
    }
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
    /// The next event sequence, as of the last commit.
    pub(crate) next_seq: u64,
}

impl Writer {
    /// Runs until every handle is gone or a close was asked for, and the
    /// queue is empty.
    pub(crate) fn run(mut self) {
        let _panic_log = PanicLog;
        let mut scratch = Vec::with_capacity(1024);
        let mut batch: Vec<Pending> = Vec::new();
        let mut closers = Vec::new();
        let mut purges = Vec::new();
        while let Some(first) = self.next_request() {
            let mut taken = Taken {
                batch: &mut batch,
                closers: &mut closers,
                purges: &mut purges,
            };
            let mut bytes = taken.take(first);
            while taken.batch.len() < self.limits.max_units && bytes < self.limits.max_bytes {
                match self.requests.try_recv() {
                    Ok(request) => bytes += taken.take(request),
                    Err(_) => break,
                }
            }
            if !batch.is_empty() {
                self.commit_batch(&mut batch, &mut scratch);
            }
            // A purge runs after the units, when none wait (or once it has
            // waited MAX_PURGE_WAIT, so that a saturated writer still
            // purges): only units that come while it runs wait for it.
            let due = purges
                .first()
                .is_some_and(|(since, _)| since.elapsed() >= MAX_PURGE_WAIT);
            if due || self.requests.is_empty() {
                for (_, job) in purges.drain(..) {
                    let answer = self.purge(&job.rule);
                    let _ = job.reply.send(answer);
                }
            }
            if !closers.is_empty() {
                // Refuse new units; those already queued still commit.
                self.requests.close();
            }
        }
        debug!("store writer stopping");
        self.final_checkpoint();
        // The file closes when the last reader lets go of it too.
        drop(self.db);
        for done in closers {
            let _ = done.send(());
        }
    }

    /// The next request. While the file is let go, it also tries to reopen
    /// it when a try is due, so that readers get it back without waiting
    /// for a unit to come.
    fn next_request(&mut self) -> Option<Request> {
        while self.db.is_none() {
            match self.requests.try_recv() {
                Ok(request) => return Some(request),
                Err(mpsc::error::TryRecvError::Disconnected) => return None,
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
        self.requests.blocking_recv()
    }

    fn commit_batch(&mut self, batch: &mut Vec<Pending>, scratch: &mut Vec<u8>) {
        let started = Instant::now();
        let units = batch.len();
        let Some(db) = self.usable_database() else {
            for pending in batch.drain(..) {
                pending.answer(Err(StoreError::Recovering));
            }
            return;
        };
        match self.write(&db, batch, scratch) {
            Ok(answers) => {
                let refused = answers.iter().filter(|a| a.is_err()).count();
                self.shared.units.fetch_add(units as u64, Ordering::Relaxed);
                self.shared
                    .refused
                    .fetch_add(refused as u64, Ordering::Relaxed);
                self.shared
                    .largest_batch
                    .fetch_max(units as u64, Ordering::Relaxed);
                self.shared.histograms.batch_units.observe(units as f64);
                for (pending, answer) in batch.drain(..).zip(answers) {
                    pending.answer(answer);
                }
                debug!(units, refused, elapsed = ?started.elapsed(), "batch committed");
            }
            Err(e) => {
                self.shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                error!(error = %e, units, "batch not committed; every unit in it fails");
                for pending in batch.drain(..) {
                    pending.answer(Err(e.clone()));
                }
                if matches!(e, StoreError::Storage { .. }) {
                    self.let_go();
                }
            }
        }
    }

    /// Lets go of the file after a storage failure: redb refuses every
    /// transaction after one until the file is reopened.
    fn let_go(&mut self) {
        warn!("closing the store file to reopen it");
        self.shared.recovering.store(true, Ordering::Relaxed);
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

    /// One transaction: the answers, in batch order, once it is durable.
    fn write(
        &mut self,
        db: &Database,
        batch: &[Pending],
        scratch: &mut Vec<u8>,
    ) -> Result<Vec<Result<Outcome, StoreError>>, StoreError> {
        let started = Instant::now();
        let mut txn = db
            .begin_write()
            .map_err(|e| StoreError::storage("beginning a transaction")(e.into()))?;
        // A unit is answered only once on disk: by this commit, or by the
        // journal record appended before it.
        let checkpoint = self.checkpoint_due();
        txn.set_durability(if checkpoint {
            Durability::Immediate
        } else {
            Durability::None
        })
        .map_err(|e| StoreError::storage("setting durability")(e.into()))?;
        let tables = Tables::of(&txn);
        let mut answers = Vec::with_capacity(batch.len());
        let Finished {
            wrote,
            next_seq,
            recent,
        } = {
            let recent_mos = self.shared.recent_mos();
            let mut work = Batch::new(
                tables,
                scratch,
                &self.shared.next_id,
                self.next_seq,
                &recent_mos,
                self.limits.move_mo_keys_at,
            );
            for pending in batch {
                answers.push(work.apply(&pending.unit)?);
            }
            work.finish()?
        };
        let applied = Instant::now();
        add_micros(&self.shared.apply_micros, applied - started);
        if wrote {
            let journaled = match self.journal.as_mut() {
                Some(journal) if !checkpoint => {
                    Some(journal_batch(journal, &txn, batch, &answers)?)
                }
                _ => None,
            };
            let committed = txn.commit();
            add_micros(&self.shared.commit_micros, applied.elapsed());
            if committed.is_err() {
                if let (Some(journal), Some(start)) = (self.journal.as_mut(), journaled) {
                    // Its units are answered with the error: never replay them.
                    journal.withdraw_last(start);
                }
            }
            committed.map_err(|e| StoreError::storage("committing")(e.into()))?;
            if checkpoint {
                self.checkpointed();
            }
            self.next_seq = next_seq;
            // New keys are published before the count moves, and moved
            // keys leave memory only after: a lookup that misses in memory
            // then reads the count, so it opens a snapshot that holds the
            // moved keys (see `Store::message_id_by_mo`).
            {
                let mut mos = self.shared.recent_mos_mut();
                for key in &recent.released {
                    mos.remove(key);
                }
                mos.extend(recent.added);
            }
            // Release: a lookup that sees the new count opens a snapshot
            // that holds this commit (see `MoKeysView`).
            let n = self.shared.transactions.fetch_add(1, Ordering::Release) + 1;
            self.shared.forget_views();
            if !recent.moved.is_empty() {
                let mut mos = self.shared.recent_mos_mut();
                for key in &recent.moved {
                    mos.remove(key);
                }
            }
            self.shared.committed.send_replace(n);
            self.shared
                .histograms
                .commit_seconds
                .observe(started.elapsed().as_secs_f64());
        } else {
            // Only duplicates and refusals, all answered from state that
            // was already durable: nothing to sync.
            txn.abort()
                .map_err(|e| StoreError::storage("aborting")(e.into()))?;
        }
        Ok(answers)
    }
}

/// Appends the applied units of `batch` to the journal as one record (the
/// refused and duplicate ones changed nothing) and notes its sequence in
/// `txn`, which then needs no fsync of its own. Returns where the record
/// starts, to take it back if `txn` does not commit.
fn journal_batch(
    journal: &mut Journal,
    txn: &redb::WriteTransaction,
    batch: &[Pending],
    answers: &[Result<Outcome, StoreError>],
) -> Result<u64, StoreError> {
    let noted: Result<(), redb::Error> =
        txn.open_table(META)
            .map_err(Into::into)
            .and_then(|mut meta| {
                meta.insert(META_JOURNAL_SEQ, journal.next_seq())?;
                Ok(())
            });
    noted.map_err(StoreError::storage("noting the journal sequence"))?;
    let applied: Vec<&Unit> = batch
        .iter()
        .zip(answers)
        .filter(|(_, answer)| matches!(answer, Ok(Outcome::Applied)))
        .map(|(pending, _)| &pending.unit)
        .collect();
    let start = journal.len();
    journal
        .append(&applied)
        .map_err(journal::storage("writing the journal"))?;
    Ok(start)
}

impl Writer {
    /// Whether this batch's transaction is to be durable by itself: always
    /// without the journal; with it, once the checkpoint interval has
    /// passed or the journal has grown to its bound.
    fn checkpoint_due(&self) -> bool {
        match &self.journal {
            None => true,
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
        let (Some(db), Some(journal)) = (&self.db, &self.journal) else {
            return;
        };
        if journal.len() == 0 {
            return;
        }
        let commit: Result<(), redb::Error> = db
            .begin_write()
            .map_err(Into::into)
            .and_then(|txn| Ok(txn.commit()?));
        match commit {
            Ok(()) => self.checkpointed(),
            Err(e) => warn!(error = %e, "no checkpoint at close; the journal will be replayed"),
        }
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
            // Its commit was durable: a checkpoint of every batch before it.
            self.checkpointed();
            let s = &self.shared;
            s.purged.fetch_add(purged.report.purged, Ordering::Relaxed);
            s.purge_transactions.fetch_add(1, Ordering::Relaxed);
            let n = s.transactions.fetch_add(1, Ordering::Release) + 1;
            s.forget_views();
            s.committed.send_replace(n);
            debug!(?purged.report, elapsed = ?started.elapsed(), "purge batch committed");
        }
        Ok(purged.report)
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
