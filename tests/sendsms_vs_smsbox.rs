//! The same sendsms requests through Kannel 1.4.5's smsbox and through
//! rapidbox, each behind its own tap on one real bearerbox with a fake
//! SMSC, compared answer by answer, MT frame by MT frame and fakesmsc line
//! by fakesmsc line.
//!
//! Every request is sent to smsbox first (all of them), then to rapidbox.
//! Each case has receivers of its own (`{to}`, `{to2}` in the cases), so
//! the frames and the fake SMSC's lines of a case are found by receiver.
//! rapidbox's users have `smsbox_compat = true`, so they must behave
//! exactly as smsbox's; user `r` is rapidbox's own way, and the cases sent
//! as `r` are the deliberate differences, listed with their reason in
//! [`DELIBERATE`] and checked to differ indeed.
//!
//! Compared in each MT frame: every field but those that cannot agree —
//! `id` (each rapidbox MT has its own UUID; smsbox reuses one for all the
//! receivers of a request), `time`, `boxc_id` (each box its own
//! smsbox-id), `dlr_url` (smsbox passes the caller's URL, or "" when there
//! is none; rapidbox puts its message id there whenever the MT asks for
//! reports, with or without a caller's URL, because that is how a report
//! finds its message, and calls the caller's URL itself) — with
//! `validity` and `deferred` compared relative
//! to `time`, and an empty `udhdata` the same as none (smsbox sends "",
//! rapidbox NULL; the bearerbox reads both as no UDH).
//!
//! About 5 s (4.9 s measured with `cargo test --test sendsms_vs_smsbox`
//! on the 2-core machine, 77 requests each way). Skipped without
//! Kannel (fails under `CI=true`); `KANNEL_KEEP_TEST_DIR=1` keeps the
//! daemons' logs.

mod support;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::{Duration, Instant};

use boxtap::Direction;

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts, Group, SmsboxParams};
use support::fakesmsc::{FakeMt, FakeSmsc};
use support::http::{self, StubServer};
use support::ports::free_port;
use support::process::Daemon;
use support::rapidbox::{Rapidbox, RapidboxParams};
use support::recorder::{Frame, Recording, RunningTap};
use support::smsbox::{self, Ready};
use support::wire;
use support::{BEARERBOX, FAKESMSC, SMSBOX};

const TEST: &str = "sendsms_vs_smsbox";

/// Bound on anything that takes milliseconds when things work.
const WAIT: Duration = Duration::from_secs(10);

/// How long the fake SMSC's output must stay the same before a phase
/// counts as done.
const QUIET: Duration = Duration::from_millis(1500);

/// The cases whose difference is rapidbox's on purpose (user `r`, without
/// `smsbox_compat`), and why.
const DELIBERATE: &[(&str, &str)] = &[
    (
        "r: non-GSM text without coding",
        "rapidbox sends UCS-2; smsbox turns each character into '?'",
    ),
    (
        "r: a long text",
        "rapidbox sends the whole text (the bearerbox concatenates it); smsbox's default \
         max-messages of 1 cuts it to 160 characters",
    ),
    (
        "r: text that is not UTF-8",
        "rapidbox refuses it (400 Charset or body misformed); smsbox sends what its \
         conversion to GSM makes of it (here \"h\": the cut sequence dropped)",
    ),
    (
        "r: a form POST",
        "rapidbox reads the form; smsbox answers 400 Invalid content-type",
    ),
];

/// What smsbox answers to some cases, so that a case proves what its name
/// says (a refusal case that smsbox accepted would compare equal and
/// prove nothing).
const SMSBOX_SAYS: &[(&str, u16, &str)] = &[
    (
        "a user denied from 127.0.0.1",
        403,
        "Authorization failed for sendsms",
    ),
    (
        "white- and black-list regexes deny them all",
        400,
        "Number(s) has/have been denied by white- and/or black-lists.",
    ),
    (
        "a dlr-url that is not http",
        400,
        "DLR-URL field misformed, rejected",
    ),
    (
        "an account too long",
        400,
        "Account field misformed or too long, rejected",
    ),
    ("a UDH too long", 400, "UDH field is too long, rejected"),
    (
        "text/plain with the credentials in the query",
        403,
        "Authorization failed for sendsms",
    ),
    (
        "text/plain without a receiver",
        400,
        "Missing receiver(s) number(s), rejected",
    ),
    ("text/html", 415, "Unsupported content-type, rejected"),
    ("application/json", 400, "Invalid content-type"),
    ("a form POST", 400, "Invalid content-type"),
    ("XML POST", 202, "0: Accepted for delivery"),
    (
        "XML POST with a number that is not one",
        400,
        "MClass field misformed, rejected",
    ),
    (
        "a UDH without coding is 8-bit",
        202,
        "0: Accepted for delivery",
    ),
];

