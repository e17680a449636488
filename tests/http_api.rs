//! rapidbox's HTTP server (rapidsms-httprouter's endpoints) driven by real
//! HTTP clients: hyper-util's client for ordinary requests, raw TCP for
//! the misbehaving ones (slow, idle, oversized).
//!
//! Every test starts the whole of rapidbox in-process with
//! `rapidbox::Daemon` (no bearerbox, store in a temporary directory, HTTP
//! on 127.0.0.1 port 0) and reads its store afterwards. Tests that need an
//! app of their own (a slow one) add it through the builder, as an
//! embedder would.
//!
//! - receive: the echo app's reply is in `responses` and in the store, MO
//!   and reply committed before the answer and the reply offered after;
//!   POST forms; silent mode and `echo`; every bad field named, nothing
//!   stored; the password in the query, a form or a bearer header.
//! - outbox: only pull backends, matched ignoring case; delivered: D with
//!   its time, 404, 400, 409.
//! - status (text and JSON, a stuck message), stats.
//! - bounds: 404, 405, 413 (declared and chunked), 415, 431, slow headers,
//!   idle keep-alive, slow body, the connection limit; graceful shutdown.

mod support;

use std::future::Future;
use std::net::SocketAddr;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use hyper::{Method, Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use rapidbox::config::Config;
use rapidbox::model::{now_micros, Connection, Direction, Message, Status};
use rapidbox::router::{App, AppFuture, Incoming};
use rapidbox::store::{Op, Outcome, Store, StoreOptions, Unit};
use rapidbox::{Daemon, Running};
use support::in_process::{send, Reply, Rig};

/// Bound on anything a test waits for that has no timer of its own.
const WAIT: Duration = Duration::from_secs(10);

async fn bounded<T>(what: &str, f: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what} took over {WAIT:?}"))
}

// --- rapidbox in-process ----------------------------------------------------

// --- a real HTTP client -------------------------------------------------------

fn request(method: Method, addr: SocketAddr, path: &str) -> hyper::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"))
}

async fn get(addr: SocketAddr, path: &str) -> Reply {
    let r = request(Method::GET, addr, path).body(Full::default());
    send(r.expect("request")).await
}

async fn post_form(addr: SocketAddr, path: &str, form: &str) -> Reply {
    let r = request(Method::POST, addr, path)
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from(form.to_owned())));
    send(r.expect("request")).await
}

/// Writes `bytes` on a fresh connection and reads until the server closes
/// it (or [`WAIT`] passes); returns what was read and when the close came.
async fn raw(addr: SocketAddr, bytes: &[u8]) -> (String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(bytes).await.expect("write");
    let text = read_to_close(&mut stream).await;
    (text, started.elapsed())
}

