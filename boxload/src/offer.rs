//! The MO source: MO number `n` rendered as a bearerbox would send it, the
//! state of every MO offered, and the window of unacknowledged ones.

use std::collections::HashMap;
use std::time::Instant;

use boxproto::{AckStatus, Bytes, Coding, Msg, Sms, SmsType, Uuid};

use crate::options::{Options, TextCoding, SEQ_PLACEHOLDER};

/// The first sender number; MO `n` comes from `FIRST_SENDER + (n - 1) % K`.
const FIRST_SENDER: u64 = 2_567_720_000_001;

/// What is known about one MO offered.
#[derive(Debug, Clone)]
pub struct MoState {
    pub id: Uuid,
    /// When its frame was written to the box; `None` until flushed.
    pub written: Option<Instant>,
    /// The box's ack, once it came.
    pub ack: Option<AckStatus>,
    /// Replies matched to it.
    pub replies: u32,
}

/// What an ack from the box was for.
#[derive(Debug, PartialEq)]
pub enum AckFor {
    /// The first ack of MO `seq`, `micros` after it was written.
    Mo { seq: u32, micros: u64 },
    /// A second ack of an MO already acknowledged.
    Again { seq: u32 },
    /// No MO of this run has that id.
    Unknown,
}

/// The MOs of one load. Holds state for every MO offered: O(N) by design.
#[derive(Debug)]
pub struct Offer {
    options: Options,
    /// Indexed by `n - 1`.
    mos: Vec<MoState>,
    by_id: HashMap<Uuid, u32>,
    /// Offered and not yet acknowledged.
    outstanding: usize,
    /// MOs settled: acknowledged other than success, or acknowledged
    /// success and answered. Kept as a count so that "are we done?" is
    /// O(1) per event.
    settled: u32,
}

impl Offer {
    pub fn new(options: &Options) -> Offer {
        // Grown as MOs are offered rather than reserved up front, so that a
        // run against a box that never connects costs nothing.
        Offer {
            options: options.clone(),
            mos: Vec::new(),
            by_id: HashMap::new(),
            outstanding: 0,
            settled: 0,
        }
    }

    /// True when every MO has been offered and settled: acknowledged, and
    /// answered if acknowledged success.
    pub fn all_settled(&self) -> bool {
        self.settled >= self.options.messages
    }

    /// MOs to offer in all (N).
    pub fn messages(&self) -> u32 {
        self.options.messages
    }

    /// MOs offered so far.
    pub fn offered(&self) -> u32 {
        self.mos.len() as u32
    }

    /// True when every MO has been offered.
    pub fn all_offered(&self) -> bool {
        self.offered() >= self.options.messages
    }

    /// True when another MO may be offered now: some are left and the
    /// window has room.
    pub fn can_offer(&self) -> bool {
        !self.all_offered() && self.outstanding < self.options.window
    }

    /// MOs offered and not acknowledged.
    pub fn outstanding(&self) -> usize {
        self.outstanding
    }

    /// The sender of MO `seq` (1-based).
    pub fn sender(&self, seq: u32) -> String {
        let k = u64::from(self.options.senders.max(1));
        format!("+{}", FIRST_SENDER + u64::from(seq.saturating_sub(1)) % k)
    }

    /// The text of MO `seq`.
    pub fn text(&self, seq: u32) -> String {
        self.options.text.replace(SEQ_PLACEHOLDER, &seq.to_string())
    }

    /// The state of MO `seq` (1-based), if it has been offered.
    pub fn get(&self, seq: u32) -> Option<&MoState> {
        self.mos.get(seq.checked_sub(1)? as usize)
    }

    /// Every MO offered, in order: MO `n` is at index `n - 1`.
    pub fn all(&self) -> &[MoState] {
        &self.mos
    }

