//! `Span`, `SpanRef` and `LocalSpanGuard` have one method set: every
//! method is called with the same arguments on each type (a missing or
//! different method fails to compile) and does the same thing, checked on
//! the finished spans.

#[path = "support/memory.rs"]
mod memory;

use std::collections::HashMap;

use ddspan::{tracer, ErrorFields, FinishedSpan, LocalSpanGuard, Span, SpanSpec};

/// Calls every shared method on `$span`; returns its span id.
macro_rules! every_method {
    ($span:expr, $label:literal) => {{
        let span = &$span;
        assert!(span.is_recording());
        let span_id = span.span_id();
        assert_ne!(span_id, 0);
        span.set_tag("string.tag", "text");
        span.set_tag("number.tag", 2);
        span.set_tag("bool.tag", true);
        span.set_resource(concat!($label, ".resource"));
        span.set_baggage_item(concat!($label, ".item"), "carried");
        assert_eq!(
            span.baggage_item(concat!($label, ".item")).as_deref(),
            Some("carried")
        );
        assert_eq!(span.baggage_item("never.set"), None);
        let context = span.context().expect("a recording span has a context");
        assert_eq!(context.span_id(), span_id);
        let mut headers: HashMap<String, String> = HashMap::new();
        tracer::inject(&context, &mut headers);
        assert_eq!(
            headers.get("baggage").map(String::as_str),
            Some(concat!($label, ".item=carried"))
        );
        let fields = span.log_context().expect("a recording span has log fields");
        assert_eq!(fields.span_id, span_id);
        assert_eq!(fields.trace_id, context.trace_id());
        span.set_error(&std::io::Error::other("replaced below"));
        span.record_error(ErrorFields::new("no reply", "Timeout").with_stack("at the gate"));
        span.set_error_flag(false);
        span.set_error_flag(true);
        span_id
    }};
}

/// Calls every shared method on a span that records nothing.
macro_rules! every_method_on_nothing {
    ($span:expr) => {{
        let span = &$span;
        assert!(!span.is_recording());
        assert_eq!(span.span_id(), 0);
        span.set_tag("string.tag", "text");
        span.set_resource("resource");
        span.set_baggage_item("item", "value");
        assert_eq!(span.baggage_item("item"), None);
        assert!(span.context().is_none());
        assert!(span.log_context().is_none());
        span.set_error(&std::io::Error::other("ignored"));
        span.record_error(ErrorFields::new("ignored", "Ignored"));
        span.set_error_flag(true);
    }};
}

fn finished(spans: &[FinishedSpan], span_id: u64) -> &FinishedSpan {
    spans
        .iter()
        .find(|s| s.span_id == span_id)
        .unwrap_or_else(|| panic!("span {span_id} finished: {spans:#?}"))
}

fn assert_every_method_recorded(span: &FinishedSpan, label: &str) {
    assert_eq!(span.resource, format!("{label}.resource"));
    assert_eq!(span.meta["string.tag"], "text");
    assert_eq!(span.metrics["number.tag"], 2.0);
    assert_eq!(span.metrics["bool.tag"], 1.0);
    assert!(span.error);
    assert_eq!(span.meta["error.message"], "no reply");
    assert_eq!(span.meta["error.type"], "Timeout");
    assert_eq!(span.meta["error.stack"], "at the gate");
}

#[test]
fn span_span_ref_and_guard_share_every_method() {
    let (_guard, exporter) = memory::capture("span-methods");
    static GUARD: SpanSpec = SpanSpec::new("guard");
    static UNDER_GUARD: SpanSpec = SpanSpec::new("ref.local");

    let span = tracer::start_span("span");
    let span_id = every_method!(span, "span");
    span.finish();

    let guard = LocalSpanGuard::start(&GUARD);
    let guard_id = every_method!(guard, "guard");
    drop(guard);

    // A handle on a span living in the thread's stack...
    let local = LocalSpanGuard::start(&UNDER_GUARD);
    let local_ref = tracer::current_span().expect("the guard is active");
    let local_ref_id = every_method!(local_ref, "ref.local");
    drop(local);

    // ... and on an entered `Span`.
    let shared = tracer::start_span("ref.shared").entered();
    let shared_ref = tracer::current_span().expect("the span is entered");
    let shared_ref_id = every_method!(shared_ref, "ref.shared");
    drop(shared);

    tracer::flush(std::time::Duration::from_secs(5));
    let spans = exporter.take();
    for (id, label) in [
        (span_id, "span"),
        (guard_id, "guard"),
        (local_ref_id, "ref.local"),
        (shared_ref_id, "ref.shared"),
    ] {
        assert_every_method_recorded(finished(&spans, id), label);
    }
    tracer::stop();
}

#[test]
fn every_method_is_a_no_op_on_a_span_that_records_nothing() {
    let (_guard, _exporter) = memory::capture("span-methods-off");
    every_method_on_nothing!(Span::noop());
    tracer::stop();
    static SPEC: SpanSpec = SpanSpec::new("off");
    every_method_on_nothing!(LocalSpanGuard::start(&SPEC));
    every_method_on_nothing!(tracer::start_span("off"));
    assert!(tracer::current_span().is_none());
}
