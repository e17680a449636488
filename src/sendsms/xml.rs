//! Kannel's XML POST (`Content-Type: text/xml`, the user guide's "XML
//! Post"), read as smsbox 1.4.5's `get_x_kannel_from_xml` reads it:
//!
//! ```xml
//! <?xml version="1.0" encoding="ISO-8859-1"?>
//! <message><submit>
//!   <da><number>+4912</number></da><da><number>+4913</number></da>
//!   <oa><number>8500</number></oa>
//!   <ud>hello%20world</ud>            <!-- URL-encoded text -->
//!   <udh>0605040B8423F0</udh>         <!-- hex -->
//!   <from><user>u</user><pass>p</pass><account>a</account><binfo>b</binfo></from>
//!   <dcs><mclass>1</mclass><coding>0</coding><compress>0</compress>
//!        <mwi>0</mwi><alt-dcs>0</alt-dcs></dcs>
//!   <pid>0</pid><rpi>0</rpi><priority>0</priority>
//!   <statusrequest><dlr-mask>31</dlr-mask><dlr-url>http://...</dlr-url></statusrequest>
//!   <vp><delay>1440</delay></vp><timing><delay>10</delay></timing>
//!   <smsc>tigo</smsc><meta-data>?smpp?a=b</meta-data>
//! </submit></message>
//! ```
//!
//! The credentials count only inside `<from>` (`username`/`password` win
//! over `user`/`pass`); `X-Kannel-*` headers are not read. Every `<da>` is
//! a receiver. The text's charset is the document's declared encoding
//! (UTF-8 when it declares none), applied to the bytes the URL-decoded
//! `<ud>` gives, as smsbox does. A document that does not parse gives no
//! fields, so the request fails authorization, as in smsbox.

use super::params::{strip_blanks, Fields};
use crate::kannel_xml::{self, find, string_value};

/// Most XML nodes a document may have: a submit has a few dozen, plus one
/// per receiver. The body's size bound comes first; this bounds the tree.
const NODES_LIMIT: u32 = 100_000;

