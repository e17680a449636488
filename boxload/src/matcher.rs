//! Which MO an MT answers.
//!
//! Every MO carries its number `n` in its text (the `{n}` of `--text`), and
//! MO `n` comes from a known sender. A reply is matched to MO `n` when
//!
//! 1. its receiver is MO `n`'s sender, and
//! 2. its text (UTF-16BE decoded for `coding` 2, UTF-8 otherwise) contains
//!    `n` as a whole number: a maximal run of ASCII digits, so "17" does
//!    not answer MO 1 or MO 7.
//!
//! This needs nothing from the box but to quote the MO's text (rapidbox's
//! echo app, smsbox's `%a`/`%s`), keeps no per-sender queue, and does not
//! depend on the order replies come in. Other numbers in the reply (a
//! sender number, a price) only matter if they name another MO offered to
//! the same sender; then an MO not yet answered wins over one already
//! answered, and among those the first number in the text wins. A reply
//! that names no offered MO of its receiver is a mismatch; a second reply
//! to an MO is a duplicate.

use boxproto::{Coding, Sms};

use crate::offer::Offer;

/// Digit runs looked at in one reply, at most: a bound on the work a
/// hostile reply can cause.
const MAX_NUMBERS: usize = 16;

/// The MO that `mt` answers, if any (see the module documentation).
pub fn find(mt: &Sms, offer: &Offer) -> Option<u32> {
    let receiver = mt.receiver.as_deref()?;
    let text = text_of(mt);
    let mut answered = None;
    for seq in numbers(&text).take(MAX_NUMBERS) {
        let Some(mo) = offer.get(seq) else { continue };
        if offer.sender(seq).as_bytes() != receiver {
            continue;
        }
        if mo.replies == 0 {
            return Some(seq);
        }
        answered.get_or_insert(seq);
    }
    answered
}

/// The MT's text as a string, lossily.
pub fn text_of(mt: &Sms) -> String {
    let data = mt.msgdata.as_deref().unwrap_or_default();
    if mt.coding == Coding::Ucs2 {
        let units: Vec<u16> = data
            .chunks_exact(2)
            .map(|pair| u16::from_be_bytes([pair[0], pair[1]]))
            .collect();
        String::from_utf16_lossy(&units)
    } else {
        String::from_utf8_lossy(data).into_owned()
    }
}

/// The maximal runs of ASCII digits in `text` that fit a `u32`.
fn numbers(text: &str) -> impl Iterator<Item = u32> + '_ {
    text.split(|c: char| !c.is_ascii_digit())
        .filter(|run| !run.is_empty())
        .filter_map(|run| run.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::options::Options;
    use boxproto::Bytes;

    fn mt(receiver: &str, text: &str) -> Sms {
        Sms {
            receiver: Some(Bytes::from(receiver.to_owned())),
            msgdata: Some(Bytes::from(text.to_owned())),
            ..Default::default()
        }
    }

    fn offer(n: u32, senders: u32) -> Offer {
        let options = Options {
            messages: n,
            senders,
            ..Default::default()
        };
        let mut offer = Offer::new(&options);
        for _ in 0..n {
            let _ = offer.next_mo(0);
        }
        offer
    }

    #[test]
    fn a_reply_matches_by_whole_number_and_sender() {
        let offer = offer(20, 2);
        // MO 17 is from sender 1 (17 - 1 is even).
        assert_eq!(
            find(&mt("+2567720000001", "You said: load test 17"), &offer),
            Some(17)
        );
        // Right number, wrong receiver.
        assert_eq!(find(&mt("+2567720000002", "load test 17"), &offer), None);
        // "17" must not answer MO 1 or 7; "170" names no MO offered.
        assert_eq!(find(&mt("+2567720000001", "load test 170"), &offer), None);
        // The sender number in the text is not an MO number.
        assert_eq!(
            find(&mt("+2567720000001", "from +2567720000001: 3"), &offer),
            Some(3)
        );
    }

    #[test]
    fn an_unanswered_mo_wins_over_an_answered_one() {
        let mut offer = offer(10, 1);
        let _ = offer.reply(2, std::time::Instant::now());
        assert_eq!(find(&mt("+2567720000001", "2 for 5"), &offer), Some(5));
        let _ = offer.reply(5, std::time::Instant::now());
        assert_eq!(find(&mt("+2567720000001", "2 for 5"), &offer), Some(2));
    }

    #[test]
    fn ucs2_replies_are_decoded() {
        let offer = offer(3, 1);
        let mut reply = mt("+2567720000001", "");
        reply.coding = Coding::Ucs2;
        reply.msgdata = Some(Bytes::from_static(&[0, b'#', 0, b'3']));
        assert_eq!(find(&reply, &offer), Some(3));
    }
}
