//! The on-disk schema: every table rapidbox keeps, with its key and value
//! types, in one place.
//!
//! Values that are structs are postcard-encoded (see `codec.rs`);
//! postcard is not self-describing, so changing a stored type (a field of
//! [`Message`](crate::model::Message), say) changes the file format and must
//! bump [`SCHEMA_VERSION`]. The `encodings_are_pinned` test fails when that
//! is forgotten.
//!
//! A new table is also copied by backups (`backup.rs`, which a test checks)
//! and, if its entries belong to messages, purged with them (`purge.rs`).

use redb::TableDefinition;

/// The version of this schema, kept in [`META`] under
/// [`META_SCHEMA_VERSION`]. A store with another version is refused.
pub const SCHEMA_VERSION: u64 = 6;

/// The oldest version a store is upgraded from in place when opened: 4
/// lacked [`MO_RECENT`] (created then), and 4 and 5 stored the sendsms MT
/// options without `compress` (those messages are rewritten, see
/// `legacy.rs`).
pub const UPGRADABLE_FROM: u64 = 4;

/// Every message, by id. Value: a postcard-encoded `Message`.
///
/// Ids grow, so new messages append at the right edge of the tree and the
/// highest key is the recovery point for the next id.
pub const MESSAGES: TableDefinition<u64, &[u8]> = TableDefinition::new("messages");

/// [`MoKey`](crate::model::MoKey) (Kannel `time`, Kannel UUID) -> message
/// id, for MOs: how a redelivered MO is spotted.
///
/// The time comes first so that new MOs land in the newest part of the
/// index instead of anywhere in it: with 60,000 MOs through boxload, keying
/// by the UUID alone cost rapidbox 72 µs of CPU per MO, without the index
/// 46 µs (see `MoKey`). Within a second the UUIDs still scatter them, so a
/// new MO's key goes to [`MO_RECENT`] first and comes here sorted, with
/// many others; the two tables never share a key.
///
/// Only incoming messages are indexed. An MT's UUID is matched to its ack
/// in memory, and its delivery reports carry the message id in `dlr_url`,
/// so indexing MT UUIDs would cost a write per reply for nothing.
///
/// `&[u8; 16]` is stored exactly as `[u8; 16]` but reads without copying.
pub const MO_KEYS: TableDefinition<(i64, &[u8; 16]), u64> = TableDefinition::new("mo_keys");

/// Message id -> (Kannel `time`, Kannel UUID): the MOs whose keys are not
/// in [`MO_KEYS`] yet. The writer keeps the same entries in memory, keyed
/// the other way round, for lookups, and reloads them from here on open.
///
/// Within a second Kannel's UUIDs are random, so inserting each MO's key
/// into `MO_KEYS` dirtied a page of it per MO: through boxload, three
/// quarters of the bytes written to disk (5.4 KB per MO, 2.3 KB without).
/// Keyed by message id, new entries append at the right edge instead, and
/// the move to `MO_KEYS` (once `StoreOptions::mo_keys_every` have gathered,
/// the oldest in sorted chunks) writes a page of it for many keys.
pub const MO_RECENT: TableDefinition<u64, (i64, &[u8; 16])> = TableDefinition::new("mo_recent");

/// (status code, backend, id) for every message in an *open* status
/// ([`Status::is_open`](crate::model::Status::is_open): R, P, L, Q, I, E):
/// what the dispatcher scans for queued or errored messages per backend,
/// and what the HTTP outbox lists. Within a status and backend the keys are
/// in id order. Messages in final statuses are not indexed: nothing looks
/// for them by status, and leaving them out halves the index writes of the
/// hot path (an MO stored handled, a reply going from Q to S).
pub const BY_STATUS: TableDefinition<(u8, &str, u64), ()> = TableDefinition::new("by_status");

/// (backend, identity) -> postcard `(raw address, first seen)`: every
/// connection a message was stored for, inserted the first time it is seen
/// and never rewritten.
pub const CONNECTIONS: TableDefinition<(&str, &str), &[u8]> = TableDefinition::new("connections");

/// Normalized identity -> when it last opted out. Opting in removes it.
pub const OPTOUTS: TableDefinition<&str, i64> = TableDefinition::new("optouts");

/// (message id, event sequence) -> postcard `(time, log)`: failed send
/// attempts, in the order they happened.
pub const DELIVERY_ERRORS: TableDefinition<(u64, u64), &[u8]> =
    TableDefinition::new("delivery_errors");

/// (message id, event sequence) -> postcard `(time, mask, text)`: delivery
/// reports, in the order they arrived.
pub const DLR_EVENTS: TableDefinition<(u64, u64), &[u8]> = TableDefinition::new("dlr_events");

/// (due time, callback id) -> postcard `(message id, url, attempts)`:
/// calls owed to sendsms callers' `dlr-url`s
/// ([`PendingCallback`](crate::model::PendingCallback)), soonest first.
/// Usually near empty: a call is removed once made.
pub const CALLBACKS: TableDefinition<(i64, &[u8; 16]), &[u8]> =
    TableDefinition::new("dlr_callbacks");

/// (direction code, status code) -> number of messages, kept exact by the
/// writer so statistics never scan.
pub const COUNTS: TableDefinition<(u8, u8), u64> = TableDefinition::new("counts");

/// Named numbers: the schema version and the next event sequence.
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// [`META`] key of the schema version.
pub const META_SCHEMA_VERSION: &str = "schema_version";

/// [`META`] key of the highest message id ever purged: the next id is
/// above it even when purging took the newest messages, so an id is
/// never given twice (a late delivery report names its MT by id). Older
/// rapidbox versions ignore it.
pub const META_PURGED_UP_TO: &str = "purged_up_to";

/// [`META`] key of the next sequence number for [`DELIVERY_ERRORS`] and
/// [`DLR_EVENTS`] (one counter for both).
pub const META_NEXT_EVENT_SEQ: &str = "next_event_seq";

/// [`META`] key of the last journal record this file holds (see
/// `journal.rs`): on open, only the records after it are replayed. Absent
/// in a store never written with the journal on (read as 0).
pub const META_JOURNAL_SEQ: &str = "journal_seq";
