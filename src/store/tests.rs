//! The store against real redb files in temporary directories.
//!
//! The tests written inside [`for_each_backend!`] prove the store's
//! behaviour through [`Store`]'s interface alone (units in, reads out,
//! reopening), so they run against every backend that has a [`Fixture`]:
//! each becomes a module with one test per backend (`NAME::redb`). The
//! others prove what is redb's own: its writer's batching, the journal,
//! damaged files, backups.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use redb::{ReadableDatabase, WriteTransaction};

use super::*;
use crate::model::{
    Connection, DeliveryError, Direction, DlrEvent, KannelInfo, Message, Micros, MoKey,
    PendingCallback, Status,
};

/// Where one behavioural test's store lives, for one backend: a fresh,
/// empty store, which the test may close and open again (as a restart
/// does) with [`Fixture::open`]. A new backend adds a variant here and a
/// test function in [`for_each_backend!`].
pub(super) enum Fixture {
    /// A redb file in a temporary directory, opened as [`open`] opens it.
    Redb { dir: tempfile::TempDir },
    /// A database of its own on the test process's PostgreSQL
    /// (`tests/support/postgres.rs`), by its connection string.
    Postgres { url: String },
}

impl Fixture {
    fn redb() -> Fixture {
        Fixture::Redb {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    /// A fresh database, or `None` (the test then passes having run
    /// nothing, and says so) when PostgreSQL is not installed, outside CI.
    async fn postgres(test: &str) -> Option<Fixture> {
        let url = super::pg::tests::fresh_database(test).await?;
        Some(Fixture::Postgres { url })
    }

    /// Opens the fixture's store: empty the first time, then as the last
    /// handle left it (close that one first).
    async fn open(&self) -> Store {
        match self {
            Fixture::Redb { dir } => open(&store_path(dir)),
            Fixture::Postgres { url } => Store::open_postgres(super::pg::PgOptions::new(url))
                .await
                .unwrap(),
        }
    }
}

/// Writes a behavioural test once and runs it against every backend:
/// `async fn NAME(fixture: Fixture) { .. }`, with its `#[tokio::test]`
/// attribute, becomes a module `NAME` holding one test per backend, each
/// given a fresh [`Fixture`] of its backend.
macro_rules! for_each_backend {
    ($(#[$attr:meta])* async fn $name:ident($fixture:ident: Fixture) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($fixture: Fixture) $body

            $(#[$attr])*
            async fn redb() {
                run(Fixture::redb()).await;
            }

            $(#[$attr])*
            async fn postgres() {
                if let Some(fixture) = Fixture::postgres(stringify!($name)).await {
                    run(fixture).await;
                }
            }
        }
    };
}

fn uuid(n: u64) -> [u8; 16] {
    let mut u = [0xa5; 16];
    u[..8].copy_from_slice(&n.to_be_bytes());
    u
}

/// The Kannel `time` of every MO these tests store.
const MO_TIME: i64 = 1_764_000_000;

/// The key of the MO stored [`with_uuid`]`(.., uuid(n))`.
fn key(n: u64) -> MoKey {
    MoKey {
        time: MO_TIME,
        uuid: uuid(n),
    }
}

fn message(id: MessageId, direction: Direction, backend: &str, address: &str) -> Message {
    let connection = Connection::new(backend, address);
    let mut m = Message::new(id, connection, direction, format!("message {id}"));
    m.date = 1_000 + id as Micros;
    m.updated = m.date;
    m
}

fn with_uuid(mut m: Message, u: [u8; 16]) -> Message {
    m.kannel = Some(KannelInfo {
        uuid: Some(u),
        shortcode: Some("8500".to_owned()),
        smsc_id: Some(m.connection.backend.clone()),
        coding: 0,
        dlr_mask: -1,
        time: (m.direction == Direction::Incoming).then_some(MO_TIME),
        ..KannelInfo::default()
    });
    m
}

/// A call owed for message `id`.
fn callback(id: MessageId) -> PendingCallback {
    PendingCallback {
        due: 5,
        id: [id as u8; 16],
        message_id: id,
        url: format!("http://h/dlr?id={id}"),
        attempts: 0,
    }
}

fn applied(outcome: Outcome) {
    assert_eq!(outcome, Outcome::Applied);
}

fn store_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("state").join("rapidbox.redb")
}

/// Opens with MO keys moving to `mo_keys` every 5, so that tests meet keys
/// in both tables.
fn open(path: &Path) -> Store {
    let options = StoreOptions {
        mo_keys_every: 5,
        ..StoreOptions::default()
    };
    Store::open(path, options).unwrap()
}

/// Holds the writer's next transaction back until the returned one is
/// dropped, so the test decides what is queued together.
fn hold_writer(store: &Store) -> WriteTransaction {
    store
        .redb()
        .unwrap()
        .database()
        .unwrap()
        .begin_write()
        .unwrap()
}

/// Waits until `n` units wait in the queue (or, with 0, until the writer
/// has taken everything).
async fn queued(store: &Store, n: usize) {
    let tx = &store.redb().unwrap().inner.requests;
    while tx.max_capacity() - tx.capacity() != n {
        tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
}

/// Copies a store as a killed process leaves it: its file and, when the
/// journal is on, the journal beside it (which holds what the file lacks).
fn copy_store(from: &Path, to: &Path) {
    std::fs::copy(from, to).unwrap();
    // Both journal files: a checkpoint under way leaves two.
    for (from, to) in journal_paths(from).iter().zip(journal_paths(to)) {
        if from.exists() {
            std::fs::copy(from, to).unwrap();
        }
    }
}

/// Every message, by a full scan of the messages table.
async fn all_messages(store: &Store) -> Vec<Message> {
    let mut all = Vec::new();
    let mut before = None;
    loop {
        let page = store.recent_messages(before, 1000).await.unwrap();
        let Some(last) = page.last() else {
            return all;
        };
        before = Some(last.id);
        all.extend(page);
    }
}

/// Checks every index and the counts against a full scan.
async fn assert_consistent(store: &Store) {
    let all = all_messages(store).await;
    let mut scanned: BTreeMap<(char, char), u64> = BTreeMap::new();
    for m in &all {
        *scanned
            .entry((m.direction.code(), m.status.code()))
            .or_default() += 1;
        if let Some(k) = m.kannel.as_ref().filter(|k| k.uuid.is_some()) {
            let key = MoKey {
                time: k.time.unwrap_or(-1),
                uuid: k.uuid.unwrap_or_default(),
            };
            let indexed = (m.direction == Direction::Incoming).then_some(m.id);
            assert_eq!(
                store.message_id_by_mo(&key).await.unwrap(),
                indexed,
                "mo_keys of {}",
                m.id
            );
        }
        assert!(store
            .connection(&m.connection.backend, &m.connection.identity)
            .await
            .unwrap()
            .is_some());
    }
    let stored: BTreeMap<(char, char), u64> = store
        .counts()
        .await
        .unwrap()
        .into_iter()
        .map(|(d, s, n)| ((d.code(), s.code()), n))
        .collect();
    assert_eq!(stored, scanned, "counts differ from a full scan");
    for status in Status::ALL {
        if !status.is_open() {
            assert!(matches!(
                store.messages_by_status(status, None, None, 1).await,
                Err(StoreError::NotIndexed { .. })
            ));
            continue;
        }
        let mut indexed = Vec::new();
        let mut after = None;
        loop {
            let page = store
                .messages_by_status(status, None, after, 333)
                .await
                .unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            indexed.extend(page.into_iter().map(|m| m.id));
        }
        let mut expected: Vec<_> = all
            .iter()
            .filter(|m| m.status == status)
            .map(|m| m.id)
            .collect();
        expected.sort_unstable();
        assert_eq!(indexed, expected, "by_status for {status:?}");
    }
}

for_each_backend! {
#[tokio::test]
async fn messages_and_every_index_round_trip(fixture: Fixture) {
    let store = fixture.open().await;

    let mo_id = store.allocate_id();
    let reply_id = store.allocate_id();
    let mo = with_uuid(
        message(mo_id, Direction::Incoming, "smsc1", "+250 788-383383"),
        uuid(1),
    );
    let mut reply = with_uuid(
        message(reply_id, Direction::Outgoing, "smsc1", "+250 788-383383"),
        uuid(2),
    );
    reply.in_response_to = Some(mo_id);
    let unit = Unit::new()
        .unless_mo_known(key(1))
        .with(Op::put(mo.clone()))
        .with(Op::put(reply.clone()));
    assert_eq!(store.commit(unit).await.unwrap(), Outcome::Applied);

    let error = DeliveryError {
        message_id: reply_id,
        time: 5,
        log: "HTTP 503".to_owned(),
    };
    let dlr = DlrEvent {
        message_id: reply_id,
        time: 6,
        mask: 1,
        text: "id:1 stat:DELIVRD".to_owned(),
    };
    let unit = Unit::new()
        .with(Op::AddDeliveryError(error.clone()))
        .with(Op::AddDlr(dlr.clone()))
        .with(Op::OptOut {
            identity: "250788383383".to_owned(),
            at: 7,
        });
    assert_eq!(store.commit(unit).await.unwrap(), Outcome::Applied);

    let check = async |store: &Store| {
        assert_eq!(store.message(mo_id).await.unwrap(), Some(mo.clone()));
        assert_eq!(store.message(reply_id).await.unwrap(), Some(reply.clone()));
        assert_eq!(store.message(reply_id + 1).await.unwrap(), None);
        assert_eq!(store.message_id_by_mo(&key(1)).await.unwrap(), Some(mo_id));
        // An MT's UUID is not indexed: acks match in memory, reports by id.
        assert_eq!(store.message_id_by_mo(&key(2)).await.unwrap(), None);
        assert_eq!(store.message_id_by_mo(&key(3)).await.unwrap(), None);
        let received = store
            .messages_by_status(Status::Received, Some("smsc1"), None, 10)
            .await
            .unwrap();
        assert_eq!(received, vec![mo.clone()]);
        let queued = store
            .messages_by_status(Status::Queued, None, None, 10)
            .await
            .unwrap();
        assert_eq!(queued, vec![reply.clone()]);
        assert!(store
            .messages_by_status(Status::Queued, Some("smsc2"), None, 10)
            .await
            .unwrap()
            .is_empty());
        let connection = store
            .connection("smsc1", "250788383383")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(connection.connection.address, "+250 788-383383");
        assert_eq!(connection.first_seen, mo.date);
        assert!(store
            .connection("smsc2", "250788383383")
            .await
            .unwrap()
            .is_none());
        assert!(store.is_opted_out("250788383383").await.unwrap());
        assert_eq!(
            store.opted_out_since("250788383383").await.unwrap(),
            Some(7)
        );
        assert!(!store.is_opted_out("1").await.unwrap());
        assert_eq!(
            store.delivery_errors(reply_id).await.unwrap(),
            vec![error.clone()]
        );
        assert_eq!(store.dlr_events(reply_id).await.unwrap(), vec![dlr.clone()]);
        assert!(store.delivery_errors(mo_id).await.unwrap().is_empty());
        let mut counts = store.counts().await.unwrap();
        counts.sort_by_key(|(d, s, _)| (d.code(), s.code()));
        assert_eq!(
            counts,
            vec![
                (Direction::Incoming, Status::Received, 1),
                (Direction::Outgoing, Status::Queued, 1),
            ]
        );
        let recent = store.recent_messages(None, 10).await.unwrap();
        assert_eq!(recent, vec![reply.clone(), mo.clone()]);
        let older = store.recent_messages(Some(reply_id), 10).await.unwrap();
        assert_eq!(older, vec![mo.clone()]);
        assert_consistent(store).await;
    };
    check(&store).await;
    store.close().await;

    let store = fixture.open().await;
    check(&store).await;
    // Ids go on above the highest stored: redb's at the next one,
    // PostgreSQL's in a new block of its sequence.
    let next = store.allocate_id();
    assert!(next > reply_id, "{next} after {reply_id}");
    if store.redb().is_some() {
        assert_eq!(next, reply_id + 1);
    }

    let unit = Unit::new().with(Op::OptIn {
        identity: "250788383383".to_owned(),
    });
    assert_eq!(store.commit(unit).await.unwrap(), Outcome::Applied);
    assert!(!store.is_opted_out("250788383383").await.unwrap());
    store.close().await;
}
}

for_each_backend! {
#[tokio::test]
async fn by_status_moves_when_status_changes(fixture: Fixture) {
    let store = fixture.open().await;
    let mut unit = Unit::new();
    for i in 0..10 {
        let backend = if i % 2 == 0 { "even" } else { "odd" };
        // Ids of the test's choosing, so that the pages below can be
        // spelled out (a put under a chosen id is allowed).
        let id = i + 1;
        unit.push(Op::put(message(id, Direction::Outgoing, backend, "1")));
    }
    applied(store.commit(unit).await.unwrap());
    let ids = |v: Vec<Message>| v.into_iter().map(|m| m.id).collect::<Vec<_>>();

    // All backends merge in id order, and pages continue after `after_id`.
    let queued = store
        .messages_by_status(Status::Queued, None, None, 4)
        .await
        .unwrap();
    assert_eq!(ids(queued), vec![1, 2, 3, 4]);
    let queued = store
        .messages_by_status(Status::Queued, None, Some(4), 100)
        .await
        .unwrap();
    assert_eq!(ids(queued), vec![5, 6, 7, 8, 9, 10]);
    let odd = store
        .messages_by_status(Status::Queued, Some("odd"), Some(2), 2)
        .await
        .unwrap();
    assert_eq!(ids(odd), vec![4, 6]);

    let unit = Unit::new()
        .with(Update::status(3, Status::Sent, 50).into())
        .with(
            Update::status(4, Status::Errored, 51)
                .attempts(1)
                .retry_after(Some(99))
                .into(),
        )
        .with(
            Update::status(3, Status::Delivered, 52)
                .foreign_id("abc")
                .into(),
        );
    applied(store.commit(unit).await.unwrap());

    let queued = store
        .messages_by_status(Status::Queued, None, None, 100)
        .await
        .unwrap();
    assert_eq!(ids(queued), vec![1, 2, 5, 6, 7, 8, 9, 10]);
    // Final statuses leave the index; the message is found by id.
    assert!(matches!(
        store
            .messages_by_status(Status::Delivered, Some("even"), None, 100)
            .await,
        Err(StoreError::NotIndexed { status: 'D' })
    ));
    let three = &store.message(3).await.unwrap().unwrap();
    assert_eq!(three.status, Status::Delivered);
    assert_eq!(
        (three.sent, three.delivered, three.updated),
        (Some(50), Some(52), 52)
    );
    assert_eq!(
        three.kannel.as_ref().unwrap().foreign_id.as_deref(),
        Some("abc")
    );
    let errored = store
        .messages_by_status(Status::Errored, Some("odd"), None, 100)
        .await
        .unwrap();
    assert_eq!(errored.len(), 1);
    assert_eq!((errored[0].attempts, errored[0].retry_after), (1, Some(99)));

    let unit = Unit::new().with(Update::new(4, 60).retry_after(None).into());
    applied(store.commit(unit).await.unwrap());
    let four = store.message(4).await.unwrap().unwrap();
    assert_eq!(
        (four.status, four.retry_after, four.updated),
        (Status::Errored, None, 60)
    );
    assert_consistent(&store).await;
    store.close().await;
}
}

for_each_backend! {
#[tokio::test]
async fn a_put_that_replaces_moves_every_index(fixture: Fixture) {
    let store = fixture.open().await;
    let original = with_uuid(message(1, Direction::Incoming, "a", "1"), uuid(10));
    applied(
        store
            .commit(Unit::new().with(Op::put(original)))
            .await
            .unwrap(),
    );

    let mut replaced = with_uuid(message(1, Direction::Incoming, "b", "1"), uuid(11));
    replaced.status = Status::Handled;
    applied(
        store
            .commit(Unit::new().with(Op::put(replaced.clone())))
            .await
            .unwrap(),
    );
    assert_eq!(store.message(1).await.unwrap(), Some(replaced));
    assert_eq!(store.message_id_by_mo(&key(10)).await.unwrap(), None);
    assert_eq!(store.message_id_by_mo(&key(11)).await.unwrap(), Some(1));
    assert!(store
        .messages_by_status(Status::Queued, None, None, 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(
        store.counts().await.unwrap(),
        vec![(Direction::Incoming, Status::Handled, 1)]
    );
    // A put under an id above the allocator moves the allocator past it.
    let far = message(1_000, Direction::Incoming, "a", "1");
    applied(store.commit(Unit::new().with(Op::put(far))).await.unwrap());
    let next = store.allocate_id();
    assert!(next > 1_000, "{next}");
    if store.redb().is_some() {
        assert_eq!(next, 1_001);
    }
    assert_consistent(&store).await;
    store.close().await;
}
}

for_each_backend! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn racing_units_with_one_mo_key_apply_once(fixture: Fixture) {
    // Redeliveries of one MO, committed at once from many tasks (several
    // links, or several instances on one database): the first applies,
    // every other answers Duplicate with its id, and nothing of theirs
    // is stored.
    let store = fixture.open().await;
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..16 {
        let store = store.clone();
        racers.spawn(async move {
            let id = store.allocate_id();
            let m = with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(42));
            let unit = Unit::new().unless_mo_known(key(42)).with(Op::put(m));
            (id, store.commit(unit).await.unwrap())
        });
    }
    let mut applied_ids = Vec::new();
    let mut duplicates = Vec::new();
    while let Some(done) = racers.join_next().await {
        match done.unwrap() {
            (id, Outcome::Applied) => applied_ids.push(id),
            (id, Outcome::Duplicate(first)) => duplicates.push((id, first)),
        }
    }
    assert_eq!(applied_ids.len(), 1, "exactly one applies: {applied_ids:?}");
    let first = applied_ids[0];
    assert_eq!(duplicates.len(), 15);
    for (id, answered) in duplicates {
        assert_eq!(answered, first, "a duplicate names the first");
        assert_eq!(store.message(id).await.unwrap(), None);
    }
    assert_eq!(store.message_id_by_mo(&key(42)).await.unwrap(), Some(first));
    assert_eq!(
        store.counts().await.unwrap(),
        vec![(Direction::Incoming, Status::Received, 1)]
    );
    assert_consistent(&store).await;
    store.close().await;
}
}

for_each_backend! {
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn counts_stay_exact_across_many_updates(fixture: Fixture) {
    let store = fixture.open().await;
    // A fixed pseudo-random walk: puts, status changes, replacements.
    let mut seed = 0x2545_f491_4f6c_dd1d_u64;
    let mut next = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    let mut ids = Vec::new();
    for _ in 0..200 {
        let mut unit = Unit::new();
        for _ in 0..1 + next(5) {
            match next(3) {
                0 if !ids.is_empty() => {
                    let id = ids[next(ids.len() as u64) as usize];
                    let status = Status::ALL[next(11) as usize];
                    unit.push(Update::status(id, status, 1).into());
                }
                1 if !ids.is_empty() => {
                    let id = ids[next(ids.len() as u64) as usize];
                    let direction = if next(2) == 0 {
                        Direction::Incoming
                    } else {
                        Direction::Outgoing
                    };
                    let mut m = message(id, direction, ["x", "y", "z"][next(3) as usize], "5");
                    m.status = Status::ALL[next(11) as usize];
                    unit.push(Op::put(m));
                }
                _ => {
                    let id = store.allocate_id();
                    ids.push(id);
                    let m = message(id, Direction::Incoming, ["x", "y"][next(2) as usize], "6");
                    unit.push(Op::put(m));
                }
            }
        }
        applied(store.commit(unit).await.unwrap());
    }
    assert_consistent(&store).await;
    let counted: u64 = store
        .counts()
        .await
        .unwrap()
        .iter()
        .map(|(_, _, n)| n)
        .sum();
    assert_eq!(counted, ids.len() as u64);
    store.close().await;
    let store = fixture.open().await;
    assert_consistent(&store).await;
    store.close().await;
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_committers_share_transactions_and_all_are_durable() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    const UNITS: u64 = 2000;
    // The writer waits on a held transaction while every committer queues
    // its unit, as it waits on the disk under load: the test does not
    // depend on how fast this machine's fsync is.
    let held = hold_writer(&store);
    store.enqueue(Unit::new()).await.unwrap();
    queued(&store, 0).await;
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..UNITS {
        let store = store.clone();
        tasks.spawn(async move {
            let id = store.allocate_id();
            let m = with_uuid(message(id, Direction::Incoming, "smsc", "1"), uuid(n));
            let unit = Unit::new().unless_mo_known(key(n)).with(Op::put(m));
            store.commit(unit).await
        });
    }
    queued(&store, UNITS as usize).await;
    drop(held);
    while let Some(done) = tasks.join_next().await {
        assert_eq!(done.unwrap().unwrap(), Outcome::Applied);
    }
    let stats = store.stats();
    // The empty unit that held the writer, then the committers'.
    assert_eq!(stats.units, UNITS + 1);
    assert!(
        stats.transactions <= UNITS / 4,
        "{} transactions for {UNITS} units: not batching",
        stats.transactions
    );
    // Dropped, not closed: the last handle's drop commits and joins.
    drop(store);

    let store = open(&path);
    for n in 0..UNITS {
        let id = store.message_id_by_mo(&key(n)).await.unwrap().unwrap();
        assert!(store.message(id).await.unwrap().is_some());
    }
    assert_eq!(
        store.counts().await.unwrap(),
        vec![(Direction::Incoming, Status::Received, UNITS)]
    );
    store.close().await;
}

for_each_backend! {
#[tokio::test]
async fn a_known_uuid_applies_once_across_batches(fixture: Fixture) {
    let store = fixture.open().await;
    let first = with_uuid(message(1, Direction::Incoming, "s", "1"), uuid(7));
    let again = with_uuid(message(2, Direction::Incoming, "s", "1"), uuid(7));
    let unit = |m: Message| Unit::new().unless_mo_known(key(7)).with(Op::put(m));
    assert_eq!(store.commit(unit(first)).await.unwrap(), Outcome::Applied);
    assert_eq!(
        store.commit(unit(again)).await.unwrap(),
        Outcome::Duplicate(1)
    );
    assert_eq!(store.message(2).await.unwrap(), None);
    assert_consistent(&store).await;
    store.close().await;
}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_known_uuid_applies_once_within_a_batch() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&store_path(&dir));
    let held = hold_writer(&store);
    // A first unit, which the writer takes alone and is held with.
    let m = message(1, Direction::Incoming, "s", "0");
    store.enqueue(Unit::new().with(Op::put(m))).await.unwrap();
    queued(&store, 0).await;
    let mut racers = Vec::new();
    for id in [2, 3] {
        let racer = store.clone();
        let m = with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(7));
        racers.push(tokio::spawn(async move {
            racer
                .commit(Unit::new().unless_mo_known(key(7)).with(Op::put(m)))
                .await
        }));
        queued(&store, id as usize - 1).await;
    }
    drop(held);
    let mut outcomes = Vec::new();
    for racer in racers {
        outcomes.push(racer.await.unwrap().unwrap());
    }
    assert_eq!(outcomes, vec![Outcome::Applied, Outcome::Duplicate(2)]);
    let stats = store.stats();
    assert_eq!((stats.transactions, stats.largest_batch), (2, 2));
    assert_eq!(store.message(3).await.unwrap(), None);
    assert_consistent(&store).await;
    store.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_unit_leaves_no_trace_and_spares_its_batch() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    let held = hold_writer(&store);
    store.enqueue(Unit::new()).await.unwrap();
    queued(&store, 0).await;

    let units = vec![
        // Applied.
        Unit::new().with(Op::put(with_uuid(
            message(1, Direction::Incoming, "s", "1"),
            uuid(1),
        ))),
        // Refused at its last op: its put, uuid, connection, opt-out and
        // owed callback must be undone.
        Unit::new()
            .with(Op::put(with_uuid(
                message(2, Direction::Outgoing, "s", "2"),
                uuid(2),
            )))
            .with(Op::OptOut {
                identity: "2".to_owned(),
                at: 1,
            })
            .with(Op::OweCallback(callback(2)))
            .with(Update::status(2, Status::Sent, 3).into())
            .with(Update::status(99, Status::Sent, 3).into()),
        // Refused: the UUID belongs to message 1 (same batch).
        Unit::new().with(Op::put(with_uuid(
            message(3, Direction::Incoming, "s", "3"),
            uuid(1),
        ))),
        // Refused: a DLR for a message that was never stored.
        Unit::new().with(Op::AddDlr(DlrEvent {
            message_id: 2,
            time: 1,
            mask: 1,
            text: String::new(),
        })),
        // Applied, and sees the first unit's message.
        Unit::new()
            .with(Op::put(message(4, Direction::Incoming, "s", "4")))
            .with(Op::OweCallback(callback(1)))
            .with(Op::ForgetCallback {
                due: 9,
                id: [9; 16],
            })
            .with(Op::AddDeliveryError(DeliveryError {
                message_id: 1,
                time: 2,
                log: "x".to_owned(),
            }))
            .with(Update::status(1, Status::Handled, 4).into()),
    ];
    let count = units.len();
    let mut waiters = Vec::new();
    for unit in units {
        let waiter = store.clone();
        waiters.push(tokio::spawn(async move { waiter.commit(unit).await }));
        queued(&store, waiters.len()).await;
    }
    drop(held);
    let mut answers = Vec::new();
    for waiter in waiters {
        answers.push(waiter.await.unwrap());
    }
    assert_eq!(store.stats().largest_batch, count as u64);
    assert_eq!(answers[0].as_ref().unwrap(), &Outcome::Applied);
    assert!(matches!(
        answers[1],
        Err(StoreError::Rejected(Rejection::MissingMessage {
            op: 4,
            id: 99
        }))
    ));
    assert!(matches!(
        answers[2],
        Err(StoreError::Rejected(Rejection::UuidTaken {
            op: 0,
            id: 3,
            owner: 1,
            ..
        }))
    ));
    assert!(matches!(
        answers[3],
        Err(StoreError::Rejected(Rejection::MissingMessage {
            op: 0,
            id: 2
        }))
    ));
    assert_eq!(answers[4].as_ref().unwrap(), &Outcome::Applied);
    assert_eq!(store.stats().refused, 3);

    let check = async |store: &Store| {
        assert_eq!(store.message(2).await.unwrap(), None);
        assert_eq!(store.message(3).await.unwrap(), None);
        assert_eq!(store.message_id_by_mo(&key(2)).await.unwrap(), None);
        assert_eq!(store.message_id_by_mo(&key(1)).await.unwrap(), Some(1));
        assert!(store.connection("s", "2").await.unwrap().is_none());
        assert!(store.connection("s", "3").await.unwrap().is_none());
        assert!(!store.is_opted_out("2").await.unwrap());
        assert!(store.dlr_events(2).await.unwrap().is_empty());
        assert_eq!(store.owed_callbacks(10).await.unwrap(), vec![callback(1)]);
        assert_eq!(store.delivery_errors(1).await.unwrap().len(), 1);
        assert_eq!(
            store.message(1).await.unwrap().unwrap().status,
            Status::Handled
        );
        assert!(store.message(4).await.unwrap().is_some());
        assert_consistent(store).await;
    };
    check(&store).await;
    store.close().await;
    check(&open(&path)).await;
}

/// Removals from `by_status` wait for the end of the batch and go in runs
/// (`Batch::drop_unindexed`); what a later unit of the batch puts back, and
/// what a refused unit undoes, must still come out right.
#[tokio::test]
async fn by_status_removals_wait_for_the_batch_and_follow_every_unit() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    let mut unit = Unit::new();
    for id in 1..=200 {
        let backend = if id % 3 == 0 { "b" } else { "a" };
        unit.push(Op::put(message(id, Direction::Outgoing, backend, "1")));
    }
    applied(store.commit(unit).await.unwrap());

    let held = hold_writer(&store);
    store.enqueue(Unit::new()).await.unwrap();
    queued(&store, 0).await;
    let sent = |id| Op::from(Update::status(id, Status::Sent, 5));
    let missing = || Op::from(Update::status(9_999, Status::Sent, 5));
    let mut most = Unit::new();
    // Runs on both backends, broken by the ids left queued, and one key
    // far from the others.
    for id in (1..=150).filter(|id| id % 7 != 0).chain([200]) {
        most.push(sent(id));
    }
    let units = vec![
        // Applied: 131 removals.
        most,
        // Refused: 151 stays queued.
        Unit::new().with(sent(151)).with(missing()),
        // Applied: 7 leaves Q for E, then the next unit puts it back.
        Unit::new().with(Update::status(7, Status::Errored, 6).into()),
        Unit::new().with(Update::status(7, Status::Queued, 7).into()),
        // Refused after putting 22 (sent above) back in Q: its removal
        // must wait again.
        Unit::new()
            .with(Update::status(22, Status::Queued, 8).into())
            .with(missing()),
        // Refused after a new queued message: its entry must go.
        Unit::new()
            .with(Op::put(message(300, Direction::Outgoing, "a", "1")))
            .with(missing()),
        // Applied: 14 leaves Q and comes back within one unit.
        Unit::new()
            .with(Update::status(14, Status::Errored, 9).into())
            .with(Update::status(14, Status::Queued, 10).into()),
    ];
    let mut waiters = Vec::new();
    for unit in units {
        let waiter = store.clone();
        waiters.push(tokio::spawn(async move { waiter.commit(unit).await }));
        queued(&store, waiters.len()).await;
    }
    drop(held);
    let mut refused = Vec::new();
    for (n, waiter) in waiters.into_iter().enumerate() {
        if waiter.await.unwrap().is_err() {
            refused.push(n);
        }
    }
    assert_eq!(refused, vec![1, 4, 5]);
    assert_eq!(store.stats().largest_batch, 7);

    let check = async |store: &Store| {
        let queued: Vec<MessageId> = store
            .messages_by_status(Status::Queued, None, None, 1_000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| m.id)
            .collect();
        let expected: Vec<MessageId> = (1..=199).filter(|id| *id % 7 == 0 || *id > 150).collect();
        assert_eq!(queued, expected);
        assert_eq!(
            store.message(22).await.unwrap().unwrap().status,
            Status::Sent
        );
        assert_eq!(store.message(300).await.unwrap(), None);
        assert_consistent(store).await;
    };
    check(&store).await;
    store.close().await;
    check(&open(&path)).await;
}

#[tokio::test]
async fn a_crash_after_commit_loses_nothing_and_ids_continue() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let crash_image = dir.path().join("crashed.redb");
    let store = open(&path);
    let mut stored = Vec::new();
    for _ in 0..50 {
        let id = store.allocate_id();
        // Ids given out but never committed are gaps, never reused.
        let _lost = store.allocate_id();
        let m = with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(id));
        applied(store.commit(Unit::new().with(Op::put(m))).await.unwrap());
        stored.push(id);
    }
    // The file as a killed process leaves it: committed, never closed.
    copy_store(&path, &crash_image);
    store
        .enqueue(Unit::new().with(Update::status(1, Status::Handled, 9).into()))
        .await
        .unwrap();
    // Dropping the last handle commits what was enqueued.
    drop(store);

