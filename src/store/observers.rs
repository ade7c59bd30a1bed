//! SQL for observers and accreditation numbers.

mod list_spec;

use std::sync::LazyLock;

use chrono::{DateTime, NaiveDate, Utc};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::aip::paging::{KeyValue, Keyed, ListQuery};
use crate::domain::country::CountryCode;
use crate::domain::observer::identity::{
    DateOfBirth, Email, PersonName, Phone, TravelDocumentNumber,
};
use crate::domain::observer::{
    Accreditation, AccreditationState, Observer, ObserverFields, ObserverRole, observer_name,
};
use crate::error::{Error, Reason, Result};
use crate::store::audit::Recording;
use crate::store::listing::{ListCounts, Source, fetch_page_of_election};

pub use list_spec::LIST_SPEC;

/// An observer as stored, read from the columns of [`COLUMNS`] in that order.
struct ObserverRow {
    election_id: String,
    id: String,
    given_name: String,
    family_name: String,
    citizenship: String,
    organization_id: String,
    delegation_id: Option<String>,
    role: Option<String>,
    /// NULL only once erased (`observers_personal_data_erased`).
    travel_document_number: Option<String>,
    date_of_birth: Option<NaiveDate>,
    email: String,
    phone: String,
    deployment_region: String,
    accreditation_state: String,
    accreditation_number: Option<String>,
    decide_time: Option<DateTime<Utc>>,
    decision_reason: String,
    create_time: DateTime<Utc>,
    update_time: DateTime<Utc>,
    etag: Uuid,
    delete_time: Option<DateTime<Utc>>,
    /// `None` only in change-feed rows written before the column existed.
    decision: Option<String>,
    personal_data_erase_time: Option<DateTime<Utc>>,
}

/// By position and without sqlx's check of each value's type against the column's: reading
/// by name with that check was a quarter of the service's CPU time when listing pages of
/// 100 observers (perf). The positions are those of [`COLUMNS`], which every statement that
/// reads observers selects first; a wrong type still fails to decode (tested through every
/// read of the test suite).
impl<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow> for ObserverRow {
    fn from_row(row: &'r sqlx::postgres::PgRow) -> sqlx::Result<Self> {
        use sqlx::Row;
        Ok(ObserverRow {
            election_id: row.try_get_unchecked(0)?,
            id: row.try_get_unchecked(1)?,
            given_name: row.try_get_unchecked(2)?,
            family_name: row.try_get_unchecked(3)?,
            citizenship: row.try_get_unchecked(4)?,
            organization_id: row.try_get_unchecked(5)?,
            delegation_id: row.try_get_unchecked(6)?,
            role: row.try_get_unchecked(7)?,
            travel_document_number: row.try_get_unchecked(8)?,
            date_of_birth: row.try_get_unchecked(9)?,
            email: row.try_get_unchecked(10)?,
            phone: row.try_get_unchecked(11)?,
            deployment_region: row.try_get_unchecked(12)?,
            accreditation_state: row.try_get_unchecked(13)?,
            accreditation_number: row.try_get_unchecked(14)?,
            decide_time: row.try_get_unchecked(15)?,
            decision_reason: row.try_get_unchecked(16)?,
            create_time: row.try_get_unchecked(17)?,
            update_time: row.try_get_unchecked(18)?,
            etag: row.try_get_unchecked(19)?,
            delete_time: row.try_get_unchecked(20)?,
            decision: row.try_get_unchecked(21)?,
            personal_data_erase_time: row.try_get_unchecked(22)?,
        })
    }
}

impl TryFrom<ObserverRow> for Observer {
    type Error = Error;

