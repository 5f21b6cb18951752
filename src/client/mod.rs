//! The async MQTT client used by the CLI, tests and benchmarks.
//!
//! [`session`] holds the protocol logic as a sans-IO state machine; the tokio
//! driver that moves its bytes is being written.

pub mod session;
