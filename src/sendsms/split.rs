//! Cutting a long text into SMS, as smsbox's `send_message` and Kannel's
//! `sms_split` (gw/sms.c) do for a sendsms user with `max-messages`.
//!
//! smsbox cuts the payload into parts of one SMS each (140 octets less the
//! UDH: 160 GSM characters, 140 octets of 8-bit data, 70 UCS-2
//! characters), at most `max-messages` of them; what does not fit is
//! dropped without a word. Each part gets the user's `header` and
//! `footer`, and all but the last its `split-suffix`; a part ends after the
//! last of the `split-chars` (ASCII ones) that fits, when there is one. Without
//! `concatenation` every part is its own MT (only the first asks for
//! delivery reports); with it, the parts are joined again into one MT and
//! the bearerbox concatenates it — so `concatenation` with the default cap
//! of 1 still cuts the text, to the 153 characters of one concatenated
//! part.
//!
//! With no cap rapidbox does not cut at all: the whole text goes as one MT
//! and the bearerbox splits it into as many concatenated SMS as it needs.

use crate::text;

/// The octets of one SMS (smsbox's `sms-length` default).
const MAX_OCTETS: i64 = 140;

/// What a concatenation UDH adds to a part (`CATENATE_UDH_LEN`).
const CATENATE_UDH_LEN: i64 = 5;

/// A user's shaping of its texts (Kannel's sendsms-user keys).
#[derive(Debug, Clone, Copy, Default)]
pub struct Shape<'a> {
    /// `max-messages`; `None` for no cap (and no cutting at all).
    pub max_messages: Option<u32>,
    pub concatenation: bool,
    pub header: &'a str,
    pub footer: &'a str,
    pub split_suffix: &'a str,
    pub split_chars: &'a str,
}

/// A message's payload, by how its length counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// 7-bit text, counted in GSM septets (an extension character takes
    /// two); every character fits the GSM alphabet.
    Gsm(String),
    /// 8-bit data, counted in octets.
    Octets(Vec<u8>),
    /// UCS-2 as UTF-16BE, counted in octets.
    Ucs2(Vec<u8>),
}

impl Payload {
    fn len(&self, bytes: &[u8]) -> i64 {
        let n = match self {
            Payload::Gsm(_) => String::from_utf8_lossy(bytes)
                .chars()
                .map(|c| text::gsm7_septets(c).unwrap_or(1))
                .sum(),
            _ => bytes.len(),
        };
        i64::try_from(n).unwrap_or(i64::MAX)
    }

    /// Header, footer and suffix in the payload's own encoding.
    fn encode(&self, s: &str) -> Vec<u8> {
        match self {
            Payload::Ucs2(_) => s.encode_utf16().flat_map(u16::to_be_bytes).collect(),
            _ => s.as_bytes().to_vec(),
        }
    }

    fn bytes(&self) -> &[u8] {
        match self {
            Payload::Gsm(s) => s.as_bytes(),
            Payload::Octets(b) | Payload::Ucs2(b) => b,
        }
    }

    /// How many bytes of `rest` make at most `limit` units (septets or
    /// octets) without cutting a character.
    fn prefix(&self, rest: &[u8], limit: i64) -> usize {
        let limit = usize::try_from(limit.max(0)).unwrap_or(0);
        match self {
            Payload::Gsm(_) => {
                let text = String::from_utf8_lossy(rest);
                let mut septets = 0;
                let mut bytes = 0;
                for c in text.chars() {
                    septets += text::gsm7_septets(c).unwrap_or(1);
                    if septets > limit {
                        break;
                    }
                    bytes += c.len_utf8();
                }
                bytes.min(rest.len())
            }
            _ => limit.min(rest.len()),
        }
    }
}

