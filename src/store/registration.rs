//! The facts the registration rules (`domain::observer::registration`) are checked against,
//! loaded for all entries of a request at once — one statement (two when they name
//! delegations), not one per entry, so that a batch of 1000 costs a round trip or two.
//! Organizations are read FOR KEY SHARE, so they cannot go before the registering transaction
//! commits (only their existence counts: the lock their foreign key takes anyway, which a
//! concurrent rename does not wait for), and delegations FOR SHARE, so they cannot change
//! (be deleted, change organization) or go either.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Utc};
use sqlx::postgres::PgArguments;
use sqlx::query::Query;
use sqlx::{FromRow, PgConnection, Postgres, Row};

use crate::aip::request_id::IdempotencyKey;
use crate::domain::election::Election;

use crate::domain::country::CountryCode;
use crate::domain::observer::identity::TravelDocumentNumber;
use crate::domain::observer::registration::{Candidate, DelegationFacts, RegistrationFacts};
use crate::error::Result;
use crate::store::{self, request_ids};

/// What [`load`] found.
pub struct Found {
    /// The ids among the new ones asked about that the election has already (deleted or not).
    pub taken_ids: Vec<String>,
    pub facts: RegistrationFacts,
}

/// The facts' columns, read `FROM` the registrations of the same person (`AS r`): live
/// observers of the election with a candidate's citizenship and travel document, as three
/// arrays (one row, NULLs when there are none). Parameters: `$1` the election, `$2` the
/// candidates' citizenships and `$3` their travel documents, `$4` the observer excepted, `$5`
/// the organizations named, `$6` the new ids. Each candidate's registrations are looked up
/// through the one-person index (`OFFSET 0` keeps the lookup a nested loop): PostgreSQL keeps
/// a generic plan of this statement, and one made while an election was small hashed its
/// whole table, which it went on doing on every registration as the election grew (without
/// autovacuum's ANALYZE, which this machine's PostgreSQL runs without, nothing replans it).
const FACTS: &str = "ARRAY(SELECT id FROM organizations WHERE id = ANY($5) ORDER BY id FOR KEY SHARE) \
                       AS organizations, \
                     ARRAY(SELECT id FROM observers WHERE election_id = $1 AND id = ANY($6)) \
                       AS taken_ids, \
                     r.citizenships, r.documents, r.ids \
                     FROM (SELECT array_agg(o.citizenship) AS citizenships, \
                                  array_agg(o.travel_document_number) AS documents, \
                                  array_agg(o.id) AS ids \
                           FROM unnest($2::text[], $3::text[]) AS p(citizenship, document) \
                           CROSS JOIN LATERAL (SELECT id, citizenship, travel_document_number \
                             FROM observers \
                            WHERE election_id = $1 AND citizenship = p.citizenship \
                              AND travel_document_number = p.document \
                              AND delete_time IS NULL AND id IS DISTINCT FROM $4 \
                           OFFSET 0) AS o) AS r";

/// [`FACTS`] of one candidate, with one organization and at most one new id, its parameters
/// values instead of arrays. PostgreSQL cannot know how long an array parameter is, so it
/// judges [`FACTS`]' generic plan dearer than a plan for the values at hand, and plans it
/// again on every execution: that was a third of a millisecond of PostgreSQL's time per
/// CreateObserver. This one's generic plan is the plan for any values, and PostgreSQL keeps it.
const FACTS_OF_ONE: &str = "ARRAY(SELECT id FROM organizations WHERE id = $5 FOR KEY SHARE) \
                              AS organizations, \
                            ARRAY(SELECT id FROM observers WHERE election_id = $1 AND id = $6) \
                              AS taken_ids, \
                            r.citizenships, r.documents, r.ids \
                            FROM (SELECT array_agg(o.citizenship) AS citizenships, \
                                         array_agg(o.travel_document_number) AS documents, \
                                         array_agg(o.id) AS ids \
                                  FROM observers o WHERE o.election_id = $1 \
                                   AND o.citizenship = $2 AND o.travel_document_number = $3 \
                                   AND o.delete_time IS NULL AND o.id IS DISTINCT FROM $4) AS r";

