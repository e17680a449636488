//! The group commit's wait (`commit_delay.rs`) in a running store: it
//! makes groups bigger under a steady stream from many senders, and a
//! sender alone never waits for it.

use std::time::{Duration, Instant};

use super::*;

fn with_delay(delay: Duration) -> StoreOptions {
    StoreOptions {
        journal: true,
        checkpoint_interval: Duration::from_secs(3600),
        commit_delay: delay,
        ..StoreOptions::default()
    }
}

fn mo_unit(id: MessageId) -> Unit {
    Unit::new().unless_mo_known(key(id)).with(Op::put(with_uuid(
        message(id, Direction::Incoming, "s", "1"),
        uuid(id),
    )))
}

#[tokio::test]
async fn a_steady_stream_from_many_senders_shares_fewer_journal_syncs() {
    // One new unit every millisecond, each from its own task (as MOs in a
    // bearerbox's window): 1,000/s, and a 5 ms wait expects five more. A
    // journal sync takes well under 5 ms when idle, so without the wait
    // most groups would hold one unit; with it, several.
    const UNITS: u64 = 300;
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Store::open(&path, with_delay(Duration::from_millis(5))).unwrap();
    let before = store.stats().transactions;
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    let mut tasks = tokio::task::JoinSet::new();
    let mut ids = Vec::new();
    for _ in 0..UNITS {
        tick.tick().await;
        let store = store.clone();
        let id = store.allocate_id();
        ids.push(id);
        tasks.spawn(async move { store.commit(mo_unit(id)).await });
    }
    while let Some(done) = tasks.join_next().await {
        applied(done.unwrap().unwrap());
    }
    let groups = store.stats().transactions - before;
    assert!(
        groups * 2 <= UNITS,
        "{UNITS} units in {groups} journaled groups: the wait gathered nothing"
    );
    store.close().await;
    // Every unit answered is there after reopening.
    let store = Store::open(&path, with_delay(Duration::ZERO)).unwrap();
    for id in ids {
        assert_eq!(store.message_id_by_mo(&key(id)).await.unwrap(), Some(id));
    }
    assert_consistent(&store).await;
    store.close().await;
}

#[tokio::test]
async fn a_sender_alone_never_waits_for_the_delay() {
    // A delay far longer than a journal sync: a sender that waits for
    // each answer before the next must never see it, however fast it
    // sends.
    const DELAY: Duration = Duration::from_millis(400);
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = Store::open(&path, with_delay(DELAY)).unwrap();
    let started = Instant::now();
    for _ in 0..40 {
        let id = store.allocate_id();
        let one = Instant::now();
        applied(store.commit(mo_unit(id)).await.unwrap());
        assert!(
            one.elapsed() < DELAY,
            "a lone unit waited {:?}",
            one.elapsed()
        );
    }
    assert!(started.elapsed() < DELAY * 4, "{:?}", started.elapsed());
    store.close().await;
}