/// The sendsms users, for smsbox (`group = sendsms-user`) and for
/// rapidbox (`[[sendsms_users]]`, `smsbox_compat` but for `r`): name and
/// the Kannel keys besides username and password.
const USERS: &[(&str, &[(&str, &str)])] = &[
    ("u", &[]),
    ("cat", &[("max-messages", "3"), ("concatenation", "true")]),
    ("cat1", &[("concatenation", "true")]),
    ("split", &[("max-messages", "3")]),
    (
        "hf",
        &[
            ("max-messages", "3"),
            ("header", "H:"),
            ("footer", ":F"),
            ("split-suffix", "+"),
            ("split-chars", " "),
        ],
    ),
    ("d", &[("default-sender", "8500"), ("default-smsc", "fake")]),
    (
        "f",
        &[
            ("faked-sender", "7777"),
            ("forced-smsc", "fake"),
            ("name", "forced-one"),
        ],
    ),
    (
        "wl",
        &[("white-list-regex", "^2"), ("black-list-regex", "2$")],
    ),
    (
        "ip",
        &[("user-deny-ip", "*.*.*.*"), ("user-allow-ip", "10.9.9.9")],
    ),
    ("r", &[]),
];

const PASSWORD: &str = "p";

/// One request: a GET's query, or a POST.
#[derive(Debug, Clone)]
enum Req {
    Get(String),
    Post {
        query: String,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Case {
    name: &'static str,
    req: Req,
}

fn get(name: &'static str, query: &str) -> Case {
    Case {
        name,
        req: Req::Get(query.to_owned()),
    }
}

fn post(name: &'static str, headers: &[(&'static str, &str)], body: &[u8]) -> Case {
    post_q(name, "", headers, body)
}

fn post_q(name: &'static str, query: &str, headers: &[(&'static str, &str)], body: &[u8]) -> Case {
    Case {
        name,
        req: Req::Post {
            query: query.to_owned(),
            headers: headers.iter().map(|(n, v)| (*n, (*v).to_owned())).collect(),
            body: body.to_vec(),
        },
    }
}

