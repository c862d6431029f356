//! The writer against an agent that answers badly on purpose
//! ([`support::fault_agent`]): what is retried, what waits, what is split,
//! what is dropped, and that every span is accounted for.

mod support;

use std::time::{Duration, Instant};

use ddspan::tracer;
use ddspan::ConfigBuilder;
use support::fault_agent::{FaultAgent, Reply};
use support::session::one_span_traces as traces;

fn start_tracer(url: &str) -> std::sync::MutexGuard<'static, ()> {
    start_tracer_with(url, |b| b)
}

/// The tests' tracer with the default two retries, and service `faults`
/// (the agent's rates below are for it).
fn start_tracer_with(
    url: &str,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> std::sync::MutexGuard<'static, ()> {
    support::session::tracer_at(url, |b| configure(b.service("faults").max_retries(2u32)))
}

#[test]
fn a_5xx_is_retried_then_delivered() {
    let agent = FaultAgent::scripted(vec![Reply::status(503, "busy"), Reply::ok()]);
    let _guard = start_tracer(&agent.url());
    drop(tracer::trace("retried"));
    assert!(tracer::flush(Duration::from_secs(5)));
    let stats = tracer::stats();
    assert_eq!(agent.requests().len(), 2, "one failure, one retry");
    assert_eq!(
        (stats.spans_sent, stats.retries, stats.send_failures),
        (1, 1, 1)
    );
    assert_eq!(stats.spans_dropped(), 0);
    assert_eq!(agent.span_count(), 1);
    tracer::stop();
    agent.assert_no_errors();
}

/// A redirect is a misconfiguration (the URL points at something other than
/// the agent): dropped at once and counted, never followed or resent (each
/// 8 MB payload went three times).
#[test]
fn a_3xx_is_dropped_at_once_not_retried() {
    let agent = FaultAgent::scripted(vec![Reply::status(301, "moved")]);
    let _guard = start_tracer(&agent.url());
    traces("redirected", 2);
    assert!(!tracer::flush(Duration::from_secs(5)), "spans were lost");
    assert!(tracer::flush(Duration::from_secs(5)), "and settled");
    let stats = tracer::stats();
    assert_eq!(agent.requests().len(), 1, "sent once");
    assert_eq!(
        (stats.retries, stats.spans_dropped_send_failed),
        (0, 2),
        "{stats}"
    );
    tracer::stop();
}

#[test]
fn a_4xx_is_never_retried_and_is_counted() {
    let agent = FaultAgent::scripted(vec![Reply::status(400, "bad payload")]);
    let _guard = start_tracer(&agent.url());
    {
        let _root = tracer::trace("rejected");
        drop(tracer::trace("child"));
    }
    assert!(
        !tracer::flush(Duration::from_secs(5)),
        "a dropped payload is a loss"
    );
    assert!(
        tracer::flush(Duration::from_secs(5)),
        "and settled: none since"
    );
    let stats = tracer::stats();
    assert_eq!(agent.requests().len(), 1);
    assert_eq!(stats.retries, 0);
    assert_eq!(
        (
            stats.spans_dropped_send_failed,
            stats.traces_dropped_send_failed
        ),
        (2, 1)
    );
    tracer::stop();
}

#[test]
fn retries_of_a_5xx_are_bounded_then_the_payload_is_dropped() {
    let agent = FaultAgent::scripted(vec![Reply::status(500, "down")]);
    let _guard = start_tracer(&agent.url());
    drop(tracer::trace("lost"));
    assert!(!tracer::flush(Duration::from_secs(5)), "the span was lost");
    let requests = agent.requests();
    assert_eq!(requests.len(), 3, "one attempt and two retries");
    // Exponential back-off: 20 ms, then 40 ms.
    assert!(requests[2].at - requests[1].at >= Duration::from_millis(40));
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(20));
    let stats = tracer::stats();
    assert_eq!((stats.retries, stats.spans_dropped_send_failed), (2, 1));
    assert_eq!(stats.spans_buffered, 0);
    tracer::stop();
}

