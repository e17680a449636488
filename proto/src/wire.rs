//! The three field kinds of Kannel's `msg-decl.h` (INTEGER, OCTSTR, UUID) and
//! how each one goes on the wire. The fourth kind, VOID, has no bytes at all
//! and so no code.
//!
//! Parsers run over the frame's body as a `&[u8]` (nom's natural input) and
//! turn string fields into zero-copy [`Bytes`] slices of the frame, so
//! decoding a message allocates nothing but the message itself.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};
use nom::error::{ErrorKind, ParseError};
use nom::number::complete::be_i32;
use nom::IResult;
use uuid::Uuid;

use crate::error::BodyErrorKind;

/// An OCTSTR field: `None` is Kannel's NULL (length -1 on the wire), which is
/// distinct from the empty string (length 0).
pub type OctStr = Option<Bytes>;

/// Length on the wire of a UUID in its textual form.
const UUID_TEXT_LEN: usize = 36;

/// A field parser's error: where in the body the field started, and what was
/// wrong. The message parser adds the field's name and turns the position
/// into an offset.
#[derive(Debug)]
pub(crate) struct WireError<'a> {
    pub at: &'a [u8],
    pub problem: Problem,
}

#[derive(Debug)]
pub(crate) enum Problem {
    Truncated { needed: usize },
    NegativeLength(i32),
    PastEnd { len: usize },
    MalformedUuid,
}

impl<'a> WireError<'a> {
    fn fail<O>(at: &'a [u8], problem: Problem) -> WResult<'a, O> {
        Err(nom::Err::Failure(WireError { at, problem }))
    }

    /// The typed error for this problem in field `field`.
    pub(crate) fn into_kind(self, field: &'static str) -> BodyErrorKind {
        let available = self.at.len();
        match self.problem {
            Problem::Truncated { needed } => BodyErrorKind::Truncated {
                field,
                needed,
                available,
            },
            Problem::NegativeLength(len) => BodyErrorKind::NegativeStringLength { field, len },
            // `at` is the start of the field; the length prefix is behind it.
            Problem::PastEnd { len } => BodyErrorKind::StringPastEnd {
                field,
                len,
                available: available.saturating_sub(4),
            },
            Problem::MalformedUuid => BodyErrorKind::MalformedUuid { field },
        }
    }
}

impl<'a> ParseError<&'a [u8]> for WireError<'a> {
    // nom's own parsers only fail here by running out of input.
    fn from_error_kind(at: &'a [u8], _kind: ErrorKind) -> Self {
        WireError {
            at,
            problem: Problem::Truncated { needed: 4 },
        }
    }

    fn append(_: &'a [u8], _: ErrorKind, other: Self) -> Self {
        other
    }
}

pub(crate) type WResult<'a, O> = IResult<&'a [u8], O, WireError<'a>>;

/// A read-only view of one field, for tools that walk a message's fields
/// generically (dumps, coverage checks) without knowing their Rust types.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum FieldValue<'a> {
    /// An INTEGER; typed fields (sms_type, coding, ...) show their raw value.
    Int(i32),
    /// An OCTSTR; `None` is NULL.
    OctStr(Option<&'a Bytes>),
    /// A UUID.
    Uuid(&'a Uuid),
}

impl FieldValue<'_> {
    /// True when the field holds Kannel's "nothing here": -1 for integers,
    /// NULL for strings. UUIDs always hold a value.
    pub fn is_unset(&self) -> bool {
        matches!(self, FieldValue::Int(-1) | FieldValue::OctStr(None))
    }
}

impl fmt::Debug for FieldValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldValue::Int(v) => write!(f, "{v}"),
            FieldValue::OctStr(None) => f.write_str("NULL"),
            FieldValue::OctStr(Some(b)) => fmt_octets(b, f),
            FieldValue::Uuid(u) => write!(f, "{u}"),
        }
    }
}

