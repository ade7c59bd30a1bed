//! `observer-registry demo`: loads the Astana 2023 story (see [`story`]) into a running
//! service through the shipped client, then prints what it did and the election's headline.
//!
//! Idempotent: every resource is "get or create" under a stable id, creates carry a
//! `request_id` derived from their content (a retried create or batch is answered, not
//! repeated), only SENT invitations are accepted and only PENDING observers accredited, the
//! election's `invitation_required` and `decision_required` are set only when unset, and
//! only SCHEDULED meetings completed, so a second run changes
//! nothing. The client repeats reads and those creates when the service is
//! unreachable for a moment (`--retries`, `--timeout`); other writes run once.

mod calls;
mod invitations;
mod observers;
mod report;
mod story;

use std::process::ExitCode;

use crate::client::AuthenticatedChannel;
use tonic::Code;

use crate::cli::ClientArgs;
use crate::pb::v1 as pb;
use pb::delegation_service_client::DelegationServiceClient;
use pb::election_service_client::ElectionServiceClient;
use pb::invitation_service_client::InvitationServiceClient;
use pb::meeting_service_client::MeetingServiceClient;
use pb::observer_service_client::ObserverServiceClient;
use pb::organization_service_client::OrganizationServiceClient;
use report::Report;

use calls::{Outcome, failed, get_or_create, request_id, timestamp};

/// `demo`: the service to load the story into.
#[derive(Debug, Clone, PartialEq, Eq, clap::Args)]
pub struct DemoArgs {
    #[command(flatten)]
    pub client: ClientArgs,
}

pub async fn run(args: &DemoArgs) -> anyhow::Result<ExitCode> {
    let server = &args.client.server;
    let channel = super::connect(&args.client).await?;
    let mut demo = Demo::new(channel);
    demo.load().await?;
    demo.report.print(server);
    Ok(ExitCode::SUCCESS)
}

struct Demo {
    elections: ElectionServiceClient<AuthenticatedChannel>,
    organizations: OrganizationServiceClient<AuthenticatedChannel>,
    invitations: InvitationServiceClient<AuthenticatedChannel>,
    delegations: DelegationServiceClient<AuthenticatedChannel>,
    observers: ObserverServiceClient<AuthenticatedChannel>,
    meetings: MeetingServiceClient<AuthenticatedChannel>,
    report: Report,
}

impl Demo {
    fn new(channel: AuthenticatedChannel) -> Self {
        Demo {
            elections: ElectionServiceClient::new(channel.clone()),
            organizations: OrganizationServiceClient::new(channel.clone()),
            invitations: InvitationServiceClient::new(channel.clone()),
            delegations: DelegationServiceClient::new(channel.clone()),
            observers: ObserverServiceClient::new(channel.clone()),
            meetings: MeetingServiceClient::new(channel),
            report: Report::default(),
        }
    }

    /// Invitations before delegations and observers (only invited organizations send
    /// them), delegations before observers (observers name them), observers before the head
    /// of delegation and accreditation, delegations before meetings.
    async fn load(&mut self) -> anyhow::Result<()> {
        let election = self.election().await?;
        for organization in story::ORGANIZATIONS {
            self.organization(organization).await?;
        }
        self.invitations().await?;
        let election = self.require_invitations(election).await?;
        for organization in story::ORGANIZATIONS {
            if let Some(display_name) = organization.delegation {
                self.delegation(organization, display_name).await?;
            }
        }
        let observers = self.observers().await?;
        self.head().await?;
        self.accreditation(election, observers).await?;
        for meeting in story::MEETINGS {
            self.meeting(meeting).await?;
        }
        self.report.summary = self.summary().await?;
        Ok(())
    }

