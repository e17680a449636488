//! Records a real Kannel session and checks `boxproto` against it.
//!
//! Debian's Kannel 1.4.5 runs here for real: bearerbox with a fake SMSC,
//! smsbox and wapbox, with `boxtap` relays between bearerbox and each
//! box. The test drives every kind of exchange the box protocol has:
//!
//! - admin identify (smsbox, on connect) and admin shutdown (bearerbox, on
//!   SIGTERM, to both boxes);
//! - heartbeats (smsbox's first comes 30 s after it connects);
//! - MOs from fakesmsc: text, UCS-2, with a UDH, routed by smsbox-id, and
//!   one for a `get-url` service; smsbox answers each with an mt_reply;
//! - an mt_push through smsbox's sendsms interface with every parameter;
//! - acks both ways, with all four statuses from the bearerbox;
//! - delivery reports (report_mo) for the MTs that asked for them;
//! - WDP datagrams both ways between bearerbox and wapbox (fakewap).
//!
//! Then every recorded frame must decode with `boxproto`, leave no bytes
//! over, and encode back to the same bytes. The frames are also read
//! without `boxproto` (`tests/support/wire.rs`, from Kannel's
//! `gw/msg-decl.h`) and every field compared, so that a field order mistake
//! shared by `boxproto`'s decoder and encoder cannot pass as a clean round
//! trip.
//!
//! The recording is written to `$CARGO_TARGET_TMPDIR/kannel-1.4.5.hex` on
//! every run, and with `BOXPROTO_RECORD=1` over the committed
//! `proto/tests/recordings/kannel-1.4.5.hex`. `KANNEL_KEEP_TEST_DIR=1`
//! keeps the daemons' configurations and logs.
//!
//! The test takes about 32 s (31.5 s measured with `cargo test --test
//! kannel_fidelity` on the 2-core machine), nearly all of it waiting for
//! smsbox's first heartbeat, whose 30 s period is not configurable in 1.4.5.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use boxtap::{self as tap, Direction};
use bytes::BytesMut;

use support::conf::{self, BearerboxPorts, Group, SmsboxParams};
use support::fakesmsc::FakeSmsc;
use support::ports::{self, free_port};
use support::process::{Daemon, START_TIMEOUT};
use support::recorder::{Frame, Recording, RunningTap};
use support::wire;
use support::{http, BEARERBOX, FAKESMSC, FAKEWAP, SMSBOX, WAPBOX};

const TEST: &str = "kannel_fidelity";

/// The smsbox's `smsbox-id`. Setting one puts it on the wire in the
/// identify message, in every MT and in the reports of those MTs; an
/// `smsbox-route` then has to send the fake SMSC's MOs to it, because a box
/// with an id gets no unrouted MOs.
const SMSBOX_ID: &str = "fidelity";

/// The short number the phones write to.
const SHORTCODE: &str = "5555";

/// Receivers the fake SMSC refuses (`denied-prefix`), so that bearerbox
/// has no route for an MT to them.
const DENIED_PREFIX: &str = "+999";

/// Kannel's smsbox sends its first heartbeat 30 s after connecting.
const HEARTBEAT_WAIT: Duration = Duration::from_secs(40);

/// Bound for each exchange that involves no timer: replies, acks, reports
/// and WDP round trips take milliseconds.
const EXCHANGE_WAIT: Duration = Duration::from_secs(10);

/// What the stub HTTP server answers to every request: smsbox's `get-url`
/// service forwards the charset it names into the reply's `charset` field
/// (the only way smsbox puts one on the wire), and the body is Latin-1.
const STUB_RESPONSE: &[u8] =
    b"HTTP/1.0 200 OK\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\r\nGot it \xe9";

/// The committed recording, relative to the rapidbox crate.
const COMMITTED_RECORDING: &str = "proto/tests/recordings/kannel-1.4.5.hex";