    for (file, status_of_1) in [(&crash_image, Status::Received), (&path, Status::Handled)] {
        let store = open(file);
        for id in &stored {
            assert_eq!(store.message_id_by_mo(&key(*id)).await.unwrap(), Some(*id));
        }
        assert_eq!(store.message(1).await.unwrap().unwrap().status, status_of_1);
        let max = *stored.last().unwrap();
        assert_eq!(store.allocate_id(), max + 1);
        assert_consistent(&store).await;
        store.close().await;
    }
}

/// How many MO keys each table holds, read from the file; checks that the
/// writer's copy of `mo_recent` in memory holds as many.
fn mo_key_tables(store: &Store) -> (u64, u64) {
    // Acked units committed first, so the file and memory agree.
    store.redb().unwrap().fence().unwrap();
    let txn = store
        .redb()
        .unwrap()
        .database()
        .unwrap()
        .begin_read()
        .unwrap();
    let recent = txn.open_table(schema::MO_RECENT).unwrap().len().unwrap();
    let moved = txn.open_table(schema::MO_KEYS).unwrap().len().unwrap();
    let in_memory = store.redb().unwrap().inner.shared.recent_mos().len() as u64;
    assert_eq!(in_memory, recent, "keys in memory and in mo_recent");
    (recent, moved)
}

