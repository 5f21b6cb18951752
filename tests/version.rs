//! `mqtt-lwa --version` names the build: commit, tree state, rustc, target
//! and profile, embedded at build time, so it is right whatever directory
//! the binary runs in.

use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(env!("CARGO_MANIFEST_DIR"))
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

#[test]
fn version_outside_the_repository_shows_the_build_commit() {
    let elsewhere = tempfile::tempdir().unwrap();
    let out = Command::new(BIN)
        .arg("--version")
        .current_dir(elsewhere.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    let line = String::from_utf8_lossy(&out.stdout).trim().to_owned();
    assert!(
        line.starts_with(&format!("mqtt-lwa {} (commit ", env!("CARGO_PKG_VERSION"))),
        "{line}"
    );
    match git(&["rev-parse", "HEAD"]) {
        // Built from this checkout: the commit is HEAD's (the binary was
        // built for this test run, after the last commit).
        Some(head) => assert!(
            line.contains(&format!("commit {head}, ")),
            "{line} / {head}"
        ),
        None => assert!(line.contains("commit unknown, unknown"), "{line}"),
    }
    assert!(
        [", clean, ", ", dirty, ", ", unknown, "]
            .iter()
            .any(|t| line.contains(t)),
        "{line}"
    );
    assert!(line.contains(", rustc "), "{line}");
    assert!(line.contains(std::env::consts::ARCH), "{line}");
    assert!(
        line.ends_with(", debug)") || line.ends_with(", release)"),
        "{line}"
    );
    // The library reports the same build.
    assert!(line.contains(mqtt_lwa::build_info::LONG_VERSION), "{line}");
}
