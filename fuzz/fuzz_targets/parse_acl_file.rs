//! Mosquitto-style ACL file parser and the policy built from it.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use mqtt_lwa::auth::acl::AclFile;

fuzz_target!(|data: &[u8]| {
    if let Ok(file) = AclFile::parse(data, Path::new("fuzz.acl")) {
        let _ = file.rule_count();
    }
});
