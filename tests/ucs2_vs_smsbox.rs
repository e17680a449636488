//! UCS-2, 8-bit and UDH MOs through Kannel 1.4.5's smsbox and through
//! rapidbox on the conversion of the same kannel.conf, with `mo-recode`
//! false and true: the recording HTTP application must see the same
//! requests (method, path and query, X-Kannel-* headers and Content-Type,
//! body) and the SMSC the same MTs (sender, receiver, coding, charset,
//! UDH, bytes, every other parameter).
//!
//! fakesmsc cannot send a UCS-2 MO, so the MOs come through Kannel's HTTP
//! SMSC (`system-type = kannel`, [`support::http_smsc`]), which takes any
//! coding and UDH and sends the MTs out to a recording server. One
//! bearerbox serves four runs: smsbox with `mo-recode = false`, rapidbox
//! on its conversion, then the same with `mo-recode = true`. Each MO has a
//! phone number of its own. What rapidbox does differently on purpose is
//! in [`DIFFERENCES`], with the phones it shows on.
//!
//! The cases ([`MOS`]): a get-url service with `%k %s %r %a %b %c %C %d %u
//! %n %O` on UCS-2 text (Cyrillic and an emoji outside the BMP, and plain
//! ASCII), on 8-bit data, on 7-bit text with a UDH, and on a UCS-2 MO the
//! bearerbox joined from two parts; post-url (Content-Type charset, body,
//! X-Kannel-Coding) on UCS-2, with a UDH, and with strip-keyword; post-xml
//! on UCS-2; a text reply with characters outside the GSM alphabet to a
//! UCS-2 MO; keywords on UCS-2 MOs (ASCII in any case, Cyrillic in lower
//! and upper case); and the default service (a get-url). About 10 s
//! (`cargo test --test ucs2_vs_smsbox`).

mod support;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use support::bearerbox::Bearerbox;
use support::conf::{self, BearerboxPorts, Conf, Group, SmsboxParams};
use support::differential::{self, Observed};
use support::http_smsc::{HttpMt, HttpSmsc, Mo};
use support::ports::free_port;
use support::process::START_TIMEOUT;
use support::rapidbox::Rapidbox;
use support::service::{Answer, Service};
use support::smsbox::{self, Ready};
use support::{BEARERBOX, SMSBOX};

const TEST: &str = "ucs2_vs_smsbox";

/// The shortcode every MO is sent to.
const SHORTCODE: &str = "5555";

/// What rapidbox does differently on purpose: (what, why, the phones
/// whose MTs show it). Those phones' MTs are not compared in the run with
/// rapidbox's defaults (mo-recode false); in the other run rapidbox has
/// [`SMSBOX_REPLIES`], which gives smsbox's behaviour, and everything is
/// compared.
const DIFFERENCES: &[(&str, &str, &[&str])] = &[(
    "a reply with characters outside the GSM alphabet",
    "smsbox's sms_split turns each character GSM lacks into `?` (the 7-bit round trip); \
     rapidbox sends such a reply as UCS-2 so that nothing is lost",
    &["+4670100006"],
)];

/// The `[smsbox]` setting that gives smsbox's replies outside the GSM
/// alphabet.
const SMSBOX_REPLIES: &str = "non_gsm_replies = \"question_marks\"\n";

/// The recording application's answers, by path.
fn routes(app: &Service) {
    let text = |body: &'static str| Answer::Raw {
        status: 200,
        content_type: "text/plain",
        headers: &[],
        body: body.as_bytes(),
    };
    app.route("/get", text("got it"));
    app.route("/post", text("posted"));
    app.route("/xml", text("xml ok"));
}

/// The sms-services, as kannel.conf groups.
fn services(base: &str) -> Vec<Group> {
    let s = |kw: &str| Group::new("sms-service").set("keyword", kw);
    vec![
        s("esc").set(
            "get-url",
            format!(
                "{base}/get?p=%p&k=%k&s=%s&r=%r&a=%a&b=%b&c=%c&C=%C&d=%d&u=%u&n=%n&O=%O&P=%P&i=%i"
            ),
        ),
        s("post")
            .set("post-url", format!("{base}/post?p=%p"))
            .set("send-sender", "true"),
        s("strip")
            .set("post-url", format!("{base}/post/strip?p=%p"))
            .set("strip-keyword", "true"),
        s("xml")
            .set("post-xml", format!("{base}/xml?p=%p"))
            .set("send-sender", "true"),
        s("uni").set("text", "Ответ ☺ %a"),
        s("hi").set("text", "hi matched %r"),
        s("привет").set("text", "cyrillic matched %r"),
        Group::new("sms-service")
            .set("keyword", "default")
            .set("get-url", format!("{base}/get/default?p=%p&a=%a&b=%b&c=%c")),
    ]
}

