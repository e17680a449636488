//! Kannel's sms-services run by Kannel 1.4.5's smsbox and by rapidbox on
//! the conversion of the same kannel.conf, through the same real
//! bearerbox, fake SMSC and recording HTTP application: the application
//! must see the same requests (method, path and query, X-Kannel-*
//! headers, body) and the phones the same MTs (sender, receiver, kind,
//! data, parts).
//!
//! One bearerbox and one fakesmsc serve both runs: smsbox first, on
//! `kannel.conf`; then rapidbox, on what `import-kannel-conf` makes of it.
//! Each case has a phone number of its own, so that its requests and MTs
//! can be told apart. Deliberate differences are in [`DIFFERENCES`]. About
//! 6 s (`cargo test --test services_vs_smsbox`).
//!
//! The cases (one MO each, see [`MOS`]): keyword ignoring case, aliases,
//! keyword-regex, a keyword's unanchored end (`helpme` takes `help`),
//! get-url with the common escapes and URL-hostile characters, UTF-8 text,
//! send-sender, post-url (text, and an 8-bit MO), strip-keyword, post-xml,
//! an HTML answer cut by prefix/suffix, X-Kannel headers accepted and
//! refused, max-messages with split-chars and split-suffix, truncation to
//! one SMS, header and footer, omit-empty, reply-emptymessage,
//! reply-couldnotfetch on HTTP 500, reply-couldnotrepresent on JSON (which
//! smsbox reads from reply-couldnotfetch's key), an ISO-8859-1 answer, an
//! octet-stream answer accepted (8-bit) and refused (`?` text), a UCS-2
//! reply by X-Kannel-Coding, allowed and denied prefixes, a word count that
//! does not fit, faked-sender, concatenation, exec, file, accepted-smsc,
//! a default service behind an allowed-prefix, reply-requestfailed, a
//! service's dlr-url called on the reply's report, alt-charset on the MO
//! (get-url escapes and a post-url body), a text/xml answer accepted and
//! refused, http-request-retry (the failing service asked twice), and an
//! empty get-url and post-url (every fetch fails). fakesmsc cannot send a
//! UCS-2 MO (smsc_fake.c takes text, data and udh), so none is sent here:
//! tests/ucs2_vs_smsbox.rs sends them through Kannel's HTTP SMSC.

mod support;

use std::path::Path;
use std::time::Duration;

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts, Conf, Group, SmsboxParams};
use support::differential::{self, Observed};
use support::fakesmsc::{FakeMt, Phone};
use support::loopback::{self, Injector};
use support::ports::free_port;
use support::process::START_TIMEOUT;
use support::rapidbox::Rapidbox;
use support::service::{Answer, Service};
use support::smsbox::{self, Ready};
use support::{BEARERBOX, FAKESMSC, SMSBOX};

const TEST: &str = "services_vs_smsbox";

/// What rapidbox does differently on purpose, and why; the cases avoid
/// them, or compare around them.
const DIFFERENCES: &[(&str, &str)] = &[
    (
        "X-Kannel-Time, Date and post-xml's <at>",
        "the MO's time and the request's: they differ between the two runs by nature",
    ),
    (
        "a concatenated SMS's reference number",
        "the bearerbox's running counter: it differs between the runs by nature",
    ),
    (
        "User-Agent",
        "rapidbox names itself (rapidbox/VERSION), smsbox Kannel/1.4.5",
    ),
    (
        "replies outside the GSM alphabet",
        "smsbox turns what GSM lacks into `?` itself (sms_split) and sends 7-bit; \
         rapidbox sends them as UCS-2 so nothing is lost; `[smsbox] non_gsm_replies = \
         \"question_marks\"` gives smsbox's behaviour (no case here sends one; \
         tests/ucs2_vs_smsbox.rs compares both)",
    ),
];

/// A service's answer for a path of the recording application.
struct Route {
    path: &'static str,
    answer: Answer,
}

