//! Reads: each runs in its own redb read transaction, a consistent snapshot
//! of the last commit, and sees every unit answered before it started.
//!
//! With the journal, a unit is answered once journaled, before redb
//! commits it (`writer.rs`). So scans open their snapshot through
//! [`RedbStore::fence`]: at once when redb holds every answered unit, else
//! after having the writer commit them (well under a millisecond, but a
//! redb commit; during a checkpoint, once its durable commit has
//! returned, tens of milliseconds, see `writer.rs`). The point lookups
//! the MO path makes do not wait: the MO key lookup
//! ([`RedbStore::message_id_by_mo`], once per MO) finds the keys of answered
//! units in memory; [`RedbStore::opted_out_since`] finds what answered units
//! left for an identity in memory (`unapplied.rs`), and [`RedbStore::message`]
//! reads the last commit unless an answered unit not yet in it touched
//! that message (then it fences). The readers and their
//! callers, all of which therefore see every acked unit: the HTTP API
//! (`/router/outbox`, `/router/delivered`, monitoring, counts), the
//! console, delivery reports ([`RedbStore::message`] in the link), the
//! outbox and deferred-routing sweeps ([`RedbStore::messages_by_status`]),
//! the `dlr-url` worker ([`RedbStore::owed_callbacks`]), the opt-out app
//! ([`RedbStore::opted_out_since`]), retention ([`RedbStore::counts`]) and backups.
//!
//! These reads are synchronous; [`Store`](super::Store)'s `async` reads
//! call them inline. Point lookups (a message, a UUID, an opt-out, a
//! connection, the counts, which are at most 22 entries) are cheap enough
//! for that. Scans ([`RedbStore::messages_by_status`],
//! [`RedbStore::recent_messages`]) read up to their limit, and a page can
//! be cold on disk: callers run long ones through
//! [`Store::long_read`](super::Store::long_read), which puts them on a
//! blocking thread.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Bound;
use std::sync::atomic::Ordering;
use std::sync::{Arc, PoisonError};

use redb::{ReadOnlyTable, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition};

use crate::model::{
    Connection, DeliveryError, Direction, DlrEvent, Message, MessageId, Micros, MoKey,
    PendingCallback, Status,
};

use super::codec;
use super::error::StoreError;
use super::schema::*;
use super::unapplied::Unapplied;
use super::RedbStore;

/// The most entries one scan returns, whatever limit it is given.
pub const MAX_SCAN: usize = 10_000;

/// A connection as first recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredConnection {
    pub connection: Connection,
    /// When a message was first stored for it (that message's `date`).
    pub first_seen: Micros,
}

type MoKeysTable = ReadOnlyTable<(i64, &'static [u8; 16]), u64>;

/// A snapshot of [`MO_KEYS`] shared by MO lookups, tagged with the number of
/// commits when it was opened.
///
/// Opening a read transaction and its table costs more than the lookup
/// itself (about a tenth of rapidbox's CPU per MO through boxload), and
/// every MO is looked up before it is routed. Sharing one snapshot until
/// the next commit answers exactly as a fresh one would: the tag is
/// checked on every lookup, and the writer drops the view after each
/// commit, so a view never outlives the commit after it (an old snapshot
/// would keep redb from reusing the pages freed since, and keep the file
/// open while the writer needs to reopen it).
pub(crate) struct MoKeysView {
    commit: u64,
    table: Arc<MoKeysTable>,
}

impl std::fmt::Debug for MoKeysView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MoKeysView")
            .field("commit", &self.commit)
            .finish_non_exhaustive()
    }
}

fn read_err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::storage("reading")(e.into())
}

impl RedbStore {
    /// A snapshot that holds every unit answered so far (see
    /// [`RedbStore::fence`]).
    pub(super) fn snapshot(&self) -> Result<ReadTransaction, StoreError> {
        self.fence()?;
        self.database()?.begin_read().map_err(read_err)
    }

    fn table<K: redb::Key + 'static, V: redb::Value + 'static>(
        &self,
        definition: TableDefinition<K, V>,
    ) -> Result<ReadOnlyTable<K, V>, StoreError> {
        self.snapshot()?.open_table(definition).map_err(read_err)
    }

