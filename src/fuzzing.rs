//! Entry points for the cargo-fuzz targets in `fuzz/`: request parsing as
//! the HTTP server runs it on bytes a client controls (query strings and
//! form bodies, and every kind of sendsms request, XML included). Not part
//! of the API: the modules they reach are private, and these functions
//! exist so the fuzzer can reach them without making them public.
//!
//! Each function panics only when an invariant the server relies on breaks,
//! so a fuzzer finding is always a real bug.

use crate::config::SendsmsUser;
use crate::http::request::Params;
use crate::sendsms::{self, Defaults, Incoming};

/// The content types a fuzzed sendsms POST picks from: every kind smsbox
/// reads or refuses, and one it does not know.
const CONTENT_TYPES: &[&[u8]] = &[
    b"application/x-www-form-urlencoded",
    b"text/plain",
    b"text/plain; charset=UTF-16BE",
    b"application/octet-stream",
    b"text/xml",
    b"text/xml; charset=ISO-8859-1",
    b"text/html",
    b"application/json",
];

/// Splits `data` into its pieces at `0xFF` bytes (never valid UTF-8, so a
/// separator the fuzzer learns quickly), at most `n` of them.
fn pieces(data: &[u8], n: usize) -> Vec<&[u8]> {
    data.splitn(n, |&b| b == 0xFF).collect()
}

/// Query-string and form parsing: every pair decodes, and `get` agrees
/// with `all` (the last value wins).
pub fn params(data: &[u8]) {
    let query = String::from_utf8_lossy(data);
    let params = Params::from_query(&query);
    for name in ["password", "text", "to", "id", ""] {
        assert_eq!(params.get(name), params.all(name).last());
    }
}

/// A sendsms request made of `data`: its first byte picks the method and
/// the content type, the rest is query, header value and body separated
/// by `0xFF`. Checks that a request either is refused with smsbox's words
/// or makes at least one message per receiver, with the user it named.
pub fn sendsms(data: &[u8]) {
    let Some((&choice, rest)) = data.split_first() else {
        return;
    };
    let parts = pieces(rest, 3);
    let query = parts.first().copied().unwrap_or_default();
    let header = parts.get(1).copied().unwrap_or_default();
    let body = parts.get(2).copied().unwrap_or_default();
    let content_type = CONTENT_TYPES[usize::from(choice >> 1) % CONTENT_TYPES.len()];
    let headers: Vec<(&str, &[u8])> = vec![
        ("Content-Type", content_type),
        ("X-Kannel-To", header),
        ("X-Kannel-Username", b"u"),
        ("X-Kannel-Password", b"p"),
        ("X-Kannel-UDH", header),
        ("X-Kannel-Coding", header),
    ];
    let mut limited = SendsmsUser::new("u", "p");
    limited.max_messages = Some(3);
    let users = [SendsmsUser::new("u", "p"), limited];
    let incoming = Incoming {
        post: choice & 1 == 1,
        query,
        headers: &headers,
        body,
        client_ip: None,
    };
    let defaults = Defaults {
        global_sender: Some("8500"),
    };
    match sendsms::parse(&users, defaults, &incoming, 1_700_000_000) {
        Ok(request) => {
            assert!(!request.receivers.is_empty(), "accepted without receivers");
            assert!(!request.parts.is_empty(), "accepted without a part");
            assert_eq!(request.username, "u");
            let mut next = 0;
            let messages = request.messages(|| {
                next += 1;
                next
            });
            assert_eq!(
                messages.len(),
                request.receivers.len() * request.parts.len()
            );
        }
        Err(refusal) => {
            assert!((400..600).contains(&refusal.status()));
            assert!(!refusal.to_string().is_empty());
        }
    }
}

/// Kannel's XML POST body alone, through the same parse as [`sendsms`].
pub fn sendsms_xml(data: &[u8]) {
    let headers: Vec<(&str, &[u8])> = vec![("Content-Type", b"text/xml")];
    let users = [SendsmsUser::new("u", "p")];
    let incoming = Incoming {
        post: true,
        query: b"",
        headers: &headers,
        body: data,
        client_ip: None,
    };
    if let Ok(request) = sendsms::parse(&users, Defaults::default(), &incoming, 1_700_000_000) {
        assert!(!request.receivers.is_empty(), "accepted without receivers");
    }
}
