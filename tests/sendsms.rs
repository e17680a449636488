//! Kannel's sendsms interface in rapidbox (`/cgi-bin/sendsms`).
//!
//! - In process (`rapidbox::Daemon`, no bearerbox, so every message
//!   stays queued in the store): smsbox's 403 and 400 answers, byte for
//!   byte, with nothing stored; several receivers make several messages
//!   and one answer; a POST form; smsbox's POST with `X-Kannel-*`
//!   headers, an octet-stream POST, an XML POST and the content types
//!   smsbox refuses; what the store keeps of coding, UDH, charset and the
//!   MT fields; a message the router cancels. (Every request compared with
//!   the real smsbox: `tests/sendsms_vs_smsbox.rs`.)
//! - End to end with Debian's bearerbox 1.4.5, fakesmsc and the `rapidbox`
//!   binary: a sendsms reaches the fake SMSC with its sender, receiver and
//!   text; the fake SMSC's reports come back; rapidbox calls the request's
//!   dlr-url on a local recording service with Kannel's escapes
//!   substituted. Skipped without Kannel (fails under `CI=true`).

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rapidbox::config::Config;
use rapidbox::model::{Direction, Message, Status};
use rapidbox::store::{Op, Unit};
use rapidbox::{Daemon, Running};

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts};
use support::fakesmsc::FakeSmsc;
use support::ports::free_port;
use support::rapidbox::{self as rb, Rapidbox, RapidboxParams};
use support::service::{Answer, Service};
use support::{http, BEARERBOX, FAKESMSC};

/// Bound on anything that takes milliseconds when things work.
const WAIT: Duration = Duration::from_secs(10);

const USERS: &str = "[[sendsms_users]]\nusername = \"shop\"\npassword = \"s3cret\"\n\n\
                     [[sendsms_users]]\nusername = \"bank\"\npassword = \"b4nk\"\n\
                     default_sender = \"8500\"\ndefault_smsc = \"tigo\"\n";

