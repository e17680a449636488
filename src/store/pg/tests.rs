//! The PostgreSQL store against a real PostgreSQL (the test harness in
//! `tests/support/postgres.rs`, shared with the integration tests).

#[path = "../../../tests/support/ports.rs"]
#[allow(dead_code)]
mod ports;
#[path = "../../../tests/support/postgres.rs"]
#[allow(dead_code)]
pub(crate) mod postgres;

use super::*;
use crate::model::{Connection, Direction, KannelInfo, Message, MoKey, Status};
use crate::store::StoreError;
use crate::store::{Op, Outcome, Unit, Update};

/// The connection string of a fresh database on the test process's
/// server, or `None` when PostgreSQL is not installed (outside CI).
pub(crate) async fn fresh_database(test: &str) -> Option<String> {
    if !postgres::require_postgres(test) {
        return None;
    }
    let server = tokio::task::spawn_blocking(postgres::PgServer::shared)
        .await
        .unwrap();
    let db = tokio::task::spawn_blocking(move || server.create_database())
        .await
        .unwrap();
    Some(server.url(&db))
}

/// A store on a fresh database of the shared server, or `None` when
/// PostgreSQL is not installed (outside CI).
pub(crate) async fn fresh_store(test: &str) -> Option<PgStore> {
    let url = fresh_database(test).await?;
    Some(PgStore::open(PgOptions::new(url)).await.unwrap())
}

fn mo(id: MessageId, n: u8) -> Message {
    let mut m = Message::new(
        id,
        Connection::new("smsc1", "+250 788"),
        Direction::Incoming,
        format!("hello {n}\0with a NUL"),
    );
    m.kannel = Some(KannelInfo {
        uuid: Some([n; 16]),
        time: Some(1_764_000_000),
        coding: 0,
        dlr_mask: -1,
        ..KannelInfo::default()
    });
    m
}

#[tokio::test]
async fn an_mo_and_its_reply_round_trip_and_a_redelivery_is_a_duplicate() {
    let Some(store) = fresh_store("pg round trip").await else {
        return;
    };
    let id = store.allocate_id();
    let reply_id = store.allocate_id();
    assert!(reply_id > id);
    let m = mo(id, 1);
    let key = MoKey::of(&m).unwrap();
    let mut reply = Message::new(
        reply_id,
        Connection::new("smsc1", "+250 788"),
        Direction::Outgoing,
        "hi",
    );
    reply.in_response_to = Some(id);
    let unit = Unit::new()
        .unless_mo_known(key)
        .with(Op::put(m.clone()))
        .with(Op::put(reply.clone()));
    assert_eq!(store.commit(unit.clone()).await.unwrap(), Outcome::Applied);
    assert_eq!(store.message(id).await.unwrap(), Some(m));
    assert_eq!(store.message(reply_id).await.unwrap(), Some(reply));
    assert_eq!(store.message_id_by_mo(&key).await.unwrap(), Some(id));
    assert_eq!(store.commit(unit).await.unwrap(), Outcome::Duplicate(id));
    let queued = store
        .messages_by_status(Status::Queued, None, None, 10)
        .await
        .unwrap();
    assert_eq!(queued.len(), 1);
    let update = Update::status(reply_id, Status::Sent, 5);
    assert_eq!(
        store.commit(Unit::new().with(update.into())).await.unwrap(),
        Outcome::Applied
    );
    assert!(store
        .messages_by_status(Status::Queued, None, None, 10)
        .await
        .unwrap()
        .is_empty());
    let counts = store.counts().await.unwrap();
    assert_eq!(
        counts,
        vec![
            (Direction::Incoming, Status::Received, 1),
            (Direction::Outgoing, Status::Sent, 1)
        ]
    );
    store.close().await;
}