/// The MOs: each from a phone of its own.
fn mos() -> Vec<Mo> {
    let ucs2 = |from: &str, text: &str| Mo::ucs2(from, SHORTCODE, text);
    // Port addressing (IEI 5) to port 5505 from 0: not a concatenation,
    // so the bearerbox passes it on as it is.
    let ports_udh: &[u8] = &[0x06, 0x05, 0x04, 0x15, 0x81, 0x00, 0x00];
    let part =
        |n: u8, text: &str| ucs2("+4670100013", text).with_udh(&[0x05, 0x00, 0x03, 0x2a, 0x02, n]);
    vec![
        ucs2("+4670100001", "esc Привет мир 😀"),
        ucs2("+4670100002", "esc hello  world"),
        ucs2("+4670100003", "post Привет ☺ 😀"),
        ucs2("+4670100004", "strip  два\tслова"),
        ucs2("+4670100005", "xml <b>&</b> жук"),
        ucs2("+4670100006", "uni ж"),
        ucs2("+4670100007", "HI там"),
        ucs2("+4670100008", "привет мир"),
        ucs2("+4670100009", "Привет мир"),
        Mo::binary("+4670100010", SHORTCODE, b"esc \xff\x00\x01 bin"),
        Mo::text("+4670100011", SHORTCODE, "esc udh text").with_udh(ports_udh),
        ucs2("+4670100012", "post ж udh").with_udh(ports_udh),
        part(1, "esc часть один "),
        part(2, "часть два"),
        ucs2("+4670100014", "ничего такого"),
    ]
}

/// An MT as compared: every parameter but the SMSC's credentials, the
/// text as bytes (escaped) and as read by its coding.
fn mt_key(mt: &HttpMt) -> String {
    let others: Vec<String> = mt
        .params
        .iter()
        .filter(|(name, _)| {
            !matches!(
                name.as_str(),
                "username" | "password" | "to" | "from" | "text" | "udh" | "coding" | "charset"
            )
        })
        .map(|(name, value)| format!("{name}={value}"))
        .collect();
    format!(
        "{} -> {} coding={:?} charset={:?} udh={:?} text={} ({:?}) {}",
        mt.from,
        mt.to,
        mt.coding,
        mt.charset,
        mt.udh.as_ref().map(|u| u.escape_ascii().to_string()),
        mt.text.escape_ascii(),
        mt.decoded(),
        others.join("&")
    )
}

/// Waits until the SMSC's MT count has not changed for 2 s, and at least
/// `at_least` came; at most 30 s.
async fn settle(smsc: &HttpSmsc, at_least: usize) -> Vec<HttpMt> {
    let (quiet, limit) = (Duration::from_secs(2), Duration::from_secs(30));
    differential::settle(|| smsc.mts().len(), at_least, quiet, limit).await;
    smsc.mts()
}

/// Sends every MO and gathers what the application and the SMSC saw,
/// beyond the `skip` MTs and the requests already seen.
async fn exchange(smsc: &HttpSmsc, app: &Service, skip: usize, wanted: usize) -> Observed {
    let requests_before = app.seen().len();
    for mo in mos() {
        if let Err(e) = smsc.send(&mo).await {
            panic!("{TEST}: {e}");
        }
    }
    let mts = settle(smsc, skip + wanted).await;
    Observed::gather(
        &app.seen()[requests_before..],
        mts[skip..].iter().map(|mt| (mt.to.clone(), mt_key(mt))),
    )
}

/// rapidbox's configuration: the conversion of `kannel_conf`, with its
/// store in `dir`, and `[smsbox] smsbox_lines` added.
fn convert(dir: &Path, kannel_conf: &Path, name: &str, smsbox_lines: &str) -> std::path::PathBuf {
    let read =
        rapidbox::kannel_conf::read(kannel_conf, &rapidbox::kannel_conf::ReadOptions::new(dir))
            .unwrap_or_else(|e| panic!("{TEST}: {e}"));
    let conversion =
        rapidbox::kannel_conf::convert(&read).unwrap_or_else(|e| panic!("{TEST}: {e}"));
    assert!(
        conversion.report.is_ok(),
        "{TEST}: the conversion passes check-config: {:?}\n{}",
        conversion.report.errors,
        conversion.toml
    );
    // The conversion has an [smsbox] section: mo-recode is set.
    assert!(
        conversion.toml.contains("\n[smsbox]\n"),
        "{}",
        conversion.toml
    );
    let converted =
        conversion
            .toml
            .replacen("\n[smsbox]\n", &format!("\n[smsbox]\n{smsbox_lines}"), 1);
    let toml = format!(
        "{}\n[store]\npath = {}\n",
        converted,
        toml::Value::String(dir.join(format!("{name}.redb")).display().to_string())
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, toml).unwrap_or_else(|e| panic!("{TEST}: {e}"));
    path
}