/// New MO keys gather in `mo_recent` and move to `mo_keys` in one pass;
/// wherever a key is, it is found, a redelivery is a duplicate, a refused
/// unit's key leaves no trace, and a crash or a restart loses none.
#[tokio::test]
async fn mo_keys_gather_in_mo_recent_then_move_and_stay_known() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let crash_image = dir.path().join("crashed.redb");
    let options = StoreOptions {
        mo_keys_every: 4,
        ..StoreOptions::default()
    };
    let store = Store::open(&path, options.clone()).unwrap();
    let mo = |id: MessageId| with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(id));
    let put_mo = |id: MessageId| Unit::new().unless_mo_known(key(id)).with(Op::put(mo(id)));
    for id in 1..=3 {
        applied(store.commit(put_mo(id)).await.unwrap());
    }
    assert_eq!(mo_key_tables(&store), (3, 0));
    // A redelivery of a key still in mo_recent, and a new MO that takes
    // its key: refused, and its own key with it.
    assert_eq!(
        store.commit(put_mo(2)).await.unwrap(),
        Outcome::Duplicate(2)
    );
    let mut thief = mo(50);
    thief.kannel.as_mut().unwrap().uuid = Some(uuid(3));
    let refused = store
        .commit(Unit::new().with(Op::put(mo(51))).with(Op::put(thief)))
        .await;
    assert!(
        matches!(
            refused,
            Err(StoreError::Rejected(Rejection::UuidTaken { owner: 3, .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(store.message_id_by_mo(&key(51)).await.unwrap(), None);
    assert_eq!(mo_key_tables(&store), (3, 0));

    // From the fourth key on, each batch moves the oldest: an eighth of
    // four, but at least as many as it added (one).
    applied(store.commit(put_mo(4)).await.unwrap());
    assert_eq!(mo_key_tables(&store), (3, 1));
    for id in 5..=6 {
        applied(store.commit(put_mo(id)).await.unwrap());
    }
    assert_eq!(mo_key_tables(&store), (3, 3));
    // A batch that adds four moves four.
    let mut unit = Unit::new();
    for id in 7..=10 {
        unit.push(Op::put(mo(id)));
    }
    applied(store.commit(unit).await.unwrap());
    assert_eq!(mo_key_tables(&store), (3, 7));
    for id in [1, 10] {
        assert_eq!(
            store.commit(put_mo(id)).await.unwrap(),
            Outcome::Duplicate(id)
        );
    }
    // Replacing an MO with one of another key frees the old key, in
    // either table.
    for (id, new_uuid) in [(1, 101), (9, 109)] {
        let mut replaced = mo(id);
        replaced.kannel.as_mut().unwrap().uuid = Some(uuid(new_uuid));
        applied(
            store
                .commit(Unit::new().with(Op::put(replaced)))
                .await
                .unwrap(),
        );
        assert_eq!(store.message_id_by_mo(&key(id)).await.unwrap(), None);
        assert_eq!(
            store.message_id_by_mo(&key(new_uuid)).await.unwrap(),
            Some(id)
        );
    }
    assert_eq!(mo_key_tables(&store), (3, 7));
    assert_consistent(&store).await;

    // Killed with keys in mo_recent, or closed: both come back.
    copy_store(&path, &crash_image);
    store.close().await;
    for file in [&crash_image, &path] {
        let store = Store::open(file, options.clone()).unwrap();
        let known = [(101, 1), (2, 2), (4, 4), (7, 7), (8, 8), (109, 9), (10, 10)];
        for (uuid_n, id) in known {
            assert_eq!(
                store.message_id_by_mo(&key(uuid_n)).await.unwrap(),
                Some(id)
            );
        }
        assert_eq!(store.message_id_by_mo(&key(9)).await.unwrap(), None);
        let redelivered = Unit::new().unless_mo_known(key(109)).with(Op::put(mo(99)));
        assert_eq!(
            store.commit(redelivered).await.unwrap(),
            Outcome::Duplicate(9)
        );
        assert_consistent(&store).await;
        store.close().await;
    }
}

/// A store of schema 4 lacked only `mo_recent`: it opens, upgraded.
#[tokio::test]
async fn a_store_of_the_version_before_is_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    let m = with_uuid(message(1, Direction::Incoming, "s", "1"), uuid(1));
    applied(store.commit(Unit::new().with(Op::put(m))).await.unwrap());
    store.close().await;
    {
        // What schema 4 wrote: the key in mo_keys, no mo_recent.
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::MO_KEYS)
            .unwrap()
            .insert((MO_TIME, &uuid(1)), 1)
            .unwrap();
        assert!(txn.delete_table(schema::MO_RECENT).unwrap());
        txn.open_table(schema::META)
            .unwrap()
            .insert(schema::META_SCHEMA_VERSION, schema::UPGRADABLE_FROM)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&path);
    assert_eq!(store.message_id_by_mo(&key(1)).await.unwrap(), Some(1));
    let version = {
        let txn = store
            .redb()
            .unwrap()
            .database()
            .unwrap()
            .begin_read()
            .unwrap();
        let meta = txn.open_table(schema::META).unwrap();
        let version = meta
            .get(schema::META_SCHEMA_VERSION)
            .unwrap()
            .unwrap()
            .value();
        version
    };
    assert_eq!(version, schema::SCHEMA_VERSION);
    store.close().await;
}

/// Schema 5 stored the sendsms MT options without `compress`: a store of
/// it is opened with those messages rewritten, the others untouched.
#[tokio::test]
async fn a_schema_5_store_is_upgraded_with_its_sendsms_messages_rewritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    let plain = message(1, Direction::Incoming, "s", "1");
    applied(
        store
            .commit(Unit::new().with(Op::put(plain.clone())))
            .await
            .unwrap(),
    );
    store.close().await;
    let mut sendsms = message(2, Direction::Outgoing, "s", "2");
    sendsms.kannel = Some(crate::model::KannelInfo {
        mt_options: Some(Box::new(crate::model::MtOptions {
            account: Some("acct".into()),
            ..crate::model::MtOptions::default()
        })),
        ..crate::model::KannelInfo::default()
    });
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::MESSAGES)
            .unwrap()
            .insert(2, super::legacy::encode_v5(&sendsms).as_slice())
            .unwrap();
        txn.open_table(schema::META)
            .unwrap()
            .insert(schema::META_SCHEMA_VERSION, 5)
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&path);
    assert_eq!(store.message(2).await.unwrap(), Some(sendsms));
    assert_eq!(store.message(1).await.unwrap(), Some(plain));
    store.close().await;
}

