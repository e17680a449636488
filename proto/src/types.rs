//! Typed views of the INTEGER fields whose values mean something: sms_type,
//! admin command, ack status, coding, and the dlr_mask bits.
//!
//! Every type keeps values it does not know (`Other(n)`, or the raw bits of
//! [`DlrMask`]) so that a message from a newer or patched Kannel decodes and
//! re-encodes to the same bytes instead of being silently changed.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::be_i32;

use crate::wire::{FieldValue, WResult, Wire};

/// Declares an enum over an INTEGER field: named values, an `Other(i32)` that
/// keeps the rest, conversions both ways and the wire encoding.
macro_rules! int_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $value:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
            /// A value Kannel 1.4.5 does not define, kept as it came.
            Other(i32),
        }

        impl From<i32> for $name {
            fn from(value: i32) -> Self {
                match value {
                    $( $value => $name::$variant, )*
                    other => $name::Other(other),
                }
            }
        }

        impl From<$name> for i32 {
            fn from(value: $name) -> i32 {
                match value {
                    $( $name::$variant => $value, )*
                    $name::Other(other) => other,
                }
            }
        }

        impl Wire for $name {
            fn unset() -> Self {
                $name::from(-1)
            }
            fn parse<'a>(_: &Bytes, input: &'a [u8]) -> WResult<'a, Self> {
                let (rest, raw) = be_i32(input)?;
                Ok((rest, $name::from(raw)))
            }
            fn wire_len(&self) -> usize {
                4
            }
            fn put(&self, dst: &mut BytesMut) {
                dst.put_i32(i32::from(*self));
            }
            fn value(&self) -> FieldValue<'_> {
                FieldValue::Int(i32::from(*self))
            }
        }
    };
}

int_enum! {
    /// What an `sms` message is (Kannel's `sms_type`).
    pub enum SmsType {
        /// Mobile originated: from a phone, bearerbox to box.
        Mo = 0,
        /// A reply to an MO, box to bearerbox.
        MtReply = 1,
        /// A message the box pushes on its own (sendsms), box to bearerbox.
        MtPush = 2,
        /// A delivery report, bearerbox to box.
        ReportMo = 3,
        /// A delivery report travelling towards an SMSC (not seen by boxes).
        ReportMt = 4,
    }
}

int_enum! {
    /// The command of an `admin` message.
    pub enum AdminCommand {
        /// The bearerbox is shutting down (bearerbox to box).
        Shutdown = 0,
        /// Stop sending messages for now (bearerbox to box).
        Suspend = 1,
        /// Resume after a suspend (bearerbox to box).
        Resume = 2,
        /// The box introduces itself with its `boxc_id` (box to bearerbox).
        Identify = 3,
        /// The bearerbox is restarting (bearerbox to box).
        Restart = 4,
    }
}

int_enum! {
    /// The result an `ack` reports (Kannel's `nack` field).
    pub enum AckStatus {
        /// Handled (by a box), or accepted for an SMSC (by the bearerbox).
        Success = 0,
        /// Refused for good: do not retry.
        Failed = 1,
        /// Refused for now: the sender keeps the message and retries.
        FailedTmp = 2,
        /// Queued by the bearerbox.
        Buffered = 3,
    }
}

int_enum! {
    /// How `msgdata` is coded.
    pub enum Coding {
        /// Not given; treated as 7-bit text (UTF-8 inside Kannel).
        Undefined = -1,
        /// GSM 7-bit text, carried as UTF-8 inside Kannel.
        SevenBit = 0,
        /// Binary data.
        EightBit = 1,
        /// UCS-2 text, carried as UTF-16BE bytes.
        Ucs2 = 2,
    }
}

/// The `dlr_mask` field: which delivery reports an MT asks for, or, on a
/// report, the one event that happened. -1 means not set.
///
/// Kept as the raw integer so that unknown bits (Kannel 1.5 adds 32) and the
/// "undefined" value survive a round trip.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DlrMask(pub i32);

