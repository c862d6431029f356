//! A span that can move between threads while open.

use std::borrow::Cow;
use std::sync::{Arc, Mutex, PoisonError};

use crate::record::SpanRecord;
use crate::trace::TraceShared;

/// A span open on any thread (the state of a [`crate::Span`]): its record
/// behind a lock, bound to its trace. The thread stack refers to it while
/// the span is entered; the trace, weakly, while it is the root.
pub(crate) struct SpanInner {
    pub(crate) trace: Arc<TraceShared>,
    pub(crate) span_id: u64,
    pub(crate) service: Option<Cow<'static, str>>,
    /// `None` once finished.
    record: Mutex<Option<SpanRecord>>,
}

impl SpanInner {
    pub(crate) fn new(
        trace: Arc<TraceShared>,
        span_id: u64,
        service: Option<Cow<'static, str>>,
        record: SpanRecord,
    ) -> SpanInner {
        SpanInner {
            trace,
            span_id,
            service,
            record: Mutex::new(Some(record)),
        }
    }

    pub(crate) fn with_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        if let Some(record) = self
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_mut()
        {
            f(record);
        }
    }

    pub(crate) fn finish(&self, end: impl FnOnce(&mut SpanRecord)) {
        let record = self
            .record
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(mut record) = record {
            end(&mut record);
            self.trace.release_one(record);
        }
    }
}