async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match bounded("reading until the server closes", stream.read(&mut buf)).await {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

async fn stored(store: &Store, id: &Value) -> Message {
    let id = id.as_u64().unwrap_or_else(|| panic!("not an id: {id}"));
    store
        .message(id)
        .await
        .expect("store readable")
        .unwrap_or_else(|| panic!("message {id} is not stored"))
}

async fn total(store: &Store) -> u64 {
    store
        .counts()
        .await
        .expect("counts")
        .iter()
        .map(|(_, _, n)| n)
        .sum()
}

// --- receive -------------------------------------------------------------------

#[tokio::test]
async fn receive_routes_the_message_and_answers_after_storing_it_with_its_reply() {
    let rig = Rig::start("", "").await;
    let reply = get(
        rig.addr,
        "/router/receive?backend=Relay&sender=%2B256-772+000001&message=hello+there",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    assert_eq!(reply.content_type, "application/json");
    let body = reply.json();
    assert_eq!(body["status"], "Message handled.");
    let message = &body["message"];
    let mut shape: Vec<&String> = message.as_object().expect("object").keys().collect();
    shape.sort();
    assert_eq!(
        shape,
        [
            "backend",
            "contact",
            "date",
            "direction",
            "id",
            "status",
            "text"
        ]
    );
    assert_eq!(message["contact"], "256772000001");
    assert_eq!(message["backend"], "Relay");
    assert_eq!(message["direction"], "I");
    assert_eq!(message["status"], "H");
    assert_eq!(message["text"], "hello there");
    let date = message["date"].as_str().expect("date");
    assert_eq!(date.len(), "2026-11-26T13:08:34".len(), "{date}");
    assert_eq!((&date[4..5], &date[10..11], &date[13..14]), ("-", "T", ":"));
    let responses = body["responses"].as_array().expect("responses");
    assert_eq!(responses.len(), 1, "{body}");
    let response = &responses[0];
    assert_eq!(response["text"], "You said: hello there");
    assert_eq!(
        (&response["direction"], &response["status"]),
        (&json!("O"), &json!("Q"))
    );
    assert_eq!(
        (&response["contact"], &response["backend"]),
        (&json!("256772000001"), &json!("Relay"))
    );

    // Both were durable before the answer.
    let store = rig.store();
    let mo = stored(store, &message["id"]).await;
    assert_eq!(
        (mo.direction, mo.status),
        (Direction::Incoming, Status::Handled)
    );
    assert_eq!(mo.connection.address, "+256-772 000001");
    assert!(mo.kannel.is_none());
    let mt = stored(store, &response["id"]).await;
    assert_eq!(
        (mt.direction, mt.status),
        (Direction::Outgoing, Status::Queued)
    );
    assert_eq!(mt.in_response_to, Some(mo.id));
    assert_eq!(mt.text, "You said: hello there");
    rig.stop().await;
}

#[tokio::test]
async fn receive_takes_a_posted_form_whose_fields_override_the_query() {
    let rig = Rig::start("", "").await;
    let reply = post_form(
        rig.addr,
        "/router/receive?backend=ignored",
        "backend=web&sender=0788&message=caf%C3%A9+%26+more",
    )
    .await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let body = reply.json();
    assert_eq!(body["message"]["backend"], "web");
    assert_eq!(body["message"]["text"], "café & more");
    assert_eq!(
        stored(rig.store(), &body["message"]["id"]).await.text,
        "café & more"
    );

    let json_body = request(Method::POST, rig.addr, "/router/receive")
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from_static(b"{\"backend\":\"web\"}")))
        .expect("request");
    let reply = send(json_body).await;
    assert_eq!(
        reply.status,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "{reply:?}"
    );
    assert!(reply.json()["error"].is_string());
    assert_eq!(
        total(rig.store()).await,
        2,
        "only the form's message and reply"
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_invalid_receive_names_every_bad_field_and_stores_nothing() {
    let rig = Rig::start("", "").await;
    let long = "b".repeat(33);
    let cases = [
        (
            format!("/router/receive?backend={long}&sender="),
            json!({"backend": "at most 32 characters", "sender": "required", "message": "required"}),
        ),
        (
            "/router/receive?backend=web&sender=123456789012345678901&message=%20".to_owned(),
            json!({"sender": "at most 20 characters", "message": "required"}),
        ),
        (
            "/router/receive?backend=web&sender=%2B-&message=hi".to_owned(),
            json!({"sender": "has no letters or digits"}),
        ),
    ];
    for (path, fields) in cases {
        let reply = get(rig.addr, &path).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{path}: {reply:?}");
        assert_eq!(
            reply.json(),
            json!({"error": "invalid request", "fields": fields}),
            "{path}"
        );
    }
    // Exactly 20 and 32 characters are fine.
    let ok = format!(
        "/router/receive?backend={}&sender={}&message=x",
        "b".repeat(32),
        "1".repeat(20)
    );
    assert_eq!(get(rig.addr, &ok).await.status, StatusCode::OK);
    assert_eq!(
        total(rig.store()).await,
        2,
        "only the valid message and its reply"
    );
    rig.stop().await;
}

#[tokio::test]
async fn silent_mode_answers_empty_unless_echo_is_asked_for() {
    let rig = Rig::start("silent = true", "").await;
    let reply = get(rig.addr, "/router/receive?backend=web&sender=1&message=hi").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.body, "");
    assert_eq!(total(rig.store()).await, 2, "stored all the same");
    let reply = get(
        rig.addr,
        "/router/receive?backend=web&sender=1&message=hi&echo=false",
    )
    .await;
    assert_eq!(reply.body, "");
    let reply = get(
        rig.addr,
        "/router/receive?backend=web&sender=1&message=hi&echo=1",
    )
    .await;
    assert_eq!(reply.json()["status"], "Message handled.");
    rig.stop().await;
}

#[tokio::test]
async fn the_password_is_required_by_receive_outbox_and_delivered_only() {
    let rig = Rig::start("password = \"s3cret\"", "").await;
    let receive = "/router/receive?backend=web&sender=1&message=hi";
    for path in [
        receive.to_owned(),
        format!("{receive}&password=wrong"),
        format!("{receive}&password=s3cre"),
        "/router/outbox".to_owned(),
        "/router/delivered?message_id=1".to_owned(),
    ] {
        let reply = get(rig.addr, &path).await;
        assert_eq!(reply.status, StatusCode::FORBIDDEN, "{path}: {reply:?}");
        assert_eq!(reply.json()["error"], "a valid password is required");
    }
    let wrong_bearer = request(Method::GET, rig.addr, receive)
        .header(AUTHORIZATION, "Bearer wrong")
        .body(Full::default())
        .expect("request");
    assert_eq!(send(wrong_bearer).await.status, StatusCode::FORBIDDEN);
    assert_eq!(total(rig.store()).await, 0, "nothing refused was stored");

    let by_query = get(rig.addr, &format!("{receive}&password=s3cret")).await;
    assert_eq!(by_query.status, StatusCode::OK, "{by_query:?}");
    let by_form = post_form(
        rig.addr,
        "/router/receive",
        "backend=web&sender=1&message=hi&password=s3cret",
    )
    .await;
    assert_eq!(by_form.status, StatusCode::OK, "{by_form:?}");
    let bearer = request(Method::GET, rig.addr, receive)
        .header(AUTHORIZATION, "Bearer s3cret")
        .body(Full::default())
        .expect("request");
    assert_eq!(send(bearer).await.status, StatusCode::OK);
    assert_eq!(total(rig.store()).await, 6);
    let outbox = get(rig.addr, "/router/outbox?password=s3cret").await;
    assert_eq!(outbox.status, StatusCode::OK, "{outbox:?}");
    // Monitoring needs no password.
    assert_eq!(get(rig.addr, "/router/status").await.status, StatusCode::OK);
    assert_eq!(get(rig.addr, "/router/stats").await.status, StatusCode::OK);
    rig.stop().await;
}

// --- outbox and delivered --------------------------------------------------------

#[tokio::test]
async fn the_outbox_lists_queued_replies_of_pull_backends_and_delivered_takes_them_out() {
    // With no bearerbox and no push URL, every backend is pull.
    let rig = Rig::start("", "").await;
    let mut ids = Vec::new();
    for backend in ["Relay", "relay", "other"] {
        let path = format!("/router/receive?backend={backend}&sender=1&message={backend}");
        ids.push(get(rig.addr, &path).await.json()["responses"][0]["id"].clone());
    }
    let outbox = get(rig.addr, "/router/outbox?backend=RELAY").await;
    assert_eq!(outbox.status, StatusCode::OK, "{outbox:?}");
    let body = outbox.json();
    assert_eq!(body["status"], "Outbox follows.");
    let listed: Vec<&Value> = body["outbox"]
        .as_array()
        .expect("outbox")
        .iter()
        .map(|m| &m["id"])
        .collect();
    assert_eq!(listed, [&ids[0], &ids[1]], "{body}");
    let all = get(rig.addr, "/router/outbox").await.json();
    assert_eq!(all["outbox"].as_array().expect("outbox").len(), 3);

    let delivered = get(
        rig.addr,
        &format!("/router/delivered?message_id={}", ids[0]),
    )
    .await;
    assert_eq!(delivered.status, StatusCode::OK, "{delivered:?}");
    let body = delivered.json();
    assert_eq!(body["status"], "Message marked as delivered.");
    assert_eq!(body["message"]["status"], "D");
    let message = stored(rig.store(), &ids[0]).await;
    assert_eq!(message.status, Status::Delivered);
    assert!(message.delivered.is_some_and(|t| t > message.date - 1));
    // Again, by POST: still delivered, the first time kept.
    let again = post_form(
        rig.addr,
        "/router/delivered",
        &format!("message_id={}", ids[0]),
    )
    .await;
    assert_eq!(again.status, StatusCode::OK, "{again:?}");
    assert_eq!(
        stored(rig.store(), &ids[0]).await.delivered,
        message.delivered
    );
    let outbox = get(rig.addr, "/router/outbox?backend=relay").await.json();
    assert_eq!(outbox["outbox"].as_array().expect("outbox").len(), 1);
    rig.stop().await;
}

#[tokio::test]
async fn delivered_refuses_unknown_ids_non_integers_and_incoming_messages() {
    let rig = Rig::start("", "").await;
    let reply = get(rig.addr, "/router/delivered?message_id=999999").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND, "{reply:?}");
    assert_eq!(reply.json(), json!({"error": "no message 999999"}));
    for (query, problem) in [
        ("?message_id=abc", "must be a message id (a whole number)"),
        ("?message_id=-3", "must be a message id (a whole number)"),
        ("", "required"),
    ] {
        let reply = get(rig.addr, &format!("/router/delivered{query}")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {reply:?}");
        assert_eq!(
            reply.json(),
            json!({"error": "invalid request", "fields": {"message_id": problem}})
        );
    }
    let mo = get(rig.addr, "/router/receive?backend=web&sender=1&message=hi")
        .await
        .json();
    let id = &mo["message"]["id"];
    let reply = get(rig.addr, &format!("/router/delivered?message_id={id}")).await;
    assert_eq!(reply.status, StatusCode::CONFLICT, "{reply:?}");
    assert_eq!(stored(rig.store(), id).await.status, Status::Handled);
    rig.stop().await;
}

// --- status and stats ---------------------------------------------------------------

#[tokio::test]
async fn status_counts_messages_queued_over_15_minutes_as_text_or_json() {
    let rig = Rig::start("", "").await;
    // A fresh reply is queued, but not for long.
    get(rig.addr, "/router/receive?backend=web&sender=1&message=hi").await;
    let reply = get(rig.addr, "/router/status").await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.content_type.starts_with("text/plain"), "{reply:?}");
    assert_eq!(
        reply.body,
        "STATUS: OK\nPENDING: 0 messages queued for more than 15 minutes\n"
    );

    let store = rig.store();
    let mut old = Message::new(
        store.allocate_id(),
        Connection::new("web", "2"),
        Direction::Outgoing,
        "stuck",
    );
    old.date = now_micros() - 16 * 60 * 1_000_000;
    let outcome = bounded("commit", store.commit(Unit::new().with(Op::put(old))))
        .await
        .expect("commit");
    assert_eq!(outcome, Outcome::Applied);
    let reply = get(rig.addr, "/router/status").await;
    assert_eq!(
        reply.body,
        "STATUS: ERROR\nPENDING: 1 messages queued for more than 15 minutes\n"
    );
    let expected = json!({"status": "ERROR", "pending": 1, "minutes": 15, "complete": true});
    let by_query = get(rig.addr, "/router/status?format=json").await;
    assert_eq!(by_query.content_type, "application/json");
    assert_eq!(by_query.json(), expected);
    let by_accept = request(Method::GET, rig.addr, "/router/status")
        .header(ACCEPT, "text/html;q=0.9, application/json")
        .body(Full::default())
        .expect("request");
    assert_eq!(send(by_accept).await.json(), expected);
    rig.stop().await;
}

