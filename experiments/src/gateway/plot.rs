//! The gateway run's figures (PNG and SVG, [`crate::plots`]' bar charts and fonts): one
//! bar per route and mode, the median over repeats, a whisker for its 95 % interval.

use std::path::{Path, PathBuf};

use plotters::style::RGBColor;

use super::report::{estimate, Metric};
use super::{GatewayResults, Route};
use crate::plots::{font, write_bars, BarChart, PlotResult, COLORS};

fn route_color(route: Route) -> RGBColor {
    match route {
        Route::GatewayMosquitto => COLORS[7],
        Route::MqttLwa => COLORS[0],
        Route::Mosquitto => COLORS[1],
    }
}

/// One chart of `metric`: categories are the run's modes, one series per route that has it.
fn chart<'a>(
    r: &GatewayResults,
    title: String,
    y_label: &'a str,
    metric: Metric,
    routes: &[Route],
) -> BarChart<'a> {
    let modes = &r.meta.settings.modes;
    let mut series = Vec::new();
    let mut intervals = Vec::new();
    for &route in routes {
        let est: Vec<_> = modes
            .iter()
            .map(|&m| estimate(r, route, m, metric))
            .collect();
        if est.iter().all(Option::is_none) {
            continue;
        }
        series.push((
            route.to_string(),
            route_color(route),
            est.iter().map(|e| e.map(|e| e.point)).collect(),
        ));
        intervals.push(est.iter().map(|e| e.and_then(|e| e.interval)).collect());
    }
    BarChart {
        title,
        y_label,
        categories: modes.iter().map(|m| m.to_string()).collect(),
        series,
        log: false,
        intervals,
    }
}

/// Draws every figure into `dir`; returns the files written.
pub fn draw_all(r: &GatewayResults, dir: &Path) -> PlotResult<Vec<PathBuf>> {
    if font().is_none() {
        return Err("no TrueType font found (install fonts-dejavu-core)".into());
    }
    let payload = r.meta.settings.payload;
    let mut files = Vec::new();
    let all = Route::ALL;
    let charts = [
        (
            "gateway-latency-p50",
            chart(
                r,
                format!(
                    "Publish-to-receive latency p50, QoS 1, {payload} B (whiskers: 95 % interval)"
                ),
                "latency p50 (µs)",
                Metric::LatencyP50,
                &all,
            ),
        ),
        (
            "gateway-latency-p99",
            chart(
                r,
                format!(
                    "Publish-to-receive latency p99, QoS 1, {payload} B (whiskers: 95 % interval)"
                ),
                "latency p99 (µs)",
                Metric::LatencyP99,
                &all,
            ),
        ),
        (
            "gateway-throughput-qos0",
            chart(
                r,
                format!("Throughput, QoS 0, {payload} B, one publisher and one subscriber"),
                "messages/s",
                Metric::MsgsPerS(0),
                &all,
            ),
        ),
        (
            "gateway-throughput-qos1",
            chart(
                r,
                format!("Throughput, QoS 1, {payload} B, one publisher and one subscriber"),
                "messages/s",
                Metric::MsgsPerS(1),
                &all,
            ),
        ),
        (
            "gateway-msgs-per-cpu-second-qos1",
            chart(
                r,
                "Messages per CPU-second of the process the clients reach, QoS 1".into(),
                "messages per CPU-second (gateway or broker)",
                Metric::MsgsPerFrontCpuS(1),
                &all,
            ),
        ),
        (
            "gateway-handshakes-per-cpu-second",
            chart(
                r,
                "Handshakes per CPU-second of the process the clients reach (storm)".into(),
                "handshakes per CPU-second (gateway or broker)",
                Metric::HandshakesPerFrontCpuS,
                &all,
            ),
        ),
    ];
    for (stem, c) in &charts {
        write_bars(dir, stem, c, &mut files)?;
    }
    if !r.scaling.is_empty() {
        let modes = &r.meta.settings.scaling_modes;
        let mut series = Vec::new();
        let mut intervals = Vec::new();
        for (i, g) in [1usize, 2].into_iter().enumerate() {
            let est: Vec<_> = modes
                .iter()
                .map(|&m| super::report::scaling_estimate(r, m, g, Metric::MsgsPerS(1)))
                .collect();
            series.push((
                format!("{g} gateway{}", if g == 1 { "" } else { "s" }),
                COLORS[(i + 2) % COLORS.len()],
                est.iter().map(|e| e.map(|e| e.point)).collect(),
            ));
            intervals.push(est.iter().map(|e| e.and_then(|e| e.interval)).collect());
        }
        let c = BarChart {
            title: format!(
                "1 and 2 gateways in front of one Mosquitto: QoS 1 throughput, 2 client pairs ({} cores)",
                r.meta
                    .machine
                    .iter()
                    .find(|(k, _)| k == "cores available")
                    .map_or("?", |(_, v)| v.as_str())
            ),
            y_label: "messages/s (both pairs)",
            categories: modes.iter().map(|m| m.to_string()).collect(),
            series,
            log: false,
            intervals,
        };
        write_bars(dir, "gateway-scaling", &c, &mut files)?;
    }
    Ok(files)
}
