//! An agent that takes 5 s to answer: application threads go on at their
//! own pace (the writer alone waits), what waits stays bounded, and delivery
//! resumes once the agent is fast again.

mod support;

use std::hint::black_box;
use std::time::{Duration, Instant};

use ddspan::tracer;
use support::fault_agent::{FaultAgent, Reply};

const SLOW_ANSWER: Duration = Duration::from_secs(5);

/// Some application work: a few microseconds of arithmetic.
fn work(seed: u64) -> u64 {
    let mut x = seed | 1;
    for _ in 0..2_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
    }
    x
}

fn run(iterations: u64, traced: bool) -> Duration {
    let started = Instant::now();
    for i in 0..iterations {
        if traced {
            let _request = tracer::trace("request");
            let _step = tracer::trace("step");
            black_box(work(i));
        } else {
            black_box(work(i));
        }
    }
    started.elapsed()
}

#[test]
fn a_slow_agent_slows_the_writer_not_the_application() {
    let agent = FaultAgent::start(|n| {
        if n == 0 {
            Reply::ok().after(SLOW_ANSWER)
        } else {
            Reply::ok()
        }
    });

    // The same work without tracing, for comparison; at least 300 ms of it.
    let mut iterations = 500;
    let baseline = loop {
        let elapsed = run(iterations, false);
        if elapsed >= Duration::from_millis(300) {
            break elapsed;
        }
        iterations *= 2;
    };

    let _lock = support::session::tracer_at(&agent.url(), |b| {
        b.request_timeout(Duration::from_secs(10))
            .queue_capacity(256usize)
    });
    drop(tracer::trace("first"));
    // Wait until the writer is inside the slow request.
    let deadline = Instant::now() + Duration::from_secs(5);
    while agent.arrived() == 0 {
        assert!(Instant::now() < deadline, "the writer sent nothing");
        std::thread::sleep(Duration::from_millis(5));
    }
    let slow_since = Instant::now();
    let traced = run(iterations, true);
    let measured_while_slow = slow_since.elapsed() < SLOW_ANSWER;

    assert!(
        traced < baseline * 3 + Duration::from_millis(100),
        "traced run {traced:?} against {baseline:?} untraced: the application was held up"
    );
    assert!(
        measured_while_slow,
        "the traced run ({traced:?}) outlasted the slow answer: the comparison proves nothing"
    );

    // Bounded while the writer waits: what it keeps stays within its byte
    // budget (whether the queue also overflowed depends on how fast this
    // machine encodes, so it is not asserted).
    let stats = tracer::stats();
    let budget = 20 * 1024 * 1024 + 64 * 1024;
    assert!(
        stats.bytes_buffered_peak <= budget,
        "the writer kept more than its byte budget while it waited: {stats:?}"
    );
    support::session::assert_accounted(&stats);

    // Fast again: new traces flow, and everything is accounted for.
    assert!(agent.wait_for_spans(1, Duration::from_secs(10)));
    // The first flush reports what the slow agent cost (if anything was
    // dropped); the next one, that the backlog drained.
    tracer::flush(Duration::from_secs(10));
    assert!(tracer::flush(Duration::from_secs(10)), "the backlog drains");
    for _ in 0..20 {
        let _root = tracer::trace("after");
        drop(tracer::trace("after-child"));
    }
    assert!(tracer::flush(Duration::from_secs(10)));
    let after = agent.spans().iter().filter(|s| s.name == "after").count();
    assert_eq!(after, 20, "delivery resumed");
    let stats = tracer::stats();
    let created = 1 + 2 * iterations + 40;
    assert_eq!(stats.spans_sent + stats.spans_dropped(), created, "{stats}");
    assert_eq!(agent.span_count() as u64, stats.spans_sent);
    tracer::stop();
    agent.assert_no_errors();
}

/// An agent whose first answer takes 2 s (the rest are immediate), and the
/// tracer pointed at it with a queue of 250 spans at most, adjusted by
/// `configure`. The tracer lock is held until the guard drops.
fn slow_first_answer(
    configure: impl FnOnce(ddspan::ConfigBuilder) -> ddspan::ConfigBuilder,
) -> (FaultAgent, std::sync::MutexGuard<'static, ()>) {
    let agent = FaultAgent::start(|i| {
        if i == 0 {
            Reply::ok().after(Duration::from_secs(2))
        } else {
            Reply::ok()
        }
    });
    let guard = support::session::tracer_at(&agent.url(), |b| {
        configure(
            b.queue_max_spans(250usize)
                .partial_flush_enabled(false)
                .flush_interval(Duration::from_millis(10))
                // The slow answer must not be a timeout on a busy machine.
                .request_timeout(Duration::from_secs(10)),
        )
    });
    (agent, guard)
}