    fn try_from(row: ObserverRow) -> Result<Observer> {
        let corrupt =
            |what: String| Error::internal(anyhow::anyhow!("stored observer {}: {what}", row.id));
        let citizenship = CountryCode::parse(&row.citizenship).map_err(corrupt)?;
        let role = match row.role.as_deref() {
            Some(role) => {
                Some(ObserverRole::parse(role).ok_or_else(|| corrupt(format!("role {role}")))?)
            }
            None => None,
        };
        let state = AccreditationState::parse(&row.accreditation_state)
            .ok_or_else(|| corrupt(format!("state {}", row.accreditation_state)))?;
        Ok(Observer {
            // PostgreSQL's CHECKs hold every stored value to the domain's rules.
            fields: ObserverFields {
                given_name: PersonName::from_stored(row.given_name),
                family_name: PersonName::from_stored(row.family_name),
                citizenship,
                organization_id: row.organization_id,
                delegation_id: row.delegation_id,
                role,
                travel_document_number: row
                    .travel_document_number
                    .map(TravelDocumentNumber::from_stored),
                date_of_birth: row.date_of_birth.map(DateOfBirth::from_stored),
                email: Some(row.email)
                    .filter(|e| !e.is_empty())
                    .map(Email::from_stored),
                phone: Some(row.phone)
                    .filter(|p| !p.is_empty())
                    .map(Phone::from_stored),
                deployment_region: row.deployment_region,
            },
            accreditation: Accreditation {
                state,
                number: row.accreditation_number,
                decide_time: row.decide_time,
                reason: row.decision_reason,
                decision: row.decision.unwrap_or_default(),
            },
            election_id: row.election_id,
            id: row.id,
            create_time: row.create_time,
            update_time: row.update_time,
            etag: row.etag,
            delete_time: row.delete_time,
            personal_data_erase_time: row.personal_data_erase_time,
        })
    }
}

impl Keyed for Observer {
    fn key_value(&self, path: &str) -> KeyValue {
        match path {
            "create_time" => KeyValue::time(self.create_time),
            "update_time" => KeyValue::time(self.update_time),
            "family_name" => KeyValue::Text(self.fields.family_name.as_str().to_owned()),
            "given_name" => KeyValue::Text(self.fields.given_name.as_str().to_owned()),
            "citizenship" => KeyValue::Text(self.fields.citizenship.to_string()),
            _ => KeyValue::Text(self.id.clone()),
        }
    }
}

const COLUMNS: &str = "election_id, id, given_name, family_name, citizenship, organization_id, \
                       delegation_id, role, travel_document_number, date_of_birth, email, phone, \
                       deployment_region, accreditation_state, accreditation_number, decide_time, \
                       decision_reason, create_time, update_time, etag, delete_time, decision, \
                       personal_data_erase_time";

/// The observers' change feed.
pub const FEED: crate::store::changes::Feed = crate::store::changes::Feed {
    resource_type: "observer",
    table: "observers",
    columns: COLUMNS,
};

/// The observer of a row that selected [`COLUMNS`] first: a change-feed row
/// (`changes::after`), an insert's.
pub fn from_change_row(row: &sqlx::postgres::PgRow) -> Result<Observer> {
    Observer::try_from(<ObserverRow as sqlx::FromRow<sqlx::postgres::PgRow>>::from_row(row)?)
}

fn into_observers(rows: Vec<ObserverRow>) -> Result<Vec<Observer>> {
    rows.into_iter().map(Observer::try_from).collect()
}

