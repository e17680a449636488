//! A request's parameters: its query string, and for a POST its form body
//! (`application/x-www-form-urlencoded`), read within a size and a time
//! bound. `/cgi-bin/sendsms` takes its body as it came ([`raw`]) and reads
//! it in [`crate::sendsms`].

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
///
/// Decoded once, into one string: a pair is three offsets into it (its
/// name from the first to the second, its value from the second to the
/// third), so reading a request's parameters costs two allocations, not
/// two per parameter.
#[derive(Debug, Clone, Default)]
pub struct Params {
    text: String,
    pairs: Vec<[usize; 3]>,
    /// The first pair that did not decode: its name (lossily decoded) and
    /// what was wrong. Such a pair is not among `pairs`.
    malformed: Option<(String, Malformed)>,
}

/// What can be wrong with a URL-encoded name or value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Malformed {
    /// A `%` not followed by two hexadecimal digits.
    #[error("invalid percent-encoding")]
    Percent,
    /// Bytes (after decoding) that are not UTF-8.
    #[error("not valid UTF-8")]
    Utf8,
}

impl Params {
    /// Parameters from decoded pairs.
    #[cfg(test)]
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Params {
        let mut params = Params::default();
        for (name, value) in pairs {
            let at = params.text.len();
            params.text.push_str(&name);
            let between = params.text.len();
            params.text.push_str(&value);
            params.pairs.push([at, between, params.text.len()]);
        }
        params
    }

    /// The first parameter that did not decode, and why: every endpoint
    /// refuses such a request rather than guess what was meant.
    pub fn malformed(&self) -> Option<(&str, Malformed)> {
        self.malformed
            .as_ref()
            .map(|(name, why)| (name.as_str(), *why))
    }

    /// Parameters from a URL-encoded query string.
    pub fn from_query(query: &str) -> Params {
        let mut params = Params::default();
        params.extend_urlencoded(query.as_bytes());
        params
    }

    /// Every pair, in order.
    fn iter(&self) -> impl DoubleEndedIterator<Item = (&str, &str)> + '_ {
        self.pairs
            .iter()
            .map(|&[at, between, end]| (&self.text[at..between], &self.text[between..end]))
    }

    /// The value of `name`: the last one given, as Django's `QueryDict`
    /// (so a form field overrides the query string).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.iter().rev().find(|(n, _)| *n == name).map(|(_, v)| v)
    }

    /// Every value given for `name`.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.iter().filter(move |(n, _)| *n == name).map(|(_, v)| v)
    }

    fn extend_urlencoded(&mut self, bytes: &[u8]) {
        // Room for the decoded text (never longer than the encoded) and
        // for the pairs, at once.
        self.text.reserve(bytes.len());
        self.pairs
            .reserve(bytes.iter().filter(|&&b| b == b'&').count() + 1);
        let mut scratch = Vec::new();
        for pair in bytes.split(|&b| b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let at = self.text.len();
            let decoded = decode_into(name, &mut self.text, &mut scratch).and_then(|()| {
                let between = self.text.len();
                decode_into(value, &mut self.text, &mut scratch).map(|()| between)
            });
            match decoded {
                Ok(between) => self.pairs.push([at, between, self.text.len()]),
                Err(why) => {
                    self.text.truncate(at);
                    if self.malformed.is_none() {
                        let name =
                            String::from_utf8_lossy(&percent_decode_lossy(name)).into_owned();
                        self.malformed = Some((name, why));
                    }
                }
            }
        }
    }
}

/// Decodes one `application/x-www-form-urlencoded` name or value onto the
/// end of `out`: `+` is a space, `%XX` a byte; the result must be UTF-8.
/// `scratch` holds the bytes of an escaped one while they are checked.
/// On error `out` may hold part of it; the caller cuts it off.
fn decode_into(encoded: &[u8], out: &mut String, scratch: &mut Vec<u8>) -> Result<(), Malformed> {
    if !encoded.iter().any(|&b| b == b'%' || b == b'+') {
        // Nothing to decode (most names and values): checked and copied.
        out.push_str(std::str::from_utf8(encoded).map_err(|_| Malformed::Utf8)?);
        return Ok(());
    }
    scratch.clear();
    let mut i = 0;
    while i < encoded.len() {
        match encoded[i] {
            b'+' => scratch.push(b' '),
            b'%' => {
                let hex = encoded.get(i + 1..i + 3).ok_or(Malformed::Percent)?;
                let byte = std::str::from_utf8(hex)
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .filter(|_| hex.iter().all(u8::is_ascii_hexdigit))
                    .ok_or(Malformed::Percent)?;
                scratch.push(byte);
                i += 2;
            }
            b => scratch.push(b),
        }
        i += 1;
    }
    out.push_str(std::str::from_utf8(scratch).map_err(|_| Malformed::Utf8)?);
    Ok(())
}

