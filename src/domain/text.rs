//! Text as the registry keeps it (API.md, "The record is the official record"): NFC
//! normalized, trimmed, bounded, and free of control characters (Unicode Cc, NUL included;
//! LF only in multi-line fields) and of the invisible format characters that make two
//! records look alike (zero-width spaces, bidirectional overrides, the BOM).
//!
//! PostgreSQL holds the same rule (`registry_text_ok` in the migrations), so text that
//! reached the database some other way is held to it too.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// What a kind of text allows. Each field of the contract uses one of the constants below,
/// so that two fields of the same kind cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TextKind {
    /// Whether empty (after trimming) is refused.
    pub required: bool,
    /// Whether LF may appear (descriptions, notes, outcomes, reasons).
    pub multi_line: bool,
    /// The most characters (after normalization).
    pub max_chars: usize,
}

/// A name or title: required, one line (display names, people's names, meeting titles).
pub const NAME: TextKind = TextKind {
    required: true,
    multi_line: false,
    max_chars: 200,
};

/// An optional one-line label (abbreviation, deployment region, location, agenda topic).
pub const LABEL: TextKind = TextKind {
    required: false,
    multi_line: false,
    max_chars: 200,
};

/// Optional free text over several lines (description, notes, outcome).
pub const NOTE: TextKind = TextKind {
    required: false,
    multi_line: true,
    max_chars: 10_000,
};

/// The required reason of an official act (rejection, revocation, correction, cancellation).
pub const REASON: TextKind = TextKind {
    required: true,
    multi_line: true,
    max_chars: 2_000,
};

/// Why a text was refused; the message is written for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TextError(pub String);

impl fmt::Display for TextError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TextKind {
    /// The text as it is stored: NFC, trimmed; or why it cannot be.
    pub fn parse(self, value: &str) -> Result<String, TextError> {
        if let Some((position, c)) = value
            .chars()
            .enumerate()
            .find(|(_, c)| is_forbidden(*c, self.multi_line))
        {
            return Err(TextError(format!(
                "must not contain {} (U+{:04X} at character {})",
                describe(c),
                u32::from(c),
                position + 1
            )));
        }
        let normalized: String = value.trim().nfc().collect();
        if self.required && normalized.is_empty() {
            return Err(TextError("is required".to_owned()));
        }
        let chars = normalized.chars().count();
        if chars > self.max_chars {
            return Err(TextError(format!(
                "must be at most {} characters, not {chars}",
                self.max_chars
            )));
        }
        Ok(normalized)
    }
}

/// Whether `c` may never be stored: control characters (LF aside in multi-line text) and
/// invisible format characters.
pub fn is_forbidden(c: char, multi_line: bool) -> bool {
    (c.is_control() && !(multi_line && c == '\n')) || is_invisible_format(c)
}

/// The invisible format characters API.md names, and the bidirectional isolates, which
/// reorder text the same way the overrides do.
fn is_invisible_format(c: char) -> bool {
    matches!(
        c,
        '\u{200B}'..='\u{200F}'
            | '\u{202A}'..='\u{202E}'
            | '\u{2060}'..='\u{2064}'
            | '\u{2066}'..='\u{2069}'
            | '\u{FEFF}'
    )
}

fn describe(c: char) -> &'static str {
    match c {
        '\0' => "a NUL character",
        '\n' => "a line break",
        c if c.is_control() => "a control character",
        _ => "an invisible formatting character",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_trimmed_and_composed() {
        // "é" written as e + combining acute accent becomes the one precomposed character.
        assert_eq!(NAME.parse("  Jose\u{301} ").unwrap(), "Jos\u{e9}");
        assert_eq!(NAME.parse("Öztürk").unwrap(), "Öztürk");
    }

    #[test]
    fn control_characters_are_refused_wherever_they_are() {
        for bad in [
            "Ann\0a",
            "Ann\u{7}a",
            "Ann\ta",
            "Ann\ra",
            "\u{1b}[31mAnna",
            "Anna\u{85}",
        ] {
            let error = NAME.parse(bad).unwrap_err();
            assert!(
                error.0.contains("control") || error.0.contains("NUL"),
                "{bad:?}: {error}"
            );
        }
        assert!(NAME.parse("Ann\0a").unwrap_err().0.contains("NUL"));
    }

    #[test]
    fn line_breaks_are_allowed_only_in_multi_line_text() {
        assert_eq!(NOTE.parse("first\nsecond").unwrap(), "first\nsecond");
        assert!(NAME.parse("first\nsecond").is_err());
        assert!(NOTE.parse("first\r\nsecond").is_err());
    }

    #[test]
    fn invisible_format_characters_are_refused() {
        for bad in [
            "AB\u{200B}C",
            "AB\u{200F}C",
            "AB\u{202E}C",
            "AB\u{2060}C",
            "AB\u{2064}C",
            "AB\u{2067}C",
            "\u{FEFF}ABC",
        ] {
            assert!(NAME.parse(bad).is_err(), "{bad:?}");
            assert!(NOTE.parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn required_and_length_are_checked_after_normalizing() {
        assert_eq!(NAME.parse("   ").unwrap_err().0, "is required");
        assert_eq!(LABEL.parse("  ").unwrap(), "");
        assert!(NAME.parse(&"a".repeat(200)).is_ok());
        assert!(NAME.parse(&"a".repeat(201)).is_err());
        // 200 decomposed characters (400 code points) compose to 200.
        assert!(NAME.parse(&"e\u{301}".repeat(200)).is_ok());
    }
}
