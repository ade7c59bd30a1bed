//! `import-observers` and `export-observers` end to end: a real server on 127.0.0.1:0, the
//! real binary as a subprocess, the generated client to set up and to check.

use crate::common;

use std::path::PathBuf;
use std::process::{ExitStatus, Output};
use std::sync::Arc;
use std::time::Duration;

use common::proxy::Proxy;
use common::*;
use observer_registry::cli::csv_format::{Column, FileError, Row, entries_as_lines, parse, record};
use observer_registry::pb::v1 as pb;
use sqlx::PgPool;

const KZ: &str = "elections/kz-2023";
const RUNOFF: &str = "elections/kz-2023-runoff";
const HEADER: &str = "observer_id,given_name,family_name,citizenship,organization,delegation,role,\
                      travel_document_number,date_of_birth,email,phone,deployment_region";

// ---- set-up ----

/// An election hosted by Kazakhstan with delegations `sco` and `cec-az` (ids the same in
/// every election, so a file moves between them); the organizations on first call.
async fn election_with_delegations(app: &TestApp, id: &str) {
    if app.count("organizations").await == 0 {
        for (org, kind, country) in [
            ("sco", pb::OrganizationKind::InternationalOrganization, ""),
            ("cec-az", pb::OrganizationKind::ForeignElectionBody, "AZ"),
        ] {
            app.organizations()
                .create_organization(pb::CreateOrganizationRequest {
                    organization_id: org.into(),
                    organization: Some(pb::Organization {
                        display_name: format!("Organization {org}"),
                        kind: kind.into(),
                        country: country.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                })
                .await
                .unwrap();
        }
    }
    create_election(app, id).await;
    for org in ["sco", "cec-az"] {
        app.delegations()
            .create_delegation(pb::CreateDelegationRequest {
                parent: format!("elections/{id}"),
                delegation_id: org.into(),
                delegation: Some(pb::Delegation {
                    display_name: format!("Delegation of {org}"),
                    organization: format!("organizations/{org}"),
                    ..Default::default()
                }),
                request_id: String::new(),
            })
            .await
            .unwrap();
    }
}

/// Row `i` of a generated list: names in several scripts, every column used.
fn person(i: usize) -> Vec<String> {
    const PEOPLE: [(&str, &str, &str); 8] = [
        ("Анна", "Иванова", "RU"),
        ("محمد", "العلي", "EG"),
        ("小明", "王", "CN"),
        ("Бат-Эрдэнэ", "Батбаяр", "MN"),
        ("ᠪᠠᠲᠤ", "ᠮᠥᠩᠬᠡ", "MN"),
        ("Leyla", "Hüseynova", "AZ"),
        ("Ngozi", "Okonkwo-Adébáyọ̀", "NG"),
        ("Seán", "O'Neil, \"Jr\"", "IE"),
    ];
    let (given, family, citizenship) = PEOPLE[i % PEOPLE.len()];
    let organization = if i.is_multiple_of(3) { "cec-az" } else { "sco" };
    let delegation = if i.is_multiple_of(2) {
        organization
    } else {
        ""
    };
    let role = ["", "EXPERT", "SHORT_TERM_OBSERVER", "LONG_TERM_OBSERVER"][i % 4];
    vec![
        if i.is_multiple_of(5) {
            format!("obs-{i}")
        } else {
            String::new()
        },
        given.into(),
        family.into(),
        citizenship.into(),
        organization.into(),
        delegation.into(),
        role.into(),
        format!("P{i:07}"),
        format!("19{}-0{}-1{}", 50 + i % 50, 1 + i % 9, i % 9),
        format!("observer{i}@example.org"),
        format!("+994 12 {i:07}"),
        ["Astana", "Almaty", ""][i % 3].into(),
    ]
}

fn csv_file(header: &str, rows: &[Vec<String>]) -> Vec<u8> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(header.split(','))
        .expect("the header is written");
    for row in rows {
        writer.write_record(row).expect("a row is written");
    }
    writer.into_inner().expect("the file is complete")
}

/// A file in the temporary directory, removed when dropped.
struct TempFile(PathBuf);

impl TempFile {
    fn new(contents: &[u8]) -> Self {
        let path = std::env::temp_dir().join(format!("observers-{}.csv", uuid::Uuid::new_v4()));
        std::fs::write(&path, contents).unwrap();
        TempFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---- running the binary ----

pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// The binary with `args` against `app`.
pub async fn run(app: &TestApp, args: &[&str]) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"))
        .args(args)
        .args(["--server", &format!("http://{}", app.addr)])
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    Run {
        code: status.code(),
        stdout: String::from_utf8(stdout).unwrap(),
        stderr: String::from_utf8(stderr).unwrap(),
    }
}

async fn import(app: &TestApp, election: &str, file: &TempFile, batch_size: Option<&str>) -> Run {
    let mut args = vec!["import-observers", "--election", election];
    if let Some(size) = batch_size {
        args.extend(["--batch-size", size]);
    }
    args.push(file.path());
    run(app, &args).await
}

// ---- reading back ----

async fn list_all(app: &TestApp, election: &str) -> Vec<pb::Observer> {
    let mut all = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = app
            .observers()
            .list_observers(pb::ListObserversRequest {
                parent: election.into(),
                page_size: 1000,
                page_token,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        all.extend(page.observers);
        if page.next_page_token.is_empty() {
            return all;
        }
        page_token = page.next_page_token;
    }
}

fn documents(observers: &[pb::Observer]) -> Vec<String> {
    let mut documents: Vec<String> = observers
        .iter()
        .map(|o| o.travel_document_number.clone())
        .collect();
    documents.sort();
    documents
}

/// Everything an observer says about the person, election-independent, sorted.
fn people(observers: &[pb::Observer]) -> Vec<Vec<String>> {
    let mut people: Vec<Vec<String>> = observers
        .iter()
        .map(|o| {
            vec![
                o.given_name.clone(),
                o.family_name.clone(),
                o.citizenship.clone(),
                o.travel_document_number.clone(),
                o.organization.clone(),
                o.delegation.rsplit('/').next().unwrap().to_owned(),
                o.role().as_str_name().to_owned(),
                o.date_of_birth.clone(),
                o.email.clone(),
                o.phone.clone(),
                o.deployment_region.clone(),
            ]
        })
        .collect();
    people.sort();
    people
}

// ---- tests ----

#[sqlx::test]
async fn a_clean_file_is_imported_whole_and_running_it_again_creates_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    let rows: Vec<Vec<String>> = (0..1200).map(person).collect();
    let file = TempFile::new(&csv_file(HEADER, &rows));

    let first = import(&app, KZ, &file, None).await;
    assert_eq!(first.code, Some(0), "{}", first.stderr);
    assert!(
        first.stderr.contains("batch 3/3 (lines 1002-1201)"),
        "{}",
        first.stderr
    );
    assert!(
        first.stderr.contains(
            "1200 rows imported, 0 already present (replayed), 0 rows refused, 0 of 3 batches refused"
        ),
        "{}",
        first.stderr
    );
    let observers = list_all(&app, KZ).await;
    assert_eq!(observers.len(), 1200);
    for observer in &observers {
        let i: usize = observer.travel_document_number[1..].parse().unwrap();
        let row = &rows[i];
        assert_eq!(
            observer.given_name.as_bytes(),
            row[1].as_bytes(),
            "byte-identical"
        );
        assert_eq!(observer.family_name.as_bytes(), row[2].as_bytes());
        assert_eq!(observer.citizenship, row[3]);
        assert_eq!(observer.organization, format!("organizations/{}", row[4]));
        let delegation = if row[5].is_empty() {
            String::new()
        } else {
            format!("{KZ}/delegations/{}", row[5])
        };
        assert_eq!(observer.delegation, delegation);
        if !row[0].is_empty() {
            assert_eq!(observer.name, format!("{KZ}/observers/{}", row[0]));
        }
    }

    let again = import(&app, KZ, &file, None).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("0 rows imported, 1200 already present (replayed), 0 rows refused"),
        "{}",
        again.stderr
    );
    assert_eq!(app.count("observers").await, 1200);
}

#[sqlx::test]
async fn every_bad_row_is_named_and_refused_batches_write_nothing(pool: PgPool) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    // Three batches of ten: lines 2-11, 12-21 and 22-31.
    let mut rows: Vec<Vec<String>> = (0..30).map(person).collect();
    rows[3][3] = "XX".into(); // line 5
    rows[3][8] = "2023-02-30".into(); // line 5, too
    rows[7][3] = "KZ".into(); // line 9: the host country
    rows[25][3] = rows[21][3].clone(); // line 27 is the person of line 23
    rows[25][7] = rows[21][7].to_lowercase();
    let file = TempFile::new(&csv_file(HEADER, &rows));

    let run = import(&app, KZ, &file, Some("10")).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let stderr = &run.stderr;
    for expected in [
        "line 5, column citizenship: `XX` is not an assigned ISO 3166-1 alpha-2 country code (INVALID_ARGUMENT)",
        "line 5, column date_of_birth: ",
        "line 9, column citizenship: ",
        "(HOST_COUNTRY_CITIZEN)",
        "line 27, column travel_document_number: line 27 is the same person as line 23 (DUPLICATE_OBSERVER)",
        "10 rows imported, 0 already present (replayed), 3 rows refused, 2 of 3 batches refused",
    ] {
        assert!(stderr.contains(expected), "no `{expected}` in:\n{stderr}");
    }
    let reported = stderr.lines().filter(|l| l.starts_with("line ")).count();
    assert_eq!(reported, 4, "one line per bad field:\n{stderr}");
    let good: Vec<String> = (10..20).map(|i| format!("P{i:07}")).collect();
    assert_eq!(
        documents(&list_all(&app, KZ).await),
        good,
        "only the good batch"
    );

    // Fixed in place, the file imports the two refused batches; the good one is replayed.
    rows[3][3] = "AZ".into();
    rows[3][8] = "1970-02-28".into();
    rows[7][3] = "RU".into();
    rows[25][7] = "Q0000025".into();
    let fixed = TempFile::new(&csv_file(HEADER, &rows));
    let run = import(&app, KZ, &fixed, Some("10")).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("20 rows imported, 10 already present (replayed)"),
        "{}",
        run.stderr
    );
    assert_eq!(app.count("observers").await, 30);
}