    /// A snapshot that holds every unit answered so far as far as the
    /// point lookup at hand can tell: fenced only if `unapplied` says an
    /// acked unit that reads do not see yet touched what it looks up
    /// (`unapplied.rs`); else the last commit, which holds everything
    /// acked about it.
    fn snapshot_for(
        &self,
        unapplied: impl FnOnce(&Unapplied) -> bool,
    ) -> Result<ReadTransaction, StoreError> {
        let shared = &self.inner.shared;
        let all_visible =
            shared.visible.load(Ordering::Acquire) >= shared.acked.load(Ordering::Acquire);
        if !all_visible && unapplied(&shared.unapplied) {
            return self.snapshot();
        }
        self.database()?.begin_read().map_err(read_err)
    }

    /// The message with this id, if stored.
    ///
    /// Needs no redb commit of acked units unless one of them put or
    /// changed this message (`unapplied.rs`).
    pub fn message(&self, id: MessageId) -> Result<Option<Message>, StoreError> {
        let messages = self
            .snapshot_for(|unapplied| unapplied.touches_message(id))?
            .open_table(MESSAGES)
            .map_err(read_err)?;
        let found = messages.get(id).map_err(read_err)?;
        found
            .map(|g| codec::decode_message(id, g.value()))
            .transpose()
    }

    /// The id of the MO with this key, if stored. (MTs are not indexed;
    /// see [`MO_KEYS`].)
    ///
    /// Called for every MO: a new MO's key is in memory (the writer's copy
    /// of [`MO_RECENT`]), an older one in [`MO_KEYS`], where lookups share
    /// one snapshot until the next commit (`MoKeysView`) instead of each
    /// opening its own. Memory is looked at first: the writer drops keys
    /// from it only after the commit that moved them to `mo_keys` has
    /// moved the commit count, which `mo_keys_view` reads after.
    pub fn message_id_by_mo(&self, key: &MoKey) -> Result<Option<MessageId>, StoreError> {
        if let Some(id) = self.inner.shared.recent_mos().get(key) {
            return Ok(Some(*id));
        }
        let mo_keys = self.mo_keys_view()?;
        let found = mo_keys.get((key.time, &key.uuid)).map_err(read_err)?;
        let Some(found) = found.map(|g| g.value()) else {
            // Every key an acked unit added is in memory, and a key moved
            // to `mo_keys` leaves memory only once that move is committed:
            // a miss here is a miss.
            return Ok(None);
        };
        let shared = &self.inner.shared;
        if shared.visible.load(Ordering::Acquire) >= shared.acked.load(Ordering::Acquire) {
            return Ok(Some(found));
        }
        // An acked unit not yet committed may have taken this old key
        // from its message (a put that changes an MO's key): look again
        // once it is committed. Only redeliveries of old MOs come here.
        let fresh = self.table(MO_KEYS)?;
        let found = fresh.get((key.time, &key.uuid)).map_err(read_err)?;
        Ok(found.map(|g| g.value()))
    }

    /// The shared `mo_keys` snapshot if it is still of the last commit,
    /// else a new one, shared from now on.
    fn mo_keys_view(&self) -> Result<Arc<MoKeysTable>, StoreError> {
        let shared = &self.inner.shared;
        // Acquire pairs with the writer's Release: a snapshot opened after
        // reading `commit` holds at least that commit.
        let commit = shared.redb_commits.load(Ordering::Acquire);
        let mut view = shared
            .mo_keys_view
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(current) = view.as_ref().filter(|v| v.commit == commit) {
            return Ok(current.table.clone());
        }
        // Not fenced: what a lookup needs of acked units is in memory.
        let snapshot = self.database()?.begin_read().map_err(read_err)?;
        let table = Arc::new(snapshot.open_table(MO_KEYS).map_err(read_err)?);
        *view = Some(MoKeysView {
            commit,
            table: table.clone(),
        });
        Ok(table)
    }