/// A request written whole, then the connection lost before any answer:
/// the agent may have taken it, so it is never sent again (dd-trace-go and
/// ddtrace resend it, and a slow agent then holds the spans twice). It is
/// counted as unconfirmed, apart from what was lost.
#[test]
fn a_request_sent_whole_and_left_unanswered_is_never_sent_again() {
    let agent = FaultAgent::scripted(vec![Reply::drop_connection(), Reply::ok()]);
    let _guard = start_tracer(&agent.url());
    drop(tracer::trace("unanswered"));
    assert!(
        !tracer::flush(Duration::from_secs(5)),
        "whether the agent has the span is not known"
    );
    assert_eq!(agent.requests().len(), 1, "not sent a second time");
    let stats = tracer::stats();
    assert_eq!(stats.retries, 0);
    assert_eq!(stats.spans_unconfirmed, 1);
    assert_eq!(stats.spans_dropped_send_failed, 0);
    assert_eq!(
        stats.spans_queued,
        stats.spans_sent + stats.spans_unconfirmed + stats.spans_buffered
    );
    // What comes next goes out as usual.
    drop(tracer::trace("next"));
    assert!(tracer::flush(Duration::from_secs(5)));
    assert_eq!(agent.span_count(), 1);
    tracer::stop();
}

/// The suite's old flake: an agent that takes longer than the request
/// timeout to decode a big payload before it answers. The answer is
/// waited for (at least 10 s once the request is written), and the spans
/// arrive once.
#[test]
fn a_slow_answer_after_the_whole_request_is_waited_for_not_resent() {
    let agent = FaultAgent::scripted(vec![Reply::ok().after(Duration::from_secs(3))]);
    let _guard = start_tracer_with(&agent.url(), |b| b.request_timeout(Duration::from_secs(1)));
    traces("slow-answer", 3);
    assert!(tracer::flush(Duration::from_secs(20)));
    assert_eq!(agent.requests().len(), 1);
    assert_eq!(agent.span_count(), 3);
    let stats = tracer::stats();
    assert_eq!(
        (stats.retries, stats.spans_sent, stats.spans_unconfirmed),
        (0, 3, 0)
    );
    tracer::stop();
}

#[test]
fn a_429_waits_for_retry_after_and_keeps_the_payload() {
    let agent = FaultAgent::scripted(vec![
        Reply::status(429, "slow down").retry_after("1"),
        Reply::status(429, "slow down").retry_after("1"),
        Reply::status(429, "slow down").retry_after("1"),
        Reply::ok(),
    ]);
    let _guard = start_tracer(&agent.url());
    traces("throttled", 3);
    assert!(tracer::flush(Duration::from_secs(10)));
    let requests = agent.requests();
    assert_eq!(requests.len(), 4);
    for pair in requests.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= Duration::from_millis(950),
            "Retry-After: 1 honoured, got {gap:?}"
        );
    }
    let stats = tracer::stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped(), stats.send_failures),
        (3, 0, 3),
        "a 429 is not one of the bounded retries: nothing lost"
    );
    assert_eq!(agent.span_count(), 3);
    tracer::stop();
}

#[test]
fn a_429_without_retry_after_backs_off() {
    let agent = FaultAgent::scripted(vec![
        Reply::status(429, ""),
        Reply::status(429, ""),
        Reply::ok(),
    ]);
    let _guard = start_tracer(&agent.url());
    drop(tracer::trace("throttled"));
    assert!(tracer::flush(Duration::from_secs(5)));
    let requests = agent.requests();
    assert_eq!(requests.len(), 3);
    assert!(requests[1].at - requests[0].at >= Duration::from_millis(20));
    assert!(requests[2].at - requests[1].at >= Duration::from_millis(40));
    assert_eq!(agent.span_count(), 1);
    tracer::stop();
}