#[sqlx::test]
async fn every_row_with_another_number_of_fields_is_named_and_the_rest_imports(pool: PgPool) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    // Two batches of five: lines 2-6 and 7-11. Line 4 lost a field, line 9 has one too many.
    let mut rows: Vec<Vec<String>> = (0..10).map(person).collect();
    rows[2].pop();
    rows[7].push("extra".into());
    let mut writer = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    writer.write_record(HEADER.split(',')).unwrap();
    for row in &rows {
        writer.write_record(row).unwrap();
    }
    let file = TempFile::new(&writer.into_inner().unwrap());

    let run = import(&app, KZ, &file, Some("5")).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    let stderr = &run.stderr;
    for expected in [
        "line 4: has 11 fields where the header row has 12",
        "line 9: has 13 fields where the header row has 12",
        "0 rows imported, 0 already present (replayed), 2 rows refused, 2 of 2 batches refused",
    ] {
        assert!(stderr.contains(expected), "no `{expected}` in:\n{stderr}");
    }
    assert_eq!(
        app.count("observers").await,
        0,
        "refused batches write nothing"
    );

    // With batches of one row, the good rows go in and both bad lines are still named.
    let run = import(&app, KZ, &file, Some("1")).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("8 rows imported, 0 already present (replayed), 2 rows refused"),
        "{}",
        run.stderr
    );
    assert_eq!(app.count("observers").await, 8);
}

