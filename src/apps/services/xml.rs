//! The `post-xml` request smsbox 1.4.5 makes (`obey_request`,
//! `TRANSTYPE_POST_XML`): Kannel's `<message><submit>` document, with its
//! odd indentation kept byte for byte.

use bytes::Bytes;
use hyper::Method;

use super::fetch::{timestamp, PostFields, Request};
use crate::text::coding;

/// One element as smsbox writes it: `"  \t\t<tag>value</tag>\n"`.
fn element(out: &mut String, tag: &str, value: &str) {
    out.push_str("  \t\t<");
    out.push_str(tag);
    out.push('>');
    out.push_str(value);
    out.push_str("</");
    out.push_str(tag);
    out.push_str(">\n");
}

/// [`element`] with the value escaped as libxml2's
/// `xmlEncodeEntitiesReentrant` does for the characters that matter here.
fn escaped(out: &mut String, tag: &str, value: &str) {
    let mut v = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '&' => v.push_str("&amp;"),
            '<' => v.push_str("&lt;"),
            '>' => v.push_str("&gt;"),
            '\r' => v.push_str("&#13;"),
            // Not an XML character: libxml2 leaves it out.
            c if c < ' ' && c != '\t' && c != '\n' => {}
            c if !c.is_ascii() => v.push_str(&format!("&#x{:X};", c as u32)),
            c => v.push(c),
        }
    }
    element(out, tag, &v);
}

