//! `mqtt-lwa certs`: make a private PKI for the TLS modes and check expiry.

use std::path::PathBuf;
use std::process::ExitCode;

use mqtt_lwa::auth::certs::{self, KeyAlgorithm};

/// Arguments of `mqtt-lwa certs`.
#[derive(clap::Args, Debug)]
pub struct CertsArgs {
    #[command(subcommand)]
    command: CertsCommand,
}

#[derive(clap::Subcommand, Debug)]
enum CertsCommand {
    /// Create ca.crt/key, broker.crt/key and one crt/key per client in DIR.
    Init {
        /// Directory to write into (created if missing; existing files are never overwritten).
        dir: PathBuf,
        /// Extra broker name (DNS name or IP) besides 127.0.0.1, ::1 and localhost.
        #[arg(long = "name", value_name = "N")]
        names: Vec<String>,
        /// Client certificate to issue; its CN (the MQTT user name under mTLS) is C.
        #[arg(long = "client", value_name = "C")]
        clients: Vec<String>,
        /// Key algorithm: ecdsa-p256 or rsa2048.
        #[arg(long, default_value = "ecdsa-p256")]
        algorithm: KeyAlgorithm,
        /// Validity in days.
        #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u32).range(1..=36_500))]
        days: u32,
    },
    /// Print subject, SANs and expiry; exit 1 if any certificate expires within N days.
    Check {
        /// PEM certificate files.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Warn (and fail) when fewer than N days are left.
        #[arg(long, default_value_t = 30)]
        warn_days: i64,
    },
}

/// Runs `mqtt-lwa certs`.
pub fn run(args: CertsArgs) -> ExitCode {
    match args.command {
        CertsCommand::Init {
            dir,
            names,
            clients,
            algorithm,
            days,
        } => {
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            let clients: Vec<&str> = clients.iter().map(String::as_str).collect();
            match certs::init(&dir, &names, algorithm, &clients, days) {
                Ok(out) => {
                    for p in &out.certificates {
                        println!("wrote {}", p.display());
                    }
                    for p in &out.keys {
                        println!("wrote {} (mode 0600)", p.display());
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("Error: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        CertsCommand::Check { files, warn_days } => check(&files, warn_days),
    }
}

fn check(files: &[PathBuf], warn_days: i64) -> ExitCode {
    let infos = match certs::check(files) {
        Ok(i) => i,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(2);
        }
    };
    let mut failing = 0;
    for info in &infos {
        let status = if info.is_expired() {
            failing += 1;
            "EXPIRED"
        } else if info.days_left < warn_days {
            failing += 1;
            "EXPIRES SOON"
        } else {
            "ok"
        };
        println!("{} [{}]: {status}", info.path.display(), info.index);
        println!("  subject:   {}", info.subject);
        println!("  issuer:    {}", info.issuer);
        if !info.sans.is_empty() {
            println!("  SANs:      {}", info.sans.join(", "));
        }
        let t = info.not_after;
        println!(
            "  not after: {:04}-{:02}-{:02} {:02}:{:02}:{:02} UTC ({} days left)",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            info.days_left
        );
    }
    if failing > 0 {
        eprintln!("{failing} certificate(s) expired or expiring within {warn_days} days");
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
