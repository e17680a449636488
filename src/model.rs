//! The domain model, after rapidsms-httprouter: backends, connections,
//! messages and their statuses, delivery errors and delivery reports.
//!
//! These are plain values: the store persists them, the router hands them to
//! apps, the link turns them into box protocol frames.

use serde::{Deserialize, Serialize};

/// The id users see: monotonic, never reused.
pub type MessageId = u64;

/// Microseconds since the Unix epoch, UTC.
pub type Micros = i64;

/// Now, in [`Micros`].
pub fn now_micros() -> Micros {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}

/// Which way a message travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Direction {
    /// From a phone (httprouter's `I`).
    Incoming,
    /// To a phone (httprouter's `O`).
    Outgoing,
}

impl Direction {
    /// httprouter's one-letter code.
    pub fn code(self) -> char {
        match self {
            Direction::Incoming => 'I',
            Direction::Outgoing => 'O',
        }
    }
}

/// httprouter's message statuses, with their one-letter codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Status {
    /// R: received, not yet handled.
    Received,
    /// H: handled by the router.
    Handled,
    /// P: being processed.
    Processing,
    /// L: locked by a sender.
    Locked,
    /// Q: queued for sending.
    Queued,
    /// I: handed to a backend, no answer yet.
    Dispatched,
    /// S: sent (the backend accepted it).
    Sent,
    /// D: delivered to the phone.
    Delivered,
    /// C: cancelled by an app's outgoing phase.
    Cancelled,
    /// E: errored; will be retried.
    Errored,
    /// F: failed; given up.
    Failed,
}

impl Status {
    /// Every status, in code order.
    pub const ALL: [Status; 11] = [
        Status::Received,
        Status::Handled,
        Status::Processing,
        Status::Locked,
        Status::Queued,
        Status::Dispatched,
        Status::Sent,
        Status::Delivered,
        Status::Cancelled,
        Status::Errored,
        Status::Failed,
    ];

    /// httprouter's one-letter code.
    pub fn code(self) -> char {
        match self {
            Status::Received => 'R',
            Status::Handled => 'H',
            Status::Processing => 'P',
            Status::Locked => 'L',
            Status::Queued => 'Q',
            Status::Dispatched => 'I',
            Status::Sent => 'S',
            Status::Delivered => 'D',
            Status::Cancelled => 'C',
            Status::Errored => 'E',
            Status::Failed => 'F',
        }
    }

    /// The status for a one-letter code.
    pub fn from_code(code: char) -> Option<Status> {
        Status::ALL.into_iter().find(|s| s.code() == code)
    }

    /// What the status means, spelled out.
    pub fn meaning(self) -> &'static str {
        match self {
            Status::Received => "received",
            Status::Handled => "handled",
            Status::Processing => "processing",
            Status::Locked => "locked",
            Status::Queued => "queued",
            Status::Dispatched => "dispatched",
            Status::Sent => "sent",
            Status::Delivered => "delivered",
            Status::Cancelled => "cancelled",
            Status::Errored => "errored (will retry)",
            Status::Failed => "failed",
        }
    }

    /// True while work remains for the message (R, P, L, Q, I, E): the
    /// statuses the store indexes, because something will come looking for
    /// messages in them. Handled, sent, delivered, cancelled and failed
    /// messages are found by id, not by status.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            Status::Received
                | Status::Processing
                | Status::Locked
                | Status::Queued
                | Status::Dispatched
                | Status::Errored
        )
    }

    /// The status as a byte, for store keys.
    pub fn as_u8(self) -> u8 {
        self.code() as u8
    }
}

/// Normalizes a phone number or other address the way httprouter does:
/// lower-cased, everything but `[0-9a-z]` removed.
/// `+250-788 383383` becomes `250788383383`.
pub fn normalize_identity(raw: &str) -> String {
    raw.chars()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_ascii_digit() || c.is_ascii_lowercase())
        .collect()
}

/// The longest backend name a peer may give (httprouter's
/// `Backend.name`, 32 characters).
pub const MAX_BACKEND_CHARS: usize = 32;

/// The longest sender a peer may give over HTTP (httprouter's
/// `Connection.identity`, 20 characters).
pub const MAX_SENDER_CHARS: usize = 20;