fn routes() -> Vec<Route> {
    let text = |body: &'static str| Answer::Raw {
        status: 200,
        content_type: "text/plain",
        headers: &[],
        body: body.as_bytes(),
    };
    vec![
        Route {
            path: "/get",
            answer: text("got it"),
        },
        Route {
            path: "/post",
            answer: text("posted"),
        },
        Route {
            path: "/xml",
            answer: text("xml ok"),
        },
        Route {
            path: "/html",
            answer: Answer::Raw {
                status: 200,
                content_type: "text/html",
                headers: &[],
                body: b"<html><b>skip</b><!--s--><p>Your <i>balance</i>:  5 &amp; more</p><!--e-->x</html>",
            },
        },
        Route {
            path: "/xk",
            answer: Answer::Raw {
                status: 200,
                content_type: "text/plain",
                headers: &[("X-Kannel-From", "99999")],
                body: b"from header",
            },
        },
        Route {
            path: "/dlr",
            answer: text(""),
        },
        Route {
            path: "/xans",
            answer: Answer::Raw {
                status: 200,
                content_type: "text/xml",
                headers: &[("X-Kannel-From", "99999")],
                body: b"<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<message><submit>\
                        <ud>xml+reply+%E9</ud><oa><number>88888</number></oa>\
                        </submit></message>",
            },
        },
        Route {
            path: "/empty",
            answer: text(""),
        },
        Route {
            path: "/fail",
            answer: Answer::Status(500, "broken"),
        },
        Route {
            path: "/json",
            answer: Answer::Json("{\"a\":1}"),
        },
        Route {
            path: "/latin",
            answer: Answer::Raw {
                status: 200,
                content_type: "text/plain; charset=ISO-8859-1",
                headers: &[],
                body: b"caf\xe9 ok",
            },
        },
        Route {
            path: "/bin",
            answer: Answer::Raw {
                status: 200,
                content_type: "application/octet-stream",
                headers: &[],
                body: b"ok\xff",
            },
        },
        Route {
            path: "/uni",
            answer: Answer::Raw {
                status: 200,
                content_type: "text/plain; charset=UTF-8",
                headers: &[("X-Kannel-Coding", "2")],
                body: "Привет".as_bytes(),
            },
        },
    ]
}

/// The sms-services, as kannel.conf groups (`URL` stands for the
/// application's base URL).
fn services(base: &str, dir: &Path) -> Vec<Group> {
    let long = "word ".repeat(60);
    let file = dir.join("reply.txt");
    std::fs::write(&file, "file content").unwrap_or_else(|e| panic!("{TEST}: {e}"));
    let s = |kw: &str| Group::new("sms-service").set("keyword", kw);
    vec![
        s("txt").set("text", "k=%k|a=%a|p=%p|P=%P|i=%i"),
        s("help")
            .set("aliases", "aide;hilfe")
            .set("text", "help text"),
        Group::new("sms-service")
            .set("keyword-regex", "^[0-9]+$")
            .set("text", "number %a"),
        s("get").set(
            "get-url",
            format!("{base}/get?p=%p&P=%P&a=%a&k=%k&s=%s&r=%r&c=%c&C=%C&i=%i&n=%n&q=%q"),
        ),
        s("sender")
            .set("get-url", format!("{base}/get/sender?p=%p&a=%a"))
            .set("send-sender", "true"),
        s("post")
            .set("post-url", format!("{base}/post?p=%p"))
            .set("send-sender", "true"),
        s("strip")
            .set("post-url", format!("{base}/post/strip?p=%p"))
            .set("strip-keyword", "true"),
        s("xml")
            .set("post-xml", format!("{base}/xml?p=%p"))
            .set("send-sender", "true"),
        s("html")
            .set("get-url", format!("{base}/html?p=%p"))
            .set("prefix", "<!--S-->")
            .set("suffix", "<!--e-->"),
        s("xk")
            .set("get-url", format!("{base}/xk?p=%p"))
            .set("accept-x-kannel-headers", "true"),
        s("xn").set("get-url", format!("{base}/xk/refused?p=%p")),
        s("long")
            .set("text", &long)
            .set("max-messages", 3)
            .set("split-chars", " ")
            .set("split-suffix", "+"),
        s("trunc").set("text", "y".repeat(200)),
        s("hf")
            .set("text", "body")
            .set("header", "H:")
            .set("footer", ":F"),
        s("empty")
            .set("get-url", format!("{base}/empty/omit?p=%p"))
            .set("omit-empty", "true"),
        s("blank").set("get-url", format!("{base}/empty?p=%p")),
        s("fail").set("get-url", format!("{base}/fail?p=%p")),
        s("json").set("get-url", format!("{base}/json?p=%p")),
        s("latin").set("get-url", format!("{base}/latin?p=%p")),
        s("bin")
            .set("get-url", format!("{base}/bin?p=%p"))
            .set("accept-x-kannel-headers", "true"),
        s("binr").set("get-url", format!("{base}/bin/refused?p=%p")),
        s("uni")
            .set("get-url", format!("{base}/uni?p=%p"))
            .set("accept-x-kannel-headers", "true"),
        s("pfx")
            .set("allowed-prefix", "+4670000")
            .set("text", "pfx ok"),
        s("deny")
            .set("denied-prefix", "+46700000")
            .set("text", "deny ok"),
        s("one").set("text", "one %s"),
        s("fake")
            .set("faked-sender", "77777")
            .set("text", "from %P"),
        s("concat")
            .set("text", "z".repeat(200))
            .set("concatenation", "true")
            .set("max-messages", 3),
        s("exec").set("exec", "/bin/echo -n %k"),
        s("file").set("file", file.display()),
        s("dlr").set("text", "dlr reply").set("dlr-mask", 8).set(
            "dlr-url",
            format!("{base}/dlr?p=%p&P=%P&d=%d&A=%A&n=%n&k=%k"),
        ),
        s("alt")
            .set("get-url", format!("{base}/get/alt?p=%p&a=%a&b=%b"))
            .set("alt-charset", "ISO-8859-1"),
        s("zpost")
            .set("post-url", format!("{base}/post/alt?p=%p"))
            .set("alt-charset", "ISO-8859-1"),
        s("xa")
            .set("get-url", format!("{base}/xans?p=%p"))
            .set("accept-x-kannel-headers", "true"),
        s("xr").set("get-url", format!("{base}/xans/refused?p=%p")),
        // smsbox takes an empty URL and fails every fetch of it.
        s("nourl").set("get-url", ""),
        s("nopost").set("post-url", ""),
        s("smsc")
            .set("accepted-smsc", "other")
            .set("text", "not for fake"),
        s("default")
            .set("allowed-prefix", "+4671")
            .set("text", "default %a"),
    ]
}

