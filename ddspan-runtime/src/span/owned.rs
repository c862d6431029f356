//! Spans that can move between threads: roots, manual spans, and the spans
//! of futures.

use std::borrow::Cow;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use crate::context::stack;
use crate::context::SpanContext;
use crate::record::spec::SpanSpec;
use crate::record::tag::TagValue;
use crate::record::{SpanRecord, DYNAMIC};
use crate::trace::{TraceSeed, TraceShared};
use crate::tracer;
use crate::util::clock;
use crate::util::id;

/// The shared part of a [`Span`]: the thread stack refers to it while the
/// span is entered.
pub(crate) struct SpanInner {
    pub(crate) trace: Arc<TraceShared>,
    pub(crate) span_id: u64,
    pub(crate) service: Option<Cow<'static, str>>,
    /// `None` once finished.
    record: Mutex<Option<SpanRecord>>,
}

impl SpanInner {
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

    fn finish(&self, end: impl FnOnce(&mut SpanRecord)) {
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

/// Where a new span's parent comes from.
enum Parent {
    /// The active span of this thread, else a new root.
    Active,
    /// This context, or a new root when `None`.
    Explicit(Option<SpanContext>),
}

/// Options for a new [`Span`]; see [`tracer::span`].
#[must_use = "call .start() to start the span"]
pub struct SpanBuilder {
    spec: &'static SpanSpec,
    name: Option<Cow<'static, str>>,
    resource: Option<Cow<'static, str>>,
    service: Option<Cow<'static, str>>,
    span_type: Option<Cow<'static, str>>,
    tags: Vec<(Cow<'static, str>, TagValue)>,
    parent: Parent,
    start_time: Option<SystemTime>,
}

impl SpanBuilder {
    pub(crate) fn new(name: Cow<'static, str>) -> SpanBuilder {
        SpanBuilder {
            name: Some(name),
            ..SpanBuilder::from_spec(&DYNAMIC)
        }
    }

    /// A builder for a span described at compile time (what `#[dd_span]` on
    /// an `async fn` uses): the spec's strings are never copied.
    pub fn from_spec(spec: &'static SpanSpec) -> SpanBuilder {
        SpanBuilder {
            spec,
            name: None,
            resource: None,
            service: None,
            span_type: None,
            tags: Vec::new(),
            parent: Parent::Active,
            start_time: None,
        }
    }

    /// Sets the resource (the name by default).
    pub fn resource(mut self, resource: impl Into<Cow<'static, str>>) -> SpanBuilder {
        self.resource = Some(resource.into());
        self
    }

    /// Sets the service (the parent's, else the tracer's, by default).
    pub fn service(mut self, service: impl Into<Cow<'static, str>>) -> SpanBuilder {
        self.service = Some(service.into());
        self
    }

    /// Sets the span type (`web`, `sql`, `http`, ...).
    pub fn span_type(mut self, span_type: impl Into<Cow<'static, str>>) -> SpanBuilder {
        self.span_type = Some(span_type.into());
        self
    }

    /// Adds a tag.
    pub fn tag(
        mut self,
        key: impl Into<Cow<'static, str>>,
        value: impl Into<TagValue>,
    ) -> SpanBuilder {
        self.tags.push((key.into(), value.into()));
        self
    }

    /// Makes the span a child of this parent: a `SpanContext` (or a
    /// reference to one), an `Option` of one (`None`: a new root, so an
    /// extraction's `.ok()` can be passed straight in), or incoming headers
    /// to extract it from.
    pub fn child_of(mut self, parent: impl crate::ParentSource) -> SpanBuilder {
        self.parent = Parent::Explicit(parent.into_parent());
        self
    }

    /// Sets an explicit wall-clock start time.
    pub fn start_time(mut self, start: SystemTime) -> SpanBuilder {
        self.start_time = Some(start);
        self
    }

    /// Starts the span (not made active; see [`Span::enter`]).
    pub fn start(self) -> Span {
        match self.try_start() {
            Some(inner) => {
                let inner = Arc::new(inner);
                if inner.trace.root_span_id == inner.span_id {
                    inner.trace.set_root_span(&inner);
                }
                Span { inner: Some(inner) }
            }
            None => Span::noop(),
        }
    }

    /// Marks the span as measured (`_dd.measured`): the agent computes
    /// trace metrics for it even when it is not a service entry.
    pub fn measured(self) -> SpanBuilder {
        self.tag("_dd.measured", 1)
    }

    fn try_start(self) -> Option<SpanInner> {
        let core = tracer::current()?;
        let span_id = id::new_span_id();
        let own_service = self.service.or(self.spec.service.map(Cow::Borrowed));
        let (trace, parent_id, parent_service, parent_is_local) = match self.parent {
            Parent::Active => match stack::active_parent() {
                Some(parent) => (parent.trace, parent.span_id, parent.service, true),
                None => {
                    let service = own_service.as_deref().unwrap_or(&core.config.service);
                    (
                        TraceSeed::begin(&core, span_id, None, service, clock::now()).share(),
                        0,
                        None,
                        false,
                    )
                }
            },
            Parent::Explicit(None) => {
                let service = own_service.as_deref().unwrap_or(&core.config.service);
                (
                    TraceSeed::begin(&core, span_id, None, service, clock::now()).share(),
                    0,
                    None,
                    false,
                )
            }
            Parent::Explicit(Some(context)) => {
                let joined = context
                    .local_trace
                    .clone()
                    .filter(|trace| trace.try_acquire());
                let is_local = context.local_trace.is_some();
                let trace = joined.unwrap_or_else(|| {
                    let service = own_service.as_deref().unwrap_or(&core.config.service);
                    TraceSeed::begin(&core, span_id, Some(&context), service, clock::now()).share()
                });
                (trace, context.span_id, context.service.clone(), is_local)
            }
        };
        let top_level = !parent_is_local
            || own_service.as_deref().is_some_and(|service| {
                service != parent_service.as_deref().unwrap_or(&core.config.service)
            });
        let service = own_service.or(parent_service);
        let mut record = match self.name {
            Some(name) => SpanRecord::named(span_id, parent_id, name),
            None => SpanRecord::new(span_id, parent_id, self.spec),
        };
        if let Some(resource) = self.resource {
            record.set_resource(resource);
        }
        if let Some(span_type) = self.span_type {
            record.set_span_type(span_type);
        }
        if let Some(service) = service
            .as_ref()
            .filter(|s| Some(s.as_ref()) != self.spec.service)
        {
            record.set_service(service.clone());
        }
        record.top_level = top_level;
        for (key, value) in self.tags {
            record.set_tag(key, value);
        }
        if let Some(start) = self.start_time {
            record.start = clock::system_time_nanos(start);
        }
        Some(SpanInner {
            trace,
            span_id,
            service,
            record: Mutex::new(Some(record)),
        })
    }
}
