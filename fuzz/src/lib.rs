//! Oracles shared by the fuzz targets.
//!
//! Beyond "does not panic", each decoder run checks two properties that a
//! fuzzer can falsify: everything the decoder accepts re-encodes to bytes that
//! decode to the same packet, and feeding the same bytes in pieces gives the
//! same packets and the same verdict as feeding them at once.

use bytes::BytesMut;
use mqtt_lwa::codec::{encode, encoded_len, CodecError, Decoder, Packet, ProtocolVersion};

/// Largest packet the fuzzed decoders accept (small, so size limits are hit too).
pub const MAX_PACKET: usize = 4096;

/// Decodes `bytes` to completion: the packets, and the error that stopped it (if any).
pub fn decode_all(
    mut dec: Decoder,
    bytes: &[u8],
    chunk: usize,
) -> (Vec<Packet>, Option<CodecError>, Option<ProtocolVersion>) {
    let mut buf = BytesMut::new();
    let mut packets = Vec::new();
    for piece in bytes.chunks(chunk.max(1)) {
        buf.extend_from_slice(piece);
        loop {
            let before = buf.len();
            match dec.decode(&mut buf) {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => {
                    assert_eq!(buf.len(), before, "Ok(None) consumed bytes");
                    break;
                }
                Err(e) => return (packets, Some(e), dec.version()),
            }
        }
    }
    (packets, None, dec.version())
}

/// Runs a decoder over `data` (first byte = read size for the split run) and checks the oracles.
pub fn check_decoder(make: impl Fn() -> Decoder, data: &[u8]) {
    let Some((&chunk, bytes)) = data.split_first() else {
        return;
    };
    let (whole, whole_err, version) = decode_all(make(), bytes, bytes.len());
    let (split, split_err, _) = decode_all(make(), bytes, usize::from(chunk % 64) + 1);
    // Header checks run on every prefix, body checks on the whole packet, so
    // read boundaries must change neither the packets nor the verdict.
    assert_eq!(whole_err, split_err);
    assert_eq!(whole, split);
    for p in &whole {
        let v = match p {
            Packet::Connect(c) => c.protocol_version,
            _ => version.unwrap_or(ProtocolVersion::V5),
        };
        let mut out = BytesMut::new();
        encode(p, v, &mut out).unwrap_or_else(|e| panic!("decoded {p:?} but cannot encode: {e}"));
        assert_eq!(out.len(), encoded_len(p, v));
        let mut again = Decoder::with_version(usize::MAX, v);
        assert_eq!(
            again.decode(&mut out).as_ref(),
            Ok(&Some(p.clone())),
            "re-decode differs"
        );
        assert!(out.is_empty());
    }
}

/// Fixtures for the LWA targets.
pub mod lwa {
    use libfuzzer_sys::arbitrary::{Result, Unstructured};
    use mqtt_lwa::lwa::{ConnectContext, Psk};
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    /// The identity the honest client uses.
    pub const IDENTITY: &str = "sensor-01";
    /// Its pre-shared key.
    pub const PSK: [u8; 32] = [0x42; 32];

    /// The broker's PSK store: one known identity.
    pub fn lookup(identity: &str) -> Option<Psk> {
        (identity == IDENTITY).then(|| Psk::new(PSK))
    }

    /// The CONNECT both sides bind the handshake to.
    pub fn ctx() -> ConnectContext<'static> {
        ConnectContext::new("client-1", true)
    }

    /// Deterministic randomness, so a crash reproduces from its input alone.
    pub fn rng(seed: u64) -> StdRng {
        StdRng::seed_from_u64(seed)
    }

    /// XORs input-chosen masks into up to three input-chosen bytes of `bytes`;
    /// true when `bytes` changed.
    pub fn flip(u: &mut Unstructured<'_>, bytes: &mut Vec<u8>) -> Result<bool> {
        let original = bytes.clone();
        let edits = u.int_in_range(0..=3)?;
        for _ in 0..edits {
            if bytes.is_empty() {
                break;
            }
            let at = u.choose_index(bytes.len())?;
            let mask: u8 = u.arbitrary()?;
            if let Some(b) = bytes.get_mut(at) {
                *b ^= mask;
            }
        }
        if u.arbitrary()? {
            // Truncation or extension, the other classic tampering.
            let new_len = u.int_in_range(0..=bytes.len() + 2)?;
            bytes.resize(new_len, 0);
        }
        Ok(*bytes != original)
    }
}
