//! The write-ahead journal: where a batch of units becomes durable when
//! `[store] journal` is on, so that the redb file itself can be committed
//! without an fsync most of the time.
//!
//! A durable redb commit costs a page write for every B-tree page the batch
//! touched plus an fsync, and at moderate load a batch holds only a few
//! units, so that price is paid per unit. With the journal, the writer
//! appends one record per batch (the units it applied, encoded) and
//! `fdatasync`s it: one sequential write of a few hundred bytes, after
//! which the batch is answered. redb gets the batch in an open
//! transaction that gathers many of them and is committed without
//! durability (`writer.rs` says when, and how reads still see every
//! answered unit), and durably only now and then (a *checkpoint*), after
//! which the journal is emptied. A record is never taken back: once
//! appended it was answered, and if redb then fails, reopening the file
//! replays it.
//!
//! The journal has two files, `<store>.journal` and `<store>.journal.1`,
//! so that a checkpoint need not stop the appends: it *rotates* the
//! journal ([`Journal::rotate`]: records go on, in sequence, in the other
//! file, created empty and its name made durable before a record in it
//! is answered), has redb commit durably in the background, and deletes
//! the old file once that commit holds its records (`writer.rs` says
//! how). So at most two files exist, the older one's records all at or
//! before the sequence the checkpoint makes durable. On open both are
//! read and replayed as one journal, the file whose first record comes
//! first first; a file that does not follow the other (a gap in the
//! sequence) is set aside, not applied, as is a journal that does not
//! follow the store file. Only the last file's last record can be torn.
//!
//! A record is a header and a payload:
//!
//! ```text
//! payload length: u32 LE | crc32 of (seq, payload): u32 LE | seq: u64 LE | payload
//! ```
//!
//! `seq` grows by one per record and is also written into the redb
//! transaction that applies the record (`meta`'s
//! [`META_JOURNAL_SEQ`](super::schema::META_JOURNAL_SEQ)), so that on open
//! the records redb already holds, durably, are told from those it lost:
//! replay applies exactly the records past it, whatever redb kept.
//!
//! Reading is split as frames are: [`check`] says whether a whole, intact
//! record starts the buffer (an incomplete one is not an error at the end
//! of the file: it is the torn write of a batch that was never answered);
//! [`parse`] then takes it apart.

use std::fs::{File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use redb::{Database, Durability, ReadableDatabase};
use thiserror::Error;
use tracing::{info, warn};

use crate::model::MessageId;

#[cfg(test)]
use std::sync::Arc;

use super::apply::{Batch, Tables};
use super::error::StoreError;
use super::schema;
use super::unit::{Outcome, Unit};
use super::RecentMoKeys;

/// The bytes before a record's payload.
pub(crate) const HEADER_BYTES: usize = 16;

/// The largest payload a record may carry. A batch is bounded by
/// `max_batch_bytes` (16 MiB by default, counted in memory, which is more
/// than its encoding); a length beyond this in a file is damage, not a
/// record, and is never allocated for.
pub(crate) const MAX_RECORD_BYTES: usize = 64 << 20;

/// Why the bytes at some offset are not a record.
#[derive(Debug, Error, PartialEq, Eq)]
pub(crate) enum RecordError {
    #[error("record of {0} bytes is over the limit of {MAX_RECORD_BYTES}")]
    TooLong(usize),
    #[error("record checksum does not match")]
    Checksum,
}

/// Whether `buf` starts with a whole, intact record: its length (header
/// included) if so, `None` if more bytes are needed.
pub(crate) fn check(buf: &[u8]) -> Result<Option<usize>, RecordError> {
    let Some(header) = buf.get(..HEADER_BYTES) else {
        return Ok(None);
    };
    let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(RecordError::TooLong(len));
    }
    let Some(record) = buf.get(..HEADER_BYTES + len) else {
        return Ok(None);
    };
    let stored = u32::from_le_bytes([header[4], header[5], header[6], header[7]]);
    if crc32(&record[8..]) != stored {
        return Err(RecordError::Checksum);
    }
    Ok(Some(HEADER_BYTES + len))
}

