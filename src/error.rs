//! The one error type of the service and the one table that maps it to gRPC.
//!
//! Handlers end with `?`; every status carries `google.rpc.ErrorInfo` (domain
//! `observer-registry`, an UPPER_SNAKE reason) and INVALID_ARGUMENT also carries
//! `google.rpc.BadRequest` with one violation per bad field (AIP-193). Internal errors are
//! logged whole and answered generically: no SQL or driver text reaches a client.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// `ErrorInfo.domain` of every error this service returns.
pub const ERROR_DOMAIN: &str = "observer-registry";

/// Why a call failed. Each reason has exactly one gRPC code (see [`Reason::code`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    InvalidArgument,
    InvalidPageToken,
    InvalidFilter,
    InvalidResumeToken,
    NotFound,
    AlreadyExists,
    EtagMismatch,
    HostCountryCitizen,
    DuplicateObserver,
    DelegationOrganizationMismatch,
    HeadNotMember,
    InvalidStateTransition,
    AccreditationClosed,
    MeetingConflict,
    OutsideDelegationStay,
    HasChildren,
    /// A delegation a scheduled meeting needs was deleted.
    DelegationDeleted,
    Unauthenticated,
    PermissionDenied,
    Unavailable,
    /// The server is at its concurrency limit; the call was not started.
    Overloaded,
    /// A transaction lost a race (serialization failure or deadlock) and may be retried.
    Aborted,
    DeadlineExceeded,
    Unimplemented,
    Internal,
}

impl Reason {
    /// The single table from reason to gRPC code.
    pub fn code(self) -> Code {
        use Reason::*;
        match self {
            InvalidArgument | InvalidPageToken | InvalidFilter | InvalidResumeToken => {
                Code::InvalidArgument
            }
            NotFound => Code::NotFound,
            AlreadyExists | DuplicateObserver => Code::AlreadyExists,
            EtagMismatch | Aborted => Code::Aborted,
            HostCountryCitizen
            | DelegationOrganizationMismatch
            | HeadNotMember
            | InvalidStateTransition
            | AccreditationClosed
            | MeetingConflict
            | OutsideDelegationStay
            | HasChildren
            | DelegationDeleted => Code::FailedPrecondition,
            Unauthenticated => Code::Unauthenticated,
            PermissionDenied => Code::PermissionDenied,
            Unavailable => Code::Unavailable,
            Overloaded => Code::ResourceExhausted,
            DeadlineExceeded => Code::DeadlineExceeded,
            Unimplemented => Code::Unimplemented,
            Internal => Code::Internal,
        }
    }

    /// The `ErrorInfo.reason` string, as API.md names it.
    pub fn as_str(self) -> &'static str {
        use Reason::*;
        match self {
            InvalidArgument => "INVALID_ARGUMENT",
            InvalidPageToken => "INVALID_PAGE_TOKEN",
            InvalidFilter => "INVALID_FILTER",
            InvalidResumeToken => "INVALID_RESUME_TOKEN",
            NotFound => "NOT_FOUND",
            AlreadyExists => "ALREADY_EXISTS",
            EtagMismatch => "ETAG_MISMATCH",
            HostCountryCitizen => "HOST_COUNTRY_CITIZEN",
            DuplicateObserver => "DUPLICATE_OBSERVER",
            DelegationOrganizationMismatch => "DELEGATION_ORGANIZATION_MISMATCH",
            HeadNotMember => "HEAD_NOT_MEMBER",
            InvalidStateTransition => "INVALID_STATE_TRANSITION",
            AccreditationClosed => "ACCREDITATION_CLOSED",
            MeetingConflict => "MEETING_CONFLICT",
            OutsideDelegationStay => "OUTSIDE_DELEGATION_STAY",
            HasChildren => "HAS_CHILDREN",
            DelegationDeleted => "DELEGATION_DELETED",
            Unauthenticated => "UNAUTHENTICATED",
            PermissionDenied => "PERMISSION_DENIED",
            Unavailable => "UNAVAILABLE",
            Overloaded => "OVERLOADED",
            Aborted => "ABORTED",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
        }
    }
}

