//! Work handed to another task stays in the trace of the span active where
//! it was made: a `#[dd_span] async fn` takes as parent the span active
//! where it is called (as Python's asyncio copies the context when a task
//! is created), and `.in_active_span()` does it for any future.
//!
//! Before: `tokio::spawn(work())` started a new trace (the span started at
//! the first poll, on a worker with nothing active), and a `#[tokio::main]
//! #[dd_span] main` spawning two instrumented tasks gave 3 traces.

mod support;

use ddspan::{dd_span, tracer, Instrument};
use serde_json::Value;
use support::agent::{flatten, metric, span_by_name};
use support::session::traced;

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    support::runtime::multi_thread()
}

#[dd_span]
async fn work(n: u64) -> u64 {
    tokio::task::yield_now().await;
    step();
    n
}

#[dd_span]
fn step() {}

#[dd_span]
async fn handle_request() -> u64 {
    // Spawned, and awaited only after the handler's own work.
    let spawned = tokio::spawn(work(1));
    let detached = tokio::spawn(work(2));
    drop(detached); // not awaited at all: it still joins this trace
    spawned.await.unwrap()
}

/// Every span of one trace, in one chunk: the chunk's first span alone
/// carries the sampling decision.
fn assert_one_chunk_of_one_trace(traces: &[Vec<Value>], root: &str) {
    assert_eq!(traces.len(), 1, "one trace: {traces:?}");
    let spans = &traces[0];
    let root = span_by_name(spans, root);
    for span in spans {
        assert_eq!(span["trace_id"], root["trace_id"]);
        let decided = metric(span, "_sampling_priority_v1").is_some();
        assert_eq!(decided, span == root, "only the root decides: {span}");
    }
}

#[test]
fn spawned_instrumented_tasks_stay_in_the_trace_of_their_caller() {
    let traced = traced();
    // The runtime lives until the spans arrived: the detached task may
    // still be running when the handler returns (on a busy machine it had
    // not started), and dropping the runtime would cancel it.
    let runtime = runtime();
    runtime.block_on(async {
        assert_eq!(handle_request().await, 1);
    });
    let traces = traced.collect(5);
    drop(runtime);
    assert_one_chunk_of_one_trace(&traces, "handle_request");
    let spans = flatten(traces);
    let request = span_by_name(&spans, "handle_request");
    let works: Vec<&Value> = spans.iter().filter(|s| s["name"] == "work").collect();
    assert_eq!(works.len(), 2);
    for work in &works {
        assert_eq!(id(work, "parent_id"), id(request, "span_id"), "{work}");
        let steps = spans
            .iter()
            .filter(|s| s["name"] == "step" && id(s, "parent_id") == id(work, "span_id"));
        assert_eq!(steps.count(), 1, "its own child under it");
    }
    traced.agent.assert_no_check_failures();
}

mod app {
    use ddspan::dd_span;

    #[dd_span]
    async fn task(name: &'static str) -> &'static str {
        tokio::task::yield_now().await;
        name
    }

    #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
    #[dd_span]
    pub(crate) async fn main() {
        let a = tokio::spawn(task("a"));
        let b = tokio::spawn(task("b"));
        assert_eq!(a.await.unwrap(), "a");
        assert_eq!(b.await.unwrap(), "b");
    }
}

#[test]
fn an_instrumented_tokio_main_spawning_two_tasks_is_one_trace() {
    let traced = traced();
    app::main();
    let traces = traced.collect(3);
    assert_one_chunk_of_one_trace(&traces, "main");
    let spans = flatten(traces);
    let main = span_by_name(&spans, "main");
    for task in spans.iter().filter(|s| s["name"] == "task") {
        assert_eq!(id(task, "parent_id"), id(main, "span_id"));
    }
    traced.agent.assert_no_check_failures();
}

/// A sync `#[dd_span]` (whose span lives in this thread's stack) hands a
/// plain future to the runtime: `.in_active_span()` makes its span the
/// parent of what the future starts, on the worker that polls it.
#[dd_span]
fn sync_request(runtime: &tokio::runtime::Runtime) {
    let job = async {
        tokio::task::yield_now().await;
        drop(tracer::trace("manual.child"));
        work(3).await
    }
    .in_active_span();
    let plain = async {
        let _orphan = tracer::trace("not.captured");
    };
    let (job, plain) = (runtime.spawn(job), runtime.spawn(plain));
    assert_eq!(runtime.block_on(job).unwrap(), 3);
    runtime.block_on(plain).unwrap();
}

#[test]
fn in_active_span_carries_the_span_active_where_the_future_is_made() {
    let traced = traced();
    let runtime = runtime();
    sync_request(&runtime);
    // Inside a `Span`: the captured span is entered as itself, so
    // `current_span()` in the future tags it.
    let batch = tracer::start_span("batch");
    let job = {
        let _entered = batch.enter();
        async {
            tokio::task::yield_now().await;
            tracer::current_span()
                .unwrap()
                .set_tag("seen.in.task", true);
        }
        .in_active_span()
    };
    runtime.block_on(runtime.spawn(job)).unwrap();
    batch.finish();
    let spans = flatten(traced.collect(6));
    let request = span_by_name(&spans, "sync_request");
    let manual = span_by_name(&spans, "manual.child");
    assert_eq!(id(manual, "parent_id"), id(request, "span_id"));
    assert_eq!(manual["trace_id"], request["trace_id"]);
    let work = span_by_name(&spans, "work");
    assert_eq!(id(work, "parent_id"), id(request, "span_id"));
    let orphan = span_by_name(&spans, "not.captured");
    assert_eq!(
        id(orphan, "parent_id"),
        0,
        "a plain spawned future is its own root"
    );
    let batch = span_by_name(&spans, "batch");
    assert_eq!(metric(batch, "seen.in.task"), Some(1.0));
    traced.agent.assert_no_check_failures();
}
