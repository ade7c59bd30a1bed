//! Who may call what: agencies authenticated by client certificate or bearer token, the role
//! each RPC needs (one table, enforced in one tower layer), and the caller handed to the
//! services for personal-data masking and the audit trail.

pub mod credentials;
pub mod identities;
pub mod layer;
pub mod roles;

pub use identities::{Agency, IdentityStore};
pub use layer::AuthLayer;
pub use roles::{Access, Role, required_access};

/// The authenticated caller of one request, placed in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The agency's name: the audit trail's actor.
    pub agency: String,
    pub roles: Vec<Role>,
    /// The full gRPC method called, e.g. `/observer_registry.v1.ObserverService/GetObserver`.
    pub method: String,
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
            })
    }
}