/// Inserts new registrations exactly as given (`Observer::registered`: their times and etags
/// too) in one statement — a batch is one round trip, not one per row — and in the same
/// statement what `record` writes (the audit event, the remembered response). INTERNAL, and
/// nothing stays, if the stored rows differ from those given: the record was made of them.
pub async fn insert_many(
    conn: &mut PgConnection,
    observers: &[Observer],
    record: Option<&(dyn Recording + Sync)>,
) -> Result<Vec<Observer>> {
    let Some(election_id) = observers.first().map(|o| o.election_id.as_str()) else {
        return Ok(Vec::new());
    };
    let fields = |get: fn(&ObserverFields) -> String| -> Vec<String> {
        observers.iter().map(|o| get(&o.fields)).collect()
    };
    let ids: Vec<&str> = observers.iter().map(|o| o.id.as_str()).collect();
    let delegations: Vec<Option<&str>> = observers
        .iter()
        .map(|o| o.fields.delegation_id.as_deref())
        .collect();
    let roles: Vec<Option<&str>> = observers
        .iter()
        .map(|o| o.fields.role.map(|r| r.as_str()))
        .collect();
    let births: Vec<Option<NaiveDate>> = observers
        .iter()
        .map(|o| o.fields.date_of_birth.map(DateOfBirth::date))
        .collect();
    let documents: Vec<Option<&str>> = observers
        .iter()
        .map(|o| document_column(&o.fields))
        .collect();
    let create_times: Vec<DateTime<Utc>> = observers.iter().map(|o| o.create_time).collect();
    let update_times: Vec<DateTime<Utc>> = observers.iter().map(|o| o.update_time).collect();
    let etags: Vec<Uuid> = observers.iter().map(|o| o.etag).collect();
    let recorded = record.map(|r| r.ctes(17)).unwrap_or_default();
    let query = sqlx::query(trusted_sql!(
        "WITH inserted AS (INSERT INTO observers (election_id, id, given_name, family_name, \
         citizenship, organization_id, delegation_id, role, travel_document_number, \
         date_of_birth, email, phone, deployment_region, create_time, update_time, etag) \
         SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], \
         $7::text[], $8::text[], $9::text[], $10::date[], $11::text[], $12::text[], $13::text[], \
         $14::timestamptz[], $15::timestamptz[], $16::uuid[]) \
         RETURNING {COLUMNS}){recorded} \
         SELECT {COLUMNS} FROM inserted"
    ))
    .bind(election_id)
    .bind(&ids)
    .bind(fields(|f| f.given_name.as_str().to_owned()))
    .bind(fields(|f| f.family_name.as_str().to_owned()))
    .bind(fields(|f| f.citizenship.to_string()))
    .bind(fields(|f| f.organization_id.clone()))
    .bind(&delegations)
    .bind(&roles)
    .bind(&documents)
    .bind(&births)
    .bind(fields(email_column))
    .bind(fields(phone_column))
    .bind(fields(|f| f.deployment_region.clone()))
    .bind(&create_times)
    .bind(&update_times)
    .bind(&etags);
    let query = match record {
        Some(record) => record.bind(query),
        None => query,
    };
    let rows = query
        .fetch_all(conn)
        .await
        .map_err(|e| match Error::from(e) {
            error if error.reason == Reason::AlreadyExists => Error::new(
                Reason::AlreadyExists,
                "an observer with one of these ids already exists in the election",
            ),
            error => error,
        })?;
    let mut stored = rows
        .iter()
        .map(from_change_row)
        .collect::<Result<Vec<_>>>()?;
    stored.sort_by_key(|o| ids.iter().position(|id| *id == o.id));
    if stored != observers {
        return Err(Error::internal(anyhow::anyhow!(
            "the observers stored differ from those registered in election {election_id}"
        )));
    }
    Ok(stored)
}

/// NULL once erased.
fn document_column(fields: &ObserverFields) -> Option<&str> {
    fields
        .travel_document_number
        .as_ref()
        .map(TravelDocumentNumber::as_str)
}

/// Contacts are stored as text, empty when unknown.
fn email_column(fields: &ObserverFields) -> String {
    fields
        .email
        .as_ref()
        .map(|e| e.as_str().to_owned())
        .unwrap_or_default()
}

fn phone_column(fields: &ObserverFields) -> String {
    fields
        .phone
        .as_ref()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_default()
}

/// The observer, locked for the rest of the transaction when `for_update`.
pub async fn get(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    for_update: bool,
) -> Result<Option<Observer>> {
    let lock = if for_update { " FOR UPDATE" } else { "" };
    let row: Option<ObserverRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM observers WHERE election_id = $1 AND id = $2{lock}"
    ))
    .bind(election_id)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(Observer::try_from).transpose()
}

