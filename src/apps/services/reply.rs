//! A reply cut into SMS as smsbox 1.4.5's `send_message` and gw/sms.c's
//! `sms_split` cut it: header and footer on every part, `split-suffix` on
//! every part but the last, a cut at the last `split-chars` character that
//! fits, at most `max-messages` parts (what does not fit is dropped), and
//! with `concatenation` the parts joined again into one message, which the
//! bearerbox sends as a concatenated SMS with its UDH.

use super::answer::Body;
use crate::text::gsm7_septets;

use crate::config::SmsService;

/// Most parts one answer becomes ([`SmsService::MAX_PARTS`]).
const MAX_PARTS: u32 = SmsService::MAX_PARTS;

/// The length of Kannel's concatenation UDH element (`CATENATE_UDH_LEN`).
const CATENATE_UDH_LEN: usize = 5;

/// How a service cuts its replies.
#[derive(Debug, Clone, Default)]
pub struct Splitting<'a> {
    pub header: Option<&'a str>,
    pub footer: Option<&'a str>,
    pub split_suffix: Option<&'a str>,
    pub split_chars: Option<&'a str>,
    pub max_messages: u32,
    pub concatenation: bool,
    /// `sms-length`: octets per SMS.
    pub max_octets: usize,
    /// Octets of UDH the reply carries already.
    pub udh_len: usize,
    /// The reply goes as UCS-2 (its length counts UTF-16 octets).
    pub ucs2: bool,
}

/// The parts of `body`. Empty only when `max_messages` is 0.
pub fn split(body: &Body, s: &Splitting<'_>) -> Vec<Body> {
    let max = s.max_messages.min(MAX_PARTS);
    if max == 0 {
        return Vec::new();
    }
    let header = s.header.unwrap_or("");
    let footer = s.footer.unwrap_or("");
    let suffix = s.split_suffix.unwrap_or("");
    // Kannel counts header, footer and suffix in octets of their UTF-8.
    let hf_len = header.len() + footer.len();
    let parts = match body {
        Body::Text(text) => {
            let units: Vec<char> = text.chars().collect();
            let weight = |c: &char| {
                if s.ucs2 {
                    c.len_utf16() * 2
                } else {
                    // Outside the alphabet: one `?` when Kannel converts it.
                    gsm7_septets(*c).unwrap_or(1)
                }
            };
            let is_split = |c: &char| s.split_chars.is_some_and(|sc| sc.contains(*c));
            let septets = !s.ucs2;
            cut(
                &units,
                weight,
                is_split,
                septets,
                hf_len,
                suffix.len(),
                max,
                s,
            )
            .into_iter()
            .map(|(part, last)| {
                let mut t = String::from(header);
                t.extend(part);
                t.push_str(footer);
                if !last {
                    t.push_str(suffix);
                }
                Body::Text(t)
            })
            .collect::<Vec<_>>()
        }
        Body::Binary(bytes) => {
            let is_split = |b: &u8| s.split_chars.is_some_and(|sc| sc.as_bytes().contains(b));
            cut(bytes, |_| 1, is_split, false, hf_len, suffix.len(), max, s)
                .into_iter()
                .map(|(part, last)| {
                    let mut b = header.as_bytes().to_vec();
                    b.extend_from_slice(part);
                    b.extend_from_slice(footer.as_bytes());
                    if !last {
                        b.extend_from_slice(suffix.as_bytes());
                    }
                    Body::Binary(b)
                })
                .collect()
        }
    };
    if s.concatenation && parts.len() > 1 {
        // send_message: the parts go to the bearerbox as one message again.
        return vec![join(parts)];
    }
    parts
}

fn join(parts: Vec<Body>) -> Body {
    match parts.first() {
        Some(Body::Binary(_)) => Body::Binary(
            parts
                .into_iter()
                .flat_map(|p| match p {
                    Body::Binary(b) => b,
                    Body::Text(t) => t.into_bytes(),
                })
                .collect(),
        ),
        _ => Body::Text(
            parts
                .into_iter()
                .map(|p| match p {
                    Body::Text(t) => t,
                    Body::Binary(b) => String::from_utf8_lossy(&b).into_owned(),
                })
                .collect(),
        ),
    }
}

/// `sms_split`'s loop over units (characters or bytes) with their weights:
/// each part is at most `max_part_len - suffix_len` units' weight, cut
/// back to the last split character when there is more; the last part is
/// the one where the rest fits `max_part_len`, or number `max`.
#[allow(clippy::too_many_arguments)]
fn cut<'u, T>(
    units: &'u [T],
    weight: impl Fn(&T) -> usize,
    is_split: impl Fn(&T) -> bool,
    septets: bool,
    hf_len: usize,
    suffix_len: usize,
    max: u32,
    s: &Splitting<'_>,
) -> Vec<(&'u [T], bool)> {
    let capacity = |udh: usize| -> isize {
        let room = s.max_octets.saturating_sub(udh);
        let room = if septets { room * 8 / 7 } else { room };
        room as isize - hf_len as isize
    };
    let total: usize = units.iter().map(&weight).sum();
    let mut max_part_len = capacity(s.udh_len);
    if s.concatenation && total as isize > max_part_len {
        max_part_len = capacity(s.udh_len.max(1) + CATENATE_UDH_LEN);
    }
    let max_part_len = max_part_len.max(0) as usize;
    let room = max_part_len.saturating_sub(suffix_len);
    let mut rest = units;
    let mut parts = Vec::new();
    for number in 1..=max {
        let rest_len: usize = rest.iter().map(&weight).sum();
        let last = rest_len <= max_part_len || number == max;
        // Take what fits in `room` (an escaped GSM character whole or not
        // at all, as charset_gsm_truncate does).
        let mut used = 0;
        let mut n = 0;
        while n < rest.len() && used + weight(&rest[n]) <= room {
            used += weight(&rest[n]);
            n += 1;
        }
        if n < rest.len() {
            if let Some(at) = (1..=n).rev().find(|&i| is_split(&rest[i - 1])) {
                n = at;
            }
        }
        parts.push((&rest[..n], last));
        rest = &rest[n..];
        if last {
            break;
        }
    }
    parts
}

#[cfg(test)]
#[path = "reply_tests.rs"]
mod tests;
