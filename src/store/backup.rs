//! Backups, checks and compaction of a store file.
//!
//! [`Store::backup`] copies a live store: one redb read transaction is a
//! snapshot of the last commit, so every table is copied as of the same
//! moment while the writer goes on committing (it is never stopped; the
//! pages it frees meanwhile are reused only once the copy lets go of the
//! snapshot, so the live file may grow by what is written during a
//! backup). The copy goes to `DEST.partial` and is renamed to `DEST` only
//! once it is durable, so a file at `DEST` is always a whole backup.
//!
//! [`verify`] opens a store (checking every page's checksum and the schema
//! version) and checks that its tables agree with each other.
//! [`compact`] shrinks a stopped store's file.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Database, Durability, Key, ReadTransaction, ReadableTable, ReadableTableMetadata,
    TableDefinition, Value,
};

use crate::model::{Direction, MoKey};

use super::codec;
use super::error::StoreError;
use super::schema::*;
use super::{open_database, RedbStore, StoreOptions};

/// Entries copied per transaction of the copy: bounds the memory the copy
/// holds in dirty pages, whatever the store's size.
const COPY_CHUNK: usize = 20_000;

/// The copy's page cache.
const COPY_CACHE_BYTES: usize = 16 << 20;

/// The most problems [`verify`] lists; it counts the rest.
const MAX_PROBLEMS_LISTED: usize = 100;

/// What a backup wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackupReport {
    /// Messages in the copy.
    pub messages: u64,
    /// Entries copied, all tables together.
    pub entries: u64,
    /// The copy's file size.
    pub bytes: u64,
}

/// What [`verify`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Messages stored.
    pub messages: u64,
    /// Entries read, all tables together.
    pub entries: u64,
    /// Disagreements between tables, the first hundred.
    pub problems: Vec<String>,
    /// How many problems there were in all.
    pub problem_count: u64,
}

impl VerifyReport {
    /// Whether the store is whole.
    pub fn is_ok(&self) -> bool {
        self.problem_count == 0
    }

    fn problem(&mut self, what: String) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS_LISTED {
            self.problems.push(what);
        }
    }
}

fn storage(during: &'static str) -> impl Fn(redb::Error) -> StoreError {
    move |e| StoreError::storage(during)(e)
}

impl RedbStore {
    /// Writes a consistent copy of the store, as of its last commit, to
    /// `dest`, which must not exist. Blocking (it reads the whole store):
    /// run it under `tokio::task::spawn_blocking`. Writers go on
    /// meanwhile.
    pub fn backup(&self, dest: &Path) -> Result<BackupReport, StoreError> {
        let open_error = |source: std::io::Error| StoreError::Open {
            path: dest.to_owned(),
            source: Arc::new(source),
        };
        if dest.exists() {
            return Err(open_error(std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                "the backup's destination exists",
            )));
        }
        let snapshot = self.snapshot()?;
        let partial = partial_path(dest);
        // A partial file is a failed earlier try; it is not a backup.
        let _ = std::fs::remove_file(&partial);
        let copied = copy_snapshot(&snapshot, &partial);
        drop(snapshot);
        let (messages, entries) = match copied {
            Ok(counts) => counts,
            Err(e) => {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
        };
        std::fs::rename(&partial, dest).map_err(open_error)?;
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty()) {
            // The rename is durable once the directory is.
            std::fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(open_error)?;
        }
        let bytes = std::fs::metadata(dest).map_err(open_error)?.len();
        Ok(BackupReport {
            messages,
            entries,
            bytes,
        })
    }
}

fn partial_path(dest: &Path) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}

