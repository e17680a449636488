//! Property tests of the codec.
//!
//! Messages are generated from the declaration itself: each message type's
//! field kinds are read off `fields()` of its default value, random values of
//! those kinds are laid out by a small reference encoder written here from
//! the protocol notes, and boxproto must decode them to exactly those values
//! and encode them back to exactly those bytes. A field added to the
//! declaration is covered without touching this file.

use boxproto::{Ack, Admin, BodyErrorKind, BoxCodec, FieldValue, Heartbeat, Msg, Sms, WdpDatagram};
use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// A field's value as the test generates it.
#[derive(Debug, Clone)]
enum Value {
    Int(i32),
    Str(Option<Vec<u8>>),
    Uuid([u8; 16]),
}

/// The messages, unset, from which field kinds are read.
fn templates() -> Vec<Msg> {
    vec![
        Heartbeat::default().into(),
        Admin::default().into(),
        Sms::default().into(),
        Ack::default().into(),
        WdpDatagram::default().into(),
    ]
}

fn value_strategy(kind: &FieldValue<'_>) -> BoxedStrategy<Value> {
    match kind {
        FieldValue::Int(_) => prop_oneof![Just(-1), 0..5i32, any::<i32>(),]
            .prop_map(Value::Int)
            .boxed(),
        FieldValue::OctStr(_) => {
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40))
                .prop_map(Value::Str)
                .boxed()
        }
        FieldValue::Uuid(_) => any::<[u8; 16]>().prop_map(Value::Uuid).boxed(),
    }
}

/// A message type's code, its field values and trailing bytes.
fn raw_message() -> impl Strategy<Value = (i32, Vec<Value>, Vec<u8>)> {
    (0..templates().len()).prop_flat_map(|t| {
        let template = &templates()[t];
        let fields: Vec<BoxedStrategy<Value>> = template
            .fields()
            .iter()
            .map(|(_, k)| value_strategy(k))
            .collect();
        let extra = prop_oneof![
            4 => Just(Vec::new()),
            1 => proptest::collection::vec(any::<u8>(), 1..12),
        ];
        (Just(template.type_code()), fields, extra)
    })
}

/// The reference encoder: the protocol notes' layout, written out by hand.
fn lay_out(code: i32, values: &[Value], extra: &[u8]) -> Bytes {
    let mut body = BytesMut::new();
    body.put_i32(code);
    for v in values {
        match v {
            Value::Int(i) => body.put_i32(*i),
            Value::Str(None) => body.put_i32(-1),
            Value::Str(Some(s)) => {
                body.put_i32(s.len() as i32);
                body.put_slice(s);
            }
            Value::Uuid(u) => {
                let text = uuid::Uuid::from_bytes(*u).hyphenated().to_string();
                body.put_i32(36);
                body.put_slice(text.as_bytes());
            }
        }
    }
    body.put_slice(extra);
    body.freeze()
}

fn frame(body: &[u8]) -> Vec<u8> {
    let mut f = (body.len() as i32).to_be_bytes().to_vec();
    f.extend_from_slice(body);
    f
}

fn encode(msg: &Msg) -> Bytes {
    let mut out = BytesMut::new();
    msg.encode(&mut out).expect("encodes");
    out.freeze()
}

fn same_value(got: &FieldValue<'_>, want: &Value) -> bool {
    match (got, want) {
        (FieldValue::Int(a), Value::Int(b)) => a == b,
        (FieldValue::OctStr(a), Value::Str(b)) => a.map(|x| &x[..]) == b.as_deref(),
        (FieldValue::Uuid(a), Value::Uuid(b)) => a.as_bytes() == b,
        _ => false,
    }
}

/// Every item the codec yields for `stream` fed in pieces of the given sizes.
fn decode_in_pieces(stream: &[u8], cuts: &[usize], max: usize) -> Vec<Result<Msg, BodyErrorKind>> {
    let mut codec = BoxCodec::with_max_frame_len(max);
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    let mut rest = stream;
    let mut cuts = cuts.iter().cycle();
    while !rest.is_empty() {
        let n = (*cuts.next().unwrap_or(&1)).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        buf.extend_from_slice(piece);
        while let Some(item) = codec.decode(&mut buf).expect("no framing error mid-stream") {
            items.push(item.map_err(|e| e.kind));
        }
    }
    if let Ok(Some(item)) = codec.decode_eof(&mut buf) {
        items.push(item.map_err(|e| e.kind));
    }
    items
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    /// decode(bytes) holds exactly the laid-out values, and encode gives the
    /// same bytes back; decode(encode(m)) == m.
    #[test]
    fn decode_then_encode_is_the_identity((code, values, extra) in raw_message()) {
        let body = lay_out(code, &values, &extra);
        let msg = Msg::decode(body.clone()).expect("a well-formed body decodes");
        prop_assert_eq!(msg.type_code(), code);
        let fields = msg.fields();
        prop_assert_eq!(fields.len(), values.len());
        for ((name, got), want) in fields.iter().zip(&values) {
            prop_assert!(same_value(got, want), "field {} is {:?}, wanted {:?}", name, got, want);
        }
        prop_assert_eq!(&msg.extra()[..], &extra[..]);

        let encoded = encode(&msg);
        prop_assert_eq!(msg.encoded_len(), encoded.len());
        prop_assert_eq!(&encoded[4..], &body[..]);
        prop_assert_eq!(&encoded[..4], &(body.len() as i32).to_be_bytes()[..]);
        prop_assert_eq!(Msg::decode(encoded.slice(4..)).expect("decodes again"), msg);
    }

    /// A body cut anywhere before its end is refused, never half-accepted.
    #[test]
    fn a_short_body_is_never_accepted((code, values, _) in raw_message(), cut in any::<prop::sample::Index>()) {
        let body = lay_out(code, &values, &[]);
        let cut = cut.index(body.len());
        let err = Msg::decode(body.slice(..cut)).expect_err("a strict prefix must not decode");
        prop_assert!(err.offset <= 4 + cut, "offset {} past the cut {}", err.offset, cut);
    }

    /// Arbitrary bytes never panic the decoder, and it never holds more
    /// than one frame's worth beyond what it was given.
    #[test]
    fn arbitrary_bytes_never_panic(stream in proptest::collection::vec(any::<u8>(), 0..2048),
                                   cuts in proptest::collection::vec(1..64usize, 1..8)) {
        let _ = decode_in_pieces(&stream, &cuts, 256);
        let _ = Msg::decode(Bytes::from(stream.clone()));
    }

    /// A stream of frames split at arbitrary points decodes to the same
    /// items as when it arrives whole.
    #[test]
    fn split_streams_decode_the_same(msgs in proptest::collection::vec(raw_message(), 1..8),
                                     garbage in proptest::collection::vec(any::<u8>(), 0..12),
                                     cuts in proptest::collection::vec(1..80usize, 1..10)) {
        let mut stream = Vec::new();
        for (code, values, extra) in &msgs {
            stream.extend(frame(&lay_out(*code, values, extra)));
        }
        // A bad frame in the middle must cost only itself.
        stream.extend(frame(&garbage));
        for (code, values, extra) in &msgs {
            stream.extend(frame(&lay_out(*code, values, extra)));
        }
        let whole = decode_in_pieces(&stream, &[stream.len()], 1 << 20);
        let split = decode_in_pieces(&stream, &cuts, 1 << 20);
        prop_assert_eq!(&whole, &split);
        prop_assert_eq!(whole.len(), 2 * msgs.len() + 1);
        let good = whole.iter().filter(|i| i.is_ok()).count();
        prop_assert!(good >= 2 * msgs.len());
    }
}
