//! The repeats' CSV files: `repeats.csv` (every repeat) and `spread.csv`.

use super::*;

/// `repeats.csv`: every repeat of every cell, with the load average around its block.
pub fn repeats_csv(d: &RepeatData) -> String {
    let mut out = String::from(
        "link,broker,mode,payload,qos,repeat,sent,received,seconds,msgs_per_s,latency_us_p50,\
         latency_us_p99,broker_cpu_s_per_1e5,client_cpu_s_per_1e5,broker_cpu_ticks,\
         load1_start,load1_end,broker_host_load1_start,broker_host_load1_end,other_cpu_share\n",
    );
    for r in &d.rows {
        let c = &r.cell;
        let load = d.loads.iter().find(|l| {
            l.link == c.link && l.repeat == r.repeat && l.broker == c.broker && l.mode == c.mode
        });
        let one = |l: Option<LoadAvg>| l.map(|l| format!("{:.2}", l.one)).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{:.6},{:.1},{:.1},{:.1},{:.4},{:.4},{},{},{},{},{},{}",
            c.link,
            c.broker,
            c.mode,
            c.payload,
            c.qos,
            r.repeat,
            c.sent,
            c.received,
            c.seconds,
            c.msgs_per_s,
            c.latency_us.p50,
            c.latency_us.p99,
            c.broker_cpu_s_per_1e5,
            c.client_cpu_s_per_1e5,
            c.broker_cpu_ticks,
            one(load.and_then(|l| l.start)),
            one(load.and_then(|l| l.end)),
            one(load.and_then(|l| l.broker_host_start)),
            one(load.and_then(|l| l.broker_host_end)),
            load.and_then(|l| l.other_cpu_share)
                .map(|s| format!("{s:.3}"))
                .unwrap_or_default(),
        );
    }
    out
}

/// `spread.csv`: median, quartiles and range of throughput and latency per cell.
pub fn spread_csv(d: &RepeatData) -> String {
    let mut out =
        String::from("link,broker,mode,payload,qos,repeats,figure,median,min,max,q1,q3\n");
    for s in &d.spreads {
        for (name, v) in [
            ("msgs_per_s", s.msgs_per_s),
            ("latency_us_p50", s.latency_p50_us),
            ("latency_us_p99", s.latency_p99_us),
            ("broker_cpu_s_per_1e5", s.broker_cpu_s_per_1e5),
        ] {
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{name},{:.3},{:.3},{:.3},{:.3},{:.3}",
                s.link,
                s.broker,
                s.mode,
                s.payload,
                s.qos,
                s.repeats,
                v.median,
                v.min,
                v.max,
                v.q1,
                v.q3
            );
        }
    }
    out
}