/// What kind of database failure an error came from: the `kind` label of the
/// `db_errors_total` metric, and whether the database should be taken for lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// No connection came free within the pool's acquire timeout.
    PoolExhausted,
    PoolClosed,
    /// The connection broke or could not be made: the database is likely down.
    Connection,
    Constraint,
    SerializationFailure,
    Deadlock,
    StatementTimeout,
    Internal,
}

impl DatabaseFailure {
    /// The SQLSTATE table: which failure a driver error is.
    pub fn of(error: &sqlx::Error) -> Self {
        use sqlx::Error as E;
        match error {
            E::PoolTimedOut => DatabaseFailure::PoolExhausted,
            E::PoolClosed => DatabaseFailure::PoolClosed,
            E::Io(_) | E::Tls(_) => DatabaseFailure::Connection,
            E::Database(db) => match db.code().as_deref() {
                Some("23505" | "23503" | "23P01" | "23514" | "23502" | "22001") => {
                    DatabaseFailure::Constraint
                }
                Some("40001") => DatabaseFailure::SerializationFailure,
                Some("40P01") => DatabaseFailure::Deadlock,
                Some("57014") => DatabaseFailure::StatementTimeout,
                Some(code) if code.starts_with("08") || code.starts_with("57P") => {
                    DatabaseFailure::Connection
                }
                _ => DatabaseFailure::Internal,
            },
            _ => DatabaseFailure::Internal,
        }
    }

    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            DatabaseFailure::PoolExhausted => "pool_exhausted",
            DatabaseFailure::PoolClosed => "pool_closed",
            DatabaseFailure::Connection => "connection",
            DatabaseFailure::Constraint => "constraint",
            DatabaseFailure::SerializationFailure => "serialization_failure",
            DatabaseFailure::Deadlock => "deadlock",
            DatabaseFailure::StatementTimeout => "statement_timeout",
            DatabaseFailure::Internal => "internal",
        }
    }
}

/// One bad field of a request (`google.rpc.BadRequest.FieldViolation`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldViolation {
    /// Path of the field as in the request, e.g. `election.host_country`.
    pub field: String,
    pub description: String,
}

