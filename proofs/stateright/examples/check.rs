//! Prints state counts and timings of the honest model and every mutant:
//! `cargo run -p lwa-stateright --example check [clients brokers c2b b2c]`.

use lwa_stateright::{check, Bounds, Flaw, LwaModel};

fn main() {
    let args: Vec<u8> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let bounds = match args[..] {
        [clients, brokers, c2b_records, b2c_records] => Bounds {
            clients,
            brokers,
            c2b_records,
            b2c_records,
        },
        _ => Bounds::CI,
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(2);
    let r = check(LwaModel::honest(bounds), threads, None);
    println!("honest {bounds:?}: {} unique states ({} generated), depth {}, {:.2?}, violated {:?}, unreached {:?}", r.unique_states, r.states, r.max_depth, r.elapsed, r.violated_names(), r.unreached);
    for flaw in Flaw::ALL {
        let r = check(LwaModel::mutant(bounds, flaw), threads, None);
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
