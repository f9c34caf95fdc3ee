//! SVG charts, drawn with plotters' SVG backend: the round charts of a run (accuracy and
//! loss per round, global on the test set and per client on its own training data) and the
//! line charts of the reproduction report, from one [`Chart`] description.
//!
//! Readability rules every chart follows: integer axes (rounds, epochs) tick on integers
//! only; a log axis ticks on 1-2-5 multiples of powers of ten and labels them as plain
//! numbers; the value axis is zoomed to the data (accuracy from round 1 on, since the
//! initial model's ~10 % would flatten every later round into one line); the legend sits in
//! its own panel right of the plot, so it never hides a point.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged};
use plotters::prelude::*;

use aggregator::history::{ClientStatus, RoundRecord};

/// How an axis maps values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scale {
    /// Linear, ticks anywhere.
    Linear,
    /// Linear, ticks on integers only (rounds, epochs).
    Integer,
    /// Logarithmic (values must be > 0; others are dropped).
    Log,
}

/// Marker drawn at each point of a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marker {
    /// Filled circle.
    Circle,
    /// Filled triangle.
    Triangle,
    /// A cross.
    Cross,
    /// No marker.
    None,
}

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Legend text.
    pub name: String,
    /// (x, y) points, drawn in order.
    pub points: Vec<(f64, f64)>,
    /// Whether consecutive points are joined.
    pub line: bool,
    /// Marker at each point.
    pub marker: Marker,
    /// Palette index (series that belong together share a colour).
    pub color: usize,
}

impl Series {
    /// A line with circle markers in palette colour `color`.
    pub fn line(name: impl Into<String>, points: Vec<(f64, f64)>, color: usize) -> Self {
        Self {
            name: name.into(),
            points,
            line: true,
            marker: Marker::Circle,
            color,
        }
    }
}

/// A chart: title, axes and series.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    /// Caption above the plot.
    pub title: String,
    /// X axis description, with unit.
    pub x_label: String,
    /// Y axis description, with unit.
    pub y_label: String,
    /// X axis mapping.
    pub x_scale: Scale,
    /// Y axis mapping.
    pub y_scale: Scale,
    /// The lines.
    pub series: Vec<Series>,
}

const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(23, 190, 207),
    RGBColor(127, 127, 127),
];

fn err(path: &Path, e: impl std::fmt::Display) -> anyhow::Error {
    anyhow::anyhow!("drawing {}: {e}", path.display())
}

/// An axis: data range (in plotted space: log10 for log axes) and its tick values.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Plotted range.
    pub range: std::ops::Range<f64>,
    /// Tick positions, in plotted space.
    pub ticks: Vec<f64>,
    /// How values are mapped.
    pub scale: Scale,
}

impl Axis {
    /// The axis for `values` (data space), padded by 5 % on linear axes.
    pub fn fit(values: impl Iterator<Item = f64>, scale: Scale) -> Self {
        let (mut lo, mut hi) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.filter_map(|v| to_plot(v, scale)) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
        if !lo.is_finite() {
            (lo, hi) = (0.0, 1.0);
        }
        match scale {
            Scale::Integer => {
                let (lo, hi) = (lo.floor(), hi.ceil().max(lo.floor() + 1.0));
                let step = nice_step((hi - lo) / 12.0).max(1.0);
                let ticks = multiples(lo, hi, step);
                Self {
                    range: (lo - 0.3)..(hi + 0.3),
                    ticks,
                    scale,
                }
            }
            Scale::Linear => {
                let span = (hi - lo).max(hi.abs() * 1e-3).max(1e-9);
                let (lo, hi) = (lo - span * 0.05, hi + span * 0.05);
                let step = nice_step((hi - lo) / 6.0);
                Self {
                    range: lo..hi,
                    ticks: multiples(lo, hi, step),
                    scale,
                }
            }
            Scale::Log => {
                let (lo, hi) = (lo - 0.05, hi.max(lo + 0.3) + 0.05);
                let decades = hi - lo;
                let mantissas: &[f64] = if decades > 4.0 {
                    &[1.0]
                } else if decades > 1.5 {
                    &[1.0, 2.0, 5.0]
                } else {
                    &[1.0, 1.5, 2.0, 3.0, 5.0, 7.0]
                };
                let mut ticks = Vec::new();
                for k in (lo.floor() as i32)..=(hi.ceil() as i32) {
                    for m in mantissas {
                        let t = (m * 10f64.powi(k)).log10();
                        if t >= lo && t <= hi {
                            ticks.push(t);
                        }
                    }
                }
                Self {
                    range: lo..hi,
                    ticks,
                    scale,
                }
            }
        }
    }

