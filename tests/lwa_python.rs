//! Cross-checks the LWA1 and LWA2 test vectors with the independent Python
//! implementations (tests/python/lwa_ref.py, written from protocol-spec/LWA.md,
//! and tests/python/lwa2_ref.py, written from protocol-spec/LWA2.md).
//!
//! Fails (does not skip) when python3 or the `cryptography` or `blake3`
//! package is missing: run scripts/install-deps.sh.

use std::process::Command;

/// Runs one of the Python vector suites and checks that all `tests` of it ran and passed.
fn run_vector_suite(script: &str, version: &str, tests: usize) {
    let output = Command::new("python3")
        .arg(script)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 ({e}): run scripts/install-deps.sh"));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "Python {version} implementation disagrees with the vectors (or the Python package \
         cryptography or blake3 is missing: run scripts/install-deps.sh):\n{stderr}{}",
        String::from_utf8_lossy(&output.stdout)
    );
    // unittest reports "Ran N tests" on stderr; make sure the vector tests actually ran.
    assert!(
        stderr.contains(&format!("Ran {tests} tests")),
        "unexpected test count:\n{stderr}"
    );
}

#[test]
fn python_reference_implementation_reproduces_every_vector() {
    run_vector_suite("tests/python/test_lwa_vectors.py", "LWA1", 8);
}

#[test]
fn python_lwa2_implementation_reproduces_every_vector() {
    run_vector_suite("tests/python/test_lwa2_vectors.py", "LWA2", 26);
}
