//! Plots of a run (PNG and SVG, with plotters), all drawn from the results
//! alone: throughput (median, with min - max bars when cells were repeated),
//! throughput relative to plaintext with 95 % intervals, latency p50 and
//! broker CPU per message against payload for every mode; latency CDFs at
//! the smallest payload from the kept HdrHistograms; bars of handshake
//! bytes per direction beside cited protocols, handshakes per broker
//! CPU-second, memory per idle connection and set-up time. Axes are linear
//! from zero when the values span less than a factor of 20, else
//! logarithmic with labels at 1, 2 and 5 of each decade.
//!
//! Text needs a TrueType font; Debian's DejaVu Sans is used when present
//! (`fonts-dejavu-core`). Without one the plots are skipped and the report
//! says so: the tables carry the same figures.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use plotters::coord::types::RangedCoordf64;
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

pub(crate) type PlotResult<T> = Result<T, Box<dyn Error>>;

/// Registers a system font once; `None` when there is none.
pub(crate) fn font() -> Option<&'static str> {
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

pub(crate) const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(23, 190, 207),
    RGBColor(188, 189, 34),
    RGBColor(140, 86, 75),
];

/// Each mode keeps its colour across runs and figures, whatever the modes a run measured
/// (committed runs re-render to the same pixels when modes are added).
fn mode_color(mode: Mode) -> RGBColor {
    match mode {
        Mode::Plain => COLORS[0],
        Mode::Password => COLORS[1],
        Mode::Tls13 => COLORS[2],
        Mode::Mtls13 => COLORS[3],
        Mode::Tls12 => COLORS[4],
        Mode::Tls13Resume => COLORS[5],
        Mode::Tls13Chacha => COLORS[6],
        Mode::Lwa => COLORS[7],
        Mode::Tls13Psk => RGBColor(227, 119, 194),
        Mode::Lwa2 => BLACK,
    }
}

/// One line per series over categorical x values, log-scaled y.
struct LineChart<'a> {
    title: String,
    y_label: &'a str,
    x_labels: Vec<String>,
    series: Vec<(String, RGBColor, Vec<Option<f64>>)>,
    /// Per series and x: the (min, max) over repeats, drawn as a whisker (empty: none).
    whiskers: Vec<Vec<Option<(f64, f64)>>>,
    /// The x axis' name.
    x_desc: &'a str,
    /// Always a linear axis (ratios).
    linear: bool,
    /// A ratio chart: the axis includes 1, drawn as a reference line.
    around_one: bool,
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
            .filter(|v| *v > 0.0 && v.is_finite())
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo > hi { (1.0, 10.0) } else { (lo, hi) };
        let n = self.x_labels.len().max(1);
        let labels = self.x_labels.clone();
        let x_fmt = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                labels.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(80);
        let x_range = -0.3f64..(n as f64 - 0.7);
        // Values within a factor of 20 on a linear axis from zero, so that
        // every gridline is labelled; wider spans on a log axis with labels
        // at 1, 2 and 5 of each decade.
        if hi / lo <= 20.0 || self.linear {
            let (y0, y1) = if self.around_one {
                ((lo.min(1.0) - 0.05).max(0.0), hi.max(1.0) + 0.05)
            } else {
                (0.0, hi * 1.1)
            };
            let mut chart = builder.build_cartesian_2d(x_range, y0..y1)?;
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&x_fmt)
                .y_labels(10)
                .y_label_formatter(&|v| si(*v))
                .y_desc(self.y_label)
                .x_desc(self.x_desc)
                .label_style(("sans-serif", 14))
                .draw()?;
            if self.around_one {
                chart.draw_series(std::iter::once(PathElement::new(
                    [(-0.3, 1.0), (n as f64 - 0.7, 1.0)],
                    BLACK.mix(0.6).stroke_width(1),
                )))?;
            }
            self.draw_lines(&mut chart)?;
        } else {
            let (y0, y1) = (lo / 1.5, hi * 1.5);
            let mut chart = builder.build_cartesian_2d(x_range, (y0..y1).log_scale())?;
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&x_fmt)
                .y_labels(30)
                .light_line_style(TRANSPARENT)
                .y_label_formatter(&decade_label)
                .y_desc(self.y_label)
                .x_desc(self.x_desc)
                .label_style(("sans-serif", 14))
                .draw()?;
            self.draw_lines(&mut chart)?;
        }
        root.present()?;
        Ok(())
    }

    fn draw_lines<'a, DB: DrawingBackend + 'a, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
    ) -> PlotResult<()>
    where
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        // Each series nudged sideways, so lines with equal values stay apart.
        let k = self.series.len().max(1) as f64;
        for (s, (name, color, ys)) in self.series.iter().enumerate() {
            let dx = (s as f64 - (k - 1.0) / 2.0) * 0.025;
            let points: Vec<(f64, f64)> = ys
                .iter()
                .enumerate()
                .filter_map(|(i, y)| y.filter(|v| *v > 0.0).map(|v| (i as f64 + dx, v)))
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
        legend(chart, SeriesLabelPosition::LowerLeft)?;
        Ok(())
    }
}

