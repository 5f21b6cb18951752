//! Everything a run writes besides `results.json`, drawn from the results
//! alone: `report.md`, the CSV files, the headline tables (`headline.csv`,
//! `headline.tex`) and the plots. `mqtt-lwa experiment report DIR` calls
//! [`rerender`] to redo them from a run directory's `results.json` without
//! measuring anything, so a committed run can be checked (and its report
//! improved) from its data.

use std::fmt::Write as _;
use std::io;
use std::path::{Path, PathBuf};

use super::insn_counts::InsnCounts;
use super::matrix::{BrokerKind, Mode};
use super::report::{cell_ratio, modes_of};
use super::results::RunResults;
use super::stats::RatioCi;

/// Writes the tables, headline files and `report.md` into `dir` (not
/// `results.json`, not the plots); returns the files written. An
/// `insn-counts.csv` in `dir` (`experiments/insn-count/run.sh --out DIR`) adds its
/// section to the report.
pub fn write_outputs(results: &RunResults, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let insn = InsnCounts::load(dir)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
    let mut written = results.write_tables(dir)?;
    for (name, text) in [
        ("headline.csv", headline_csv(results)),
        ("headline.tex", headline_tex(results)),
        ("report.md", super::report::render(results, insn.as_ref())),
    ] {
        let path = dir.join(name);
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

/// Re-renders `dir` from `dir/results.json`: report, CSV, LaTeX and plots.
/// Returns the files written.
pub fn rerender(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let path = dir.join("results.json");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    // A gateway run (`experiment gateway`) has results of its own.
    if let Some(gateway) = super::gateway::parse(&text) {
        let results = gateway.map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", path.display()),
            )
        })?;
        return results.render(dir);
    }
    let results: RunResults = serde_json::from_str(&text).map_err(|e| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{}: {e}", path.display()),
        )
    })?;
    let mut files = match super::plots::draw_all(&results.for_link(&results.primary_link()), dir) {
        Ok(f) => f,
        Err(e) => {
            // The run recorded whether its own plots were drawn; a re-render
            // without a font says so here and leaves the data alone.
            eprintln!("plots not drawn: {e}");
            Vec::new()
        }
    };
    files.extend(write_outputs(&results, dir)?);
    Ok(files)
}

/// One headline row per (broker, mode) on the run's first link.
struct Headline {
    broker: BrokerKind,
    mode: Mode,
    setup_p50_ms: f64,
    bytes_to_broker: u64,
    bytes_to_client: u64,
    handshakes_per_cpu_s: Option<f64>,
    rss_per_idle: Option<f64>,
    /// 30 B throughput relative to plaintext on the same broker, per QoS.
    vs_plain: Vec<(u8, Option<RatioCi>)>,
}

fn headlines(all: &RunResults) -> (Vec<u8>, Vec<Headline>) {
    let r = all.for_link(&all.primary_link());
    let payload = r.meta.profile.payloads.first().copied().unwrap_or(30);
    let qos = r.meta.profile.qos.clone();
    let mut rows = Vec::new();
    for broker in super::report::brokers_of(&r) {
        for mode in modes_of(&r, broker) {
            let Some(m) = r.mode(broker, mode) else {
                continue;
            };
            rows.push(Headline {
                broker,
                mode,
                setup_p50_ms: m.setup_ms.p50,
                bytes_to_broker: m.handshake_bytes_to_broker,
                bytes_to_client: m.handshake_bytes_to_client,
                handshakes_per_cpu_s: m.storm.as_ref().and_then(|s| s.handshakes_per_broker_cpu_s),
                rss_per_idle: m.rss_bytes_per_idle_connection,
                vs_plain: qos
                    .iter()
                    .map(|&q| {
                        (
                            q,
                            cell_ratio(
                                &r,
                                (broker, mode),
                                (broker, Mode::Plain),
                                payload,
                                q,
                                |c| c.msgs_per_s,
                            ),
                        )
                    })
                    .collect(),
            });
        }
    }
    (qos, rows)
}

fn opt(v: Option<f64>, digits: usize) -> String {
    v.map(|v| format!("{v:.digits$}")).unwrap_or_default()
}

