//! The tower layer that authenticates every call and checks its role before any handler
//! runs — so permission is checked before existence — and hands the handler the `Caller`.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tonic::body::Body;

use super::Caller;
use super::credentials;
use super::identities::IdentityStore;
use super::roles::{Access, Role, grants, required_access};
use crate::error::{Error, Reason};
use crate::layers::refusals::Refusal;
use crate::layers::refused_response;

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
                // Not logged here: any caller, without credentials, could write a line per
                // request. The observe layer counts it and writes a summary a second.
                let refusal = match error.reason {
                    Reason::Unauthenticated => Refusal::Unauthenticated,
                    _ => Refusal::PermissionDenied,
                };
                Box::pin(std::future::ready(Ok(refused_response(error, refusal))))
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
        let (agency, roles) = self.authenticate(request)?;
        if !grants(&roles, needed) {
            return Err(Error::new(
                Reason::PermissionDenied,
                format!("agency {agency} lacks the `{needed}` role this method needs"),
            )
            .with_metadata("role", needed.as_str()));
        }
        Ok(Some(Caller {
            agency,
            roles,
            method: path.to_owned(),
        }))
    }

    fn authenticate<B>(&self, request: &http::Request<B>) -> Result<(String, Vec<Role>), Error> {
        let unauthenticated = |why: &str| Error::new(Reason::Unauthenticated, why);
        if !self.identities.is_configured() {
            return if self.allow_anonymous {
                Ok(("anonymous".to_owned(), Role::ALL.to_vec()))
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
                .and_then(credentials::bearer_token)
                .ok_or_else(|| {
                    unauthenticated("the authorization metadata must be `Bearer <token>`")
                })?;
            let agency = identities
                .by_token(token)
                .ok_or_else(|| unauthenticated("the bearer token belongs to no agency"))?;
            return Ok((agency.name.clone(), agency.roles.clone()));
        }
        if let Some(leaf) = credentials::client_certificate(request) {
            let agency = credentials::certificate_names(&leaf)
                .and_then(|names| identities.by_certificate_name(&names))
                .ok_or_else(|| unauthenticated("the client certificate names no agency"))?;
            return Ok((agency.name.clone(), agency.roles.clone()));
        }
        Err(unauthenticated(
            "credentials required: a bearer token in the `authorization` metadata or a client certificate",
        ))
    }
}
