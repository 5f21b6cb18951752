//! LWA2 key update vectors (LWA2.md section 8.2, `lwa2-key-update.json`):
//! two updates on the connection of each of the first two LWA2 handshake
//! vectors, run through the client's and the broker's [`KeyUpdate`] state
//! machines with real records before and after, and every derived value
//! recomputed from the spec's formulas ([`Generation::derive`]).

use lwa_core::crypto::Blake3;
use lwa_core::lwa2::schedule::KeySchedule;
use lwa_core::lwa2::update::Generation;
use lwa_core::lwa2::KeyUpdate;
use lwa_core::record::{RecordOpener, RecordSealer};
use lwa_core::Direction;
use serde::{Deserialize, Serialize};

use super::compute::*;
use super::model::*;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateFile {
    pub lwa_version: u8,
    pub description: String,
    pub vectors: Vec<UpdateVector>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateVector {
    /// The lwa2-handshake.json vector whose connection is updated.
    pub handshake: String,
    pub description: String,
    /// `prk` of that handshake, and `u_0 = BLAKE3-keyed(prk, "update")`.
    pub prk: String,
    pub update_secret: String,
    pub record_limit_log2: u8,
    pub updates: Vec<UpdateJson>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct UpdateJson {
    pub generation: u32,
    /// `u_{g-1}`.
    pub previous_secret: String,
    /// Records of generation g - 1 before the update, per direction (`c`, `b`).
    pub c2b_records: u64,
    pub b2c_records: u64,
    pub secret: String,
    pub mac_key: String,
    pub c2b_key: String,
    pub c2b_iv: String,
    pub b2c_key: String,
    pub b2c_iv: String,
    /// AUTH 0x19 and AUTH 0x00 Authentication Data.
    pub request: String,
    pub response: String,
    /// Record 0 of each direction under generation g.
    pub records: Vec<RecordJson>,
}

const TOPIC: &str = "sensors/sensor-01/temp";

/// Seals `plan` with `sealer` and opens it with `opener` (the peer's); returns the sealed bytes.
fn carry<B: Blake3>(
    sealer: &mut RecordSealer<B>,
    opener: &mut RecordOpener<B>,
    plan: &PlannedRecord,
) -> Vec<u8> {
    let sealed = sealer
        .seal(&plan.topic, plan.qos, plan.retain, &plan.plaintext)
        .unwrap();
    let opened = opener
        .open(&plan.topic, plan.qos, plan.retain, &sealed)
        .unwrap();
    assert_eq!(opened, plan.plaintext);
    sealed
}

fn plan(direction: Direction, text: String) -> PlannedRecord {
    PlannedRecord {
        direction,
        topic: TOPIC.into(),
        qos: 1,
        retain: false,
        plaintext: text.into_bytes(),
    }
}

/// Two updates on the connection of handshake vector `v` (records before: `extra`).
pub fn update_vector<B: Blake3>(v: &HandshakeVector) -> UpdateVector {
    let ks = KeySchedule::<B>::derive(
        &v.inputs.psk(),
        &unh32(&v.intermediate.dh),
        &unh32(&v.intermediate.th),
    );
    assert_eq!(h(ks.prk()), v.intermediate.prk, "{}: prk", v.name);
    let limit = v.intermediate.chosen_record_limit_log2;
    let (c2b, b2c) = (Direction::ClientToBroker, Direction::BrokerToClient);
    let mut cs = RecordSealer::<B>::new(c2b, ks.c2b_key(), ks.c2b_iv(), limit).unwrap();
    let mut bo = RecordOpener::<B>::new(c2b, ks.c2b_key(), ks.c2b_iv(), limit).unwrap();
    let mut bs = RecordSealer::<B>::new(b2c, ks.b2c_key(), ks.b2c_iv(), limit).unwrap();
    let mut co = RecordOpener::<B>::new(b2c, ks.b2c_key(), ks.b2c_iv(), limit).unwrap();
    let mut client = KeyUpdate::<B>::new(ks.update_secret());
    let mut broker = KeyUpdate::<B>::new(ks.update_secret());
    let mut previous = *ks.update_secret();
    let mut updates = Vec::new();
    // Records of the old generation before each update, beyond the vector's own.
    for (g, (extra_c2b, extra_b2c)) in [(1u32, (3, 1)), (2, (0, 2))] {
        for i in 0..extra_c2b {
            carry(&mut cs, &mut bo, &plan(c2b, format!("up {i}")));
        }
        for i in 0..extra_b2c {
            carry(&mut bs, &mut co, &plan(b2c, format!("down {i}")));
        }
        let (c, b) = (cs.counter().used(), bs.counter().used());
        let request = client.start(&mut cs).unwrap();
        let response = broker.answer(&request, &mut bo, &mut bs).unwrap();
        client.on_response(&response, &mut co).unwrap();
        let gen = Generation::<B>::derive(&previous, g);
        assert_eq!(gen.request(c), request, "{}: request {g}", v.name);
        assert_eq!(
            gen.response(b, &request),
            response,
            "{}: response {g}",
            v.name
        );
        let up = plan(c2b, format!("21.5 C, generation {g}"));
        let down = plan(b2c, format!("set 22 C, generation {g}"));
        let sealed_up = carry(&mut cs, &mut bo, &up);
        let sealed_down = carry(&mut bs, &mut co, &down);
        updates.push(UpdateJson {
            generation: g,
            previous_secret: h(&previous),
            c2b_records: c,
            b2c_records: b,
            secret: h(gen.secret()),
            mac_key: h(gen.mac_key()),
            c2b_key: h(gen.c2b_key()),
            c2b_iv: h(gen.c2b_iv()),
            b2c_key: h(gen.b2c_key()),
            b2c_iv: h(gen.b2c_iv()),
            request: h(&request),
            response: h(&response),
            records: vec![
                record_json(c2b, gen.c2b_key(), gen.c2b_iv(), limit, 0, &up, &sealed_up),
                record_json(
                    b2c,
                    gen.b2c_key(),
                    gen.b2c_iv(),
                    limit,
                    0,
                    &down,
                    &sealed_down,
                ),
            ],
        });
        previous = *gen.secret();
    }
    UpdateVector {
        handshake: v.name.clone(),
        description: format!(
            "two key updates on the connection of lwa2-handshake.json's {:?}: generation 1 after 3 c2b \
             and 1 b2c records, generation 2 after 1 and 3; one record each way under each new generation",
            v.name
        ),
        prk: v.intermediate.prk.clone(),
        update_secret: h(ks.update_secret()),
        record_limit_log2: limit,
        updates,
    }
}

/// The file, from the first two handshake vectors.
pub fn updates<B: Blake3>(handshakes: &HandshakeFile) -> UpdateFile {
    UpdateFile {
        lwa_version: 2,
        description: "LWA2 key updates (protocol-spec/LWA2.md section 8.2): per update the previous \
                      generation secret, the record counts c and b, the new generation's secret, MAC \
                      key, keys and IVs, the request (AUTH 0x19 data) and response (AUTH 0x00 data), \
                      and record 0 of each direction under the new keys; all byte strings lower-case hex"
            .into(),
        vectors: handshakes.vectors.iter().take(2).map(update_vector::<B>).collect(),
    }
}
