//! Log lines carry the active span's correlation fields, through the `log`
//! crate wrapper and the `tracing-subscriber` event format (text, and JSON
//! that stays JSON).

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
    json_lines_keep_one_object();
    tracer::stop();
}

/// With `.json()`, every line is one JSON object, and the
/// correlation fields are members of it (with `LogContext`'s values), next
/// to the event's own; a line with no active span has none.
fn json_lines_keep_one_object() {
    let buffer = Buffer::default();
    let writer = buffer.clone();
    let subscriber = tracing_subscriber::fmt()
        .json()
        .with_writer(move || writer.clone())
        .map_event_format(CorrelatedFormat::new)
        .finish();
    let mut expected = Vec::new();
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!(user = "ada", "no span yet");
        let _request = tracing::info_span!("request", id = 7).entered();
        let span = tracer::trace("json.job");
        expected.push(span.log_context().unwrap());
        tracing::warn!(attempt = 2, "inside \"quoted\" {{braces}}");
        let child = tracer::trace("json.child");
        expected.push(child.log_context().unwrap());
        tracing::error!("in the child");
    });
    let output = String::from_utf8(buffer.0.lock().unwrap().clone()).unwrap();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert_eq!(lines.len(), 3, "{output}");
    assert!(
        lines[0]
            .as_object()
            .unwrap()
            .keys()
            .all(|k| !k.starts_with("dd.")),
        "no span, no fields: {}",
        lines[0]
    );
    assert_eq!(lines[0]["fields"]["user"], "ada");
    for (line, fields) in lines[1..].iter().zip(&expected) {
        assert_eq!(line["dd.trace_id"], fields.trace_id_text(), "{line}");
        assert_eq!(line["dd.span_id"], fields.span_id.to_string(), "{line}");
        assert_eq!(line["dd.service"], "logs", "{line}");
        assert_eq!(line["dd.env"], "test", "{line}");
        assert!(line.get("dd.version").is_none(), "no version set: {line}");
        assert!(line["timestamp"].is_string(), "the event's own: {line}");
    }
    assert_eq!(lines[1]["fields"]["message"], "inside \"quoted\" {braces}");
    assert_eq!(lines[1]["fields"]["attempt"], 2);
    assert_eq!(lines[1]["level"], "WARN");
    assert_eq!(
        lines[1]["span"]["id"], 7,
        "span fields, as JSON: {}",
        lines[1]
    );
    assert_eq!(lines[2]["level"], "ERROR");
    assert_eq!(lines[1]["dd.trace_id"], lines[2]["dd.trace_id"]);
    assert_ne!(lines[1]["dd.span_id"], lines[2]["dd.span_id"]);
}
