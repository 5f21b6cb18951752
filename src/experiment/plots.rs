//! Plots of a run (PNG and SVG, with plotters): throughput (median, with
//! min - max bars when cells were repeated) and latency per payload size for
//! every mode, connection set-up time per mode.
//!
//! Text needs a TrueType font; Debian's DejaVu Sans is used when present
//! (`fonts-dejavu-core`). Without one the plots are skipped and the report
//! says so: the tables carry the same figures.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::matrix::{BrokerKind, Mode};
use super::results::RunResults;

/// Fonts tried, in order.
const FONT_FILES: [&str; 3] = [
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
];

type PlotResult<T> = Result<T, Box<dyn Error>>;

/// Registers a system font once; `None` when there is none.
fn font() -> Option<&'static str> {
    static FONT: OnceLock<Option<&'static str>> = OnceLock::new();
    *FONT.get_or_init(|| {
        for path in FONT_FILES {
            if let Ok(bytes) = std::fs::read(path) {
                // Leaked once per process: plotters keeps fonts for its lifetime.
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok() {
                    return Some(path);
                }
            }
        }
        None
    })
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

fn mode_color(mode: Mode) -> RGBColor {
    let i = Mode::ALL.iter().position(|m| *m == mode).unwrap_or(0);
    COLORS.get(i).copied().unwrap_or(BLACK)
}

/// One line per series over categorical x values, log-scaled y.
struct LineChart<'a> {
    title: String,
    y_label: &'a str,
    x_labels: Vec<String>,
    series: Vec<(String, RGBColor, Vec<Option<f64>>)>,
    /// Per series and x: the (min, max) over repeats, drawn as a whisker (empty: none).
    whiskers: Vec<Vec<Option<(f64, f64)>>>,
}

impl LineChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let values = self
            .series
            .iter()
            .flat_map(|s| s.2.iter().flatten().copied())
            .chain(
                self.whiskers
                    .iter()
                    .flat_map(|w| w.iter().flatten().flat_map(|(a, b)| [*a, *b])),
            );
        let (lo, hi) = values
            .filter(|v| *v > 0.0)
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo > hi {
            (1.0, 10.0)
        } else {
            (lo / 1.5, hi * 1.5)
        };
        let n = self.x_labels.len().max(1);
        let mut chart = ChartBuilder::on(root)
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(-0.3f64..(n as f64 - 0.7), (lo..hi).log_scale())?;
        let labels = self.x_labels.clone();
        chart
            .configure_mesh()
            .x_labels(n)
            .x_label_formatter(&move |x| {
                let i = x.round();
                if (x - i).abs() < 0.01 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .y_desc(self.y_label)
            .x_desc("payload")
            .draw()?;
        for (name, color, ys) in &self.series {
            let points: Vec<(f64, f64)> = ys
                .iter()
                .enumerate()
                .filter_map(|(i, y)| y.filter(|v| *v > 0.0).map(|v| (i as f64, v)))
                .collect();
            let style = ShapeStyle::from(color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
            chart.draw_series(points.iter().map(|p| Circle::new(*p, 3, style.filled())))?;
        }
        // Min - max over the repeats, each series nudged sideways so whiskers do not overlap.
        let k = self.whiskers.len().max(1) as f64;
        for (s, ((_, color, _), whisker)) in self.series.iter().zip(&self.whiskers).enumerate() {
            let dx = (s as f64 - (k - 1.0) / 2.0) * 0.025;
            let style = ShapeStyle::from(color).stroke_width(1);
            for (i, range) in whisker.iter().enumerate() {
                let Some((lo, hi)) = range.filter(|(lo, hi)| *lo > 0.0 && hi > lo) else {
                    continue;
                };
                let x = i as f64 + dx;
                chart.draw_series(std::iter::once(PathElement::new([(x, lo), (x, hi)], style)))?;
            }
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(SeriesLabelPosition::UpperRight)
            .draw()?;
        root.present()?;
        Ok(())
    }
}

fn size_label(bytes: usize) -> String {
    if bytes >= 1024 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

/// Writes `stem.svg` and `stem.png` into `dir`.
fn write_both(
    dir: &Path,
    stem: &str,
    chart: &LineChart<'_>,
    out: &mut Vec<PathBuf>,
) -> PlotResult<()> {
    let svg = dir.join(format!("{stem}.svg"));
    chart.draw(&SVGBackend::new(&svg, (900, 560)).into_drawing_area())?;
    let png = dir.join(format!("{stem}.png"));
    chart.draw(&BitMapBackend::new(&png, (900, 560)).into_drawing_area())?;
    out.push(svg);
    out.push(png);
    Ok(())
}

/// Draws every plot of `r` into `dir`; returns the files written.
pub fn draw_all(r: &RunResults, dir: &Path) -> PlotResult<Vec<PathBuf>> {
    if font().is_none() {
        return Err("no TrueType font found (install fonts-dejavu-core)".into());
    }
    let mut files = Vec::new();
    let payloads = &r.meta.profile.payloads;
    let x_labels: Vec<String> = payloads.iter().map(|p| size_label(*p)).collect();
    for broker in [BrokerKind::MqttLwa, BrokerKind::Mosquitto] {
        let modes: Vec<Mode> = Mode::ALL
            .into_iter()
            .filter(|m| r.mode(broker, *m).is_some())
            .collect();
        if modes.is_empty() {
            continue;
        }
        for &qos in &r.meta.profile.qos {
            let series = |f: &dyn Fn(&super::results::CellResult) -> f64| {
                modes
                    .iter()
                    .map(|&m| {
                        let ys = payloads
                            .iter()
                            .map(|&p| r.cell(broker, m, p, qos).map(f))
                            .collect();
                        (m.to_string(), mode_color(m), ys)
                    })
                    .collect::<Vec<_>>()
            };
            let chart = LineChart {
                title: if r.meta.profile.repeats > 1 {
                    format!("{broker}: throughput, QoS {qos} (median; bars: min - max of repeats)")
                } else {
                    format!("{broker}: throughput, QoS {qos}")
                },
                y_label: "messages/s",
                x_labels: x_labels.clone(),
                series: series(&|c| c.msgs_per_s),
                whiskers: modes
                    .iter()
                    .map(|&m| {
                        payloads
                            .iter()
                            .map(|&p| {
                                r.repeats
                                    .spreads
                                    .iter()
                                    .find(|s| {
                                        s.broker == broker
                                            && s.mode == m
                                            && s.payload == p
                                            && s.qos == qos
                                            && s.repeats > 1
                                    })
                                    .map(|s| (s.msgs_per_s.min, s.msgs_per_s.max))
                            })
                            .collect()
                    })
                    .collect(),
            };
            write_both(
                dir,
                &format!("throughput-{broker}-qos{qos}"),
                &chart,
                &mut files,
            )?;
            let chart = LineChart {
                title: format!("{broker}: end-to-end latency p50, QoS {qos}"),
                y_label: "µs",
                x_labels: x_labels.clone(),
                series: series(&|c| c.latency_us.p50),
                whiskers: Vec::new(),
            };
            write_both(
                dir,
                &format!("latency-{broker}-qos{qos}"),
                &chart,
                &mut files,
            )?;
        }
    }
    Ok(files)
}
