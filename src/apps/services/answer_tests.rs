use super::*;
use bytes::Bytes;
use hyper::header::HeaderValue;
use hyper::StatusCode;

fn response(ct: &str, body: &[u8], headers: &[(&'static str, &'static str)]) -> HttpResponse {
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.insert(*name, HeaderValue::from_static(value));
    }
    HttpResponse {
        status: StatusCode::OK,
        content_type: Some(ct.to_owned()),
        body: Bytes::copy_from_slice(body),
        headers: map,
    }
}

fn accepting() -> AnswerRules<'static> {
    AnswerRules {
        accept_x_kannel_headers: true,
        ..AnswerRules::default()
    }
}

#[test]
fn plain_text_is_the_reply_as_it_came() {
    let (body, mt) = read(&response("text/plain", b" hi there\n", &[]), &accepting()).unwrap();
    assert_eq!(body, Body::Text(" hi there\n".into()));
    assert_eq!(mt, MtReply::default());
}

#[test]
fn a_charset_is_converted_and_alt_charset_stands_in_for_none() {
    let latin1 = b"caf\xe9";
    let (body, _) = read(
        &response("text/plain; charset=\"ISO-8859-1\"", latin1, &[]),
        &accepting(),
    )
    .unwrap();
    assert_eq!(body, Body::Text("café".into()));
    let rules = AnswerRules {
        alt_charset: Some("ISO-8859-1"),
        ..accepting()
    };
    let (body, _) = read(&response("text/plain", latin1, &[]), &rules).unwrap();
    assert_eq!(body, Body::Text("café".into()));
    let unknown = response("text/plain; charset=klingon", b"x", &[]);
    assert_eq!(
        read(&unknown, &accepting()),
        Err(Failure::CouldNotRepresent)
    );
}

#[test]
fn html_is_cut_between_prefix_and_suffix_and_its_tags_removed() {
    let page = b"<html><b>skip</b><!--start--><p>Your <i>balance</i>: 5</p><!--end-->x</html>";
    let rules = AnswerRules {
        prefix: Some("<!--START-->"),
        suffix: Some("<!--end-->"),
        ..accepting()
    };
    let (body, _) = read(&response("text/html", page, &[]), &rules).unwrap();
    assert_eq!(body, Body::Text("Your balance: 5".into()));
}

#[test]
fn octet_streams_are_8_bit_only_with_x_kannel_headers_accepted() {
    let octets = response("application/octet-stream", &[0x41, 1, 255], &[]);
    let (body, mt) = read(&octets, &accepting()).unwrap();
    assert_eq!(body, Body::Binary(vec![0x41, 1, 255]));
    assert_eq!(mt.coding, Some(1));
    // Refused, the reply is 7-bit text, as from smsbox 1.4.5 (measured:
    // fakesmsc gets `???` text).
    let (body, mt) = read(&octets, &AnswerRules::default()).unwrap();
    assert_eq!(body, Body::Text("A\u{1}?".into()));
    assert_eq!(mt.coding, None);
}

#[test]
fn other_types_cannot_be_represented() {
    let json = response("application/json", b"{}", &[]);
    assert_eq!(read(&json, &accepting()), Err(Failure::CouldNotRepresent));
}

#[test]
fn x_kannel_headers_are_obeyed_only_when_accepted() {
    let headers = [
        ("x-kannel-from", " 12345 "),
        ("x-kannel-smsc", "other"),
        ("x-kannel-udh", "0605040B8423F0"),
        ("x-kannel-dlr-mask", "3"),
        ("x-kannel-dlr-url", "http://h/dlr?%d"),
        ("x-kannel-coding", "2"),
        ("x-kannel-mclass", "1x"),
    ];
    let answer = response("text/plain", b"hello", &headers);
    let (body, mt) = read(&answer, &accepting()).unwrap();
    assert_eq!(body, Body::Text("hello".into()));
    assert_eq!(mt.sender.as_deref(), Some("12345"));
    assert_eq!(mt.smsc_id.as_deref(), Some("other"));
    assert_eq!(mt.udh, Some(vec![6, 5, 4, 0x0B, 0x84, 0x23, 0xF0]));
    assert_eq!(mt.dlr_mask, Some(3));
    assert_eq!(mt.coding, Some(2));
    let options = mt.options.unwrap();
    assert_eq!(options.dlr_url.as_deref(), Some("http://h/dlr?%d"));
    assert_eq!(options.mclass, 1);

    let (_, mt) = read(&answer, &AnswerRules::default()).unwrap();
    assert_eq!(mt, MtReply::default(), "refused: nothing changes");
}

#[test]
fn accepted_headers_make_the_coding_7_bit_unless_they_say_otherwise() {
    // url_result_thread starts from 7-bit, so a UDH alone does not make
    // the reply 8-bit.
    let answer = response("text/plain", b"ab", &[("x-kannel-udh", "%06%05")]);
    let (body, mt) = read(&answer, &accepting()).unwrap();
    assert_eq!(body, Body::Text("ab".into()));
    assert_eq!(mt.udh, Some(vec![6, 5]));
    assert_eq!(mt.coding, None);
    let (body, mt) = read(&answer, &AnswerRules::default()).unwrap();
    assert_eq!(body, Body::Text("ab".into()));
    assert_eq!(mt.udh, None, "refused");
}

#[test]
fn an_xml_answer_is_its_ud_with_its_elements_obeyed_only_when_accepted() {
    let doc = br#"<?xml version="1.0" encoding="ISO-8859-1"?>
<message><submit><ud>caf%E9</ud><oa><number>777</number></oa>
<dcs><coding>0</coding></dcs></submit></message>"#;
    let answer = response("text/xml", doc, &[("X-Kannel-From", "999")]);
    let (body, mt) = read(&answer, &accepting()).unwrap();
    assert_eq!(body, Body::Text("café".into()));
    assert_eq!(
        mt.sender.as_deref(),
        Some("777"),
        "the document, not the header"
    );
    let (body, mt) = read(&answer, &AnswerRules::default()).unwrap();
    assert_eq!(body, Body::Text("café".into()));
    assert_eq!(
        mt,
        MtReply::default(),
        "refused without accept-x-kannel-headers"
    );
}

#[test]
fn an_xml_answer_that_does_not_parse_is_the_reply_as_it_came() {
    let (body, _) = read(&response("text/xml", b"<oops", &[]), &accepting()).unwrap();
    assert_eq!(body, Body::Text("<oops".into()));
}
