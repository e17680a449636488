//! How units become table writes, inside the writer's one transaction.
//!
//! Many units share a transaction, so one refused unit must leave no trace
//! while the others stay. redb cannot help here: a savepoint can only be
//! taken before the transaction touches a table, and aborting to replay the
//! batch without the bad unit costs the whole batch again for every bad
//! unit (quadratic when a peer keeps naming unknown message ids). So each
//! write records the entry's previous state in an undo log, and a refused
//! unit is undone in place, newest write first. Most writes are inserts of
//! new keys, whose undo entry is just the key; the happy path pays almost
//! nothing for it.
//!
//! Counts are kept as deltas in memory, per unit and then per batch, and
//! written once per commit: a batch of 4,000 units touches a handful of
//! count entries, not 8,000.
//!
//! Removals from `by_status` wait for the end of the batch too, and go in
//! runs (see [`Batch::drop_unindexed`]): the open part of that index is
//! small (the MTs in flight, say), and redb rebuilds a leaf that small on
//! every single removal. One by one they cost 15% of rapidbox's
//! instructions per `/router/receive` request; in runs, one rebuild per
//! leaf per batch.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};

use redb::{
    Key, ReadableTable, StorageError, Table, TableDefinition, TableError, Value, WriteTransaction,
};
use tracing::warn;

use crate::model::{
    Connection, DeliveryError, Direction, DlrEvent, Message, MessageId, MoKey, PendingCallback,
    Status,
};

use super::codec::{self, encode_into};
use super::error::{uuid_text, Rejection, StoreError};
use super::schema::*;
use super::unit::{Op, Outcome, Unit, Update};
use super::RecentMoKeys;

/// Every table, each opened the first time a transaction uses it: opening
/// one checks its types and looks it up in redb's table of tables, and
/// opening all eleven cost about 42k instructions per transaction
/// (callgrind), 3% of the work per `/router/receive` request, which
/// touches four.
pub(crate) struct Tables<'txn> {
    txn: &'txn WriteTransaction,
    messages: Option<Table<'txn, u64, &'static [u8]>>,
    mo_keys: Option<Table<'txn, (i64, &'static [u8; 16]), u64>>,
    mo_recent: Option<Table<'txn, u64, (i64, &'static [u8; 16])>>,
    by_status: Option<Table<'txn, (u8, &'static str, u64), ()>>,
    connections: Option<Table<'txn, (&'static str, &'static str), &'static [u8]>>,
    optouts: Option<Table<'txn, &'static str, i64>>,
    delivery_errors: Option<Table<'txn, (u64, u64), &'static [u8]>>,
    dlr_events: Option<Table<'txn, (u64, u64), &'static [u8]>>,
    callbacks: Option<CallbackTable<'txn>>,
    counts: Option<Table<'txn, (u8, u8), u64>>,
    meta: Option<Table<'txn, &'static str, u64>>,
}

