//! Charts for the HTML reports, drawn with plotters' SVG backend into strings that the pages
//! inline: nothing is fetched when a report is opened.
//!
//! - [`percentile_chart`]: latency against percentile, as HdrHistogram's plotter draws it: the
//!   x axis is `1/(1−p)` on a log scale, so 90%, 99%, 99.9%, 99.99% are equally spaced and the
//!   tail gets the room it deserves.
//! - [`line_chart`]: `(x, y)` series (a figure over time, or against concurrency), with an
//!   optional horizontal threshold (an SLO) and an optional marked x (the end of a run, a found
//!   capacity).
//!
//! Colours are the Okabe–Ito palette ([`PALETTE`]), told apart by readers with any common
//! colour-vision deficiency; second and later series are also dashed, so they stay apart in a
//! grey print. Each chart's root `<svg>` carries `class="chart"` and the caller's `id`, for
//! links and for tests.

use hdrhistogram::Histogram;
use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, Ranged, ValueFormatter};
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The Okabe–Ito colours in the order series get them (yellow, too light on white paper, is
/// left out): blue, vermillion, bluish green, reddish purple, orange, sky blue, black.
pub const PALETTE: [RGBColor; 7] = [
    RGBColor(0x00, 0x72, 0xB2),
    RGBColor(0xD5, 0x5E, 0x00),
    RGBColor(0x00, 0x9E, 0x73),
    RGBColor(0xCC, 0x79, 0xA7),
    RGBColor(0xE6, 0x9F, 0x00),
    RGBColor(0x56, 0xB4, 0xE9),
    RGBColor(0x00, 0x00, 0x00),
];

/// Axis lines and labels.
const INK: RGBColor = RGBColor(0x22, 0x22, 0x22);
/// Grid lines.
const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);
/// The threshold line: vermillion, which a lone first series (blue) never is.
const THRESHOLD: RGBColor = PALETTE[1];

/// Width and height of a chart, px (the page scales it to its column).
pub const SIZE: (u32, u32) = (720, 300);

const FONT: &str = "sans-serif";

/// Why a chart could not be drawn.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the chart could not be drawn: {0}")]
pub struct ChartError(String);

impl<E: std::error::Error + Send + Sync> From<DrawingAreaErrorKind<E>> for ChartError {
    fn from(e: DrawingAreaErrorKind<E>) -> Self {
        ChartError(e.to_string())
    }
}

/// What every chart says about itself.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The root `<svg>`'s `id` (letters, digits and `-`; other characters are dropped).
    pub id: &'a str,
    /// Drawn above the plot.
    pub title: &'a str,
    /// The x axis, with its unit.
    pub x: &'a str,
    /// The y axis, with its unit.
    pub y: &'a str,
}

/// One named line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    /// Shown in the legend when there are several.
    pub name: &'a str,
    /// `(x, y)` points in x order; points that are not finite are left out.
    pub points: Vec<(f64, f64)>,
}

/// A value marked on the chart with a label.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Mark<'a> {
    /// Where, in the axis's units.
    pub at: f64,
    /// What it is, e.g. `SLO 250 ms`.
    pub label: &'a str,
}

