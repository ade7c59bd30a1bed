//! `observer-registry demo` end to end: the real binary loads the Astana 2023 story into a
//! real server over a fresh database; the records are then checked through the generated
//! client, and a second run must change nothing at all.

use crate::common;

use std::collections::{BTreeSet, HashMap};

use common::*;
use observer_registry::pb::v1 as pb;
use pb::audit_service_client::AuditServiceClient;
use pb::meeting_service_client::MeetingServiceClient;
use pb::{AccreditationState, MeetingState, OrganizationKind};
use sqlx::PgPool;
use tonic::Code;
use tonic::transport::Channel;

const KZ: &str = "elections/kz-2023";
const ABDIROV: &str = "Nurlan Abdirov, Chairman of the Central Election Commission";
const HEADLINE: &str = "793 observers from 12 international organizations and 41 countries";
/// 2023-03-19T00:00:00Z: accreditation closed when voting began.
const VOTING_DAY_START: i64 = 1_679_184_000;
/// 2023-03-17T11:00:00+06:00.
const MARCH_17_MEETING_START: i64 = 1_679_029_200;
/// 2023-03-18T00:00:00+06:00: 18 March begins in Astana (UTC+6 in 2023).
const MARCH_18_ASTANA: i64 = 1_679_076_000;

/// The accreditation number of `observer`.
fn number(observer: &pb::Observer) -> u32 {
    let number = &observer.accreditation.as_ref().unwrap().number;
    number.strip_prefix("KZ-2023-").unwrap().parse().unwrap()
}

/// The accredited observers by decision, each decision's in the order of their numbers;
/// the decisions in the order of their dates (the decision's text ends with its date and
/// "(illustrative)").
fn by_decision(accredited: &[pb::Observer]) -> Vec<(String, Vec<&pb::Observer>)> {
    let mut decisions: Vec<(String, Vec<&pb::Observer>)> = Vec::new();
    for observer in accredited {
        let decision = &observer.accreditation.as_ref().unwrap().decision;
        match decisions.iter_mut().find(|(text, _)| text == decision) {
            Some((_, observers)) => observers.push(observer),
            None => decisions.push((decision.clone(), vec![observer])),
        }
    }
    for (_, observers) in &mut decisions {
        observers.sort_by_key(|o| number(o));
    }
    let date = |text: &str| text.split(" of ").nth(1).unwrap_or_default().to_owned();
    decisions.sort_by_key(|(text, _)| date(text));
    decisions
}

/// One decision a day behind every accreditation, marked illustrative (the article gives
/// none); each decision's numbers follow one another in the order of the observers' ids (the
/// roster's), and the days' numbers follow the days. An organization's observers share
/// their decision.
#[track_caller]
fn assert_decisions(accredited: &[pb::Observer]) {
    let decisions = by_decision(accredited);
    assert_eq!(
        decisions.len(),
        3,
        "{:?}",
        decisions.iter().map(|d| &d.0).collect::<Vec<_>>()
    );
    let mut next = 1;
    let mut decided = HashMap::new();
    for (text, observers) in &decisions {
        assert!(text.starts_with("Resolution No. "), "{text}");
        assert!(text.ends_with(" (illustrative)"), "{text}");
        let numbers: Vec<u32> = observers.iter().map(|o| number(o)).collect();
        let consecutive: Vec<u32> = (next..next + observers.len() as u32).collect();
        assert_eq!(numbers, consecutive, "{text}");
        next += observers.len() as u32;
        let ids: Vec<&str> = observers.iter().map(|o| o.name.as_str()).collect();
        assert!(
            ids.is_sorted(),
            "{text}: numbered out of the roster's order"
        );
        for observer in observers {
            let earlier = decided.insert(observer.organization.clone(), text.clone());
            assert!(
                earlier.is_none_or(|earlier| &earlier == text),
                "{}",
                observer.organization
            );
        }
    }
}

/// The number of the first observer of the first day's decision.
fn first_of_first_decision(accredited: &[pb::Observer]) -> String {
    let decisions = by_decision(accredited);
    decisions[0].1[0]
        .accreditation
        .as_ref()
        .unwrap()
        .number
        .clone()
}

