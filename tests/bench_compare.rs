//! `scripts/bench-compare.py` over two synthetic criterion trees: one row per
//! bench found in both, means with their intervals, the B/A ratio, and the
//! benches only one side has.

use std::fs;
use std::path::Path;
use std::process::Command;

fn write_estimate(root: &Path, bench: &str, mean: f64, lo: f64, hi: f64) {
    let dir = root.join(bench).join("new");
    fs::create_dir_all(&dir).unwrap();
    let json = format!(
        r#"{{"mean":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":{lo},"upper_bound":{hi}}},"point_estimate":{mean},"standard_error":1.0}},"median":{{"confidence_interval":{{"confidence_level":0.95,"lower_bound":0,"upper_bound":0}},"point_estimate":0,"standard_error":0}}}}"#
    );
    fs::write(dir.join("estimates.json"), json).unwrap();
    // criterion keeps the previous run beside it; it must not count.
    let base = root.join(bench).join("base");
    fs::create_dir_all(&base).unwrap();
    fs::write(base.join("estimates.json"), "{}").unwrap();
}

#[test]
fn side_by_side_table_with_ratio() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("x86"), tmp.path().join("pi"));
    write_estimate(&a, "aead/aes-128-gcm/1024", 500.0, 490.0, 510.0);
    write_estimate(&b, "aead/aes-128-gcm/1024", 20_000.0, 19_000.0, 21_000.0);
    write_estimate(&a, "records/seal/30", 1_000.0, 900.0, 1_100.0);
    write_estimate(&b, "records/seal/30", 2_500.0, 2_400.0, 2_600.0);
    write_estimate(&a, "codec/only-on-a", 10.0, 9.0, 11.0);
    let out = tmp.path().join("compare.md");
    let run = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-compare.py"))
        .args([&a, &b])
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let stdout = String::from_utf8(run.stdout).unwrap();
    assert!(
        stdout.contains(
            "| aead/aes-128-gcm/1024 | 500 ns (490 ns – 510 ns) | 20 µs (19 µs – 21 µs) | 40.00 |"
        ),
        "{stdout}"
    );
    assert!(
        stdout.contains(
            "| records/seal/30 | 1 µs (900 ns – 1.1 µs) | 2.5 µs (2.4 µs – 2.6 µs) | 2.50 |"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("Only in A: codec/only-on-a"), "{stdout}");
    assert_eq!(fs::read_to_string(&out).unwrap(), stdout);
}

#[test]
fn refuses_trees_with_nothing_in_common() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    write_estimate(&a, "x/1", 1.0, 1.0, 1.0);
    write_estimate(&b, "y/1", 1.0, 1.0, 1.0);
    let run = Command::new("python3")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench-compare.py"))
        .args([&a, &b])
        .output()
        .unwrap();
    assert!(!run.status.success());
    assert!(String::from_utf8_lossy(&run.stderr).contains("no bench"));
}
