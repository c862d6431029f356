//! The manual API of the Go and Python guides, with Rust names: spans,
//! tags, errors, the active and root spans, global tags, baggage, times and
//! log correlation, checked on what the agent received.

mod support;

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use ddspan::tracer;
use ddspan::{dd_span, LocalSpanGuard, SpanSpec};
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced;

#[dd_span]
fn handler() {
    // Python's current_span() / current_root_span() from deep inside.
    tracer::current_span()
        .unwrap()
        .set_tag("handler.step", "parse");
    let root = tracer::current_root_span().unwrap();
    root.set_tag("http.route", "/users/:id");
    root.set_resource("GET /users/:id");
}

#[test]
fn spans_tags_errors_and_handles() {
    let traced = traced();
    tracer::set_global_tag("deployment", "blue");
    {
        let request = tracer::span("http.request")
            .resource("GET")
            .span_type("web")
            .tag("component", "manual")
            .measured()
            .start();
        let _entered = request.enter();
        handler();
        static LOCAL: SpanSpec = SpanSpec::new("local.step");
        let local = LocalSpanGuard::start(&LOCAL);
        tracer::current_span()
            .unwrap()
            .set_error(&std::io::Error::other("timeout"));
        drop(local);
        let flagged = tracer::start_span("flagged");
        flagged.set_error_flag(true);
        flagged.finish();
        flagged.finish(); // harmless
        let earlier = SystemTime::now() - Duration::from_secs(2);
        let timed = tracer::span("backdated").start_time(earlier).start();
        timed.finish_at(earlier + Duration::from_millis(500));
        let root = tracer::span("unrelated").child_of(None).start();
        drop(root);
    }
    let spans = flatten(traced.collect(6));
    let request = span_by_name(&spans, "http.request");
    assert_eq!(
        request["resource"], "GET /users/:id",
        "set through current_root_span"
    );
    assert_eq!(meta(request, "http.route"), Some("/users/:id"));
    assert_eq!(metric(request, "_dd.measured"), Some(1.0));
    assert_eq!(request["type"], "web");
    assert_eq!(
        meta(span_by_name(&spans, "handler"), "handler.step"),
        Some("parse")
    );
    let local = span_by_name(&spans, "local.step");
    assert_eq!(local["error"], 1);
    assert_eq!(meta(local, "error.message"), Some("timeout"));
    assert_eq!(span_by_name(&spans, "flagged")["error"], 1);
    let backdated = span_by_name(&spans, "backdated");
    assert_eq!(backdated["duration"], 500_000_000);
    let unrelated = span_by_name(&spans, "unrelated");
    assert_eq!(unrelated["parent_id"], 0);
    assert_ne!(unrelated["trace_id"], request["trace_id"]);
    for span in &spans {
        assert_eq!(
            meta(span, "deployment"),
            Some("blue"),
            "global tag on {}",
            span["name"]
        );
    }
    traced.agent.assert_no_check_failures();
}

#[test]
fn log_correlation_and_baggage() {
    let traced = traced();
    let span = tracer::span("job").service("worker").start();
    let context = span.context().unwrap();
    let line = span.log_context().unwrap().to_string();
    assert_eq!(
        line,
        format!(
            "dd.service=worker dd.env=test dd.version=0.0.1 dd.trace_id=\"{:032x}\" dd.span_id=\"{}\"",
            context.trace_id(),
            context.span_id()
        )
    );
    {
        let _entered = span.enter();
        assert_eq!(tracer::log_context().unwrap().to_string(), line);
    }
    span.set_baggage_item("user.id", "42");
    assert_eq!(span.baggage_item("user.id").as_deref(), Some("42"));
    let mut headers: HashMap<String, String> = HashMap::new();
    tracer::inject(&span.context().unwrap(), &mut headers);
    assert_eq!(
        headers.get("baggage").map(String::as_str),
        Some("user.id=42")
    );
    let downstream = tracer::extract(&headers).unwrap();
    assert_eq!(
        downstream.baggage(),
        &[("user.id".to_owned(), "42".to_owned())]
    );
    span.finish();
    traced.collect(1);
}

#[test]
fn child_of_takes_contexts_options_and_headers() {
    let traced = traced();
    let parent = tracer::start_span("parent");
    let context = parent.context().unwrap();
    let by_ref = tracer::span("by.ref").child_of(&context).start();
    let by_value = tracer::span("by.value").child_of(context.clone()).start();
    let mut headers: HashMap<String, String> = HashMap::new();
    tracer::inject(&context, &mut headers);
    let from_headers = tracer::span("from.headers").child_of(&headers).start();
    let root = tracer::span("root")
        .child_of(None::<ddspan::SpanContext>)
        .start();
    for span in [by_ref, by_value, from_headers, root] {
        span.finish();
    }
    parent.finish();
    let spans = flatten(traced.collect(5));
    let parent_id = span_by_name(&spans, "parent")["span_id"].clone();
    for name in ["by.ref", "by.value", "from.headers"] {
        assert_eq!(span_by_name(&spans, name)["parent_id"], parent_id, "{name}");
    }
    assert_eq!(span_by_name(&spans, "root")["parent_id"], 0);
}

#[test]
fn baggage_alone_starts_a_new_trace_that_carries_it() {
    let traced = traced();
    let headers: HashMap<String, String> =
        HashMap::from([("baggage".to_owned(), "user.id=42,tenant=acme".to_owned())]);
    let context = tracer::extract(&headers).expect("a context of baggage alone");
    assert!(context.is_baggage_only());
    assert_eq!(context.trace_id(), 0);
    let mut downstream: HashMap<String, String> = HashMap::new();
    {
        let server = tracer::span("baggage.server").child_of(context).start();
        assert_eq!(server.baggage_item("tenant").as_deref(), Some("acme"));
        tracer::inject(&server.context().unwrap(), &mut downstream);
    }
    let spans = flatten(traced.collect(1));
    let server = span_by_name(&spans, "baggage.server");
    assert_eq!(server["parent_id"], 0, "a new root");
    assert_ne!(server["trace_id"], 0);
    assert_eq!(
        downstream["x-datadog-trace-id"],
        server["trace_id"].to_string(),
        "the new trace travels on"
    );
    assert_eq!(downstream["baggage"], "user.id=42,tenant=acme");

    // A baggage-only context injects its baggage and nothing else.
    let mut forwarded: HashMap<String, String> = HashMap::new();
    tracer::inject(&tracer::extract(&headers).unwrap(), &mut forwarded);
    assert_eq!(forwarded.keys().collect::<Vec<_>>(), ["baggage"]);
}
