//! Handles on spans that are already running: the active span
//! ([`current_span`]) and the local root of its trace
//! ([`current_root_span`]), Python's `tracer.current_span()` and
//! `tracer.current_root_span()`.

use std::borrow::Cow;
use std::marker::PhantomData;

use crate::context::correlation::LogContext;
use crate::context::stack;
use crate::context::stack::Target;
use crate::context::SpanContext;
use crate::record::tag::TagValue;

/// A handle on a running span: tags, errors and the resource can be set on
/// it; it does not finish the span. It stays on the thread that took it.
#[must_use]
pub struct SpanRef {
    target: Target,
    _not_send: PhantomData<*const ()>,
}

impl SpanRef {
    pub(crate) fn new(target: Target) -> SpanRef {
        SpanRef {
            target,
            _not_send: PhantomData,
        }
    }

    fn with_record(&self, f: impl FnOnce(&mut crate::record::SpanRecord)) {
        match &self.target {
            Target::Local(span_id) => stack::with_local_record(*span_id, f),
            Target::Shared(inner) => inner.with_record(f),
        }
    }

    /// Sets a tag (strings to `meta`, numbers and booleans to `metrics`).
    pub fn set_tag(&self, key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
        self.with_record(|record| record.set_tag(key.into(), value.into()));
    }

    /// Sets the resource.
    pub fn set_resource(&self, resource: impl Into<Cow<'static, str>>) {
        self.with_record(|record| record.set_resource(resource.into()));
    }

    /// Marks the span as an error from a standard error.
    pub fn set_error<E: std::error::Error + ?Sized>(&self, error: &E) {
        let fields = crate::ErrorFields::from_error(error);
        self.with_record(|record| fields.apply(record));
    }

    /// Marks or unmarks the span as an error.
    pub fn set_error_flag(&self, error: bool) {
        self.with_record(|record| record.error = error);
    }

    /// The span's id.
    pub fn span_id(&self) -> u64 {
        match &self.target {
            Target::Local(span_id) => *span_id,
            Target::Shared(inner) => inner.span_id,
        }
    }

    /// The span's context, to continue its trace elsewhere.
    pub fn context(&self) -> Option<SpanContext> {
        match &self.target {
            Target::Local(span_id) => stack::context_of(*span_id),
            Target::Shared(inner) => Some(SpanContext::local(
                &inner.trace,
                inner.span_id,
                inner.service.clone(),
            )),
        }
    }

    /// The log correlation fields of this span (see [`LogContext`]).
    pub fn log(&self) -> Option<LogContext> {
        self.context().map(|context| LogContext::of(&context))
    }
}

/// The active span of this thread (or of the future being polled).
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let _request = tracer::trace("request");
/// if let Some(span) = tracer::current_span() {
///     span.set_tag("user.id", 42);
/// }
/// ```
pub fn current_span() -> Option<SpanRef> {
    stack::active_target().map(SpanRef::new)
}

/// The local root of the active span's trace: the span that began it in
/// this process.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let _request = tracer::trace("request");
/// let _query = tracer::trace("query");
/// tracer::current_root_span().unwrap().set_tag("http.route", "/users");
/// ```
pub fn current_root_span() -> Option<SpanRef> {
    stack::root_target().map(SpanRef::new)
}
