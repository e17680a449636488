//! rapidbox's escapes against Kannel 1.4.5's smsbox, on the same messages.
//!
//! A real bearerbox with a fake SMSC and a real smsbox behind a
//! `rapidbox::tap` relay, so that the test holds every `sms` exactly as
//! smsbox got it. smsbox has two sms-services:
//!
//! - `esc`: a `get-url` with every escape, pointed at a recording HTTP
//!   server;
//! - `txt`: a `text` reply with escapes, asking for every delivery report
//!   of that reply (dlr-mask 31) with a `dlr-url` holding every escape, an
//!   unknown one and a final `%`.
//!
//! fakesmsc sends two MOs to `esc` (a text, and 8-bit data with a UDH)
//! and one to `txt`. Then, for the same recorded messages,
//! rapidbox's expansion must give what smsbox gave: the get-url's query
//! and the reply's text from [`Pattern`] in [`Style::Smsbox`], and each
//! dlr-url call from [`rapidbox::escape::expand_dlr_url`], which rapidbox uses for a
//! sendsms caller's dlr-url.
//!
//! What it shows of smsbox 1.4.5 (Debian's binary), beyond the source: it
//! has `%#group#key#`; values are URL-encoded in a `text` reply too; `%O`
//! sets an unset coding for good (a report's `%c` is -1 before it, 0
//! after); an unknown `%x` and a final `%` stay as written. About 2 s
//! (`cargo test --test escapes_vs_smsbox`).

mod support;

use std::time::{Duration, Instant};

use boxproto::{Msg, Sms, SmsType};
use boxtap::Direction;
use rapidbox::escape::{Pattern, SmsFields, Style};
use rapidbox::model::{Connection, Direction as MsgDirection, Message};

use support::conf::{self, BearerboxPorts, Group, SmsboxParams};
use support::fakesmsc::Phone;
use support::ports::free_port;
use support::process::{Daemon, START_TIMEOUT};
use support::recorder::{Recording, RunningTap};
use support::{http, BEARERBOX, FAKESMSC, SMSBOX};

const TEST: &str = "escapes_vs_smsbox";

/// Replies, reports and HTTP calls take milliseconds.
const EXCHANGE_WAIT: Duration = Duration::from_secs(10);

const STUB_RESPONSE: &[u8] = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok";

/// Every lettered escape, each as a query parameter.
const EVERY: &str = "a=%a&A=%A&b=%b&B=%B&c=%c&C=%C&d=%d&D=%D&f=%f&F=%F&i=%i&I=%I&k=%k\
                     &m=%m&M=%M&n=%n&o=%o&O=%O&p=%p&P=%P&q=%q&Q=%Q&s=%s&S=%S&r=%r&R=%R\
                     &t=%t&T=%T&u=%u&v=%v&V=%V&O2=%O&c2=%c&h=%#smpp#x#&pct=%%";

/// The `text` reply; under 160 characters once expanded, so one SMS.
const REPLY: &str = "k=%k|s=%s|S=%S|r=%r|q=%q|P=%P|t=%t|O=%O|c=%c|C=%C|n=%n";

