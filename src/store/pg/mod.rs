//! The PostgreSQL store: the same units, outcomes and reads as the redb
//! store, kept in a PostgreSQL database, for deployments that want their
//! state in a database server (and, in a later version, several rapidbox
//! instances sharing it).
//!
//! - `schema.rs`: every table and index, as numbered migrations applied
//!   when the store opens.
//! - `ids.rs`: message ids from memory, out of blocks reserved from a
//!   sequence.
//! - `plan.rs`: a group of units applied, with the redb store's rules, to
//!   the rows they name, and the writes that result.
//! - `writer.rs`: the writer task: group commit, two round trips per
//!   group, answers only after COMMIT.
//! - `read.rs`: lookups and scans, each one statement on a pooled
//!   connection.
//! - `purge.rs`: purging old messages in bounded batches, by the redb
//!   store's rule ([`PurgeRule`]).
//!
//! Every answered unit is committed, so every read sees it (PostgreSQL's
//! READ COMMITTED). A lost or refused connection, a timeout, a server
//! shutting down: the group fails with [`StoreError::Database`], which is
//! transient (an MO is acked `failed_tmp`); the pool replaces broken
//! connections, so the store recovers by itself once the server answers.
//!
//! This version runs one rapidbox per database: the schema has room for
//! claims by several instances (`claimed_by`, `claim_until`), but nothing
//! claims yet.

mod ids;
mod plan;
mod purge;
mod read;
pub mod schema;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use deadpool_postgres::tokio_postgres::{self, NoTls};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::info;

use super::error::{Rejection, StoreError};
use super::purge::{Job, PurgeReport, PurgeRule};
use super::unit::{Outcome, Unit};
use super::{StoreStats, WriterHistograms};
use crate::config::PostgresConfig;
use crate::model::MessageId;

use ids::Ids;
use writer::{Pending, Request, Writer};

/// How to reach the database, and the store's bounds.
#[derive(Debug, Clone)]
pub struct PgOptions {
    /// A libpq connection string, key/value (`host=/run/postgresql
    /// dbname=rapidbox user=rapidbox`) or URL
    /// (`postgresql://rapidbox@db.example/rapidbox`).
    pub url: String,
    /// The password, when the server asks for one: kept apart from `url`,
    /// which may be logged.
    pub password: Option<String>,
    /// Connections for reads; the writer has one more of its own.
    pub pool_size: usize,
    /// The longest a connection attempt takes before the store says the
    /// server is unreachable.
    pub connect_timeout: Duration,
    /// The longest one statement runs (PostgreSQL's `statement_timeout`,
    /// and the client's own bound on waiting for an answer).
    pub statement_timeout: Duration,
    /// Units that may wait for the writer; beyond it, callers wait.
    pub queue_capacity: usize,
    /// Most units in one transaction.
    pub max_batch_units: usize,
    /// Rough bytes of units in one transaction.
    pub max_batch_bytes: usize,
    /// Most ops in one unit; a bigger unit is refused before it is queued.
    pub max_unit_ops: usize,
}

impl PgOptions {
    /// The defaults, for the database at `url`.
    pub fn new(url: impl Into<String>) -> PgOptions {
        PgOptions {
            url: url.into(),
            password: None,
            pool_size: 8,
            connect_timeout: Duration::from_secs(5),
            statement_timeout: Duration::from_secs(10),
            queue_capacity: 4096,
            max_batch_units: 1024,
            max_batch_bytes: 16 << 20,
            max_unit_ops: 1024,
        }
    }
}

impl PgOptions {
    /// The options `[store.postgres]` gives: its `url`, or a connection
    /// string made of its parts (defaults `localhost`, 5432, `rapidbox`,
    /// `rapidbox`), the password read from `password_file`, and its
    /// bounds. `pool_size` counts every connection: the writer's one and
    /// the reads' (at least one).
    pub fn from_config(config: &PostgresConfig) -> Result<PgOptions, StoreError> {
        let url = match &config.url {
            Some(url) => url.clone(),
            None => {
                // libpq's key/value form, each value quoted.
                let quote = |v: &str| format!("'{}'", v.replace('\\', "\\\\").replace('\'', "\\'"));
                format!(
                    "host={} port={} user={} dbname={}",
                    quote(config.host.as_deref().unwrap_or("localhost")),
                    config.port.unwrap_or(5432),
                    quote(config.user.as_deref().unwrap_or("rapidbox")),
                    quote(config.dbname.as_deref().unwrap_or("rapidbox")),
                )
            }
        };
        let password = match &config.password_file {
            None => None,
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|e| StoreError::Open {
                    path: path.clone(),
                    source: Arc::new(e),
                })?;
                Some(text.lines().next().unwrap_or("").to_owned())
            }
        };
        let mut options = PgOptions::new(url);
        options.password = password;
        options.pool_size = config.pool_size.saturating_sub(1).max(1);
        options.statement_timeout = Duration::from_millis(config.statement_timeout_ms.max(1));
        Ok(options)
    }
}

