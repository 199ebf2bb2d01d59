//! The figure of one trace: load, the forecast with its interval, and the
//! authentication server's requests per second under each mode.

use std::path::Path;

use plotters::prelude::*;

use super::replay::{Replay, SIM_T0};
use super::report::TraceReport;
use super::run::Mode;

/// Writes the SVG of `report` to `path`.
pub fn svg(replay: &Replay, report: &TraceReport, path: &Path) -> Result<(), String> {
    let c = replay.scenario().compression;
    let hours = |second: f64| second * c / 3600.0;
    // Auth requests per second, 60-second means.
    let series: Vec<(Mode, Vec<(f64, f64)>)> = report
        .outcomes
        .iter()
        .map(|o| {
            let points = o
                .auth_per_second
                .chunks(60)
                .enumerate()
                .map(|(k, w)| {
                    (
                        hours((k * 60) as f64 + 30.0),
                        w.iter().sum::<u64>() as f64 / w.len() as f64,
                    )
                })
                .collect();
            (o.mode, points)
        })
        .collect();
    let max_y = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|(_, y)| *y))
        .fold(1.0, f64::max)
        * 1.15;
    let share = |v: f64| {
        let f = replay.scenario().floor;
        (f + (1.0 - f) * (v / replay.scale()).clamp(0.0, 1.0)) * max_y
    };
    let span = hours(replay.sim_seconds() as f64);
    let (start, _) = replay.window();
    let root = SVGBackend::new(path, (1100, 560)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "{}: auth server requests/s (1 min mean) per mode, with the load and its forecast",
                report.name
            ),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0f64..span, 0f64..max_y)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc(format!(
            "trace hours from {:02}:00 UTC (one trace hour = {:.0} simulated s)",
            (start.rem_euclid(86_400.0) / 3600.0) as u32,
            3600.0 / c
        ))
        .y_desc("auth requests / s")
        .draw()
        .map_err(|e| err(&e))?;
    let load: Vec<(f64, f64)> = (0..=replay.sim_seconds() / 60)
        .map(|k| {
            let s = (k * 60) as f64;
            (
                hours(s),
                share(replay.trace().value_at(replay.to_trace(SIM_T0 as f64 + s))),
            )
        })
        .collect();
    chart
        .draw_series(LineSeries::new(load, BLACK.mix(0.5).stroke_width(2)))
        .map_err(|e| err(&e))?
        .label("load: share of active sessions (scaled)")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.5)));
    let threshold = share(replay.threshold());
    chart
        .draw_series(LineSeries::new(
            vec![(0.0, threshold), (span, threshold)],
            BLACK.mix(0.25),
        ))
        .map_err(|e| err(&e))?
        .label("peak threshold")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], BLACK.mix(0.25)));
    if let Some(p) = report.get(Mode::Predictive) {
        let within = |(s, _): &&(u64, foresight_core::signal::Forecast)| {
            (*s as f64) <= replay.sim_seconds() as f64
        };
        let pick = |f: fn(&foresight_core::signal::Forecast) -> f64| -> Vec<(f64, f64)> {
            p.forecasts
                .iter()
                .filter(within)
                .map(|(s, fc)| (hours(*s as f64), share(f(fc))))
                .collect()
        };
        let green = RGBColor(0, 140, 60);
        chart
            .draw_series(LineSeries::new(pick(|f| f.mean), green.stroke_width(2)))
            .map_err(|e| err(&e))?
            .label(format!(
                "forecast made {:.0} trace h ahead (scaled)",
                replay.scenario().lead.as_secs_f64() * c / 3600.0
            ))
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], green));
        for bound in [pick(|f| f.lower), pick(|f| f.upper)] {
            chart
                .draw_series(LineSeries::new(bound, green.mix(0.4)))
                .map_err(|e| err(&e))?;
        }
    }
    let colours = [RED, MAGENTA, BLUE, CYAN];
    for ((mode, points), colour) in series.into_iter().zip(colours) {
        chart
            .draw_series(LineSeries::new(points, colour))
            .map_err(|e| err(&e))?
            .label(mode.name())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    Ok(())
}
