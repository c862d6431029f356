//! Traces begun by a local span (`#[dd_span]` on a sync function, or a
//! `LocalSpanGuard`) stay in their thread until something needs to share
//! them: a `Span` started under them, their context taken (for injection,
//! log correlation or another thread), or their root looked up. These tests
//! take each of those ways out and check, on what the agent received, that
//! the trace stays one trace with the right parents, sampling fields and
//! trace-level tags.

mod support;

use std::time::Duration;

use ddspan::tracer;
use ddspan::{dd_span, LocalSpanGuard, SpanSpec};
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::{traced, traced_with};

static ROOT: SpanSpec = SpanSpec::new("local.root");
static CHILD: SpanSpec = SpanSpec::new("local.child");

fn id(span: &Value, key: &str) -> u64 {
    span[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {span}"))
}

/// Every span of `spans` has `root`'s trace id (and its `_dd.p.tid` high
/// half, on the chunk's first span).
fn one_trace(spans: &[Value]) -> u64 {
    let trace_id = id(&spans[0], "trace_id");
    for span in spans {
        assert_eq!(id(span, "trace_id"), trace_id, "{span}");
    }
    trace_id
}

#[test]
fn a_trace_that_stays_on_its_thread_arrives_whole() {
    let traced = traced();
    {
        let _root = LocalSpanGuard::start(&ROOT);
        for _ in 0..3 {
            let _child = LocalSpanGuard::start(&CHILD);
        }
    }
    let traces = traced.collect(4);
    assert_eq!(traces.len(), 1, "{traces:?}");
    let spans = &traces[0];
    one_trace(spans);
    let root = span_by_name(spans, "local.root");
    assert_eq!(id(root, "parent_id"), 0);
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(1.0));
    assert_eq!(metric(root, "_dd.top_level"), Some(1.0));
    assert!(
        meta(root, "_dd.p.tid").is_some(),
        "128-bit trace id: {root}"
    );
    assert_eq!(meta(root, "_dd.p.dm"), Some("-0"));
    for child in spans.iter().filter(|s| s["name"] == "local.child") {
        assert_eq!(id(child, "parent_id"), id(root, "span_id"));
        assert_eq!(metric(child, "_dd.top_level"), None, "{child}");
    }
    traced.agent.assert_no_check_failures();
}

#[test]
fn a_span_started_under_a_local_root_may_outlive_it_on_another_thread() {
    let traced = traced();
    let handle = {
        let _root = LocalSpanGuard::start(&ROOT);
        let background = tracer::span("background.job").start();
        let _child = LocalSpanGuard::start(&CHILD);
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            let _entered = background.enter();
            let _inner = LocalSpanGuard::start(&CHILD);
        })
    };
    // The root has finished; the trace waits for the background span.
    handle.join().unwrap();
    let spans = flatten(traced.collect(4));
    assert_eq!(spans.len(), 4, "{spans:?}");
    one_trace(&spans);
    let root = span_by_name(&spans, "local.root");
    let background = span_by_name(&spans, "background.job");
    assert_eq!(id(background, "parent_id"), id(root, "span_id"));
    let background_children = spans
        .iter()
        .filter(|s| id(s, "parent_id") == id(background, "span_id"))
        .count();
    assert_eq!(
        background_children, 1,
        "the span entered on the other thread"
    );
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(1.0));
}

#[dd_span]
fn handle_request() -> String {
    // What a client call does: take the active context and inject it.
    let context = tracer::active_context().expect("an active span");
    let mut headers: Vec<(String, String)> = Vec::new();
    tracer::inject(&context, &mut headers);
    headers
        .iter()
        .find(|(k, _)| k == "x-datadog-trace-id")
        .map(|(_, v)| v.clone())
        .expect("x-datadog-trace-id injected")
}

#[test]
fn the_context_of_a_local_trace_carries_its_trace_id_and_joins_it_from_elsewhere() {
    let traced = traced();
    let (injected, joined) = {
        let _root = LocalSpanGuard::start(&ROOT);
        let injected = handle_request();
        let context = tracer::active_context().unwrap();
        let joined = std::thread::spawn(move || {
            let span = tracer::span("worker").child_of(context).start();
            span.finish();
        });
        (injected, joined)
    };
    joined.join().unwrap();
    let spans = flatten(traced.collect(3));
    let trace_id = one_trace(&spans);
    assert_eq!(injected, trace_id.to_string());
    let root = span_by_name(&spans, "local.root");
    assert_eq!(
        id(span_by_name(&spans, "worker"), "parent_id"),
        id(root, "span_id")
    );
    assert_eq!(
        id(span_by_name(&spans, "handle_request"), "parent_id"),
        id(root, "span_id")
    );
    // One trace in this process: one local root, one top-level span.
    let top_level = spans
        .iter()
        .filter(|s| metric(s, "_dd.top_level") == Some(1.0))
        .count();
    assert_eq!(top_level, 1, "{spans:?}");
}

