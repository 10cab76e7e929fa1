//! The look shared by every chart: palette, the bundled font, canvas sizes, the scale that makes a
//! PNG the same picture as its SVG at twice the resolution, and number formatting.
//!
//! Helpers that draw with these are in `layout.rs` (title block, legends) and `axis.rs`; each
//! chart kind has its own file.

use std::sync::OnceLock;

use plotters::style::{FontStyle, RGBColor};

use super::ChartError;

/// Width of the standard canvas, in CSS pixels (the SVG's size).
pub const WIDTH: u32 = 900;
/// Height of the standard canvas, in CSS pixels.
pub const HEIGHT: u32 = 560;
/// PNGs are drawn at this many device pixels per CSS pixel, so they stay sharp on a slide.
pub const PNG_SCALE: f64 = 2.0;

/// Outer margin around everything, in CSS pixels.
pub const MARGIN: f64 = 16.0;

/// Text sizes, in CSS pixels.
pub mod text_size {
    /// The chart title.
    pub const TITLE: f64 = 19.0;
    /// Subtitle and caption lines under the title.
    pub const SUBTITLE: f64 = 13.5;
    /// Axis titles, legend entries and labels in the plot.
    pub const BODY: f64 = 12.5;
    /// Tick labels.
    pub const TICK: f64 = 11.5;
    /// The source line and notes under the chart.
    pub const SMALL: f64 = 10.5;
}

// Colours. The categorical ones are from Okabe & Ito's colour-blind-safe palette; the sequential
// scheme for deprivation is viridis, which stays ordered in greyscale and for the common colour
// vision deficiencies.

/// Main text.
pub const INK: RGBColor = RGBColor(26, 26, 26);
/// Secondary text: source lines, notes, tick labels.
pub const MUTED: RGBColor = RGBColor(85, 85, 85);
/// Axis lines.
pub const AXIS: RGBColor = RGBColor(110, 110, 110);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(226, 226, 226);
/// The page.
pub const BACKGROUND: RGBColor = RGBColor(255, 255, 255);
/// The thing the reader is looking for: their PCN, their ICB (Okabe–Ito vermillion).
pub const HIGHLIGHT: RGBColor = RGBColor(213, 94, 0);
/// The main data colour when deprivation is not encoded (Okabe–Ito blue).
pub const PRIMARY: RGBColor = RGBColor(0, 114, 178);
/// A lighter companion of [`PRIMARY`] (Okabe–Ito sky blue).
pub const SECONDARY: RGBColor = RGBColor(86, 180, 233);
/// Neutral data: points within limits, other areas.
pub const NEUTRAL: RGBColor = RGBColor(150, 150, 150);
/// Reference lines (England value, averages, zero).
pub const REFERENCE: RGBColor = RGBColor(60, 60, 60);

/// Viridis at t = 0, 0.1, …, 1.
const VIRIDIS: [(f64, f64, f64); 11] = [
    (68.0, 1.0, 84.0),
    (72.0, 36.0, 117.0),
    (65.0, 68.0, 135.0),
    (53.0, 95.0, 141.0),
    (42.0, 120.0, 142.0),
    (33.0, 145.0, 140.0),
    (34.0, 168.0, 132.0),
    (68.0, 191.0, 112.0),
    (122.0, 209.0, 81.0),
    (189.0, 223.0, 38.0),
    (253.0, 231.0, 37.0),
];

/// The lightest point of viridis used: its yellow end is invisible on white.
const VIRIDIS_END: f64 = 0.85;

