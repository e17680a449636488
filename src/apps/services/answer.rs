//! A service's HTTP answer turned into the reply, as smsbox 1.4.5's
//! `url_result_thread` does: by Content-Type, its charset converted, the
//! X-Kannel-* headers read (`get_x_kannel_from_headers`) and obeyed only
//! when the service accepts them (`fill_message`).

use hyper::HeaderMap;

use super::html::html_to_sms;
use super::xml_answer::{self, XmlAnswer};
use crate::client::HttpResponse;
use crate::model::MtOptions;
use crate::router::MtReply;
use crate::text;

/// What the answer says the reply is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// Text (after charset conversion).
    Text(String),
    /// 8-bit bytes (`application/octet-stream`, or X-Kannel-Coding 1).
    Binary(Vec<u8>),
}

/// Why an answer gives no reply of its own, and which smsbox text stands in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// `reply-couldnotrepresent`: a content type or charset smsbox cannot
    /// make an SMS of.
    CouldNotRepresent,
}

/// How a service treats answers.
#[derive(Debug, Clone, Default)]
pub struct AnswerRules<'a> {
    /// HTML is cut to what lies between these (both must be set).
    pub prefix: Option<&'a str>,
    pub suffix: Option<&'a str>,
    /// The charset of answers that name none.
    pub alt_charset: Option<&'a str>,
    /// Whether X-Kannel-* headers are obeyed.
    pub accept_x_kannel_headers: bool,
}

/// The reply an OK answer (200 or 202) makes: its body and its MT fields.
pub fn read(response: &HttpResponse, rules: &AnswerRules<'_>) -> Result<(Body, MtReply), Failure> {
    let (mime, charset) = content_type(response.content_type.as_deref().unwrap_or(""));
    let charset = charset.or_else(|| rules.alt_charset.map(str::to_owned));
    let raw = response.body.as_ref();
    let (bytes, eight_bit) = match mime.as_str() {
        "text/html" | "text/vnd.wap.wml" => {
            // Decoded first: for the ASCII-compatible charsets HTML uses this
            // is smsbox's order (cut, strip tags, then convert) to the byte.
            let page = decode(raw, charset.as_deref())?;
            let cut = cut(&page, rules.prefix, rules.suffix);
            return Ok(finish(
                Body::Text(html_to_sms(cut)),
                &response.headers,
                rules,
            ));
        }
        "text/plain" => (raw, false),
        "application/octet-stream" => (raw, true),
        "text/xml" => match xml_answer::read(raw) {
            Some(xml) => {
                // The document's encoding is the text's; the headers
                // are not read, its elements stand for them.
                let text = decode(&xml.text, Some(&xml.charset))?;
                return Ok(finish_with(Body::Text(text), rules, |mt| from_xml(xml, mt)));
            }
            // Not a document: the answer as it came, as smsbox leaves it.
            None => {
                let text = decode(raw, charset.as_deref())?;
                return Ok(finish_with(Body::Text(text), rules, |_| None));
            }
        },
        _ => return Err(Failure::CouldNotRepresent),
    };
    let body = if eight_bit {
        Body::Binary(bytes.to_vec())
    } else {
        Body::Text(decode(bytes, charset.as_deref())?)
    };
    Ok(finish(body, &response.headers, rules))
}

/// Text from `bytes` in `charset` (UTF-8 when none): `charset_processing`,
/// which fails on a charset it cannot convert.
fn decode(bytes: &[u8], charset: Option<&str>) -> Result<String, Failure> {
    match charset {
        Some(name) if !text::is_known_charset(name) => Err(Failure::CouldNotRepresent),
        Some(name) => Ok(text::decode_mo(bytes, text::coding::SEVEN_BIT, Some(name)).text),
        None => Ok(String::from_utf8_lossy(bytes).into_owned()),
    }
}

