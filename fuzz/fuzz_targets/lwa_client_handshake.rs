//! LWA client side: `ClientAwaitingResponse::on_response` on an arbitrary or
//! tampered CONNACK response. Oracle: the client accepts only the honest
//! broker's untouched response (with the same Session Present flag).
#![no_main]

use libfuzzer_sys::arbitrary::{Result, Unstructured};
use libfuzzer_sys::fuzz_target;
use mqtt_lwa::lwa::{BrokerResponder, ClientOffer, Psk};
use mqtt_lwa_fuzz::lwa::{ctx, flip, lookup, rng, IDENTITY, PSK};

fn run(u: &mut Unstructured<'_>) -> Result<()> {
    let client_limit = u.int_in_range(1..=48)?;
    let session_present: bool = u.arbitrary()?;
    let mut rng = rng(u.arbitrary()?);
    let offer = ClientOffer::new(IDENTITY, &Psk::new(PSK), &ctx(), client_limit, &mut rng)
        .expect("valid offer");
    if u.arbitrary()? {
        let response: Vec<u8> = u.arbitrary()?;
        let result = offer
            .awaiting_response
            .on_response(&response, session_present);
        assert!(result.is_err(), "forged response accepted");
        return Ok(());
    }
    let broker_limit = u.int_in_range(1..=48)?;
    let responder = BrokerResponder::new(broker_limit).expect("valid limit");
    let (_awaiting, mut response) = responder
        .respond(
            &offer.offer_bytes,
            &ctx(),
            session_present,
            lookup,
            &mut rng,
        )
        .expect("honest offer");
    let tampered = flip(u, &mut response)?;
    let client_view: bool = u.arbitrary()?;
    let flag_changed = client_view != session_present;
    match offer.awaiting_response.on_response(&response, client_view) {
        Ok((_, records)) => {
            assert!(!tampered && !flag_changed, "tampered response accepted");
            assert_eq!(records.record_limit_log2, client_limit.min(broker_limit));
        }
        Err(e) => assert!(tampered || flag_changed, "honest response refused: {e}"),
    }
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
