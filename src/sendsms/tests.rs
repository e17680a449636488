//! The whole path from a request to a [`Request`], each answer as smsbox
//! 1.4.5 gave it for the same request.

use super::*;

const NOW: i64 = 1_795_700_040;

fn users() -> Vec<SendsmsUser> {
    let mut u2 = SendsmsUser::new("u2", "p2");
    u2.default_sender = Some("9999".into());
    u2.default_smsc = Some("tigo".into());
    let mut compat = SendsmsUser::new("c", "p");
    compat.smsbox_compat = true;
    vec![SendsmsUser::new("u", "p"), u2, compat]
}

fn get(query: &str) -> Result<Request, Refusal> {
    let incoming = Incoming {
        post: false,
        query: query.as_bytes(),
        headers: &[],
        body: b"",
        client_ip: None,
    };
    parse(&users(), Defaults::default(), &incoming, NOW)
}

fn post(query: &str, headers: &[(&str, &[u8])], body: &[u8]) -> Result<Request, Refusal> {
    let incoming = Incoming {
        post: true,
        query: query.as_bytes(),
        headers,
        body,
        client_ip: None,
    };
    parse(&users(), Defaults::default(), &incoming, NOW)
}

fn shown(result: Result<Request, Refusal>) -> String {
    match result {
        Err(r) => format!("{} {r}", r.status()),
        Ok(r) => format!("accepted {r:?}"),
    }
}

/// Each answer as smsbox 1.4.5 gave it for the same query.
#[test]
fn refusals_are_smsboxs_in_smsboxs_order() {
    let ok = "username=u&password=p&from=5&to=1&text=x";
    for (query, expected) in [
        ("", "403 Authorization failed for sendsms"),
        ("username=u", "403 Authorization failed for sendsms"),
        (
            "username=u&password=bad&to=1&text=x",
            "403 Authorization failed for sendsms",
        ),
        (
            "username=u&password=p&text=x&coding=9",
            "400 Missing receiver number, rejected",
        ),
        (
            "username=u&password=p&to=&text=x&from=5",
            "400 Empty receiver number not allowed, rejected",
        ),
        (
            "username=u&password=p&to=1&text=x&coding=9",
            "400 Sender missing and no global set, rejected",
        ),
        (
            "username=u&password=p&to=1&text=x&from=",
            "400 Sender missing and no global set, rejected",
        ),
        // The receivers are checked before the sender.
        (
            "username=u&password=p&to=abc&text=x",
            "400 Number(s) has/have been denied by white- and/or black-lists.",
        ),
        (
            "username=u&password=p&to=+++&from=5&text=x",
            "400 Number(s) has/have been denied by white- and/or black-lists.",
        ),
        // The UDH before the receivers; account, then dlr-url, after the
        // sender.
        (
            "username=u&password=p&from=5&to=abc&text=x&udh=%05",
            "400 UDH field misformed, rejected",
        ),
        (
            "username=u&password=p&to=1&text=x&account=a%0Ab&dlr-url=ftp:x",
            "400 Sender missing and no global set, rejected",
        ),
        (
            "username=u&password=p&from=5&to=1&text=x&account=a%0Ab&dlr-url=ftp:xxxxxxxx&coding=7",
            "400 Account field misformed or too long, rejected",
        ),
        (
            "username=u&password=p&from=5&to=1&text=x&dlr-url=ftp:xxxxxxxx&coding=7",
            "400 DLR-URL field misformed, rejected",
        ),
    ] {
        assert_eq!(shown(get(query)), expected, "{query}");
    }
    for (extra, expected) in [
        ("udh=%06&dlr-mask=99", "UDH"),
        ("udh=%06%05", "UDH"),
        ("dlr-mask=67", "DLR-Mask"),
        ("dlr-mask=-2", "DLR-Mask"),
        ("mwi=9&dlr-mask=99", "DLR-Mask"),
        ("mwi=-2&mclass=-2", "MClass"),
        ("pid=999&mclass=9", "MClass"),
        ("mwi=9&pid=999", "PID"),
        ("coding=9&pid=999", "PID"),
        ("rpi=3", "RPI"),
        ("alt-dcs=3", "Alt-DCS"),
        ("mwi=8", "MWI"),
        ("coding=3", "Coding"),
        ("coding=-2", "Coding"),
        ("validity=-1&coding=9", "Coding"),
        ("compress=3", "Compress"),
        ("validity=-5", "Validity"),
        ("deferred=-5", "Deferred"),
        ("coding=9&priority=9", "Coding"),
        ("priority=5", "Priority"),
        ("dlr-url=http:/", "DLR-URL"),
    ] {
        assert_eq!(
            shown(get(&format!("{ok}&{extra}"))),
            format!("400 {expected} field misformed, rejected"),
            "{extra}"
        );
    }
    for extra in [
        "charset=FOO",
        "coding=2&charset=FOO",
        "priority=-1&charset=FOO",
    ] {
        assert_eq!(
            shown(get(&format!("{ok}&{extra}"))),
            "400 Charset or body misformed, rejected",
            "{extra}"
        );
    }
    assert_eq!(
        shown(get(&format!("{ok}&priority=9&charset=FOO"))),
        "400 Priority field misformed, rejected"
    );
    let mut long_udh = [0u8; 144];
    long_udh[0] = 143;
    let udh: String = long_udh.iter().map(|b| format!("%{b:02X}")).collect();
    assert_eq!(
        shown(get(&format!("{ok}&udh={udh}"))),
        "400 UDH field is too long, rejected"
    );
}