/// The MIME type (lower case) and charset of a Content-Type value.
fn content_type(value: &str) -> (String, Option<String>) {
    let mut parts = value.split(';');
    let mime = parts.next().unwrap_or("").trim().to_ascii_lowercase();
    let charset = parts.find_map(|p| {
        let (name, value) = p.split_once('=')?;
        name.trim()
            .eq_ignore_ascii_case("charset")
            .then(|| value.trim().trim_matches('"').to_owned())
            .filter(|v| !v.is_empty())
    });
    (mime, charset)
}

/// `strip_prefix_and_suffix`: what lies between the first `prefix` and the
/// first `suffix` after it, both found ignoring ASCII case; the whole page
/// when either is unset or not found.
fn cut<'p>(page: &'p str, prefix: Option<&str>, suffix: Option<&str>) -> &'p str {
    let (Some(prefix), Some(suffix)) = (prefix, suffix) else {
        return page;
    };
    let Some(start) = find_ignoring_case(page, prefix, 0).map(|i| i + prefix.len()) else {
        return page;
    };
    match find_ignoring_case(page, suffix, start) {
        Some(end) => &page[start..end],
        None => page,
    }
}

fn find_ignoring_case(hay: &str, needle: &str, from: usize) -> Option<usize> {
    let (h, n) = (hay.as_bytes(), needle.as_bytes());
    (from..=h.len().checked_sub(n.len())?)
        .find(|&i| hay.is_char_boundary(i) && h[i..i + n.len()].eq_ignore_ascii_case(n))
}

/// The body with its MT fields, as `fill_message` sets them: with
/// X-Kannel-* accepted, the coding the answer asks for (X-Kannel-Coding,
/// else 8-bit for an octet-stream, else 7-bit); refused, 7-bit whatever
/// the answer or the MO was (`fill_message` refuses even the coding an
/// octet-stream asks for; measured with smsbox 1.4.5: an octet-stream
/// answer reaches the phone as `?` text, a text answer to an 8-bit MO as
/// text).
fn finish(body: Body, headers: &HeaderMap, rules: &AnswerRules<'_>) -> (Body, MtReply) {
    finish_with(body, rules, |mt| x_kannel(headers, mt))
}

/// [`finish`] with the answer's fields read by `fields`, which fills the
/// MT and returns the coding asked for.
fn finish_with(
    body: Body,
    rules: &AnswerRules<'_>,
    fields: impl FnOnce(&mut MtReply) -> Option<i32>,
) -> (Body, MtReply) {
    let mut mt = MtReply::default();
    let coding = if rules.accept_x_kannel_headers {
        let asked = fields(&mut mt);
        match (&body, asked) {
            (_, Some(coding)) => coding,
            (Body::Binary(_), None) => text::coding::EIGHT_BIT,
            (Body::Text(_), None) => text::coding::SEVEN_BIT,
        }
    } else {
        text::coding::SEVEN_BIT
    };
    let body = match body {
        // Text asked to go as 8-bit goes as its bytes.
        Body::Text(t) if coding == text::coding::EIGHT_BIT => Body::Binary(t.into_bytes()),
        // Bytes sent as text: what is not UTF-8 is `?`, as the bearerbox
        // shows it.
        Body::Binary(b) if coding != text::coding::EIGHT_BIT => {
            Body::Text(String::from_utf8_lossy(&b).replace(char::REPLACEMENT_CHARACTER, "?"))
        }
        other => other,
    };
    if coding != text::coding::SEVEN_BIT {
        mt.coding = Some(coding);
        // The link forces UCS-2 only for an MT that carries options.
        mt.options.get_or_insert_with(MtOptions::default);
    }
    (body, mt)
}