    /// Makes the next MO, with a fresh id and the current time, and counts
    /// it in the window. Call only when [`Offer::can_offer`].
    pub fn next_mo(&mut self, unix_time: i32) -> (u32, Msg) {
        let seq = self.offered() + 1;
        let id = Uuid::new_v4();
        let text = self.text(seq);
        let (msgdata, coding) = match self.options.coding {
            TextCoding::SevenBit => (Bytes::from(text), Coding::SevenBit),
            TextCoding::Ucs2 => {
                let bytes: Vec<u8> = text.encode_utf16().flat_map(u16::to_be_bytes).collect();
                (Bytes::from(bytes), Coding::Ucs2)
            }
        };
        let sms = Sms {
            sender: Some(Bytes::from(self.sender(seq))),
            receiver: Some(Bytes::from(self.options.shortcode.clone())),
            msgdata: Some(msgdata),
            time: unix_time,
            smsc_id: Some(Bytes::from(self.options.smsc.clone())),
            id,
            sms_type: SmsType::Mo,
            coding,
            ..Default::default()
        };
        self.mos.push(MoState {
            id,
            written: None,
            ack: None,
            replies: 0,
        });
        self.by_id.insert(id, seq);
        self.outstanding += 1;
        (seq, Msg::from(sms))
    }

    /// Records that MOs `from..=to` reached the socket at `at`.
    pub fn written(&mut self, from: u32, to: u32, at: Instant) {
        for seq in from..=to {
            if let Some(mo) = self.mos.get_mut(seq as usize - 1) {
                mo.written.get_or_insert(at);
            }
        }
    }

    /// Records an ack from the box.
    pub fn ack(&mut self, id: &Uuid, status: AckStatus, at: Instant) -> AckFor {
        let Some(&seq) = self.by_id.get(id) else {
            return AckFor::Unknown;
        };
        let mo = &mut self.mos[seq as usize - 1];
        if mo.ack.is_some() {
            return AckFor::Again { seq };
        }
        mo.ack = Some(status);
        self.outstanding -= 1;
        if status != AckStatus::Success || mo.replies > 0 {
            self.settled += 1;
        }
        AckFor::Mo {
            seq,
            micros: micros_since(mo.written, at),
        }
    }

    /// Records a reply matched to MO `seq`; returns its latency in
    /// microseconds when it is the first reply, `None` for a duplicate.
    pub fn reply(&mut self, seq: u32, at: Instant) -> Option<u64> {
        let mo = self.mos.get_mut(seq.checked_sub(1)? as usize)?;
        mo.replies += 1;
        if mo.replies == 1 && mo.ack == Some(AckStatus::Success) {
            self.settled += 1;
        }
        (mo.replies == 1).then(|| micros_since(mo.written, at))
    }
}

/// Microseconds from `from` (when the MO was written) to `to`; 0 when the
/// box answered an MO before boxload saw its write complete.
fn micros_since(from: Option<Instant>, to: Instant) -> u64 {
    from.map_or(0, |from| {
        to.saturating_duration_since(from).as_micros() as u64
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn senders_go_round_robin_and_text_carries_the_number() {
        let options = Options {
            senders: 3,
            text: "hi {n}!".into(),
            ..Default::default()
        };
        let offer = Offer::new(&options);
        assert_eq!(offer.sender(1), "+2567720000001");
        assert_eq!(offer.sender(3), "+2567720000003");
        assert_eq!(offer.sender(4), "+2567720000001");
        assert_eq!(offer.text(42), "hi 42!");
    }

    #[test]
    fn the_window_closes_at_its_size_and_reopens_on_ack() {
        let options = Options {
            messages: 5,
            window: 2,
            ..Default::default()
        };
        let mut offer = Offer::new(&options);
        let (_, a) = offer.next_mo(0);
        let _ = offer.next_mo(0);
        assert!(!offer.can_offer());
        let Msg::Sms(a) = a else { panic!("not an sms") };
        let now = Instant::now();
        assert!(matches!(
            offer.ack(&a.id, AckStatus::Success, now),
            AckFor::Mo { seq: 1, .. }
        ));
        assert!(offer.can_offer());
        assert_eq!(
            offer.ack(&a.id, AckStatus::Success, now),
            AckFor::Again { seq: 1 }
        );
        assert_eq!(
            offer.ack(&Uuid::nil(), AckStatus::Success, now),
            AckFor::Unknown
        );
    }

    #[test]
    fn ucs2_text_is_utf16be() {
        let options = Options {
            coding: TextCoding::Ucs2,
            text: "é{n}".into(),
            ..Default::default()
        };
        let mut offer = Offer::new(&options);
        let (_, Msg::Sms(sms)) = offer.next_mo(0) else {
            panic!("not an sms")
        };
        assert_eq!(sms.coding, Coding::Ucs2);
        assert_eq!(sms.msgdata.as_deref(), Some(&[0x00, 0xe9, 0x00, b'1'][..]));
    }
}
