//! LWA records: `RecordOpener::open` on arbitrary bytes and on sealed records
//! with tampered bytes or metadata. Oracle: only an untouched record with the
//! same topic, QoS, RETAIN and direction opens, to the sealed payload; a
//! failed open poisons the opener. Then LWA2's key update (LWA2.md 8.2) with
//! a tampered request or response: refused and nothing changed, and the
//! honest one moves both directions to keys the old records do not open.
//! And LWA2's metadata-protection plaintext (LWA2.md 7.1) on arbitrary
//! bytes: whatever parses re-encodes to exactly the same bytes (one encoding
//! per message: shortest lengths, nothing left over).
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mqtt_lwa::lwa::lwa2::metadata::Inner;
use mqtt_lwa::lwa::lwa2::KeyUpdate;
use mqtt_lwa::lwa::{Direction, RecordOpener, RecordSealer};
use mqtt_lwa_fuzz::lwa::flip;

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 12] = [9; 12];

/// A QoS byte (0, 1 or 2), as a record's AAD binds it.
fn qos(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0..=2)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    if u.ratio(1, 8)? {
        let bytes: Vec<u8> = u.arbitrary()?;
        if let Ok(inner) = Inner::parse(&bytes) {
            assert_eq!(inner.to_bytes().expect("a parsed inner encodes"), bytes);
        }
        return Ok(());
    }
    let limit = u.int_in_range(1..=48)?;
    let dir = Direction::ClientToBroker;
    let mut opener = RecordOpener::new(dir, &KEY, &IV, limit).expect("valid opener");
    let topic: String = u.arbitrary()?;
    let (q, retain) = (qos(u)?, u.arbitrary::<bool>()?);
    if u.arbitrary()? {
        let sealed: Vec<u8> = u.arbitrary()?;
        assert!(
            opener.open(&topic, q, retain, &sealed).is_err(),
            "forged record opened"
        );
        assert!(opener.is_poisoned());
        return Ok(());
    }
    let mut sealer = RecordSealer::new(dir, &KEY, &IV, limit).expect("valid sealer");
    let records = u.int_in_range(1..=3)?;
    for _ in 0..records {
        let payload: Vec<u8> = u.arbitrary()?;
        let Ok(mut sealed) = sealer.seal(&topic, q, retain, &payload) else {
            // Only the record limit may stop the sealer (2^1 records at limit 1).
            assert_eq!(limit, 1);
            return Ok(());
        };
        let tampered = flip(u, &mut sealed)?;
        let other_topic: bool = u.arbitrary()?;
        let open_topic = if other_topic {
            format!("{topic}x")
        } else {
            topic.clone()
        };
        let open_qos = qos(u)?;
        let open_retain: bool = u.arbitrary()?;
        let honest = !tampered && !other_topic && open_qos == q && open_retain == retain;
        match opener.open(&open_topic, open_qos, open_retain, &sealed) {
            Ok(opened) => {
                assert!(honest, "tampered record opened");
                assert_eq!(opened, payload);
            }
            Err(_) => {
                assert!(!honest, "honest record refused");
                assert!(opener.is_poisoned());
                assert!(opener.open(&topic, q, retain, &sealed).is_err());
                return Ok(());
            }
        }
    }
    Ok(())
}

/// Seals `payload` with `sealer` and opens it with `opener`; false once the limit stops the sealer.
fn carry(sealer: &mut RecordSealer, opener: &mut RecordOpener, payload: &[u8]) -> bool {
    let Ok(sealed) = sealer.seal("t", 1, false, payload) else {
        return false;
    };
    let opened = opener.open("t", 1, false, &sealed).expect("honest record opens");
    assert_eq!(opened, payload);
    true
}

fn key_update(u: &mut Unstructured<'_>) -> Result<()> {
    let limit = u.int_in_range(1..=48)?;
    let secret: [u8; 32] = u.arbitrary()?;
    let (c2b, b2c) = (Direction::ClientToBroker, Direction::BrokerToClient);
    let mut cs = RecordSealer::new(c2b, &KEY, &IV, limit).expect("valid sealer");
    let mut bo = RecordOpener::new(c2b, &KEY, &IV, limit).expect("valid opener");
    let mut bs = RecordSealer::new(b2c, &KEY, &IV, limit).expect("valid sealer");
    let mut co = RecordOpener::new(b2c, &KEY, &IV, limit).expect("valid opener");
    let (mut client, mut broker) = (KeyUpdate::new(&secret), KeyUpdate::new(&secret));
    for _ in 0..u.int_in_range(0..=2)? {
        carry(&mut cs, &mut bo, b"up");
        carry(&mut bs, &mut co, b"down");
    }
    let old_sealer = RecordSealer::new(c2b, &KEY, &IV, limit).expect("valid sealer");
    let request = client.start(&mut cs).expect("a first request");
    let mut forged = request.to_vec();
    if flip(u, &mut forged)? {
        assert!(broker.answer(&forged, &mut bo, &mut bs).is_err(), "forged request accepted");
        assert_eq!(broker.generation(), 0);
    }
    let response = broker.answer(&request, &mut bo, &mut bs).expect("honest request");
    let mut forged = response.to_vec();
    if flip(u, &mut forged)? {
        assert!(client.on_response(&forged, &mut co).is_err(), "forged response accepted");
        assert!(client.in_flight());
    }
    client.on_response(&response, &mut co).expect("honest response");
    assert_eq!((client.generation(), broker.generation()), (1, 1));
    assert!(carry(&mut cs, &mut bo, b"new up"));
    assert!(carry(&mut bs, &mut co, b"new down"));
    // A record under the old keys does not open under the new ones.
    let mut old = old_sealer;
    if let Ok(sealed) = old.seal("t", 1, false, b"old") {
        assert!(bo.open("t", 1, false, &sealed).is_err(), "old-key record opened");
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let mut u = Unstructured::new(data);
    let _ = run(&mut u);
    let _ = key_update(&mut u);
});
