//! `tracer::current_span()` held across `.await` in a handler whose future
//! must be `Send` (axum's, `tokio::spawn`'s). Before, `SpanRef` was not
//! `Send`, and such a handler failed to compile with an opaque "`Handler<_,
//! _>` is not implemented" from axum.

mod support;

use std::future::Future;
use std::time::Duration;

use ddspan::{dd_span, tracer, SpanRef};
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced;

/// What axum and `tokio::spawn` ask of a handler's future.
fn must_be_send<F: Future + Send + 'static>(future: F) -> F {
    future
}

#[dd_span]
async fn handler(user: u64) -> u16 {
    let span: SpanRef = tracer::current_span().expect("the handler's span");
    tokio::time::sleep(Duration::from_millis(5)).await;
    span.set_tag("http.status_code", 404);
    span.set_tag("user.id", user);
    404
}

#[dd_span]
fn sync_step() -> SpanRef {
    let span = tracer::current_span().unwrap();
    span.set_tag("on.its.thread", true);
    span
}

#[test]
fn a_span_ref_crosses_awaits_and_threads() {
    let traced = traced();
    let runtime = support::runtime::multi_thread();
    let status = runtime
        .block_on(runtime.spawn(must_be_send(handler(7))))
        .unwrap();
    assert_eq!(status, 404);
    // A sync function's span lives in its thread's stack: from another
    // thread, its handle does nothing (and does not panic).
    let handle = sync_step();
    std::thread::spawn(move || {
        handle.set_tag("from.elsewhere", true);
        assert!(handle.context().is_none());
    })
    .join()
    .unwrap();
    let spans = flatten(traced.collect(2));
    let handler = span_by_name(&spans, "handler");
    assert_eq!(meta(handler, "http.status_code"), Some("404"));
    assert_eq!(metric(handler, "user.id"), Some(7.0));
    let step = span_by_name(&spans, "sync_step");
    assert_eq!(metric(step, "on.its.thread"), Some(1.0));
    assert_eq!(metric(step, "from.elsewhere"), None);
    traced.agent.assert_no_check_failures();
}
