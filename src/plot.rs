//! Charts as PNG files (plotters, drawn in memory, encoded by `image`, written atomically):
//! the learning curves of `superopt train` and the bar charts of `superopt bench`.
//!
//! Text needs a TrueType font. plotters' pure-Rust renderer (ab_glyph) gets one from the file
//! named by `SUPEROPT_FONT`, else from the usual DejaVu or Liberation paths (Debian's
//! `fonts-dejavu-core`, which `.ci/run` installs when missing).

use crate::error::{Error, Result};
use plotters::prelude::*;
use std::path::Path;
use std::sync::OnceLock;

/// One line of a chart.
pub struct Series {
    /// Legend text.
    pub name: String,
    /// `(x, y)` points in order of `x`.
    pub points: Vec<(f64, f64)>,
}

/// One panel (a pair of axes) of a chart; panels are stacked vertically and share the x label
/// (whole numbers: steps, episodes).
pub struct Panel {
    /// Label of the y axis.
    pub y_label: String,
    /// The lines.
    pub series: Vec<Series>,
    /// The y values are whole numbers (lengths): label only whole numbers.
    pub integer_y: bool,
}

const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/usr/share/fonts/liberation/LiberationSans-Regular.ttf",
];

/// Registers a font for plotters once per process; the error says where it looked.
fn ensure_font() -> Result<()> {
    static FONT: OnceLock<std::result::Result<(), String>> = OnceLock::new();
    FONT.get_or_init(|| {
        let candidates: Vec<String> = std::env::var("SUPEROPT_FONT")
            .into_iter()
            .chain(FONT_PATHS.iter().map(|s| s.to_string()))
            .collect();
        for path in &candidates {
            if let Ok(bytes) = std::fs::read(path) {
                let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
                if plotters::style::register_font("sans-serif", FontStyle::Normal, bytes).is_ok()
                {
                    return Ok(());
                }
            }
        }
        Err(format!(
            "no TrueType font for the chart (looked at SUPEROPT_FONT and {}; install fonts-dejavu-core)",
            FONT_PATHS.join(", ")
        ))
    })
    .clone()
    .map_err(Error::Runtime)
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws `panels` stacked vertically under `title` into a 1000 x 360-per-panel PNG at `path`.
///
/// Errors: [`Error::Runtime`] when no font is found or drawing fails; [`Error::Io`] naming
/// `path`.
pub fn line_chart(path: &Path, title: &str, x_label: &str, panels: &[Panel]) -> Result<()> {
    ensure_font()?;
    let (w, h) = (1000u32, 60 + 360 * panels.len().max(1) as u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let fail = |e: String| Error::Runtime(format!("drawing {}: {e}", path.display()));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let root = root
            .titled(title, ("sans-serif", 22))
            .map_err(|e| fail(e.to_string()))?;
        for (area, panel) in root
            .split_evenly((panels.len().max(1), 1))
            .iter()
            .zip(panels)
        {
            let all = panel.series.iter().flat_map(|s| s.points.iter());
            let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
            for &(x, y) in all {
                x0 = x0.min(x);
                x1 = x1.max(x);
                y0 = y0.min(y);
                y1 = y1.max(y);
            }
            if x0 > x1 {
                (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
            }
            let pad = ((y1 - y0) * 0.05).max(0.5);
            let mut chart = ChartBuilder::on(area)
                .margin(12)
                .x_label_area_size(40)
                .y_label_area_size(70)
                .build_cartesian_2d(x0..x1.max(x0 + 1.0), (y0 - pad)..(y1 + pad))
                .map_err(|e| fail(e.to_string()))?;
            let mut mesh = chart.configure_mesh();
            // Whole numbers (steps, episodes) unless the span is small (seconds).
            let decimals = match x1 - x0 {
                d if d >= 50.0 => 0,
                d if d >= 5.0 => 1,
                d if d >= 0.5 => 2,
                _ => 3,
            };
            let x_fmt = move |x: &f64| format!("{x:.decimals$}");
            mesh.x_desc(x_label)
                .y_desc(panel.y_label.as_str())
                .x_label_formatter(&x_fmt);
            if panel.integer_y {
                // One label per whole number (at most 10), none in between.
                let span = (y1 - y0).round().max(0.0) as usize;
                mesh.y_labels(span.clamp(1, 9) + 1)
                    .y_label_formatter(&|y| format!("{y:.0}"))
                    .disable_y_mesh();
            }
            mesh.draw().map_err(|e| fail(e.to_string()))?;
            for (i, s) in panel.series.iter().enumerate() {
                let colour = COLOURS[i % COLOURS.len()];
                chart
                    .draw_series(LineSeries::new(
                        s.points.iter().copied(),
                        colour.stroke_width(2),
                    ))
                    .map_err(|e| fail(e.to_string()))?
                    .label(s.name.as_str())
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
                    });
            }
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(|e| fail(e.to_string()))?;
        }
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    write_png(path, w, h, buf)
}

/// Checks that `path` is named as a PNG file (extension `.png`, in any case): charts are
/// drawn by plotters' bitmap backend and written as PNG only (no SVG backend is built in), so
/// that a file named `x.svg` never holds PNG bytes. `flag` names the option in the message.
///
/// Errors: [`Error::Runtime`]: `--plot x.svg: charts are written as PNG only; name the file
/// .png`.
pub fn check_png_name(flag: &str, path: &Path) -> Result<()> {
    if path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("png"))
    {
        Ok(())
    } else {
        Err(Error::Runtime(format!(
            "{flag} {}: charts are written as PNG only; name the file .png",
            path.display()
        )))
    }
}