#[sqlx::test]
async fn rows_of_organizations_without_an_accepted_invitation_are_line_errors(pool: PgPool) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    // `sco` accepted its invitation; `cec-az` was never invited. Then the election requires
    // invitations.
    let invitation = app
        .invitations()
        .create_invitation(pb::CreateInvitationRequest {
            parent: KZ.into(),
            invitation_id: "sco".into(),
            invitation: Some(pb::Invitation {
                organization: "organizations/sco".into(),
                send_date: "2023-01-27".into(),
                ..Default::default()
            }),
            request_id: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    app.invitations()
        .accept_invitation(pb::AcceptInvitationRequest {
            name: invitation.name,
            reply_date: "2023-02-03".into(),
            expected_observers: 4,
            etag: invitation.etag,
        })
        .await
        .unwrap();
    app.elections()
        .update_election(pb::UpdateElectionRequest {
            election: Some(pb::Election {
                name: KZ.into(),
                invitation_required: true,
                ..Default::default()
            }),
            update_mask: crate::common::registry::mask(&["invitation_required"]),
        })
        .await
        .unwrap();
    // Rows 0 and 3 (lines 2 and 5) are sent by cec-az.
    let rows: Vec<Vec<String>> = (0..6).map(person).collect();
    let file = TempFile::new(&csv_file(HEADER, &rows));

    let run = import(&app, KZ, &file, None).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    for line in [2, 5] {
        let expected = format!("line {line}, column organization: ");
        let reported = run.stderr.lines().find(|l| l.starts_with(&expected));
        let reported = reported.unwrap_or_else(|| panic!("no `{expected}` in:\n{}", run.stderr));
        assert!(reported.ends_with("(NOT_INVITED)"), "{reported}");
    }
    let reported = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("line "))
        .count();
    assert_eq!(reported, 2, "only the uninvited rows:\n{}", run.stderr);
    assert_eq!(
        app.count("observers").await,
        0,
        "a refused batch writes nothing"
    );

    let run = import(&app, KZ, &file, Some("1")).await;
    assert_eq!(run.code, Some(1), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("4 rows imported, 0 already present (replayed), 2 rows refused"),
        "{}",
        run.stderr
    );
}

