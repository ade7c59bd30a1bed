//! SQL for the audit trail.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;

use crate::aip::filter::{FieldType, FilterField};
use crate::aip::paging::{KeyValue, Keyed, ListQuery, ListSpec, SortField};
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

pub async fn record(conn: &mut PgConnection, event: &NewEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_events (election_id, actor, method, resource, request_id, \
         changed_fields, before, after, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(&event.election_id)
    .bind(&event.actor)
    .bind(&event.method)
    .bind(&event.resource)
    .bind(&event.request_id)
    .bind(&event.changed_fields)
    .bind(&event.before)
    .bind(&event.after)
    .bind(&event.reason)
    .execute(conn)
    .await?;
    Ok(())
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