    /// The label of a tick.
    pub fn label(&self, t: f64) -> String {
        match self.scale {
            Scale::Integer => format!("{}", t.round() as i64),
            Scale::Linear => format_number(t),
            Scale::Log => format_number(10f64.powf(t)),
        }
    }
}

fn to_plot(v: f64, scale: Scale) -> Option<f64> {
    match scale {
        _ if !v.is_finite() => None,
        Scale::Log if v <= 0.0 => None,
        Scale::Log => Some(v.log10()),
        _ => Some(v),
    }
}

/// 1, 2 or 5 times a power of ten, at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if raw <= 0.0 || !raw.is_finite() {
        return 1.0;
    }
    let p = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= raw * 0.999)
        .unwrap_or(10.0 * p)
}

fn multiples(lo: f64, hi: f64, step: f64) -> Vec<f64> {
    let mut t = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while t <= hi + step * 1e-9 && out.len() < 100 {
        out.push(if t.abs() < step * 1e-9 { 0.0 } else { t });
        t += step;
    }
    out
}

/// A number as a reader writes it: no trailing zeros, thousands unseparated, 3 significant
/// digits below 100.
pub fn format_number(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || (a - a.round()).abs() < 1e-9 {
        format!("{:.0}", v)
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else if a >= 0.01 {
        format!("{v:.3}")
    } else if a >= 1e-6 {
        format!("{v:.7}")
    } else {
        format!("{v:.1e}")
    };
    if s.contains('.') && !s.contains('e') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Draws `chart` into the SVG file `path`.
pub fn draw(chart: &Chart, path: &Path) -> anyhow::Result<()> {
    let plotted: Vec<Vec<(f64, f64)>> = chart
        .series
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter_map(|&(x, y)| {
                    Some((to_plot(x, chart.x_scale)?, to_plot(y, chart.y_scale)?))
                })
                .collect()
        })
        .collect();
    let x = Axis::fit(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.0)),
        chart.x_scale,
    );
    let y = Axis::fit(
        chart
            .series
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1)),
        chart.y_scale,
    );
    let root = SVGBackend::new(path, (1040, 540)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(path, e))?;
    let (plot_area, legend_area) = root.split_horizontally(700);
    let mut ctx = ChartBuilder::on(&plot_area)
        .caption(&chart.title, ("sans-serif", 22))
        .margin(14)
        .x_label_area_size(44)
        .y_label_area_size(70)
        .build_cartesian_2d(x.clone(), y.clone())
        .map_err(|e| err(path, e))?;
    ctx.configure_mesh()
        .x_desc(&chart.x_label)
        .y_desc(&chart.y_label)
        .x_label_formatter(&|v| x.label(*v))
        .y_label_formatter(&|v| y.label(*v))
        .label_style(("sans-serif", 14))
        .axis_desc_style(("sans-serif", 16))
        .bold_line_style(BLACK.mix(0.12))
        .draw()
        .map_err(|e| err(path, e))?;
    for (s, pts) in chart.series.iter().zip(&plotted) {
        let color = COLORS[s.color % COLORS.len()];
        if s.line {
            ctx.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))
                .map_err(|e| err(path, e))?;
        }
        draw_markers(&mut ctx, pts, s.marker, color).map_err(|e| err(path, e))?;
    }
    draw_legend(&legend_area, &chart.series).map_err(|e| err(path, e))?;
    root.present().map_err(|e| err(path, e))?;
    Ok(())
}

