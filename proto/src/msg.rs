//! The box protocol's messages: the one place where every message type and
//! every field is declared, in wire order, as Kannel 1.4.5's `gw/msg-decl.h`
//! declares them. Decoding, encoding, `Default`, `Debug`, the field walker
//! and the round-trip tests all follow from this list.
//!
//! A frame's body is the 4-byte message type followed by the fields with no
//! tags and no padding; [`Msg::decode`] and [`Msg::encode`] deal in bodies
//! and whole frames respectively.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use nom::number::complete::be_i32;
use uuid::Uuid;

use crate::declare::box_messages;
use crate::error::{BodyError, BodyErrorKind, EncodeError};
use crate::types::{AckStatus, AdminCommand, Coding, DlrMask, SmsType};
use crate::wire::{FieldValue, OctStr, Wire, WireError};

/// Largest body a 4-byte signed length prefix can announce.
pub const MAX_WIRE_BODY: usize = i32::MAX as usize;

box_messages! {
    /// A box's sign of life, box to bearerbox. The bearerbox sends none.
    Heartbeat(Heartbeat) = 0, "heartbeat" {
        /// How busy the box is (Kannel's smsbox: its queue length).
        load: i32,
    }

    /// Session control: identify (box to bearerbox); shutdown, restart,
    /// suspend, resume (bearerbox to box).
    Admin(Admin) = 1, "admin" {
        command: AdminCommand,
        /// The box's `smsbox-id`; NULL for a box without one.
        boxc_id: OctStr,
    }

    /// A short message: MO, MT or delivery report.
    Sms(Sms) = 2, "sms" {
        sender: OctStr,
        receiver: OctStr,
        /// User data header, for binary and concatenated messages.
        udhdata: OctStr,
        /// The text or data; its meaning depends on `coding` and `charset`.
        msgdata: OctStr,
        /// Unix seconds.
        time: i32,
        smsc_id: OctStr,
        smsc_number: OctStr,
        /// The SMSC's id for an MT; carried on delivery reports.
        foreign_id: OctStr,
        service: OctStr,
        account: OctStr,
        id: Uuid,
        sms_type: SmsType,
        mclass: i32,
        mwi: i32,
        coding: Coding,
        compress: i32,
        validity: i32,
        deferred: i32,
        dlr_mask: DlrMask,
        /// On an MT, returned on its reports: a box's own reference.
        dlr_url: OctStr,
        pid: i32,
        alt_dcs: i32,
        rpi: i32,
        charset: OctStr,
        /// The box an MT came from, so its reports are routed back to it.
        boxc_id: OctStr,
        binfo: OctStr,
        msg_left: i32,
        // split_parts: VOID in Kannel's declaration, nothing on the wire.
        priority: i32,
        resend_try: i32,
        resend_time: i32,
        meta_data: OctStr,
    }

    /// The answer to an `sms`, in either direction.
    Ack(Ack) = 3, "ack" {
        nack: AckStatus,
        time: i32,
        /// The `id` of the sms being acknowledged.
        id: Uuid,
    }

    /// A WAP datagram, between the bearerbox and a wapbox.
    WdpDatagram(WdpDatagram) = 4, "wdp_datagram" {
        source_address: OctStr,
        source_port: i32,
        destination_address: OctStr,
        destination_port: i32,
        user_data: OctStr,
    }
}

/// Marks any field error as fatal to the frame: fields are not alternatives,
/// so there is nothing to backtrack to.
fn fatal(e: nom::Err<WireError<'_>>) -> WireError<'_> {
    match e {
        nom::Err::Error(e) | nom::Err::Failure(e) => e,
        // Every parser here is a `complete` one; a frame is whole before it
        // is parsed. Treat the impossible case as a truncation anyway.
        nom::Err::Incomplete(_) => WireError {
            at: &[],
            problem: crate::wire::Problem::Truncated { needed: 1 },
        },
    }
}

impl Msg {
    /// Decodes one frame's body (the bytes after the 4-byte length prefix).
    ///
    /// String fields are zero-copy slices of `body`. Bytes after the last
    /// known field are kept in the message's `extra`; a body that ends
    /// inside a field is an error. On error, skip the frame (see
    /// [`BodyError`]).
    pub fn decode(body: Bytes) -> Result<Msg, BodyError> {
        let error = |at_len: usize, kind| BodyError {
            offset: 4 + body.len() - at_len,
            kind,
            body: body.clone(),
        };
        let (fields, code) = match be_i32::<_, WireError<'_>>(&body[..]) {
            Ok(v) => v,
            Err(_) => {
                let kind = BodyErrorKind::Truncated {
                    field: "type",
                    needed: 4,
                    available: body.len(),
                };
                return Err(error(body.len(), kind));
            }
        };
        match Msg::parse_typed(code, &body, fields) {
            Some(Ok(msg)) => Ok(msg),
            Some(Err((field, e))) => Err(error(e.at.len(), e.into_kind(field))),
            None => Err(error(body.len(), BodyErrorKind::UnknownType(code))),
        }
    }

    /// Bytes the whole frame takes: length prefix and body.
    pub fn encoded_len(&self) -> usize {
        4 + self.body_len()
    }

    /// Appends the whole frame (length prefix and body) to `dst`.
    ///
    /// Fails, writing nothing, only when the body is longer than a 4-byte
    /// signed length can say.
    pub fn encode(&self, dst: &mut BytesMut) -> Result<(), EncodeError> {
        self.encode_limited(dst, MAX_WIRE_BODY)
    }

    /// As [`Msg::encode`], refusing bodies longer than `max_body` bytes.
    pub(crate) fn encode_limited(
        &self,
        dst: &mut BytesMut,
        max_body: usize,
    ) -> Result<(), EncodeError> {
        let len = self.body_len();
        let max = max_body.min(MAX_WIRE_BODY);
        if len > max {
            return Err(EncodeError::TooLong { len, max });
        }
        dst.reserve(4 + len);
        // Checked above: len <= i32::MAX.
        dst.put_i32(len as i32);
        self.put_body(dst);
        Ok(())
    }
}

