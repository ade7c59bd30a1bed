//! The role each RPC needs: one table for the whole contract. A method missing from it is
//! denied, and a test fails when an RPC of the contract is missing.

use std::fmt;

/// The roles of API.md, "Who may call what".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Reads, without personal data.
    Reader,
    /// Reads personal data (implies `reader`).
    PersonalDataReader,
    /// Creates, updates and deletes delegations and observers, batch creates.
    Registrar,
    /// Accredits, rejects, revokes, corrects decided observers' identities.
    Accreditor,
    /// Meetings and invitations.
    Protocol,
    /// VerifyAccreditation only: border posts and polling stations.
    Verifier,
    /// Elections, organizations, undelete, audit.
    Admin,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Reader,
        Role::PersonalDataReader,
        Role::Registrar,
        Role::Accreditor,
        Role::Protocol,
        Role::Verifier,
        Role::Admin,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::PersonalDataReader => "personal-data-reader",
            Role::Registrar => "registrar",
            Role::Accreditor => "accreditor",
            Role::Protocol => "protocol",
            Role::Verifier => "verifier",
            Role::Admin => "admin",
        }
    }

    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a method needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Probes and grpcurl `list`/`describe`: no credentials.
    Public,
    Role(Role),
}

/// The access a full method path (`/package.Service/Method`) needs; `None` for anything not
/// in the table, which the layer denies.
pub fn required_access(path: &str) -> Option<Access> {
    let (service, method) = path.strip_prefix('/')?.split_once('/')?;
    if matches!(
        service,
        "grpc.health.v1.Health"
            | "grpc.reflection.v1.ServerReflection"
            | "grpc.reflection.v1alpha.ServerReflection"
    ) {
        return Some(Access::Public);
    }
    use Role::*;
    let role = match (service.strip_prefix("observer_registry.v1.")?, method) {
        ("ElectionService", "GetElection" | "ListElections" | "GetElectionSummary") => Reader,
        (
            "ElectionService",
            "CreateElection" | "UpdateElection" | "DeleteElection" | "ErasePersonalData",
        ) => Admin,
        ("OrganizationService", "GetOrganization" | "ListOrganizations") => Reader,
        (
            "OrganizationService",
            "CreateOrganization" | "UpdateOrganization" | "DeleteOrganization",
        ) => Admin,
        ("DelegationService", "GetDelegation" | "ListDelegations" | "WatchDelegations") => Reader,
        ("DelegationService", "CreateDelegation" | "UpdateDelegation" | "DeleteDelegation") => {
            Registrar
        }
        ("DelegationService", "UndeleteDelegation") => Admin,
        (
            "ObserverService",
            "GetObserver" | "ListObservers" | "ListPublicRegister" | "WatchObservers",
        ) => Reader,
        (
            "ObserverService",
            "CreateObserver" | "BatchCreateObservers" | "UpdateObserver" | "DeleteObserver",
        ) => Registrar,
        ("ObserverService", "UndeleteObserver") => Admin,
        (
            "ObserverService",
            "AccreditObserver"
            | "BatchAccreditObservers"
            | "RejectObserver"
            | "RevokeAccreditation"
            | "CorrectObserver"
            | "GetObserverBadge",
        ) => Accreditor,
        ("MeetingService", "GetMeeting" | "ListMeetings" | "WatchMeetings") => Reader,
        (
            "MeetingService",
            "CreateMeeting" | "UpdateMeeting" | "DeleteMeeting" | "CompleteMeeting"
            | "CancelMeeting",
        ) => Protocol,
        ("MeetingService", "UndeleteMeeting") => Admin,
        ("InvitationService", "GetInvitation" | "ListInvitations" | "WatchInvitations") => Reader,
        (
            "InvitationService",
            "CreateInvitation" | "UpdateInvitation" | "AcceptInvitation" | "DeclineInvitation"
            | "WithdrawInvitation" | "DeleteInvitation",
        ) => Protocol,
        ("AuditService", "ListAuditEvents") => Admin,
        // The keys are public: anyone may verify a badge offline.
        ("VerificationService", "ListBadgeKeys") => return Some(Access::Public),
        ("VerificationService", "VerifyAccreditation") => Verifier,
        _ => return None,
    };
    Some(Access::Role(role))
}

/// Whether `roles` grant `needed`: `personal-data-reader` includes `reader`, and `reader`
/// includes `verifier` (a verification shows nothing the public register does not).
pub fn grants(roles: &[Role], needed: Role) -> bool {
    let readers = [Role::Reader, Role::PersonalDataReader];
    roles.contains(&needed)
        || (needed == Role::Reader && roles.contains(&Role::PersonalDataReader))
        || (needed == Role::Verifier && readers.iter().any(|role| roles.contains(role)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    /// Every RPC of the contract has an entry: a new RPC cannot ship unguarded.
    #[test]
    fn every_rpc_of_the_contract_needs_a_known_access() {
        let set = prost_types::FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).unwrap();
        let mut methods = 0;
        for file in set
            .file
            .iter()
            .filter(|f| f.package() == "observer_registry.v1")
        {
            for service in &file.service {
                for method in &service.method {
                    let path =
                        format!("/observer_registry.v1.{}/{}", service.name(), method.name());
                    // Public keys are the contract's one public method.
                    let public = path.ends_with("/ListBadgeKeys");
                    assert!(
                        match required_access(&path) {
                            Some(Access::Role(_)) => !public,
                            Some(Access::Public) => public,
                            None => false,
                        },
                        "{path} is missing from the role table"
                    );
                    methods += 1;
                }
            }
        }
        assert!(methods >= 40, "only {methods} methods found");
    }

    #[test]
    fn unknown_methods_are_denied_and_probes_are_public() {
        assert_eq!(
            required_access("/observer_registry.v1.ObserverService/DropTables"),
            None
        );
        assert_eq!(required_access("/other.v1.Service/Get"), None);
        assert_eq!(required_access("garbage"), None);
        assert_eq!(
            required_access("/grpc.health.v1.Health/Check"),
            Some(Access::Public)
        );
        assert!(grants(&[Role::PersonalDataReader], Role::Reader));
        assert!(!grants(&[Role::Admin], Role::Reader));
        assert!(grants(&[Role::Reader], Role::Verifier));
        assert!(grants(&[Role::PersonalDataReader], Role::Verifier));
        assert!(!grants(&[Role::Verifier], Role::Reader));
        assert!(!grants(&[Role::Accreditor], Role::Verifier));
    }
}
