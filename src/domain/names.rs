//! Resource ids and names (AIP-122, AIP-133).

/// Checks a caller-chosen resource id: lowercase letters, digits and hyphens, 1–63
/// characters, starting with a letter and not ending with a hyphen (AIP-122).
pub fn validate_resource_id(id: &str) -> Result<(), String> {
    let bytes = id.as_bytes();
    let valid = (1..=63).contains(&bytes.len())
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{id}` is not a valid resource id: use 1-63 lowercase letters, digits and hyphens, \
             starting with a letter and not ending with a hyphen"
        ))
    }
}

/// The id the caller chose, or a new UUID (v7: time-ordered, so new rows land at the end of
/// the index) when the caller left it empty.
pub fn resource_id_or_generated(id: &str) -> Result<String, String> {
    if id.is_empty() {
        Ok(uuid::Uuid::now_v7().to_string())
    } else {
        validate_resource_id(id).map(|()| id.to_owned())
    }
}

/// Whether `id` could have been produced by [`resource_id_or_generated`].
fn is_known_id(id: &str) -> bool {
    validate_resource_id(id).is_ok() || uuid::Uuid::try_parse(id).is_ok_and(|u| u.to_string() == id)
}

/// Parses `{collection}/{id}` into the id, e.g. `elections/kz-2023` → `kz-2023`.
pub fn parse_top_level<'a>(name: &'a str, collection: &str) -> Result<&'a str, String> {
    name.strip_prefix(collection)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|id| is_known_id(id))
        .ok_or_else(|| format!("`{name}` is not a valid name: expected {collection}/{{id}}"))
}

/// Parses `{parent collection}/{parent id}/{collection}/{id}` into both ids.
pub fn parse_child<'a>(
    name: &'a str,
    parent_collection: &str,
    collection: &str,
) -> Result<(&'a str, &'a str), String> {
    let mut parts = name.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some(pc), Some(parent), Some(c), Some(id), None)
            if pc == parent_collection
                && c == collection
                && is_known_id(parent)
                && is_known_id(id) =>
        {
            Ok((parent, id))
        }
        _ => Err(format!(
            "`{name}` is not a valid name: expected {parent_collection}/{{id}}/{collection}/{{id}}"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resource_ids_follow_aip_122() {
        assert!(validate_resource_id("kz-2023").is_ok());
        assert!(validate_resource_id("a").is_ok());
        assert!(validate_resource_id(&"a".repeat(63)).is_ok());
        assert!(validate_resource_id(&"a".repeat(64)).is_err());
        assert!(validate_resource_id("2023-kz").is_err());
        assert!(validate_resource_id("KZ").is_err());
        assert!(validate_resource_id("kz_2023").is_err());
        assert!(validate_resource_id("kz-").is_err());
        assert!(validate_resource_id("").is_err());
    }

    #[test]
    fn generated_ids_are_uuids_and_parse_back() {
        let id = resource_id_or_generated("").unwrap();
        assert_eq!(
            parse_top_level(&format!("elections/{id}"), "elections").unwrap(),
            id
        );
    }

    #[test]
    fn names_are_parsed_strictly() {
        assert_eq!(parse_top_level("elections/kz", "elections").unwrap(), "kz");
        assert!(parse_top_level("elections/", "elections").is_err());
        assert!(parse_top_level("organizations/kz", "elections").is_err());
        assert!(parse_top_level("elections/kz/x", "elections").is_err());
        assert_eq!(
            parse_child("elections/kz/observers/o-1", "elections", "observers").unwrap(),
            ("kz", "o-1")
        );
        assert!(parse_child("elections/kz/observers", "elections", "observers").is_err());
    }
}
