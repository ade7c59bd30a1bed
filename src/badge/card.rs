//! The printable badge: an ID-1 card (85.6 × 54 mm, the size of a bank card) as SVG, with the
//! election, the observer's names, citizenship, organization, accreditation number, expiry
//! and the QR code of the token; and A4 sheets of ten cards to print and cut. Pure: the
//! caller signs the token and says what the QR code holds (`Badges::qr_payload`).
//!
//! The card's user unit is the millimetre. Text is measured by estimate (no fonts here), so
//! any line that may not fit is shrunk, then squeezed with `textLength`, and the text column
//! is a nested `<svg>` that clips whatever a font still draws wider than estimated.

use std::fmt::Write;

use chrono::{DateTime, Utc};
use qrcode::{Color, EcLevel, QrCode};

use crate::client::badge::BadgeClaims;

/// The card's size in millimetres (ISO/IEC 7810 ID-1).
pub const WIDTH_MM: f64 = 85.6;
pub const HEIGHT_MM: f64 = 54.0;

/// The QR code's square with its quiet zone, as large as the card's height allows with a
/// margin for the cut all round; right-aligned.
const QR_SIDE: f64 = 50.0;
const QR_MARGIN: f64 = 2.0;
/// The quiet zone the QR standard asks for, in modules.
const QUIET_MODULES: usize = 4;
// The text column left of the QR code, and where its text starts and may end. Written out
// rather than computed, so that the SVG holds short numbers; a test checks them against the
// card's and the QR code's sizes.
const TEXT_X: f64 = 3.5;
const COLUMN_WIDTH: f64 = 33.6;
const TEXT_WIDTH: f64 = 28.6;
/// Generic families last, so any machine draws the card.
const FONTS: &str = "'DejaVu Sans', 'Noto Sans', 'Liberation Sans', Arial, Helvetica, sans-serif";
const ACCENT: &str = "#1d3557";
const LABEL: &str = "#5c677d";

/// What a card shows.
#[derive(Debug, Clone, Copy)]
pub struct Card<'a> {
    /// The election's display name (the claims name only `elections/{id}`).
    pub election_display_name: &'a str,
    pub claims: &'a BadgeClaims,
    /// What the QR code holds: the token, or the verification URL with it.
    pub qr_payload: &'a str,
}

/// The QR code cannot hold the payload even at the lowest error correction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a QR code cannot hold a badge of {0} bytes")]
pub struct PayloadTooLong(pub usize);

/// The card as a standalone SVG document.
pub fn render(card: &Card<'_>) -> Result<String, PayloadTooLong> {
    let qr = qr_code(card.qr_payload)?;
    let mut svg = String::with_capacity(8 * 1024);
    // Writing to a String cannot fail.
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH_MM}mm" height="{HEIGHT_MM}mm" viewBox="0 0 {WIDTH_MM} {HEIGHT_MM}" font-family="{FONTS}">"#
    );
    let _ = write!(
        svg,
        r##"<title>Observer badge {}</title><rect width="{WIDTH_MM}" height="{HEIGHT_MM}" rx="3" fill="#fff" stroke="#c9ced6" stroke-width="0.2"/>"##,
        escape(&card.claims.accreditation_number)
    );
    text_column(&mut svg, card);
    qr_square(&mut svg, &qr);
    svg.push_str("</svg>");
    Ok(svg)
}

/// The text beside the QR code, in a nested viewport that clips it to its column.
fn text_column(svg: &mut String, card: &Card<'_>) {
    let claims = card.claims;
    let _ = write!(
        svg,
        r#"<svg width="{COLUMN_WIDTH}" height="{HEIGHT_MM}" viewBox="0 0 {COLUMN_WIDTH} {HEIGHT_MM}"><path d="M0 3A3 3 0 0 1 3 0H{COLUMN_WIDTH}V15H0Z" fill="{ACCENT}"/>"#
    );
    let line = |y: f64, size: f64, bold: bool, fill: &'static str| Line {
        y,
        size,
        bold,
        fill,
    };
    line(4.3, 1.9, true, "#fff").write(svg, "INTERNATIONAL OBSERVER");
    line(7.6, 2.3, false, "#fff").write_wrapped(svg, card.election_display_name, 2.75);
    line(20.5, 4.4, true, ACCENT).write(svg, &claims.family_name);
    line(24.8, 3.0, false, "#000").write(svg, &claims.given_name);
    line(28.6, 1.6, false, LABEL).write(svg, "CITIZENSHIP");
    line(31.3, 2.5, true, "#000").write(svg, &claims.citizenship);
    line(34.4, 1.6, false, LABEL).write(svg, "ORGANIZATION");
    line(36.8, 2.0, false, "#000").write_wrapped(svg, &claims.organization_display_name, 2.3);
    line(44.4, 1.6, false, LABEL).write(svg, "ACCREDITATION NO.");
    line(47.2, 2.5, true, "#000").write(svg, &claims.accreditation_number);
    let valid_until = format!("Valid until {}", last_valid_day(claims.expire_unix_seconds));
    line(51.6, 2.2, true, ACCENT).write(svg, &valid_until);
    svg.push_str("</svg>");
}

