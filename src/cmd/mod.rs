//! One module per subcommand; each owns its clap arguments and its `run`.

pub mod broker;
pub mod certs;
pub mod experiment;
pub mod gateway;
pub mod passwd;
pub mod psk;
pub mod pubsub;
