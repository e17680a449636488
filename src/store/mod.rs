//! rapidbox's durable state, behind one handle, [`Store`] (`backend.rs`),
//! whatever keeps it: `[store] backend` chooses. The default is one redb
//! file written by one writer that group-commits, and most of this module
//! is that backend; the other is a PostgreSQL database ([`pg`]).
//!
//! - `backend.rs`: [`Store`], which dispatches every call to its backend
//!   (an enum, matched per call), and opens the configured one.
//! - [`pg`]: the PostgreSQL store (its own schema, writer, reads and
//!   purge), with the same units, outcomes and reads.
//! - [`schema`]: every table, its key and value, in one place.
//! - [`Unit`], [`Op`], [`Update`], [`Outcome`] (`unit.rs`): what callers
//!   ask the writer to do, and its answer.
//! - `writer.rs`: the writer thread; applies queued units in groups and
//!   answers every waiter once its group is durable: by redb's own fsync,
//!   or (with [`StoreOptions::journal`], the default) by the journal's,
//!   redb then taking thousands of acked units per commit. It also says
//!   how reads see every answered unit ([`RedbStore::fence`]).
//! - `journal.rs`: the write-ahead journal: one appended, fsynced record
//!   per group, so that redb commits without an fsync between
//!   checkpoints; two files, so that a checkpoint runs while acks go on;
//!   replayed on open.
//! - `commit_delay.rs`: when a group waits for more units before the
//!   journal's fdatasync ([`StoreOptions::commit_delay`]).
//! - `checkpoint.rs`: the durable commit on a thread of its own, and the
//!   groups acked meanwhile, their outcomes foreseen, held to be applied
//!   after it.
//! - `apply.rs`: how ops become table writes, keeping every index and the
//!   counts in step, and undoing a refused unit without disturbing the rest
//!   of its batch.
//! - `read.rs`: lookups and scans, from read snapshots; scans wait for the
//!   writer to have acked units committed (see `writer.rs`), point
//!   lookups look first at what acked units changed (`unapplied.rs`).
//! - `codec.rs`: how values are laid out; [`StoreError`] (`error.rs`).
//! - `purge.rs`: purging old messages in bounded batches through the
//!   writer, and the rule of what may go ([`PurgeRule`]); `retention.rs`:
//!   the background sweep that applies `[store] retention_*`
//!   ([`Retention`]).
//! - `backup.rs`: a consistent copy of a live store ([`Store::backup`]),
//!   [`verify`] and [`compact`].
//!
//! Throughput, measured with `cargo bench --bench store` (256 tasks each
//! committing an MO and its reply, both with Kannel UUIDs, and waiting for
//! durability; 2-core VM, store growing to ~1.6 million messages; commit
//! 61c6184): about 40,000 units/s (35,000-46,500 over criterion's
//! samples), ~167 units per transaction, 21.6 µs of CPU per unit; the
//! writer spent 11.5 µs per unit applying and 1.2 ms per commit. MOs whose
//! bearerbox sent no `time` (all keyed at -1, so spread over all of
//! `mo_keys`) get about 25,000 units/s.
//!
//! A router stores an MO and its replies like this:
//!
//! ```no_run
//! # async fn example(store: rapidbox::store::Store, mut mo: rapidbox::model::Message,
//! #                  key: rapidbox::model::MoKey) -> Result<(), rapidbox::store::StoreError> {
//! use rapidbox::store::{Op, Outcome, Unit};
//! mo.id = store.allocate_id();
//! let unit = Unit::new().unless_mo_known(key).with(Op::put(mo));
//! match store.commit(unit).await? {
//!     Outcome::Applied => { /* durable: ack the bearerbox */ }
//!     Outcome::Duplicate(_first) => { /* seen before: ack again, do not route */ }
//! }
//! # Ok(()) }
//! ```

mod apply;
mod backend;
mod backup;
mod checkpoint;
mod codec;
mod commit_delay;
mod error;
#[cfg(test)]
mod faults;
mod journal;
mod legacy;
pub mod pg;
mod purge;
mod read;
mod retention;
pub mod schema;
mod unapplied;
mod unit;
mod writer;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::Duration;

use redb::{Database, ReadableTable, ReadableTableMetadata};
use tokio::sync::{mpsc, oneshot};
use tracing::{error, info};

