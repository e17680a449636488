//! Every escape in every style, with the values Kannel's
//! `urltrans_fill_escape_codes` gives (gw/urltrans.c, gw/sms.c).

use proptest::prelude::*;
use uuid::Uuid;

use super::table::{self, ESCAPES};
use super::*;

const UUID: &str = "e5f0c9a2-1b3c-4d5e-8f60-718293a4b5c6";
const UDH: &[u8] = &[0x06, 0x05, 0x04, 0x0B, 0x84, 0x23, 0xF0];
/// 2024-02-29 13:07:42 UTC.
const TIME: i64 = 1_709_212_062;

/// A message with every field set.
fn full() -> Context<'static> {
    Context {
        text: "Join  a*b  x+y ça",
        sender: "00491712",
        receiver: "+5555",
        smsc_id: Some("fake smsc"),
        smsc_number: Some("+4917 0"),
        foreign_id: Some("f/1"),
        service: Some("svc"),
        account: Some("acct&1"),
        binfo: Some("b i"),
        meta_data: Some("?smpp?k=v+1&"),
        dlr_url: Some("http://x/?a=1"),
        charset: Some("ISO-8859-1"),
        udh: Some(UDH),
        uuid: Some(Uuid::parse_str(UUID).unwrap()),
        time: Some(TIME * 1_000_000 + 123_456),
        coding: 0,
        mclass: 1,
        mwi: -1,
        compress: -1,
        alt_dcs: -1,
        validity: TIME + 600,
        deferred: TIME + 90,
        dlr_mask: 8,
        now: Some(TIME),
        ..Context::default()
    }
}

fn render(pattern: &str, ctx: &Context<'_>, style: Style) -> String {
    Pattern::compile(pattern).unwrap().render(ctx, style)
}

/// Each escape of [`full`] alone: text, URL, smsbox.
const EXPECTED: &[(&str, &str, &str, &str)] = &[
    ("%k", "Join", "Join", "Join"),
    ("%s", "a*b", "a%2Ab", "a*b"),
    ("%S", "a~b", "a~b", "a~b"),
    (
        "%r",
        "a*b x+y ça",
        "a%2Ab%20x%2By%20%C3%A7a",
        "a*b+x%2By+%C3%A7a",
    ),
    (
        "%a",
        "Join a*b x+y ça",
        "Join%20a%2Ab%20x%2By%20%C3%A7a",
        "Join+a*b+x%2By+%C3%A7a",
    ),
    (
        "%b",
        "Join  a*b  x+y ça",
        "Join%20%20a%2Ab%20%20x%2By%20%C3%A7a",
        "Join++a*b++x%2By+%C3%A7a",
    ),
    (
        "%A",
        "Join  a*b  x+y ça",
        "Join%20%20a%2Ab%20%20x%2By%20%C3%A7a",
        "Join++a*b++x%2By+%C3%A7a",
    ),
    ("%p", "00491712", "00491712", "00491712"),
    ("%P", "+5555", "%2B5555", "%2B5555"),
    ("%q", "+491712", "%2B491712", "%2B491712"),
    ("%Q", "+5555", "%2B5555", "%2B5555"),
    ("%i", "fake smsc", "fake%20smsc", "fake+smsc"),
    ("%f", "+4917 0", "%2B4917%200", "%2B4917+0"),
    ("%I", UUID, UUID, UUID),
    (
        "%t",
        "2024-02-29 13:07",
        "2024-02-29%2013%3A07",
        "2024-02-29+13:07:42",
    ),
    ("%T", "1709212062", "1709212062", "1709212062"),
    ("%c", "0", "0", "0"),
    ("%C", "ISO-8859-1", "ISO-8859-1", "ISO-8859-1"),
    ("%m", "1", "1", "1"),
    ("%M", "-1", "-1", "-1"),
    // fields_to_dcs: mclass 1 sets 0x10 | 1; 7-bit adds nothing.
    ("%O", "17", "17", "17"),
    (
        "%u",
        "0605040B8423F0",
        "%06%05%04%0B%84%23%F0",
        "%06%05%04%0B%84%23%F0",
    ),
    ("%d", "8", "8", "8"),
    (
        "%D",
        "?smpp?k=v+1&",
        "%3Fsmpp%3Fk%3Dv%2B1%26",
        "%3Fsmpp%3Fk%3Dv%2B1%26",
    ),
    ("%F", "f/1", "f%2F1", "f%2F1"),
    (
        "%R",
        "http://x/?a=1",
        "http%3A%2F%2Fx%2F%3Fa%3D1",
        "http%3A%2F%2Fx%2F%3Fa%3D1",
    ),
    ("%n", "svc", "svc", "svc"),
    ("%o", "acct&1", "acct%261", "acct%261"),
    ("%B", "b i", "b%20i", "b+i"),
    ("%v", "10", "10", "10"),
    ("%V", "1", "1", "1"),
    ("%%", "%", "%", "%"),
    ("%#smpp#k#", "v 1", "v%201", "v+1"),
    ("%#SMPP#k#", "v 1", "v%201", "v+1"),
    ("%#smpp#K#", "", "", ""),
];

