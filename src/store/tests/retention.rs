//! Purging: the rule, bounded batches, crash safety (`purge.rs`,
//! `retention.rs`).

use super::*;

/// "Now" for the rule, far after every fixture message's date.
const NOW: Micros = 10_000_000_000;
/// Fixture messages are dated 1000 + id; those dated before this are old.
const CUTOFF: Micros = 1_000_000;
const WINDOW: Micros = 1_000_000;

fn rule() -> PurgeRule {
    PurgeRule {
        before: Some(CUTOFF),
        excess: 0,
        now: NOW,
        report_window: WINDOW,
        including_owed: false,
        after: None,
        max_purged: 1000,
        max_scanned: 1000,
    }
}

/// Checks every index against a full scan, and a redb store's tables
/// against each other as `rapidbox verify` does.
async fn assert_whole(store: &Store) {
    if let Some(redb) = store.redb() {
        let report = crate::store::backup::check(&redb.snapshot().unwrap()).unwrap();
        assert!(report.is_ok(), "{report:#?}");
    }
    assert_consistent(store).await;
}

fn mt(id: MessageId, status: Status) -> Message {
    let mut m = message(id, Direction::Outgoing, "s", "1");
    m.status = status;
    m
}

/// An MT sent at `sent` that asked for reports with `dlr_mask`.
fn sent(id: MessageId, sent: Micros, dlr_mask: i32) -> Message {
    let mut m = mt(id, Status::Sent);
    m.sent = Some(sent);
    m.kannel = Some(KannelInfo {
        dlr_mask,
        coding: -1,
        ..KannelInfo::default()
    });
    m
}

fn mo(id: MessageId) -> Message {
    let mut m = with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(id));
    m.status = Status::Handled;
    m
}

/// Messages 1-16 (see the expectations below) and an opt-out.
async fn fill(store: &Store) {
    for id in 1..=7 {
        applied(
            store
                .commit(Unit::new().with(Op::put(mo(id))))
                .await
                .unwrap(),
        );
    }
    let mut delivered = mt(8, Status::Delivered);
    delivered.in_response_to = Some(1);
    let unit = Unit::new()
        .with(Op::put(delivered))
        .with(Op::AddDlr(DlrEvent {
            message_id: 8,
            time: 9,
            mask: 1,
            text: "ok".into(),
        }))
        .with(Op::AddDeliveryError(DeliveryError {
            message_id: 8,
            time: 8,
            log: "timeout".into(),
        }));
    applied(store.commit(unit).await.unwrap());
    let mut young = mo(15);
    young.date = CUTOFF + 1;
    let unit = Unit::new()
        .with(Op::put(mt(9, Status::Queued)))
        .with(Op::put(mt(10, Status::Errored)))
        .with(Op::put(sent(11, NOW - 10, 31)))
        .with(Op::put(sent(12, 5_000, 31)))
        .with(Op::put(sent(13, NOW - 10, 0)))
        .with(Op::put(mt(14, Status::Delivered)))
        .with(Op::OweCallback(callback(14)))
        .with(Op::put(young))
        .with(Op::put(mt(16, Status::Failed)))
        .with(Op::OptOut {
            identity: "1".into(),
            at: 3,
        });
    applied(store.commit(unit).await.unwrap());
}

const PURGED: [MessageId; 10] = [1, 2, 3, 4, 5, 6, 7, 8, 12, 13];
/// Queued, errored, sent awaiting its report, a dlr-url call owed.
const OWED: [MessageId; 4] = [9, 10, 11, 14];
/// Young (15), and after the young one where the walk stops (16).
const YOUNG: [MessageId; 2] = [15, 16];

async fn assert_purged_as_the_rule_says(store: &Store) {
    for id in PURGED {
        assert_eq!(store.message(id).await.unwrap(), None, "message {id}");
    }
    for id in OWED.into_iter().chain(YOUNG) {
        assert!(store.message(id).await.unwrap().is_some(), "message {id}");
    }
    for id in 1..=7 {
        assert_eq!(
            store.message_id_by_mo(&key(id)).await.unwrap(),
            None,
            "key {id}"
        );
    }
    assert_eq!(store.message_id_by_mo(&key(15)).await.unwrap(), Some(15));
    assert!(store.dlr_events(8).await.unwrap().is_empty());
    assert!(store.delivery_errors(8).await.unwrap().is_empty());
    assert_eq!(store.owed_callbacks(10).await.unwrap().len(), 1);
    // Connections and opt-outs are about people, not messages.
    let c = Connection::new("s", "1");
    assert!(store
        .connection(&c.backend, &c.identity)
        .await
        .unwrap()
        .is_some());
    assert!(store.is_opted_out("1").await.unwrap());
    assert_whole(store).await;
}

