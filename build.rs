//! Records what this binary was built from, for `--version` and the
//! experiment's provenance: git commit and dirty flag, rustc, target and
//! cargo profile. Written by hand (a few `git` calls) rather than with
//! vergen: a build outside a git checkout, from a tarball say, must still
//! build and say "unknown", and nothing else is needed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    Some(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap_or_default());
    // Rebuild the facts when the checkout moves: HEAD, the branch it points
    // at, the index, and any source file (for the dirty flag).
    for p in [
        "src",
        "Cargo.toml",
        "Cargo.lock",
        "build.rs",
        "benches",
        "examples",
    ] {
        println!("cargo:rerun-if-changed={}", manifest.join(p).display());
    }
    let commit = git(&["-C", &manifest.display().to_string(), "rev-parse", "HEAD"]);
    if let Some(dir) = git(&[
        "-C",
        &manifest.display().to_string(),
        "rev-parse",
        "--absolute-git-dir",
    ]) {
        let dir = Path::new(&dir);
        for f in ["HEAD", "index", "packed-refs"] {
            println!("cargo:rerun-if-changed={}", dir.join(f).display());
        }
        if let Some(head) = git(&[
            "-C",
            &manifest.display().to_string(),
            "symbolic-ref",
            "-q",
            "HEAD",
        ]) {
            println!("cargo:rerun-if-changed={}", dir.join(head).display());
        }
    }
    let dirty = commit.as_ref().and_then(|_| {
        git(&[
            "-C",
            &manifest.display().to_string(),
            "status",
            "--porcelain",
            "--untracked-files=no",
        ])
    });
    let (commit, dirty) = match (commit, dirty) {
        (Some(c), Some(d)) => (c, if d.is_empty() { "clean" } else { "dirty" }),
        (Some(c), None) => (c, "unknown"),
        _ => ("unknown".to_owned(), "unknown"),
    };
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let rustc = Command::new(rustc)
        .arg("-V")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "rustc unknown".into());
    println!("cargo:rustc-env=MQTT_LWA_COMMIT={commit}");
    println!("cargo:rustc-env=MQTT_LWA_TREE={dirty}");
    println!("cargo:rustc-env=MQTT_LWA_RUSTC={rustc}");
    println!(
        "cargo:rustc-env=MQTT_LWA_TARGET={}",
        std::env::var("TARGET").unwrap_or_default()
    );
    println!(
        "cargo:rustc-env=MQTT_LWA_PROFILE={}",
        std::env::var("PROFILE").unwrap_or_default()
    );
}
