//! Spans that can move between threads: roots, manual spans, and the spans
//! of futures.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::SystemTime;

use crate::context::stack::{self, FrameRef};
use crate::context::SpanContext;
use crate::record::SpanRecord;
use crate::span::handle::{span_methods, SpanHandle};
use crate::span::LocalSpanGuard;
use crate::trace::{SpanInner, TraceShared};
use crate::util::clock;

/// A span that may be sent to and finished on any thread. It finishes when
/// [`Span::finish`] is called or when it is dropped; finishing twice is
/// harmless.
///
/// Its setters and getters ([`set_tag`](Span::set_tag),
/// [`set_error`](Span::set_error), [`context`](Span::context), ...) are the
/// same methods as on [`SpanRef`](crate::SpanRef) and
/// [`LocalSpanGuard`](crate::LocalSpanGuard).
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

    /// A span that records nothing: every method is a no-op. What a span
    /// is when tracing is off or no tracer runs.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::Span::noop();
    /// span.set_tag("ignored", 1);
    /// assert!(!span.is_recording());
    /// assert!(span.context().is_none());
    /// ```
    pub fn noop() -> Span {
        Span { inner: None }
    }

    /// Finishes the span now; later calls (and the drop) do nothing.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::start_span("upload");
    /// span.finish();
    /// span.set_tag("too.late", 1); // not recorded: the span is finished
    /// ```
    pub fn finish(&self) {
        if let Some(inner) = &self.inner {
            let end = clock::now();
            inner.finish(|record| record.finish(end));
        }
    }

    /// Finishes the span at a given wall-clock time.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::{Duration, SystemTime};
    ///
    /// let started = SystemTime::now() - Duration::from_millis(30);
    /// let span = ddspan_runtime::tracer::span("replayed").start_time(started).start();
    /// span.finish_at(started + Duration::from_millis(20));
    /// ```
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
            frame: self.enter_raw(),
            _span: PhantomData,
        }
    }

    /// Enters the span and keeps it: the span is active until the returned
    /// guard drops, and then finishes (what [`tracer::trace`] returns).
    ///
    /// [`tracer::trace`]: crate::tracer::trace
    ///
    /// # Examples
    ///
    /// ```
    /// let request = ddspan_runtime::tracer::span("http.request").resource("GET /").start().entered();
    /// request.set_tag("http.status_code", 200);
    /// let _query = ddspan_runtime::tracer::trace("db.query"); // a child of http.request
    /// ```
    pub fn entered(self) -> EnteredSpan {
        let frame = self.enter_raw();
        EnteredSpan(Entry::Owned {
            span: self,
            frame,
            _not_send: PhantomData,
        })
    }

    /// The old name of [`Span::log_context`].
    #[doc(hidden)]
    #[deprecated(since = "0.1.0", note = "renamed `log_context`")]
    pub fn log(&self) -> Option<crate::LogContext> {
        self.log_context()
    }

    fn enter_raw(&self) -> FrameRef {
        match &self.inner {
            Some(inner) => stack::enter(inner),
            None => FrameRef::NONE,
        }
    }
}

impl SpanHandle for Span {
    fn handle_is_recording(&self) -> bool {
        self.inner.is_some()
    }

    fn handle_span_id(&self) -> u64 {
        self.inner.as_ref().map_or(0, |inner| inner.span_id)
    }

    fn handle_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        if let Some(inner) = &self.inner {
            inner.with_record(f);
        }
    }

    fn handle_context(&self) -> Option<SpanContext> {
        self.inner
            .as_ref()
            .map(|inner| SpanContext::local(&inner.trace, inner.span_id, inner.service.clone()))
    }

    fn handle_trace(&self) -> Option<Arc<TraceShared>> {
        self.inner.as_ref().map(|inner| Arc::clone(&inner.trace))
    }
}

span_methods!(
    Span,
    "let span = ddspan_runtime::tracer::start_span(\"op\");"
);

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

/// The guard of [`Span::enter`]: the span is active until it drops. It
/// borrows the span, which finishes later (when dropped or finished).
#[must_use = "the span is active only while the guard lives"]
pub struct Entered<'a> {
    frame: FrameRef,
    _span: PhantomData<(&'a Span, *const ())>,
}

impl std::fmt::Debug for Entered<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entered")
            .field("span_id", &self.frame.span_id)
            .finish()
    }
}

impl Drop for Entered<'_> {
    fn drop(&mut self) {
        stack::exit(self.frame);
    }
}