/// A server of the test's own (one it may stop), with a database.
async fn own_server(test: &str) -> Option<(postgres::PgServer, String)> {
    if !postgres::require_postgres(test) {
        return None;
    }
    Some(
        tokio::task::spawn_blocking(|| {
            let server = postgres::PgServer::start();
            let db = server.create_database();
            (server, db)
        })
        .await
        .unwrap(),
    )
}

fn reply_to(id: MessageId, mo: MessageId) -> Message {
    let mut m = Message::new(
        id,
        Connection::new("smsc1", "+250 788"),
        Direction::Outgoing,
        "hi",
    );
    m.in_response_to = Some(mo);
    m
}

#[tokio::test]
async fn a_refused_unit_leaves_no_trace_and_spares_the_units_queued_with_it() {
    let Some(store) = fresh_store("pg refused unit").await else {
        return;
    };
    let mut tasks = Vec::new();
    for n in 0..40u8 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let id = store.allocate_id();
            let mut unit = Unit::new().with(Op::put(mo(id, n)));
            if n % 10 == 3 {
                // A later op naming a message that does not exist: the
                // put before it must not stay.
                unit.push(Update::status(id + 1_000_000, Status::Sent, 1).into());
            }
            (id, n, store.commit(unit).await)
        }));
    }
    for task in tasks {
        let (id, n, outcome) = task.await.unwrap();
        if n % 10 == 3 {
            assert!(
                matches!(
                    outcome,
                    Err(StoreError::Rejected(
                        crate::store::Rejection::MissingMessage { op: 1, .. }
                    ))
                ),
                "{outcome:?}"
            );
            assert_eq!(store.message(id).await.unwrap(), None);
            let key = MoKey::of(&mo(id, n)).unwrap();
            assert_eq!(store.message_id_by_mo(&key).await.unwrap(), None);
        } else {
            assert_eq!(outcome.unwrap(), Outcome::Applied);
            assert!(store.message(id).await.unwrap().is_some());
        }
    }
    assert_eq!(
        store.counts().await.unwrap(),
        vec![(Direction::Incoming, Status::Received, 36)]
    );
    assert_eq!(store.stats().refused, 4);
    store.close().await;
}

#[tokio::test]
async fn two_stores_racing_the_same_mos_store_each_once() {
    if !postgres::require_postgres("pg race") {
        return;
    }
    let server = tokio::task::spawn_blocking(postgres::PgServer::shared)
        .await
        .unwrap();
    let db = tokio::task::spawn_blocking(move || server.create_database())
        .await
        .unwrap();
    let a = PgStore::open(PgOptions::new(server.url(&db)))
        .await
        .unwrap();
    let b = PgStore::open(PgOptions::new(server.tcp_url(&db)))
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for n in 0..60u8 {
        for store in [a.clone(), b.clone()] {
            tasks.push(tokio::spawn(async move {
                let id = store.allocate_id();
                let reply = store.allocate_id();
                let m = mo(id, n);
                let unit = Unit::new()
                    .unless_mo_known(MoKey::of(&m).unwrap())
                    .with(Op::put(m))
                    .with(Op::put(reply_to(reply, id)));
                (n, id, store.commit(unit).await.unwrap())
            }));
        }
    }
    let mut applied = std::collections::HashMap::new();
    let mut duplicates = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (n, id, Outcome::Applied) => {
                assert!(applied.insert(n, id).is_none(), "MO {n} applied twice")
            }
            (n, _, Outcome::Duplicate(owner)) => duplicates.push((n, owner)),
        }
    }
    assert_eq!(applied.len(), 60);
    assert_eq!(duplicates.len(), 60);
    for (n, owner) in duplicates {
        assert_eq!(
            applied[&n], owner,
            "the duplicate of MO {n} names its stored copy"
        );
    }
    assert_eq!(
        a.counts().await.unwrap(),
        vec![
            (Direction::Incoming, Status::Received, 60),
            (Direction::Outgoing, Status::Queued, 60)
        ]
    );
    a.close().await;
    b.close().await;
}