    /// Messages in `status`, in id order, with ids above `after_id`; from
    /// one backend, or from all when `backend` is `None`. At most `limit`
    /// (and [`MAX_SCAN`]). Page on by passing the last id seen as
    /// `after_id`.
    ///
    /// Only open statuses ([`Status::is_open`]) are indexed; asking for
    /// another is [`StoreError::NotIndexed`].
    pub fn messages_by_status(
        &self,
        status: Status,
        backend: Option<&str>,
        after_id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        if !status.is_open() {
            return Err(StoreError::NotIndexed {
                status: status.code(),
            });
        }
        let limit = limit.min(MAX_SCAN);
        let txn = self.snapshot()?;
        let index = txn.open_table(BY_STATUS).map_err(read_err)?;
        let messages = txn.open_table(MESSAGES).map_err(read_err)?;
        let first = match after_id {
            Some(id) if id == MessageId::MAX => return Ok(Vec::new()),
            Some(id) => id + 1,
            None => 0,
        };
        let code = status.as_u8();
        let backends = match backend {
            Some(b) => vec![b.to_owned()],
            None => backends_in(&index, code)?,
        };
        // Each backend's keys are in id order; merge them by id.
        let mut ranges = Vec::with_capacity(backends.len());
        for b in &backends {
            let range = index
                .range((code, b.as_str(), first)..=(code, b.as_str(), MessageId::MAX))
                .map_err(read_err)?;
            ranges.push(range.map(|entry| entry.map(|(k, _)| k.value().2)));
        }
        let mut heads = BinaryHeap::with_capacity(ranges.len());
        for (i, range) in ranges.iter_mut().enumerate() {
            if let Some(id) = range.next().transpose().map_err(read_err)? {
                heads.push(Reverse((id, i)));
            }
        }
        let mut found = Vec::new();
        while found.len() < limit {
            let Some(Reverse((id, i))) = heads.pop() else {
                break;
            };
            let entry = messages.get(id).map_err(read_err)?;
            let Some(entry) = entry else {
                return Err(StoreError::Corrupt {
                    table: "by_status",
                    key: format!("({:?}, {:?}, {id})", status.code(), backends[i]),
                    reason: "no such message".to_owned(),
                });
            };
            found.push(codec::decode_message(id, entry.value())?);
            if let Some(next) = ranges[i].next().transpose().map_err(read_err)? {
                heads.push(Reverse((next, i)));
            }
        }
        Ok(found)
    }

    /// The backends that have messages in `status`, in name order, found
    /// by skipping from one backend's index keys to the next (one read per
    /// backend, not per message). Only open statuses are indexed, as for
    /// [`RedbStore::messages_by_status`].
    pub fn backends_with_status(&self, status: Status) -> Result<Vec<String>, StoreError> {
        if !status.is_open() {
            return Err(StoreError::NotIndexed {
                status: status.code(),
            });
        }
        let index = self.table(BY_STATUS)?;
        backends_in(&index, status.as_u8())
    }

