//! `update_mask` handling (AIP-134): which fields an update touches.

use crate::error::{Error, Result};

/// The updatable fields of one resource as an enum, so that a field nobody handles fails to
/// compile where updates are applied (an exhaustive `match`), instead of being skipped.
pub trait UpdatableField: Copy + Eq + Sized + 'static {
    /// Every field, in the order an empty mask applies them.
    const ALL: &'static [Self];
    /// The field's path in a mask (snake_case).
    fn path(self) -> &'static str;
}

/// Resolves the request's mask into fields: empty or `*` means all of them; a path that is
/// output only (`output_only`) or unknown is INVALID_ARGUMENT naming `update_mask`.
pub fn resolve_fields<F: UpdatableField>(
    mask: Option<&prost_types::FieldMask>,
    output_only: &[&str],
) -> Result<Vec<F>> {
    let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() || paths.iter().any(|p| p == "*") {
        if paths.len() > 1 {
            return Err(Error::invalid(
                "update_mask",
                "`*` cannot be combined with other paths",
            ));
        }
        return Ok(F::ALL.to_vec());
    }
    let mut fields = Vec::with_capacity(paths.len());
    for given in paths {
        let path = snake_case(given);
        if let Some(field) = F::ALL.iter().find(|f| f.path() == path) {
            if !fields.contains(field) {
                fields.push(*field);
            }
        } else if output_only.contains(&path.as_str()) {
            return Err(Error::invalid(
                "update_mask",
                format!("`{given}` is output only and cannot be updated"),
            ));
        } else {
            let updatable: Vec<&str> = F::ALL.iter().map(|f| f.path()).collect();
            return Err(Error::invalid(
                "update_mask",
                format!(
                    "`{given}` is not an updatable field (updatable: {})",
                    updatable.join(", ")
                ),
            ));
        }
    }
    Ok(fields)
}

/// Field-mask paths may arrive in proto3 JSON's lowerCamelCase (`startTime`) when a client
/// such as grpcurl 1.8 sends the mask as an object instead of the string form.
fn snake_case(path: &str) -> String {
    let mut snake = String::with_capacity(path.len() + 4);
    for c in path.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Clone, Copy, PartialEq, Eq)]
    enum Field {
        DisplayName,
        Description,
    }

    impl UpdatableField for Field {
        const ALL: &'static [Self] = &[Field::DisplayName, Field::Description];

        fn path(self) -> &'static str {
            match self {
                Field::DisplayName => "display_name",
                Field::Description => "description",
            }
        }
    }

    const OUTPUT_ONLY: &[&str] = &["name", "create_time"];

    fn resolve(paths: &[&str]) -> Result<Vec<Field>> {
        let mask = prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        };
        resolve_fields(Some(&mask), OUTPUT_ONLY)
    }

    #[test]
    fn empty_and_star_mean_every_updatable_field() {
        assert_eq!(
            resolve_fields::<Field>(None, OUTPUT_ONLY).unwrap(),
            Field::ALL
        );
        assert_eq!(resolve(&[]).unwrap(), Field::ALL);
        assert_eq!(resolve(&["*"]).unwrap(), Field::ALL);
        assert!(resolve(&["*", "description"]).is_err());
    }

    #[test]
    fn output_only_and_unknown_paths_are_refused() {
        let error = resolve(&["create_time"]).unwrap_err();
        assert_eq!(error.violations[0].field, "update_mask");
        assert!(error.message.contains("output only"));
        assert!(resolve(&["bogus"]).is_err());
        assert!(resolve(&["createTime"]).is_err());
    }

    #[test]
    fn json_paths_in_lower_camel_case_are_accepted_once() {
        assert_eq!(resolve(&["displayName"]).unwrap(), [Field::DisplayName]);
        assert_eq!(
            resolve(&["description", "description"]).unwrap(),
            [Field::Description]
        );
    }
}
