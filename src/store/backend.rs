//! [`Store`]: the one handle every caller holds, whatever keeps the state.
//!
//! A store is a backend behind one interface: [`Unit`]s of [`Op`]s in,
//! [`Outcome`]s out (`unit.rs`), and the reads below. The backend is an
//! enum rather than a trait object: every MO goes through
//! [`Store::message_id_by_mo`] and [`Store::commit`], and a `match` on a
//! variant costs nothing where a boxed future per call would. Which one a
//! running rapidbox uses is `[store] backend` ([`Store::open_configured`]).
//!
//! - `Backend::Redb`: one redb file, written by one writer thread that
//!   group-commits (`mod.rs`, `writer.rs`, `read.rs`, ...). Its reads are
//!   cheap synchronous work, done inline in the `async fn`s here (a
//!   `spawn_blocking` per read would cost the hot path more than the read).
//! - `Backend::Postgres`: a PostgreSQL database (`pg/`), written by one
//!   writer task that group-commits; its reads are statements on pooled
//!   connections.
//!
//! Every read is `async` so that a backend that waits on the network can
//! stand behind the same calls. Every read sees every unit answered before
//! it started.

use std::path::Path;

use crate::config::{StoreBackend, StoreConfig};
use crate::model::{
    DeliveryError, Direction, DlrEvent, Message, MessageId, Micros, MoKey, PendingCallback, Status,
};

use super::pg::{PgOptions, PgStore};
use super::{
    BackupReport, Outcome, PurgeReport, PurgeRule, RedbStore, StoreError, StoreOptions, StoreStats,
    StoredConnection, Unit, WriterHistograms,
};

/// A handle on the store. Cheap to clone; every clone talks to the same
/// backend (for redb, the same writer). The store closes when
/// [`Store::close`] is called or the last handle is dropped.
#[derive(Clone, Debug)]
pub struct Store {
    backend: Backend,
}

/// What keeps the state. One variant per backend; each `Store` method
/// matches on it.
#[derive(Clone, Debug)]
enum Backend {
    /// One redb file (`mod.rs`).
    Redb(RedbStore),
    /// A PostgreSQL database (`pg/`).
    Postgres(PgStore),
}