/// smsbox then rapidbox on the same kannel.conf with `mo-recode` set to
/// `recode`, rapidbox with `smsbox_lines` added to its `[smsbox]`: what
/// each gave.
async fn both_ways(
    dir: &Path,
    bearerbox: &mut Bearerbox,
    smsc: &HttpSmsc,
    app: &Service,
    recode: bool,
    smsbox_lines: &str,
) -> (Observed, Observed) {
    let ports = bearerbox.ports();
    let mut kannel = conf::smsbox(
        dir,
        &SmsboxParams {
            bearerbox_port: ports.smsbox,
            sendsms_port: Some(free_port()),
            smsbox_id: None,
        },
    );
    kannel.set("smsbox", "mo-recode", recode);
    for group in services(&app.url("")) {
        kannel.push(group);
    }
    let name = if recode { "recode" } else { "raw" };
    let (mut smsbox, kannel_conf) = smsbox::start_conf(
        dir,
        &format!("kannel-{name}.conf"),
        &kannel,
        bearerbox,
        Ready {
            smsbox_id: None,
            sendsms_port: None,
        },
    )
    .await;
    let before = smsc.mts().len();
    let by_smsbox = exchange(smsc, app, before, 1).await;
    smsbox.stop();
    bearerbox
        .wait_status("smsbox gone", START_TIMEOUT, |s| s.boxes.is_empty())
        .await;
    let smsbox_mts: usize = by_smsbox.mts.values().map(Vec::len).sum();

    let config = convert(dir, &kannel_conf, &format!("rapidbox-{name}"), smsbox_lines);
    let mut rapidbox = Rapidbox::start(&format!("rapidbox-{name}"), dir, &config);
    bearerbox.wait_for_box(None, START_TIMEOUT).await;
    let before = smsc.mts().len();
    let by_rapidbox = exchange(smsc, app, before, smsbox_mts).await;
    rapidbox.stop().await;
    bearerbox
        .wait_status("rapidbox gone", START_TIMEOUT, |s| s.boxes.is_empty())
        .await;
    (by_smsbox, by_rapidbox)
}

/// The differences between two runs, phone by phone, leaving out the MTs
/// of the phones [`DIFFERENCES`] names unless `all`.
fn compare(label: &str, smsbox: &Observed, rapidbox: &Observed, all: bool) -> Vec<String> {
    let deliberate: BTreeSet<&str> = DIFFERENCES
        .iter()
        .flat_map(|(_, _, phones)| phones.iter().copied())
        .filter(|_| !all)
        .collect();
    let mut differences = Vec::new();
    for (what, a, b) in [
        ("requests", &smsbox.requests, &rapidbox.requests),
        ("MTs", &smsbox.mts, &rapidbox.mts),
    ] {
        let phones: BTreeSet<_> = a.keys().chain(b.keys()).collect();
        for phone in phones {
            if what == "MTs" && deliberate.contains(phone.as_str()) {
                continue;
            }
            if a.get(phone) != b.get(phone) {
                differences.push(format!(
                    "{label}: {what} of {phone}:\n smsbox:   {:#?}\n rapidbox: {:#?}",
                    a.get(phone),
                    b.get(phone)
                ));
            }
        }
    }
    differences
}

/// Whether the smsbox run's requests for `phone` include one containing
/// `part`.
fn asked(seen: &Observed, phone: &str, part: &str) -> bool {
    seen.requests
        .get(phone)
        .is_some_and(|r| r.iter().any(|r| r.contains(part)))
}

