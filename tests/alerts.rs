//! httprouter's alert endpoints (`POST /router/alert`, `POST
//! /router/relaylog`) against a real rapidbox: forwarded to a recording
//! webhook (`support::service`), and mailed through a real SMTP server
//! (aiosmtpd, Debian's `python3-aiosmtpd`, writing what it receives to a
//! Maildir). The mail tests are skipped without aiosmtpd, except under CI
//! (`CI=true`), where they fail.

mod support;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::header::CONTENT_TYPE;
use hyper::{Method, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use support::in_process::Rig;
use support::ports::free_port;
use support::process::Daemon;
use support::service::{Answer, Service};

const WAIT: Duration = Duration::from_secs(15);
const PASSWORD: &str = "landshark";
/// Debian's Python, which `python3-aiosmtpd` installs into.
const PYTHON: &str = "/usr/bin/python3";

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over {WAIT:?}"))
}

/// rapidbox with `[http] password` and `alerts` as its `[alerts]`.
async fn start(alerts: &str) -> Rig {
    Rig::start(
        &format!("password = \"{PASSWORD}\""),
        &format!("[alerts]\n{alerts}\n"),
    )
    .await
}

/// The status and body of a request to `path` (a POST form when `form`
/// is given).
async fn call(addr: SocketAddr, path: &str, form: Option<&[(&str, &str)]>) -> (StatusCode, String) {
    let request = Request::builder().uri(format!("http://{addr}{path}"));
    let request = match form {
        Some(pairs) => request
            .method(Method::POST)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(
                form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(pairs)
                    .finish(),
            ))),
        None => request.method(Method::GET).body(Full::default()),
    }
    .expect("request");
    let client = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let response = bounded(path, client.request(request))
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status();
    let body = bounded(path, response.into_body().collect())
        .await
        .expect("body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn alerts_are_forwarded_to_the_webhook() {
    let hook = Service::start(Answer::Text("ok")).await;
    let rig = start(&format!("url = \"{}\"", hook.url("/hook"))).await;

    // httprouter's answers to what is not an alert.
    assert_eq!(
        call(rig.addr, "/router/alert", None).await,
        (
            StatusCode::BAD_REQUEST,
            "Must be POST of [subject, body, password]".to_owned()
        )
    );
    assert_eq!(
        call(rig.addr, "/router/relaylog", None).await.1,
        "Must be POST of [log, password]"
    );
    let wrong = [("subject", "s"), ("body", "b"), ("password", "no")];
    assert_eq!(
        call(rig.addr, "/router/alert", Some(&wrong)).await.0,
        StatusCode::FORBIDDEN
    );
    let partial = [("subject", "s"), ("password", PASSWORD)];
    assert_eq!(
        call(rig.addr, "/router/alert", Some(&partial)).await,
        (StatusCode::BAD_REQUEST, "Missing body".to_owned())
    );
    assert!(hook.seen().is_empty());

    let alert = [
        ("subject", "Phone battery low"),
        ("body", "12% <left>"),
        ("password", PASSWORD),
    ];
    assert_eq!(
        call(rig.addr, "/router/alert", Some(&alert)).await,
        (StatusCode::OK, "Log Sent".to_owned())
    );
    let log = [("log", "line 1\nline 2"), ("password", PASSWORD)];
    assert_eq!(
        call(rig.addr, "/router/relaylog", Some(&log)).await,
        (StatusCode::OK, "Log Sent".to_owned())
    );
    let seen = hook.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].content_type.as_deref(), Some("application/json"));
    let first: serde_json::Value = serde_json::from_slice(&seen[0].body).expect("JSON");
    assert_eq!(
        first,
        serde_json::json!({"subject": "Phone battery low", "body": "12% <left>", "source": "alert"})
    );
    let second: serde_json::Value = serde_json::from_slice(&seen[1].body).expect("JSON");
    assert_eq!(second["subject"], "Relay log");
    assert_eq!(second["body"], "line 1\nline 2");

    // A webhook that fails is the caller's to know.
    hook.answer(Answer::Status(500, "down"));
    let (status, body) = call(rig.addr, "/router/alert", Some(&alert)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY);
    assert!(body.contains("answered 500"), "{body}");
    rig.stop().await;
}

#[tokio::test]
async fn without_a_channel_alerts_are_not_configured() {
    let rig = start("").await;
    let alert = [("subject", "s"), ("body", "b"), ("password", PASSWORD)];
    let (status, body) = call(rig.addr, "/router/alert", Some(&alert)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.contains("not configured"), "{body}");
    rig.stop().await;
}