/// A record [`check`] passed: its sequence number and payload.
pub(crate) fn parse(record: &[u8]) -> (u64, &[u8]) {
    let mut seq = [0u8; 8];
    seq.copy_from_slice(&record[8..HEADER_BYTES]);
    (u64::from_le_bytes(seq), &record[HEADER_BYTES..])
}

/// Appends a record of `payload` under `seq` to `out`.
pub(crate) fn encode(seq: u64, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(payload);
    let crc = crc32(&out[start + 8..]);
    out[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// What reading a journal file found.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The units of each record past `after`, in order, with its sequence.
    pub(crate) records: Vec<(u64, Vec<Unit>)>,
    /// Where the intact records end.
    pub(crate) intact_bytes: u64,
    /// Bytes after them that were not a record (a torn last write).
    pub(crate) dropped_bytes: u64,
    /// The sequences of the first and last intact records, skipped ones
    /// included: how two files are put in order.
    pub(crate) first_seq: Option<u64>,
    pub(crate) last_seq: Option<u64>,
}

/// Why a journal could not be used.
#[derive(Debug, Error)]
pub(crate) enum JournalError {
    #[error("journal {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("journal {path}: record {seq} passed its checksum but does not decode: {reason}")]
    Undecodable {
        path: PathBuf,
        seq: u64,
        reason: String,
    },
    #[error("journal record of {0} bytes is over the limit of {MAX_RECORD_BYTES}")]
    TooBig(usize),
}

/// Reads every record of `bytes` whose sequence is past `after`.
///
/// Records must follow each other with sequences growing by one; the
/// first that does not (or that is torn or damaged) ends the journal: only
/// the last write can be torn, and it was never answered. Records at or
/// before `after` are already in redb and are skipped.
pub(crate) fn read_records(path: &Path, bytes: &[u8], after: u64) -> Result<Found, JournalError> {
    let mut found = Found::default();
    let mut at = 0usize;
    let mut previous: Option<u64> = None;
    while let Ok(Some(len)) = check(&bytes[at..]) {
        let (seq, payload) = parse(&bytes[at..at + len]);
        if previous.is_some_and(|p| seq != p.wrapping_add(1)) {
            break;
        }
        previous = Some(seq);
        found.first_seq.get_or_insert(seq);
        found.last_seq = Some(seq);
        if seq > after {
            let units: Vec<Unit> =
                postcard::from_bytes(payload).map_err(|e| JournalError::Undecodable {
                    path: path.to_owned(),
                    seq,
                    reason: e.to_string(),
                })?;
            found.records.push((seq, units));
        }
        at += len;
    }
    found.intact_bytes = at as u64;
    found.dropped_bytes = (bytes.len() - at) as u64;
    Ok(found)
}

/// Where a store's journal lives: beside its redb file, the same name with
/// `.journal` added.
pub(crate) fn path_for(store: &Path) -> PathBuf {
    let mut name = store.as_os_str().to_owned();
    name.push(".journal");
    PathBuf::from(name)
}

/// The journal's other file (`.journal.1` beside `.journal`): a
/// checkpoint starts appending to whichever of the two is not in use, so
/// that acks go on while it runs (see the module's docs).
pub(crate) fn other_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".1");
    PathBuf::from(name)
}

/// Both files of the journal at `journal` (its [`path_for`] name).
pub(crate) fn both_paths(journal: &Path) -> [PathBuf; 2] {
    [journal.to_owned(), other_path(journal)]
}

/// The file of the pair that `current` is not.
fn partner(primary: &Path, current: &Path) -> PathBuf {
    if current == primary {
        other_path(primary)
    } else {
        primary.to_owned()
    }
}

/// Makes the directory entry of a new file durable.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(dir) => File::open(dir)?.sync_all(),
        None => File::open(".")?.sync_all(),
    }
}