#[test]
fn every_escape_in_every_style() {
    for (pattern, text, url, smsbox) in EXPECTED {
        let ctx = full();
        assert_eq!(
            render(pattern, &ctx, Style::Text),
            *text,
            "{pattern} as text"
        );
        assert_eq!(
            render(pattern, &ctx, Style::Url),
            *url,
            "{pattern} in a URL"
        );
        assert_eq!(
            render(pattern, &ctx, Style::Smsbox),
            *smsbox,
            "{pattern} as smsbox"
        );
    }
}

#[test]
fn every_declared_escape_is_tested() {
    for e in ESCAPES {
        let escape = format!("%{}", e.letter);
        assert!(
            EXPECTED.iter().any(|(p, ..)| *p == escape),
            "{escape} has no expected values"
        );
    }
    assert_eq!(ESCAPES.len(), 31, "Kannel 1.4.5 has 31 lettered escapes");
}

#[test]
fn the_docs_table_is_the_declaration() {
    let docs: String = table::markdown_table()
        .lines()
        .map(|line| format!("//! {line}\n"))
        .collect();
    assert!(
        include_str!("mod.rs").contains(&docs),
        "the table in escape/mod.rs is out of date; it should be:\n{docs}"
    );
}

#[test]
fn an_unset_message_shows_what_kannel_shows_for_unset_fields() {
    let ctx = Context::default();
    let all = "%k|%s|%S|%r|%a|%b|%A|%p|%P|%q|%Q|%i|%f|%F|%n|%o|%B|%D|%R|%I|%u|%v|%V|%#g#k#";
    let empty = "|".repeat(23);
    for style in [Style::Text, Style::Url, Style::Smsbox] {
        assert_eq!(render(all, &ctx, style), empty, "{style:?}");
    }
    let numbers = "%t|%T|%c|%C|%m|%M|%d|%O";
    assert_eq!(render(numbers, &ctx, Style::Text), "||-1|UTF-8|-1|-1|-1|00");
    // smsbox's %t of its unset time is gw_gmtime(-1).
    assert_eq!(
        render(numbers, &ctx, Style::Smsbox),
        "1969-12-31+23:59:59||-1|UTF-8|-1|-1|-1|00"
    );
}

#[test]
fn smsbox_keeps_the_coding_its_dcs_assumed() {
    let ctx = Context {
        udh: Some(UDH),
        ..Context::default()
    };
    // Unset coding with a UDH: fields_to_dcs makes it 8-bit (1 << 2).
    assert_eq!(render("%c|%O|%c|%C", &ctx, Style::Smsbox), "-1|04|1|8-BIT");
    assert_eq!(render("%c|%O|%c|%C", &ctx, Style::Text), "-1|04|-1|UTF-8");
}

