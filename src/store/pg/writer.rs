//! The writer task: turns queued units into committed transactions, many
//! units per transaction.
//!
//! It takes the first unit off the queue, drains whatever else waits (up
//! to a batch bound), and commits them as one *group*, in two round trips
//! on one connection:
//!
//! 1. `BEGIN`, the MO keys the group names with their owners, and the
//!    messages its ops name, locked `FOR UPDATE` (and, when the id
//!    allocator wants one, a block of ids), pipelined.
//! 2. The units are applied in memory to what was read (`plan.rs`), then
//!    one multi-row statement per table writes the result, pipelined with
//!    `COMMIT`.
//!
//! Only then are the units answered: an answer means committed. While one
//! group waits for the server the queue fills, so the next group is
//! bigger, and the commit's fsync is shared by all of them.
//!
//! A statement that fails aborts the transaction, and the pipelined
//! `COMMIT` then rolls it back: nothing of a failed group is committed.
//! If the failure was another transaction storing one of the group's MOs
//! first (the UNIQUE index on MO keys), the group is planned again, and
//! that MO is then a duplicate. Any other failure (a lost connection, a
//! timeout, the server shutting down) fails every unit of the group with
//! [`StoreError::Database`], which callers treat as transient; the
//! connection is dropped if it may be broken, and the pool opens a new one
//! for the next group. While the database does not answer, the writer
//! probes it every [`PROBE_EVERY`] so that `/ready` recovers without
//! traffic.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use deadpool_postgres::tokio_postgres::error::SqlState;
use deadpool_postgres::tokio_postgres::types::ToSql;
use deadpool_postgres::tokio_postgres::{self, Row};
use deadpool_postgres::{Object, Pool};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::plan::{self, MessageRow, Needs, Plan, View};
use super::schema::{key_text, MO_RACE};
use super::{db_error, pool_error, PgOptions, Shared};
use crate::model::{MessageId, MoKey};
use crate::store::codec;
use crate::store::error::{uuid_text, StoreError};
use crate::store::purge::Job;
use crate::store::unit::{Outcome, Unit};

/// How often the writer probes a database that stopped answering.
pub(crate) const PROBE_EVERY: Duration = Duration::from_secs(1);

/// How many times a group is planned again after losing an MO's key to
/// another transaction before it fails.
const MAX_ATTEMPTS: usize = 3;

/// What callers send the writer.
pub(crate) enum Request {
    Unit(Pending),
    Purge(Job),
    /// Commit what is queued, then stop.
    Close(oneshot::Sender<()>),
}

pub(crate) struct Pending {
    pub(crate) unit: Unit,
    pub(crate) reply: Option<oneshot::Sender<Result<Outcome, StoreError>>>,
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
                warn!(error = %e, uuid, ops = self.unit.ops.len(), "enqueued unit lost");
            }
        }
        if let Some(reply) = self.reply {
            let _ = reply.send(answer);
        }
    }
}

/// Why a group failed.
pub(crate) enum Failure {
    /// Another transaction stored one of the group's MOs first: plan again.
    Race(StoreError),
    /// The group fails; `broken` when the connection may be unusable.
    Fatal { error: StoreError, broken: bool },
}

pub(crate) struct Writer {
    pool: Pool,
    requests: mpsc::Receiver<Request>,
    shared: Arc<Shared>,
    max_units: usize,
    max_bytes: usize,
    /// The client's bound on a round trip.
    flight_timeout: Duration,
    /// This writer's row in `counts`.
    slot: i16,
}

impl Writer {
    pub(crate) fn new(
        pool: Pool,
        requests: mpsc::Receiver<Request>,
        shared: Arc<Shared>,
        options: &PgOptions,
    ) -> Writer {
        Writer {
            pool,
            requests,
            shared,
            max_units: options.max_batch_units.max(1),
            max_bytes: options.max_batch_bytes,
            // The server's statement_timeout answers first; this is for a
            // server (or network) that does not answer at all.
            flight_timeout: options.statement_timeout + Duration::from_secs(2),
            slot: i16::from(uuid::Uuid::new_v4().as_bytes()[0] % 64),
        }
    }

