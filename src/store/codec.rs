//! How values are laid out in the tables of [`super::schema`]: postcard for
//! structs (compact, no field names), one-byte codes for enums in keys.
//!
//! Every decode names the table and key it read, so a corrupt entry is
//! reported as exactly that entry.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::model::{
    DeliveryError, Direction, DlrEvent, Message, MessageId, Micros, PendingCallback, Status,
};

use super::error::StoreError;

/// Encodes `value` into `buf`, replacing what it held. The writer reuses
/// one buffer for every value it writes, so the hot path does not allocate.
pub(crate) fn encode_into<T: Serialize + ?Sized>(
    value: &T,
    buf: &mut Vec<u8>,
) -> Result<(), postcard::Error> {
    let mut taken = std::mem::take(buf);
    taken.clear();
    *buf = postcard::to_extend(value, taken)?;
    Ok(())
}

fn decode<T: DeserializeOwned>(
    table: &'static str,
    key: impl FnOnce() -> String,
    bytes: &[u8],
) -> Result<T, StoreError> {
    postcard::from_bytes(bytes).map_err(|e| StoreError::Corrupt {
        table,
        key: key(),
        reason: e.to_string(),
    })
}

/// Decodes the `messages` entry for `id`, checking that it is that message.
pub(crate) fn decode_message(id: MessageId, bytes: &[u8]) -> Result<Message, StoreError> {
    let message: Message = decode("messages", || id.to_string(), bytes)?;
    if message.id != id {
        return Err(StoreError::Corrupt {
            table: "messages",
            key: id.to_string(),
            reason: format!("the entry holds message {}", message.id),
        });
    }
    Ok(message)
}

/// A `connections` value: the raw address and when it was first seen.
pub(crate) type ConnectionValue = (String, Micros);

pub(crate) fn decode_connection(
    backend: &str,
    identity: &str,
    bytes: &[u8],
) -> Result<ConnectionValue, StoreError> {
    decode(
        "connections",
        || format!("({backend:?}, {identity:?})"),
        bytes,
    )
}

/// A `delivery_errors` value; the message id is in the key.
pub(crate) fn delivery_error_value(error: &DeliveryError) -> (Micros, &str) {
    (error.time, error.log.as_str())
}

pub(crate) fn decode_delivery_error(
    id: MessageId,
    seq: u64,
    bytes: &[u8],
) -> Result<DeliveryError, StoreError> {
    let (time, log): (Micros, String) =
        decode("delivery_errors", || format!("({id}, {seq})"), bytes)?;
    Ok(DeliveryError {
        message_id: id,
        time,
        log,
    })
}

/// A `dlr_callbacks` value; the due time and the id are the key.
pub(crate) fn callback_value(c: &PendingCallback) -> (MessageId, &str, u32) {
    (c.message_id, c.url.as_str(), c.attempts)
}

pub(crate) fn decode_callback(
    due: Micros,
    id: [u8; 16],
    bytes: &[u8],
) -> Result<PendingCallback, StoreError> {
    let (message_id, url, attempts): (MessageId, String, u32) = decode(
        "dlr_callbacks",
        || format!("({due}, {})", super::error::uuid_text(&id)),
        bytes,
    )?;
    Ok(PendingCallback {
        due,
        id,
        message_id,
        url,
        attempts,
    })
}

/// A `dlr_events` value; the message id is in the key.
pub(crate) fn dlr_value(event: &DlrEvent) -> (Micros, i32, &str) {
    (event.time, event.mask, event.text.as_str())
}

pub(crate) fn decode_dlr(id: MessageId, seq: u64, bytes: &[u8]) -> Result<DlrEvent, StoreError> {
    let (time, mask, text): (Micros, i32, String) =
        decode("dlr_events", || format!("({id}, {seq})"), bytes)?;
    Ok(DlrEvent {
        message_id: id,
        time,
        mask,
        text,
    })
}

/// The byte a direction is keyed by: httprouter's letter.
pub(crate) fn direction_code(direction: Direction) -> u8 {
    direction.code() as u8
}

pub(crate) fn direction_from_code(code: u8) -> Option<Direction> {
    [Direction::Incoming, Direction::Outgoing]
        .into_iter()
        .find(|d| direction_code(*d) == code)
}

pub(crate) fn status_from_code(code: u8) -> Option<Status> {
    Status::from_code(char::from(code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Connection, KannelInfo};

    fn sample() -> Message {
        Message {
            id: 300,
            connection: Connection::new("smsc1", "+250 788"),
            text: "hi".to_owned(),
            direction: Direction::Outgoing,
            status: Status::Queued,
            date: 1,
            updated: -1,
            sent: Some(2),
            delivered: None,
            in_response_to: Some(299),
            external_id: None,
            kannel: Some(KannelInfo {
                uuid: Some([7; 16]),
                shortcode: Some("8500".to_owned()),
                smsc_id: None,
                coding: -1,
                charset: None,
                udh: Some(vec![5]),
                binary: None,
                dlr_mask: 31,
                service: None,
                meta_data: None,
                foreign_id: None,
                mt_options: None,
                time: Some(1_764_000_000),
            }),
            attempts: 2,
            retry_after: Some(3),
        }
    }

    /// The stored bytes of a message are the file format. If this test
    /// fails, a stored type changed: bump `schema::SCHEMA_VERSION` (and
    /// plan a migration) before updating the expected bytes.
    #[test]
    fn encodings_are_pinned() {
        let mut buf = Vec::new();
        encode_into(&sample(), &mut buf).unwrap();
        let hex: String = buf.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(
            hex,
            "ac0205736d73633106323530373838082b323530203738380268690104020101040001ab0200\
             010107070707070707070707070707070707010438353030000100010105003e000000000180\
             84a4920d020106",
            "the stored form of Message changed: bump SCHEMA_VERSION"
        );
        assert_eq!(decode_message(300, &buf).unwrap(), sample());
    }

    #[test]
    fn a_message_under_the_wrong_key_is_corrupt() {
        let mut buf = Vec::new();
        encode_into(&sample(), &mut buf).unwrap();
        let err = decode_message(301, &buf).unwrap_err();
        assert!(
            matches!(err, StoreError::Corrupt { table: "messages", ref key, .. } if key == "301")
        );
    }

    #[test]
    fn truncated_values_are_corrupt_not_panics() {
        let mut buf = Vec::new();
        encode_into(&sample(), &mut buf).unwrap();
        for len in 0..buf.len() {
            assert!(decode_message(300, &buf[..len]).is_err());
        }
        assert!(decode_dlr(1, 2, &[0xff]).is_err());
        assert!(decode_delivery_error(1, 2, &[]).is_err());
        assert!(decode_connection("b", "i", &[0x80]).is_err());
    }

    #[test]
    fn codes_round_trip() {
        for d in [Direction::Incoming, Direction::Outgoing] {
            assert_eq!(direction_from_code(direction_code(d)), Some(d));
        }
        for s in Status::ALL {
            assert_eq!(status_from_code(s.as_u8()), Some(s));
        }
        assert_eq!(direction_from_code(b'X'), None);
    }
}