#[test]
fn an_oversized_injection_from_a_local_trace_is_noted_on_it() {
    let traced = traced();
    {
        let remote = ddspan::SpanContext::remote(0xabc, 0xdef, Some(1))
            .unwrap()
            .with_propagated_tags(vec![("_dd.p.big".to_owned(), "x".repeat(600))]);
        let _root = LocalSpanGuard::start_child_of(&ROOT, Some(remote));
        let context = tracer::active_context().unwrap();
        let mut headers: Vec<(String, String)> = Vec::new();
        tracer::inject(&context, &mut headers);
        assert!(headers.iter().all(|(k, _)| k != "x-datadog-tags"));
    }
    let spans = flatten(traced.collect(1));
    let root = span_by_name(&spans, "local.root");
    assert_eq!(id(root, "trace_id"), 0xabc);
    assert_eq!(id(root, "parent_id"), 0xdef);
    assert_eq!(meta(root, "_dd.propagation_error"), Some("inject_max_size"));
    assert_eq!(meta(root, "_dd.p.big").map(str::len), Some(600));
}

#[test]
fn a_long_local_trace_is_flushed_in_parts_with_its_trace_fields() {
    let traced = traced_with(|b| {
        b.partial_flush_enabled(true)
            .partial_flush_min_spans(10usize)
    });
    {
        let _root = LocalSpanGuard::start(&ROOT);
        for _ in 0..25 {
            let _child = LocalSpanGuard::start(&CHILD);
        }
        // A part leaves while the root is still open.
        assert!(tracer::flush(Duration::from_secs(10)));
        let sent = traced.agent.wait_for_spans(20, Duration::from_secs(20));
        assert!(flatten(sent).iter().all(|s| s["name"] == "local.child"));
    }
    let spans = flatten(traced.collect(26));
    assert_eq!(spans.len(), 26);
    one_trace(&spans);
    let root = span_by_name(&spans, "local.root");
    for child in spans.iter().filter(|s| s["name"] == "local.child") {
        assert_eq!(id(child, "parent_id"), id(root, "span_id"));
    }
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(1.0));
}

#[test]
fn the_root_of_a_local_trace_is_found_from_deep_inside() {
    let traced = traced();
    let log = {
        let _root = LocalSpanGuard::start(&ROOT);
        let _child = LocalSpanGuard::start(&CHILD);
        let root = tracer::current_root_span().expect("the local root");
        root.set_tag("found", "yes");
        let log = tracer::log_context().expect("log correlation");
        (log.trace_id, log.span_id)
    };
    let spans = flatten(traced.collect(2));
    let root = span_by_name(&spans, "local.root");
    assert_eq!(meta(root, "found"), Some("yes"));
    assert_eq!(
        u128::from(id(root, "trace_id")),
        log.0 & u128::from(u64::MAX)
    );
    assert_eq!(id(span_by_name(&spans, "local.child"), "span_id"), log.1);
}

/// A child of a context whose local trace was already sent starts a new
/// chunk of the same trace. Its parent is still in this process and of the
/// same service, so it is not a service entry (dd-trace-go's rule), whether
/// it starts through the macro's guard or the builder: the two start paths
/// used to disagree.
#[test]
fn a_child_of_a_sent_local_trace_is_not_a_service_entry_whichever_way_it_starts() {
    let traced = traced();
    let context = {
        let root = tracer::start_span("sent.root");
        root.context().expect("a recording span")
    };
    {
        let _guard = LocalSpanGuard::start_child_of(&CHILD, Some(context.clone()));
    }
    drop(tracer::span("builder.child").child_of(&context).start());
    let spans = flatten(traced.collect(3));
    let root = span_by_name(&spans, "sent.root");
    assert_eq!(metric(root, "_dd.top_level"), Some(1.0), "{root}");
    for name in ["local.child", "builder.child"] {
        let child = span_by_name(&spans, name);
        assert_eq!(id(child, "parent_id"), id(root, "span_id"), "{child}");
        assert_eq!(id(child, "trace_id"), id(root, "trace_id"), "{child}");
        assert_eq!(metric(child, "_dd.top_level"), None, "{child}");
    }
    traced.agent.assert_no_check_failures();
}

