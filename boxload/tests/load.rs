//! boxload against boxes: the real rapidbox (in-process, echo app, durable
//! store) must pass a load cleanly; a deliberately broken box must be
//! caught, with its losses and its garbage frame in the report.

use std::time::{Duration, Instant};

use boxload::{Options, Report};
use boxproto::{Ack, AckStatus, Admin, AdminCommand, BoxCodec, Bytes, Msg, Sms, SmsType, Uuid};
use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Framed;

async fn listener() -> TcpListener {
    TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("cannot listen: {e}"))
}

/// rapidbox attached to `port`, answering every MO with "You said: %a",
/// asking for delivered reports, with its store in `dir`.
fn rapidbox_config(dir: &std::path::Path, port: u16) -> rapidbox::config::Config {
    let store = toml::Value::String(dir.join("rapidbox.redb").display().to_string());
    let text = format!(
        r#"
[store]
path = {store}

[kannel]
host = "127.0.0.1"
port = {port}
dlr_mask = 1
reconnect_min_ms = 200
reconnect_max_secs = 2

[http]
listen = "127.0.0.1:0"

[router]
apps = ["echo"]

[apps.echo]
template = "You said: %a"
"#
    );
    rapidbox::config::Config::from_toml_str(&text)
        .unwrap_or_else(|e| panic!("test configuration: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rapidbox_answers_every_mo_exactly_once() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("tempdir: {e}"));
    let listener = listener().await;
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"))
        .port();
    let running = rapidbox::Daemon::builder(rapidbox_config(dir.path(), port))
        .start()
        .await
        .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"));
    let options = Options {
        messages: 2000,
        window: 100,
        senders: 7,
        dlr: true,
        grace: Duration::from_secs(5),
        timeout: Duration::from_secs(120),
        ..Default::default()
    };
    let started = Instant::now();
    let report = boxload::run(listener, &options)
        .await
        .unwrap_or_else(|e| panic!("load: {e}"));
    eprintln!("{}in {:?}", report.to_text(), started.elapsed());
    running.stop().await;

    assert!(
        report.passed(),
        "rapidbox failed the load:\n{}",
        report.to_text()
    );
    assert_eq!(report.end, "complete");
    assert_eq!(report.offered, 2000);
    assert_eq!(report.counts.acks.get("success"), Some(&2000));
    assert_eq!(report.counts.replies, 2000);
    assert_eq!(
        (
            report.lost,
            report.counts.duplicated,
            report.counts.mismatched
        ),
        (0, 0, 0)
    );
    assert_eq!(
        report.counts.bad_frames + report.counts.unexpected_frames + report.counts.unknown_acks,
        0
    );
    // dlr_mask 1 on every reply: one delivered report each, each acked.
    assert_eq!(report.counts.dlrs_sent, 2000);

    // The JSON line carries the same figures under the documented names.
    let json: serde_json::Value = serde_json::from_str(&report.to_json())
        .unwrap_or_else(|e| panic!("the JSON line does not parse: {e}"));
    for field in [
        "messages",
        "offered",
        "acked",
        "acks",
        "replies",
        "lost",
        "duplicated",
        "mismatched",
        "bad_frames",
        "unexpected_frames",
        "unknown_acks",
        "ack_rate",
        "reply_rate",
        "ack_latency_ms",
        "reply_latency_ms",
        "end",
    ] {
        assert!(json.get(field).is_some(), "JSON lacks {field}: {json}");
    }
    assert_eq!(json["replies"], 2000);
    assert!(json["ack_rate"].as_f64().is_some_and(|r| r > 0.0));
    for q in ["p50", "p90", "p99", "max"] {
        assert!(
            json["reply_latency_ms"][q].as_f64().is_some(),
            "no reply {q}: {json}"
        );
    }
}

/// A broken box: identifies, acks every MO success, answers only the odd
/// ones, and sends one frame of garbage after the first MO. Runs until
/// boxload closes the connection.
async fn broken_box(port: u16) {
    let socket = TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap_or_else(|e| panic!("connect: {e}"));
    let mut framed = Framed::new(socket, BoxCodec::new());
    let identify = Admin {
        command: AdminCommand::Identify,
        ..Default::default()
    };
    if framed.send(Msg::from(identify)).await.is_err() {
        return;
    }
    let mut garbage_sent = false;
    let mut n = 0u32;
    while let Some(Ok(Ok(msg))) = framed.next().await {
        let Msg::Sms(mo) = msg else { continue };
        n += 1;
        let ack = Ack {
            nack: AckStatus::Success,
            id: mo.id,
            ..Default::default()
        };
        if framed.send(Msg::from(ack)).await.is_err() {
            return;
        }
        if n % 2 == 1 {
            let reply = Sms {
                sender: mo.receiver.clone(),
                receiver: mo.sender.clone(),
                msgdata: mo.msgdata.clone(),
                id: Uuid::new_v4(),
                sms_type: SmsType::MtReply,
                ..Default::default()
            };
            if framed.send(Msg::from(reply)).await.is_err() {
                return;
            }
        }
        if !garbage_sent {
            garbage_sent = true;
            // A whole frame whose message type (99) does not exist.
            let frame = [0, 0, 0, 8, 0, 0, 0, 99, 1, 2, 3, 4];
            if framed.get_mut().write_all(&frame).await.is_err() {
                return;
            }
            // And a reply that answers no MO.
            let stray = Sms {
                receiver: Some(Bytes::from_static(b"+999")),
                msgdata: Some(Bytes::from_static(b"hello 1")),
                id: Uuid::new_v4(),
                sms_type: SmsType::MtPush,
                ..Default::default()
            };
            if framed.send(Msg::from(stray)).await.is_err() {
                return;
            }
        }
    }
}

async fn load_broken_box(options: &Options) -> Report {
    let listener = listener().await;
    let port = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("local addr: {e}"))
        .port();
    // A port probe first, as a script waiting for the port makes: boxload
    // must wait for the real box rather than end the run.
    drop(TcpStream::connect(("127.0.0.1", port)).await);
    let the_box = tokio::spawn(broken_box(port));
    let report = boxload::run(listener, options)
        .await
        .unwrap_or_else(|e| panic!("load: {e}"));
    // boxload sent the box a shutdown and closed: the box must end.
    tokio::time::timeout(Duration::from_secs(5), the_box)
        .await
        .unwrap_or_else(|_| panic!("the box did not see the connection close"))
        .unwrap_or_else(|e| panic!("the box panicked: {e}"));
    report
}

#[tokio::test]
async fn a_box_that_answers_every_other_mo_is_reported_and_fails() {
    let options = Options {
        messages: 100,
        window: 10,
        grace: Duration::from_millis(500),
        timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let report = load_broken_box(&options).await;
    eprintln!("{}", report.to_text());
    assert!(!report.passed());
    assert_eq!(report.end, "grace_expired");
    assert_eq!(report.counts.acks.get("success"), Some(&100));
    assert_eq!(report.counts.replies, 50);
    assert_eq!(report.lost, 50);
    assert_eq!(report.counts.duplicated, 0);
    assert_eq!(report.counts.mismatched, 1);
    assert_eq!(report.counts.bad_frames, 1);
    assert!(
        report.problems.iter().any(|p| p.contains("bad frame")),
        "the bad frame is not described: {:?}",
        report.problems
    );
}

#[tokio::test]
async fn a_paced_load_takes_as_long_as_its_rate_says() {
    let options = Options {
        messages: 20,
        window: 5,
        rate: Some(100.0),
        grace: Duration::from_millis(300),
        timeout: Duration::from_secs(30),
        ..Default::default()
    };
    let started = Instant::now();
    let report = load_broken_box(&options).await;
    // 20 MOs at 100/s: about 0.2 s of offering (the first tick is at once).
    let offering = started.elapsed() - Duration::from_millis(300);
    assert_eq!(report.offered, 20);
    assert!(
        offering >= Duration::from_millis(180),
        "20 MOs at 100/s offered in {offering:?}"
    );
}

#[tokio::test]
async fn no_box_is_an_error_after_the_timeout() {
    let options = Options {
        timeout: Duration::from_millis(200),
        ..Default::default()
    };
    let result = boxload::run(listener().await, &options).await;
    assert!(matches!(result, Err(boxload::LoadError::NoBox(_))));
}