/// One CDF line: name, colour, (µs, cumulative fraction) steps.
type CdfSeries = (String, RGBColor, Vec<(f64, f64)>);

/// Cumulative distributions of latency: one line per series, log-scaled µs
/// on x, the fraction of messages delivered within x on y.
struct CdfChart {
    title: String,
    series: Vec<CdfSeries>,
}

impl CdfChart {
    /// The steps of `h`: for each recorded bucket, its highest equivalent value and the
    /// fraction of samples at or below it, starting from (lowest sample, 0).
    fn steps(h: &hdrhistogram::Histogram<u64>) -> Vec<(f64, f64)> {
        let total = h.len().max(1) as f64;
        let mut points = vec![(h.min().max(1) as f64, 0.0)];
        let mut seen = 0u64;
        for v in h.iter_recorded() {
            seen += v.count_since_last_iteration();
            let x = h.highest_equivalent(v.value_iterated_to()).max(1) as f64;
            let y = seen as f64 / total;
            // A step: up at x, from the previous fraction.
            if let Some(&(_, prev)) = points.last() {
                points.push((x, prev));
            }
            points.push((x, y));
        }
        points
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let (lo, hi) = self
            .series
            .iter()
            .flat_map(|s| s.2.iter().map(|p| p.0))
            .filter(|v| *v > 0.0 && v.is_finite())
            .fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
        let (lo, hi) = if lo > hi { (1.0, 10.0) } else { (lo, hi) };
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(60);
        // Less than a decade: a linear axis, so that every gridline is labelled.
        if hi / lo < 10.0 {
            let pad = (hi - lo) * 0.05;
            let mut chart =
                builder.build_cartesian_2d((lo - pad).max(0.0)..hi + pad, 0.0f64..1.0)?;
            chart
                .configure_mesh()
                .x_labels(10)
                .x_label_formatter(&|v| si(*v))
                .x_desc("end-to-end latency, µs")
                .y_labels(11)
                .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
                .y_desc("messages delivered within")
                .label_style(("sans-serif", 14))
                .draw()?;
            self.draw_lines(&mut chart)?;
        } else {
            let mut chart =
                builder.build_cartesian_2d((lo / 1.3..hi * 1.3).log_scale(), 0.0f64..1.0)?;
            chart
                .configure_mesh()
                .x_labels(30)
                .light_line_style(TRANSPARENT)
                .x_label_formatter(&decade_label)
                .x_desc("end-to-end latency, µs (log scale)")
                .y_labels(11)
                .y_label_formatter(&|v| format!("{:.0} %", v * 100.0))
                .y_desc("messages delivered within")
                .label_style(("sans-serif", 14))
                .draw()?;
            self.draw_lines(&mut chart)?;
        }
        root.present()?;
        Ok(())
    }

    fn draw_lines<'a, DB: DrawingBackend + 'a, X>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<X, RangedCoordf64>>,
    ) -> PlotResult<()>
    where
        DB::ErrorType: 'static,
        X: Ranged<ValueType = f64>,
    {
        for (name, color, points) in &self.series {
            let style = ShapeStyle::from(color).stroke_width(2);
            chart
                .draw_series(LineSeries::new(points.clone(), style))?
                .label(name.clone())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 18, y)], style));
        }
        legend(chart, SeriesLabelPosition::LowerRight)?;
        Ok(())
    }
}

