//! An exporter that keeps finished spans in memory instead of sending them:
//! for fast tests of instrumentation, ddspan's own and its users'.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use crate::export::stats::{add, Counters};
use crate::export::Export;
use crate::record::tag::StaticValue;
use crate::record::Chunk;
use crate::record::SpanRecord;

/// A finished span as [`MemoryExporter`] keeps it: the span's own fields and
/// tags (tracer-wide tags such as `env` are left out). `#[non_exhaustive]`:
/// read its fields; more may come.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct FinishedSpan {
    /// The full 128-bit trace id.
    pub trace_id: u128,
    /// The span id.
    pub span_id: u64,
    /// The parent's span id, 0 for a root.
    pub parent_id: u64,
    /// The operation name.
    pub name: String,
    /// The resource (the name unless set).
    pub resource: String,
    /// The service.
    pub service: String,
    /// The span type, empty unless set.
    pub span_type: String,
    /// Whether the span is marked as an error.
    pub error: bool,
    /// String tags.
    pub meta: BTreeMap<String, String>,
    /// Numeric tags.
    pub metrics: BTreeMap<String, f64>,
    /// Nanoseconds from start to finish.
    pub duration_nanos: u64,
}

/// Keeps finished spans in memory; install it with
/// [`crate::ConfigBuilder::memory_exporter`].
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, Config, MemoryExporter};
///
/// let spans = MemoryExporter::new();
/// tracer::start(Config::builder().memory_exporter(spans.clone()).build());
/// drop(tracer::trace("checked"));
/// assert_eq!(spans.take()[0].name, "checked");
/// tracer::stop();
/// ```
#[derive(Clone, Debug, Default)]
pub struct MemoryExporter {
    spans: Arc<Mutex<Vec<FinishedSpan>>>,
}

impl MemoryExporter {
    /// An empty exporter.
    pub fn new() -> MemoryExporter {
        MemoryExporter::default()
    }

    /// The spans finished so far, in the order their traces completed.
    pub fn spans(&self) -> Vec<FinishedSpan> {
        self.lock().clone()
    }

    /// Takes the spans finished so far, leaving none.
    pub fn take(&self) -> Vec<FinishedSpan> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<FinishedSpan>> {
        self.spans.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn export(&self, chunk: &Chunk, default_service: &str) {
        let spans = chunk
            .spans
            .iter()
            .map(|span| finished(chunk.trace_id, span, default_service));
        self.lock().extend(spans);
    }
}

fn finished(trace_id: u128, span: &SpanRecord, default_service: &str) -> FinishedSpan {
    let mut meta = BTreeMap::new();
    let mut metrics = BTreeMap::new();
    for tag in span.spec.tags {
        match tag.value {
            StaticValue::Str(value) => meta.insert(tag.key.to_owned(), value.to_owned()),
            StaticValue::Number(value) => metrics
                .insert(tag.key.to_owned(), value)
                .map(|_| String::new()),
        };
    }
    for (key, value) in span.meta() {
        metrics.remove(key.as_ref());
        meta.insert(key.to_string(), value.to_string());
    }
    for (key, value) in span.metrics() {
        meta.remove(key.as_ref());
        metrics.insert(key.to_string(), *value);
    }
    FinishedSpan {
        trace_id,
        span_id: span.span_id,
        parent_id: span.parent_id,
        name: span.name().to_owned(),
        resource: span.resource().unwrap_or(span.name()).to_owned(),
        service: span.service().unwrap_or(default_service).to_owned(),
        span_type: span.span_type().unwrap_or_default().to_owned(),
        error: span.error,
        meta,
        metrics,
        duration_nanos: span.duration_ns,
    }
}

/// A [`MemoryExporter`] as the tracer shows it chunks: what it keeps counts
/// as sent.
pub(crate) struct MemorySink {
    spans: MemoryExporter,
    /// The service of spans that set none.
    service: String,
    counters: Arc<Counters>,
}

impl MemorySink {
    pub(crate) fn new(
        spans: MemoryExporter,
        service: &str,
        counters: &Arc<Counters>,
    ) -> MemorySink {
        MemorySink {
            spans,
            service: service.to_owned(),
            counters: Arc::clone(counters),
        }
    }
}

impl Export for MemorySink {
    fn export(&self, chunk: &Chunk) {
        self.spans.export(chunk, &self.service);
        add(&self.counters.spans_sent, chunk.spans.len());
        add(&self.counters.traces_sent, 1);
    }
}