/// Viridis at `t` in [0, 1], linearly interpolated between tabulated points.
fn viridis(t: f64) -> RGBColor {
    let t = t.clamp(0.0, 1.0) * 10.0;
    let i = (t.floor() as usize).min(9);
    let f = t - i as f64;
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    let mix = |x: f64, y: f64| (x + (y - x) * f).round().clamp(0.0, 255.0) as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// The colour of an IMD decile (1 = most deprived, darkest; 10 = least deprived, lightest).
/// Values outside 1–10 are clamped.
///
/// # Examples
/// ```
/// use healthgap::charts::style::decile_colour;
/// assert_eq!(decile_colour(1), plotters::style::RGBColor(68, 1, 84));
/// ```
pub fn decile_colour(decile: u8) -> RGBColor {
    let d = f64::from(decile.clamp(1, 10));
    viridis((d - 1.0) / 9.0 * VIRIDIS_END)
}

/// The colour of an IMD quintile (1 = most deprived): the colour midway between its two deciles,
/// so quintile and decile charts read alike.
///
/// # Examples
/// ```
/// use healthgap::charts::style::{decile_colour, quintile_colour};
/// assert_ne!(quintile_colour(1), decile_colour(1));
/// ```
pub fn quintile_colour(quintile: u8) -> RGBColor {
    let q = f64::from(quintile.clamp(1, 5));
    viridis((2.0 * q - 1.5) / 9.0 * VIRIDIS_END)
}

/// The colour of quantile `q` of `n` (deciles and quintiles as above; other counts spread over
/// the same scale).
pub fn quantile_colour(q: u8, n: u8) -> RGBColor {
    match n {
        10 => decile_colour(q),
        5 => quintile_colour(q),
        n if n > 1 => viridis(f64::from(q.clamp(1, n) - 1) / f64::from(n - 1) * VIRIDIS_END),
        _ => decile_colour(1),
    }
}

/// Black or white, whichever reads better on `fill` (WCAG relative luminance).
pub fn text_on(fill: RGBColor) -> RGBColor {
    let linear = |c: u8| {
        let c = f64::from(c) / 255.0;
        if c <= 0.03928 {
            c / 12.92
        } else {
            ((c + 0.055) / 1.055).powf(2.4)
        }
    };
    let l = 0.2126 * linear(fill.0) + 0.7152 * linear(fill.1) + 0.0722 * linear(fill.2);
    // Contrast with white is (1.05)/(l+0.05), with black (l+0.05)/0.05: equal at l ≈ 0.179.
    if l > 0.179 { INK } else { BACKGROUND }
}

/// A lighter tint of a colour (towards white by `amount` in 0–1), for fills and bands.
pub fn tint(colour: RGBColor, amount: f64) -> RGBColor {
    let a = amount.clamp(0.0, 1.0);
    let mix = |c: u8| (f64::from(c) + (255.0 - f64::from(c)) * a).round() as u8;
    RGBColor(mix(colour.0), mix(colour.1), mix(colour.2))
}

static BUNDLED: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
static BUNDLED_BOLD: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans-Bold.ttf");

/// Register the bundled DejaVu Sans as plotters' "sans-serif" (regular and bold), once per
/// process. plotters' `ab_glyph` text needs a registered font: without it every text call fails,
/// and relying on system fonts would break on servers that have none. SVGs name the family
/// `sans-serif`, so viewers use their own sans font; layout is measured with DejaVu Sans, one of
/// the widest common sans fonts, so text measured to fit still fits.
///
/// # Errors
/// [`ChartError::Font`] if the bundled font cannot be parsed (a build problem, not a data one).
pub fn register_fonts() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<Result<(), String>> = OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            for (style, bytes) in [
                (FontStyle::Normal, BUNDLED),
                (FontStyle::Bold, BUNDLED_BOLD),
            ] {
                plotters::style::register_font("sans-serif", style, bytes).map_err(|_| {
                    format!("the bundled font for {} text is invalid", style.as_str())
                })?;
            }
            Ok(())
        })
        .clone()
        .map_err(ChartError::Font)
}

/// Device pixels per CSS pixel (1 for SVG, [`PNG_SCALE`] for PNG), and whether the backend is a
/// raster one. Every size in the chart code is written in CSS pixels and passed through this, so
/// both outputs are the same picture.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scale {
    /// Device pixels per CSS pixel.
    pub factor: f64,
    /// Drawing on a bitmap: plotters' `ab_glyph` text sits higher there than in SVG, which
    /// [`Scale::raster_text_shift`] corrects.
    pub raster: bool,
}

impl Scale {
    /// The SVG scale.
    pub const SVG: Scale = Scale {
        factor: 1.0,
        raster: false,
    };
    /// The PNG scale.
    pub const PNG: Scale = Scale {
        factor: PNG_SCALE,
        raster: true,
    };