/// A (backend, identity) pair: who a message is from or to, and through
/// which backend.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Connection {
    /// The backend's name: an MO's `smsc_id`, or an HTTP `backend`.
    pub backend: String,
    /// The normalized identity (see [`normalize_identity`]).
    pub identity: String,
    /// The address exactly as it came, so a reply goes back to it.
    pub address: String,
}

impl Connection {
    /// A connection for `address` on `backend`.
    pub fn new(backend: &str, address: &str) -> Connection {
        Connection {
            backend: backend.to_owned(),
            identity: normalize_identity(address),
            address: address.to_owned(),
        }
    }
}

/// What Kannel said about a message, or what rapidbox told Kannel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KannelInfo {
    /// The box protocol UUID: the MO's, or the one rapidbox gave an MT.
    pub uuid: Option<[u8; 16]>,
    /// The other end's address: an MO's receiver (the shortcode), an MT's
    /// sender.
    pub shortcode: Option<String>,
    /// The SMSC the message came from or should go to.
    pub smsc_id: Option<String>,
    /// The box protocol coding (-1 undefined, 0 7-bit, 1 8-bit, 2 UCS-2).
    pub coding: i32,
    /// The `charset` field, if Kannel gave one.
    pub charset: Option<String>,
    /// User data header bytes.
    pub udh: Option<Vec<u8>>,
    /// For 8-bit messages: the payload as it came (the text holds a lossy
    /// rendering for people).
    pub binary: Option<Vec<u8>>,
    /// The dlr_mask asked for (MTs) or -1.
    pub dlr_mask: i32,
    /// The Kannel `service` (the sendsms user, for sendsms MTs).
    pub service: Option<String>,
    /// The MO's `meta_data`, kept as it came.
    pub meta_data: Option<String>,
    /// The SMSC's own id for an MT, learnt from a delivery report.
    pub foreign_id: Option<String>,
    /// What a sendsms caller asked for beyond the fields above; for an MO,
    /// what its SMSC set beyond them (message class, PID, validity,
    /// account, billing info...), which smsbox shows to `post-url` and
    /// `post-xml` services and in escapes. `None` for replies and for MOs
    /// whose SMSC set none. Boxed so that messages without it stay small.
    pub mt_options: Option<Box<MtOptions>>,
    /// An MO's `time` as the bearerbox gave it (Unix seconds, when the
    /// SMSC delivered it); `None` for MTs and when Kannel sent -1. Part of
    /// the MO's [`MoKey`].
    pub time: Option<i64>,
}

/// What identifies an MO from the bearerbox across redeliveries: its
/// `time` and its UUID. A bearerbox redelivers the very message it kept
/// (the same fields, from memory or its store file), so both stay the same.
///
/// The UUID alone would do, but Kannel's are random: an index keyed by them
/// alone puts every MO on its own page of the index, and with group commit
/// that page is rewritten whole (4 KiB) for a 24-byte entry. Prefixed with
/// the time, which grows, new entries land in the newest second's part of
/// the index (the store still gathers them in `mo_recent` first: within a
/// second, the UUIDs scatter them over that part).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct MoKey {
    /// Kannel's `time`, or -1 when it has none.
    pub time: i64,
    pub uuid: [u8; 16],
}

impl MoKey {
    /// The key of a stored MO: `None` for MTs and messages without a
    /// Kannel UUID.
    pub fn of(message: &Message) -> Option<MoKey> {
        if message.direction != Direction::Incoming {
            return None;
        }
        let kannel = message.kannel.as_ref()?;
        Some(MoKey {
            time: kannel.time.unwrap_or(-1),
            uuid: kannel.uuid?,
        })
    }
}

/// The MT fields a Kannel sendsms request may set that only sendsms MTs
/// carry, kept so that an MT sent (or re-sent after a restart) carries
/// them to the bearerbox, and so that a delivery report can call the
/// caller's `dlr-url`. Integers are Kannel's, -1 meaning "not set".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MtOptions {
    /// The caller's `dlr-url`, with Kannel's escapes not yet substituted.
    /// (The MT's own `dlr_url` on the wire is rapidbox's message id.)
    pub dlr_url: Option<String>,
    pub mclass: i32,
    pub mwi: i32,
    pub pid: i32,
    pub alt_dcs: i32,
    pub rpi: i32,
    /// Absolute, in Unix seconds, as Kannel's smsbox computes it from the
    /// request's minutes when it takes the request.
    pub validity: i32,
    /// Absolute, in Unix seconds, likewise.
    pub deferred: i32,
    pub priority: i32,
    pub account: Option<String>,
    pub binfo: Option<String>,
    pub meta_data: Option<String>,
    /// Kannel's `compress` (0 or 1; -1 not set).
    pub compress: i32,
}