    pub(crate) async fn run(mut self) {
        let mut deferred: Option<Request> = None;
        loop {
            let request = match deferred.take() {
                Some(r) => Some(r),
                None => {
                    let unhealthy = !self.shared.healthy.load(Ordering::Relaxed);
                    tokio::select! {
                        r = self.requests.recv() => r,
                        () = self.shared.ids.wanted.notified() => {
                            self.reserve_ids().await;
                            continue;
                        }
                        () = tokio::time::sleep(PROBE_EVERY), if unhealthy => {
                            self.probe().await;
                            continue;
                        }
                    }
                }
            };
            match request {
                None => return,
                Some(Request::Close(done)) => {
                    let _ = done.send(());
                    return;
                }
                Some(Request::Purge(job)) => {
                    let answer = self.purge(&job.rule).await;
                    let _ = job.reply.send(answer);
                }
                Some(Request::Unit(first)) => {
                    let mut bytes = first.bytes;
                    let mut group = vec![first];
                    while group.len() < self.max_units && bytes < self.max_bytes {
                        match self.requests.try_recv() {
                            Ok(Request::Unit(p)) => {
                                bytes += p.bytes;
                                group.push(p);
                            }
                            Ok(other) => {
                                deferred = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.group(group).await;
                }
            }
        }
    }

    /// A pooled connection, or the error that says the database is
    /// unreachable.
    pub(crate) async fn connection(&self) -> Result<Object, StoreError> {
        match self.pool.get().await {
            Ok(c) => Ok(c),
            Err(e) => {
                self.shared.healthy.store(false, Ordering::Relaxed);
                Err(pool_error(e))
            }
        }
    }

    async fn probe(&self) {
        let Ok(client) = self.connection().await else {
            return;
        };
        let answered = tokio::time::timeout(self.flight_timeout, client.simple_query("SELECT 1"))
            .await
            .is_ok_and(|r| r.is_ok());
        if answered {
            tracing::info!("PostgreSQL answers again");
            self.shared.healthy.store(true, Ordering::Relaxed);
        } else {
            super::discard(client);
        }
    }

    async fn reserve_ids(&self) {
        let Some(floor) = self.shared.ids.wanted_floor() else {
            return;
        };
        let Ok(client) = self.connection().await else {
            return;
        };
        match tokio::time::timeout(self.flight_timeout, super::reserve_block(&client, floor)).await
        {
            Ok(Ok(start)) => self.shared.ids.add_block(start),
            Ok(Err(e)) => warn!(error = %e, "could not reserve message ids"),
            Err(_) => {
                warn!("reserving message ids timed out");
                super::discard(client);
            }
        }
    }

    /// Commits `group` and answers every unit in it.
    async fn group(&mut self, group: Vec<Pending>) {
        let started = Instant::now();
        let n = group.len() as u64;
        let result = self.commit(&group).await;
        let elapsed = started.elapsed();
        let shared = &self.shared;
        match result {
            Ok(plan) => {
                shared.healthy.store(true, Ordering::Relaxed);
                if let Some(id) = plan.highest_put {
                    shared.ids.bump_past(id);
                }
                shared.transactions.fetch_add(1, Ordering::Relaxed);
                shared.units.fetch_add(n, Ordering::Relaxed);
                shared.refused.fetch_add(plan.refused, Ordering::Relaxed);
                shared.largest_batch.fetch_max(n, Ordering::Relaxed);
                shared
                    .commit_micros
                    .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
                shared
                    .histograms
                    .commit_seconds
                    .observe(elapsed.as_secs_f64());
                shared.histograms.batch_units.observe(n as f64);
                let wrote = plan.writes();
                for (pending, outcome) in group.into_iter().zip(plan.outcomes) {
                    pending.answer(outcome);
                }
                if wrote {
                    shared.committed.send_modify(|n| *n += 1);
                }
                debug!(
                    units = n,
                    micros = elapsed.as_micros() as u64,
                    "group committed"
                );
            }
            Err(e) => {
                shared.failed_batches.fetch_add(1, Ordering::Relaxed);
                warn!(error = %e, units = n, "group failed");
                for pending in group {
                    pending.answer(Err(e.clone()));
                }
            }
        }
    }

    async fn commit(&self, group: &[Pending]) -> Result<Plan, StoreError> {
        let mut attempt = 1;
        loop {
            let client = self.connection().await?;
            let tried =
                tokio::time::timeout(2 * self.flight_timeout, self.try_commit(&client, group));
            let failure = match tried.await {
                Ok(Ok(plan)) => return Ok(plan),
                Ok(Err(f)) => f,
                Err(_) => Failure::Fatal {
                    error: StoreError::Database {
                        during: "committing a group",
                        reason: format!("no answer within {:?}", 2 * self.flight_timeout),
                    },
                    broken: true,
                },
            };
            match failure {
                Failure::Race(e) if attempt < MAX_ATTEMPTS => {
                    debug!(error = %e, attempt, "an MO was stored meanwhile; planning again");
                    // A race in the first flight leaves its transaction
                    // open (one in the second was rolled back by COMMIT).
                    if !self.rolled_back(&client).await {
                        super::discard(client);
                    }
                    attempt += 1;
                }
                Failure::Race(error) => return Err(error),
                Failure::Fatal { error, broken } => {
                    if broken || !self.rolled_back(&client).await {
                        self.shared.healthy.store(false, Ordering::Relaxed);
                        super::discard(client);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Ends whatever transaction a failure left open; false if the
    /// connection did not answer.
    async fn rolled_back(&self, client: &Object) -> bool {
        tokio::time::timeout(self.flight_timeout, client.batch_execute("ROLLBACK"))
            .await
            .is_ok_and(|r| r.is_ok())
    }

    async fn try_commit(&self, client: &Object, group: &[Pending]) -> Result<Plan, Failure> {
        let apply_started = Instant::now();
        let units = || group.iter().map(|p| &p.unit);
        let needs = Needs::of(units());
        let floor = self.shared.ids.wanted_floor();

        // Flight 1: what the group reads.
        let statements = prepare(
            client,
            &[
                "BEGIN",
                // One probe of the MO key index per key (LATERAL), never
                // a scan of messages, whatever the planner thinks of the
                // array's size.
                "SELECT m.mo_time, m.mo_uuid, m.id \
                 FROM unnest($1::int8[], $2::bytea[]) AS k(t, u) \
                 CROSS JOIN LATERAL (SELECT mo_time, mo_uuid, id FROM messages \
                   WHERE mo_time = k.t AND mo_uuid = k.u AND mo_uuid IS NOT NULL) m",
                "SELECT id, body FROM messages WHERE id = ANY($1) FOR UPDATE",
                "SELECT reserve_id_block($1, $2)",
            ],
        )
        .await?;
        let key_times: Vec<i64> = needs.keys.iter().map(|k| k.time).collect();
        let key_uuids: Vec<&[u8]> = needs.keys.iter().map(|k| k.uuid.as_slice()).collect();
        let floor_param = floor.map(|f| i64::try_from(f).unwrap_or(i64::MAX));
        let block = super::ids::BLOCK as i64;
        let mut flight: Vec<Query<'_>> = vec![query(client, &statements[0], &[])];
        let keys_at = (!needs.keys.is_empty()).then(|| {
            flight.push(query(client, &statements[1], &[&key_times, &key_uuids]));
            flight.len() - 1
        });
        let rows_at = (!needs.ids.is_empty()).then(|| {
            flight.push(query(client, &statements[2], &[&needs.ids]));
            flight.len() - 1
        });
        let block_at = floor_param.as_ref().map(|floor| {
            flight.push(query(client, &statements[3], &[floor, &block]));
            flight.len() - 1
        });
        let mut results = pipeline(flight).await;
        if let Some(failure) = first_failure(&results, "reading a group's rows") {
            return Err(failure);
        }
        let mut take = |at: Option<usize>| {
            at.map(|i| std::mem::replace(&mut results[i], Ok(Vec::new())))
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        let owners = take(keys_at)
            .iter()
            .map(|row| {
                let uuid: &[u8] = row.get(1);
                let key = MoKey {
                    time: row.get(0),
                    uuid: uuid.try_into().unwrap_or([0; 16]),
                };
                (key, row.get::<_, i64>(2) as MessageId)
            })
            .collect();
        let found = take(rows_at)
            .iter()
            .map(|row| {
                let id = row.get::<_, i64>(0) as MessageId;
                (id, codec::decode_message(id, row.get(1)))
            })
            .collect();
        if let Some(row) = take(block_at).first() {
            self.shared.ids.add_block(row.get::<_, i64>(0) as MessageId);
        }

        // In memory: the units applied to what was read.
        let plan = plan::plan(units(), View::new(&needs, found, owners));
        self.shared.apply_micros.fetch_add(
            apply_started.elapsed().as_micros() as u64,
            Ordering::Relaxed,
        );

        // Flight 2: the writes and COMMIT.
        let writes = Writes::of(&plan, self.slot);
        writes.run(client).await?;
        Ok(plan)
    }

    /// Runs one purge batch (`purge.rs`) and counts it.
    async fn purge(
        &self,
        rule: &crate::store::PurgeRule,
    ) -> Result<crate::store::PurgeReport, StoreError> {
        let started = Instant::now();
        let client = self.connection().await?;
        let run = super::purge::run(&client, rule, self.slot);
        let result = match tokio::time::timeout(4 * self.flight_timeout, run).await {
            Ok(r) => r,
            Err(_) => Err(StoreError::Database {
                during: "purging",
                reason: format!("no answer within {:?}", 4 * self.flight_timeout),
            }),
        };
        match &result {
            Ok(report) => {
                let shared = &self.shared;
                if report.purged > 0 {
                    shared.purged.fetch_add(report.purged, Ordering::Relaxed);
                    shared.purge_transactions.fetch_add(1, Ordering::Relaxed);
                    shared.transactions.fetch_add(1, Ordering::Relaxed);
                    shared.committed.send_modify(|n| *n += 1);
                }
                shared
                    .purge_micros
                    .fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            }
            Err(_) => {
                if !self.rolled_back(&client).await {
                    super::discard(client);
                }
            }
        }
        result
    }
}

/// A statement's parameters.
type Params<'a> = [&'a (dyn ToSql + Sync)];

/// A query under way, boxed so that different statements share a type.
pub(crate) type Query<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send + 'a>>;

/// `statement` run with `params` (which are copied into the future).
pub(crate) fn query<'a>(
    client: &'a Object,
    statement: &'a tokio_postgres::Statement,
    params: &Params<'a>,
) -> Query<'a> {
    let params: Vec<&'a (dyn ToSql + Sync)> = params.to_vec();
    Box::pin(async move { client.query(statement, &params).await })
}

/// The statements, prepared once per connection (deadpool caches them).
pub(crate) async fn prepare(
    client: &Object,
    sql: &[&str],
) -> Result<Vec<tokio_postgres::Statement>, Failure> {
    let prepared = pipeline_of(sql.iter().map(|s| {
        Box::pin(client.prepare_cached(s))
            as Pin<
                Box<
                    dyn Future<Output = Result<tokio_postgres::Statement, tokio_postgres::Error>>
                        + Send
                        + '_,
                >,
            >
    }))
    .await;
    prepared
        .into_iter()
        .map(|r| {
            r.map_err(|e| Failure::Fatal {
                broken: e.as_db_error().is_none(),
                error: db_error("preparing statements", e),
            })
        })
        .collect()
}

/// Runs `queries` on one connection as a pipeline: each is sent, in order,
/// before any answer is awaited, so all of them cost one round trip.
pub(crate) async fn pipeline(
    queries: Vec<Query<'_>>,
) -> Vec<Result<Vec<Row>, tokio_postgres::Error>> {
    pipeline_of(queries).await
}

/// tokio-postgres sends a request when its future is first polled; these
/// are polled in order on the first pass, then until all are done.
async fn pipeline_of<T, F>(futures: impl IntoIterator<Item = Pin<Box<F>>>) -> Vec<T>
where
    F: Future<Output = T> + ?Sized,
{
    let mut futures: Vec<Pin<Box<F>>> = futures.into_iter().collect();
    let mut results: Vec<Option<T>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, result) in futures.iter_mut().zip(results.iter_mut()) {
            if result.is_none() {
                match future.as_mut().poll(cx) {
                    Poll::Ready(r) => *result = Some(r),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    results.into_iter().flatten().collect()
}

/// The failure a pipeline's results show, if any: the first statement
/// that failed for a reason of its own (the ones after it fail only
/// because the transaction was aborted).
pub(crate) fn first_failure(
    results: &[Result<Vec<Row>, tokio_postgres::Error>],
    during: &'static str,
) -> Option<Failure> {
    let mut first = None;
    for e in results.iter().filter_map(|r| r.as_ref().err()) {
        if e.code() != Some(&SqlState::IN_FAILED_SQL_TRANSACTION) {
            first = Some(e);
            break;
        }
        first.get_or_insert(e);
    }
    let e = first?;
    let code = e.code().map(SqlState::code);
    let race = matches!(
        e.code(),
        Some(&SqlState::UNIQUE_VIOLATION)
            | Some(&SqlState::T_R_SERIALIZATION_FAILURE)
            | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    ) || code == Some(MO_RACE);
    // An error without a server's answer (closed, I/O) may leave the
    // connection unusable.
    let broken = e.as_db_error().is_none();
    let error = StoreError::Database {
        during,
        reason: match e.as_db_error() {
            Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
            None => e.to_string(),
        },
    };
    Some(if race {
        Failure::Race(error)
    } else {
        Failure::Fatal { error, broken }
    })
}

/// A plan's rows as statement parameters: one array per column.
struct Writes {
    slot: i16,
    rekeyed: Vec<i64>,
    upserts: Columns,
    new_mos: Columns,
    new_mo_count: i64,
    errors: (Vec<i64>, Vec<i64>, Vec<Vec<u8>>),
    dlrs: (Vec<i64>, Vec<i64>, Vec<i32>, Vec<Vec<u8>>),
    connections: (Vec<String>, Vec<String>, Vec<Vec<u8>>, Vec<i64>),
    optouts_set: (Vec<String>, Vec<i64>),
    optouts_removed: Vec<String>,
    callbacks_set: CallbackColumns,
    callbacks_removed: (Vec<i64>, Vec<Vec<u8>>),
    counts: (Vec<String>, Vec<String>, Vec<i64>),
}

/// `dlr_callbacks` rows, column by column: due, id, message id, url,
/// attempts.
type CallbackColumns = (Vec<i64>, Vec<Vec<u8>>, Vec<i64>, Vec<Vec<u8>>, Vec<i64>);

/// `messages` rows, column by column.
#[derive(Default)]
struct Columns {
    id: Vec<i64>,
    direction: Vec<String>,
    status: Vec<String>,
    backend: Vec<String>,
    identity: Vec<String>,
    date: Vec<i64>,
    mo_time: Vec<Option<i64>>,
    mo_uuid: Vec<Option<Vec<u8>>>,
    body: Vec<Vec<u8>>,
}

impl Columns {
    fn of(rows: &[MessageRow]) -> Columns {
        let mut c = Columns::default();
        for MessageRow { message: m, body } in rows {
            let key = MoKey::of(m);
            c.id.push(m.id as i64);
            c.direction.push(m.direction.code().to_string());
            c.status.push(m.status.code().to_string());
            c.backend.push(key_text(&m.connection.backend).into_owned());
            c.identity
                .push(key_text(&m.connection.identity).into_owned());
            c.date.push(m.date);
            c.mo_time.push(key.map(|k| k.time));
            c.mo_uuid.push(key.map(|k| k.uuid.to_vec()));
            c.body.push(body.clone());
        }
        c
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 9] {
        [
            &self.id,
            &self.direction,
            &self.status,
            &self.backend,
            &self.identity,
            &self.date,
            &self.mo_time,
            &self.mo_uuid,
            &self.body,
        ]
    }
}

const MESSAGE_ROWS: &str = "SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], \
     $4::text[], $5::text[], $6::int8[], $7::int8[], $8::bytea[], $9::bytea[])";

const MESSAGE_COLUMNS: &str =
    "messages (id, direction, status, backend, identity, date, mo_time, mo_uuid, body)";

impl Writes {
    fn of(plan: &Plan, slot: i16) -> Writes {
        let mut w = Writes {
            slot,
            rekeyed: plan.rekeyed.clone(),
            upserts: Columns::of(&plan.upserts),
            new_mos: Columns::of(&plan.new_mos),
            new_mo_count: plan.new_mos.len() as i64,
            errors: Default::default(),
            dlrs: Default::default(),
            connections: Default::default(),
            optouts_set: Default::default(),
            optouts_removed: Vec::new(),
            callbacks_set: Default::default(),
            callbacks_removed: Default::default(),
            counts: Default::default(),
        };
        for e in &plan.delivery_errors {
            w.errors.0.push(e.message_id as i64);
            w.errors.1.push(e.time);
            w.errors.2.push(e.log.as_bytes().to_vec());
        }
        for d in &plan.dlrs {
            w.dlrs.0.push(d.message_id as i64);
            w.dlrs.1.push(d.time);
            w.dlrs.2.push(d.mask);
            w.dlrs.3.push(d.text.as_bytes().to_vec());
        }
        for (backend, identity, address, seen) in &plan.connections {
            w.connections.0.push(key_text(backend).into_owned());
            w.connections.1.push(key_text(identity).into_owned());
            w.connections.2.push(address.as_bytes().to_vec());
            w.connections.3.push(*seen);
        }
        for (identity, since) in &plan.optouts {
            let identity = key_text(identity).into_owned();
            match since {
                Some(at) => {
                    w.optouts_set.0.push(identity);
                    w.optouts_set.1.push(*at);
                }
                None => w.optouts_removed.push(identity),
            }
        }
        for ((due, id), call) in &plan.callbacks {
            match call {
                Some(c) => {
                    w.callbacks_set.0.push(*due);
                    w.callbacks_set.1.push(id.to_vec());
                    w.callbacks_set.2.push(c.message_id as i64);
                    w.callbacks_set.3.push(c.url.as_bytes().to_vec());
                    w.callbacks_set.4.push(i64::from(c.attempts));
                }
                None => {
                    w.callbacks_removed.0.push(*due);
                    w.callbacks_removed.1.push(id.to_vec());
                }
            }
        }
        for (direction, status, delta) in plan.counts.nonzero() {
            w.counts.0.push(direction.code().to_string());
            w.counts.1.push(status.code().to_string());
            w.counts.2.push(delta);
        }
        w
    }

    /// Sends every write and COMMIT as one pipeline; an error in any of
    /// them aborts the transaction, which COMMIT then rolls back.
    async fn run(&self, client: &Object) -> Result<(), Failure> {
        let sql = [
            "UPDATE messages SET mo_time = NULL, mo_uuid = NULL WHERE id = ANY($1)",
            &format!(
                "INSERT INTO {MESSAGE_COLUMNS} {MESSAGE_ROWS} ON CONFLICT (id) DO UPDATE SET \
                 direction = excluded.direction, status = excluded.status, \
                 backend = excluded.backend, identity = excluded.identity, \
                 date = excluded.date, mo_time = excluded.mo_time, \
                 mo_uuid = excluded.mo_uuid, body = excluded.body"
            ),
            &format!(
                "WITH inserted AS (INSERT INTO {MESSAGE_COLUMNS} {MESSAGE_ROWS} \
                 ON CONFLICT (mo_time, mo_uuid) WHERE mo_uuid IS NOT NULL DO NOTHING \
                 RETURNING 1) \
                 SELECT expect_inserted(count(*), $10) FROM inserted"
            ),
            "INSERT INTO delivery_errors (message_id, time, log) \
             SELECT m, t, l FROM unnest($1::int8[], $2::int8[], $3::bytea[]) \
             WITH ORDINALITY AS e(m, t, l, n) ORDER BY n",
            "INSERT INTO dlr_events (message_id, time, mask, text) \
             SELECT m, t, k, x FROM unnest($1::int8[], $2::int8[], $3::int4[], $4::bytea[]) \
             WITH ORDINALITY AS e(m, t, k, x, n) ORDER BY n",
            "INSERT INTO connections (backend, identity, address, first_seen) \
             SELECT * FROM unnest($1::text[], $2::text[], $3::bytea[], $4::int8[]) \
             ON CONFLICT DO NOTHING",
            "INSERT INTO optouts (identity, since) SELECT * FROM unnest($1::text[], $2::int8[]) \
             ON CONFLICT (identity) DO UPDATE SET since = excluded.since",
            "DELETE FROM optouts WHERE identity = ANY($1)",
            "DELETE FROM dlr_callbacks c USING unnest($1::int8[], $2::bytea[]) AS f(due, id) \
             WHERE c.due = f.due AND c.id = f.id",
            "INSERT INTO dlr_callbacks (due, id, message_id, url, attempts) \
             SELECT * FROM unnest($1::int8[], $2::bytea[], $3::int8[], $4::bytea[], $5::int8[]) \
             ON CONFLICT (due, id) DO UPDATE SET message_id = excluded.message_id, \
             url = excluded.url, attempts = excluded.attempts",
            "INSERT INTO counts (slot, direction, status, n) \
             SELECT $1, d, s, n FROM unnest($2::text[], $3::text[], $4::int8[]) AS c(d, s, n) \
             ON CONFLICT (slot, direction, status) DO UPDATE SET n = counts.n + excluded.n",
            "COMMIT",
        ];
        let s = prepare(client, &sql).await?;
        let mut flight: Vec<Query<'_>> = Vec::new();
        if !self.rekeyed.is_empty() {
            flight.push(query(client, &s[0], &[&self.rekeyed]));
        }
        if !self.upserts.id.is_empty() {
            flight.push(query(client, &s[1], &self.upserts.params()));
        }
        if !self.new_mos.id.is_empty() {
            let mut params = self.new_mos.params().to_vec();
            params.push(&self.new_mo_count);
            flight.push(query(client, &s[2], &params));
        }
        if !self.errors.0.is_empty() {
            let e = &self.errors;
            flight.push(query(client, &s[3], &[&e.0, &e.1, &e.2]));
        }
        if !self.dlrs.0.is_empty() {
            let d = &self.dlrs;
            flight.push(query(client, &s[4], &[&d.0, &d.1, &d.2, &d.3]));
        }
        if !self.connections.0.is_empty() {
            let c = &self.connections;
            flight.push(query(client, &s[5], &[&c.0, &c.1, &c.2, &c.3]));
        }
        if !self.optouts_set.0.is_empty() {
            let o = &self.optouts_set;
            flight.push(query(client, &s[6], &[&o.0, &o.1]));
        }
        if !self.optouts_removed.is_empty() {
            flight.push(query(client, &s[7], &[&self.optouts_removed]));
        }
        if !self.callbacks_removed.0.is_empty() {
            let c = &self.callbacks_removed;
            flight.push(query(client, &s[8], &[&c.0, &c.1]));
        }
        if !self.callbacks_set.0.is_empty() {
            let c = &self.callbacks_set;
            flight.push(query(client, &s[9], &[&c.0, &c.1, &c.2, &c.3, &c.4]));
        }
        if !self.counts.0.is_empty() {
            let c = &self.counts;
            flight.push(query(client, &s[10], &[&self.slot, &c.0, &c.1, &c.2]));
        }
        flight.push(query(client, &s[11], &[]));
        let results = pipeline(flight).await;
        match first_failure(&results, "committing a group") {
            Some(failure) => Err(failure),
            None => Ok(()),
        }
    }
}