/// The MT payloads for `payload` with a UDH of `udh_len` octets: one
/// payload per MT, in order.
pub fn split(payload: &Payload, udh_len: usize, shape: &Shape<'_>) -> Vec<Vec<u8>> {
    let header = payload.encode(shape.header);
    let footer = payload.encode(shape.footer);
    let suffix = payload.encode(shape.split_suffix);
    let Some(max_messages) = shape.max_messages else {
        return vec![[&header[..], payload.bytes(), &footer[..]].concat()];
    };
    let hf_len = i64::try_from(header.len() + footer.len()).unwrap_or(i64::MAX);
    let suffix_len = i64::try_from(suffix.len()).unwrap_or(i64::MAX);
    let part_len = |udh_len: i64| match payload {
        Payload::Gsm(_) => (MAX_OCTETS - udh_len) * 8 / 7 - hf_len,
        _ => MAX_OCTETS - udh_len - hf_len,
    };
    let whole = payload.bytes();
    let udh_len = i64::try_from(udh_len).unwrap_or(MAX_OCTETS);
    let mut max_part_len = part_len(udh_len);
    if payload.len(whole) > max_part_len && shape.concatenation {
        // Room for the concatenation UDH (and its length octet when the
        // message had no UDH).
        max_part_len = part_len(udh_len.max(1) + CATENATE_UDH_LEN);
    }
    let max_part_len = max_part_len.max(0);

    let mut parts = Vec::new();
    let mut rest = whole;
    let mut number = 0;
    loop {
        number += 1;
        let last = payload.len(rest) <= max_part_len || number >= max_messages;
        let mut take = payload.prefix(rest, max_part_len - suffix_len);
        if take < rest.len() && !shape.split_chars.is_empty() {
            // The part ends after the last split character in it.
            if let Some(at) = rest[..take]
                .iter()
                .rposition(|&b| b.is_ascii() && shape.split_chars.as_bytes().contains(&b))
            {
                take = at + 1;
            }
        }
        let mut part = [&header[..], &rest[..take], &footer[..]].concat();
        if !last {
            part.extend_from_slice(&suffix);
        }
        parts.push(part);
        rest = &rest[take..];
        if last {
            break;
        }
    }
    if shape.concatenation {
        vec![parts.concat()]
    } else {
        parts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn digits(n: usize) -> String {
        (0..n).map(|i| char::from(b'0' + (i % 10) as u8)).collect()
    }

    fn lens(parts: &[Vec<u8>]) -> Vec<usize> {
        parts.iter().map(Vec::len).collect()
    }

    /// The figures smsbox 1.4.5 gave for a 400- and a 600-character text
    /// (kannel-conf/README.md).
    #[test]
    fn caps_and_concatenation_cut_as_smsbox_cuts() {
        let text = Payload::Gsm(digits(400));
        let one = Shape {
            max_messages: Some(1),
            ..Shape::default()
        };
        assert_eq!(lens(&split(&text, 0, &one)), [160]);
        let three = Shape {
            max_messages: Some(3),
            ..Shape::default()
        };
        assert_eq!(lens(&split(&text, 0, &three)), [160, 160, 80]);
        let cat3 = Shape {
            concatenation: true,
            ..three
        };
        assert_eq!(lens(&split(&text, 0, &cat3)), [400]);
        assert_eq!(lens(&split(&Payload::Gsm(digits(600)), 0, &cat3)), [459]);
        let cat1 = Shape {
            concatenation: true,
            ..one
        };
        assert_eq!(lens(&split(&Payload::Gsm(digits(600)), 0, &cat1)), [153]);
        let none = Shape::default();
        assert_eq!(lens(&split(&Payload::Gsm(digits(600)), 0, &none)), [600]);
    }

    #[test]
    fn header_footer_and_suffix_frame_every_part() {
        let shape = Shape {
            max_messages: Some(3),
            header: "H:",
            footer: ":F",
            split_suffix: "+",
            ..Shape::default()
        };
        let parts = split(&Payload::Gsm(digits(400)), 0, &shape);
        assert_eq!(lens(&parts), [160, 160, 94]);
        assert!(parts[0].starts_with(b"H:0123") && parts[0].ends_with(b"34:F+"));
        assert!(parts[2].ends_with(b"89:F"));
    }

    #[test]
    fn a_part_ends_after_the_last_split_character() {
        let text = format!("{} {}", "a".repeat(150), "b".repeat(20));
        let shape = Shape {
            max_messages: Some(2),
            split_chars: " ",
            ..Shape::default()
        };
        assert_eq!(lens(&split(&Payload::Gsm(text), 0, &shape)), [151, 20]);
    }

    #[test]
    fn extension_characters_count_twice_and_ucs2_and_data_count_octets() {
        let one = Shape {
            max_messages: Some(1),
            ..Shape::default()
        };
        let parts = split(&Payload::Gsm("€".repeat(100)), 0, &one);
        assert_eq!(parts[0].len(), 80 * "€".len());
        let ucs2: Vec<u8> = "ж"
            .repeat(100)
            .encode_utf16()
            .flat_map(u16::to_be_bytes)
            .collect();
        assert_eq!(lens(&split(&Payload::Ucs2(ucs2), 0, &one)), [140]);
        assert_eq!(lens(&split(&Payload::Octets(vec![0; 200]), 7, &one)), [133]);
    }
}
