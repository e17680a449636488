//! SMS text coding: turning an MO's `msgdata` into text, and choosing how an
//! MT's text goes on the wire.
//!
//! Kannel 1.4's internal charset for 7-bit text is UTF-8: the SMSC modules
//! convert GSM 03.38 to UTF-8 for MOs and back for MTs, so rapidbox never
//! packs septets itself. What it must get right is which bytes are text in
//! which charset (`coding` and `charset` of the `sms` message), and when an
//! MT's text cannot be said in the GSM alphabet and must go as UCS-2.

use std::borrow::Cow;
use std::fmt::Write as _;

/// Box protocol `coding` values (the `sms` message's field 15).
pub mod coding {
    /// Not given: Kannel treats it as 7-bit (8-bit with a UDH). smsbox
    /// leaves a `text`, `file` or `exec` reply so.
    pub const UNSET: i32 = -1;
    /// 7-bit text, carried as UTF-8 between bearerbox and boxes.
    pub const SEVEN_BIT: i32 = 0;
    /// 8-bit data.
    pub const EIGHT_BIT: i32 = 1;
    /// UCS-2 text, carried as UTF-16BE.
    pub const UCS2: i32 = 2;
}

/// An MO's payload as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedText {
    /// The message as text. Bytes that do not decode became U+FFFD.
    pub text: String,
    /// For 8-bit (`coding` 1) messages, the payload exactly as it came; the
    /// [`text`](Self::text) is then only a rendering for people.
    pub binary: Option<Vec<u8>>,
}

/// Decodes an MO's `msgdata` by its `coding` and `charset`. Never fails and
/// never panics: bytes that do not decode become U+FFFD.
///
/// - `coding` 0 or -1 (and any value Kannel does not define): UTF-8, or the
///   charset `charset` names when it names one other than UTF-8.
/// - `coding` 2: UTF-16BE (UCS-2, with surrogate pairs decoded); `charset`
///   is ignored. A trailing odd byte becomes U+FFFD.
/// - `coding` 1: binary, kept in [`DecodedText::binary`]. The text is the
///   payload decoded with `charset` when it names a known charset (an SMSC
///   that sends 8-bit text says which); otherwise the payload itself when it
///   is UTF-8 with no control characters but tab, CR and LF; otherwise the
///   payload in lowercase hex, two digits a byte, so nothing is hidden
///   behind replacement characters.
///
/// `charset` names are WHATWG encoding labels (case-insensitive:
/// `ISO-8859-1`, `WINDOWS-1252`, `KOI8-R`, ...), plus `UTF-16BE`, `UTF-16`,
/// `UCS-2` and `UCS-2BE`, all read big-endian as Kannel writes them. An
/// unknown name is ignored. Note that WHATWG reads `ISO-8859-1` as
/// WINDOWS-1252, which differs only in 0x80..0x9F (printable there instead
/// of C1 controls).
pub fn decode_mo(msgdata: &[u8], coding: i32, charset: Option<&str>) -> DecodedText {
    let named = charset.and_then(Charset::from_name);
    match coding {
        coding::UCS2 => DecodedText {
            text: decode_utf16be(msgdata),
            binary: None,
        },
        coding::EIGHT_BIT => {
            let text = match named {
                Some(charset) => charset.decode(msgdata),
                None => match std::str::from_utf8(msgdata) {
                    Ok(s) if !s.chars().any(is_hidden_control) => s.to_owned(),
                    _ => to_hex(msgdata),
                },
            };
            DecodedText {
                text,
                binary: Some(msgdata.to_vec()),
            }
        }
        _ => DecodedText {
            text: named.unwrap_or(Charset::Utf8).decode(msgdata),
            binary: None,
        },
    }
}

/// Whether [`decode_mo`] knows the charset `name` (rather than ignoring
/// it): what an sms-service answer's charset must be.
pub fn is_known_charset(name: &str) -> bool {
    Charset::from_name(name).is_some()
}

/// Whether every character of `text` is in the GSM 03.38 default alphabet
/// or its extension table, so an SMSC can send it as 7-bit text.
pub fn fits_gsm7(text: &str) -> bool {
    text.chars().all(is_gsm7)
}

