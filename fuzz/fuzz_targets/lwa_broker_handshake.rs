//! LWA broker side: `BrokerResponder::respond` on an arbitrary or tampered
//! offer, then `BrokerAwaitingFinished::on_finished` on an arbitrary or
//! tampered finished. Oracle: the broker accepts only the honest run.
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mqtt_lwa::lwa::{BrokerResponder, ClientOffer, Psk};
use mqtt_lwa_fuzz::lwa::{ctx, flip, lookup, rng, IDENTITY, PSK};

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let broker_limit = u.int_in_range(1..=48)?;
    let session_present: bool = u.arbitrary()?;
    let Ok(responder) = BrokerResponder::new(broker_limit) else {
        return Ok(());
    };
    let mut rng = rng(u.arbitrary()?);
    if u.arbitrary()? {
        // Arbitrary bytes as offer and finished: never an authenticated client.
        let offer: Vec<u8> = u.arbitrary()?;
        let finished: Vec<u8> = u.arbitrary()?;
        if let Ok((awaiting, _)) =
            responder.respond(&offer, &ctx(), session_present, lookup, &mut rng)
        {
            assert!(
                awaiting.on_finished(&finished).is_err(),
                "forged finished accepted"
            );
        }
        return Ok(());
    }
    // An honest client, with the offer and the finished tampered by the input.
    let client_limit = u.int_in_range(1..=48)?;
    let offer = ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), client_limit, &mut rng)
        .expect("valid offer");
    let mut offer_bytes = offer.offer_bytes.clone();
    let offer_tampered = flip(u, &mut offer_bytes)?;
    let Ok((awaiting, response)) =
        responder.respond(&offer_bytes, &ctx(), session_present, lookup, &mut rng)
    else {
        assert!(offer_tampered, "honest offer refused");
        return Ok(());
    };
    let client = offer
        .awaiting_response
        .on_response(&response, session_present);
    let Ok((finished, _records)) = client else {
        assert!(offer_tampered, "honest response refused");
        return Ok(());
    };
    assert!(
        !offer_tampered,
        "client accepted a response to a tampered offer"
    );
    let mut finished_bytes = finished.finished_bytes.to_vec();
    let finished_tampered = flip(u, &mut finished_bytes)?;
    match awaiting.on_finished(&finished_bytes) {
        Ok(records) => {
            assert!(!finished_tampered, "tampered finished accepted");
            assert_eq!(records.identity, IDENTITY);
        }
        Err(e) => assert!(finished_tampered, "honest finished refused: {e}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