/// The statements of one shape of [`FACTS`].
struct Statements {
    load: String,
    /// [`claim_and_load`]'s without a key, and with one (its claim at `$7`–`$10`).
    load_with_election: String,
    claim_and_load: String,
}

impl Statements {
    fn new(facts: &str) -> Self {
        let election = store::elections::COLUMNS;
        Statements {
            load: format!("SELECT {facts}"),
            load_with_election: format!(
                "SELECT true AS claimed, transaction_timestamp() AS transaction_time, \
                 {election}, {facts} \
                 LEFT JOIN elections ON elections.id = $1"
            ),
            claim_and_load: format!(
                "WITH claim AS ({claim} RETURNING 1) \
                 SELECT EXISTS (SELECT FROM claim) AS claimed, \
                 transaction_timestamp() AS transaction_time, {election}, {facts} \
                 LEFT JOIN elections ON elections.id = $1",
                claim = request_ids::claim_statement(7),
            ),
        }
    }

    /// Those for `candidates` and `new_ids`, and their parameters `$1`–`$6` bound.
    fn bound<'q>(
        candidates: &'q [Candidate<'q>],
        new_ids: &'q [String],
    ) -> (&'static Statements, Binder<'q>) {
        static MANY: LazyLock<Statements> = LazyLock::new(|| Statements::new(FACTS));
        static ONE: LazyLock<Statements> = LazyLock::new(|| Statements::new(FACTS_OF_ONE));
        match (candidates, new_ids) {
            ([one], [] | [_]) => (&ONE, Binder::One(*one, new_ids.first())),
            _ => (&MANY, Binder::Many(candidates, new_ids)),
        }
    }
}

/// Binds [`FACTS`]' or [`FACTS_OF_ONE`]'s parameters after the election (`$2`–`$6`).
enum Binder<'q> {
    One(Candidate<'q>, Option<&'q String>),
    Many(&'q [Candidate<'q>], &'q [String]),
}

impl<'q> Binder<'q> {
    fn bind(
        self,
        sql: &'q str,
        election_id: &'q str,
        except: Option<&'q str>,
    ) -> Query<'q, Postgres, PgArguments> {
        let query = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(election_id);
        match self {
            Binder::One(candidate, new_id) => query
                .bind(candidate.fields.citizenship.as_str())
                .bind(document(&candidate))
                .bind(except)
                .bind(candidate.fields.organization_id.as_str())
                .bind(new_id),
            Binder::Many(candidates, new_ids) => {
                let organization_ids =
                    distinct(candidates.iter().map(|c| c.fields.organization_id.as_str()));
                let citizenships: Vec<&str> = candidates
                    .iter()
                    .map(|c| c.fields.citizenship.as_str())
                    .collect();
                let documents: Vec<Option<&str>> = candidates.iter().map(document).collect();
                query
                    .bind(citizenships)
                    .bind(documents)
                    .bind(except)
                    .bind(organization_ids)
                    .bind(new_ids)
            }
        }
    }
}

/// A candidate's travel document; NULL for an erased one, which matches nobody.
fn document<'q>(candidate: &Candidate<'q>) -> Option<&'q str> {
    candidate
        .fields
        .travel_document_number
        .as_ref()
        .map(|d| d.as_str())
}

