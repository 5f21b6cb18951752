//! Mosquitto-compatible password file parser. Oracle: an accepted file
//! written back with `to_text` parses to the same users and hashes.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mqtt_lwa::auth::password::PasswordFile;

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.passwd");
    if let Ok(file) = PasswordFile::parse(data, path) {
        let text = file.to_text();
        let again = PasswordFile::parse(text.as_bytes(), path).expect("to_text output parses");
        let a: Vec<_> = file.entries().collect();
        let b: Vec<_> = again.entries().collect();
        assert!(a == b, "to_text round trip changed the entries");
    }
});
