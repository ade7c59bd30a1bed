use super::*;

fn claims() -> BadgeClaims {
    BadgeClaims {
        accreditation_number: "KZ-2023-000017".into(),
        election: "elections/kz-2023".into(),
        given_name: "Bakhtiyor".into(),
        family_name: "Hudoerzoda".into(),
        citizenship: "TJ".into(),
        organization_display_name: "CCER of Tajikistan".into(),
        // 2023-04-18T00:00:00Z
        expire_unix_seconds: 1_681_776_000,
    }
}

fn card_of(claims: &BadgeClaims, payload: &str) -> String {
    render(&Card {
        election_display_name: "Early Presidential Election 2023",
        claims,
        qr_payload: payload,
    })
    .unwrap()
}

/// A token as long as a badge with long names makes.
fn long_token() -> String {
    "eyJhbGciOiJFZERTQSJ9.".to_owned() + &"A".repeat(480)
}

fn parses(svg: &str) -> resvg::usvg::Tree {
    resvg::usvg::Tree::from_str(svg, &resvg::usvg::Options::default()).unwrap()
}

#[test]
fn the_text_column_and_the_qr_code_share_the_card() {
    assert!((COLUMN_WIDTH + QR_SIDE + QR_MARGIN - WIDTH_MM).abs() < 1e-9);
    assert!((TEXT_X + TEXT_WIDTH + 1.5 - COLUMN_WIDTH).abs() < 1e-9);
    assert!((QR_SIDE + 2.0 * QR_MARGIN - HEIGHT_MM).abs() < 1e-9);
}

#[test]
fn a_card_is_id_1_size_in_millimetres() {
    let svg = card_of(&claims(), "token");
    assert!(svg.starts_with(r#"<svg xmlns="http://www.w3.org/2000/svg" width="85.6mm" height="54mm" viewBox="0 0 85.6 54""#));
    let tree = parses(&svg);
    // usvg sizes in CSS pixels: 96 per inch.
    assert!((tree.size().width() - 85.6 * 96.0 / 25.4).abs() < 0.01);
    assert!((tree.size().height() - 54.0 * 96.0 / 25.4).abs() < 0.01);
}

#[test]
fn a_card_shows_the_record_and_the_last_valid_day() {
    let svg = card_of(&claims(), "token");
    for shown in [
        "Early Presidential",
        "Hudoerzoda",
        "Bakhtiyor",
        ">TJ<",
        "CCER of Tajikistan",
        "KZ-2023-000017",
        "Valid until 2023-04-17",
    ] {
        assert!(svg.contains(shown), "{shown} missing");
    }
}

#[test]
fn the_qr_code_is_one_path_of_dark_modules_with_a_quiet_zone() {
    let svg = card_of(&claims(), &long_token());
    assert_eq!(svg.matches("shape-rendering=\"crispEdges\"").count(), 1);
    let path = svg.split("crispEdges").nth(1).unwrap();
    // The first dark module is the finder pattern's corner, after the quiet zone.
    assert!(path.contains(r#"d="M4 4h7v1h-7z"#), "{}", &path[..200]);
}

#[test]
fn a_500_character_token_fits_at_medium_error_correction() {
    let token = long_token();
    assert!(token.len() > 500);
    let qr = qr_code(&token).unwrap();
    assert_eq!(qr.error_correction_level(), EcLevel::M);
    // Modules of at least half a millimetre on the card, to scan from print.
    let module = QR_SIDE / (qr.width() + 2 * QUIET_MODULES) as f64;
    assert!(module >= 0.45, "{module} mm");
    // Beyond a QR code's largest (2953 bytes at low error correction).
    assert!(qr_code(&"a".repeat(3000)).is_err());
}

#[test]
fn markup_in_names_is_escaped_and_the_card_stays_valid_xml() {
    let mut claims = claims();
    claims.family_name = r#"O'Brien <script>&"x""#.into();
    claims.given_name = "Zoë\u{0}\u{7} 山田".into();
    claims.organization_display_name = "A & B <Observers>".into();
    let svg = card_of(&claims, "token");
    assert!(svg.contains("O&apos;Brien &lt;script&gt;&amp;&quot;x&quot;"));
    assert!(svg.contains("Zoë 山田"));
    assert!(svg.contains("A &amp; B &lt;Observers&gt;"));
    assert!(!svg.contains("<script>"));
    parses(&svg);
}

#[test]
fn long_text_is_shrunk_to_the_column() {
    let mut claims = claims();
    claims.family_name = "Wolfeschlegelsteinhausenbergerdorff-Featherstonehaugh".into();
    claims.organization_display_name =
        "Parliamentary Assembly of the Organization for Security and Co-operation in Europe".into();
    let svg = card_of(&claims, "token");
    // The family name is squeezed; the organization wraps onto three lines, the last smaller.
    let squeezed = format!(r#"textLength="{TEXT_WIDTH}""#);
    assert_eq!(svg.matches(&squeezed).count(), 1, "{svg}");
    assert!(svg.contains(&format!(
        r#"{squeezed} lengthAdjust="spacingAndGlyphs">Wolfe"#
    )));
    assert!(svg.contains(">Parliamentary Assembly</text>"));
    assert!(
        svg.contains(
            r##"font-size="1.48" fill="#000">Security and Co-operation in Europe</text>"##
        )
    );
    // Short text keeps its size and is not stretched.
    assert!(svg.contains(r##"font-size="3.00" fill="#000">Bakhtiyor</text>"##));
}

#[test]
fn a_long_election_name_wraps_onto_three_lines_at_most() {
    let name = "Early Presidential Election of the Republic of Kazakhstan, \
                held on the nineteenth of March two thousand and twenty-three";
    let lines = wrap(name, 2.3, false, 3);
    assert_eq!(lines.len(), 3);
    assert_eq!(lines.join(" "), name);
    assert!(estimated_width(&lines[0], 2.3, false) <= TEXT_WIDTH);
    assert_eq!(wrap("Short", 2.3, false, 3), vec!["Short".to_owned()]);
}

#[test]
fn a_sheet_is_a4_with_ten_cards_at_their_real_size() {
    let card = card_of(&claims(), "token");
    let cards: Vec<&str> = std::iter::repeat_n(card.as_str(), 12).collect();
    let svg = sheet(&cards);
    assert!(svg.contains(r#"width="210mm" height="297mm""#));
    assert_eq!(svg.matches(r#"width="85.6mm" height="54mm""#).count(), 10);
    assert_eq!(svg.matches("stroke-dasharray").count(), 10);
    let tree = parses(&svg);
    assert!((tree.size().width() - 210.0 * 96.0 / 25.4).abs() < 0.01);
    // The last card's bottom edge is on the sheet.
    let bottom = tree.root().abs_bounding_box().bottom();
    assert!(bottom < 297.0 * 96.0 / 25.4, "{bottom}");
}