    /// A raster scale of `factor` device pixels per CSS pixel.
    pub fn raster(factor: f64) -> Scale {
        Scale {
            factor,
            raster: true,
        }
    }

    /// How far to move text down (along its own "down") on a raster backend, in device pixels,
    /// for a plotters font size. plotters' `ab_glyph` text puts the baseline half a font size
    /// below the layout box's top, about 0.12 of the size above where the SVG's `dy` puts it;
    /// without this, labels sit high in their boxes in PNGs.
    pub fn raster_text_shift(self, font_size: f64) -> i32 {
        if self.raster {
            (0.12 * font_size).round() as i32
        } else {
            0
        }
    }

    /// A length in device pixels.
    pub fn px(self, css: f64) -> i32 {
        (css * self.factor).round() as i32
    }

    /// A length in device pixels as a float (for sub-pixel geometry).
    pub fn f(self, css: f64) -> f64 {
        css * self.factor
    }

    /// A line width in device pixels, at least 1.
    pub fn stroke(self, css: f64) -> u32 {
        (css * self.factor).round().max(1.0) as u32
    }

    /// A font size for plotters from a size in CSS pixels. plotters writes `size / 1.24` as the
    /// SVG font size, so this makes the SVG's text exactly `css` pixels.
    pub fn font(self, css: f64) -> f64 {
        css * 1.24 * self.factor
    }

    /// A canvas size in device pixels.
    pub fn canvas(self, (w, h): (u32, u32)) -> (u32, u32) {
        let scale = |v: u32| (f64::from(v) * self.factor).round() as u32;
        (scale(w), scale(h))
    }
}

/// What a value measures, for axis titles and formatting.
#[derive(Debug, Clone, PartialEq)]
pub enum Unit {
    /// A percentage (values 0–100); differences are percentage points.
    Percent,
    /// A rate per `per` (e.g. 100,000) people or person-years.
    Rate {
        /// The multiplier, e.g. 100000.
        per: f64,
    },
    /// A count of people.
    Count,
    /// Anything else, e.g. a score or years of life.
    Other {
        /// How the unit is written after a value in an axis title ("years", "score").
        label: String,
        /// Decimal places to print.
        decimals: usize,
    },
}

impl Unit {
    /// The unit as written in brackets after a measure's name in an axis title: "%",
    /// "per 100,000", "people", or the given label.
    pub fn axis_suffix(&self) -> String {
        match self {
            Unit::Percent => "%".into(),
            Unit::Rate { per } => format!("per {}", format_count(*per)),
            Unit::Count => "people".into(),
            Unit::Other { label, .. } => label.clone(),
        }
    }

    /// An axis title for a measure: "Smoking prevalence (%)".
    pub fn axis_title(&self, measure: &str) -> String {
        let suffix = self.axis_suffix();
        if suffix.is_empty() {
            measure.to_string()
        } else {
            format!("{measure} ({suffix})")
        }
    }

    /// The unit of a difference between two values: "percentage points", "per 100,000".
    pub fn difference_suffix(&self) -> String {
        match self {
            Unit::Percent => "percentage points".into(),
            other => other.axis_suffix(),
        }
    }

    /// Decimal places for values of about `magnitude` in text: one for percentages, rates below
    /// 100 and … ; none for counts and larger rates ("12,345 per 100,000", not "12,345.2").
    pub fn decimals(&self, magnitude: f64) -> usize {
        match self {
            Unit::Percent => 1,
            Unit::Rate { .. } => usize::from(magnitude.abs() < 100.0),
            Unit::Count => 0,
            Unit::Other { decimals, .. } => *decimals,
        }
    }

    /// A value with its unit: "12.3%", "1,235 per 100,000", "1,234".
    pub fn format(&self, value: f64) -> String {
        let bare = self.format_bare(value);
        match self {
            Unit::Percent if value.is_finite() => format!("{bare}%"),
            Unit::Rate { per } => format!("{bare} per {}", format_count(*per)),
            _ => bare,
        }
    }