#[sqlx::test]
async fn an_export_imports_into_another_election_as_the_same_people(pool: PgPool) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    election_with_delegations(&app, "kz-2023-runoff").await;
    let rows: Vec<Vec<String>> = (0..120).map(person).collect();
    let file = TempFile::new(&csv_file(HEADER, &rows));
    assert_eq!(import(&app, KZ, &file, None).await.code, Some(0));

    let export = run(&app, &["export-observers", "--election", KZ]).await;
    assert_eq!(export.code, Some(0), "{}", export.stderr);
    assert_eq!(export.stdout.lines().next(), Some(HEADER));
    assert!(
        export.stderr.contains("exported 120 observers"),
        "{}",
        export.stderr
    );
    let exported = TempFile::new(export.stdout.as_bytes());
    let again = import(&app, RUNOFF, &exported, None).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);

    let original = list_all(&app, KZ).await;
    let copy = list_all(&app, RUNOFF).await;
    assert_eq!(people(&copy), people(&original));
    assert!(
        copy.iter()
            .any(|o| o.name == format!("{RUNOFF}/observers/obs-5")),
        "chosen ids are kept"
    );
    assert!(
        copy.iter()
            .all(|o| o.delegation.is_empty() || o.delegation.starts_with(RUNOFF))
    );

    let mongolians = run(
        &app,
        &[
            "export-observers",
            "--election",
            KZ,
            "--filter",
            "citizenship = \"MN\"",
        ],
    )
    .await;
    assert_eq!(mongolians.code, Some(0), "{}", mongolians.stderr);
    let expected = original.iter().filter(|o| o.citizenship == "MN").count();
    assert_eq!(mongolians.stdout.lines().count(), 1 + expected);

    let bad = run(
        &app,
        &[
            "export-observers",
            "--election",
            KZ,
            "--filter",
            "shoe_size > 3",
        ],
    )
    .await;
    assert_eq!(bad.code, Some(2));
    assert!(bad.stderr.contains("INVALID_FILTER"), "{}", bad.stderr);
    assert_eq!(bad.stdout, "", "nothing is written when the export fails");
}