fn digits(n: usize) -> String {
    (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect()
}

fn words(n: usize) -> String {
    (0..n).map(|i| if i % 7 == 6 { ' ' } else { 'w' }).collect()
}

/// The cases; `{dlr}` is a dlr-url to the test's stub (URL-encoded in
/// queries, plain in headers and XML), `{to}` and `{to2}` the case's own
/// receivers.
fn cases() -> Vec<Case> {
    let u = "username=u&password=p&from=5";
    let plain = |extra: &[(&'static str, &'static str)]| -> Vec<(&'static str, &'static str)> {
        let mut headers = vec![
            ("X-Kannel-Username", "u"),
            ("X-Kannel-Password", "p"),
            ("X-Kannel-From", "5"),
            ("X-Kannel-To", "{to}"),
        ];
        headers.extend_from_slice(extra);
        headers
    };
    let cyrillic = "%D0%9F%D1%80%D0%B8%D0%B2%D0%B5%D1%82";
    let xml = |from: &str, extra: &str| {
        format!(
            "<?xml version=\"1.0\"?><message><submit><da><number>{{to}}</number></da>\
             <da><number>{{to2}}</number></da><oa><number>5</number></oa>{from}{extra}\
             </submit></message>"
        )
    };
    let xml_auth =
        "<from><user>u</user><pass>p</pass><account>acx</account><binfo>bx</binfo></from>";
    vec![
        // --- GET: credentials and receivers ---------------------------
        get("plain text", &format!("{u}&to={{to}}&text=hello+world")),
        get(
            "aliases and a repeated parameter",
            "user=u&pass=p&from=5&to={to}&text=first&text=second&to={to2}",
        ),
        get("two receivers", &format!("{u}&to={{to}}+{{to2}}&text=both")),
        get(
            "receivers split by tab and newline",
            &format!("{u}&to={{to}}%09{{to2}}%0A&text=ws"),
        ),
        get(
            "a bad receiver dropped",
            &format!("{u}&to={{to}}+abc&text=x"),
        ),
        get("only bad receivers", &format!("{u}&to=abc&text=x")),
        get("no receiver", &format!("{u}&text=x")),
        get("an empty receiver", &format!("{u}&to=&text=x")),
        get(
            "a wrong password",
            "username=u&password=q&from=5&to={to}&text=x",
        ),
        get(
            "a user denied from 127.0.0.1",
            "username=ip&password=p&from=5&to={to}&text=x",
        ),
        get("no sender", "username=u&password=p&to={to}&text=x"),
        get(
            "no sender and a bad receiver",
            "username=u&password=p&to=abc&text=x",
        ),
        get(
            "the user's default sender and smsc",
            "username=d&password=p&to={to}&text=x",
        ),
        get(
            "the user's forced sender and smsc",
            "username=f&password=p&from=5&to={to}&text=x&smsc=other",
        ),
        get(
            "white- and black-list regexes drop receivers",
            "username=wl&password=p&from=5&to={to}+{to2}+%2B1&text=x",
        ),
        get(
            "white- and black-list regexes deny them all",
            "username=wl&password=p&from=5&to={to2}+%2B1&text=x",
        ),
        // --- GET: charsets and codings --------------------------------
        get(
            "ISO-8859-1 text",
            &format!("{u}&to={{to}}&text=h%E9llo&charset=ISO-8859-1"),
        ),
        get(
            "ISO-8859-1 bytes that WINDOWS-1252 reads otherwise",
            &format!("{u}&to={{to}}&text=%80%A4%E7&charset=ISO-8859-1"),
        ),
        get(
            "UCS-2 from UTF-8",
            &format!("{u}&to={{to}}&text={cyrillic}&coding=2&charset=UTF-8"),
        ),
        get(
            "UCS-2 as UTF-16BE",
            &format!("{u}&to={{to}}&text=%04%1F%04%40&coding=2"),
        ),
        get(
            "8-bit with a UDH",
            &format!("{u}&to={{to}}&text=%FF%00ab&coding=1&udh=%06%05%04%0B%84%23%F0"),
        ),
        get(
            "a UDH without coding is 8-bit",
            &format!("{u}&to={{to}}&text=%FF%00ab&udh=%06%05%04%0B%84%23%F0"),
        ),
        get(
            "a UDH with coding 0",
            &format!("{u}&to={{to}}&text=abc&udh=%06%05%04%0B%84%23%F0&coding=0"),
        ),
        get(
            "non-GSM text with coding 0",
            &format!("{u}&to={{to}}&text={cyrillic}&coding=0"),
        ),
        get(
            "non-GSM text without coding",
            &format!("{u}&to={{to}}&text=a{cyrillic}"),
        ),
        get(
            "GSM extension characters",
            &format!("{u}&to={{to}}&text=%7B%5B%E2%82%AC%5D%7D"),
        ),
        get(
            "an empty text in an unknown charset",
            &format!("{u}&to={{to}}&text=&charset=FOO"),
        ),
        get(
            "text that is not UTF-8",
            &format!("{u}&to={{to}}&text=h%E9"),
        ),
        get(
            "text that is not UTF-8 though it says so",
            &format!("{u}&to={{to}}&text=h%E9&charset=UTF-8"),
        ),
        get(
            "stray bytes, an emoji and a c cedilla",
            &format!("{u}&to={{to}}&text=%A3x%80+%F0%9F%98%80+%C3%A7a"),
        ),
        get("an empty text", &format!("{u}&to={{to}}&text=")),
        get("no text", &format!("{u}&to={{to}}")),
        // --- GET: every field -----------------------------------------
        get(
            "every field",
            &format!(
                "{u}&to={{to}}&text=all&smsc=fake&mclass=1&mwi=2&pid=65&alt-dcs=1&rpi=1\
                 &validity=1440&deferred=0&priority=3&account=acct-42&binfo=billing-7\
                 &meta-data=%3Fsmpp%3Fa%3Db&compress=1&dlr-mask=3&dlr-url={{dlr}}"
            ),
        ),
        get(
            "the deprecated dlrurl and dlrmask",
            &format!("{u}&to={{to}}&text=x&dlrurl={{dlr}}&dlrmask=3"),
        ),
        get(
            "integers with trailing garbage",
            &format!("{u}&to={{to}}&text=x&mclass=1abc&pid=abc&priority=+2"),
        ),
        // --- GET: smsbox's checks -------------------------------------
        get(
            "a dlr-url that is not http",
            &format!("{u}&to={{to}}&text=x&dlr-url=ftp://h/d"),
        ),
        get(
            "an account too long",
            &format!("{u}&to={{to}}&text=x&account={}", "a".repeat(65)),
        ),
        get(
            "an account with a bracket",
            &format!("{u}&to={{to}}&text=x&account=a%5Bb"),
        ),
        get(
            "a misformed UDH",
            &format!("{u}&to={{to}}&text=x&udh=%06%05"),
        ),
        get(
            "a UDH too long",
            &format!("{u}&to={{to}}&text=x&udh=%8F{}", "%00".repeat(143)),
        ),
        get(
            "an mclass out of range",
            &format!("{u}&to={{to}}&text=x&mclass=4"),
        ),
        get(
            "a coding out of range",
            &format!("{u}&to={{to}}&text=x&coding=3"),
        ),
        get(
            "a dlr-mask out of range",
            &format!("{u}&to={{to}}&text=x&dlr-mask=67"),
        ),
        get(
            "an unknown charset",
            &format!("{u}&to={{to}}&text=x&charset=FOO"),
        ),
        // --- GET: long texts, caps and concatenation ------------------
        get(
            "a long text, no cap",
            &format!("{u}&to={{to}}&text={}", digits(400)),
        ),
        get(
            "a long text, 3 concatenated",
            &format!(
                "username=cat&password=p&from=5&to={{to}}&text={}",
                digits(400)
            ),
        ),
        get(
            "a longer text, 3 concatenated",
            &format!(
                "username=cat&password=p&from=5&to={{to}}&text={}",
                digits(600)
            ),
        ),
        get(
            "a long text, concatenated, no cap",
            &format!(
                "username=cat1&password=p&from=5&to={{to}}&text={}",
                digits(600)
            ),
        ),
        get(
            "a long text, 3 separate with reports",
            &format!(
                "username=split&password=p&from=5&to={{to}}&text={}&dlr-mask=3&dlr-url={{dlr}}",
                digits(400)
            ),
        ),
        get(
            "a long text with header, footer, suffix and split chars",
            &format!(
                "username=hf&password=p&from=5&to={{to}}&text={}",
                words(400)
            ),
        ),
        get(
            "a long UCS-2 text, 3 separate",
            &format!(
                "username=split&password=p&from=5&to={{to}}&text={}&coding=2&charset=UTF-8",
                "%D0%96".repeat(100)
            ),
        ),
        get(
            "long 8-bit data, 3 separate",
            &format!(
                "username=split&password=p&from=5&to={{to}}&text={}&coding=1",
                "%AB".repeat(200)
            ),
        ),
        // --- POST -----------------------------------------------------
        post(
            "a form POST",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"username=u&password=p&from=5&to={to}&text=x",
        ),
        post(
            "text/plain with X-Kannel headers",
            &plain(&[
                ("Content-Type", "text/plain"),
                ("X-Kannel-To", "{to} {to2}"),
                ("X-Kannel-Account", "acc"),
                ("X-Kannel-BInfo", "bi"),
                ("X-Kannel-Meta-Data", "?smpp?a=b"),
                ("X-Kannel-Compress", "1"),
                ("X-Kannel-MClass", "1"),
                ("X-Kannel-Validity", "60"),
                ("X-Kannel-DLR-Mask", "3"),
                ("X-Kannel-DLR-URL", "{dlr}"),
            ]),
            b"hello post",
        ),
        post(
            "text/plain with every other X-Kannel header",
            &plain(&[
                ("Content-Type", "text/plain"),
                ("X-Kannel-SMSC", "fake"),
                ("X-Kannel-PID", "65"),
                ("X-Kannel-Alt-DCS", "1"),
                ("X-Kannel-RPI", "1"),
                ("X-Kannel-MWI", "2"),
                ("X-Kannel-Priority", "3"),
                ("X-Kannel-Deferred", "5"),
                ("X-Kannel-UDH", "%06%05%04%0B%84%23%F0"),
                ("X-Kannel-DLR-Mask", "1"),
            ]),
            b"every header",
        ),
        post(
            "text/plain in ISO-8859-1",
            &plain(&[("Content-Type", "text/plain; charset=ISO-8859-1")]),
            b"h\xe9",
        ),
        post(
            "text/plain in UCS-2",
            &plain(&[
                ("Content-Type", "text/plain; charset=UTF-8"),
                ("X-Kannel-Coding", "2"),
            ]),
            "Привет".as_bytes(),
        ),
        post(
            "text/plain with a UDH is 7-bit",
            &plain(&[
                ("Content-Type", "text/plain"),
                ("X-Kannel-UDH", "0605040B8423F0"),
            ]),
            b"abc",
        ),
        post_q(
            "text/plain with the credentials in the query",
            "username=u&password=p&from=5&to={to}",
            &[("Content-Type", "text/plain")],
            b"x",
        ),
        post(
            "text/plain without a receiver",
            &[
                ("Content-Type", "text/plain"),
                ("X-Kannel-Username", "u"),
                ("X-Kannel-Password", "p"),
            ],
            b"x",
        ),
        post(
            "octet-stream",
            &plain(&[("Content-Type", "application/octet-stream")]),
            b"\xff\x01ab",
        ),
        post(
            "octet-stream with a UDH",
            &plain(&[
                ("Content-Type", "application/octet-stream"),
                ("X-Kannel-UDH", "0605040B8423F0"),
            ]),
            b"\xff\x01ab",
        ),
        post(
            "octet-stream with a NUL",
            &plain(&[("Content-Type", "application/octet-stream")]),
            b"\xff\x00ab",
        ),
        post("no content type", &plain(&[]), b"abc"),
        post(
            "text/html",
            &plain(&[("Content-Type", "text/html")]),
            b"<b>hi</b>",
        ),
        post(
            "application/json",
            &plain(&[("Content-Type", "application/json")]),
            b"{\"text\":\"hi\"}",
        ),
        post(
            "XML POST",
            &[("Content-Type", "text/xml")],
            xml(
                xml_auth,
                "<ud>hello+xml</ud><statusrequest><dlr-mask>3</dlr-mask>\
                 <dlr-url>{dlr}</dlr-url></statusrequest><dcs><mclass>1</mclass>\
                 <compress>1</compress></dcs><pid>5</pid><vp><delay>10</delay></vp>\
                 <priority>1</priority><meta-data>?smpp?k=v</meta-data>",
            )
            .as_bytes(),
        ),
        post(
            "XML POST in ISO-8859-1 with a UDH",
            &[("Content-Type", "text/xml")],
            xml(
                "<from><username>u</username><password>p</password></from>",
                "<ud>h%E9</ud><udh>0605040B8423F0</udh>",
            )
            .replace("version=\"1.0\"", "version=\"1.0\" encoding=\"ISO-8859-1\"")
            .as_bytes(),
        ),
        post(
            "XML POST with every other element",
            &[("Content-Type", "text/xml")],
            xml(
                xml_auth,
                "<ud>more</ud><smsc>fake</smsc><rpi>1</rpi><timing><delay>5</delay></timing>\
                 <dcs><mwi>2</mwi><alt-dcs>1</alt-dcs></dcs><udh>%06%05%04%0B%84%23%F0</udh>",
            )
            .as_bytes(),
        ),
        post(
            "XML POST in UCS-2",
            &[("Content-Type", "text/xml")],
            xml(
                xml_auth,
                "<ud>%D0%9F%D1%80%D0%B8</ud><dcs><coding>2</coding></dcs>",
            )
            .as_bytes(),
        ),
        post(
            "XML POST with a number that is not one",
            &[("Content-Type", "text/xml")],
            xml(
                xml_auth,
                "<ud>x</ud><dcs><mclass> x </mclass></dcs><pid>2.7</pid>",
            )
            .as_bytes(),
        ),
        post(
            "XML POST without credentials",
            &[("Content-Type", "text/xml")],
            xml("", "<ud>x</ud>").as_bytes(),
        ),
        post(
            "XML POST that does not parse",
            &[("Content-Type", "text/xml")],
            b"<message><submit>",
        ),
        // --- rapidbox's own way (user r, no smsbox_compat) -------------
        get(
            "r: non-GSM text without coding",
            &format!("username=r&password=p&from=5&to={{to}}&text={cyrillic}"),
        ),
        get(
            "r: a long text",
            &format!(
                "username=r&password=p&from=5&to={{to}}&text={}",
                digits(400)
            ),
        ),
        get(
            "r: text that is not UTF-8",
            "username=r&password=p&from=5&to={to}&text=h%E9",
        ),
        post(
            "r: a form POST",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            b"username=r&password=p&from=5&to={to}&text=x",
        ),
    ]
}

/// The receivers of case `i`.
fn receivers(i: usize) -> [String; 2] {
    [format!("2{i:03}1"), format!("2{i:03}2")]
}

fn fill(text: &str, i: usize, dlr: &str, encode: bool) -> String {
    let [to, to2] = receivers(i);
    let dlr = if encode {
        let mut encoded = String::new();
        rapidbox::escape::percent_encode(dlr, &mut encoded);
        encoded
    } else {
        dlr.to_owned()
    };
    text.replace("{to}", &to)
        .replace("{to2}", &to2)
        .replace("{dlr}", &dlr)
}

fn fill_bytes(body: &[u8], i: usize, dlr: &str, encode: bool) -> Vec<u8> {
    match std::str::from_utf8(body) {
        Ok(text) => fill(text, i, dlr, encode).into_bytes(),
        Err(_) => body.to_vec(),
    }
}

async fn send(port: u16, i: usize, case: &Case, dlr: &str) -> (u16, String) {
    let response = match &case.req {
        Req::Get(query) => {
            let query = fill(query, i, dlr, true);
            http::get(port, &format!("/cgi-bin/sendsms?{query}")).await
        }
        Req::Post {
            query,
            headers,
            body,
        } => {
            let query = fill(query, i, dlr, true);
            let path = if query.is_empty() {
                "/cgi-bin/sendsms".to_owned()
            } else {
                format!("/cgi-bin/sendsms?{query}")
            };
            let headers: Vec<(&str, String)> = headers
                .iter()
                .map(|(n, v)| (*n, fill(v, i, dlr, false)))
                .collect();
            let headers: Vec<(&str, &str)> =
                headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let form = headers.iter().any(|(_, v)| v.contains("urlencoded"));
            let body = fill_bytes(body, i, dlr, form);
            http::request(port, "POST", &path, &headers, Some(&body)).await
        }
    };
    (response.status, response.body.trim().to_owned())
}

/// What one box did with one case.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
struct Outcome {
    answer: (u16, String),
    /// The MT frames to the case's receivers, the fields compared.
    frames: Vec<BTreeMap<&'static str, String>>,
    /// What the fake SMSC received for the case's receivers.
    delivered: Vec<String>,
}

/// Fields not compared (see the module's docs).
const NOT_COMPARED: &[&str] = &[
    "id",
    "time",
    "boxc_id",
    "dlr_url",
    "resend_time",
    "resend_try",
];

/// The compared view of an MT frame.
fn view(msg: &wire::Message) -> BTreeMap<&'static str, String> {
    let time = match msg.get("time") {
        wire::Value::Int(t) => i64::from(t),
        wire::Value::Str(_) => 0,
    };
    let mut view = BTreeMap::new();
    for (name, value) in &msg.fields {
        if NOT_COMPARED.contains(name) {
            continue;
        }
        let shown = match (*name, value) {
            ("validity" | "deferred", wire::Value::Int(n)) if *n != -1 => {
                // Minutes from the frame's time, so that the two runs,
                // seconds apart, compare.
                format!("time + {} min", (i64::from(*n) - time + 30).div_euclid(60))
            }
            ("udhdata", wire::Value::Str(None)) => "\"\"".to_owned(),
            (_, wire::Value::Int(n)) => n.to_string(),
            (_, wire::Value::Str(None)) => "NULL".to_owned(),
            (_, wire::Value::Str(Some(b))) => format!("\"{}\"", b.escape_ascii()),
        };
        view.insert(*name, shown);
    }
    view
}

