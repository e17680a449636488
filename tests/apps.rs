//! The built-in apps against real peers: configurations parsed from TOML,
//! rapidbox started in-process from them (`rapidbox::Daemon`), messages
//! going in through its intake as the bearerbox link's MOs do, state in a
//! real store in a temporary directory, and, for the webhook, a real HTTP
//! server on 127.0.0.1 (hyper) that records what it is sent and answers as
//! each test says.
//!
//! Each routed message is stored as the bearerbox link stores it: the MO
//! and its replies in one commit; the tests then read the statuses back.
//!
//! - webhook: JSON and plain-text answers become replies; the POST carries
//!   the message as JSON and the URL template's escapes arrive
//!   URL-encoded; a 500, a service that never answers and a refused
//!   connection are failures that name the app; with `on_failure =
//!   "reply"` the failure reply answers the message (and no later app
//!   does), without it the message goes on to the next app; the timeout
//!   fires on time; an MO whose webhook is slow is stored and acknowledged
//!   (deferred) before the webhook answers, and answered when it does.
//! - optout: STOP is recorded in the store (and still there when it is
//!   reopened) and confirmed; replies to that number, however it is
//!   written, are cancelled (C) in the outgoing phase until START.
//! - keyword and echo: the handle phase stops at the first app that
//!   handles a message, and keyword's default answers only when no app
//!   did.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::service::{Answer, Service};

use rapidbox::config::Config;
use rapidbox::model::{Connection, Direction, KannelInfo, Message, MessageId, MoKey, Status};
use rapidbox::router::Routed;
use rapidbox::store::{Store, StoreOptions};
use rapidbox::{Daemon, Received, Running};

/// The shortcode the phones write to, and the SMSC they come through.
const SHORTCODE: &str = "8500";
const SMSC: &str = "fake";

/// Two phones.
const ALICE: &str = "+256772000001";
const BOB: &str = "+256772000002";

/// Bound on anything a test waits for that has no timer of its own.
const WAIT: Duration = Duration::from_secs(10);

// --- rapidbox, in-process ------------------------------------------------

/// rapidbox with the apps `toml` configures, its store in a temporary
/// directory, no bearerbox (replies stay queued for a relay to pull).
struct Rig {
    running: Running,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn new(toml: &str) -> Rig {
        Rig::start(toml, 0).await
    }

    /// [`Rig::new`] whose MOs are deferred after `defer_after_ms`, as
    /// rapidbox runs by default (MOs from a bearerbox only).
    async fn deferring(toml: &str, defer_after_ms: u64) -> Rig {
        Rig::start(toml, defer_after_ms).await
    }

    async fn start(toml: &str, defer_after_ms: u64) -> Rig {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let toml = format!(
            "[store]\npath = {}\n[kannel]\nenabled = false\n[http]\nlisten = \"127.0.0.1:0\"\n{toml}",
            toml::Value::String(dir.path().join("rapidbox.redb").display().to_string())
        );
        let mut config = Config::from_toml_str(&toml)
            .unwrap_or_else(|e| panic!("the test's configuration does not load: {e}\n{toml}"));
        // Most tests look at what routing made of each message: it then
        // ends before the MO is stored, however slow the webhook.
        config.router.defer_after_ms = defer_after_ms;
        let running = tokio::time::timeout(WAIT, Daemon::builder(config).start())
            .await
            .unwrap_or_else(|_| panic!("start took over {WAIT:?}"))
            .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"));
        Rig { running, _dir: dir }
    }

    fn store(&self) -> &Store {
        self.running.store()
    }

    /// An MO from `from` with `text`, as the link makes it from a Kannel
    /// `sms`: a fresh id from the store, a Kannel UUID, the shortcode and
    /// SMSC.
    fn mo(&self, from: &str, text: &str) -> Message {
        let connection = Connection::new(SMSC, from);
        let mut mo = Message::new(
            self.store().allocate_id(),
            connection,
            Direction::Incoming,
            text,
        );
        mo.kannel = Some(KannelInfo {
            uuid: Some(*uuid::Uuid::new_v4().as_bytes()),
            shortcode: Some(SHORTCODE.to_owned()),
            smsc_id: Some(SMSC.to_owned()),
            coding: 0,
            dlr_mask: -1,
            ..KannelInfo::default()
        });
        mo
    }

