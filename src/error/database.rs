//! The one mapping of database errors (the SQLSTATE table): constraint violations and data
//! exceptions become client errors, lost connections and an exhausted pool UNAVAILABLE,
//! races ABORTED, everything else INTERNAL. Only a mapping: counting failures is the database module's.

use super::{Error, Reason};

/// What kind of database failure an error came from: the `kind` label of the
/// `observer_registry_db_errors_total` metric, and whether the database should be taken for lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseFailure {
    /// No connection came free within the pool's acquire timeout.
    PoolExhausted,
    PoolClosed,
    /// The connection broke or could not be made, or the server is shutting down or not yet
    /// accepting connections (a switchover in progress): the database is likely down.
    Connection,
    /// The server refused a write as read-only (25006): a standby, or a primary being demoted,
    /// reached through an address that will soon lead to the new primary. Retryable: the
    /// connections opened before are not trusted any more (`Availability::database_lost`).
    ReadOnly,
    Constraint,
    /// PostgreSQL could not take a value of the request (SQLSTATE class 22: out of range,
    /// not in the encoding, too long…): the caller's to fix, not ours.
    DataException,
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
            E::Io(_) | E::Tls(_) | E::WorkerCrashed => DatabaseFailure::Connection,
            E::Database(db) => match db.code().as_deref() {
                Some("23505" | "23503" | "23P01" | "23514" | "23502") => {
                    DatabaseFailure::Constraint
                }
                Some(code) if code.starts_with("22") => DatabaseFailure::DataException,
                Some("40001") => DatabaseFailure::SerializationFailure,
                Some("40P01") => DatabaseFailure::Deadlock,
                Some("57014") => DatabaseFailure::StatementTimeout,
                Some("25006") => DatabaseFailure::ReadOnly,
                // 08: connection exceptions; 57P01-04: the server is shutting down, crashed,
                // is starting up or in recovery, or dropped the database; 53300: no connection
                // slot free (a server just promoted, or still starting).
                Some(code) if code.starts_with("08") || code.starts_with("57P") => {
                    DatabaseFailure::Connection
                }
                Some("53300") => DatabaseFailure::Connection,
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
            DatabaseFailure::ReadOnly => "read_only",
            DatabaseFailure::Constraint => "constraint",
            DatabaseFailure::DataException => "data_exception",
            DatabaseFailure::SerializationFailure => "serialization_failure",
            DatabaseFailure::Deadlock => "deadlock",
            DatabaseFailure::StatementTimeout => "statement_timeout",
            DatabaseFailure::Internal => "internal",
        }
    }
}

impl Error {
    /// Maps a database error: constraint violations and data exceptions become client errors
    /// (SQLSTATE table), lost connections and an exhausted pool UNAVAILABLE, races ABORTED (retried by
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
            DatabaseFailure::PoolClosed
            | DatabaseFailure::Connection
            | DatabaseFailure::ReadOnly => unavailable(),
            DatabaseFailure::Constraint => match &error {
                sqlx::Error::Database(db) => constraint_error(
                    db.code().as_deref().unwrap_or_default(),
                    db.constraint(),
                    db.table(),
                ),
                // `of` says Constraint only for database errors.
                _ => Error::internal(error),
            },
            // The driver's words name SQL, not the request's fields: they are logged, and
            // the client hears only that a value was refused.
            DatabaseFailure::DataException => Error::refused_value(error),
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
}