/// [`CALLBACKS`], opened.
type CallbackTable<'txn> = Table<'txn, (i64, &'static [u8; 16]), &'static [u8]>;

/// The table in `slot`, opening it first if this transaction has not yet.
fn opened<'s, 'txn, K: Key + 'static, V: Value + 'static>(
    txn: &'txn WriteTransaction,
    slot: &'s mut Option<Table<'txn, K, V>>,
    definition: TableDefinition<K, V>,
) -> Result<&'s mut Table<'txn, K, V>, StorageError> {
    match slot {
        Some(table) => Ok(table),
        None => {
            let table = txn.open_table(definition).map_err(|e| match e {
                TableError::Storage(e) => e,
                // Every table was created and its types checked when the
                // store opened; anything else now means a damaged file.
                other => StorageError::Corrupted(other.to_string()),
            })?;
            Ok(slot.insert(table))
        }
    }
}

impl<'txn> Tables<'txn> {
    /// Creates any missing table and checks the types of every one.
    pub(crate) fn create_all(txn: &WriteTransaction) -> Result<(), TableError> {
        txn.open_table(MESSAGES)?;
        txn.open_table(MO_KEYS)?;
        txn.open_table(MO_RECENT)?;
        txn.open_table(BY_STATUS)?;
        txn.open_table(CONNECTIONS)?;
        txn.open_table(OPTOUTS)?;
        txn.open_table(DELIVERY_ERRORS)?;
        txn.open_table(DLR_EVENTS)?;
        txn.open_table(CALLBACKS)?;
        txn.open_table(COUNTS)?;
        txn.open_table(META)?;
        Ok(())
    }

    /// The tables of `txn`, none opened yet.
    pub(crate) fn of(txn: &'txn WriteTransaction) -> Tables<'txn> {
        Tables {
            txn,
            messages: None,
            mo_keys: None,
            mo_recent: None,
            by_status: None,
            connections: None,
            optouts: None,
            delivery_errors: None,
            dlr_events: None,
            callbacks: None,
            counts: None,
            meta: None,
        }
    }

    fn messages(&mut self) -> Result<&mut Table<'txn, u64, &'static [u8]>, StorageError> {
        opened(self.txn, &mut self.messages, MESSAGES)
    }

    fn mo_keys(&mut self) -> Result<&mut Table<'txn, (i64, &'static [u8; 16]), u64>, StorageError> {
        opened(self.txn, &mut self.mo_keys, MO_KEYS)
    }

    fn mo_recent(
        &mut self,
    ) -> Result<&mut Table<'txn, u64, (i64, &'static [u8; 16])>, StorageError> {
        opened(self.txn, &mut self.mo_recent, MO_RECENT)
    }

    fn by_status(&mut self) -> Result<&mut Table<'txn, (u8, &'static str, u64), ()>, StorageError> {
        opened(self.txn, &mut self.by_status, BY_STATUS)
    }

    fn connections(
        &mut self,
    ) -> Result<&mut Table<'txn, (&'static str, &'static str), &'static [u8]>, StorageError> {
        opened(self.txn, &mut self.connections, CONNECTIONS)
    }

    fn optouts(&mut self) -> Result<&mut Table<'txn, &'static str, i64>, StorageError> {
        opened(self.txn, &mut self.optouts, OPTOUTS)
    }

    fn delivery_errors(
        &mut self,
    ) -> Result<&mut Table<'txn, (u64, u64), &'static [u8]>, StorageError> {
        opened(self.txn, &mut self.delivery_errors, DELIVERY_ERRORS)
    }

    fn dlr_events(&mut self) -> Result<&mut Table<'txn, (u64, u64), &'static [u8]>, StorageError> {
        opened(self.txn, &mut self.dlr_events, DLR_EVENTS)
    }

    fn callbacks(&mut self) -> Result<&mut CallbackTable<'txn>, StorageError> {
        opened(self.txn, &mut self.callbacks, CALLBACKS)
    }

    fn counts(&mut self) -> Result<&mut Table<'txn, (u8, u8), u64>, StorageError> {
        opened(self.txn, &mut self.counts, COUNTS)
    }

    fn meta(&mut self) -> Result<&mut Table<'txn, &'static str, u64>, StorageError> {
        opened(self.txn, &mut self.meta, META)
    }
}

/// The state an entry had before a write, to put it back.
enum Undo {
    Message {
        id: MessageId,
        old: Option<Vec<u8>>,
    },
    MoKey {
        key: MoKey,
        old: Option<MessageId>,
    },
    /// The `mo_recent` entry of message `id` before a write.
    Recent {
        id: MessageId,
        old: Option<MoKey>,
    },
    /// A key of this batch's [`RecentMos::added`] before a change.
    Added {
        key: MoKey,
        old: Option<MessageId>,
    },
    /// A committed recent key this batch released: it stays after all.
    Released {
        key: MoKey,
    },
    /// A key inserted in `by_status`: removed again if it was not there,
    /// and its removal asked for again if one was waiting.
    Indexed {
        key: IndexKey,
        was_present: bool,
        was_waiting: bool,
    },
    /// A removal from `by_status` that now waits for the end of the batch.
    Unindexed {
        key: IndexKey,
    },
    /// A connection that was inserted (they are never rewritten).
    Connection {
        backend: String,
        identity: String,
    },
    OptOut {
        identity: String,
        old: Option<i64>,
    },
    /// An event that was inserted under a fresh sequence number.
    DeliveryError {
        id: MessageId,
        seq: u64,
    },
    Dlr {
        id: MessageId,
        seq: u64,
    },
    Callback {
        due: i64,
        id: [u8; 16],
        old: Option<Vec<u8>>,
    },
}