/// Reads the X-Kannel-* headers into `mt`; returns X-Kannel-Coding.
fn x_kannel(headers: &HeaderMap, mt: &mut MtReply) -> Option<i32> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim().to_owned())
    };
    // sscanf("%d"): a leading integer, anything after it ignored.
    let int = |name: &str| text(name).and_then(|v| leading_int(&v));
    mt.sender = text("x-kannel-from");
    mt.receiver = text("x-kannel-to");
    mt.smsc_id = text("x-kannel-smsc");
    mt.udh = text("x-kannel-udh").and_then(|v| udh(&v));
    mt.dlr_mask = int("x-kannel-dlr-mask");
    let mut options = MtOptions {
        dlr_url: text("x-kannel-dlr-url"),
        account: text("x-kannel-account"),
        binfo: text("x-kannel-binfo"),
        meta_data: text("x-kannel-meta-data"),
        ..MtOptions::default()
    };
    let now = crate::model::now_micros() / 1_000_000;
    let minutes = |m: i32| i32::try_from(now + i64::from(m) * 60).unwrap_or(i32::MAX);
    for (name, field) in [
        ("x-kannel-mclass", &mut options.mclass),
        ("x-kannel-mwi", &mut options.mwi),
        ("x-kannel-pid", &mut options.pid),
        ("x-kannel-alt-dcs", &mut options.alt_dcs),
        ("x-kannel-rpi", &mut options.rpi),
        ("x-kannel-priority", &mut options.priority),
    ] {
        if let Some(v) = int(name) {
            *field = v;
        }
    }
    if let Some(v) = int("x-kannel-validity") {
        options.validity = minutes(v);
    }
    if let Some(v) = int("x-kannel-deferred") {
        options.deferred = minutes(v);
    }
    if options != MtOptions::default() {
        mt.options = Some(options);
    }
    int("x-kannel-coding")
}

/// An XML answer's fields into `mt`, as [`x_kannel`] reads headers;
/// returns its coding.
fn from_xml(xml: XmlAnswer, mt: &mut MtReply) -> Option<i32> {
    mt.sender = xml.from;
    mt.smsc_id = xml.smsc;
    mt.udh = xml.udh;
    mt.dlr_mask = xml.dlr_mask;
    let mut options = MtOptions {
        dlr_url: xml.dlr_url,
        account: xml.account,
        binfo: xml.binfo,
        meta_data: xml.meta_data,
        ..MtOptions::default()
    };
    for (value, field) in [
        (xml.mclass, &mut options.mclass),
        (xml.mwi, &mut options.mwi),
        (xml.pid, &mut options.pid),
        (xml.alt_dcs, &mut options.alt_dcs),
        (xml.rpi, &mut options.rpi),
        (xml.priority, &mut options.priority),
    ] {
        if let Some(v) = value {
            *field = v;
        }
    }
    let now = crate::model::now_micros() / 1_000_000;
    let minutes = |m: i32| i32::try_from(now + i64::from(m) * 60).unwrap_or(i32::MAX);
    if let Some(v) = xml.validity {
        options.validity = minutes(v);
    }
    if let Some(v) = xml.deferred {
        options.deferred = minutes(v);
    }
    if options != MtOptions::default() {
        mt.options = Some(options);
    }
    xml.coding
}

fn leading_int(v: &str) -> Option<i32> {
    let end = v
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && (c == '-' || c == '+'))))
        .map_or(v.len(), |(i, _)| i);
    v[..end].parse().ok()
}

/// X-Kannel-UDH: hex, else URL-encoded bytes; neither, and it is dropped.
fn udh(v: &str) -> Option<Vec<u8>> {
    crate::kannel_xml::unhex(v.as_bytes()).or_else(|| strict_url_decode(v))
}

/// `octstr_url_decode` where its failure counts: a `%` without two hex
/// digits makes the whole value `None` (smsbox drops such an
/// X-Kannel-UDH), unlike the lenient [`crate::kannel_xml::url_decode`].
fn strict_url_decode(v: &str) -> Option<Vec<u8>> {
    let b = v.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                let pair = v.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(pair, 16).ok()?);
                i += 3;
            }
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
    Some(out)
}

#[cfg(test)]
#[path = "answer_tests.rs"]
mod tests;
