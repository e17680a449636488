//! A request's parameters: its query string, and for a POST its form body
//! (`application/x-www-form-urlencoded`), read within a size and a time
//! bound. Kannel's sendsms POST — the text as the body, everything else in
//! `X-Kannel-*` headers — is turned into the same parameters.

use std::time::Duration;

use http_body_util::{BodyExt, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Request};

use super::answer::ApiError;

/// How much body a request may send, and how fast.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub timeout: Duration,
}

/// Name-value pairs, in the order given: the query string's, then the
/// form body's.
#[derive(Debug, Clone, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
    /// The same pairs still URL-encoded, `&`-joined: what
    /// [`Params::bytes`] reads, for values that are not UTF-8 (a sendsms
    /// `udh`, or a `text` in another charset).
    raw: Vec<u8>,
}

impl Params {
    /// Parameters from decoded pairs.
    #[cfg(test)]
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Params {
        Params {
            pairs: pairs.into_iter().collect(),
            raw: Vec::new(),
        }
    }

    /// Parameters from a URL-encoded query string.
    pub fn from_query(query: &str) -> Params {
        let mut params = Params::default();
        params.extend_urlencoded(query.as_bytes());
        params
    }

    /// The last value of `name` as bytes, percent-decoded but not taken as
    /// UTF-8 (where [`Params::get`] would replace bytes that are not).
    pub fn bytes(&self, name: &str) -> Option<Vec<u8>> {
        // From the end: the last value wins, as in `get`.
        self.raw.rsplit(|&b| b == b'&').find_map(|pair| {
            let (n, v) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &pair[pair.len()..]),
            };
            (percent_decode(n) == name.as_bytes()).then(|| percent_decode(v))
        })
    }

    /// The value of `name`: the last one given, as Django's `QueryDict`
    /// (so a form field overrides the query string).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every value given for `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.pairs
            .iter()
            .filter(move |(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn extend_urlencoded(&mut self, bytes: &[u8]) {
        self.pairs
            .extend(form_urlencoded::parse(bytes).map(|(n, v)| (n.into_owned(), v.into_owned())));
        if !self.raw.is_empty() {
            self.raw.push(b'&');
        }
        self.raw.extend_from_slice(bytes);
    }
}

/// `application/x-www-form-urlencoded` decoding to bytes: `+` is a space,
/// `%XX` a byte; a `%` without two hex digits stays as it is, as the
/// `form_urlencoded` crate leaves it.
fn percent_decode(input: &[u8]) -> Vec<u8> {
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

/// How a POST body is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PostBody {
    /// Only `application/x-www-form-urlencoded` forms.
    Form,
    /// Forms, and Kannel's sendsms POST: any other content type is the
    /// message text (its `charset` parameter naming the charset) and the
    /// other parameters come from `X-Kannel-*` headers.
    FormOrKannel,
}

/// The `X-Kannel-*` headers of a sendsms POST and the parameters they
/// stand for. `X-Kannel-UDH` is hexadecimal, as Kannel reads it.
const KANNEL_HEADERS: [(&str, &str); 20] = [
    ("x-kannel-username", "username"),
    ("x-kannel-password", "password"),
    ("x-kannel-from", "from"),
    ("x-kannel-to", "to"),
    ("x-kannel-udh", "udh"),
    ("x-kannel-smsc", "smsc"),
    ("x-kannel-mclass", "mclass"),
    ("x-kannel-mwi", "mwi"),
    ("x-kannel-compress", "compress"),
    ("x-kannel-coding", "coding"),
    ("x-kannel-validity", "validity"),
    ("x-kannel-deferred", "deferred"),
    ("x-kannel-dlr-mask", "dlr-mask"),
    ("x-kannel-dlr-url", "dlr-url"),
    ("x-kannel-account", "account"),
    ("x-kannel-pid", "pid"),
    ("x-kannel-alt-dcs", "alt-dcs"),
    ("x-kannel-rpi", "rpi"),
    ("x-kannel-binfo", "binfo"),
    ("x-kannel-priority", "priority"),
];

/// `name=value` percent-encoded, byte for byte.
fn encode_pair(name: &str, value: &[u8], out: &mut Vec<u8>) {
    if !out.is_empty() {
        out.push(b'&');
    }
    out.extend_from_slice(name.as_bytes());
    out.push(b'=');
    for &b in value {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b);
        } else {
            out.extend_from_slice(format!("%{b:02X}").as_bytes());
        }
    }
}

/// Hex text to bytes; `None` if it is not hex.
fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