/// How an MT's text goes to the bearerbox: `(coding, msgdata)`.
///
/// Text that [fits the GSM alphabet](fits_gsm7) goes as `coding` 0 with its
/// UTF-8 bytes (the bearerbox converts it to GSM for the SMSC); anything
/// else goes as `coding` 2 with UTF-16BE bytes, so no character is lost.
pub fn encode_mt(text: &str) -> (i32, Vec<u8>) {
    if fits_gsm7(text) {
        (coding::SEVEN_BIT, text.as_bytes().to_vec())
    } else {
        let bytes = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
        (coding::UCS2, bytes)
    }
}

/// How many septets `c` takes in the GSM alphabet: 1 for the default
/// alphabet, 2 for the extension table (escape + code), `None` when it is
/// not GSM at all.
pub fn gsm7_septets(c: char) -> Option<usize> {
    if !is_gsm7(c) {
        None
    } else if GSM7_EXTENSION.iter().any(|&(_, e)| e == c) {
        Some(2)
    } else {
        Some(1)
    }
}

/// `bytes` decoded from the charset `name`, or `None` when the charset is
/// unknown or the bytes are not valid in it: what a sendsms request's text
/// must pass, as Kannel's iconv conversion must (smsbox's
/// `charset_processing`). Unlike [`decode_mo`], `ISO-8859-1` is Latin-1
/// exactly, as iconv reads it.
pub fn decode_strict(bytes: &[u8], name: &str) -> Option<String> {
    // iconv's ISO-8859-1 is Latin-1 itself (0x80..0x9F are C1 controls),
    // not the WINDOWS-1252 WHATWG reads under that name.
    const LATIN1: [&str; 5] = ["ISO-8859-1", "ISO8859-1", "ISO_8859-1", "LATIN1", "L1"];
    if LATIN1.iter().any(|l| l.eq_ignore_ascii_case(name.trim())) {
        return Some(bytes.iter().copied().map(char::from).collect());
    }
    match Charset::from_name(name)? {
        Charset::Utf8 => std::str::from_utf8(bytes).ok().map(str::to_owned),
        Charset::Utf16Be => {
            if bytes.len() % 2 != 0 {
                return None;
            }
            let units = bytes
                .chunks_exact(2)
                .map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
            char::decode_utf16(units)
                .collect::<Result<String, _>>()
                .ok()
        }
        Charset::Other(encoding) => {
            let (text, had_errors) = encoding.decode_without_bom_handling(bytes);
            (!had_errors).then(|| text.into_owned())
        }
    }
}

/// `text` converted to the charset `name` as Kannel's `charset_convert`
/// converts an MO's UTF-8 for a service's `alt-charset` (iconv, going on
/// past what cannot be converted): each character the charset has becomes
/// its bytes there, any other stays as its UTF-8 bytes. `None` when the
/// charset is unknown (smsbox then leaves the text as it is).
pub fn encode_lenient(text: &str, name: &str) -> Option<Vec<u8>> {
    const LATIN1: [&str; 5] = ["ISO-8859-1", "ISO8859-1", "ISO_8859-1", "LATIN1", "L1"];
    if LATIN1.iter().any(|l| l.eq_ignore_ascii_case(name.trim())) {
        let mut out = Vec::with_capacity(text.len());
        for c in text.chars() {
            match u8::try_from(u32::from(c)) {
                Ok(b) => out.push(b),
                Err(_) => out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes()),
            }
        }
        return Some(out);
    }
    match Charset::from_name(name)? {
        Charset::Utf8 => Some(text.as_bytes().to_vec()),
        Charset::Utf16Be => Some(text.encode_utf16().flat_map(u16::to_be_bytes).collect()),
        Charset::Other(encoding) => {
            let (all, _, had_errors) = encoding.encode(text);
            if !had_errors {
                return Some(all.into_owned());
            }
            // Character by character, to keep what the charset lacks as
            // its UTF-8 (encoding_rs would write an HTML entity).
            let mut out = Vec::with_capacity(text.len());
            let mut one = [0u8; 4];
            for c in text.chars() {
                let c = c.encode_utf8(&mut one);
                let (bytes, _, bad) = encoding.encode(c);
                out.extend_from_slice(if bad { c.as_bytes() } else { &bytes });
            }
            Some(out)
        }
    }
}

