//! Misbehaving HTTP peers: webhook and push targets that are down, slow
//! past their timeout, answer gigabytes, redirect forever or send bytes
//! that are not HTTP. Each is bounded (timeout, a 64 KiB body cap, no
//! redirect followed; an sms-service's URL follows at most 5, as smsbox
//! does), recorded on the message (an app failure or a
//! delivery error naming the problem), retried as configured, and the
//! rest of the traffic does not wait for it.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use rapidbox::config::Config;
use rapidbox::model::{Connection, Direction, Message, MessageId, Status};
use rapidbox::store::{Op, Store, StoreOptions, Unit};
use rapidbox::{Daemon, Running};
use support::misbehaving::{Misbehaving, Misbehaviour};
use support::raw::exchange;
use support::service::{Answer, Service};

const WAIT: Duration = Duration::from_secs(30);

/// The timeout every peer gets here.
const TIMEOUT_MS: u64 = 1000;

/// What the delivery error must say for each misbehaviour.
fn names_the_problem(how: Misbehaviour) -> &'static str {
    match how {
        Misbehaviour::Down | Misbehaviour::Garbage => "request failed",
        Misbehaviour::Slow => "no answer within 1s",
        Misbehaviour::Gigabytes => "over 65536 bytes",
        Misbehaviour::RedirectLoop => "HTTP 302",
    }
}

fn load(dir: &Path, rest: &str) -> Config {
    let store = toml::Value::String(dir.join("rapidbox.redb").display().to_string());
    let text = format!(
        "[store]\npath = {store}\n[kannel]\nenabled = false\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{rest}"
    );
    Config::from_toml_str(&text).unwrap_or_else(|e| panic!("test configuration: {e}\n{text}"))
}

async fn start(config: Config) -> Running {
    tokio::time::timeout(WAIT, Daemon::builder(config).start())
        .await
        .unwrap_or_else(|_| panic!("rapidbox took over {WAIT:?} to start"))
        .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"))
}

async fn errors(running: &Running, id: MessageId) -> Vec<String> {
    running
        .store()
        .delivery_errors(id)
        .await
        .unwrap_or_else(|e| panic!("delivery errors: {e}"))
        .into_iter()
        .map(|e| e.log)
        .collect()
}

