//! Badges as a person sees them: an SVG card drawn to pixels (with the machine's fonts) and
//! its QR code scanned back, as a phone at a border post would.
#![allow(dead_code)]

use std::sync::{Arc, OnceLock};

use resvg::tiny_skia::{Pixmap, Transform};
use resvg::usvg;

/// The system's fonts, loaded once for every test.
fn fonts() -> Arc<usvg::fontdb::Database> {
    static FONTS: OnceLock<Arc<usvg::fontdb::Database>> = OnceLock::new();
    FONTS
        .get_or_init(|| {
            let mut fonts = usvg::fontdb::Database::new();
            fonts.load_system_fonts();
            Arc::new(fonts)
        })
        .clone()
}

/// Parses `svg` as an SVG renderer does; panics on a document that is not valid.
pub fn parse(svg: &str) -> usvg::Tree {
    let options = usvg::Options {
        fontdb: fonts(),
        ..Default::default()
    };
    usvg::Tree::from_str(svg, &options).unwrap_or_else(|e| panic!("not a valid SVG: {e}"))
}

/// `svg` drawn on white, `width` pixels wide.
pub fn render(svg: &str, width: u32) -> Pixmap {
    let tree = parse(svg);
    let scale = width as f32 / tree.size().width();
    let height = (tree.size().height() * scale).ceil() as u32;
    let mut pixmap = Pixmap::new(width, height).unwrap();
    pixmap.fill(resvg::tiny_skia::Color::WHITE);
    resvg::render(
        &tree,
        Transform::from_scale(scale, scale),
        &mut pixmap.as_mut(),
    );
    pixmap
}

/// What the QR codes in the picture hold, as a scanner reads them.
pub fn scan_all(pixmap: &Pixmap) -> Vec<String> {
    let width = pixmap.width() as usize;
    let pixels = pixmap.pixels();
    let mut image =
        rqrr::PreparedImage::prepare_from_greyscale(width, pixmap.height() as usize, |x, y| {
            let pixel = pixels[y * width + x].demultiply();
            // Luma of the drawn colour.
            ((u32::from(pixel.red()) * 299
                + u32::from(pixel.green()) * 587
                + u32::from(pixel.blue()) * 114)
                / 1000) as u8
        });
    image
        .detect_grids()
        .iter()
        .map(|grid| grid.decode().expect("a QR code that does not decode").1)
        .collect()
}

/// What the one QR code of a card holds, drawn at 12 pixels per millimetre (a phone's view
/// of a printed card is sharper).
pub fn scan(svg: &str) -> String {
    let found = scan_all(&render(svg, 1027));
    assert_eq!(found.len(), 1, "QR codes found: {found:?}");
    found.into_iter().next().unwrap()
}