/// The facts about what `candidates` name, in `election_id`, and which of `new_ids` are
/// taken; `except` is the observer being changed itself, which is not a second registration
/// of its own person. One statement, and one more only when candidates name delegations.
pub async fn load(
    conn: &mut PgConnection,
    election_id: &str,
    candidates: &[Candidate<'_>],
    except: Option<&str>,
    new_ids: &[String],
) -> Result<Found> {
    let (statements, binder) = Statements::bound(candidates, new_ids);
    let row = binder
        .bind(&statements.load, election_id, except)
        .fetch_one(&mut *conn)
        .await?;
    found(conn, election_id, candidates, FactsRow::from_row(&row)?).await
}

/// What [`claim_and_load`] found.
pub enum Registering {
    /// An earlier call claimed the key: its response is the answer
    /// ([`request_ids::first_response`]).
    Replay,
    /// The first call, but the election does not exist.
    NoElection,
    /// The first call (or one without a key).
    First(Box<Loaded>),
}

/// What a first call's registration is checked against and made with.
pub struct Loaded {
    pub election: Election,
    pub found: Found,
    /// The time of the transaction: the new observers' creation time.
    pub now: DateTime<Utc>,
}

/// What a registration needs, in one statement where [`load`] and the claim of a create
/// in an election ([`crate::store::elections::get_claiming`]) took two: the request id
/// claimed under `key` (blocking on a concurrent call with the same key, as
/// [`request_ids::claim`] does), the election, and the facts about the candidates.
pub async fn claim_and_load(
    conn: &mut PgConnection,
    key: Option<&IdempotencyKey>,
    election_id: &str,
    candidates: &[Candidate<'_>],
    new_ids: &[String],
) -> Result<Registering> {
    let (statements, binder) = Statements::bound(candidates, new_ids);
    let sql = if key.is_some() {
        &statements.claim_and_load
    } else {
        &statements.load_with_election
    };
    let mut query = binder.bind(sql, election_id, None);
    if let Some(key) = key {
        query = query
            .bind(key.agency.as_str())
            .bind(key.request_id)
            .bind(key.method)
            .bind(key.fingerprint.as_slice());
    }
    let row = query.fetch_one(&mut *conn).await?;
    if !row.try_get::<bool, _>("claimed")? {
        return Ok(Registering::Replay);
    }
    let Some(election) = store::elections::from_joined_row(&row)? else {
        return Ok(Registering::NoElection);
    };
    let now = row.try_get("transaction_time")?;
    let found = found(conn, election_id, candidates, FactsRow::from_row(&row)?).await?;
    Ok(Registering::First(Box::new(Loaded {
        election,
        found,
        now,
    })))
}

/// The facts of [`FACTS`]' row, with the delegations the candidates name (a statement more
/// only when they name some).
async fn found(
    conn: &mut PgConnection,
    election_id: &str,
    candidates: &[Candidate<'_>],
    row: FactsRow,
) -> Result<Found> {
    let delegation_ids = distinct(
        candidates
            .iter()
            .filter_map(|c| c.delegation_election.and(c.fields.delegation_id.as_deref())),
    );
    let delegations = if delegation_ids.is_empty() {
        HashMap::new()
    } else {
        store::delegations::get_many_for_share(conn, election_id, &delegation_ids)
            .await?
            .into_iter()
            .map(|d| {
                let facts = DelegationFacts {
                    organization_id: d.fields.organization_id,
                    deleted: d.delete_time.is_some(),
                };
                (d.id, facts)
            })
            .collect()
    };
    let registered = row
        .citizenships
        .unwrap_or_default()
        .into_iter()
        .zip(row.documents.unwrap_or_default())
        .zip(row.ids.unwrap_or_default())
        .filter_map(|((citizenship, document), id)| {
            let citizenship = CountryCode::parse(&citizenship).ok()?;
            Some((
                (citizenship, TravelDocumentNumber::from_stored(document)),
                id,
            ))
        })
        .collect();
    Ok(Found {
        taken_ids: row.taken_ids,
        facts: RegistrationFacts {
            organizations: row.organizations.into_iter().collect(),
            delegations,
            registered,
        },
    })
}

/// [`load`]'s statement: the registrations found as three columns of arrays (NULL when
/// there are none).
#[derive(sqlx::FromRow)]
struct FactsRow {
    organizations: Vec<String>,
    taken_ids: Vec<String>,
    citizenships: Option<Vec<String>>,
    documents: Option<Vec<String>>,
    ids: Option<Vec<String>>,
}

/// The distinct values, in first-seen order.
fn distinct<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    values
        .filter(|v| seen.insert(*v))
        .map(str::to_owned)
        .collect()
}
