//! The write-ahead journal (`journal.rs`): its records, and the store with
//! `journal` on killed at every step (appending, applying, checkpointing,
//! a torn last record) or on a failing disk.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::store::journal::{self, RecordError};

/// The journal on, MO keys moving every 5 (as `open`), and no checkpoint
/// but at close unless a test asks for one.
fn journaled() -> StoreOptions {
    StoreOptions {
        journal: true,
        mo_keys_every: 5,
        checkpoint_interval: Duration::from_secs(3600),
        ..StoreOptions::default()
    }
}

fn mo(id: MessageId) -> Message {
    with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(id))
}

/// An MO and a delivery error for it (a second event would show a record
/// applied twice).
fn mo_unit(id: MessageId) -> Unit {
    Unit::new()
        .unless_mo_known(key(id))
        .with(Op::put(mo(id)))
        .with(Op::AddDeliveryError(DeliveryError {
            message_id: id,
            time: 1,
            log: "x".into(),
        }))
}

/// Commits [`mo_unit`] under a new id.
async fn commit_mo(store: &Store) -> MessageId {
    let id = store.allocate_id();
    applied(store.commit(mo_unit(id)).await.unwrap());
    id
}

/// Copies the store file and its journal (both files, those that exist)
/// as they are now.
fn copy_both(from: &Path, to: &Path) {
    copy_store(from, to);
}

/// Checks that exactly `ids` are stored, each once with its one event,
/// every index agrees, and new ids start above them.
async fn holds_exactly(path: &Path, options: StoreOptions, ids: &[MessageId]) {
    let store = Store::open(path, options).unwrap();
    let stored: Vec<MessageId> = all_messages(&store)
        .await
        .iter()
        .rev()
        .map(|m| m.id)
        .collect();
    assert_eq!(stored, ids, "messages after reopening");
    for &id in ids {
        assert_eq!(store.message_id_by_mo(&key(id)).await.unwrap(), Some(id));
        assert_eq!(
            store.delivery_errors(id).await.unwrap().len(),
            1,
            "events of {id}"
        );
    }
    assert_consistent(&store).await;
    assert!(store.allocate_id() > ids.last().copied().unwrap_or(0));
    store.close().await;
}

#[test]
fn a_record_is_whole_only_with_every_byte_and_its_checksum() {
    assert_eq!(journal::crc32(b"123456789"), 0xCBF4_3926);
    let mut buf = Vec::new();
    journal::encode(7, b"payload", &mut buf);
    let len = buf.len();
    for cut in 0..len {
        assert_eq!(journal::check(&buf[..cut]), Ok(None), "cut at {cut}");
    }
    assert_eq!(journal::check(&buf), Ok(Some(len)));
    assert_eq!(journal::parse(&buf), (7, &b"payload"[..]));
    for at in 4..len {
        let mut damaged = buf.clone();
        damaged[at] ^= 1;
        assert_eq!(
            journal::check(&damaged),
            Err(RecordError::Checksum),
            "byte {at}"
        );
    }
    let mut huge = buf.clone();
    huge[..4].copy_from_slice(&u32::MAX.to_le_bytes());
    assert!(matches!(
        journal::check(&huge),
        Err(RecordError::TooLong(_))
    ));
}

#[test]
fn reading_stops_at_a_torn_record_or_a_gap_and_skips_what_redb_holds() {
    let units = |n: u64| postcard::to_allocvec(&vec![Unit::new().with(Op::put(mo(n)))]).unwrap();
    let mut file = Vec::new();
    for seq in 1..=4 {
        journal::encode(seq, &units(seq), &mut file);
    }
    let whole = file.len() as u64;
    let path = Path::new("j");
    let found = journal::read_records(path, &file, 2).unwrap();
    let seqs: Vec<u64> = found.records.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, [3, 4]);
    assert_eq!((found.intact_bytes, found.dropped_bytes), (whole, 0));

    // A torn fifth record: dropped, the four before kept.
    let mut torn = file.clone();
    journal::encode(5, &units(5), &mut torn);
    torn.truncate(torn.len() - 3);
    let found = journal::read_records(path, &torn, 0).unwrap();
    assert_eq!(found.records.len(), 4);
    assert_eq!(found.intact_bytes, whole);
    assert!(found.dropped_bytes > 0);

    // A record out of sequence (stale bytes after a cut) ends the journal.
    let mut gap = file.clone();
    journal::encode(2, &units(9), &mut gap);
    let found = journal::read_records(path, &gap, 0).unwrap();
    assert_eq!(found.records.len(), 4);
    assert_eq!(found.intact_bytes, whole);
}