/// The statement of [`get_many_since`]. The position comes last, after the observer's
/// columns, so that `ObserverRow` decodes them by position as everywhere; a row without an
/// observer carries only the position. The position is read once (`MATERIALIZED`): inlined,
/// PostgreSQL read it twice, for the answer and for the choice of ids.
static GET_MANY_SINCE: LazyLock<String> = LazyLock::new(|| {
    format!(
        "WITH p AS MATERIALIZED (SELECT coalesce((SELECT last_position \
         FROM change_positions WHERE election_id = $1), 0) AS position) \
         SELECT o.*, p.position FROM p \
         LEFT JOIN LATERAL (SELECT {COLUMNS} FROM observers WHERE election_id = $1 \
         AND id = ANY(CASE WHEN p.position = $2 THEN $3::text[] ELSE $4::text[] END)) o ON true"
    )
});

/// The election's change-feed position and, in the same snapshot, its observers among
/// `missing` when that position is still `known`, else among `all` (deleted ones included):
/// the query behind coalesced GetObserver calls, whose batches keep what they read at a
/// position (`api::point_reads::cache`). One statement, so one snapshot: PostgreSQL reads
/// the rows of kept observers only when the election changed.
pub async fn get_many_since(
    conn: &mut PgConnection,
    election_id: &str,
    known: i64,
    missing: &[&str],
    all: &[&str],
) -> Result<(i64, Vec<Observer>)> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(GET_MANY_SINCE.as_str()))
        .bind(election_id)
        .bind(known)
        .bind(missing)
        .bind(all)
        .fetch_all(conn)
        .await?;
    // Counted once: the position follows the observer's columns.
    static POSITION_COLUMN: LazyLock<usize> = LazyLock::new(|| COLUMNS.split(',').count());
    let mut position = 0;
    let mut observers = Vec::with_capacity(rows.len());
    for row in &rows {
        use sqlx::Row;
        position = row.try_get(*POSITION_COLUMN)?;
        if row.try_get::<Option<&str>, _>(1)?.is_some() {
            let observer = <ObserverRow as sqlx::FromRow<sqlx::postgres::PgRow>>::from_row(row)?;
            observers.push(Observer::try_from(observer)?);
        }
    }
    Ok((position, observers))
}

/// The live (not deleted) observers of an election with these ids, locked for the rest of
/// the transaction in the order of their ids, so that two batches over the same observers
/// wait for each other instead of deadlocking.
pub async fn lock_live(
    conn: &mut PgConnection,
    election_id: &str,
    ids: &[&str],
) -> Result<Vec<Observer>> {
    let rows: Vec<ObserverRow> = sqlx::query_as(trusted_sql!(
        "SELECT {COLUMNS} FROM observers WHERE election_id = $1 AND id = ANY($2) \
         AND delete_time IS NULL ORDER BY id FOR UPDATE"
    ))
    .bind(election_id)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    into_observers(rows)
}

