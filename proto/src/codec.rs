//! Framing: the 4-byte big-endian signed length prefix, as a
//! `tokio_util::codec` decoder and encoder.
//!
//! Decoding is split in two, as in mini-redis: first *check* that a whole
//! frame is buffered (partial input is never an error, it only waits for
//! more bytes), then *parse* it ([`Msg::decode`]). Because the frame's end is
//! known before its body is looked at, a malformed body costs exactly that
//! frame and the stream stays in step.
//!
//! The decoder's item is `Result<Msg, BodyError>` rather than `Msg`: a
//! `FramedRead` ends its stream after the decoder's first `Err`, and a bad
//! frame must not end the connection. Only [`FrameError`]s (I/O, a peer that
//! hangs up inside a frame) end it.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::{BodyError, BodyErrorKind, EncodeError, FrameError};
use crate::msg::Msg;

/// The default limit on a frame's body: 1 MiB.
///
/// Kannel imposes none, but its largest real frames are a few hundred bytes
/// (a long MT sent whole is still well under 64 KiB of text), so 1 MiB
/// leaves room for anything legitimate while keeping a hostile or broken
/// peer from making the box allocate without bound.
pub const DEFAULT_MAX_FRAME_LEN: usize = 1024 * 1024;

/// Encodes and decodes box protocol frames.
#[derive(Debug, Clone)]
pub struct BoxCodec {
    max_frame_len: usize,
    /// Bytes still to throw away of a frame that was over the limit.
    discarding: usize,
}

impl BoxCodec {
    /// A codec with the default 1 MiB frame limit.
    pub fn new() -> BoxCodec {
        BoxCodec::with_max_frame_len(DEFAULT_MAX_FRAME_LEN)
    }

    /// A codec that refuses frame bodies longer than `max_frame_len` bytes,
    /// both ways: the decoder skips them without buffering them, the encoder
    /// does not write them.
    pub fn with_max_frame_len(max_frame_len: usize) -> BoxCodec {
        BoxCodec {
            max_frame_len,
            discarding: 0,
        }
    }

    /// The frame limit in force.
    pub fn max_frame_len(&self) -> usize {
        self.max_frame_len
    }

    /// Drops buffered bytes of an oversized frame. True when the frame has
    /// been fully skipped.
    fn discard(&mut self, src: &mut BytesMut) -> bool {
        let n = self.discarding.min(src.len());
        src.advance(n);
        self.discarding -= n;
        self.discarding == 0
    }
}

impl Default for BoxCodec {
    fn default() -> Self {
        BoxCodec::new()
    }
}

/// The outcome of looking at the start of the buffer.
enum Check {
    /// Not enough bytes yet.
    Partial,
    /// A whole frame of this body length is buffered after the prefix.
    Frame(usize),
    /// The prefix is unusable; the frame is handled as an error.
    Bad(BodyErrorKind),
}

impl BoxCodec {
    /// Checks, without consuming anything, whether the buffer starts with a
    /// whole frame.
    fn check(&self, src: &[u8]) -> Check {
        let Some(prefix) = src.first_chunk::<4>() else {
            return Check::Partial;
        };
        let len = i32::from_be_bytes(*prefix);
        let Ok(len) = usize::try_from(len) else {
            return Check::Bad(BodyErrorKind::NegativeFrameLength(len));
        };
        if len > self.max_frame_len {
            let max = self.max_frame_len;
            return Check::Bad(BodyErrorKind::FrameTooLong { len, max });
        }
        if src.len() - 4 < len {
            return Check::Partial;
        }
        Check::Frame(len)
    }
}

impl Decoder for BoxCodec {
    type Item = Result<Msg, BodyError>;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        if self.discarding > 0 && !self.discard(src) {
            return Ok(None);
        }
        match self.check(src) {
            Check::Partial => {
                // Ask for the rest of the frame in one allocation; the
                // check above has bounded it by the frame limit.
                if let Some(prefix) = src.first_chunk::<4>() {
                    let len = i32::from_be_bytes(*prefix) as usize;
                    src.reserve(4 + len - src.len());
                }
                Ok(None)
            }
            Check::Frame(len) => {
                src.advance(4);
                let body: Bytes = src.split_to(len).freeze();
                Ok(Some(Msg::decode(body)))
            }
            Check::Bad(kind) => {
                src.advance(4);
                if let BodyErrorKind::FrameTooLong { len, .. } = kind {
                    self.discarding = len;
                    self.discard(src);
                }
                Ok(Some(Err(BodyError {
                    offset: 0,
                    kind,
                    body: Bytes::new(),
                })))
            }
        }
    }

    fn decode_eof(&mut self, src: &mut BytesMut) -> Result<Option<Self::Item>, FrameError> {
        match self.decode(src)? {
            Some(item) => Ok(Some(item)),
            None if src.is_empty() && self.discarding == 0 => Ok(None),
            None => {
                let buffered = src.len();
                src.clear();
                self.discarding = 0;
                Err(FrameError::EofInFrame { buffered })
            }
        }
    }
}

