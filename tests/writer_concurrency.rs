//! Many threads and tasks at once: 8 threads × 100 k spans and async tasks
//! on a multi-threaded runtime, every span delivered exactly once with the
//! right parent; then a smaller run through ddapm-test-agent.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use ddspan::dd_span;
use ddspan::tracer;
use support::agent::TestAgent;
use support::fault_agent::FaultAgent;
use support::session::tracer_at;

const THREADS: usize = 8;

/// `traces` traces of `spans` spans: a root, and children two deep.
fn produce(thread: usize, traces: usize, spans: usize) {
    for t in 0..traces {
        let _root = tracer::trace(format!("root-{thread}-{t}"));
        let mut made = 1;
        while made < spans {
            let _child = tracer::trace("child");
            made += 1;
            if made < spans {
                drop(tracer::trace("grandchild"));
                made += 1;
            }
        }
    }
}

#[dd_span]
async fn task(n: u64) -> u64 {
    let mut sum = 0;
    for i in 0..5 {
        sum += step(n, i).await;
    }
    sum
}

#[dd_span]
async fn step(n: u64, i: u64) -> u64 {
    tokio::task::yield_now().await;
    n * i
}

const TASKS: usize = 200;
const SPANS_PER_TASK: usize = 6;

fn run_tasks() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    runtime.block_on(async {
        let handles: Vec<_> = (0..TASKS as u64).map(|n| tokio::spawn(task(n))).collect();
        for handle in handles {
            handle.await.unwrap();
        }
    });
}

struct Span {
    trace_id: u64,
    parent_id: u64,
    name: String,
}

/// Checks that `spans` are `expected` spans, each once, in well-formed
/// traces: one root each, every parent in the same trace, names at the
/// right depth.
fn check(spans: Vec<(u64, Span)>, expected: usize) {
    assert_eq!(spans.len(), expected, "every span exactly once");
    let by_id: HashMap<u64, &Span> = spans.iter().map(|(id, s)| (*id, s)).collect();
    assert_eq!(by_id.len(), expected, "span ids are unique");
    let mut roots = HashSet::new();
    for (id, span) in &spans {
        if span.parent_id == 0 {
            assert!(
                span.name.starts_with("root-") || span.name == "task",
                "{}",
                span.name
            );
            assert!(roots.insert(span.trace_id), "one root per trace");
            continue;
        }
        let parent = by_id
            .get(&span.parent_id)
            .unwrap_or_else(|| panic!("span {id} ({}) has no parent here", span.name));
        assert_eq!(parent.trace_id, span.trace_id);
        let parent_name = match span.name.as_str() {
            "child" => "root-",
            "grandchild" => "child",
            "step" => "task",
            other => panic!("unexpected span {other}"),
        };
        assert!(
            parent.name.starts_with(parent_name),
            "{} under {}",
            span.name,
            parent.name
        );
    }
}

/// `THREADS` threads of `traces` traces of `spans` spans, and the async
/// tasks, all at once; returns how many spans they made.
fn run_everything(traces: usize, spans: usize) -> usize {
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            scope.spawn(move || produce(thread, traces, spans));
        }
        scope.spawn(run_tasks);
    });
    THREADS * traces * spans + TASKS * SPANS_PER_TASK
}

#[test]
fn eight_threads_and_async_tasks_deliver_every_span_once() {
    let agent = FaultAgent::healthy();
    let _lock = tracer_at(&agent.url(), |b| {
        // Room for everything: this test is about exactness, not bounds.
        b.queue_capacity(1usize << 20)
            .queue_max_spans(usize::MAX)
            .buffer_bytes(1usize << 30)
    });
    let expected = run_everything(1_000, 100);
    assert!(tracer::flush(Duration::from_secs(60)));
    tracer::stop();
    let stats = tracer::stats();
    assert_eq!(stats.spans_dropped(), 0, "{stats}");
    assert_eq!(stats.spans_sent as usize, expected, "{stats}");
    let spans = agent
        .spans()
        .into_iter()
        .map(|s| {
            (
                s.span_id,
                Span {
                    trace_id: s.trace_id,
                    parent_id: s.parent_id,
                    name: s.name,
                },
            )
        })
        .collect();
    check(spans, expected);
    agent.assert_no_errors();
}

#[test]
fn a_concurrent_run_passes_the_test_agents_checks() {
    let agent = TestAgent::start();
    let _lock = tracer_at(&agent.url(), |b| b);
    let expected = run_everything(20, 10);
    assert!(tracer::flush(Duration::from_secs(20)));
    let traces = agent.wait_for_spans(expected, Duration::from_secs(30));
    tracer::stop();
    let spans: Vec<(u64, Span)> = support::agent::flatten(traces)
        .into_iter()
        .map(|s| {
            (
                s["span_id"].as_u64().unwrap(),
                Span {
                    trace_id: s["trace_id"].as_u64().unwrap(),
                    parent_id: s["parent_id"].as_u64().unwrap(),
                    name: s["name"].as_str().unwrap().to_owned(),
                },
            )
        })
        .collect();
    check(spans, expected);
    agent.assert_no_check_failures();
}

/// Small traces wait in their thread's outbox for a batch: threads that
/// made a few and then sit idle (alive, holding nothing) have their spans
/// delivered by the writer's next sweep, by a flush, and by the stop.
#[test]
fn small_traces_of_idle_threads_reach_the_agent() {
    let agent = FaultAgent::healthy();
    let _guard = tracer_at(&agent.url(), |b| b.flush_interval(Duration::from_secs(60)));
    let (done, wait) = std::sync::mpsc::channel::<()>();
    let wait = std::sync::Arc::new(std::sync::Mutex::new(wait));
    let made = std::sync::mpsc::channel::<()>();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (wait, made) = (std::sync::Arc::clone(&wait), made.0.clone());
            std::thread::spawn(move || {
                for _ in 0..3 {
                    drop(tracer::trace("idle.thread.job"));
                }
                made.send(()).unwrap();
                // Idle until the flush below has returned.
                let _ = wait.lock().unwrap().recv();
            })
        })
        .collect();
    for _ in 0..4 {
        made.1.recv().unwrap();
    }
    assert!(tracer::flush(Duration::from_secs(10)));
    assert_eq!(agent.span_count(), 12, "the outboxes of idle threads");
    // Three more, left in this thread's outbox: the stop delivers them.
    for _ in 0..3 {
        drop(tracer::trace("before.stop"));
    }
    assert!(tracer::stop());
    assert_eq!(agent.span_count(), 15);
    drop(done);
    for thread in threads {
        thread.join().unwrap();
    }
    let stats = tracer::stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped()),
        (15, 0),
        "{stats}"
    );
}