type Ctx<'a, 'b> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<Axis, Axis>>;

/// The axis as a plotters coordinate: linear over the plotted range, ticks exactly where
/// [`Axis::fit`] put them (plotters' own key points would tick rounds at 1.5).
impl Ranged for Axis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, v: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let f = if span > 0.0 {
            (v - self.range.start) / span
        } else {
            0.0
        };
        limit.0 + (f64::from(limit.1 - limit.0) * f).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, _hint: H) -> Vec<f64> {
        self.ticks.clone()
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.range.clone()
    }
}

fn draw_markers(
    ctx: &mut Ctx<'_, '_>,
    pts: &[(f64, f64)],
    marker: Marker,
    color: RGBColor,
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let style = color.filled();
    match marker {
        Marker::Circle => {
            ctx.draw_series(pts.iter().map(|&p| Circle::new(p, 4, style)))?;
        }
        Marker::Triangle => {
            ctx.draw_series(pts.iter().map(|&p| TriangleMarker::new(p, 5, style)))?;
        }
        Marker::Cross => {
            ctx.draw_series(pts.iter().map(|&p| Cross::new(p, 6, color.stroke_width(3))))?;
        }
        Marker::None => {}
    }
    Ok(())
}

fn draw_legend(
    area: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>,
    series: &[Series],
) -> Result<(), DrawingAreaErrorKind<std::io::Error>> {
    let font = ("sans-serif", 14).into_font();
    for (i, s) in series.iter().enumerate() {
        let y = 60 + 26 * i as i32;
        let color = COLORS[s.color % COLORS.len()];
        if s.line {
            area.draw(&PathElement::new(
                vec![(8, y), (40, y)],
                color.stroke_width(2),
            ))?;
        }
        match s.marker {
            Marker::Circle => area.draw(&Circle::new((24, y), 4, color.filled()))?,
            Marker::Triangle => area.draw(&TriangleMarker::new((24, y), 5, color.filled()))?,
            Marker::Cross => area.draw(&Cross::new((24, y), 6, color.stroke_width(3)))?,
            Marker::None => {}
        }
        area.draw(&Text::new(s.name.clone(), (48, y - 8), font.clone()))?;
    }
    Ok(())
}

/// Accuracy (%) and loss per round: global (test set, rounds that produced a version) and
/// each accepted client's last local epoch on its own data.
pub fn round_series(history: &[RoundRecord]) -> (Vec<Series>, Vec<Series>) {
    let mut global_acc = Vec::new();
    let mut global_loss = Vec::new();
    // Per client: (accuracy points, loss points).
    type Points = Vec<(f64, f64)>;
    let mut clients: BTreeMap<String, (Points, Points)> = BTreeMap::new();
    for r in history {
        let x = r.round as f64;
        if let Some(g) = &r.global
            && r.version.is_some()
        {
            if r.round > 0 {
                global_acc.push((x, f64::from(g.accuracy) * 100.0));
            }
            global_loss.push((x, f64::from(g.loss)));
        }
        for c in &r.clients {
            if c.status != ClientStatus::Accepted {
                continue;
            }
            let e = clients.entry(c.client_id.clone()).or_default();
            if let Some(a) = c.epoch_accuracy.last() {
                e.0.push((x, f64::from(*a) * 100.0));
            }
            if let Some(l) = c.epoch_loss.last() {
                e.1.push((x, f64::from(*l)));
            }
        }
    }
    let mut acc = vec![Series::line("global (test set)", global_acc, 0)];
    let mut loss = vec![Series::line("global (test set)", global_loss, 0)];
    for (i, (id, (a, l))) in clients.into_iter().enumerate() {
        let name = format!("{id} (own data, training)");
        let mut sa = Series::line(name.clone(), a, i + 1);
        sa.marker = Marker::Triangle;
        let mut sl = Series::line(name, l, i + 1);
        sl.marker = Marker::Triangle;
        acc.push(sa);
        loss.push(sl);
    }
    (acc, loss)
}

