//! The tracer's HTTP client writes nothing into the application's logs: an
//! application with a `log` logger at `Trace` (or tracing-log) sees no
//! record from ddspan's dependencies while traces are sent.

mod support;

use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use ddspan::tracer;
use support::fault_agent::FaultAgent;

/// Every record logged in this process, as `target: message`.
static RECORDS: Mutex<Vec<String>> = Mutex::new(Vec::new());

struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        RECORDS
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(format!("{}: {}", record.target(), record.args()));
    }

    fn flush(&self) {}
}

#[test]
fn sending_traces_logs_nothing_through_the_applications_logger() {
    log::set_logger(&Capture).expect("the only logger of this binary");
    log::set_max_level(log::LevelFilter::Trace);
    log::info!("the application's own record");

    let agent = FaultAgent::healthy();
    let _lock = support::session::tracer_at(&agent.url(), |b| b);
    for _ in 0..3 {
        drop(tracer::trace("logged"));
        assert!(tracer::flush(Duration::from_secs(10)));
    }
    tracer::stop();
    assert_eq!(agent.span_count(), 3);

    let records = RECORDS.lock().unwrap_or_else(PoisonError::into_inner);
    let foreign: Vec<&String> = records
        .iter()
        .filter(|r| !r.starts_with("transport_logs:"))
        .collect();
    assert!(
        foreign.is_empty(),
        "{} records reached the application's logger: {foreign:#?}",
        foreign.len()
    );
    assert_eq!(records.len(), 1, "the application's own record is there");
}