use crate::model::{MessageId, MoKey};

pub use backend::Store;
pub use backup::{compact, verify, BackupReport, Compacted, VerifyReport};
pub use error::{Rejection, StoreError};
pub use purge::{PurgeReport, PurgeRule, MAX_OWED_CALLS_SCANNED};
pub use read::{StoredConnection, MAX_SCAN};
pub use retention::{purge_all, Retention};
pub use unit::{Op, Outcome, Unit, Update};
pub use writer::WriterHistograms;

use apply::Tables;
use writer::{Limits, Pending, Request, Shared, Writer};

/// The longest a read waits for acked units to be committed to redb (see
/// [`RedbStore::fence`]) before answering [`StoreError::Recovering`].
const MAX_FENCE_WAIT: Duration = Duration::from_secs(10);
/// How often a waiting read looks again whether the writer is still
/// there (it is woken when its units are committed).
const FENCE_POLL: Duration = Duration::from_millis(50);

/// [`StoreOptions::commit_delay`]'s default.
pub const DEFAULT_COMMIT_DELAY: Duration = Duration::from_micros(0);

/// Tuning, with bounds on everything the store holds in memory.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    /// Units that may wait for the writer. A caller beyond this waits for
    /// room (backpressure) instead of growing memory.
    pub queue_capacity: usize,
    /// Most units in one transaction.
    pub max_batch_units: usize,
    /// Rough bytes of units in one transaction; the writer stops draining
    /// the queue once a batch reaches it.
    pub max_batch_bytes: usize,
    /// Most ops in one unit; a bigger unit is refused before it is queued.
    pub max_unit_ops: usize,
    /// How many new MOs' keys gather in `mo_recent` (and in memory, about
    /// 64 bytes each) before they move to `mo_keys`, the oldest eighth with
    /// each batch; see [`schema::MO_RECENT`].
    pub mo_keys_every: usize,
    /// redb's page cache.
    pub cache_bytes: usize,
    /// Verify every page's checksum when opening, so a damaged file is
    /// refused with a clear error instead of trusted. It reads the whole
    /// file, so it slows the start of a big store. redb always verifies
    /// after a crash (when the file was not closed cleanly).
    pub check_integrity_on_open: bool,
    /// Make batches durable through the write-ahead journal (`journal.rs`,
    /// a file beside the store's) instead of a durable redb commit each:
    /// redb then takes many batches per commit, without an fsync, and
    /// commits durably only every `checkpoint_interval` (see `writer.rs`).
    /// On by default.
    pub journal: bool,
    /// With the journal, the longest time between durable redb commits
    /// (checkpoints), after which the journal is emptied; it bounds the
    /// journal's size and the replay after a crash.
    pub checkpoint_interval: Duration,
    /// With the journal, a checkpoint also comes once the journal holds
    /// this many bytes.
    pub checkpoint_bytes: u64,
    /// With the journal, the longest a group waits for more units before
    /// its fdatasync, taken only while units come fast enough for the wait
    /// to gather some (`commit_delay.rs`); zero never waits.
    pub commit_delay: Duration,
    /// Tests: the file's backend fails writes on demand.
    #[cfg(test)]
    pub(crate) faults: Option<Arc<faults::Faults>>,
}

impl Default for StoreOptions {
    fn default() -> StoreOptions {
        StoreOptions {
            queue_capacity: 4096,
            max_batch_units: 4096,
            max_batch_bytes: 16 << 20,
            max_unit_ops: 1024,
            mo_keys_every: 8192,
            cache_bytes: 256 << 20,
            check_integrity_on_open: true,
            journal: true,
            checkpoint_interval: Duration::from_secs(5),
            checkpoint_bytes: 64 << 20,
            commit_delay: DEFAULT_COMMIT_DELAY,
            #[cfg(test)]
            faults: None,
        }
    }
}

