//! The runtime against Datadog's test agent: what a user's spans look like
//! once the agent has decoded them.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ddspan::tracer;
use ddspan::{LocalSpanGuard, SpanSpec, StaticTag};
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::{traced, traced_with};

fn u64_field(span: &Value, key: &str) -> u64 {
    span[key]
        .as_u64()
        .unwrap_or_else(|| panic!("{key} in {span}"))
}

fn parent_of<'a>(spans: &'a [Value], child: &Value) -> &'a Value {
    let parent_id = u64_field(child, "parent_id");
    spans
        .iter()
        .find(|s| u64_field(s, "span_id") == parent_id)
        .unwrap_or_else(|| panic!("no parent {parent_id} for {child}"))
}

static QUERY: SpanSpec = SpanSpec::new("db.query")
    .with_resource("SELECT * FROM users")
    .with_span_type("sql")
    .with_tags(&[
        StaticTag::str("db.system", "postgresql"),
        StaticTag::number("db.rows", 3.0),
    ]);

#[test]
fn nested_spans_arrive_as_one_trace_with_unified_service_tags() {
    let traced = traced_with(|b| b.global_tag("team", "core"));
    let trace_id;
    {
        let root = tracer::trace("http.request");
        root.set_tag("http.status_code", 200);
        root.set_tag("http.method", "GET");
        trace_id = root.context().unwrap().trace_id();
        std::thread::sleep(Duration::from_millis(20));
        let _handler = tracer::trace("handler");
        let query = LocalSpanGuard::start(&QUERY);
        query.set_tag("db.user", "ana");
        std::thread::sleep(Duration::from_millis(10));
    }
    let traces = traced.collect(3);
    assert_eq!(traces.len(), 1, "one trace chunk: {traces:?}");
    let spans = &traces[0];
    assert_eq!(spans.len(), 3);

    let root = span_by_name(spans, "http.request");
    let handler = span_by_name(spans, "handler");
    let query = span_by_name(spans, "db.query");
    let low = trace_id as u64;
    for span in spans {
        assert_eq!(u64_field(span, "trace_id"), low);
        assert_eq!(span["service"], "ddspan-tests");
        assert_eq!(meta(span, "env"), Some("test"));
        assert_eq!(meta(span, "version"), Some("0.0.1"));
        assert_eq!(meta(span, "team"), Some("core"));
        assert_eq!(span["error"], 0);
    }
    assert_eq!(u64_field(root, "parent_id"), 0);
    assert_eq!(parent_of(spans, handler)["name"], "http.request");
    assert_eq!(parent_of(spans, query)["name"], "handler");

    // 128-bit trace id: the upper half is unix seconds << 32, carried as _dd.p.tid.
    let high = (trace_id >> 64) as u64;
    assert_eq!(high & 0xffff_ffff, 0);
    assert_eq!(
        meta(root, "_dd.p.tid"),
        Some(format!("{high:016x}").as_str())
    );
    assert_eq!(
        meta(handler, "_dd.p.tid"),
        None,
        "only the chunk's first span carries it"
    );

    // Chunk-level fields on the root.
    assert_eq!(meta(root, "language"), Some("rust"));
    assert_eq!(meta(root, "_dd.p.dm"), Some("-0"));
    assert_eq!(meta(root, "runtime-id").map(str::len), Some(36));
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(1.0));
    assert_eq!(
        metric(root, "_dd.agent_psr"),
        None,
        "no agent rate yet (as ddtrace)"
    );
    assert_eq!(
        metric(root, "process_id"),
        Some(f64::from(std::process::id()))
    );
    assert_eq!(metric(root, "_dd.top_level"), Some(1.0));
    assert_eq!(metric(handler, "_dd.top_level"), None);
    assert_eq!(metric(handler, "_sampling_priority_v1"), None);

    // Tags, resource and type.
    // As ddtrace sends it: a string in meta.
    assert_eq!(meta(root, "http.status_code"), Some("200"));
    assert_eq!(metric(root, "http.status_code"), None);
    assert_eq!(meta(root, "http.method"), Some("GET"));
    assert_eq!(query["resource"], "SELECT * FROM users");
    assert_eq!(query["type"], "sql");
    assert_eq!(meta(query, "db.system"), Some("postgresql"));
    assert_eq!(meta(query, "db.user"), Some("ana"));
    assert_eq!(metric(query, "db.rows"), Some(3.0));
    assert_eq!(
        handler["resource"], "handler",
        "the resource defaults to the name"
    );

    // Durations cover the work, and children sit inside their parents.
    let duration = |s: &Value| s["duration"].as_i64().unwrap();
    let start = |s: &Value| s["start"].as_i64().unwrap();
    assert!(
        duration(root) >= 30_000_000,
        "root lasted {} ns",
        duration(root)
    );
    assert!(duration(query) >= 10_000_000);
    assert!(start(root) <= start(handler) && start(handler) <= start(query));
    assert!(start(query) + duration(query) <= start(root) + duration(root));
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    assert!(
        (now - start(root)).abs() < 60_000_000_000,
        "start is unix ns"
    );

    traced.agent.assert_no_check_failures();
    let stats = tracer::stats();
    assert_eq!(
        (stats.spans_sent, stats.traces_sent, stats.spans_dropped()),
        (3, 1, 0)
    );
}