#[tokio::test]
async fn a_closed_store_says_so_and_frees_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    let other = store.clone();
    assert!(matches!(
        Store::open(&path, StoreOptions::default()),
        Err(StoreError::AlreadyOpen { .. })
    ));
    for n in 0..100 {
        let m = message(n + 1, Direction::Incoming, "s", "1");
        store.enqueue(Unit::new().with(Op::put(m))).await.unwrap();
    }
    store.close().await;
    store.close().await;
    assert!(matches!(
        other.commit(Unit::new()).await,
        Err(StoreError::Closed)
    ));
    assert!(matches!(other.message(1).await, Err(StoreError::Closed)));
    // Everything enqueued before the close was committed.
    let store = open(&path);
    assert_eq!(all_messages(&store).await.len(), 100);
    store.close().await;
}

#[tokio::test]
async fn an_oversized_unit_is_refused_before_it_is_queued() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions {
        max_unit_ops: 2,
        ..StoreOptions::default()
    };
    let store = Store::open(&store_path(&dir), options).unwrap();
    let unit = Unit::new()
        .with(Op::OptIn {
            identity: "1".into(),
        })
        .with(Op::OptIn {
            identity: "2".into(),
        })
        .with(Op::OptIn {
            identity: "3".into(),
        });
    assert!(matches!(
        store.commit(unit).await,
        Err(StoreError::Rejected(Rejection::TooManyOps {
            ops: 3,
            max: 2
        }))
    ));
    store.close().await;
}