/// The MOs: (phone, fakesmsc's TYPE DATA after the shortcode).
const MOS: &[(&str, &str)] = &[
    ("+4670000001", "text txt hello world"),
    ("+4670000002", "text TXT Upper Case"),
    ("+4670000003", "text hilfe"),
    ("+4670000004", "text 12345"),
    ("+4670000005", "text get a*b c'd (e) f+g ça"),
    ("+4670000006", "text sender me"),
    ("+4670000007", "text post some body"),
    ("+4670000008", "text strip  the keyword"),
    ("+4670000009", "text xml <b>&</b>"),
    ("+4670000010", "text html"),
    ("+4670000011", "text xk"),
    ("+4670000012", "text xn"),
    ("+4670000013", "text long"),
    ("+4670000014", "text trunc"),
    ("+4670000015", "text hf"),
    ("+4670000016", "text empty"),
    ("+4670000017", "text blank"),
    ("+4670000018", "text fail"),
    ("+4670000019", "text json"),
    ("+4670000020", "text latin"),
    ("+4670000021", "text bin"),
    ("+4670000022", "text uni"),
    ("+4670000023", "text pfx"),
    ("+4679999924", "text pfx"),
    ("+4670000025", "text deny"),
    ("+4670000026", "text one two three"),
    ("+4670000027", "text fake"),
    ("+4670000028", "text concat"),
    ("+4670000029", "text exec"),
    ("+4670000030", "text file"),
    ("+4670000031", "text smsc"),
    ("+4671000032", "text nothing matches"),
    ("+4670000033", "text nothing matches"),
    // fakesmsc sends no UCS-2 MO (smsc_fake.c takes text, data, udh):
    // UTF-8 text, and 8-bit data, stand in.
    ("+4670000034", "text get Привет мир"),
    ("+4670000037", "data post%20bin%FF%00x"),
    ("+4670000035", "text  helpme"),
    ("+4670000036", "text binr"),
    ("+4670000038", "text dlr"),
    ("+4670000039", "text alt café"),
    ("+4670000040", "text zpost ça va"),
    ("+4670000041", "text xa"),
    ("+4670000042", "text xr"),
    ("+4670000043", "text nourl"),
    ("+4670000044", "text nopost y"),
];

