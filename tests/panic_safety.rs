//! Panics in the application, while spans are open, never poison the
//! tracer nor cost other traces: threads that die, tasks that panic, panics
//! caught and the thread going on.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use ddspan::dd_span;
use ddspan::tracer;
use support::fault_agent::{FaultAgent, WireSpan};

fn start(agent: &FaultAgent) -> std::sync::MutexGuard<'static, ()> {
    support::session::tracer_at(&agent.url(), |b| b)
}

#[dd_span]
fn handler(fail: bool) -> u32 {
    let _inner = tracer::trace("inner");
    work(fail)
}

#[dd_span]
fn work(fail: bool) -> u32 {
    assert!(!fail, "work failed on purpose");
    7
}

fn count_by_name(spans: &[WireSpan]) -> HashMap<&str, (usize, usize)> {
    let mut counts: HashMap<&str, (usize, usize)> = HashMap::new();
    for span in spans {
        let entry = counts.entry(span.name.as_str()).or_default();
        entry.0 += 1;
        entry.1 += usize::from(span.error == 1);
    }
    counts
}

#[test]
fn threads_that_die_in_a_panic_cost_no_other_trace() {
    let agent = FaultAgent::healthy();
    let _guard = start(&agent);
    const HEALTHY_THREADS: usize = 3;
    const CALLS: usize = 200;
    let outcomes: Vec<bool> = std::thread::scope(|scope| {
        let mut threads = Vec::new();
        for _ in 0..HEALTHY_THREADS {
            threads.push(scope.spawn(|| {
                for _ in 0..CALLS {
                    assert_eq!(handler(false), 7);
                }
            }));
        }
        for _ in 0..2 {
            // Dies with spans open on its stack.
            threads.push(scope.spawn(|| {
                let _outer = tracer::trace("doomed");
                handler(true);
            }));
        }
        threads.into_iter().map(|t| t.join().is_ok()).collect()
    });
    assert_eq!(outcomes.iter().filter(|ok| !**ok).count(), 2);

    // The tracer goes on as before.
    assert_eq!(handler(false), 7);
    assert!(tracer::flush(Duration::from_secs(10)));
    let spans = agent.spans();
    let counts = count_by_name(&spans);
    let calls = HEALTHY_THREADS * CALLS + 1;
    assert_eq!(counts["handler"], (calls + 2, 2), "name: (spans, errors)");
    assert_eq!(counts["work"], (calls + 2, 2));
    assert_eq!(counts["inner"], (calls + 2, 2));
    assert_eq!(counts["doomed"], (2, 2));
    let stats = tracer::stats();
    assert_eq!(stats.spans_dropped(), 0, "{stats}");
    assert_eq!(stats.spans_sent as usize, spans.len());
    tracer::stop();
}

#[test]
fn a_caught_panic_leaves_the_span_stack_consistent() {
    let agent = FaultAgent::healthy();
    let _guard = start(&agent);
    {
        let _request = tracer::trace("request");
        for _ in 0..3 {
            let outcome = std::panic::catch_unwind(|| handler(true));
            assert!(outcome.is_err());
        }
        // Still the child of `request`, not of a span the panic left open.
        drop(tracer::trace("after"));
    }
    assert!(tracer::flush(Duration::from_secs(10)));
    let spans = agent.spans();
    let request = spans.iter().find(|s| s.name == "request").unwrap();
    let after = spans.iter().find(|s| s.name == "after").unwrap();
    assert_eq!(after.parent_id, request.span_id);
    assert_eq!(request.error, 0, "the panics were caught below it");
    let handlers: Vec<&WireSpan> = spans.iter().filter(|s| s.name == "handler").collect();
    assert_eq!(handlers.len(), 3);
    for handler in handlers {
        assert_eq!(handler.parent_id, request.span_id);
        assert_eq!(handler.error, 1);
        assert_eq!(handler.meta["error.message"], "work failed on purpose");
    }
    tracer::stop();
}

#[dd_span]
async fn task(fail: bool) -> u32 {
    tokio::task::yield_now().await;
    handler(fail)
}

#[test]
fn a_task_that_panics_finishes_its_span_and_others_go_on() {
    let agent = FaultAgent::healthy();
    let _guard = start(&agent);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    let failed = runtime.block_on(async {
        let tasks: Vec<_> = (0..20).map(|i| tokio::spawn(task(i % 5 == 0))).collect();
        let mut failed = 0;
        for task in tasks {
            failed += usize::from(task.await.is_err());
        }
        failed
    });
    assert_eq!(failed, 4);
    drop(runtime);
    assert!(tracer::flush(Duration::from_secs(10)));
    let spans = agent.spans();
    let counts = count_by_name(&spans);
    assert_eq!(counts["task"], (20, 4));
    assert_eq!(counts["handler"], (20, 4));
    for handler in spans.iter().filter(|s| s.name == "handler") {
        let parent = spans.iter().find(|s| s.span_id == handler.parent_id);
        assert_eq!(parent.map(|p| p.name.as_str()), Some("task"));
    }
    tracer::stop();
}

/// An error whose `Display` panics: a bug in the application's error type
/// that tracing must not turn into a crash.
#[derive(Debug)]
struct HostileError;

impl std::fmt::Display for HostileError {
    fn fmt(&self, _: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        panic!("HostileError cannot be displayed")
    }
}

impl std::error::Error for HostileError {}

#[dd_span]
fn fails_with_a_hostile_error() -> Result<u8, HostileError> {
    Err(HostileError)
}

#[test]
fn a_panicking_display_never_reaches_the_caller() {
    let agent = FaultAgent::healthy();
    let _guard = start(&agent);
    assert!(matches!(fails_with_a_hostile_error(), Err(HostileError)));
    {
        let span = tracer::trace("manual");
        span.set_error(&HostileError);
    }
    // Still working, and the hostile spans were delivered.
    drop(tracer::trace("after"));
    assert!(tracer::flush(Duration::from_secs(10)));
    let spans = agent.spans();
    for name in ["fails_with_a_hostile_error", "manual"] {
        let span = spans.iter().find(|s| s.name == name).unwrap();
        assert_eq!(span.error, 1, "{name}");
        assert_eq!(span.meta["error.message"], "<Display panicked>");
        assert!(span.meta["error.type"].ends_with("HostileError"));
    }
    assert!(spans.iter().any(|s| s.name == "after"));
    tracer::stop();
}