impl Default for MtOptions {
    fn default() -> MtOptions {
        MtOptions {
            dlr_url: None,
            mclass: -1,
            mwi: -1,
            pid: -1,
            alt_dcs: -1,
            rpi: -1,
            validity: -1,
            deferred: -1,
            priority: -1,
            account: None,
            binfo: None,
            meta_data: None,
            compress: -1,
        }
    }
}

/// A call owed to a sendsms caller's `dlr-url`: stored in the same unit
/// as the delivery report that causes it, so no restart loses it, and
/// removed once it is made or given up ([`crate::dlr_callback`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingCallback {
    /// When it is due; calls are made in this order.
    pub due: Micros,
    /// Unique and time-ordered (a version 7 UUID's layout), so that two
    /// calls due at the same time are both kept.
    pub id: [u8; 16],
    /// The message whose report it is about.
    pub message_id: MessageId,
    /// The caller's URL, escapes already substituted.
    pub url: String,
    /// Attempts made so far.
    pub attempts: u32,
}

/// A stored message (httprouter's `Message`, with Kannel's details).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    pub connection: Connection,
    pub text: String,
    pub direction: Direction,
    pub status: Status,
    /// When the message was received or created.
    pub date: Micros,
    /// When anything about it last changed.
    pub updated: Micros,
    /// When a backend accepted it.
    pub sent: Option<Micros>,
    /// When it was reported delivered.
    pub delivered: Option<Micros>,
    /// For a reply: the MO it answers.
    pub in_response_to: Option<MessageId>,
    /// An id given by a backend; for Kannel, the MT's UUID as text.
    pub external_id: Option<String>,
    /// Kannel's details, for messages that came or go through a bearerbox.
    pub kannel: Option<KannelInfo>,
    /// Failed send attempts so far (the third makes it F).
    pub attempts: u32,
    /// For E messages: not to be retried before this time.
    pub retry_after: Option<Micros>,
}

impl Message {
    /// The box protocol UUID, for logs: an MO's from the bearerbox, or the
    /// one rapidbox gave an MT; `None` for a message Kannel never saw.
    pub fn kannel_uuid(&self) -> Option<uuid::Uuid> {
        Some(uuid::Uuid::from_bytes(self.kannel.as_ref()?.uuid?))
    }

    /// A message with only its essentials: received (R) if incoming,
    /// queued (Q) if outgoing, dated now, no Kannel details, no attempts.
    pub fn new(
        id: MessageId,
        connection: Connection,
        direction: Direction,
        text: impl Into<String>,
    ) -> Message {
        let now = now_micros();
        Message {
            id,
            connection,
            text: text.into(),
            direction,
            status: match direction {
                Direction::Incoming => Status::Received,
                Direction::Outgoing => Status::Queued,
            },
            date: now,
            updated: now,
            sent: None,
            delivered: None,
            in_response_to: None,
            external_id: None,
            kannel: None,
            attempts: 0,
            retry_after: None,
        }
    }
}

/// One failed attempt to send a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeliveryError {
    pub message_id: MessageId,
    pub time: Micros,
    /// What went wrong: a status code and body excerpt, an ack value, a DLR
    /// text.
    pub log: String,
}

/// One delivery report received for a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DlrEvent {
    pub message_id: MessageId,
    pub time: Micros,
    /// The single event that happened (a dlr_mask bit).
    pub mask: i32,
    /// The SMSC's report text.
    pub text: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identities_are_normalized_as_httprouter_does() {
        assert_eq!(normalize_identity("+250-788 383383"), "250788383383");
        assert_eq!(normalize_identity("Mr.Test@Example"), "mrtestexample");
        assert_eq!(normalize_identity(""), "");
    }

    #[test]
    fn status_codes_round_trip() {
        for s in Status::ALL {
            assert_eq!(Status::from_code(s.code()), Some(s));
        }
        assert_eq!(Status::Dispatched.code(), 'I');
        assert_eq!(Status::from_code('X'), None);
    }
}