#[test]
fn garbage_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.redb");
    let garbage: Vec<u8> = (0..100_000u32).map(|i| (i * 7919 % 251) as u8).collect();
    std::fs::write(&path, garbage).unwrap();
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
}

#[tokio::test]
async fn a_damaged_store_is_refused_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    // A commit per unit, so that live pages fill the file and every place
    // damaged below is one redb reads (with the journal, 500 units make a
    // file of a few pages).
    let per_unit = StoreOptions {
        journal: false,
        ..StoreOptions::default()
    };
    let store = Store::open(&path, per_unit).unwrap();
    for n in 0..500 {
        let m = with_uuid(message(n + 1, Direction::Incoming, "s", "1"), uuid(n));
        applied(store.commit(Unit::new().with(Op::put(m))).await.unwrap());
    }
    store.close().await;
    let good = std::fs::read(&path).unwrap();
    assert!(good.len() > 16384 + 4096);

    // Truncated.
    std::fs::write(&path, &good[..good.len() / 3]).unwrap();
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(!err.is_transient(), "{err}");

    // A page overwritten: the header, a B-tree page, the middle.
    for start in [512, 4096, 16384, good.len() / 2] {
        let mut damaged = good.clone();
        for b in &mut damaged[start..start + 4096] {
            *b ^= 0x5a;
        }
        std::fs::write(&path, &damaged).unwrap();
        let err = Store::open(&path, StoreOptions::default()).unwrap_err();
        assert!(
            matches!(err, StoreError::NotAStore { .. }),
            "{start}: {err}"
        );

        // Without the check redb trusts the file and may panic reading
        // it; the open still answers with an error or a store.
        let unchecked = StoreOptions {
            check_integrity_on_open: false,
            ..StoreOptions::default()
        };
        let opened = std::panic::catch_unwind(|| Store::open(&path, unchecked).map(drop));
        assert!(opened.is_ok(), "{start}: open panicked");
    }
}

