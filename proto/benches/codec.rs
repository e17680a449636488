//! Decode and encode of a typical MO, the frame a box handles most.
//!
//! Run: `cargo bench -p boxproto --bench codec`. The target is decode plus
//! encode of one MO under 1 µs.

use std::hint::black_box;

use boxproto::{BoxCodec, Coding, Msg, Sms, SmsType, Uuid};
use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use tokio_util::codec::{Decoder, Encoder};

/// An MO as a bearerbox delivers it from an SMSC: addresses, text, smsc-id,
/// a UUID, the 7-bit coding and the SMSC module's meta-data.
fn typical_mo() -> Msg {
    Msg::from(Sms {
        sender: Some(Bytes::from_static(b"+256772123456")),
        receiver: Some(Bytes::from_static(b"8500")),
        msgdata: Some(Bytes::from_static(
            b"JOIN kampala central please register me",
        )),
        time: 1_764_000_000,
        smsc_id: Some(Bytes::from_static(b"mtn-ug")),
        id: Uuid::from_u128(0xe5f0c7a8_1b2c_4d3e_8f90_a1b2c3d4e5f6),
        sms_type: SmsType::Mo,
        coding: Coding::SevenBit,
        charset: Some(Bytes::from_static(b"UTF-8")),
        meta_data: Some(Bytes::from_static(b"?smpp?")),
        ..Default::default()
    })
}

fn bench(c: &mut Criterion) {
    let msg = typical_mo();
    let mut frame = BytesMut::new();
    msg.encode(&mut frame).expect("encodes");
    let frame = frame.freeze();

    let mut group = c.benchmark_group("mo");
    group.throughput(Throughput::Elements(1));

    group.bench_function("decode", |b| {
        let mut codec = BoxCodec::new();
        let mut buf = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.extend_from_slice(&frame);
            let item = codec.decode(&mut buf).expect("frames").expect("whole");
            black_box(item.expect("decodes"))
        })
    });

    group.bench_function("encode", |b| {
        let mut codec = BoxCodec::new();
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            codec.encode(black_box(&msg), &mut out).expect("encodes");
            out.clear();
        })
    });

    group.bench_function("decode+encode", |b| {
        let mut codec = BoxCodec::new();
        let mut buf = BytesMut::with_capacity(4096);
        let mut out = BytesMut::with_capacity(4096);
        b.iter(|| {
            buf.extend_from_slice(&frame);
            let msg = codec.decode(&mut buf).expect("frames").expect("whole");
            codec
                .encode(msg.expect("decodes"), &mut out)
                .expect("encodes");
            black_box(&out);
            out.clear();
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
