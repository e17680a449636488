//! The push transport against a real local HTTP relay that records every
//! request and fails on demand, with rapidbox started in-process
//! (`rapidbox::Daemon`) on a real store.
//!
//! - URLs are built from the template, every field URL-encoded; a map per
//!   backend with a `default` entry picks the right one; POST carries a
//!   form body;
//! - 2xx makes a message S; a failure stores a delivery error with the
//!   status code and the start of the body and makes it E; it is retried,
//!   and the third failure makes it F;
//! - a backend with no URL and no default fails at once, saying so;
//! - retries survive a restart: what was E when rapidbox stopped is sent
//!   when it comes back.
//!
//! Messages are put in the store as queued before rapidbox starts, as a
//! restart finds them; the sweep at start must pick them up.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::service::{Answer, Service};

use rapidbox::config::Config;
use rapidbox::model::{Connection, Direction, Message, MessageId, Status};
use rapidbox::store::{Op, Store, StoreOptions, Unit};
use rapidbox::{Daemon, Running};

/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(20);

/// A configuration: no bearerbox, HTTP on a free port, the store in `dir`,
/// and `push` as the [push] section's body.
fn config(dir: &Path, push: &str) -> Config {
    let store = toml::Value::String(dir.join("rapidbox.redb").display().to_string());
    let retry = if push.contains("retry_secs") {
        ""
    } else {
        "retry_secs = 1"
    };
    let text = format!(
        r#"
[store]
path = {store}

[kannel]
enabled = false

[http]
listen = "127.0.0.1:0"

[push]
sweep_secs = 1
timeout_ms = 2000
{retry}
{push}
"#
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test configuration: {e}"))
}

/// Queues outgoing messages in the store, as a restart would find them.
async fn queue(dir: &Path, messages: &[(&str, &str, &str)]) -> Vec<MessageId> {
    let store = Store::open(&dir.join("rapidbox.redb"), StoreOptions::default())
        .unwrap_or_else(|e| panic!("cannot open the store: {e}"));
    let mut ids = Vec::new();
    let mut unit = Unit::new();
    for (backend, recipient, text) in messages {
        let id = store.allocate_id();
        let connection = Connection::new(backend, recipient);
        unit.push(Op::put(Message::new(
            id,
            connection,
            Direction::Outgoing,
            *text,
        )));
        ids.push(id);
    }
    let _applied = store
        .commit(unit)
        .await
        .unwrap_or_else(|e| panic!("cannot queue: {e}"));
    store.close().await;
    ids
}

async fn start(config: &Config) -> Running {
    Daemon::builder(config.clone())
        .start()
        .await
        .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"))
}

/// Waits until message `id` has `status`, or panics saying what it has.
async fn wait_for(running: &Running, id: MessageId, status: Status) -> Message {
    let deadline = Instant::now() + WAIT;
    loop {
        let msg = running
            .store()
            .message(id)
            .await
            .unwrap_or_else(|e| panic!("cannot read message {id}: {e}"))
            .unwrap_or_else(|| panic!("message {id} is not stored"));
        if msg.status == status {
            return msg;
        }
        assert!(
            Instant::now() < deadline,
            "message {id} is still {:?} after {WAIT:?}, expected {status:?}",
            msg.status
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn logs(running: &Running, id: MessageId) -> Vec<String> {
    running
        .store()
        .delivery_errors(id)
        .await
        .unwrap_or_else(|e| panic!("cannot read delivery errors: {e}"))
        .into_iter()
        .map(|e| e.log)
        .collect()
}

#[tokio::test]
async fn urls_are_built_per_backend_with_a_default_and_every_field_encoded() {
    let relay = Service::start(Answer::Text("OK")).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ids = queue(
        dir.path(),
        &[
            ("tigo", "+250 788 383383", "hi & bye?"),
            ("mtn", "+256772000001", "héllo"),
        ],
    )
    .await;
    let push = format!(
        r#"urls = {{ tigo = "{}", default = "{}" }}"#,
        relay.url("/tigo?to=%(recipient)s&text=%(text)s&id=%(id)s"),
        relay.url("/other?backend=%(backend)s&to=%(recipient)s&text=%(text)s"),
    );
    let running = start(&config(dir.path(), &push)).await;
    let tigo = wait_for(&running, ids[0], Status::Sent).await;
    assert!(tigo.sent.is_some(), "a sent message has its sent time");
    wait_for(&running, ids[1], Status::Sent).await;
    let mut targets: Vec<_> = relay
        .seen()
        .into_iter()
        .map(|s| (s.method, s.target))
        .collect();
    targets.sort();
    assert_eq!(
        targets,
        [
            (
                "GET".to_owned(),
                "/other?backend=mtn&to=%2B256772000001&text=h%C3%A9llo".to_owned()
            ),
            (
                "GET".to_owned(),
                format!(
                    "/tigo?to=%2B250%20788%20383383&text=hi%20%26%20bye%3F&id={}",
                    ids[0]
                )
            ),
        ]
    );
    running.stop().await;
}

#[tokio::test]
async fn post_sends_the_fields_as_a_form_too() {
    let relay = Service::start(Answer::Text("queued")).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ids = queue(dir.path(), &[("android", "+4912", "a b")]).await;
    let push = format!(
        "url = \"{}\"\nmethod = \"POST\"",
        relay.url("/send?id=%(id)s")
    );
    let running = start(&config(dir.path(), &push)).await;
    wait_for(&running, ids[0], Status::Sent).await;
    let seen = relay.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].target, format!("/send?id={}", ids[0]));
    assert_eq!(
        seen[0].content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        &seen[0].body[..],
        format!("backend=android&recipient=%2B4912&text=a%20b&id={}", ids[0]).as_bytes()
    );
    running.stop().await;
}

#[tokio::test]
async fn failures_are_recorded_retried_and_the_third_makes_it_failed() {
    let relay = Service::start(Answer::Status(500, "relay is down for maintenance")).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ids = queue(dir.path(), &[("tigo", "+250788", "retry me")]).await;
    let push = format!("url = \"{}\"", relay.url("/send?to=%(recipient)s"));
    let running = start(&config(dir.path(), &push)).await;
    let errored = wait_for(&running, ids[0], Status::Errored).await;
    assert_eq!(errored.attempts, 1);
    assert!(
        errored.retry_after.is_some(),
        "an E message has a retry time"
    );
    let failed = wait_for(&running, ids[0], Status::Failed).await;
    assert_eq!(failed.attempts, 3, "the third failure makes it F");
    let logs = logs(&running, ids[0]).await;
    assert_eq!(logs.len(), 3, "one delivery error per attempt: {logs:?}");
    for log in &logs {
        assert_eq!(log, "HTTP 500: relay is down for maintenance");
    }
    assert_eq!(relay.seen().len(), 3, "three attempts, no more");
    running.stop().await;
}

#[tokio::test]
async fn an_errored_message_is_sent_when_the_relay_recovers() {
    let relay = Service::start(Answer::Status(503, "busy")).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ids = queue(dir.path(), &[("tigo", "+250788", "second time lucky")]).await;
    let push = format!("url = \"{}\"", relay.url("/send"));
    let running = start(&config(dir.path(), &push)).await;
    wait_for(&running, ids[0], Status::Errored).await;
    relay.answer(Answer::Text("OK"));
    let sent = wait_for(&running, ids[0], Status::Sent).await;
    assert_eq!(sent.attempts, 1, "one failed attempt before the success");
    assert_eq!(logs(&running, ids[0]).await, ["HTTP 503: busy"]);
    running.stop().await;
}

#[tokio::test]
async fn a_backend_without_url_or_default_fails_saying_so() {
    let relay = Service::start(Answer::Text("OK")).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ids = queue(dir.path(), &[("airtel", "+256700", "nowhere to go")]).await;
    let push = format!(
        "urls = {{ tigo = \"{}\" }}\n\n[backends.airtel]\ntransport = \"push\"",
        relay.url("/tigo")
    );
    // airtel is push by its own section, but [push] has no URL for it:
    // check-config says so, and at run time the message fails.
    assert!(Config::from_toml_str(&push_file(dir.path(), &push)).is_err());
    let mut config = config(
        dir.path(),
        &format!("urls = {{ tigo = \"{}\" }}", relay.url("/tigo")),
    );
    config.backends.insert(
        "airtel".into(),
        rapidbox::config::BackendConfig {
            transport: rapidbox::config::TransportKind::Push,
        },
    );
    let running = start(&config).await;
    let failed = wait_for(&running, ids[0], Status::Failed).await;
    assert_eq!(failed.attempts, 1);
    assert_eq!(
        logs(&running, ids[0]).await,
        ["no push URL for backend \"airtel\" and no default"]
    );
    assert!(relay.seen().is_empty(), "nothing was sent anywhere");
    running.stop().await;
}

/// The whole configuration file text, for the check-config assertion.
fn push_file(dir: &Path, push: &str) -> String {
    let store = toml::Value::String(dir.join("rapidbox.redb").display().to_string());
    format!("[store]\npath = {store}\n[kannel]\nenabled = false\n[push]\n{push}\n")
}

#[tokio::test]
async fn retries_resume_after_a_restart() {
    let relay = Service::start(Answer::Status(500, "down")).await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let ids = queue(dir.path(), &[("tigo", "+250788", "survive a restart")]).await;
    let push = format!("url = \"{}\"\nretry_secs = 2", relay.url("/send"));
    let config = config(dir.path(), &push);

    let running = start(&config).await;
    wait_for(&running, ids[0], Status::Errored).await;
    running.stop().await;
    let attempts_before = relay.seen().len();
    assert_eq!(attempts_before, 1);

    relay.answer(Answer::Text("OK"));
    let running = start(&config).await;
    let sent = wait_for(&running, ids[0], Status::Sent).await;
    assert_eq!(sent.attempts, 1, "the failure before the restart counts");
    assert_eq!(relay.seen().len(), 2, "one attempt before, one after");
    running.stop().await;
}
