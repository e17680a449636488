//! The calls owed to sendsms callers' `dlr-url`s, against a real local
//! HTTP service that records every request and fails on demand, and a real
//! store on disk: a call is made and then forgotten; a failing one is
//! retried until it answers, or given up with a delivery error; and a call
//! owed when rapidbox stops is made after it starts again.
//!
//! (The whole path from a Kannel delivery report to the call, through a
//! real bearerbox, is in tests/sendsms.rs.)
//!
//! The recording service is the integration tests' own
//! (`tests/support/service.rs`), compiled in here.

use std::path::Path;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::service::{Answer, Service};
use crate::client::HttpClient;
use crate::dlr_callback::{self, DlrCallbacks, MAX_ATTEMPTS};
use crate::model::{now_micros, Connection, Direction, Message, MessageId, Status};
use crate::store::{Op, Outcome, Store, StoreOptions, Unit};

/// Bound on every wait.
const PATIENCE: Duration = Duration::from_secs(20);
/// The tests' wait before a second try (the daemon's is a second).
const RETRY: Duration = Duration::from_millis(50);

fn open(path: &Path) -> Store {
    Store::open(path, StoreOptions::default()).unwrap_or_else(|e| panic!("store: {e}"))
}

/// An MT, sent, that the calls are about.
async fn sent_mt(store: &Store) -> MessageId {
    let mut mt = Message::new(
        store.allocate_id(),
        Connection::new("fake", "+256772000001"),
        Direction::Outgoing,
        "hi",
    );
    mt.status = Status::Sent;
    let id = mt.id;
    let outcome = store.commit(Unit::new().with(Op::put(mt))).await;
    assert_eq!(outcome.ok(), Some(Outcome::Applied));
    id
}

/// Commits a call owed for message `id` to `url`, as the link does with
/// the report.
async fn owe(store: &Store, id: MessageId, url: String) {
    let owed = dlr_callback::owed(id, url, now_micros());
    let outcome = store.commit(Unit::new().with(Op::OweCallback(owed))).await;
    assert_eq!(outcome.ok(), Some(Outcome::Applied));
}

/// A running worker, stopped (and waited for) by [`Worker::stop`].
struct Worker {
    handle: DlrCallbacks,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Worker {
    fn start(store: &Store) -> Worker {
        let http = HttpClient::new().unwrap_or_else(|e| panic!("client: {e}"));
        let shutdown = CancellationToken::new();
        let (handle, worker) = DlrCallbacks::new(
            http,
            store.clone(),
            RETRY,
            crate::metrics::Metrics::detached(),
            shutdown.clone(),
        );
        Worker {
            handle,
            shutdown,
            task: tokio::spawn(worker),
        }
    }

    async fn stop(self) {
        self.shutdown.cancel();
        self.task
            .await
            .unwrap_or_else(|e| panic!("the worker failed: {e}"));
    }
}

/// Waits until `done` holds, or fails the test saying `what`.
async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(start.elapsed() < PATIENCE, "timed out waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn owed_count(store: &Store) -> usize {
    store
        .owed_callbacks(100)
        .await
        .unwrap_or_else(|e| panic!("read: {e}"))
        .len()
}

#[tokio::test]
async fn an_owed_call_is_made_once_and_forgotten() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let store = open(&dir.path().join("rapidbox.redb"));
    let service = Service::start(Answer::Text("ok")).await;
    let id = sent_mt(&store).await;
    let worker = Worker::start(&store);
    owe(&store, id, service.url("/dlr?status=1&id=7")).await;
    worker.handle.wake();

    until("the call is made and forgotten", async || {
        owed_count(&store).await == 0
    })
    .await;
    let seen = service.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].target, "/dlr?status=1&id=7");
    assert_eq!(store.delivery_errors(id).await.unwrap_or_default(), vec![]);
    worker.stop().await;
}

#[tokio::test]
async fn a_failing_call_is_retried_until_it_answers() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let store = open(&dir.path().join("rapidbox.redb"));
    let service = Service::start(Answer::Status(503, "busy")).await;
    let id = sent_mt(&store).await;
    owe(&store, id, service.url("/dlr")).await;
    // Started after the call was committed: it finds it by itself.
    let worker = Worker::start(&store);

    until("two failed attempts", async || service.seen().len() >= 2).await;
    let owed = store.owed_callbacks(10).await.unwrap_or_default();
    assert_eq!(owed.len(), 1, "still owed after a 503: {owed:?}");
    assert!(owed[0].attempts >= 1);
    // A 4xx would be answered the same again: it ends the call.
    service.answer(Answer::Status(404, "no such thing"));
    until("the call is forgotten", async || {
        owed_count(&store).await == 0
    })
    .await;
    let calls = service.seen().len();
    assert!(calls < MAX_ATTEMPTS as usize + 1, "{calls} calls");
    assert_eq!(store.delivery_errors(id).await.unwrap_or_default(), vec![]);
    worker.stop().await;
}

#[tokio::test]
async fn a_call_that_keeps_failing_is_given_up_with_a_delivery_error() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let store = open(&dir.path().join("rapidbox.redb"));
    let service = Service::start(Answer::Status(500, "broken")).await;
    let id = sent_mt(&store).await;
    let worker = Worker::start(&store);
    owe(&store, id, service.url("/dlr")).await;
    worker.handle.wake();

    until("the call is given up", async || {
        owed_count(&store).await == 0
    })
    .await;
    assert_eq!(service.seen().len(), MAX_ATTEMPTS as usize);
    let errors = store.delivery_errors(id).await.unwrap_or_default();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(
        errors[0].log.starts_with(&format!(
            "dlr-url call failed {MAX_ATTEMPTS} times, last: HTTP 500"
        )),
        "{}",
        errors[0].log
    );
    worker.stop().await;
}

#[tokio::test]
async fn a_call_owed_when_rapidbox_stops_is_made_after_it_starts_again() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let path = dir.path().join("rapidbox.redb");
    let service = Service::start(Answer::Never).await;
    let store = open(&path);
    let id = sent_mt(&store).await;
    let worker = Worker::start(&store);
    owe(&store, id, service.url("/dlr?after=restart")).await;
    worker.handle.wake();
    // The call is in flight, unanswered, when rapidbox stops.
    until("the first attempt", async || service.seen().len() == 1).await;
    worker.stop().await;
    store.close().await;
    drop(store);

    service.answer(Answer::Text("ok"));
    let store = open(&path);
    assert_eq!(
        owed_count(&store).await,
        1,
        "the call is still owed after the restart"
    );
    let worker = Worker::start(&store);
    until("the call is made after the restart", async || {
        owed_count(&store).await == 0
    })
    .await;
    let seen = service.seen();
    assert_eq!(seen.len(), 2, "{seen:?}");
    assert_eq!(seen[1].target, "/dlr?after=restart");
    worker.stop().await;
}
