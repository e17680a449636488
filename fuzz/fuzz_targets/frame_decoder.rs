//! Feeds arbitrary bytes to the frame decoder, in pieces, the way a socket
//! delivers them. Beyond "never panics", it checks the codec's contract:
//! every message decoded re-encodes to a frame that decodes to the same
//! message, and the decoder never buffers more than the frame limit asks.
#![no_main]

use boxproto::{BoxCodec, Msg};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

/// Small, so oversized-frame skipping is exercised as often as parsing.
const MAX_FRAME: usize = 512;

fuzz_target!(|data: &[u8]| {
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
        assert!(buf.len() <= 4 + MAX_FRAME + chunk, "buffered beyond the limit");
    }
    let _ = codec.decode_eof(&mut buf);
});

fn check_round_trip(msg: &Msg) {
    let mut frame = BytesMut::new();
    msg.encode(&mut frame).expect("a decoded message re-encodes");
    let body = frame.split_off(4).freeze();
    let again = Msg::decode(body).expect("a re-encoded message decodes");
    assert_eq!(&again, msg);
}
