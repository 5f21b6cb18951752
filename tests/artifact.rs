//! ARTIFACT.md's checked commands run as written: every ```sh block after an
//! `<!-- artifact-check -->` marker runs with bash (`set -e`), with the test
//! build's binary in place of `target/release/mqtt-lwa`, in a scratch git
//! repository holding a copy of the committed reference run (so that its
//! `git diff --exit-code` checks the re-render without touching this
//! checkout, which other tests read at the same time).

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BIN: &str = env!("CARGO_BIN_EXE_mqtt-lwa");
const RUN: &str = "experiments/results/full-20261204";

fn checked_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() != "<!-- artifact-check -->" {
            continue;
        }
        let fence = lines.next().unwrap_or_default();
        assert_eq!(fence.trim(), "```sh", "a marker must precede a ```sh block");
        let body: Vec<&str> = lines.by_ref().take_while(|l| l.trim() != "```").collect();
        blocks.push(body.join("\n"));
    }
    blocks
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args([
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "-c",
            "commit.gpgsign=false",
        ])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(ok.status.success(), "git {args:?}: {ok:?}");
}

#[test]
fn artifact_commands_run_as_written() {
    let text = std::fs::read_to_string(format!("{ROOT}/ARTIFACT.md")).unwrap();
    let blocks = checked_blocks(&text);
    assert!(blocks.len() >= 3, "{blocks:?}");
    let repo = tempfile::tempdir().unwrap();
    let run = repo.path().join(RUN);
    std::fs::create_dir_all(&run).unwrap();
    for entry in std::fs::read_dir(Path::new(ROOT).join(RUN)).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), run.join(entry.file_name())).unwrap();
    }
    git(repo.path(), &["init", "-q"]);
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "reference run"]);
    let _ = std::fs::remove_dir_all("/tmp/artifact-check");
    for block in blocks {
        let script = format!("set -e\n{}", block.replace("target/release/mqtt-lwa", BIN));
        let out = Command::new("bash")
            .arg("-c")
            .arg(&script)
            .current_dir(repo.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ARTIFACT.md block failed:\n{block}\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if block.contains("--version") {
            assert!(String::from_utf8_lossy(&out.stdout).starts_with("mqtt-lwa 0."));
        }
    }
    assert!(Path::new("/tmp/artifact-check/smoke/report.md").exists());
    let _ = std::fs::remove_dir_all("/tmp/artifact-check");
}