/// Encodes an RGB buffer as PNG and writes it atomically to `path`, which must be named
/// `.png` ([`check_png_name`]).
fn write_png(path: &Path, w: u32, h: u32, buf: Vec<u8>) -> Result<()> {
    check_png_name("chart", path)?;
    let img = image::RgbImage::from_raw(w, h, buf).expect("the buffer has w * h pixels");
    let mut png = Vec::new();
    img.write_to(
        &mut std::io::Cursor::new(&mut png),
        image::ImageOutputFormat::Png,
    )
    .map_err(|e| Error::Runtime(format!("encoding {}: {e}", path.display())))?;
    crate::log::write_atomic_with(path, |tmp| {
        std::fs::write(tmp, &png).map_err(|e| Error::io(path, e))
    })
}

/// One bar of a bar chart, with an optional interval drawn as a whisker.
pub struct Bar {
    /// Label under the bar.
    pub label: String,
    /// Height.
    pub value: f64,
    /// Interval `(low, high)` around `value`, if any.
    pub interval: Option<(f64, f64)>,
    /// Colour group: bars of one group share a colour in every chart (0 is grey).
    pub group: usize,
}

/// The colour of [`Bar::group`] `g`: grey for 0, else the line colours in turn.
fn group_colour(g: usize) -> RGBColor {
    match g {
        0 => RGBColor(150, 150, 150),
        _ => COLOURS[(g - 1) % COLOURS.len()],
    }
}

/// Draws `bars` (with their whiskers) under `title` into a PNG at `path`, 190 pixels per bar
/// and at least 700 wide, 480 high; labels are cut to 26 characters.
///
/// Errors: as [`line_chart`].
pub fn bar_chart(path: &Path, title: &str, y_label: &str, bars: &[Bar]) -> Result<()> {
    ensure_font()?;
    let (w, h) = ((190 * bars.len() as u32 + 120).max(700), 480u32);
    let mut buf = vec![255u8; (w * h * 3) as usize];
    let fail = |e: String| Error::Runtime(format!("drawing {}: {e}", path.display()));
    {
        let root = BitMapBackend::with_buffer(&mut buf, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| fail(e.to_string()))?;
        let top = bars
            .iter()
            .map(|b| b.interval.map_or(b.value, |i| i.1).max(b.value))
            .fold(0.0, f64::max);
        let labels: Vec<String> = bars
            .iter()
            .map(|b| b.label.chars().take(26).collect())
            .collect();
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(14)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(
                (0..bars.len().max(1) as i32 - 1).into_segmented(),
                0.0..(top * 1.1).max(1e-9),
            )
            .map_err(|e| fail(e.to_string()))?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .y_desc(y_label)
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|x| match x {
                SegmentValue::CenterOf(i) => labels.get(*i as usize).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(|e| fail(e.to_string()))?;
        chart
            .draw_series(bars.iter().enumerate().map(|(i, b)| {
                let colour = group_colour(b.group);
                let x0 = SegmentValue::Exact(i as i32);
                let x1 = SegmentValue::Exact(i as i32 + 1);
                let mut r = Rectangle::new([(x0, 0.0), (x1, b.value)], colour.mix(0.8).filled());
                r.set_margin(0, 0, 18, 18);
                r
            }))
            .map_err(|e| fail(e.to_string()))?;
        chart
            .draw_series(bars.iter().enumerate().filter_map(|(i, b)| {
                let (lo, hi) = b.interval?;
                let x = SegmentValue::CenterOf(i as i32);
                Some(PathElement::new(
                    vec![(x.clone(), lo), (x, hi)],
                    BLACK.stroke_width(2),
                ))
            }))
            .map_err(|e| fail(e.to_string()))?;
        root.present().map_err(|e| fail(e.to_string()))?;
    }
    write_png(path, w, h, buf)
}
