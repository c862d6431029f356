//! Handles on spans that are already running: the active span
//! ([`current_span`]) and the local root of its trace
//! ([`current_root_span`]), Python's `tracer.current_span()` and
//! `tracer.current_root_span()`.

use std::sync::Arc;

use crate::context::stack;
use crate::context::stack::Target;
use crate::context::SpanContext;
use crate::record::SpanRecord;
use crate::span::handle::{span_methods, SpanHandle};
use crate::trace::TraceShared;

/// A handle on a running span, from [`tracer::current_span`] or
/// [`tracer::current_root_span`]: it sets tags, errors, the resource and
/// baggage with the same methods as [`Span`](crate::Span) and
/// [`LocalSpanGuard`](crate::LocalSpanGuard); it does not finish the span.
///
/// It is `Send` and `Sync`, so a handler may hold it across `.await` (an
/// axum handler's future must be `Send`). It holds what identifies the
/// span: a span that may move (a [`Span`](crate::Span), an `async fn`'s
/// under `#[dd_span]`) is reached from any thread; a sync `#[dd_span]`
/// function's span lives in its thread's stack, and is reached only from
/// that thread: elsewhere the setters do nothing (its `context()` is
/// `None` there).
///
/// [`tracer::current_span`]: crate::tracer::current_span
/// [`tracer::current_root_span`]: crate::tracer::current_root_span
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let _request = tracer::trace("request");
/// let _query = tracer::trace("query");
/// if let Some(root) = tracer::current_root_span() {
///     root.set_tag("http.route", "/users/:id");
/// }
/// ```
#[must_use]
pub struct SpanRef {
    target: Target,
}

impl SpanRef {
    pub(crate) fn new(target: Target) -> SpanRef {
        SpanRef { target }
    }

    /// The old name of [`SpanRef::log_context`].
    #[doc(hidden)]
    #[deprecated(since = "0.1.0", note = "renamed `log_context`")]
    pub fn log(&self) -> Option<crate::LogContext> {
        self.log_context()
    }
}

impl SpanHandle for SpanRef {
    /// A handle is only given for a span that records.
    fn handle_is_recording(&self) -> bool {
        true
    }

    fn handle_span_id(&self) -> u64 {
        match &self.target {
            Target::Local(span_id) => *span_id,
            Target::Shared(inner) => inner.span_id,
        }
    }

    fn handle_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        match &self.target {
            Target::Local(span_id) => stack::with_local_record(*span_id, f),
            Target::Shared(inner) => inner.with_record(f),
        }
    }

    fn handle_context(&self) -> Option<SpanContext> {
        match &self.target {
            Target::Local(span_id) => stack::context_of(*span_id),
            Target::Shared(inner) => Some(SpanContext::local(
                &inner.trace,
                inner.span_id,
                inner.service.clone(),
            )),
        }
    }

    fn handle_trace(&self) -> Option<Arc<TraceShared>> {
        match &self.target {
            Target::Local(span_id) => stack::context_of(*span_id)?.local_trace,
            Target::Shared(inner) => Some(Arc::clone(&inner.trace)),
        }
    }
}

span_methods!(
    SpanRef,
    "let _op = ddspan_runtime::tracer::trace(\"op\");
let Some(span) = ddspan_runtime::tracer::current_span() else { return };"
);

// Handles cross threads and `.await`s (see the type's docs).
const _: fn() = || {
    fn send_and_sync<T: Send + Sync>() {}
    send_and_sync::<SpanRef>();
};

impl std::fmt::Debug for SpanRef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanRef")
            .field("span_id", &self.handle_span_id())
            .finish()
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
///
/// Held across `.await` in a future that must be `Send`:
///
/// ```
/// use ddspan_runtime::tracer;
///
/// fn spawn<F: std::future::Future + Send + 'static>(_: F) {}
/// spawn(async {
///     let span = tracer::current_span();
///     std::future::ready(()).await;
///     if let Some(span) = span {
///         span.set_tag("http.status_code", 200);
///     }
/// });
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