/// What the writer has done since the store was opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Transactions committed (durable ones, and with the journal on
    /// also those made durable by a journal record).
    pub transactions: u64,
    /// redb commits: without the journal one per transaction; with it,
    /// one per large batch of journaled groups (see `writer.rs`).
    pub redb_commits: u64,
    /// With the journal on: durable redb commits (checkpoints), after
    /// each of which the journal was emptied.
    pub checkpoints: u64,
    /// Units answered from committed batches, whatever their outcome.
    pub units: u64,
    /// Units refused (answered with an error, nothing applied).
    pub refused: u64,
    /// Batches whose commit failed (every unit in them failed).
    pub failed_batches: u64,
    /// The most units one batch held.
    pub largest_batch: u64,
    /// Time spent applying units to transactions.
    pub apply_time: Duration,
    /// Time spent in commits: writing pages and waiting for the fsync.
    pub commit_time: Duration,
    /// Messages purged (retention or `rapidbox purge`).
    pub purged: u64,
    /// Purge transactions committed (each also counts in `transactions`).
    pub purge_transactions: u64,
    /// Time spent in purge transactions (committing included), during
    /// which units wait.
    pub purge_time: Duration,
}

/// The redb backend's handle: one file, one writer thread. Cheap to
/// clone; every clone talks to the same writer. The file closes when
/// [`RedbStore::close`] is called or the last handle is dropped. Callers
/// reach it through [`Store`] (`backend.rs`).
#[derive(Clone)]
pub(crate) struct RedbStore {
    inner: Arc<Inner>,
}

// Field order matters: dropping `requests` first lets the writer see the
// queue end, then `writer` waits for it to commit what was queued.
struct Inner {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    max_unit_ops: usize,
    path: PathBuf,
    writer: WriterThread,
}