/// Whether the smsbox run's MTs for `phone` include one containing `part`.
fn answered(seen: &Observed, phone: &str, part: &str) -> bool {
    seen.mts
        .get(phone)
        .is_some_and(|m| m.iter().any(|m| m.contains(part)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ucs2_8bit_and_udh_mos_get_what_smsbox_gives_them() {
    if !support::require_kannel(TEST, &[BEARERBOX, SMSBOX]) {
        return;
    }
    let dir = support::test_dir(TEST);
    let dir = dir.path();
    let app = Service::start(Answer::Status(404, "no such route")).await;
    routes(&app);
    let smsc = HttpSmsc::start(free_port()).await;
    let ports = BearerboxPorts::free();
    let mut bb_conf: Conf = conf::bearerbox(dir, &ports);
    bb_conf.push(smsc.group());
    let mut bearerbox = Bearerbox::start(dir, &bb_conf, ports).await;
    bearerbox
        .daemon()
        .wait_for_tcp_port(smsc.port(), START_TIMEOUT)
        .await;

    // rapidbox's own way first; then, with the setting that gives
    // smsbox's, no difference at all.
    let (raw_smsbox, raw_rapidbox) = both_ways(dir, &mut bearerbox, &smsc, &app, false, "").await;
    let (recode_smsbox, recode_rapidbox) =
        both_ways(dir, &mut bearerbox, &smsc, &app, true, SMSBOX_REPLIES).await;

    let mut differences = compare("mo-recode = false", &raw_smsbox, &raw_rapidbox, false);
    differences.extend(compare(
        &format!("mo-recode = true, {SMSBOX_REPLIES:?}"),
        &recode_smsbox,
        &recode_rapidbox,
        true,
    ));
    // And the deliberate difference is one.
    for phone in DIFFERENCES.iter().flat_map(|(_, _, phones)| phones.iter()) {
        if raw_smsbox.mts.get(*phone) == raw_rapidbox.mts.get(*phone) {
            differences.push(format!(
                "{phone} is listed as a deliberate difference but both gave {:?}",
                raw_smsbox.mts.get(*phone)
            ));
        }
    }

    // Not vacuous: the cases do in smsbox what they are there for.
    let phones: BTreeSet<String> = mos().into_iter().map(|mo| mo.from).collect();
    let checks: &[(&str, bool)] = &[
        (
            "a reply to every phone, in both runs",
            [&raw_smsbox, &recode_smsbox]
                .iter()
                .all(|seen| seen.mts.keys().cloned().collect::<BTreeSet<_>>() == phones),
        ),
        (
            "without mo-recode, %a is the UTF-16BE bytes",
            asked(&raw_smsbox, "+4670100001", "c=2&C=UTF-16BE")
                && asked(&raw_smsbox, "+4670100001", "a=%00e%00s%00c%00+"),
        ),
        (
            "with mo-recode, %a is UTF-8",
            asked(&recode_smsbox, "+4670100001", "a=esc+%D0%9F")
                && asked(&recode_smsbox, "+4670100001", "c=0&C=UTF-8"),
        ),
        (
            "a UCS-2 post-url body is UTF-16BE without mo-recode",
            asked(&raw_smsbox, "+4670100003", "charset=\"UTF-16BE\""),
        ),
        (
            "an ASCII keyword matches a UCS-2 MO without mo-recode",
            answered(&raw_smsbox, "+4670100007", "hi matched"),
        ),
        (
            "a Cyrillic keyword matches only with mo-recode",
            answered(&recode_smsbox, "+4670100008", "cyrillic matched")
                && !answered(&raw_smsbox, "+4670100008", "cyrillic matched"),
        ),
        (
            "the UDH reaches %u",
            asked(&raw_smsbox, "+4670100011", "u=%06%05%04%15%81%00%00"),
        ),
        (
            "the two parts reach the service as one MO",
            asked(
                &recode_smsbox,
                "+4670100013",
                "%D1%87%D0%B0%D1%81%D1%82%D1%8C+%D0%B4%D0%B2%D0%B0",
            ),
        ),
    ];
    let failed: Vec<&str> = checks
        .iter()
        .filter(|(_, ok)| !ok)
        .map(|(what, _)| *what)
        .collect();
    assert!(
        failed.is_empty(),
        "{TEST}: the smsbox runs do not show {failed:?}:\nmo-recode false: {raw_smsbox:#?}\n\
         mo-recode true: {recode_smsbox:#?}"
    );
    for (what, why, phones) in DIFFERENCES {
        for phone in *phones {
            eprintln!(
                "{TEST}: {phone} differs on purpose ({what}: {why}):\n smsbox:   {:?}\n                  rapidbox: {:?}",
                raw_smsbox.mts.get(*phone),
                raw_rapidbox.mts.get(*phone)
            );
        }
    }
    assert!(
        differences.is_empty(),
        "{TEST}: {} differences:\n{}",
        differences.len(),
        differences.join("\n")
    );
}