#[test]
fn what_smsbox_accepts_is_accepted() {
    let ok = "username=u&password=p&from=5&to=1&text=x";
    for extra in [
        "coding=abc",
        "coding=-1",
        "mclass=abc",
        "dlr-mask=abc",
        "dlr-mask=66",
        "dlr-mask=0",
        "validity=abc",
        "validity=-1&deferred=-1",
        "priority=abc",
        "priority=0",
        "udh=%02%00%00",
        "smsc=nosuch",
        "meta-data=abc",
        "coding=1&charset=FOO",
        "account=a-64-octets-at-most",
        "dlr-url=HTTPS://h/x",
    ] {
        assert!(get(&format!("{ok}&{extra}")).is_ok(), "{extra}");
    }
    // smsbox's aliases for the credentials, and an empty text.
    assert!(get("user=u&pass=p&to=1&text=&from=5").is_ok());
    assert!(get("username=u&password=p&to=1&from=5").is_ok());
}

#[test]
fn the_users_defaults_and_forced_values_apply() {
    let r = get("username=u2&password=p2&to=1&text=x").unwrap();
    assert_eq!((r.sender.as_str(), r.backend.as_str()), ("9999", "tigo"));
    assert_eq!(r.smsc_id.as_deref(), Some("tigo"));
    let r = get("username=u&password=p&from=5&to=1&text=x").unwrap();
    assert_eq!((r.backend.as_str(), r.smsc_id), (DEFAULT_BACKEND, None));
    assert_eq!(r.service, "u", "the service is the username...");
    let mut forced = users();
    forced[0].name = Some("shop-api".into());
    forced[0].forced_sender = Some("8500".into());
    forced[0].forced_smsc = Some("mtn".into());
    let incoming = Incoming {
        post: false,
        query: b"username=u&password=p&from=5&to=1&text=x&smsc=tigo",
        headers: &[],
        body: b"",
        client_ip: None,
    };
    let r = parse(&forced, Defaults::default(), &incoming, NOW).unwrap();
    assert_eq!((r.sender.as_str(), r.backend.as_str()), ("8500", "mtn"));
    assert_eq!(r.service, "shop-api", "...unless the user has a name");
    // smsbox's global-sender comes last, after the user's default.
    let global = Defaults {
        global_sender: Some("1111"),
    };
    let incoming = Incoming {
        post: false,
        query: b"username=u&password=p&to=1&text=x",
        headers: &[],
        body: b"",
        client_ip: None,
    };
    let r = parse(&users(), global, &incoming, NOW).unwrap();
    assert_eq!(r.sender, "1111");
    let incoming = Incoming {
        query: b"username=u2&password=p2&to=1&text=x",
        ..incoming
    };
    assert_eq!(
        parse(&users(), global, &incoming, NOW).unwrap().sender,
        "9999"
    );
}

/// The data-corrupting cases: a UDH without a coding is 8-bit data, and
/// its bytes go exactly as given.
#[test]
fn a_udh_without_coding_is_eight_bit_data_kept_byte_for_byte() {
    let r =
        get("username=u&password=p&from=5&to=1&text=%FF%00ab&udh=%06%05%04%0B%84%23%F0").unwrap();
    assert_eq!(r.coding, 1);
    assert_eq!(r.parts[0].payload.as_deref(), Some(&b"\xff\x00ab"[..]));
    let r = get("username=u&password=p&from=5&to=1&text=ab&udh=%06%05%04%0B%84%23%F0&coding=0")
        .unwrap();
    assert_eq!(r.coding, 0, "an explicit coding=0 is honoured");
}

