//! The tower layer that authenticates every call and checks its role before any handler
//! runs — so permission is checked before existence — and hands the handler the `Caller`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;

use super::credentials;
use super::identities::{IdentityStore, token_digest};
use super::roles::{Access, Role, grants, required_access};
use super::{Caller, Credential};
use crate::error::{Error, Reason};
use crate::layers::refusals::Refusal;
use crate::layers::{after_request_body, refused_response};

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
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Send,
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
                    // Into the call's span (made by the trace layer outside this one), so
                    // its log lines and exported span name the agency.
                    tracing::Span::current().record("agency", caller.agency.as_str());
                    request.extensions_mut().insert(caller);
                }
                // The clone that was made ready serves this call (tower's usual swap).
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(request))
            }
            Err(error) => {
                // Not logged here: any caller, without credentials, could write a line per
                // request. The observe layer counts it and writes a summary a second.
                let refusal = match error.reason {
                    Reason::Unauthenticated => Refusal::Unauthenticated,
                    Reason::Unimplemented => Refusal::UnknownMethod,
                    _ => Refusal::PermissionDenied,
                };
                after_request_body(request.into_body(), refused_response(error, refusal))
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
                // UNIMPLEMENTED, as gRPC answers an unknown method; the path is not echoed
                // back, so a junk call costs a fixed small answer whatever its length.
                return Err(Error::new(
                    Reason::Unimplemented,
                    "no such method in this service",
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
        if let Some(value) = request.headers().get(http::header::AUTHORIZATION) {
            let token = value
                .to_str()
                .ok()
                .and_then(credentials::bearer_token)
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
        if let Some(leaf) = credentials::client_certificate(request) {
            let names = credentials::certificate_names(&leaf).unwrap_or_default();
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
