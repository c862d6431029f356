//! The agent down: absent when the tracer starts, or gone mid-run. Spans
//! finished meanwhile wait in the writer's buffer and arrive once it is
//! back, each exactly once.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use ddspan::tracer;
use ddspan::ConfigBuilder;
use support::agent::TestAgent;
use support::fault_agent::{FaultAgent, Reply};
use support::session::wait_until;

fn start_tracer(port: u16) -> std::sync::MutexGuard<'static, ()> {
    start_tracer_with(port, |b| b)
}

fn start_tracer_with(
    port: u16,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> std::sync::MutexGuard<'static, ()> {
    support::session::tracer_at(&format!("http://127.0.0.1:{port}"), configure)
}

fn traces(name: &str, count: usize) {
    for i in 0..count {
        let _root = tracer::trace(format!("{name}-{i}"));
        drop(tracer::trace(format!("{name}-{i}-child")));
    }
}

/// Waits until the writer has tried the absent agent at least `n` times.
fn wait_for_failures(n: u64) {
    wait_until("the writer's tries", Duration::from_secs(10), || {
        tracer::stats().send_failures >= n
    });
}

/// Waits until the writer holds `spans` spans (it takes chunks every few
/// milliseconds).
fn wait_for_buffered(spans: u64) {
    wait_until(
        &format!("{spans} spans buffered"),
        Duration::from_secs(10),
        || tracer::stats().spans_buffered == spans,
    );
}

fn assert_each_once(names: Vec<String>, expected: impl IntoIterator<Item = String>) {
    let unique: HashSet<&String> = names.iter().collect();
    assert_eq!(unique.len(), names.len(), "a span arrived twice: {names:?}");
    let expected: HashSet<String> = expected.into_iter().collect();
    let got: HashSet<String> = names.into_iter().collect();
    assert_eq!(got, expected);
}

fn expected_names(name: &str, count: usize) -> Vec<String> {
    (0..count)
        .flat_map(|i| [format!("{name}-{i}"), format!("{name}-{i}-child")])
        .collect()
}

#[test]
fn spans_finished_before_the_agent_starts_arrive_once_it_is_up() {
    let port = FaultAgent::closed_port();
    let _guard = start_tracer(port);
    traces("early", 50);
    wait_for_failures(3);
    assert!(
        !tracer::flush(Duration::from_millis(200)),
        "nothing can be delivered yet"
    );
    wait_for_buffered(100);
    assert_eq!(tracer::stats().spans_dropped(), 0);

    let agent = FaultAgent::start_on(port, |_| Reply::ok());
    assert!(tracer::flush(Duration::from_secs(10)));
    assert_each_once(
        agent.spans().into_iter().map(|s| s.name).collect(),
        expected_names("early", 50),
    );
    let stats = tracer::stats();
    assert_eq!((stats.spans_sent, stats.spans_buffered), (100, 0));
    assert_eq!(stats.spans_dropped(), 0);
    tracer::stop();
    agent.assert_no_errors();
}

#[test]
fn the_test_agent_started_late_receives_what_was_buffered() {
    let port = FaultAgent::closed_port();
    let _guard = start_tracer(port);
    traces("before-agent", 20);
    wait_for_failures(2);

    let agent = TestAgent::builder().port(port).start();
    traces("after-agent", 5);
    assert!(tracer::flush(Duration::from_secs(10)));
    let spans = support::agent::flatten(agent.wait_for_spans(50, Duration::from_secs(20)));
    let names = spans
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_each_once(
        names,
        expected_names("before-agent", 20)
            .into_iter()
            .chain(expected_names("after-agent", 5)),
    );
    agent.assert_no_check_failures();
    tracer::stop();
}

#[test]
fn an_agent_that_goes_away_and_comes_back_misses_nothing() {
    let first = FaultAgent::healthy();
    let port = first.port();
    let _guard = start_tracer(port);
    traces("up", 10);
    assert!(tracer::flush(Duration::from_secs(5)));
    drop(first);

    traces("down", 30);
    wait_for_failures(2);
    traces("still-down", 30);
    wait_for_buffered(120);

    let second = FaultAgent::start_on(port, |_| Reply::ok());
    assert!(tracer::flush(Duration::from_secs(10)));
    assert_each_once(
        second.spans().into_iter().map(|s| s.name).collect(),
        expected_names("down", 30)
            .into_iter()
            .chain(expected_names("still-down", 30)),
    );
    let stats = tracer::stats();
    assert_eq!(
        (
            stats.spans_sent,
            stats.spans_dropped(),
            stats.spans_buffered
        ),
        (140, 0, 0)
    );
    tracer::stop();
}

#[test]
fn the_test_agent_restarted_mid_run_misses_nothing() {
    let first = TestAgent::start();
    let port = first.port();
    let _guard = start_tracer(port);
    traces("before-restart", 5);
    assert!(tracer::flush(Duration::from_secs(10)));
    assert_eq!(
        support::agent::flatten(first.wait_for_spans(10, Duration::from_secs(20))).len(),
        10
    );
    drop(first); // the process is killed and reaped

    traces("while-down", 15);
    wait_for_failures(1);
    let second = TestAgent::builder().port(port).start();
    assert!(tracer::flush(Duration::from_secs(10)));
    let spans = support::agent::flatten(second.wait_for_spans(30, Duration::from_secs(20)));
    let names = spans
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect();
    assert_each_once(names, expected_names("while-down", 15));
    second.assert_no_check_failures();
    let stats = tracer::stats();
    assert_eq!(
        (stats.spans_sent, stats.spans_dropped()),
        (40, 0),
        "{stats}"
    );
    tracer::stop();
}

#[test]
fn the_buffer_keeps_what_fits_and_counts_the_rest() {
    let port = FaultAgent::closed_port();
    let _lock = start_tracer_with(port, |b| b.buffer_bytes(16 * 1024usize));
    traces("overflow", 500);
    wait_for_failures(1);
    assert!(!tracer::flush(Duration::from_millis(100)));
    let stats = tracer::stats();
    assert!(stats.spans_dropped_buffer_full > 0, "{stats}");
    assert!(
        stats.bytes_buffered_peak < 16 * 1024 + 1024,
        "the cap plus at most one trace: {stats:?}"
    );
    assert_eq!(
        stats.spans_buffered + stats.spans_dropped_buffer_full,
        1000,
        "every span buffered or counted: {stats}"
    );
    let buffered = stats.spans_buffered;

    let agent = FaultAgent::start_on(port, |_| Reply::ok());
    assert!(tracer::flush(Duration::from_secs(10)));
    assert_eq!(agent.span_count() as u64, buffered);
    let stats = tracer::stats();
    assert_eq!(
        stats.spans_sent + stats.spans_dropped_buffer_full,
        1000,
        "{stats}"
    );
    tracer::stop();
}
