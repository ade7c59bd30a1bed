//! CreateObserver calls made at the same time are registered together, in shared
//! transactions, yet each call gets its own answer: its observer, its precise refusal, or the
//! first answer to its request id.

use crate::common::{self, registry};

use common::*;
use observer_registry::pb::v1 as pb;
use registry::*;
use sqlx::PgPool;
use tonic::Code;

/// Sends every request at once, each on a client of its own; the answers in order.
async fn all_at_once(
    app: &TestApp,
    requests: Vec<pb::CreateObserverRequest>,
) -> Vec<Result<pb::Observer, tonic::Status>> {
    let calls = requests.into_iter().map(|request| {
        let mut client = app.observers();
        tokio::spawn(async move {
            client
                .create_observer(request)
                .await
                .map(|r| r.into_inner())
        })
    });
    futures::future::join_all(calls)
        .await
        .into_iter()
        .map(|call| call.unwrap())
        .collect()
}

fn keyed(id: &str, observer: pb::Observer) -> pb::CreateObserverRequest {
    pb::CreateObserverRequest {
        request_id: new_request_id(),
        ..create_observer_request(KZ, id, observer)
    }
}

async fn create_events(app: &TestApp) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM audit_events WHERE method LIKE '%/CreateObserver'")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

#[sqlx::test]
async fn creates_made_together_each_get_their_own_observer_refusal_or_replay(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    let registered = observer("Leyla", "Huseynova", "AZ", "cec-az", "C01234567");
    create_observer(&app, KZ, "huseynova", registered.clone()).await;

    // 32 valid registrations of different people, among refusals of every kind the
    // registration rules know: 48 calls at once, within the test server's 64.
    let mut requests = Vec::new();
    let mut expected: Vec<Option<(Code, &str)>> = Vec::new();
    for i in 0..32 {
        let person = observer(
            "Given",
            &format!("Family{i}"),
            "DE",
            "cec-az",
            &format!("X{i:07}"),
        );
        requests.push(keyed("", person));
        expected.push(None);
        match i % 8 {
            0 => {
                let citizen = observer(
                    "Nurlan",
                    &format!("Abdirov{i}"),
                    "KZ",
                    "sco",
                    &format!("N{i:07}"),
                );
                requests.push(keyed("", citizen));
                expected.push(Some((Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN")));
            }
            3 => {
                let duplicate = pb::Observer {
                    given_name: format!("Leila{i}"),
                    ..registered.clone()
                };
                requests.push(keyed("", duplicate));
                expected.push(Some((Code::AlreadyExists, "DUPLICATE_OBSERVER")));
            }
            5 => {
                let stranger = pb::Observer {
                    organization: "organizations/nowhere".into(),
                    ..observer(
                        "Ana",
                        &format!("Popescu{i}"),
                        "RO",
                        "cec-az",
                        &format!("R{i:07}"),
                    )
                };
                requests.push(keyed("", stranger));
                expected.push(Some((Code::InvalidArgument, "INVALID_ARGUMENT")));
            }
            6 => {
                requests.push(keyed(
                    "huseynova",
                    observer(
                        "Ion",
                        &format!("Rusu{i}"),
                        "MD",
                        "cec-az",
                        &format!("B{i:07}"),
                    ),
                ));
                expected.push(Some((Code::AlreadyExists, "ALREADY_EXISTS")));
            }
            _ => {}
        }
    }
    let answers = all_at_once(&app, requests.clone()).await;
    let mut made = Vec::new();
    for ((request, answer), expected) in requests.iter().zip(&answers).zip(&expected) {
        match (answer, expected) {
            (Ok(observer), None) => {
                let asked = request.observer.as_ref().unwrap();
                assert_eq!(observer.family_name, asked.family_name);
                assert_eq!(
                    observer.travel_document_number,
                    asked.travel_document_number
                );
                made.push(observer.clone());
            }
            (Err(error), Some((code, reason))) => assert_error(error, *code, reason),
            (answer, expected) => panic!("{answer:?}, expected {expected:?}"),
        }
    }
    assert_eq!(made.len(), 32);
    assert_eq!(app.count("observers").await, 33);
    assert_eq!(create_events(&app).await, 33);
    let metrics = app.metrics_text();
    assert!(
        sample(&metrics, "observer_registry_registrations_together_total") >= 2.0,
        "no calls were registered together:\n{metrics}"
    );

    // Each observer is stored as answered, and each request id answers its first observer
    // again, refusals aside: they were not remembered.
    for observer in &made {
        assert_eq!(&get_observer(&app, &observer.name).await, observer);
    }
    let again = all_at_once(&app, requests.clone()).await;
    for ((first, again), expected) in answers.iter().zip(&again).zip(&expected) {
        match (first, again, expected) {
            (Ok(first), Ok(again), None) => assert_eq!(first, again),
            (Err(_), Err(error), Some((code, reason))) => assert_error(error, *code, reason),
            (first, again, _) => panic!("{first:?} then {again:?}"),
        }
    }
    assert_eq!(app.count("observers").await, 33);
    assert_eq!(create_events(&app).await, 33);
}

#[sqlx::test]
async fn creates_that_would_refuse_one_another_register_one_and_refuse_the_rest(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    // One person under twenty ids, and twenty people under one id, at once.
    let person = observer("Leyla", "Huseynova", "AZ", "cec-az", "C01234567");
    let mut requests: Vec<_> = (0..20)
        .map(|i| keyed(&format!("huseynova-{i}"), person.clone()))
        .collect();
    requests.extend((0..20).map(|i| {
        keyed(
            "rusu",
            observer(
                "Ion",
                &format!("Rusu{i}"),
                "MD",
                "cec-az",
                &format!("B{i:07}"),
            ),
        )
    }));
    let answers = all_at_once(&app, requests).await;
    let (people, ids) = answers.split_at(20);
    let one_of = |answers: &[Result<pb::Observer, tonic::Status>], reason: &str| {
        let made: Vec<_> = answers.iter().filter_map(|a| a.as_ref().ok()).collect();
        assert_eq!(made.len(), 1, "{answers:?}");
        for error in answers.iter().filter_map(|a| a.as_ref().err()) {
            assert_error(error, Code::AlreadyExists, reason);
        }
        made[0].clone()
    };
    let huseynova = one_of(people, "DUPLICATE_OBSERVER");
    let rusu = one_of(ids, "ALREADY_EXISTS");
    assert_eq!(app.count("observers").await, 2);
    assert_eq!(create_events(&app).await, 2);
    assert_eq!(get_observer(&app, &huseynova.name).await, huseynova);
    assert_eq!(get_observer(&app, &rusu.name).await, rusu);
}

#[sqlx::test]
async fn a_registration_refused_only_when_written_refuses_its_own_call_alone(pool: PgPool) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    // A rule the service does not check before writing: a batch holding such a registration
    // fails as a whole, and each of its calls is then made alone.
    sqlx::raw_sql(
        "CREATE FUNCTION refuse_mallory() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
           IF NEW.family_name = 'Mallory' THEN RAISE EXCEPTION 'refused' USING \
             ERRCODE = 'check_violation', CONSTRAINT = 'observers_not_host_country_citizen'; \
           END IF; RETURN NEW; END $$; \
         CREATE TRIGGER refuse_mallory BEFORE INSERT ON observers \
           FOR EACH ROW EXECUTE FUNCTION refuse_mallory();",
    )
    .execute(&app.pool)
    .await
    .unwrap();
    let requests: Vec<_> = (0..40)
        .map(|i| {
            let family = if i % 10 == 7 {
                "Mallory".to_owned()
            } else {
                format!("Family{i}")
            };
            keyed(
                "",
                observer("Eve", &family, "DE", "cec-az", &format!("X{i:07}")),
            )
        })
        .collect();
    let answers = all_at_once(&app, requests.clone()).await;
    for (request, answer) in requests.iter().zip(&answers) {
        let asked = request.observer.as_ref().unwrap();
        match answer {
            Ok(observer) => assert_eq!(observer.family_name, asked.family_name),
            Err(error) => {
                assert_eq!(asked.family_name, "Mallory");
                assert_error(error, Code::FailedPrecondition, "HOST_COUNTRY_CITIZEN");
            }
        }
    }
    assert_eq!(answers.iter().filter(|a| a.is_err()).count(), 4);
    assert_eq!(app.count("observers").await, 36);
    assert_eq!(create_events(&app).await, 36);
}

#[sqlx::test]
async fn one_request_id_sent_with_different_requests_at_once_registers_one_and_disturbs_no_other_call(
    pool: PgPool,
) {
    let app = spawn_app(pool).await;
    open_election(&app, "kz-2023").await;
    // A caller reusing one request id for ten different people, among twenty honest calls.
    let reused = new_request_id();
    let mut requests: Vec<_> = (0..10)
        .map(|i| pb::CreateObserverRequest {
            request_id: reused.clone(),
            ..create_observer_request(
                KZ,
                "",
                observer(
                    "Eve",
                    &format!("Reuse{i}"),
                    "DE",
                    "cec-az",
                    &format!("E{i:07}"),
                ),
            )
        })
        .collect();
    requests.extend((0..20).map(|i| {
        keyed(
            "",
            observer(
                "Ana",
                &format!("Honest{i}"),
                "RO",
                "cec-az",
                &format!("H{i:07}"),
            ),
        )
    }));
    let answers = all_at_once(&app, requests).await;
    let (reusing, honest) = answers.split_at(10);
    assert!(honest.iter().all(Result::is_ok), "{honest:?}");
    let made: Vec<_> = reusing.iter().filter_map(|a| a.as_ref().ok()).collect();
    assert_eq!(made.len(), 1, "{reusing:?}");
    for error in reusing.iter().filter_map(|a| a.as_ref().err()) {
        assert_error(error, Code::InvalidArgument, "INVALID_ARGUMENT");
    }
    assert_eq!(app.count("observers").await, 21);
    assert_eq!(create_events(&app).await, 21);
}

#[sqlx::test]
async fn callers_without_a_token_or_the_registrar_role_never_reach_the_registrations(pool: PgPool) {
    use common::agencies::{Agencies, READER};
    let setup = spawn_app(pool.clone()).await;
    open_election(&setup, "kz-2023").await;
    let agencies = Agencies::standard("coalesced-weak");
    let app = spawn_app_with_options(pool.clone(), pool, agencies.options()).await;
    let person = |i: usize| {
        keyed(
            "",
            observer(
                "Eve",
                &format!("Weak{i}"),
                "DE",
                "cec-az",
                &format!("W{i:07}"),
            ),
        )
    };
    let anonymous = client_without_retries(&app, None);
    let reader = agencies.client(&app, READER);
    let calls = (0..40).map(|i| {
        let client = if i % 2 == 0 {
            anonymous.clone()
        } else {
            reader.clone()
        };
        let request = person(i);
        tokio::spawn(async move { client.observers().create_observer(request).await })
    });
    for (i, answer) in futures::future::join_all(calls)
        .await
        .into_iter()
        .enumerate()
    {
        let error = answer.unwrap().unwrap_err();
        match i % 2 {
            0 => assert_error(&error, Code::Unauthenticated, "UNAUTHENTICATED"),
            _ => assert_eq!(error.code(), Code::PermissionDenied, "{error:?}"),
        }
    }
    assert_eq!(app.count("observers").await, 0);
    assert_eq!(create_events(&app).await, 0);
    let metrics = app.metrics_text();
    assert_eq!(
        sample(&metrics, "observer_registry_registrations_together_total"),
        0.0
    );
}