#[test]
fn text_is_read_by_coding_and_charset() {
    let base = "username=u&password=p&from=5&to=1";
    let r = get(&format!("{base}&text=h%E9llo&charset=ISO-8859-1")).unwrap();
    assert_eq!((r.parts[0].text.as_str(), r.coding), ("héllo", 0));
    assert_eq!(
        shown(get(&format!("{base}&text=h%E9llo"))),
        "400 Charset or body misformed, rejected"
    );
    let r = get(&format!("{base}&text=%00h%00%E9&coding=2")).unwrap();
    assert_eq!((r.parts[0].text.as_str(), r.coding), ("hé", 2));
    assert_eq!(r.parts[0].payload.as_deref(), Some(&b"\x00h\x00\xe9"[..]));
    let r = get(&format!("{base}&text=h%C3%A9&coding=2&charset=UTF-8")).unwrap();
    assert_eq!(r.parts[0].payload.as_deref(), Some(&b"\x00h\x00\xe9"[..]));
    let r = get(&format!("{base}&text=%FF%00&coding=1&udh=%02%00%00")).unwrap();
    assert_eq!(r.parts[0].payload.as_deref(), Some(&[0xff, 0][..]));
    assert_eq!(r.udh.as_deref(), Some(&[2, 0, 0][..]));
    assert_eq!(r.coding, 1);
}

/// Kannel converts nothing for an empty text or to the charset the text
/// already is in, so neither is checked.
#[test]
fn an_empty_text_or_the_target_charset_is_not_converted() {
    let base = "username=u&password=p&from=5&to=1";
    assert!(get(&format!("{base}&text=&charset=FOO")).is_ok());
    assert!(get(&format!("{base}&charset=FOO&coding=2")).is_ok());
    let r = get(&format!("{base}&text=%00h&coding=2&charset=utf-16be")).unwrap();
    assert_eq!(r.parts[0].payload.as_deref(), Some(&b"\x00h"[..]));
    // Not UTF-8 though it says so: refused by rapidbox, sent as smsbox does
    // with smsbox_compat.
    assert_eq!(
        shown(get(&format!("{base}&text=h%E9&charset=UTF-8"))),
        "400 Charset or body misformed, rejected"
    );
    let r = get("username=c&password=p&from=5&to=1&text=h%E9&charset=UTF-8").unwrap();
    assert_eq!(r.parts[0].text, "h", "Kannel drops an incomplete sequence");
}

#[test]
fn non_gsm_text_is_ucs2_unless_coding_0_or_smsbox_compat() {
    let text = "text=%D0%9F%D1%80%D0%B8";
    let r = get(&format!("username=u&password=p&from=5&to=1&{text}")).unwrap();
    assert_eq!((r.coding, r.parts[0].text.as_str()), (2, "При"));
    let r = get(&format!(
        "username=u&password=p&from=5&to=1&{text}&coding=0"
    ))
    .unwrap();
    assert_eq!((r.coding, r.parts[0].text.as_str()), (0, "???"));
    let r = get(&format!("username=c&password=p&from=5&to=1&{text}")).unwrap();
    assert_eq!((r.coding, r.parts[0].text.as_str()), (0, "???"));
}

#[test]
fn seven_bit_text_is_what_kannels_round_trip_through_gsm_leaves() {
    let r =
        get("username=c&password=p&from=5&to=1&text=%C3%A7a+%F0%9F%98%80+%7B%E2%82%AC%7D").unwrap();
    assert_eq!(r.parts[0].text, "Ça ???? {€}");
}

#[test]
fn undecodable_text_is_refused_unless_smsbox_compat() {
    for extra in [
        "text=h%E9",
        "text=%00h%00&coding=2&text=x",
        "text=%00&coding=2",
    ] {
        assert_eq!(
            shown(get(&format!("username=u&password=p&from=5&to=1&{extra}"))),
            "400 Charset or body misformed, rejected",
            "{extra}"
        );
    }
    let r = get("username=c&password=p&from=5&to=1&text=%00&coding=2").unwrap();
    assert_eq!(r.parts[0].payload.as_deref(), Some(&[0][..]));
    let r = get("username=c&password=p&from=5&to=1&text=h%E9").unwrap();
    assert_eq!(r.parts[0].text, "h");
    let r = get("username=c&password=p&from=5&to=1&text=%A3x%80").unwrap();
    assert_eq!(
        r.parts[0].text, "£x?",
        "a lone byte is its Latin-1 character"
    );
}