/// The accuracy and loss charts of a run, titled with `what`.
pub fn round_charts(history: &[RoundRecord], what: &str) -> (Chart, Chart) {
    let (acc, loss) = round_series(history);
    (
        Chart {
            title: format!("Accuracy per round: {what}"),
            x_label: "round".into(),
            y_label: "accuracy (%)".into(),
            x_scale: Scale::Integer,
            y_scale: Scale::Linear,
            series: acc,
        },
        Chart {
            title: format!("Loss per round: {what}"),
            x_label: "round (0 = initial model)".into(),
            y_label: "cross-entropy loss (log scale)".into(),
            x_scale: Scale::Integer,
            y_scale: Scale::Log,
            series: loss,
        },
    )
}

/// Writes `accuracy.svg` and `loss.svg` into `dir`.
pub fn write_charts(history: &[RoundRecord], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    let (acc, loss) = round_charts(history, "fedge local");
    draw(&acc, &dir.join("accuracy.svg"))?;
    draw(&loss, &dir.join("loss.svg"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{round_history, svg_texts};

    #[test]
    fn integer_axes_tick_on_integers_only() {
        for max in [1.0, 2.0, 5.0, 13.0, 50.0] {
            let a = Axis::fit([1.0, max].into_iter(), Scale::Integer);
            assert!(!a.ticks.is_empty());
            for t in &a.ticks {
                assert_eq!(t.fract(), 0.0, "tick {t} for 1..{max}");
                assert!(!a.label(*t).contains('.'));
            }
            assert!(a.ticks.len() <= 13);
        }
    }

    #[test]
    fn accuracy_axis_zooms_to_the_rounds_after_the_initial_model() {
        let (acc, _) = round_charts(&round_history(5, 1), "t");
        let y = Axis::fit(
            acc.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)),
            acc.y_scale,
        );
        assert!(y.range.start > 85.0, "{:?}", y.range);
        assert!(y.range.end < 100.0, "{:?}", y.range);
        assert!(acc.series[0].points.iter().all(|p| p.0 >= 1.0));
    }

    #[test]
    fn log_axes_tick_on_round_numbers() {
        let a = Axis::fit([1.0, 10_000.0].into_iter(), Scale::Log);
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert_eq!(labels, ["1", "10", "100", "1000", "10000"]);
        let a = Axis::fit([0.03, 2.3].into_iter(), Scale::Log);
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert!(labels.contains(&"0.1".to_string()), "{labels:?}");
        assert!(labels.contains(&"1".to_string()), "{labels:?}");
        let a = Axis::fit([0.0007, 0.9].into_iter(), Scale::Log);
        let labels: Vec<String> = a.ticks.iter().map(|t| a.label(*t)).collect();
        assert!(labels.contains(&"0.001".to_string()), "{labels:?}");
        assert!(labels.contains(&"0.005".to_string()), "{labels:?}");
    }

    #[test]
    fn writes_valid_svgs_with_integer_round_labels() {
        let dir = tempfile::tempdir().unwrap();
        write_charts(&round_history(5, 1), dir.path()).unwrap();
        if let Ok(keep) = std::env::var("KEEP_CHARTS") {
            write_charts(&round_history(5, 1), Path::new(&keep)).unwrap();
        }
        for f in ["accuracy.svg", "loss.svg"] {
            let svg = std::fs::read_to_string(dir.path().join(f)).unwrap();
            assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
            let texts = svg_texts(&svg);
            assert!(texts.iter().any(|t| t == "client-0 (own data, training)"));
            assert!(texts.iter().any(|t| t.starts_with("round")));
            for r in 1..=5 {
                assert!(
                    texts.contains(&r.to_string()),
                    "{f}: no tick {r} in {texts:?}"
                );
            }
            assert!(!texts.iter().any(|t| t == "1.0" || t == "2.0" || t == "1.5"));
        }
    }
}
