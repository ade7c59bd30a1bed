//! What went wrong in a refused call, as the service names it: the `reason` of the
//! `google.rpc.ErrorInfo` every error status carries, and the field violations of an
//! INVALID_ARGUMENT.

use std::fmt;

use tonic::Status;
use tonic_types::{FieldViolation, StatusExt};

/// The `ErrorInfo.domain` of the service's errors.
pub const ERROR_DOMAIN: &str = "observer-registry";

// One table of variant and wire name: `parse`, `as_str` and `KNOWN` are written from it, so
// a reason added to one cannot be missing from the others.
macro_rules! reasons {
    ($($(#[doc = $doc:literal])* $variant:ident => $name:literal,)*) => {
        /// Why the service refused a call: the `reason` of the `google.rpc.ErrorInfo` in the
        /// status. A reason this version of the client does not know is [`ErrorReason::Other`],
        /// so a newer service never breaks an older client.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ErrorReason {
            $($(#[doc = $doc])* $variant,)*
            /// A reason this client does not know, as the service wrote it.
            Other(String),
        }

        impl ErrorReason {
            /// Every reason this client knows, for tables and tests.
            pub const KNOWN: &[ErrorReason] = &[$(ErrorReason::$variant,)*];

            /// The reason named `reason` (UPPER_SNAKE, as on the wire).
            pub fn parse(reason: &str) -> ErrorReason {
                match reason {
                    $($name => ErrorReason::$variant,)*
                    other => ErrorReason::Other(other.to_owned()),
                }
            }

            /// The reason's name on the wire, e.g. `ETAG_MISMATCH`.
            pub fn as_str(&self) -> &str {
                match self {
                    $(ErrorReason::$variant => $name,)*
                    ErrorReason::Other(reason) => reason,
                }
            }
        }
    };
}

reasons! {
    /// A field is missing or malformed; see [`ErrorDetails::field_violations`].
    InvalidArgument => "INVALID_ARGUMENT",
    /// The page token is not one this list gave, or was made for other arguments.
    InvalidPageToken => "INVALID_PAGE_TOKEN",
    /// The filter's syntax is wrong or it names an unknown field.
    InvalidFilter => "INVALID_FILTER",
    /// The resume token of a Watch is malformed, or older than the change feed keeps.
    InvalidResumeToken => "INVALID_RESUME_TOKEN",
    /// The named resource does not exist (or is not visible to the caller).
    NotFound => "NOT_FOUND",
    /// A resource with that id (or that request id) exists already.
    AlreadyExists => "ALREADY_EXISTS",
    /// The etag sent is not the resource's current one: read it again.
    EtagMismatch => "ETAG_MISMATCH",
    /// A citizen of the host country cannot observe as an international observer.
    HostCountryCitizen => "HOST_COUNTRY_CITIZEN",
    /// The person is already registered as an observer of this election.
    DuplicateObserver => "DUPLICATE_OBSERVER",
    /// The delegation belongs to another sending organization.
    DelegationOrganizationMismatch => "DELEGATION_ORGANIZATION_MISMATCH",
    /// The head of a delegation must be one of its members.
    HeadNotMember => "HEAD_NOT_MEMBER",
    /// The resource's state does not allow this transition.
    InvalidStateTransition => "INVALID_STATE_TRANSITION",
    /// The election's accreditation deadline has passed.
    AccreditationClosed => "ACCREDITATION_CLOSED",
    /// The meeting overlaps another one of the same participants.
    MeetingConflict => "MEETING_CONFLICT",
    /// The meeting falls outside the delegation's stay.
    OutsideDelegationStay => "OUTSIDE_DELEGATION_STAY",
    /// The resource still has children.
    HasChildren => "HAS_CHILDREN",
    /// The observer has been decided on and can no longer change this way.
    ObserverDecided => "OBSERVER_DECIDED",
    /// The observer is accredited, which forbids this.
    ObserverAccredited => "OBSERVER_ACCREDITED",
    /// Observers of this resource have been decided on.
    HasDecidedObservers => "HAS_DECIDED_OBSERVERS",
    /// The delegation has been deleted.
    DelegationDeleted => "DELEGATION_DELETED",
    /// The observer is not accredited.
    NotAccredited => "NOT_ACCREDITED",
    /// The service signs no badges.
    BadgeSigningDisabled => "BADGE_SIGNING_DISABLED",
    /// The delegation was not invited.
    NotInvited => "NOT_INVITED",
    /// The observer's personal data has been erased.
    PersonalDataErased => "PERSONAL_DATA_ERASED",
    /// No valid credentials came with the call.
    Unauthenticated => "UNAUTHENTICATED",
    /// The caller's role does not allow this call, or this resource.
    PermissionDenied => "PERMISSION_DENIED",
    /// The service cannot reach its database: retry later.
    Unavailable => "UNAVAILABLE",
    /// The service sheds load: retry later, backing off.
    Overloaded => "OVERLOADED",
    /// Too many verifications from this agency (or address): retry after the status's
    /// RetryInfo delay.
    RateLimited => "RATE_LIMITED",
    /// The caller has as many Watch streams open as it may.
    WatchLimit => "WATCH_LIMIT",
    /// The stream reached the service's maximum age: resume with the last token.
    StreamMaxAge => "STREAM_MAX_AGE",
    /// The call lost a race with another one: retry.
    Aborted => "ABORTED",
    /// The call's deadline passed before it was done.
    DeadlineExceeded => "DEADLINE_EXCEEDED",
    /// The service does not implement this call.
    Unimplemented => "UNIMPLEMENTED",
    /// The service failed; its logs say why.
    Internal => "INTERNAL",
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The service's error details of a [`Status`]: `use observer_registry_client::ErrorDetails;`
/// and call them on any status a call returned.
pub trait ErrorDetails {
    /// The reason of the status's `ErrorInfo` from this service; `None` when the status has
    /// none, e.g. one made by a proxy or by the transport.
    fn reason(&self) -> Option<ErrorReason>;
    /// The field violations of the status's `BadRequest` (one per bad field, its path as in
    /// the request, e.g. `observer.citizenship`); empty when there is none.
    fn field_violations(&self) -> Vec<FieldViolation>;
}

impl ErrorDetails for Status {
    fn reason(&self) -> Option<ErrorReason> {
        self.get_details_error_info()
            .filter(|info| info.domain == ERROR_DOMAIN)
            .map(|info| ErrorReason::parse(&info.reason))
    }

    fn field_violations(&self) -> Vec<FieldViolation> {
        self.get_details_bad_request()
            .map(|bad_request| bad_request.field_violations)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use tonic::Code;
    use tonic_types::ErrorDetails as Details;

    use super::*;

    #[test]
    fn every_known_reason_reads_back_as_itself() {
        for reason in ErrorReason::KNOWN {
            assert_eq!(&ErrorReason::parse(reason.as_str()), reason);
            assert!(!matches!(reason, ErrorReason::Other(_)));
        }
    }

    #[test]
    fn an_unknown_reason_is_kept_as_written() {
        let reason = ErrorReason::parse("SOMETHING_NEW");
        assert_eq!(reason, ErrorReason::Other("SOMETHING_NEW".to_owned()));
        assert_eq!(reason.to_string(), "SOMETHING_NEW");
    }

    #[test]
    fn the_reason_and_violations_are_read_from_the_details() {
        let mut details =
            Details::with_error_info("INVALID_ARGUMENT", ERROR_DOMAIN, HashMap::new());
        details.add_bad_request_violation("election.host_country", "not an ISO 3166 code");
        let status = Status::with_error_details(Code::InvalidArgument, "invalid", details);

        assert_eq!(status.reason(), Some(ErrorReason::InvalidArgument));
        let violations = status.field_violations();
        assert_eq!(violations.len(), 1);
        assert_eq!(violations[0].field, "election.host_country");
    }

    #[test]
    fn a_status_without_details_or_from_another_domain_has_no_reason() {
        let bare = Status::unavailable("connection refused");
        assert_eq!(bare.reason(), None);
        assert!(bare.field_violations().is_empty());

        let foreign = Status::with_error_details(
            Code::NotFound,
            "no route",
            Details::with_error_info("NO_ROUTE", "proxy.example", HashMap::new()),
        );
        assert_eq!(foreign.reason(), None);
    }
}
