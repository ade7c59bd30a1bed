//! SQL for the audit trail.

use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
use crate::aip::request_id::IdempotencyKey;
use crate::error::Result;
use crate::store::listing::{Source, fetch_page};

/// An event to write.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub election_id: Option<String>,
    pub actor: String,
    pub method: String,
    pub resource: String,
    pub request_id: String,
    pub changed_fields: Vec<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: String,
}

/// A stored event.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Event {
    pub id: i64,
    pub event_time: DateTime<Utc>,
    pub actor: String,
    pub method: String,
    pub resource: String,
    pub request_id: String,
    pub changed_fields: Vec<String>,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub reason: String,
}

impl Keyed for Event {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "event_time" => KeyValue::time(self.event_time),
            _ => KeyValue::Int(self.id),
        }
    }
}

/// What ListAuditEvents filters and orders by.
pub static LIST_SPEC: ListSpec = ListSpec {
    collection: "audit_events",
    filter_fields: &[
        FilterField {
            path: "actor",
            column: "actor",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "method",
            column: "method",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "resource",
            column: "resource",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "request_id",
            column: "request_id",
            field_type: FieldType::Text,
            nullable: false,
        },
        FilterField {
            path: "event_time",
            column: "event_time",
            field_type: FieldType::Timestamp,
            nullable: false,
        },
    ],
    personal_filter_fields: &[],
    sort_fields: &[SortField {
        path: "event_time",
        column: "event_time",
    }],
    // The identity orders events of one transaction (same event_time).
    tiebreak: SortField {
        path: "id",
        column: "id",
    },
    default_order_by: "event_time",
};

/// The statement that writes an event, its fields ([`bind_event`]) numbered from `$first`.
fn insert_statement(first: usize) -> String {
    let values: Vec<String> = (first..first + 9).map(|n| format!("${n}")).collect();
    format!(
        "INSERT INTO audit_events (election_id, actor, method, resource, request_id, \
         changed_fields, before, after, reason) VALUES ({})",
        values.join(", ")
    )
}

/// [`insert_statement`] at `$1`–`$9`.
static INSERT: LazyLock<String> = LazyLock::new(|| insert_statement(1));

/// What records a create besides the resource itself: its audit event and, when the call
/// carried a request id, its response remembered under the key it claimed. Written by the
/// statement that inserts the resource (`store::observers::insert_many`), as common table
/// expressions: a round trip less than writing them after it.
pub struct CreateRecord<'a> {
    pub event: NewEvent,
    pub remembered: Option<(&'a IdempotencyKey, Vec<u8>)>,
}

impl CreateRecord<'_> {
    /// `, audited AS (…)` and `, remembered AS (…)` with their parameters numbered from
    /// `$first`, bound by [`CreateRecord::bind`].
    pub fn ctes(&self, first: usize) -> String {
        let mut ctes = format!(", audited AS ({})", insert_statement(first));
        if self.remembered.is_some() {
            let [response, agency, request_id] = [9, 10, 11].map(|i| first + i);
            ctes.push_str(&format!(
                ", remembered AS (UPDATE request_ids SET response = ${response} \
                 WHERE agency = ${agency} AND request_id = ${request_id})"
            ));
        }
        ctes
    }

    /// Binds the parameters of [`CreateRecord::ctes`], after those bound already.
    pub fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let query = bind_event(query, &self.event);
        match &self.remembered {
            Some((key, response)) => query
                .bind(response.as_slice())
                .bind(key.agency.as_str())
                .bind(key.request_id),
            None => query,
        }
    }
}

/// What records creates made together by one statement (`api::observers`' coalesced
/// registrations): an audit event each and, for each that carried a request id, its response
/// under its key, which the statement claims: a key claimed meanwhile fails it with
/// `request_ids_pkey`'s unique violation, and nothing of it stays.
pub struct CreateRecords<'a> {
    events: Vec<NewEvent>,
    remembered: Vec<(&'a IdempotencyKey, Vec<u8>)>,
}

impl<'a> CreateRecords<'a> {
    pub fn new(events: Vec<NewEvent>, remembered: Vec<(&'a IdempotencyKey, Vec<u8>)>) -> Self {
        CreateRecords { events, remembered }
    }
}

/// The common table expressions that record a create, written by the statement that inserts
/// the resource (`store::observers::insert_many`).
pub trait Recording {
    /// `, audited AS (…)` and `, remembered AS (…)`, their parameters numbered from `$first`.
    fn ctes(&self, first: usize) -> String;
    /// Binds the parameters of [`Recording::ctes`], after those bound already.
    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>;
}

impl Recording for CreateRecord<'_> {
    fn ctes(&self, first: usize) -> String {
        CreateRecord::ctes(self, first)
    }

    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        CreateRecord::bind(self, query)
    }
}