#[test]
fn payload_headers_are_what_the_agent_expects() {
    let traced = traced();
    drop(tracer::trace("one"));
    drop(tracer::trace("two"));
    traced.collect(2);
    let requests = traced.agent.requests();
    let request = requests
        .iter()
        .find(|r| {
            let text = r.to_string();
            // v0.5 when the agent lists it (this one does), else v0.4.
            text.contains("/v0.5/traces") || text.contains("/v0.4/traces")
        })
        .expect("a trace request");
    let text = request.to_string().to_lowercase();
    for header in [
        "x-datadog-trace-count",
        "datadog-meta-lang",
        "datadog-meta-lang-version",
        "datadog-meta-tracer-version",
        "application/msgpack",
        "datadog-client-computed-top-level",
    ] {
        assert!(text.contains(header), "{header} missing from {request}");
    }
    assert!(
        text.contains("\"rust\""),
        "Datadog-Meta-Lang: rust in {request}"
    );
    traced.agent.assert_no_check_failures();
}

#[test]
fn children_on_other_threads_join_the_parents_trace() {
    let traced = traced();
    let root = tracer::start_span("fan-out");
    let context = root.context().unwrap();
    let workers: Vec<_> = (0..4)
        .map(|i| {
            let context = context.clone();
            std::thread::spawn(move || {
                let worker = tracer::span(format!("worker-{i}"))
                    .child_of(context)
                    .start();
                let _entered = worker.enter();
                let _step = tracer::trace("step");
            })
        })
        .collect();
    for worker in workers {
        worker.join().unwrap();
    }
    root.finish();
    let traces = traced.collect(9);
    assert_eq!(traces.len(), 1, "all threads' spans in one chunk");
    let spans = &traces[0];
    assert_eq!(spans.len(), 9);
    let root_id = u64_field(span_by_name(spans, "fan-out"), "span_id");
    for i in 0..4 {
        let worker = span_by_name(spans, &format!("worker-{i}"));
        assert_eq!(u64_field(worker, "parent_id"), root_id);
    }
    for step in spans.iter().filter(|s| s["name"] == "step") {
        assert!(parent_of(spans, step)["name"]
            .as_str()
            .unwrap()
            .starts_with("worker-"));
    }
    let ids: HashSet<u64> = spans.iter().map(|s| u64_field(s, "span_id")).collect();
    assert_eq!(ids.len(), 9, "span ids are unique");
}

#[test]
fn guards_dropped_out_of_order_keep_the_stack_consistent() {
    let traced = traced();
    {
        let outer = tracer::trace("outer");
        let middle = tracer::trace("middle");
        drop(outer); // out of order: "middle" stays active
        let inner = tracer::trace("inner");
        drop(middle);
        drop(inner);
        let after = tracer::trace("after");
        drop(after);
    }
    let spans = flatten(traced.collect(4));
    let by_name = |n: &str| span_by_name(&spans, n);
    assert_eq!(parent_of(&spans, by_name("middle"))["name"], "outer");
    assert_eq!(parent_of(&spans, by_name("inner"))["name"], "middle");
    assert_eq!(
        u64_field(by_name("after"), "parent_id"),
        0,
        "the stack is empty again"
    );
    traced.agent.assert_no_check_failures();
}