/// The POST of `mo` as XML to `url`. `body` in `mo` is the message data
/// (keyword already stripped when the service says so).
pub fn post_xml(url: String, send_sender: bool, mo: PostFields<'_>) -> Request {
    let content_type = if mo.coding == coding::UCS2 {
        "text/xml; charset=\"ISO-8859-1\"".to_owned()
    } else {
        match mo.charset {
            Some(cs) => format!("text/xml; charset=\"{cs}\""),
            None => "text/xml".to_owned(),
        }
    };
    let headers = vec![("Content-Type", content_type), ("Date", timestamp(mo.now))];
    let encoding = match mo.charset {
        Some(cs) if mo.coding != coding::UCS2 => cs,
        _ => "ISO-8859-1",
    };
    let mut xml = format!("<?xml version=\"1.0\" encoding=\"{encoding}\"?>\n");
    xml.push_str("<message cid=\"1\">\n\t<submit>\n");
    if send_sender {
        let mut oa = String::new();
        escaped(&mut oa, "number", mo.phone);
        element(&mut xml, "oa", &oa);
    }
    let mut da = String::new();
    escaped(&mut da, "number", mo.reply_from);
    element(&mut xml, "da", &da);
    if let Some(udh) = mo.udh.filter(|u| !u.is_empty()) {
        let mut encoded = String::new();
        crate::escape::kannel_url_encode(udh, &mut encoded);
        escaped(&mut xml, "udh", &encoded);
    }
    if !mo.body.is_empty() {
        let mut encoded = String::new();
        crate::escape::kannel_url_encode(&mo.body, &mut encoded);
        escaped(&mut xml, "ud", &encoded);
    }
    let number = |out: &mut String, tag: &str, value: i32| {
        if value != -1 {
            element(out, tag, &value.to_string());
        }
    };
    number(&mut xml, "pid", mo.field(|f| f.pid));
    number(&mut xml, "rpi", mo.field(|f| f.rpi));
    let mut dcs = String::new();
    number(&mut dcs, "coding", mo.coding);
    number(&mut dcs, "mclass", mo.field(|f| f.mclass));
    number(&mut dcs, "alt-dcs", mo.field(|f| f.alt_dcs));
    number(&mut dcs, "mwi", mo.field(|f| f.mwi));
    number(&mut dcs, "compress", mo.field(|f| f.compress));
    if !dcs.is_empty() {
        element(&mut xml, "dcs", &dcs);
    }
    // Minutes from now, in <timing> and <vp>, each a <delay>.
    for (tag, minutes) in [
        ("timing", mo.minutes_from_now(|f| f.deferred)),
        ("vp", mo.minutes_from_now(|f| f.validity)),
    ] {
        if let Some(minutes) = minutes {
            let mut delay = String::new();
            element(&mut delay, "delay", &minutes.to_string());
            element(&mut xml, tag, &delay);
        }
    }
    let at = time::OffsetDateTime::from_unix_timestamp(mo.time)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let at = format!(
        "<year>{:04}</year><month>{:02}</month><day>{:02}</day><hour>{:02}</hour>\
         <minute>{:02}</minute><second>{:02}</second><timezone>0</timezone>",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second()
    );
    element(&mut xml, "at", &at);
    if let Some(smsc) = mo.smsc_id.filter(|s| !s.is_empty()) {
        let mut from = String::new();
        escaped(&mut from, "account", smsc);
        element(&mut xml, "from", &from);
    }
    if !mo.service.is_empty() {
        let mut to = String::new();
        escaped(&mut to, "service", mo.service);
        element(&mut xml, "to", &to);
    }
    if let Some(meta) = mo.meta_data.filter(|m| !m.is_empty()) {
        escaped(&mut xml, "meta-data", meta);
    }
    xml.push_str("\t</submit>\n</message>\n");
    Request {
        method: Method::POST,
        url,
        headers,
        body: Bytes::from(xml),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_is_smsbox_s_to_the_byte() {
        let mo = PostFields {
            phone: "+2567",
            reply_from: "8500",
            coding: 0,
            charset: Some("UTF-8"),
            body: Bytes::from_static(b"hi you"),
            udh: None,
            smsc_id: Some("fake"),
            service: "s<1>",
            meta_data: None,
            fields: None,
            time: 0,
            now: 0,
        };
        let r = post_xml("http://h/x".into(), true, mo);
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<message cid=\"1\">\n\t<submit>\n\
             \x20 \t\t<oa>  \t\t<number>+2567</number>\n</oa>\n\
             \x20 \t\t<da>  \t\t<number>8500</number>\n</da>\n\
             \x20 \t\t<ud>hi+you</ud>\n\
             \x20 \t\t<dcs>  \t\t<coding>0</coding>\n</dcs>\n\
             \x20 \t\t<at><year>1970</year><month>01</month><day>01</day><hour>00</hour>\
             <minute>00</minute><second>00</second><timezone>0</timezone></at>\n\
             \x20 \t\t<from>  \t\t<account>fake</account>\n</from>\n\
             \x20 \t\t<to>  \t\t<service>s&lt;1&gt;</service>\n</to>\n\
             \t</submit>\n</message>\n"
        );
        assert_eq!(r.headers[0].1, "text/xml; charset=\"UTF-8\"");
    }

    #[test]
    fn what_the_smsc_set_is_in_smsbox_s_elements_and_order() {
        let now = 1_764_000_000;
        let extra = super::super::fetch::tests::smsc_fields(now);
        let mo = PostFields {
            phone: "+2567",
            reply_from: "8500",
            coding: 0,
            charset: None,
            body: Bytes::from_static(b"x"),
            smsc_id: Some("loop"),
            service: "s",
            fields: Some(&extra),
            time: 0,
            now,
            ..PostFields::default()
        };
        let r = post_xml("http://h/".into(), false, mo);
        let body = String::from_utf8(r.body.to_vec()).unwrap();
        let from_ud = &body[body.find("  \t\t<ud>").unwrap()..body.find("  \t\t<at>").unwrap()];
        assert_eq!(
            from_ud,
            "  \t\t<ud>x</ud>\n\
             \x20 \t\t<pid>65</pid>\n\
             \x20 \t\t<rpi>1</rpi>\n\
             \x20 \t\t<dcs>  \t\t<coding>0</coding>\n  \t\t<mclass>1</mclass>\n\
             \x20 \t\t<alt-dcs>1</alt-dcs>\n  \t\t<mwi>0</mwi>\n  \t\t<compress>0</compress>\n</dcs>\n\
             \x20 \t\t<timing>  \t\t<delay>30</delay>\n</timing>\n\
             \x20 \t\t<vp>  \t\t<delay>60</delay>\n</vp>\n"
        );
        assert!(body.starts_with("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>"));
        assert_eq!(r.headers[0].1, "text/xml");
    }

    #[test]
    fn no_dcs_element_when_nothing_in_it_is_set() {
        let mo = PostFields {
            coding: -1,
            ..PostFields::default()
        };
        let body = post_xml("http://h/".into(), false, mo).body;
        let body = String::from_utf8_lossy(&body);
        assert!(!body.contains("<dcs>"), "{body}");
    }
}
