//! `mqtt-lwa psk`: manage the broker's LWA1 PSK store and write client key files.
//!
//! Keys are drawn from the OS random number generator, never typed in
//! (LWA.md 12.11: a PSK is not a password). The broker re-reads the store
//! while running: `rotate` and `revoke` close the identity's live sessions.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use rand_core::OsRng;

use mqtt_lwa::auth::psk::{save_client_key, validate_identity, PskFileError, PskStore};
use mqtt_lwa::lwa::Psk;

/// Arguments of `mqtt-lwa psk`.
#[derive(clap::Args, Debug)]
pub struct PskArgs {
    #[command(subcommand)]
    command: PskCommand,
}

#[derive(clap::Subcommand, Debug)]
enum PskCommand {
    /// Add an identity with a fresh random key (creates FILE if missing) and write its client key file.
    Add {
        /// The broker's PSK store.
        file: PathBuf,
        /// The LWA identity.
        identity: String,
        /// Client key file to write (default: IDENTITY.key in the current directory).
        #[arg(short = 'o', long = "key-out", value_name = "KEYFILE")]
        key_out: Option<PathBuf>,
        /// Overwrite an existing client key file.
        #[arg(long)]
        force: bool,
    },
    /// Give an existing identity a fresh key and write its client key file; live sessions are closed.
    Rotate {
        /// The broker's PSK store.
        file: PathBuf,
        /// The LWA identity.
        identity: String,
        /// Client key file to write (default: IDENTITY.key in the current directory; overwritten).
        #[arg(short = 'o', long = "key-out", value_name = "KEYFILE")]
        key_out: Option<PathBuf>,
    },
    /// Remove an identity; the broker closes its live sessions.
    #[command(alias = "del")]
    Revoke {
        /// The broker's PSK store.
        file: PathBuf,
        /// The LWA identity.
        identity: String,
    },
    /// Print the identities (never the keys).
    List {
        /// The broker's PSK store.
        file: PathBuf,
    },
}

/// Runs `mqtt-lwa psk`.
pub fn run(args: PskArgs) -> ExitCode {
    match execute(args.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn load(file: &Path, create: bool) -> anyhow::Result<PskStore> {
    match PskStore::load(file) {
        Ok(store) => Ok(store),
        Err(PskFileError::Io { source, .. })
            if create && source.kind() == std::io::ErrorKind::NotFound =>
        {
            Ok(PskStore::new())
        }
        Err(e) => Err(e.into()),
    }
}

fn key_path(identity: &str, key_out: Option<PathBuf>) -> PathBuf {
    key_out.unwrap_or_else(|| PathBuf::from(format!("{identity}.key")))
}

fn execute(command: PskCommand) -> anyhow::Result<()> {
    match command {
        PskCommand::Add {
            file,
            identity,
            key_out,
            force,
        } => {
            validate_identity(&identity)?;
            let mut store = load(&file, true)?;
            if store.contains(&identity) {
                anyhow::bail!(
                    "identity {identity:?} already in {} (use `psk rotate` for a new key)",
                    file.display()
                );
            }
            let key_file = key_path(&identity, key_out);
            if key_file.exists() && !force {
                anyhow::bail!(
                    "{} exists (use --force to overwrite it)",
                    key_file.display()
                );
            }
            let psk = Psk::random(&mut OsRng);
            // Client key first: if it cannot be written, the store is left unchanged.
            save_client_key(&key_file, &psk)?;
            store.set(&identity, psk)?;
            store.save(&file)?;
            println!(
                "added {identity} to {}; client key written to {}",
                file.display(),
                key_file.display()
            );
        }
        PskCommand::Rotate {
            file,
            identity,
            key_out,
        } => {
            let mut store = load(&file, false)?;
            if !store.contains(&identity) {
                anyhow::bail!("identity {identity:?} not found in {}", file.display());
            }
            let key_file = key_path(&identity, key_out);
            let psk = Psk::random(&mut OsRng);
            save_client_key(&key_file, &psk)?;
            store.set(&identity, psk)?;
            store.save(&file)?;
            println!(
                "rotated {identity} in {}; new client key written to {}",
                file.display(),
                key_file.display()
            );
        }
        PskCommand::Revoke { file, identity } => {
            let mut store = load(&file, false)?;
            if !store.remove(&identity) {
                anyhow::bail!("identity {identity:?} not found in {}", file.display());
            }
            store.save(&file)?;
            println!("revoked {identity} in {}", file.display());
        }
        PskCommand::List { file } => {
            for identity in load(&file, false)?.identities() {
                println!("{identity}");
            }
        }
    }
    Ok(())
}
