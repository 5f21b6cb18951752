//! The "A64 instruction counts" section of `report.md`, from an `insn-counts.csv`
//! that `experiments/insn-count/run.sh --out RUN_DIR` put into the run directory.
//!
//! The counts are not measured by the experiment itself: qemu-user counts the
//! instructions of `examples/cost_ops.rs` on Cortex-A53/A72 models, with and
//! without the ARMv8 crypto extensions (a Raspberry Pi 3 or 4 has none). They
//! stand in for Pi timings, which this machine cannot measure. A run directory
//! without the file renders exactly as before.

use std::fmt::Write as _;
use std::path::Path;

/// The file's name inside a run directory.
pub const FILE: &str = "insn-counts.csv";

/// The header `experiments/insn-count/run.sh` writes.
const HEADER: &str = "operation,cpu,instructions,n1,n2,count_n1,count_n2";

/// Published X25519 shared-secret cost, cited beside the `x25519-shared` row: never
/// measured here, so the report labels it as cited.
const X25519_CITED: &str = "~514k cycles on Cortex-A53, ~425k on Cortex-A72 (OpenSSL; \
                            lib25519-20241004 doc/speed.md; cited, not measured)";

/// Why an `insn-counts.csv` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InsnCountsError {
    /// The file exists but could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The reason.
        source: std::io::Error,
    },
    /// The first line is not the header run.sh writes.
    #[error("{path}: line 1: expected the header `{HEADER}`")]
    Header {
        /// The file.
        path: String,
    },
    /// A data line has the wrong number of fields or a field that is not a number.
    #[error("{path}: line {line}: {reason}")]
    Line {
        /// The file.
        path: String,
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        reason: String,
    },
}

/// One count: instructions per `operation` on `cpu`, from runs of `n1` and `n2` operations.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InsnCount {
    /// cost_ops operation, e.g. `handshake-lwa` or `message-lwa-30`.
    pub operation: String,
    /// CPU configuration, e.g. `cortex-a53` or `cortex-a53-nocrypto`.
    pub cpu: String,
    /// Instructions per operation: (count at n2 - count at n1) / (n2 - n1).
    pub instructions: u64,
    /// The shorter run's length.
    pub n1: u64,
    /// The longer run's length.
    pub n2: u64,
}

/// Every count of one `insn-counts.csv`, in file order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InsnCounts {
    /// The rows.
    pub rows: Vec<InsnCount>,
}

