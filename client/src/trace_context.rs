//! The W3C trace context of the caller's current span, sent with each call so that the
//! partner's trace continues in the service's spans.

use http::HeaderMap;
#[cfg(feature = "opentelemetry")]
use http::header::HeaderValue;
#[cfg(feature = "opentelemetry")]
use opentelemetry::trace::TraceContextExt;

/// Adds `traceparent` (and `tracestate`) for the current span, unless the caller set its own.
#[cfg(feature = "opentelemetry")]
pub(crate) fn inject(headers: &mut HeaderMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if headers.contains_key("traceparent") {
        return;
    }
    // A `tracing` span under tracing-opentelemetry first; a program that uses OpenTelemetry's
    // API directly has its context attached instead.
    let mut context = tracing::Span::current().context();
    if !context.span().span_context().is_valid() {
        context = opentelemetry::Context::current();
    }
    let span = context.span();
    let span_context = span.span_context();
    if !span_context.is_valid() {
        return;
    }
    let traceparent = format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    );
    if let Ok(value) = HeaderValue::from_str(&traceparent) {
        headers.insert("traceparent", value);
    }
    let state = span_context.trace_state().header();
    if !state.is_empty()
        && let Ok(value) = HeaderValue::from_str(&state)
    {
        headers.insert("tracestate", value);
    }
}

/// Without the `opentelemetry` feature there is no current span to send.
#[cfg(not(feature = "opentelemetry"))]
pub(crate) fn inject(_headers: &mut HeaderMap) {}

#[cfg(all(test, feature = "opentelemetry"))]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanContext, SpanId, TraceFlags, TraceId, TraceState};

    fn remote_context() -> opentelemetry::Context {
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::from_key_value([("vendor", "x")]).unwrap(),
        );
        opentelemetry::Context::new().with_remote_span_context(span_context)
    }

    #[test]
    fn the_current_opentelemetry_context_is_sent() {
        let _attached = remote_context().attach();
        let mut headers = HeaderMap::new();
        inject(&mut headers);
        assert_eq!(
            headers["traceparent"],
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(headers["tracestate"], "vendor=x");
    }

    #[test]
    fn a_callers_own_traceparent_is_kept_and_no_context_sends_none() {
        let mut headers = HeaderMap::new();
        inject(&mut headers);
        assert!(!headers.contains_key("traceparent"));

        let _attached = remote_context().attach();
        let own = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
        headers.insert("traceparent", HeaderValue::from_static(own));
        inject(&mut headers);
        assert_eq!(headers["traceparent"], own);
    }
}