/// Why an op stopped.
enum Stop {
    /// This unit alone fails: undo it, answer it, go on with the batch.
    Unit(StoreError),
    /// The transaction is unusable: the whole batch fails.
    Fatal(StoreError),
}

impl From<StorageError> for Stop {
    fn from(e: StorageError) -> Stop {
        Stop::Fatal(StoreError::storage("writing a batch")(e.into()))
    }
}

impl From<Rejection> for Stop {
    fn from(r: Rejection) -> Stop {
        Stop::Unit(StoreError::Rejected(r))
    }
}

const DIRECTIONS: [Direction; 2] = [Direction::Incoming, Direction::Outgoing];

/// A `by_status` key, owned: (status code, backend, id).
type IndexKey = (u8, String, MessageId);

/// Waiting removals of the same status and backend whose ids are at most
/// this far apart are done in one pass over the range between them. Ids
/// are unique, so the pass reads at most this many entries per removal.
const MAX_RUN_GAP: MessageId = 64;

/// Changes to `counts`, indexed by direction then status (declaration
/// order, the order of [`Status::ALL`]).
#[derive(Clone, Copy, Default)]
struct CountDeltas([[i64; Status::ALL.len()]; 2]);

impl CountDeltas {
    fn add(&mut self, direction: Direction, status: Status, delta: i64) {
        self.0[direction as usize][status as usize] += delta;
    }

    fn merge(&mut self, other: &CountDeltas) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0.iter()) {
            for (m, t) in mine.iter_mut().zip(theirs.iter()) {
                *m += t;
            }
        }
    }

    fn nonzero(&self) -> impl Iterator<Item = (Direction, Status, i64)> + '_ {
        DIRECTIONS.into_iter().flat_map(move |d| {
            Status::ALL
                .into_iter()
                .map(move |s| (d, s, self.0[d as usize][s as usize]))
                .filter(|(_, _, delta)| *delta != 0)
        })
    }
}

/// What a batch did to the MO keys in `mo_recent`, for the writer to
/// bring its copy in memory in step once the batch is durable.
#[derive(Debug, Default)]
pub(crate) struct RecentMos {
    /// Keys the batch added.
    pub(crate) added: RecentMoKeys,
    /// Keys of the copy in memory that the batch dropped.
    pub(crate) released: HashSet<MoKey>,
    /// Keys moved to `mo_keys`.
    pub(crate) moved: Vec<MoKey>,
}

/// What [`Batch::finish`] hands back.
pub(crate) struct Finished {
    /// Anything to commit: a batch of duplicates and refusals needs no
    /// commit.
    pub(crate) wrote: bool,
    /// The next event sequence.
    pub(crate) next_seq: u64,
    pub(crate) recent: RecentMos,
}

/// One write transaction's worth of units.
pub(crate) struct Batch<'a, 'txn> {
    tables: Tables<'txn>,
    /// The keys in `mo_recent` as of the last commit, by key (the writer's
    /// copy in memory, see [`MO_RECENT`]).
    recent: &'a RecentMoKeys,
    /// This batch's changes to them.
    mos: RecentMos,
    /// Move the keys to `mo_keys` once this many wait.
    move_at: usize,
    /// Reused for every encoded value.
    scratch: &'a mut Vec<u8>,
    /// The allocator's counter: a put with a higher id moves it, so a
    /// message put under a caller-chosen id is never given out again.
    next_id: &'a AtomicU64,
    /// The next event sequence; gaps (from refused units) are harmless.
    next_seq: u64,
    first_seq: u64,
    undo: Vec<Undo>,
    /// `by_status` keys to remove when the batch ends. The index as the
    /// batch sees it is the table without these.
    unindexed: BTreeSet<IndexKey>,
    unit_counts: CountDeltas,
    batch_counts: CountDeltas,
    /// Whether any unit was applied: a batch of duplicates and refusals
    /// needs no commit.
    wrote: bool,
}