#[tokio::test]
async fn a_purge_takes_old_messages_with_all_theirs_and_keeps_owed_work() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    fill(&store).await;
    let moved = mo_key_tables(&store).1;
    assert!(moved > 0, "some purged MO keys are in mo_keys, some recent");

    let report = store.purge(rule()).await.unwrap();
    assert_eq!(report.purged, PURGED.len() as u64);
    assert_eq!(report.kept, OWED.len() as u64);
    assert!(report.finished, "the walk stops at the young message");
    assert_eq!(report.last, Some(14));
    assert_purged_as_the_rule_says(&store).await;
    assert_eq!(store.stats().purged, PURGED.len() as u64);
    assert_eq!(store.stats().purge_transactions, 1);
    // Nothing more to do: the batch commits nothing.
    let again = store.purge(rule()).await.unwrap();
    assert_eq!((again.purged, again.kept), (0, OWED.len() as u64));
    assert_eq!(store.stats().purge_transactions, 1);
    store.close().await;

    // The MO keys in mo_recent were forgotten in memory and on disk.
    let store = open(&path);
    assert_purged_as_the_rule_says(&store).await;

    // A one-off cleanup that gives up owed work takes the rest that is old.
    let all = PurgeRule {
        including_owed: true,
        ..rule()
    };
    assert_eq!(store.purge(all).await.unwrap().purged, OWED.len() as u64);
    assert!(store.owed_callbacks(10).await.unwrap().is_empty());
    assert!(store
        .messages_by_status(Status::Queued, None, None, 10)
        .await
        .unwrap()
        .is_empty());
    let left: Vec<_> = all_messages(&store)
        .await
        .iter()
        .map(|m| m.id)
        .rev()
        .collect();
    assert_eq!(left, YOUNG);
    assert_whole(&store).await;
    store.close().await;
}

for_each_backend! {
#[tokio::test]
async fn the_report_window_and_dlr_mask_decide_for_sent_messages(fixture: Fixture) {
    let store = fixture.open().await;
    let unit = Unit::new()
        .with(Op::put(sent(1, NOW - WINDOW + 1, 1)))
        .with(Op::put(sent(2, NOW - WINDOW, 2)))
        .with(Op::put(sent(3, NOW - 1, 4 | 8 | 16)))
        .with(Op::put(sent(4, NOW - 1, -1)));
    applied(store.commit(unit).await.unwrap());
    let report = store.purge(rule()).await.unwrap();
    assert_eq!((report.purged, report.kept), (2, 2));
    // Still waiting: a final report asked for (1), or not said (4).
    assert!(store.message(1).await.unwrap().is_some());
    assert!(store.message(4).await.unwrap().is_some());
    assert_whole(&store).await;
    store.close().await;
}
}

for_each_backend! {
#[tokio::test]
async fn purge_batches_are_bounded_and_go_on_from_their_cursor(fixture: Fixture) {
    let store = fixture.open().await;
    let mut unit = Unit::new();
    for id in 1..=3 {
        unit.push(Op::put(mt(id, Status::Queued)));
    }
    for id in 4..=33 {
        unit.push(Op::put(mo(id)));
    }
    applied(store.commit(unit).await.unwrap());

    let small = PurgeRule {
        max_purged: 10,
        ..rule()
    };
    let first = store.purge(small).await.unwrap();
    assert_eq!((first.purged, first.kept), (10, 3));
    assert_eq!(first.last, Some(13));
    assert!(!first.finished);
    assert_eq!(store.message(13).await.unwrap(), None);
    assert!(store.message(14).await.unwrap().is_some());

    // Looking at only two messages, both owed: nothing purged, none
    // committed, and the cursor still moves.
    let peek = PurgeRule {
        max_scanned: 2,
        ..rule()
    };
    let looked = store.purge(peek).await.unwrap();
    assert_eq!((looked.purged, looked.kept, looked.last), (0, 2, Some(2)));
    assert!(!looked.finished);
    assert_eq!(store.stats().purge_transactions, 1);

    let rest = crate::store::retention::purge_all(
        &store,
        PurgeRule {
            after: first.last,
            ..small
        },
        std::time::Duration::ZERO,
    )
    .await
    .unwrap();
    assert_eq!(rest.purged, 20);
    assert!(rest.finished);
    assert_eq!(store.stats().purge_transactions, 3, "10 per transaction");
    assert_eq!(all_messages(&store).await.len(), 3);
    assert_whole(&store).await;
    store.close().await;
}
}

