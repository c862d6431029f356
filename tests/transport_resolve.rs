//! An agent host that does not resolve (a container name not up yet) is an
//! agent not there yet: the payload is kept for later, as for a refused
//! connection, not retried a bounded number of times and dropped.
//!
//! The host is under `.invalid`, which never resolves (RFC 6761); ddspan
//! answers that itself, without a DNS query, so this test never leaves the
//! machine.

mod support;

use std::time::Duration;

use ddspan::tracer;

#[test]
fn an_agent_host_that_does_not_resolve_keeps_the_payload() {
    let _lock =
        support::session::tracer_at("http://ddspan-agent.invalid:8126", |b| b.max_retries(2u32));
    support::session::one_span_traces("unresolved", 3);
    let flushed = tracer::flush(Duration::from_secs(2));
    let stats = tracer::stats();
    assert!(stats.send_failures >= 1, "{stats}");
    assert_eq!(
        (stats.spans_buffered, stats.spans_dropped_send_failed),
        (3, 0),
        "kept for when the host resolves: {stats}"
    );
    assert!(!flushed, "nothing can be delivered");
    tracer::stop();
}