impl<'a, 'txn> Batch<'a, 'txn> {
    pub(crate) fn new(
        tables: Tables<'txn>,
        scratch: &'a mut Vec<u8>,
        next_id: &'a AtomicU64,
        next_seq: u64,
        recent: &'a RecentMoKeys,
        move_at: usize,
    ) -> Batch<'a, 'txn> {
        Batch {
            tables,
            recent,
            mos: RecentMos::default(),
            move_at,
            scratch,
            next_id,
            next_seq,
            first_seq: next_seq,
            undo: Vec::new(),
            unindexed: BTreeSet::new(),
            unit_counts: CountDeltas::default(),
            batch_counts: CountDeltas::default(),
            wrote: false,
        }
    }

    /// Applies one unit. The outer error is fatal to the transaction; the
    /// inner result is this unit's answer, and a refused unit has been
    /// undone.
    pub(crate) fn apply(&mut self, unit: &Unit) -> Result<Result<Outcome, StoreError>, StoreError> {
        if let Some(key) = &unit.unless_mo_known {
            let known = self
                .mo_owner(key)
                .map_err(|e| StoreError::storage("checking an MO's key")(e.into()))?;
            if let Some(owner) = known {
                return Ok(Ok(Outcome::Duplicate(owner)));
            }
        }
        self.undo.clear();
        self.unit_counts = CountDeltas::default();
        for (index, op) in unit.ops.iter().enumerate() {
            match self.op(index, op) {
                Ok(()) => {}
                Err(Stop::Unit(refusal)) => {
                    self.rollback()
                        .map_err(|e| StoreError::storage("undoing a refused unit")(e.into()))?;
                    return Ok(Err(refusal));
                }
                Err(Stop::Fatal(e)) => return Err(e),
            }
        }
        self.batch_counts.merge(&self.unit_counts);
        self.wrote |= !unit.ops.is_empty();
        Ok(Ok(Outcome::Applied))
    }

    /// Writes what the batch kept in memory (counts, the event sequence,
    /// `by_status` removals), moves the recent MO keys to `mo_keys` if
    /// enough wait, and hands back the tables.
    pub(crate) fn finish(mut self) -> Result<Finished, StoreError> {
        self.drop_unindexed()
            .map_err(|e| StoreError::storage("removing from by_status")(e.into()))?;
        let waiting =
            (self.recent.len() + self.mos.added.len()).saturating_sub(self.mos.released.len());
        if waiting >= self.move_at {
            // An eighth of them: all at once would write each page of
            // mo_keys once, but stall the batch (8,192 keys took the p99
            // MO→ack latency through boxload at 10,000 MOs/s from 10 to
            // 13-17 ms); an eighth still writes a page for tens of keys
            // rather than one per key. At least as many as came, so that
            // mo_recent stays bounded.
            let count = (self.move_at / 8).max(self.mos.added.len()).max(1);
            self.move_oldest_keys(count)
                .map_err(|e| StoreError::storage("moving MO keys to mo_keys")(e.into()))?;
        }
        self.write_counts()
            .map_err(|e| StoreError::storage("writing counts")(e.into()))?;
        Ok(Finished {
            wrote: self.wrote,
            next_seq: self.next_seq,
            recent: self.mos,
        })
    }

    /// Adds the batch's count changes to `counts`, and records the event
    /// sequence if it moved.
    fn write_counts(&mut self) -> Result<(), StorageError> {
        for (direction, status, delta) in self.batch_counts.nonzero() {
            let key = (codec::direction_code(direction), status.as_u8());
            let counts = self.tables.counts()?;
            let current = counts.get(key)?.map_or(0, |g| g.value());
            let updated = current.checked_add_signed(delta).unwrap_or_else(|| {
                // Only a bug or a damaged file gets here; clamp and say so.
                warn!(
                    ?direction,
                    ?status,
                    current,
                    delta,
                    "count would go out of range"
                );
                if delta < 0 {
                    0
                } else {
                    u64::MAX
                }
            });
            counts.insert(key, updated)?;
        }
        if self.next_seq != self.first_seq {
            self.tables
                .meta()?
                .insert(META_NEXT_EVENT_SEQ, self.next_seq)?;
        }
        Ok(())
    }