#[tokio::test]
async fn acked_units_are_read_at_once_and_survive_a_kill_before_any_checkpoint() {
    // Killed while applying: redb's commits since the last checkpoint
    // were never made durable, so the file is as it was at the start.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("killed.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let first = commit_mo(&store).await;
    store.close().await;
    let store = Store::open(&path, journaled()).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let mut ids = vec![first];
    for _ in 0..40 {
        let id = commit_mo(&store).await;
        // Acked means readable: the non-durable commit is visible.
        assert_eq!(store.message(id).await.unwrap().map(|m| m.id), Some(id));
        ids.push(id);
    }
    assert_eq!(store.stats().checkpoints, 0);
    copy_both(&path, &image);
    std::fs::write(&image, &at_start).unwrap();
    // The process goes on and closes; the image is what a kill left.
    store.close().await;
    holds_exactly(&image, journaled(), &ids).await;
    // Replayed, checkpointed and emptied: a second open replays nothing.
    assert_eq!(
        std::fs::metadata(journal::path_for(&image)).unwrap().len(),
        0
    );
    holds_exactly(&image, journaled(), &ids).await;
    holds_exactly(&path, journaled(), &ids).await;
}

#[tokio::test]
async fn a_torn_last_record_is_dropped_and_every_whole_one_kept() {
    // Killed while appending: the last batch's record is half written, and
    // that batch was never answered.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("torn.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(commit_mo(&store).await);
    }
    copy_both(&path, &image);
    store.close().await;
    std::fs::write(&image, &at_start).unwrap();
    let journal_path = journal::path_for(&image);
    let whole = std::fs::read(&journal_path).unwrap();
    for cut in [1, 8, 20] {
        std::fs::write(&journal_path, &whole[..whole.len() - cut]).unwrap();
        let copy = dir.path().join(format!("torn-{cut}.redb"));
        copy_both(&image, &copy);
        holds_exactly(&copy, journaled(), &ids[..9]).await;
    }
    // Garbage after whole records (a write that never completed) too.
    let mut garbage = whole.clone();
    garbage.extend_from_slice(&[0xff; 100]);
    std::fs::write(&journal_path, &garbage).unwrap();
    holds_exactly(&image, journaled(), &ids).await;
}

#[tokio::test]
async fn a_kill_between_checkpoint_and_emptying_the_journal_applies_nothing_twice() {
    // Killed while checkpointing: the durable commit is in the file but
    // the journal still holds the records it covers.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("checkpointed.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..15 {
        ids.push(commit_mo(&store).await);
    }
    let full_journal = std::fs::read(journal::path_for(&path)).unwrap();
    assert!(!full_journal.is_empty());
    // Closing checkpoints: a durable commit, then the journal emptied.
    store.close().await;
    assert_eq!(
        std::fs::metadata(journal::path_for(&path)).unwrap().len(),
        0
    );
    std::fs::copy(&path, &image).unwrap();
    std::fs::write(journal::path_for(&image), &full_journal).unwrap();
    holds_exactly(&image, journaled(), &ids).await;

    // And a redb file that lost its checkpoint (killed during its commit,
    // so redb went back to the one before) gets everything from the
    // journal.
    let before = dir.path().join("before.redb");
    let fresh = Store::open(&before, journaled()).unwrap();
    fresh.close().await;
    std::fs::write(journal::path_for(&before), &full_journal).unwrap();
    holds_exactly(&before, journaled(), &ids).await;
}