/// One line, as in the protocol notes: the type, then only the fields that
/// are set (`sms sms_type=0 sender="+4912" ...`). For logs and the tap.
impl fmt::Display for Msg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.type_name())?;
        for (name, value) in self.fields() {
            if !value.is_unset() {
                write!(f, " {name}={value:?}")?;
            }
        }
        if !self.extra().is_empty() {
            write!(f, " extra={} bytes", self.extra().len())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame_of(msg: &Msg) -> Bytes {
        let mut b = BytesMut::new();
        msg.encode(&mut b).unwrap();
        b.freeze()
    }

    fn body_of(msg: &Msg) -> Bytes {
        frame_of(msg).slice(4..)
    }

    #[test]
    fn the_sms_has_31_wire_fields_in_kannels_order() {
        assert_eq!(Sms::FIELDS.len(), 31);
        assert_eq!(Sms::FIELDS[0], "sender");
        assert_eq!(Sms::FIELDS[10], "id");
        assert_eq!(Sms::FIELDS[26], "msg_left");
        assert_eq!(Sms::FIELDS[27], "priority");
        assert_eq!(Sms::FIELDS[30], "meta_data");
        // 14 strings, 1 uuid (36 chars), 16 integers, and the type.
        let unset = Msg::Sms(Sms::default());
        assert_eq!(unset.encoded_len(), 4 + 4 + 14 * 4 + (4 + 36) + 16 * 4);
    }

    #[test]
    fn a_heartbeat_is_laid_out_as_documented() {
        let msg = Msg::from(Heartbeat {
            load: 7,
            ..Default::default()
        });
        assert_eq!(&frame_of(&msg)[..], &[0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 7]);
    }

    #[test]
    fn an_identify_with_a_null_id_is_laid_out_as_documented() {
        let msg = Msg::from(Admin {
            command: AdminCommand::Identify,
            ..Default::default()
        });
        assert_eq!(
            &frame_of(&msg)[..],
            &[0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 3, 0xff, 0xff, 0xff, 0xff]
        );
    }

    #[test]
    fn trailing_bytes_are_kept_and_written_back() {
        let mut body = BytesMut::from(&body_of(&Msg::from(Heartbeat::default()))[..]);
        body.put_slice(b"future");
        let msg = Msg::decode(body.clone().freeze()).unwrap();
        assert_eq!(&msg.extra()[..], b"future");
        assert_eq!(body_of(&msg), body.freeze());
    }

    #[test]
    fn a_short_frame_names_the_field_and_offset() {
        let ack = Msg::from(Ack {
            nack: AckStatus::Success,
            time: 1,
            id: Uuid::nil(),
            extra: Bytes::new(),
        });
        let body = body_of(&ack);
        // Cut inside the UUID's text: type(4) nack(4) time(4) len(4) + 10.
        let err = Msg::decode(body.slice(..26)).unwrap_err();
        assert_eq!(err.offset, 16);
        assert_eq!(
            err.kind,
            BodyErrorKind::StringPastEnd {
                field: "id",
                len: 36,
                available: 10
            }
        );
        // Cut inside `time`.
        let err = Msg::decode(body.slice(..10)).unwrap_err();
        assert_eq!(err.offset, 12);
        assert!(matches!(
            err.kind,
            BodyErrorKind::Truncated {
                field: "time",
                needed: 4,
                available: 2
            }
        ));
    }

    #[test]
    fn unknown_types_and_empty_bodies_are_errors() {
        let err = Msg::decode(Bytes::from_static(&[0, 0, 0, 9])).unwrap_err();
        assert_eq!(err.kind, BodyErrorKind::UnknownType(9));
        assert_eq!(err.offset, 4);
        let err = Msg::decode(Bytes::new()).unwrap_err();
        assert!(matches!(
            err.kind,
            BodyErrorKind::Truncated { field: "type", .. }
        ));
    }

    #[test]
    fn display_shows_only_what_is_set() {
        let msg = Msg::from(Sms {
            sms_type: SmsType::Mo,
            sender: Some(Bytes::from_static(b"+4912")),
            msgdata: Some(Bytes::new()),
            ..Default::default()
        });
        let line = msg.to_string();
        assert!(
            line.starts_with("sms sender=\"+4912\" msgdata=\"\" id=00000000-"),
            "{line}"
        );
        assert!(line.ends_with("sms_type=0"), "{line}");
    }
}
