//! LWA PSK store parser. Oracle: an accepted store written back with
//! `to_text` parses to the same identities and keys.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mqtt_lwa::auth::psk::{key_to_hex, PskStore};

fuzz_target!(|data: &[u8]| {
    let path = Path::new("fuzz.psk");
    if let Ok(store) = PskStore::parse(data, path) {
        let text = store.to_text();
        let again = PskStore::parse(text.as_bytes(), path).expect("to_text output parses");
        let ids: Vec<_> = store.identities().collect();
        assert_eq!(ids, again.identities().collect::<Vec<_>>());
        for id in ids {
            let a = store.lookup(id).map(|k| key_to_hex(&k));
            let b = again.lookup(id).map(|k| key_to_hex(&k));
            assert!(a == b, "key of {id:?} changed");
        }
    }
});