/// Where a journal that does not belong to its store file is moved.
fn aside_path(journal: &Path) -> PathBuf {
    let mut name = journal.as_os_str().to_owned();
    name.push(".stale");
    PathBuf::from(name)
}

/// Moves a journal file that must not be applied out of the way.
fn set_aside(path: &Path) -> Result<(), JournalError> {
    std::fs::rename(path, aside_path(path)).map_err(|source| JournalError::Io {
        path: path.to_owned(),
        source,
    })
}

/// The open journal file, written by the writer thread alone.
pub(crate) struct Journal {
    file: File,
    /// The file appended to: `primary` or its [`other_path`].
    path: PathBuf,
    /// The journal's name ([`path_for`]).
    primary: PathBuf,
    /// Bytes of intact records in the file; the next record goes here.
    len: u64,
    /// The sequence of the next record.
    next_seq: u64,
    /// Reused for every record.
    buf: Vec<u8>,
    #[cfg(test)]
    faults: Option<Arc<super::faults::Faults>>,
}

impl Journal {
    /// Opens the journal whose first file is `path` (creating it), and
    /// reads the records of both its files (see [`other_path`]) past
    /// `after`, oldest file first. Appending goes to `path` once the
    /// caller has emptied the journal ([`Journal::clear`]), which it does
    /// as soon as what was read is durable in redb.
    pub(crate) fn open(path: &Path, after: u64) -> Result<(Journal, Found), JournalError> {
        let io = |path: &Path| {
            let path = path.to_owned();
            move |source| JournalError::Io { path, source }
        };
        let mut reads = Vec::new();
        for file_path in both_paths(path) {
            let bytes = match std::fs::read(&file_path) {
                Ok(bytes) => bytes,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(io(&file_path)(e)),
            };
            let read = read_records(&file_path, &bytes, after)?;
            reads.push((file_path, read));
        }
        // Oldest first: a checkpoint that was under way left its old file
        // beside the new one. A file with no intact record adds nothing.
        reads.sort_by_key(|(_, read)| read.first_seq.unwrap_or(u64::MAX));
        let mut found = Found::default();
        let mut present = Vec::new();
        for (file_path, read) in reads {
            found.dropped_bytes += read.dropped_bytes;
            let follows = match (found.last_seq, read.first_seq) {
                (Some(last), Some(first)) => first == last.wrapping_add(1),
                _ => true,
            };
            if !follows {
                // Records between the two are missing: what comes after
                // a gap is never applied (as within one file).
                warn!(
                    path = %file_path.display(),
                    last = found.last_seq,
                    first = read.first_seq,
                    "a journal file does not follow the other; set aside"
                );
                set_aside(&file_path)?;
                continue;
            }
            found.first_seq = found.first_seq.or(read.first_seq);
            found.last_seq = read.last_seq.or(found.last_seq);
            found.records.extend(read.records);
            present.push(file_path);
        }
        if found
            .records
            .first()
            .is_some_and(|(seq, _)| *seq != after + 1)
        {
            // Records that do not follow the file's last one belong to
            // another file (a backup put in place of the store, say):
            // applying them would skip the ones between. Set aside, not
            // deleted, for whoever wants to look.
            warn!(
                path = %path.display(),
                after,
                first = found.records[0].0,
                "the journal does not follow the store file; set aside"
            );
            for file_path in &present {
                set_aside(file_path)?;
            }
            found = Found::default();
        }
        let existed = path.exists();
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(io(path))?;
        if !existed {
            // A record fdatasync'ed into a file whose name is not yet
            // durable could vanish with the name in a power cut.
            sync_parent(path).map_err(io(path))?;
        }
        let len = file.metadata().map_err(io(path))?.len();
        let last = found.last_seq.unwrap_or(after);
        let journal = Journal {
            file,
            path: path.to_owned(),
            primary: path.to_owned(),
            len,
            next_seq: last.max(after) + 1,
            buf: Vec::new(),
            #[cfg(test)]
            faults: None,
        };
        Ok((journal, found))
    }

