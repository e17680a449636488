//! `[http] password`, httprouter's `ROUTER_PASSWORD`: given as the
//! `password` parameter (query string or form) or as
//! `Authorization: Bearer PASSWORD`.
//!
//! Compared in constant time, so the time an answer takes says nothing
//! about how much of a guess was right.

use hyper::header::AUTHORIZATION;
use hyper::HeaderMap;
use subtle::ConstantTimeEq;

use super::request::Params;

/// Whether the request may use a protected endpoint: always when no
/// password is configured, otherwise when any of the places a password can
/// be given holds the right one.
pub fn authorized(expected: Option<&str>, params: &Params, headers: &HeaderMap) -> bool {
    let Some(expected) = expected else {
        return true;
    };
    let bearer = headers
        .get_all(AUTHORIZATION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(bearer_token);
    let mut ok = false;
    // Every candidate is compared, so the answer takes as long whichever
    // one matches.
    for given in params.all("password").chain(bearer) {
        ok |= same(given, expected);
    }
    ok
}

/// The token of an `Authorization: Bearer TOKEN` value (the scheme is
/// case-insensitive, RFC 9110).
fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Constant-time equality (only the lengths may show).
fn same(given: &str, expected: &str) -> bool {
    given.as_bytes().ct_eq(expected.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn params(pairs: &[(&str, &str)]) -> Params {
        Params::from_pairs(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
    }

    #[test]
    fn no_password_configured_lets_everyone_in() {
        assert!(authorized(None, &params(&[]), &HeaderMap::new()));
    }

    #[test]
    fn the_password_is_found_in_parameters_or_a_bearer_header() {
        let none = HeaderMap::new();
        assert!(authorized(
            Some("s3"),
            &params(&[("password", "s3")]),
            &none
        ));
        assert!(!authorized(
            Some("s3"),
            &params(&[("password", "s4")]),
            &none
        ));
        assert!(!authorized(
            Some("s3"),
            &params(&[("password", "s")]),
            &none
        ));
        assert!(!authorized(Some("s3"), &params(&[]), &none));
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  s3 "));
        assert!(authorized(Some("s3"), &params(&[]), &headers));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic s3"));
        assert!(!authorized(Some("s3"), &params(&[]), &headers));
    }
}
