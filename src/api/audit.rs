//! The audit trail: one event per successful mutation, written by the mutating handler in
//! its own transaction; and AuditService, which reads it.

use std::sync::LazyLock;

use prost_reflect::{DescriptorPool, DynamicMessage};
use serde_json::Value;
use sqlx::PgConnection;
use tonic::{Request, Response, Status};

use crate::aip::paging::{ListRequest, Page};
use crate::aip::request_id::IdempotencyKey;
use crate::api::{AppState, parse_parent, require_election, to_timestamp, total_size};
use crate::auth::Caller;
use crate::error::{Error, Result};
use crate::pb::v1 as pb;
use crate::pb::v1::audit_service_server::AuditService;
use crate::store::{self, audit::NewEvent};

/// The contract's descriptors, to write any message as proto3 JSON.
static DESCRIPTORS: LazyLock<Option<DescriptorPool>> =
    LazyLock::new(|| DescriptorPool::decode(crate::pb::FILE_DESCRIPTOR_SET).ok());

/// Proto3 JSON (lowerCamelCase, as grpcurl prints it) of a contract message, e.g.
/// `json("Election", &election)`. Personal data must be redacted by the caller first.
pub fn json<M: prost::Message>(type_name: &str, message: &M) -> Value {
    let full_name = format!("observer_registry.v1.{type_name}");
    DESCRIPTORS
        .as_ref()
        .and_then(|pool| pool.get_message_by_name(&full_name))
        .and_then(|descriptor| {
            DynamicMessage::decode(descriptor, message.encode_to_vec().as_slice()).ok()
        })
        .and_then(|dynamic| serde_json::to_value(&dynamic).ok())
        .unwrap_or(Value::Null)
}

/// The JSON keys of personal data (BRIEF): never kept in the audit trail.
const PERSONAL_DATA_KEYS: [&str; 4] = ["travelDocumentNumber", "dateOfBirth", "email", "phone"];

/// One mutation as the audit trail records it.
#[derive(Debug, Clone, Default)]
pub struct AuditEntry<'a> {
    /// The election the resource belongs to; `None` for organizations and elections' own
    /// top-level events that have no election scope.
    pub election_id: Option<&'a str>,
    /// The resource name, e.g. `elections/kz-2023/observers/obs-1`.
    pub resource: &'a str,
    /// The create's `request_id`, empty for other mutations.
    pub request_id: &'a str,
    /// The resource before (`None` for a create) and after (`None` for a removal), as
    /// [`json`] writes them; personal data is stripped when recorded.
    pub before: Option<Value>,
    pub after: Option<Value>,
    /// Why, for official acts that need a reason (corrections, rejections, revocations).
    pub reason: &'a str,
}

impl AuditEntry<'_> {
    /// The event that records the entry, for a statement that writes it with its change
    /// (`store::audit::CreateRecord`).
    pub fn into_event(self, caller: &Caller) -> NewEvent {
        event(caller, self)
    }

    /// Writes the entry in the caller's transaction.
    pub async fn record(self, conn: &mut PgConnection, caller: &Caller) -> Result<()> {
        store::audit::record(conn, &event(caller, self)).await
    }

    /// Writes the entry of a create and, in the same statement, remembers the create's
    /// `response` under its claimed `key` (AIP-155), as `request_ids::record` would.
    pub async fn record_with_response<R: prost::Message>(
        self,
        conn: &mut PgConnection,
        caller: &Caller,
        key: Option<&IdempotencyKey>,
        response: &R,
    ) -> Result<()> {
        let event = event(caller, self);
        match key {
            Some(key) => {
                store::audit::record_with_response(conn, &event, key, response.encode_to_vec())
                    .await
            }
            None => store::audit::record(conn, &event).await,
        }
    }
}

/// The event that records `entry`. `changed_fields` are the fields whose value differs
/// between `before` and `after` (snake_case paths, nested ones dotted, bookkeeping fields
/// aside), worked out before personal data is stripped from both: the trail names a changed
/// e-mail without keeping it.
fn event(caller: &Caller, entry: AuditEntry<'_>) -> NewEvent {
    let AuditEntry {
        election_id,
        resource,
        request_id,
        mut before,
        mut after,
        reason,
    } = entry;
    let changed_fields = changed_fields(before.as_ref(), after.as_ref());
    for value in before.iter_mut().chain(after.iter_mut()) {
        strip_personal_data(value);
    }
    NewEvent {
        election_id: election_id.map(str::to_owned),
        actor: caller.agency.clone(),
        method: caller.method.clone(),
        resource: resource.to_owned(),
        request_id: request_id.to_owned(),
        changed_fields,
        before,
        after,
        reason: reason.to_owned(),
    }
}

fn strip_personal_data(value: &mut Value) {
    match value {
        Value::Object(map) => {
            for key in PERSONAL_DATA_KEYS {
                map.remove(key);
            }
            map.values_mut().for_each(strip_personal_data);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_personal_data),
        _ => {}
    }
}

fn changed_fields(before: Option<&Value>, after: Option<&Value>) -> Vec<String> {
    let mut fields = Vec::new();
    diff(
        "",
        before.unwrap_or(&Value::Null),
        after.unwrap_or(&Value::Null),
        &mut fields,
    );
    fields.sort();
    fields.dedup();
    fields
}

