//! One module per subcommand; each owns its clap arguments and its `run`.

pub mod broker;
pub mod pubsub;