/// A line chart of `series` with an optional horizontal `threshold` line and an optional
/// vertical line at `marked_x`. The axes start at 0 and reach past every point and mark.
pub fn line_chart(
    labels: &Labels<'_>,
    series: &[Series<'_>],
    threshold: Option<Mark<'_>>,
    marked_x: Option<Mark<'_>>,
) -> Result<String, ChartError> {
    let finite = |p: &&(f64, f64)| p.0.is_finite() && p.1.is_finite();
    let points = || series.iter().flat_map(|s| s.points.iter().filter(finite));
    let x_max = points()
        .map(|p| p.0)
        .chain(marked_x.map(|m| m.at).filter(|v| v.is_finite()))
        .fold(0.0, f64::max);
    let y_max = points()
        .map(|p| p.1)
        .chain(threshold.map(|m| m.at).filter(|v| v.is_finite()))
        .fold(0.0, f64::max);
    let x_range = 0.0..nice_ceiling(x_max);
    let y_range = 0.0..nice_ceiling(y_max * 1.05);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let mut chart = frame(&root, labels, x_range.clone(), y_range.clone())?;
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(labels.y)
            .x_label_formatter(&|v| number(*v))
            .y_label_formatter(&|v| number(*v))
            .label_style((FONT, 15).into_font().color(&INK))
            .axis_desc_style((FONT, 16).into_font().color(&INK))
            .axis_style(INK)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        draw_lines(&mut chart, series)?;
        if let Some(m) = threshold.filter(|m| m.at.is_finite()) {
            let style = THRESHOLD.stroke_width(2);
            chart.draw_series(DashedLineSeries::new(
                [(x_range.start, m.at), (x_range.end, m.at)],
                8,
                5,
                style,
            ))?;
            let at = (x_range.start + (x_range.end - x_range.start) * 0.01, m.at);
            let font = (FONT, 15)
                .into_font()
                .color(&THRESHOLD)
                .pos(Pos::new(HPos::Left, VPos::Bottom));
            chart.draw_series(std::iter::once(Text::new(m.label.to_owned(), at, font)))?;
        }
        if let Some(m) = marked_x.filter(|m| m.at.is_finite()) {
            let style = INK.stroke_width(1);
            chart.draw_series(DashedLineSeries::new(
                [(m.at, y_range.start), (m.at, y_range.end)],
                3,
                3,
                style,
            ))?;
            let font = (FONT, 15)
                .into_font()
                .color(&INK)
                .pos(Pos::new(HPos::Right, VPos::Top));
            let at = (m.at, y_range.end);
            chart.draw_series(std::iter::once(Text::new(
                format!("{} ", m.label),
                at,
                font,
            )))?;
        }
        if series.len() > 1 {
            legend(&mut chart)?;
        }
        root.present()?;
    }
    Ok(tag(svg, labels))
}

/// Latency against percentile for each named histogram of nanoseconds, as HdrHistogram's
/// plotter draws it: x is `1/(1−p)` on a log scale labelled 0%, 90%, 99%, 99.9%, … up to the
/// percentile the largest count can resolve; y is the value at that percentile, in µs, ms or
/// s as suits the largest value. Empty histograms are left out.
pub fn percentile_chart(
    labels: &Labels<'_>,
    histograms: &[(&str, &Histogram<u64>)],
) -> Result<String, ChartError> {
    let histograms: Vec<_> = histograms.iter().filter(|(_, h)| !h.is_empty()).collect();
    let count = histograms.iter().map(|(_, h)| h.len()).max().unwrap_or(0);
    // Nines shown: enough to place the highest percentile `count` samples resolve (1 − 1/n),
    // at least two (99%), at most six (99.9999%).
    let nines = (count.max(1) as f64).log10().ceil().clamp(2.0, 6.0) as i32;
    let x_end = 10f64.powi(nines);
    let max_ns = histograms.iter().map(|(_, h)| h.max()).max().unwrap_or(0);
    let unit = TimeUnit::for_ns(max_ns);
    let series: Vec<Series<'_>> = histograms
        .iter()
        .map(|(name, h)| Series {
            name,
            points: h
                .iter_quantiles(5)
                .map(|v| {
                    let q = v.quantile_iterated_to();
                    // p = 1 is at infinity: the maximum goes at the axis's end.
                    let x = if q >= 1.0 {
                        x_end
                    } else {
                        (1.0 / (1.0 - q)).min(x_end)
                    };
                    (x, unit.of(v.value_iterated_to()))
                })
                .collect(),
        })
        .collect();
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .fold(0.0, f64::max);
    let y_range = 0.0..nice_ceiling(y_max * 1.05);
    let decades: Vec<f64> = (0..=nines).map(|i| 10f64.powi(i)).collect();
    let x_coord = (1.0..x_end).log_scale().with_key_points(decades);
    let y_desc = format!("{} ({})", labels.y, unit.name());
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        let mut chart = frame(&root, labels, x_coord, y_range)?;
        chart
            .configure_mesh()
            .x_desc(labels.x)
            .y_desc(y_desc)
            .x_label_formatter(&|x| percentile_label(*x))
            .y_label_formatter(&|v| number(*v))
            .label_style((FONT, 15).into_font().color(&INK))
            .axis_desc_style((FONT, 16).into_font().color(&INK))
            .axis_style(INK)
            .bold_line_style(GRID)
            .light_line_style(TRANSPARENT)
            .draw()?;
        draw_lines(&mut chart, &series)?;
        if series.len() > 1 {
            legend(&mut chart)?;
        }
        root.present()?;
    }
    Ok(tag(svg, labels))
}