    /// Moves the `count` oldest keys of `mo_recent` (lowest message ids)
    /// into `mo_keys`, in key order, so that a page of `mo_keys` is written
    /// once for all of them that land on it.
    fn move_oldest_keys(&mut self, count: usize) -> Result<(), StorageError> {
        let mut keys = Vec::with_capacity(count);
        for entry in self.tables.mo_recent()?.iter()?.take(count) {
            let (id, key) = entry?;
            let (time, uuid) = key.value();
            keys.push(((time, *uuid), id.value()));
        }
        let Some(last) = keys.iter().map(|(_, id)| *id).max() else {
            return Ok(());
        };
        self.tables.mo_recent()?.retain_in(..=last, |_, _| false)?;
        keys.sort_unstable();
        for ((time, uuid), id) in &keys {
            self.tables.mo_keys()?.insert((*time, uuid), *id)?;
        }
        self.mos.moved = keys
            .into_iter()
            .map(|((time, uuid), _)| MoKey { time, uuid })
            .collect();
        self.wrote = true;
        Ok(())
    }

    /// The message that has MO key `key`, as this batch sees it: a key is
    /// in `mo_recent` (the copy in memory, with this batch's changes) or
    /// in `mo_keys`, never both.
    fn mo_owner(&mut self, key: &MoKey) -> Result<Option<MessageId>, StorageError> {
        if let Some(id) = self.mos.added.get(key) {
            return Ok(Some(*id));
        }
        if let Some(id) = self.recent.get(key) {
            let released = self.mos.released.contains(key);
            return Ok((!released).then_some(*id));
        }
        Ok(self
            .tables
            .mo_keys()?
            .get((key.time, &key.uuid))?
            .map(|g| g.value()))
    }

    fn op(&mut self, index: usize, op: &Op) -> Result<(), Stop> {
        match op {
            Op::Put(message) => self.put(index, message),
            Op::Update(update) => self.update(index, update),
            Op::AddDeliveryError(error) => self.add_delivery_error(index, error),
            Op::AddDlr(event) => self.add_dlr(index, event),
            Op::OptOut { identity, at } => {
                let old = self
                    .tables
                    .optouts()?
                    .insert(identity.as_str(), *at)?
                    .map(|g| g.value());
                self.undo.push(Undo::OptOut {
                    identity: identity.clone(),
                    old,
                });
                Ok(())
            }
            Op::OweCallback(callback) => self.owe_callback(index, callback),
            Op::ForgetCallback { due, id } => {
                let old = self
                    .tables
                    .callbacks()?
                    .remove((*due, id))?
                    .map(|g| g.value().to_vec());
                if old.is_some() {
                    self.undo.push(Undo::Callback {
                        due: *due,
                        id: *id,
                        old,
                    });
                }
                Ok(())
            }
            Op::OptIn { identity } => {
                let old = self
                    .tables
                    .optouts()?
                    .remove(identity.as_str())?
                    .map(|g| g.value());
                if old.is_some() {
                    self.undo.push(Undo::OptOut {
                        identity: identity.clone(),
                        old,
                    });
                }
                Ok(())
            }
        }
    }

    fn encode<T: serde::Serialize + ?Sized>(
        &mut self,
        index: usize,
        value: &T,
    ) -> Result<(), Stop> {
        encode_into(value, self.scratch).map_err(|e| {
            Stop::from(Rejection::Unencodable {
                op: index,
                reason: e.to_string(),
            })
        })
    }

    fn put(&mut self, index: usize, message: &Message) -> Result<(), Stop> {
        let id = message.id;
        self.encode(index, message)?;
        // The insert hands back the previous entry, so a new message costs
        // no read.
        let old = self
            .tables
            .messages()?
            .insert(id, self.scratch.as_slice())?
            .map(|g| g.value().to_vec());
        let previous = old
            .as_deref()
            .map(|bytes| codec::decode_message(id, bytes))
            .transpose();
        self.undo.push(Undo::Message { id, old });
        let previous = previous.map_err(Stop::Unit)?;

        let mo_key = MoKey::of(message);
        if let Some(previous) = &previous {
            self.unit_counts
                .add(previous.direction, previous.status, -1);
            if previous.status != message.status
                || previous.connection.backend != message.connection.backend
            {
                self.unindex_status(previous.status, &previous.connection.backend, id);
            }
            if let Some(old_key) = MoKey::of(previous).filter(|k| Some(*k) != mo_key) {
                self.release_mo_key(old_key, id)?;
            }
        }
        self.index_status(message.status, &message.connection.backend, id)?;
        self.unit_counts.add(message.direction, message.status, 1);
        if let Some(key) = mo_key {
            self.claim_mo_key(index, key, id)?;
        }
        self.remember_connection(index, &message.connection, message.date)?;
        self.next_id
            .fetch_max(id.saturating_add(1), Ordering::Relaxed);
        Ok(())
    }

