//! Filters end to end: text in, SQL and bind parameters out.

use sqlx::{Postgres, QueryBuilder};

use super::compile::MAX_FILTER_LEN;
use super::sql::escape_like;
use super::*;

const STATES: &[&str] = &["PENDING", "ACCREDITED", "REJECTED", "REVOKED"];

fn organization_key(name: &str) -> Option<String> {
    name.strip_prefix("organizations/")
        .filter(|id| !id.is_empty() && id.bytes().all(|b| b.is_ascii_lowercase()))
        .map(str::to_owned)
}

const FIELDS: &[FilterField] = &[
    FilterField {
        path: "display_name",
        column: "o.display_name",
        field_type: FieldType::Text,
        nullable: false,
    },
    FilterField {
        path: "abbreviation",
        column: "o.abbreviation",
        field_type: FieldType::Text,
        nullable: true,
    },
    FilterField {
        path: "accreditation.state",
        column: "o.accreditation_state",
        field_type: FieldType::Enum(STATES),
        nullable: false,
    },
    FilterField {
        path: "create_time",
        column: "o.create_time",
        field_type: FieldType::Timestamp,
        nullable: false,
    },
    FilterField {
        path: "birth_date",
        column: "o.birth_date",
        field_type: FieldType::Date,
        nullable: true,
    },
    FilterField {
        path: "seats",
        column: "o.seats",
        field_type: FieldType::Integer,
        nullable: false,
    },
    FilterField {
        path: "active",
        column: "o.active",
        field_type: FieldType::Bool,
        nullable: false,
    },
    FilterField {
        path: "organization",
        column: "o.organization_id",
        field_type: FieldType::Reference(organization_key),
        nullable: true,
    },
];

fn compile(filter: &str) -> Condition {
    match parse(filter, FIELDS) {
        Ok(Some(condition)) => condition,
        other => panic!("{filter:?} should compile, got {other:?}"),
    }
}

fn sql(filter: &str) -> String {
    let mut qb = QueryBuilder::<Postgres>::new("");
    compile(filter).push_sql(&mut qb);
    qb.sql().as_str().to_owned()
}

fn error(filter: &str) -> String {
    match parse(filter, FIELDS) {
        Err(FilterError(message)) => message,
        other => panic!("{filter:?} should fail, got {other:?}"),
    }
}

fn compare(column: &'static str, op: Op, value: Value, nullable: bool) -> Condition {
    Condition::Compare {
        column,
        op,
        value,
        nullable,
    }
}

#[test]
fn empty_filter_matches_everything() {
    assert_eq!(parse("", FIELDS), Ok(None));
    assert_eq!(parse(" \t\n ", FIELDS), Ok(None));
}

#[test]
fn each_operator() {
    for (filter, op, expected) in [
        ("seats = 3", Op::Eq, "(o.seats = $1)"),
        ("seats != 3", Op::Ne, "(o.seats <> $1)"),
        ("seats < 3", Op::Lt, "(o.seats < $1)"),
        ("seats <= 3", Op::Le, "(o.seats <= $1)"),
        ("seats > 3", Op::Gt, "(o.seats > $1)"),
        ("seats >= 3", Op::Ge, "(o.seats >= $1)"),
    ] {
        assert_eq!(
            compile(filter),
            compare("o.seats", op, Value::Integer(3), false)
        );
        assert_eq!(sql(filter), expected, "{filter}");
    }
    assert_eq!(
        compile("seats>-2"),
        compare("o.seats", Op::Gt, Value::Integer(-2), false)
    );
}