/// A name decoded as far as it goes, for naming it in an error.
fn percent_decode_lossy(encoded: &[u8]) -> Vec<u8> {
    form_urlencoded::parse(encoded)
        .next()
        .map(|(n, _)| n.into_owned().into_bytes())
        .unwrap_or_default()
}

/// The parameters of `request`. A GET's body is ignored; a POST's must be
/// a form of at most `limits.max_bytes`, arriving within `limits.timeout`.
pub async fn params(
    request: Request<Incoming>,
    limits: BodyLimits,
) -> Result<(hyper::http::request::Parts, Params), ApiError> {
    let (head, body) = request.into_parts();
    let mut params = Params::default();
    if let Some(query) = head.uri.query() {
        params.extend_urlencoded(query.as_bytes());
    }
    if head.method != Method::POST {
        refuse_malformed(&params)?;
        return Ok((head, params));
    }
    let is_form = head.headers.get(CONTENT_TYPE).is_none_or(|kind| {
        let kind = kind.to_str().unwrap_or_default();
        let essence = kind.split(';').next().unwrap_or_default().trim();
        essence.eq_ignore_ascii_case("application/x-www-form-urlencoded")
    });
    if !is_form {
        return Err(ApiError::UnsupportedBody);
    }
    let bytes = read_body(&head, body, limits).await?;
    params.extend_urlencoded(&bytes);
    refuse_malformed(&params)?;
    Ok((head, params))
}

/// A request with a parameter that does not decode is refused, naming it.
fn refuse_malformed(params: &Params) -> Result<(), ApiError> {
    match params.malformed() {
        Some((name, why)) => Err(ApiError::Malformed {
            name: name.to_owned(),
            why,
        }),
        None => Ok(()),
    }
}

/// `request`'s head and, for a POST, its body as it came (empty for other
/// methods), within the same bounds as [`params`].
pub async fn raw(
    request: Request<Incoming>,
    limits: BodyLimits,
) -> Result<(hyper::http::request::Parts, bytes::Bytes), ApiError> {
    let (head, body) = request.into_parts();
    if head.method != Method::POST {
        return Ok((head, bytes::Bytes::new()));
    }
    let bytes = read_body(&head, body, limits).await?;
    Ok((head, bytes))
}

/// The body, refused when it declares or reaches more than
/// `limits.max_bytes` or does not arrive within `limits.timeout`.
async fn read_body(
    head: &hyper::http::request::Parts,
    body: Incoming,
    limits: BodyLimits,
) -> Result<bytes::Bytes, ApiError> {
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
    match collected {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
            Err(ApiError::BodyTooLarge(limits.max_bytes))
        }
        Err(_) => Err(ApiError::BodyUnreadable),
    }
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
        assert_eq!(p.malformed(), None);
    }

    #[test]
    fn bad_percent_encoding_and_bad_utf8_are_named() {
        for (query, name, why) in [
            ("a=1&message=100%", "message", Malformed::Percent),
            ("message=%zz", "message", Malformed::Percent),
            ("message=%4", "message", Malformed::Percent),
            ("message=%FF%FE&b=2", "message", Malformed::Utf8),
            ("na%C3me=x", "na\u{FFFD}me", Malformed::Utf8),
            ("name=%C3", "name", Malformed::Utf8),
            ("%FF=1", "\u{FFFD}", Malformed::Utf8),
        ] {
            let p = Params::from_query(query);
            assert_eq!(p.malformed(), Some((name, why)), "{query}");
        }
        let p = Params::from_query("text=%C3%A9t%C3%A9+%2B");
        assert_eq!(p.get("text"), Some("été +"));
        assert_eq!(p.malformed(), None);
    }

    #[test]
    fn a_malformed_pair_leaves_the_others_whole() {
        let p = Params::from_query("a=1&b%2B=%zz&c=x%2By&d%FF=2&e=%C3%A9");
        assert_eq!(p.malformed(), Some(("b+", Malformed::Percent)));
        let pairs: Vec<(&str, &str)> = p.iter().collect();
        assert_eq!(pairs, [("a", "1"), ("c", "x+y"), ("e", "é")]);
    }
}