/// The unit a latency axis is drawn in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeUnit {
    /// Microseconds.
    Micros,
    /// Milliseconds.
    Millis,
    /// Seconds.
    Seconds,
}

impl TimeUnit {
    /// The unit that keeps `max_ns` between 1 and a few thousand.
    pub fn for_ns(max_ns: u64) -> TimeUnit {
        match max_ns {
            0..2_000_000 => TimeUnit::Micros,
            2_000_000..10_000_000_000 => TimeUnit::Millis,
            _ => TimeUnit::Seconds,
        }
    }

    /// `ns` in this unit.
    pub fn of(self, ns: u64) -> f64 {
        ns as f64
            / match self {
                TimeUnit::Micros => 1e3,
                TimeUnit::Millis => 1e6,
                TimeUnit::Seconds => 1e9,
            }
    }

    /// Its symbol.
    pub fn name(self) -> &'static str {
        match self {
            TimeUnit::Micros => "µs",
            TimeUnit::Millis => "ms",
            TimeUnit::Seconds => "s",
        }
    }
}

type Chart<'a, 'b, X, Y> = ChartContext<'a, SVGBackend<'b>, Cartesian2d<X, Y>>;

/// The white background, the title and the plot area.
fn frame<'a, 'b, X: AsRangedCoord, Y: AsRangedCoord>(
    root: &'a DrawingArea<SVGBackend<'b>, Shift>,
    labels: &Labels<'_>,
    x: X,
    y: Y,
) -> Result<Chart<'a, 'b, X::CoordDescType, Y::CoordDescType>, ChartError> {
    root.fill(&WHITE)?;
    Ok(ChartBuilder::on(root)
        .caption(labels.title, (FONT, 20).into_font().color(&INK))
        .margin(12)
        // Room for the last x label, centred on the axis's end.
        .margin_right(36)
        .x_label_area_size(44)
        .y_label_area_size(64)
        .build_cartesian_2d(x, y)?)
}

/// Each series in its colour, the second and later dashed.
fn draw_lines<X, Y>(
    chart: &mut Chart<'_, '_, X, Y>,
    series: &[Series<'_>],
) -> Result<(), ChartError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    for (i, s) in series.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let style = colour.stroke_width(2);
        let points = s
            .points
            .iter()
            .copied()
            .filter(|p| p.0.is_finite() && p.1.is_finite());
        let drawn = if i == 0 {
            chart.draw_series(LineSeries::new(points, style))?
        } else {
            chart.draw_series(DashedLineSeries::new(points, 10, 4 + 2 * i as u32, style))?
        };
        drawn
            .label(s.name)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    Ok(())
}

fn legend<'a, 'b: 'a, X, Y>(chart: &mut Chart<'a, 'b, X, Y>) -> Result<(), ChartError>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 15).into_font().color(&INK))
        .background_style(WHITE.mix(0.85))
        .border_style(GRID)
        .draw()?;
    Ok(())
}