#[tokio::test]
async fn checkpoints_empty_the_journal_and_a_kill_after_them_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("later.redb");
    let options = StoreOptions {
        checkpoint_interval: Duration::from_millis(50),
        ..journaled()
    };
    let store = Store::open(&path, options.clone()).unwrap();
    let mut ids = Vec::new();
    while store.stats().checkpoints < 2 {
        ids.push(commit_mo(&store).await);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // Records after the last checkpoint: only the journal has them
    // durably. The files as a kill (not a power cut) leaves them: what
    // redb wrote since its checkpoint may or may not be in its file.
    let checkpoints = store.stats().checkpoints;
    for _ in 0..5 {
        ids.push(commit_mo(&store).await);
    }
    let journal_len = std::fs::metadata(journal::path_for(&path)).unwrap().len();
    if store.stats().checkpoints == checkpoints {
        assert!(journal_len > 0, "records since the checkpoint");
    }
    copy_both(&path, &image);
    store.close().await;
    holds_exactly(&image, options, &ids).await;
}

#[tokio::test]
async fn a_journal_left_behind_is_replayed_with_the_journal_turned_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("off.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(commit_mo(&store).await);
    }
    copy_both(&path, &image);
    store.close().await;
    std::fs::write(&image, &at_start).unwrap();
    let off = StoreOptions {
        journal: false,
        ..journaled()
    };
    holds_exactly(&image, off, &ids).await;
    assert!(!journal::path_for(&image).exists());
}

#[tokio::test]
async fn a_failing_journal_write_fails_its_batch_and_the_store_recovers() {
    // The disk-full path with the journal: the batch is answered with a
    // storage error (a bearerbox MO is acked failed_tmp), nothing of it
    // stays, and the store comes back by itself.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let faults = faults::Faults::new();
    let options = StoreOptions {
        faults: Some(faults.clone()),
        ..journaled()
    };
    let store = Store::open(&path, options).unwrap();
    let first = commit_mo(&store).await;

    faults.fail_writes(true);
    let lost = store.allocate_id();
    let failed = store
        .commit(Unit::new().with(Op::put(mo(lost))))
        .await
        .unwrap_err();
    assert!(
        matches!(failed, StoreError::Storage { .. }),
        "the failed batch's error: {failed:?}"
    );
    let again = store
        .commit(Unit::new().with(Op::put(mo(lost))))
        .await
        .unwrap_err();
    assert!(again.is_transient(), "{again:?}");

    faults.fail_writes(false);
    let after = store.allocate_id();
    applied(commit_once_recovered(&store, Unit::new().with(Op::put(mo(after)))).await);
    assert!(store.message(first).await.unwrap().is_some());
    assert!(store.message(lost).await.unwrap().is_none());
    let redelivered = Unit::new()
        .unless_mo_known(key(first))
        .with(Op::put(mo(store.allocate_id())));
    assert_eq!(
        store.commit(redelivered).await.unwrap(),
        Outcome::Duplicate(first)
    );
    assert_consistent(&store).await;
    store.close().await;
    let reopened = Store::open(&path, journaled()).unwrap();
    assert!(reopened.message(first).await.unwrap().is_some());
    assert!(reopened.message(lost).await.unwrap().is_none());
    assert!(reopened.message(after).await.unwrap().is_some());
    assert_consistent(&reopened).await;
}

#[tokio::test]
async fn a_journal_that_does_not_follow_the_file_is_set_aside_not_applied() {
    // A backup put in place of the store, beside the journal of a later
    // run: the journal's records do not follow the backup's last one.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let backup = dir.path().join("backup.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let kept = vec![commit_mo(&store).await, commit_mo(&store).await];
    store.backup(&backup).unwrap();
    let mut later = Vec::new();
    for _ in 0..3 {
        later.push(commit_mo(&store).await);
    }
    store.close().await;
    // The later run's journal holds only its last records (a checkpoint
    // emptied it after the backup was taken).
    let image = dir.path().join("crashed.redb");
    let store = Store::open(&path, journaled()).unwrap();
    later.push(commit_mo(&store).await);
    copy_both(&path, &image);
    store.close().await;
    std::fs::copy(&backup, &image).unwrap();
    holds_exactly(&image, journaled(), &kept).await;
    let mut aside = journal::path_for(&image).into_os_string();
    aside.push(".stale");
    assert!(std::fs::metadata(&aside).unwrap().len() > 0);
}

