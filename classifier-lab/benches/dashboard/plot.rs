//! Draws the panels as Grafana's dark theme shows them: one chart per panel, two columns,
//! a legend per chart. Text in DejaVu Sans (Debian's fonts-dejavu-core).

use std::path::Path;

use anyhow::{Context as _, Result, anyhow};
use plotters::{prelude::*, style::FontStyle};

use crate::samples::Lines;

pub struct Panel {
    pub title: &'static str,
    pub unit: &'static str,
    pub lines: Lines,
}

const FONT: &str = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf";
const BACKGROUND: RGBColor = RGBColor(17, 18, 23);
const PANEL: RGBColor = RGBColor(24, 27, 31);
const GRID: RGBColor = RGBColor(44, 48, 54);
const TEXT: RGBColor = RGBColor(204, 204, 220);
/// Grafana's classic palette.
const PALETTE: [RGBColor; 8] = [
    RGBColor(115, 191, 105),
    RGBColor(242, 204, 12),
    RGBColor(138, 184, 255),
    RGBColor(255, 152, 48),
    RGBColor(242, 73, 92),
    RGBColor(87, 148, 242),
    RGBColor(184, 119, 217),
    RGBColor(112, 219, 237),
];

pub fn draw(path: &Path, title: &str, seconds: f64, panels: &[Panel]) -> Result<()> {
    let font = std::fs::read(FONT)
        .with_context(|| format!("reading {FONT} (Debian package fonts-dejavu-core)"))?;
    plotters::style::register_font("sans-serif", FontStyle::Normal, Vec::leak(font))
        .map_err(|_| anyhow!("{FONT} is not a font"))?;
    let rows = panels.len().div_ceil(2);
    let root = BitMapBackend::new(path, (1600, 60 + 330 * rows as u32)).into_drawing_area();
    root.fill(&BACKGROUND)?;
    let (header, body) = root.split_vertically(60);
    for (line, y) in title.lines().zip([8, 34]) {
        header.draw_text(line, &("sans-serif", 20).into_font().color(&TEXT), (20, y))?;
    }
    for (area, panel) in body.split_evenly((rows, 2)).iter().zip(panels) {
        draw_panel(&area.margin(6, 6, 6, 6), seconds, panel)?;
    }
    root.present().context("writing the PNG")?;
    Ok(())
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    seconds: f64,
    panel: &Panel,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    area.fill(&PANEL).map_err(|e| anyhow!("{e:?}"))?;
    let top = panel
        .lines
        .values()
        .flatten()
        .map(|(_, v)| *v)
        .fold(0.0f64, f64::max);
    let top = if top > 0.0 { top * 1.15 } else { 1.0 };
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 18).into_font().color(&TEXT))
        .margin(10)
        .x_label_area_size(28)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..seconds, 0.0..top)
        .map_err(|e| anyhow!("{e:?}"))?;
    chart
        .configure_mesh()
        .bold_line_style(GRID)
        .light_line_style(TRANSPARENT)
        .axis_style(GRID)
        .label_style(("sans-serif", 13).into_font().color(&TEXT))
        .y_desc(panel.unit)
        .x_desc("seconds")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| {
            format!("{v:.3}")
                .trim_end_matches('0')
                .trim_end_matches('.')
                .to_owned()
        })
        .draw()
        .map_err(|e| anyhow!("{e:?}"))?;
    for (index, (name, points)) in panel.lines.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        chart
            .draw_series(LineSeries::new(
                points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(|e| anyhow!("{e:?}"))?
            .label(name.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(3))
            });
    }
    if !panel.lines.is_empty() {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(PANEL.mix(0.85))
            .border_style(GRID)
            .label_font(("sans-serif", 13).into_font().color(&TEXT))
            .draw()
            .map_err(|e| anyhow!("{e:?}"))?;
    }
    Ok(())
}