/// Kannel's sendsms POST as parameters: the headers, the body as `text`,
/// the content type's charset as `charset`.
fn kannel_post(headers: &hyper::HeaderMap, content_type: &str, body: &[u8]) -> Vec<u8> {
    let mut encoded = Vec::new();
    for (header, name) in KANNEL_HEADERS {
        let Some(value) = headers.get(header) else {
            continue;
        };
        let value = value.as_bytes();
        if name == "udh" {
            // Bad hex goes on as it came, for the udh check to refuse.
            let udh = unhex(value).unwrap_or_else(|| value.to_vec());
            encode_pair(name, &udh, &mut encoded);
        } else {
            encode_pair(name, value, &mut encoded);
        }
    }
    let charset = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("charset"))
        .map(|(_, v)| v.trim().trim_matches('"').to_owned());
    if let Some(charset) = charset {
        encode_pair("charset", charset.as_bytes(), &mut encoded);
    }
    encode_pair("text", body, &mut encoded);
    encoded
}

/// The parameters of `request`. A GET's body is ignored; a POST's must be
/// a form (or, with [`PostBody::FormOrKannel`], Kannel's sendsms POST) of
/// at most `limits.max_bytes`, arriving within `limits.timeout`.
pub async fn params(
    request: Request<Incoming>,
    limits: BodyLimits,
    post: PostBody,
) -> Result<(hyper::http::request::Parts, Params), ApiError> {
    let (head, body) = request.into_parts();
    let mut params = Params::default();
    if let Some(query) = head.uri.query() {
        params.extend_urlencoded(query.as_bytes());
    }
    if head.method != Method::POST {
        return Ok((head, params));
    }
    let content_type = head
        .headers
        .get(CONTENT_TYPE)
        .map(|kind| kind.to_str().unwrap_or_default().to_owned());
    let is_form = content_type.as_deref().is_none_or(|kind| {
        let essence = kind.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form && post == PostBody::Form {
        return Err(ApiError::UnsupportedBody);
    }
    // A declared length over the bound is refused before reading a byte.
    let declared = head
        .headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limits.max_bytes as u64) {
        return Err(ApiError::BodyTooLarge(limits.max_bytes));
    }
    let collected = tokio::time::timeout(
        limits.timeout,
        Limited::new(body, limits.max_bytes).collect(),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout)?;
    let bytes = match collected {
        Ok(c) => c.to_bytes(),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            return Err(ApiError::BodyTooLarge(limits.max_bytes));
        }
        Err(_) => return Err(ApiError::BodyUnreadable),
    };
    if is_form {
        params.extend_urlencoded(&bytes);
    } else {
        let kind = content_type.unwrap_or_default();
        params.extend_urlencoded(&kannel_post(&head.headers, &kind, &bytes));
    }
    Ok((head, params))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_value_wins_and_escapes_are_decoded() {
        let mut p = Params::default();
        p.extend_urlencoded(b"a=1&b=x+y%2Bz&a=2&c");
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.get("b"), Some("x y+z"));
        assert_eq!(p.get("c"), Some(""));
        assert_eq!(p.get("d"), None);
        assert_eq!(p.all("a").collect::<Vec<_>>(), ["1", "2"]);
    }

    #[test]
    fn a_kannel_post_becomes_parameters() {
        let mut headers = hyper::HeaderMap::new();
        headers.insert("X-Kannel-Username", "tester".parse().unwrap());
        headers.insert("X-Kannel-To", "+4912 +4913".parse().unwrap());
        headers.insert("X-Kannel-UDH", "0605040B8423F0".parse().unwrap());
        headers.insert("X-Kannel-DLR-Mask", "31".parse().unwrap());
        let encoded = kannel_post(&headers, "text/plain; charset=ISO-8859-1", b"h\xe9 & co");
        let mut p = Params::default();
        p.extend_urlencoded(&encoded);
        assert_eq!(p.get("username"), Some("tester"));
        assert_eq!(p.get("to"), Some("+4912 +4913"));
        assert_eq!(p.get("dlr-mask"), Some("31"));
        assert_eq!(p.get("charset"), Some("ISO-8859-1"));
        assert_eq!(p.bytes("text").as_deref(), Some(&b"h\xe9 & co"[..]));
        assert_eq!(
            p.bytes("udh").as_deref(),
            Some(&[6u8, 5, 4, 0x0b, 0x84, 0x23, 0xf0][..])
        );
    }

    #[test]
    fn bytes_keep_what_is_not_utf8() {
        let mut p = Params::default();
        p.extend_urlencoded(b"udh=%06%05%04%0B%84%23%F0&t=h%E9+x&t=2&odd=%4&n%61me=v");
        p.extend_urlencoded(b"late=%zz");
        assert_eq!(
            p.bytes("udh").as_deref(),
            Some(&[6u8, 5, 4, 0x0b, 0x84, 0x23, 0xf0][..])
        );
        assert_eq!(p.bytes("t").as_deref(), Some(&b"2"[..]));
        assert_eq!(p.bytes("odd").as_deref(), Some(&b"%4"[..]));
        assert_eq!(p.bytes("name").as_deref(), Some(&b"v"[..]));
        assert_eq!(p.bytes("late").as_deref(), Some(&b"%zz"[..]));
        assert_eq!(p.bytes("none"), None);
        assert_eq!(percent_decode(b"h%E9+x"), b"h\xe9 x");
    }
}
