//! Why the domain refuses a command: the rule it breaks, a message for the caller, and the
//! request fields at fault. No tonic here; `crate::error` maps each rule to its gRPC code and
//! `ErrorInfo` reason in one table.

use std::fmt;

/// A rule of the registry (API.md), as the domain names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// A value is malformed (INVALID_ARGUMENT).
    InvalidArgument,
    /// A resource the command refers to does not exist.
    NotFound,
    HostCountryCitizen,
    DuplicateObserver,
    DelegationOrganizationMismatch,
    HeadNotMember,
    InvalidStateTransition,
    AccreditationClosed,
    MeetingConflict,
    OutsideDelegationStay,
    DelegationDeleted,
    ObserverDecided,
    ObserverAccredited,
    HasDecidedObservers,
    HasChildren,
    /// A badge is made only for an accreditation in force.
    NotAccredited,
    /// The election requires an ACCEPTED invitation of the organization.
    NotInvited,
    /// The election's personal data was erased; it takes no new observers.
    PersonalDataErased,
}

/// A command the domain refuses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub rule: Rule,
    pub message: String,
    /// (request field path, why), e.g. `("observer.given_name", "...")`.
    pub fields: Vec<(String, String)>,
    /// `ErrorInfo.metadata`, e.g. the conflicting meeting.
    pub metadata: Vec<(&'static str, String)>,
}

impl Refusal {
    pub fn new(rule: Rule, message: impl Into<String>) -> Self {
        Refusal {
            rule,
            message: message.into(),
            fields: Vec::new(),
            metadata: Vec::new(),
        }
    }

    /// Names a request field at fault.
    pub fn field(mut self, path: impl Into<String>, why: impl Into<String>) -> Self {
        self.fields.push((path.into(), why.into()));
        self
    }

    pub fn metadata(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: {}", self.rule, self.message)
    }
}