/// Copies every table of `snapshot` into a new store at `path`; returns
/// the messages and the entries copied.
fn copy_snapshot(snapshot: &ReadTransaction, path: &Path) -> Result<(u64, u64), StoreError> {
    // Every page of the copy is written once: a small cache will do.
    let options = StoreOptions {
        cache_bytes: COPY_CACHE_BYTES,
        ..StoreOptions::default()
    };
    let to = open_database(path, &options)?;
    let mut entries = 0;
    entries += copy_table(snapshot, &to, MESSAGES)?;
    let messages = entries;
    entries += copy_table(snapshot, &to, MO_KEYS)?;
    entries += copy_table(snapshot, &to, MO_RECENT)?;
    entries += copy_table(snapshot, &to, BY_STATUS)?;
    entries += copy_table(snapshot, &to, CONNECTIONS)?;
    entries += copy_table(snapshot, &to, OPTOUTS)?;
    entries += copy_table(snapshot, &to, DELIVERY_ERRORS)?;
    entries += copy_table(snapshot, &to, DLR_EVENTS)?;
    entries += copy_table(snapshot, &to, CALLBACKS)?;
    entries += copy_table(snapshot, &to, COUNTS)?;
    // Meta last, with the one durable commit: a copy without its schema
    // version is not taken for a store.
    entries += copy_table(snapshot, &to, META)?;
    let err = storage("finishing the backup");
    let txn = to.begin_write().map_err(|e| err(e.into()))?;
    txn.commit().map_err(|e| err(e.into()))?;
    Ok((messages, entries))
}

/// Copies one table, [`COPY_CHUNK`] entries per transaction; only the last
/// transaction of the copy (in [`copy_snapshot`]) is made durable.
fn copy_table<K: Key + 'static, V: Value + 'static>(
    from: &ReadTransaction,
    to: &Database,
    definition: TableDefinition<K, V>,
) -> Result<u64, StoreError> {
    let err = storage("copying a table");
    let source = from.open_table(definition).map_err(|e| err(e.into()))?;
    let mut entries = source.iter().map_err(|e| err(e.into()))?;
    let mut copied = 0;
    loop {
        let mut txn = to.begin_write().map_err(|e| err(e.into()))?;
        txn.set_durability(Durability::None)
            .map_err(|e| err(e.into()))?;
        let mut done = false;
        {
            let mut table = txn.open_table(definition).map_err(|e| err(e.into()))?;
            for _ in 0..COPY_CHUNK {
                let Some(entry) = entries.next() else {
                    done = true;
                    break;
                };
                let (key, value) = entry.map_err(|e| err(e.into()))?;
                table
                    .insert(key.value(), value.value())
                    .map_err(|e| err(e.into()))?;
                copied += 1;
            }
        }
        txn.commit().map_err(|e| err(e.into()))?;
        if done {
            return Ok(copied);
        }
    }
}

/// Opens the store at `path` (checking every page's checksum and the
/// schema version, as [`RedbStore::open`] does), checks its tables against
/// each other, and closes it. The store must not be open elsewhere.
pub fn verify(path: &Path) -> Result<VerifyReport, StoreError> {
    if !path.exists() {
        return Err(StoreError::Open {
            path: path.to_owned(),
            source: Arc::new(std::io::ErrorKind::NotFound.into()),
        });
    }
    let store = RedbStore::open(path, StoreOptions::default())?;
    let snapshot = store.snapshot()?;
    let report = check(&snapshot).map_err(storage("verifying"));
    drop(snapshot);
    drop(store);
    report
}

