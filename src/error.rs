//! The one error type of the service and the one table that maps it to gRPC.
//!
//! Handlers end with `?`; every status carries `google.rpc.ErrorInfo` (domain
//! `observer-registry`, an UPPER_SNAKE reason) and INVALID_ARGUMENT also carries
//! `google.rpc.BadRequest` with one violation per bad field (AIP-193). Internal errors are
//! logged whole and answered generically: no SQL or driver text reaches a client.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

mod database;

pub use database::DatabaseFailure;

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
    /// An observer's identity cannot change through UpdateObserver once decided.
    ObserverDecided,
    /// An accredited observer cannot be deleted: revoke first.
    ObserverAccredited,
    /// An election whose observers were decided is never wiped.
    HasDecidedObservers,
    /// A delegation a scheduled meeting needs was deleted.
    DelegationDeleted,
    /// A badge is made only for an ACCREDITED observer.
    NotAccredited,
    /// The service has no badge signing key.
    BadgeSigningDisabled,
    /// The organization has no ACCEPTED invitation to an election that requires one.
    NotInvited,
    /// The election's personal data was erased: no observers are added any more.
    PersonalDataErased,
    /// An agency (or an address, over HTTP) made more verifications than its rate allows.
    RateLimited,
    Unauthenticated,
    PermissionDenied,
    Unavailable,
    /// The server is at its concurrency limit; the call was not started.
    Overloaded,
    /// Too many streams open: an agency's watches, or health Watch and reflection streams.
    WatchLimit,
    /// A stream reached its maximum age and ended; resume it with the last token.
    StreamMaxAge,
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
            | ObserverDecided
            | ObserverAccredited
            | HasDecidedObservers
            | DelegationDeleted
            | NotAccredited
            | BadgeSigningDisabled
            | NotInvited
            | PersonalDataErased => Code::FailedPrecondition,
            Unauthenticated => Code::Unauthenticated,
            PermissionDenied => Code::PermissionDenied,
            Unavailable | StreamMaxAge => Code::Unavailable,
            Overloaded | WatchLimit | RateLimited => Code::ResourceExhausted,
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
            ObserverDecided => "OBSERVER_DECIDED",
            ObserverAccredited => "OBSERVER_ACCREDITED",
            HasDecidedObservers => "HAS_DECIDED_OBSERVERS",
            DelegationDeleted => "DELEGATION_DELETED",
            NotAccredited => "NOT_ACCREDITED",
            BadgeSigningDisabled => "BADGE_SIGNING_DISABLED",
            NotInvited => "NOT_INVITED",
            PersonalDataErased => "PERSONAL_DATA_ERASED",
            RateLimited => "RATE_LIMITED",
            Unauthenticated => "UNAUTHENTICATED",
            PermissionDenied => "PERMISSION_DENIED",
            Unavailable => "UNAVAILABLE",
            Overloaded => "OVERLOADED",
            WatchLimit => "WATCH_LIMIT",
            StreamMaxAge => "STREAM_MAX_AGE",
            Aborted => "ABORTED",
            DeadlineExceeded => "DEADLINE_EXCEEDED",
            Unimplemented => "UNIMPLEMENTED",
            Internal => "INTERNAL",
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
    /// `RetryInfo`: in how many milliseconds the call may be made again (a rate limit);
    /// milliseconds in a u32 keep the error small, and are precise enough for a retry.
    retry_after_ms: Option<u32>,
    /// The cause of an internal error or a refused value: logged, never sent.
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
            retry_after_ms: None,
            source: None,
            database_failure: None,
        }
    }

    /// Adds an `ErrorInfo.metadata` entry.
    pub fn with_metadata(mut self, key: &str, value: impl Into<String>) -> Self {
        self.metadata.insert(key.to_owned(), value.into());
        self
    }

    /// RESOURCE_EXHAUSTED / RATE_LIMITED for a caller over its rate, with when to retry.
    pub fn rate_limited(what: &str, retry_after: std::time::Duration) -> Self {
        let mut error = Error::new(
            Reason::RateLimited,
            format!(
                "{what}: too many calls; retry in {} ms",
                retry_after.as_millis().max(1)
            ),
        );
        error.retry_after_ms = Some(
            u32::try_from(retry_after.as_millis())
                .unwrap_or(u32::MAX)
                .max(1),
        );
        error
    }

    /// When the call may be made again, for errors that say so.
    pub fn retry_after(&self) -> Option<std::time::Duration> {
        self.retry_after_ms
            .map(|ms| std::time::Duration::from_millis(u64::from(ms)))
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

    /// A value of the request that PostgreSQL refused (a data exception): INVALID_ARGUMENT
    /// with a generic message; the driver's text is logged when the status is built.
    pub fn refused_value(source: impl Into<anyhow::Error>) -> Self {
        let mut error = Error::new(
            Reason::InvalidArgument,
            "a value of the request is out of range or not representable",
        );
        error.source = Some(source.into());
        error
    }

    /// An error the client cannot act on; `source` is logged when the status is built.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let mut error = Error::new(Reason::Internal, "internal error");
        error.source = Some(source.into());
        error
    }

    /// The same answer for another caller (one error of a shared batch); the internal cause
    /// stays with the first.
    pub fn copy_for_client(&self) -> Error {
        Error {
            reason: self.reason,
            message: self.message.clone(),
            violations: self.violations.clone(),
            metadata: self.metadata.clone(),
            retry_after_ms: self.retry_after_ms,
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

impl From<crate::domain::refusal::Refusal> for Error {
    fn from(refusal: crate::domain::refusal::Refusal) -> Self {
        use crate::domain::refusal::Rule;
        let reason = match refusal.rule {
            Rule::InvalidArgument => Reason::InvalidArgument,
            Rule::NotFound => Reason::NotFound,
            Rule::HostCountryCitizen => Reason::HostCountryCitizen,
            Rule::DuplicateObserver => Reason::DuplicateObserver,
            Rule::DelegationOrganizationMismatch => Reason::DelegationOrganizationMismatch,
            Rule::HeadNotMember => Reason::HeadNotMember,
            Rule::InvalidStateTransition => Reason::InvalidStateTransition,
            Rule::AccreditationClosed => Reason::AccreditationClosed,
            Rule::MeetingConflict => Reason::MeetingConflict,
            Rule::OutsideDelegationStay => Reason::OutsideDelegationStay,
            Rule::DelegationDeleted => Reason::DelegationDeleted,
            Rule::ObserverDecided => Reason::ObserverDecided,
            Rule::ObserverAccredited => Reason::ObserverAccredited,
            Rule::HasDecidedObservers => Reason::HasDecidedObservers,
            Rule::HasChildren => Reason::HasChildren,
            Rule::NotAccredited => Reason::NotAccredited,
            Rule::NotInvited => Reason::NotInvited,
            Rule::PersonalDataErased => Reason::PersonalDataErased,
        };
        let mut error = Error::new(reason, refusal.message);
        for (field, why) in refusal.fields {
            error = error.with_violation(&field, why);
        }
        for (key, value) in refusal.metadata {
            error = error.with_metadata(key, value);
        }
        error
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
        match &error.source {
            Some(source) if error.reason == Reason::Internal => {
                tracing::error!(error = ?source, "internal error");
            }
            Some(source) => tracing::info!(error = %source, "the database refused a value"),
            None => {}
        }
        let mut details = ErrorDetails::with_error_info(
            error.reason.as_str(),
            ERROR_DOMAIN,
            error.metadata.clone(),
        );
        for violation in &error.violations {
            details.add_bad_request_violation(&violation.field, &violation.description);
        }
        if let Some(retry_after) = error.retry_after() {
            details.set_retry_info(Some(retry_after));
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

#[cfg(test)]
mod tests {
    use observer_registry_client::ErrorReason;

    use super::Reason;

    /// Every reason, listed through a `match` so that a new one does not compile until it is
    /// listed here too.
    fn every_reason() -> Vec<Reason> {
        use Reason::*;
        let all = vec![
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
            ObserverDecided,
            ObserverAccredited,
            HasDecidedObservers,
            DelegationDeleted,
            NotAccredited,
            BadgeSigningDisabled,
            NotInvited,
            PersonalDataErased,
            RateLimited,
            Unauthenticated,
            PermissionDenied,
            Unavailable,
            Overloaded,
            WatchLimit,
            StreamMaxAge,
            Aborted,
            DeadlineExceeded,
            Unimplemented,
            Internal,
        ];
        for reason in &all {
            match reason {
                InvalidArgument
                | InvalidPageToken
                | InvalidFilter
                | InvalidResumeToken
                | NotFound
                | AlreadyExists
                | EtagMismatch
                | HostCountryCitizen
                | DuplicateObserver
                | DelegationOrganizationMismatch
                | HeadNotMember
                | InvalidStateTransition
                | AccreditationClosed
                | MeetingConflict
                | OutsideDelegationStay
                | HasChildren
                | ObserverDecided
                | ObserverAccredited
                | HasDecidedObservers
                | DelegationDeleted
                | NotAccredited
                | BadgeSigningDisabled
                | NotInvited
                | PersonalDataErased
                | RateLimited
                | Unauthenticated
                | PermissionDenied
                | Unavailable
                | Overloaded
                | WatchLimit
                | StreamMaxAge
                | Aborted
                | DeadlineExceeded
                | Unimplemented
                | Internal => {}
            }
        }
        all
    }

    /// A partner matching on the client's `ErrorReason` would see a new reason as `Other`.
    #[test]
    fn the_client_crate_knows_every_reason_the_server_sends() {
        for reason in every_reason() {
            assert!(
                !matches!(ErrorReason::parse(reason.as_str()), ErrorReason::Other(_)),
                "{reason:?} ({}) is missing from observer_registry_client::ErrorReason",
                reason.as_str()
            );
        }
    }
}