#[test]
fn dcs_follows_fields_to_dcs() {
    let dcs = |f: fn(&mut Context<'static>)| {
        let mut ctx = Context {
            text: "x",
            coding: 0,
            ..Context::default()
        };
        f(&mut ctx);
        render("%O", &ctx, Style::Text)
    };
    // MWI active, 7-bit text: 0x08 | 0xD0; UCS-2: 0xE0; no text: 0xC0.
    assert_eq!(dcs(|c| c.mwi = 0), "216");
    assert_eq!(dcs(|c| (c.mwi, c.coding) = (2, 2)), "234");
    assert_eq!(dcs(|c| (c.mwi, c.text) = (1, "")), "201");
    // MWI inactive (bit 2): 0xC0 and the low bits.
    assert_eq!(dcs(|c| c.mwi = 5), "193");
    // alt-dcs 1: the 0xF_ group, class 1 by default.
    assert_eq!(dcs(|c| c.alt_dcs = 1), "241");
    assert_eq!(dcs(|c| (c.alt_dcs, c.mclass, c.coding) = (1, 2, 1)), "246");
    // Compression forces the general group; UCS-2 too.
    assert_eq!(dcs(|c| (c.alt_dcs, c.compress) = (1, 1)), "32");
    assert_eq!(dcs(|c| (c.alt_dcs, c.coding, c.mclass) = (1, 2, 0)), "24");
    assert_eq!(dcs(|c| c.mclass = 3), "19");
}

#[test]
fn words_split_where_each_side_splits() {
    let ctx = Context {
        text: "a\u{a0}b\x0bc",
        ..Context::default()
    };
    // Unicode whitespace includes the no-break space; C's isspace does not.
    assert_eq!(render("%k|%s|%r", &ctx, Style::Text), "a|b|c");
    assert_eq!(render("%k|%s|%r", &ctx, Style::Smsbox), "a%C2%A0b|c|");
}

#[test]
fn s_takes_words_r_does_not() {
    let ctx = Context {
        text: "FOO BAR FOOBAR BAZ",
        ..Context::default()
    };
    assert_eq!(
        render("%s|%r|%S|%r", &ctx, Style::Text),
        "BAR|FOOBAR BAZ|FOOBAR|BAZ"
    );
    assert_eq!(
        render("%s%s%s%s|%r|", &ctx, Style::Smsbox),
        "BARFOOBARBAZ||"
    );
}

#[test]
fn binary_data_reaches_urls_and_smsbox_as_bytes() {
    let ctx = Context {
        text: "(binary)",
        data: Some(b"\x00\xff a"),
        ..Context::default()
    };
    assert_eq!(render("%b", &ctx, Style::Text), "(binary)");
    assert_eq!(render("%b", &ctx, Style::Url), "%00%FF%20a");
    assert_eq!(render("%b|%k", &ctx, Style::Smsbox), "%00%FF+a|%00%FF");
}

#[test]
fn validity_and_deferred_count_minutes_towards_zero() {
    let ctx = Context {
        validity: TIME - 90,
        deferred: TIME - 30,
        now: Some(TIME),
        ..Context::default()
    };
    assert_eq!(render("%v|%V", &ctx, Style::Smsbox), "-1|0");
}

#[test]
fn smsbox_shows_no_unix_time_for_its_unset_time() {
    let ctx = Context {
        time: Some(-1_000_000),
        ..Context::default()
    };
    assert_eq!(render("%T|%t", &ctx, Style::Smsbox), "|1969-12-31+23:59:59");
    assert_eq!(render("%T|%t", &ctx, Style::Text), "-1|1969-12-31 23:59");
}

#[test]
fn lenient_patterns_render_unknown_escapes_as_written() {
    let p = Pattern::lenient("%x|%k|%");
    let ctx = Context {
        text: "hi",
        ..Context::default()
    };
    assert_eq!(p.render(&ctx, Style::Smsbox), "%x|hi|%");
}