#[sqlx::test]
async fn columns_come_in_any_order_and_unknown_ones_are_ignored(pool: PgPool) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    let text = "\u{feff}travel_document_number,Family_Name,notes,given_name,citizenship,organization\r\n\
                A0000001,Иванова,first,Анна,RU,sco\r\n\
                ,,,,,\r\n\
                A0000002,王,second,小明,CN,organizations/cec-az\r\n";
    let file = TempFile::new(text.as_bytes());
    let run = import(&app, "kz-2023", &file, None).await;
    assert_eq!(run.code, Some(0), "{}", run.stderr);
    assert!(
        run.stderr.contains("ignoring column(s) `notes`"),
        "{}",
        run.stderr
    );
    let observers = list_all(&app, KZ).await;
    assert_eq!(documents(&observers), ["A0000001", "A0000002"]);
    assert!(
        observers
            .iter()
            .any(|o| o.family_name == "王" && o.organization == "organizations/cec-az")
    );
}

#[sqlx::test]
async fn a_file_or_service_that_cannot_be_used_stops_the_import_before_anything_is_sent(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;

    let header = HEADER.replace(",travel_document_number", "");
    let row: Vec<String> = person(1)
        .into_iter()
        .enumerate()
        .filter(|(i, _)| *i != 7)
        .map(|(_, v)| v)
        .collect();
    let missing = TempFile::new(&csv_file(&header, &[row]));
    let run = import(&app, KZ, &missing, None).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("lacks the required column(s) travel_document_number"),
        "{}",
        run.stderr
    );

    let mut latin1 = csv_file(HEADER, &[person(1), person(2)]);
    latin1.extend_from_slice(b",Jos\xe9,Garc\xeda,ES,sco,,,E1,,,,\n");
    let run = import(&app, KZ, &TempFile::new(&latin1), None).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("not UTF-8") && run.stderr.contains("line(s) 4"),
        "{}",
        run.stderr
    );

    let good = TempFile::new(&csv_file(HEADER, &[person(1)]));
    let run = import(&app, "elections/nowhere", &good, None).await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr.contains("elections/nowhere does not exist"),
        "{}",
        run.stderr
    );

    let run = run_import_of(&app, "/nonexistent/observers.csv").await;
    assert_eq!(run.code, Some(2), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot read /nonexistent/observers.csv"),
        "{}",
        run.stderr
    );
    assert_eq!(app.count("observers").await, 0);

    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let unreachable = tokio::process::Command::new(env!("CARGO_BIN_EXE_observer-registry"))
        .args(["import-observers", "--election", KZ, good.path()])
        .args(["--server", &format!("http://{closed}")])
        .output()
        .await
        .unwrap();
    assert_eq!(unreachable.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unreachable.stderr).contains("cannot connect"));
}

async fn run_import_of(app: &TestApp, path: &str) -> Run {
    run(app, &["import-observers", "--election", KZ, path]).await
}

/// An import of 600 people into kz-2023, five rows a batch, through a proxy that cuts the
/// service off for `outage` once the first batch is done.
struct OutageRun {
    app: TestApp,
    file: TempFile,
    proxy: Arc<Proxy>,
    status: ExitStatus,
    log: String,
}

async fn import_through_an_outage(pool: PgPool, extra: &[&str], outage: Duration) -> OutageRun {
    let app = spawn_app(pool).await;
    election_with_delegations(&app, "kz-2023").await;
    let rows: Vec<Vec<String>> = (0..600).map(person).collect();
    let file = TempFile::new(&csv_file(HEADER, &rows));
    let proxy = Arc::new(Proxy::start(app.addr).await);

    let server = format!("http://{}", proxy.addr);
    let mut args = vec!["import-observers", "--election", KZ, "--server", &server];
    args.extend(["--batch-size", "5"]);
    args.extend(extra);
    args.push(file.path());
    let mut running = operator::spawn(&args, &[("RUST_LOG", "warn")]);
    while let Some(line) = running.lines.recv().await {
        if line.starts_with("batch 1/") {
            break;
        }
    }
    proxy.cut();
    let restore = proxy.clone();
    tokio::spawn(async move {
        tokio::time::sleep(outage).await;
        restore.restore();
    });
    let (status, log) = running.finish().await;
    OutageRun {
        app,
        file,
        proxy,
        status,
        log,
    }
}

