//! Log lines carry the active span's correlation fields, through the `log`
//! crate wrapper and the `tracing-subscriber` event format.

use std::sync::{Arc, Mutex};

use ddspan::integrations::log::CorrelatedLogger;
use ddspan::integrations::tracing::CorrelatedFormat;
use ddspan::tracer;
use ddspan::{Config, MemoryExporter};

struct Capture(Arc<Mutex<Vec<String>>>);

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }
    fn log(&self, record: &log::Record<'_>) {
        self.0.lock().unwrap().push(record.args().to_string());
    }
    fn flush(&self) {}
}

#[derive(Clone, Default)]
struct Buffer(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Buffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn log_and_tracing_lines_carry_the_trace() {
    tracer::start(
        Config::builder()
            .service("logs")
            .env("test")
            .startup_logs(false)
            .memory_exporter(MemoryExporter::new())
            .build(),
    );
    let lines = Arc::new(Mutex::new(Vec::new()));
    log::set_boxed_logger(Box::new(CorrelatedLogger::new(Capture(Arc::clone(&lines))))).unwrap();
    log::set_max_level(log::LevelFilter::Info);

    log::info!("before any span");
    let span = tracer::trace("job");
    let expected = span.log_context().unwrap().to_string();
    log::info!("inside the job");

    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .event_format(CorrelatedFormat::new(
            tracing_subscriber::fmt::format().with_ansi(false),
        ))
        .finish();
    tracing::subscriber::with_default(subscriber, || tracing::info!("from tracing"));
    drop(span);

    let lines = lines.lock().unwrap();
    assert_eq!(lines[0], "before any span", "no span, nothing appended");
    assert_eq!(lines[1], format!("inside the job {expected}"));
    assert!(
        expected.contains("dd.service=logs dd.env=test dd.trace_id=\""),
        "{expected}"
    );
    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    assert!(output.starts_with(&expected), "{output}");
    assert!(output.contains("from tracing"), "{output}");
    tracer::stop();
}