    /// The newest messages first, with ids below `before_id` if given. At
    /// most `limit` (and [`MAX_SCAN`]).
    pub fn recent_messages(
        &self,
        before_id: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, StoreError> {
        let messages = self.table(MESSAGES)?;
        let upper = before_id.map_or(Bound::Unbounded, Bound::Excluded);
        let range = messages
            .range::<u64>((Bound::Unbounded, upper))
            .map_err(read_err)?;
        let mut found = Vec::new();
        for entry in range.rev().take(limit.min(MAX_SCAN)) {
            let (key, value) = entry.map_err(read_err)?;
            found.push(codec::decode_message(key.value(), value.value())?);
        }
        Ok(found)
    }

    /// When this normalized identity last opted out, if it has not opted
    /// back in.
    ///
    /// Needs no redb commit of acked units: what they left for an
    /// identity is in memory until reads see it (`unapplied.rs`).
    pub fn opted_out_since(&self, identity: &str) -> Result<Option<Micros>, StoreError> {
        let shared = &self.inner.shared;
        if shared.visible.load(Ordering::Acquire) < shared.acked.load(Ordering::Acquire) {
            if let Some(known) = shared.unapplied.optout(identity) {
                return Ok(known);
            }
        }
        // A miss above is settled: the snapshot holds what it missed.
        let optouts = self
            .snapshot_for(|_| false)?
            .open_table(OPTOUTS)
            .map_err(read_err)?;
        let found = optouts.get(identity).map_err(read_err)?;
        Ok(found.map(|g| g.value()))
    }

    /// A message's failed send attempts, oldest first (at most
    /// [`MAX_SCAN`]).
    pub fn delivery_errors(&self, id: MessageId) -> Result<Vec<DeliveryError>, StoreError> {
        let table = self.table(DELIVERY_ERRORS)?;
        let range = table.range((id, 0)..=(id, u64::MAX)).map_err(read_err)?;
        let mut found = Vec::new();
        for entry in range.take(MAX_SCAN) {
            let (key, value) = entry.map_err(read_err)?;
            let (id, seq) = key.value();
            found.push(codec::decode_delivery_error(id, seq, value.value())?);
        }
        Ok(found)
    }

    /// A message's delivery reports, in arrival order (at most
    /// [`MAX_SCAN`]).
    pub fn dlr_events(&self, id: MessageId) -> Result<Vec<DlrEvent>, StoreError> {
        let table = self.table(DLR_EVENTS)?;
        let range = table.range((id, 0)..=(id, u64::MAX)).map_err(read_err)?;
        let mut found = Vec::new();
        for entry in range.take(MAX_SCAN) {
            let (key, value) = entry.map_err(read_err)?;
            let (id, seq) = key.value();
            found.push(codec::decode_dlr(id, seq, value.value())?);
        }
        Ok(found)
    }

    /// The first `limit` calls owed to `dlr-url`s, soonest due first,
    /// whether due yet or not.
    pub fn owed_callbacks(&self, limit: usize) -> Result<Vec<PendingCallback>, StoreError> {
        let table = self.table(CALLBACKS)?;
        let mut found = Vec::new();
        for entry in table.iter().map_err(read_err)?.take(limit.min(MAX_SCAN)) {
            let (key, value) = entry.map_err(read_err)?;
            let (due, id) = key.value();
            found.push(codec::decode_callback(due, *id, value.value())?);
        }
        Ok(found)
    }

    /// How many messages there are per direction and status (only the
    /// non-zero ones), without scanning messages.
    pub fn counts(&self) -> Result<Vec<(Direction, Status, u64)>, StoreError> {
        let counts = self.table(COUNTS)?;
        let mut found = Vec::new();
        for entry in counts.iter().map_err(read_err)? {
            let (key, value) = entry.map_err(read_err)?;
            let (d, s) = key.value();
            let n = value.value();
            let decoded = codec::direction_from_code(d).zip(codec::status_from_code(s));
            let Some((direction, status)) = decoded else {
                return Err(StoreError::Corrupt {
                    table: "counts",
                    key: format!("({d}, {s})"),
                    reason: "unknown direction or status code".to_owned(),
                });
            };
            if n > 0 {
                found.push((direction, status, n));
            }
        }
        Ok(found)
    }

    /// The connection as first recorded, if any message was stored for it.
    pub fn connection(
        &self,
        backend: &str,
        identity: &str,
    ) -> Result<Option<StoredConnection>, StoreError> {
        let connections = self.table(CONNECTIONS)?;
        let found = connections.get((backend, identity)).map_err(read_err)?;
        let Some(found) = found else {
            return Ok(None);
        };
        let (address, first_seen) = codec::decode_connection(backend, identity, found.value())?;
        Ok(Some(StoredConnection {
            connection: Connection {
                backend: backend.to_owned(),
                identity: identity.to_owned(),
                address,
            },
            first_seen,
        }))
    }

    /// Every connection with this normalized identity, one per backend, in
    /// backend order: one read per backend that has connections, by
    /// skipping from each backend's keys to the next backend's (the console
    /// finds a reply's recipient this way).
    pub fn connections_with_identity(
        &self,
        identity: &str,
    ) -> Result<Vec<StoredConnection>, StoreError> {
        let connections = self.table(CONNECTIONS)?;
        let mut found = Vec::new();
        let mut after: Option<String> = None;
        loop {
            // `b\0` is the first name after `b`, so this is the first key
            // of the next backend.
            let start = after.as_ref().map(|b| format!("{b}\0")).unwrap_or_default();
            let next = connections
                .range::<(&str, &str)>((start.as_str(), "")..)
                .map_err(read_err)?
                .next()
                .transpose()
                .map_err(read_err)?;
            let Some((key, _)) = next else {
                return Ok(found);
            };
            let backend = key.value().0.to_owned();
            if let Some(c) = self.connection(&backend, identity)? {
                found.push(c);
            }
            after = Some(backend);
        }
    }
}

/// The backends that have messages in status `code`, found by skipping
/// from one backend's keys to the next rather than reading them all.
fn backends_in(
    index: &ReadOnlyTable<(u8, &'static str, u64), ()>,
    code: u8,
) -> Result<Vec<String>, StoreError> {
    let mut backends: Vec<String> = Vec::new();
    let end = Bound::Excluded((code.saturating_add(1), "", 0));
    loop {
        let start = match backends.last() {
            Some(b) => Bound::Excluded((code, b.as_str(), MessageId::MAX)),
            None => Bound::Included((code, "", 0)),
        };
        let next = index
            .range::<(u8, &str, u64)>((start, end))
            .map_err(read_err)?
            .next()
            .transpose()
            .map_err(read_err)?;
        let Some((key, _)) = next else {
            return Ok(backends);
        };
        let (found_code, backend, _) = key.value();
        if found_code != code {
            return Ok(backends);
        }
        backends.push(backend.to_owned());
    }
}
