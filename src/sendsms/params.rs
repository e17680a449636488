//! The fields of a sendsms request, whichever way they came: a GET's query
//! (or a POST form), `X-Kannel-*` headers, or an XML document. Each source
//! fills one [`Fields`]; the checks then read it the same way.

/// Kannel's "not set" for the integer fields (`SMS_PARAM_UNDEFINED`).
pub const UNSET: i32 = -1;

/// Every field a sendsms request may carry, as bytes where smsbox keeps
/// bytes (a `text` in any charset, a binary `udh`), the integers read as
/// smsbox reads them ([`scan_int`]), [`UNSET`] when absent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields {
    pub username: Option<Vec<u8>>,
    pub password: Option<Vec<u8>>,
    pub from: Option<Vec<u8>>,
    /// The receivers, separated by white space.
    pub to: Option<Vec<u8>>,
    /// The receivers of an XML POST (one `<da>` each), in place of `to`.
    pub receivers: Option<Vec<String>>,
    pub text: Option<Vec<u8>>,
    pub charset: Option<Vec<u8>>,
    pub udh: Option<Vec<u8>>,
    pub smsc: Option<Vec<u8>>,
    pub account: Option<Vec<u8>>,
    pub binfo: Option<Vec<u8>>,
    pub dlr_url: Option<Vec<u8>>,
    pub meta_data: Option<Vec<u8>>,
    pub dlr_mask: i32,
    pub mclass: i32,
    pub mwi: i32,
    pub pid: i32,
    pub rpi: i32,
    pub alt_dcs: i32,
    pub coding: i32,
    pub compress: i32,
    pub validity: i32,
    pub deferred: i32,
    pub priority: i32,
}

impl Default for Fields {
    fn default() -> Fields {
        Fields {
            username: None,
            password: None,
            from: None,
            to: None,
            receivers: None,
            text: None,
            charset: None,
            udh: None,
            smsc: None,
            account: None,
            binfo: None,
            dlr_url: None,
            meta_data: None,
            dlr_mask: UNSET,
            mclass: UNSET,
            mwi: UNSET,
            pid: UNSET,
            rpi: UNSET,
            alt_dcs: UNSET,
            coding: UNSET,
            compress: UNSET,
            validity: UNSET,
            deferred: UNSET,
            priority: UNSET,
        }
    }
}

/// Where a named field goes. One table for the query and the headers, so a
/// field added here is read from both.
enum Slot {
    Bytes(fn(&mut Fields) -> &mut Option<Vec<u8>>),
    Int(fn(&mut Fields) -> &mut i32),
}

/// The CGI names smsbox reads (`smsbox_req_sendsms`), in its order of
/// preference (`username` before `user`, `dlr-url` before the deprecated
/// `dlrurl`), and the `X-Kannel-*` header of each field where there is one
/// (`get_x_kannel_from_headers`). One table for the query and the headers,
/// so a field added here is read from both.
const NAMES: &[(&[&str], Option<&str>, Slot)] = &[
    (
        &["username", "user"],
        Some("x-kannel-username"),
        Slot::Bytes(|f| &mut f.username),
    ),
    (
        &["password", "pass"],
        Some("x-kannel-password"),
        Slot::Bytes(|f| &mut f.password),
    ),
    (
        &["from"],
        Some("x-kannel-from"),
        Slot::Bytes(|f| &mut f.from),
    ),
    (&["to"], Some("x-kannel-to"), Slot::Bytes(|f| &mut f.to)),
    (&["text"], None, Slot::Bytes(|f| &mut f.text)),
    (&["charset"], None, Slot::Bytes(|f| &mut f.charset)),
    (&["udh"], Some("x-kannel-udh"), Slot::Bytes(|f| &mut f.udh)),
    (
        &["smsc"],
        Some("x-kannel-smsc"),
        Slot::Bytes(|f| &mut f.smsc),
    ),
    (
        &["account"],
        Some("x-kannel-account"),
        Slot::Bytes(|f| &mut f.account),
    ),
    (
        &["binfo"],
        Some("x-kannel-binfo"),
        Slot::Bytes(|f| &mut f.binfo),
    ),
    (
        &["dlr-url", "dlrurl"],
        Some("x-kannel-dlr-url"),
        Slot::Bytes(|f| &mut f.dlr_url),
    ),
    (
        &["meta-data"],
        Some("x-kannel-meta-data"),
        Slot::Bytes(|f| &mut f.meta_data),
    ),
    (
        &["dlr-mask", "dlrmask"],
        Some("x-kannel-dlr-mask"),
        Slot::Int(|f| &mut f.dlr_mask),
    ),
    (
        &["mclass"],
        Some("x-kannel-mclass"),
        Slot::Int(|f| &mut f.mclass),
    ),
    (&["mwi"], Some("x-kannel-mwi"), Slot::Int(|f| &mut f.mwi)),
    (&["pid"], Some("x-kannel-pid"), Slot::Int(|f| &mut f.pid)),
    (&["rpi"], Some("x-kannel-rpi"), Slot::Int(|f| &mut f.rpi)),
    (
        &["alt-dcs"],
        Some("x-kannel-alt-dcs"),
        Slot::Int(|f| &mut f.alt_dcs),
    ),
    (
        &["coding"],
        Some("x-kannel-coding"),
        Slot::Int(|f| &mut f.coding),
    ),
    (
        &["compress"],
        Some("x-kannel-compress"),
        Slot::Int(|f| &mut f.compress),
    ),
    (
        &["validity"],
        Some("x-kannel-validity"),
        Slot::Int(|f| &mut f.validity),
    ),
    (
        &["deferred"],
        Some("x-kannel-deferred"),
        Slot::Int(|f| &mut f.deferred),
    ),
    (
        &["priority"],
        Some("x-kannel-priority"),
        Slot::Int(|f| &mut f.priority),
    ),
];

