//! Who may call what: agencies authenticated by client certificate or bearer token, the role
//! each RPC needs (one table, enforced in one tower layer), and the caller handed to the
//! services for personal-data masking and the audit trail.

pub mod credentials;
pub mod identities;
pub mod layer;
pub mod roles;

pub use identities::{Agency, IdentityStore};
pub use layer::{AuthLayer, reauthorize};
pub use roles::{Access, Role, required_access};

/// The authenticated caller of one request, placed in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The agency's name: the audit trail's actor.
    pub agency: String,
    pub roles: Vec<Role>,
    /// The full gRPC method called, e.g. `/observer_registry.v1.ObserverService/GetObserver`.
    pub method: String,
    /// How the caller proved who it is: a stream looks it up again after each reload.
    pub credential: Credential,
}

/// The credential a caller presented, kept so that a long-lived stream can look its caller
/// up again in the agencies in force, rather than trusting the name it was opened under.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// No agencies file: the anonymous caller with every role.
    Anonymous,
    /// The SHA-256 of the bearer token (never the token itself).
    TokenDigest([u8; 32]),
    /// The names of the client certificate (subject CN, DNS SANs).
    Certificate(Vec<String>),
}

/// By hand: a token's digest has no place in logs.
impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credential::Anonymous => f.write_str("Anonymous"),
            Credential::TokenDigest(_) => f.write_str("TokenDigest(****)"),
            Credential::Certificate(names) => f.debug_tuple("Certificate").field(names).finish(),
        }
    }
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// Whether travel documents, birth dates and contacts may be shown to this caller.
    pub fn reads_personal_data(&self) -> bool {
        self.has(Role::PersonalDataReader)
    }

    /// The caller of a request that went through the layer; a request that did not (a unit
    /// test calling a service directly) is nobody, with no rights.
    pub fn of<T>(request: &tonic::Request<T>) -> Caller {
        request
            .extensions()
            .get::<Caller>()
            .cloned()
            .unwrap_or_else(|| Caller {
                agency: "unknown".to_owned(),
                roles: Vec::new(),
                method: String::new(),
                credential: Credential::Anonymous,
            })
    }
}
