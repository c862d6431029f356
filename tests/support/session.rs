//! One traced test: its own test agent, the global tracer pointed at it, and
//! a lock so tests of one binary never share the (process-wide) tracer.

use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ddspan::tracer;
use ddspan::{AgentUrl, Config, ConfigBuilder, Stats};
use serde_json::Value;

use super::agent::TestAgent;

static TRACER_LOCK: Mutex<()> = Mutex::new(());

/// A test's tracer, running against its own ddapm-test-agent until dropped.
pub struct Traced {
    /// The test agent this test's spans go to.
    pub agent: TestAgent,
    _lock: MutexGuard<'static, ()>,
}

/// Starts a test agent and the tracer with the tests' defaults (service
/// `ddspan-tests`, env `test`, version `0.0.1`, a 100 ms flush interval),
/// adjusted by `configure`.
pub fn traced_with(configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder) -> Traced {
    // Start the agent before taking the lock, so agents of parallel tests boot together.
    let agent = TestAgent::start();
    traced_on(agent, configure, true)
}

/// [`traced_with`] and no adjustments.
pub fn traced() -> Traced {
    traced_with(|b| b)
}

/// The tracer pointed at an agent already started (e.g. on a unix socket);
/// `http` false means the caller's `configure` sets the agent URL.
pub fn traced_on(
    agent: TestAgent,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
    http: bool,
) -> Traced {
    let lock = TRACER_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let mut builder = Config::builder()
        .service("ddspan-tests")
        .env("test")
        .version("0.0.1")
        .startup_logs(false)
        .flush_interval(Duration::from_millis(100));
    if http {
        builder = builder.agent_url(AgentUrl::Http(agent.url()));
    }
    tracer::start(configure(builder).build());
    Traced { agent, _lock: lock }
}

impl Traced {
    /// Flushes the tracer and waits until the agent holds `spans` spans.
    pub fn collect(&self, spans: usize) -> Vec<Vec<Value>> {
        assert!(tracer::flush(Duration::from_secs(10)), "flush timed out");
        self.agent.wait_for_spans(spans, Duration::from_secs(20))
    }
}

impl Drop for Traced {
    fn drop(&mut self) {
        tracer::stop();
    }
}

/// The global tracer pointed at `url` (a stand-in agent), with the
/// defaults of the tests that drive the writer (service `ddspan-tests`, env
/// `test`, a 50 ms flush interval, 20 ms retry back-off, no startup log),
/// adjusted by `configure`. Holds this binary's tracer lock until dropped;
/// the tracer keeps running (the next test's start stops it).
pub fn tracer_at(
    url: &str,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> MutexGuard<'static, ()> {
    let lock = TRACER_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let builder = Config::builder()
        .service("ddspan-tests")
        .env("test")
        .agent_url(AgentUrl::Http(url.to_owned()))
        .startup_logs(false)
        .flush_interval(Duration::from_millis(50))
        .retry_backoff(Duration::from_millis(20));
    tracer::start(configure(builder).build());
    lock
}

/// `count` one-span traces named `name-<i>`, each handed to the writer when
/// it ends.
pub fn one_span_traces(name: &str, count: usize) {
    for i in 0..count {
        drop(tracer::trace(format!("{name}-{i}")));
    }
}

/// Polls `done` every 2 ms; panics naming `what` after `timeout`, with the
/// tracer's counters.
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + timeout;
    while !done() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}: {}",
            tracer::stats()
        );
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Every span the writer took is, once: sent, unconfirmed, dropped, left
/// unsent as a P0 counted in client stats, or buffered.
pub fn assert_accounted(stats: &Stats) {
    assert_eq!(
        stats.spans_queued,
        stats.spans_sent
            + stats.spans_unconfirmed
            + stats.spans_dropped_send_failed
            + stats.spans_dropped_buffer_full
            + stats.spans_p0_dropped
            + stats.spans_buffered,
        "{stats:?}"
    );
}