/// Every observer of kz-2023 is one of the file's 600 people, each once.
async fn assert_each_person_once(app: &TestApp) {
    let mut registered = documents(&list_all(app, KZ).await);
    registered.dedup();
    assert_eq!(registered.len(), 600);
    assert_eq!(app.count("observers").await, 600);
}

#[sqlx::test]
async fn an_import_goes_on_when_the_service_is_unreachable_for_a_moment(pool: PgPool) {
    // The client's retries (5 attempts by default) outlast half a second: calls cut off
    // mid-way are sent again, batches under the same request_id.
    let run = import_through_an_outage(pool, &[], Duration::from_millis(500)).await;
    let log = &run.log;
    assert_eq!(run.status.code(), Some(0), "{log}");
    assert!(
        run.proxy.connections() >= 2,
        "the outage hit the import:\n{log}"
    );
    assert!(
        log.contains(
            "600 rows imported, 0 already present (replayed), 0 rows refused, 0 of 120 batches refused"
        ),
        "{log}"
    );
    assert_each_person_once(&run.app).await;
}

#[sqlx::test]
async fn without_retries_an_outage_stops_the_import_and_running_it_again_completes_it(
    pool: PgPool,
) {
    // One attempt per call: the command has no retries of its own for an outage.
    let run = import_through_an_outage(pool, &["--retries", "1"], Duration::from_secs(1)).await;
    let log = &run.log;
    assert_eq!(run.status.code(), Some(2), "{log}");
    assert!(
        log.contains(": stopped: ") && log.contains("run the same command again to go on"),
        "{log}"
    );
    assert!(run.app.count("observers").await < 600, "{log}");

    // The batches imported before the outage are replayed, the rest imported.
    let again = import(&run.app, KZ, &run.file, Some("5")).await;
    assert_eq!(again.code, Some(0), "{}", again.stderr);
    assert!(
        again
            .stderr
            .contains("already present (replayed), 0 rows refused")
            && !again.stderr.contains(" 0 already present"),
        "{}",
        again.stderr
    );
    assert_each_person_once(&run.app).await;
}

// ---- the file format, without a server ----

const REQUIRED_HEADER: &str =
    "given_name,family_name,citizenship,organization,travel_document_number";

#[test]
fn columns_are_found_by_name_in_any_order_after_a_bom() {
    let file = "\u{feff}family_name,notes,given_name,citizenship,organization,travel_document_number,delegation\n\
                Иванова,x,Анна,RU,sco,N1,sco-ru\n\
                ,,,,,,\n\
                \"Al-Sayed\nJr\",y,محمد,EG,organizations/sco,N2,\n";
    let parsed = parse(file.as_bytes()).unwrap();
    assert_eq!(parsed.ignored_columns, ["notes"]);
    let lines: Vec<u64> = parsed.rows.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 4], "the empty row is skipped");
    assert_eq!(parsed.rows[0].get(Column::GivenName), "Анна");
    let observer = parsed.rows[0]
        .to_request("elections/kz-2023")
        .unwrap()
        .observer
        .unwrap();
    assert_eq!(observer.organization, "organizations/sco");
    assert_eq!(observer.delegation, "elections/kz-2023/delegations/sco-ru");
    let second = parsed.rows[1]
        .to_request("elections/kz-2023")
        .unwrap()
        .observer
        .unwrap();
    assert_eq!(
        (second.organization.as_str(), second.delegation.as_str()),
        ("organizations/sco", "")
    );
}