/// The MT frames of `link`, by receiver.
fn frames_by_receiver(
    frames: &[Frame],
    link: &str,
) -> BTreeMap<String, Vec<BTreeMap<&'static str, String>>> {
    let mut by = BTreeMap::new();
    for frame in frames {
        if frame.link != link || frame.direction != Direction::BoxToBearerbox {
            continue;
        }
        let Ok(msg) = wire::read(&frame.raw) else {
            continue;
        };
        if msg.kind != wire::Kind::Sms || msg.get("sms_type") != wire::Value::Int(2) {
            continue;
        }
        let receiver = match msg.get("receiver") {
            wire::Value::Str(Some(r)) => String::from_utf8_lossy(&r).into_owned(),
            _ => String::new(),
        };
        by.entry(receiver).or_insert_with(Vec::new).push(view(&msg));
    }
    by
}

/// Waits until the fake SMSC has received at least `at_least` MTs and
/// then nothing more for [`QUIET`].
async fn settle(fakesmsc: &FakeSmsc, at_least: usize, daemons: &[&Daemon]) -> Vec<FakeMt> {
    let started = Instant::now();
    let mut last = (fakesmsc.mts().len(), Instant::now());
    loop {
        let now = fakesmsc.mts().len();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if now >= at_least && last.1.elapsed() >= QUIET {
            return fakesmsc.mts();
        }
        if started.elapsed() > WAIT * 2 {
            let mut tails = String::new();
            for daemon in daemons {
                tails.push_str(&daemon.log_tails());
            }
            panic!("{TEST}: the fake SMSC got {now} of at least {at_least} MTs\n{tails}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// fakesmsc's `udh` data with the reference number of a concatenation UDH
/// (`05 00 03 REF TOTAL PART`) masked: the bearerbox numbers the messages
/// it splits from one counter, which the two runs share.
fn without_concatenation_reference(data: &str) -> String {
    const CONCATENATION: &str = "%05%00%03";
    let Some(rest) = data.strip_prefix(CONCATENATION) else {
        return data.to_owned();
    };
    // The reference is one URL-encoded byte: `%XX` or a plain character.
    let len = if rest.starts_with('%') { 3 } else { 1 };
    match rest.get(len..) {
        Some(tail) => format!("{CONCATENATION}<ref>{tail}"),
        None => data.to_owned(),
    }
}

fn outcomes(
    cases: &[Case],
    answers: &[(u16, String)],
    frames: &[Frame],
    link: &str,
    delivered: &[FakeMt],
) -> Vec<Outcome> {
    let mut by_receiver = frames_by_receiver(frames, link);
    (0..cases.len())
        .map(|i| {
            let mut outcome = Outcome {
                answer: answers[i].clone(),
                ..Outcome::default()
            };
            for to in receivers(i) {
                outcome
                    .frames
                    .extend(by_receiver.remove(&to).unwrap_or_default());
                outcome
                    .delivered
                    .extend(delivered.iter().filter(|mt| mt.receiver == to).map(|mt| {
                        let data = without_concatenation_reference(&mt.data);
                        format!("{} {} {} {data}", mt.sender, mt.receiver, mt.kind)
                    }));
            }
            outcome
        })
        .collect()
}

fn smsbox_conf(
    dir: &std::path::Path,
    bearerbox_port: u16,
    sendsms_port: u16,
) -> std::path::PathBuf {
    let mut smsbox = conf::smsbox(
        dir,
        &SmsboxParams {
            bearerbox_port,
            sendsms_port: Some(sendsms_port),
            smsbox_id: Some("smsbox".to_owned()),
        },
    );
    for (name, keys) in USERS {
        let mut group = Group::new("sendsms-user")
            .set("username", name)
            .set("password", PASSWORD);
        for (key, value) in *keys {
            group = group.set(key, value);
        }
        smsbox.push(group);
    }
    smsbox.write(dir, "smsbox.conf")
}

fn rapidbox_users() -> String {
    let quote = |s: &str| toml::Value::String(s.to_owned()).to_string();
    let mut toml = String::new();
    for (name, keys) in USERS {
        let _ = writeln!(
            toml,
            "[[sendsms_users]]\nusername = {}\npassword = {}",
            quote(name),
            quote(PASSWORD)
        );
        if *name != "r" {
            toml.push_str("smsbox_compat = true\n");
        }
        for (key, value) in *keys {
            let line = match *key {
                "max-messages" => format!("max_messages = {value}"),
                "concatenation" => format!("concatenation = {value}"),
                "faked-sender" => format!("forced_sender = {}", quote(value)),
                other => format!("{} = {}", other.replace('-', "_"), quote(value)),
            };
            toml.push_str(&line);
            toml.push('\n');
        }
        toml.push('\n');
    }
    toml
}

#[test]
fn the_concatenation_reference_is_masked_and_nothing_else() {
    assert_eq!(
        without_concatenation_reference("%05%00%03J%03%01 data 0123"),
        "%05%00%03<ref>%03%01 data 0123"
    );
    assert_eq!(
        without_concatenation_reference("%05%00%03%18%03%02 data x"),
        "%05%00%03<ref>%03%02 data x"
    );
    assert_eq!(
        without_concatenation_reference("%06%05%04%0B%84%23%F0 data x"),
        "%06%05%04%0B%84%23%F0 data x"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sendsms_requests_get_what_smsbox_gives_them() {
    if !support::require_kannel(TEST, &[BEARERBOX, SMSBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let stub = StubServer::start(b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nok").await;
    let dlr = format!("http://127.0.0.1:{}/dlr?type=%d", stub.port());
    let recording = Recording::default();
    let ports = BearerboxPorts::free();
    let mut bearerbox = Bearerbox::start(dir, &conf::bearerbox(dir, &ports), ports).await;
    let fakesmsc = FakeSmsc::spawn(
        "fakesmsc",
        dir,
        ports.fake_smsc,
        &["+4917000009 5555 text never sent"],
        0,
        0.1,
    );

    let smsbox_tap = RunningTap::start("smsbox", ports.smsbox, &recording).await;
    let sendsms_port = free_port();
    let conf_path = smsbox_conf(dir, smsbox_tap.port(), sendsms_port);
    let ready = Ready {
        smsbox_id: Some("smsbox"),
        sendsms_port: Some(sendsms_port),
    };
    let mut smsbox = smsbox::start(dir, &conf_path, &mut bearerbox, ready).await;

    let rapidbox_tap = RunningTap::start("rapidbox", ports.smsbox, &recording).await;
    let mut params = RapidboxParams::new(dir, rapidbox_tap.port());
    params.smsbox_id = Some("rapidbox".to_owned());
    let http_port = free_port();
    params.http_port = Some(http_port);
    params.extra_toml = rapidbox_users();
    let config = params.write(dir, "rapidbox.toml");
    let mut rapidbox = Rapidbox::start("rapidbox", dir, &config);
    rapidbox.daemon().wait_for_tcp_port(http_port, WAIT).await;
    bearerbox.wait_for_box(Some("rapidbox"), WAIT).await;

    let cases = cases();
    assert!(cases.len() >= 40, "{TEST}: {} cases", cases.len());

    // --- smsbox ----------------------------------------------------------
    let mut smsbox_answers = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        smsbox_answers.push(send(sendsms_port, i, case, &dlr).await);
    }
    let after_smsbox = settle(&fakesmsc, 1, &[&smsbox, &*bearerbox.daemon()]).await;
    let smsbox_count = after_smsbox.len();

    // --- rapidbox --------------------------------------------------------
    let mut rapidbox_answers = Vec::new();
    for (i, case) in cases.iter().enumerate() {
        rapidbox_answers.push(send(http_port, i, case, &dlr).await);
    }
    let all = {
        let rapidbox = &*rapidbox.daemon();
        settle(
            &fakesmsc,
            smsbox_count + 1,
            &[rapidbox, &*bearerbox.daemon()],
        )
        .await
    };
    let frames = recording.frames();
    let ours = outcomes(
        &cases,
        &smsbox_answers,
        &frames,
        "smsbox",
        &all[..smsbox_count],
    );
    let theirs = outcomes(
        &cases,
        &rapidbox_answers,
        &frames,
        "rapidbox",
        &all[smsbox_count..],
    );

    // --- the comparison ----------------------------------------------------
    let mut report = String::new();
    let mut same = 0;
    for (i, case) in cases.iter().enumerate() {
        let deliberate = DELIBERATE.iter().find(|(name, _)| *name == case.name);
        let (kannel, rapid) = (&ours[i], &theirs[i]);
        // A case smsbox accepted must have left frames and fake SMSC lines
        // to compare, or the comparison would prove nothing.
        if kannel.answer.0 == 202 && (kannel.frames.is_empty() || kannel.delivered.is_empty()) {
            let _ = writeln!(
                report,
                "\n{:?}: smsbox accepted it but nothing was seen for {:?}",
                case.name,
                receivers(i)
            );
        }
        match (kannel == rapid, deliberate) {
            (true, None) => same += 1,
            (false, Some((_, why))) => {
                eprintln!("{TEST}: {:?} differs on purpose: {why}", case.name);
            }
            (true, Some(_)) => {
                let _ = writeln!(
                    report,
                    "\n{:?} is listed as a deliberate difference but both gave {kannel:#?}",
                    case.name
                );
            }
            (false, None) => {
                let _ = writeln!(
                    report,
                    "\n{:?} (case {i}, receivers {:?}):\n  smsbox:   {kannel:?}\n  rapidbox: {rapid:?}",
                    case.name,
                    receivers(i)
                );
            }
        }
    }
    for (name, status, body) in SMSBOX_SAYS {
        let i = cases.iter().position(|c| c.name == *name);
        let said = i.map(|i| &ours[i].answer);
        if said != Some(&(*status, (*body).to_owned())) {
            let _ = writeln!(
                report,
                "\n{name:?}: smsbox answered {said:?}, the case expects ({status}, {body:?})"
            );
        }
    }
    eprintln!(
        "{TEST}: {same} of {} requests the same through smsbox and rapidbox, {} different on purpose",
        cases.len(),
        DELIBERATE.len()
    );

    rapidbox.stop().await;
    smsbox.stop();
    bearerbox.stop(Duration::from_secs(30)).await;
    smsbox_tap.stop().await;
    rapidbox_tap.stop().await;
    assert!(
        report.is_empty(),
        "{TEST}: rapidbox differs from smsbox:{report}"
    );
}
