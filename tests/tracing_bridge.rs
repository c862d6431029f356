//! The `tracing` bridge (`integrations::tracing::DatadogLayer`): `tracing`
//! spans reach the agent as Datadog spans, in the same traces as ddspan's,
//! with exact parents both ways, their fields as tags and overrides, their
//! errors, and the subscriber's filters; checked on what ddapm-test-agent
//! received.
//!
//! One subscriber serves the whole binary (set once, globally, so that
//! threads and tokio workers see it): the bridge under a per-layer filter
//! that leaves out the target `filtered`, beside a layer that takes
//! everything (as a fmt layer would), so that the spans the bridge leaves
//! out still exist.

mod support;

use std::future::Future;
use std::sync::Once;
use std::task::{Context, Poll};

use ddspan::integrations::tracing::DatadogLayer;
use ddspan::{dd_span, tracer};
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced;
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

fn subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let bridge =
            DatadogLayer::new().with_filter(tracing_subscriber::filter::filter_fn(|metadata| {
                metadata.target() != "filtered"
            }));
        let subscriber = tracing_subscriber::registry().with(bridge).with(Everything);
        tracing::subscriber::set_global_default(subscriber)
            .expect("the only subscriber of this binary");
    });
}

/// A layer interested in every span and event (and doing nothing with them).
struct Everything;

impl<S: tracing::Subscriber> Layer<S> for Everything {}

fn id(span: &Value, key: &str) -> u64 {
    span[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {span}"))
}

/// Asserts that `child`'s parent is `parent`, in the same trace.
fn assert_parent(spans: &[Value], child: &str, parent: &str) {
    let (c, p) = (span_by_name(spans, child), span_by_name(spans, parent));
    assert_eq!(
        id(c, "parent_id"),
        id(p, "span_id"),
        "{child} under {parent}: {spans:#?}"
    );
    assert_eq!(id(c, "trace_id"), id(p, "trace_id"), "{child} and {parent}");
}

#[dd_span]
fn dd_outer() {
    instrumented();
}

#[tracing::instrument]
fn instrumented() {
    dd_inner();
}

#[dd_span]
fn dd_inner() {
    let _span = tracing::info_span!("info_span_in_dd").entered();
    drop(tracer::trace("manual.leaf"));
}

#[test]
fn instrument_and_dd_span_nest_both_ways_in_one_trace() {
    subscriber();
    let traced = traced();
    dd_outer();
    let traces = traced.collect(5);
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let spans = &traces[0];
    assert_eq!(id(span_by_name(spans, "dd_outer"), "parent_id"), 0);
    assert_parent(spans, "instrumented", "dd_outer");
    assert_parent(spans, "dd_inner", "instrumented");
    assert_parent(spans, "info_span_in_dd", "dd_inner");
    assert_parent(spans, "manual.leaf", "info_span_in_dd");
    let bridged = span_by_name(spans, "instrumented");
    assert_eq!(bridged["resource"], "instrumented", "resource = name");
    assert_eq!(bridged["service"], "ddspan-tests", "the tracer's service");
    assert_eq!(
        metric(bridged, "_dd.top_level"),
        None,
        "not a service entry"
    );
}

#[tracing::instrument]
fn instrumented_root() {
    dd_inner();
}

#[test]
fn an_instrumented_root_has_dd_span_children() {
    subscriber();
    let traced = traced();
    instrumented_root();
    let traces = traced.collect(4);
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let spans = &traces[0];
    let root = span_by_name(spans, "instrumented_root");
    assert_eq!(id(root, "parent_id"), 0);
    assert_eq!(metric(root, "_dd.top_level"), Some(1.0));
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(1.0));
    assert_parent(spans, "dd_inner", "instrumented_root");
    assert_parent(spans, "info_span_in_dd", "dd_inner");
}