/// The smsbox keys that shape services.
fn smsbox_keys(conf: &mut Conf) {
    conf.set("smsbox", "reply-couldnotfetch", "FETCHFAIL")
        .set("smsbox", "reply-requestfailed", "REQFAIL")
        .set("smsbox", "reply-emptymessage", "EMPTY!")
        .set("smsbox", "mo-recode", "true")
        .set("smsbox", "http-timeout", 5)
        // The failing service is asked twice, a second apart.
        .set("smsbox", "http-request-retry", 1)
        .set("smsbox", "http-queue-delay", 1);
}

fn mt_key(mt: &FakeMt) -> String {
    let mut data = mt.data.clone();
    // A concatenated SMS's reference number (the UDH's fourth byte) is
    // the bearerbox's running counter.
    if let Some(rest) = data.strip_prefix("%05%00%03") {
        let after = if rest.starts_with('%') { 3 } else { 1 };
        if rest.len() > after {
            data = format!("%05%00%03(ref){}", &rest[after..]);
        }
    }
    format!("{} -> {} [{}] {data}", mt.sender, mt.receiver, mt.kind)
}

/// Waits until the phone's MT count has not changed for 2.5 s (longer
/// than `http-queue-delay`, so a retried request's reply is waited for;
/// and at least `at_least` came), at most 20 s.
async fn settle(phone: &Phone, at_least: usize) -> Vec<FakeMt> {
    let quiet = Duration::from_millis(2500);
    differential::settle(
        || phone.mts().len(),
        at_least,
        quiet,
        Duration::from_secs(20),
    )
    .await;
    phone.mts()
}