#[test]
fn a_box_protocol_sms_gives_smsbox_s_view() {
    let sms = boxproto::Sms {
        sender: Some("+4917".into()),
        receiver: Some("5555".into()),
        msgdata: Some("hi there".into()),
        coding: boxproto::Coding::SevenBit,
        time: 5,
        ..boxproto::Sms::default()
    };
    let p = Pattern::compile("%p>%P %a %c %T %I").unwrap();
    let mo = boxproto::Sms {
        sms_type: boxproto::SmsType::Mo,
        ..sms.clone()
    };
    let fields = SmsFields::new(&mo);
    let smsbox = p.render(&fields.context(), Style::Smsbox);
    assert_eq!(smsbox, "%2B4917>5555 hi+there 0 5 ");
    // A report's phone is its receiver.
    let report = boxproto::Sms {
        sms_type: boxproto::SmsType::ReportMo,
        ..sms
    };
    let fields = SmsFields::new(&report);
    let text = p.render(&fields.context(), Style::Text);
    assert_eq!(text, "5555>+4917 hi there 0 5 ");
}

fn any_context() -> impl Strategy<Value = (String, Vec<u8>, Vec<String>, Vec<i32>)> {
    (
        any::<String>(),
        proptest::collection::vec(any::<u8>(), 0..40),
        proptest::collection::vec(any::<String>(), 11),
        proptest::collection::vec(any::<i32>(), 8),
    )
}

fn context<'a>(text: &'a str, bytes: &'a [u8], s: &'a [String], n: &[i32]) -> Context<'a> {
    Context {
        text,
        data: Some(bytes),
        sender: &s[0],
        receiver: &s[1],
        smsc_id: Some(&s[2]),
        smsc_number: Some(&s[3]),
        foreign_id: Some(&s[4]),
        service: Some(&s[5]),
        account: Some(&s[6]),
        binfo: Some(&s[7]),
        meta_data: Some(&s[8]),
        dlr_url: Some(&s[9]),
        charset: Some(&s[10]),
        udh: Some(bytes),
        uuid: Some(Uuid::from_u128(u128::from(n[0].unsigned_abs()))),
        time: Some(i64::from(n[0]) * 1_000_000),
        coding: n[1],
        mclass: n[2],
        mwi: n[3],
        compress: n[4],
        alt_dcs: n[5],
        validity: i64::from(n[6]),
        deferred: i64::from(n[7]),
        dlr_mask: n[7],
        now: Some(0),
    }
}

/// Every escape once, nothing else.
fn every_escape() -> String {
    let mut all: String = ESCAPES.iter().map(|e| format!("%{}", e.letter)).collect();
    all.push_str("%#smpp#k#");
    all
}

proptest! {
    #[test]
    fn rendering_never_panics((text, bytes, s, n) in any_context(), pattern in ".*") {
        let ctx = context(&text, &bytes, &s, &n);
        let every = Pattern::compile(&every_escape()).unwrap();
        let lenient = Pattern::lenient(&pattern);
        for style in [Style::Text, Style::Url, Style::Smsbox] {
            let _ = every.render(&ctx, style);
            let _ = lenient.render(&ctx, style);
        }
    }

    #[test]
    fn url_style_lets_no_value_through_unencoded((text, bytes, s, n) in any_context()) {
        let ctx = context(&text, &bytes, &s, &n);
        let rendered = Pattern::compile(&every_escape()).unwrap().render(&ctx, Style::Url);
        let mut chars = rendered.chars();
        while let Some(c) = chars.next() {
            if c == '%' {
                let hex: String = chars.by_ref().take(2).collect();
                prop_assert!(hex.len() == 2 && hex.chars().all(|h| h.is_ascii_hexdigit()), "{}", rendered);
            } else {
                prop_assert!(c.is_ascii_alphanumeric() || "-._~".contains(c), "{:?} in {}", c, rendered);
            }
        }
    }

    #[test]
    fn smsbox_encoded_values_hold_only_its_safe_characters(text in any::<String>(), s in any::<String>()) {
        let ctx = Context { text: &text, sender: &s, receiver: &s, ..Context::default() };
        let rendered = render("%k%s%r%a%b%p%P%q%Q", &ctx, Style::Smsbox);
        prop_assert!(rendered.chars().all(|c| c.is_ascii_alphanumeric() || "-_.!~*'()+%".contains(c)), "{}", rendered);
    }
}