#[tokio::test]
async fn acked_groups_gather_in_one_redb_commit_and_every_read_sees_them() {
    // Acks come after the journal's fsync; redb applies many groups in one
    // commit. Each kind of read still sees every acked unit.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Store::open(&path, journaled()).unwrap();
    let before = store.stats().redb_commits;
    let mut ids = Vec::new();
    for _ in 0..30 {
        let id = commit_mo(&store).await;
        // The dedupe lookup answers from memory, without a commit.
        assert_eq!(store.message_id_by_mo(&key(id)).await.unwrap(), Some(id));
        ids.push(id);
    }
    let stats = store.stats();
    assert!(stats.transactions >= 30, "{stats:?}");
    assert!(
        stats.redb_commits - before <= 1,
        "30 acked groups and only MO lookups: {} redb commits",
        stats.redb_commits - before
    );
    // A read of anything else commits them first.
    assert_eq!(
        store.counts().await.unwrap(),
        vec![(Direction::Incoming, Status::Received, 30)]
    );
    assert!(store.stats().redb_commits > stats.redb_commits);
    let last = *ids.last().unwrap();
    let id = commit_mo(&store).await;
    assert_eq!(store.message(id).await.unwrap().map(|m| m.id), Some(id));
    assert_eq!(store.delivery_errors(id).await.unwrap().len(), 1);
    assert_eq!(store.recent_messages(None, 1).await.unwrap()[0].id, id);
    let id2 = commit_mo(&store).await;
    assert_eq!(
        store
            .messages_by_status(Status::Received, None, Some(last), 10)
            .await
            .unwrap()
            .iter()
            .map(|m| m.id)
            .collect::<Vec<_>>(),
        vec![id, id2]
    );
    // Nothing pending: a read commits nothing.
    let commits = store.stats().redb_commits;
    store.message(id).await.unwrap();
    assert_eq!(store.stats().redb_commits, commits);
    assert_consistent(&store).await;
    store.close().await;
}

#[tokio::test]
async fn a_kill_while_groups_wait_in_the_open_transaction_loses_none() {
    // Killed while applying a large batch: groups acked into the open
    // transaction are only in the journal; what redb wrote of them is
    // not durable.
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("applying.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let mut ids = Vec::new();
    for _ in 0..25 {
        ids.push(commit_mo(&store).await);
    }
    // Half of them committed to redb (non-durably), half still open.
    store.counts().await.unwrap();
    for _ in 0..25 {
        ids.push(commit_mo(&store).await);
    }
    copy_both(&path, &image);
    let mid_image = dir.path().join("mid.redb");
    copy_both(&path, &mid_image);
    store.close().await;
    // As a kill left it (the file as redb last wrote it) ...
    holds_exactly(&mid_image, journaled(), &ids).await;
    // ... and as a power cut may (the file as of the last checkpoint).
    std::fs::write(&image, &at_start).unwrap();
    holds_exactly(&image, journaled(), &ids).await;
}

#[tokio::test]
async fn an_open_transaction_is_committed_within_its_delay_without_readers() {
    // A watcher of `changes` (the console) learns of acked units without
    // reading first.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&store_path(&dir), journaled()).unwrap();
    let mut changes = store.changes();
    changes.borrow_and_update();
    commit_mo(&store).await;
    tokio::time::timeout(writer::APPLY_MAX_DELAY * 10, changes.changed())
        .await
        .expect("committed within its delay")
        .unwrap();
    store.close().await;
}

#[tokio::test]
async fn a_backup_of_a_live_store_holds_every_acked_unit() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let copy = dir.path().join("copy.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let mut ids = Vec::new();
    for _ in 0..12 {
        ids.push(commit_mo(&store).await);
    }
    // Acked, not yet committed to redb: the backup waits for them.
    store.backup(&copy).unwrap();
    store.close().await;
    assert!(!journal::path_for(&copy).exists());
    holds_exactly(&copy, journaled(), &ids).await;
}

#[tokio::test]
async fn verify_and_compact_replay_a_journal_left_by_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let image = dir.path().join("crashed.redb");
    let store = Store::open(&path, journaled()).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(commit_mo(&store).await);
    }
    copy_both(&path, &image);
    store.close().await;
    std::fs::write(&image, &at_start).unwrap();
    let second = dir.path().join("second.redb");
    copy_both(&image, &second);

    compact(&image).unwrap();
    // Replayed, then emptied (or removed when the journal is off).
    let left = std::fs::metadata(journal::path_for(&image)).map_or(0, |m| m.len());
    assert_eq!(left, 0, "replayed");
    holds_exactly(&image, journaled(), &ids).await;

    let report = verify(&second).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.messages, ids.len() as u64);
    holds_exactly(&second, journaled(), &ids).await;
}