/// Text as a quoted string when it is UTF-8, otherwise as hex: an operator
/// reading a dump wants "hello", and a UDH as `0x050003...`.
fn fmt_octets(b: &[u8], f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match std::str::from_utf8(b) {
        Ok(s) => write!(f, "{s:?}"),
        Err(_) => {
            f.write_str("0x")?;
            b.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
        }
    }
}

/// One field kind: how it is parsed, written, measured and shown.
///
/// Implemented for `i32` (INTEGER), [`OctStr`] (OCTSTR), [`Uuid`] (UUID),
/// and for the typed integers of [`crate::types`].
pub(crate) trait Wire: Sized {
    /// Kannel's value for a field nobody set.
    fn unset() -> Self;
    /// Parses the field at the start of `input`; `frame` is the buffer
    /// `input` lies in, so strings can be sliced out of it without copying.
    fn parse<'a>(frame: &Bytes, input: &'a [u8]) -> WResult<'a, Self>;
    /// Bytes this field takes on the wire.
    fn wire_len(&self) -> usize;
    /// Appends the field; the caller has reserved `wire_len` bytes.
    fn put(&self, dst: &mut BytesMut);
    /// The field as a [`FieldValue`].
    fn value(&self) -> FieldValue<'_>;
}

impl Wire for i32 {
    fn unset() -> Self {
        -1
    }

    fn parse<'a>(_: &Bytes, input: &'a [u8]) -> WResult<'a, Self> {
        be_i32(input)
    }

    fn wire_len(&self) -> usize {
        4
    }

    fn put(&self, dst: &mut BytesMut) {
        dst.put_i32(*self);
    }

    fn value(&self) -> FieldValue<'_> {
        FieldValue::Int(*self)
    }
}

/// The raw bytes of an OCTSTR: a length, then that many bytes; -1 is NULL.
fn octets(input: &[u8]) -> WResult<'_, Option<&[u8]>> {
    let (rest, len) = be_i32(input)?;
    if len == -1 {
        return Ok((rest, None));
    }
    let Ok(len) = usize::try_from(len) else {
        return WireError::fail(input, Problem::NegativeLength(len));
    };
    if rest.len() < len {
        return WireError::fail(input, Problem::PastEnd { len });
    }
    let (value, rest) = rest.split_at(len);
    Ok((rest, Some(value)))
}

impl Wire for OctStr {
    fn unset() -> Self {
        None
    }

    fn parse<'a>(frame: &Bytes, input: &'a [u8]) -> WResult<'a, Self> {
        let (rest, value) = octets(input)?;
        Ok((rest, value.map(|v| frame.slice_ref(v))))
    }

    fn wire_len(&self) -> usize {
        4 + self.as_ref().map_or(0, Bytes::len)
    }

    fn put(&self, dst: &mut BytesMut) {
        match self {
            None => dst.put_i32(-1),
            Some(b) => {
                // A length that does not fit in i32 is refused before any
                // field is written (see `Msg::encode`), so this cannot wrap.
                dst.put_i32(b.len() as i32);
                dst.put_slice(b);
            }
        }
    }

    fn value(&self) -> FieldValue<'_> {
        FieldValue::OctStr(self.as_ref())
    }
}

impl Wire for Uuid {
    /// Kannel generates a fresh UUID for every new message; a decoder has no
    /// business inventing randomness, so "unset" is the nil UUID.
    fn unset() -> Self {
        Uuid::nil()
    }