/// rapidbox in process without a bearerbox.
struct Rig {
    running: Option<Running>,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Rig {
    async fn start(apps: &str) -> Rig {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temporary directory: {e}"));
        let store = dir.path().join("rapidbox.redb");
        let toml = format!(
            "[store]\npath = {}\n[kannel]\nenabled = false\n\
             [http]\nlisten = \"127.0.0.1:0\"\n[router]\napps = {apps}\n{USERS}",
            toml::Value::String(store.display().to_string())
        );
        let config = Config::from_toml_str(&toml)
            .unwrap_or_else(|e| panic!("the test's configuration does not load: {e}\n{toml}"));
        let running = tokio::time::timeout(WAIT, Daemon::builder(config).start())
            .await
            .unwrap_or_else(|_| panic!("start took over {WAIT:?}"))
            .unwrap_or_else(|e| panic!("rapidbox does not start: {e}"));
        Rig {
            addr: running.http_addr(),
            running: Some(running),
            _dir: dir,
        }
    }

    fn running(&self) -> &Running {
        self.running.as_ref().unwrap_or_else(|| panic!("stopped"))
    }

    async fn get(&self, query: &str) -> http::Response {
        http::get(self.addr.port(), &format!("/cgi-bin/sendsms?{query}")).await
    }

    /// The outgoing messages stored, oldest first.
    async fn outgoing(&self) -> Vec<Message> {
        let mut all = self
            .running()
            .store()
            .recent_messages(None, 1000)
            .await
            .unwrap_or_else(|e| panic!("cannot read the store: {e}"));
        all.reverse();
        all.into_iter()
            .filter(|m| m.direction == Direction::Outgoing)
            .collect()
    }

    async fn stop(mut self) {
        if let Some(running) = self.running.take() {
            running.stop().await;
        }
    }
}

fn status_and_body(r: &http::Response) -> (u16, &str) {
    (r.status, r.body.as_str())
}

#[tokio::test]
async fn refusals_are_smsboxs_words_and_store_nothing() {
    let rig = Rig::start("[]").await;
    let ok = "username=shop&password=s3cret&from=5&to=1&text=x";
    for (query, status, body) in [
        ("", 403, "Authorization failed for sendsms"),
        (
            "username=shop&password=wrong&from=5&to=1&text=x",
            403,
            "Authorization failed for sendsms",
        ),
        (
            "username=nobody&password=s3cret&from=5&to=1&text=x",
            403,
            "Authorization failed for sendsms",
        ),
        (
            "username=shop&password=s3cret&from=5&text=x",
            400,
            "Missing receiver number, rejected",
        ),
        (
            "username=shop&password=s3cret&from=5&to=&text=x",
            400,
            "Empty receiver number not allowed, rejected",
        ),
        (
            "username=shop&password=s3cret&to=1&text=x",
            400,
            "Sender missing and no global set, rejected",
        ),
        (
            "username=shop&password=s3cret&from=5&to=abc&text=x",
            400,
            "Number(s) has/have been denied by white- and/or black-lists.",
        ),
        (
            &format!("{ok}&coding=3"),
            400,
            "Coding field misformed, rejected",
        ),
        (
            &format!("{ok}&udh=%06%05"),
            400,
            "UDH field misformed, rejected",
        ),
        (
            &format!("{ok}&dlr-mask=67"),
            400,
            "DLR-Mask field misformed, rejected",
        ),
        (
            &format!("{ok}&mclass=4"),
            400,
            "MClass field misformed, rejected",
        ),
        (
            &format!("{ok}&validity=-5"),
            400,
            "Validity field misformed, rejected",
        ),
        (
            &format!("{ok}&priority=5"),
            400,
            "Priority field misformed, rejected",
        ),
        (
            &format!("{ok}&charset=FOO"),
            400,
            "Charset or body misformed, rejected",
        ),
    ] {
        let response = rig.get(query).await;
        assert_eq!(status_and_body(&response), (status, body), "{query}");
    }
    assert_eq!(rig.outgoing().await, [], "a refused request stores nothing");
    rig.stop().await;
}

#[tokio::test]
async fn several_receivers_make_one_queued_message_each_and_one_answer() {
    let rig = Rig::start("[]").await;
    let response = rig
        .get(
            "user=shop&pass=s3cret&from=%2B5555&to=%2B256700000001+256700000002+00256700000003\
             &text=hello+all&smsc=fake&dlr-mask=31&dlr-url=http%3A%2F%2Fh%2Fd%3Ft%3D%25d\
             &mclass=1&validity=60&priority=2&meta-data=%3Fsmpp%3Fa%3Db",
        )
        .await;
    assert_eq!(
        status_and_body(&response),
        (202, "0: Accepted for delivery")
    );
    let stored = rig.outgoing().await;
    let receivers: Vec<&str> = stored
        .iter()
        .map(|m| m.connection.address.as_str())
        .collect();
    assert_eq!(
        receivers,
        ["+256700000001", "256700000002", "00256700000003"]
    );
    for m in &stored {
        assert_eq!((m.status, m.text.as_str()), (Status::Queued, "hello all"));
        assert_eq!(m.connection.backend, "fake");
        let k = m.kannel.as_ref().expect("Kannel details");
        assert_eq!(k.shortcode.as_deref(), Some("+5555"));
        assert_eq!(k.smsc_id.as_deref(), Some("fake"));
        assert_eq!(k.service.as_deref(), Some("shop"));
        assert_eq!(k.dlr_mask, 31);
        assert!(k.uuid.is_some(), "each message has its own UUID");
        let o = k.mt_options.as_ref().expect("the sendsms MT fields");
        assert_eq!(o.dlr_url.as_deref(), Some("http://h/d?t=%d"));
        assert_eq!((o.mclass, o.priority), (1, 2));
        assert_eq!(o.meta_data.as_deref(), Some("?smpp?a=b"));
        assert!(o.validity > 0, "validity made absolute: {}", o.validity);
    }
    let uuids: std::collections::BTreeSet<_> = stored
        .iter()
        .map(|m| m.kannel.as_ref().and_then(|k| k.uuid))
        .collect();
    assert_eq!(uuids.len(), 3, "the UUIDs differ");
    rig.stop().await;
}

#[tokio::test]
async fn a_post_form_coding_udh_charset_and_the_users_defaults() {
    let rig = Rig::start("[]").await;
    let url = format!("http://{}/cgi-bin/sendsms", rig.addr);
    let body = "username=bank&password=b4nk&to=1&text=h%E9llo&charset=ISO-8859-1";
    let request = hyper::Request::post(url)
        .header(
            hyper::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(http_body_util::Full::new(bytes::Bytes::from_static(
            body.as_bytes(),
        )))
        .expect("request");
    let response = support::in_process::send(request).await;
    assert_eq!(
        (response.status.as_u16(), response.body.as_str()),
        (202, "0: Accepted for delivery")
    );
    for query in [
        "username=shop&password=s3cret&from=5&to=2&text=%00h%00%E9&coding=2",
        "username=shop&password=s3cret&from=5&to=3&text=%FF%00&coding=1&udh=%06%05%04%0B%84%23%F0",
    ] {
        let response = rig.get(query).await;
        assert_eq!(response.status, 202, "{query}: {}", response.body);
    }
    let stored = rig.outgoing().await;
    assert_eq!(stored.len(), 3);
    let (latin, ucs2, binary) = (&stored[0], &stored[1], &stored[2]);
    assert_eq!(latin.text, "héllo", "ISO-8859-1 text is decoded");
    let k = latin.kannel.as_ref().expect("kannel");
    assert_eq!(
        (k.shortcode.as_deref(), latin.connection.backend.as_str()),
        (Some("8500"), "tigo"),
        "the user's default sender and SMSC"
    );
    let k = ucs2.kannel.as_ref().expect("kannel");
    assert_eq!((ucs2.text.as_str(), k.coding), ("hé", 2));
    assert_eq!(ucs2.connection.backend, "kannel", "no smsc: backend kannel");
    assert_eq!(k.smsc_id, None, "no smsc: the bearerbox chooses");
    let k = binary.kannel.as_ref().expect("kannel");
    assert_eq!(k.coding, 1);
    assert_eq!(k.binary.as_deref(), Some(&[0xff, 0][..]));
    assert_eq!(
        k.udh.as_deref(),
        Some(&[6, 5, 4, 0x0b, 0x84, 0x23, 0xf0][..])
    );
    rig.stop().await;
}

/// The optout app cancels outgoing messages to an opted-out number: such
/// a message is stored cancelled; a request with nothing left to send is
/// refused as smsbox refuses an MT the bearerbox will not route.
#[tokio::test]
async fn a_cancelled_message_is_stored_cancelled() {
    let rig = Rig::start("[\"optout\"]").await;
    let unit = Unit::new().with(Op::OptOut {
        identity: "256700000009".to_owned(),
        at: 1,
    });
    let _ = rig.running().store().commit(unit).await.expect("opt out");
    let response = rig
        .get("username=shop&password=s3cret&from=5&to=%2B256700000009&text=promo")
        .await;
    assert_eq!(
        status_and_body(&response),
        (403, "Not routable. Do not try again.")
    );
    let response = rig
        .get("username=shop&password=s3cret&from=5&to=%2B256700000009+256700000001&text=promo")
        .await;
    assert_eq!(
        status_and_body(&response),
        (202, "0: Accepted for delivery")
    );
    let statuses: Vec<(String, Status)> = rig
        .outgoing()
        .await
        .into_iter()
        .map(|m| (m.connection.identity, m.status))
        .collect();
    assert_eq!(
        statuses,
        [
            ("256700000009".to_owned(), Status::Cancelled),
            ("256700000009".to_owned(), Status::Cancelled),
            ("256700000001".to_owned(), Status::Queued),
        ]
    );
    rig.stop().await;
}

// ---------------------------------------------------------------------------
// End to end.

/// A sendsms through rapidbox reaches the fake SMSC; its reports come back
/// through the bearerbox, and rapidbox calls the request's dlr-url, once
/// per report, with Kannel's escapes substituted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sendsms_reaches_the_smsc_and_its_reports_call_the_dlr_url() {
    const TEST: &str = "sendsms_e2e";
    if !support::require_kannel(TEST, &[BEARERBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let ports = BearerboxPorts::free();
    let bb_conf = conf::bearerbox(dir.path(), &ports);
    let mut bearerbox = Bearerbox::start(dir.path(), &bb_conf, ports).await;
    let mut fakesmsc = FakeSmsc::spawn(
        "fakesmsc",
        dir.path(),
        ports.fake_smsc,
        &["+4912345 5555 text never sent"],
        0,
        0.1,
    );
    let receiver = Service::start(Answer::Text("ok")).await;

    let mut params = RapidboxParams::new(dir.path(), ports.smsbox);
    let http_port = free_port();
    params.http_port = Some(http_port);
    params.extra_toml = USERS.to_owned();
    let config = params.write(dir.path(), "rapidbox.toml");
    let mut rapidbox = Rapidbox::start("rapidbox", dir.path(), &config);
    bearerbox.wait_for_box(None, WAIT).await;
    rapidbox.daemon().wait_for_tcp_port(http_port, WAIT).await;

    let dlr_url = receiver.url("/dlr?type=%d&text=%A&to=%p&from=%P&user=%n&smsc=%i&time=%T");
    let mut encoded = String::new();
    encoded.extend(form_urlencoded::byte_serialize(dlr_url.as_bytes()));
    let query = format!(
        "/cgi-bin/sendsms?username=shop&password=s3cret&from=5555&to=%2B4912345&text=hello+e2e\
         &smsc={}&dlr-mask=9&dlr-url={encoded}",
        conf::FAKE_SMSC_ID
    );
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let response = http::get(http_port, &query).await;
    assert_eq!(
        (response.status, response.body.as_str()),
        (202, "0: Accepted for delivery"),
        "{TEST}: rapidbox's answer\n{}",
        rapidbox.log_tails()
    );

    let mts = fakesmsc.wait_for_mts(1, WAIT).await;
    assert_eq!(
        (
            mts[0].sender.as_str(),
            mts[0].receiver.as_str(),
            mts[0].kind.as_str(),
            mts[0].data.as_str()
        ),
        ("5555", "+4912345", "text", "hello e2e"),
        "{TEST}: the MT the fake SMSC received"
    );

    // dlr-mask 9: the fake SMSC reports acceptance (8) and delivery (1).
    let started = Instant::now();
    let calls = loop {
        let seen = receiver.seen();
        if seen.len() >= 2 {
            break seen;
        }
        assert!(
            started.elapsed() < WAIT,
            "{TEST}: expected two dlr-url calls within {WAIT:?}, got {seen:?}\n{}",
            rapidbox.log_tails()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let mut targets: Vec<String> = calls.iter().map(|c| c.target.clone()).collect();
    targets.sort();
    for (target, event, text) in [(&targets[0], 1, ""), (&targets[1], 8, "ACK%2F")] {
        let prefix = format!(
            "/dlr?type={event}&text={text}&to=%2B4912345&from=5555&user=shop&smsc=fake&time="
        );
        let time: u64 = target
            .strip_prefix(&prefix)
            .unwrap_or_else(|| panic!("{TEST}: expected {prefix}..., got {target}"))
            .parse()
            .unwrap_or_else(|e| panic!("{TEST}: %T in {target}: {e}"));
        assert!(
            time >= before && time <= before + 60,
            "{TEST}: %T {time} is the report's time (request at {before})"
        );
    }
    assert!(calls.iter().all(|c| c.method == "GET"));

    rapidbox.stop().await;
    let store = rb::open_store(&params.store);
    let messages = rb::all_messages(&store).await;
    let sent: Vec<&Message> = rb::of_direction(&messages, Direction::Outgoing);
    assert_eq!(sent.len(), 1, "{TEST}: one message stored");
    assert_eq!(
        sent[0].status,
        Status::Delivered,
        "{TEST}: the report of delivery applied"
    );
    store.close().await;
    fakesmsc.daemon().stop();
    bearerbox.stop(Duration::from_secs(30)).await;
}

/// smsbox's own POST: the text is the body (its charset in the content
/// type), everything else in `X-Kannel-*` headers, the UDH in hex.
#[tokio::test]
async fn kannels_post_with_the_text_as_body_and_x_kannel_headers() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rig = Rig::start("[]").await;
    let body: &[u8] = b"h\xe9llo";
    let head = format!(
        "POST /cgi-bin/sendsms HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\
         Content-Type: text/plain; charset=ISO-8859-1\r\nContent-Length: {}\r\n\
         X-Kannel-Username: bank\r\nX-Kannel-Password: b4nk\r\n\
         X-Kannel-From: 99\r\nX-Kannel-To: 7 8\r\nX-Kannel-DLR-Mask: 3\r\n\
         X-Kannel-UDH: 0605040B8423F0\r\n\r\n",
        body.len()
    );
    let mut socket = tokio::net::TcpStream::connect(rig.addr)
        .await
        .expect("connect");
    socket.write_all(head.as_bytes()).await.expect("write head");
    socket.write_all(body).await.expect("write body");
    let mut answer = Vec::new();
    tokio::time::timeout(WAIT, socket.read_to_end(&mut answer))
        .await
        .expect("an answer in time")
        .expect("read");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    assert!(answer.ends_with("0: Accepted for delivery"), "{answer}");
    let stored = rig.outgoing().await;
    assert_eq!(stored.len(), 2, "one message per receiver");
    for (msg, to) in stored.iter().zip(["7", "8"]) {
        assert_eq!(msg.connection.address, to);
        assert_eq!(msg.text, "héllo", "the body, decoded from ISO-8859-1");
        let k = msg.kannel.as_ref().expect("kannel");
        assert_eq!(k.shortcode.as_deref(), Some("99"));
        assert_eq!(k.dlr_mask, 3);
        assert_eq!(
            k.udh.as_deref(),
            Some(&[6, 5, 4, 0x0b, 0x84, 0x23, 0xf0][..])
        );
    }
    rig.stop().await;
}

/// The endpoint hands smsbox's other POSTs to the parser whole: an XML
/// POST sends to every `<da>`, an octet-stream body is 8-bit data byte
/// for byte, and a content type smsbox refuses is refused with its words.
#[tokio::test]
async fn xml_and_octet_stream_posts_and_refused_content_types() {
    let rig = Rig::start("[]").await;
    let xml = b"<?xml version=\"1.0\"?><message><submit>\
        <da><number>71</number></da><da><number>72</number></da><oa><number>5</number></oa>\
        <ud>hello+xml</ud><from><user>shop</user><pass>s3cret</pass></from>\
        <dcs><compress>1</compress></dcs></submit></message>";
    let auth = [
        ("X-Kannel-Username", "shop"),
        ("X-Kannel-Password", "s3cret"),
        ("X-Kannel-From", "5"),
        ("X-Kannel-To", "73"),
    ];
    let with = |kind: &'static str| {
        let mut headers = auth.to_vec();
        headers.push(("Content-Type", kind));
        headers
    };
    let port = rig.addr.port();
    for (headers, body, status, answer) in [
        (
            vec![("Content-Type", "text/xml")],
            &xml[..],
            202,
            "0: Accepted for delivery",
        ),
        (
            with("application/octet-stream"),
            &b"\xff\x00ab"[..],
            202,
            "0: Accepted for delivery",
        ),
        (
            with("text/html"),
            &b"<b>x</b>"[..],
            415,
            "Unsupported content-type, rejected",
        ),
        (
            with("application/json"),
            &b"{}"[..],
            400,
            "Invalid content-type",
        ),
    ] {
        let response = http::request(port, "POST", "/cgi-bin/sendsms", &headers, Some(body)).await;
        assert_eq!(status_and_body(&response), (status, answer), "{headers:?}");
    }
    let stored = rig.outgoing().await;
    let summary: Vec<(&str, &str, i32)> = stored
        .iter()
        .map(|m| {
            let k = m.kannel.as_ref().expect("kannel");
            (m.connection.address.as_str(), m.text.as_str(), k.coding)
        })
        .collect();
    assert_eq!(
        summary[..2],
        [("71", "hello xml", 0), ("72", "hello xml", 0)]
    );
    let compress = stored[0]
        .kannel
        .as_ref()
        .and_then(|k| k.mt_options.as_ref())
        .map(|o| o.compress);
    assert_eq!(compress, Some(1));
    let binary = stored[2].kannel.as_ref().expect("kannel");
    assert_eq!(
        (stored[2].connection.address.as_str(), binary.coding),
        ("73", 1)
    );
    assert_eq!(binary.binary.as_deref(), Some(&b"\xff\x00ab"[..]));
    assert_eq!(stored.len(), 3, "the refused requests stored nothing");
    rig.stop().await;
}
