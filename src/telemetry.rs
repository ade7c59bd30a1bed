//! Logging and tracing set-up: `tracing` with JSON lines for machines or a readable format
//! for people, OpenTelemetry trace context on every call's span (joined to the caller's W3C
//! `traceparent`), and OTLP trace export when an endpoint is configured.

use std::io::IsTerminal;

use anyhow::Context;
use opentelemetry::propagation::Extractor;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// The service name in exported spans unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES`
/// names it otherwise.
const SERVICE_NAME: &str = "observer-registry";

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line, for log collectors.
    Json,
    /// Human-readable lines, for terminals.
    Pretty,
}

/// Flushes exported spans when dropped at the end of `main`.
#[must_use]
pub struct Telemetry(Option<SdkTracerProvider>);

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(provider) = self.0.take()
            && let Err(error) = provider.shutdown()
        {
            tracing::warn!(%error, "could not flush the last trace spans");
        }
    }
}

/// Installs the global subscriber; `RUST_LOG` overrides the default `info` level. Every span
/// gets OpenTelemetry ids, exported or not, so that log lines can name their trace; with an
/// OTLP endpoint, every call's span is also exported over OTLP/gRPC.
pub fn init(format: LogFormat, otlp_endpoint: Option<&str>) -> anyhow::Result<Telemetry> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    // The call's span (method, agency, trace_id, span_id) goes into each line written inside
    // it, so the lines of one call can be found together and in the partner's trace.
    let logs = match format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .boxed(),
        LogFormat::Pretty => logs.compact().boxed(),
    };
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let provider = tracer_provider(otlp_endpoint)?;
    let traces = tracing_opentelemetry::layer().with_tracer(provider.tracer(SERVICE_NAME));
    tracing_subscriber::registry()
        .with(filter)
        .with(logs)
        .with(traces)
        .init();
    if let Some(endpoint) = otlp_endpoint {
        tracing::info!(endpoint, "exporting traces over OTLP");
    }
    Ok(Telemetry(Some(provider)))
}

/// A tracer provider that exports only when an endpoint is given; without one it still makes
/// trace and span ids for the logs.
fn tracer_provider(otlp_endpoint: Option<&str>) -> anyhow::Result<SdkTracerProvider> {
    let builder = SdkTracerProvider::builder().with_resource(resource());
    let Some(endpoint) = otlp_endpoint else {
        return Ok(builder.build());
    };
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .with_endpoint(endpoint)
        .build()
        .context("cannot set up the OTLP exporter")?;
    Ok(builder.with_batch_exporter(exporter).build())
}

/// The SDK's detectors read `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES`; our name is
/// only the fallback for their `unknown_service`, never an override of the operator's.
fn resource() -> Resource {
    let detected = Resource::builder().build();
    let named = detected
        .get(&opentelemetry::Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if named {
        detected
    } else {
        Resource::builder().with_service_name(SERVICE_NAME).build()
    }
}

/// Makes `span` a child of the trace the caller sent in `traceparent`/`tracestate` (a new
/// trace without them) and records its trace and span ids as the fields `trace_id` and
/// `span_id`, which `span` must declare.
pub fn join_trace(span: &Span, headers: &http::HeaderMap) {
    let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&HeaderExtractor(headers))
    });
    // Fails only when the span is off or no OpenTelemetry layer is installed (tests that
    // run the server in process): then there are no ids to record.
    if span.set_parent(parent).is_err() {
        return;
    }
    let context = span.context();
    let otel_span = context.span();
    let ids = otel_span.span_context();
    if ids.is_valid() {
        span.record("trace_id", tracing::field::display(ids.trace_id()));
        span.record("span_id", tracing::field::display(ids.span_id()));
    }
}

/// Reads W3C trace context from gRPC metadata (HTTP/2 headers).
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
