//! LWA records: `RecordOpener::open` on arbitrary bytes and on sealed records
//! with tampered bytes or metadata. Oracle: only an untouched record with the
//! same topic, QoS, RETAIN and direction opens, to the sealed payload; a
//! failed open poisons the opener.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mqtt_lwa::lwa::{Direction, RecordOpener, RecordSealer};
use mqtt_lwa_fuzz::lwa::flip;

const KEY: [u8; 32] = [7; 32];
const IV: [u8; 12] = [9; 12];

/// A QoS byte (0, 1 or 2), as a record's AAD binds it.
fn qos(u: &mut Unstructured<'_>) -> Result<u8> {
    u.int_in_range(0..=2)
}

fn run(u: &mut Unstructured<'_>) -> Result<()> {
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

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
