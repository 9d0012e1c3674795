//! The simulation's chart: a histogram of the backsets viewers started at
//! under the policy, and each strategy's per-asset request load, as SVG.

use plotters::prelude::*;

use super::simulate::Report;

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = Result<(), Box<dyn std::error::Error>>;

pub fn svg(report: &Report, asset_duration_s: f64) -> Result<String, String> {
    let mut out = String::new();
    draw(report, asset_duration_s, &mut out).map_err(|e| format!("drawing the chart: {e}"))?;
    Ok(out)
}

fn draw(report: &Report, asset: f64, out: &mut String) -> DrawResult {
    let root = SVGBackend::with_string(out, (1100, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(500);
    histogram(report, asset, &left)?;
    load(report, &right)?;
    root.present()?;
    Ok(())
}

/// Histogram of the policy's backsets, one bin per asset duration.
fn histogram(report: &Report, asset: f64, left: &Area) -> DrawResult {
    let policy = report
        .outcomes
        .iter()
        .find(|o| o.strategy == super::simulate::Strategy::Policy)
        .ok_or("no policy outcome")?;
    let top = policy.backsets_s.iter().copied().fold(asset, f64::max) + asset;
    let bins = (top / asset).ceil() as usize;
    let mut counts = vec![0u32; bins];
    for b in &policy.backsets_s {
        counts[((b / asset).floor() as usize).min(bins - 1)] += 1;
    }
    let highest = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut chart = ChartBuilder::on(left)
        .caption("Backsets drawn by the policy", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0f64..bins as f64 * asset, 0u32..highest + highest / 10 + 1)?;
    chart
        .configure_mesh()
        .x_desc("backset achieved (s)")
        .y_desc("viewers")
        .draw()?;
    chart.draw_series(counts.iter().enumerate().map(|(i, &c)| {
        let x0 = i as f64 * asset;
        Rectangle::new(
            [(x0, 0), (x0 + asset * 0.92, c)],
            RGBColor(52, 101, 164).filled(),
        )
    }))?;
    Ok(())
}

/// Peak simultaneous requests per asset, per strategy.
fn load(report: &Report, right: &Area) -> DrawResult {
    let assets = report.assets;
    let peak = report
        .outcomes
        .iter()
        .map(|o| o.peak_requests)
        .max()
        .unwrap_or(1)
        .max(1);
    let mut chart = ChartBuilder::on(right)
        .caption(
            "Viewers fetching one asset at the same moment",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d(0usize..assets, 0usize..peak + peak / 10 + 1)?;
    chart
        .configure_mesh()
        .x_desc("asset")
        .y_desc("concurrent requests (peak)")
        .draw()?;
    let colours = [
        RGBColor(204, 0, 0),
        RGBColor(237, 162, 0),
        RGBColor(52, 101, 164),
    ];
    for (outcome, colour) in report.outcomes.iter().zip(colours) {
        chart
            .draw_series(LineSeries::new(
                outcome
                    .requests_per_asset
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| (i, n)),
                colour.stroke_width(2),
            ))?
            .label(outcome.strategy.label())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], colour.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()?;
    Ok(())
}
