//! A checkpoint in the background: what the writer holds while redb makes
//! its file durable on another thread, so that acks do not wait for it.
//!
//! A durable redb commit costs tens of milliseconds (an fsync of every
//! page dirtied since the last one), and redb takes one write transaction
//! at a time, so while it runs nothing can be applied. The writer
//! (`writer.rs`) therefore commits what it has applied without
//! durability, starts appending to the journal's other file
//! (`journal.rs`), and hands an empty transaction set to commit durably
//! to a thread of its own: that commit makes every earlier one durable.
//! Meanwhile groups are still journaled and acked; their outcomes are
//! foreseen here, from a read snapshot of the state the checkpoint makes
//! durable and what the groups acked since add to it, and the groups are
//! kept ([`Held`]) to be applied once the durable commit returns.
//!
//! Foreseeing must give the very answer applying will: a unit refused
//! here is never journaled, and one answered `Applied` must apply. It
//! follows `apply.rs` op by op, and gives up (the writer then waits for
//! the checkpoint and applies the group as usual) on the one case whose
//! outcome depends on more than whether messages and MO keys exist: a
//! put that replaces a stored message (its old MO key is released, its
//! old value decoded). Callers put new messages under fresh ids
//! ([`Store::allocate_id`](super::Store::allocate_id)), so that is rare.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, WriteTransaction};
use tokio::sync::oneshot;

use super::codec::{self, encode_into};
use super::error::{uuid_text, Rejection, StoreError};
use super::schema::{MESSAGES, MO_KEYS};
use super::unit::{Op, Outcome, Unit};
use super::RecentMoKeys;
use crate::model::{MessageId, MoKey};

/// A group acked during a checkpoint: its journal record's sequence and
/// the units applied in it (duplicates and refusals changed nothing).
pub(crate) struct Held {
    pub(crate) seq: u64,
    pub(crate) units: Vec<Unit>,
    pub(crate) bytes: usize,
}

/// A durable commit under way on its own thread, and what the writer
/// keeps meanwhile.
pub(crate) struct Checkpoint {
    /// Answered by the committing thread.
    pub(crate) done: oneshot::Receiver<Result<(), StoreError>>,
    pub(crate) started: Instant,
    /// The journal file the checkpoint makes redundant: deleted once it
    /// is durable.
    pub(crate) old_journal: PathBuf,
    pub(crate) foresight: Foresight,
    /// Groups acked since it began, oldest first.
    pub(crate) held: Vec<Held>,
    pub(crate) held_units: usize,
    pub(crate) held_bytes: usize,
}

impl Checkpoint {
    /// Commits `txn` durably on a new thread. `snapshot` is a read of the
    /// state it makes durable.
    pub(crate) fn start(
        mut txn: WriteTransaction,
        snapshot: ReadTransaction,
        old_journal: PathBuf,
    ) -> Result<Checkpoint, StoreError> {
        let read = |e: redb::TableError| StoreError::storage("reading for a checkpoint")(e.into());
        let foresight = Foresight {
            messages: snapshot.open_table(MESSAGES).map_err(read)?,
            mo_keys: snapshot.open_table(MO_KEYS).map_err(read)?,
            keys: HashMap::new(),
            ids: HashSet::new(),
        };
        txn.set_durability(redb::Durability::Immediate)
            .map_err(|e| StoreError::storage("setting durability")(e.into()))?;
        let (answer, done) = oneshot::channel();
        std::thread::Builder::new()
            .name("store-checkpoint".into())
            .spawn(move || {
                let committed = txn
                    .commit()
                    .map_err(|e| StoreError::storage("checkpointing")(e.into()));
                // A writer that is gone has nothing to learn.
                let _ = answer.send(committed);
            })
            .map_err(|e| StoreError::storage("starting a checkpoint")(redb::Error::Io(e)))?;
        Ok(Checkpoint {
            done,
            started: Instant::now(),
            old_journal,
            foresight,
            held: Vec::new(),
            held_units: 0,
            held_bytes: 0,
        })
    }

    /// Waits for the durable commit (the writer has nothing else to do).
    pub(crate) fn wait(&mut self) -> Result<(), StoreError> {
        let done = std::mem::replace(&mut self.done, oneshot::channel().1);
        done.blocking_recv().unwrap_or_else(|_| Err(thread_gone()))
    }
}

/// The answer when the committing thread ended without one.
pub(crate) fn thread_gone() -> StoreError {
    StoreError::storage("checkpointing")(redb::Error::Io(std::io::Error::other(
        "the checkpoint thread panicked",
    )))
}

/// What units acked during a checkpoint add to the state it makes
/// durable: enough to answer the next ones exactly as applying would.
pub(crate) struct Foresight {
    /// Tables of a read snapshot of the state the checkpoint makes
    /// durable (each holds the snapshot).
    messages: ReadOnlyTable<u64, &'static [u8]>,
    mo_keys: ReadOnlyTable<(i64, &'static [u8; 16]), u64>,
    /// MO keys claimed.
    pub(crate) keys: HashMap<MoKey, MessageId>,
    /// Messages put.
    ids: HashSet<MessageId>,
}

/// A snapshot read failed: the writer waits for the checkpoint and lets
/// applying meet the error.
struct Unsure;

impl From<redb::StorageError> for Unsure {
    fn from(_: redb::StorageError) -> Unsure {
        Unsure
    }
}

impl Foresight {
    /// `unit`'s answer as applying it after the units foreseen so far
    /// would give it, recording what it adds when `Applied`; `None` if
    /// only applying can tell. `recent` is the writer's copy of
    /// `mo_recent` as the snapshot has it.
    pub(crate) fn foresee(
        &mut self,
        unit: &Unit,
        recent: &RecentMoKeys,
        next_id: &AtomicU64,
        scratch: &mut Vec<u8>,
        added: &mut RecentMoKeys,
    ) -> Option<Result<Outcome, StoreError>> {
        self.try_foresee(unit, recent, next_id, scratch, added).ok()
    }