impl Store {
    /// Opens the redb store at `path`, creating the file (and its
    /// directories) if missing, and starts its writer thread.
    ///
    /// Fails with [`StoreError::NotAStore`] for a file that is not a redb
    /// database or is damaged, [`StoreError::SchemaMismatch`] for another
    /// schema version, [`StoreError::AlreadyOpen`] if something else has it
    /// open.
    pub fn open(path: &Path, options: StoreOptions) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Redb(RedbStore::open(path, options)?),
        })
    }

    /// Opens the store `[store]` configures: its `backend`, with that
    /// backend's settings (for redb: `path`, `cache_mb`, `journal`,
    /// `checkpoint_secs`).
    ///
    /// A backend this build does not have is [`StoreError::NotBuilt`].
    pub async fn open_configured(config: &StoreConfig) -> Result<Store, StoreError> {
        match config.backend {
            StoreBackend::Redb => {
                let options = StoreOptions {
                    cache_bytes: config.cache_mb << 20,
                    journal: config.journal,
                    checkpoint_interval: std::time::Duration::from_secs(config.checkpoint_secs),
                    commit_delay: std::time::Duration::from_micros(config.commit_delay_us),
                    ..StoreOptions::default()
                };
                Store::open(&config.path, options)
            }
            StoreBackend::Postgres => {
                let options = PgOptions::from_config(&config.postgres)?;
                Store::open_postgres(options).await
            }
        }
    }

    /// Opens the PostgreSQL store (`pg/`): connects, migrates the schema,
    /// starts its writer.
    pub async fn open_postgres(options: PgOptions) -> Result<Store, StoreError> {
        Ok(Store {
            backend: Backend::Postgres(PgStore::open(options).await?),
        })
    }

    /// The backend's name as `[store] backend` spells it (`"redb"`).
    pub fn backend_name(&self) -> &'static str {
        match &self.backend {
            Backend::Redb(_) => StoreBackend::Redb.name(),
            Backend::Postgres(_) => StoreBackend::Postgres.name(),
        }
    }

    /// The redb file this store lives in; `None` for a backend that keeps
    /// no file of its own.
    pub fn path(&self) -> Option<&Path> {
        match &self.backend {
            Backend::Redb(s) => Some(s.path()),
            Backend::Postgres(_) => None,
        }
    }

    /// The redb backend, for what only it has (its writer's internals in
    /// its tests).
    #[cfg(test)]
    pub(crate) fn redb(&self) -> Option<&RedbStore> {
        match &self.backend {
            Backend::Redb(s) => Some(s),
            Backend::Postgres(_) => None,
        }
    }

    /// A fresh message id, before the message is stored, so the router can
    /// name a message (and its replies' `in_response_to`) in the unit that
    /// stores it. Ids grow and are never given twice while the store is
    /// open. Ids given out but never committed are gaps; the next run
    /// starts above the highest *stored* (or purged) id, so an id that was
    /// given out but never stored (before a crash, say) may be given
    /// again, while a stored message's id never is.
    pub fn allocate_id(&self) -> MessageId {
        match &self.backend {
            Backend::Redb(s) => s.allocate_id(),
            Backend::Postgres(s) => s.allocate_id(),
        }
    }

    /// Applies `unit` atomically and returns once it is durable (or the
    /// unit was refused, or the commit failed). Units of many callers
    /// share a commit (group commit).
    ///
    /// Waits for room in the writer's queue first. Dropping the returned
    /// future after the unit is queued does not withdraw it.
    pub async fn commit(&self, unit: Unit) -> Result<Outcome, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.commit(unit).await,
            Backend::Postgres(s) => s.commit(unit).await,
        }
    }

    /// Queues `unit` without waiting for its commit (for changes whose loss
    /// in a crash is tolerable, such as a status after an ack). Still waits
    /// for room in the queue. A refused or failed unit is logged.
    pub async fn enqueue(&self, unit: Unit) -> Result<(), StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.enqueue(unit).await,
            Backend::Postgres(s) => s.enqueue(unit).await,
        }
    }

    /// Commits every unit already queued and closes the backend.
    /// Afterwards every handle answers [`StoreError::Closed`]. Closing
    /// twice is harmless.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Redb(s) => s.close().await,
            Backend::Postgres(s) => s.close().await,
        }
    }

    /// Counters of the writer's work.
    pub fn stats(&self) -> StoreStats {
        match &self.backend {
            Backend::Redb(s) => s.stats(),
            Backend::Postgres(s) => s.stats(),
        }
    }

    /// The writer's commit latency and batch size histograms (shared: they
    /// keep counting after this returns).
    pub fn histograms(&self) -> WriterHistograms {
        match &self.backend {
            Backend::Redb(s) => s.histograms(),
            Backend::Postgres(s) => s.histograms(),
        }
    }

    /// Units waiting in the writer's queue for a commit.
    pub fn queue_depth(&self) -> usize {
        match &self.backend {
            Backend::Redb(s) => s.queue_depth(),
            Backend::Postgres(s) => s.queue_depth(),
        }
    }

    /// Whether the store takes units now: open, and not recovering from a
    /// storage failure. Cheap (no I/O); for `/ready`.
    pub fn is_writable(&self) -> bool {
        match &self.backend {
            Backend::Redb(s) => s.is_writable(),
            Backend::Postgres(s) => s.is_writable(),
        }
    }

    /// Runs one purge batch (see [`PurgeRule`]) in a transaction of its
    /// own, after the units queued before it, and answers once it is
    /// durable. A batch that purges nothing commits nothing.
    pub async fn purge(&self, rule: PurgeRule) -> Result<PurgeReport, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.purge(rule).await,
            Backend::Postgres(s) => s.purge(rule).await,
        }
    }

    /// A signal that changes after every durable commit (its value is the
    /// number of commits). Readers see the new state once it has changed.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        match &self.backend {
            Backend::Redb(s) => s.changes(),
            Backend::Postgres(s) => s.changes(),
        }
    }

    /// Writes a consistent copy of a redb store, as of its last commit, to
    /// `dest`, which must not exist. Blocking (it reads the whole store):
    /// run it under `tokio::task::spawn_blocking`. Writers go on
    /// meanwhile. Only the redb backend has it; another answers
    /// [`StoreError::Unsupported`] (back such a database up with its own
    /// tools).
    pub fn backup(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.backup(dest),
            Backend::Postgres(_) => Err(StoreError::Unsupported {
                operation: "backup",
                backend: StoreBackend::Postgres.name(),
            }),
        }
    }

    /// Runs `read`, a long read (a scan of thousands of messages, a page
    /// of search), where it does not hold up other tasks, and returns its
    /// answer. With redb, whose reads are synchronous and may touch cold
    /// pages, that is a blocking thread, the reads driven there; a backend
    /// whose reads wait on the network would run it as a task of its own.
    ///
    /// Fails only if `read` panicked (or the runtime is shutting down).
    pub async fn long_read<T, F, Fut>(&self, read: F) -> Result<T, tokio::task::JoinError>
    where
        F: FnOnce(Store) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.clone();
        match &self.backend {
            Backend::Redb(_) => {
                // The reads never wait on anything but redb, so `block_on`
                // runs them straight through on this blocking thread.
                let runtime = tokio::runtime::Handle::current();
                tokio::task::spawn_blocking(move || runtime.block_on(read(store))).await
            }
            // The reads wait on the network: a task of its own.
            Backend::Postgres(_) => tokio::spawn(read(store)).await,
        }
    }

    /// The message with this id, if stored.
    pub async fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.message(id),
            Backend::Postgres(s) => s.message(id).await,
        }
    }

    /// The id of the MO with this key, if stored. (MTs are not indexed by
    /// key.) Called for every MO, before it is routed.
    pub async fn message_id_by_mo(&self, key: &MoKey) -> Result<Option<MessageId>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.message_id_by_mo(key),
            Backend::Postgres(s) => s.message_id_by_mo(key).await,
        }
    }

    /// Messages in `status`, in id order, with ids above `after_id`; from
    /// one backend, or from all when `backend` is `None`. At most `limit`
    /// (and [`MAX_SCAN`](super::MAX_SCAN)). Page on by passing the last id
    /// seen as `after_id`.
    ///
    /// Only open statuses ([`Status::is_open`]) are indexed; asking for
    /// another is [`StoreError::NotIndexed`]. With redb the scan runs
    /// inline and a page can be cold on disk: on async paths keep `limit`
    /// to a few hundred and page on.
    pub async fn messages_by_status(
        &self,
        status: Status,
        backend: Option<&str>,
        after_id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.messages_by_status(status, backend, after_id, limit),
            Backend::Postgres(s) => s.messages_by_status(status, backend, after_id, limit).await,
        }
    }

    /// The (SMS) backends that have messages in `status`, in name order.
    /// Only open statuses are indexed, as for
    /// [`Store::messages_by_status`].
    pub async fn backends_with_status(&self, status: Status) -> Result<Vec<String>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.backends_with_status(status),
            Backend::Postgres(s) => s.backends_with_status(status).await,
        }
    }

    /// The newest messages first, with ids below `before_id` if given. At
    /// most `limit` (and [`MAX_SCAN`](super::MAX_SCAN)).
    pub async fn recent_messages(
        &self,
        before_id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.recent_messages(before_id, limit),
            Backend::Postgres(s) => s.recent_messages(before_id, limit).await,
        }
    }

    /// Whether this normalized identity has opted out.
    pub async fn is_opted_out(&self, identity: &str) -> Result<bool, StoreError> {
        Ok(self.opted_out_since(identity).await?.is_some())
    }

    /// When this normalized identity last opted out, if it has not opted
    /// back in.
    pub async fn opted_out_since(&self, identity: &str) -> Result<Option<Micros>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.opted_out_since(identity),
            Backend::Postgres(s) => s.opted_out_since(identity).await,
        }
    }

    /// A message's failed send attempts, oldest first (at most
    /// [`MAX_SCAN`](super::MAX_SCAN)).
    pub async fn delivery_errors(&self, id: MessageId) -> Result<Vec<DeliveryError>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.delivery_errors(id),
            Backend::Postgres(s) => s.delivery_errors(id).await,
        }
    }

    /// A message's delivery reports, in arrival order (at most
    /// [`MAX_SCAN`](super::MAX_SCAN)).
    pub async fn dlr_events(&self, id: MessageId) -> Result<Vec<DlrEvent>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.dlr_events(id),
            Backend::Postgres(s) => s.dlr_events(id).await,
        }
    }

    /// The first `limit` calls owed to `dlr-url`s, soonest due first,
    /// whether due yet or not.
    pub async fn owed_callbacks(&self, limit: usize) -> Result<Vec<PendingCallback>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.owed_callbacks(limit),
            Backend::Postgres(s) => s.owed_callbacks(limit).await,
        }
    }

    /// How many messages there are per direction and status (only the
    /// non-zero ones), without scanning messages.
    pub async fn counts(&self) -> Result<Vec<(Direction, Status, u64)>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.counts(),
            Backend::Postgres(s) => s.counts().await,
        }
    }

    /// The connection as first recorded, if any message was stored for it.
    pub async fn connection(
        &self,
        backend: &str,
        identity: &str,
    ) -> Result<Option<StoredConnection>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.connection(backend, identity),
            Backend::Postgres(s) => s.connection(backend, identity).await,
        }
    }

    /// Every connection with this normalized identity, one per (SMS)
    /// backend, in backend order (the console finds a reply's recipient
    /// this way).
    pub async fn connections_with_identity(
        &self,
        identity: &str,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        match &self.backend {
            Backend::Redb(s) => s.connections_with_identity(identity),
            Backend::Postgres(s) => s.connections_with_identity(identity).await,
        }
    }
}