/// One trace of `spans` spans (a root and its children).
fn trace_of(spans: usize) {
    let _root = tracer::trace("big");
    for _ in 1..spans {
        drop(tracer::trace("child"));
    }
}

/// Finishes a first trace and waits until its request is under way.
fn start_the_slow_request(agent: &FaultAgent) {
    trace_of(10);
    support::session::wait_until("the writer's slow request", Duration::from_secs(10), || {
        agent.arrived() >= 1
    });
}

#[test]
fn the_queue_holds_at_most_its_span_limit_while_the_writer_waits() {
    // The slow request's payload also fills the writer's buffer: while it
    // is under way the writer takes nothing from its queue.
    let (agent, _tracer) = slow_first_answer(|b| b.buffer_bytes(1024usize));
    start_the_slow_request(&agent);
    // 100 + 100 spans fit under 250; the next eight chunks do not.
    for _ in 0..10 {
        trace_of(100);
    }
    let stats = tracer::stats();
    assert_eq!(stats.spans_dropped_queue_full, 800, "{stats}");
    assert_eq!(stats.traces_dropped_queue_full, 8, "{stats}");
    // A chunk bigger than the limit still goes when the queue is empty.
    assert!(
        !tracer::flush(Duration::from_secs(10)),
        "800 spans were dropped"
    );
    trace_of(400);
    assert!(tracer::flush(Duration::from_secs(10)));
    assert!(
        agent.wait_for_spans(10 + 200 + 400, Duration::from_secs(10)),
        "{} spans arrived; {}",
        agent.span_count(),
        tracer::stats()
    );
    let stats = tracer::stats();
    assert_eq!(stats.spans_sent, 610, "{stats}");
    assert_eq!(stats.spans_dropped_queue_full, 800, "{stats}");
}

/// Spans the writer has taken no longer count against `queue_max_spans`,
/// even while it waits for the agent inside a long drain (found by review:
/// they used to count until the drain ended, and traces were refused with
/// an empty queue).
mod spans_taken_by_the_writer {
    use super::support;

    use std::time::Duration;

    use ddspan::tracer;
    use ddspan::{LocalSpanGuard, SpanSpec};
    use support::fault_agent::{FaultAgent, Reply};
    use support::session::wait_until;

    static ROOT: SpanSpec = SpanSpec::new("bound.root");
    static CHILD: SpanSpec = SpanSpec::new("bound.child");

    fn trace_of(spans: usize) {
        let _root = LocalSpanGuard::start(&ROOT);
        for _ in 1..spans {
            let _child = LocalSpanGuard::start(&CHILD);
        }
    }

    #[test]
    fn spans_the_writer_already_took_do_not_count_against_the_queue_bound() {
        // The first payload is answered after 2 s; the rest at once.
        let agent = FaultAgent::start(|n| {
            if n == 0 {
                Reply::ok().after(Duration::from_secs(2))
            } else {
                Reply::ok()
            }
        });
        let _guard = support::session::tracer_at(&agent.url(), |b| {
            b.flush_interval(Duration::from_secs(60))
                // One 60-span trace fills a payload: it is sent from inside the drain.
                .max_payload_bytes(1024usize)
                .queue_max_spans(100usize)
                .request_timeout(Duration::from_secs(10))
        });
        trace_of(60);
        // The writer took the trace and is now waiting for the agent's answer.
        wait_until(
            "the first payload to arrive",
            Duration::from_secs(5),
            || agent.arrived() >= 1,
        );
        std::thread::sleep(Duration::from_millis(100));
        // Nothing waits in the queue: 60 spans fit under a bound of 100.
        trace_of(60);
        let stats = tracer::stats();
        assert_eq!(
            stats.spans_dropped_queue_full, 0,
            "a trace was dropped as 'queue full' while the queue was empty: {stats}"
        );
        assert!(tracer::flush(Duration::from_secs(10)));
        assert_eq!(agent.span_count(), 120);
        tracer::stop();
    }
}

#[test]
fn traces_finished_during_a_slow_request_wait_in_the_buffer_not_dropped() {
    let (agent, _tracer) = slow_first_answer(|b| b);
    start_the_slow_request(&agent);
    let started = Instant::now();
    // Four times what the queue holds, while the request is under way: the
    // writer keeps taking chunks into its buffer meanwhile.
    for _ in 0..10 {
        trace_of(100);
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        started.elapsed() < Duration::from_millis(1800),
        "the slow request was still under way"
    );
    assert_eq!(agent.requests().len(), 0, "no answer yet");
    let stats = tracer::stats();
    assert_eq!(stats.spans_dropped(), 0, "{stats}");
    assert!(stats.spans_buffered >= 1000, "{stats}");
    assert!(tracer::flush(Duration::from_secs(10)));
    assert!(agent.wait_for_spans(1010, Duration::from_secs(10)));
    let stats = tracer::stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped()),
        (1010, 0),
        "{stats}"
    );
}