    /// Kannel writes `uuid_unparse`'s 36 characters as an OCTSTR. Anything
    /// else (NULL, another length, a braced or 32-digit form) is refused, as
    /// Kannel's `uuid_parse` refuses it.
    fn parse<'a>(_: &Bytes, input: &'a [u8]) -> WResult<'a, Self> {
        let (rest, value) = octets(input)?;
        match value {
            Some(text) if text.len() == UUID_TEXT_LEN => match Uuid::try_parse_ascii(text) {
                Ok(uuid) => Ok((rest, uuid)),
                Err(_) => WireError::fail(input, Problem::MalformedUuid),
            },
            _ => WireError::fail(input, Problem::MalformedUuid),
        }
    }

    fn wire_len(&self) -> usize {
        4 + UUID_TEXT_LEN
    }

    /// Always lowercase, as Kannel writes it; an uppercase UUID from some
    /// other peer is therefore the one field that does not re-encode to the
    /// same bytes.
    fn put(&self, dst: &mut BytesMut) {
        let mut text = [0u8; UUID_TEXT_LEN];
        self.hyphenated().encode_lower(&mut text);
        dst.put_i32(UUID_TEXT_LEN as i32);
        dst.put_slice(&text);
    }

    fn value(&self) -> FieldValue<'_> {
        FieldValue::Uuid(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse<T: Wire>(bytes: &[u8]) -> Result<(T, usize), Problem> {
        let frame = Bytes::copy_from_slice(bytes);
        match T::parse(&frame, &frame) {
            Ok((rest, v)) => Ok((v, rest.len())),
            Err(nom::Err::Failure(e) | nom::Err::Error(e)) => Err(e.problem),
            Err(nom::Err::Incomplete(_)) => unreachable!("complete parsers"),
        }
    }

    #[test]
    fn null_and_empty_strings_are_distinct() {
        let (null, _) = parse::<OctStr>(&(-1i32).to_be_bytes()).unwrap();
        let (empty, _) = parse::<OctStr>(&0i32.to_be_bytes()).unwrap();
        assert_eq!(null, None);
        assert_eq!(empty, Some(Bytes::new()));
        assert_eq!(null.wire_len(), 4);
        assert_eq!(empty.wire_len(), 4);
    }

    #[test]
    fn string_lengths_other_than_minus_one_may_not_be_negative() {
        let err = parse::<OctStr>(&(-2i32).to_be_bytes()).unwrap_err();
        assert!(matches!(err, Problem::NegativeLength(-2)));
    }

    #[test]
    fn a_string_may_not_run_past_the_frame() {
        let mut b = 5i32.to_be_bytes().to_vec();
        b.extend_from_slice(b"abcd");
        let err = parse::<OctStr>(&b).unwrap_err();
        assert!(matches!(err, Problem::PastEnd { len: 5 }));
    }

    #[test]
    fn uuids_must_be_36_character_text() {
        let text = b"e5f0c7a8-1b2c-4d3e-8f90-a1b2c3d4e5f6";
        let mut b = 36i32.to_be_bytes().to_vec();
        b.extend_from_slice(text);
        let (uuid, rest) = parse::<Uuid>(&b).unwrap();
        assert_eq!(rest, 0);
        assert_eq!(uuid.to_string().as_bytes(), text);

        let simple = b"e5f0c7a81b2c4d3e8f90a1b2c3d4e5f6";
        let mut b = 32i32.to_be_bytes().to_vec();
        b.extend_from_slice(simple);
        assert!(matches!(
            parse::<Uuid>(&b).unwrap_err(),
            Problem::MalformedUuid
        ));
        assert!(matches!(
            parse::<Uuid>(&(-1i32).to_be_bytes()).unwrap_err(),
            Problem::MalformedUuid
        ));
    }

    #[test]
    fn binary_strings_show_as_hex_and_text_as_text() {
        let text = Bytes::from_static(b"hi");
        let udh = Bytes::from_static(&[0x05, 0x00, 0x03, 0xff]);
        assert_eq!(format!("{:?}", FieldValue::OctStr(Some(&text))), "\"hi\"");
        assert_eq!(
            format!("{:?}", FieldValue::OctStr(Some(&udh))),
            "0x050003ff"
        );
        assert_eq!(format!("{:?}", FieldValue::OctStr(None)), "NULL");
    }
}