impl Recording for CreateRecords<'_> {
    fn ctes(&self, first: usize) -> String {
        let n: Vec<usize> = (first..first + 14).collect();
        // Each event's changed fields as a JSON array: lists of different lengths make no
        // rectangular array of arrays.
        let mut ctes = format!(
            ", audited AS (INSERT INTO audit_events (election_id, actor, method, resource, \
             request_id, changed_fields, before, after, reason) \
             SELECT e, a, m, r, q, ARRAY(SELECT jsonb_array_elements_text(c)), b, f, n \
             FROM unnest(${}::text[], ${}::text[], ${}::text[], ${}::text[], ${}::text[], \
             ${}::jsonb[], ${}::jsonb[], ${}::jsonb[], ${}::text[]) \
             AS t(e, a, m, r, q, c, b, f, n))",
            n[0], n[1], n[2], n[3], n[4], n[5], n[6], n[7], n[8]
        );
        if !self.remembered.is_empty() {
            ctes.push_str(&format!(
                ", remembered AS (INSERT INTO request_ids \
                 (agency, request_id, method, fingerprint, response) \
                 SELECT * FROM unnest(${}::text[], ${}::uuid[], ${}::text[], ${}::bytea[], \
                 ${}::bytea[]))",
                n[9], n[10], n[11], n[12], n[13]
            ));
        }
        ctes
    }

    fn bind<'q>(
        &'q self,
        query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    ) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
        let events = &self.events;
        let texts = |get: fn(&NewEvent) -> &str| -> Vec<&str> { events.iter().map(get).collect() };
        let query = query
            .bind(
                events
                    .iter()
                    .map(|e| e.election_id.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(texts(|e| &e.actor))
            .bind(texts(|e| &e.method))
            .bind(texts(|e| &e.resource))
            .bind(texts(|e| &e.request_id))
            .bind(
                events
                    .iter()
                    .map(|e| serde_json::json!(e.changed_fields))
                    .collect::<Vec<_>>(),
            )
            .bind(events.iter().map(|e| e.before.clone()).collect::<Vec<_>>())
            .bind(events.iter().map(|e| e.after.clone()).collect::<Vec<_>>())
            .bind(texts(|e| &e.reason));
        if self.remembered.is_empty() {
            return query;
        }
        let keys = || self.remembered.iter().map(|(key, _)| *key);
        query
            .bind(keys().map(|k| k.agency.as_str()).collect::<Vec<_>>())
            .bind(keys().map(|k| k.request_id).collect::<Vec<_>>())
            .bind(keys().map(|k| k.method).collect::<Vec<_>>())
            .bind(keys().map(|k| k.fingerprint.as_slice()).collect::<Vec<_>>())
            .bind(
                self.remembered
                    .iter()
                    .map(|(_, response)| response.as_slice())
                    .collect::<Vec<_>>(),
            )
    }
}

pub async fn record(conn: &mut PgConnection, event: &NewEvent) -> Result<()> {
    bind_event(sqlx::query(sqlx::AssertSqlSafe(INSERT.as_str())), event)
        .execute(conn)
        .await?;
    Ok(())
}

/// The event of a create, and in the same statement the create's response under its
/// claimed idempotency key (what [`crate::store::request_ids::record`] does): a round trip
/// less on every create that carries a `request_id`.
pub async fn record_with_response(
    conn: &mut PgConnection,
    event: &NewEvent,
    key: &IdempotencyKey,
    response: Vec<u8>,
) -> Result<()> {
    let sql = trusted_sql!(
        "WITH remembered AS (UPDATE request_ids SET response = $12 \
         WHERE agency = $10 AND request_id = $11) {insert}",
        insert = INSERT.as_str()
    );
    bind_event(sqlx::query(sql), event)
        .bind(&key.agency)
        .bind(key.request_id)
        .bind(response)
        .execute(conn)
        .await?;
    Ok(())
}

/// Binds the event as `$1`–`$9` of [`INSERT`].
fn bind_event<'q>(
    query: sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments>,
    event: &'q NewEvent,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    query
        .bind(&event.election_id)
        .bind(&event.actor)
        .bind(&event.method)
        .bind(&event.resource)
        .bind(&event.request_id)
        .bind(&event.changed_fields)
        .bind(&event.before)
        .bind(&event.after)
        .bind(&event.reason)
}

/// Events of an election (`Some`) or of organizations (`None`).
pub async fn list(
    conn: &mut PgConnection,
    election_id: Option<&str>,
    query: &ListQuery,
) -> Result<(Vec<Event>, i64)> {
    let source = Source {
        columns: "id, event_time, actor, method, resource, request_id, changed_fields, before, after, reason",
        from: "audit_events",
    };
    let election_id = election_id.map(str::to_owned);
    let scope = move |qb: &mut sqlx::QueryBuilder<sqlx::Postgres>| match &election_id {
        Some(id) => {
            qb.push(" AND election_id = ").push_bind(id.clone());
        }
        None => {
            qb.push(" AND election_id IS NULL");
        }
    };
    fetch_page::<Event>(conn, &source, &scope, query).await
}