/// A worker or server loop under one open span (`#[dd_span] fn main` calling
/// `#[dd_span] fn handle`): its finished spans ship in parts while the root
/// stays open, instead of waiting in memory for the root (all of it then
/// dropped at exit as larger than the agent takes).
#[test]
fn a_root_that_stays_open_ships_its_finished_children_in_parts() {
    let traced = traced();
    let _root = LocalSpanGuard::start(&ROOT);
    for _ in 0..3000 {
        let _child = LocalSpanGuard::start(&CHILD);
    }
    let spans = flatten(traced.collect(3000));
    assert_eq!(spans.len(), 3000);
    assert!(spans.iter().all(|s| s["name"] == "local.child"));
    assert_eq!(tracer::stats().spans_dropped(), 0);
    traced.agent.assert_no_check_failures();
}

/// A guard that is never dropped (leaked with `mem::forget`) stays the
/// parent of every later span of its thread; those still ship.
#[test]
fn spans_under_a_leaked_guard_still_ship() {
    let traced = traced();
    std::mem::forget(tracer::trace("leaked.guard"));
    for _ in 0..1000 {
        let _child = LocalSpanGuard::start(&CHILD);
    }
    let spans = flatten(traced.collect(900));
    assert!(spans.len() >= 900, "{}", spans.len());
    assert_eq!(tracer::stats().spans_dropped(), 0);
    traced.agent.assert_no_check_failures();
}

/// `tracer::trace` makes a span on the thread's stack, as `#[dd_span]`
/// does (issue #15, item 5: it took the shared path, twice the cost): its
/// run-time name, its children of every kind, its setters and a `Span`
/// that outlives it on another thread all arrive as one trace.
#[test]
fn a_tracer_trace_root_lives_on_the_stack_with_its_name_children_and_tags() {
    let traced = traced();
    let handle = {
        let request = tracer::trace(format!("job.{}", 7));
        request.set_resource("GET /jobs/:id");
        request.set_tag("job.id", 7);
        assert!(request.is_recording());
        assert_eq!(
            tracer::active_context().map(|c| c.span_id()),
            Some(request.span_id()),
            "the active span"
        );
        {
            let _local = LocalSpanGuard::start(&CHILD);
            let _nested = tracer::trace("nested");
        }
        let background = tracer::span("background.job").start();
        std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            background.finish();
        })
    };
    handle.join().unwrap();
    let spans = flatten(traced.collect(4));
    assert_eq!(spans.len(), 4, "{spans:?}");
    one_trace(&spans);
    let root = span_by_name(&spans, "job.7");
    assert_eq!(id(root, "parent_id"), 0);
    assert_eq!(root["resource"], "GET /jobs/:id");
    assert_eq!(metric(root, "job.id"), Some(7.0));
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(1.0));
    assert_eq!(metric(root, "_dd.top_level"), Some(1.0));
    let local = span_by_name(&spans, "local.child");
    assert_eq!(id(local, "parent_id"), id(root, "span_id"));
    let nested = span_by_name(&spans, "nested");
    assert_eq!(id(nested, "parent_id"), id(local, "span_id"));
    assert_eq!(nested["resource"], "nested", "the resource is the name");
    let background = span_by_name(&spans, "background.job");
    assert_eq!(id(background, "parent_id"), id(root, "span_id"));
    traced.agent.assert_no_check_failures();
}

/// A span started while the thread is being torn down (a thread-local's
/// destructor), when the thread's stack may be gone, still arrives.
#[test]
fn a_tracer_trace_span_in_a_thread_local_destructor_arrives() {
    struct OnExit;
    impl Drop for OnExit {
        fn drop(&mut self) {
            let span = tracer::trace("on.exit");
            span.set_tag("phase", "teardown");
        }
    }
    thread_local! {
        static ON_EXIT: OnExit = const { OnExit };
    }
    let traced = traced();
    std::thread::spawn(|| {
        // Registered before the stack is first used, and after.
        ON_EXIT.with(|_| {});
        let _first = tracer::trace("first");
    })
    .join()
    .unwrap();
    let spans = flatten(traced.collect(2));
    let on_exit = span_by_name(&spans, "on.exit");
    assert_eq!(meta(on_exit, "phase"), Some("teardown"));
}
