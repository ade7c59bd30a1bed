//! `update_mask` handling (AIP-134): which fields an update touches.

use crate::error::{Error, Result};

/// The fields of one resource as an update sees them.
#[derive(Debug)]
pub struct MaskSpec {
    /// Fields the caller may set.
    pub updatable: &'static [&'static str],
    /// Fields the server sets (or that identify the resource); naming them is an error.
    pub output_only: &'static [&'static str],
}

/// The set of fields an update applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMask(Vec<&'static str>);

impl UpdateMask {
    pub fn contains(&self, field: &str) -> bool {
        self.0.contains(&field)
    }

    pub fn fields(&self) -> &[&'static str] {
        &self.0
    }
}

/// Resolves the request's mask: empty or `*` means every updatable field; a path that is
/// output only or unknown is INVALID_ARGUMENT naming `update_mask`.
pub fn resolve(mask: Option<&prost_types::FieldMask>, spec: &MaskSpec) -> Result<UpdateMask> {
    let paths = mask.map(|m| m.paths.as_slice()).unwrap_or_default();
    if paths.is_empty() || paths.iter().any(|p| p == "*") {
        if paths.len() > 1 {
            return Err(Error::invalid(
                "update_mask",
                "`*` cannot be combined with other paths",
            ));
        }
        return Ok(UpdateMask(spec.updatable.to_vec()));
    }
    let mut fields = Vec::with_capacity(paths.len());
    for given in paths {
        let path = snake_case(given);
        if let Some(field) = spec.updatable.iter().find(|f| **f == path) {
            if !fields.contains(field) {
                fields.push(*field);
            }
        } else if spec.output_only.contains(&path.as_str()) {
            return Err(Error::invalid(
                "update_mask",
                format!("`{given}` is output only and cannot be updated"),
            ));
        } else {
            return Err(Error::invalid(
                "update_mask",
                format!(
                    "`{given}` is not an updatable field (updatable: {})",
                    spec.updatable.join(", ")
                ),
            ));
        }
    }
    Ok(UpdateMask(fields))
}

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

    const SPEC: MaskSpec = MaskSpec {
        updatable: &["display_name", "description"],
        output_only: &["name", "create_time"],
    };

    fn mask(paths: &[&str]) -> prost_types::FieldMask {
        prost_types::FieldMask {
            paths: paths.iter().map(|p| p.to_string()).collect(),
        }
    }

    #[test]
    fn empty_and_star_mean_every_updatable_field() {
        assert_eq!(resolve(None, &SPEC).unwrap().fields(), SPEC.updatable);
        assert_eq!(
            resolve(Some(&mask(&["*"])), &SPEC).unwrap().fields(),
            SPEC.updatable
        );
    }

    #[test]
    fn output_only_and_unknown_paths_are_refused() {
        let error = resolve(Some(&mask(&["create_time"])), &SPEC).unwrap_err();
        assert_eq!(error.violations[0].field, "update_mask");
        assert!(error.message.contains("output only"));
        assert!(resolve(Some(&mask(&["bogus"])), &SPEC).is_err());
        assert!(resolve(Some(&mask(&["createTime"])), &SPEC).is_err());
        assert_eq!(
            resolve(Some(&mask(&["displayName"])), &SPEC)
                .unwrap()
                .fields(),
            ["display_name"]
        );
        assert_eq!(
            resolve(Some(&mask(&["description"])), &SPEC)
                .unwrap()
                .fields(),
            ["description"]
        );
    }
}
