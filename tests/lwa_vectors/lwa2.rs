//! LWA2 handshake vectors (LWA2.md section 13): the LWA1 catalogue's inputs
//! and records, run through LWA2's typestates and BLAKE3 key schedule.
//! Each vector's broker is run twice from the same randomness: once
//! confirmed by the finished, once by the first sealed record (where the
//! first planned record is client to broker); both must give the same keys.

use std::collections::BTreeMap;

use lwa_core::crypto::Blake3;
use lwa_core::lwa2::schedule::{transcript_hash, KeySchedule, TRANSCRIPT_CONTEXT};
use lwa_core::lwa2::{BrokerResponder, ClientOffer, RESPONSE_WITHOUT_MAC_LEN};
use lwa_core::{Direction, Psk};
use x25519_dalek::{PublicKey, StaticSecret};

use super::compute::*;
use super::model::*;

fn responder_run<B: Blake3>(
    inputs: &HandshakeInputs,
    offer: &[u8],
) -> (lwa_core::lwa2::BrokerAwaitingConfirmation<B>, Vec<u8>) {
    let owned = inputs.owned_context();
    let b_secret = unh32(&inputs.broker_ephemeral_secret);
    let mut brng = FixedRng::new(&[&b_secret]);
    let table = BTreeMap::from([(inputs.identity.clone(), inputs.psk.clone())]);
    let out = BrokerResponder::<B>::new(inputs.broker_record_limit_log2)
        .unwrap()
        .respond(
            offer,
            &owned.context(),
            inputs.session_present,
            |id: &str| table.get(id).map(|k| Psk::new(unh32(k))),
            &mut brng,
        )
        .unwrap();
    assert_eq!(brng.remaining(), 0, "broker draws exactly e_b");
    out
}