    /// Starts appending to the journal's other file, empty, and hands
    /// back the path of the file left (every record in it is on disk):
    /// the caller deletes it once a durable redb commit holds its
    /// records. Sequences go on growing across the two.
    pub(crate) fn rotate(&mut self) -> Result<PathBuf, JournalError> {
        self.check_faults()?;
        let next = partner(&self.primary, &self.path);
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&next)
            .map_err(|source| JournalError::Io {
                path: next.clone(),
                source,
            })?;
        // The new name must be durable before a record in it is acked.
        sync_parent(&next).map_err(|source| JournalError::Io {
            path: next.clone(),
            source,
        })?;
        self.file = file;
        self.len = 0;
        Ok(std::mem::replace(&mut self.path, next))
    }

    #[cfg(test)]
    pub(crate) fn set_faults(&mut self, faults: Option<Arc<super::faults::Faults>>) {
        self.faults = faults;
    }

    fn io(&self, source: std::io::Error) -> JournalError {
        JournalError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn check_faults(&self) -> Result<(), JournalError> {
        #[cfg(test)]
        if let Some(faults) = &self.faults {
            faults.check().map_err(|e| self.io(e))?;
        }
        Ok(())
    }

    /// The sequence the next record gets (the redb transaction applying it
    /// records it).
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Bytes of records in the file.
    pub(crate) fn len(&self) -> u64 {
        self.len
    }

    /// Appends a record of `units` and waits until it is on disk. On
    /// failure the file is cut back to where it was, so that a record
    /// whose batch is answered with an error is never replayed.
    pub(crate) fn append(&mut self, units: &[&Unit]) -> Result<(), JournalError> {
        let payload =
            postcard::to_allocvec(units).map_err(|e| self.io(std::io::Error::other(e)))?;
        if payload.len() > MAX_RECORD_BYTES {
            return Err(JournalError::TooBig(payload.len()));
        }
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        encode(self.next_seq, &payload, &mut buf);
        let written = self.write_synced(&buf);
        self.buf = buf;
        if let Err(e) = written {
            self.rewind(self.len);
            return Err(e);
        }
        self.len += self.buf.len() as u64;
        self.next_seq += 1;
        Ok(())
    }

    fn write_synced(&mut self, record: &[u8]) -> Result<(), JournalError> {
        self.check_faults()?;
        self.file.write_all(record).map_err(|e| self.io(e))?;
        self.check_faults()?;
        self.file.sync_data().map_err(|e| self.io(e))
    }

    /// Cuts the file to `len` bytes; a failure is logged (the cut-off
    /// bytes then come back on replay only if they were whole records).
    fn rewind(&mut self, len: u64) {
        let cut = self
            .file
            .set_len(len)
            .and_then(|()| self.file.seek(SeekFrom::Start(len)).map(|_| ()))
            .and_then(|()| self.file.sync_data());
        if let Err(e) = cut {
            tracing::error!(error = %e, path = %self.path.display(), len, "cannot cut the journal back");
        }
    }

    /// Empties the journal after a durable redb commit that holds every
    /// record in it: the file appended to is cut to nothing, the other
    /// one (left by a checkpoint, or found on open) removed. Sequences go
    /// on growing.
    pub(crate) fn clear(&mut self) -> Result<(), JournalError> {
        self.check_faults()?;
        self.file.set_len(0).map_err(|e| self.io(e))?;
        self.file.seek(SeekFrom::Start(0)).map_err(|e| self.io(e))?;
        self.len = 0;
        let other = partner(&self.primary, &self.path);
        match std::fs::remove_file(&other) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(JournalError::Io {
                path: other,
                source,
            }),
        }
    }
}