#[test]
fn futures_keep_their_span_across_awaits_and_thread_hops() {
    use ddspan::Instrument;
    let traced = traced();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tasks: Vec<_> = (0..8)
            .map(|i| {
                let span = tracer::span(format!("task-{i}")).start();
                tokio::spawn(
                    async move {
                        for step in 0..5 {
                            drop(tracer::trace(format!("task-{i}.step-{step}")));
                            tokio::time::sleep(Duration::from_millis(2)).await;
                            tokio::task::yield_now().await;
                        }
                    }
                    .in_span(span),
                )
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
    });
    drop(runtime);
    // A hop between threads for certain (the scheduler may keep every task
    // on one worker when the machine is busy): polled once here, then to
    // its end on another thread.
    let mut hopping = Box::pin(
        async {
            drop(tracer::trace("hop.before"));
            YieldOnce(false).await;
            drop(tracer::trace("hop.after"));
        }
        .in_span(tracer::span("hop").start()),
    );
    let mut here = std::task::Context::from_waker(std::task::Waker::noop());
    assert!(std::future::Future::poll(hopping.as_mut(), &mut here).is_pending());
    std::thread::spawn(move || {
        let mut there = std::task::Context::from_waker(std::task::Waker::noop());
        assert!(std::future::Future::poll(hopping.as_mut(), &mut there).is_ready());
    })
    .join()
    .unwrap();
    let spans = flatten(traced.collect(51));
    assert_eq!(spans.len(), 51);
    let hop = span_by_name(&spans, "hop");
    for name in ["hop.before", "hop.after"] {
        let step = span_by_name(&spans, name);
        assert_eq!(
            u64_field(step, "parent_id"),
            u64_field(hop, "span_id"),
            "{name}"
        );
    }
    for i in 0..8 {
        let task = span_by_name(&spans, &format!("task-{i}"));
        assert_eq!(u64_field(task, "parent_id"), 0);
        for step in 0..5 {
            let step = span_by_name(&spans, &format!("task-{i}.step-{step}"));
            assert_eq!(u64_field(step, "parent_id"), u64_field(task, "span_id"));
            assert_eq!(u64_field(step, "trace_id"), u64_field(task, "trace_id"));
        }
    }
    traced.agent.assert_no_check_failures();
}

/// Pending once, then ready.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if self.0 {
            std::task::Poll::Ready(())
        } else {
            self.0 = true;
            std::task::Poll::Pending
        }
    }
}

#[test]
fn partial_flush_sends_big_traces_in_parts() {
    let traced = traced_with(|b| {
        b.partial_flush_enabled(true)
            .partial_flush_min_spans(5usize)
    });
    {
        let _root = tracer::trace("big");
        for _ in 0..12 {
            drop(tracer::trace("item"));
        }
        // The parts already sent reach the agent before the root finishes.
        assert!(tracer::flush(Duration::from_secs(5)));
        traced.agent.wait_for_spans(10, Duration::from_secs(20));
        assert_eq!(tracer::stats().traces_sent, 2, "two parts of five spans");
    }
    // The test agent groups spans by trace id, so chunks are told apart by
    // the fields only a chunk's first span carries.
    let spans = flatten(traced.collect(13));
    assert_eq!(spans.len(), 13);
    assert_eq!(tracer::stats().traces_sent, 3);
    let trace_ids: HashSet<u64> = spans.iter().map(|s| u64_field(s, "trace_id")).collect();
    assert_eq!(trace_ids.len(), 1);
    let firsts: Vec<&Value> = spans
        .iter()
        .filter(|s| meta(s, "_dd.p.tid").is_some())
        .collect();
    assert_eq!(firsts.len(), 3, "one first span per chunk");
    for first in firsts {
        assert!(metric(first, "_sampling_priority_v1").is_some());
        assert_eq!(meta(first, "language"), Some("rust"));
    }
    assert_eq!(
        meta(span_by_name(&spans, "big"), "_dd.p.tid").map(str::len),
        Some(16)
    );
    traced.agent.assert_no_check_failures();
}

#[test]
fn a_rule_sample_rate_decides_and_dropped_traces_are_still_sent() {
    // Without client-side stats: the test agent says `client_drop_p0s`,
    // and a P0 trace counted in client stats is not sent
    // (tests/client_stats.rs).
    let traced = traced_with(|b| b.sample_rate(0.0).stats_computation_enabled(false));
    drop(tracer::trace("rejected"));
    let spans = flatten(traced.collect(1));
    let span = span_by_name(&spans, "rejected");
    assert_eq!(metric(span, "_sampling_priority_v1"), Some(-1.0));
    assert_eq!(metric(span, "_dd.rule_psr"), Some(0.0));
    assert_eq!(
        meta(span, "_dd.p.dm"),
        None,
        "no decision maker on a dropped trace"
    );
    drop(traced);

    let traced = traced_with(|b| b.sample_rate(1.0));
    drop(tracer::trace("kept"));
    let spans = flatten(traced.collect(1));
    let span = span_by_name(&spans, "kept");
    assert_eq!(metric(span, "_sampling_priority_v1"), Some(2.0));
    assert_eq!(metric(span, "_dd.rule_psr"), Some(1.0));
    assert_eq!(metric(span, "_dd.limit_psr"), Some(1.0));
    assert_eq!(meta(span, "_dd.p.dm"), Some("-3"));
    traced.agent.assert_no_check_failures();
}