#[test]
fn a_413_splits_the_payload_until_the_halves_fit() {
    // The agent takes at most 2 traces per payload.
    let agent = SizeLimitedAgent::start(2);
    let _guard = start_tracer_with(&agent.inner.url(), |b| {
        b.flush_interval(Duration::from_secs(60))
    });
    traces("big", 7);
    assert!(tracer::flush(Duration::from_secs(10)));
    let stats = tracer::stats();
    assert_eq!(stats.spans_sent, 7);
    assert_eq!(stats.spans_dropped(), 0);
    // 7 -> 3 + 4 -> (1 + 2) + (2 + 2): three splits.
    assert_eq!(stats.payloads_split, 3);
    let mut names: Vec<String> = agent.inner.spans().into_iter().map(|s| s.name).collect();
    names.sort();
    let mut expected: Vec<String> = (0..7).map(|i| format!("big-{i}")).collect();
    expected.sort();
    assert_eq!(names, expected, "every trace once");
    tracer::stop();
    agent.inner.assert_no_errors();
}

#[test]
fn a_single_trace_too_large_is_dropped_and_counted() {
    let agent = SizeLimitedAgent::start(0);
    let _guard = start_tracer(&agent.inner.url());
    {
        let _root = tracer::trace("huge");
        drop(tracer::trace("child"));
    }
    assert!(!tracer::flush(Duration::from_secs(5)), "the trace was lost");
    let stats = tracer::stats();
    assert_eq!(
        (stats.spans_dropped_send_failed, stats.payloads_split),
        (2, 0)
    );
    assert_eq!(agent.inner.requests().len(), 1, "never resent as is");
    tracer::stop();
}

/// Answers 413 to payloads of more than `max_traces` traces.
struct SizeLimitedAgent {
    inner: FaultAgent,
}

impl SizeLimitedAgent {
    fn start(max_traces: usize) -> SizeLimitedAgent {
        // The decision needs the payload: answer from the trace-count header.
        let inner = FaultAgent::start_with_request(move |_, headers| {
            let traces: usize = headers["x-datadog-trace-count"].parse().unwrap();
            if traces > max_traces {
                Reply::status(413, "Request Entity Too Large")
            } else {
                Reply::ok()
            }
        });
        SizeLimitedAgent { inner }
    }
}

#[test]
fn a_garbage_answer_is_ignored_and_the_sampling_rates_stay() {
    let rates = r#"{"rate_by_service":{"service:faults,env:test":0.0,"service:,env:":1.0}}"#;
    let agent = FaultAgent::scripted(vec![
        Reply::status(200, rates),
        Reply::status(200, "<html>not json</html>"),
        Reply::status(
            200,
            r#"{"rate_by_service":{"service:faults,env:test":"high"}}"#,
        ),
        Reply::status(200, "\u{0}\u{1}\u{2}"),
    ]);
    let _guard = start_tracer(&agent.url());
    drop(tracer::trace("sets-rates"));
    assert!(tracer::flush(Duration::from_secs(5)));
    for i in 0..3 {
        drop(tracer::trace(format!("after-garbage-{i}")));
        assert!(tracer::flush(Duration::from_secs(5)));
    }
    tracer::stop();
    let stats = tracer::stats();
    assert_eq!((stats.spans_sent, stats.send_failures), (4, 0));
    for span in agent.spans().iter().filter(|s| s.name != "sets-rates") {
        assert_eq!(
            span.metrics["_sampling_priority_v1"], 0.0,
            "{}: the agent's rate of 0 still decides",
            span.name
        );
        assert_eq!(span.metrics["_dd.agent_psr"], 0.0);
    }
}

#[test]
fn stop_returns_within_its_timeout_when_no_agent_listens() {
    let port = FaultAgent::closed_port();
    let _guard = start_tracer_with(&format!("http://127.0.0.1:{port}"), |b| {
        b.shutdown_timeout(Duration::from_secs(1))
    });
    traces("nowhere", 5);
    let started = Instant::now();
    let delivered = tracer::stop();
    assert!(!delivered);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
    let stats = tracer::stats();
    assert_eq!(stats.spans_dropped_send_failed, 5);
    assert_eq!(stats.spans_buffered, 0);
}

