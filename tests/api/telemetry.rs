//! Telemetry as an operator and a partner see it: the server's spans, exported over OTLP to
//! an in-process collector, join the partner's trace and are named after the RPC; the
//! per-call log line names the trace, the agency and the whole call's latency.

use std::time::{Duration, Instant};

use crate::common::*;
use crate::operations::{start_binary_logging, start_binary_with};
use observer_registry::pb::v1 as pb;
use prost::Message;
use sqlx::PgPool;
use tonic::transport::Channel;

/// A partner's trace: trace id, and the id of the partner's span that made the call.
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN_ID: &str = "00f067aa0ba902b7";

fn traceparent() -> String {
    format!("00-{TRACE_ID}-{PARENT_SPAN_ID}-01")
}

/// A stand-in OTLP collector: keeps the bodies of the trace exports it receives.
#[derive(Clone, Default)]
struct Collector(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl tonic::server::NamedService for Collector {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tower::Service<http::Request<tonic::body::Body>> for Collector {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Self::Response, Self::Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let received = self.0.clone();
        Box::pin(async move {
            let body = axum::body::to_bytes(axum::body::Body::new(request.into_body()), 1 << 24)
                .await
                .unwrap_or_default();
            received.lock().unwrap().extend_from_slice(&body);
            // An empty ExportTraceServiceResponse.
            Ok(tonic::Status::ok("").into_http())
        })
    }
}

impl Collector {
    /// Starts the collector on a free port and returns its endpoint.
    async fn start(&self) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(self.clone())
                .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
        );
        endpoint
    }

    /// Every export received: the gRPC messages (5-byte frame header each), decoded.
    fn exports(&self) -> Vec<otlp::ExportTraceServiceRequest> {
        let bytes = self.0.lock().unwrap().clone();
        let mut rest = &bytes[..];
        let mut exports = Vec::new();
        while rest.len() >= 5 {
            assert_eq!(rest[0], 0, "compressed export");
            let length = u32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]) as usize;
            exports.push(otlp::ExportTraceServiceRequest::decode(&rest[5..5 + length]).unwrap());
            rest = &rest[5 + length..];
        }
        exports
    }
}

/// The few OTLP messages and fields the tests read (opentelemetry-proto's numbering).
mod otlp {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportTraceServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_spans: Vec<ResourceSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceSpans {
        #[prost(message, optional, tag = "1")]
        pub resource: Option<Resource>,
        #[prost(message, repeated, tag = "2")]
        pub scope_spans: Vec<ScopeSpans>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Resource {
        #[prost(message, repeated, tag = "1")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeSpans {
        #[prost(message, repeated, tag = "2")]
        pub spans: Vec<Span>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Span {
        #[prost(bytes = "vec", tag = "1")]
        pub trace_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub span_id: Vec<u8>,
        #[prost(bytes = "vec", tag = "4")]
        pub parent_span_id: Vec<u8>,
        #[prost(string, tag = "5")]
        pub name: String,
        #[prost(int32, tag = "6")]
        pub kind: i32,
        #[prost(message, repeated, tag = "9")]
        pub attributes: Vec<KeyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, optional, tag = "1")]
        pub string_value: Option<String>,
        #[prost(int64, optional, tag = "3")]
        pub int_value: Option<i64>,
    }

    /// `key`'s value, as text whether it was sent as a string or an integer.
    pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
        let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
        value
            .string_value
            .clone()
            .or_else(|| value.int_value.map(|n| n.to_string()))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn database_url(pool: &PgPool) -> String {
    let options = pool.connect_options();
    format!(
        "postgres://postgres:postgres@127.0.0.1:{}/{}",
        options.get_port(),
        options.get_database().unwrap()
    )
}

/// Stops the binary with SIGTERM, which flushes the last batch of spans.
async fn stop(mut child: tokio::process::Child) {
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success());
}