/// The last day a badge is valid: it expires at the start (UTC) of the day after, and a
/// card saying "valid until" the expiry day would promise a day too many.
fn last_valid_day(expire_unix_seconds: i64) -> String {
    DateTime::<Utc>::from_timestamp(expire_unix_seconds.saturating_sub(1), 0)
        .map(|last| last.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// One line of text in the column.
#[derive(Clone, Copy)]
struct Line {
    y: f64,
    size: f64,
    bold: bool,
    fill: &'static str,
}

impl Line {
    /// Writes `content` shrunk to fit the column: first a smaller font (down to 70 %), then
    /// squeezed to the column's width.
    fn write(&self, svg: &mut String, content: &str) {
        let width = estimated_width(content, self.size, self.bold);
        let smallest = self.size * 0.7;
        let fitted = self.size * (TEXT_WIDTH / width).min(1.0);
        let (size, squeeze) = if fitted >= smallest {
            (fitted, String::new())
        } else {
            let squeeze = format!(r#" textLength="{TEXT_WIDTH}" lengthAdjust="spacingAndGlyphs""#);
            (smallest, squeeze)
        };
        let weight = if self.bold {
            r#" font-weight="bold""#
        } else {
            ""
        };
        let _ = write!(
            svg,
            r#"<text x="{TEXT_X}" y="{y:.2}" font-size="{size:.2}" fill="{fill}"{weight}{squeeze}>{text}</text>"#,
            y = self.y,
            fill = self.fill,
            text = escape(content),
        );
    }

    /// Writes `content` in up to three lines, `spacing` apart, each shrunk to fit.
    fn write_wrapped(&self, svg: &mut String, content: &str, spacing: f64) {
        for (row, words) in (0u32..).zip(wrap(content, self.size, self.bold, 3)) {
            let line = Line {
                y: self.y + spacing * f64::from(row),
                ..*self
            };
            line.write(svg, &words);
        }
    }
}

/// How wide `text` is likely to be, in mm, in a common sans-serif face: generous, so that a
/// line is shrunk rather than clipped.
fn estimated_width(text: &str, size: f64, bold: bool) -> f64 {
    let ems: f64 = text
        .chars()
        .map(|c| match c {
            ' ' => 0.33,
            'i' | 'l' | 'j' | '.' | ',' | '\'' | '|' | '!' => 0.3,
            'M' | 'W' | 'm' | 'w' => 0.9,
            c if c.is_ascii_uppercase() || c.is_ascii_digit() => 0.68,
            c if c.is_ascii() => 0.6,
            // Full-width: Hangul, CJK, kana, Yi, full-width forms.
            c if matches!(
                u32::from(c),
                0x1100..=0x115F
                    | 0x2E80..=0xA4CF
                    | 0xAC00..=0xD7A3
                    | 0xF900..=0xFAFF
                    | 0xFF00..=0xFF60
                    | 0x20000..
            ) =>
            {
                1.0
            }
            _ => 0.65,
        })
        .sum();
    ems * size * if bold { 1.12 } else { 1.0 }
}

/// Words in at most `max_lines` lines of the column; what does not fit goes on the last,
/// which `Line::write` squeezes.
fn wrap(text: &str, size: f64, bold: bool, max_lines: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    for word in text.split_whitespace() {
        let full = lines.len() == max_lines;
        match lines.last_mut() {
            Some(line)
                if full || estimated_width(&format!("{line} {word}"), size, bold) <= TEXT_WIDTH =>
            {
                line.push(' ');
                line.push_str(word);
            }
            _ => lines.push(word.to_owned()),
        }
    }
    lines
}

/// The QR code: medium error correction (15 % damage) while it fits, else low, so that a
/// token of names in any script still fits on the card.
fn qr_code(payload: &str) -> Result<QrCode, PayloadTooLong> {
    QrCode::with_error_correction_level(payload, EcLevel::M)
        .or_else(|_| QrCode::with_error_correction_level(payload, EcLevel::L))
        .map_err(|_| PayloadTooLong(payload.len()))
}

/// The QR code's white square and its dark modules as one path, one subpath per horizontal
/// run, in module units scaled to the square.
fn qr_square(svg: &mut String, qr: &QrCode) {
    let width = qr.width();
    let module = QR_SIDE / (width + 2 * QUIET_MODULES) as f64;
    let (x, y) = (COLUMN_WIDTH, QR_MARGIN);
    let _ = write!(
        svg,
        r##"<rect x="{x}" y="{y}" width="{QR_SIDE}" height="{QR_SIDE}" fill="#fff"/><path transform="translate({x} {y}) scale({module:.5})" shape-rendering="crispEdges" fill="#000" d=""##
    );
    let colors = qr.to_colors();
    for (row, modules) in colors.chunks(width).enumerate() {
        let mut column = 0;
        while column < width {
            if modules[column] == Color::Light {
                column += 1;
                continue;
            }
            let run = modules[column..]
                .iter()
                .take_while(|m| **m == Color::Dark)
                .count();
            let _ = write!(
                svg,
                "M{} {}h{run}v1h-{run}z",
                column + QUIET_MODULES,
                row + QUIET_MODULES
            );
            column += run;
        }
    }
    svg.push_str(r#""/>"#);
}

/// `text` as XML character data or attribute value: markup escaped, and the characters
/// XML 1.0 forbids (control characters) dropped, so that any name makes a valid document.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&apos;"),
            '\t' | '\n' | '\r' => escaped.push(' '),
            c if c < ' ' || matches!(c, '\u{FFFE}' | '\u{FFFF}') => {}
            c => escaped.push(c),
        }
    }
    escaped
}

/// A4 sheets' size in millimetres, and their grid of cards.
const SHEET_WIDTH: f64 = 210.0;
const SHEET_HEIGHT: f64 = 297.0;
pub const CARDS_PER_SHEET: usize = 10;
const COLUMNS: usize = 2;
const GAP_X: f64 = 6.0;
const GAP_Y: f64 = 3.0;

/// An A4 sheet of up to ten cards (2 columns × 5 rows), each at its real size with a thin
/// cut outline. `cards` are documents made by [`render`].
///
/// The sheet's user unit is the CSS pixel (96 per inch), so that each card's own
/// `width="85.6mm"` keeps its real size when nested as it is.
pub fn sheet(cards: &[&str]) -> String {
    let px = |mm: f64| mm * 96.0 / 25.4;
    let rows = CARDS_PER_SHEET / COLUMNS;
    let margin_x = (SHEET_WIDTH - COLUMNS as f64 * WIDTH_MM - GAP_X) / 2.0;
    let margin_y = (SHEET_HEIGHT - rows as f64 * HEIGHT_MM - (rows - 1) as f64 * GAP_Y) / 2.0;
    let mut svg = String::with_capacity(cards.iter().map(|c| c.len()).sum::<usize>() + 4096);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{SHEET_WIDTH}mm" height="{SHEET_HEIGHT}mm" viewBox="0 0 {:.4} {:.4}">"#,
        px(SHEET_WIDTH),
        px(SHEET_HEIGHT)
    );
    for (index, card) in cards.iter().take(CARDS_PER_SHEET).enumerate() {
        let x = margin_x + (index % COLUMNS) as f64 * (WIDTH_MM + GAP_X);
        let y = margin_y + (index / COLUMNS) as f64 * (HEIGHT_MM + GAP_Y);
        let _ = write!(
            svg,
            r##"<rect x="{:.4}" y="{:.4}" width="{:.4}" height="{:.4}" fill="none" stroke="#999" stroke-width="0.5" stroke-dasharray="4 3"/>"##,
            px(x),
            px(y),
            px(WIDTH_MM),
            px(HEIGHT_MM)
        );
        let body = card.trim_start();
        let body = match body.strip_prefix("<?xml") {
            Some(rest) => rest.split_once("?>").map_or(rest, |(_, after)| after),
            None => body,
        };
        // The card's root placed on the sheet: its own width and height stay as they are.
        let placed =
            body.trim_start()
                .replacen("<svg ", &format!(r#"<svg x="{x:.2}mm" y="{y:.2}mm" "#), 1);
        svg.push_str(&placed);
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests;
