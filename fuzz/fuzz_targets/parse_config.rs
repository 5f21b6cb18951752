//! The broker's TOML configuration, through the same `BrokerConfig::from_toml`
//! (parse, port defaults, validation with line numbers) that `mqtt-lwa broker -c` uses.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mqtt_lwa::config::BrokerConfig;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = BrokerConfig::from_toml(text, Path::new("fuzz.toml"));
    }
});