    /// Routes `message` and stores it with its replies in one commit,
    /// through the same intake as the bearerbox link's MOs.
    async fn route(&self, message: Message) -> Routed {
        let key = MoKey::of(&message).unwrap_or_else(|| panic!("an MO from Kannel has a key"));
        match self.running.intake().receive_mo(message, key).await {
            Ok(Received::Stored(routed)) => *routed,
            Ok(Received::Duplicate(id)) => panic!("stored before, as {id}"),
            Ok(Received::Deferred(id)) => panic!("{id} deferred, though deferring is off"),
            Err(e) => panic!("cannot store the routed message: {e}"),
        }
    }

    /// Routes an MO from `from` with `text` and stores it.
    async fn send(&self, from: &str, text: &str) -> Routed {
        let message = self.mo(from, text);
        self.route(message).await
    }

    /// The stored status of message `id`.
    async fn status(&self, id: MessageId) -> Status {
        self.store()
            .message(id)
            .await
            .unwrap_or_else(|e| panic!("cannot read message {id}: {e}"))
            .unwrap_or_else(|| panic!("message {id} is not stored"))
            .status
    }

    async fn is_opted_out(&self, address: &str) -> bool {
        let identity = Connection::new(SMSC, address).identity;
        self.store()
            .is_opted_out(&identity)
            .await
            .unwrap_or_else(|e| panic!("cannot read the opt-out list: {e}"))
    }
}

/// The texts of `routed`'s replies with their statuses.
fn replies(routed: &Routed) -> Vec<(&str, Status)> {
    routed
        .outgoing
        .iter()
        .map(|m| (m.text.as_str(), m.status))
        .collect()
}

// --- a webhook service ---------------------------------------------------

/// A configuration with one webhook app, `hook`, calling `url`, and the
/// extra `settings` lines in its section.
fn webhook_config(url: &str, settings: &str) -> String {
    let url = toml::Value::String(url.to_owned());
    format!(
        r#"
[router]
apps = ["hook"]

[apps.hook]
kind = "webhook"
url = {url}
{settings}
"#
    )
}

// --- webhook -------------------------------------------------------------

