//! The recorded mosquitto 2.0 traffic under `fuzz/seeds/decode_*` (client to
//! broker and broker to client, 3.1.1 and 5.0) decodes completely, without an
//! error and without left-over bytes, and re-encodes to packets that decode
//! the same. Keeps the fuzz seeds honest and tests the codec on real bytes.

use std::path::Path;

use bytes::BytesMut;
use mqtt_lwa::codec::{encode, Decoder, Packet, ProtocolVersion};

fn check_dir(dir: &str, make: impl Fn() -> Decoder) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("fuzz/seeds")
        .join(dir);
    let mut files = 0;
    for entry in std::fs::read_dir(&dir).expect("seed directory") {
        let path = entry.expect("entry").path();
        let data = std::fs::read(&path).expect("seed");
        // The first byte is the fuzz target's read size, not traffic.
        let mut buf = BytesMut::from(&data[1..]);
        let mut dec = make();
        let mut packets = Vec::new();
        while let Some(p) = dec
            .decode(&mut buf)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        {
            packets.push(p);
        }
        assert!(buf.is_empty(), "{}: bytes left", path.display());
        assert!(!packets.is_empty(), "{}", path.display());
        let version = dec.version().expect("version known");
        for p in packets {
            let v = match &p {
                Packet::Connect(c) => c.protocol_version,
                _ => version,
            };
            let mut out = BytesMut::new();
            encode(&p, v, &mut out).expect("re-encode");
            let again = Decoder::with_version(1 << 20, v).decode(&mut out);
            assert_eq!(again, Ok(Some(p)), "{}", path.display());
        }
        files += 1;
    }
    files
}

#[test]
fn recorded_client_traffic_decodes() {
    assert!(check_dir("decode_server", || Decoder::new(1 << 20)) >= 10);
}

#[test]
fn recorded_broker_traffic_decodes() {
    let v5 = check_dir("decode_client_v5", || {
        Decoder::with_version(1 << 20, ProtocolVersion::V5)
    });
    let v311 = check_dir("decode_client_v311", || {
        Decoder::with_version(1 << 20, ProtocolVersion::V311)
    });
    assert!(v5 >= 3 && v311 >= 2);
}
