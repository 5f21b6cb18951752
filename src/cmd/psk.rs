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
        Err(PskFileError::File(e)) if create && e.is_not_found() => Ok(PskStore::new()),
        Err(e) => Err(e.into()),
    }
}

/// The client key file: `-o`, else `IDENTITY.key` in the current directory,
/// which only an identity that is a plain file name may use (issue 13: `../x`
/// wrote the key outside the directory).
fn key_path(identity: &str, key_out: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(path) = key_out {
        return Ok(path);
    }
    if identity.contains(['/', '\\']) || identity.starts_with('.') {
        anyhow::bail!(
            "identity {identity:?} cannot name a key file (it contains '/' or '\\' or starts with '.'); give the key file with -o"
        );
    }
    Ok(PathBuf::from(format!("{identity}.key")))
}

/// Saves the store; a store that group or others could read is made 0600,
/// and the operator is told (issue 13: `psk add` used to keep it readable).
/// The mode is fixed before the write, since an atomic replace keeps the old
/// file's mode and the new key would otherwise be readable for a moment.
fn save(store: &PskStore, file: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(file) {
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600))?;
                eprintln!(
                    "note: {} was readable by group or others (mode {mode:03o}); its mode is now 600",
                    file.display()
                );
            }
        }
    }
    store.save(file)?;
    Ok(())
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
            let key_file = key_path(&identity, key_out)?;
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
            save(&store, &file)?;
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
            let key_file = key_path(&identity, key_out)?;
            let psk = Psk::random(&mut OsRng);
            save_client_key(&key_file, &psk)?;
            store.set(&identity, psk)?;
            save(&store, &file)?;
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
            save(&store, &file)?;
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
