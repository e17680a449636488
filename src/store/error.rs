//! What can go wrong in the store, typed so callers can act on it: a
//! storage failure is transient (ack Kannel `failed_tmp`, retry later); a
//! rejected unit or a corrupt entry is not.
//!
//! Errors are `Clone` because one failed commit answers every caller whose
//! unit was in the transaction.

use std::path::PathBuf;
use std::sync::Arc;

use crate::model::MessageId;

/// An error from the store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The file or its directory could not be created or opened.
    #[error("cannot open the store at {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },

    /// The file exists but is not a rapidbox store (not a redb database, a
    /// damaged one, or one with other tables).
    #[error("{path} is not a usable rapidbox store: {reason}")]
    NotAStore { path: PathBuf, reason: String },

    /// Another process, or another [`Store`](super::Store) in this one, has
    /// the file open.
    #[error("{path} is already open (another rapidbox, or another Store in this process)")]
    AlreadyOpen { path: PathBuf },

    /// The file was written with another schema version.
    #[error("{path} has schema version {found}; this rapidbox reads version {expected}")]
    SchemaMismatch {
        path: PathBuf,
        found: u64,
        expected: u64,
    },

    /// redb failed: I/O, a full disk, a failed commit. When a commit fails
    /// nothing of the units in it is durable.
    #[error("storage failed while {during}: {source}")]
    Storage {
        during: &'static str,
        #[source]
        source: Arc<redb::Error>,
    },

    /// PostgreSQL could not be reached or a statement failed: a refused or
    /// lost connection, a timeout, the server shutting down (the PostgreSQL
    /// store, `pg/`). Nothing of the units in the failed group was
    /// committed, unless the connection broke while its COMMIT was under
    /// way: then an MO may be stored, and its redelivery is a duplicate.
    #[error("PostgreSQL failed while {during}: {reason}")]
    Database {
        during: &'static str,
        reason: String,
    },

    /// A stored entry could not be decoded.
    #[error("corrupt entry {key} in table {table}: {reason}")]
    Corrupt {
        table: &'static str,
        key: String,
        reason: String,
    },

    /// The unit was refused; nothing of it was applied.
    #[error("unit refused: {0}")]
    Rejected(#[from] Rejection),

    /// The store was closed (or its writer stopped); nothing was applied.
    #[error("the store is closed")]
    Closed,

    /// A storage failure closed the file; the writer reopens it when the
    /// next unit comes (with a growing pause between tries). Nothing was
    /// applied or read.
    #[error("the store is reopening its file after a storage failure")]
    Recovering,

    /// Messages were asked for by a status the store does not index (only
    /// open statuses are; see `Status::is_open`).
    #[error("messages in status {status} are not indexed by status")]
    NotIndexed { status: char },

    /// `[store] backend` names a backend this build of rapidbox does not
    /// have.
    #[error(
        "the {backend} store backend is not built in this version of rapidbox (store.backend)"
    )]
    NotBuilt { backend: &'static str },

    /// The operation exists for another backend only (backup, verify and
    /// compact are the redb file's).
    #[error("{operation} applies to the redb store only; this store is {backend}")]
    Unsupported {
        operation: &'static str,
        backend: &'static str,
    },
}

impl StoreError {
    /// Whether trying again later may succeed: true for storage failures
    /// and a closed store, false for refused units and corrupt entries.
    /// A transient error on an MO means: ack `failed_tmp` so the bearerbox
    /// keeps it.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            StoreError::Storage { .. }
                | StoreError::Database { .. }
                | StoreError::Closed
                | StoreError::Recovering
        )
    }

    /// Wraps a redb error with what the store was doing.
    pub(crate) fn storage(during: &'static str) -> impl FnOnce(redb::Error) -> StoreError {
        move |source| StoreError::Storage {
            during,
            source: Arc::new(source),
        }
    }
}

/// Why a unit was refused. The op index counts from 0 in the unit's ops.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// An op names a message that is not stored (nor put earlier in the
    /// unit or batch).
    #[error("op {op}: there is no message {id}")]
    MissingMessage { op: usize, id: MessageId },

    /// A put gives a message a Kannel UUID that another message has.
    #[error("op {op}: Kannel UUID {uuid} belongs to message {owner}, not {id}")]
    UuidTaken {
        op: usize,
        uuid: String,
        id: MessageId,
        owner: MessageId,
    },

    /// The unit has more ops than one transaction should carry.
    #[error("the unit has {ops} ops; the limit is {max}")]
    TooManyOps { ops: usize, max: usize },

    /// A value could not be encoded.
    #[error("op {op}: cannot encode: {reason}")]
    Unencodable { op: usize, reason: String },
}

/// A UUID as Kannel prints it, for errors and logs.
pub(crate) fn uuid_text(uuid: &[u8; 16]) -> String {
    uuid::Uuid::from_bytes(*uuid).hyphenated().to_string()
}