/// The fields of an XML POST body.
pub fn fields(body: &[u8]) -> Fields {
    let Some((encoding, text)) = kannel_xml::decode(body) else {
        return Fields::default();
    };
    let Some(doc) = kannel_xml::parse(&text, NODES_LIMIT) else {
        return Fields::default();
    };
    let Some(submit) = kannel_xml::submit(&doc) else {
        return Fields {
            charset: Some(encoding.into_bytes()),
            ..Fields::default()
        };
    };
    let mut f = Fields::default();
    let string = |path: &[&str]| find(submit, path).map(|n| string_value(n));
    let bytes = |path: &[&str]| string(path).map(|s| strip_blanks(s.as_bytes()).to_vec());
    // smsbox's range checks refuse XPath's NaN, which C makes INT_MIN.
    let number = |path: &[&str], into: &mut i32| {
        if let Some(s) = string(path) {
            *into = kannel_xml::xpath_number(&s).unwrap_or(i32::MIN);
        }
    };
    if find(submit, &["from"]).is_some() {
        f.username = bytes(&["from", "username"]).or_else(|| bytes(&["from", "user"]));
        f.password = bytes(&["from", "password"]).or_else(|| bytes(&["from", "pass"]));
        f.account = bytes(&["from", "account"]);
        f.binfo = bytes(&["from", "binfo"]);
    }
    f.from = bytes(&["oa", "number"]);
    let receivers: Vec<String> = submit
        .children()
        .filter(|n| n.has_tag_name("da"))
        .flat_map(|da| da.children().filter(|n| n.has_tag_name("number")))
        .flat_map(|number| number.children().filter(|n| n.is_text()))
        .filter_map(|t| t.text())
        .map(|t| String::from_utf8_lossy(strip_blanks(t.as_bytes())).into_owned())
        .collect();
    if !receivers.is_empty() {
        f.receivers = Some(receivers);
    }
    f.udh = bytes(&["udh"]).map(|u| kannel_xml::udh(&u));
    f.smsc = bytes(&["smsc"]);
    number(&["pid"], &mut f.pid);
    number(&["rpi"], &mut f.rpi);
    number(&["dcs", "mclass"], &mut f.mclass);
    number(&["dcs", "mwi"], &mut f.mwi);
    number(&["dcs", "coding"], &mut f.coding);
    number(&["dcs", "compress"], &mut f.compress);
    number(&["dcs", "alt-dcs"], &mut f.alt_dcs);
    number(&["statusrequest", "dlr-mask"], &mut f.dlr_mask);
    f.dlr_url = bytes(&["statusrequest", "dlr-url"]);
    number(&["vp", "delay"], &mut f.validity);
    number(&["timing", "delay"], &mut f.deferred);
    number(&["priority"], &mut f.priority);
    f.meta_data = bytes(&["meta-data"]);
    f.charset = Some(encoding.into_bytes());
    f.text = bytes(&["ud"]).map(|t| kannel_xml::url_decode(&t));
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"<?xml version="1.0"?>
<message><submit>
  <da><number>130</number></da><da><number> 131 </number></da>
  <oa><number>5</number></oa>
  <ud>hello%20xml</ud>
  <udh>0605040B8423F0</udh>
  <from><user>u</user><pass>p</pass><account>acx</account><binfo>bx</binfo></from>
  <statusrequest><dlr-mask>3</dlr-mask><dlr-url>http://h/d</dlr-url></statusrequest>
  <dcs><mclass>1</mclass><coding>0</coding><compress>1</compress></dcs>
  <pid> 5 </pid><vp><delay>10</delay></vp><timing><delay>2.9</delay></timing>
  <priority>x</priority><meta-data>?smpp?k=v</meta-data><smsc>fake</smsc>
</submit></message>"#;

    #[test]
    fn every_field_of_the_user_guides_xml_post_is_read() {
        let f = fields(DOC.as_bytes());
        assert_eq!(f.receivers, Some(vec!["130".to_owned(), "131".to_owned()]));
        assert_eq!(f.to, None);
        assert_eq!(f.from.as_deref(), Some(&b"5"[..]));
        assert_eq!(f.text.as_deref(), Some(&b"hello xml"[..]));
        assert_eq!(
            f.udh.as_deref(),
            Some(&[6u8, 5, 4, 0x0b, 0x84, 0x23, 0xf0][..])
        );
        assert_eq!(f.username.as_deref(), Some(&b"u"[..]));
        assert_eq!(f.password.as_deref(), Some(&b"p"[..]));
        assert_eq!(f.account.as_deref(), Some(&b"acx"[..]));
        assert_eq!(f.binfo.as_deref(), Some(&b"bx"[..]));
        assert_eq!(f.dlr_url.as_deref(), Some(&b"http://h/d"[..]));
        assert_eq!(f.meta_data.as_deref(), Some(&b"?smpp?k=v"[..]));
        assert_eq!(f.smsc.as_deref(), Some(&b"fake"[..]));
        assert_eq!(
            (f.dlr_mask, f.mclass, f.coding, f.compress, f.pid),
            (3, 1, 0, 1, 5)
        );
        assert_eq!((f.validity, f.deferred, f.priority), (10, 2, i32::MIN));
        assert_eq!(f.charset.as_deref(), Some(&b"UTF-8"[..]));
    }

    #[test]
    fn the_declared_encoding_is_the_texts_charset() {
        let doc = b"<?xml version='1.0' encoding='ISO-8859-1'?>\
            <message><submit><ud>h%E9</ud><from><username>u</username></from></submit></message>";
        let f = fields(doc);
        assert_eq!(f.charset.as_deref(), Some(&b"ISO-8859-1"[..]));
        assert_eq!(f.text.as_deref(), Some(&b"h\xe9"[..]));
        assert_eq!(f.username.as_deref(), Some(&b"u"[..]));
    }

    #[test]
    fn credentials_outside_from_and_broken_documents_give_nothing() {
        let f = fields(b"<message><submit><user>u</user><pass>p</pass></submit></message>");
        assert_eq!((f.username, f.password), (None, None));
        assert_eq!(fields(b"<message><submit>"), Fields::default());
        assert_eq!(fields(b"\xff\xfe<"), Fields::default());
        let dtd = b"<!DOCTYPE m [<!ENTITY a 'aaaa'>]><message/>";
        assert_eq!(fields(dtd), Fields::default());
    }
}