/// Where each bar of series `s` goes from `floor`: (lower-left, upper-right) corners.
type BarPlacer<'a> = dyn Fn(usize, &[Option<f64>], f64) -> Vec<((f64, f64), (f64, f64))> + 'a;

impl BarChart<'_> {
    /// One bar per series and category from `floor` (the axis' bottom), and the legend.
    fn draw_bars<'a, DB, Y>(
        &self,
        chart: &mut ChartContext<'a, DB, Cartesian2d<RangedCoordf64, Y>>,
        bars: &BarPlacer<'_>,
        floor: f64,
    ) -> PlotResult<()>
    where
        DB: DrawingBackend + 'a,
        DB::ErrorType: 'static,
        Y: Ranged<ValueType = f64>,
    {
        for (s, (name, color, ys)) in self.series.iter().enumerate() {
            let style = color.filled();
            chart
                .draw_series(
                    bars(s, ys, floor)
                        .into_iter()
                        .map(|(a, b)| Rectangle::new([a, b], style)),
                )?
                .label(name.clone())
                .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], style));
        }
        // 95 % intervals: a black whisker with caps over the middle of each bar.
        let width = 0.8 / self.series.len().max(1) as f64;
        for (s, per_category) in self.intervals.iter().enumerate() {
            for (i, ci) in per_category.iter().enumerate() {
                let Some((lo, hi)) = *ci else { continue };
                let x = i as f64 - 0.4 + s as f64 * width + width * 0.45;
                let cap = width * 0.2;
                let (lo, hi) = (lo.max(floor), hi.max(floor));
                let line = ShapeStyle::from(&BLACK).stroke_width(2);
                chart.draw_series([
                    PathElement::new(vec![(x, lo), (x, hi)], line),
                    PathElement::new(vec![(x - cap, lo), (x + cap, lo)], line),
                    PathElement::new(vec![(x - cap, hi), (x + cap, hi)], line),
                ])?;
            }
        }
        legend(chart, SeriesLabelPosition::UpperRight)
    }
}

/// A log axis' tick label: 1, 2 and 5 of each decade only (the rest stay unlabelled).
fn decade_label(v: &f64) -> String {
    let d = 10f64.powf(v.log10().floor());
    let m = (v / d).round();
    if (v / d - m).abs() < 0.05 && [1.0, 2.0, 5.0].contains(&m) {
        si(*v)
    } else {
        String::new()
    }
}

/// The series legend every chart draws, at `position`.
fn legend<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    position: SeriesLabelPosition,
) -> PlotResult<()>
where
    DB: DrawingBackend + 'a,
    DB::ErrorType: 'static,
    X: Ranged,
    Y: Ranged,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .position(position)
        .draw()?;
    Ok(())
}

/// `12.3k`, `4.5M`, `0.93`, `120`: short labels for axis ticks.
fn si(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        trim(format!("{:.1}", v / 1e6)) + "M"
    } else if a >= 1e4 {
        trim(format!("{:.1}", v / 1e3)) + "k"
    } else if a >= 10.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        trim(format!("{v:.1}"))
    } else {
        trim(format!("{v:.2}"))
    }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// Grouped vertical bars: one group per category, one bar per series;
/// cited (not measured) bars are grey and hatched by a lighter fill.
pub(crate) struct BarChart<'a> {
    pub(crate) title: String,
    pub(crate) y_label: &'a str,
    pub(crate) categories: Vec<String>,
    /// (series name, colour, value per category).
    pub(crate) series: Vec<(String, RGBColor, Vec<Option<f64>>)>,
    pub(crate) log: bool,
    /// Per series and category: a 95 % interval drawn as a whisker (empty: none).
    pub(crate) intervals: Vec<Vec<Option<(f64, f64)>>>,
}

