//! Redirects followed as Kannel 1.4.5's HTTP client follows them when
//! smsbox asks it to (gwlib/http.c: `http_start_request` with `follow`,
//! then `get_redirection_location` and `recover_absolute_uri`), which it
//! does for every sms-service URL and every dlr-url.
//!
//! An answer 301, 302, 303 or 307 that names a `Location` is not the
//! answer; the same request (same method, headers and body, even a POST
//! after a 303) goes to that location instead, at most [`MAX_FOLLOW`]
//! times. The answer after the last one allowed is the answer, redirect or
//! not. rapidbox's own HTTP calls (webhooks, push) follow none.

use hyper::{StatusCode, Uri};

/// Redirects followed for one request: http.c's `HTTP_MAX_FOLLOW`.
pub const MAX_FOLLOW: u32 = 5;

/// Where an answer sends the request next: `None` when it is not a
/// redirect smsbox follows, or names no location.
///
/// A location that starts with `/` is made absolute on `from`'s scheme
/// and authority (`recover_absolute_uri`); any other is taken as it is,
/// as smsbox takes it (so a relative one without `/` fails to fetch).
pub fn location(status: StatusCode, headers: &hyper::HeaderMap, from: &str) -> Option<String> {
    if !matches!(status.as_u16(), 301 | 302 | 303 | 307) {
        return None;
    }
    let value = headers.get(hyper::header::LOCATION)?;
    let value = String::from_utf8_lossy(value.as_bytes());
    // octstr_strip_blanks.
    let value = value.trim_matches(|c: char| c.is_ascii_whitespace());
    if !value.starts_with('/') {
        return Some(value.to_owned());
    }
    let from: Uri = from.parse().ok()?;
    let scheme = from.scheme_str().unwrap_or("http");
    let authority = from.authority()?;
    Some(format!("{scheme}://{authority}{value}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::{HeaderValue, LOCATION};
    use hyper::HeaderMap;

    fn headers(location: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(LOCATION, HeaderValue::from_str(location).unwrap());
        h
    }

    #[test]
    fn the_four_redirects_smsbox_follows_and_no_other() {
        let h = headers("http://other:81/x");
        for code in [301, 302, 303, 307] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(
                location(status, &h, "http://h/").as_deref(),
                Some("http://other:81/x"),
                "{code}"
            );
        }
        for code in [200, 300, 304, 305, 308, 404] {
            let status = StatusCode::from_u16(code).unwrap();
            assert_eq!(location(status, &h, "http://h/"), None, "{code}");
        }
        assert_eq!(
            location(StatusCode::FOUND, &HeaderMap::new(), "http://h/"),
            None
        );
    }

    #[test]
    fn a_location_from_the_root_takes_the_request_s_scheme_and_host() {
        let h = headers("  /next?a=1 ");
        assert_eq!(
            location(StatusCode::FOUND, &h, "https://u:p@h:8443/first?x").as_deref(),
            Some("https://u:p@h:8443/next?a=1")
        );
        let h = headers("elsewhere");
        assert_eq!(
            location(StatusCode::FOUND, &h, "http://h/").as_deref(),
            Some("elsewhere"),
            "taken as it is, and then fails as in smsbox"
        );
    }
}