/// `headline.csv`: the numbers a paper quotes, one row per (broker, mode),
/// ratios with their interval bounds in columns of their own.
pub fn headline_csv(all: &RunResults) -> String {
    let (qos, rows) = headlines(all);
    let mut out = String::from(
        "broker,mode,setup_p50_ms,handshake_bytes_to_broker,handshake_bytes_to_client,\
         handshakes_per_broker_cpu_s,rss_bytes_per_idle_connection",
    );
    for q in &qos {
        let _ = write!(
            out,
            ",vs_plain_30B_qos{q},vs_plain_30B_qos{q}_ci_low,vs_plain_30B_qos{q}_ci_high"
        );
    }
    out.push('\n');
    for h in rows {
        let _ = write!(
            out,
            "{},{},{:.3},{},{},{},{}",
            h.broker,
            h.mode,
            h.setup_p50_ms,
            h.bytes_to_broker,
            h.bytes_to_client,
            opt(h.handshakes_per_cpu_s, 1),
            opt(h.rss_per_idle, 1),
        );
        for (_, ci) in &h.vs_plain {
            let (p, lo, hi) = match ci {
                Some(c) => (
                    Some(c.point),
                    c.interval.map(|i| i.0),
                    c.interval.map(|i| i.1),
                ),
                None => (None, None, None),
            };
            let _ = write!(out, ",{},{},{}", opt(p, 4), opt(lo, 4), opt(hi, 4));
        }
        out.push('\n');
    }
    out
}

/// `headline.tex`: the same as a booktabs table (`\usepackage{booktabs}`).
pub fn headline_tex(all: &RunResults) -> String {
    let (qos, rows) = headlines(all);
    let payload = all.meta.profile.payloads.first().copied().unwrap_or(30);
    let mut out = String::new();
    let _ = writeln!(
        out,
        "% Generated by `mqtt-lwa experiment` from results.json of run {}; do not edit.",
        all.meta.run
    );
    out.push_str("\\begin{table}\n\\centering\n\\small\n");
    let _ = writeln!(
        out,
        "\\caption{{What each security mode costs (run \\texttt{{{}}}): set-up time (p50), \
         handshake bytes on the socket, handshakes per broker CPU-second, broker memory per idle \
         connection, and {payload}-byte throughput relative to plaintext on the same broker, \
         median over repeats with 95\\,\\% bootstrap interval.}}",
        tex_escape(&all.meta.run)
    );
    let _ = writeln!(out, "\\begin{{tabular}}{{ll{}}}", "r".repeat(5 + qos.len()));
    out.push_str("\\toprule\n");
    let mut header = String::from(
        "broker & mode & set-up (ms) & bytes $\\rightarrow$ broker & bytes $\\rightarrow$ client \
         & handshakes/CPU-s & B/idle conn.",
    );
    for q in &qos {
        let _ = write!(header, " & QoS {q} / plain");
    }
    out.push_str(&header);
    out.push_str(" \\\\\n\\midrule\n");
    let mut last = None;
    for h in rows {
        if last.is_some() && last != Some(h.broker) {
            out.push_str("\\midrule\n");
        }
        last = Some(h.broker);
        let mut line = format!(
            "{} & {} & {:.2} & {} & {} & {} & {}",
            h.broker,
            tex_escape(h.mode.name()),
            h.setup_p50_ms,
            h.bytes_to_broker,
            h.bytes_to_client,
            h.handshakes_per_cpu_s
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "--".into()),
            h.rss_per_idle
                .map(|v| format!("{v:.0}"))
                .unwrap_or_else(|| "--".into()),
        );
        for (_, ci) in &h.vs_plain {
            let cell = match ci {
                Some(RatioCi {
                    point,
                    interval: Some((lo, hi)),
                    ..
                }) => format!("{point:.2} [{lo:.2}, {hi:.2}]"),
                Some(c) => format!("{:.2}", c.point),
                None => "--".into(),
            };
            let _ = write!(line, " & {cell}");
        }
        out.push_str(&line);
        out.push_str(" \\\\\n");
    }
    out.push_str("\\bottomrule\n\\end{tabular}\n\\end{table}\n");
    out
}

fn tex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '_' | '%' | '&' | '#' | '$' | '{' | '}' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tex_escapes_what_latex_would_read_as_markup() {
        assert_eq!(tex_escape("full-2026_x%"), "full-2026\\_x\\%");
    }
}