impl Fields {
    /// The fields of URL-encoded `name=value` pairs (a GET's query, a POST
    /// form). As smsbox's `http_cgi_variable`, the first value of a name
    /// counts and later ones are ignored; an alias counts only when the
    /// main name is absent.
    pub fn from_cgi(encoded: &[&[u8]]) -> Fields {
        let mut fields = Fields::default();
        // One pass over the pairs. For each field, the rank (the place in
        // its list of names) of the pair it holds: a later pair replaces it
        // only under a name ranked before, so the first value of the main
        // name wins, then the first of an alias. Only the values of known
        // names are decoded.
        let mut held = [usize::MAX; NAMES.len()];
        let pairs = encoded
            .iter()
            .flat_map(|part| part.split(|&b| b == b'&'))
            .filter(|pair| !pair.is_empty());
        for pair in pairs {
            let (name, value) = match pair.iter().position(|&b| b == b'=') {
                Some(at) => (&pair[..at], &pair[at + 1..]),
                None => (pair, &b""[..]),
            };
            let name = decode_name(name);
            let Some((field, rank)) = NAMES.iter().enumerate().find_map(|(i, (names, _, _))| {
                let rank = names.iter().position(|n| n.as_bytes() == &*name)?;
                Some((i, rank))
            }) else {
                continue;
            };
            if rank >= held[field] {
                continue;
            }
            held[field] = rank;
            match &NAMES[field].2 {
                Slot::Bytes(slot) => *slot(&mut fields) = Some(percent_decode(value)),
                // The pair chosen decides, even when it holds no number.
                Slot::Int(slot) => {
                    *slot(&mut fields) = scan_int(&percent_decode(value)).unwrap_or(UNSET)
                }
            }
        }
        fields
    }

    /// The fields of a POST's `X-Kannel-*` headers (names compared without
    /// case). As smsbox's `get_x_kannel_from_headers`: values lose their
    /// surrounding blanks, a later header overrides an earlier one, and the
    /// UDH is hexadecimal (or, failing that, URL-encoded).
    pub fn from_headers<'h>(headers: impl IntoIterator<Item = (&'h str, &'h [u8])>) -> Fields {
        let mut fields = Fields::default();
        for (name, value) in headers {
            let Some((_, _, slot)) = NAMES
                .iter()
                .find(|(_, header, _)| header.is_some_and(|h| h.eq_ignore_ascii_case(name)))
            else {
                continue;
            };
            match slot {
                Slot::Bytes(field) => {
                    let value = strip_blanks(value);
                    let value = if name.eq_ignore_ascii_case("x-kannel-udh") {
                        unhex(value).unwrap_or_else(|| percent_decode(value))
                    } else {
                        value.to_vec()
                    };
                    *field(&mut fields) = Some(value);
                }
                Slot::Int(field) => {
                    if let Some(n) = scan_int(value) {
                        *field(&mut fields) = n;
                    }
                }
            }
        }
        fields
    }
}

/// An integer as C's `sscanf("%d")` reads it, which is how smsbox reads
/// every integer field: leading white space, a sign, digits, and whatever
/// follows ignored (`"12abc"` is 12). `None` when no digit comes, and
/// smsbox then leaves the field unset. Beyond `i32` it saturates.
pub fn scan_int(value: &[u8]) -> Option<i32> {
    let rest = strip_leading_blanks(value);
    let (negative, rest) = match rest.first() {
        Some(b'-') => (true, &rest[1..]),
        Some(b'+') => (false, &rest[1..]),
        _ => (false, rest),
    };
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let magnitude = rest[..digits].iter().fold(0i64, |n, &d| {
        n.saturating_mul(10).saturating_add(i64::from(d - b'0'))
    });
    let n = if negative { -magnitude } else { magnitude };
    Some(i32::try_from(n).unwrap_or(if negative { i32::MIN } else { i32::MAX }))
}

fn strip_leading_blanks(value: &[u8]) -> &[u8] {
    let start = value
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(value.len());
    &value[start..]
}

/// Kannel's `octstr_strip_blanks`: white space off both ends.
pub fn strip_blanks(value: &[u8]) -> &[u8] {
    let value = strip_leading_blanks(value);
    let end = value
        .iter()
        .rposition(|b| !b.is_ascii_whitespace())
        .map_or(0, |at| at + 1);
    &value[..end]
}