#[test]
fn sixty_four_bit_trace_ids_carry_no_tid() {
    let traced = traced_with(|b| b.trace_id_128_bit(false));
    drop(tracer::trace("short-id"));
    let spans = flatten(traced.collect(1));
    assert_eq!(meta(&spans[0], "_dd.p.tid"), None);
}

#[test]
fn disabled_tracing_records_and_sends_nothing() {
    let traced = traced_with(|b| b.enabled(false));
    {
        let span = tracer::trace("invisible");
        assert!(!span.is_recording());
        static SPEC: SpanSpec = SpanSpec::new("invisible.local");
        let local = LocalSpanGuard::start(&SPEC);
        assert!(!local.is_recording());
    }
    assert!(tracer::flush(Duration::from_secs(1)));
    std::thread::sleep(Duration::from_millis(300));
    assert!(traced.agent.traces().is_empty());
    assert_eq!(tracer::stats(), ddspan::Stats::default());
}

#[test]
fn traces_reach_an_agent_on_a_unix_socket() {
    let dir = std::env::temp_dir().join(format!("ddspan-uds-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("apm.socket");
    let _ = std::fs::remove_file(&socket);
    let agent = support::agent::TestAgent::builder()
        .unix_socket(&socket)
        .start();
    let url = ddspan::AgentUrl::parse(&format!("unix://{}", socket.display())).unwrap();
    let traced = support::session::traced_on(agent, |b| b.agent_url(url), false);
    {
        let _root = tracer::trace("over.uds");
        drop(tracer::trace("child"));
    }
    let spans = flatten(traced.collect(2));
    let root = span_by_name(&spans, "over.uds");
    assert_eq!(parent_of(&spans, span_by_name(&spans, "child")), root);
    assert_eq!(tracer::stats().spans_sent, 2);
    traced.agent.assert_no_check_failures();
}

#[test]
fn spans_finished_on_an_exiting_thread_are_delivered() {
    let traced = traced();
    std::thread::spawn(|| {
        static LEAKED: SpanSpec = SpanSpec::new("leaked");
        let root = tracer::trace("thread.main");
        // A leaked guard: its span is finished when the thread exits.
        std::mem::forget(LocalSpanGuard::start(&LEAKED));
        drop(root);
    })
    .join()
    .unwrap();
    let spans = flatten(traced.collect(2));
    span_by_name(&spans, "thread.main");
    span_by_name(&spans, "leaked");
}

/// A restarted tracer gets the traces, and decides with its own agent's
/// rates: the threads' caches of the tracer and of the rates do not keep
/// the old ones.
mod restart {
    use super::support;

    use std::time::Duration;

    use ddspan::tracer;
    use ddspan::{LocalSpanGuard, SpanSpec};
    use support::fault_agent::{FaultAgent, Reply};

    static ROOT: SpanSpec = SpanSpec::new("restart.root");

    fn root() {
        let _root = LocalSpanGuard::start(&ROOT);
    }

    #[test]
    fn a_restarted_tracer_gets_the_traces_and_decides_with_its_own_rates() {
        // The first agent says: drop everything of ddspan-tests in env test.
        let first = FaultAgent::start(|_| {
            Reply::status(
                200,
                r#"{"rate_by_service":{"service:ddspan-tests,env:test":0.0}}"#,
            )
        });
        let guard = support::session::tracer_at(&first.url(), |b| b);
        root();
        assert!(tracer::flush(Duration::from_secs(5)));
        // Now the rates are known on this thread's cache.
        for _ in 0..5 {
            root();
        }
        assert!(tracer::flush(Duration::from_secs(5)));
        let dropped = first
            .spans()
            .iter()
            .filter(|s| s.metrics.get("_sampling_priority_v1") == Some(&0.0))
            .count();
        assert_eq!(dropped, 5, "{:?}", first.spans());
        drop(guard);

        // A second tracer, a second agent that sends no rates.
        let second = FaultAgent::healthy();
        let _guard = support::session::tracer_at(&second.url(), |b| b);
        for _ in 0..5 {
            root();
        }
        assert!(tracer::flush(Duration::from_secs(5)));
        assert!(second.wait_for_spans(5, Duration::from_secs(5)));
        assert_eq!(
            first.span_count(),
            6,
            "the first tracer got spans after the restart"
        );
        for span in second.spans() {
            assert_eq!(
                span.metrics.get("_sampling_priority_v1"),
                Some(&1.0),
                "{span:?}"
            );
            assert_eq!(
                span.meta.get("_dd.p.dm").map(String::as_str),
                Some("-0"),
                "{span:?}"
            );
            assert!(!span.metrics.contains_key("_dd.agent_psr"), "{span:?}");
        }
        let stats = tracer::stats();
        assert_eq!((stats.spans_sent, stats.spans_queued), (5, 5), "{stats}");
        tracer::stop();
    }
}