/// Names of the two tapped links, as they appear in the recording.
const SMSBOX_LINK: &str = "smsbox";
const WAPBOX_LINK: &str = "wapbox";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kannel_session_decodes_and_reencodes_byte_for_byte() {
    if !support::require_kannel(TEST, &[BEARERBOX, SMSBOX, WAPBOX, FAKESMSC, FAKEWAP]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let with_wdp = ports::udp_ports_free(&ports::WAP_UDP_PORTS);
    if !with_wdp {
        eprintln!(
            "{TEST}: warning: UDP port 9200 or 9201 on 127.0.0.1 is busy; \
             bearerbox 1.4.5 would panic on it, so the WDP part is skipped"
        );
    }
    let stub = http::StubServer::start(STUB_RESPONSE).await;
    let recording = Recording::default();

    // --- bearerbox -------------------------------------------------------
    let bb_ports = BearerboxPorts {
        admin: free_port(),
        smsbox: free_port(),
        fake_smsc: free_port(),
        wapbox: with_wdp.then(free_port),
    };
    let mut bb_conf = conf::bearerbox(dir, &bb_ports);
    bb_conf
        // One MT may wait for an absent SMSC (ack buffered); the next is
        // refused for now (ack failed_tmp).
        .set("core", "sms-outgoing-queue-limit", 1)
        // No SMSC takes these numbers: an MT to one is refused for good
        // (ack failed).
        .set("smsc", "denied-prefix", DENIED_PREFIX)
        .push(conf::smsbox_route(
            SMSBOX_ID,
            Some(conf::FAKE_SMSC_ID),
            None,
        ));
    let bb_conf = bb_conf.write(dir, "bearerbox.conf");
    let mut bearerbox = Daemon::spawn(
        "bearerbox",
        BEARERBOX,
        [&bb_conf],
        dir,
        vec![
            conf::log_path(dir, "bearerbox"),
            conf::access_log_path(dir, "bearerbox"),
        ],
    );
    for port in [bb_ports.admin, bb_ports.smsbox, bb_ports.fake_smsc] {
        bearerbox.wait_for_tcp_port(port, START_TIMEOUT).await;
    }
    if let Some(port) = bb_ports.wapbox {
        bearerbox.wait_for_tcp_port(port, START_TIMEOUT).await;
        bearerbox.wait_for_udp_port(9201, START_TIMEOUT).await;
    }

    // --- smsbox behind a tap ---------------------------------------------
    let sms_tap = RunningTap::start(SMSBOX_LINK, bb_ports.smsbox, &recording).await;
    let sendsms_port = free_port();
    let mut sms_conf = conf::smsbox(
        dir,
        &SmsboxParams {
            bearerbox_port: sms_tap.port(),
            sendsms_port: Some(sendsms_port),
            smsbox_id: Some(SMSBOX_ID.to_owned()),
        },
    );
    sms_conf
        .push(
            Group::new("sendsms-user")
                .set("username", "fidelity")
                .set("password", "secret")
                .set("max-messages", 3)
                .set("concatenation", true),
        )
        .push(Group::new("sms-service").set("keyword", "url").set(
            "get-url",
            format!("http://127.0.0.1:{}/mo?text=%a", stub.port()),
        ))
        .push(
            Group::new("sms-service")
                .set("keyword", "default")
                .set("text", "Got it")
                .set("dlr-mask", 31)
                .set(
                    "dlr-url",
                    format!("http://127.0.0.1:{}/dlr?type=%d", stub.port()),
                ),
        );
    let sms_conf = sms_conf.write(dir, "smsbox.conf");
    let mut smsbox = Daemon::spawn(
        "smsbox",
        SMSBOX,
        [&sms_conf],
        dir,
        vec![
            conf::log_path(dir, "smsbox"),
            conf::access_log_path(dir, "smsbox"),
        ],
    );
    smsbox.wait_for_tcp_port(sendsms_port, START_TIMEOUT).await;
    let smsbox_connected = Instant::now();
    recording
        .wait_for(
            "identify from smsbox",
            EXCHANGE_WAIT,
            &[&bearerbox, &smsbox],
            |f| {
                f.iter()
                    .any(|f| kind_of(f).as_deref() == Some("admin identify box>bb"))
            },
        )
        .await;

    // --- wapbox behind a tap ---------------------------------------------
    let mut wap = None;
    if let Some(wapbox_port) = bb_ports.wapbox {
        let wap_tap = RunningTap::start(WAPBOX_LINK, wapbox_port, &recording).await;
        let wap_conf = conf::wapbox(dir, wap_tap.port()).write(dir, "wapbox.conf");
        let mut wapbox = Daemon::spawn(
            "wapbox",
            WAPBOX,
            [&wap_conf],
            dir,
            vec![
                conf::log_path(dir, "wapbox"),
                conf::access_log_path(dir, "wapbox"),
            ],
        );
        // wapbox sends nothing when it connects; its connection is the sign.
        wapbox
            .wait_until("a connection through the wapbox tap", START_TIMEOUT, || {
                recording.opened(WAPBOX_LINK)
            })
            .await;
        wap = Some((wap_tap, wapbox));
    }

    // --- MOs from the fake SMSC, one fakesmsc each -----------------------
    // fakesmsc picks at random among the messages it is given, so each MO
    // gets its own run, which waits for the reply before the next starts.
    let mos: [(&str, &str); 5] = [
        ("text", "+4917000001 5555 text hello fidelity"),
        ("ucs2", "+4917000002 5555 ucs2 %00h%00i%20%AC"),
        ("udh", "+4917000003 5555 udh %06%05%04%0B%84%23%F0 hi+udh"),
        ("route", "+4917000004 5555 route fidelity routed to the box"),
        ("url", "+4917000005 5555 text url via get-url"),
    ];
    let mut fakesmsc = None;
    for (i, (what, mo)) in mos.iter().enumerate() {
        if let Some(mut previous) = fakesmsc.take() {
            stop_fakesmsc(&mut previous).await;
        }
        let mut smsc = FakeSmsc::spawn(
            &format!("fakesmsc-{what}"),
            dir,
            bb_ports.fake_smsc,
            &[mo],
            1,
            0.1,
        );
        let mts = smsc.wait_for_mts(1, EXCHANGE_WAIT).await;
        let sender = format!("+491700000{}", i + 1);
        assert_eq!(
            (mts[0].sender.as_str(), mts[0].receiver.as_str()),
            (SHORTCODE, sender.as_str()),
            "{TEST}: the reply to the {what} MO went back to its phone"
        );
        fakesmsc = Some(smsc);
    }
    let Some(mut fakesmsc) = fakesmsc else {
        unreachable!("the loop above ran");
    };
    let replies: Vec<String> = fakesmsc.mts().into_iter().map(|mt| mt.data).collect();
    assert_eq!(
        replies,
        ["Got it é"],
        "{TEST}: the get-url reply carries the stub's Latin-1 body, recoded"
    );

    // --- MT push through sendsms, with every parameter it takes ----------
    let query = sendsms_query(stub.port());
    let response = http::get(sendsms_port, &query).await;
    assert_eq!(
        (response.status, response.body.trim()),
        (202, "0: Accepted for delivery"),
        "{TEST}: smsbox accepted the sendsms request"
    );
    let mts = fakesmsc.wait_for_mts(2, EXCHANGE_WAIT).await;
    assert_eq!(
        mts[1].receiver, "+4915550001",
        "{TEST}: the push reached the SMSC"
    );

    // --- MTs bearerbox cannot send now, or ever --------------------------
    // With the SMSC gone, the first push waits in bearerbox's queue (ack
    // buffered), the second finds the queue full (ack failed_tmp), and one
    // to a denied prefix has no route at all (ack failed).
    stop_fakesmsc(&mut fakesmsc).await;
    wait_smsc_offline(bb_ports.admin).await;
    let refusals = [
        ("%2B4915550002", 202, "3: Queued for later delivery"),
        ("%2B4915550003", 503, "Temporal failure, try again later."),
        ("%2B99900000001", 403, "Not routable. Do not try again."),
    ];
    for (to, status, body) in refusals {
        let query = format!(
            "/cgi-bin/sendsms?username=fidelity&password=secret&from=1234&to={to}\
             &text=while+the+SMSC+is+away"
        );
        let response = http::get(sendsms_port, &query).await;
        assert_eq!(
            (response.status, response.body.trim()),
            (status, body),
            "{TEST}: smsbox's answer to a push to {to}"
        );
    }
    // A new SMSC connection takes the queued MT, so bearerbox stops with an
    // empty queue (it waits for a non-empty one before exiting).
    let mut fakesmsc = FakeSmsc::spawn(
        "fakesmsc-drain",
        dir,
        bb_ports.fake_smsc,
        &["+4917000009 5555 text never sent"],
        0,
        0.1,
    );
    let mts = fakesmsc.wait_for_mts(1, EXCHANGE_WAIT).await;
    assert_eq!(
        mts[0].receiver, "+4915550002",
        "{TEST}: the queued push went out once the SMSC was back"
    );

    // --- WDP through the wapbox ------------------------------------------
    if let Some((_, wapbox)) = &wap {
        let url = format!("http://127.0.0.1:{}/wap", stub.port());
        let mut fakewap = Daemon::spawn(
            "fakewap",
            FAKEWAP,
            [
                "-g",
                "127.0.0.1",
                "-p",
                "9201",
                "-m",
                "1",
                "-F",
                url.as_str(),
            ],
            dir,
            Vec::new(),
        );
        recording
            .wait_for(
                "WDP both ways",
                EXCHANGE_WAIT,
                &[&bearerbox, wapbox, &fakewap],
                |f| {
                    let kinds = kinds(f);
                    kinds.contains("wdp_datagram bb>box") && kinds.contains("wdp_datagram box>bb")
                },
            )
            .await;
        if fakewap.wait_exit(EXCHANGE_WAIT).await.is_none() {
            eprintln!("{TEST}: fakewap still running after its transaction; stopping it");
        }
    }

    // --- every sms acknowledged, both ways -------------------------------
    recording
        .wait_for(
            "ack for every sms",
            EXCHANGE_WAIT,
            &[&bearerbox, &smsbox],
            |f| unacked(f).is_empty(),
        )
        .await;

    // --- smsbox's first heartbeat ----------------------------------------
    let left = HEARTBEAT_WAIT.saturating_sub(smsbox_connected.elapsed());
    recording
        .wait_for("heartbeat from smsbox", left, &[&smsbox], |f| {
            f.iter()
                .any(|f| f.link == SMSBOX_LINK && kind_of(f).as_deref() == Some("heartbeat box>bb"))
        })
        .await;

    // --- shutdown: bearerbox tells its boxes -----------------------------
    stop_fakesmsc(&mut fakesmsc).await;
    bearerbox.signal(libc::SIGTERM);
    if bearerbox.wait_exit(EXCHANGE_WAIT).await.is_none() {
        panic!(
            "{TEST}: bearerbox did not exit after SIGTERM\n{}",
            bearerbox.log_tails()
        );
    }
    // The boxes exit on the admin shutdown; the taps see their close.
    let mut boxes = vec![smsbox];
    let mut taps = vec![sms_tap];
    if let Some((wap_tap, wapbox)) = wap {
        boxes.push(wapbox);
        taps.push(wap_tap);
    }
    for daemon in &mut boxes {
        if daemon.wait_exit(EXCHANGE_WAIT).await.is_none() {
            panic!(
                "{TEST}: {} did not exit after bearerbox's shutdown\n{}",
                daemon.name(),
                daemon.log_tails()
            );
        }
    }
    for tap in taps {
        tap.stop().await;
    }

    // --- the checks ------------------------------------------------------
    let frames = recording.frames();
    let kannel = kannel_version(bearerbox.console_path());
    let problems = check_frames(&frames);
    let seen = kinds(&frames);
    let mut expected: Vec<&str> = vec![
        "admin identify box>bb",
        "heartbeat box>bb",
        "sms mo text",
        "sms mo ucs2",
        "sms mo udh",
        "sms mo routed",
        "sms mt_reply",
        "sms mt_reply charset",
        "sms mt_push",
        "sms report_mo",
        "ack box>bb success",
        "ack bb>box success",
        "ack bb>box buffered",
        "ack bb>box failed_tmp",
        "ack bb>box failed",
        "admin shutdown bb>box",
    ];
    if with_wdp {
        expected.extend(["wdp_datagram bb>box", "wdp_datagram box>bb"]);
    }
    let missing: Vec<&str> = expected
        .iter()
        .copied()
        .filter(|kind| !seen.contains(*kind))
        .collect();

    let text = recording_text(&frames, &kannel);
    let scratch = Path::new(env!("CARGO_TARGET_TMPDIR")).join("kannel-1.4.5.hex");
    write_recording(&scratch, &text);
    eprintln!(
        "{TEST}: recording of {} frames in {}",
        frames.len(),
        scratch.display()
    );
    assert_reads_back(&scratch, &frames);

    eprintln!("{TEST}: frames per kind:");
    for (kind, count) in kind_counts(&frames) {
        eprintln!("  {count:4}  {kind}");
    }
    eprintln!("{TEST}: {}", non_default_summary(&frames));

    assert!(
        problems.is_empty(),
        "{TEST}: {} of {} recorded frames fail:\n{}",
        problems.len(),
        frames.len(),
        problems.join("\n")
    );
    assert!(
        missing.is_empty(),
        "{TEST}: the recording lacks: {}\n(seen: {seen:?})",
        missing.join(", ")
    );

    if std::env::var("BOXPROTO_RECORD").is_ok_and(|v| v == "1") {
        assert!(
            kannel.starts_with("1.4.5"),
            "{TEST}: refusing to write {COMMITTED_RECORDING} from Kannel {kannel}"
        );
        assert!(
            with_wdp,
            "{TEST}: refusing to write a recording without WDP"
        );
        let committed = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(COMMITTED_RECORDING);
        write_recording(&committed, &text);
        eprintln!("{TEST}: wrote {}", committed.display());
    }
}

/// The sendsms request: every parameter smsbox 1.4.5 takes that reaches
/// the wire, each with a value other than Kannel's "undefined", and the
/// integers distinct where Kannel allows it, so that two swapped fields
/// cannot go unnoticed.
fn sendsms_query(stub_port: u16) -> String {
    let dlr_url = format!("http%3A%2F%2F127.0.0.1%3A{stub_port}%2Fpush-dlr%3Ftype%3D%25d");
    [
        "username=fidelity",
        "password=secret",
        "from=1234",
        "to=%2B4915550001",
        // "hé" in Latin-1; smsbox recodes it to UTF-8 for the wire.
        "text=h%E9llo+push",
        "charset=ISO-8859-1",
        "smsc=fake",
        "coding=0",
        // A 16-bit application port UDH (IEI 5), not a concatenation one,
        // which the bearerbox would try to reassemble.
        "udh=%06%05%04%0B%84%23%F0",
        "mclass=1",
        "mwi=2",
        "compress=0",
        "validity=1440",
        "deferred=0",
        "dlr-mask=27",
        &format!("dlr-url={dlr_url}"),
        "pid=65",
        "alt-dcs=1",
        "rpi=1",
        "account=acct-42",
        "binfo=billing-7",
        "priority=3",
        "meta-data=%3Fsmpp%3Ffidelity%3Dyes",
    ]
    .iter()
    .fold(String::from("/cgi-bin/sendsms?"), |mut q, p| {
        if !q.ends_with('?') {
            q.push('&');
        }
        q.push_str(p);
        q
    })
}

async fn stop_fakesmsc(smsc: &mut FakeSmsc) {
    let daemon = smsc.daemon();
    daemon.signal(libc::SIGTERM);
    if daemon.wait_exit(EXCHANGE_WAIT).await.is_none() {
        daemon.stop();
    }
}

/// Waits until bearerbox no longer reports its fake SMSC online, so that the
/// next MT finds no SMSC.
async fn wait_smsc_offline(admin_port: u16) {
    let fake = format!("{}[{}]", conf::FAKE_SMSC_ID, conf::FAKE_SMSC_ID);
    let started = Instant::now();
    loop {
        let status = support::bearerbox_status(admin_port).await;
        let online = status
            .lines()
            .any(|line| line.contains(&fake) && line.contains("(online"));
        if !online {
            return;
        }
        assert!(
            started.elapsed() < EXCHANGE_WAIT,
            "{TEST}: the fake SMSC still shows online after its client left:\n{status}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Kannel's version from bearerbox's startup output
/// (``Kannel bearerbox version `1.4.5'.``), or "unknown".
fn kannel_version(console: &Path) -> String {
    let text = std::fs::read(console)
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default();
    text.split_once("bearerbox version `")
        .and_then(|(_, rest)| rest.split_once('\''))
        .map(|(version, _)| version.to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

// --------------------------------------------------------------------------
// The checks against boxproto.

/// Every way a frame can fail: no decode, bytes left over, a different
/// encoding, or a field that disagrees with the independent reading.
fn check_frames(frames: &[Frame]) -> Vec<String> {
    let mut problems = Vec::new();
    for (i, frame) in frames.iter().enumerate() {
        let at = format!("frame {i} ({} {})", frame.link, frame.direction);
        if let Err(problem) = check_frame(frame) {
            problems.push(format!("{at}: {problem}\n    {}", tap::to_hex(&frame.raw)));
        }
    }
    problems
}

fn check_frame(frame: &Frame) -> Result<(), String> {
    let msg = boxproto::Msg::decode(frame.raw.slice(4..)).map_err(|e| format!("decode: {e}"))?;
    let extra = msg.extra();
    if !extra.is_empty() {
        return Err(format!("{} bytes left over: {msg:?}", extra.len()));
    }
    let mut encoded = BytesMut::new();
    msg.encode(&mut encoded)
        .map_err(|e| format!("encode: {e} ({msg:?})"))?;
    if encoded[..] != frame.raw[..] {
        return Err(format!(
            "encodes differently: {}\n    {msg:?}",
            tap::to_hex(&encoded)
        ));
    }
    let wire = wire::read(&frame.raw).map_err(|e| format!("independent reading: {e}"))?;
    cross_check(&wire, &msg)
}

/// Compares boxproto's fields, names, order and values, with the
/// independent reading, and its typed views with the wire integers.
fn cross_check(wire: &wire::Message, msg: &boxproto::Msg) -> Result<(), String> {
    let mut mismatches = Vec::new();
    if msg.type_code() != wire.kind.code() {
        mismatches.push(format!(
            "type: wire {}, boxproto {}",
            wire.kind.code(),
            msg.type_code()
        ));
    }
    let theirs = msg.fields();
    let their_names: Vec<&str> = theirs.iter().map(|(name, _)| *name).collect();
    let our_names: Vec<&str> = wire.fields.iter().map(|(name, _)| *name).collect();
    if their_names != our_names {
        mismatches.push(format!(
            "field names: wire {our_names:?}, boxproto {their_names:?}"
        ));
    }
    for ((name, ours), (_, value)) in wire.fields.iter().zip(&theirs) {
        let same = match (ours, value) {
            (wire::Value::Int(a), boxproto::FieldValue::Int(b)) => a == b,
            (wire::Value::Str(a), boxproto::FieldValue::OctStr(b)) => {
                a.as_deref() == b.map(|b| &b[..])
            }
            (wire::Value::Str(Some(a)), boxproto::FieldValue::Uuid(b)) => {
                a[..] == *b.to_string().as_bytes()
            }
            _ => false,
        };
        if !same {
            mismatches.push(format!("{name}: wire {ours:?}, boxproto {value:?}"));
        }
    }
    // The typed views must name what Kannel means by each number.
    let mut named = |field: &str, ours: i32| {
        let wire_value = wire.get(field);
        if wire_value != wire::Value::Int(ours) {
            mismatches.push(format!(
                "{field}: wire {wire_value:?}, typed view means {ours}"
            ));
        }
    };
    use boxproto::{AckStatus, AdminCommand, Coding, SmsType};
    match msg {
        boxproto::Msg::Admin(m) => named(
            "command",
            match m.command {
                AdminCommand::Shutdown => 0,
                AdminCommand::Suspend => 1,
                AdminCommand::Resume => 2,
                AdminCommand::Identify => 3,
                AdminCommand::Restart => 4,
                AdminCommand::Other(n) => n,
            },
        ),
        boxproto::Msg::Ack(m) => named(
            "nack",
            match m.nack {
                AckStatus::Success => 0,
                AckStatus::Failed => 1,
                AckStatus::FailedTmp => 2,
                AckStatus::Buffered => 3,
                AckStatus::Other(n) => n,
            },
        ),
        boxproto::Msg::Sms(m) => {
            named(
                "sms_type",
                match m.sms_type {
                    SmsType::Mo => 0,
                    SmsType::MtReply => 1,
                    SmsType::MtPush => 2,
                    SmsType::ReportMo => 3,
                    SmsType::ReportMt => 4,
                    SmsType::Other(n) => n,
                },
            );
            named(
                "coding",
                match m.coding {
                    Coding::Undefined => -1,
                    Coding::SevenBit => 0,
                    Coding::EightBit => 1,
                    Coding::Ucs2 => 2,
                    Coding::Other(n) => n,
                },
            );
            named("dlr_mask", m.dlr_mask.0);
        }
        boxproto::Msg::Heartbeat(_) | boxproto::Msg::WdpDatagram(_) => {}
    }
    if mismatches.is_empty() {
        Ok(())
    } else {
        Err(format!("fields disagree: {}", mismatches.join("; ")))
    }
}

// --------------------------------------------------------------------------
// Kinds of exchange, read from the wire independently of boxproto.

/// The kind of exchange a frame belongs to, e.g. `sms mo ucs2` or
/// `ack bb>box`; `None` for a frame the independent reading rejects.
fn kind_of(frame: &Frame) -> Option<String> {
    kinds_of(frame).into_iter().next()
}

/// Every kind a frame counts for: an MO with UCS-2 text and UDH counts for
/// `sms mo ucs2` and `sms mo udh`. The first is its main kind.
fn kinds_of(frame: &Frame) -> Vec<String> {
    let Ok(msg) = wire::read(&frame.raw) else {
        return Vec::new();
    };
    let dir = frame.direction;
    match msg.kind {
        wire::Kind::Heartbeat => vec![format!("heartbeat {dir}")],
        wire::Kind::Admin => {
            let command = match msg.get("command") {
                wire::Value::Int(0) => "shutdown".to_owned(),
                wire::Value::Int(3) => "identify".to_owned(),
                other => format!("command {other:?}"),
            };
            vec![format!("admin {command} {dir}")]
        }
        wire::Kind::Ack => {
            let status = match msg.get("nack") {
                wire::Value::Int(0) => "success".to_owned(),
                wire::Value::Int(1) => "failed".to_owned(),
                wire::Value::Int(2) => "failed_tmp".to_owned(),
                wire::Value::Int(3) => "buffered".to_owned(),
                other => format!("{other:?}"),
            };
            vec![format!("ack {dir} {status}"), format!("ack {dir}")]
        }
        wire::Kind::WdpDatagram => vec![format!("wdp_datagram {dir}")],
        wire::Kind::Sms => {
            let sms_type = match msg.get("sms_type") {
                wire::Value::Int(0) => "mo",
                wire::Value::Int(1) => "mt_reply",
                wire::Value::Int(2) => "mt_push",
                wire::Value::Int(3) => "report_mo",
                wire::Value::Int(4) => "report_mt",
                _ => "of unknown type",
            };
            let mut kinds = vec![format!("sms {sms_type}")];
            if sms_type == "mo" {
                kinds.push(match msg.get("coding") {
                    wire::Value::Int(1) => "sms mo 8-bit".to_owned(),
                    wire::Value::Int(2) => "sms mo ucs2".to_owned(),
                    _ => "sms mo text".to_owned(),
                });
                if msg.is_set("udhdata") && msg.get("udhdata") != wire::Value::Str(Some(Vec::new()))
                {
                    kinds.push("sms mo udh".to_owned());
                }
                if msg.is_set("boxc_id") {
                    kinds.push("sms mo routed".to_owned());
                }
            }
            if sms_type == "mt_reply" && msg.is_set("charset") {
                kinds.push("sms mt_reply charset".to_owned());
            }
            kinds
        }
    }
}

fn kinds(frames: &[Frame]) -> BTreeSet<String> {
    frames.iter().flat_map(kinds_of).collect()
}

fn kind_counts(frames: &[Frame]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for frame in frames {
        let kind = kind_of(frame).unwrap_or_else(|| "unreadable".to_owned());
        *counts.entry(format!("{} {kind}", frame.link)).or_insert(0) += 1;
    }
    counts
}

/// Ids of sms frames that no ack in the other direction answers.
fn unacked(frames: &[Frame]) -> Vec<String> {
    let mut sent = Vec::new();
    let mut acked = BTreeSet::new();
    for frame in frames {
        let Ok(msg) = wire::read(&frame.raw) else {
            continue;
        };
        if !matches!(msg.kind, wire::Kind::Sms | wire::Kind::Ack) {
            continue;
        }
        let wire::Value::Str(Some(id)) = msg.get("id") else {
            continue;
        };
        let id = String::from_utf8_lossy(&id).into_owned();
        match msg.kind {
            wire::Kind::Sms => sent.push((frame.direction, id)),
            wire::Kind::Ack => {
                acked.insert((frame.direction, id));
            }
            _ => {}
        }
    }
    sent.into_iter()
        .filter(|(direction, id)| {
            let back = match direction {
                Direction::BoxToBearerbox => Direction::BearerboxToBox,
                Direction::BearerboxToBox => Direction::BoxToBearerbox,
            };
            !acked.contains(&(back, id.clone()))
        })
        .map(|(direction, id)| format!("{direction} {id}"))
        .collect()
}

/// Which sms fields carried something other than NULL or -1 anywhere.
fn non_default_summary(frames: &[Frame]) -> String {
    let mut set: BTreeMap<&str, usize> = BTreeMap::new();
    let mut sms = 0;
    for frame in frames {
        let Ok(msg) = wire::read(&frame.raw) else {
            continue;
        };
        if msg.kind != wire::Kind::Sms {
            continue;
        }
        sms += 1;
        for (name, _) in wire::SMS {
            if msg.is_set(name) {
                *set.entry(name).or_insert(0) += 1;
            }
        }
    }
    let mut text = format!("sms fields set (not NULL, not -1) in the {sms} sms frames:");
    for (name, _) in wire::SMS {
        match set.get(name) {
            Some(n) => {
                let _ = write!(text, "\n  {name:12} in {n}");
            }
            None => {
                let _ = write!(text, "\n  {name:12} never");
            }
        }
    }
    text
}

/// One line describing a frame, for the recording's comments.
fn describe(frame: &Frame) -> String {
    let link = frame.link;
    let dir = frame.direction;
    let Ok(msg) = wire::read(&frame.raw) else {
        return format!("{link} {dir}: unreadable frame");
    };
    let text = |name: &str| match msg.get(name) {
        wire::Value::Str(Some(b)) => String::from_utf8_lossy(&b).into_owned(),
        wire::Value::Str(None) => "NULL".to_owned(),
        wire::Value::Int(n) => n.to_string(),
    };
    match msg.kind {
        wire::Kind::Heartbeat => format!("{link} {dir}: heartbeat, load {}", text("load")),
        wire::Kind::Admin => {
            let what = match msg.get("command") {
                wire::Value::Int(0) => "shutdown",
                wire::Value::Int(3) => "identify",
                _ => "other command",
            };
            format!("{link} {dir}: admin {what}, boxc_id {}", text("boxc_id"))
        }
        wire::Kind::Ack => format!(
            "{link} {dir}: ack, nack {} for {}",
            text("nack"),
            text("id")
        ),
        wire::Kind::WdpDatagram => format!(
            "{link} {dir}: wdp_datagram {}:{} -> {}:{}",
            text("source_address"),
            text("source_port"),
            text("destination_address"),
            text("destination_port")
        ),
        wire::Kind::Sms => {
            let kinds = kinds_of(frame);
            let mut line = format!(
                "{link} {dir}: {}, {} -> {}, coding {}",
                kinds.join(" / "),
                text("sender"),
                text("receiver"),
                text("coding"),
            );
            if msg.is_set("dlr_mask") {
                let _ = write!(line, ", dlr_mask {}", text("dlr_mask"));
            }
            let _ = write!(line, ", id {}", text("id"));
            line
        }
    }
}

// --------------------------------------------------------------------------
// The recording file.

fn recording_text(frames: &[Frame], kannel: &str) -> String {
    let mut text = format!(
        "# recorded {} from Debian kannel {kannel}: bearerbox <-> smsbox / wapbox\n",
        tap::utc_timestamp(SystemTime::now())
    );
    text.push_str(
        "# by tests/kannel_fidelity.rs through boxtap: fake SMSC (fakesmsc), smsbox with\n\
         # smsbox-id \"fidelity\" (an smsbox-route sends the fake SMSC's MOs to it),\n\
         # sms-services \"default\" (text \"Got it\", dlr-mask 31) and \"url\" (get-url),\n\
         # a sendsms push with every parameter, three pushes while the SMSC is away\n\
         # (acks buffered, failed_tmp, and failed for a denied prefix), a fakewap\n\
         # transaction through wapbox, then SIGTERM to bearerbox.\n\
         # Each frame: `bb>box` or `box>bb`, a space, hex of the whole frame with its\n\
         # 4-byte length prefix. Comment lines start with `#`.\n",
    );
    for frame in frames {
        let _ = writeln!(text, "# {}", describe(frame));
        text.push_str(&tap::recording_line(frame.direction, &frame.raw));
        text.push('\n');
    }
    text
}

fn write_recording(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("{TEST}: cannot create {}: {e}", parent.display()));
    }
    std::fs::write(path, text)
        .unwrap_or_else(|e| panic!("{TEST}: cannot write {}: {e}", path.display()));
}

/// The written file holds exactly the recorded frames, in order.
fn assert_reads_back(path: &Path, frames: &[Frame]) {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{TEST}: cannot read {}: {e}", path.display()));
    let read: Vec<(Direction, Vec<u8>)> = text
        .lines()
        .enumerate()
        .filter_map(|(n, line)| {
            tap::parse_recording_line(line)
                .unwrap_or_else(|e| panic!("{TEST}: {}:{}: {e}", path.display(), n + 1))
        })
        .collect();
    let expected: Vec<(Direction, Vec<u8>)> = frames
        .iter()
        .map(|f| (f.direction, f.raw.to_vec()))
        .collect();
    assert!(
        read == expected,
        "{TEST}: {} does not read back",
        path.display()
    );
}

/// The checks above must catch what they are for, without Kannel: bytes
/// after the last field, a body cut short, and a clean frame passing.
#[test]
fn frame_checks_catch_leftovers_and_truncation() {
    let frame = |raw: &[u8]| Frame {
        link: SMSBOX_LINK,
        direction: Direction::BoxToBearerbox,
        raw: bytes::Bytes::copy_from_slice(raw),
    };
    // heartbeat, load 0
    let clean = [0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 0];
    assert_eq!(check_frame(&frame(&clean)), Ok(()));
    assert_eq!(kind_of(&frame(&clean)).as_deref(), Some("heartbeat box>bb"));

    let leftover = [0, 0, 0, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0xab, 0xcd];
    let problem = check_frame(&frame(&leftover)).unwrap_err();
    assert!(problem.contains("2 bytes left over"), "{problem}");
    assert_eq!(kind_of(&frame(&leftover)), None);

    // admin identify whose boxc_id claims 5 bytes but has 2
    let truncated = [0, 0, 0, 14, 0, 0, 0, 1, 0, 0, 0, 3, 0, 0, 0, 5, b'i', b'd'];
    let problem = check_frame(&frame(&truncated)).unwrap_err();
    assert!(problem.starts_with("decode"), "{problem}");
}