/// A handle on the PostgreSQL store. Cheap to clone; every clone talks to
/// the same writer. The store closes when [`PgStore::close`] is called or
/// the last handle is dropped.
#[derive(Clone)]
pub struct PgStore {
    inner: Arc<Inner>,
}

struct Inner {
    requests: mpsc::Sender<Request>,
    shared: Arc<Shared>,
    pool: Pool,
    max_unit_ops: usize,
    /// The client's bound on one statement.
    statement_timeout: Duration,
    /// The database's name, for logs and errors.
    database: String,
    writer: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

/// What the handles and the writer share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) ids: Ids,
    pub(crate) committed: watch::Sender<u64>,
    /// False after a group (or a probe) found the database unreachable,
    /// until one succeeds again: `/ready` says so.
    pub(crate) healthy: AtomicBool,
    pub(crate) histograms: WriterHistograms,
    pub(crate) transactions: AtomicU64,
    pub(crate) units: AtomicU64,
    pub(crate) refused: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    pub(crate) largest_batch: AtomicU64,
    pub(crate) apply_micros: AtomicU64,
    pub(crate) commit_micros: AtomicU64,
    pub(crate) purged: AtomicU64,
    pub(crate) purge_transactions: AtomicU64,
    pub(crate) purge_micros: AtomicU64,
}

/// A PostgreSQL error as a [`StoreError`], with what the store was doing.
pub(crate) fn db_error(during: &'static str, e: tokio_postgres::Error) -> StoreError {
    let reason = match e.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => e.to_string(),
    };
    StoreError::Database { during, reason }
}

/// A failure to get a pooled connection as a [`StoreError`].
pub(crate) fn pool_error(e: deadpool_postgres::PoolError) -> StoreError {
    match e {
        deadpool_postgres::PoolError::Closed => StoreError::Closed,
        deadpool_postgres::PoolError::Backend(e) => db_error("connecting", e),
        other => StoreError::Database {
            during: "connecting",
            reason: other.to_string(),
        },
    }
}

