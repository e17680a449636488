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
use crate::store::{Op, Outcome, Unit, Update};

/// A store on a fresh database of the shared server, or `None` when
/// PostgreSQL is not installed (outside CI).
pub(crate) async fn fresh_store(test: &str) -> Option<PgStore> {
    if !postgres::require_postgres(test) {
        return None;
    }
    let server = tokio::task::spawn_blocking(postgres::PgServer::shared)
        .await
        .unwrap();
    let db = tokio::task::spawn_blocking(move || server.create_database())
        .await
        .unwrap();
    Some(PgStore::open(PgOptions::new(server.url(&db))).await.unwrap())
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