    fn update(&mut self, index: usize, update: &Update) -> Result<(), Stop> {
        let id = update.id;
        let old = match self.tables.messages()?.get(id)? {
            Some(guard) => guard.value().to_vec(),
            None => return Err(Rejection::MissingMessage { op: index, id }.into()),
        };
        let mut message = codec::decode_message(id, &old).map_err(Stop::Unit)?;
        let before = message.status;
        apply_update(&mut message, update);
        self.encode(index, &message)?;
        self.tables
            .messages()?
            .insert(id, self.scratch.as_slice())?;
        self.undo.push(Undo::Message { id, old: Some(old) });
        if message.status != before {
            let backend = &message.connection.backend;
            self.unindex_status(before, backend, id);
            self.index_status(message.status, backend, id)?;
            self.unit_counts.add(message.direction, before, -1);
            self.unit_counts.add(message.direction, message.status, 1);
        }
        Ok(())
    }

    fn add_delivery_error(&mut self, index: usize, error: &DeliveryError) -> Result<(), Stop> {
        let id = error.message_id;
        self.require_message(index, id)?;
        let seq = self.take_seq();
        self.encode(index, &codec::delivery_error_value(error))?;
        self.tables
            .delivery_errors()?
            .insert((id, seq), self.scratch.as_slice())?;
        self.undo.push(Undo::DeliveryError { id, seq });
        Ok(())
    }

    fn add_dlr(&mut self, index: usize, event: &DlrEvent) -> Result<(), Stop> {
        let id = event.message_id;
        self.require_message(index, id)?;
        let seq = self.take_seq();
        self.encode(index, &codec::dlr_value(event))?;
        self.tables
            .dlr_events()?
            .insert((id, seq), self.scratch.as_slice())?;
        self.undo.push(Undo::Dlr { id, seq });
        Ok(())
    }

    fn owe_callback(&mut self, index: usize, callback: &PendingCallback) -> Result<(), Stop> {
        self.require_message(index, callback.message_id)?;
        self.encode(index, &codec::callback_value(callback))?;
        let key = (callback.due, &callback.id);
        let old = self
            .tables
            .callbacks()?
            .insert(key, self.scratch.as_slice())?
            .map(|g| g.value().to_vec());
        self.undo.push(Undo::Callback {
            due: callback.due,
            id: callback.id,
            old,
        });
        Ok(())
    }

    fn require_message(&mut self, index: usize, id: MessageId) -> Result<(), Stop> {
        if self.tables.messages()?.get(id)?.is_none() {
            return Err(Rejection::MissingMessage { op: index, id }.into());
        }
        Ok(())
    }

    fn take_seq(&mut self) -> u64 {
        let seq = self.next_seq;
        self.next_seq += 1;
        seq
    }

    fn index_status(&mut self, status: Status, backend: &str, id: MessageId) -> Result<(), Stop> {
        if !status.is_open() {
            return Ok(());
        }
        let key = || (status.as_u8(), backend.to_owned(), id);
        // While no removal waits, there is no key to build.
        let was_waiting = !self.unindexed.is_empty() && self.unindexed.remove(&key());
        let was_present = self
            .tables
            .by_status()?
            .insert((status.as_u8(), backend, id), ())?
            .is_some();
        if !was_present || was_waiting {
            self.undo.push(Undo::Indexed {
                key: key(),
                was_present,
                was_waiting,
            });
        }
        Ok(())
    }

    /// Asks for the key's removal when the batch ends.
    fn unindex_status(&mut self, status: Status, backend: &str, id: MessageId) {
        if !status.is_open() {
            return;
        }
        let key = (status.as_u8(), backend.to_owned(), id);
        if self.unindexed.insert(key.clone()) {
            self.undo.push(Undo::Unindexed { key });
        }
    }