#[sqlx::test]
async fn a_partners_trace_id_is_on_the_servers_exported_span_named_after_the_rpc(pool: PgPool) {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let (child, address) = start_binary_with(
        &database_url(&pool),
        &[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint),
            ("OTEL_SERVICE_NAME", "registry-under-test"),
            ("OTEL_RESOURCE_ATTRIBUTES", "deployment.environment=test"),
        ],
    )
    .await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::GetElectionRequest {
        name: "elections/traced".into(),
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent().parse().unwrap());
    request
        .metadata_mut()
        .insert("tracestate", "partner=1".parse().unwrap());
    let status = pb::election_service_client::ElectionServiceClient::new(channel)
        .get_election(request)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    stop(child).await;

    let exports = collector.exports();
    let (resource, span) = exports
        .iter()
        .flat_map(|export| &export.resource_spans)
        .flat_map(|rs| rs.scope_spans.iter().map(move |ss| (&rs.resource, ss)))
        .flat_map(|(resource, ss)| ss.spans.iter().map(move |span| (resource, span)))
        .find(|(_, span)| span.name == "observer_registry.v1.ElectionService/GetElection")
        .unwrap_or_else(|| panic!("no span named after the RPC among {exports:?}"));
    assert_eq!(hex(&span.trace_id), TRACE_ID, "not in the partner's trace");
    assert_eq!(hex(&span.parent_span_id), PARENT_SPAN_ID);
    assert_eq!(span.kind, 2, "a server span");
    let attribute = |key| otlp::attribute(&span.attributes, key);
    assert_eq!(attribute("rpc.system").as_deref(), Some("grpc"));
    assert_eq!(
        attribute("rpc.service").as_deref(),
        Some("observer_registry.v1.ElectionService")
    );
    assert_eq!(attribute("rpc.method").as_deref(), Some("GetElection"));
    assert_eq!(attribute("rpc.grpc.status_code").as_deref(), Some("5"));
    let resource = &resource.as_ref().unwrap().attributes;
    assert_eq!(
        otlp::attribute(resource, "service.name").as_deref(),
        Some("registry-under-test")
    );
    assert_eq!(
        otlp::attribute(resource, "deployment.environment").as_deref(),
        Some("test")
    );
}

/// A partner program as the check builds one: its own OpenTelemetry tracer under
/// `tracing`, and the shipped client with nothing set by hand. Its span's trace goes on.
#[sqlx::test]
async fn the_shipped_client_continues_the_partners_tracing_span_in_the_service(pool: PgPool) {
    use observer_registry::client::{Client, ClientOptions};
    use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
    use tracing::Instrument;
    use tracing_opentelemetry::OpenTelemetrySpanExt;
    use tracing_subscriber::layer::SubscriberExt;

    let collector = Collector::default();
    let endpoint = collector.start().await;
    let (child, address) = start_binary_with(
        &database_url(&pool),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    )
    .await;

    // This test's runtime has one thread, so the partner's subscriber holds for every poll.
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(provider.tracer("partner")));
    let _partner = tracing::subscriber::set_default(subscriber);
    let client = Client::connect(format!("http://{address}"), ClientOptions::default())
        .await
        .unwrap();
    let span = tracing::info_span!("partner checks an election");
    let partner = span.context().span().span_context().clone();
    assert!(partner.is_valid());
    let status = client
        .elections()
        .get_election(pb::GetElectionRequest {
            name: "elections/traced".into(),
        })
        .instrument(span)
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    stop(child).await;

    let exports = collector.exports();
    let span = exports
        .iter()
        .flat_map(|export| &export.resource_spans)
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .find(|span| span.name == "observer_registry.v1.ElectionService/GetElection")
        .unwrap_or_else(|| panic!("no span named after the RPC among {exports:?}"));
    assert_eq!(hex(&span.trace_id), partner.trace_id().to_string());
    assert_eq!(hex(&span.parent_span_id), partner.span_id().to_string());
}

#[sqlx::test]
async fn without_otel_service_name_the_exported_service_is_observer_registry(pool: PgPool) {
    let collector = Collector::default();
    let endpoint = collector.start().await;
    let (child, address) = start_binary_with(
        &database_url(&pool),
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
    )
    .await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    pb::election_service_client::ElectionServiceClient::new(channel)
        .get_election(pb::GetElectionRequest {
            name: "elections/traced".into(),
        })
        .await
        .unwrap_err();
    stop(child).await;
    let exports = collector.exports();
    let resource = exports
        .iter()
        .flat_map(|export| &export.resource_spans)
        .find_map(|rs| rs.resource.as_ref())
        .expect("no export reached the collector");
    assert_eq!(
        otlp::attribute(&resource.attributes, "service.name").as_deref(),
        Some("observer-registry")
    );
}