/// The error for a violated constraint, by name: the application checks these rules first
/// for a precise error, so reaching here means a concurrent caller won a race. Long because
/// it is a table, one arm per named constraint of the migrations.
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
        Some("observers_identity_after_decision") => Some((
            ObserverDecided,
            "the observer was decided: its identity changes only through CorrectObserver",
        )),
        Some("observers_personal_data_erased") => Some((
            PersonalDataErased,
            "the election's personal data was erased: no observer is registered in it, and \
             erased personal data is never put back",
        )),
        Some("elections_personal_data_erased") => Some((
            PersonalDataErased,
            "the election's personal data was erased: an erasure is never undone",
        )),
        Some("observers_accredited_not_deleted") => Some((
            ObserverAccredited,
            "an accredited observer cannot be deleted: revoke the accreditation first",
        )),
        Some("observers_decided_kept") => Some((
            HasDecidedObservers,
            "decided observers are part of the official record and are never removed",
        )),
        // Two first accreditations of one country and year raced for number 1.
        Some("observers_accreditation_number_next") => Some((
            Aborted,
            "the accreditation number was taken concurrently; retry",
        )),
        Some("observers_accreditation_transition") => Some((
            InvalidStateTransition,
            "the accreditation state changed concurrently; read the observer again",
        )),
        // An invitation withdrawn concurrently, or an election made to require them.
        Some("organization_invited") => Some((
            NotInvited,
            "the organization has no accepted invitation, which the election requires",
        )),
        Some("invitations_transition" | "invitations_deleted_only_while_sent") => Some((
            InvalidStateTransition,
            "the invitation's state changed concurrently; read it again",
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The invitation triggers' refusals, reached when a concurrent caller won a race.
    #[test]
    fn invitation_triggers_map_to_their_reasons() {
        let reason = |constraint| constraint_error("23514", Some(constraint), None).reason;
        assert_eq!(reason("organization_invited"), Reason::NotInvited);
        assert_eq!(
            reason("invitations_transition"),
            Reason::InvalidStateTransition
        );
        assert_eq!(
            reason("invitations_deleted_only_while_sent"),
            Reason::InvalidStateTransition
        );
        assert_eq!(
            constraint_error("23505", Some("invitations_one_per_organization"), None).reason,
            Reason::AlreadyExists
        );
    }

    #[test]
    fn driver_errors_map_and_remember_their_failure() {
        let exhausted = Error::from_sqlx(sqlx::Error::PoolTimedOut);
        assert_eq!(exhausted.reason, Reason::Unavailable);
        assert_eq!(
            exhausted.database_failure(),
            Some(DatabaseFailure::PoolExhausted)
        );
        let lost = Error::from_sqlx(sqlx::Error::Io(std::io::ErrorKind::BrokenPipe.into()));
        assert_eq!(lost.database_failure(), Some(DatabaseFailure::Connection));
        let odd = Error::from_sqlx(sqlx::Error::RowNotFound);
        assert_eq!(odd.reason, Reason::Internal);
        assert_eq!(odd.database_failure(), Some(DatabaseFailure::Internal));
        // A copy for another caller is not counted again.
        assert_eq!(lost.copy_for_client().database_failure(), None);
    }

    /// A database error with a SQLSTATE, as PostgreSQL would send it.
    #[derive(Debug)]
    struct Refused(&'static str);

    impl std::fmt::Display for Refused {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "value \"9999999999\" is out of range for type integer")
        }
    }

    impl std::error::Error for Refused {}

    impl sqlx::error::DatabaseError for Refused {
        fn message(&self) -> &str {
            "value \"9999999999\" is out of range for type integer"
        }
        fn code(&self) -> Option<std::borrow::Cow<'_, str>> {
            Some(self.0.into())
        }
        fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
            self
        }
        fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
            self
        }
        fn kind(&self) -> sqlx::error::ErrorKind {
            sqlx::error::ErrorKind::Other
        }
    }

    /// What a switchover sends: a server shutting down, crashed, starting or in recovery, a
    /// broken connection, a standby refusing a write, a full server. Each is UNAVAILABLE, which
    /// the shipped client retries, never INTERNAL; lost races stay ABORTED (the service runs
    /// the transaction again itself).
    #[test]
    fn a_switchover_is_unavailable_never_internal() {
        for (code, failure) in [
            ("25006", DatabaseFailure::ReadOnly),
            ("57P01", DatabaseFailure::Connection),
            ("57P02", DatabaseFailure::Connection),
            ("57P03", DatabaseFailure::Connection),
            ("57P04", DatabaseFailure::Connection),
            ("08000", DatabaseFailure::Connection),
            ("08003", DatabaseFailure::Connection),
            ("08006", DatabaseFailure::Connection),
            ("08001", DatabaseFailure::Connection),
            ("08P01", DatabaseFailure::Connection),
            ("53300", DatabaseFailure::Connection),
        ] {
            let error = Error::from_sqlx(sqlx::Error::Database(Box::new(Refused(code))));
            assert_eq!(error.reason, Reason::Unavailable, "{code}");
            assert_eq!(error.database_failure(), Some(failure), "{code}");
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), tonic::Code::Unavailable, "{code}");
            assert!(!status.message().contains("integer"), "{status:?}");
        }
        let crashed = Error::from_sqlx(sqlx::Error::WorkerCrashed);
        assert_eq!(crashed.reason, Reason::Unavailable);
        for (code, failure) in [
            ("40001", DatabaseFailure::SerializationFailure),
            ("40P01", DatabaseFailure::Deadlock),
        ] {
            let error = Error::from_sqlx(sqlx::Error::Database(Box::new(Refused(code))));
            assert_eq!(error.reason, Reason::Aborted, "{code}");
            assert_eq!(error.database_failure(), Some(failure), "{code}");
            assert!(error.is_retryable(), "{code}");
        }
    }

    #[test]
    fn every_data_exception_is_invalid_argument_without_driver_text() {
        // Class 22: out of range, bad encoding, too long, bad datetime, division by zero,
        // and codes PostgreSQL may add to the class later.
        for code in [
            "22003", "22021", "22001", "22008", "22012", "22P02", "22P05", "22ZZZ",
        ] {
            let error = Error::from_sqlx(sqlx::Error::Database(Box::new(Refused(code))));
            assert_eq!(error.reason, Reason::InvalidArgument, "{code}");
            assert_eq!(
                error.database_failure(),
                Some(DatabaseFailure::DataException),
                "{code}"
            );
            let status = tonic::Status::from(error);
            assert_eq!(status.code(), tonic::Code::InvalidArgument, "{code}");
            assert!(!status.message().contains("9999999999"), "{status:?}");
            assert!(!status.message().contains("integer"), "{status:?}");
        }
        // Neighbouring classes keep their own mapping.
        let unique = Error::from_sqlx(sqlx::Error::Database(Box::new(Refused("23505"))));
        assert_eq!(unique.reason, Reason::AlreadyExists);
        let other = Error::from_sqlx(sqlx::Error::Database(Box::new(Refused("XX000"))));
        assert_eq!(other.reason, Reason::Internal);
    }
}
