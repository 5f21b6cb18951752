//! Prints state counts and timings of the honest model and every mutant:
//! `cargo run -p lwa-stateright --example check [lwa2] [revocation] [clients brokers c2b b2c]`.
//! `lwa2` (or `LWA_VERSION=2`) checks LWA2 instead of LWA1; `revocation`
//! lets the operator revoke the PSK in the honest model too.

use lwa_stateright::{check, Bounds, Flaw, LwaModel, Version};

fn main() {
    let words: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<u8> = words.iter().filter_map(|a| a.parse().ok()).collect();
    let bounds = match args[..] {
        [clients, brokers, c2b_records, b2c_records] => Bounds {
            clients,
            brokers,
            c2b_records,
            b2c_records,
        },
        _ => Bounds::CI,
    };
    let lwa2_env = std::env::var("LWA_VERSION").is_ok_and(|v| v == "2");
    let version = if lwa2_env || words.iter().any(|w| w == "lwa2") {
        Version::Lwa2
    } else {
        Version::Lwa1
    };
    let revocation = words.iter().any(|w| w == "revocation");
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    let mut honest = LwaModel::new(version, bounds, None);
    if revocation {
        honest = honest.with_revocation();
    }
    let r = check(honest, threads, None);
    println!("{version:?} honest {bounds:?} (revocation: {revocation}): {} unique states ({} generated), depth {}, {:.2?}, violated {:?}, unreached {:?}", r.unique_states, r.states, r.max_depth, r.elapsed, r.violated_names(), r.unreached);
    for flaw in Flaw::ALL {
        if !flaw.applies_to(version) {
            continue;
        }
        let r = check(LwaModel::new(version, bounds, Some(flaw)), threads, None);
        println!(
            "{flaw:?}: {} unique states, {:.2?}, violated {:?}",
            r.unique_states,
            r.elapsed,
            r.violated_names()
        );
        for (name, path) in &r.violated {
            println!("    {name}: {path}");
        }
    }
}