    async fn election(&mut self) -> anyhow::Result<pb::Election> {
        let name = story::ELECTION.to_owned();
        let mut request = pb::CreateElectionRequest {
            election_id: story::ELECTION_ID.to_owned(),
            election: Some(pb::Election {
                display_name: story::ELECTION_DISPLAY_NAME.to_owned(),
                host_country: story::HOST_COUNTRY.to_owned(),
                voting_day: story::VOTING_DAY.to_owned(),
                accreditation_deadline: Some(timestamp(story::ACCREDITATION_DEADLINE)?),
                description: story::ELECTION_DESCRIPTION.to_owned(),
                decision_required: true,
                invitation_required: true,
                // A replay of a past election: with the default retention, its personal data
                // would be due for erasure at once. Kept until ErasePersonalData.
                personal_data_retention_days: Some(0),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        request.request_id = request_id("CreateElection", &request);
        let client = &self.elections;
        let (election, outcome) = get_or_create(
            &name,
            || {
                let (mut client, name) = (client.clone(), name.clone());
                async move { client.get_election(pb::GetElectionRequest { name }).await }
            },
            || {
                let mut client = client.clone();
                async move { client.create_election(request).await }
            },
        )
        .await?;
        self.report.election.add(outcome);
        if election.host_country != story::HOST_COUNTRY || election.voting_day != story::VOTING_DAY
        {
            anyhow::bail!(
                "{name} exists but is not the story's election (host country {}, voting day {}); \
                 delete it or load the demo into another server",
                election.host_country,
                election.voting_day
            );
        }
        Ok(election)
    }

    async fn organization(&mut self, plan: &story::Organization) -> anyhow::Result<()> {
        let name = format!("organizations/{}", plan.id);
        let mut request = pb::CreateOrganizationRequest {
            organization_id: plan.id.to_owned(),
            organization: Some(pb::Organization {
                display_name: plan.display_name.to_owned(),
                abbreviation: plan.abbreviation.to_owned(),
                kind: plan.kind.into(),
                country: plan.country.to_owned(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        request.request_id = request_id("CreateOrganization", &request);
        let client = &self.organizations;
        let (organization, outcome) = get_or_create(
            &name,
            || {
                let (mut client, name) = (client.clone(), name.clone());
                async move {
                    client
                        .get_organization(pb::GetOrganizationRequest { name })
                        .await
                }
            },
            || {
                let mut client = client.clone();
                async move { client.create_organization(request).await }
            },
        )
        .await?;
        self.report.organizations.add(outcome);
        if organization.kind != i32::from(plan.kind) {
            self.report.warn(format!(
                "{name} already exists with another kind than {}; the figures count it as it is",
                plan.kind.as_str_name()
            ));
        }
        Ok(())
    }

    async fn delegation(
        &mut self,
        plan: &story::Organization,
        display_name: &str,
    ) -> anyhow::Result<()> {
        let name = format!("{}/delegations/{}", story::ELECTION, plan.id);
        let mut request = pb::CreateDelegationRequest {
            parent: story::ELECTION.to_owned(),
            delegation_id: plan.id.to_owned(),
            delegation: Some(pb::Delegation {
                display_name: display_name.to_owned(),
                organization: format!("organizations/{}", plan.id),
                notes: "Met the CEC Chairman in Astana (Kazinform, 18 March 2023).".to_owned(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        request.request_id = request_id("CreateDelegation", &request);
        let client = &self.delegations;
        let (delegation, outcome) = get_or_create(
            &name,
            || {
                let (mut client, name) = (client.clone(), name.clone());
                async move {
                    client
                        .get_delegation(pb::GetDelegationRequest { name })
                        .await
                }
            },
            || {
                let mut client = client.clone();
                async move { client.create_delegation(request).await }
            },
        )
        .await?;
        self.report.delegations.add(outcome);
        if delegation.delete_time.is_some() {
            self.report.warn(format!(
                "{name} is deleted; left as it is (UndeleteDelegation restores it)"
            ));
        }
        Ok(())
    }

    async fn meeting(&mut self, plan: &story::Meeting) -> anyhow::Result<()> {
        let name = format!("{}/meetings/{}", story::ELECTION, plan.id);
        let mut request = pb::CreateMeetingRequest {
            parent: story::ELECTION.to_owned(),
            meeting_id: plan.id.to_owned(),
            meeting: Some(pb::Meeting {
                title: plan.title.to_owned(),
                host: story::HOST.to_owned(),
                delegations: plan
                    .delegations
                    .iter()
                    .map(|id| format!("{}/delegations/{id}", story::ELECTION))
                    .collect(),
                start_time: Some(timestamp(plan.start)?),
                end_time: Some(timestamp(plan.end)?),
                location: story::LOCATION.to_owned(),
                topics: plan.topics.iter().map(|t| t.to_string()).collect(),
                ..Default::default()
            }),
            request_id: String::new(),
        };
        request.request_id = request_id("CreateMeeting", &request);
        let client = &self.meetings;
        let (meeting, outcome) = get_or_create(
            &name,
            || {
                let (mut client, name) = (client.clone(), name.clone());
                async move { client.get_meeting(pb::GetMeetingRequest { name }).await }
            },
            || {
                let mut client = client.clone();
                async move { client.create_meeting(request).await }
            },
        )
        .await?;
        self.report.meetings.add(outcome);
        match meeting.state() {
            _ if meeting.delete_time.is_some() => self.report.warn(format!(
                "{name} is deleted; left as it is (UndeleteMeeting restores it)"
            )),
            pb::MeetingState::Scheduled => {
                self.meetings
                    .complete_meeting(pb::CompleteMeetingRequest {
                        name: name.clone(),
                        outcome: plan.outcome.to_owned(),
                        etag: meeting.etag,
                    })
                    .await
                    .map_err(|status| failed(&format!("completing {name}"), status))?;
                self.report.held.created += 1;
            }
            pb::MeetingState::Held => self.report.held.present += 1,
            other => self
                .report
                .warn(format!("{name} is {}; left as it is", other.as_str_name())),
        }
        Ok(())
    }

    /// The election's figures; `None` while the server does not implement them.
    async fn summary(&mut self) -> anyhow::Result<Option<pb::ElectionSummary>> {
        let request = pb::GetElectionSummaryRequest {
            name: story::ELECTION.to_owned(),
        };
        match self.elections.get_election_summary(request).await {
            Ok(summary) => Ok(Some(summary.into_inner())),
            Err(status) if status.code() == Code::Unimplemented => Ok(None),
            Err(status) => Err(failed("reading the election summary", status)),
        }
    }
}