/// Sends every MO and gathers what the application and the phones saw.
async fn exchange(
    phone: &mut Phone,
    service: &Service,
    skip_mts: usize,
    wanted: usize,
) -> Observed {
    let requests_before = service.seen().len();
    for (from, rest) in MOS {
        if let Err(e) = phone.send(&format!("{from} 5555 {rest}")).await {
            panic!("{TEST}: {e}");
        }
    }
    let mts = settle(phone, skip_mts + wanted).await;
    Observed::gather(
        &service.seen()[requests_before..],
        mts[skip_mts..]
            .iter()
            .map(|mt| (mt.receiver.clone(), mt_key(mt))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapidbox_runs_smsbox_services_as_smsbox_does() {
    if !support::require_kannel(TEST, &[BEARERBOX, SMSBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let app = Service::start(Answer::Status(404, "no such route")).await;
    for route in routes() {
        app.route(route.path, route.answer);
    }
    let base = app.url("");
    let ports = BearerboxPorts::free();
    let mut bearerbox = Bearerbox::start(dir, &conf::bearerbox(dir, &ports), ports).await;

    let mut kannel = conf::smsbox(
        dir,
        &SmsboxParams {
            bearerbox_port: ports.smsbox,
            sendsms_port: Some(free_port()),
            smsbox_id: None,
        },
    );
    smsbox_keys(&mut kannel);
    for group in services(&base, dir) {
        kannel.push(group);
    }
    // --- smsbox ----------------------------------------------------------
    let (mut smsbox, kannel_conf) = smsbox::start_conf(
        dir,
        "kannel.conf",
        &kannel,
        &mut bearerbox,
        Ready::default(),
    )
    .await;
    let mut phone = Phone::start("fakesmsc", dir, ports.fake_smsc);
    bearerbox
        .wait_status("the fake SMSC online", START_TIMEOUT, |s| {
            s.fake_smsc_online
        })
        .await;
    let by_smsbox = exchange(&mut phone, &app, 0, 1).await;
    smsbox.stop();
    bearerbox
        .wait_status("smsbox gone", START_TIMEOUT, |s| s.boxes.is_empty())
        .await;
    let smsbox_mts: usize = by_smsbox.mts.values().map(Vec::len).sum();

    // --- rapidbox on the conversion ---------------------------------------
    let conf =
        rapidbox::kannel_conf::read(&kannel_conf, &rapidbox::kannel_conf::ReadOptions::new(dir))
            .unwrap_or_else(|e| panic!("{TEST}: {e}"));
    let conversion =
        rapidbox::kannel_conf::convert(&conf).unwrap_or_else(|e| panic!("{TEST}: {e}"));
    assert!(
        conversion.report.is_ok(),
        "{TEST}: the conversion passes check-config: {:?}\n{}",
        conversion.report.errors,
        conversion.toml
    );
    let store = dir.join("rapidbox.redb");
    let toml = format!(
        "{}\n[store]\npath = {}\n",
        conversion.toml,
        toml::Value::String(store.display().to_string())
    );
    let converted = dir.join("rapidbox.toml");
    std::fs::write(&converted, toml).unwrap_or_else(|e| panic!("{TEST}: {e}"));
    let mut rapidbox = Rapidbox::start("rapidbox", dir, &converted);
    bearerbox.wait_for_box(None, START_TIMEOUT).await;
    let before = phone.mts().len();
    let by_rapidbox = exchange(&mut phone, &app, before, smsbox_mts).await;
    rapidbox.stop().await;
    phone.stop();

    // --- the same? -------------------------------------------------------
    let mut differences = Vec::new();
    for (what, a, b) in [
        ("requests", &by_smsbox.requests, &by_rapidbox.requests),
        ("MTs", &by_smsbox.mts, &by_rapidbox.mts),
    ] {
        let phones: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
        for phone in phones {
            if a.get(phone) != b.get(phone) {
                differences.push(format!(
                    "{what} of {phone}:\n smsbox:   {:#?}\n rapidbox: {:#?}",
                    a.get(phone),
                    b.get(phone)
                ));
            }
        }
    }
    // Not vacuous: smsbox answered most phones and asked the application
    // for every HTTP case.
    let asked: usize = by_smsbox.requests.values().map(Vec::len).sum();
    assert!(
        by_smsbox.mts.len() >= 30 && asked >= 19,
        "{TEST}: smsbox answered {} phones and made {asked} requests: {by_smsbox:#?}",
        by_smsbox.mts.len()
    );
    // The cases added for alt-charset, text/xml answers and retries do
    // what they are there for (in smsbox's run, so in rapidbox's too).
    let requests = |phone: &str| by_smsbox.requests.get(phone).cloned().unwrap_or_default();
    let mts = |phone: &str| by_smsbox.mts.get(phone).cloned().unwrap_or_default();
    assert!(
        requests("+4670000039")
            .iter()
            .any(|r| r.contains("a=alt+caf%E9")),
        "{TEST}: alt-charset in escapes: {:?}",
        requests("+4670000039")
    );
    assert!(
        requests("+4670000040")
            .iter()
            .any(|r| r.contains("\\xe7a va")
                || r.contains("\\u{e7}a va")
                || r.contains("\u{fffd}a va")),
        "{TEST}: alt-charset in a post body: {:?}",
        requests("+4670000040")
    );
    assert!(
        mts("+4670000041")
            .iter()
            .any(|m| m.starts_with("88888 ") && m.contains("xml+reply")
                || m.starts_with("88888 ") && m.contains("xml reply")),
        "{TEST}: a text/xml answer accepted: {:?}",
        mts("+4670000041")
    );
    assert!(
        mts("+4670000042").iter().all(|m| !m.starts_with("88888 "))
            && !mts("+4670000042").is_empty(),
        "{TEST}: a text/xml answer refused: {:?}",
        mts("+4670000042")
    );
    assert_eq!(
        requests("+4670000018").len(),
        2,
        "{TEST}: http-request-retry 1 asks twice: {:?}",
        requests("+4670000018")
    );
    assert!(
        differences.is_empty(),
        "{TEST}: {} differences (the deliberate ones, {DIFFERENCES:?}, are not \
         compared):\n{}",
        differences.len(),
        differences.join("\n")
    );
    for phone in ["+4670000043", "+4670000044"] {
        assert!(
            mts(phone).iter().any(|m| m.contains("FETCHFAIL")) && requests(phone).is_empty(),
            "{TEST}: an empty URL is never fetched and answers reply-couldnotfetch: {:?}",
            mts(phone)
        );
    }
}

// --- MOs with every field an SMSC may set, and redirects ----------------
//
// fakesmsc cannot set an MO's message class, PID, RPI, alternative DCS,
// MWI, compression, validity, deferral, account or billing info; the
// bearerbox's loopback SMSC can (`support::loopback`): the test sends MTs
// carrying them, which come back as MOs through the same bearerbox to
// smsbox, then to rapidbox. The cases:
//
// - post-url: the X-Kannel-* headers smsbox adds for each field that is
//   set (MClass, PID, RPI, Alt-DCS, MWI, Compress, Validity and Deferred
//   in minutes from now, BInfo), in its order;
// - post-xml: the <pid>, <rpi>, <dcs> children, <timing> and <vp>
//   elements, byte for byte;
// - get-url: the escapes that show those fields (%m %M %o %B %v %V %O);
// - an MO that brings a service of its own (an HTTP SMSC's user, an MT
//   looped back): smsbox keeps it as X-Kannel-Service and %n, and
//   post-xml's <service> shows libxml2's escaping of it;
// - redirects: a GET answered 302 with a location from the root, a POST
//   answered 303 (asked again as a POST with its body), a redirect to
//   itself, followed 5 times and then taken as the (failed) answer, and a
//   service's dlr-url answered 302.
//
// The looped MOs come from the loopback SMSC, so a reply goes back to it
// unless the answer names the fake SMSC (X-Kannel-SMSC, accepted): every
// answer here does, and a `default` service with an empty `text` and
// omit-empty (which import-kannel-conf carries over) stops a reply that
// loops anyway (reply-couldnotfetch, say) after one turn.

/// The answers of the recording application for the looped cases.
fn looped_routes() -> Vec<Route> {
    let to_fake = |body: &'static str| Answer::Raw {
        status: 200,
        content_type: "text/plain",
        headers: &[("X-Kannel-SMSC", "fake")],
        body: body.as_bytes(),
    };
    let redirect = |status: u16, location: &'static str| Route {
        path: "",
        answer: Answer::Raw {
            status,
            content_type: "text/plain",
            headers: Box::leak(Box::new([("Location", location)])),
            body: b"see elsewhere",
        },
    };
    vec![
        Route {
            path: "/fields",
            answer: to_fake("fields ok"),
        },
        Route {
            path: "/moved",
            ..redirect(302, "/to/get?p=%2B4670000054")
        },
        Route {
            path: "/pmoved",
            ..redirect(303, " /to/post?p=%2B4670000055")
        },
        Route {
            path: "/again",
            ..redirect(307, "/again?p=%2B4670000056")
        },
        Route {
            path: "/dmoved",
            ..redirect(302, "/to/dlr?p=%2B4670000058&d=%d")
        },
        Route {
            path: "/to",
            answer: to_fake("moved ok"),
        },
    ]
}

/// The looped cases' services (`base`: the application's URL).
fn looped_services(base: &str) -> Vec<Group> {
    let s = |kw: &str| {
        Group::new("sms-service")
            .set("keyword", kw)
            .set("accept-x-kannel-headers", "true")
    };
    vec![
        s("fpost")
            .set("post-url", format!("{base}/fields/post?p=%p"))
            .set("send-sender", "true"),
        s("fxml")
            .set("post-xml", format!("{base}/fields/xml?p=%p"))
            .set("send-sender", "true"),
        s("fget").set(
            "get-url",
            format!("{base}/fields/get?p=%p&m=%m&M=%M&o=%o&B=%B&v=%v&V=%V&O=%O&c=%c&n=%n"),
        ),
        s("moved").set("get-url", format!("{base}/moved?p=%p")),
        s("pmoved").set("post-url", format!("{base}/pmoved?p=%p")),
        s("again").set("get-url", format!("{base}/again?p=%p")),
        s("dmoved")
            .set("get-url", format!("{base}/fields/dlr?p=%p"))
            .set("dlr-mask", 8)
            .set("dlr-url", format!("{base}/dmoved?p=%p&d=%d")),
        Group::new("sms-service")
            .set("keyword", "default")
            .set("text", "")
            .set("omit-empty", "true"),
    ]
}

/// The looped MOs: (phone, text, whether the SMSC set every field, the
/// MO's own service).
const LOOPED: &[(&str, &str, bool, Option<&str>)] = &[
    ("+4670000050", "fpost some body", true, None),
    ("+4670000051", "fxml <b>&</b>", true, None),
    ("+4670000052", "fget", true, None),
    ("+4670000053", "fpost mine", false, Some("acct-user")),
    ("+4670000054", "moved", false, None),
    ("+4670000055", "pmoved the body", false, None),
    ("+4670000056", "again", false, None),
    ("+4670000058", "dmoved", false, None),
    // libxml2's escaping of a value in post-xml: markup, a quote, a
    // carriage return, a control character, non-ASCII.
    (
        "+4670000057",
        "fxml esc",
        false,
        Some("s\u{1}<\"\u{e9}>\r&"),
    ),
];

/// Sends the looped MOs and gathers what the application and the phones
/// saw (as [`exchange`] does for fakesmsc's).
async fn exchange_looped(
    injector: &mut Injector,
    phone: &Phone,
    service: &Service,
    skip_mts: usize,
    wanted: usize,
) -> Observed {
    let requests_before = service.seen().len();
    for (from, text, every_field, own_service) in LOOPED {
        let mut mo = loopback::text_mo(from, "5555", text);
        if *every_field {
            // Validity and deferral are absolute; smsbox shows minutes
            // from now, which stay 60 and 30 for the half minute the
            // exchange may take.
            let now = loopback::now();
            mo.mclass = 1;
            mo.mwi = 0;
            mo.pid = 65;
            mo.rpi = 1;
            mo.alt_dcs = 1;
            mo.compress = 0;
            mo.validity = now + 3630;
            mo.deferred = now + 1830;
            mo.account = Some("acct 7".into());
            mo.binfo = Some("bill me".into());
        }
        mo.service = own_service.map(Into::into);
        injector.send(mo).await;
    }
    let mts = settle(phone, skip_mts + wanted).await;
    Observed::gather(
        &service.seen()[requests_before..],
        mts[skip_mts..]
            .iter()
            .map(|mt| (mt.receiver.clone(), mt_key(mt))),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapidbox_shows_every_mo_field_and_follows_redirects_as_smsbox_does() {
    const TEST: &str = "services_vs_smsbox_looped";
    if !support::require_kannel(TEST, &[BEARERBOX, SMSBOX, FAKESMSC]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let app = Service::start(Answer::Status(404, "no such route")).await;
    for route in looped_routes() {
        app.route(route.path, route.answer);
    }
    let base = app.url("");
    let ports = BearerboxPorts::free();
    let mut bearerbox_conf = conf::bearerbox(dir, &ports);
    loopback::add_to(&mut bearerbox_conf);
    let mut bearerbox = Bearerbox::start(dir, &bearerbox_conf, ports).await;
    let mut kannel = conf::smsbox(
        dir,
        &SmsboxParams {
            bearerbox_port: ports.smsbox,
            sendsms_port: Some(free_port()),
            smsbox_id: None,
        },
    );
    kannel.set("smsbox", "reply-couldnotfetch", "FETCHFAIL");
    for group in looped_services(&base) {
        kannel.push(group);
    }
    let mut injector = Injector::connect(ports.smsbox).await;
    bearerbox
        .wait_for_box(Some(loopback::INJECTOR_ID), START_TIMEOUT)
        .await;
    let mut phone = Phone::start("fakesmsc", dir, ports.fake_smsc);
    bearerbox
        .wait_status("the fake SMSC online", START_TIMEOUT, |s| {
            s.fake_smsc_online
        })
        .await;

    // --- smsbox ----------------------------------------------------------
    let (mut smsbox, kannel_conf) = smsbox::start_conf(
        dir,
        "kannel.conf",
        &kannel,
        &mut bearerbox,
        Ready::default(),
    )
    .await;
    let by_smsbox = exchange_looped(&mut injector, &phone, &app, 0, 1).await;
    smsbox.stop();
    bearerbox
        .wait_status("smsbox gone", START_TIMEOUT, |s| {
            s.boxes.iter().all(|b| b.id == loopback::INJECTOR_ID)
        })
        .await;
    let smsbox_mts: usize = by_smsbox.mts.values().map(Vec::len).sum();

    // --- rapidbox on the conversion ---------------------------------------
    let conf =
        rapidbox::kannel_conf::read(&kannel_conf, &rapidbox::kannel_conf::ReadOptions::new(dir))
            .unwrap_or_else(|e| panic!("{TEST}: {e}"));
    let conversion =
        rapidbox::kannel_conf::convert(&conf).unwrap_or_else(|e| panic!("{TEST}: {e}"));
    assert!(
        conversion.report.is_ok(),
        "{TEST}: the conversion passes check-config: {:?}\n{}",
        conversion.report.errors,
        conversion.toml
    );
    let toml = format!(
        "{}\n[store]\npath = {}\n",
        conversion.toml,
        toml::Value::String(dir.join("rapidbox.redb").display().to_string())
    );
    let converted = dir.join("rapidbox.toml");
    std::fs::write(&converted, toml).unwrap_or_else(|e| panic!("{TEST}: {e}"));
    let mut rapidbox = Rapidbox::start("rapidbox", dir, &converted);
    bearerbox.wait_for_box(None, START_TIMEOUT).await;
    let before = phone.mts().len();
    let by_rapidbox = exchange_looped(&mut injector, &phone, &app, before, smsbox_mts).await;
    rapidbox.stop().await;
    phone.stop();

    // --- the same? -------------------------------------------------------
    let requests = |phone: &str| by_smsbox.requests.get(phone).cloned().unwrap_or_default();
    // Not vacuous: the fields and the redirects are in smsbox's run.
    let fields = requests("+4670000050").join("\n");
    for header in [
        "x-kannel-mclass: 1",
        "x-kannel-pid: 65",
        "x-kannel-rpi: 1",
        "x-kannel-alt-dcs: 1",
        "x-kannel-mwi: 0",
        "x-kannel-compress: 0",
        "x-kannel-validity: 60",
        "x-kannel-deferred: 30",
        "x-kannel-binfo: bill me",
    ] {
        assert!(fields.contains(header), "{TEST}: {header} in {fields}");
    }
    let xml = requests("+4670000051").join("\n");
    for element in ["<pid>65</pid>", "<mclass>1</mclass>", "<vp>", "<timing>"] {
        assert!(xml.contains(element), "{TEST}: {element} in {xml}");
    }
    assert!(
        requests("+4670000052")
            .iter()
            .any(|r| r.contains("m=1&M=0&o=acct+7&B=bill+me&v=60&V=30&")),
        "{TEST}: the fields' escapes: {:?}",
        requests("+4670000052")
    );
    assert!(
        requests("+4670000053")
            .iter()
            .any(|r| r.contains("x-kannel-service: acct-user")),
        "{TEST}: the MO's own service: {:?}",
        requests("+4670000053")
    );
    assert!(
        requests("+4670000057")
            .iter()
            .any(|r| r.contains("<service>s&lt;\\\"&#xE9;&gt;&#13;&amp;</service>")),
        "{TEST}: libxml2's escaping (the control character left out): {:?}",
        requests("+4670000057")
    );
    for (phone, path) in [
        ("+4670000054", "GET /to/get"),
        ("+4670000055", "POST /to/post"),
        ("+4670000058", "GET /to/dlr"),
    ] {
        assert!(
            requests(phone).iter().any(|r| r.starts_with(path)),
            "{TEST}: {phone} redirected to {path}: {:?}",
            requests(phone)
        );
    }
    assert_eq!(
        requests("+4670000056").len(),
        6,
        "{TEST}: a redirect loop is followed 5 times: {:?}",
        requests("+4670000056")
    );
    let mut differences = Vec::new();
    for (what, a, b) in [
        ("requests", &by_smsbox.requests, &by_rapidbox.requests),
        ("MTs", &by_smsbox.mts, &by_rapidbox.mts),
    ] {
        let phones: std::collections::BTreeSet<_> = a.keys().chain(b.keys()).collect();
        for phone in phones {
            if a.get(phone) != b.get(phone) {
                differences.push(format!(
                    "{what} of {phone}:\n smsbox:   {:#?}\n rapidbox: {:#?}",
                    a.get(phone),
                    b.get(phone)
                ));
            }
        }
    }
    assert!(
        by_smsbox.mts.len() >= 5,
        "{TEST}: smsbox answered {} phones: {by_smsbox:#?}",
        by_smsbox.mts.len()
    );
    assert!(
        differences.is_empty(),
        "{TEST}: {} differences (the deliberate ones, {DIFFERENCES:?}, are not \
         compared):\n{}",
        differences.len(),
        differences.join("\n")
    );
}
