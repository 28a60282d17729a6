//! SVG plots of a run: outage medians per scenario and system, and the scale run.
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use super::scenarios::{OutageRow, SCALE_GROUPS, Scale};
use super::stats::median;
use super::systems::SYSTEMS;

pub fn outages(rows: &[OutageRow], path: &Path) -> Result<()> {
    let mut scenarios: Vec<String> = vec![];
    for r in rows {
        let name = r.case.name();
        if !scenarios.contains(&name) {
            scenarios.push(name);
        }
    }
    let n = scenarios.len().max(1);
    let ymax = rows
        .iter()
        .flat_map(|r| r.outage.iter().copied())
        .fold(10.0f64, f64::max)
        * 1.1;
    let root = SVGBackend::new(path, (1000, 140 + 90 * n as u32)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Client-visible outage, median (ms)", ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(330)
        .build_cartesian_2d(0f64..ymax, (0..n * 4).into_segmented())?;
    chart
        .configure_mesh()
        .disable_y_mesh()
        .y_labels(n * 4)
        .y_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) if i % 4 == 1 => {
                scenarios.get(i / 4).cloned().unwrap_or_default()
            }
            _ => String::new(),
        })
        .x_desc("ms")
        .draw()?;
    let colors = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
    ];
    for (k, sys) in SYSTEMS.iter().enumerate() {
        let bars: Vec<(usize, f64)> = scenarios
            .iter()
            .enumerate()
            .filter_map(|(i, sc)| {
                rows.iter()
                    .find(|r| r.case.name() == *sc && r.sys == *sys && !r.outage.is_empty())
                    .map(|r| (i * 4 + k, median(&r.outage)))
            })
            .collect();
        let color = colors[k];
        chart
            .draw_series(bars.iter().map(|(y, v)| {
                Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(*y)),
                        (*v, SegmentValue::Exact(*y + 1)),
                    ],
                    color.filled(),
                )
            }))?
            .label(sys.name())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE)
        .draw()?;
    root.present()?;
    Ok(())
}

pub fn scale(scales: &[Scale], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (800, 400)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(400);
    let cpu_title = format!("CPU, % of one core ({SCALE_GROUPS} groups)");
    let rss_title = format!("RSS, MB ({SCALE_GROUPS} groups)");
    for (area, title, pick) in [(left, cpu_title, 0usize), (right, rss_title, 1usize)] {
        let vals: Vec<f64> = scales
            .iter()
            .map(|s| match s.measured {
                Some(m) if pick == 0 => m.cpu_pct,
                Some(m) => m.rss_mb,
                None => f64::NAN,
            })
            .collect();
        let top = vals
            .iter()
            .copied()
            .filter(|v| v.is_finite())
            .fold(1.0f64, f64::max)
            * 1.2;
        let mut chart = ChartBuilder::on(&area)
            .caption(title, ("sans-serif", 16))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(50)
            .build_cartesian_2d((0..scales.len()).into_segmented(), 0f64..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => scales
                    .get(*i)
                    .map(|s| s.sys.name().to_string())
                    .unwrap_or_default(),
                _ => String::new(),
            })
            .draw()?;
        chart.draw_series(vals.iter().enumerate().filter(|(_, v)| v.is_finite()).map(
            |(i, v)| {
                Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    RGBColor(31, 119, 180).filled(),
                )
            },
        ))?;
    }
    root.present()?;
    Ok(())
}