/// Replaces the caller-set fields and gives the observer a new etag.
pub async fn update(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &ObserverFields,
) -> Result<Observer> {
    let row: ObserverRow = sqlx::query_as(trusted_sql!(
        "UPDATE observers SET given_name = $3, family_name = $4, citizenship = $5, \
         organization_id = $6, delegation_id = $7, role = $8, travel_document_number = $9, \
         date_of_birth = $10, email = $11, phone = $12, deployment_region = $13, \
         update_time = now(), etag = gen_random_uuid() \
         WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(fields.given_name.as_str())
    .bind(fields.family_name.as_str())
    .bind(fields.citizenship.as_str())
    .bind(&fields.organization_id)
    .bind(&fields.delegation_id)
    .bind(fields.role.map(ObserverRole::as_str))
    .bind(document_column(fields))
    .bind(fields.date_of_birth.map(DateOfBirth::date))
    .bind(email_column(fields))
    .bind(phone_column(fields))
    .bind(&fields.deployment_region)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Soft-deletes (`deleted`) or restores the observer.
pub async fn set_deleted(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    deleted: bool,
) -> Result<Observer> {
    let row: ObserverRow = sqlx::query_as(trusted_sql!(
        "UPDATE observers SET delete_time = CASE WHEN $3 THEN now() END, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(deleted)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// Records an accreditation decision.
pub async fn set_accreditation(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    accreditation: &Accreditation,
) -> Result<Observer> {
    let row: ObserverRow = sqlx::query_as(trusted_sql!(
        "UPDATE observers SET accreditation_state = $3, accreditation_number = $4, \
         decide_time = $5, decision_reason = $6, decision = $7, update_time = now(), \
         etag = gen_random_uuid() WHERE election_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(id)
    .bind(accreditation.state.as_str())
    .bind(&accreditation.number)
    .bind(accreditation.decide_time)
    .bind(&accreditation.reason)
    .bind(&accreditation.decision)
    .fetch_one(conn)
    .await?;
    row.try_into()
}

/// The next accreditation number of the host country's sequence for the voting year, with
/// the sequence's row locked until the transaction ends: concurrent accreditations of any
/// election of that country and year take consecutive numbers in commit order. PostgreSQL's
/// trigger moves the sequence on when the number is issued, and refuses any other number.
pub async fn next_accreditation_sequence(
    conn: &mut PgConnection,
    host_country: CountryCode,
    voting_year: i32,
) -> Result<i32> {
    Ok(sqlx::query_scalar(
        "INSERT INTO accreditation_sequences AS s (host_country, voting_year, last_number) \
         VALUES ($1, $2, 0) \
         ON CONFLICT (host_country, voting_year) DO UPDATE SET last_number = s.last_number \
         RETURNING last_number + 1",
    )
    .bind(host_country.as_str())
    .bind(voting_year)
    .fetch_one(conn)
    .await?)
}

/// Records a correction of an observer's identity (CorrectObserver) in the transaction that
/// makes it: PostgreSQL lets a decided observer's identity change only then.
pub async fn record_correction(
    conn: &mut PgConnection,
    election_id: &str,
    id: &str,
    fields: &[&str],
    reason: &str,
    actor: &str,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO observer_corrections (election_id, observer_id, fields, reason, actor) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(election_id)
    .bind(id)
    .bind(fields)
    .bind(reason)
    .bind(actor)
    .execute(conn)
    .await?;
    Ok(())
}

pub async fn list(
    conn: &mut PgConnection,
    election_id: &str,
    query: &ListQuery,
    counts: &ListCounts,
) -> Result<(Vec<Observer>, i64, Option<i64>)> {
    let source = Source {
        columns: COLUMNS,
        from: "observers",
    };
    let election = election_id.to_owned();
    let show_deleted = query.show_deleted;
    let scope = move |qb: &mut sqlx::QueryBuilder<sqlx::Postgres>| {
        qb.push(" AND election_id = ").push_bind(election.clone());
        if !show_deleted {
            qb.push(" AND delete_time IS NULL");
        }
    };
    let (rows, total, position) =
        fetch_page_of_election::<ObserverRow>(conn, &source, &scope, query, counts, election_id)
            .await?;
    Ok((into_observers(rows)?, total, position))
}

/// Erases the personal data of every observer of the election, deleted ones included, that
/// still has it: the travel document number, date of birth, e-mail and phone
/// (`domain::retention::erased`), with `personal_data_erase_time` and `update_time` set to
/// `now`, so that the feed's UPDATED event of the erasure is the one whose update time is the
/// erasure's. Returns the observers as erased; PostgreSQL's trigger feeds each as UPDATED.
pub async fn erase_personal_data(
    conn: &mut PgConnection,
    election_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<Observer>> {
    let rows: Vec<ObserverRow> = sqlx::query_as(trusted_sql!(
        "UPDATE observers SET travel_document_number = NULL, date_of_birth = NULL, \
         email = '', phone = '', personal_data_erase_time = $2, update_time = $2, \
         etag = gen_random_uuid() \
         WHERE election_id = $1 AND personal_data_erase_time IS NULL RETURNING {COLUMNS}"
    ))
    .bind(election_id)
    .bind(now)
    .fetch_all(conn)
    .await?;
    into_observers(rows)
}

/// The name of an observer, for messages.
pub fn name(election_id: &str, id: &str) -> String {
    observer_name(election_id, id)
}