/// A 7-bit text as smsbox sends it: read as Kannel's `charset_utf8_to_gsm`
/// reads UTF-8 (two- and three-byte sequences, any other byte as the
/// Latin-1 character of that code, an incomplete sequence at the end
/// dropped) and every character the GSM alphabet lacks made `?` — the
/// round trip through GSM that `extract_msgdata_part_by_coding` (gw/sms.c)
/// gives every 7-bit text. For valid text of the Basic Multilingual Plane
/// that is simply each non-GSM character turned into `?`.
pub fn as_gsm(utf8: &[u8]) -> String {
    let mut text = String::with_capacity(utf8.len());
    let mut i = 0;
    while i < utf8.len() {
        let lead = u32::from(utf8[i]);
        let rest = |n: usize| utf8.get(i + n).map_or(0, |&b| u32::from(b) & 0x3F);
        let (code, len) = if lead & 0xE0 == 0xC0 {
            ((lead & 0x1F) << 6 | rest(1), 2)
        } else if lead & 0xF0 == 0xE0 {
            ((lead & 0x0F) << 12 | rest(1) << 6 | rest(2), 3)
        } else {
            (lead, 1)
        };
        i += len;
        if i > utf8.len() {
            // Kannel skips an incomplete sequence at the end.
            break;
        }
        text.push(gsm_or_question_mark(code));
    }
    text
}

/// The character `code` if the GSM alphabet has it, else `?`; Kannel's
/// Latin-1 table also writes `ç` as GSM's `Ç`.
fn gsm_or_question_mark(code: u32) -> char {
    if code == 0xE7 {
        return 'Ç';
    }
    char::from_u32(code)
        .filter(|&c| gsm7_septets(c).is_some())
        .unwrap_or('?')
}

/// The GSM 03.38 default alphabet in code order (0x00..=0x7F). Slot 0x1B is
/// the escape to the extension table, not a character: it holds U+001B
/// here and [`is_gsm7`] never accepts it.
const GSM7_BASIC: [char; 128] = [
    '@', '£', '$', '¥', 'è', 'é', 'ù', 'ì', 'ò', 'Ç', '\n', 'Ø', 'ø', '\r', 'Å', 'å', //
    'Δ', '_', 'Φ', 'Γ', 'Λ', 'Ω', 'Π', 'Ψ', 'Σ', 'Θ', 'Ξ', '\u{1b}', 'Æ', 'æ', 'ß', 'É', //
    ' ', '!', '"', '#', '¤', '%', '&', '\'', '(', ')', '*', '+', ',', '-', '.', '/', //
    '0', '1', '2', '3', '4', '5', '6', '7', '8', '9', ':', ';', '<', '=', '>', '?', //
    '¡', 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'N', 'O', //
    'P', 'Q', 'R', 'S', 'T', 'U', 'V', 'W', 'X', 'Y', 'Z', 'Ä', 'Ö', 'Ñ', 'Ü', '§', //
    '¿', 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', //
    'p', 'q', 'r', 's', 't', 'u', 'v', 'w', 'x', 'y', 'z', 'ä', 'ö', 'ñ', 'ü', 'à', //
];

/// The escape character's slot in [`GSM7_BASIC`].
const GSM7_ESCAPE: usize = 0x1B;

/// The GSM 03.38 extension table: (code after the escape, character).
const GSM7_EXTENSION: [(u8, char); 10] = [
    (0x0A, '\u{c}'), // form feed (page break)
    (0x14, '^'),
    (0x28, '{'),
    (0x29, '}'),
    (0x2F, '\\'),
    (0x3C, '['),
    (0x3D, '~'),
    (0x3E, ']'),
    (0x40, '|'),
    (0x65, '€'),
];

/// Which ASCII characters are GSM, bit `c` for character `c`; built from
/// the two tables above so the alphabet is written down once. ASCII is most
/// of what people send, so it gets a single lookup.
const GSM7_ASCII: u128 = {
    let mut bits = 0u128;
    let mut i = 0;
    while i < GSM7_BASIC.len() {
        let c = GSM7_BASIC[i] as u32;
        if c < 128 && i != GSM7_ESCAPE {
            bits |= 1 << c;
        }
        i += 1;
    }
    let mut i = 0;
    while i < GSM7_EXTENSION.len() {
        let c = GSM7_EXTENSION[i].1 as u32;
        if c < 128 {
            bits |= 1 << c;
        }
        i += 1;
    }
    bits
};