/// Adds the paths under `prefix` whose values differ; objects on both sides are compared
/// field by field (`accreditation.state`).
fn diff(prefix: &str, before: &Value, after: &Value, fields: &mut Vec<String>) {
    let empty = serde_json::Map::new();
    let (b, a) = match (before, after) {
        (Value::Object(b), Value::Object(a)) => (b, a),
        (Value::Object(b), Value::Null) => (b, &empty),
        (Value::Null, Value::Object(a)) => (&empty, a),
        _ => {
            if before != after {
                fields.push(prefix.to_owned());
            }
            return;
        }
    };
    for key in b.keys().chain(a.keys()) {
        if prefix.is_empty() && matches!(key.as_str(), "updateTime" | "etag") {
            continue;
        }
        let (old, new) = (
            b.get(key).unwrap_or(&Value::Null),
            a.get(key).unwrap_or(&Value::Null),
        );
        if old == new {
            continue;
        }
        let path = if prefix.is_empty() {
            snake_case(key)
        } else {
            format!("{prefix}.{}", snake_case(key))
        };
        if old.is_object() && new.is_object() {
            diff(&path, old, new, fields);
        } else {
            fields.push(path);
        }
    }
}

fn snake_case(camel: &str) -> String {
    let mut snake = String::with_capacity(camel.len() + 4);
    for c in camel.chars() {
        if c.is_ascii_uppercase() {
            snake.push('_');
            snake.push(c.to_ascii_lowercase());
        } else {
            snake.push(c);
        }
    }
    snake
}

/// A JSON object as `google.protobuf.Struct`.
fn to_struct(value: Option<Value>) -> Option<prost_types::Struct> {
    match value? {
        Value::Object(map) => Some(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
        _ => None,
    }
}

fn to_value(value: Value) -> prost_types::Value {
    use prost_types::value::Kind;
    let kind = match value {
        Value::Null => Kind::NullValue(0),
        Value::Bool(b) => Kind::BoolValue(b),
        Value::Number(n) => Kind::NumberValue(n.as_f64().unwrap_or_default()),
        Value::String(s) => Kind::StringValue(s),
        Value::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(to_value).collect(),
        }),
        Value::Object(map) => Kind::StructValue(prost_types::Struct {
            fields: map.into_iter().map(|(k, v)| (k, to_value(v))).collect(),
        }),
    };
    prost_types::Value { kind: Some(kind) }
}

/// The AuditService implementation: read-only; events cannot be changed or deleted.
#[derive(Debug, Clone)]
pub struct AuditApi {
    state: AppState,
}

impl AuditApi {
    pub fn new(state: AppState) -> Self {
        AuditApi { state }
    }

    async fn list(
        &self,
        request: pb::ListAuditEventsRequest,
    ) -> Result<pb::ListAuditEventsResponse> {
        let election_id = if request.parent == "organizations/-" {
            None
        } else {
            Some(parse_parent(&request.parent).map_err(|_| {
                Error::invalid(
                    "parent",
                    "must be an election (elections/{election}) or organizations/-",
                )
            })?)
        };
        let query = self.state.page_tokens.prepare(
            &store::audit::LIST_SPEC,
            &ListRequest {
                parent: &request.parent,
                page_size: request.page_size,
                page_token: &request.page_token,
                filter: &request.filter,
                order_by: &request.order_by,
                ..Default::default()
            },
        )?;
        let mut conn = self.state.db.read().await?;
        if let Some(id) = election_id {
            // Events outlive a deleted election; only a name that never existed is unknown.
            let known: bool = sqlx::query_scalar(
                "SELECT EXISTS (SELECT 1 FROM audit_events WHERE election_id = $1)",
            )
            .bind(id)
            .fetch_one(&mut *conn)
            .await?;
            if !known {
                require_election(&mut conn, id).await?;
            }
        }
        let (rows, total) = store::audit::list(&mut conn, election_id, &query).await?;
        let page = Page::from_rows(&self.state.page_tokens, &query, rows, total);
        Ok(pb::ListAuditEventsResponse {
            audit_events: page
                .items
                .into_iter()
                .map(|event| pb::AuditEvent {
                    event_time: Some(to_timestamp(event.event_time)),
                    actor: event.actor,
                    method: event.method,
                    resource: event.resource,
                    request_id: event.request_id,
                    changed_fields: event.changed_fields,
                    before: to_struct(event.before),
                    after: to_struct(event.after),
                    reason: event.reason,
                })
                .collect(),
            next_page_token: page.next_page_token,
            total_size: total_size(page.total_size),
        })
    }
}

#[tonic::async_trait]
impl AuditService for AuditApi {
    async fn list_audit_events(
        &self,
        request: Request<pb::ListAuditEventsRequest>,
    ) -> Result<Response<pb::ListAuditEventsResponse>, Status> {
        Ok(Response::new(self.list(request.into_inner()).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changed_fields_are_the_differing_ones_in_snake_case() {
        let before = serde_json::json!({"displayName": "A", "hostCountry": "KZ", "etag": "1", "updateTime": "x"});
        let after = serde_json::json!({"displayName": "B", "hostCountry": "KZ", "etag": "2", "updateTime": "y", "description": "d"});
        assert_eq!(
            changed_fields(Some(&before), Some(&after)),
            ["description", "display_name"]
        );
        assert_eq!(changed_fields(None, Some(&after)).len(), 3);
        let pending = serde_json::json!({"accreditation": {"state": "PENDING"}, "email": "a@b.c"});
        let accredited = serde_json::json!({"accreditation": {"state": "ACCREDITED", "number": "KZ-2023-000001"}, "email": "x@y.z"});
        assert_eq!(
            changed_fields(Some(&pending), Some(&accredited)),
            ["accreditation.number", "accreditation.state", "email"]
        );
        let mut stripped = accredited.clone();
        strip_personal_data(&mut stripped);
        assert!(stripped.get("email").is_none());
    }

    #[test]
    fn messages_become_proto3_json() {
        let election = pb::Election {
            name: "elections/kz".into(),
            host_country: "KZ".into(),
            ..Default::default()
        };
        let value = json("Election", &election);
        assert_eq!(value["hostCountry"], "KZ");
        assert_eq!(value["name"], "elections/kz");
    }
}
