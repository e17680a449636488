//! Backups, verify and compact (`backup.rs`).

use super::*;

/// A store with something in every table.
async fn fill(store: &Store, messages: u64, text_len: usize) {
    for chunk in (1..=messages).collect::<Vec<_>>().chunks(100) {
        let mut unit = Unit::new();
        for &id in chunk {
            let mut m = with_uuid(message(id, Direction::Incoming, "s", "1"), uuid(id));
            m.text = "x".repeat(text_len);
            unit.push(Op::put(m));
        }
        applied(store.commit(unit).await.unwrap());
    }
    let id = messages + 1;
    let unit = Unit::new()
        .with(Op::put(message(id, Direction::Outgoing, "s", "2")))
        .with(Op::AddDlr(DlrEvent {
            message_id: id,
            time: 1,
            mask: 8,
            text: "acked".into(),
        }))
        .with(Op::AddDeliveryError(DeliveryError {
            message_id: id,
            time: 1,
            log: "x".into(),
        }))
        .with(Op::OweCallback(callback(id)))
        .with(Op::OptOut {
            identity: "3".into(),
            at: 1,
        });
    applied(store.commit(unit).await.unwrap());
}

#[tokio::test]
async fn a_backup_holds_every_table_and_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(&store_path(&dir));
    fill(&store, 30, 10).await;
    let dest = dir.path().join("backup.redb");
    let report = store.backup(&dest).unwrap();
    assert_eq!(report.messages, 31);
    assert!(report.bytes > 0);
    // Never over an existing file.
    assert!(matches!(store.backup(&dest), Err(StoreError::Open { .. })));
    let original = all_messages(&store).await;
    let tables = |txn: redb::ReadTransaction| -> Vec<String> {
        let mut names: Vec<String> = txn
            .list_tables()
            .unwrap()
            .map(|t| redb::TableHandle::name(&t).to_owned())
            .collect();
        names.sort();
        names
    };
    let every_table = tables(store.redb().unwrap().snapshot().unwrap());
    store.close().await;

    // Read raw: opening it as a store would create any missing table.
    let raw = redb::Database::open(&dest).unwrap();
    assert_eq!(
        tables(raw.begin_read().unwrap()),
        every_table,
        "a table was not copied"
    );
    drop(raw);
    let verified = verify(&dest).unwrap();
    assert!(verified.is_ok(), "{verified:#?}");
    assert_eq!(verified.messages, 31);
    assert_eq!(verified.entries, report.entries);
    let copy = open(&dest);
    assert_eq!(all_messages(&copy).await, original);
    for id in 1..=30 {
        assert_eq!(copy.message_id_by_mo(&key(id)).await.unwrap(), Some(id));
    }
    assert_eq!(copy.dlr_events(31).await.unwrap().len(), 1);
    assert_eq!(copy.delivery_errors(31).await.unwrap().len(), 1);
    assert_eq!(copy.owed_callbacks(5).await.unwrap(), vec![callback(31)]);
    assert!(copy.is_opted_out("3").await.unwrap());
    assert_consistent(&copy).await;
    copy.close().await;
    assert!(!dir.path().join("backup.redb.partial").exists());
}

#[tokio::test]
async fn verify_finds_tables_that_disagree() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    fill(&store, 3, 10).await;
    store.close().await;
    assert!(verify(&path).unwrap().is_ok());
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(schema::BY_STATUS)
            .unwrap()
            .insert((Status::Queued.as_u8(), "s", 99), ())
            .unwrap();
        txn.open_table(schema::DLR_EVENTS)
            .unwrap()
            .insert((77, 1), [0u8].as_slice())
            .unwrap();
        txn.open_table(schema::COUNTS)
            .unwrap()
            .insert((0, Status::Failed.as_u8()), 5)
            .unwrap();
        txn.commit().unwrap();
    }
    let report = verify(&path).unwrap();
    assert_eq!(report.problem_count, 3, "{report:#?}");
    assert!(!report.is_ok());
}

#[tokio::test]
async fn compact_shrinks_a_store_after_a_purge() {
    let dir = tempfile::tempdir().unwrap();
    let path = store_path(&dir);
    let store = open(&path);
    fill(&store, 3000, 400).await;
    let all = PurgeRule {
        before: Some(Micros::MAX),
        excess: 0,
        now: 0,
        report_window: 0,
        including_owed: true,
        after: None,
        max_purged: 500,
        max_scanned: 500,
    };
    let purged = crate::store::retention::purge_all(&store, all, std::time::Duration::ZERO)
        .await
        .unwrap();
    assert_eq!(purged.purged, 3001);
    store.close().await;
    let compacted = compact(&path).unwrap();
    assert!(
        compacted.after * 4 < compacted.before,
        "{} bytes before, {} after",
        compacted.before,
        compacted.after
    );
    assert_eq!(compacted.after, std::fs::metadata(&path).unwrap().len());
    assert!(verify(&path).unwrap().is_ok());
    // Not while the store is open.
    let store = open(&path);
    assert!(matches!(
        compact(&path),
        Err(StoreError::AlreadyOpen { .. })
    ));
    store.close().await;
}