/// Whether one character is in the GSM default alphabet or its extension.
fn is_gsm7(c: char) -> bool {
    let code = c as u32;
    if code < 128 {
        return GSM7_ASCII & (1 << code) != 0;
    }
    // Only about forty non-ASCII characters qualify; a scan of the tables is
    // cheap next to the bearerbox round trip, and keeps one source of truth.
    GSM7_BASIC.contains(&c) || GSM7_EXTENSION.iter().any(|&(_, e)| e == c)
}

/// A control character that would be invisible or disruptive in a log or a
/// console (line breaks and tabs are fine).
fn is_hidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// A charset an MO may name in its `charset` field.
#[derive(Debug, Clone, Copy)]
enum Charset {
    Utf8,
    /// Big-endian UTF-16: what Kannel means by UCS-2 and UTF-16BE.
    Utf16Be,
    Other(&'static encoding_rs::Encoding),
}

impl Charset {
    fn from_name(name: &str) -> Option<Charset> {
        let name = name.trim();
        // WHATWG reads an unmarked "UTF-16" as little-endian; Kannel and
        // RFC 2781 mean big-endian, as do the UCS-2 names WHATWG lacks.
        for big_endian in ["UTF-16BE", "UTF-16", "UCS-2", "UCS-2BE", "ISO-10646-UCS-2"] {
            if name.eq_ignore_ascii_case(big_endian) {
                return Some(Charset::Utf16Be);
            }
        }
        match encoding_rs::Encoding::for_label(name.as_bytes()) {
            Some(encoding) if encoding == encoding_rs::UTF_8 => Some(Charset::Utf8),
            // The "replacement" encoding turns any input into one U+FFFD:
            // better to read such bytes as UTF-8.
            Some(encoding) if encoding == encoding_rs::REPLACEMENT => None,
            Some(encoding) => Some(Charset::Other(encoding)),
            None => None,
        }
    }

    fn decode(self, bytes: &[u8]) -> String {
        match self {
            Charset::Utf8 => String::from_utf8_lossy(bytes).into_owned(),
            Charset::Utf16Be => decode_utf16be(bytes),
            Charset::Other(encoding) => {
                // The charset was declared: a byte order mark must not
                // override it.
                let (text, _had_errors) = encoding.decode_without_bom_handling(bytes);
                Cow::into_owned(text)
            }
        }
    }
}

/// UTF-16BE to text, lossy: lone surrogates and a trailing odd byte become
/// U+FFFD.
fn decode_utf16be(bytes: &[u8]) -> String {
    let pairs = bytes.chunks_exact(2);
    let odd = !pairs.remainder().is_empty();
    let units = pairs.map(|pair| u16::from_be_bytes([pair[0], pair[1]]));
    let mut text: String = char::decode_utf16(units)
        .map(|unit| unit.unwrap_or(char::REPLACEMENT_CHARACTER))
        .collect();
    if odd {
        text.push(char::REPLACEMENT_CHARACTER);
    }
    text
}

fn to_hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        // Writing to a String cannot fail.
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn alt_charset_conversion_keeps_what_the_charset_lacks_as_utf8() {
        assert_eq!(
            encode_lenient("café €", "ISO-8859-1").unwrap(),
            b"caf\xe9 \xe2\x82\xac"
        );
        assert_eq!(encode_lenient("café", "windows-1252").unwrap(), b"caf\xe9");
        assert_eq!(encode_lenient("é", "UTF-8").unwrap(), "é".as_bytes());
        assert!(encode_lenient("x", "no-such-charset").is_none());
    }

    #[test]
    fn every_character_of_the_gsm_alphabet_fits() {
        for (code, &c) in GSM7_BASIC.iter().enumerate() {
            if code != GSM7_ESCAPE {
                assert!(fits_gsm7(&c.to_string()), "{c:?} (0x{code:02X}) should fit");
            }
        }
        for (code, c) in GSM7_EXTENSION {
            assert!(
                fits_gsm7(&c.to_string()),
                "{c:?} (ext 0x{code:02X}) should fit"
            );
        }
        assert!(fits_gsm7("^{}\\[~]|€\u{c}"));
        assert!(fits_gsm7(
            "Hello @ 10:30, £5 / ¥7 ¿Qué? ¡Olé! §3 ΔΦΓΛΩΠΨΣΘΞ ÆæßÉ ÄÖÑÜäöñüà"
        ));
        assert!(fits_gsm7(""));
    }

