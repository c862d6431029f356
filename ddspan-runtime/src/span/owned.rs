//! Spans that can move between threads: roots, manual spans, and the spans
//! of futures.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use crate::context::stack;
use crate::context::SpanContext;
use crate::record::tag::TagValue;
use crate::trace::SpanInner;
use crate::util::clock;

/// A span that may be sent to and finished on any thread. It finishes when
/// [`Span::finish`] is called or when it is dropped; finishing twice is
/// harmless.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let span = tracer::start_span("upload");
/// span.set_tag("bytes", 1024);
/// span.set_tag("bucket", "media");
/// std::thread::spawn(move || span.finish()).join().unwrap();
/// ```
#[must_use = "a span finishes when dropped"]
pub struct Span {
    inner: Option<Arc<SpanInner>>,
}

impl Span {
    pub(crate) fn from_inner(inner: Arc<SpanInner>) -> Span {
        Span { inner: Some(inner) }
    }

    /// A span that records nothing.
    pub fn noop() -> Span {
        Span { inner: None }
    }

    /// Whether this span records anything.
    pub fn is_recording(&self) -> bool {
        self.inner.is_some()
    }

    /// Sets a tag: strings go to `meta`; integers, floats and booleans to
    /// `metrics`.
    pub fn set_tag(&self, key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
        if let Some(inner) = &self.inner {
            inner.with_record(|record| record.set_tag(key.into(), value.into()));
        }
    }

    /// Sets the resource.
    pub fn set_resource(&self, resource: impl Into<Cow<'static, str>>) {
        if let Some(inner) = &self.inner {
            inner.with_record(|record| record.set_resource(resource.into()));
        }
    }

    /// Marks or unmarks the span as an error (Python's `span.error = 1`).
    pub fn set_error_flag(&self, error: bool) {
        if let Some(inner) = &self.inner {
            inner.with_record(|record| record.error = error);
        }
    }

    /// Marks the span as an error: `error.message`, `error.type` and the
    /// `source()` chain as `error.stack`, the same fields `#[dd_span]` sets.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::start_span("upload");
    /// span.set_error(&std::io::Error::other("disk full"));
    /// ```
    pub fn set_error<E: std::error::Error + ?Sized>(&self, error: &E) {
        self.record_error(crate::ErrorFields::from_error(error));
    }

    /// Marks the span as an error with the error's fields (what a returned
    /// `Err` records).
    pub fn record_error(&self, error: crate::ErrorFields) {
        if let Some(inner) = &self.inner {
            inner.with_record(|record| error.apply(record));
        }
    }

    /// Sets a W3C baggage item: it travels with the trace to downstream
    /// services (the `baggage` style), as in dd-trace-go.
    pub fn set_baggage_item(&self, key: impl Into<String>, value: impl Into<String>) {
        if let Some(inner) = &self.inner {
            inner.trace.set_baggage(key.into(), value.into());
        }
    }

    /// A baggage item of this span's trace.
    pub fn baggage_item(&self, key: &str) -> Option<String> {
        let context = self.context()?;
        context
            .baggage()
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
    }

    /// The log correlation fields of this span (`dd.trace_id`, ...).
    pub fn log(&self) -> Option<crate::LogContext> {
        self.context()
            .map(|context| crate::LogContext::of(&context))
    }

    /// This span's context, to parent spans on other threads or services.
    /// `None` for a span that records nothing.
    pub fn context(&self) -> Option<SpanContext> {
        self.inner
            .as_ref()
            .map(|inner| SpanContext::local(&inner.trace, inner.span_id, inner.service.clone()))
    }

    /// Finishes the span now.
    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            let end = clock::now();
            inner.finish(|record| record.finish(end));
        }
    }

    /// Finishes the span at a given wall-clock time.
    pub fn finish_at(&self, end: SystemTime) {
        if let Some(inner) = &self.inner {
            inner.finish(|record| record.finish_at_unix(clock::system_time_nanos(end)));
        }
    }

    /// Makes this span the active span of this thread until the returned
    /// guard drops.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::start_span("batch");
    /// {
    ///     let _entered = span.enter();
    ///     let _item = ddspan_runtime::tracer::trace("item"); // child of "batch"
    /// }
    /// ```
    pub fn enter(&self) -> Entered<'_> {
        Entered {
            span_id: self.enter_raw(),
            _span: PhantomData,
        }
    }

    /// Enters the span and keeps it: the span is active until the returned
    /// guard drops, and then finishes.
    pub fn entered(self) -> ActiveSpan {
        let span_id = self.enter_raw();
        ActiveSpan {
            span: self,
            span_id,
            _not_send: PhantomData,
        }
    }

    fn enter_raw(&self) -> u64 {
        match &self.inner {
            Some(inner) if stack::enter(inner) => inner.span_id,
            _ => 0,
        }
    }
}

impl Drop for Span {
    fn drop(&mut self) {
        if std::thread::panicking() {
            if let Some(inner) = &self.inner {
                inner.with_record(crate::span::panic::mark_unwinding);
            }
        }
        self.finish();
    }
}

impl std::fmt::Debug for Span {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Span")
            .field("context", &self.context())
            .finish()
    }
}

/// The guard of [`Span::enter`]: the span is active until it drops.
#[must_use = "the span is active only while the guard lives"]
pub struct Entered<'a> {
    span_id: u64,
    _span: PhantomData<(&'a Span, *const ())>,
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        if self.span_id != 0 {
            stack::exit(self.span_id);
        }
    }
}

/// A span that is active on this thread until this guard drops, and then
/// finishes: Python's `with tracer.trace(name) as span`.
#[must_use = "the span finishes when the guard drops"]
pub struct ActiveSpan {
    span: Span,
    span_id: u64,
    _not_send: PhantomData<*const ()>,
}

impl std::ops::Deref for ActiveSpan {
    type Target = Span;

    fn deref(&self) -> &Span {
        &self.span
    }
}

impl Drop for ActiveSpan {
    fn drop(&mut self) {
        if self.span_id != 0 {
            stack::exit(self.span_id);
        }
        // The span itself finishes (and notices a panic) when its field drops.
    }
}