/// A parameter's name, URL-decoded; as it came when it holds nothing to
/// decode (every name smsbox reads), without a copy.
fn decode_name(name: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    if name.iter().any(|&b| b == b'%' || b == b'+') {
        std::borrow::Cow::Owned(percent_decode(name))
    } else {
        std::borrow::Cow::Borrowed(name)
    }
}

/// Hex and URL-decoding are Kannel XML's too (one copy, below both).
pub use crate::kannel_xml::{unhex, url_decode as percent_decode};

#[cfg(test)]
mod tests {
    use super::*;

    fn cgi(query: &str) -> Fields {
        Fields::from_cgi(&[query.as_bytes()])
    }

    #[test]
    fn the_first_value_of_a_repeated_parameter_counts_as_in_smsbox() {
        let f = cgi("text=first&to=1&text=second&to=2&coding=2&coding=0");
        assert_eq!(f.text.as_deref(), Some(&b"first"[..]));
        assert_eq!(f.to.as_deref(), Some(&b"1"[..]));
        assert_eq!(f.coding, 2);
    }

    #[test]
    fn aliases_count_only_without_the_main_name() {
        let f = cgi("user=a&username=b&pass=x&dlrurl=http://old&dlr-mask=3&dlrmask=5");
        assert_eq!(f.username.as_deref(), Some(&b"b"[..]));
        assert_eq!(f.password.as_deref(), Some(&b"x"[..]));
        assert_eq!(f.dlr_url.as_deref(), Some(&b"http://old"[..]));
        assert_eq!(f.dlr_mask, 3);
        // The main name wins wherever it comes, even when it holds no
        // number (the field is then unset, as smsbox's sscanf leaves it).
        let f = cgi("dlrmask=5&pass=y&dlr-mask=3&password=z&dlrmask=6");
        assert_eq!((f.dlr_mask, f.password.as_deref()), (3, Some(&b"z"[..])));
        let f = cgi("dlrmask=5&dlr-mask=x");
        assert_eq!(f.dlr_mask, UNSET);
        // Names are compared URL-decoded; unknown names are skipped.
        let f = cgi("%74o=1&t%65xt=a+b&nonsense=%zz&to=2");
        assert_eq!(f.to.as_deref(), Some(&b"1"[..]));
        assert_eq!(f.text.as_deref(), Some(&b"a b"[..]));
    }

    #[test]
    fn values_are_bytes_and_integers_are_read_as_sscanf_reads_them() {
        let f = cgi(
            "text=h%E9+x&udh=%06%05&mclass=1abc&pid=abc&mwi=+2&validity=%20-1&priority=99999999999",
        );
        assert_eq!(f.text.as_deref(), Some(&b"h\xe9 x"[..]));
        assert_eq!(f.udh.as_deref(), Some(&[6u8, 5][..]));
        assert_eq!((f.mclass, f.pid, f.mwi, f.validity), (1, UNSET, 2, -1));
        assert_eq!(f.priority, i32::MAX);
        assert_eq!(scan_int(b"-"), None);
        assert_eq!(scan_int(b"  -7x"), Some(-7));
    }

    #[test]
    fn headers_are_stripped_the_last_wins_and_the_udh_is_hex() {
        let headers: Vec<(&str, &[u8])> = vec![
            ("X-Kannel-Username", b" tester "),
            ("x-kannel-to", b"1 2"),
            ("X-Kannel-To", b"3\t4"),
            ("X-Kannel-UDH", b"0605040B8423F0"),
            ("X-Kannel-Meta-Data", b"?smpp?a=b"),
            ("X-Kannel-Compress", b"1"),
            ("X-Kannel-Coding", b"x"),
            ("Content-Type", b"text/plain"),
        ];
        let f = Fields::from_headers(headers);
        assert_eq!(f.username.as_deref(), Some(&b"tester"[..]));
        assert_eq!(f.to.as_deref(), Some(&b"3\t4"[..]));
        assert_eq!(
            f.udh.as_deref(),
            Some(&[6u8, 5, 4, 0x0b, 0x84, 0x23, 0xf0][..])
        );
        assert_eq!(f.meta_data.as_deref(), Some(&b"?smpp?a=b"[..]));
        assert_eq!((f.compress, f.coding), (1, UNSET));
        // Only the headers: no text, no charset, no query aliases.
        assert_eq!((f.text, f.charset), (None, None));
        let f = Fields::from_headers([("X-Kannel-UDH", &b"%06%05"[..])]);
        assert_eq!(f.udh.as_deref(), Some(&[6u8, 5][..]));
    }

    #[test]
    fn percent_decoding_keeps_what_is_not_an_escape() {
        assert_eq!(percent_decode(b"h%E9+x%4%zz"), b"h\xe9 x%4%zz");
        assert_eq!(unhex(b"0g"), None);
        assert_eq!(strip_blanks(b" \t a b \r\n"), b"a b");
    }
}