#[test]
fn another_schema_version_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    drop(open(&path));
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::META)
            .unwrap()
            .insert(schema::META_SCHEMA_VERSION, 99)
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(
        matches!(
            err,
            StoreError::SchemaMismatch {
                found: 99,
                expected,
                ..
            } if expected == schema::SCHEMA_VERSION
        ),
        "{err}"
    );
}

#[test]
fn a_file_of_another_program_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("other.redb");
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        let other: redb::TableDefinition<&str, &str> = redb::TableDefinition::new("messages");
        txn.open_table(other).unwrap().insert("a", "b").unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(&path, StoreOptions::default()).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    // Reads use the same snapshot API the store does.
    let db = redb::Database::open(&path).unwrap();
    assert!(db.begin_read().is_ok());
}

#[test]
fn time_ordered_uuids_are_version_7_and_grow_with_time() {
    let first = time_ordered_uuid();
    std::thread::sleep(std::time::Duration::from_millis(2));
    let second = time_ordered_uuid();
    assert!(first < second);
    let parsed = uuid::Uuid::from_bytes(second);
    assert_eq!(parsed.get_version_num(), 7);
    assert_eq!(parsed.get_variant(), uuid::Variant::RFC4122);
    assert_ne!(time_ordered_uuid(), time_ordered_uuid());
}

