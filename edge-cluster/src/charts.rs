//! SVG charts of a run: accuracy and loss per round, global (test set) and per client
//! (training, last local epoch), drawn with plotters' SVG backend.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use aggregator::history::{ClientStatus, RoundRecord};

/// One named series of (round, value) points.
type Series = (String, Vec<(f64, f64)>);

fn series(history: &[RoundRecord], accuracy: bool) -> Vec<Series> {
    let mut global = Vec::new();
    let mut clients: BTreeMap<String, Vec<(f64, f64)>> = BTreeMap::new();
    for r in history {
        let x = r.round as f64;
        if let Some(g) = &r.global
            && r.version.is_some()
        {
            let y = if accuracy { g.accuracy * 100.0 } else { g.loss };
            global.push((x, f64::from(y)));
        }
        for c in &r.clients {
            if c.status != ClientStatus::Accepted {
                continue;
            }
            let last = if accuracy {
                c.epoch_accuracy.last().map(|a| a * 100.0)
            } else {
                c.epoch_loss.last().copied()
            };
            if let Some(y) = last {
                clients
                    .entry(c.client_id.clone())
                    .or_default()
                    .push((x, f64::from(y)));
            }
        }
    }
    let mut out = vec![("global (test)".to_string(), global)];
    out.extend(
        clients
            .into_iter()
            .map(|(id, pts)| (format!("{id} (train)"), pts)),
    );
    out
}

/// Writes `accuracy.svg` and `loss.svg` into `dir`.
pub fn write_charts(history: &[RoundRecord], dir: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(dir)?;
    draw(
        &dir.join("accuracy.svg"),
        "Accuracy per round",
        "accuracy (%)",
        &series(history, true),
    )?;
    draw(
        &dir.join("loss.svg"),
        "Loss per round",
        "cross-entropy loss",
        &series(history, false),
    )?;
    Ok(())
}

fn draw(path: &Path, title: &str, y_label: &str, all: &[Series]) -> anyhow::Result<()> {
    let points = all.iter().flat_map(|(_, p)| p.iter());
    let (mut x_max, mut y_min, mut y_max) = (1.0f64, f64::INFINITY, f64::NEG_INFINITY);
    for &(x, y) in points {
        x_max = x_max.max(x);
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    if !y_min.is_finite() {
        (y_min, y_max) = (0.0, 1.0);
    }
    let pad = ((y_max - y_min) * 0.05).max(1e-3);
    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    root.fill(&WHITE)
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(title, ("sans-serif", 24))
        .margin(16)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(0.0..x_max, (y_min - pad)..(y_max + pad))
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    chart
        .configure_mesh()
        .x_desc("round")
        .y_desc(y_label)
        .x_labels((x_max as usize + 1).min(20))
        .draw()
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    for (i, (name, pts)) in all.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let width = if i == 0 { 3 } else { 2 };
        chart
            .draw_series(LineSeries::new(
                pts.iter().copied(),
                color.stroke_width(width),
            ))
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?
            .label(name.clone())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(width))
            });
        chart
            .draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()
        .map_err(|e| anyhow::anyhow!("drawing {}: {e}", path.display()))?;
    root.present()
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", path.display()))?;
    Ok(())
}