#[test]
fn a_long_text_is_whole_by_default_and_one_sms_under_smsbox_compat() {
    let text: String = (0..400)
        .map(|i| char::from(b'0' + (i % 10) as u8))
        .collect();
    let r = get(&format!("username=u&password=p&from=5&to=1&text={text}")).unwrap();
    assert_eq!(r.parts.len(), 1);
    assert_eq!(r.parts[0].text.len(), 400);
    let r = get(&format!("username=c&password=p&from=5&to=1&text={text}")).unwrap();
    assert_eq!(r.parts[0].text.len(), 160);
}

#[test]
fn split_parts_ask_for_reports_only_on_the_first() {
    let mut users = users();
    users[0].max_messages = Some(3);
    let text: String = "x".repeat(400);
    let query =
        format!("username=u&password=p&from=5&to=1+2&text={text}&dlr-mask=3&dlr-url=http://h/d");
    let incoming = Incoming {
        post: false,
        query: query.as_bytes(),
        headers: &[],
        body: b"",
        client_ip: None,
    };
    let r = parse(&users, Defaults::default(), &incoming, NOW).unwrap();
    let mut id = 0;
    let messages = r.messages(|| {
        id += 1;
        id
    });
    let shape: Vec<(String, usize, i32, bool)> = messages
        .iter()
        .map(|m| {
            let k = m.kannel.as_ref().unwrap();
            let dlr_url = k.mt_options.as_ref().unwrap().dlr_url.is_some();
            (
                m.connection.address.clone(),
                m.text.len(),
                k.dlr_mask,
                dlr_url,
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("1".to_owned(), 160, 3, true),
            ("1".to_owned(), 160, 0, false),
            ("1".to_owned(), 80, 0, false),
            ("2".to_owned(), 160, 3, true),
            ("2".to_owned(), 160, 0, false),
            ("2".to_owned(), 80, 0, false),
        ]
    );
}

#[test]
fn mt_fields_are_kept_with_validity_and_deferred_made_absolute() {
    let r = get(
        "username=u&password=p&from=5&to=1&text=x&mclass=1&mwi=2&pid=65&alt-dcs=1&rpi=1\
         &validity=1440&deferred=0&priority=3&account=a&binfo=b&meta-data=%3Fsmpp%3Fx%3D1\
         &dlr-mask=27&dlr-url=http%3A%2F%2Fh%2Fd%3Ft%3D%25d&compress=1",
    )
    .unwrap();
    let o = &r.options;
    assert_eq!(
        (o.mclass, o.mwi, o.pid, o.alt_dcs, o.rpi, o.priority, o.compress),
        (1, 2, 65, 1, 1, 3, 1)
    );
    // As smsbox put them on the wire for validity=1440, deferred=0.
    assert_eq!((o.validity, o.deferred), (1_795_786_440, 1_795_700_040));
    assert_eq!(o.dlr_url.as_deref(), Some("http://h/d?t=%d"));
    assert_eq!(o.meta_data.as_deref(), Some("?smpp?x=1"));
    assert_eq!(
        (o.account.as_deref(), o.binfo.as_deref()),
        (Some("a"), Some("b"))
    );
    assert_eq!(r.dlr_mask, 27);
}

#[test]
fn posts_are_read_by_content_type_as_smsbox_reads_them() {
    let auth: [(&str, &[u8]); 3] = [
        ("X-Kannel-Username", b"u"),
        ("X-Kannel-Password", b"p"),
        ("X-Kannel-From", b"5"),
    ];
    let with = |extra: &[(&'static str, &'static [u8])]| -> Vec<(&'static str, &'static [u8])> {
        auth.iter().chain(extra).copied().collect()
    };
    // text/plain: the headers and the body; the query does not count.
    let headers = with(&[("X-Kannel-To", b"1\t2"), ("Content-Type", b"text/plain")]);
    let r = post("", &headers, b"hello").unwrap();
    assert_eq!((r.receivers.len(), r.coding), (2, 0));
    let headers = [("Content-Type", &b"text/plain"[..])];
    assert_eq!(
        shown(post("username=u&password=p&from=5&to=1", &headers, b"x")),
        "403 Authorization failed for sendsms"
    );
    // octet-stream (or no content type): 8-bit data, bytes kept.
    let headers = with(&[("X-Kannel-To", b"1"), ("X-Kannel-Meta-Data", b"?smpp?a=b")]);
    let r = post("", &headers, b"\xff\x00ab").unwrap();
    assert_eq!(r.coding, 1);
    assert_eq!(r.parts[0].payload.as_deref(), Some(&b"\xff\x00ab"[..]));
    assert_eq!(r.options.meta_data.as_deref(), Some("?smpp?a=b"));
    // What smsbox refuses, and with which words.
    let to = with(&[("X-Kannel-To", b"1"), ("Content-Type", b"text/html")]);
    assert_eq!(
        shown(post("", &to, b"<b>x</b>")),
        "415 Unsupported content-type, rejected"
    );
    let json = with(&[("X-Kannel-To", b"1"), ("Content-Type", b"application/json")]);
    assert_eq!(shown(post("", &json, b"{}")), "400 Invalid content-type");
    let no_to = with(&[("Content-Type", b"text/plain")]);
    assert_eq!(
        shown(post("", &no_to, b"x")),
        "400 Missing receiver(s) number(s), rejected"
    );
    // A form: rapidbox reads it, smsbox (and smsbox_compat) refuses it.
    let form = [("Content-Type", &b"application/x-www-form-urlencoded"[..])];
    assert!(post("", &form, b"username=u&password=p&from=5&to=1&text=x").is_ok());
    assert_eq!(
        shown(post("", &form, b"username=c&password=p&from=5&to=1&text=x")),
        "400 Invalid content-type"
    );
}

#[test]
fn an_xml_post_sends_to_every_da() {
    let doc = b"<?xml version=\"1.0\"?><message><submit>\
        <da><number>130</number></da><da><number>131</number></da><oa><number>5</number></oa>\
        <ud>hello+xml</ud><from><user>u</user><pass>p</pass></from>\
        <dcs><compress>1</compress></dcs></submit></message>";
    let headers = [("Content-Type", &b"text/xml"[..])];
    let r = post("", &headers, doc).unwrap();
    assert_eq!(r.receivers, ["130", "131"]);
    assert_eq!(r.parts[0].text, "hello xml");
    assert_eq!((r.coding, r.options.compress), (0, 1));
}

#[test]
fn a_user_denied_from_an_address_fails_authorization() {
    let mut users = users();
    users[0].user_deny_ip = Some("*.*.*.*".into());
    users[0].user_allow_ip = Some("127.0.0.1".into());
    let from = |ip: &str| Incoming {
        post: false,
        query: b"username=u&password=p&from=5&to=1&text=x",
        headers: &[],
        body: b"",
        client_ip: ip.parse().ok(),
    };
    assert!(parse(&users, Defaults::default(), &from("127.0.0.1"), NOW).is_ok());
    assert_eq!(
        shown(parse(&users, Defaults::default(), &from("10.0.0.1"), NOW)),
        "403 Authorization failed for sendsms"
    );
}

mod arbitrary_input {
    use super::*;
    use proptest::prelude::*;

    const TYPES: [&str; 7] = [
        "text/plain",
        "application/octet-stream",
        "text/xml",
        "text/html",
        "application/x-www-form-urlencoded",
        "text/plain; charset=ISO-8859-1",
        "application/json",
    ];

    proptest! {
        /// Whatever a client sends, the answer is a request or a refusal,
        /// never a panic; and a compat user gets the same verdict kinds.
        #[test]
        fn any_request_is_answered_without_panicking(
            query in proptest::collection::vec(any::<u8>(), 0..200),
            body in proptest::collection::vec(any::<u8>(), 0..300),
            kind in 0..TYPES.len(),
            post in any::<bool>(),
            coding in -2i32..4,
            max in proptest::option::of(1u32..5),
        ) {
            let mut users = users();
            users[0].max_messages = max;
            users[0].concatenation = max.is_some_and(|m| m % 2 == 0);
            users[0].split_chars = Some(" ".into());
            users[0].header = Some("H".into());
            let coding = coding.to_string();
            let headers: Vec<(&str, &[u8])> = vec![
                ("Content-Type", TYPES[kind].as_bytes()),
                ("X-Kannel-Username", b"c"),
                ("X-Kannel-Password", b"p"),
                ("X-Kannel-From", b"5"),
                ("X-Kannel-To", b"1 2"),
                ("X-Kannel-Coding", coding.as_bytes()),
                ("X-Kannel-UDH", &body[..body.len().min(3)]),
            ];
            let mut full_query = b"username=u&password=p&from=5&to=1&text=".to_vec();
            full_query.extend_from_slice(&query);
            let incoming = Incoming {
                post,
                query: &full_query,
                headers: &headers,
                body: &body,
                client_ip: None,
            };
            if let Ok(request) = parse(&users, Defaults::default(), &incoming, NOW) {
                let mut id = 0;
                let messages = request.messages(|| { id += 1; id });
                prop_assert_eq!(
                    messages.len(),
                    request.receivers.len() * request.parts.len()
                );
                prop_assert!(request.parts.len() <= 5);
            }
        }
    }
}
