//! ISO 3166-1 alpha-2 country codes, validated against the real list.

use std::fmt;

/// An upper-case ISO 3166-1 alpha-2 code of an assigned country, e.g. `KZ`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CountryCode([u8; 2]);

impl CountryCode {
    pub fn parse(code: &str) -> Result<Self, String> {
        let bytes = code.as_bytes();
        if bytes.len() != 2 || !bytes.iter().all(u8::is_ascii_uppercase) {
            return Err(format!(
                "`{code}` is not an ISO 3166-1 alpha-2 code (two upper-case letters, e.g. KZ)"
            ));
        }
        if celes::Country::from_alpha2(code).is_err() {
            return Err(format!(
                "`{code}` is not an assigned ISO 3166-1 alpha-2 country code"
            ));
        }
        Ok(CountryCode([bytes[0], bytes[1]]))
    }

    pub fn as_str(&self) -> &str {
        // Both bytes are ASCII upper-case letters, checked in `parse`.
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl fmt::Display for CountryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_assigned_codes_and_refuses_the_rest() {
        assert_eq!(CountryCode::parse("KZ").unwrap().as_str(), "KZ");
        assert!(CountryCode::parse("XX").is_err());
        assert!(CountryCode::parse("kz").is_err());
        assert!(CountryCode::parse("KAZ").is_err());
        assert!(CountryCode::parse("").is_err());
    }
}