/// A store whose second checkpoint is caught waiting for the disk (its
/// durable commit's sync held), with units acked meanwhile.
struct Caught {
    dir: tempfile::TempDir,
    path: PathBuf,
    /// Lets the held syncs go if the test fails first: dropping the store
    /// waits for its writer, which may wait for the checkpoint. (Fields
    /// drop in order: this before `store`.)
    release: ReleaseSyncs,
    store: Store,
    faults: Arc<faults::Faults>,
    /// The store file as of its last durable commit (the open).
    at_start: Vec<u8>,
    /// Every acked MO, in order.
    ids: Vec<MessageId>,
    /// How many of them were acked before the caught checkpoint began
    /// (their records are in the old journal file).
    before: usize,
}

/// Lets held syncs go when dropped, so that a failing test ends instead of
/// waiting forever for its store's writer.
struct ReleaseSyncs(Arc<faults::Faults>);

impl Drop for ReleaseSyncs {
    fn drop(&mut self) {
        self.0.hold_syncs(false);
    }
}

/// The longest a test waits for an ack that must not wait for the disk.
const ACK_WAIT: Duration = Duration::from_secs(5);
/// Groups that fill the journal to its checkpoint bound ...
const BEFORE_CHECKPOINT: usize = 16;
/// ... and those acked while the checkpoint waits: fewer, so that no
/// second checkpoint follows by itself.
const DURING_CHECKPOINT: usize = 10;