#[test]
fn values_for_each_type() {
    assert_eq!(
        compile(r#"display_name = "OSCE ODIHR""#),
        compare(
            "o.display_name",
            Op::Eq,
            Value::Text("OSCE ODIHR".into()),
            false
        )
    );
    // Numbers given for a text field are read as their text.
    assert_eq!(
        compile("abbreviation = 1.5"),
        compare("o.abbreviation", Op::Eq, Value::Text("1.5".into()), true)
    );
    let accredited = compare(
        "o.accreditation_state",
        Op::Ne,
        Value::Text("ACCREDITED".into()),
        false,
    );
    assert_eq!(compile("accreditation.state != ACCREDITED"), accredited);
    assert_eq!(
        compile(r#"accreditation.state != "ACCREDITED""#),
        accredited
    );
    let time = DateTime::parse_from_rfc3339("2024-05-01T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    assert_eq!(
        compile(r#"create_time >= "2024-05-01T12:00:00+02:00""#),
        compare("o.create_time", Op::Ge, Value::Timestamp(time), false)
    );
    assert_eq!(
        compile("birth_date < 2000-02-29"),
        compare(
            "o.birth_date",
            Op::Lt,
            Value::Date(NaiveDate::from_ymd_opt(2000, 2, 29).unwrap()),
            true
        )
    );
    assert_eq!(
        compile("active = false"),
        compare("o.active", Op::Eq, Value::Bool(false), false)
    );
    assert_eq!(
        compile(r#"organization = "organizations/osce""#),
        compare(
            "o.organization_id",
            Op::Eq,
            Value::Text("osce".into()),
            true
        )
    );
}

#[test]
fn and_or_not_and_parentheses() {
    // AIP-160: OR binds tighter than AND.
    assert_eq!(
        sql("seats = 1 AND active = true OR display_name = x"),
        "((o.seats = $1) AND ((o.active = $2) OR (o.display_name = $3)))"
    );
    assert_eq!(
        sql("(seats = 1 AND active = true) OR display_name = x"),
        "(((o.seats = $1) AND (o.active = $2)) OR (o.display_name = $3))"
    );
    assert_eq!(sql("NOT seats = 1"), "((o.seats = $1) IS NOT TRUE)");
    assert_eq!(sql("-seats = 1"), sql("NOT seats = 1"));
    assert_eq!(
        sql("NOT (seats = 1 OR seats = 2)"),
        "(((o.seats = $1) OR (o.seats = $2)) IS NOT TRUE)"
    );
    // Whitespace-separated restrictions mean AND.
    assert_eq!(
        sql("seats = 1 active = true"),
        "((o.seats = $1) AND (o.active = $2))"
    );
    // Keywords are case-sensitive, so `and` is a bare term.
    assert!(error("seats = 1 and active = true").contains("bare term `and`"));
}

#[test]
fn push_sql_numbers_placeholders_after_existing_binds() {
    let mut qb = QueryBuilder::<Postgres>::new("SELECT * FROM o WHERE o.parent = ");
    qb.push_bind(7_i64).push(" AND ");
    compile("seats > 1 OR NOT active = true").push_sql(&mut qb);
    assert_eq!(
        qb.sql().as_str(),
        "SELECT * FROM o WHERE o.parent = $1 AND ((o.seats > $2) OR ((o.active = $3) IS NOT TRUE))"
    );
}

#[test]
fn not_equal_on_nullable_column_keeps_nulls() {
    assert_eq!(
        sql("abbreviation != OSCE"),
        "(o.abbreviation IS DISTINCT FROM $1)"
    );
    assert_eq!(
        sql(r#"organization != "organizations/osce""#),
        "(o.organization_id IS DISTINCT FROM $1)"
    );
    assert_eq!(sql("display_name != OSCE"), "(o.display_name <> $1)");
    assert_eq!(sql("abbreviation = OSCE"), "(o.abbreviation = $1)");
}

#[test]
fn injection_attempt_is_a_bound_value() {
    let filter = r#"display_name = "x' OR '1'='1""#;
    assert_eq!(
        compile(filter),
        compare(
            "o.display_name",
            Op::Eq,
            Value::Text("x' OR '1'='1".into()),
            false
        )
    );
    let sql = sql(filter);
    assert_eq!(sql, "(o.display_name = $1)");
    assert!(!sql.contains("OR") && !sql.contains('\''));
}

#[test]
fn trailing_wildcard_is_an_escaped_prefix_match() {
    assert_eq!(
        compile(r#"display_name = "50%_off\\*""#),
        Condition::Prefix {
            column: "o.display_name",
            prefix: "50%_off\\".into()
        }
    );
    assert_eq!(escape_like("50%_off\\"), "50\\%\\_off\\\\");
    assert_eq!(sql(r#"display_name = "OSCE*""#), "(o.display_name LIKE $1)");
    assert_eq!(sql("display_name = OS*"), "(o.display_name LIKE $1)");
    for filter in [r#"display_name = "*OSCE""#, r#"display_name != "OSCE*""#] {
        assert!(
            error(filter).contains("`*` is only supported at the end"),
            "{filter}"
        );
    }
}

#[test]
fn unknown_field() {
    let message = error("foo = 1");
    assert!(
        message.starts_with(
            "unknown field `foo` (filterable: display_name, abbreviation, accreditation.state,"
        ),
        "{message}"
    );
    assert!(error("accreditation.foo = 1").contains("unknown field `accreditation.foo`"));
}

#[test]
fn syntax_errors() {
    assert!(error("seats = = 3").starts_with("syntax error at byte 8 near `= 3`"));
    let message = error(r#"display_name = "unterminated"#);
    assert!(message.contains("unterminated string"), "{message}");
    assert!(message.contains(r#"near `"unterminated`"#), "{message}");
    assert!(error("seats = 1 AND").starts_with("syntax error"));
    assert!(error("(seats = 1").starts_with("syntax error at end of filter"));
    let message = error("create_time > 2024-05-01T12:00:00Z");
    assert!(
        message.contains("quote values that contain `:`"),
        "{message}"
    );
}

#[test]
fn unsupported_constructs() {
    assert!(error("display_name:osce").starts_with("operator `:` is not supported"));
    assert!(error(r#"regex(display_name, "^O")"#).contains("function calls are not supported"));
    assert!(error("lower(display_name) = osce").contains("function calls are not supported"));
    assert!(error("display_name = lower(x)").contains("function calls are not supported"));
    assert!(error("osce").starts_with("bare term `osce` is not supported"));
    assert!(error("display_name = (a OR b)").contains("single literal"));
    assert!(error("display_name = abbreviation").contains("comparing `display_name` with field"));
    assert!(error("display_name = accreditation.state").contains("not a field path"));
    assert!(error(r#""display_name" = x"#).contains("expected a field name"));
    assert!(error("accreditation.state < PENDING").contains("operator `<` is not supported"));
    assert!(error("active >= true").contains("only `=` and `!=`"));
}

#[test]
fn invalid_values() {
    assert_eq!(
        error("accreditation.state = XYZ"),
        "invalid value `XYZ` for `accreditation.state` \
         (expected one of PENDING, ACCREDITED, REJECTED, REVOKED)"
    );
    assert!(
        error(r#"create_time > "yesterday""#)
            .starts_with("invalid value `yesterday` for `create_time`")
    );
    assert!(
        error("birth_date = 2023-02-30").starts_with("invalid value `2023-02-30` for `birth_date`")
    );
    assert!(error("birth_date = 2023-2-3").contains("YYYY-MM-DD"));
    assert!(
        error("seats = 2.5").starts_with("invalid value `2.5` for `seats` (expected an integer)")
    );
    assert!(error("active = yes").contains("true or false"));
    assert_eq!(
        error(r#"organization = "orgs/osce""#),
        "`orgs/osce` is not a valid organization name (for `organization`)"
    );
}

#[test]
fn limits() {
    let long = format!("display_name = \"{}\"", "a".repeat(MAX_FILTER_LEN));
    assert!(error(&long).starts_with("filter is too long"));
    let deep = format!("{}seats = 1{}", "(".repeat(20), ")".repeat(20));
    assert!(error(&deep).starts_with("filter is nested too deeply"));
}

#[test]
fn empty_groups_render_as_constants() {
    let mut qb = QueryBuilder::<Postgres>::new("");
    Condition::Or(vec![Condition::And(vec![])]).push_sql(&mut qb);
    assert_eq!(qb.sql().as_str(), "((TRUE))");
}

mod membership {
    use super::*;

    fn delegation_key(name: &str) -> Option<String> {
        name.strip_prefix("elections/e/delegations/")
            .map(str::to_owned)
    }

    const FIELDS: &[FilterField] = &[FilterField {
        path: "delegation",
        column: "delegation_ids",
        field_type: FieldType::Member(delegation_key),
        nullable: false,
    }];

    #[test]
    fn membership_is_an_array_containment_with_a_bound_key() {
        let condition = parse(r#"delegation = "elections/e/delegations/sco""#, FIELDS)
            .unwrap()
            .unwrap();
        let mut qb = QueryBuilder::<Postgres>::new("");
        condition.push_sql(&mut qb);
        assert_eq!(qb.sql().as_str(), "(delegation_ids @> ARRAY[$1]::text[])");

        let negated = parse(r#"delegation != "elections/e/delegations/sco""#, FIELDS)
            .unwrap()
            .unwrap();
        let mut qb = QueryBuilder::<Postgres>::new("");
        negated.push_sql(&mut qb);
        assert_eq!(
            qb.sql().as_str(),
            "(NOT delegation_ids @> ARRAY[$1]::text[])"
        );

        assert!(parse(r#"delegation = "organizations/x""#, FIELDS).is_err());
        assert!(parse(r#"delegation < "elections/e/delegations/sco""#, FIELDS).is_err());
    }
}