#[tokio::test]
async fn stats_report_counts_the_link_queues_and_the_store() {
    let rig = Rig::start("", "").await;
    for _ in 0..2 {
        get(rig.addr, "/router/receive?backend=web&sender=1&message=hi").await;
    }
    let reply = get(rig.addr, "/router/stats").await;
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let stats = reply.json();
    assert_eq!(stats["messages"], json!({"I": {"H": 2}, "O": {"Q": 2}}));
    assert_eq!(stats["total"], 4);
    assert_eq!(
        stats["link"],
        json!({"enabled": false, "connected": false, "since": null, "in_flight": 0, "mts_held": false,
               "received": 0, "answered": 0, "connects": 0})
    );
    assert!(stats["queues"].is_object(), "{stats}");
    assert!(
        stats["store"]["transactions"].as_u64() >= Some(1),
        "{stats}"
    );
    assert!(stats["store"]["units"].as_u64() >= Some(2), "{stats}");
    assert_eq!(stats["store"]["refused"], 0);
    rig.stop().await;
}

// --- HTTP bounds ----------------------------------------------------------------------

#[tokio::test]
async fn unknown_paths_are_404_and_wrong_methods_405_in_json() {
    let rig = Rig::start("", "").await;
    let reply = get(rig.addr, "/router/nope").await;
    assert_eq!(reply.status, StatusCode::NOT_FOUND);
    assert_eq!(reply.json(), json!({"error": "no such endpoint"}));
    assert_eq!(
        get(rig.addr, "/router/status/").await.status,
        StatusCode::OK
    );
    let post = post_form(rig.addr, "/router/outbox", "").await;
    assert_eq!(post.status, StatusCode::METHOD_NOT_ALLOWED, "{post:?}");
    assert_eq!(post.allow, "GET");
    assert_eq!(post.json(), json!({"error": "method not allowed"}));
    let delete = request(Method::DELETE, rig.addr, "/router/receive")
        .body(Full::default())
        .expect("request");
    let delete = send(delete).await;
    assert_eq!(delete.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(delete.allow, "GET, POST");
    rig.stop().await;
}

#[tokio::test]
async fn oversized_bodies_get_413_whether_declared_or_streamed() {
    let rig = Rig::start("max_body_bytes = 1024", "").await;
    let declared = "POST /router/receive HTTP/1.1\r\nHost: x\r\n\
                    Content-Type: application/x-www-form-urlencoded\r\n\
                    Content-Length: 100000\r\n\r\n";
    let (text, _) = raw(rig.addr, declared.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert!(text.contains("larger than 1024 bytes"), "{text}");

    let form = format!("backend=web&sender=1&message={}", "x".repeat(2000));
    let chunked = format!(
        "POST /router/receive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{form}\r\n0\r\n\r\n",
        form.len()
    );
    let (text, _) = raw(rig.addr, chunked.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 413"), "{text}");
    assert_eq!(total(rig.store()).await, 0);
    rig.stop().await;
}

#[tokio::test]
async fn an_oversized_head_is_refused() {
    let rig = Rig::start("max_header_bytes = 8192", "").await;
    let head = format!(
        "GET /router/status HTTP/1.1\r\nHost: x\r\nX-Filler: {}\r\n\r\n",
        "a".repeat(20_000)
    );
    let (text, _) = raw(rig.addr, head.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 431"), "{text:.200}");
    rig.stop().await;
}

#[tokio::test]
async fn a_client_that_trickles_its_headers_is_dropped_at_the_header_timeout() {
    let rig = Rig::start("header_timeout_ms = 400", "").await;
    let started = Instant::now();
    let mut stream = TcpStream::connect(rig.addr).await.expect("connect");
    // One byte every 50 ms: always active, never done.
    let trickle = async {
        for byte in
            b"GET /router/status HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        {
            if stream.write_all(&[*byte]).await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    bounded("trickling", trickle).await;
    let text = read_to_close(&mut stream).await;
    let elapsed = started.elapsed();
    assert!(
        !text.contains("STATUS"),
        "answered a request it never finished: {text}"
    );
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_secs(3),
        "dropped after {elapsed:?}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed() {
    let rig = Rig::start("header_timeout_ms = 300", "").await;
    let request = b"GET /router/status HTTP/1.1\r\nHost: x\r\n\r\n";
    let (text, elapsed) = raw(rig.addr, request).await;
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("STATUS: OK"), "{text}");
    assert!(
        elapsed >= Duration::from_millis(250) && elapsed < Duration::from_secs(3),
        "closed after {elapsed:?}"
    );
    rig.stop().await;
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_gets_408() {
    let rig = Rig::start("body_timeout_ms = 300", "").await;
    let partial = "POST /router/receive HTTP/1.1\r\nHost: x\r\n\
                   Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\n\
                   backend=web";
    let (text, elapsed) = raw(rig.addr, partial.as_bytes()).await;
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    assert!(elapsed >= Duration::from_millis(250), "after {elapsed:?}");
    assert_eq!(total(rig.store()).await, 0);
    rig.stop().await;
}

#[tokio::test]
async fn connections_beyond_max_connections_wait_for_a_free_slot() {
    let rig = Rig::start("max_connections = 1", "").await;
    // Holds the only slot without sending anything.
    let holder = TcpStream::connect(rig.addr).await.expect("connect");
    tokio::time::sleep(Duration::from_millis(100)).await;
    let waiting = tokio::spawn(raw(
        rig.addr,
        b"GET /router/status HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!waiting.is_finished(), "served beyond max_connections");
    drop(holder);
    let (text, _) = bounded("the waiting request", waiting).await.expect("task");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    rig.stop().await;
}

// --- rapidbox with an app of the test's own -----------------------------------------------

/// Answers every message "ok", after a pause.
struct Slow(Duration);

impl App for Slow {
    fn name(&self) -> &str {
        "slow"
    }

    fn handle<'a>(&'a self, msg: &'a mut Incoming) -> AppFuture<'a, bool> {
        Box::pin(async move {
            tokio::time::sleep(self.0).await;
            msg.respond("ok");
            Ok(true)
        })
    }
}

/// rapidbox with no configured apps and [`Slow`] added through the
/// builder; backend `relay` is pulled, backend `sent` goes to a bearerbox
/// that is not there (its messages stay queued), `[http]` gets `http`.
async fn with_slow_app(pause: Duration, http: &str) -> (Running, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let nobody = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let port = nobody.local_addr().expect("address").port();
    drop(nobody);
    let toml = format!(
        "[store]\npath = {}\n[kannel]\nport = {port}\n\
         [http]\nlisten = \"127.0.0.1:0\"\n{http}\n[router]\napps = []\n\
         [backends.relay]\ntransport = \"pull\"\n[backends.sent]\ntransport = \"kannel\"\n",
        toml::Value::String(dir.path().join("s.redb").display().to_string())
    );
    let config = Config::from_toml_str(&toml).expect("configuration");
    let running = bounded(
        "start",
        Daemon::builder(config).app(Box::new(Slow(pause))).start(),
    )
    .await
    .expect("rapidbox starts");
    (running, dir)
}

#[tokio::test]
async fn an_app_added_through_the_builder_answers_and_the_outbox_shows_only_pull_backends() {
    let (running, _dir) = with_slow_app(Duration::ZERO, "").await;
    let addr = running.http_addr();
    let mut replies = Vec::new();
    for backend in ["relay", "RELAY", "sent"] {
        let path = format!("/router/receive?backend={backend}&sender=1&message=x");
        let body = get(addr, &path).await.json();
        assert_eq!(body["responses"][0]["text"], "ok", "{body}");
        let id = body["responses"][0]["id"].as_u64().expect("reply id");
        assert_eq!(
            running
                .store()
                .message(id)
                .await
                .expect("store")
                .expect("stored")
                .status,
            Status::Queued
        );
        replies.push(id);
    }
    let outbox = get(addr, "/router/outbox").await.json();
    let listed: Vec<u64> = outbox["outbox"]
        .as_array()
        .expect("outbox")
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert_eq!(
        listed,
        replies[..2],
        "the bearerbox's backend is not listed"
    );
    let sent = get(addr, "/router/outbox?backend=sent").await.json();
    assert_eq!(sent["outbox"], json!([]));
    bounded("stop", running.stop()).await;
}

#[tokio::test]
async fn shutdown_lets_the_request_in_progress_finish_and_closes_idle_connections() {
    // Longer than the test: only shutdown may close the idle connection.
    let (running, dir) =
        with_slow_app(Duration::from_millis(600), "header_timeout_ms = 60000").await;
    let addr = running.http_addr();
    let mut idle = TcpStream::connect(addr).await.expect("connect");
    let in_progress =
        tokio::spawn(
            async move { get(addr, "/router/receive?backend=relay&sender=1&message=x").await },
        );
    // The request is being routed (the app pauses) when shutdown starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    bounded("stop", running.stop()).await;
    let stopped_after = started.elapsed();
    let reply = bounded("the request in progress", in_progress)
        .await
        .expect("task");
    assert_eq!(reply.status, StatusCode::OK, "{reply:?}");
    let id = reply.json()["message"]["id"].clone();
    let store = Store::open(&dir.path().join("s.redb"), StoreOptions::default()).expect("store");
    assert_eq!(stored(&store, &id).await.status, Status::Handled);
    assert!(
        stopped_after < Duration::from_secs(5),
        "stop took {stopped_after:?}"
    );
    assert_eq!(
        read_to_close(&mut idle).await,
        "",
        "the idle connection is closed"
    );
    assert!(
        TcpStream::connect(addr).await.is_err(),
        "still accepting after shutdown"
    );
}