/// The update waits on a row lock the test holds; its log line must count that wait, as the
/// whole call, and name the partner's trace and the calling agency.
#[sqlx::test]
async fn the_per_call_log_line_names_trace_and_agency_and_times_the_whole_call(pool: PgPool) {
    let (child, address, mut logs) = start_binary_logging(&database_url(&pool), &[]).await;
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut elections = pb::election_service_client::ElectionServiceClient::new(channel);
    elections
        .create_election(pb::CreateElectionRequest {
            election_id: "kz-2023".into(),
            election: Some(kz_election("Early parliamentary election")),
            request_id: String::new(),
        })
        .await
        .unwrap();

    let mut lock = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM elections WHERE id = 'kz-2023' FOR UPDATE")
        .execute(&mut *lock)
        .await
        .unwrap();
    let mut request = tonic::Request::new(pb::UpdateElectionRequest {
        election: Some(pb::Election {
            name: "elections/kz-2023".into(),
            description: "written under a lock".into(),
            ..Default::default()
        }),
        update_mask: Some(prost_types::FieldMask {
            paths: vec!["description".into()],
        }),
    });
    request
        .metadata_mut()
        .insert("traceparent", traceparent().parse().unwrap());
    let update = tokio::spawn(async move { elections.update_election(request).await });
    wait_until(
        Duration::from_secs(10),
        "the update to wait for the lock",
        || async {
            let waiting: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'observer-registry' \
             AND wait_event_type = 'Lock'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
            waiting > 0
        },
    )
    .await;
    // A wait long enough to tell the whole call from the time of its response body.
    let held = Instant::now();
    tokio::time::sleep(Duration::from_millis(400)).await;
    let held_ms = held.elapsed().as_secs_f64() * 1000.0;
    lock.commit().await.unwrap();
    update.await.unwrap().unwrap();

    let line = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let log = logs.recv().await.expect("the log ended");
            if log["message"] == "request finished"
                && log["span"]["otel.name"] == "observer_registry.v1.ElectionService/UpdateElection"
            {
                break log;
            }
        }
    })
    .await
    .expect("no log line for the update");
    stop(child).await;
    assert_eq!(line["code"], "OK");
    assert_eq!(line["span"]["trace_id"], TRACE_ID, "{line}");
    assert_eq!(
        line["span"]["span_id"].as_str().map(str::len),
        Some(16),
        "{line}"
    );
    assert_eq!(line["span"]["agency"], "anonymous", "{line}");
    let latency_ms = line["latency_ms"].as_f64().unwrap();
    assert!(
        latency_ms >= held_ms,
        "latency_ms {latency_ms} is less than the {held_ms} ms the call waited: {line}"
    );
}

/// A create whose commit fails (a deferred constraint trigger refuses it at COMMIT) must not
/// have said "election created"; the same create that commits says it once.
#[sqlx::test]
async fn a_success_line_is_written_only_once_the_change_is_committed(pool: PgPool) {
    sqlx::query(
        "CREATE FUNCTION refuse_at_commit() RETURNS trigger LANGUAGE plpgsql AS \
         $$ BEGIN RAISE EXCEPTION 'refused at commit'; END $$",
    )
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query(
        "CREATE CONSTRAINT TRIGGER elections_refused_at_commit AFTER INSERT ON elections \
         DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION refuse_at_commit()",
    )
    .execute(&pool)
    .await
    .unwrap();
    let (app, logs) = spawn_app_logging(pool.clone(), test_options()).await;
    let create = || pb::CreateElectionRequest {
        election_id: "kz-2023".into(),
        election: Some(kz_election("Early parliamentary election")),
        request_id: String::new(),
    };
    let created_lines = || {
        logs.lines()
            .iter()
            .filter(|line| line.contains("election created"))
            .count()
    };

    app.elections().create_election(create()).await.unwrap_err();
    assert_eq!(app.count("elections").await, 0);
    assert_eq!(created_lines(), 0, "{:#?}", logs.lines());

    sqlx::query("DROP TRIGGER elections_refused_at_commit ON elections")
        .execute(&pool)
        .await
        .unwrap();
    app.elections().create_election(create()).await.unwrap();
    assert_eq!(created_lines(), 1, "{:#?}", logs.lines());
}
