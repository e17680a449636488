//! Kannel's `<message><submit>` XML documents, read as smsbox 1.4.5's
//! `get_x_kannel_from_xml` reads them: the declared encoding, a parse
//! with its bounds, the first element at a path, XPath string values and
//! numbers, and the hex-or-URL-encoded bytes of `<udh>` and `<ud>`.
//!
//! Two readers share it: a sendsms XML POST (`sendsms::xml`) and a
//! service's `text/xml` answer (`apps::services::xml_answer`). Each picks
//! its fields; the way a field is found and read is the same in both, as
//! it is one function in smsbox.

use roxmltree::{Document, Node, ParsingOptions};

/// The document as text with its declared encoding ("UTF-8" when none),
/// the declaration taken off (the text is UTF-8 now, whatever it said).
/// `None` when the bytes are not valid in that encoding.
pub fn decode(body: &[u8]) -> Option<(String, String)> {
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

/// Parses `text` with no DTD (so no entity expansion) and at most
/// `nodes_limit` nodes: the caller's body bound comes first, this bounds
/// the tree. `None` when it is not a well-formed document.
pub fn parse(text: &str, nodes_limit: u32) -> Option<Document<'_>> {
    let options = ParsingOptions {
        allow_dtd: false,
        nodes_limit,
        ..ParsingOptions::default()
    };
    Document::parse_with_options(text, options).ok()
}

/// `/message/submit`, the element every field is below.
pub fn submit<'a, 'i>(doc: &'a Document<'i>) -> Option<Node<'a, 'i>> {
    doc.root()
        .children()
        .find(|n| n.has_tag_name("message"))
        .and_then(|m| m.children().find(|n| n.has_tag_name("submit")))
}

/// The first element at `path` below `node`, as XPath's
/// `/message/submit/a/b` picks the first in document order.
pub fn find<'a, 'i>(node: Node<'a, 'i>, path: &[&str]) -> Option<Node<'a, 'i>> {
    let Some((first, rest)) = path.split_first() else {
        return Some(node);
    };
    node.children()
        .filter(|n| n.has_tag_name(*first))
        .find_map(|n| find(n, rest))
}

/// XPath's string value of an element: all the text inside it.
pub fn string_value(node: Node<'_, '_>) -> String {
    node.descendants()
        .filter(|n| n.is_text())
        .filter_map(|n| n.text())
        .collect()
}

/// XPath's `number()` of a string, as smsbox stores it in an `int`: blanks
/// around a decimal number are fine and the fraction is dropped. `None`
/// for anything else: XPath's NaN, which the C conversion turns into
/// `INT_MIN` on the machines Kannel runs on.
pub fn xpath_number(s: &str) -> Option<i32> {
    let t = s.trim_matches(|c: char| c.is_ascii_whitespace());
    let unsigned = t.strip_prefix('-').unwrap_or(t);
    let well_formed = !unsigned.is_empty()
        && unsigned != "."
        && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && unsigned.bytes().filter(|&b| b == b'.').count() <= 1;
    let n: f64 = t.parse().ok().filter(|_| well_formed)?;
    // In range of an i32 after dropping the fraction: the cast cannot
    // overflow.
    (n.is_finite() && n.abs() < 2_147_483_648.0).then(|| n.trunc() as i32)
}

/// `<udh>`'s bytes: hex pairs, else URL-encoded.
pub fn udh(value: &[u8]) -> Vec<u8> {
    unhex(value).unwrap_or_else(|| url_decode(value))
}

/// Hex text to bytes; `None` if it is not an even number of hex digits.
pub fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| {
            let digit = |b: u8| char::from(b).to_digit(16);
            // Two hex digits make at most 0xFF.
            Some((digit(pair[0])? * 16 + digit(pair[1])?) as u8)
        })
        .collect()
}

/// URL-decoding to bytes, as `application/x-www-form-urlencoded`: `+` is
/// a space, `%XX` a byte; a `%` without two hex digits stays as it is.
/// smsbox 1.4.5 takes `<ud>` so (and not as hex: `<ud>c3a9</ud>` goes as
/// "c3a9", measured).
pub fn url_decode(input: &[u8]) -> Vec<u8> {
    let hex = |b: u8| char::from(b).to_digit(16);
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let pair = input
                    .get(i + 1)
                    .copied()
                    .and_then(hex)
                    .zip(input.get(i + 2).copied().and_then(hex));
                if let Some((high, low)) = pair {
                    // Two hex digits make at most 0xFF.
                    out.push((high * 16 + low) as u8);
                    i += 3;
                    continue;
                }
                out.push(b'%');
            }
            b => out.push(b),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_xpath_s_truncated_and_anything_else_is_none() {
        assert_eq!(xpath_number(" 5 "), Some(5));
        assert_eq!(xpath_number("2.9"), Some(2));
        assert_eq!(xpath_number("-3.5"), Some(-3));
        for bad in ["x", "", ".", "1e3", "+1", "1.2.3", "9999999999"] {
            assert_eq!(xpath_number(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_declared_encoding_decodes_and_none_means_utf8() {
        let (cs, text) = decode(b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xe9</a>").unwrap();
        assert_eq!((cs.as_str(), text.as_str()), ("ISO-8859-1", "<a>é</a>"));
        let (cs, _) = decode("\u{feff}<a/>".as_bytes()).unwrap();
        assert_eq!(cs, "UTF-8");
        assert!(decode(b"<a>\xff</a>").is_none());
    }

    #[test]
    fn the_first_element_at_a_path_and_its_whole_text() {
        let doc = parse(
            "<message><submit><da><number>1</number></da><da><number>2<i>x</i></number></da>\
             </submit></message>",
            100,
        )
        .unwrap();
        let submit = submit(&doc).unwrap();
        assert_eq!(string_value(find(submit, &["da", "number"]).unwrap()), "1");
        assert!(find(submit, &["oa"]).is_none());
        let doc = parse("<message><submit><a>2<i>x</i>y</a></submit></message>", 100).unwrap();
        let submit = super::submit(&doc).unwrap();
        assert_eq!(string_value(find(submit, &["a"]).unwrap()), "2xy");
        assert!(parse("<!DOCTYPE m [<!ENTITY a 'a'>]><m/>", 100).is_none());
        assert!(
            parse("<a><b/><b/><b/></a>", 3).is_none(),
            "over the node bound"
        );
    }

    #[test]
    fn bytes_are_hex_or_url_encoded() {
        assert_eq!(udh(b"0605040B8423F0"), [6, 5, 4, 0x0b, 0x84, 0x23, 0xf0]);
        assert_eq!(udh(b"%06%05"), [6, 5]);
        assert_eq!(url_decode(b"h%E9+x%4%zz"), b"h\xe9 x%4%zz");
        assert_eq!(unhex(b"0g"), None);
    }
}