impl BarChart<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> PlotResult<()>
    where
        DB::ErrorType: 'static,
    {
        root.fill(&WHITE)?;
        let values = self
            .series
            .iter()
            .flat_map(|s| s.2.iter().flatten().copied());
        let hi = values.fold(0.0f64, f64::max).max(1.0);
        // Whiskers reach above their bars (no intervals: the bars alone set the axis).
        let hi = self
            .intervals
            .iter()
            .flatten()
            .flatten()
            .fold(hi, |m, i| m.max(i.1));
        let n = self.categories.len().max(1);
        let k = self.series.len().max(1) as f64;
        let cats = self.categories.clone();
        let x_fmt = move |x: &f64| {
            let i = x.round();
            if (x - i).abs() < 0.01 && i >= 0.0 {
                cats.get(i as usize).cloned().unwrap_or_default()
            } else {
                String::new()
            }
        };
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(&self.title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(50)
            .y_label_area_size(80);
        let x_range = -0.6f64..(n as f64 - 0.4);
        let width = 0.8 / k;
        let bars = |s: usize, ys: &[Option<f64>], floor: f64| {
            ys.iter()
                .enumerate()
                .filter_map(|(i, y)| {
                    let y = (*y)?;
                    let x0 = i as f64 - 0.4 + s as f64 * width;
                    Some(((x0, floor), (x0 + width * 0.9, y.max(floor))))
                })
                .collect::<Vec<_>>()
        };
        let lo = self
            .series
            .iter()
            .flat_map(|s| s.2.iter().flatten().copied())
            .filter(|v| *v > 0.0)
            .fold(f64::MAX, f64::min)
            .min(hi);
        // A log axis only where the bars span more than a factor of 20 (as for the lines):
        // narrower spans read better from zero on a linear one.
        if self.log && hi / lo > 20.0 {
            // From the decade below the smallest bar, so its ticks (10, 20, 50) are labelled.
            let floor = 10f64.powf((lo / 2.0).log10().floor());
            let mut chart = builder.build_cartesian_2d(x_range, (floor..hi * 2.0).log_scale())?;
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&x_fmt)
                .y_labels(30)
                .light_line_style(TRANSPARENT)
                .y_label_formatter(&decade_label)
                .y_desc(self.y_label)
                .label_style(("sans-serif", 14))
                .disable_x_mesh()
                .draw()?;
            self.draw_bars(&mut chart, &bars, floor)?;
        } else {
            let mut chart = builder.build_cartesian_2d(x_range, 0.0..hi * 1.15)?;
            chart
                .configure_mesh()
                .x_labels(n)
                .x_label_formatter(&x_fmt)
                .y_labels(10)
                .y_label_formatter(&|v| si(*v))
                .y_desc(self.y_label)
                .label_style(("sans-serif", 14))
                .disable_x_mesh()
                .draw()?;
            self.draw_bars(&mut chart, &bars, 0.0)?;
        }
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
                x_desc: "payload",
                linear: false,
                around_one: false,
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
                x_desc: "payload",
                linear: false,
                around_one: false,
            };
            write_both(
                dir,
                &format!("latency-{broker}-qos{qos}"),
                &chart,
                &mut files,
            )?;
            // Latency CDF at the smallest payload (the seed's 30-byte reading), from the
            // histograms results.json keeps (runs before they were kept have none).
            if let Some(&payload) = payloads.first() {
                let series: Vec<_> = modes
                    .iter()
                    .filter_map(|&m| {
                        let text = r.cell(broker, m, payload, qos)?.latency_hdr.as_deref()?;
                        let h = super::results::decode_histogram(text).ok()?;
                        let name = format!("{m} (n = {})", h.len());
                        Some((name, mode_color(m), CdfChart::steps(&h)))
                    })
                    .collect();
                if !series.is_empty() {
                    let chart = CdfChart {
                        title: format!(
                            "{broker}: latency CDF, QoS {qos}, {} payload",
                            size_label(payload)
                        ),
                        series,
                    };
                    let stem = format!("latency-cdf-{broker}-qos{qos}");
                    let svg = dir.join(format!("{stem}.svg"));
                    chart.draw(&SVGBackend::new(&svg, (900, 560)).into_drawing_area())?;
                    let png = dir.join(format!("{stem}.png"));
                    chart.draw(&BitMapBackend::new(&png, (900, 560)).into_drawing_area())?;
                    files.push(svg);
                    files.push(png);
                }
            }
        }
    }
    files.extend(draw_summary(r, dir)?);
    Ok(files)
}

