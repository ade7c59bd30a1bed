//! The tower layer that authenticates every call and checks its role before any handler
//! runs — so permission is checked before existence — and hands the handler the `Caller`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};

use super::identities::{IdentityStore, token_digest};
use super::roles::{Access, Role, grants, required_access};
use super::{Caller, Credential};
use crate::error::{Error, Reason};

/// Authenticates and authorizes every request of the services it wraps.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    identities: Arc<IdentityStore>,
    /// Without an agencies file, callers are an all-roles "anonymous" agency — allowed only
    /// on a loopback address or when the operator said so.
    allow_anonymous: bool,
}

impl AuthLayer {
    pub fn new(identities: Arc<IdentityStore>, allow_anonymous: bool) -> Self {
        AuthLayer {
            identities,
            allow_anonymous,
        }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Authorize<S>;

    fn layer(&self, inner: S) -> Authorize<S> {
        Authorize {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct Authorize<S> {
    inner: S,
    layer: AuthLayer,
}

impl<S, B> tower::Service<http::Request<B>> for Authorize<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<Body>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        match self.layer.authorize(&request) {
            Ok(caller) => {
                if let Some(caller) = caller {
                    request.extensions_mut().insert(caller);
                }
                // The clone that was made ready serves this call (tower's usual swap).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(request))
            }
            Err(error) => {
                let path = request.uri().path();
                tracing::info!(method = %path, reason = error.reason.as_str(), "call refused");
                let status: tonic::Status = error.into();
                Box::pin(std::future::ready(Ok(status.into_http())))
            }
        }
    }
}

impl AuthLayer {
    /// The caller of a request, `None` for public methods, or why it is refused.
    fn authorize<B>(&self, request: &http::Request<B>) -> Result<Option<Caller>, Error> {
        let path = request.uri().path();
        let needed = match required_access(path) {
            Some(Access::Public) => return Ok(None),
            Some(Access::Role(role)) => role,
            None => {
                return Err(Error::new(
                    Reason::PermissionDenied,
                    format!("{path} is not a method of this service"),
                ));
            }
        };
        let (agency, roles, credential) = self.authenticate(request)?;
        check_role(&agency, &roles, needed)?;
        Ok(Some(Caller {
            agency,
            roles,
            method: path.to_owned(),
            credential,
        }))
    }

    fn authenticate<B>(
        &self,
        request: &http::Request<B>,
    ) -> Result<(String, Vec<Role>, Credential), Error> {
        let unauthenticated = |why: &str| Error::new(Reason::Unauthenticated, why);
        if !self.identities.is_configured() {
            return if self.allow_anonymous {
                Ok((
                    "anonymous".to_owned(),
                    Role::ALL.to_vec(),
                    Credential::Anonymous,
                ))
            } else {
                Err(unauthenticated(
                    "no agencies are configured and anonymous callers are not allowed",
                ))
            };
        }
        let identities = self.identities.current();
        if let Some(value) = request.headers().get("authorization") {
            let token = value
                .to_str()
                .ok()
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .ok_or_else(|| {
                    unauthenticated("the authorization metadata must be `Bearer <token>`")
                })?;
            let digest = token_digest(token.trim());
            let agency = identities
                .by_token_digest(&digest)
                .ok_or_else(|| unauthenticated("the bearer token belongs to no agency"))?;
            return Ok((
                agency.name.clone(),
                agency.roles.clone(),
                Credential::TokenDigest(digest),
            ));
        }
        if let Some(names) = certificate_names(request) {
            let agency = identities
                .by_certificate_name(&names)
                .ok_or_else(|| unauthenticated("the client certificate names no agency"))?;
            return Ok((
                agency.name.clone(),
                agency.roles.clone(),
                Credential::Certificate(names),
            ));
        }
        Err(unauthenticated(
            "credentials required: a bearer token in the `authorization` metadata or a client certificate",
        ))
    }
}

fn check_role(agency: &str, roles: &[Role], needed: Role) -> Result<(), Error> {
    if grants(roles, needed) {
        return Ok(());
    }
    Err(Error::new(
        Reason::PermissionDenied,
        format!("agency {agency} lacks the `{needed}` role this method needs"),
    )
    .with_metadata("role", needed.as_str()))
}

/// The caller of a long-lived call as the agencies in force now see it, for streams that
/// outlive a reload: its credential must still name the same agency (UNAUTHENTICATED
/// otherwise), whose roles must still grant the method (PERMISSION_DENIED otherwise); the
/// roles returned are the current ones, so `personal-data-reader` lost is data masked.
pub fn reauthorize(identities: &IdentityStore, caller: &Caller) -> Result<Caller, Error> {
    let gone = || {
        Error::new(
            Reason::Unauthenticated,
            format!(
                "agency {} is no longer in the agencies file with this credential",
                caller.agency
            ),
        )
    };
    let current = identities.current();
    let agency = match &caller.credential {
        // Without an agencies file there is nothing to reload.
        Credential::Anonymous if !identities.is_configured() => return Ok(caller.clone()),
        Credential::Anonymous => return Err(gone()),
        Credential::TokenDigest(digest) => current.by_token_digest(digest),
        Credential::Certificate(names) => current.by_certificate_name(names),
    }
    .filter(|agency| agency.name == caller.agency)
    .ok_or_else(gone)?;
    if let Some(Access::Role(needed)) = required_access(&caller.method) {
        check_role(&agency.name, &agency.roles, needed)?;
    }
    Ok(Caller {
        roles: agency.roles.clone(),
        ..caller.clone()
    })
}

/// Subject common names and DNS names of the client's certificate, when it sent one.
fn certificate_names<B>(request: &http::Request<B>) -> Option<Vec<String>> {
    let info = request
        .extensions()
        .get::<TlsConnectInfo<TcpConnectInfo>>()?;
    let chain = info.peer_certs()?;
    let leaf = chain.first()?;
    let (_, certificate) = x509_parser::parse_x509_certificate(leaf.as_ref()).ok()?;
    let mut names: Vec<String> = certificate
        .subject()
        .iter_common_name()
        .filter_map(|cn| cn.as_str().ok().map(str::to_owned))
        .collect();
    if let Ok(Some(san)) = certificate.subject_alternative_name() {
        for name in &san.value.general_names {
            if let x509_parser::extensions::GeneralName::DNSName(dns) = name {
                names.push((*dns).to_owned());
            }
        }
    }
    Some(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WATCH: &str = "/observer_registry.v1.ObserverService/WatchObservers";

    fn agencies_file(text: &str) -> (IdentityStore, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!(
            "observer-registry-reauthorize-{}.toml",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::write(&path, text).unwrap();
        (IdentityStore::load(&path).unwrap(), path)
    }

    fn agency(name: &str, roles: &str, credential: &str) -> String {
        format!("[[agencies]]\nname = '{name}'\nroles = [{roles}]\n{credential}\n")
    }

    #[test]
    fn a_caller_is_looked_up_again_by_its_credential_after_a_reload() {
        let token = format!(
            "token_sha256 = ['{}']",
            super::super::identities::hash_token("t")
        );
        let certificate = "certificate_names = ['mfa.gov.example']";
        let (store, path) = agencies_file(
            &(agency("a", "'personal-data-reader'", &token)
                + &agency("m", "'reader'", certificate)),
        );
        let caller = |agency: &str, credential: Credential| Caller {
            agency: agency.into(),
            roles: vec![Role::PersonalDataReader],
            method: WATCH.into(),
            credential,
        };
        let by_token = caller("a", Credential::TokenDigest(token_digest("t")));
        let by_certificate = caller("m", Credential::Certificate(vec!["mfa.gov.example".into()]));
        let reloads = store.reloads();
        assert_eq!(
            reauthorize(&store, &by_token).unwrap().roles,
            [Role::PersonalDataReader]
        );
        assert_eq!(
            reauthorize(&store, &by_certificate).unwrap().roles,
            [Role::Reader]
        );

        // Roles change: fewer rights, or none that may watch.
        std::fs::write(
            &path,
            agency("a", "'reader'", &token) + &agency("m", "'admin'", certificate),
        )
        .unwrap();
        store.reload().unwrap();
        assert!(reloads.has_changed().unwrap());
        assert_eq!(
            reauthorize(&store, &by_token).unwrap().roles,
            [Role::Reader]
        );
        let denied = reauthorize(&store, &by_certificate).unwrap_err();
        assert_eq!(denied.reason, Reason::PermissionDenied);

        // The credential now names another agency, or none.
        std::fs::write(&path, agency("b", "'reader'", &token)).unwrap();
        store.reload().unwrap();
        assert_eq!(
            reauthorize(&store, &by_token).unwrap_err().reason,
            Reason::Unauthenticated
        );
        assert_eq!(
            reauthorize(&store, &by_certificate).unwrap_err().reason,
            Reason::Unauthenticated
        );
        // An anonymous caller is someone only while there is no agencies file.
        let anonymous = caller("anonymous", Credential::Anonymous);
        assert_eq!(
            reauthorize(&store, &anonymous).unwrap_err().reason,
            Reason::Unauthenticated
        );
        assert!(reauthorize(&IdentityStore::anonymous(), &anonymous).is_ok());
        let _ = std::fs::remove_file(&path);
    }
}