/// Puts `class="chart"`, the id and the title on the root `<svg>`.
fn tag(svg: String, labels: &Labels<'_>) -> String {
    let id: String = labels
        .id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    let attributes = format!(
        "<svg class=\"chart\" id=\"{id}\" role=\"img\" aria-label=\"{}\" ",
        escape(labels.title)
    );
    svg.replacen("<svg ", &attributes, 1)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// The percentile at `x = 1/(1−p)` on a decade: `0%`, `90%`, `99%`, `99.9%`, ….
fn percentile_label(x: f64) -> String {
    let nines = x.log10().round() as usize;
    match nines {
        0 => "0%".to_owned(),
        1 => "90%".to_owned(),
        n => format!("99.{}%", "9".repeat(n - 2)).replace(".%", "%"),
    }
}

/// An axis bound a little above `v`, a round multiple of a power of ten (1 for nothing).
fn nice_ceiling(v: f64) -> f64 {
    if !(v.is_finite() && v > 0.0) {
        return 1.0;
    }
    let decade = 10f64.powf(v.log10().floor());
    [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0]
        .iter()
        .map(|m| m * decade)
        .find(|&b| b >= v)
        .unwrap_or(10.0 * decade)
}

/// A tick label: no more digits than its size needs.
fn number(v: f64) -> String {
    let a = v.abs();
    let text = if a >= 100.0 || a == 0.0 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    };
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    fn parse(svg: &str) -> roxmltree::Document<'_> {
        roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{e}:\n{svg}"))
    }

    fn texts(doc: &roxmltree::Document<'_>) -> Vec<String> {
        doc.descendants()
            .filter(|n| n.has_tag_name("text"))
            .filter_map(|n| n.text())
            .map(|t| t.trim().to_owned())
            .collect()
    }

    fn hex(c: RGBColor) -> String {
        format!("#{:02X}{:02X}{:02X}", c.0, c.1, c.2)
    }

    /// The polylines that are not axes or ticks.
    pub(crate) fn data_lines<'a>(doc: &'a roxmltree::Document<'a>) -> Vec<roxmltree::Node<'a, 'a>> {
        let ink = hex(INK);
        doc.descendants()
            .filter(|n| n.has_tag_name("polyline") && n.attribute("stroke") != Some(ink.as_str()))
            .collect()
    }

    const LABELS: Labels<'static> = Labels {
        id: "chart-x",
        title: "Time to head",
        x: "percentile",
        y: "latency",
    };

    #[test]
    fn a_percentile_chart_spaces_the_nines_evenly_and_is_well_formed_svg() {
        let mut h = crate::stress::latency::histogram();
        for v in 1..=10_000u64 {
            h.saturating_record(v * 1_000); // 1 µs … 10 ms
        }
        let svg = percentile_chart(&LABELS, &[("time_to_head", &h)]).unwrap();
        std::fs::write("/tmp/hs-chart.svg", &svg).unwrap();
        let doc = parse(&svg);
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg");
        assert_eq!(root.attribute("class"), Some("chart"));
        assert_eq!(root.attribute("id"), Some("chart-x"));
        let texts = texts(&doc);
        // 10,000 samples resolve p99.99: four nines, each decade labelled.
        for label in ["0%", "90%", "99%", "99.9%", "99.99%", "Time to head"] {
            assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
        }
        assert!(!texts.iter().any(|t| t == "99.999%"), "{texts:?}");
        // 10 ms at the top: the axis is in ms.
        assert!(texts.iter().any(|t| t == "latency (ms)"), "{texts:?}");
        // One line, whose last point is the maximum at the axis's end.
        let lines = data_lines(&doc);
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].attribute("stroke"), Some(hex(PALETTE[0]).as_str()));
    }

    #[test]
    fn each_histogram_is_a_line_and_a_legend_names_them() {
        let (mut a, mut b) = (
            crate::stress::latency::histogram(),
            crate::stress::latency::histogram(),
        );
        for v in 1..=100u64 {
            a.saturating_record(v * 1_000_000);
            b.saturating_record(v * 2_000_000);
        }
        let empty = crate::stress::latency::histogram();
        let svg =
            percentile_chart(&LABELS, &[("c=10", &a), ("c=20", &b), ("none", &empty)]).unwrap();
        let doc = parse(&svg);
        let texts = texts(&doc);
        assert!(texts.iter().any(|t| t == "c=10") && texts.iter().any(|t| t == "c=20"));
        assert!(
            !texts.iter().any(|t| t == "none"),
            "empty histograms are left out"
        );
        // 100 samples: two nines.
        assert!(texts.iter().any(|t| t == "99%") && !texts.iter().any(|t| t == "99.9%"));
    }

    #[test]
    fn a_line_chart_draws_its_threshold_and_its_mark() {
        let series = [Series {
            name: "p99",
            points: vec![(10.0, 120.0), (20.0, 180.0), (40.0, 320.0), (f64::NAN, 1.0)],
        }];
        let labels = Labels {
            id: "chart-slo",
            title: "p99 time to head against concurrency",
            x: "concurrent streams",
            y: "p99 (ms)",
        };
        let svg = line_chart(
            &labels,
            &series,
            Some(Mark {
                at: 250.0,
                label: "SLO 250 ms",
            }),
            Some(Mark {
                at: 30.0,
                label: "capacity 30",
            }),
        )
        .unwrap();
        let doc = parse(&svg);
        let texts = texts(&doc);
        for label in [
            "SLO 250 ms",
            "capacity 30",
            "concurrent streams",
            "p99 (ms)",
            "p99 time to head against concurrency",
        ] {
            assert!(texts.iter().any(|t| t == label), "{label} in {texts:?}");
        }
        // The threshold is drawn in dashes of its own colour.
        let threshold = hex(THRESHOLD);
        assert!(
            doc.descendants()
                .filter(|n| n.attribute("stroke") == Some(threshold.as_str()))
                .count()
                > 10
        );
    }

    #[test]
    fn hostile_labels_stay_text() {
        let labels = Labels {
            id: "chart-\"><script>",
            title: "a <b> & \"c\"",
            x: "x <",
            y: "y &",
        };
        let svg = line_chart(&labels, &[], None, None).unwrap();
        let doc = parse(&svg);
        assert_eq!(doc.root_element().attribute("id"), Some("chart-script"));
        assert_eq!(
            doc.root_element().attribute("aria-label"),
            Some("a <b> & \"c\"")
        );
        assert!(texts(&doc).iter().any(|t| t == "a <b> & \"c\""));
    }

    #[test]
    fn labels_and_bounds_read_naturally() {
        assert_eq!(percentile_label(1.0), "0%");
        assert_eq!(percentile_label(10.0), "90%");
        assert_eq!(percentile_label(100.0), "99%");
        assert_eq!(percentile_label(1e5), "99.999%");
        assert_eq!(nice_ceiling(0.0), 1.0);
        assert_eq!(nice_ceiling(3.2), 4.0);
        assert_eq!(nice_ceiling(11.8), 12.0);
        assert_eq!(nice_ceiling(121.0), 150.0);
        assert_eq!(nice_ceiling(1000.0), 1000.0);
        assert_eq!(number(1200.0), "1200");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(0.25), "0.25");
        assert_eq!(number(2.0), "2");
        assert_eq!(TimeUnit::for_ns(850_000), TimeUnit::Micros);
        assert_eq!(TimeUnit::for_ns(25_000_000), TimeUnit::Millis);
        assert_eq!(TimeUnit::for_ns(12_000_000_000), TimeUnit::Seconds);
        assert_eq!(TimeUnit::Millis.of(2_500_000), 2.5);
    }
}