/// Runs the real binary against `app`; returns its stdout, failing on a non-zero exit.
async fn run_demo(app: &TestApp) -> String {
    let output = demo_command(&format!("http://{}", app.addr))
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "demo exited with {}\nstdout:\n{stdout}\nstderr:\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The "created" and "already there" figures of one row of the demo's report.
#[track_caller]
fn row(report: &str, what: &str) -> (usize, usize) {
    let line = report
        .lines()
        .find(|line| line.trim_start().starts_with(&format!("{what}  ")))
        .unwrap_or_else(|| panic!("no row {what:?} in\n{report}"));
    let figures: Vec<usize> = line[line.find(what).unwrap() + what.len()..]
        .split_whitespace()
        .map(|figure| figure.parse().unwrap())
        .collect();
    assert_eq!(figures.len(), 2, "{line}");
    (figures[0], figures[1])
}

fn demo_command(server: &str) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"));
    command
        .args(["demo", "--server", server])
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

fn meetings(app: &TestApp) -> MeetingServiceClient<Channel> {
    MeetingServiceClient::new(app.channel.clone())
}

/// Every record the demo touches, as the service returns it (etags and update times
/// included), plus the row counts of the tables behind them.
#[derive(Debug)]
struct Snapshot {
    election: pb::Election,
    organizations: Vec<pb::Organization>,
    delegations: Vec<pb::Delegation>,
    observers: Vec<pb::Observer>,
    meetings: Vec<pb::Meeting>,
    summary: pb::ElectionSummary,
    rows: Vec<(&'static str, i64)>,
}

async fn snapshot(app: &TestApp) -> Snapshot {
    let election = app
        .elections()
        .get_election(pb::GetElectionRequest { name: KZ.into() })
        .await
        .unwrap()
        .into_inner();
    let organizations = app
        .organizations()
        .list_organizations(pb::ListOrganizationsRequest {
            page_size: 1000,
            order_by: "name".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(organizations.next_page_token.is_empty());
    let delegations = app
        .delegations()
        .list_delegations(pb::ListDelegationsRequest {
            parent: KZ.into(),
            page_size: 1000,
            order_by: "name".into(),
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(delegations.next_page_token.is_empty());
    let meetings = meetings(app)
        .list_meetings(pb::ListMeetingsRequest {
            parent: KZ.into(),
            page_size: 1000,
            order_by: "start_time".into(),
            show_deleted: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(meetings.next_page_token.is_empty());
    let mut rows = Vec::new();
    for table in [
        "elections",
        "organizations",
        "delegations",
        "observers",
        "meetings",
        "meeting_delegations",
        "request_ids",
    ] {
        rows.push((table, app.count(table).await));
    }
    // Every mutation writes one audit event, so an unchanged count proves none happened.
    for parent in [KZ, "organizations/-"] {
        if let Some(events) = audit_events(app, parent).await {
            rows.push((parent, events));
        }
    }
    Snapshot {
        election,
        organizations: organizations.organizations,
        delegations: delegations.delegations,
        observers: observers(app, "", true).await,
        meetings: meetings.meetings,
        summary: summary(app).await,
        rows,
    }
}

/// The observers of kz-2023 matching `filter` (one page of up to 1000, ordered by name),
/// checking that `total_size` agrees.
async fn observers(app: &TestApp, filter: &str, show_deleted: bool) -> Vec<pb::Observer> {
    let page = app
        .observers()
        .list_observers(pb::ListObserversRequest {
            parent: KZ.into(),
            page_size: 1000,
            filter: filter.into(),
            order_by: "name".into(),
            show_deleted,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert!(page.next_page_token.is_empty());
    assert_eq!(page.total_size as usize, page.observers.len(), "{filter:?}");
    page.observers
}

/// The number of audit events under `parent`; `None` while the server has no audit trail.
async fn audit_events(app: &TestApp, parent: &str) -> Option<i64> {
    let page = AuditServiceClient::new(app.channel.clone())
        .list_audit_events(pb::ListAuditEventsRequest {
            parent: parent.into(),
            page_size: 1,
            ..Default::default()
        })
        .await;
    match page {
        Ok(page) => Some(page.into_inner().total_size.into()),
        Err(status) if status.code() == Code::Unimplemented => None,
        Err(status) => panic!("listing the audit events of {parent}: {status:?}"),
    }
}

async fn summary(app: &TestApp) -> pb::ElectionSummary {
    app.elections()
        .get_election_summary(pb::GetElectionSummaryRequest { name: KZ.into() })
        .await
        .unwrap()
        .into_inner()
}

#[sqlx::test]
async fn the_demo_loads_the_astana_story_and_a_second_run_changes_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;

    let first = run_demo(&app).await;
    assert_eq!(row(&first, "invitations"), (17, 0), "{first}");
    assert_eq!(row(&first, "accepted"), (17, 0), "{first}");
    assert!(
        first.contains(
            "Invitations: 17 organizations invited, 17 accepted, 793 observers announced"
        ),
        "{first}"
    );
    assert_eq!(row(&first, "observers"), (793, 0), "{first}");
    assert_eq!(row(&first, "accreditations"), (793, 0), "{first}");
    assert_eq!(row(&first, "meetings held"), (4, 0), "{first}");
    assert!(first.contains(&format!("Headline: {HEADLINE}")), "{first}");
    assert!(first.contains("grpcurl -plaintext"), "{first}");

    // 793 accredited observers from 41 countries, numbered KZ-2023-000001 to -000793.
    let accredited = observers(&app, "accreditation.state = ACCREDITED", false).await;
    assert_eq!(accredited.len(), 793);
    let countries: BTreeSet<_> = accredited.iter().map(|o| o.citizenship.as_str()).collect();
    assert_eq!(countries.len(), 41, "{countries:?}");
    assert!(!countries.contains("KZ"));
    let numbers: BTreeSet<_> = accredited
        .iter()
        .map(|o| o.accreditation.as_ref().unwrap().number.clone())
        .collect();
    let expected: BTreeSet<_> = (1..=793).map(|n| format!("KZ-2023-{n:06}")).collect();
    assert_eq!(numbers, expected);
    assert_decisions(&accredited);
    assert!(
        first.contains(&format!(
            r#"-d '{{"accreditation_number":"{}"}}' 127.0.0.1:"#,
            first_of_first_decision(&accredited)
        )),
        "{first}"
    );
    assert!(
        first.contains("VerificationService/ListBadgeKeys"),
        "{first}"
    );
    assert!(
        first.contains(&format!(
            "badges --server http://{} --election {KZ}",
            app.addr
        )),
        "{first}"
    );
    assert!(
        observers(&app, "", true).await.iter().all(|o| {
            o.accreditation.as_ref().unwrap().state() == AccreditationState::Accredited
        })
    );

    // Sent by 12 international organizations and the five foreign commissions.
    let mut kinds = HashMap::new();
    for observer in &accredited {
        if !kinds.contains_key(&observer.organization) {
            let organization = app
                .organizations()
                .get_organization(pb::GetOrganizationRequest {
                    name: observer.organization.clone(),
                })
                .await
                .unwrap()
                .into_inner();
            if organization.kind() == OrganizationKind::ForeignElectionBody {
                assert!(
                    accredited
                        .iter()
                        .filter(|o| o.organization == organization.name)
                        .all(|o| o.citizenship == organization.country)
                );
            }
            kinds.insert(observer.organization.clone(), organization.kind());
        }
    }
    let international = kinds
        .values()
        .filter(|kind| {
            matches!(
                kind,
                OrganizationKind::InternationalOrganization
                    | OrganizationKind::ParliamentaryAssembly
            )
        })
        .count();
    assert_eq!(international, 12, "{kinds:?}");
    assert_eq!(kinds.len(), 17, "{kinds:?}");

    // Ten delegations; Tajikistan's is headed by Bakhtiyor Hudoerzoda.
    let loaded = snapshot(&app).await;
    assert_eq!(loaded.delegations.len(), 10);
    assert!(loaded.delegations.iter().all(|d| d.member_count > 0));
    let cec_tj = loaded
        .delegations
        .iter()
        .find(|d| d.name == format!("{KZ}/delegations/cec-tj"))
        .unwrap();
    assert_eq!(cec_tj.organization, "organizations/cec-tj");
    let head = app
        .observers()
        .get_observer(pb::GetObserverRequest {
            name: cec_tj.head.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        (head.given_name.as_str(), head.family_name.as_str()),
        ("Bakhtiyor", "Hudoerzoda")
    );
    assert_eq!(head.citizenship, "TJ");
    assert_eq!(head.delegation, cec_tj.name);
    assert!(accredited.iter().any(|o| o.name == head.name));

    // Four meetings held by the chairman: one with seven delegations on 17 March, three
    // with one each on 18 March, together every delegation.
    assert_eq!(loaded.meetings.len(), 4);
    for meeting in &loaded.meetings {
        assert_eq!(meeting.host, ABDIROV);
        assert_eq!(meeting.state(), MeetingState::Held);
        assert!(!meeting.outcome.is_empty());
        assert_eq!(meeting.topics.len(), 3);
        assert_eq!(meeting.location, "Central Election Commission, Astana");
    }
    let march_17 = &loaded.meetings[0];
    assert_eq!(
        march_17.start_time.as_ref().unwrap().seconds,
        MARCH_17_MEETING_START
    );
    assert_eq!(march_17.delegations.len(), 7);
    for meeting in &loaded.meetings[1..] {
        let start = meeting.start_time.as_ref().unwrap().seconds;
        assert!((MARCH_18_ASTANA..MARCH_18_ASTANA + 86_400).contains(&start));
        assert_eq!(meeting.delegations.len(), 1);
    }
    let met: BTreeSet<_> = loaded
        .meetings
        .iter()
        .flat_map(|m| &m.delegations)
        .collect();
    let delegations: BTreeSet<_> = loaded.delegations.iter().map(|d| &d.name).collect();
    assert_eq!(met, delegations);

    // Every accreditation has its decision behind it from now on, and only invited
    // organizations send observers. A replayed past election keeps its personal data.
    assert!(loaded.election.decision_required);
    assert!(loaded.election.invitation_required);
    assert_eq!(loaded.election.personal_data_retention_days, Some(0));
    assert_eq!(loaded.election.personal_data_erase_time, None);

    // Every organization was invited by an (illustrative) letter and accepted.
    let invitations = app
        .invitations()
        .list_invitations(pb::ListInvitationsRequest {
            parent: KZ.into(),
            page_size: 100,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .invitations;
    assert_eq!(invitations.len(), 17);
    for invitation in &invitations {
        assert_eq!(invitation.state(), pb::InvitationState::Accepted);
        assert!(invitation.reference.ends_with("(illustrative)"));
        assert_eq!(invitation.send_date, "2023-01-27");
        assert!(invitation.expected_observers > 0);
    }
    assert_eq!(
        (
            loaded.summary.invited_organizations,
            loaded.summary.accepted_invitations,
            loaded.summary.expected_observers
        ),
        (17, 17, 793)
    );

    // Accreditation is closed again, at the start of voting day.
    assert_eq!(
        loaded
            .election
            .accreditation_deadline
            .as_ref()
            .unwrap()
            .seconds,
        VOTING_DAY_START
    );

    // The article's headline.
    assert_eq!(loaded.summary.headline, HEADLINE);
    assert_eq!(loaded.summary.accredited_observers, 793);
    assert_eq!(loaded.summary.international_organizations, 12);
    assert_eq!(loaded.summary.countries, 41);

    // A second run finds everything and changes nothing: the same records with the same
    // etags, no new rows, the same headline.
    let second = run_demo(&app).await;
    assert!(second.contains("Nothing changed"), "{second}");
    assert_eq!(row(&second, "invitations"), (0, 17), "{second}");
    assert_eq!(row(&second, "accepted"), (0, 17), "{second}");
    assert_eq!(row(&second, "observers"), (0, 793), "{second}");
    assert_eq!(row(&second, "accreditations"), (0, 793), "{second}");
    assert_eq!(row(&second, "meetings held"), (0, 4), "{second}");
    assert!(
        second.contains(&format!("Headline: {HEADLINE}")),
        "{second}"
    );
    let again = snapshot(&app).await;
    assert_eq!(again.rows, loaded.rows, "the second run added rows");
    assert_eq!(again.election, loaded.election);
    assert_eq!(again.organizations, loaded.organizations);
    assert_eq!(again.delegations, loaded.delegations);
    assert_eq!(again.meetings, loaded.meetings);
    assert_eq!(again.observers.len(), loaded.observers.len());
    for (before, after) in loaded.observers.iter().zip(&again.observers) {
        assert_eq!(after, before, "{} changed", before.name);
    }
    assert_eq!(again.summary, loaded.summary);
    assert_eq!(again.summary.headline, HEADLINE);
}

#[sqlx::test]
async fn the_demo_completes_a_story_loaded_in_part(pool: PgPool) {
    let app = spawn_app(pool).await;
    // An operator created the election by hand, without a deadline, and one organization.
    create_election(&app, "kz-2023").await;
    app.organizations()
        .create_organization(pb::CreateOrganizationRequest {
            organization_id: "sco".into(),
            organization: Some(pb::Organization {
                display_name: "Shanghai Cooperation Organisation".into(),
                kind: OrganizationKind::InternationalOrganization.into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap();

    let report = run_demo(&app).await;
    assert_eq!(row(&report, "election"), (0, 1), "{report}");
    assert_eq!(row(&report, "organizations"), (16, 1), "{report}");
    assert_eq!(row(&report, "accreditations"), (793, 0), "{report}");
    assert!(
        report.contains(&format!("Headline: {HEADLINE}")),
        "{report}"
    );
    let loaded = snapshot(&app).await;
    assert_eq!(
        loaded.election.accreditation_deadline.map(|t| t.seconds),
        Some(VOTING_DAY_START)
    );
    assert_eq!(loaded.summary.headline, HEADLINE);
    // The election made by hand did not require decisions; the story's does.
    assert!(loaded.election.decision_required);
    assert!(
        report.contains("elections/kz-2023 now requires the commission's decision"),
        "{report}"
    );
    assert_decisions(&observers(&app, "", false).await);
}

#[tokio::test]
async fn the_demo_says_when_it_cannot_reach_the_server() {
    // A port nobody listens on any more.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = demo_command(&format!("http://127.0.0.1:{port}"))
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains(&format!("cannot connect to http://127.0.0.1:{port}")),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}