    /// Removes the waiting `by_status` keys: a key alone with a plain
    /// remove, a run of close ids of one status and backend in one pass
    /// (`retain_in`, which rebuilds each leaf once rather than once per
    /// key).
    fn drop_unindexed(&mut self) -> Result<(), StorageError> {
        let waiting = std::mem::take(&mut self.unindexed);
        let mut run: Vec<MessageId> = Vec::new();
        let mut run_of: Option<(u8, String)> = None;
        for (status, backend, id) in waiting {
            let joins = run_of
                .as_ref()
                .is_some_and(|(s, b)| *s == status && *b == backend)
                && run.last().is_some_and(|last| id - last <= MAX_RUN_GAP);
            if !joins {
                if let Some((s, b)) = run_of.take() {
                    self.remove_run(s, &b, &run)?;
                }
                run.clear();
                run_of = Some((status, backend));
            }
            run.push(id);
        }
        if let Some((s, b)) = run_of {
            self.remove_run(s, &b, &run)?;
        }
        Ok(())
    }

    /// Removes (status, backend, id) for every id of `ids` (ascending).
    fn remove_run(
        &mut self,
        status: u8,
        backend: &str,
        ids: &[MessageId],
    ) -> Result<(), StorageError> {
        match ids {
            [] => {}
            [id] => {
                self.tables.by_status()?.remove((status, backend, *id))?;
            }
            [first, .., last] => {
                self.tables.by_status()?.retain_in(
                    (status, backend, *first)..=(status, backend, *last),
                    |(_, _, id), ()| ids.binary_search(&id).is_err(),
                )?;
            }
        }
        Ok(())
    }

    /// Points `key` at message `id`, in `mo_recent`; refused if another
    /// message has it.
    fn claim_mo_key(&mut self, index: usize, key: MoKey, id: MessageId) -> Result<(), Stop> {
        match self.mo_owner(&key)? {
            Some(owner) if owner == id => Ok(()),
            Some(owner) => Err(Rejection::UuidTaken {
                op: index,
                uuid: uuid_text(&key.uuid),
                id,
                owner,
            }
            .into()),
            None => {
                let old = self
                    .tables
                    .mo_recent()?
                    .insert(id, (key.time, &key.uuid))?
                    .map(|g| mo_key(g.value()));
                self.undo.push(Undo::Recent { id, old });
                let old = self.mos.added.insert(key, id);
                self.undo.push(Undo::Added { key, old });
                Ok(())
            }
        }
    }

    /// Drops `key` if it still points at message `id`, wherever it is.
    fn release_mo_key(&mut self, key: MoKey, id: MessageId) -> Result<(), Stop> {
        if self.mos.added.get(&key) == Some(&id) {
            self.mos.added.remove(&key);
            self.undo.push(Undo::Added { key, old: Some(id) });
            return self.forget_recent(id);
        }
        if self.recent.get(&key) == Some(&id) {
            if self.mos.released.insert(key) {
                self.undo.push(Undo::Released { key });
                self.forget_recent(id)?;
            }
            return Ok(());
        }
        let owner = self
            .tables
            .mo_keys()?
            .get((key.time, &key.uuid))?
            .map(|g| g.value());
        if owner == Some(id) {
            self.tables.mo_keys()?.remove((key.time, &key.uuid))?;
            self.undo.push(Undo::MoKey { key, old: owner });
        }
        Ok(())
    }

    /// Removes message `id`'s entry from `mo_recent`.
    fn forget_recent(&mut self, id: MessageId) -> Result<(), Stop> {
        let old = self
            .tables
            .mo_recent()?
            .remove(id)?
            .map(|g| mo_key(g.value()));
        if old.is_some() {
            self.undo.push(Undo::Recent { id, old });
        }
        Ok(())
    }

    fn remember_connection(
        &mut self,
        index: usize,
        connection: &Connection,
        seen: i64,
    ) -> Result<(), Stop> {
        let key = (connection.backend.as_str(), connection.identity.as_str());
        if self.tables.connections()?.get(key)?.is_some() {
            return Ok(());
        }
        self.encode(index, &(connection.address.as_str(), seen))?;
        self.tables
            .connections()?
            .insert(key, self.scratch.as_slice())?;
        self.undo.push(Undo::Connection {
            backend: connection.backend.clone(),
            identity: connection.identity.clone(),
        });
        Ok(())
    }