impl PgStore {
    /// Connects, brings the schema up to date (see `schema.rs`), reserves
    /// message ids and starts the writer task. Fails with
    /// [`StoreError::Database`] when the server cannot be reached,
    /// [`StoreError::SchemaMismatch`] when a newer rapidbox migrated the
    /// database.
    pub async fn open(options: PgOptions) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config =
            options
                .url
                .parse()
                .map_err(|e: tokio_postgres::Error| StoreError::Database {
                    during: "reading the connection string",
                    reason: e.to_string(),
                })?;
        if config.get_ssl_mode() == tokio_postgres::config::SslMode::Require {
            return Err(StoreError::Database {
                during: "reading the connection string",
                reason: "sslmode=require: this version of rapidbox does not speak TLS to \
                         PostgreSQL (use a Unix socket or a trusted network)"
                    .to_owned(),
            });
        }
        let database = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_owned();
        // Every session: the store's schema first on the search path, and
        // no statement (nor a transaction left idle by a stuck client)
        // holding on for ever.
        let timeout_ms = options.statement_timeout.as_millis().max(1);
        let mut session = format!(
            "-c search_path={} -c statement_timeout={timeout_ms} \
             -c idle_in_transaction_session_timeout={}",
            schema::SCHEMA,
            timeout_ms * 6
        );
        if let Some(theirs) = config.get_options() {
            session = format!("{theirs} {session}");
        }
        if let Some(password) = &options.password {
            config.password(password);
        }
        config
            .options(&session)
            .application_name("rapidbox")
            .connect_timeout(options.connect_timeout)
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30));
        // Two pools on the same settings: the writer's single connection,
        // so that reads never make a group wait for a connection, and the
        // reads'.
        let pool = |size: usize| {
            let manager = Manager::from_config(
                config.clone(),
                NoTls,
                ManagerConfig {
                    // A closed connection is replaced when taken; a broken
                    // one fails its statement, and is dropped by its user.
                    recycling_method: RecyclingMethod::Fast,
                },
            );
            Pool::builder(manager)
                .max_size(size)
                .runtime(Runtime::Tokio1)
                .wait_timeout(Some(options.connect_timeout + options.statement_timeout))
                .create_timeout(Some(options.connect_timeout))
                .recycle_timeout(Some(options.connect_timeout))
                .build()
                .map_err(|e| StoreError::Database {
                    during: "building the connection pool",
                    reason: e.to_string(),
                })
        };
        let writer_pool = pool(1)?;
        let pool = pool(options.pool_size.max(1))?;

        let mut client = pool.get().await.map_err(pool_error)?;
        schema::migrate(&mut client, &database).await?;
        let floor = client
            .query_one("SELECT coalesce(max(id), 0) FROM messages", &[])
            .await
            .map_err(|e| db_error("reading the highest message id", e))?
            .get::<_, i64>(0);
        let first = reserve_block(&client, floor as u64).await?;
        let spare = reserve_block(&client, first + ids::BLOCK - 1).await?;
        drop(client);

        let (committed, _) = watch::channel(0);
        let shared = Arc::new(Shared {
            ids: Ids::new(first, spare),
            committed,
            healthy: AtomicBool::new(true),
            histograms: WriterHistograms::default(),
            transactions: AtomicU64::new(0),
            units: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            failed_batches: AtomicU64::new(0),
            largest_batch: AtomicU64::new(0),
            apply_micros: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            purged: AtomicU64::new(0),
            purge_transactions: AtomicU64::new(0),
            purge_micros: AtomicU64::new(0),
        });
        let (requests, queue) = mpsc::channel(options.queue_capacity.max(1));
        let writer = Writer::new(writer_pool, queue, shared.clone(), &options);
        let task = tokio::spawn(writer.run());
        info!(database, first_id = first, "PostgreSQL store open");
        Ok(PgStore {
            inner: Arc::new(Inner {
                requests,
                shared,
                pool,
                max_unit_ops: options.max_unit_ops,
                statement_timeout: options.statement_timeout,
                database,
                writer: Mutex::new(Some(task)),
            }),
        })
    }

    /// The database's name.
    pub fn database(&self) -> &str {
        &self.inner.database
    }

    /// A fresh message id (see `ids.rs`): ids grow and are never given
    /// twice, by this store or another sharing the database.
    pub fn allocate_id(&self) -> MessageId {
        self.inner.shared.ids.allocate()
    }

    /// Applies `unit` atomically and returns once the transaction holding
    /// it is committed (or the unit was refused, or the commit failed).
    /// Waits for room in the writer's queue first. Dropping the returned
    /// future after the unit is queued does not withdraw it.
    pub async fn commit(&self, unit: Unit) -> Result<Outcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.send(unit, Some(reply)).await?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Queues `unit` without waiting for its commit; a refused or failed
    /// unit is logged.
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
        self.inner
            .requests
            .send(Request::Unit(Pending { unit, reply, bytes }))
            .await
            .map_err(|_| StoreError::Closed)
    }

    /// Runs one purge batch (see [`PurgeRule`]) in its own transaction of
    /// the writer, after the units queued before it.
    pub async fn purge(&self, rule: PurgeRule) -> Result<PurgeReport, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.inner
            .requests
            .send(Request::Purge(Job { rule, reply }))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits every unit already queued, stops the writer and closes the
    /// pool. Afterwards every handle answers [`StoreError::Closed`].
    /// Closing twice is harmless.
    pub async fn close(&self) {
        let (done, stopped) = oneshot::channel();
        if self.inner.requests.send(Request::Close(done)).await.is_ok() {
            let _ = stopped.await;
        }
        let task = self
            .inner
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(task) = task {
            let _ = task.await;
        }
        self.inner.pool.close();
    }

    /// A signal that changes after every commit (its value is the number
    /// of commits). Readers see the new state once it has changed.
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.inner.shared.committed.subscribe()
    }

    /// Counters of the writer's work (`redb_commits` and `checkpoints`
    /// stay 0: there is no redb).
    pub fn stats(&self) -> StoreStats {
        let s = &self.inner.shared;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StoreStats {
            transactions: load(&s.transactions),
            redb_commits: 0,
            checkpoints: 0,
            units: load(&s.units),
            refused: load(&s.refused),
            failed_batches: load(&s.failed_batches),
            largest_batch: load(&s.largest_batch),
            apply_time: Duration::from_micros(load(&s.apply_micros)),
            commit_time: Duration::from_micros(load(&s.commit_micros)),
            purged: load(&s.purged),
            purge_transactions: load(&s.purge_transactions),
            purge_time: Duration::from_micros(load(&s.purge_micros)),
        }
    }

    /// The writer's commit latency and batch size histograms.
    pub fn histograms(&self) -> WriterHistograms {
        self.inner.shared.histograms.clone()
    }

    /// Units waiting in the writer's queue.
    pub fn queue_depth(&self) -> usize {
        let requests = &self.inner.requests;
        requests.max_capacity() - requests.capacity()
    }

    /// Whether the store takes units now: open, and the database answering
    /// the last time the writer tried (it probes every second while not).
    pub fn is_writable(&self) -> bool {
        !self.inner.requests.is_closed() && self.inner.shared.healthy.load(Ordering::Relaxed)
    }
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("database", &self.inner.database)
            .field("stats", &self.stats())
            .finish()
    }
}

/// Reserves a block of message ids above `floor` (see `ids.rs`).
pub(crate) async fn reserve_block(
    client: &tokio_postgres::Client,
    floor: MessageId,
) -> Result<MessageId, StoreError> {
    let floor = i64::try_from(floor).unwrap_or(i64::MAX);
    let row = client
        .query_one(
            "SELECT reserve_id_block($1, $2)",
            &[&floor, &(ids::BLOCK as i64)],
        )
        .await
        .map_err(|e| db_error("reserving message ids", e))?;
    Ok(row.get::<_, i64>(0) as MessageId)
}

/// Closes a connection that may be broken instead of handing it back to
/// the pool, which opens a new one when one is next wanted.
pub(crate) fn discard(client: deadpool_postgres::Object) {
    drop(deadpool_postgres::Object::take(client));
}