/// The guard of [`Span::entered`] and [`tracer::trace`]: the span is active
/// on this thread until the guard drops, and then finishes (Python's
/// `with tracer.trace(name) as span`). The pair reads as in `tracing`:
/// `enter()` gives an [`Entered`] borrow, `entered()` an owning
/// `EnteredSpan`.
///
/// Its setters and getters are the same methods as on [`Span`],
/// [`SpanRef`](crate::SpanRef) and [`LocalSpanGuard`](crate::LocalSpanGuard).
///
/// A span from [`tracer::trace`] lives on this thread's stack, as a
/// `#[dd_span]` span does (no shared allocation, no lock): it cannot move
/// to another thread, and a [`SpanRef`](crate::SpanRef) to it used on
/// another thread does nothing. Make a [`Span`] (`tracer::span(..).start()`)
/// for a span that must be finished or tagged elsewhere.
///
/// [`tracer::trace`]: crate::tracer::trace
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, EnteredSpan};
///
/// let request: EnteredSpan = tracer::trace("http.request");
/// request.set_resource("GET /users/:id");
/// ```
#[must_use = "the span finishes when the guard drops"]
pub struct EnteredSpan(Entry);

/// What an [`EnteredSpan`] holds.
enum Entry {
    /// A span on this thread's stack (what `tracer::trace` makes), or none.
    Stack(LocalSpanGuard),
    /// A [`Span`] made elsewhere, entered here until the guard drops.
    Owned {
        span: Span,
        frame: FrameRef,
        _not_send: PhantomData<*const ()>,
    },
}

/// The old name of [`EnteredSpan`].
#[doc(hidden)]
#[deprecated(since = "0.1.0", note = "renamed `EnteredSpan`")]
pub type ActiveSpan = EnteredSpan;

impl EnteredSpan {
    /// A span on this thread's stack named `name`, child of the active span
    /// (or a new root): what [`tracer::trace`](crate::tracer::trace) makes.
    /// When the stack cannot be used (thread teardown), the span is a
    /// [`Span`] entered as before.
    pub(crate) fn on_stack(name: Cow<'static, str>) -> EnteredSpan {
        if !crate::runtime::registry::is_running() {
            return EnteredSpan(Entry::Stack(LocalSpanGuard::from_frame(FrameRef::NONE)));
        }
        match stack::push_named_child_of_active(name) {
            Ok(frame) => EnteredSpan(Entry::Stack(LocalSpanGuard::from_frame(frame))),
            Err(name) => crate::span::SpanBuilder::new(name).start().entered(),
        }
    }

    /// Finishes the span now (the same as dropping the guard).
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::trace("batch");
    /// span.finish();
    /// ```
    pub fn finish(self) {
        drop(self);
    }
}

impl SpanHandle for EnteredSpan {
    fn handle_is_recording(&self) -> bool {
        match &self.0 {
            Entry::Stack(guard) => guard.handle_is_recording(),
            Entry::Owned { span, .. } => span.handle_is_recording(),
        }
    }

    fn handle_span_id(&self) -> u64 {
        match &self.0 {
            Entry::Stack(guard) => guard.handle_span_id(),
            Entry::Owned { span, .. } => span.handle_span_id(),
        }
    }

    fn handle_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        match &self.0 {
            Entry::Stack(guard) => guard.handle_record(f),
            Entry::Owned { span, .. } => span.handle_record(f),
        }
    }

    fn handle_context(&self) -> Option<SpanContext> {
        match &self.0 {
            Entry::Stack(guard) => guard.handle_context(),
            Entry::Owned { span, .. } => span.handle_context(),
        }
    }

    fn handle_trace(&self) -> Option<Arc<TraceShared>> {
        match &self.0 {
            Entry::Stack(guard) => guard.handle_trace(),
            Entry::Owned { span, .. } => span.handle_trace(),
        }
    }
}

span_methods!(
    EnteredSpan,
    "let span = ddspan_runtime::tracer::trace(\"op\");"
);

impl Drop for EnteredSpan {
    fn drop(&mut self) {
        // A stack span's guard leaves (and notices a panic) as it drops; an
        // owned span is left here, then finishes (and notices a panic) as
        // its field drops.
        if let Entry::Owned { frame, .. } = &self.0 {
            stack::exit(*frame);
        }
    }
}

impl std::fmt::Debug for EnteredSpan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EnteredSpan")
            .field("span_id", &self.handle_span_id())
            .finish()
    }
}

#[cfg(feature = "tracing")]
impl Span {
    /// Makes this span the active span of this thread and hands back its
    /// frame, for a caller that leaves it later with `stack::exit` from a
    /// place that cannot hold an [`Entered`] guard (the `tracing` bridge's
    /// `on_enter` / `on_exit`). [`FrameRef::NONE`] for a span that records
    /// nothing.
    pub(crate) fn enter_frame(&self) -> FrameRef {
        self.enter_raw()
    }
}