for_each_backend! {
#[tokio::test]
async fn a_maximum_count_purges_the_oldest_beyond_it_sparing_owed_work(fixture: Fixture) {
    let store = fixture.open().await;
    let mut unit = Unit::new().with(Op::put(mt(1, Status::Queued)));
    for id in 2..=100 {
        let mut m = mo(id);
        m.date = NOW;
        unit.push(Op::put(m));
    }
    applied(store.commit(unit).await.unwrap());
    let retention = Retention {
        max_age: None,
        max_messages: Some(30),
        report_window: std::time::Duration::from_secs(1),
        every: std::time::Duration::from_secs(60),
        batch: 16,
        pause: std::time::Duration::ZERO,
    };
    let swept = retention.sweep(&store).await.unwrap();
    assert_eq!((swept.purged, swept.kept), (70, 1));
    let mut left: Vec<_> = all_messages(&store).await.iter().map(|m| m.id).collect();
    left.sort_unstable();
    let expected: Vec<_> = std::iter::once(1).chain(72..=100).collect();
    assert_eq!(left, expected);
    assert_whole(&store).await;
    // At the maximum, a sweep purges nothing.
    assert_eq!(retention.sweep(&store).await.unwrap().purged, 0);
    store.close().await;
}
}

/// A purge batch is one transaction: a crash after it keeps all of it, a
/// failure during it keeps none of it, and either way the store is whole.
#[tokio::test]
async fn a_purge_batch_is_all_or_nothing_across_crashes_and_failures() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let crash_image = dir.path().join("crashed.redb");
    let faults = faults::Faults::new();
    let options = StoreOptions {
        faults: Some(faults.clone()),
        mo_keys_every: 5,
        ..StoreOptions::default()
    };
    let store = Store::open(&path, options).unwrap();
    for id in 1..=40 {
        let mut m = mo(id);
        if id % 3 == 0 {
            // Keyed at time -1, where mo_keys is purged key by key.
            if let Some(k) = m.kannel.as_mut() {
                k.time = None;
            }
        }
        applied(store.commit(Unit::new().with(Op::put(m))).await.unwrap());
    }
    let (_, moved) = mo_key_tables(&store);
    assert!(moved > 20, "most keys are in mo_keys: {moved}");
    let small = PurgeRule {
        max_purged: 10,
        ..rule()
    };

    faults.fail_writes(true);
    let failed = store.purge(small).await.unwrap_err();
    assert!(failed.is_transient(), "{failed:?}");
    faults.fail_writes(false);
    let first = loop {
        match store.purge(small).await {
            Ok(report) => break report,
            Err(e) => {
                assert!(e.is_transient(), "{e:?}");
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
    };
    assert_eq!(first.purged, 10, "the failed batch left nothing half done");
    // The file as a killed process leaves it, between two batches.
    copy_store(&path, &crash_image);
    let rest = PurgeRule {
        after: first.last,
        ..small
    };
    assert_eq!(store.purge(rest).await.unwrap().purged, 10);
    store.close().await;

    let crashed = open(&crash_image);
    let left: Vec<_> = all_messages(&crashed).await.iter().map(|m| m.id).collect();
    assert_eq!(left, (11..=40).rev().collect::<Vec<_>>());
    for id in 1..=10 {
        assert_eq!(crashed.message_id_by_mo(&key(id)).await.unwrap(), None);
    }
    assert_whole(&crashed).await;
    // The sweep just starts again.
    let done = crate::store::retention::purge_all(&crashed, small, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(done.purged, 30);
    assert_whole(&crashed).await;
    crashed.close().await;
}

for_each_backend! {
/// A late delivery report names its MT by id: ids stay unique after a
/// purge took the newest messages too, across a restart.
#[tokio::test]
async fn ids_are_never_given_again_after_purging_the_newest(fixture: Fixture) {
    let store = fixture.open().await;
    for id in 1..=5 {
        applied(
            store
                .commit(Unit::new().with(Op::put(mo(id))))
                .await
                .unwrap(),
        );
    }
    assert_eq!(store.purge(rule()).await.unwrap().purged, 5);
    store.close().await;
    let store = fixture.open().await;
    assert!(all_messages(&store).await.is_empty());
    let next = store.allocate_id();
    assert!(next > 5, "{next}");
    if store.redb().is_some() {
        assert_eq!(next, 6);
    }
    store.close().await;
}
}

/// A damaged entry is `rapidbox verify`'s to report: retention steps over
/// it rather than stopping for good.
#[tokio::test]
async fn retention_steps_over_a_damaged_message() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    for id in 1..=4 {
        applied(
            store
                .commit(Unit::new().with(Op::put(mo(id))))
                .await
                .unwrap(),
        );
    }
    store.close().await;
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::MESSAGES)
            .unwrap()
            .insert(2, [0xffu8, 0xff].as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = open(&path);
    let report = store.purge(rule()).await.unwrap();
    assert_eq!((report.purged, report.kept), (3, 1));
    assert!(report.finished);
    assert!(matches!(
        store.message(2).await,
        Err(StoreError::Corrupt { .. })
    ));
    store.close().await;
}
