//! The end-to-end experiment behind `mqtt-lwa experiment`: what plaintext,
//! password, TLS 1.3/1.2, mutual TLS and LWA each cost on the same MQTT work,
//! with our broker and Debian's mosquitto side by side.
//!
//! - [`matrix`]: modes, brokers, payloads, QoS and the quick/full profiles.
//! - [`link`], [`netns`], [`delayline`], [`linkem`], [`linkprobe`]: emulated links
//!   (profiles; namespaces, veths and tc; the NFQUEUE delay line; iperf3 checks).
//! - [`broker`]: credentials and the broker under test as a child process.
//! - [`relay`]: a byte-counting TCP relay (bytes on the wire, any broker).
//! - [`procstat`]: CPU time and RSS from `/proc`; [`affinity`]: `--pin-cpus`.
//! - [`workload`]: the client side: set-up, bytes, memory, latency, throughput.
//! - [`serve`], [`remote`]: `experiment serve` (brokers for another machine) and the
//!   runner's side of it.
//! - [`repeat`]: repeats per cell, medians and spreads, load average.
//! - [`storm`], [`memory`], [`crosscheck`]: connection storm, idle-connection
//!   memory at several counts, tshark check of the relay's byte counts.
//! - [`results`], [`report`], [`report_links`], [`report_extra`], [`plots`]: CSV/JSON,
//!   `report.md`, PNG/SVG; [`insn_counts`]: the report's A64 instruction-count section
//!   from an `insn-counts.csv` that experiments/insn-count/run.sh put in the run directory.
//! - [`run`]: one run from start to report.
//! - [`gateway`]: `experiment gateway`, `mqtt-lwa gateway` in front of Mosquitto beside
//!   both brokers alone (its own results, report and plots).

pub mod affinity;
pub mod broker;
pub mod crosscheck;
pub mod delayline;
pub mod gateway;
pub mod insn_counts;
pub mod link;
pub mod linkem;
pub mod linkprobe;
pub mod matrix;
pub mod memory;
pub mod netns;
pub mod plots;
pub mod preflight;
pub mod procstat;
mod progress;
pub mod reference;
pub mod relay;
pub mod remote;
pub mod render;
pub mod repeat;
pub mod report;
pub mod report_extra;
pub mod report_links;
mod report_vs_mosquitto;
pub mod results;
pub mod run;
pub mod serve;
pub mod stats;
pub mod stock;
pub mod storm;
pub mod workload;

pub use link::LinkProfile;
pub use matrix::{BrokerKind, Mode, Profile};
pub use run::{run, ExperimentError, RunOptions};