async fn message(running: &Running, id: MessageId) -> Message {
    running
        .store()
        .message(id)
        .await
        .unwrap_or_else(|e| panic!("message {id}: {e}"))
        .unwrap_or_else(|| panic!("message {id} is not stored"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_targets_that_misbehave_fail_bounded_recorded_and_retried_while_others_send() {
    let good = Service::start(Answer::Text("OK")).await;
    let mut peers = Vec::new();
    for how in Misbehaviour::ALL {
        peers.push((how, Misbehaving::start(how).await));
    }
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    // One backend per misbehaviour, and one that works.
    let backend = |how: Misbehaviour| format!("{how:?}").to_lowercase();
    let mut urls: Vec<String> = peers
        .iter()
        .map(|(how, peer)| format!("{} = \"{}\"", backend(*how), peer.url("/send")))
        .collect();
    urls.push(format!("good = \"{}\"", good.url("/send")));
    let mut backends = String::new();
    for name in peers
        .iter()
        .map(|(how, _)| backend(*how))
        .chain(["good".to_owned()])
    {
        backends.push_str(&format!("[backends.{name}]\ntransport = \"push\"\n"));
    }
    let config = load(
        dir.path(),
        &format!(
            "[push]\nurls = {{ {} }}\ntimeout_ms = {TIMEOUT_MS}\nmax_attempts = 2\n\
             retry_secs = 1\nsweep_secs = 1\n{backends}",
            urls.join(", ")
        ),
    );
    // Queued before rapidbox starts, so every message goes at once.
    let ids = {
        let store = Store::open(&dir.path().join("rapidbox.redb"), StoreOptions::default())
            .unwrap_or_else(|e| panic!("store: {e}"));
        let mut unit = Unit::new();
        let mut ids = Vec::new();
        for name in peers
            .iter()
            .map(|(how, _)| backend(*how))
            .chain(["good".to_owned()])
        {
            let id = store.allocate_id();
            unit.push(Op::put(Message::new(
                id,
                Connection::new(&name, "+250788"),
                Direction::Outgoing,
                "hello",
            )));
            ids.push(id);
        }
        let _applied = store
            .commit(unit)
            .await
            .unwrap_or_else(|e| panic!("queue: {e}"));
        store.close().await;
        ids
    };
    let started = Instant::now();
    let running = start(config).await;
    let good_id = *ids.last().expect("the good message");
    // The good backend's message is sent while the others misbehave:
    // before the slow peer's first timeout has even fired.
    loop {
        if message(&running, good_id).await.status == Status::Sent {
            break;
        }
        assert!(
            started.elapsed() < WAIT,
            "the good backend's message was not sent"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let good_took = started.elapsed();
    // Every misbehaving one fails after its two attempts, each recorded.
    for ((how, peer), id) in peers.iter().zip(&ids) {
        loop {
            let m = message(&running, *id).await;
            if m.status == Status::Failed {
                assert_eq!(m.attempts, 2, "{how:?}: retried as configured");
                break;
            }
            assert!(started.elapsed() < WAIT, "{how:?}: still {:?}", m.status);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let logs = errors(&running, *id).await;
        assert_eq!(
            logs.len(),
            2,
            "{how:?}: one delivery error per attempt: {logs:?}"
        );
        for log in &logs {
            assert!(
                log.contains(names_the_problem(*how)),
                "{how:?}: {log:?} does not say {:?}",
                names_the_problem(*how)
            );
        }
        if *how != Misbehaviour::Down {
            // One request per attempt: a redirect is not followed.
            assert_eq!(peer.requests(), 2, "{how:?}: requests");
        }
    }
    eprintln!(
        "good backend sent after {good_took:?}; all failed after {:?}",
        started.elapsed()
    );
    assert!(
        good_took < Duration::from_millis(TIMEOUT_MS),
        "the good message waited {good_took:?} for the misbehaving peers"
    );
    running.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_targets_that_misbehave_are_app_failures_within_the_timeout() {
    routing_peers_misbehave("hook", |url| {
        format!(
            "[router]\napps = [\"hook\"]\n[apps.hook]\nkind = \"webhook\"\nurl = \"{url}\"\n\
             timeout_ms = {TIMEOUT_MS}\n"
        )
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_service_get_urls_that_misbehave_are_app_failures_within_the_timeout() {
    routing_peers_misbehave("sms service", |url| {
        format!(
            "[router]\napps = [\"sms_services\"]\n[smsbox]\nhttp_timeout = {}\n\
             [[sms_services]]\nkeyword = \"default\"\nget_url = \"{url}\"\n",
            TIMEOUT_MS / 1000
        )
    })
    .await;
}

/// An MO through `/router/receive` whose app calls a peer that
/// misbehaves each way: answered within the timeout, the failure stored
/// on the message naming `app` and the problem, and other requests
/// answered meanwhile.
async fn routing_peers_misbehave(app: &str, config: impl Fn(&str) -> String) {
    for how in Misbehaviour::ALL {
        let peer = Misbehaving::start(how).await;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
        let config = load(dir.path(), &config(&peer.url("/sms")));
        let running = start(config).await;
        let addr = running.http_addr();
        let started = Instant::now();
        let receive = tokio::spawn(exchange(
            addr,
            b"GET /router/receive?backend=web&sender=256700&message=hi HTTP/1.1\r\n\
              Host: x\r\nConnection: close\r\n\r\n",
        ));
        // Other requests are answered while the webhook misbehaves.
        let stats = exchange(
            addr,
            b"GET /router/stats HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        )
        .await;
        let stats_took = started.elapsed();
        assert_eq!(stats.status, 200, "{how:?}: {stats:?}");
        assert!(
            stats_took < Duration::from_millis(TIMEOUT_MS),
            "{how:?}: /router/stats waited {stats_took:?}"
        );
        let reply = receive.await.expect("the receive task");
        let took = started.elapsed();
        assert_eq!(reply.status, 200, "{how:?}: {reply:?}");
        // The timeout bounds it (a little slack for a busy machine).
        assert!(
            took < Duration::from_millis(TIMEOUT_MS * 5),
            "{how:?}: receive took {took:?}"
        );
        let id = reply
            .body
            .split("\"id\":")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|n| n.parse::<MessageId>().ok())
            .unwrap_or_else(|| panic!("{how:?}: no message id in {:?}", reply.body));
        let logs = errors(&running, id).await;
        assert_eq!(logs.len(), 1, "{how:?}: {logs:?}");
        assert!(
            logs[0].contains(app) && logs[0].contains(names_the_problem(how)),
            "{how:?}: {:?} does not name the app and {:?}",
            logs[0],
            names_the_problem(how)
        );
        running.stop().await;
    }
}
