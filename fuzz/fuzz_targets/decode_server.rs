//! The MQTT decoder, server side (CONNECT first, version learnt from it).
#![no_main]

use libfuzzer_sys::fuzz_target;
#[allow(unused_imports)]
use mqtt_lwa::codec::{Decoder, ProtocolVersion};
use mqtt_lwa_fuzz::{check_decoder, MAX_PACKET};

fuzz_target!(|data: &[u8]| {
    check_decoder(|| Decoder::new(MAX_PACKET), data);
});
