//! The parsed parts of an observer's identity and contacts: once parsed, always valid
//! (`CountryCode` is the model). PostgreSQL holds the same rules (CHECKs on `observers`), so
//! values read back from it are taken as they are, with `from_stored`.

use std::fmt;

use chrono::NaiveDate;

use crate::domain::text::{self, TextError};

/// A given or family name: one line, NFC, at most 200 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

impl PersonName {
    pub fn parse(value: &str) -> Result<Self, TextError> {
        text::NAME.parse(value).map(PersonName)
    }

    /// A value read from the database, which refuses any other (`observers_text`).
    pub fn from_stored(value: String) -> Self {
        PersonName(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A travel document number in canonical form (API.md): spaces, hyphens and dots removed,
/// letters upper-cased, then 5–20 characters of `A–Z` and `0–9`, the alphabet of ICAO
/// Doc 9303 machine-readable documents. `AB 123-4567`, `ab1234567` and `AB1234567` are one
/// document; a Cyrillic look-alike letter or a zero-width space is refused, not kept.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TravelDocumentNumber(String);

impl TravelDocumentNumber {
    pub const MIN_CHARS: usize = 5;
    pub const MAX_CHARS: usize = 20;

    pub fn parse(value: &str) -> Result<Self, TextError> {
        let canonical: String = value
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '.'))
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if canonical.is_empty() {
            return Err(TextError("is required".to_owned()));
        }
        if let Some(c) = canonical
            .chars()
            .find(|c| !(c.is_ascii_uppercase() || c.is_ascii_digit()))
        {
            return Err(TextError(format!(
                "may hold only the letters A-Z and the digits 0-9 (with spaces, hyphens and \
                 dots, which are dropped); U+{:04X} is not one of them",
                u32::from(c)
            )));
        }
        let chars = canonical.len();
        if !(Self::MIN_CHARS..=Self::MAX_CHARS).contains(&chars) {
            return Err(TextError(format!(
                "must have {} to {} letters and digits, not {chars}",
                Self::MIN_CHARS,
                Self::MAX_CHARS
            )));
        }
        Ok(TravelDocumentNumber(canonical))
    }

    /// A value read from the database (`observers_travel_document_canonical`).
    pub fn from_stored(value: String) -> Self {
        TravelDocumentNumber(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for TravelDocumentNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An e-mail address: one `@`, a dotted domain, no blanks, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(value: &str) -> Result<Self, TextError> {
        let email = text::LABEL.parse(value)?;
        let well_formed = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && email.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.contains('@')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if well_formed {
            Ok(Email(email))
        } else {
            Err(TextError("is not an e-mail address".to_owned()))
        }
    }

    pub fn from_stored(value: String) -> Self {
        Email(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A phone number as people write it: digits, spaces, `+ - ( )`, at least 5 digits, at most
/// 32 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(value: &str) -> Result<Self, TextError> {
        let phone = value.trim();
        let well_formed = phone.len() <= 32
            && phone.chars().filter(char::is_ascii_digit).count() >= 5
            && phone
                .chars()
                .all(|c| c.is_ascii_digit() || " +-()".contains(c));
        if well_formed {
            Ok(Phone(phone.to_owned()))
        } else {
            Err(TextError(
                "is not a phone number (digits, spaces, + - ( ), at most 32)".to_owned(),
            ))
        }
    }

    pub fn from_stored(value: String) -> Self {
        Phone(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A date of birth: a real calendar date before today.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct DateOfBirth(NaiveDate);

impl DateOfBirth {
    pub fn parse(value: &str, today: NaiveDate) -> Result<Self, String> {
        let date = crate::domain::date::parse_date(value)?;
        if date >= today {
            return Err("must be in the past".to_owned());
        }
        Ok(DateOfBirth(date))
    }

    pub fn from_stored(date: NaiveDate) -> Self {
        DateOfBirth(date)
    }

    pub fn date(self) -> NaiveDate {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn document_numbers_are_one_document_however_they_are_written() {
        for written in [
            "AB 123-4567",
            "ab1234567",
            "AB1234567",
            "AB.123.4567",
            " AB 1234567 ",
        ] {
            assert_eq!(
                TravelDocumentNumber::parse(written).unwrap().as_str(),
                "AB1234567",
                "{written:?}"
            );
        }
    }

    #[test]
    fn document_numbers_outside_the_machine_readable_alphabet_are_refused() {
        // Cyrillic А and В look like Latin A and B.
        assert!(TravelDocumentNumber::parse("\u{410}\u{412}1234567").is_err());
        assert!(TravelDocumentNumber::parse("AB1234567\u{200B}").is_err());
        assert!(TravelDocumentNumber::parse("AB_1234567").is_err());
        assert!(TravelDocumentNumber::parse("AB\t1234567").is_err());
        assert!(TravelDocumentNumber::parse("").is_err());
        assert!(TravelDocumentNumber::parse(" - . ").is_err());
    }

    #[test]
    fn document_numbers_have_five_to_twenty_characters() {
        assert!(TravelDocumentNumber::parse("A123").is_err());
        assert!(TravelDocumentNumber::parse("A1234").is_ok());
        assert!(TravelDocumentNumber::parse(&"9".repeat(20)).is_ok());
        assert!(TravelDocumentNumber::parse(&"9".repeat(21)).is_err());
    }

    #[test]
    fn names_follow_the_text_rule() {
        assert_eq!(PersonName::parse(" Anna ").unwrap().as_str(), "Anna");
        assert!(PersonName::parse("An\u{0}na").is_err());
        assert!(PersonName::parse("An\u{7}na").is_err());
        assert!(PersonName::parse("").is_err());
    }

    #[test]
    fn contacts_are_checked() {
        assert!(Email::parse("anna@example.org").is_ok());
        assert!(Email::parse("anna@example").is_err());
        assert!(Email::parse("anna example@x.org").is_err());
        assert!(Email::parse("anna@x.org\u{200B}").is_err());
        assert!(Phone::parse("+7 (717) 123-45-67").is_ok());
        assert!(Phone::parse("call me").is_err());
    }

    #[test]
    fn dates_of_birth_are_in_the_past() {
        let today = NaiveDate::from_ymd_opt(2023, 3, 19).unwrap();
        assert!(DateOfBirth::parse("1970-01-01", today).is_ok());
        assert!(DateOfBirth::parse("2023-03-19", today).is_err());
        assert!(DateOfBirth::parse("1970-02-30", today).is_err());
    }
}