impl RedbStore {
    /// Opens the store at `path`, creating the file (and its directories)
    /// if missing, and starts its writer thread.
    ///
    /// Fails with [`StoreError::NotAStore`] for a file that is not a redb
    /// database or is damaged, [`StoreError::SchemaMismatch`] for another
    /// schema version, [`StoreError::AlreadyOpen`] if something else has it
    /// open.
    pub(crate) fn open(path: &Path, options: StoreOptions) -> Result<RedbStore, StoreError> {
        let open_error = |source| StoreError::Open {
            path: path.to_owned(),
            source: Arc::new(source),
        };
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(open_error)?;
        }
        let opener = Opener {
            path: path.to_owned(),
            options: options.clone(),
        };
        let Opened {
            db,
            next_id,
            next_seq,
            recent,
            journal,
        } = opener.open()?;
        let db = Arc::new(db);
        let shared = Arc::new(Shared::default());
        *shared
            .recent_mos
            .write()
            .unwrap_or_else(PoisonError::into_inner) = recent;
        shared.next_id.store(next_id, Ordering::Relaxed);
        *shared.db.write().unwrap_or_else(PoisonError::into_inner) = Some(db.clone());
        let (requests, queue) = mpsc::channel(options.queue_capacity.max(1));
        let writer = Writer {
            db: Some(db),
            journal,
            last_checkpoint: std::time::Instant::now(),
            opener,
            recovery: writer::Recovery::default(),
            requests: queue,
            limits: Limits {
                max_units: options.max_batch_units.max(1),
                max_bytes: options.max_batch_bytes,
                move_mo_keys_at: options.mo_keys_every.max(1),
                checkpoint_interval: options.checkpoint_interval,
                checkpoint_bytes: options.checkpoint_bytes,
            },
            shared: shared.clone(),
            next_seq,
            recent: shared.recent_mos().clone(),
            open: None,
            checkpoint: None,
            commit_delay: commit_delay::CommitDelay::new(options.commit_delay),
        };
        let thread = std::thread::Builder::new()
            .name("rapidbox-store".to_owned())
            .spawn(move || writer.run())
            .map_err(open_error)?;
        info!(path = %path.display(), next_id, "store open");
        Ok(RedbStore {
            inner: Arc::new(Inner {
                requests,
                shared,
                max_unit_ops: options.max_unit_ops,
                path: path.to_owned(),
                writer: WriterThread(Mutex::new(Some(thread))),
            }),
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// A fresh message id, before the message is stored, so the router can
    /// name a message (and its replies' `in_response_to`) in the unit that
    /// stores it. Ids grow and are never given twice while the store is
    /// open. Ids given out but never committed are gaps; the next run
    /// starts above the highest *stored* (or purged) id, so an id that was given out
    /// but never stored (before a crash, say) may be given again, while a
    /// stored message's id never is.
    pub fn allocate_id(&self) -> MessageId {
        self.inner.shared.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Applies `unit` atomically and returns once the transaction holding
    /// it is durable (or the unit was refused, or the commit failed).
    ///
    /// Waits for room in the writer's queue first. Dropping the returned
    /// future after the unit is queued does not withdraw it.
    pub async fn commit(&self, unit: Unit) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(unit, Some(reply)).await?;
        // The writer answers every unit it takes; a closed channel means it
        // is gone.
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `unit` without waiting for its commit (for changes whose loss
    /// in a crash is tolerable, such as a status after an ack). Still waits
    /// for room in the queue. A refused or failed unit is logged.
    pub async fn enqueue(&self, unit: Unit) -> Result<(), StoreError> {
        self.send(unit, None).await
    }

    async fn send(
        &self,
        unit: Unit,
        reply: Option<oneshot::Sender<Result<Outcome, StoreError>>>,
    ) -> Result<(), StoreError> {
        if unit.ops.len() > self.inner.max_unit_ops {
            return Err(Rejection::TooManyOps {
                ops: unit.ops.len(),
                max: self.inner.max_unit_ops,
            }
            .into());
        }
        let bytes = unit.approx_bytes();
        let pending = Pending { unit, reply, bytes };
        self.inner
            .requests
            .send(Request::Unit(pending))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Commits every unit already queued, stops the writer and closes the
    /// file. Afterwards every handle answers [`StoreError::Closed`].
    /// Closing twice is harmless.
    pub async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.inner.requests.send(Request::Close(done)).await.is_ok() {
            // An error means the writer had already stopped.
            let _ = stopped.await;
        }
        self.inner
            .shared
            .db
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // The writer has answered and is returning; this does not wait.
        self.inner.writer.join();
    }

    /// Counters of the writer's work.
    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared;
        StoreStats {
            transactions: s.transactions.load(Ordering::Relaxed),
            redb_commits: s.redb_commits.load(Ordering::Relaxed),
            checkpoints: s.checkpoints.load(Ordering::Relaxed),
            units: s.units.load(Ordering::Relaxed),
            refused: s.refused.load(Ordering::Relaxed),
            failed_batches: s.failed_batches.load(Ordering::Relaxed),
            largest_batch: s.largest_batch.load(Ordering::Relaxed),
            apply_time: Duration::from_micros(s.apply_micros.load(Ordering::Relaxed)),
            commit_time: Duration::from_micros(s.commit_micros.load(Ordering::Relaxed)),
            purged: s.purged.load(Ordering::Relaxed),
            purge_transactions: s.purge_transactions.load(Ordering::Relaxed),
            purge_time: Duration::from_micros(s.purge_micros.load(Ordering::Relaxed)),
        }
    }

    /// The writer's commit latency and batch size histograms (shared: they
    /// keep counting after this returns).
    pub fn histograms(&self) -> WriterHistograms {
        self.inner.shared.histograms.clone()
    }

    /// Units waiting in the writer's queue for a transaction.
    pub fn queue_depth(&self) -> usize {
        let requests = &self.inner.requests;
        requests.max_capacity() - requests.capacity()
    }

    /// Whether the store takes units now: open, and the writer not
    /// recovering from a storage failure. Cheap (two atomic reads); for
    /// `/ready`.
    pub fn is_writable(&self) -> bool {
        let shared = &self.inner.shared;
        !self.inner.requests.is_closed() && !shared.recovering.load(Ordering::Relaxed)
    }

    /// Runs one purge batch (see [`PurgeRule`]) in its own transaction of
    /// the writer, after the units queued before it, and answers once it
    /// is durable. A batch that purges nothing commits nothing.
    pub async fn purge(&self, rule: PurgeRule) -> Result<PurgeReport, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = purge::Job { rule, reply };
        self.inner
            .requests
            .send(Request::Purge(job))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// A signal that changes after every durable commit (its value is the
    /// number of commits). Readers see the new state once it has changed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.shared.committed.subscribe()
    }

    /// Waits until every unit answered so far is visible to reads, which
    /// is at once unless the journal holds acked groups that redb has not
    /// committed yet: then it asks the writer to commit them and waits
    /// (usually a non-durable commit, well under a millisecond; longer
    /// if a checkpoint is under way). Scans go through here; the point
    /// lookups of MO keys, opt-outs and messages have what they need of
    /// unapplied units in memory and come here only when a message they
    /// look up was touched by one (`unapplied.rs`).
    pub(crate) fn fence(&self) -> Result<(), StoreError> {
        let shared = &self.inner.shared;
        let target = shared.acked.load(Ordering::Acquire);
        if shared.visible.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        if !shared.flush_wanted.swap(true, Ordering::AcqRel) {
            match self.inner.requests.try_send(Request::Flush) {
                // A full queue means a busy writer, which looks at the
                // flag after every group.
                Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                Err(mpsc::error::TrySendError::Closed(_)) => return Err(StoreError::Closed),
            }
        }
        let deadline = std::time::Instant::now() + MAX_FENCE_WAIT;
        let mut guard = shared
            .visible_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        loop {
            if shared.visible.load(Ordering::Acquire) >= target {
                return Ok(());
            }
            if shared.recovering.load(Ordering::Relaxed) {
                return Err(StoreError::Recovering);
            }
            if self.inner.requests.is_closed() {
                return Err(StoreError::Closed);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                // Transient, as a reopening file is: the caller retries.
                return Err(StoreError::Recovering);
            }
            guard = shared
                .visible_changed
                .wait_timeout(guard, (deadline - now).min(FENCE_POLL))
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    /// The open database, for reads.
    fn database(&self) -> Result<Arc<Database>, StoreError> {
        let shared = &self.inner.shared;
        let db = shared
            .db
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        db.ok_or_else(|| {
            if shared.recovering.load(Ordering::Relaxed) {
                StoreError::Recovering
            } else {
                StoreError::Closed
            }
        })
    }
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore")
            .field("path", &self.inner.path)
            .field("stats", &self.stats())
            .finish()
    }
}

/// The writer's thread, joined when the last handle goes.
///
/// Joining blocks the dropping thread until the queued units are committed
/// (one transaction, usually milliseconds); async code that can should
/// call [`RedbStore::close`] instead.
struct WriterThread(Mutex<Option<JoinHandle<()>>>);

impl WriterThread {
    fn join(&self) {
        let handle = self.0.lock().unwrap_or_else(PoisonError::into_inner).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                error!("the store writer had panicked");
            }
        }
    }
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        self.join();
    }
}