/// A failed call: reason, a message for humans, and the details clients act on.
#[derive(Debug)]
pub struct Error {
    pub reason: Reason,
    pub message: String,
    pub violations: Vec<FieldViolation>,
    /// `ErrorInfo.metadata`, e.g. the resource a NOT_FOUND is about.
    pub metadata: HashMap<String, String>,
    /// The cause of an internal error: logged, never sent.
    source: Option<anyhow::Error>,
    /// Which database failure this error was mapped from (see [`Error::from_sqlx`]).
    database_failure: Option<DatabaseFailure>,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Error {
            reason,
            message: message.into(),
            violations: Vec::new(),
            metadata: HashMap::new(),
            source: None,
            database_failure: None,
        }
    }

    /// Adds an `ErrorInfo.metadata` entry.
    pub fn with_metadata(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// Names the request field an error is about (`BadRequest`), also for errors that are not
    /// INVALID_ARGUMENT, e.g. which batch entry broke a domain rule.
    pub fn with_violation(mut self, field: &str, description: impl Into<String>) -> Self {
        self.violations.push(FieldViolation {
            field: field.to_owned(),
            description: description.into(),
        });
        self
    }

    /// Prefixes every violation's field, e.g. `observer.citizenship` →
    /// `requests[3].observer.citizenship`.
    pub fn within(mut self, prefix: &str) -> Self {
        for violation in &mut self.violations {
            violation.field = format!("{prefix}.{}", violation.field);
        }
        if !prefix.is_empty() {
            self.message = format!("{prefix}: {}", self.message);
        }
        self
    }

    /// INVALID_ARGUMENT for one field, with `reason` (e.g. INVALID_FILTER).
    pub fn invalid_field(reason: Reason, field: &str, description: impl Into<String>) -> Self {
        let description = description.into();
        let mut error = Error::new(reason, format!("{field}: {description}"));
        error.violations.push(FieldViolation {
            field: field.to_owned(),
            description,
        });
        error
    }

    /// INVALID_ARGUMENT / INVALID_ARGUMENT for one field.
    pub fn invalid(field: &str, description: impl Into<String>) -> Self {
        Error::invalid_field(Reason::InvalidArgument, field, description)
    }

    pub fn not_found(resource: &str) -> Self {
        Error::new(Reason::NotFound, format!("{resource} not found"))
            .with_metadata("resource", resource)
    }

    pub fn already_exists(resource: &str) -> Self {
        Error::new(Reason::AlreadyExists, format!("{resource} already exists"))
            .with_metadata("resource", resource)
    }

    pub fn etag_mismatch(resource: &str) -> Self {
        Error::new(
            Reason::EtagMismatch,
            format!("{resource} was changed since it was read: the etag does not match"),
        )
        .with_metadata("resource", resource)
    }

    /// FAILED_PRECONDITION (or the reason's own code) for a broken domain rule.
    pub fn precondition(reason: Reason, message: impl Into<String>) -> Self {
        Error::new(reason, message)
    }

    pub fn unimplemented(what: &str) -> Self {
        Error::new(
            Reason::Unimplemented,
            format!("{what} is not implemented yet"),
        )
    }

    /// An error the client cannot act on; `source` is logged when the status is built.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut error = Error::new(Reason::Internal, "internal error");
        error.source = Some(source.into());
        error
    }

    /// Maps a database error: constraint violations become client errors (SQLSTATE table),
    /// lost connections and an exhausted pool UNAVAILABLE, races ABORTED (retried by
    /// `Database::transaction`), everything else INTERNAL. Only maps: the error remembers
    /// its [`DatabaseFailure`], and the database module counts it and notices a lost
    /// database where it runs the work.
    pub fn from_sqlx(error: sqlx::Error) -> Self {
        let failure = DatabaseFailure::of(&error);
        let unavailable = || {
            Error::new(
                Reason::Unavailable,
                "the database is unavailable; retry later",
            )
        };
        let mut mapped = match failure {
            DatabaseFailure::PoolExhausted => Error::new(
                Reason::Unavailable,
                "no database connection came free in time; retry later",
            ),
            DatabaseFailure::PoolClosed | DatabaseFailure::Connection => unavailable(),
            DatabaseFailure::Constraint => match &error {
                sqlx::Error::Database(db) => constraint_error(
                    db.code().as_deref().unwrap_or_default(),
                    db.constraint(),
                    db.table(),
                ),
                // `of` says Constraint only for database errors.
                _ => Error::internal(error),
            },
            DatabaseFailure::SerializationFailure | DatabaseFailure::Deadlock => Error::new(
                Reason::Aborted,
                "the change conflicted with a concurrent change; retry it",
            ),
            DatabaseFailure::StatementTimeout => Error::new(
                Reason::DeadlineExceeded,
                "the call's deadline passed while the database was working",
            ),
            DatabaseFailure::Internal => Error::internal(error),
        };
        mapped.database_failure = Some(failure);
        mapped
    }

    /// The database failure this error was mapped from, if any (for metrics).
    pub fn database_failure(&self) -> Option<DatabaseFailure> {
        self.database_failure
    }

    /// Maps an insert's error: a taken primary key names the resource that already exists.
    pub fn on_insert(name: impl FnOnce() -> String) -> impl FnOnce(sqlx::Error) -> Error {
        move |error| match Error::from(error) {
            error if error.reason == Reason::AlreadyExists => Error {
                database_failure: error.database_failure,
                ..Error::already_exists(&name())
            },
            error => error,
        }
    }

    /// The same answer for another caller (one error of a shared batch); the internal cause
    /// stays with the first.
    pub fn copy_for_client(&self) -> Error {
        Error {
            reason: self.reason,
            message: self.message.clone(),
            violations: self.violations.clone(),
            metadata: self.metadata.clone(),
            source: None,
            // Counted once, with the first.
            database_failure: None,
        }
    }

    /// Whether a retry of the whole transaction may succeed.
    pub fn is_retryable(&self) -> bool {
        self.reason == Reason::Aborted
    }
}

