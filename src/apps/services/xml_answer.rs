//! A service's `text/xml` answer, read as smsbox 1.4.5's
//! `url_result_thread` reads it with `get_x_kannel_from_xml`: Kannel's
//! `<message><submit>` document, whose `<ud>` is the reply and whose other
//! elements stand for the X-Kannel-* headers (the headers themselves are
//! not read then).
//!
//! ```xml
//! <?xml version="1.0" encoding="ISO-8859-1"?>
//! <message><submit>
//!   <ud>hello%20world</ud>  <oa><number>8500</number></oa>
//!   <udh>0605040B8423F0</udh>  <smsc>tigo</smsc>
//!   <from><account>a</account><binfo>b</binfo></from>
//!   <dcs><mclass>1</mclass><coding>0</coding><mwi>0</mwi><alt-dcs>0</alt-dcs></dcs>
//!   <pid>0</pid><rpi>0</rpi><priority>0</priority>
//!   <statusrequest><dlr-mask>31</dlr-mask><dlr-url>http://...</dlr-url></statusrequest>
//!   <vp><delay>1440</delay></vp><timing><delay>10</delay></timing>
//!   <meta-data>?smpp?a=b</meta-data>
//! </submit></message>
//! ```
//!
//! The text's charset is the document's declared encoding (UTF-8 when it
//! declares none). `<da>` is not read: smsbox 1.4.5 passes no list for it
//! in a reply (and crashes on one). A document that does not parse is the
//! reply as it came, as smsbox leaves the body then.

use crate::kannel_xml::{self, find, string_value};

/// Most XML nodes an answer may have: a submit has a few dozen. The
/// client's body bound comes first; this bounds the tree.
const NODES_LIMIT: u32 = 10_000;

/// What an XML answer says. Numbers are `None` when absent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct XmlAnswer {
    /// The declared encoding, "UTF-8" when none.
    pub charset: String,
    /// `<ud>`, URL-decoded; empty when absent.
    pub text: Vec<u8>,
    pub from: Option<String>,
    pub udh: Option<Vec<u8>>,
    pub smsc: Option<String>,
    pub account: Option<String>,
    pub binfo: Option<String>,
    pub dlr_url: Option<String>,
    pub meta_data: Option<String>,
    pub pid: Option<i32>,
    pub rpi: Option<i32>,
    pub mclass: Option<i32>,
    pub mwi: Option<i32>,
    pub coding: Option<i32>,
    pub alt_dcs: Option<i32>,
    pub dlr_mask: Option<i32>,
    pub validity: Option<i32>,
    pub deferred: Option<i32>,
    pub priority: Option<i32>,
}

/// Reads `body`; `None` when it is no XML document (in its declared
/// encoding).
pub fn read(body: &[u8]) -> Option<XmlAnswer> {
    let (charset, text) = kannel_xml::decode(body)?;
    let doc = kannel_xml::parse(&text, NODES_LIMIT)?;
    let mut answer = XmlAnswer {
        charset,
        ..XmlAnswer::default()
    };
    let Some(submit) = kannel_xml::submit(&doc) else {
        return Some(answer);
    };
    // XPATH_SEARCH_OCTSTR: the string value, blanks stripped. A number
    // that is not one (smsbox's INT_MIN) is taken as absent: nothing
    // downstream accepts it.
    let string = |path: &[&str]| find(submit, path).map(|n| string_value(n).trim().to_owned());
    let number = |path: &[&str]| string(path).and_then(|s| kannel_xml::xpath_number(&s));
    if find(submit, &["from"]).is_some() {
        answer.account = string(&["from", "account"]);
        answer.binfo = string(&["from", "binfo"]);
    }
    answer.from = string(&["oa", "number"]);
    answer.udh = string(&["udh"]).map(|u| kannel_xml::udh(u.as_bytes()));
    answer.smsc = string(&["smsc"]);
    answer.pid = number(&["pid"]);
    answer.rpi = number(&["rpi"]);
    answer.mclass = number(&["dcs", "mclass"]);
    answer.mwi = number(&["dcs", "mwi"]);
    answer.coding = number(&["dcs", "coding"]);
    answer.alt_dcs = number(&["dcs", "alt-dcs"]);
    answer.dlr_mask = number(&["statusrequest", "dlr-mask"]);
    answer.dlr_url = string(&["statusrequest", "dlr-url"]);
    answer.validity = number(&["vp", "delay"]);
    answer.deferred = number(&["timing", "delay"]);
    answer.priority = number(&["priority"]);
    answer.meta_data = string(&["meta-data"]);
    answer.text = string(&["ud"])
        .map(|t| kannel_xml::url_decode(t.as_bytes()))
        .unwrap_or_default();
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_smsbox_reads_from_a_reply_document_is_read() {
        let doc = br#"<?xml version="1.0" encoding="ISO-8859-1"?>
<message><submit>
  <ud>caf%E9+ok</ud><oa><number> 8500 </number></oa><da><number>1</number></da>
  <udh>0605040B8423F0</udh><smsc>tigo</smsc>
  <from><account>acc</account><binfo>b</binfo></from>
  <dcs><mclass>1</mclass><coding>2</coding><mwi>x</mwi></dcs>
  <statusrequest><dlr-mask>31</dlr-mask><dlr-url>http://h/d</dlr-url></statusrequest>
  <vp><delay>2.9</delay></vp><meta-data>?smpp?a=b</meta-data>
</submit></message>"#;
        let a = read(doc).unwrap();
        assert_eq!(a.charset, "ISO-8859-1");
        assert_eq!(a.text, b"caf\xe9 ok");
        assert_eq!(a.from.as_deref(), Some("8500"));
        assert_eq!(a.udh, Some(vec![6, 5, 4, 0x0b, 0x84, 0x23, 0xf0]));
        assert_eq!(a.smsc.as_deref(), Some("tigo"));
        assert_eq!(
            (a.account.as_deref(), a.binfo.as_deref()),
            (Some("acc"), Some("b"))
        );
        assert_eq!((a.mclass, a.coding, a.mwi), (Some(1), Some(2), None));
        assert_eq!(a.dlr_mask, Some(31));
        assert_eq!(a.dlr_url.as_deref(), Some("http://h/d"));
        assert_eq!(a.validity, Some(2));
        assert_eq!(a.meta_data.as_deref(), Some("?smpp?a=b"));
    }

    #[test]
    fn a_document_without_submit_is_an_empty_text_and_no_xml_is_none() {
        let a = read(b"<message/>").unwrap();
        assert_eq!((a.charset.as_str(), a.text.len()), ("UTF-8", 0));
        assert!(read(b"not <xml").is_none());
        assert!(read(b"<?xml version=\"1.0\" encoding=\"UTF-8\"?><a>\xff</a>").is_none());
    }
}