#[test]
fn handles_are_send_sync_and_errors_clone() {
    fn shareable<T: Send + Sync + Clone + 'static>() {}
    shareable::<Store>();
    shareable::<StoreError>();
    shareable::<Unit>();
}

for_each_backend! {
#[tokio::test]
async fn a_late_sent_never_replaces_a_delivered_or_failed_report(fixture: Fixture) {
    let store = fixture.open().await;
    let mut unit = Unit::new();
    for id in [1, 2] {
        unit.push(Op::put(message(id, Direction::Outgoing, "fake", "1")));
    }
    applied(store.commit(unit).await.unwrap());
    // The reports arrive first...
    let reports = Unit::new()
        .with(Update::status(1, Status::Delivered, 10).into())
        .with(Update::status(2, Status::Failed, 10).into());
    applied(store.commit(reports).await.unwrap());
    // ...then the acks.
    let acks = Unit::new()
        .with(Update::status(1, Status::Sent, 11).into())
        .with(Update::status(2, Status::Sent, 11).into());
    applied(store.commit(acks).await.unwrap());
    let one = store.message(1).await.unwrap().unwrap();
    assert_eq!(
        (one.status, one.sent, one.delivered),
        (Status::Delivered, Some(11), Some(10))
    );
    assert_eq!(
        store.message(2).await.unwrap().unwrap().status,
        Status::Failed
    );
    assert_consistent(&store).await;
    store.close().await;
}
}