/// Every check of [`verify`], on one snapshot.
pub(super) fn check(txn: &ReadTransaction) -> Result<VerifyReport, redb::Error> {
    let mut report = VerifyReport::default();
    let messages = txn.open_table(MESSAGES)?;
    let mut counted: HashMap<(u8, u8), u64> = HashMap::new();
    let by_status = txn.open_table(BY_STATUS)?;
    let mut open = 0;
    for entry in messages.iter()? {
        let (key, value) = entry?;
        let id = key.value();
        report.messages += 1;
        let m = match codec::decode_message(id, value.value()) {
            Ok(m) => m,
            Err(e) => {
                report.problem(e.to_string());
                continue;
            }
        };
        let code = (codec::direction_code(m.direction), m.status.as_u8());
        *counted.entry(code).or_default() += 1;
        if m.status.is_open() {
            open += 1;
            let indexed = (m.status.as_u8(), m.connection.backend.as_str(), id);
            if by_status.get(indexed)?.is_none() {
                report.problem(format!(
                    "message {id} ({}) not in by_status",
                    m.status.code()
                ));
            }
        }
    }
    report.entries += report.messages;
    let counts = txn.open_table(COUNTS)?;
    for entry in counts.iter()? {
        let (key, value) = entry?;
        let stored = value.value();
        let found = counted.remove(&key.value()).unwrap_or(0);
        if stored != found {
            report.problem(format!(
                "counts {:?}: {stored}, messages: {found}",
                key.value()
            ));
        }
        report.entries += 1;
    }
    for (key, found) in counted {
        report.problem(format!("counts {key:?} missing, messages: {found}"));
    }
    if by_status.len()? != open {
        report.problem(format!(
            "by_status has {} entries for {open} open messages",
            by_status.len()?
        ));
    }
    report.entries += by_status.len()?;
    let mo_owner = |id: u64, key: MoKey, report: &mut VerifyReport| -> Result<(), redb::Error> {
        let found = messages.get(id)?;
        let owner = found
            .map(|g| codec::decode_message(id, g.value()))
            .transpose();
        match owner {
            Ok(Some(m)) if m.direction == Direction::Incoming && MoKey::of(&m) == Some(key) => {}
            Ok(_) => report.problem(format!("MO key of message {id} names no such MO")),
            Err(e) => report.problem(e.to_string()),
        }
        Ok(())
    };
    for entry in txn.open_table(MO_KEYS)?.iter()? {
        let (key, id) = entry?;
        let (time, uuid) = key.value();
        mo_owner(id.value(), MoKey { time, uuid: *uuid }, &mut report)?;
        report.entries += 1;
    }
    for entry in txn.open_table(MO_RECENT)?.iter()? {
        let (id, key) = entry?;
        let (time, uuid) = key.value();
        mo_owner(id.value(), MoKey { time, uuid: *uuid }, &mut report)?;
        report.entries += 1;
    }
    for table in [DELIVERY_ERRORS, DLR_EVENTS] {
        let mut last = None;
        for entry in txn.open_table(table)?.iter()? {
            let (key, _) = entry?;
            let (id, _) = key.value();
            if last != Some(id) && messages.get(id)?.is_none() {
                report.problem(format!("{} of message {id}, which is not stored", table));
            }
            last = Some(id);
            report.entries += 1;
        }
    }
    for entry in txn.open_table(CONNECTIONS)?.iter()? {
        let (key, value) = entry?;
        let (backend, identity) = key.value();
        if let Err(e) = codec::decode_connection(backend, identity, value.value()) {
            report.problem(e.to_string());
        }
        report.entries += 1;
    }
    report.entries += txn.open_table(OPTOUTS)?.len()? + txn.open_table(META)?.len()?;
    for entry in txn.open_table(CALLBACKS)?.iter()? {
        let (key, value) = entry?;
        let (due, id) = key.value();
        match codec::decode_callback(due, *id, value.value()) {
            Ok(call) if messages.get(call.message_id)?.is_none() => report.problem(format!(
                "dlr-url call owed for message {}, which is not stored",
                call.message_id
            )),
            Ok(_) => {}
            Err(e) => report.problem(e.to_string()),
        }
        report.entries += 1;
    }
    Ok(report)
}

/// What [`compact`] did: the file's size before and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compacted {
    pub before: u64,
    pub after: u64,
}

/// Shrinks the file of a stopped store: redb moves pages down to fill the
/// free space and truncates the file. A journal left behind is replayed
/// first. Fails with
/// [`StoreError::AlreadyOpen`] while rapidbox runs on it.
pub fn compact(path: &Path) -> Result<Compacted, StoreError> {
    let size = |path: &Path| {
        std::fs::metadata(path)
            .map(|m| m.len())
            .map_err(|e| StoreError::Open {
                path: path.to_owned(),
                source: Arc::new(e),
            })
    };
    let before = size(path)?;
    let options = StoreOptions {
        check_integrity_on_open: true,
        ..StoreOptions::default()
    };
    // Opened as the store opens, so that a journal left by a crash is
    // replayed into the file (and then removed) first.
    let opener = super::Opener {
        path: path.to_owned(),
        options,
    };
    let mut db = opener.open()?.db;
    let err = storage("compacting");
    while db.compact().map_err(|e| err(e.into()))? {}
    drop(db);
    Ok(Compacted {
        before,
        after: size(path)?,
    })
}
