//! One million spans while the agent is down: the writer's memory stays
//! under its caps (queue length and buffer bytes), every span beyond them is
//! dropped and counted exactly, and what was kept arrives once the agent is
//! up. Alone in its binary so that the process's memory is this test's.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use ddspan::tracer;
use support::fault_agent::{FaultAgent, Reply};

const TRACES: usize = 10_000;
const SPANS_PER_TRACE: usize = 100;
const BUFFER_BYTES: usize = 4 * 1024 * 1024;
const QUEUE: usize = 1024;

/// The resident set of this process, in bytes (Linux).
fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[test]
fn a_million_spans_with_the_agent_down_stay_within_the_caps() {
    let port = FaultAgent::closed_port();
    let _lock = support::session::tracer_at(&format!("http://127.0.0.1:{port}"), |b| {
        b.buffer_bytes(BUFFER_BYTES).queue_capacity(QUEUE)
    });
    let before = resident_bytes();
    let mut peak = before;
    for t in 0..TRACES {
        let _root = tracer::trace("root");
        for _ in 1..SPANS_PER_TRACE {
            drop(tracer::trace("child"));
        }
        if t % 500 == 0 {
            peak = peak.max(resident_bytes());
        }
    }
    let created = (TRACES * SPANS_PER_TRACE) as u64;

    // Let the writer take what is queued.
    let deadline = Instant::now() + Duration::from_secs(30);
    let stats = loop {
        let stats = tracer::stats();
        if stats.spans_queued + stats.spans_dropped_queue_full == created {
            break stats;
        }
        assert!(Instant::now() < deadline, "the writer is stuck: {stats}");
        std::thread::sleep(Duration::from_millis(20));
    };
    peak = peak.max(resident_bytes());

    // Exact accounting: each span is buffered or dropped, and counted once.
    assert_eq!(stats.spans_sent, 0);
    assert_eq!(
        stats.spans_buffered + stats.spans_dropped_buffer_full + stats.spans_dropped_queue_full,
        created,
        "{stats}"
    );
    assert!(stats.spans_dropped_buffer_full > 0, "{stats}");
    // The byte cap holds, give or take the one trace that crossed it.
    let one_trace = 64 * 1024;
    assert!(
        stats.bytes_buffered_peak <= (BUFFER_BYTES + one_trace) as u64,
        "{stats:?}"
    );
    // The process grew by far less than keeping everything would take
    // (about 250 bytes encoded, 64 in memory, per span: over 250 MB).
    if let (Some(before), Some(peak)) = (before, peak) {
        let grown = peak.saturating_sub(before);
        let queue_bound = (QUEUE * SPANS_PER_TRACE * 200) as u64;
        assert!(
            grown < BUFFER_BYTES as u64 + queue_bound + 16 * 1024 * 1024,
            "resident memory grew by {} MiB",
            grown / (1024 * 1024)
        );
    }

    // The agent comes up: what was kept arrives, once.
    let buffered = stats.spans_buffered;
    let agent = FaultAgent::start_on(port, |_| Reply::ok());
    assert!(
        !tracer::flush(Duration::from_secs(30)),
        "spans were dropped since the start"
    );
    assert!(tracer::flush(Duration::from_secs(30)), "and none since");
    let spans = agent.spans();
    assert_eq!(spans.len() as u64, buffered);
    let ids: HashSet<u64> = spans.iter().map(|s| s.span_id).collect();
    assert_eq!(ids.len(), spans.len(), "no span twice");
    let stats = tracer::stats();
    assert_eq!(stats.spans_sent + stats.spans_dropped(), created, "{stats}");
    assert_eq!(stats.spans_buffered, 0);
    tracer::stop();
    agent.assert_no_errors();
}