impl DlrMask {
    /// Not set (Kannel's `DLR_UNDEFINED`).
    pub const UNDEFINED: DlrMask = DlrMask(-1);
    /// Delivered to the phone (final).
    pub const DELIVERED: i32 = 1;
    /// Not delivered to the phone (final).
    pub const UNDELIVERED: i32 = 2;
    /// Buffered or queued at the SMSC (intermediate).
    pub const BUFFERED: i32 = 4;
    /// Accepted by the SMSC.
    pub const SMSC_ACCEPTED: i32 = 8;
    /// Rejected by the SMSC (final).
    pub const SMSC_REJECTED: i32 = 16;

    /// True when the mask is set and has every bit of `bits`. An undefined
    /// (negative) mask contains nothing, although -1 has every bit set.
    pub fn contains(self, bits: i32) -> bool {
        self.0 >= 0 && self.0 & bits == bits
    }

    /// True when the mask is -1 (or any other negative value).
    pub fn is_undefined(self) -> bool {
        self.0 < 0
    }
}

impl Default for DlrMask {
    fn default() -> Self {
        DlrMask::UNDEFINED
    }
}

impl fmt::Debug for DlrMask {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_undefined() {
            return write!(f, "DlrMask({})", self.0);
        }
        const NAMES: [(i32, &str); 5] = [
            (DlrMask::DELIVERED, "DELIVERED"),
            (DlrMask::UNDELIVERED, "UNDELIVERED"),
            (DlrMask::BUFFERED, "BUFFERED"),
            (DlrMask::SMSC_ACCEPTED, "SMSC_ACCEPTED"),
            (DlrMask::SMSC_REJECTED, "SMSC_REJECTED"),
        ];
        write!(f, "DlrMask({}", self.0)?;
        let mut sep = ": ";
        for (bit, name) in NAMES {
            if self.contains(bit) {
                write!(f, "{sep}{name}")?;
                sep = "|";
            }
        }
        f.write_str(")")
    }
}

impl Wire for DlrMask {
    fn unset() -> Self {
        DlrMask::UNDEFINED
    }
    fn parse<'a>(_: &Bytes, input: &'a [u8]) -> WResult<'a, Self> {
        let (rest, raw) = be_i32(input)?;
        Ok((rest, DlrMask(raw)))
    }
    fn wire_len(&self) -> usize {
        4
    }
    fn put(&self, dst: &mut BytesMut) {
        dst.put_i32(self.0);
    }
    fn value(&self) -> FieldValue<'_> {
        FieldValue::Int(self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_survive_the_round_trip() {
        for raw in [-7, -1, 0, 4, 5, 99, i32::MIN, i32::MAX] {
            assert_eq!(i32::from(SmsType::from(raw)), raw);
            assert_eq!(i32::from(AdminCommand::from(raw)), raw);
            assert_eq!(i32::from(AckStatus::from(raw)), raw);
            assert_eq!(i32::from(Coding::from(raw)), raw);
        }
        assert_eq!(SmsType::from(3), SmsType::ReportMo);
        assert_eq!(SmsType::from(9), SmsType::Other(9));
        assert_eq!(Coding::from(-1), Coding::Undefined);
        assert_eq!(AckStatus::from(2), AckStatus::FailedTmp);
    }

    #[test]
    fn an_undefined_dlr_mask_contains_no_event() {
        assert!(!DlrMask::UNDEFINED.contains(DlrMask::DELIVERED));
        assert!(DlrMask(31).contains(DlrMask::DELIVERED | DlrMask::SMSC_ACCEPTED));
        assert!(!DlrMask(8).contains(DlrMask::DELIVERED));
        assert_eq!(
            format!("{:?}", DlrMask(9)),
            "DlrMask(9: DELIVERED|SMSC_ACCEPTED)"
        );
        assert_eq!(format!("{:?}", DlrMask::UNDEFINED), "DlrMask(-1)");
    }
}
