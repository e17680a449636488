//! CSRF protection: every console form carries its session's token in a
//! hidden field, and a POST whose field does not match is refused (403).
//!
//! The session cookie is also `SameSite=Strict`, so browsers do not send
//! it on cross-site requests at all; the token covers older browsers and
//! anything that gets around that.

use subtle::ConstantTimeEq;

/// The hidden field's name.
pub const FIELD: &str = "csrf";

/// Whether `given` is `expected`, compared in constant time so that the
/// comparison leaks nothing about how much of the token was right.
pub fn matches(expected: &str, given: Option<&str>) -> bool {
    match given {
        Some(given) if !expected.is_empty() => {
            bool::from(expected.as_bytes().ct_eq(given.as_bytes()))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_same_token_matches() {
        assert!(matches("abc", Some("abc")));
        assert!(!matches("abc", Some("abd")));
        assert!(!matches("abc", Some("ab")));
        assert!(!matches("abc", None));
        assert!(!matches("", Some("")));
    }
}