/// The error for a violated constraint, by name: the application checks these rules first
/// for a precise error, so reaching here means a concurrent caller won a race.
fn constraint_error(code: &str, constraint: Option<&str>, table: Option<&str>) -> Error {
    use Reason::*;
    let known = match constraint {
        Some("observers_one_person_per_election") => Some((
            DuplicateObserver,
            "an observer with this citizenship and travel document number is already registered \
             in this election",
        )),
        Some("observers_delegation_same_organization") => Some((
            DelegationOrganizationMismatch,
            "an observer's delegation must be of the same election and sent by the observer's \
             organization",
        )),
        Some("delegations_head_is_member") => Some((
            HeadNotMember,
            "the head of a delegation must be one of its members",
        )),
        Some("observers_not_host_country_citizen") => Some((
            HostCountryCitizen,
            "observers cannot be citizens of the election's host country",
        )),
        Some("observers_accreditation_transition") => Some((
            InvalidStateTransition,
            "the accreditation state changed concurrently; read the observer again",
        )),
        _ => None,
    };
    let (reason, message) = match (known, code) {
        (Some(known), _) => known,
        // A key violation reported on another table than the constraint's own: the row being
        // deleted is still referenced.
        (None, "23503") if table.is_some_and(|t| !constraint.unwrap_or("").starts_with(t)) => {
            (HasChildren, "the resource is still referenced by others")
        }
        (None, "23503") => (
            NotFound,
            "a resource the request refers to no longer exists",
        ),
        (None, "23505") => (AlreadyExists, "the resource already exists"),
        (None, "23P01") => (
            MeetingConflict,
            "the request conflicts with an existing record",
        ),
        (None, _) => (InvalidArgument, "the request breaks a rule of the registry"),
    };
    let mut error = Error::new(reason, message);
    if let Some(name) = constraint {
        error = error.with_metadata("constraint", name);
    }
    error
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Error::from_sqlx(error)
    }
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reason.as_str(), self.message)
    }
}

impl std::error::Error for Error {}

impl From<Error> for Status {
    fn from(error: Error) -> Status {
        if let Some(source) = &error.source {
            tracing::error!(error = ?source, "internal error");
        }
        let mut details = ErrorDetails::with_error_info(
            error.reason.as_str(),
            ERROR_DOMAIN,
            error.metadata.clone(),
        );
        for violation in &error.violations {
            details.add_bad_request_violation(&violation.field, &violation.description);
        }
        Status::with_error_details(error.reason.code(), error.message, details)
    }
}

/// Collects every bad field of a request, so the client learns all of them at once.
#[derive(Debug, Default)]
pub struct Violations(Vec<FieldViolation>);

impl Violations {
    pub fn new() -> Self {
        Violations::default()
    }

    pub fn add(&mut self, field: impl Into<String>, description: impl Into<String>) {
        self.0.push(FieldViolation {
            field: field.into(),
            description: description.into(),
        });
    }

    /// Keeps the value of a check, recording its failure under `field`.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &str,
        result: std::result::Result<T, E>,
    ) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(error) => {
                self.add(field, error.to_string());
                None
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Ok when no field was bad; otherwise INVALID_ARGUMENT naming every bad field.
    pub fn finish(self) -> Result<()> {
        if self.0.is_empty() {
            return Ok(());
        }
        let message = self
            .0
            .iter()
            .map(|v| format!("{}: {}", v.field, v.description))
            .collect::<Vec<_>>()
            .join("; ");
        let mut error = Error::new(Reason::InvalidArgument, message);
        error.violations = self.0;
        Err(error)
    }
}