async fn caught_in_a_checkpoint() -> Caught {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let faults = faults::Faults::new();
    // A checkpoint once the journal holds about BEFORE_CHECKPOINT groups'
    // records, and none by time: the test decides when the one after it
    // could come (never, as it acks fewer than that since).
    let mut record = Vec::new();
    let payload = postcard::to_allocvec(&vec![&mo_unit(1000)]).unwrap();
    journal::encode(1000, &payload, &mut record);
    let options = StoreOptions {
        faults: Some(faults.clone()),
        checkpoint_bytes: (BEFORE_CHECKPOINT * record.len()) as u64,
        ..journaled()
    };
    let store = Store::open(&path, options).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let release = ReleaseSyncs(faults.clone());
    faults.hold_syncs(true);
    let mut ids = Vec::new();
    // Acked until a checkpoint starts and waits for the disk; none of
    // these acks may wait for it.
    while faults.syncs_held() == 0 {
        assert!(ids.len() < 10 * BEFORE_CHECKPOINT, "no checkpoint began");
        let acked = tokio::time::timeout(ACK_WAIT, commit_mo(&store)).await;
        ids.push(acked.expect("an ack waited for the disk"));
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let before = ids.len();
    for _ in 0..DURING_CHECKPOINT {
        let acked = tokio::time::timeout(ACK_WAIT, commit_mo(&store)).await;
        ids.push(acked.expect("an ack waited for a checkpoint"));
    }
    assert_eq!(store.stats().checkpoints, 0);
    // The dedupe lookup sees them at once.
    let last = *ids.last().unwrap();
    assert_eq!(
        store.message_id_by_mo(&key(last)).await.unwrap(),
        Some(last)
    );
    Caught {
        dir,
        path,
        release,
        store,
        faults,
        at_start,
        ids,
        before,
    }
}

/// The journal's two files of the store at `path`: (old, new) while the
/// first checkpoint runs.
fn old_and_new(path: &Path) -> (PathBuf, PathBuf) {
    let [first, second] = journal_paths(path);
    (first, second)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_go_on_during_a_checkpoint_and_a_power_cut_then_loses_none() {
    let caught = caught_in_a_checkpoint().await;
    let Caught {
        dir,
        path,
        store,
        // After `store`: dropped before it.
        release: _release,
        faults,
        at_start,
        ids,
        ..
    } = caught;
    let (old, new) = old_and_new(&path);
    assert!(std::fs::metadata(&old).unwrap().len() > 0, "old records");
    assert!(std::fs::metadata(&new).unwrap().len() > 0, "acked since");
    // A power cut now: the file as of its last durable commit, both
    // journal files as they are ...
    let cut = dir.path().join("cut.redb");
    copy_both(&path, &cut);
    std::fs::write(&cut, &at_start).unwrap();
    // ... and a kill: the file as redb left it.
    let killed = dir.path().join("killed.redb");
    copy_both(&path, &killed);

    // A read during the checkpoint waits for it, and misses nothing.
    let last = *ids.last().unwrap();
    let reader = {
        let store = store.clone();
        // The read blocks its thread until the checkpoint is done.
        let runtime = tokio::runtime::Handle::current();
        tokio::task::spawn_blocking(move || runtime.block_on(store.message(last)))
    };
    tokio::time::sleep(Duration::from_millis(20)).await;
    faults.hold_syncs(false);
    assert_eq!(reader.await.unwrap().unwrap().map(|m| m.id), Some(last));
    while store.stats().checkpoints == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Durable: the old file is gone, the new one goes on.
    assert!(!old.exists(), "the old journal file is deleted");
    for &id in &ids {
        assert!(store.message(id).await.unwrap().is_some(), "message {id}");
    }
    assert_consistent(&store).await;
    store.close().await;
    holds_exactly(&cut, journaled(), &ids).await;
    // Replayed and emptied: one file left, empty.
    let (cut_old, cut_new) = old_and_new(&cut);
    assert_eq!(std::fs::metadata(&cut_old).unwrap().len(), 0);
    assert!(!cut_new.exists());
    holds_exactly(&killed, journaled(), &ids).await;
    holds_exactly(&path, journaled(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_torn_record_in_the_new_journal_file_is_dropped_and_the_rest_kept() {
    let Caught {
        dir,
        path,
        store,
        // After `store`: dropped before it.
        release: _release,
        faults,
        at_start,
        ids,
        ..
    } = caught_in_a_checkpoint().await;
    let image = dir.path().join("torn.redb");
    copy_both(&path, &image);
    std::fs::write(&image, &at_start).unwrap();
    faults.hold_syncs(false);
    store.close().await;
    let (_, new) = old_and_new(&image);
    let whole = std::fs::read(&new).unwrap();
    std::fs::write(&new, &whole[..whole.len() - 5]).unwrap();
    // The last group's record is torn: it was never answered.
    holds_exactly(&image, journaled(), &ids[..ids.len() - 1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_after_the_durable_commit_before_the_old_file_goes_applies_nothing_twice() {
    let Caught {
        dir,
        path,
        store,
        // After `store`: dropped before it.
        release: _release,
        faults,
        mut ids,
        ..
    } = caught_in_a_checkpoint().await;
    let (old, _) = old_and_new(&path);
    let old_records = std::fs::read(&old).unwrap();
    faults.hold_syncs(false);
    while store.stats().checkpoints == 0 {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    assert!(!old.exists());
    for _ in 0..3 {
        ids.push(commit_mo(&store).await);
    }
    // Killed between the checkpoint and the deletion: the old file is
    // still there, every record in it already in redb durably.
    let image = dir.path().join("undeleted.redb");
    copy_both(&path, &image);
    let (image_old, _) = old_and_new(&image);
    std::fs::write(&image_old, &old_records).unwrap();
    store.close().await;
    holds_exactly(&image, journaled(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_checkpoint_loses_no_acked_unit_and_the_store_recovers() {
    let Caught {
        dir: _dir,
        path,
        store,
        // After `store`: dropped before it.
        release: _release,
        faults,
        mut ids,
        ..
    } = caught_in_a_checkpoint().await;
    // The disk fails under the durable commit.
    faults.fail_writes(true);
    faults.hold_syncs(false);
    tokio::time::sleep(Duration::from_millis(50)).await;
    faults.fail_writes(false);
    let id = store.allocate_id();
    applied(commit_once_recovered(&store, mo_unit(id)).await);
    ids.push(id);
    // Reopened with both journal files replayed: every acked unit is
    // there, once.
    for &id in &ids {
        assert!(store.message(id).await.unwrap().is_some(), "message {id}");
        assert_eq!(store.delivery_errors(id).await.unwrap().len(), 1);
    }
    assert!(store.stats().failed_batches > 0);
    assert_consistent(&store).await;
    store.close().await;
    holds_exactly(&path, journaled(), &ids).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_during_a_checkpoint_are_those_applying_gives() {
    let Caught {
        dir: _dir,
        store,
        // After `store`: dropped before it.
        release: _release,
        faults,
        ids,
        before,
        ..
    } = caught_in_a_checkpoint().await;
    let timely = |unit: Unit| {
        let store = store.clone();
        async move {
            tokio::time::timeout(ACK_WAIT, store.commit(unit))
                .await
                .expect("answered without waiting for the checkpoint")
        }
    };
    // A duplicate of an MO acked before the checkpoint, and of one acked
    // during it.
    for &first in [ids[0], ids[before + 1]].iter() {
        let again = Unit::new()
            .unless_mo_known(key(first))
            .with(Op::put(mo(store.allocate_id())));
        assert_eq!(timely(again).await.unwrap(), Outcome::Duplicate(first));
    }
    // A Kannel UUID another message has.
    let taken = with_uuid(
        message(store.allocate_id(), Direction::Incoming, "s", "1"),
        uuid(ids[before + 2]),
    );
    assert!(matches!(
        timely(Unit::new().with(Op::put(taken))).await,
        Err(StoreError::Rejected(Rejection::UuidTaken { .. }))
    ));
    // An update of a message that is not there, of one acked before and
    // of one acked during the checkpoint.
    let missing = Update::status(store.allocate_id() + 100, Status::Sent, 5);
    assert!(matches!(
        timely(Unit::new().with(missing.into())).await,
        Err(StoreError::Rejected(Rejection::MissingMessage { .. }))
    ));
    for id in [ids[0], ids[before + 3]] {
        let update = Update::status(id, Status::Handled, 7);
        assert_eq!(
            timely(Unit::new().with(update.into())).await.unwrap(),
            Outcome::Applied
        );
    }
    // A put that replaces a stored message waits for the checkpoint.
    let replaced = {
        let store = store.clone();
        let unit = Unit::new().with(Op::put(mo(ids[1])));
        tokio::spawn(async move { store.commit(unit).await })
    };
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!replaced.is_finished(), "a replacing put waits");
    faults.hold_syncs(false);
    assert_eq!(replaced.await.unwrap().unwrap(), Outcome::Applied);
    for id in [ids[0], ids[before + 3]] {
        assert_eq!(
            store.message(id).await.unwrap().unwrap().status,
            Status::Handled
        );
    }
    assert_consistent(&store).await;
    store.close().await;
}

/// Splits a journal file into its records.
fn records(mut bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut all = Vec::new();
    while let Ok(Some(len)) = journal::check(bytes) {
        all.push(bytes[..len].to_vec());
        bytes = &bytes[len..];
    }
    all
}

#[tokio::test]
async fn two_journal_files_are_replayed_in_sequence_whatever_their_names() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Store::open(&path, journaled()).unwrap();
    let at_start = std::fs::read(&path).unwrap();
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(commit_mo(&store).await);
    }
    let all = records(&std::fs::read(journal::path_for(&path)).unwrap());
    assert_eq!(all.len(), 10);
    store.close().await;
    let (older, newer) = all.split_at(6);
    for (n, swapped) in [false, true].into_iter().enumerate() {
        let image = dir.path().join(format!("split-{n}.redb"));
        std::fs::write(&image, &at_start).unwrap();
        let [first, second] = journal_paths(&image);
        let (old_file, new_file) = if swapped {
            (second, first)
        } else {
            (first, second)
        };
        std::fs::write(&old_file, older.concat()).unwrap();
        std::fs::write(&new_file, newer.concat()).unwrap();
        holds_exactly(&image, journaled(), &ids).await;
    }
    // A gap between the files: what follows it is never applied, and the
    // file after it is set aside.
    let image = dir.path().join("gap.redb");
    std::fs::write(&image, &at_start).unwrap();
    let [first, second] = journal_paths(&image);
    std::fs::write(&second, older.concat()).unwrap();
    std::fs::write(&first, newer[1..].concat()).unwrap();
    holds_exactly(&image, journaled(), &ids[..6]).await;
    let mut aside = first.into_os_string();
    aside.push(".stale");
    assert!(std::fs::metadata(&aside).unwrap().len() > 0);
}

/// Whether every acked group is visible to reads (committed to redb).
fn all_visible(store: &Store) -> bool {
    let shared = &store.redb().expect("a redb store").inner.shared;
    shared.visible.load(std::sync::atomic::Ordering::Acquire)
        >= shared.acked.load(std::sync::atomic::Ordering::Acquire)
}

#[tokio::test]
async fn point_lookups_see_acked_unapplied_units_without_a_redb_commit() {
    // The opt-out app, delivery reports and the dedupe look up one key
    // per MO; with the journal their answers must hold every acked unit
    // without having redb commit the open transaction first
    // (`unapplied.rs`).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&store_path(&dir), journaled()).unwrap();
    let old = message(store.allocate_id(), Direction::Outgoing, "s", "9");
    let untouched = message(store.allocate_id(), Direction::Outgoing, "s", "9");
    let unit = Unit::new()
        .with(Op::put(old.clone()))
        .with(Op::put(untouched.clone()))
        .with(Op::OptOut {
            identity: "+1".into(),
            at: 10,
        });
    applied(store.commit(unit).await.unwrap());
    // Everything so far committed to redb.
    store.counts().await.unwrap();
    assert!(all_visible(&store));
    // The open transaction may be committed by its delay while a slow
    // machine runs this: then the round proves nothing and is run again.
    let mut unapplied_rounds = 0;
    for round in 0..5u64 {
        let identity = format!("+2{round}");
        let mo = store.allocate_id();
        let unit = Unit::new()
            .unless_mo_known(key(1000 + round))
            .with(Op::put(with_uuid(
                message(mo, Direction::Incoming, "s", "1"),
                uuid(1000 + round),
            )))
            .with(Op::OptOut {
                identity: identity.clone(),
                at: 20 + round as Micros,
            })
            .with(Op::OptIn {
                identity: "+1".into(),
            })
            .with(Update::status(old.id, Status::Sent, 30).into());
        applied(store.commit(unit).await.unwrap());
        let commits = store.stats().redb_commits;
        // A duplicate of the acked, unapplied MO, in a group of its own.
        let again = Unit::new()
            .unless_mo_known(key(1000 + round))
            .with(Op::put(with_uuid(
                message(store.allocate_id(), Direction::Incoming, "s", "1"),
                uuid(1000 + round),
            )));
        assert_eq!(store.commit(again).await.unwrap(), Outcome::Duplicate(mo));
        assert_eq!(
            store.message_id_by_mo(&key(1000 + round)).await.unwrap(),
            Some(mo)
        );
        // Opt-outs: the acked values, from memory.
        assert_eq!(
            store.opted_out_since(&identity).await.unwrap(),
            Some(20 + round as Micros)
        );
        assert_eq!(store.opted_out_since("+1").await.unwrap(), None, "opted in");
        assert!(!store.is_opted_out("+3").await.unwrap());
        // A message no acked, unapplied unit touched: from the last commit.
        assert_eq!(
            store.message(untouched.id).await.unwrap(),
            Some(untouched.clone())
        );
        let unfenced = store.stats().redb_commits == commits && !all_visible(&store);
        if unfenced {
            unapplied_rounds += 1;
        }
        // A message one of them changed: read after the commit it asks for.
        assert_eq!(
            store.message(old.id).await.unwrap().unwrap().status,
            Status::Sent
        );
        assert!(store.message(mo).await.unwrap().is_some());
        assert!(all_visible(&store));
        assert_eq!(
            store.redb().unwrap().inner.shared.unapplied.len(),
            0,
            "settled"
        );
        // Read from redb now, the same answers.
        assert_eq!(
            store.opted_out_since(&identity).await.unwrap(),
            Some(20 + round as Micros)
        );
        assert_eq!(store.opted_out_since("+1").await.unwrap(), None);
        if unapplied_rounds >= 2 {
            break;
        }
        // Back to opted out, for the next round's opt-in.
        let unit = Unit::new().with(Op::OptOut {
            identity: "+1".into(),
            at: 10,
        });
        applied(store.commit(unit).await.unwrap());
        store.counts().await.unwrap();
    }
    assert!(
        unapplied_rounds >= 1,
        "no round ran its lookups before the open transaction's delay"
    );
    assert_consistent(&store).await;
    store.close().await;
}
