//! Property tests for the codec: encode/decode round trips for both protocol
//! versions, streaming with arbitrary read boundaries, `encoded_len`, and
//! "never panics" on arbitrary or corrupted input.

mod codec_strategies;

use bytes::BytesMut;
use codec_strategies::{packet, version};
use mqtt_lwa::codec::*;
use proptest::collection::vec;
use proptest::prelude::*;

const MAX: usize = 1 << 20;

fn encode_all(packets: &[Packet], v: ProtocolVersion) -> BytesMut {
    let mut out = BytesMut::new();
    for p in packets {
        encode(p, v, &mut out).expect("valid packets encode");
    }
    out
}

/// Decodes until the decoder asks for more bytes (or fails).
fn drain(dec: &mut Decoder, buf: &mut BytesMut) -> Result<Vec<Packet>, CodecError> {
    let mut out = Vec::new();
    while let Some(p) = dec.decode(buf)? {
        out.push(p);
    }
    Ok(out)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// decode(encode(p)) == p, `encoded_len` is exact and nothing is left over.
    #[test]
    fn round_trip((v, p) in version().prop_flat_map(|v| (Just(v), packet(v)))) {
        let mut buf = BytesMut::new();
        encode(&p, v, &mut buf).unwrap();
        prop_assert_eq!(buf.len(), encoded_len(&p, v));
        let mut dec = Decoder::with_version(MAX, v);
        let decoded = dec.decode(&mut buf).unwrap();
        prop_assert_eq!(decoded, Some(p));
        prop_assert!(buf.is_empty());
    }

    /// A stream of packets cut at arbitrary points decodes to the same packets,
    /// one per call, and nothing is consumed from an incomplete packet.
    #[test]
    fn split_stream(
        (v, packets) in version().prop_flat_map(|v| (Just(v), vec(packet(v), 1..6))),
        cuts in vec(any::<prop::sample::Index>(), 0..8),
    ) {
        let stream = encode_all(&packets, v).freeze();
        let mut points: Vec<usize> = cuts.iter().map(|i| i.index(stream.len() + 1)).collect();
        points.push(stream.len());
        points.sort_unstable();
        let mut dec = Decoder::with_version(MAX, v);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut from = 0;
        for to in points {
            buf.extend_from_slice(&stream[from..to]);
            from = to;
            let before = buf.len();
            let out = drain(&mut dec, &mut buf).unwrap();
            if out.is_empty() {
                prop_assert_eq!(buf.len(), before, "Ok(None) must not consume");
            }
            got.extend(out);
        }
        prop_assert_eq!(got, packets);
        prop_assert!(buf.is_empty());
    }

    /// A server-side decoder learns the version from CONNECT, then decodes the
    /// rest of the stream in that version, byte by byte.
    #[test]
    fn server_side_learns_version(
        (v, connect, rest) in version().prop_flat_map(|v| (
            Just(v),
            codec_strategies::connect(v),
            vec(packet(v), 0..4),
        )),
    ) {
        let mut packets = vec![Packet::Connect(connect)];
        packets.extend(rest);
        let stream = encode_all(&packets, v);
        let mut dec = Decoder::new(MAX);
        prop_assert_eq!(dec.version(), None);
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in stream.iter() {
            buf.extend_from_slice(&[*b]);
            got.extend(drain(&mut dec, &mut buf).unwrap());
        }
        prop_assert_eq!(dec.version(), Some(v));
        prop_assert_eq!(got, packets);
    }

    /// Arbitrary bytes never panic any decoder; it either wants more, yields
    /// packets, or fails with a typed error.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in vec(any::<u8>(), 0..512)) {
        for mut dec in [
            Decoder::new(MAX),
            Decoder::with_version(MAX, ProtocolVersion::V311),
            Decoder::with_version(MAX, ProtocolVersion::V5),
            Decoder::with_version(16, ProtocolVersion::V5),
        ] {
            let mut buf = BytesMut::from(&bytes[..]);
            let _ = drain(&mut dec, &mut buf);
        }
    }

    /// Valid packets with one byte changed, or cut short, never panic and
    /// whatever still decodes re-encodes (the decoder only yields packets the
    /// encoder can write).
    #[test]
    fn corrupted_packets_never_panic(
        (v, p) in version().prop_flat_map(|v| (Just(v), packet(v))),
        at in any::<prop::sample::Index>(),
        byte in any::<u8>(),
        cut in any::<prop::sample::Index>(),
    ) {
        let good = encode_all(std::slice::from_ref(&p), v);
        let mut bad = good.clone();
        let i = at.index(bad.len());
        bad[i] = byte;
        let mut dec = Decoder::with_version(MAX, v);
        if let Ok(packets) = drain(&mut dec, &mut bad) {
            for q in packets {
                let mut out = BytesMut::new();
                prop_assert!(encode(&q, v, &mut out).is_ok(), "{q:?}");
            }
        }
        let mut short = BytesMut::from(&good[..cut.index(good.len())]);
        let mut dec = Decoder::with_version(MAX, v);
        prop_assert_eq!(dec.decode(&mut short), Ok(None));
    }
}