/// CRC-32 (IEEE 802.3, as zlib's), by table: enough to tell a torn or
/// damaged record from an intact one.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc = CRC_TABLE[((crc ^ u32::from(b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut n = 0;
    while n < 256 {
        let mut c = n as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[n] = c;
        n += 1;
    }
    table
};

/// Wraps a journal failure as a storage failure (transient, as redb's
/// own: a full disk fails either).
pub(crate) fn storage(during: &'static str) -> impl FnOnce(JournalError) -> StoreError {
    move |e| {
        let io = match e {
            JournalError::Io { source, .. } => source,
            other => std::io::Error::other(other.to_string()),
        };
        StoreError::storage(during)(redb::Error::Io(io))
    }
}

/// Opens the journal of the store `db` at `path` and applies to `db` the
/// records it lacks, in one transaction without durability: the caller
/// commits durably next, then empties the journal. Returns the journal
/// and how many records were replayed.
pub(crate) fn open_and_replay(
    db: &Database,
    path: &Path,
    move_mo_keys_at: usize,
    state: (MessageId, u64, RecentMoKeys),
) -> Result<(Journal, usize), StoreError> {
    let redb_err = |during| move |e: redb::Error| StoreError::storage(during)(e);
    let after = {
        let txn = db
            .begin_read()
            .map_err(|e| redb_err("reading the journal sequence")(e.into()))?;
        let meta = txn
            .open_table(schema::META)
            .map_err(|e| redb_err("reading the journal sequence")(e.into()))?;
        meta.get(schema::META_JOURNAL_SEQ)
            .map_err(|e| redb_err("reading the journal sequence")(e.into()))?
            .map_or(0, |g| g.value())
    };
    let (journal, found) = Journal::open(path, after).map_err(storage("opening the journal"))?;
    if found.dropped_bytes > 0 {
        warn!(
            path = %path.display(),
            bytes = found.dropped_bytes,
            "journal ends in a torn record (a batch never answered); dropped"
        );
    }
    let replayed = found.records.len();
    if replayed == 0 {
        return Ok((journal, 0));
    }
    // The caller reads these again after the replay.
    let (next_id, mut next_seq, mut recent) = state;
    let mut scratch = Vec::new();
    let mut units = 0usize;
    // One transaction for them all, as the writer applied them (many
    // groups per redb commit); each record is still its own `Batch`, so
    // counts, events and MO keys move exactly as they did.
    let mut txn = db
        .begin_write()
        .map_err(|e| redb_err("replaying the journal")(e.into()))?;
    txn.set_durability(Durability::None)
        .map_err(|e| redb_err("replaying the journal")(e.into()))?;
    let counter = AtomicU64::new(next_id);
    for (seq, batch) in &found.records {
        let finished = {
            let mut work = Batch::new(
                Tables::of(&txn),
                &mut scratch,
                &counter,
                next_seq,
                &recent,
                move_mo_keys_at,
            );
            for unit in batch {
                match work.apply(unit)? {
                    Ok(Outcome::Applied) => {}
                    // Applied once already, from the same state: this
                    // would be a bug; the rest of the record still goes in.
                    other => warn!(seq, ?other, "a journaled unit did not apply again"),
                }
            }
            work.finish()?
        };
        units += batch.len();
        next_seq = finished.next_seq;
        for key in &finished.recent.released {
            recent.remove(key);
        }
        recent.extend(finished.recent.added);
        for key in &finished.recent.moved {
            recent.remove(key);
        }
    }
    if let Some((last, _)) = found.records.last() {
        let noted: Result<(), redb::Error> = txn
            .open_table(schema::META)
            .map_err(Into::into)
            .and_then(|mut meta| {
                meta.insert(schema::META_JOURNAL_SEQ, *last)?;
                Ok(())
            });
        noted.map_err(redb_err("replaying the journal"))?;
    }
    txn.commit()
        .map_err(|e| redb_err("replaying the journal")(e.into()))?;
    info!(path = %path.display(), records = replayed, units, "journal replayed");
    Ok((journal, replayed))
}
