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
    let (charset, text) = decode(body)?;
    let options = roxmltree::ParsingOptions {
        allow_dtd: false,
        nodes_limit: NODES_LIMIT,
        ..roxmltree::ParsingOptions::default()
    };
    let doc = roxmltree::Document::parse_with_options(&text, options).ok()?;
    let mut answer = XmlAnswer {
        charset,
        ..XmlAnswer::default()
    };
    let submit = doc
        .root()
        .children()
        .find(|n| n.has_tag_name("message"))
        .and_then(|m| m.children().find(|n| n.has_tag_name("submit")));
    let Some(submit) = submit else {
        return Some(answer);
    };
    // XPATH_SEARCH_OCTSTR: the string value, blanks stripped.
    let string = |path: &[&str]| find(submit, path).map(|n| string_value(n).trim().to_owned());
    let number = |path: &[&str]| string(path).and_then(|s| xpath_number(&s));
    if find(submit, &["from"]).is_some() {
        answer.account = string(&["from", "account"]);
        answer.binfo = string(&["from", "binfo"]);
    }
    answer.from = string(&["oa", "number"]);
    answer.udh = string(&["udh"]).map(|u| unhex(&u).unwrap_or_else(|| url_decode(&u)));
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
    // URL-decoded only: smsbox 1.4.5 sends `<ud>c3a9</ud>` as "c3a9"
    // (measured on its XML sendsms, which reads <ud> the same way).
    answer.text = string(&["ud"]).map(|t| url_decode(&t)).unwrap_or_default();
    Some(answer)
}

/// The first element at `path` below `node` (XPath's first in document
/// order).
fn find<'a, 'i>(node: roxmltree::Node<'a, 'i>, path: &[&str]) -> Option<roxmltree::Node<'a, 'i>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    node.children()
        .filter(|n| n.has_tag_name(*first))
        .find_map(|n| find(n, rest))
}

/// XPath's string value: all the text inside the element.
fn string_value(node: roxmltree::Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// XPath's `number()` as an `int`: a decimal number, its fraction
/// dropped; `None` for anything else (smsbox would store INT_MIN, which
/// nothing downstream accepts).
fn xpath_number(s: &str) -> Option<i32> {
    let well_formed = {
        let unsigned = s.strip_prefix('-').unwrap_or(s);
        !unsigned.is_empty()
            && unsigned != "."
            && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
            && unsigned.bytes().filter(|&b| b == b'.').count() <= 1
    };
    let n: f64 = s.parse().ok().filter(|_| well_formed)?;
    // In range after dropping the fraction: the cast cannot overflow.
    (n.is_finite() && n.abs() < 2_147_483_648.0).then(|| n.trunc() as i32)
}

/// Hex pairs as bytes; `None` when `s` is not all hex pairs.
fn unhex(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `octstr_url_decode`: `%XX` and `+`; a `%` without two hex digits stays.
fn url_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => match s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                Some(byte) => {
                    out.push(byte);
                    i += 3;
                }
                None => {
                    out.push(b'%');
                    i += 1;
                }
            },
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            c => {
                out.push(c);
                i += 1;
            }
        }
    }
    out
}

/// The document as text with its declared encoding ("UTF-8" when none),
/// the declaration taken off; `None` when the bytes are not valid in it.
fn decode(body: &[u8]) -> Option<(String, String)> {
    let body = body.strip_prefix(b"\xef\xbb\xbf").unwrap_or(body);
    let (declared, rest) = match body.strip_prefix(b"<?xml") {
        Some(after) => {
            let end = after.windows(2).position(|w| w == b"?>")?;
            let declaration = String::from_utf8_lossy(&after[..end]).into_owned();
            (encoding_of(&declaration), &after[end + 2..])
        }
        None => (None, body),
    };
    let name = declared.unwrap_or_else(|| "UTF-8".to_owned());
    let text = crate::text::decode_strict(rest, &name)?;
    Some((name, text))
}

/// The `encoding="..."` of an XML declaration.
fn encoding_of(declaration: &str) -> Option<String> {
    let at = declaration.find("encoding")?;
    let rest = declaration[at + "encoding".len()..].trim_start();
    let rest = rest.strip_prefix('=')?.trim_start();
    let quote = rest.chars().next().filter(|&c| c == '"' || c == '\'')?;
    let value = &rest[1..];
    let end = value.find(quote)?;
    Some(value[..end].to_owned())
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