    fn try_foresee(
        &mut self,
        unit: &Unit,
        recent: &RecentMoKeys,
        next_id: &AtomicU64,
        scratch: &mut Vec<u8>,
        added: &mut RecentMoKeys,
    ) -> Result<Result<Outcome, StoreError>, Unsure> {
        if let Some(key) = &unit.unless_mo_known {
            if let Some(owner) = self.mo_owner(key, recent, &HashMap::new())? {
                return Ok(Ok(Outcome::Duplicate(owner)));
            }
        }
        // This unit's own additions, kept apart until it is known to apply.
        let mut keys: HashMap<MoKey, MessageId> = HashMap::new();
        let mut ids: HashSet<MessageId> = HashSet::new();
        for (index, op) in unit.ops.iter().enumerate() {
            let refused = |r: Rejection| Ok(Err(StoreError::Rejected(r)));
            match op {
                Op::Put(message) => {
                    let id = message.id;
                    if let Err(e) = encode_into(&**message, scratch) {
                        return refused(Rejection::Unencodable {
                            op: index,
                            reason: e.to_string(),
                        });
                    }
                    if ids.contains(&id) || self.stored(id)? {
                        // Replacing: its old value and key count.
                        return Err(Unsure);
                    }
                    if let Some(key) = MoKey::of(message) {
                        match self.mo_owner(&key, recent, &keys)? {
                            Some(owner) if owner != id => {
                                return refused(Rejection::UuidTaken {
                                    op: index,
                                    uuid: uuid_text(&key.uuid),
                                    id,
                                    owner,
                                });
                            }
                            Some(_) => {}
                            None => {
                                keys.insert(key, id);
                            }
                        }
                    }
                    ids.insert(id);
                }
                Op::Update(update) => {
                    let id = update.id;
                    if !ids.contains(&id) && !self.ids.contains(&id) {
                        // Applying decodes the stored value: so does this.
                        // It then re-encodes it changed, which postcard
                        // does not refuse for a value it just decoded
                        // (fields of fixed types, no maps of unknown
                        // length), so that step is not repeated here.
                        let Some(stored) = self.messages.get(id)? else {
                            return refused(Rejection::MissingMessage { op: index, id });
                        };
                        if let Err(e) = codec::decode_message(id, stored.value()) {
                            return Ok(Err(e));
                        }
                    }
                }
                Op::AddDeliveryError(error) => {
                    let encoded = encode_into(&codec::delivery_error_value(error), scratch);
                    if let Some(r) = self.child(&ids, error.message_id, encoded, index)? {
                        return refused(r);
                    }
                }
                Op::AddDlr(event) => {
                    let encoded = encode_into(&codec::dlr_value(event), scratch);
                    if let Some(r) = self.child(&ids, event.message_id, encoded, index)? {
                        return refused(r);
                    }
                }
                Op::OweCallback(callback) => {
                    let encoded = encode_into(&codec::callback_value(callback), scratch);
                    if let Some(r) = self.child(&ids, callback.message_id, encoded, index)? {
                        return refused(r);
                    }
                }
                Op::OptOut { .. } | Op::OptIn { .. } | Op::ForgetCallback { .. } => {}
            }
        }
        for id in &ids {
            // As applying moves the allocator past a put's id.
            next_id.fetch_max(id.saturating_add(1), Ordering::Relaxed);
        }
        added.extend(keys.iter().map(|(k, id)| (*k, *id)));
        self.keys.extend(keys);
        self.ids.extend(ids);
        Ok(Ok(Outcome::Applied))
    }

    /// Whether message `id` is stored (or put by an earlier foreseen unit).
    /// Why applying would refuse a record that belongs to message `id` (a
    /// delivery error, a report, a callback owed): the message is neither
    /// stored nor put in this group (`ids`), or the record's value did not
    /// encode; in that order, as `apply.rs` checks them.
    fn child(
        &self,
        ids: &HashSet<MessageId>,
        id: MessageId,
        encoded: Result<(), postcard::Error>,
        op: usize,
    ) -> Result<Option<Rejection>, Unsure> {
        if !ids.contains(&id) && !self.stored(id)? {
            return Ok(Some(Rejection::MissingMessage { op, id }));
        }
        Ok(encoded.err().map(|e| Rejection::Unencodable {
            op,
            reason: e.to_string(),
        }))
    }

    fn stored(&self, id: MessageId) -> Result<bool, Unsure> {
        if self.ids.contains(&id) {
            return Ok(true);
        }
        Ok(self.messages.get(id)?.is_some())
    }

    /// The message with MO key `key`: claimed by this unit (`unit`), by
    /// a unit foreseen before, in `mo_recent`, or in `mo_keys`.
    fn mo_owner(
        &self,
        key: &MoKey,
        recent: &RecentMoKeys,
        unit: &HashMap<MoKey, MessageId>,
    ) -> Result<Option<MessageId>, Unsure> {
        if let Some(id) = unit.get(key).or_else(|| self.keys.get(key)) {
            return Ok(Some(*id));
        }
        if let Some(id) = recent.get(key) {
            return Ok(Some(*id));
        }
        Ok(self.mo_keys.get((key.time, &key.uuid))?.map(|g| g.value()))
    }
}

/// A read snapshot of `db`, for [`Checkpoint::start`].
pub(crate) fn snapshot(db: &redb::Database) -> Result<ReadTransaction, StoreError> {
    db.begin_read()
        .map_err(|e| StoreError::storage("reading for a checkpoint")(e.into()))
}