#[test]
fn lines_are_physical_lines_also_after_crlf_and_multi_line_fields() {
    let file = format!(
        "{REQUIRED_HEADER}\r\n\r\nA,B,AZ,sco,N1\r\n\"C\r\nD\",E,AZ,sco,N2\r\nF,G,AZ,sco,N3\r\n"
    );
    let lines: Vec<u64> = parse(file.as_bytes())
        .unwrap()
        .rows
        .iter()
        .map(|r| r.line)
        .collect();
    assert_eq!(lines, [3, 4, 6]);
}

#[test]
fn rows_with_another_number_of_fields_are_each_a_line_error() {
    let file = format!("{REQUIRED_HEADER}\r\nA,B\r\nC,D,AZ,sco,N1\r\nE,F,AZ,sco,N2,extra\r\n");
    let rows = parse(file.as_bytes()).unwrap().rows;
    let problems: Vec<(u64, Option<String>)> =
        rows.iter().map(|r| (r.line, r.malformed.clone())).collect();
    assert_eq!(problems[1], (3, None));
    for (row, (line, fields)) in [(0, (2, 2)), (2, (4, 6))] {
        assert_eq!(problems[row].0, line);
        let problem = problems[row].1.as_deref().unwrap();
        assert!(
            problem.contains(&format!("has {fields} fields where the header row has 5")),
            "{problem}"
        );
        let (column, message) = rows[row].to_request("elections/a").unwrap_err();
        assert_eq!((column, message.as_str()), (None, problem));
    }
}

#[test]
fn missing_columns_and_bad_bytes_are_named() {
    let error = parse(b"given_name,family_name\nA,B\n").unwrap_err();
    assert!(
        error
            .to_string()
            .contains("citizenship, organization, travel_document_number")
    );
    let mut file = format!("{REQUIRED_HEADER}\nA,B,AZ,sco,N1\n\"C\n").into_bytes();
    file.extend_from_slice(b"\xFF\",D,AZ,sco,N2\n");
    assert!(matches!(parse(&file), Err(FileError::InvalidUtf8(lines)) if lines == [4]));
    assert!(matches!(parse(b""), Err(FileError::Empty)));
}

#[test]
fn export_records_re_import_as_the_same_request() {
    let observer = pb::Observer {
        name: "elections/a/observers/0190f3a2-7b7c-7cc2-8f4e-1d2c3b4a5f60".into(),
        given_name: "Бат-Эрдэнэ".into(),
        family_name: "王".into(),
        organization: "organizations/sco".into(),
        delegation: "elections/a/delegations/sco".into(),
        role: pb::ObserverRole::Expert.into(),
        ..Default::default()
    };
    let mut row = Row {
        line: 2,
        values: record(&observer),
        malformed: None,
    };
    assert_eq!(row.get(Column::Role), "EXPERT");
    let again = row.to_request("elections/b").unwrap();
    assert_eq!(again.observer_id, "", "a generated id is not reused");
    let again = again.observer.unwrap();
    assert_eq!(again.delegation, "elections/b/delegations/sco");
    assert_eq!(
        (again.given_name.as_str(), again.role()),
        ("Бат-Эрдэнэ", pb::ObserverRole::Expert)
    );
    row.values[Column::Role as usize] = "BOSS".into();
    assert!(
        row.to_request("elections/b")
            .unwrap_err()
            .1
            .contains("EXPERT")
    );
}

#[test]
fn request_fields_lead_back_to_lines_and_columns() {
    let citizenship = Column::of_entry_field("requests[12].observer.citizenship");
    assert_eq!(citizenship, Some((12, Some(Column::Citizenship))));
    assert_eq!(
        Column::of_entry_field("requests[1].observer_id"),
        Some((1, Some(Column::ObserverId)))
    );
    assert_eq!(Column::of_entry_field("requests[1]"), Some((1, None)));
    assert_eq!(Column::of_entry_field("parent"), None);
    let lines = [2, 3, 9];
    let message = "requests[1].observer is the same person as requests[0].observer.";
    assert_eq!(
        entries_as_lines(message, &lines),
        "line 3 is the same person as line 2."
    );
    assert_eq!(
        entries_as_lines("requests[x] and requests[7]", &lines),
        "requests[x] and line 0"
    );
}
