//! The guard of a span that lives on one thread from start to end: what
//! `#[dd_span]` uses on sync functions.

use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::stack::{self, with_local_record, FrameRef, Parent};
use crate::context::SpanContext;
use crate::record::spec::SpanSpec;
use crate::record::SpanRecord;
use crate::runtime::registry;
use crate::span::handle::{span_methods, SpanHandle};
use crate::trace::TraceShared;

/// A span that lives on this thread, from its start until the guard drops:
/// the fastest kind of span, used by `#[dd_span]` on sync functions.
///
/// While the guard lives, the span is the active span of this thread. The
/// guard is neither `Send` nor `Sync`: the span must finish on the thread
/// that started it. When tracing is off, the guard is empty and costs one
/// load.
///
/// Its setters and getters ([`set_tag`](LocalSpanGuard::set_tag),
/// [`set_error`](LocalSpanGuard::set_error),
/// [`context`](LocalSpanGuard::context), ...) are the same methods as on
/// [`Span`](crate::Span) and [`SpanRef`](crate::SpanRef).
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{LocalSpanGuard, SpanSpec};
///
/// static SPEC: SpanSpec = SpanSpec::new("parse.config");
/// fn parse() {
///     let _span = LocalSpanGuard::start(&SPEC);
///     // ... the span covers the rest of this scope
/// }
/// parse();
/// ```
#[must_use = "the span finishes when the guard drops"]
pub struct LocalSpanGuard {
    frame: FrameRef,
    _not_send: PhantomData<*const ()>,
}

impl LocalSpanGuard {
    /// Starts a span described by a static [`SpanSpec`] as a child of the
    /// active span (or as a new root) and makes it active.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{LocalSpanGuard, SpanSpec};
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("cache.get").with_span_type("cache");
    /// let span = LocalSpanGuard::start(&SPEC);
    /// span.set_tag("cache.hit", true);
    /// ```
    #[inline]
    pub fn start(spec: &'static SpanSpec) -> LocalSpanGuard {
        let frame = if registry::is_running() {
            stack::push_child_of_active(spec)
        } else {
            FrameRef::NONE
        };
        LocalSpanGuard {
            frame,
            _not_send: PhantomData,
        }
    }

    /// The guard of a frame already pushed on this thread's stack
    /// ([`FrameRef::NONE`]: a guard of nothing).
    pub(crate) fn from_frame(frame: FrameRef) -> LocalSpanGuard {
        LocalSpanGuard {
            frame,
            _not_send: PhantomData,
        }
    }

    /// Starts a span with an explicit parent (`None`: a new root), e.g. a
    /// context extracted from a request, and makes it active.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, LocalSpanGuard, SpanSpec};
    ///
    /// static SPEC: SpanSpec = SpanSpec::new("http.server");
    /// let headers = vec![
    ///     ("x-datadog-trace-id".to_owned(), "1890081292213679918".to_owned()),
    ///     ("x-datadog-parent-id".to_owned(), "7628922200302827473".to_owned()),
    /// ];
    /// let _span = LocalSpanGuard::start_child_of(&SPEC, tracer::extract(&headers).ok());
    /// ```
    pub fn start_child_of(spec: &'static SpanSpec, parent: Option<SpanContext>) -> LocalSpanGuard {
        let parent = Parent::Explicit(parent);
        let terminated = crate::span::builder::terminated_links(&parent);
        let frame = if registry::is_running() {
            stack::push_local(spec, parent)
        } else {
            FrameRef::NONE
        };
        let guard = LocalSpanGuard {
            frame,
            _not_send: PhantomData,
        };
        for link in terminated {
            guard.handle_record(|record| record.add_link(link, 0));
        }
        guard
    }
}

impl SpanHandle for LocalSpanGuard {
    #[inline]
    fn handle_is_recording(&self) -> bool {
        self.frame.span_id != 0
    }

    fn handle_span_id(&self) -> u64 {
        self.frame.span_id
    }

    #[inline]
    fn handle_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        if self.frame.span_id != 0 {
            with_local_record(self.frame.span_id, f);
        }
    }

    fn handle_context(&self) -> Option<SpanContext> {
        if self.frame.span_id == 0 {
            return None;
        }
        stack::context_of(self.frame.span_id)
    }

    fn handle_trace(&self) -> Option<Arc<TraceShared>> {
        self.handle_context()?.local_trace
    }
}

span_methods!(
    LocalSpanGuard,
    "use ddspan_runtime::{LocalSpanGuard, SpanSpec};
static SPEC: SpanSpec = SpanSpec::new(\"op\");
let span = LocalSpanGuard::start(&SPEC);"
);

impl Drop for LocalSpanGuard {
    #[inline]
    fn drop(&mut self) {
        if self.frame.span_id != 0 {
            if std::thread::panicking() {
                self.handle_record(crate::span::panic::mark_unwinding);
            }
            stack::exit(self.frame);
        }
    }
}

impl std::fmt::Debug for LocalSpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSpanGuard")
            .field("span_id", &self.frame.span_id)
            .finish()
    }
}
