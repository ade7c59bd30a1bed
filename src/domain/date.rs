//! Calendar dates as the contract writes them: ISO 8601 `YYYY-MM-DD`.

use chrono::NaiveDate;

/// Parses a calendar date; impossible dates such as `2023-02-30` are refused.
pub fn parse_date(text: &str) -> Result<NaiveDate, String> {
    let well_formed = text.len() == 10
        && text.bytes().enumerate().all(|(i, b)| {
            if i == 4 || i == 7 {
                b == b'-'
            } else {
                b.is_ascii_digit()
            }
        });
    if !well_formed {
        return Err(format!("`{text}` is not a date in the form YYYY-MM-DD"));
    }
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a real calendar date"))
}

/// Formats a date the way the contract writes it.
pub fn format_date(date: NaiveDate) -> String {
    date.format("%Y-%m-%d").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_real_dates_only() {
        assert_eq!(
            parse_date("2023-03-19").unwrap(),
            NaiveDate::from_ymd_opt(2023, 3, 19).unwrap()
        );
        assert!(parse_date("2023-02-30").is_err());
        assert!(parse_date("2023-3-19").is_err());
        assert!(parse_date("19.03.2023").is_err());
        assert!(parse_date("").is_err());
        assert_eq!(format_date(parse_date("2024-02-29").unwrap()), "2024-02-29");
    }
}
