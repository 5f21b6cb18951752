//! A bounded symbolic model of LWA1 (`protocol-spec/LWA.md`) and LWA2
//! (`protocol-spec/LWA2.md`) for the stateright model checker, and the
//! flawed variants that show its properties can fail. `proofs/README.md`
//! maps each claim of LWA.md section 14 to the property here that checks it.
//!
//! - [`terms`]: symbolic messages, keys and the attacker's derivations.
//! - [`model`]: client and broker state machines of both versions, PSK
//!   revocation, and the Dolev-Yao network.
//! - [`properties`]: claims S1-S6 and S8-S10 (and the revocation rule of
//!   LWA.md 12.12) as `always` properties, plus `sometimes` properties that
//!   show the honest runs are reachable.
//! - [`check`]: runs the checker and summarises what it found.

#![warn(missing_docs)]

pub mod model;
pub mod properties;
pub mod terms;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use stateright::{Checker, Expectation, HasDiscoveries, Model};

pub use model::{Bounds, Flaw, LwaModel, UpdateFlaw, Version};

/// What one exhaustive (or early-stopped) run of the checker found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Distinct states visited.
    pub unique_states: usize,
    /// States generated, repeats included.
    pub states: usize,
    /// Longest path explored.
    pub max_depth: usize,
    /// `always` properties with a counterexample, and the counterexample's actions.
    pub violated: Vec<(&'static str, String)>,
    /// `sometimes` properties never satisfied.
    pub unreached: Vec<&'static str>,
    /// Whether the whole bounded state space was explored.
    pub complete: bool,
    /// Wall-clock time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Names of the violated properties.
    pub fn violated_names(&self) -> BTreeSet<&'static str> {
        self.violated.iter().map(|(name, _)| *name).collect()
    }
}

/// Explores `model` on `threads` threads. With `stop_at`, stops as soon as
/// every one of those properties has a counterexample (what a mutant must
/// show); otherwise explores the whole bounded state space.
pub fn check(model: LwaModel, threads: usize, stop_at: Option<&[&'static str]>) -> Report {
    let properties = model.properties();
    let started = Instant::now();
    let mut builder = model.checker().threads(threads.max(1));
    if let Some(names) = stop_at {
        builder = builder.finish_when(HasDiscoveries::AllOf(names.iter().copied().collect()));
    }
    let checker = builder.spawn_bfs().join();
    let elapsed = started.elapsed();
    let discoveries = checker.discoveries();
    let mut violated = Vec::new();
    let mut unreached = Vec::new();
    for p in &properties {
        let found = discoveries.get(p.name);
        match (&p.expectation, found) {
            (Expectation::Sometimes, None) => unreached.push(p.name),
            (Expectation::Sometimes, Some(_)) => {}
            (_, Some(path)) => {
                violated.push((p.name, format!("{:?}", path.clone().into_actions())))
            }
            (_, None) => {}
        }
    }
    Report {
        unique_states: checker.unique_state_count(),
        states: checker.state_count(),
        max_depth: checker.max_depth(),
        violated,
        unreached,
        complete: checker.is_done() && stop_at.is_none(),
        elapsed,
    }
}