    /// A value without its unit, as printed in caption brackets and labels.
    pub fn format_bare(&self, value: f64) -> String {
        format_number(value, self.decimals(value))
    }
}

/// The minus sign used in printed numbers (U+2212, which lines up with "+" and reads better than
/// a hyphen).
pub const MINUS: char = '\u{2212}';

/// A number with `decimals` places, thousands separators and a true minus sign; "–" (en dash)
/// for a missing or non-finite value.
///
/// # Examples
/// ```
/// use healthgap::charts::style::format_number;
/// assert_eq!(format_number(1234567.891, 1), "1,234,567.9");
/// assert_eq!(format_number(-0.04, 1), "0.0");
/// assert_eq!(format_number(-12.6, 0), "\u{2212}13");
/// assert_eq!(format_number(f64::NAN, 1), "\u{2013}");
/// ```
pub fn format_number(value: f64, decimals: usize) -> String {
    if !value.is_finite() {
        return "\u{2013}".into();
    }
    let text = format!("{:.*}", decimals, value.abs());
    let (whole, fraction) = match text.split_once('.') {
        Some((w, f)) => (w, Some(f)),
        None => (text.as_str(), None),
    };
    let mut out = String::with_capacity(text.len() + 4);
    // A value that rounds to zero prints without a sign.
    let is_zero = text.chars().all(|c| c == '0' || c == '.');
    if value < 0.0 && !is_zero {
        out.push(MINUS);
    }
    for (i, ch) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    if let Some(fraction) = fraction {
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// A count of people: whole number with thousands separators.
///
/// # Examples
/// ```
/// use healthgap::charts::style::format_count;
/// assert_eq!(format_count(61234.4), "61,234");
/// ```
pub fn format_count(value: f64) -> String {
    format_number(value, 0)
}

/// A percentage (value already ×100) with a "%" sign.
///
/// # Examples
/// ```
/// use healthgap::charts::style::format_percent;
/// assert_eq!(format_percent(12.345, 1), "12.3%");
/// ```
pub fn format_percent(value: f64, decimals: usize) -> String {
    if value.is_finite() {
        format!("{}%", format_number(value, decimals))
    } else {
        format_number(value, decimals)
    }
}

/// A rate per 100,000 with its unit.
///
/// # Examples
/// ```
/// use healthgap::charts::style::format_rate;
/// assert_eq!(format_rate(1234.56), "1,235 per 100,000");
/// ```
pub fn format_rate(value: f64) -> String {
    Unit::Rate { per: 100_000.0 }.format(value)
}

/// A signed difference: "+1.2", "−3.4" (a plus sign makes the direction explicit in captions).
///
/// # Examples
/// ```
/// use healthgap::charts::style::format_signed;
/// assert_eq!(format_signed(1.23, 1), "+1.2");
/// assert_eq!(format_signed(-1.23, 1), "\u{2212}1.2");
/// ```
pub fn format_signed(value: f64, decimals: usize) -> String {
    let text = format_number(value, decimals);
    let is_zero = text.chars().all(|c| c == '0' || c == '.');
    if value > 0.0 && !is_zero {
        format!("+{text}")
    } else {
        text
    }
}

/// Tick values for an axis over [min, max]: "nice" steps (1, 2, 2.5 or 5 × 10ⁿ) giving about
/// `target` ticks, all inside the range. Empty for a non-finite or empty range.
pub fn nice_ticks(min: f64, max: f64, target: usize) -> Vec<f64> {
    if !(min.is_finite() && max.is_finite()) || max <= min {
        return Vec::new();
    }
    let step = nice_step((max - min) / target.max(1) as f64);
    let first = (min / step).ceil();
    let last = (max / step).floor();
    let count = (last - first).max(-1.0) as i64 + 1;
    (0..count.clamp(0, 1000))
        .map(|i| {
            let v = (first + i as f64) * step;
            // Snap values like 0.30000000000000004 so labels print cleanly.
            (v / step).round() * step
        })
        .collect()
}

/// A nice step (1, 2, 2.5, 5 × 10ⁿ) at least `raw`.
pub fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 2.5 {
        2.5
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    nice * magnitude
}

/// Decimal places needed to print ticks `step` apart.
pub fn step_decimals(step: f64) -> usize {
    if !(step.is_finite() && step > 0.0) {
        return 0;
    }
    let mut decimals = 0;
    let mut scaled = step;
    while decimals < 6 && (scaled - scaled.round()).abs() > 1e-9 * scaled.abs().max(1.0) {
        scaled *= 10.0;
        decimals += 1;
    }
    decimals
}

/// Extend [min, max] to nice tick boundaries (and at least a little range), for axes.
pub fn nice_range(min: f64, max: f64, target: usize) -> (f64, f64) {
    let (lo, hi, _) = nice_span(min, max, target);
    (lo, hi)
}

/// [`nice_range`] with its tick step: the range starts and ends on a tick.
pub fn nice_span(min: f64, max: f64, target: usize) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (min, max);
    if !(lo.is_finite() && hi.is_finite()) {
        return (0.0, 1.0, 0.25);
    }
    if hi - lo <= f64::EPSILON * hi.abs().max(1.0) {
        // A flat series: give it a range around the value so it sits mid-plot.
        let pad = if lo == 0.0 { 1.0 } else { lo.abs() * 0.1 };
        lo -= pad;
        hi += pad;
    }
    let step = nice_step((hi - lo) / target.max(1) as f64);
    ((lo / step).floor() * step, (hi / step).ceil() * step, step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decile_colours_darken_towards_most_deprived() {
        let lightness = |c: RGBColor| u32::from(c.0) + u32::from(c.1) + u32::from(c.2);
        for d in 1..10 {
            assert!(lightness(decile_colour(d)) < lightness(decile_colour(d + 1)));
        }
        for q in 1..5 {
            assert!(lightness(quintile_colour(q)) < lightness(quintile_colour(q + 1)));
        }
    }

    #[test]
    fn text_on_picks_contrast() {
        assert_eq!(text_on(decile_colour(1)), BACKGROUND);
        assert_eq!(text_on(decile_colour(10)), INK);
    }

    #[test]
    fn format_number_groups_and_signs() {
        assert_eq!(format_number(0.0, 0), "0");
        assert_eq!(format_number(999.96, 1), "1,000.0");
        assert_eq!(format_number(-1234.0, 0), "\u{2212}1,234");
        assert_eq!(format_number(100000.0, 0), "100,000");
        assert_eq!(format_number(f64::INFINITY, 0), "\u{2013}");
    }

    #[test]
    fn units_format_values_and_titles() {
        assert_eq!(Unit::Percent.axis_title("Smoking"), "Smoking (%)");
        assert_eq!(
            Unit::Rate { per: 100_000.0 }.axis_title("Admissions"),
            "Admissions (per 100,000)"
        );
        assert_eq!(Unit::Percent.difference_suffix(), "percentage points");
        assert_eq!(Unit::Count.format(1234.0), "1,234");
        assert_eq!(
            Unit::Rate { per: 100_000.0 }.format(12345.6),
            "12,346 per 100,000"
        );
        assert_eq!(Unit::Rate { per: 1000.0 }.format(12.34), "12.3 per 1,000");
        assert_eq!(Unit::Percent.format(12.34), "12.3%");
    }

    #[test]
    fn nice_ticks_cover_range() {
        assert_eq!(
            nice_ticks(0.0, 10.0, 5),
            vec![0.0, 2.0, 4.0, 6.0, 8.0, 10.0]
        );
        assert_eq!(nice_ticks(0.0, 0.0, 5), Vec::<f64>::new());
        assert_eq!(nice_ticks(f64::NAN, 1.0, 5), Vec::<f64>::new());
        let (lo, hi) = nice_range(3.2, 27.9, 5);
        assert!(lo <= 3.2 && hi >= 27.9);
        let (lo, hi) = nice_range(5.0, 5.0, 5);
        assert!(lo < 5.0 && hi > 5.0);
        assert_eq!(step_decimals(0.25), 2);
        assert_eq!(step_decimals(5.0), 0);
    }

    #[test]
    fn fonts_register_once() {
        assert!(register_fonts().is_ok());
        assert!(register_fonts().is_ok());
    }
}