    /// Puts back every entry the current unit changed, newest first.
    fn rollback(&mut self) -> Result<(), StorageError> {
        let t = &mut self.tables;
        let unindexed = &mut self.unindexed;
        let mos = &mut self.mos;
        while let Some(entry) = self.undo.pop() {
            match entry {
                Undo::Message {
                    id,
                    old: Some(bytes),
                } => {
                    t.messages()?.insert(id, bytes.as_slice())?;
                }
                Undo::Message { id, old: None } => {
                    t.messages()?.remove(id)?;
                }
                Undo::MoKey {
                    key,
                    old: Some(owner),
                } => {
                    t.mo_keys()?.insert((key.time, &key.uuid), owner)?;
                }
                Undo::MoKey { key, old: None } => {
                    t.mo_keys()?.remove((key.time, &key.uuid))?;
                }
                Undo::Recent { id, old: Some(key) } => {
                    t.mo_recent()?.insert(id, (key.time, &key.uuid))?;
                }
                Undo::Recent { id, old: None } => {
                    t.mo_recent()?.remove(id)?;
                }
                Undo::Added { key, old: Some(id) } => {
                    mos.added.insert(key, id);
                }
                Undo::Added { key, old: None } => {
                    mos.added.remove(&key);
                }
                Undo::Released { key } => {
                    mos.released.remove(&key);
                }
                Undo::Indexed {
                    key,
                    was_present,
                    was_waiting,
                } => {
                    if !was_present {
                        t.by_status()?.remove((key.0, key.1.as_str(), key.2))?;
                    }
                    if was_waiting {
                        unindexed.insert(key);
                    }
                }
                Undo::Unindexed { key } => {
                    unindexed.remove(&key);
                }
                Undo::Connection { backend, identity } => {
                    t.connections()?
                        .remove((backend.as_str(), identity.as_str()))?;
                }
                Undo::OptOut {
                    identity,
                    old: Some(at),
                } => {
                    t.optouts()?.insert(identity.as_str(), at)?;
                }
                Undo::OptOut {
                    identity,
                    old: None,
                } => {
                    t.optouts()?.remove(identity.as_str())?;
                }
                Undo::DeliveryError { id, seq } => {
                    t.delivery_errors()?.remove((id, seq))?;
                }
                Undo::Dlr { id, seq } => {
                    t.dlr_events()?.remove((id, seq))?;
                }
                Undo::Callback {
                    due,
                    id,
                    old: Some(bytes),
                } => {
                    t.callbacks()?.insert((due, &id), bytes.as_slice())?;
                }
                Undo::Callback { due, id, old: None } => {
                    t.callbacks()?.remove((due, &id))?;
                }
            }
        }
        Ok(())
    }
}

/// An `mo_recent` value as a key.
fn mo_key((time, uuid): (i64, &[u8; 16])) -> MoKey {
    MoKey { time, uuid: *uuid }
}

pub(crate) fn apply_update(message: &mut Message, update: &Update) {
    message.updated = update.at;
    if let Some(status) = update.status {
        // A delivery report can overtake the bearerbox's ack of its MT
        // (seen with Kannel 1.4.5): "sent" never replaces what a report
        // already settled. The sent time is still recorded.
        let overtaken =
            status == Status::Sent && matches!(message.status, Status::Delivered | Status::Failed);
        if !overtaken {
            message.status = status;
        }
    }
    if let Some(sent) = update.sent {
        message.sent = Some(sent);
    }
    if let Some(delivered) = update.delivered {
        message.delivered = Some(delivered);
    }
    if let Some(attempts) = update.attempts {
        message.attempts = attempts;
    }
    if let Some(retry_after) = update.retry_after {
        message.retry_after = retry_after;
    }
    if let Some(external_id) = &update.external_id {
        message.external_id = Some(external_id.clone());
    }
    if let Some(foreign_id) = &update.foreign_id {
        let kannel = message
            .kannel
            .get_or_insert_with(|| crate::model::KannelInfo {
                coding: -1,
                dlr_mask: -1,
                ..Default::default()
            });
        kannel.foreign_id = Some(foreign_id.clone());
    }
}