#[test]
fn without_an_agent_flush_and_stop_give_up_after_the_bounded_retries() {
    let port = FaultAgent::closed_port();
    // A long shutdown timeout: giving up must not wait for it.
    let _guard = start_tracer_with(&format!("http://127.0.0.1:{port}"), |b| {
        b.shutdown_timeout(Duration::from_secs(30))
    });
    traces("short-program", 3);
    let started = Instant::now();
    assert!(!tracer::flush(Duration::from_secs(30)));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "one try and two retries (20 ms, 40 ms): {:?}",
        started.elapsed()
    );
    assert_eq!(tracer::stats().spans_buffered, 3, "kept for later");
    let started = Instant::now();
    assert!(!tracer::stop());
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(tracer::stats().spans_dropped_send_failed, 3);
}

#[test]
fn stop_returns_within_its_timeout_when_the_agent_hangs() {
    let agent = FaultAgent::scripted(vec![Reply::ok().after(Duration::from_secs(30))]);
    let _guard = start_tracer_with(&agent.url(), |b| {
        b.shutdown_timeout(Duration::from_secs(1))
            .request_timeout(Duration::from_secs(20))
    });
    traces("hung", 3);
    let started = Instant::now();
    assert!(!tracer::stop());
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "the request is cut at the shutdown deadline: {:?}",
        started.elapsed()
    );
    // Written whole, never answered: perhaps taken, not confirmed.
    assert_eq!(tracer::stats().spans_unconfirmed, 3);
}

#[test]
fn stop_delivers_everything_when_the_agent_is_up() {
    let agent = FaultAgent::healthy();
    let _guard = start_tracer_with(&agent.url(), |b| b.flush_interval(Duration::from_secs(60)));
    traces("at-stop", 500);
    assert!(tracer::stop(), "everything delivered");
    assert_eq!(agent.span_count(), 500);
    let stats = tracer::stats();
    assert_eq!((stats.spans_sent, stats.spans_dropped()), (500, 0));
}

#[test]
fn the_agents_sampling_rates_decide_later_traces() {
    let rates = r#"{"rate_by_service":{"service:faults,env:test":0.0,"service:,env:":1.0}}"#;
    let agent = FaultAgent::scripted(vec![Reply::status(200, rates)]);
    let _guard = start_tracer(&agent.url());
    drop(tracer::trace("before-rates"));
    assert!(tracer::flush(Duration::from_secs(5)));
    drop(tracer::trace("after-rates"));
    drop(tracer::span("other-service").service("billing").start());
    assert!(tracer::flush(Duration::from_secs(5)));
    tracer::stop();

    let spans = agent.spans();
    let span = |name: &str| spans.iter().find(|s| s.name == name).unwrap();
    let before = span("before-rates");
    assert_eq!(before.metrics["_sampling_priority_v1"], 1.0);
    assert_eq!(before.meta["_dd.p.dm"], "-0");
    let after = span("after-rates");
    assert_eq!(
        after.metrics["_sampling_priority_v1"], 0.0,
        "dropped, and still sent"
    );
    assert_eq!(after.metrics["_dd.agent_psr"], 0.0);
    assert!(!after.meta.contains_key("_dd.p.dm"));
    let other = span("other-service");
    assert_eq!(
        other.metrics["_sampling_priority_v1"], 1.0,
        "the default rate applies"
    );
    assert_eq!(other.meta["_dd.p.dm"], "-1");

    let requests = agent.requests();
    let headers = &requests[0].headers;
    assert_eq!(headers["content-type"], "application/msgpack");
    assert_eq!(headers["x-datadog-trace-count"], "1");
    assert_eq!(headers["datadog-meta-lang"], "rust");
    assert_eq!(
        headers["datadog-meta-tracer-version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(!headers["datadog-meta-lang-version"].is_empty());
}