impl InsnCounts {
    /// Reads `dir/insn-counts.csv`; `Ok(None)` when the run has none.
    pub fn load(dir: &Path) -> Result<Option<Self>, InsnCountsError> {
        let path = dir.join(FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => Self::parse(&text, &path.display().to_string()).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(InsnCountsError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// Parses the CSV text; `path` only names the file in errors.
    pub fn parse(text: &str, path: &str) -> Result<Self, InsnCountsError> {
        let mut lines = text.lines().enumerate();
        match lines.next() {
            Some((_, h)) if h.trim() == HEADER => {}
            _ => {
                return Err(InsnCountsError::Header { path: path.into() });
            }
        }
        let mut rows = Vec::new();
        for (i, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            let bad = |reason: String| InsnCountsError::Line {
                path: path.into(),
                line: i + 1,
                reason,
            };
            let fields: Vec<&str> = line.split(',').map(str::trim).collect();
            let [operation, cpu, instructions, n1, n2, _, _] = fields[..] else {
                return Err(bad(format!("{} fields, expected 7", fields.len())));
            };
            let num = |name: &str, v: &str| {
                v.parse::<u64>()
                    .map_err(|_| bad(format!("{name} `{v}` is not a whole number")))
            };
            rows.push(InsnCount {
                operation: operation.into(),
                cpu: cpu.into(),
                instructions: num("instructions", instructions)?,
                n1: num("n1", n1)?,
                n2: num("n2", n2)?,
            });
        }
        Ok(Self { rows })
    }

    fn get(&self, operation: &str, cpu: &str) -> Option<&InsnCount> {
        self.rows
            .iter()
            .find(|r| r.operation == operation && r.cpu == cpu)
    }

    /// Distinct values of `key`, in order of first appearance.
    fn distinct(&self, key: fn(&InsnCount) -> &str) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for r in &self.rows {
            if !seen.contains(&key(r)) {
                seen.push(key(r));
            }
        }
        seen
    }
}

/// Appends the "A64 instruction counts" section.
pub fn section(out: &mut String, counts: &InsnCounts) {
    let ops = counts.distinct(|r| &r.operation);
    let cpus = counts.distinct(|r| &r.cpu);
    out.push_str("## A64 instruction counts\n\n");
    out.push_str(
        "From `insn-counts.csv` beside this report, written by `experiments/insn-count/run.sh \
         --out`: not measured by this run, and not on a Pi. qemu-user counts the A64 \
         instructions `examples/cost_ops.rs` executes (run.sh builds it in release), each \
         operation run for two lengths N1 < N2 and the difference divided by N2 - N1, so \
         start-up and set-up cancel. Handshakes are both sides in memory with MQTT \
         CONNECT/CONNACK; `message-MODE-SIZE` is one QoS 1 PUBLISH of SIZE payload bytes, \
         encoded, protected, unprotected and decoded. A `-nocrypto` configuration hides the \
         ARMv8 crypto extensions (AES, PMULL, SHA1, SHA2) from the software, as on a Raspberry \
         Pi 3 or 4, so ring and RustCrypto take their software paths. Instructions are not \
         cycles: a Cortex-A53 (in order) needs more cycles per instruction than a Cortex-A72 \
         (out of order).\n\n",
    );
    let mut header: Vec<String> = vec!["operation".into()];
    header.extend(cpus.iter().map(|c| format!("{c} (instructions)")));
    let ratio_cols: Vec<(&str, &str)> = cpus
        .iter()
        .filter_map(|c| {
            let base = c.strip_suffix("-nocrypto")?;
            cpus.contains(&base).then_some((*c, base))
        })
        .collect();
    header.extend(ratio_cols.iter().map(|(nc, base)| format!("{nc} / {base}")));
    header.push("N1, N2".into());
    let cite = ops.contains(&"x25519-shared");
    if cite {
        header.push("published".into());
    }
    let rows: Vec<Vec<String>> = ops
        .iter()
        .map(|op| {
            let mut row = vec![format!("`{op}`")];
            row.extend(cpus.iter().map(|c| {
                counts
                    .get(op, c)
                    .map_or_else(|| "-".into(), |r| r.instructions.to_string())
            }));
            row.extend(ratio_cols.iter().map(|(nc, base)| {
                match (counts.get(op, nc), counts.get(op, base)) {
                    (Some(a), Some(b)) if b.instructions > 0 => {
                        format!("{:.2}", a.instructions as f64 / b.instructions as f64)
                    }
                    _ => "-".into(),
                }
            }));
            let lengths = counts
                .rows
                .iter()
                .find(|r| r.operation == *op)
                .map_or_else(|| "-".into(), |r| format!("{}, {}", r.n1, r.n2));
            row.push(lengths);
            if cite {
                row.push(if *op == "x25519-shared" {
                    X25519_CITED.into()
                } else {
                    String::new()
                });
            }
            row
        })
        .collect();
    super::report::table(out, &header, &rows);
    // Whether two configurations without hidden features agree, said from the data.
    let plain: Vec<&str> = cpus
        .iter()
        .copied()
        .filter(|c| !c.ends_with("-nocrypto"))
        .collect();
    for pair in plain.windows(2) {
        let (a, b) = (pair[0], pair[1]);
        // The largest relative difference between the two, over the operations both have.
        let worst = ops
            .iter()
            .filter_map(|op| {
                let (x, y) = (counts.get(op, a)?, counts.get(op, b)?);
                let diff = x.instructions.abs_diff(y.instructions) as f64
                    / x.instructions.max(y.instructions).max(1) as f64;
                Some((diff, *op, x.instructions, y.instructions))
            })
            .fold(None, |w: Option<(f64, &str, u64, u64)>, d| match w {
                Some(w) if w.0 >= d.0 => Some(w),
                _ => Some(d),
            });
        match worst {
            // The largest difference is none: every operation agrees.
            Some((_, _, x, y)) if x == y => {
                let _ = writeln!(
                    out,
                    "`{a}` and `{b}` give the same count for every operation: software chooses \
                     its code from the features the CPU reports, not from its pipeline, so \
                     instruction counts do not depend on the microarchitecture.\n"
                );
            }
            Some((diff, op, x, y)) => {
                let _ = writeln!(
                    out,
                    "`{a}` and `{b}` agree within {:.2} % (largest: `{op}`, {x} against {y}). \
                     Software chooses its code from the features the CPU reports, not from its \
                     pipeline; where counts differ, the operation depends on random keys, nonces \
                     or signatures, which every run draws afresh, so it also varies between runs \
                     on one model.\n",
                    diff * 100.0
                );
            }
            None => {}
        }
    }
    if cite {
        out.push_str(
            "`x25519` is one handshake side's key pair and shared secret (two scalar \
             multiplications); `x25519-shared` the shared secret alone, which is what the \
             published cycle counts measure.\n\n",
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CSV: &str = "operation,cpu,instructions,n1,n2,count_n1,count_n2\n\
        x25519-shared,cortex-a53,300000,10,110,4000000,34000000\n\
        x25519-shared,cortex-a72,300000,10,110,4000000,34000000\n\
        x25519-shared,cortex-a53-nocrypto,300000,10,110,4000000,34000000\n\
        aead-aes128gcm-1024,cortex-a53,2000,100,1100,1,2\n\
        aead-aes128gcm-1024,cortex-a72,2000,100,1100,1,2\n\
        aead-aes128gcm-1024,cortex-a53-nocrypto,50000,100,1100,1,2\n";

    #[test]
    fn parses_and_renders_columns_ratio_and_citation() {
        let counts = InsnCounts::parse(CSV, "t.csv").unwrap();
        assert_eq!(counts.rows.len(), 6);
        let mut out = String::new();
        section(&mut out, &counts);
        assert!(out.starts_with("## A64 instruction counts\n"), "{out}");
        assert!(out.contains("| operation | cortex-a53 (instructions) | cortex-a72 (instructions) | cortex-a53-nocrypto (instructions) | cortex-a53-nocrypto / cortex-a53 | N1, N2 | published |"), "{out}");
        assert!(
            out.contains("| `aead-aes128gcm-1024` | 2000 | 2000 | 50000 | 25.00 | 100, 1100 |  |"),
            "{out}"
        );
        assert!(out.contains("514k cycles on Cortex-A53"), "{out}");
        assert!(
            out.contains("give the same count for every operation"),
            "{out}"
        );
    }

    #[test]
    fn a_differing_model_is_named() {
        let csv = CSV.replace(
            "aead-aes128gcm-1024,cortex-a72,2000",
            "aead-aes128gcm-1024,cortex-a72,2100",
        );
        let mut out = String::new();
        section(&mut out, &InsnCounts::parse(&csv, "t.csv").unwrap());
        assert!(
            out.contains("agree within 4.76 % (largest: `aead-aes128gcm-1024`, 2000 against 2100)"),
            "{out}"
        );
    }

    #[test]
    fn bad_files_say_where() {
        let err = InsnCounts::parse("op,cpu\n", "t.csv").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = InsnCounts::parse(&format!("{HEADER}\nx,cortex-a53,many,1,2,3,4\n"), "t.csv")
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "t.csv: line 2: instructions `many` is not a whole number"
        );
        let err = InsnCounts::parse(&format!("{HEADER}\nx,cortex-a53\n"), "t.csv").unwrap_err();
        assert!(err.to_string().contains("2 fields, expected 7"), "{err}");
    }

    #[test]
    fn a_run_without_the_file_has_none() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(InsnCounts::load(dir.path()).unwrap(), None);
    }
}
