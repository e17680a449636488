//! The fuzz target's oracle, shared by `fuzz/fuzz_targets/frame_decoder.rs`
//! and the regression test that replays what the fuzzer once found, so the
//! two can never drift apart.

use boxproto::{BoxCodec, Msg};
use bytes::BytesMut;
use tokio_util::codec::Decoder;

/// Small, so oversized-frame skipping is exercised as often as parsing.
pub const MAX_FRAME: usize = 512;

/// Feeds `data` to the frame decoder the way a socket delivers bytes: the
/// first byte chooses the read size, the rest is the stream. Panics if the
/// codec breaks its contract: every decoded message must re-encode to a frame
/// that decodes to the same message, and the buffer never grows beyond one
/// frame plus one read.
pub fn check(data: &[u8]) {
    let Some((&chunk, stream)) = data.split_first() else {
        return;
    };
    let chunk = usize::from(chunk).max(1);
    let mut codec = BoxCodec::with_max_frame_len(MAX_FRAME);
    let mut buf = BytesMut::new();
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Ok(Some(item)) = codec.decode(&mut buf) {
            if let Ok(msg) = item {
                check_round_trip(&msg);
            }
        }
        assert!(
            buf.len() <= 4 + MAX_FRAME + chunk,
            "buffered beyond the limit"
        );
    }
    let _ = codec.decode_eof(&mut buf);
}

fn check_round_trip(msg: &Msg) {
    let mut frame = BytesMut::new();
    msg.encode(&mut frame)
        .expect("a decoded message re-encodes");
    let body = frame.split_off(4).freeze();
    let again = Msg::decode(body).expect("a re-encoded message decodes");
    assert_eq!(&again, msg);
}