/// Pending once, then ready: a future that is certain to be polled twice.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();
    fn poll(mut self: std::pin::Pin<&mut Self>, _: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

#[dd_span]
async fn dd_step(step: &'static str) -> std::thread::ThreadId {
    tracer::current_span().unwrap().set_tag("step", step);
    std::thread::current().id()
}

#[test]
fn instrumented_futures_keep_their_span_across_a_thread_hop() {
    subscriber();
    let traced = traced();
    let root = tracing::info_span!("hop.root");
    let mut hopping = Box::pin(
        async {
            let before = dd_step("before").await;
            drop(tracing::info_span!("hop.tracing_before").entered());
            YieldOnce(false).await;
            let after = dd_step("after").await;
            drop(tracing::info_span!("hop.tracing_after").entered());
            (before, after)
        }
        .instrument(root),
    );
    let mut here = Context::from_waker(std::task::Waker::noop());
    assert!(hopping.as_mut().poll(&mut here).is_pending());
    let (before, after) = std::thread::spawn(move || {
        let mut there = Context::from_waker(std::task::Waker::noop());
        match hopping.as_mut().poll(&mut there) {
            Poll::Ready(threads) => threads,
            Poll::Pending => panic!("ready on the second poll"),
        }
    })
    .join()
    .unwrap();
    assert_ne!(before, after, "the future changed threads");
    let spans = flatten(traced.collect(5));
    assert_eq!(spans.len(), 5, "{spans:#?}");
    for step in ["hop.tracing_before", "hop.tracing_after"] {
        assert_parent(&spans, step, "hop.root");
    }
    let steps: Vec<&Value> = spans.iter().filter(|s| s["name"] == "dd_step").collect();
    assert_eq!(steps.len(), 2);
    for step in steps {
        assert_eq!(
            id(step, "parent_id"),
            id(span_by_name(&spans, "hop.root"), "span_id"),
            "{step}"
        );
    }
}

#[derive(Debug, thiserror::Error)]
#[error("no such user: {0}")]
struct NotFound(u64);

#[tracing::instrument(err)]
fn find_user(id: u64) -> Result<(), NotFound> {
    Err(NotFound(id))
}

#[tracing::instrument(err(Debug))]
async fn find_user_async(id: u64) -> Result<(), NotFound> {
    Err(NotFound(id))
}

#[tracing::instrument(err)]
fn finds_user() -> Result<u8, NotFound> {
    tracing::error!("logged at ERROR without an `error` field");
    Ok(1)
}

#[test]
fn instrument_err_marks_the_span() {
    subscriber();
    let traced = traced();
    let _ = find_user(7);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let _ = runtime.block_on(find_user_async(8));
    let _ = finds_user();
    let spans = flatten(traced.collect(3));
    let failed = span_by_name(&spans, "find_user");
    assert_eq!(failed["error"], 1, "{failed}");
    assert_eq!(meta(failed, "error.message"), Some("no such user: 7"));
    assert_eq!(meta(failed, "id"), None, "an integer argument: a metric");
    assert_eq!(metric(failed, "id"), Some(7.0));
    let failed = span_by_name(&spans, "find_user_async");
    assert_eq!(failed["error"], 1, "{failed}");
    assert_eq!(meta(failed, "error.message"), Some("NotFound(8)"));
    let fine = span_by_name(&spans, "finds_user");
    assert_eq!(fine["error"], 0, "{fine}");
}

#[derive(Debug)]
#[allow(dead_code)] // read by `Debug`
struct Order {
    lines: u8,
}

#[test]
fn fields_become_tags_numbers_in_metrics() {
    subscriber();
    let traced = traced();
    {
        let span = tracing::info_span!(
            "tagged",
            count = 3u64,
            delta = -2i64,
            ratio = 0.5,
            cached = true,
            user.name = "ada",
            order = ?Order { lines: 2 },
            region = %"eu-west",
            later = tracing::field::Empty,
            error = tracing::field::Empty,
        );
        span.record("later", 11);
        span.record("count", 4u64);
        span.record("error", "quota exceeded");
    }
    let spans = flatten(traced.collect(1));
    let span = span_by_name(&spans, "tagged");
    assert_eq!(metric(span, "count"), Some(4.0), "recorded again: replaced");
    assert_eq!(metric(span, "delta"), Some(-2.0));
    assert_eq!(metric(span, "ratio"), Some(0.5));
    assert_eq!(metric(span, "cached"), Some(1.0));
    assert_eq!(
        metric(span, "later"),
        Some(11.0),
        "recorded after the start"
    );
    assert_eq!(meta(span, "user.name"), Some("ada"));
    assert_eq!(meta(span, "order"), Some("Order { lines: 2 }"));
    assert_eq!(meta(span, "region"), Some("eu-west"));
    assert_eq!(span["error"], 1, "an `error` field: {span}");
    assert_eq!(meta(span, "error.message"), Some("quota exceeded"));
    assert_eq!(meta(span, "error"), None, "not a tag of its own");
}

#[test]
fn fields_override_the_datadog_fields() {
    subscriber();
    let traced = traced();
    {
        let _server = tracing::info_span!(
            "raw_name",
            otel.name = "http.request",
            dd.resource = "GET /users/:id",
            dd.service = "users-api",
            dd.type = "web",
            otel.kind = "Server",
        )
        .entered();
        let _client = tracing::info_span!(
            "call",
            dd.name = "grpc.client",
            span.kind = "client",
            otel.status_code = "ERROR",
            otel.status_description = "deadline exceeded",
        )
        .entered();
        let late = tracing::info_span!(
            "late_name",
            otel.name = tracing::field::Empty,
            otel.status_code = tracing::field::Empty
        );
        late.record("otel.name", "renamed.later");
        late.record("otel.status_code", "OK");
        // Datadog's own OpenTelemetry attribute names work too.
        let _otel = tracing::info_span!(
            "otel_names",
            operation.name = "queue.consume",
            resource.name = "emails",
            span.type = "worker",
        )
        .entered();
    }
    let spans = flatten(traced.collect(4));
    let server = span_by_name(&spans, "http.request");
    assert_eq!(server["resource"], "GET /users/:id");
    assert_eq!(server["service"], "users-api");
    assert_eq!(server["type"], "web");
    assert_eq!(meta(server, "span.kind"), Some("server"));
    assert_eq!(
        metric(server, "_dd.top_level"),
        Some(1.0),
        "a service entry"
    );
    let client = span_by_name(&spans, "grpc.client");
    assert_eq!(client["resource"], "grpc.client", "resource = the new name");
    assert_eq!(client["service"], "users-api", "the parent's service");
    assert_eq!(meta(client, "span.kind"), Some("client"));
    assert_eq!(client["error"], 1);
    assert_eq!(meta(client, "error.message"), Some("deadline exceeded"));
    assert_parent(&spans, "grpc.client", "http.request");
    let late = span_by_name(&spans, "renamed.later");
    assert_eq!(late["error"], 0);
    let otel = span_by_name(&spans, "queue.consume");
    assert_eq!(otel["resource"], "emails");
    assert_eq!(otel["type"], "worker");
}

#[test]
fn a_filtered_out_span_leaves_its_children_to_the_nearest_recorded_ancestor() {
    subscriber();
    let traced = traced();
    {
        let _kept = tracing::info_span!("kept").entered();
        let left_out = tracing::info_span!(target: "filtered", "left_out");
        let _left_out = left_out.enter();
        drop(tracing::info_span!("contextual_child").entered());
        // Only this layer leaves `left_out` out: it exists, and is named as
        // a parent. (Left out by every layer, it would not exist, and
        // `parent: &left_out` would be `parent: None` for `tracing` itself.)
        drop(tracing::info_span!(parent: &left_out, "explicit_child").entered());
        drop(tracer::trace("dd_child"));
    }
    let spans = flatten(traced.collect(4));
    assert!(spans.iter().all(|s| s["name"] != "left_out"), "{spans:#?}");
    for child in ["contextual_child", "explicit_child", "dd_child"] {
        assert_parent(&spans, child, "kept");
    }
}

#[test]
fn explicit_parents_and_roots_are_honoured() {
    subscriber();
    let traced = traced();
    let request = tracing::info_span!("request");
    {
        let _active = tracer::trace("elsewhere");
        // An explicit parent wins over the active span ...
        drop(tracing::info_span!(parent: &request, "explicit").entered());
        // ... and `parent: None` starts a trace of its own.
        drop(tracing::info_span!(parent: None, "detached").entered());
    }
    drop(request);
    let spans = flatten(traced.collect(4));
    assert_parent(&spans, "explicit", "request");
    let detached = span_by_name(&spans, "detached");
    assert_eq!(id(detached, "parent_id"), 0);
    assert_ne!(
        id(detached, "trace_id"),
        id(span_by_name(&spans, "elsewhere"), "trace_id")
    );
}

#[test]
fn spans_exited_out_of_order_leave_the_stack_right() {
    subscriber();
    let traced = traced();
    let a = tracing::info_span!("a");
    let b = tracing::info_span!(parent: None, "b");
    let entered_a = a.enter();
    let entered_b = b.enter();
    drop(entered_a); // below the top: left in place
    drop(tracer::trace("under_b"));
    drop(entered_b);
    drop(tracer::trace("after_both"));
    drop((a, b));
    // Across the two worlds: the tracing span leaves before the ddspan span
    // entered inside it.
    let c = tracing::info_span!("c");
    let entered_c = c.enter();
    let dd = tracer::trace("dd_in_c");
    // An exit with no enter (straight through the dispatcher) changes nothing.
    let never_entered = tracing::info_span!("never_entered");
    let never_id = never_entered.id().expect("a recorded span");
    tracing::dispatcher::get_default(|dispatch| dispatch.exit(&never_id));
    drop(never_entered);
    drop(entered_c);
    drop(tracer::trace("under_dd"));
    drop(dd);
    drop(c);
    let spans = flatten(traced.collect(8));
    assert_parent(&spans, "under_b", "b");
    let after = span_by_name(&spans, "after_both");
    assert_eq!(id(after, "parent_id"), 0, "nothing left active: {after}");
    assert_parent(&spans, "dd_in_c", "c");
    assert_parent(&spans, "under_dd", "dd_in_c");
    assert_parent(&spans, "never_entered", "dd_in_c");
    assert!(tracer::active_context().is_none());
}

#[test]
fn a_span_closed_on_another_thread_arrives() {
    subscriber();
    let traced = traced();
    let span = tracing::info_span!("moved");
    span.in_scope(|| drop(tracer::trace("child_here")));
    std::thread::spawn(move || {
        span.in_scope(|| drop(tracer::trace("child_there")));
        drop(span);
    })
    .join()
    .unwrap();
    let spans = flatten(traced.collect(3));
    assert_parent(&spans, "child_here", "moved");
    assert_parent(&spans, "child_there", "moved");
}

#[test]
fn nothing_breaks_without_a_tracer() {
    subscriber();
    let traced = traced();
    let open = tracing::info_span!("open_at_stop");
    let entered = open.clone().entered();
    tracer::stop();
    // Spans of a stopped tracer, and new ones with no tracer: no panic,
    // nothing recorded, nothing left active.
    let fresh = tracing::info_span!("after_stop", n = 1).entered();
    fresh.record("n", 2);
    tracing::error!(error = "ignored", "an error event with no span to mark");
    drop(fresh);
    drop(entered);
    drop(open);
    std::thread::spawn(|| drop(tracing::info_span!("other_thread").entered()))
        .join()
        .unwrap();
    assert!(tracer::active_context().is_none());
    drop(traced);
}

#[dd_span]
fn load_user() -> &'static str {
    "ada"
}

#[test]
fn tower_http_trace_layer_and_dd_span_handler_make_one_trace() {
    use tower::{ServiceBuilder, ServiceExt};

    subscriber();
    let traced = traced();
    let service = ServiceBuilder::new()
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .service_fn(|request: http::Request<String>| async move {
            let user = load_user();
            let body = format!("{} {user}", request.uri());
            Ok::<_, std::convert::Infallible>(http::Response::new(body))
        });
    let runtime = support::runtime::multi_thread();
    let response = runtime
        .block_on(service.oneshot(http::Request::get("/users/7").body(String::new()).unwrap()))
        .unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    drop(response); // its body holds the request span
    let traces = traced.collect(2);
    assert_eq!(traces.len(), 1, "{traces:#?}");
    let spans = &traces[0];
    let request = span_by_name(spans, "request");
    assert_eq!(id(request, "parent_id"), 0);
    assert_eq!(meta(request, "method"), Some("GET"));
    assert_eq!(meta(request, "uri"), Some("/users/7"));
    assert_parent(spans, "load_user", "request");
}