#[tokio::test]
async fn an_unreachable_server_fails_units_transiently_and_the_store_recovers() {
    let Some((mut server, db)) = own_server("pg unreachable").await else {
        return;
    };
    let mut options = PgOptions::new(server.url(&db));
    options.connect_timeout = std::time::Duration::from_secs(2);
    let store = PgStore::open(options).await.unwrap();
    let first = store.allocate_id();
    assert_eq!(
        store
            .commit(Unit::new().with(Op::put(mo(first, 1))))
            .await
            .unwrap(),
        Outcome::Applied
    );
    let mut server = tokio::task::spawn_blocking(move || {
        server.stop();
        server
    })
    .await
    .unwrap();
    let id = store.allocate_id();
    let err = store
        .commit(Unit::new().with(Op::put(mo(id, 2))))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Database { .. }), "{err:?}");
    assert!(err.is_transient());
    assert!(!store.is_writable());
    assert!(matches!(
        store.message(first).await,
        Err(StoreError::Database { .. })
    ));

    let server = tokio::task::spawn_blocking(move || {
        server.restart();
        server
    })
    .await
    .unwrap();
    // The writer's probe finds it again without any unit.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !store.is_writable() {
        assert!(std::time::Instant::now() < deadline, "never writable again");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        store
            .commit(Unit::new().with(Op::put(mo(id, 2))))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert!(store.message(first).await.unwrap().is_some());
    store.close().await;
    drop(server);
}

#[tokio::test]
async fn committed_units_survive_a_server_crash_and_ids_go_on_above_them() {
    let Some((server, db)) = own_server("pg crash").await else {
        return;
    };
    let url = server.url(&db);
    let store = PgStore::open(PgOptions::new(url.clone())).await.unwrap();
    let mut stored = Vec::new();
    let mut tasks = Vec::new();
    for n in 0..100u8 {
        let m = mo(store.allocate_id(), n);
        stored.push(m.clone());
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            store.commit(Unit::new().with(Op::put(m))).await
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap().unwrap(), Outcome::Applied);
    }
    drop(store);
    // No checkpoint, no clean shutdown: recovery replays the WAL.
    let server = tokio::task::spawn_blocking(move || {
        let mut server = server;
        server.crash();
        server.restart();
        server
    })
    .await
    .unwrap();
    let store = PgStore::open(PgOptions::new(url)).await.unwrap();
    for m in &stored {
        assert_eq!(store.message(m.id).await.unwrap().as_ref(), Some(m));
    }
    assert!(store.allocate_id() > stored.iter().map(|m| m.id).max().unwrap());
    store.close().await;
    drop(server);
}

#[tokio::test]
async fn a_statement_held_past_its_timeout_fails_the_group_not_the_store() {
    let Some((server, db)) = own_server("pg statement timeout").await else {
        return;
    };
    let mut options = PgOptions::new(server.url(&db));
    options.statement_timeout = std::time::Duration::from_millis(500);
    let store = PgStore::open(options).await.unwrap();
    let id = store.allocate_id();
    assert_eq!(
        store
            .commit(Unit::new().with(Op::put(mo(id, 1))))
            .await
            .unwrap(),
        Outcome::Applied
    );
    // Another session holds the message's row.
    let (mut client, connection) = tokio_postgres::connect(&server.url(&db), NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let txn = client.transaction().await.unwrap();
    txn.execute(
        "SELECT 1 FROM rapidbox.messages WHERE id = $1 FOR UPDATE",
        &[&(id as i64)],
    )
    .await
    .unwrap();
    let started = std::time::Instant::now();
    let err = store
        .commit(Unit::new().with(Update::status(id, Status::Handled, 2).into()))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Database { reason, .. } if reason.contains("57014")),
        "{err:?}"
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    txn.rollback().await.unwrap();
    assert_eq!(
        store
            .commit(Unit::new().with(Update::status(id, Status::Handled, 2).into()))
            .await
            .unwrap(),
        Outcome::Applied
    );
    assert_eq!(
        store.message(id).await.unwrap().unwrap().status,
        Status::Handled
    );
    store.close().await;
    drop(server);
}