/// The MOs, as fakesmsc takes them: the phone, then what follows the
/// shortcode. The UDH one is 8-bit, its data URL-encoded for fakesmsc.
const ESC_MO: (&str, &str) = ("0049171", "text esc  Hello  w*rld!  it's (ok) ~x+y ça");
const ESC_UDH_MO: (&str, &str) = ("0049173", "udh %06%05%04%0B%84%23%F0 esc+bin%FF%00+*x");
const TXT_MO: (&str, &str) = ("+49172", "text txt a*b  c'd (e) f+g");

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapidbox_expands_escapes_as_smsbox_does() {
    if !support::require_kannel(TEST, &[BEARERBOX, SMSBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let stub = http::StubServer::start(STUB_RESPONSE).await;
    let recording = Recording::default();

    let bb_ports = BearerboxPorts {
        admin: free_port(),
        smsbox: free_port(),
        fake_smsc: free_port(),
        wapbox: None,
    };
    let bb_conf = conf::bearerbox(dir, &bb_ports).write(dir, "bearerbox.conf");
    let mut bearerbox = Daemon::spawn(
        "bearerbox",
        BEARERBOX,
        [&bb_conf],
        dir,
        vec![conf::log_path(dir, "bearerbox")],
    );
    for port in [bb_ports.admin, bb_ports.smsbox, bb_ports.fake_smsc] {
        bearerbox.wait_for_tcp_port(port, START_TIMEOUT).await;
    }

    let tap = RunningTap::start("smsbox", bb_ports.smsbox, &recording).await;
    let sendsms_port = free_port();
    let get_url = format!("http://127.0.0.1:{}/mo?{EVERY}", stub.port());
    let dlr_url = format!("http://127.0.0.1:{}/dlr?{EVERY}&x=%x&end=%", stub.port());
    let mut sms_conf = conf::smsbox(
        dir,
        &SmsboxParams {
            bearerbox_port: tap.port(),
            sendsms_port: Some(sendsms_port),
            smsbox_id: None,
        },
    );
    sms_conf
        .push(
            Group::new("sms-service")
                .set("keyword", "esc")
                .set("name", "esc-service")
                .set("get-url", &get_url),
        )
        .push(
            Group::new("sms-service")
                .set("keyword", "txt")
                .set("name", "txt-service")
                .set("text", REPLY)
                .set("dlr-mask", 31)
                .set("dlr-url", &dlr_url),
        );
    let sms_conf = sms_conf.write(dir, "smsbox.conf");
    let mut smsbox = Daemon::spawn(
        "smsbox",
        SMSBOX,
        [&sms_conf],
        dir,
        vec![conf::log_path(dir, "smsbox")],
    );
    smsbox.wait_for_tcp_port(sendsms_port, START_TIMEOUT).await;
    smsbox
        .wait_until("smsbox connected through the tap", START_TIMEOUT, || {
            recording.opened("smsbox")
        })
        .await;

    let mut phone = Phone::start("fakesmsc", dir, bb_ports.fake_smsc);
    for (from, rest) in [ESC_MO, ESC_UDH_MO, TXT_MO] {
        if let Err(e) = phone.send(&format!("{from} 5555 {rest}")).await {
            panic!("{TEST}: {e}");
        }
    }
    // The get-url's two answers and the text reply.
    let mts = phone.wait_for_mts(3, EXCHANGE_WAIT).await;
    let reports = wait_for_dlr_calls(&recording, &stub, &smsbox).await;

    // --- the get-url -----------------------------------------------------
    let get_url_pattern = Pattern::compile(&get_url)
        .unwrap_or_else(|e| panic!("{TEST}: the get-url is a good template: {e}"));
    let mut expected: Vec<String> = mos_starting(&recording, "esc")
        .iter()
        .map(|mo| {
            let fields = SmsFields::new(mo);
            let mut ctx = fields.context();
            // smsbox names an MO's service after the sms-service taking it.
            ctx.service = Some("esc-service");
            path_of(&get_url_pattern.render(&ctx, Style::Smsbox))
        })
        .collect();
    expected.sort();
    let mut requested = requests(&stub, "/mo?");
    requested.sort();
    assert_eq!(expected.len(), 2, "{TEST}: both esc MOs were recorded");
    assert_eq!(
        requested, expected,
        "{TEST}: smsbox's get-url calls and rapidbox's expansion of the same MOs"
    );

    // --- the text reply --------------------------------------------------
    let txt = mos_starting(&recording, "txt");
    let [txt] = txt.as_slice() else {
        panic!("{TEST}: one txt MO was recorded: {txt:?}");
    };
    let fields = SmsFields::new(txt);
    let mut ctx = fields.context();
    ctx.service = Some("txt-service");
    let expected = Pattern::compile(REPLY)
        .unwrap_or_else(|e| panic!("{TEST}: the reply is a good template: {e}"))
        .render(&ctx, Style::Smsbox);
    let reply = mts
        .iter()
        .find(|mt| mt.receiver == TXT_MO.0)
        .unwrap_or_else(|| panic!("{TEST}: no reply to {}: {mts:?}", TXT_MO.0));
    assert_eq!(
        reply.data, expected,
        "{TEST}: smsbox's text reply and rapidbox's expansion of the same MO"
    );

    // --- the dlr-url calls -----------------------------------------------
    let mt = Message::new(
        1,
        Connection::new("fake", TXT_MO.0),
        MsgDirection::Outgoing,
        "",
    );
    let mut expected: Vec<String> = reports
        .iter()
        .map(|report| path_of(&rapidbox::escape::expand_dlr_url(&dlr_url, report, &mt)))
        .collect();
    expected.sort();
    let mut called = requests(&stub, "/dlr?");
    called.sort();
    assert_eq!(
        called, expected,
        "{TEST}: smsbox's dlr-url calls and rapidbox's expansion of the same reports"
    );

    drop(phone);
    smsbox.stop();
    bearerbox.stop();
    tap.stop().await;
}

/// Every `sms` the bearerbox sent to smsbox so far.
fn smses_to_box(recording: &Recording) -> Vec<Sms> {
    recording
        .frames()
        .into_iter()
        .filter(|f| f.direction == Direction::BearerboxToBox)
        .filter_map(|f| match Msg::decode(f.raw.slice(4..)) {
            Ok(Msg::Sms(sms)) => Some(sms),
            _ => None,
        })
        .collect()
}

/// The recorded MOs whose data starts with `keyword`.
fn mos_starting(recording: &Recording, keyword: &str) -> Vec<Sms> {
    smses_to_box(recording)
        .into_iter()
        .filter(|sms| {
            sms.sms_type == SmsType::Mo
                && sms
                    .msgdata
                    .as_ref()
                    .is_some_and(|d| d.starts_with(keyword.as_bytes()))
        })
        .collect()
}

/// Waits until smsbox has called the dlr-url once for each report it got
/// (at least one), and returns the reports.
async fn wait_for_dlr_calls(
    recording: &Recording,
    stub: &http::StubServer,
    smsbox: &Daemon,
) -> Vec<Sms> {
    let started = Instant::now();
    loop {
        let reports: Vec<Sms> = smses_to_box(recording)
            .into_iter()
            .filter(|sms| sms.sms_type == SmsType::ReportMo)
            .collect();
        let calls = requests(stub, "/dlr?").len();
        if !reports.is_empty() && calls == reports.len() {
            // A later report may still be on its way; give it a moment.
            tokio::time::sleep(Duration::from_millis(300)).await;
            let again = smses_to_box(recording)
                .into_iter()
                .filter(|sms| sms.sms_type == SmsType::ReportMo)
                .count();
            if again == reports.len() && requests(stub, "/dlr?").len() == calls {
                return reports;
            }
            continue;
        }
        if started.elapsed() > EXCHANGE_WAIT {
            panic!(
                "{TEST}: {} reports but {calls} dlr-url calls after {EXCHANGE_WAIT:?}\n{}",
                reports.len(),
                smsbox.log_tails()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The paths (with queries) of the stub's requests that start with `prefix`.
fn requests(stub: &http::StubServer, prefix: &str) -> Vec<String> {
    stub.requests()
        .iter()
        .filter_map(|line| {
            let target = line.strip_prefix("GET ")?.rsplit_once(' ')?.0;
            target.starts_with(prefix).then(|| target.to_owned())
        })
        .collect()
}

/// The path and query of a `http://host:port/...` URL.
fn path_of(url: &str) -> String {
    let rest = url.strip_prefix("http://").unwrap_or(url);
    rest.find('/').map_or("/", |i| &rest[i..]).to_owned()
}
