//! The ways a value is written: RFC 3986 percent-encoding (rapidbox's
//! URLs), Kannel's `octstr_url_encode` (everything smsbox expands), hex
//! and text.

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Appends `value` percent-encoded as RFC 3986 says for data in a URL: the
/// unreserved characters `A-Z a-z 0-9 - . _ ~` as they are, every other
/// byte of the UTF-8 as `%XX`. Safe in a path and in a query.
pub fn percent_encode(value: &str, out: &mut String) {
    percent_encode_bytes(value.as_bytes(), out);
}

/// [`percent_encode`] for any bytes (binary message data, a UDH).
pub fn percent_encode_bytes(value: &[u8], out: &mut String) {
    for &byte in value {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            push_hex_escape(byte, out);
        }
    }
}

/// Appends `value` as Kannel's `octstr_url_encode` (gwlib/octstr.c) writes
/// it: RFC 2396's unreserved `A-Z a-z 0-9 - _ . ! ~ * ' ( )` as they are,
/// a space as `+`, every other byte as `%XX`.
pub(crate) fn kannel_url_encode(value: &[u8], out: &mut String) {
    for &byte in value {
        if byte.is_ascii_alphanumeric() || b"-_.!~*'()".contains(&byte) {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            push_hex_escape(byte, out);
        }
    }
}

/// Appends `value` as uppercase hex digits, two a byte.
pub(crate) fn hex(value: &[u8], out: &mut String) {
    for &byte in value {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0F)]));
    }
}

/// Appends `value` as text: UTF-8 as it is, anything else with U+FFFD for
/// each invalid sequence (an output `String` cannot hold it).
pub(crate) fn lossy(value: &[u8], out: &mut String) {
    out.push_str(&String::from_utf8_lossy(value));
}

fn push_hex_escape(byte: u8, out: &mut String) {
    out.push('%');
    out.push(char::from(HEX[usize::from(byte >> 4)]));
    out.push(char::from(HEX[usize::from(byte & 0x0F)]));
}

/// Decodes `%XX` and `+` as Kannel's `octstr_url_decode` does for the
/// parts of meta-data: a `%` without two hex digits after it is kept with
/// the two characters that follow, a `%` with fewer than two characters
/// left ends the value there, and so does a NUL byte.
pub(crate) fn url_decode(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        match byte {
            0 => break,
            b'+' => out.push(b' '),
            b'%' => {
                let Some(digits) = bytes.get(i + 1..i + 3) else {
                    break;
                };
                let hex = |d: u8| char::from(d).to_digit(16);
                match (hex(digits[0]), hex(digits[1])) {
                    (Some(high), Some(low)) => out.extend(u8::try_from(high << 4 | low)),
                    _ => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
                continue;
            }
            other => out.push(other),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(f: fn(&[u8], &mut String), value: &[u8]) -> String {
        let mut out = String::new();
        f(value, &mut out);
        out
    }

    #[test]
    fn rfc3986_leaves_only_the_unreserved() {
        assert_eq!(
            encoded(percent_encode_bytes, b"a-._~Z9 +!*'()%\xff"),
            "a-._~Z9%20%2B%21%2A%27%28%29%25%FF"
        );
    }

    #[test]
    fn kannel_leaves_rfc2396_marks_and_writes_space_as_plus() {
        // What octstr_url_encode's is_safe table and its space rule give.
        assert_eq!(
            encoded(kannel_url_encode, b"a-._~Z9 +!*'()%/:\xc3\xa7"),
            "a-._~Z9+%2B!*'()%25%2F%3A%C3%A7"
        );
    }

    #[test]
    fn hex_and_lossy() {
        assert_eq!(encoded(hex, &[0x06, 0x05, 0xf0]), "0605F0");
        assert_eq!(encoded(lossy, b"a\xffb"), "a\u{fffd}b");
    }

    #[test]
    fn url_decode_takes_plus_and_hex_and_leaves_bad_percents() {
        assert_eq!(url_decode(b"a+b%2B%c3%A7%z+c"), b"a b+\xc3\xa7%z+c");
        assert_eq!(url_decode(b"ab%4"), b"ab");
        assert_eq!(url_decode(b"a\0b"), b"a");
    }
}