#[tokio::test]
async fn webhook_json_responses_become_replies_and_the_post_carries_the_message() {
    let service = Service::start(Answer::Json(r#"{"responses": ["a", "b"]}"#)).await;
    let url = service.url("/sms?from=%p&to=%P&text=%a&id=%I");
    let rig = Rig::new(&webhook_config(&url, "timeout_ms = 5000")).await;
    let mo = rig.mo(ALICE, "héllo  & bye?");
    let (mo_id, uuid) = (mo.id, mo.kannel.as_ref().and_then(|k| k.uuid));
    let uuid = uuid::Uuid::from_bytes(uuid.unwrap_or_default()).to_string();
    let date = mo.date / 1_000_000;
    let routed = rig.route(mo).await;

    assert!(routed.failures.is_empty(), "{:?}", routed.failures);
    assert!(routed.handled, "a 2xx answer handles the message");
    assert_eq!(
        replies(&routed),
        [("a", Status::Queued), ("b", Status::Queued)]
    );
    for reply in &routed.outgoing {
        assert_eq!(reply.in_response_to, Some(mo_id));
        assert_eq!(reply.connection.address, ALICE);
        assert_eq!(rig.status(reply.id).await, Status::Queued, "stored queued");
    }
    assert_eq!(rig.status(mo_id).await, Status::Handled);

    let seen = service.seen();
    assert_eq!(seen.len(), 1, "one call per message: {seen:?}");
    let call = &seen[0];
    assert_eq!(call.method, "POST");
    assert_eq!(
        call.target,
        format!("/sms?from=%2B256772000001&to=8500&text=h%C3%A9llo%20%26%20bye%3F&id={uuid}"),
        "every escape URL-encoded, the template's own text as written"
    );
    assert_eq!(call.content_type.as_deref(), Some("application/json"));
    let body: Value = serde_json::from_slice(&call.body)
        .unwrap_or_else(|e| panic!("the POST body is not JSON ({e}): {:?}", call.body));
    let expected: Value = serde_json::json!({
        "id": mo_id,
        "backend": SMSC,
        "sender": ALICE,
        "identity": "256772000001",
        "receiver": SHORTCODE,
        "text": "héllo  & bye?",
        "smsc_id": SMSC,
        "kannel_uuid": uuid,
        "date": date,
    });
    assert_eq!(body, expected);
}

#[tokio::test]
async fn webhook_plain_text_answer_is_one_reply() {
    let service = Service::start(Answer::Text("  Thanks, we got it.\n")).await;
    let rig = Rig::new(&webhook_config(&service.url("/sms"), "")).await;
    let routed = rig.send(ALICE, "hello").await;
    assert!(routed.failures.is_empty(), "{:?}", routed.failures);
    assert_eq!(replies(&routed), [("Thanks, we got it.", Status::Queued)]);
    // An empty body is an answer with no reply, and no failure.
    service.answer(Answer::Text(""));
    let routed = rig.send(ALICE, "hello again").await;
    assert!(routed.failures.is_empty(), "{:?}", routed.failures);
    assert!(routed.handled);
    assert_eq!(replies(&routed), []);
    assert_eq!(service.seen().len(), 2);
}

#[tokio::test]
async fn webhook_http_500_is_a_failure_that_names_the_app_and_the_status() {
    let service = Service::start(Answer::Status(500, "database down")).await;
    let rig = Rig::new(&webhook_config(
        &service.url("/sms"),
        r#"on_failure = "none""#,
    ))
    .await;
    let routed = rig.send(ALICE, "hello").await;
    assert_eq!(replies(&routed), [], "on_failure = none: no reply");
    assert!(!routed.handled);
    assert_eq!(routed.failures.len(), 1, "{:?}", routed.failures);
    let failure = &routed.failures[0];
    assert_eq!((failure.app.as_str(), failure.phase), ("hook", "handle"));
    assert!(
        failure.error.contains("HTTP 500") && failure.error.contains("database down"),
        "the failure gives the status and the service's words: {failure}"
    );
    assert_eq!(rig.status(routed.incoming.id).await, Status::Handled);
    assert_eq!(service.seen().len(), 1);
}

#[tokio::test]
async fn webhook_failure_reply_is_sent_with_on_failure_reply() {
    let service = Service::start(Answer::Status(500, "database down")).await;
    let settings = r#"
on_failure = "reply"
failure_reply = "Sorry %p, try again later."
"#;
    let rig = Rig::new(&webhook_config(&service.url("/sms"), settings)).await;
    let routed = rig.send(ALICE, "hello").await;
    assert_eq!(
        replies(&routed),
        [("Sorry +256772000001, try again later.", Status::Queued)]
    );
    assert_eq!(routed.failures.len(), 1, "still recorded as a failure");
    assert!(routed.failures[0].error.contains("HTTP 500"));
    assert_eq!(rig.status(routed.outgoing[0].id).await, Status::Queued);
}

#[tokio::test]
async fn webhook_timeout_fires_on_time_and_is_a_failure() {
    let service = Service::start(Answer::Never).await;
    let settings = r#"
timeout_ms = 200
on_failure = "reply"
failure_reply = "Busy, try later."
"#;
    let rig = Rig::new(&webhook_config(&service.url("/slow"), settings)).await;
    let message = rig.mo(ALICE, "hello");
    // Only the routing is timed: the store's commit is not the webhook's.
    let started = Instant::now();
    let routed = tokio::time::timeout(WAIT, rig.route(message))
        .await
        .unwrap_or_else(|_| panic!("routing hung for {WAIT:?} on a 200 ms webhook"));
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(200) && took < Duration::from_millis(800),
        "the 200 ms timeout fired after {took:?}"
    );
    assert_eq!(routed.failures.len(), 1, "{:?}", routed.failures);
    assert_eq!(routed.failures[0].app, "hook");
    assert!(
        routed.failures[0].error.contains("no answer within 200ms"),
        "{}",
        routed.failures[0]
    );
    assert_eq!(replies(&routed), [("Busy, try later.", Status::Queued)]);
    assert_eq!(service.seen().len(), 1, "the request did reach the service");
}

#[tokio::test]
async fn a_slow_webhook_s_mo_is_stored_and_acked_before_it_answers_and_then_answered() {
    let service = Service::start(Answer::After(Duration::from_millis(1500), "later")).await;
    // Deferring after a minute: only the webhook saying it waits outside
    // makes the MO deferred before the service answers.
    let rig = Rig::deferring(
        &webhook_config(&service.url("/slow"), "timeout_ms = 10000"),
        60_000,
    )
    .await;
    let message = rig.mo(ALICE, "hello");
    let id = message.id;
    let key = MoKey::of(&message).unwrap_or_else(|| panic!("an MO from Kannel has a key"));
    let received = tokio::time::timeout(WAIT, rig.running.intake().receive_mo(message, key))
        .await
        .unwrap_or_else(|_| panic!("receiving hung for {WAIT:?}"))
        .unwrap_or_else(|e| panic!("cannot receive: {e}"));
    // Deferred, not routed: the link acknowledges it to the bearerbox now.
    assert!(
        matches!(received, Received::Deferred(d) if d == id),
        "the MO waited for the webhook: {received:?}"
    );
    assert_eq!(
        rig.status(id).await,
        Status::Received,
        "stored before the answer"
    );
    assert!(
        service.seen().len() <= 1,
        "one request at most so far: {:?}",
        service.seen()
    );
    // And answered once the service does.
    let started = Instant::now();
    while rig.status(id).await != Status::Handled {
        assert!(
            started.elapsed() < WAIT,
            "never answered: {:?}",
            rig.status(id).await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replies: Vec<(String, Status)> = rig
        .store()
        .recent_messages(None, 10)
        .await
        .unwrap_or_else(|e| panic!("cannot read messages: {e}"))
        .into_iter()
        .filter(|m| m.in_response_to == Some(id))
        .map(|m| (m.text, m.status))
        .collect();
    assert_eq!(replies, [("later".to_owned(), Status::Queued)]);
    assert_eq!(service.seen().len(), 1, "asked once");
}

#[tokio::test]
async fn webhook_connection_refused_is_a_failure() {
    // A port that was free a moment ago and has nobody listening now.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("cannot bind: {e}"));
        listener
            .local_addr()
            .unwrap_or_else(|e| panic!("no address: {e}"))
            .port()
    };
    let url = format!("http://127.0.0.1:{port}/sms");
    let rig = Rig::new(&webhook_config(&url, "timeout_ms = 5000")).await;
    let started = Instant::now();
    let routed = rig.send(ALICE, "hello").await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "a refused connection fails at once, not at the timeout"
    );
    assert_eq!(replies(&routed), []);
    assert!(!routed.handled);
    assert_eq!(routed.failures.len(), 1, "{:?}", routed.failures);
    let failure = &routed.failures[0];
    assert_eq!(failure.app, "hook");
    assert!(
        failure.error.contains(&url) && failure.error.contains("request failed"),
        "{failure}"
    );
}

// --- optout --------------------------------------------------------------

const OPTOUT: &str = r#"
[router]
apps = ["optout", "echo"]

[apps.optout]
stop_reply = "You will get no more messages from %P."
start_reply = "Welcome back."

[apps.echo]
template = "echo: %a"
"#;

#[tokio::test]
async fn optout_stop_cancels_later_replies_until_start() {
    let rig = Rig::new(OPTOUT).await;
    assert_eq!(
        replies(&rig.send(ALICE, "hello").await),
        [("echo: hello", Status::Queued)],
        "before STOP, replies flow"
    );

    // STOP: recorded, and confirmed; echo does not see it.
    let stop = rig.send(ALICE, "stop please").await;
    assert!(rig.is_opted_out(ALICE).await, "STOP is in the store");
    assert!(stop.handled);
    assert_eq!(
        replies(&stop),
        [("You will get no more messages from 8500.", Status::Queued)],
        "the confirmation is owed and goes out"
    );
    assert_eq!(rig.status(stop.outgoing[0].id).await, Status::Queued);

    // Afterwards: the reply is made, and cancelled by the outgoing phase.
    let later = rig.send(ALICE, "hello again").await;
    assert_eq!(replies(&later), [("echo: hello again", Status::Cancelled)]);
    assert_eq!(rig.status(later.outgoing[0].id).await, Status::Cancelled);
    assert_eq!(rig.status(later.incoming.id).await, Status::Handled);
    // The same number written another way is the same person.
    let spaced = rig.send("+256 772 000 001", "hi").await;
    assert_eq!(replies(&spaced), [("echo: hi", Status::Cancelled)]);
    // Nobody else is affected.
    assert!(!rig.is_opted_out(BOB).await);
    assert_eq!(
        replies(&rig.send(BOB, "hello").await),
        [("echo: hello", Status::Queued)]
    );

    // START, in any case: off the list, confirmed, and replies flow again.
    let start = rig.send(ALICE, "Start").await;
    assert!(!rig.is_opted_out(ALICE).await, "START is in the store");
    assert_eq!(replies(&start), [("Welcome back.", Status::Queued)]);
    let after = rig.send(ALICE, "hello once more").await;
    assert_eq!(replies(&after), [("echo: hello once more", Status::Queued)]);
    assert_eq!(rig.status(after.outgoing[0].id).await, Status::Queued);
}

#[tokio::test]
async fn optout_is_durable_across_a_reopened_store() {
    let rig = Rig::new(OPTOUT).await;
    rig.send(ALICE, "STOP").await;
    let path = rig.store().path().expect("a redb store").to_owned();
    rig.running.stop().await;
    let reopened = Store::open(&path, StoreOptions::default())
        .unwrap_or_else(|e| panic!("cannot reopen the store: {e}"));
    let identity = Connection::new(SMSC, ALICE).identity;
    assert_eq!(reopened.is_opted_out(&identity).await.ok(), Some(true));
    reopened.close().await;
}

// --- keyword and echo ----------------------------------------------------

const MENU: &str = r#"
[router]
apps = ["optout", "keyword", "echo"]

[apps.keyword.rules]
join = "Welcome %s!"
help = "Send JOIN <name>."

[apps.echo]
template = "echo: %a"
"#;

#[tokio::test]
async fn a_keyword_match_stops_echo_and_no_match_falls_through_to_echo() {
    let rig = Rig::new(MENU).await;
    assert_eq!(
        rig.running.app_names(),
        ["optout", "keyword", "echo"],
        "the configured order"
    );
    let join = rig.send(ALICE, "JOIN Alice").await;
    assert!(join.handled);
    assert_eq!(
        replies(&join),
        [("Welcome Alice!", Status::Queued)],
        "keyword handled it: echo was not asked"
    );
    let other = rig.send(ALICE, "what is this").await;
    assert_eq!(
        replies(&other),
        [("echo: what is this", Status::Queued)],
        "no rule: echo answers"
    );
    // optout comes first: STOP never reaches keyword or echo.
    let stop = rig.send(ALICE, "STOP").await;
    assert!(stop.handled);
    assert_eq!(
        replies(&stop),
        [],
        "optout without stop_reply sends nothing"
    );
    assert!(rig.is_opted_out(ALICE).await);
}

#[tokio::test]
async fn keyword_default_answers_only_when_no_app_handled() {
    // echo's template takes the second word: a one-word message renders
    // empty, which echo does not send, so nothing handles it.
    let toml = r#"
[router]
apps = ["keyword", "echo"]

[apps.keyword]
default = "Send JOIN or HELP."

[apps.keyword.rules]
join = "Welcome %s!"

[apps.echo]
template = "%s"
"#;
    let rig = Rig::new(toml).await;
    let unhandled = rig.send(ALICE, "hello").await;
    assert!(!unhandled.handled);
    assert_eq!(
        replies(&unhandled),
        [("Send JOIN or HELP.", Status::Queued)],
        "no app handled it: keyword's default answers"
    );
    let echoed = rig.send(ALICE, "hello world").await;
    assert!(echoed.handled);
    assert_eq!(
        replies(&echoed),
        [("world", Status::Queued)],
        "echo handled it: no default"
    );
    let joined = rig.send(ALICE, "join Bob").await;
    assert_eq!(replies(&joined), [("Welcome Bob!", Status::Queued)]);
}

/// A webhook app `hook` calling `url` (with the extra `settings` lines),
/// then an echo app answering "echo: %a".
fn hook_then_echo(url: &str, settings: &str) -> String {
    let url = toml::Value::String(url.to_owned());
    format!(
        r#"
[router]
apps = ["hook", "echo"]

[apps.hook]
kind = "webhook"
url = {url}
{settings}

[apps.echo]
template = "echo: %a"
"#
    )
}

#[tokio::test]
async fn a_failing_webhook_leaves_the_message_to_the_next_app() {
    let service = Service::start(Answer::Status(503, "maintenance")).await;
    let rig = Rig::new(&hook_then_echo(&service.url("/sms"), "")).await;
    let routed = rig.send(ALICE, "hello").await;
    assert_eq!(replies(&routed), [("echo: hello", Status::Queued)]);
    let failed: Vec<_> = routed
        .failures
        .iter()
        .map(|f| (f.app.as_str(), f.phase))
        .collect();
    assert_eq!(
        failed,
        [("hook", "handle")],
        "the failure is still recorded"
    );
}

#[tokio::test]
async fn a_webhook_failure_reply_answers_the_message_and_the_next_app_stays_quiet() {
    let service = Service::start(Answer::Status(503, "maintenance")).await;
    let settings = "on_failure = \"reply\"\nfailure_reply = \"Sorry\"";
    let rig = Rig::new(&hook_then_echo(&service.url("/sms"), settings)).await;
    let routed = rig.send(ALICE, "hello").await;
    assert_eq!(
        replies(&routed),
        [("Sorry", Status::Queued)],
        "one answer only: the failure reply handled the message"
    );
    assert!(routed.handled);
    let failed: Vec<_> = routed
        .failures
        .iter()
        .map(|f| (f.app.as_str(), f.phase))
        .collect();
    assert_eq!(
        failed,
        [("hook", "handle")],
        "the failure is still recorded"
    );
}
