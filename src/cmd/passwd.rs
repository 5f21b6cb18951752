//! `mqtt-lwa passwd`: manage a password file like Debian's `mosquitto_passwd`.
//!
//! Same flags and file format, so files move between the two tools and
//! brokers; differences: PBKDF2 with [`DEFAULT_ITERATIONS`] instead of 101
//! (`-I` to choose), `-H sha512` (unsalted-iteration legacy) is refused, and
//! new files are created with mode 0600.

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

use zeroize::Zeroizing;

use mqtt_lwa::auth::password::{
    validate_username, PasswordFile, PasswordFileError, DEFAULT_ITERATIONS,
};

/// Arguments of `mqtt-lwa passwd`.
#[derive(clap::Args, Debug)]
#[command(
    about = "Add, update or delete users in a mosquitto-compatible password file",
    override_usage = "mqtt-lwa passwd [-c | -D] [-I N] FILE USER\n       mqtt-lwa passwd [-c] [-I N] -b FILE USER PASSWORD"
)]
pub struct PasswdArgs {
    /// Create a new password file, overwriting an existing one.
    #[arg(short = 'c', conflicts_with = "delete")]
    create: bool,
    /// Batch mode: take the password from the command line.
    #[arg(short = 'b')]
    batch: bool,
    /// Delete USER instead of adding or updating it.
    #[arg(short = 'D')]
    delete: bool,
    /// PBKDF2-HMAC-SHA512 iteration count for the new hash.
    #[arg(short = 'I', long = "iterations", default_value_t = DEFAULT_ITERATIONS,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(i32::MAX)))]
    iterations: u32,
    /// Hash algorithm; only sha512-pbkdf2 is written (accepted for mosquitto_passwd scripts).
    #[arg(short = 'H', default_value = "sha512-pbkdf2")]
    hash: String,
    /// The password file.
    file: PathBuf,
    /// The user name.
    user: String,
    /// The password (batch mode only).
    password: Option<String>,
}

/// Runs `mqtt-lwa passwd`.
pub fn run(args: PasswdArgs) -> ExitCode {
    match execute(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(args: PasswdArgs) -> anyhow::Result<()> {
    match args.hash.as_str() {
        "sha512-pbkdf2" => {}
        "sha512" => anyhow::bail!(
            "refusing to write legacy $6$ hashes (one SHA-512 round); use sha512-pbkdf2"
        ),
        other => anyhow::bail!("unknown hash algorithm {other:?} (expected sha512-pbkdf2)"),
    }
    if args.delete && (args.batch || args.password.is_some()) {
        anyhow::bail!("-D takes no password");
    }
    if args.password.is_some() && !args.batch {
        anyhow::bail!("a password on the command line needs -b");
    }
    if args.batch && args.password.is_none() {
        anyhow::bail!("-b needs a password argument");
    }
    validate_username(&args.user)?;

    let mut file = if args.create {
        PasswordFile::new()
    } else {
        match PasswordFile::load(&args.file) {
            Ok(f) => f,
            Err(PasswordFileError::File(e)) if e.is_not_found() => {
                anyhow::bail!(
                    "password file {} does not exist (use -c to create it)",
                    args.file.display()
                )
            }
            Err(e) => return Err(e.into()),
        }
    };

    if args.delete {
        if !file.delete_user(&args.user) {
            anyhow::bail!("user {} not found in password file", args.user);
        }
    } else {
        let password = match args.password {
            Some(p) => Zeroizing::new(p),
            None => read_password_twice()?,
        };
        if password.is_empty() {
            anyhow::bail!("empty password");
        }
        file.set_password(&args.user, password.as_bytes(), args.iterations)?;
    }
    file.save(&args.file)?;
    Ok(())
}

/// Prompts twice (echo off on a terminal) or reads two lines from a pipe, as mosquitto_passwd does.
fn read_password_twice() -> anyhow::Result<Zeroizing<String>> {
    let stdin = std::io::stdin();
    let tty = stdin.is_terminal();
    let first = prompt("Password: ", tty)?;
    let second = prompt("Reenter password: ", tty)?;
    match (first, second) {
        (Some(a), Some(b)) if *a == *b => Ok(a),
        (Some(_), Some(_)) => anyhow::bail!("passwords do not match"),
        _ => anyhow::bail!("no password given (expected two lines on standard input)"),
    }
}

fn prompt(text: &str, tty: bool) -> anyhow::Result<Option<Zeroizing<String>>> {
    let mut stderr = std::io::stderr();
    write!(stderr, "{text}")?;
    stderr.flush()?;
    // No termios without unsafe: ask stty, which acts on the terminal it inherits as stdin.
    let echo_off = tty && set_echo(false);
    let mut line = Zeroizing::new(String::new());
    let read = std::io::stdin().lock().read_line(&mut line);
    if echo_off {
        set_echo(true);
        writeln!(stderr)?;
    }
    if read? == 0 {
        return Ok(None);
    }
    let trimmed = line.trim_end_matches(['\n', '\r']).to_owned();
    Ok(Some(Zeroizing::new(trimmed)))
}

fn set_echo(on: bool) -> bool {
    Command::new("stty")
        .arg(if on { "echo" } else { "-echo" })
        .stdin(Stdio::inherit())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}
