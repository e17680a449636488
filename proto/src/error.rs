//! The three ways a box connection can go wrong, one type each.
//!
//! The split is the recovery rule, so a reader can never confuse them:
//!
//! | error         | what happened                                   | what the reader does |
//! |---------------|-------------------------------------------------|----------------------|
//! | [`BodyError`] | one frame was bad; its bytes are consumed       | log it, skip the frame, keep reading: the stream is still in step |
//! | [`FrameError`]| the byte stream itself failed (I/O, cut frame)  | drop the connection: nothing after this point can be trusted |
//! | [`EncodeError`]| a message could not be written               | nothing was written; the connection is still good (unless it is `Io`) |
//!
//! A box therefore never desyncs silently: every frame boundary is known
//! before its body is parsed (see [`crate::codec`]), so a bad body only ever
//! costs that one frame.

use std::io;

use bytes::Bytes;

/// A frame whose body could not be decoded.
///
/// The whole frame has been consumed and the stream is still in step: skip
/// the frame and go on reading. The bearerbox keeps an unacknowledged message
/// and redelivers it on reconnect, so a skipped MO is not lost, but it will
/// come back the same way: log it loudly (the `body` is kept for that).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad box frame at offset {offset}: {kind}")]
pub struct BodyError {
    /// Where the problem starts, counted from the first byte of the frame's
    /// 4-byte length prefix (so the message type is at 4 and the first field
    /// at 8); this lines up with a hex dump of the frame as recorded.
    pub offset: usize,
    /// What was wrong.
    pub kind: BodyErrorKind,
    /// The frame's body (without the length prefix), for logging. Empty when
    /// the body was never read (a negative or oversized length).
    pub body: Bytes,
}

/// What was wrong with a frame's body. Every variant means "skip the frame".
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BodyErrorKind {
    /// The length prefix was negative. Kannel's `conn_read_withlen` skips
    /// such a 4-byte header and reads on, and so does this codec.
    #[error("frame length {0} is negative; the 4-byte header was skipped")]
    NegativeFrameLength(i32),
    /// The length prefix was above the codec's limit. The body is discarded
    /// as it arrives, without being buffered.
    #[error("frame length {len} exceeds the limit of {max} bytes; the frame was discarded")]
    FrameTooLong { len: usize, max: usize },
    /// The message type is not one of the five Kannel 1.4.5 knows.
    #[error("unknown message type {0}")]
    UnknownType(i32),
    /// The frame ended inside a field: a short frame is never accepted.
    #[error("field `{field}` is truncated: {needed} bytes needed, {available} left in the frame")]
    Truncated {
        field: &'static str,
        needed: usize,
        available: usize,
    },
    /// A string's length was negative but not -1 (NULL).
    #[error("field `{field}` has string length {len}; only -1 (NULL) may be negative")]
    NegativeStringLength { field: &'static str, len: i32 },
    /// A string's length ran past the end of the frame.
    #[error(
        "field `{field}` has string length {len} but only {available} bytes are left in the frame"
    )]
    StringPastEnd {
        field: &'static str,
        len: usize,
        available: usize,
    },
    /// A UUID field did not hold a 36-character textual UUID.
    #[error("field `{field}` is not a 36-character textual UUID")]
    MalformedUuid { field: &'static str },
}

/// The byte stream failed: drop the connection.
///
/// Nothing read after one of these can be trusted to start on a frame
/// boundary. A box reconnects; the bearerbox redelivers what it had not seen
/// acknowledged.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// Reading from the socket failed.
    #[error("box connection I/O: {0}")]
    Io(#[from] io::Error),
    /// The peer closed the connection in the middle of a frame.
    #[error("connection closed inside a frame ({buffered} bytes of it were buffered)")]
    EofInFrame { buffered: usize },
}

/// A message could not be encoded. Nothing was written to the buffer, so the
/// connection is still usable, except after [`EncodeError::Io`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EncodeError {
    /// The encoded frame would be larger than the codec's limit, or than a
    /// 4-byte signed length can say.
    #[error("message of {len} bytes exceeds the frame limit of {max} bytes; not sent")]
    TooLong { len: usize, max: usize },
    /// Writing to the socket failed: drop the connection.
    #[error("box connection I/O: {0}")]
    Io(#[from] io::Error),
}