#[tokio::test]
async fn purging_takes_old_messages_that_owe_nothing_with_their_events() {
    let Some(store) = fresh_store("pg purge").await else {
        return;
    };
    let mut ids = Vec::new();
    for n in 0..5u8 {
        let id = store.allocate_id();
        let mut m = mo(id, n);
        m.date = 100 + i64::from(n);
        m.status = Status::Handled;
        let mut unit = Unit::new().with(Op::put(m));
        unit.push(Op::AddDlr(crate::model::DlrEvent {
            message_id: id,
            time: 1,
            mask: 1,
            text: "x".to_owned(),
        }));
        assert_eq!(store.commit(unit).await.unwrap(), Outcome::Applied);
        ids.push(id);
    }
    // Message 1 is still open: kept.
    let update = Update::status(ids[1], Status::Received, 3);
    let _ = store.commit(Unit::new().with(update.into())).await.unwrap();
    let rule = crate::store::PurgeRule {
        before: Some(103),
        excess: 0,
        now: 1_000,
        report_window: 0,
        including_owed: false,
        after: None,
        max_purged: 100,
        max_scanned: 100,
    };
    let report = store.purge(rule).await.unwrap();
    assert_eq!(report.purged, 2);
    assert_eq!(report.kept, 1);
    assert!(report.finished);
    assert_eq!(report.last, Some(ids[2]));
    assert_eq!(store.message(ids[0]).await.unwrap(), None);
    assert!(store.dlr_events(ids[0]).await.unwrap().is_empty());
    assert!(store.message(ids[1]).await.unwrap().is_some());
    assert_eq!(store.dlr_events(ids[3]).await.unwrap().len(), 1);
    assert_eq!(
        store.counts().await.unwrap(),
        vec![
            (Direction::Incoming, Status::Handled, 2),
            (Direction::Incoming, Status::Received, 1)
        ]
    );
    store.close().await;
}

/// Throughput: 256 tasks each committing an MO and its reply, as the
/// redb store's `cargo bench --bench store` does. Prints units/s and the
/// units per transaction. `cargo test --release --lib pg_throughput --
/// --ignored --nocapture`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore]
async fn pg_throughput() {
    let Some(store) = fresh_store("pg throughput").await else {
        return;
    };
    let per_task: u32 = std::env::var("PG_THROUGHPUT_UNITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let started = std::time::Instant::now();
    let mut tasks = Vec::new();
    for t in 0..256u32 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..per_task {
                let id = store.allocate_id();
                let mut m = mo(id, 0);
                let mut uuid = [0u8; 16];
                uuid[..4].copy_from_slice(&t.to_be_bytes());
                uuid[4..8].copy_from_slice(&i.to_be_bytes());
                m.kannel.as_mut().unwrap().uuid = Some(uuid);
                let reply = reply_to(store.allocate_id(), id);
                let unit = Unit::new()
                    .unless_mo_known(MoKey::of(&m).unwrap())
                    .with(Op::put(m))
                    .with(Op::put(reply));
                assert_eq!(store.commit(unit).await.unwrap(), Outcome::Applied);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let elapsed = started.elapsed();
    let stats = store.stats();
    eprintln!(
        "{} units in {elapsed:?}: {:.0} units/s, {:.1} units per transaction, largest {}",
        stats.units,
        stats.units as f64 / elapsed.as_secs_f64(),
        stats.units as f64 / stats.transactions as f64,
        stats.largest_batch
    );
    store.close().await;
    if std::env::var_os("RAPIDBOX_PG_LOG_MS").is_some() {
        eprintln!("{}", postgres::PgServer::shared().log_tail());
    }
}