/// Commits `unit` until the store takes it again after a failure, within a
/// few seconds (the writer's pauses between reopening tries start at
/// 100 ms).
async fn commit_once_recovered(store: &Store, unit: Unit) -> Outcome {
    let started = std::time::Instant::now();
    loop {
        match store.commit(unit.clone()).await {
            Ok(outcome) => return outcome,
            Err(e) => {
                assert!(
                    e.is_transient(),
                    "a recovering store answers transient errors: {e}"
                );
                assert!(
                    started.elapsed() < std::time::Duration::from_secs(10),
                    "the store did not recover: {e}"
                );
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    }
}

#[tokio::test]
async fn after_a_storage_failure_the_store_reopens_its_file_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let faults = faults::Faults::new();
    let options = StoreOptions {
        faults: Some(faults.clone()),
        ..StoreOptions::default()
    };
    let store = Store::open(&path, options).unwrap();
    let m = |id| with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(id));
    let first = store.allocate_id();
    applied(
        store
            .commit(Unit::new().with(Op::put(m(first))))
            .await
            .unwrap(),
    );

    // The disk fails: the batch fails, and so does every try at reopening
    // while it still fails; readers and writers get transient errors.
    faults.fail_writes(true);
    let lost = store.allocate_id();
    let failed = store
        .commit(Unit::new().with(Op::put(m(lost))))
        .await
        .unwrap_err();
    assert!(
        matches!(failed, StoreError::Storage { .. }),
        "the failed batch's error: {failed:?}"
    );
    for _ in 0..3 {
        let again = store
            .commit(Unit::new().with(Op::put(m(lost))))
            .await
            .unwrap_err();
        assert!(again.is_transient(), "{again:?}");
    }
    assert!(matches!(
        store.message(first).await,
        Err(StoreError::Recovering)
    ));

    // The disk is back: the writer reopens the file by itself, without a
    // unit coming, and readers get it back.
    faults.fail_writes(false);
    let started = std::time::Instant::now();
    while let Err(e) = store.message(first).await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "the store did not reopen its file: {e}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let after = store.allocate_id();
    applied(commit_once_recovered(&store, Unit::new().with(Op::put(m(after)))).await);
    assert!(store.message(first).await.unwrap().is_some());
    assert!(store.message(lost).await.unwrap().is_none());
    assert!(store.message(after).await.unwrap().is_some());
    // The duplicate check still sees what was stored before the failure.
    let redelivered = Unit::new()
        .unless_mo_known(key(first))
        .with(Op::put(m(store.allocate_id())));
    assert_eq!(
        store.commit(redelivered).await.unwrap(),
        Outcome::Duplicate(first)
    );
    assert_consistent(&store).await;
    store.close().await;

    let reopened = open(&path);
    assert!(reopened.message(first).await.unwrap().is_some());
    assert!(reopened.message(after).await.unwrap().is_some());
    assert!(reopened.allocate_id() > after);
    assert_consistent(&reopened).await;
}

#[tokio::test]
async fn the_configured_backend_opens_and_an_unreachable_database_is_a_transient_error() {
    use crate::config::{StoreBackend, StoreConfig};
    let dir = tempfile::tempdir().unwrap();
    let mut config = StoreConfig {
        path: store_path(&dir),
        ..StoreConfig::default()
    };
    let store = Store::open_configured(&config).await.unwrap();
    assert_eq!(store.backend_name(), "redb");
    assert_eq!(store.path(), Some(config.path.as_path()));
    store.close().await;

    // Nothing listens on port 1.
    config.backend = StoreBackend::Postgres;
    config.postgres.host = Some("127.0.0.1".to_owned());
    config.postgres.port = Some(1);
    let refused = Store::open_configured(&config).await.unwrap_err();
    assert!(
        matches!(
            refused,
            StoreError::Database {
                during: "connecting",
                ..
            }
        ),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("PostgreSQL"), "{refused}");
    assert!(refused.is_transient());
}

mod backup;
mod commit_delay;
mod journal;
mod retention;
