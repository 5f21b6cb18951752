//! `mqtt-lwa experiment report DIR` re-renders a run from its results.json
//! alone: the committed reference run must come back byte for byte (report,
//! CSV, LaTeX, plots), so the committed figures are what its data say.
//!
//! The plots are compared too: they are drawn with Debian's DejaVu Sans
//! (`fonts-dejavu-core`, installed by scripts/install-deps.sh) through
//! plotters' own rasteriser, so they do not depend on the machine's font
//! configuration; without that font the run draws none and this test fails.

mod common;

use std::process::Command;

/// Files a run directory holds that the renderer reads rather than writes.
const INPUTS: &[&str] = &["results.json", "insn-counts.csv"];

const RUNS: &[&str] = &[
    "experiments/results/full-20261125T202541Z",
    "experiments/results/quick-baselines-20261204",
    "experiments/results/baselines-20261204",
    "experiments/results/full-20261204",
    "experiments/results/vs-mosquitto-20261205",
    // `experiment gateway`: results of its own kind, the same promise.
    "experiments/results/gateway-20261205",
];

#[test]
fn committed_runs_rerender_byte_for_byte() {
    for run in RUNS {
        let committed = common::workspace_root().join(run);
        let tmp = tempfile::tempdir().unwrap();
        // The renderer's inputs: the results, and the A64 counts where a run has them.
        let mut inputs = 0;
        for input in INPUTS {
            if committed.join(input).exists() {
                std::fs::copy(committed.join(input), tmp.path().join(input)).unwrap();
                inputs += 1;
            }
        }
        let out = Command::new(common::mqtt_lwa_bin())
            .args(["experiment", "report"])
            .arg(tmp.path())
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mut compared = 0;
        for entry in std::fs::read_dir(&committed).unwrap() {
            let name = entry.unwrap().file_name();
            let name = name.to_str().unwrap();
            if INPUTS.contains(&name) {
                continue;
            }
            let want = std::fs::read(committed.join(name)).unwrap();
            let got = std::fs::read(tmp.path().join(name))
                .unwrap_or_else(|e| panic!("{run}/{name} not re-rendered: {e}"));
            assert!(
                want == got,
                "{run}/{name} differs from its re-render (run `mqtt-lwa experiment report {run}` \
                 and commit the result if the renderer changed on purpose)"
            );
            compared += 1;
        }
        // Every file the renderer writes is committed, and none is stale.
        let written = std::fs::read_dir(tmp.path()).unwrap().count() - inputs;
        assert_eq!(
            compared, written,
            "{run}: committed files vs re-rendered files"
        );
        assert!(compared >= 10, "{run}: only {compared} files");
    }
}

#[test]
fn report_of_a_directory_without_results_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let out = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "report"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("results.json"), "{err}");
}

/// An `insn-counts.csv` in a run directory (experiments/insn-count/run.sh --out DIR)
/// adds the "A64 instruction counts" section to the report and changes nothing else.
#[test]
fn insn_counts_csv_renders_into_the_report() {
    // A committed run without counts of its own.
    let run = "experiments/results/full-20261125T202541Z";
    let committed = common::workspace_root().join(run);
    let tmp = tempfile::tempdir().unwrap();
    std::fs::copy(
        committed.join("results.json"),
        tmp.path().join("results.json"),
    )
    .unwrap();
    // Synthetic counts: the renderer's input format, not measurements.
    std::fs::write(
        tmp.path().join("insn-counts.csv"),
        "operation,cpu,instructions,n1,n2,count_n1,count_n2\n\
         x25519-shared,cortex-a53,111,10,110,1000,12100\n\
         x25519-shared,cortex-a53-nocrypto,111,10,110,1000,12100\n\
         message-tls13-aes128gcm-1024,cortex-a53,222,100,1100,1000,223000\n\
         message-tls13-aes128gcm-1024,cortex-a53-nocrypto,888,100,1100,1000,889000\n",
    )
    .unwrap();
    let out = Command::new(common::mqtt_lwa_bin())
        .args(["experiment", "report"])
        .arg(tmp.path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let got = std::fs::read_to_string(tmp.path().join("report.md")).unwrap();
    let start = got
        .find("## A64 instruction counts\n")
        .unwrap_or_else(|| panic!("no section in\n{got}"));
    let end = got[start..].find("\n## ").map_or(got.len(), |i| start + i);
    let section = &got[start..end];
    assert!(
        section.contains("| `message-tls13-aes128gcm-1024` | 222 | 888 | 4.00 | 100, 1100 |  |"),
        "{section}"
    );
    assert!(section.contains("514k cycles on Cortex-A53"), "{section}");
    // Without the section (and the blank line before it) the report is the committed one.
    let without = format!("{}{}", &got[..start - 1], &got[end..]);
    let want = std::fs::read_to_string(committed.join("report.md")).unwrap();
    assert!(without == want, "the rest of the report changed");
}