/// The figures a paper needs beside the per-cell lines: ratios with their
/// intervals, CPU per message, and bars for handshake bytes (with the cited
/// reference protocols), handshakes per broker CPU-second, memory per idle
/// connection and set-up time.
fn draw_summary(r: &RunResults, dir: &Path) -> PlotResult<Vec<PathBuf>> {
    use super::report::{brokers_of, cell_ratio, modes_of};
    let mut files = Vec::new();
    let payloads = &r.meta.profile.payloads;
    let x_labels: Vec<String> = payloads.iter().map(|p| size_label(*p)).collect();
    let b = BrokerKind::MqttLwa;
    let ours = modes_of(r, b);
    if ours.contains(&Mode::Plain) {
        for &qos in &r.meta.profile.qos {
            let modes: Vec<Mode> = ours.iter().copied().filter(|m| *m != Mode::Plain).collect();
            let ratio = |m: Mode, p: usize| {
                cell_ratio(r, (b, m), (b, Mode::Plain), p, qos, |c| c.msgs_per_s)
            };
            let chart = LineChart {
                title: format!(
                    "mqtt-lwa: throughput relative to plaintext, QoS {qos} (bars: 95 % interval)"
                ),
                y_label: "messages/s relative to plaintext",
                x_labels: x_labels.clone(),
                series: modes
                    .iter()
                    .map(|&m| {
                        let ys = payloads
                            .iter()
                            .map(|&p| ratio(m, p).map(|c| c.point))
                            .collect();
                        (m.to_string(), mode_color(m), ys)
                    })
                    .collect(),
                whiskers: modes
                    .iter()
                    .map(|&m| {
                        payloads
                            .iter()
                            .map(|&p| ratio(m, p).and_then(|c| c.interval))
                            .collect()
                    })
                    .collect(),
                x_desc: "payload",
                linear: true,
                around_one: true,
            };
            write_both(
                dir,
                &format!("relative-throughput-mqtt-lwa-qos{qos}"),
                &chart,
                &mut files,
            )?;
        }
    }
    for broker in brokers_of(r) {
        let modes = modes_of(r, broker);
        for &qos in &r.meta.profile.qos {
            let chart = LineChart {
                title: format!("{broker}: broker CPU per message, QoS {qos}"),
                y_label: "broker CPU µs per message",
                x_labels: x_labels.clone(),
                series: modes
                    .iter()
                    .map(|&m| {
                        let ys = payloads
                            .iter()
                            .map(|&p| {
                                r.cell(broker, m, p, qos)
                                    .map(|c| c.broker_cpu_s_per_1e5 * 10.0)
                            })
                            .collect();
                        (m.to_string(), mode_color(m), ys)
                    })
                    .collect(),
                whiskers: Vec::new(),
                x_desc: "payload",
                linear: false,
                around_one: false,
            };
            write_both(
                dir,
                &format!("cpu-per-message-{broker}-qos{qos}"),
                &chart,
                &mut files,
            )?;
        }
    }
    let brokers = brokers_of(r);
    let all_modes: Vec<Mode> = Mode::ALL
        .into_iter()
        .filter(|m| brokers.iter().any(|&k| r.mode(k, *m).is_some()))
        .collect();
    let names: Vec<String> = all_modes.iter().map(|m| m.to_string()).collect();
    let broker_series = |f: &dyn Fn(&super::results::ModeResult) -> Option<f64>| {
        brokers
            .iter()
            .enumerate()
            .map(|(i, &k)| {
                let ys: Vec<Option<f64>> = all_modes
                    .iter()
                    .map(|&m| r.mode(k, m).and_then(f))
                    .collect();
                (k.to_string(), COLORS[i % COLORS.len()], ys)
            })
            .collect::<Vec<_>>()
    };
    // Handshake bytes: ours by direction, then the cited protocols (grey).
    if !ours.is_empty() {
        // Our broker's modes, then those only Mosquitto serves (TLS with an external PSK).
        let measured: Vec<(BrokerKind, Mode)> = ours
            .iter()
            .map(|&m| (b, m))
            .chain(
                Mode::ALL
                    .into_iter()
                    .filter(|m| !b.supports(*m))
                    .filter(|m| r.mode(BrokerKind::Mosquitto, *m).is_some())
                    .map(|m| (BrokerKind::Mosquitto, m)),
            )
            .collect();
        let mut categories: Vec<String> = measured
            .iter()
            .map(|&(k, m)| {
                if k == b {
                    m.to_string()
                } else {
                    format!("{m} ({k})")
                }
            })
            .collect();
        let n_ours = categories.len();
        categories.extend(
            super::reference::HANDSHAKES
                .iter()
                .map(|h| format!("{}*", h.short)),
        );
        let pad = |mut v: Vec<Option<f64>>| {
            v.resize(categories.len(), None);
            v
        };
        let to_broker = pad(measured
            .iter()
            .map(|&(k, m)| r.mode(k, m).map(|x| x.handshake_bytes_to_broker as f64))
            .collect());
        let to_client = pad(measured
            .iter()
            .map(|&(k, m)| r.mode(k, m).map(|x| x.handshake_bytes_to_client as f64))
            .collect());
        let mut cited: Vec<Option<f64>> = vec![None; n_ours];
        cited.extend(
            super::reference::HANDSHAKES
                .iter()
                .map(|h| Some(f64::from(h.bytes))),
        );
        let chart = BarChart {
            title: "Handshake bytes (mqtt-lwa, measured on the socket; * cited, not measured)"
                .into(),
            y_label: "bytes",
            categories,
            series: vec![
                ("client to broker".into(), COLORS[0], to_broker),
                ("broker to client".into(), COLORS[1], to_client),
                (
                    "cited total (own messages only)".into(),
                    RGBColor(150, 150, 150),
                    cited,
                ),
            ],
            log: true,
            intervals: Vec::new(),
        };
        write_bars(dir, "handshake-bytes", &chart, &mut files)?;
    }
    let storm = broker_series(&|x| x.storm.as_ref().and_then(|s| s.handshakes_per_broker_cpu_s));
    if storm.iter().any(|s| s.2.iter().any(Option::is_some)) {
        let chart = BarChart {
            title: "Handshakes per broker CPU-second (connection storm)".into(),
            y_label: "handshakes per broker CPU-second",
            categories: names.clone(),
            series: storm,
            log: true,
            intervals: Vec::new(),
        };
        write_bars(dir, "handshakes-per-cpu-second", &chart, &mut files)?;
    }
    let memory = broker_series(&|x| x.rss_bytes_per_idle_connection);
    if memory.iter().any(|s| s.2.iter().any(Option::is_some)) {
        let chart = BarChart {
            title: format!(
                "Broker memory per idle connection ({} connections)",
                r.meta
                    .profile
                    .idle_connections
                    .first()
                    .copied()
                    .unwrap_or(0)
            ),
            y_label: "bytes of RSS per idle connection",
            categories: names.clone(),
            series: memory,
            log: false,
            intervals: Vec::new(),
        };
        write_bars(dir, "memory-per-idle-connection", &chart, &mut files)?;
    }
    let setup = broker_series(&|x| Some(x.setup_ms.p50));
    let chart = BarChart {
        title: format!(
            "Connection set-up until the first publish, p50 ({})",
            r.meta.link
        ),
        y_label: "ms",
        categories: names,
        series: setup,
        // Password logins take tens of ms, the others fractions of one.
        log: true,
        intervals: Vec::new(),
    };
    write_bars(dir, "setup-time", &chart, &mut files)?;
    Ok(files)
}

/// Writes `stem.svg` and `stem.png` of a bar chart into `dir`.
pub(crate) fn write_bars(
    dir: &Path,
    stem: &str,
    chart: &BarChart<'_>,
    out: &mut Vec<PathBuf>,
) -> PlotResult<()> {
    // 130 px per category at least, so that labels such as "tls13-psk (mosquitto)" stay apart.
    let size = (1000.max(130 * chart.categories.len() as u32), 560);
    let svg = dir.join(format!("{stem}.svg"));
    chart.draw(&SVGBackend::new(&svg, size).into_drawing_area())?;
    let png = dir.join(format!("{stem}.png"));
    chart.draw(&BitMapBackend::new(&png, size).into_drawing_area())?;
    out.push(svg);
    out.push(png);
    Ok(())
}