/// The journal of the store at `store` (`journal.rs`): the same name with
/// `.journal` added. While a checkpoint runs the journal also has a second
/// file, [`journal_paths`]' other one.
pub fn journal_path(store: &Path) -> PathBuf {
    journal::path_for(store)
}

/// Both files the journal of the store at `store` may have (`.journal`
/// and `.journal.1`). A copy of a stopped or crashed store is the file and
/// those of these that exist; a backup ([`Store::backup`]) needs none.
pub fn journal_paths(store: &Path) -> [PathBuf; 2] {
    journal::both_paths(&journal::path_for(store))
}

/// A fresh UUID for an MT, laid out as a version 7 UUID: the first 48 bits
/// are the time in milliseconds, the rest random.
///
/// Kannel needs MT UUIDs only to be unique; time-ordered ones also sort
/// as they were made, which keeps any index of them appending at its
/// right edge. (MO UUIDs are Kannel's own, random.)
pub fn time_ordered_uuid() -> [u8; 16] {
    let mut uuid = *uuid::Uuid::new_v4().as_bytes();
    let millis = u64::try_from(crate::model::now_micros() / 1000).unwrap_or(0);
    uuid[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    // Version 7; the variant bits are already those of RFC 9562.
    uuid[6] = 0x70 | (uuid[6] & 0x0f);
    uuid
}

/// How to open the file, kept by the writer to reopen it after a storage
/// failure.
pub(crate) struct Opener {
    path: PathBuf,
    options: StoreOptions,
}

/// What [`Opener::open`] hands the writer.
pub(crate) struct Opened {
    pub(crate) db: Database,
    pub(crate) next_id: MessageId,
    pub(crate) next_seq: u64,
    pub(crate) recent: RecentMoKeys,
    /// The journal, replayed and emptied, when it is on.
    pub(crate) journal: Option<journal::Journal>,
}

impl Opener {
    /// Opens the database, replays the journal's records it lacks (when
    /// the journal is on), and reads the next message id and event
    /// sequence and the recent MO keys.
    pub(crate) fn open(&self) -> Result<Opened, StoreError> {
        let db = open_database(&self.path, &self.options)?;
        // Reading the first entries can panic in redb too when the file
        // was damaged where they are and not checked on open.
        let prepare = || prepare(&db, &self.path);
        let damaged = |_| StoreError::NotAStore {
            path: self.path.clone(),
            reason: "redb could not read it (damaged?)".to_owned(),
        };
        let (mut next_id, mut next_seq, mut recent) =
            std::panic::catch_unwind(AssertUnwindSafe(prepare)).map_err(damaged)??;
        // A journal left by a run with it on is replayed even if it is off
        // now: its records were acknowledged.
        let journal_path = journal::path_for(&self.path);
        let mut journal = None;
        let left_behind = journal::both_paths(&journal_path)
            .iter()
            .any(|p| p.exists());
        if self.options.journal || left_behind {
            let (mut opened, replayed) = journal::open_and_replay(
                &db,
                &journal_path,
                self.options.mo_keys_every.max(1),
                (next_id, next_seq, recent.clone()),
            )?;
            #[cfg(test)]
            opened.set_faults(self.options.faults.clone());
            if replayed > 0 {
                // prepare's commit is durable: the replayed records are in
                // the file for good, and the journal can be emptied.
                (next_id, next_seq, recent) =
                    std::panic::catch_unwind(AssertUnwindSafe(prepare)).map_err(damaged)??;
            }
            opened
                .clear()
                .map_err(journal::storage("emptying the journal"))?;
            if self.options.journal {
                journal = Some(opened);
            } else {
                drop(opened);
                std::fs::remove_file(&journal_path)
                    .map_err(|e| StoreError::storage("removing the journal")(redb::Error::Io(e)))?;
            }
        }
        Ok(Opened {
            db,
            next_id,
            next_seq,
            recent,
            journal,
        })
    }
}

/// Opens (or creates) the redb file, telling apart the reasons it can fail.
fn open_database(path: &Path, options: &StoreOptions) -> Result<Database, StoreError> {
    let mut builder = Database::builder();
    builder
        .set_cache_size(options.cache_bytes)
        .set_check_integrity_on_open(options.check_integrity_on_open);
    let not_a_store = |reason: String| StoreError::NotAStore {
        path: path.to_owned(),
        reason,
    };
    // redb trusts a file it closed cleanly and may panic on one damaged
    // since; a panic here must not take the process down.
    let create = || {
        #[cfg(test)]
        if let Some(faults) = &options.faults {
            let backend = faults.backend(path).map_err(redb::StorageError::Io)?;
            return builder.create_with_backend(backend);
        }
        builder.create(path)
    };
    let opened = std::panic::catch_unwind(AssertUnwindSafe(create))
        .map_err(|_| not_a_store("redb could not read it (damaged?)".to_owned()))?;
    opened.map_err(|e| match e {
        redb::DatabaseError::DatabaseAlreadyOpen => StoreError::AlreadyOpen {
            path: path.to_owned(),
        },
        redb::DatabaseError::Storage(redb::StorageError::Io(io))
            if io.kind() == std::io::ErrorKind::InvalidData =>
        {
            not_a_store(io.to_string())
        }
        redb::DatabaseError::Storage(redb::StorageError::Io(io)) => StoreError::Open {
            path: path.to_owned(),
            source: Arc::new(io),
        },
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => {
            not_a_store(format!("damaged: {why}"))
        }
        redb::DatabaseError::UpgradeRequired(version) => {
            not_a_store(format!("redb file format {version} needs an upgrade"))
        }
        other => StoreError::storage("opening")(other.into()),
    })
}

/// Rewrites in today's form every message an older schema stored in
/// another (see `legacy.rs`); returns how many. A value that reads in
/// neither form is left for the reads to report as corrupt.
fn rewrite_old_messages(messages: &mut redb::Table<'_, u64, &[u8]>) -> Result<usize, StoreError> {
    let storage = |during| move |e: redb::Error| StoreError::storage(during)(e);
    let mut old = Vec::new();
    for entry in messages
        .iter()
        .map_err(|e| storage("upgrading messages")(e.into()))?
    {
        let (key, value) = entry.map_err(|e| storage("upgrading messages")(e.into()))?;
        let id = key.value();
        if codec::decode_message(id, value.value()).is_err() {
            if let Some(message) = legacy::decode_message_v5(value.value()) {
                old.push(message);
            }
        }
    }
    let mut buf = Vec::new();
    for message in &old {
        codec::encode_into(message, &mut buf).map_err(|e| StoreError::Corrupt {
            table: "messages",
            key: message.id.to_string(),
            reason: format!("cannot re-encode: {e}"),
        })?;
        messages
            .insert(message.id, buf.as_slice())
            .map_err(|e| storage("upgrading messages")(e.into()))?;
    }
    Ok(old.len())
}

/// The keys in `mo_recent`, by key: the writer's copy in memory.
pub(crate) type RecentMoKeys = HashMap<MoKey, MessageId>;

/// Creates missing tables, checks the schema version (upgrading a store of
/// the version before), and recovers the next message id, the event
/// sequence and the recent MO keys.
fn prepare(db: &Database, path: &Path) -> Result<(MessageId, u64, RecentMoKeys), StoreError> {
    let storage = |during| move |e: redb::Error| StoreError::storage(during)(e);
    let txn = db.begin_write().map_err(|e| storage("opening")(e.into()))?;
    let (next_id, next_seq, recent) = {
        // A table of the right name but other types means some other
        // program's file.
        Tables::create_all(&txn).map_err(|e| StoreError::NotAStore {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let mut meta = txn
            .open_table(schema::META)
            .map_err(|e| storage("opening")(e.into()))?;
        let mut messages = txn
            .open_table(schema::MESSAGES)
            .map_err(|e| storage("opening")(e.into()))?;
        let version = meta
            .get(schema::META_SCHEMA_VERSION)
            .map_err(|e| storage("reading meta")(e.into()))?
            .map(|g| g.value());
        let empty = messages
            .is_empty()
            .map_err(|e| storage("opening")(e.into()))?;
        match version {
            Some(v) if v == schema::SCHEMA_VERSION => {}
            // `mo_recent`, if it lacked it, `Tables::create_all` created;
            // the messages stored in an older form are rewritten.
            Some(v) if (schema::UPGRADABLE_FROM..schema::SCHEMA_VERSION).contains(&v) => {
                let rewritten = rewrite_old_messages(&mut messages)?;
                meta.insert(schema::META_SCHEMA_VERSION, schema::SCHEMA_VERSION)
                    .map_err(|e| storage("writing meta")(e.into()))?;
                info!(path = %path.display(), from = v, to = schema::SCHEMA_VERSION, rewritten, "store upgraded");
            }
            None if empty => {
                meta.insert(schema::META_SCHEMA_VERSION, schema::SCHEMA_VERSION)
                    .map_err(|e| storage("writing meta")(e.into()))?;
            }
            found => {
                return Err(StoreError::SchemaMismatch {
                    path: path.to_owned(),
                    found: found.unwrap_or(0),
                    expected: schema::SCHEMA_VERSION,
                })
            }
        }
        let last = messages
            .last()
            .map_err(|e| storage("reading messages")(e.into()))?
            .map(|(k, _)| k.value());
        let purged_up_to = meta
            .get(schema::META_PURGED_UP_TO)
            .map_err(|e| storage("reading meta")(e.into()))?
            .map_or(0, |g| g.value());
        let next_seq = meta
            .get(schema::META_NEXT_EVENT_SEQ)
            .map_err(|e| storage("reading meta")(e.into()))?
            .map_or(0, |g| g.value());
        let mut recent = RecentMoKeys::new();
        let mo_recent = txn
            .open_table(schema::MO_RECENT)
            .map_err(|e| storage("opening")(e.into()))?;
        for entry in mo_recent
            .iter()
            .map_err(|e| storage("reading mo_recent")(e.into()))?
        {
            let (id, key) = entry.map_err(|e| storage("reading mo_recent")(e.into()))?;
            let (time, uuid) = key.value();
            recent.insert(MoKey { time, uuid: *uuid }, id.value());
        }
        let next_id = last.unwrap_or(0).max(purged_up_to).saturating_add(1);
        (next_id, next_seq, recent)
    };
    txn.commit().map_err(|e| storage("opening")(e.into()))?;
    Ok((next_id, next_seq, recent))
}
