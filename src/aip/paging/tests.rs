//! Page sizes, orderings, tokens and keyset SQL.

use sqlx::{Postgres, QueryBuilder};

use super::sql::push_keyset;
use super::*;

static SPEC: ListSpec = ListSpec {
    collection: "test",
    filter_fields: &[],
    personal_filter_fields: &[],
    sort_fields: &[
        SortField {
            path: "create_time",
            column: "create_time",
        },
        SortField {
            path: "display_name",
            column: "display_name",
        },
    ],
    tiebreak: SortField {
        path: "name",
        column: "id",
    },
    default_order_by: "create_time",
};

struct Row(&'static str);
impl Keyed for Row {
    fn key_value(&self, path: &str) -> KeyValue {
        KeyValue::Text(format!("{path}={}", self.0))
    }
}

#[test]
fn page_sizes_follow_aip_158() {
    assert_eq!(page_size(0).unwrap(), 50);
    assert_eq!(page_size(7).unwrap(), 7);
    assert_eq!(page_size(5000).unwrap(), 1000);
    assert_eq!(page_size(-1).unwrap_err().violations[0].field, "page_size");
}

#[test]
fn order_by_ends_with_the_tiebreak() {
    let keys = parse_order_by("display_name desc", &SPEC).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].descending);
    assert_eq!(keys[1].column, "id");
    assert!(parse_order_by("nope", &SPEC).is_err());
    assert!(parse_order_by("display_name sideways", &SPEC).is_err());
    assert!(parse_order_by("name, name", &SPEC).is_err());
}

#[test]
fn tokens_round_trip_and_refuse_tampering_and_other_queries() {
    let tokens = PageTokens::new(&[7; 32]);
    let request = ListRequest {
        page_size: 2,
        ..Default::default()
    };
    let query = tokens.prepare(&SPEC, &request).unwrap();
    let token = tokens.next_token(&query, &Row("a"));

    let next = ListRequest {
        page_token: &token,
        ..request
    };
    assert_eq!(
        tokens.prepare(&SPEC, &next).unwrap().after.unwrap().len(),
        2
    );

    let mut tampered = token.clone().into_bytes();
    tampered[3] = if tampered[3] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let bad = ListRequest {
        page_token: &tampered,
        ..request
    };
    assert_eq!(
        tokens.prepare(&SPEC, &bad).unwrap_err().reason,
        Reason::InvalidPageToken
    );

    let other = ListRequest {
        page_token: &token,
        order_by: "display_name",
        ..request
    };
    assert_eq!(
        tokens.prepare(&SPEC, &other).unwrap_err().reason,
        Reason::InvalidPageToken
    );

    let foreign = PageTokens::new(&[8; 32]);
    assert_eq!(
        foreign.prepare(&SPEC, &next).unwrap_err().reason,
        Reason::InvalidPageToken
    );

    let garbage = ListRequest {
        page_token: "garbage!",
        ..request
    };
    assert_eq!(
        tokens.prepare(&SPEC, &garbage).unwrap_err().reason,
        Reason::InvalidPageToken
    );
}

#[test]
fn keyset_uses_a_row_comparison_when_directions_agree() {
    let order = parse_order_by("create_time", &SPEC).unwrap();
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_keyset(
        &mut qb,
        &order,
        &[KeyValue::Int(1), KeyValue::Text("x".into())],
    );
    assert_eq!(qb.sql().as_str(), "(create_time, id) > ($1, $2)");

    let order = parse_order_by("create_time desc", &SPEC).unwrap();
    let mut qb = QueryBuilder::<Postgres>::new("");
    push_keyset(
        &mut qb,
        &order,
        &[KeyValue::Int(1), KeyValue::Text("x".into())],
    );
    assert_eq!(
        qb.sql().as_str(),
        "((create_time < $1) OR (create_time = $2 AND id > $3))"
    );
}