/// Whether aiosmtpd can run; skips or, under CI, fails without it.
fn require_aiosmtpd(test: &str) -> bool {
    let found = std::process::Command::new(PYTHON)
        .args(["-c", "import aiosmtpd"])
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        return true;
    }
    if support::in_ci() {
        panic!("{test}: aiosmtpd is required under CI; install it with `apt-get install -y python3-aiosmtpd`");
    }
    eprintln!("{test}: skipped: aiosmtpd not installed (apt-get install -y python3-aiosmtpd)");
    false
}

/// A real SMTP server on a free port, storing every message it accepts in
/// the Maildir `dir/maildir`; stopped when dropped.
async fn smtp_server(dir: &Path) -> (Daemon, u16) {
    let port = free_port();
    let maildir = dir.join("maildir");
    let mut server = Daemon::spawn(
        "aiosmtpd",
        PYTHON,
        [
            "-m".to_owned(),
            "aiosmtpd".to_owned(),
            "-n".to_owned(),
            "-l".to_owned(),
            format!("127.0.0.1:{port}"),
            "-c".to_owned(),
            "aiosmtpd.handlers.Mailbox".to_owned(),
            maildir.display().to_string(),
        ],
        dir,
        Vec::new(),
    );
    server.wait_for_tcp_port(port, WAIT).await;
    (server, port)
}

/// The messages in `maildir`'s `new/`, as text.
fn mails(maildir: &Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(maildir.join("new")) else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .collect()
}

#[tokio::test]
async fn alerts_are_mailed_through_a_real_smtp_server() {
    if !require_aiosmtpd("alerts_are_mailed_through_a_real_smtp_server") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (mut server, port) = smtp_server(dir.path()).await;
    let rig = start(&format!(
            "smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"none\"\n\
             from = \"rapidbox <rapidbox@example.org>\"\nto = [\"ops@example.org\", \"oncall@example.org\"]\n"
    ))
    .await;
    let alert = [
        ("subject", "Relay 7 offline"),
        ("body", "no heartbeat since 12:00\nbattery 3%"),
        ("password", PASSWORD),
    ];
    assert_eq!(
        call(rig.addr, "/router/alert", Some(&alert)).await,
        (StatusCode::OK, "Log Sent".to_owned())
    );
    let log = [("log", "relay log line"), ("password", PASSWORD)];
    assert_eq!(
        call(rig.addr, "/router/relaylog", Some(&log)).await,
        (StatusCode::OK, "Log Sent".to_owned())
    );
    let maildir = dir.path().join("maildir");
    let mut got = mails(&maildir);
    let deadline = tokio::time::Instant::now() + WAIT;
    while got.len() < 2 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
        got = mails(&maildir);
    }
    assert_eq!(got.len(), 2, "{got:?}\n{}", server.log_tails());
    let alert_mail = got
        .iter()
        .find(|m| m.contains("Subject: Relay 7 offline"))
        .unwrap_or_else(|| panic!("no alert mail in {got:?}"));
    for expected in [
        "From: rapidbox <rapidbox@example.org>",
        "To: ops@example.org, oncall@example.org",
        "Content-Type: text/plain",
        "no heartbeat since 12:00\nbattery 3%",
    ] {
        assert!(
            alert_mail.contains(expected),
            "{expected:?} not in {alert_mail}"
        );
    }
    assert!(got
        .iter()
        .any(|m| m.contains("Subject: Relay log") && m.contains("relay log line")));

    // The server gone: the caller hears the alert was not sent.
    server.stop();
    let (status, body) = call(rig.addr, "/router/alert", Some(&alert)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(body.starts_with("Log not sent: the mail server"), "{body}");
    rig.stop().await;
}

#[tokio::test]
async fn a_mail_server_without_the_tls_asked_for_is_refused() {
    if !require_aiosmtpd("a_mail_server_without_the_tls_asked_for_is_refused") {
        return;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let (_server, port) = smtp_server(dir.path()).await;
    // aiosmtpd here offers no STARTTLS: nothing may go in clear.
    let rig = start(&format!(
        "smtp_host = \"127.0.0.1\"\nsmtp_port = {port}\nsmtp_security = \"starttls\"\n\
             from = \"rapidbox@example.org\"\nto = [\"ops@example.org\"]\n"
    ))
    .await;
    let alert = [("subject", "s"), ("body", "b"), ("password", PASSWORD)];
    let (status, body) = call(rig.addr, "/router/alert", Some(&alert)).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert!(mails(&dir.path().join("maildir")).is_empty());
    rig.stop().await;
}
