//! VerificationService: the public badge keys, and the check of a badge's token or an
//! accreditation number against the record (also served over HTTP, `verify_http`). The
//! verdict is `domain::badge`'s; reads only, so nothing is audited.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use tonic::{Request, Response, Status};

use crate::api::point_reads::PointReads;
use crate::api::{AppState, to_timestamp};
use crate::auth::Caller;
use crate::badge::Badges;
use crate::badge::guard::Gate;
use crate::client::badge::BadgeError;
use crate::clock::Clock;
use crate::database::Database;
use crate::domain::badge::{self, Signature, Standing, Verdict};
use crate::error::{Error, Result};
use crate::metrics::Metrics;
use crate::pb::v1 as pb;
use crate::pb::v1::accreditation_check::VerificationStatus;
use crate::pb::v1::verification_service_server::VerificationService;
use crate::pb::v1::verify_accreditation_request::Subject;
use crate::store;

/// The longest token (or verification URL) checked: a badge's is about 400 bytes, and a
/// QR code on an ID-1 card holds a few hundred more at most.
const MAX_TOKEN_BYTES: usize = 2048;

/// Checks tokens and numbers against the record; shared by gRPC and HTTP.
#[derive(Debug, Clone)]
pub struct Verifier {
    pub db: Database,
    pub clock: Clock,
    pub badges: Arc<Badges>,
    /// gRPC's reads join GetObserver's coalesced batches; HTTP's (phones, a few a second
    /// per address) are one statement each on the calls' pool.
    point_reads: Option<PointReads>,
}

impl Verifier {
    pub fn new(db: Database, clock: Clock, badges: Arc<Badges>) -> Self {
        Verifier {
            db,
            clock,
            badges,
            point_reads: None,
        }
    }

    /// A verifier whose reads are coalesced with the other point reads.
    pub fn coalesced(state: AppState) -> Self {
        Verifier {
            point_reads: Some(state.point_reads),
            ..Verifier::new(state.db, state.clock, state.badges)
        }
    }

    /// The accreditation holding `number`, as recorded now: one statement, no transaction.
    async fn record(&self, number: &str) -> Result<Option<store::verification::Accreditation>> {
        if let Some(reads) = &self.point_reads {
            return reads.accreditation(number).await;
        }
        let mut conn = self.db.connection().await?;
        let found = store::verification::by_numbers(&mut conn, &[number]).await?;
        conn.finish().await?;
        Ok(found.into_iter().next())
    }

    pub fn metrics(&self) -> &Metrics {
        &self.db.metrics
    }

    /// What a check of `subject` finds, counted in metrics by verdict. A token that does
    /// not verify costs no database read.
    pub async fn check(
        &self,
        subject: Option<Subject>,
    ) -> Result<(Verdict, pb::AccreditationCheck)> {
        let (signature, number, token_expiry) = match subject {
            Some(Subject::Token(token)) if !token.trim().is_empty() => {
                // No badge of ours comes near: a longer one is not worth hashing.
                let verified = (token.len() <= MAX_TOKEN_BYTES)
                    .then(|| self.badges.keyring.verify_signature(&token));
                match verified.unwrap_or(Err(BadgeError::Malformed)) {
                    Ok(badge) => {
                        let expiry = DateTime::from_timestamp(badge.expire_unix_seconds, 0)
                            .unwrap_or(DateTime::<Utc>::MIN_UTC);
                        (
                            Signature::Verified,
                            badge.claims.accreditation_number,
                            Some(expiry),
                        )
                    }
                    Err(_) => return Ok(self.found(Verdict::BadSignature, None, None)),
                }
            }
            Some(Subject::AccreditationNumber(number)) if !number.trim().is_empty() => {
                let number = badge::parse_accreditation_number(&number)
                    .map_err(|e| Error::invalid("accreditation_number", e))?;
                (Signature::NotGiven, number, None)
            }
            Some(Subject::Token(_)) => {
                return Err(Error::invalid("token", "is empty"));
            }
            _ => {
                return Err(Error::invalid(
                    "accreditation_number",
                    "give a badge's token or an accreditation number",
                ));
            }
        };
        let record = self.record(&number).await?;
        let standing = record
            .as_ref()
            .map_or(Standing::Missing, |r| badge::standing(r.state, r.deleted));
        let expiry = token_expiry.unwrap_or_else(|| {
            record.as_ref().map_or(DateTime::<Utc>::MIN_UTC, |r| {
                badge::expire_time(r.voting_day, r.badge_validity)
            })
        });
        let verdict = badge::verdict(signature, standing, expiry, self.clock.now());
        Ok(self.found(verdict, record, Some(expiry)))
    }

    /// The check of a verdict: the record only where the verdict shows it.
    fn found(
        &self,
        verdict: Verdict,
        record: Option<store::verification::Accreditation>,
        expiry: Option<DateTime<Utc>>,
    ) -> (Verdict, pb::AccreditationCheck) {
        let status = status_of(verdict);
        self.metrics().verified(status.as_str_name());
        let mut check = pb::AccreditationCheck {
            status: status.into(),
            online: true,
            ..Default::default()
        };
        if let (true, Some(record)) = (badge::shows_record(verdict), record) {
            check.accreditation_number = record.accreditation_number;
            check.given_name = record.given_name;
            check.family_name = record.family_name;
            check.citizenship = record.citizenship;
            check.organization_display_name = record.organization_display_name;
            check.election = format!("elections/{}", record.election_id);
            check.election_display_name = record.election_display_name;
            check.expire_time = expiry.map(to_timestamp);
        }
        (verdict, check)
    }
}

/// The contract's name of a verdict.
pub fn status_of(verdict: Verdict) -> VerificationStatus {
    match verdict {
        Verdict::Valid => VerificationStatus::Valid,
        Verdict::Revoked => VerificationStatus::Revoked,
        Verdict::Expired => VerificationStatus::Expired,
        Verdict::Unknown => VerificationStatus::Unknown,
        Verdict::BadSignature => VerificationStatus::BadSignature,
    }
}

/// The VerificationService implementation.
#[derive(Debug, Clone)]
pub struct VerificationApi {
    verifier: Verifier,
    /// Per agency.
    gate: Arc<Gate<String>>,
}

impl VerificationApi {
    pub fn new(state: AppState) -> Self {
        let limits = state.badges.limits;
        VerificationApi {
            gate: Arc::new(Gate::new(
                crate::metrics::VERIFICATION_GRPC,
                limits.per_agency_per_second,
                limits.enumeration_threshold,
            )),
            verifier: Verifier::coalesced(state),
        }
    }
}

#[tonic::async_trait]
impl VerificationService for VerificationApi {
    async fn list_badge_keys(
        &self,
        _request: Request<pb::ListBadgeKeysRequest>,
    ) -> Result<Response<pb::ListBadgeKeysResponse>, Status> {
        Ok(Response::new(pb::ListBadgeKeysResponse {
            keys: self.verifier.badges.keyring.list(),
        }))
    }

    async fn verify_accreditation(
        &self,
        request: Request<pb::VerifyAccreditationRequest>,
    ) -> Result<Response<pb::AccreditationCheck>, Status> {
        let agency = Caller::of(&request).agency;
        self.gate
            .admit(&agency)
            .map_err(|wait| Error::rate_limited(&format!("agency {agency}"), wait))?;
        let (verdict, check) = self.verifier.check(request.into_inner().subject).await?;
        self.gate.counted(agency, verdict, self.verifier.metrics());
        Ok(Response::new(check))
    }
}
