//! The ProVerif models' mutants stay in step with the models (proofs/README.md): ProVerif is not
//! in the registries the project reaches, so the suite cannot run it, but `run.py --check`
//! builds every model and mutant without it, and a mutant whose textual change no longer
//! applies (the model was edited under it) fails here rather than at the next ProVerif run.

use std::path::Path;
use std::process::Command;

fn check(dir: &Path) -> std::process::Output {
    Command::new("python3")
        .arg(dir.join("run.py"))
        .arg("--check")
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): run scripts/install-deps.sh"))
}

#[test]
fn every_mutant_applies_to_its_model() {
    let proverif = Path::new(env!("CARGO_MANIFEST_DIR")).join("proofs/proverif");
    let out = check(&proverif);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(
        stdout.contains("models: every mutant's change applies"),
        "{stdout}"
    );
    // lwa2_update.pv's four mutants are among them: 35 models in all on 2026-12-05.
    let count: usize = stdout
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(count >= 35, "{stdout}");

    // The same check fails once a model drifts from a mutant's change.
    let copy = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&proverif).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            std::fs::copy(&path, copy.path().join(path.file_name().unwrap())).unwrap();
        }
    }
    let model = copy.path().join("lwa2_update.pv");
    let text = std::fs::read_to_string(&model).unwrap();
    let edited = text.replace(
        "  let u1 = keyed(u0, lbl_next) in\n",
        "  let u1 = keyed(u0, lbl_next)  in\n",
    );
    assert_ne!(text, edited);
    std::fs::write(&model, edited).unwrap();
    let out = check(copy.path());
    assert!(!out.status.success(), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("mutant change not applicable")
            || String::from_utf8_lossy(&out.stdout).contains("mutant change not applicable"),
        "{out:?}"
    );
}