impl Encoder<Msg> for BoxCodec {
    type Error = EncodeError;

    fn encode(&mut self, msg: Msg, dst: &mut BytesMut) -> Result<(), EncodeError> {
        msg.encode_limited(dst, self.max_frame_len)
    }
}

impl Encoder<&Msg> for BoxCodec {
    type Error = EncodeError;

    fn encode(&mut self, msg: &Msg, dst: &mut BytesMut) -> Result<(), EncodeError> {
        msg.encode_limited(dst, self.max_frame_len)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::msg::Heartbeat;
    use bytes::BufMut;

    fn heartbeat(load: i32) -> Msg {
        Msg::from(Heartbeat {
            load,
            ..Default::default()
        })
    }

    fn decode_all(codec: &mut BoxCodec, buf: &mut BytesMut) -> Vec<Result<Msg, BodyError>> {
        std::iter::from_fn(|| codec.decode(buf).unwrap()).collect()
    }

    #[test]
    fn partial_frames_wait_for_more_bytes() {
        let mut frame = BytesMut::new();
        heartbeat(3).encode(&mut frame).unwrap();
        let mut codec = BoxCodec::new();
        let mut buf = BytesMut::new();
        for (i, byte) in frame.iter().enumerate() {
            assert!(codec.decode(&mut buf).unwrap().is_none(), "byte {i}");
            buf.put_u8(*byte);
        }
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap().unwrap(),
            heartbeat(3)
        );
    }

    #[test]
    fn a_negative_length_skips_only_the_header_as_kannel_does() {
        let mut buf = BytesMut::new();
        buf.put_i32(-5);
        heartbeat(1).encode(&mut buf).unwrap();
        let items = decode_all(&mut BoxCodec::new(), &mut buf);
        assert_eq!(items.len(), 2);
        let err = items[0].clone().unwrap_err();
        assert_eq!(err.kind, BodyErrorKind::NegativeFrameLength(-5));
        assert_eq!(items[1].clone().unwrap(), heartbeat(1));
    }

    #[test]
    fn an_oversized_frame_is_discarded_without_buffering_and_the_stream_resyncs() {
        let mut codec = BoxCodec::with_max_frame_len(16);
        let mut buf = BytesMut::new();
        buf.put_i32(100);
        buf.put_slice(&[0xaa; 40]);
        let first = codec.decode(&mut buf).unwrap().unwrap().unwrap_err();
        assert_eq!(
            first.kind,
            BodyErrorKind::FrameTooLong { len: 100, max: 16 }
        );
        assert!(buf.is_empty(), "discarded bytes are not kept");
        assert!(buf.capacity() < 100, "the oversized body is never reserved");
        buf.put_slice(&[0xaa; 60]);
        heartbeat(2).encode(&mut buf).unwrap();
        assert_eq!(
            codec.decode(&mut buf).unwrap().unwrap().unwrap(),
            heartbeat(2)
        );
    }

    #[test]
    fn a_bad_body_costs_one_frame() {
        let mut buf = BytesMut::new();
        buf.put_i32(4);
        buf.put_i32(77);
        heartbeat(9).encode(&mut buf).unwrap();
        let items = decode_all(&mut BoxCodec::new(), &mut buf);
        assert_eq!(
            items[0].clone().unwrap_err().kind,
            BodyErrorKind::UnknownType(77)
        );
        assert_eq!(items[1].clone().unwrap(), heartbeat(9));
    }

    #[test]
    fn eof_inside_a_frame_is_a_frame_error() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 8, 0, 0][..]);
        let err = BoxCodec::new().decode_eof(&mut buf).unwrap_err();
        assert!(matches!(err, FrameError::EofInFrame { buffered: 6 }));
        let mut empty = BytesMut::new();
        assert!(BoxCodec::new().decode_eof(&mut empty).unwrap().is_none());
    }

    #[test]
    fn the_encoder_refuses_frames_over_the_limit_and_writes_nothing() {
        let mut codec = BoxCodec::with_max_frame_len(4);
        let mut dst = BytesMut::new();
        let err = codec.encode(heartbeat(1), &mut dst).unwrap_err();
        assert!(matches!(err, EncodeError::TooLong { len: 8, max: 4 }));
        assert!(dst.is_empty());
    }
}