/// Runs an honest LWA2 handshake from `inputs` and seals `plan` in order.
pub fn handshake_vector<B: Blake3>(
    name: &str,
    description: &str,
    inputs: HandshakeInputs,
    plan: &[PlannedRecord],
) -> HandshakeVector {
    let owned = inputs.owned_context();
    let ctx = owned.context();
    let c_secret = unh32(&inputs.client_ephemeral_secret);
    let b_secret = unh32(&inputs.broker_ephemeral_secret);
    let psk = inputs.psk();

    let mut crng = FixedRng::new(&[&c_secret]);
    let offer = ClientOffer::<B>::new_with_metadata(
        &inputs.identity,
        &psk,
        &ctx,
        inputs.client_record_limit_log2,
        inputs.protect_metadata,
        &mut crng,
    )
    .unwrap();
    assert_eq!(crng.remaining(), 0, "client draws exactly e_c");
    let offer_bytes = offer.offer_bytes.clone();
    let (awaiting, response) = responder_run::<B>(&inputs, &offer_bytes);
    let (awaiting_first, response_again) = responder_run::<B>(&inputs, &offer_bytes);
    let mut awaiting_first = Some(awaiting_first);
    assert_eq!(response, response_again);
    let (finished, mut client) = offer
        .awaiting_response
        .on_response(&response, inputs.session_present)
        .unwrap();
    let mut broker = awaiting.on_finished(&finished.finished_bytes).unwrap();
    assert_eq!(broker.identity, inputs.identity);

    let c_pub = PublicKey::from(&StaticSecret::from(c_secret));
    let b_pub = PublicKey::from(&StaticSecret::from(b_secret));
    let dh = StaticSecret::from(c_secret).diffie_hellman(&b_pub);
    let ctx_bytes = ctx.encode().unwrap();
    let rwm = &response[..RESPONSE_WITHOUT_MAC_LEN];
    let transcript_input = [
        &ctx_bytes[..],
        &offer_bytes,
        rwm,
        &[u8::from(inputs.session_present)],
    ]
    .concat();
    let th = transcript_hash::<B>(&ctx_bytes, &offer_bytes, rwm, inputs.session_present);
    assert_eq!(
        blake3::derive_key(TRANSCRIPT_CONTEXT, &transcript_input),
        th
    );
    let ks = KeySchedule::<B>::derive(&psk, dh.as_bytes(), &th);
    let broker_mac = ks.broker_mac();
    assert_eq!(&response[RESPONSE_WITHOUT_MAC_LEN..], &broker_mac);
    let client_mac = ks.client_mac(&broker_mac);
    assert_eq!(finished.finished_bytes, client_mac);
    let chosen = client.record_limit_log2;

    let mut records = Vec::new();
    for (i, p) in plan.iter().enumerate() {
        let (sealer, opener, key, iv) = match p.direction {
            Direction::ClientToBroker => (
                &mut client.sealer,
                &mut broker.opener,
                ks.c2b_key(),
                ks.c2b_iv(),
            ),
            Direction::BrokerToClient => (
                &mut broker.sealer,
                &mut client.opener,
                ks.b2c_key(),
                ks.b2c_iv(),
            ),
        };
        let counter = sealer.counter().used();
        let sealed = sealer
            .seal(&p.topic, p.qos, p.retain, &p.plaintext)
            .unwrap();
        let opened = opener.open(&p.topic, p.qos, p.retain, &sealed).unwrap();
        assert_eq!(opened, p.plaintext);
        if let (0, Direction::ClientToBroker, Some(awaiting_first)) =
            (i, p.direction, awaiting_first.take())
        {
            // The same record as the PUBLISH-path confirmation.
            let mut buf = sealed.clone();
            let (by_record, len) = lwa_core::lwa2::BrokerAwaitingConfirmation::on_first_record(
                awaiting_first,
                &p.topic,
                p.qos,
                p.retain,
                &mut buf,
            )
            .unwrap();
            assert_eq!(&buf[..len], &p.plaintext[..]);
            assert_eq!(by_record.identity, inputs.identity);
            assert_eq!(by_record.opener.counter().used(), 1);
            assert_b2c_unused(&by_record, chosen);
        }
        records.push(record_json(
            p.direction,
            key,
            iv,
            chosen,
            counter,
            p,
            &sealed,
        ));
    }

    HandshakeVector {
        name: name.to_owned(),
        description: description.to_owned(),
        intermediate: Intermediate {
            client_ephemeral_public: h(c_pub.as_bytes()),
            broker_ephemeral_public: h(b_pub.as_bytes()),
            connect_context: h(&ctx_bytes),
            chosen_record_limit_log2: chosen,
            response_without_mac: h(rwm),
            transcript_input: h(&transcript_input),
            th: h(&th),
            dh: h(dh.as_bytes()),
            prk: h(ks.prk()),
            c2b_key: h(ks.c2b_key()),
            c2b_iv: h(ks.c2b_iv()),
            b2c_key: h(ks.b2c_key()),
            b2c_iv: h(ks.b2c_iv()),
            broker_mac_key: h(ks.broker_mac_key()),
            client_mac_key: h(ks.client_mac_key()),
            broker_mac: h(&broker_mac),
            client_mac: h(&client_mac),
        },
        messages: Messages {
            offer: h(&offer_bytes),
            response: h(&response),
            finished: h(&finished.finished_bytes),
        },
        inputs,
        records,
    }
}

fn assert_b2c_unused<B: Blake3>(records: &lwa_core::handshake::BrokerRecords<B>, chosen: u8) {
    assert_eq!(records.record_limit_log2, chosen);
    assert_eq!(records.sealer.counter().used(), 0);
}

/// The LWA2 file: the LWA1 catalogue's inputs and record plans under LWA2.
pub fn handshakes() -> HandshakeFile {
    let v1 = super::generate::handshakes();
    let vectors = v1
        .vectors
        .iter()
        .map(|v| {
            let plan: Vec<PlannedRecord> = v
                .records
                .iter()
                .map(|r| PlannedRecord {
                    direction: direction(&r.direction),
                    topic: r.topic.clone(),
                    qos: r.qos,
                    retain: r.retain,
                    plaintext: unh(&r.plaintext),
                })
                .collect();
            handshake_vector::<Gen>(&v.name, &v.description, v.inputs.clone(), &plan)
        })
        .collect();
    HandshakeFile {
        lwa_version: 2,
        description: "LWA2 handshakes (protocol-spec/LWA2.md section 13): the inputs and record \
                      plans of handshake.json under LWA2; all byte strings lower-case hex"
            .into(),
        vectors,
    }
}