    #[test]
    fn the_alphabet_tables_are_the_real_ones() {
        // 127 characters (128 slots less the escape), all distinct, plus 10
        // in the extension, none of which is also in the basic table.
        let basic: std::collections::BTreeSet<char> = GSM7_BASIC
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != GSM7_ESCAPE)
            .map(|(_, &c)| c)
            .collect();
        assert_eq!(basic.len(), 127);
        assert!(GSM7_EXTENSION.iter().all(|(_, c)| !basic.contains(c)));
        // Spot checks against 3GPP TS 23.038 code points.
        assert_eq!(GSM7_BASIC[0x00], '@');
        assert_eq!(GSM7_BASIC[0x02], '$');
        assert_eq!(GSM7_BASIC[0x09], 'Ç');
        assert_eq!(GSM7_BASIC[0x11], '_');
        assert_eq!(GSM7_BASIC[0x24], '¤');
        assert_eq!(GSM7_BASIC[0x40], '¡');
        assert_eq!(GSM7_BASIC[0x5F], '§');
        assert_eq!(GSM7_BASIC[0x60], '¿');
        assert_eq!(GSM7_BASIC[0x7F], 'à');
    }

    #[test]
    fn characters_outside_the_gsm_alphabet_do_not_fit() {
        // The table has upper-case Ç only, à but not á, é and É but not ê,
        // and no backtick (GSM 0x60 is ¿), tab, or Cyrillic.
        for c in [
            'ç', 'á', 'ê', 'í', 'ó', 'ú', 'Á', 'È', 'õ', 'ã', '`', '\t', '\u{1b}', '\0', 'д', 'ş',
            '¢', '©', '\u{a0}',
        ] {
            assert!(!fits_gsm7(&c.to_string()), "{c:?} should not fit");
        }
        assert!(!fits_gsm7("ok 😀"));
        assert!(!fits_gsm7("‘curly quotes’"));
        assert!(!fits_gsm7("ümlaut ç"));
    }

    #[test]
    fn the_ascii_fast_path_agrees_with_the_tables() {
        for code in 0u32..0x3000 {
            let Some(c) = char::from_u32(code) else {
                continue;
            };
            let in_tables = GSM7_BASIC
                .iter()
                .enumerate()
                .any(|(i, &b)| i != GSM7_ESCAPE && b == c)
                || GSM7_EXTENSION.iter().any(|&(_, e)| e == c);
            assert_eq!(is_gsm7(c), in_tables, "{c:?}");
        }
        // Every printable ASCII character is GSM except the backtick.
        for c in ' '..='~' {
            assert_eq!(is_gsm7(c), c != '`', "{c:?}");
        }
    }

    #[test]
    fn seven_bit_mos_are_utf8() {
        let decoded = decode_mo("Habari, ça va? 😀".as_bytes(), 0, None);
        assert_eq!(decoded.text, "Habari, ça va? 😀");
        assert_eq!(decoded.binary, None);
        assert_eq!(decode_mo(b"hi", -1, None).text, "hi");
        assert_eq!(decode_mo(b"hi", 0, Some("UTF-8")).text, "hi");
        // Invalid UTF-8 is replaced, not an error.
        assert_eq!(decode_mo(b"a\xffb", 0, None).text, "a\u{fffd}b");
    }

    #[test]
    fn a_named_charset_is_honoured() {
        assert_eq!(decode_mo(b"caf\xe9", 0, Some("ISO-8859-1")).text, "café");
        assert_eq!(decode_mo(b"caf\xe9", 0, Some("iso-8859-1")).text, "café");
        assert_eq!(decode_mo(b"\x80 5", 0, Some("WINDOWS-1252")).text, "€ 5");
        assert_eq!(decode_mo(b"\xf0\xd2\xc9", 0, Some("KOI8-R")).text, "При");
        assert_eq!(decode_mo(b"\x00h\x00i", 0, Some("UTF-16BE")).text, "hi");
        assert_eq!(decode_mo(b"\x00h\x00i", 0, Some("UCS-2")).text, "hi");
        assert_eq!(decode_mo(b"h\x00i\x00", 0, Some("UTF-16LE")).text, "hi");
        // Unknown names fall back to UTF-8, Kannel's internal charset.
        assert_eq!(decode_mo("ça".as_bytes(), 0, Some("no-such")).text, "ça");
        assert_eq!(decode_mo("ça".as_bytes(), 0, Some("")).text, "ça");
    }

    #[test]
    fn ucs2_mos_are_utf16be_with_surrogate_pairs() {
        let bytes: Vec<u8> = "Салам 😀!"
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(decode_mo(&bytes, 2, None).text, "Салам 😀!");
        // The charset does not override coding 2.
        assert_eq!(decode_mo(&bytes, 2, Some("ISO-8859-1")).text, "Салам 😀!");
        assert_eq!(decode_mo(&[0xD8, 0x3D, 0xDE, 0x00], 2, None).text, "😀");
    }

    #[test]
    fn broken_ucs2_is_decoded_lossily() {
        // A lone high surrogate, then 'A'.
        assert_eq!(
            decode_mo(&[0xD8, 0x3D, 0x00, 0x41], 2, None).text,
            "\u{fffd}A"
        );
        // A lone low surrogate.
        assert_eq!(decode_mo(&[0xDE, 0x00], 2, None).text, "\u{fffd}");
        // An odd byte count: the last byte cannot be a character.
        assert_eq!(decode_mo(&[0x00, 0x41, 0x00], 2, None).text, "A\u{fffd}");
        assert_eq!(decode_mo(&[], 2, None).text, "");
    }

    #[test]
    fn eight_bit_mos_keep_their_bytes() {
        let payload = [0x0b, 0x05, 0x04, 0x15, 0x81, 0x00, 0xff];
        let decoded = decode_mo(&payload, 1, None);
        assert_eq!(decoded.binary.as_deref(), Some(&payload[..]));
        assert_eq!(decoded.text, "0b0504158100ff");

        // Clean UTF-8 reads as itself.
        let decoded = decode_mo(b"PING 1\n", 1, None);
        assert_eq!(decoded.text, "PING 1\n");
        assert_eq!(decoded.binary.as_deref(), Some(&b"PING 1\n"[..]));

        // A named charset says how to read 8-bit text.
        let decoded = decode_mo(b"caf\xe9", 1, Some("ISO-8859-1"));
        assert_eq!(decoded.text, "café");
        assert_eq!(decoded.binary.as_deref(), Some(&b"caf\xe9"[..]));
    }

    #[test]
    fn gsm_text_goes_as_seven_bit_utf8() {
        assert_eq!(
            encode_mt("Hello {world} €5"),
            (0, "Hello {world} €5".as_bytes().to_vec())
        );
        assert_eq!(encode_mt(""), (0, Vec::new()));
    }

    #[test]
    fn other_text_goes_as_ucs2() {
        assert_eq!(encode_mt("ça"), (2, vec![0x00, 0xE7, 0x00, 0x61]));
        assert_eq!(encode_mt("😀"), (2, vec![0xD8, 0x3D, 0xDE, 0x00]));
        let (coding, bytes) = encode_mt("Привет, `world`");
        assert_eq!(coding, 2);
        assert_eq!(decode_mo(&bytes, coding, None).text, "Привет, `world`");
    }

    proptest! {
        #[test]
        fn decoding_any_bytes_never_panics(
            bytes in proptest::collection::vec(any::<u8>(), 0..300),
            coding in -2i32..4,
            charset in proptest::option::of(prop::sample::select(vec![
                "UTF-8", "UTF-16BE", "UTF-16", "ISO-8859-1", "WINDOWS-1252",
                "SHIFT_JIS", "GB18030", "ISO-2022-JP", "bogus",
            ])),
        ) {
            let decoded = decode_mo(&bytes, coding, charset);
            if coding == 1 {
                prop_assert_eq!(decoded.binary.as_deref(), Some(&bytes[..]));
            } else {
                prop_assert!(decoded.binary.is_none());
            }
        }

        #[test]
        fn any_text_survives_encode_then_decode(text in any::<String>()) {
            let (coding, bytes) = encode_mt(&text);
            prop_assert_eq!(coding == 0, fits_gsm7(&text));
            prop_assert_eq!(decode_mo(&bytes, coding, None).text, text);
        }
    }
}
