//! The guard of a span that lives on one thread from start to end: what
//! `#[dd_span]` uses on sync functions.

use std::borrow::Cow;
use std::marker::PhantomData;

use crate::context::stack::{self, with_local_record, Parent};
use crate::context::SpanContext;
use crate::record::spec::SpanSpec;
use crate::record::tag::TagValue;
use crate::record::SpanRecord;
use crate::runtime::registry;

/// A span that lives on this thread, from its start until the guard drops:
/// the fastest kind of span, used by `#[dd_span]` on sync functions.
///
/// While the guard lives, the span is the active span of this thread. The
/// guard is neither `Send` nor `Sync`: the span must finish on the thread
/// that started it. When tracing is off, the guard is empty and costs one
/// load.
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
    span_id: u64,
    _not_send: PhantomData<*const ()>,
}

impl LocalSpanGuard {
    /// Starts a span described by a static [`SpanSpec`] as a child of the
    /// active span (or as a new root) and makes it active.
    #[inline]
    pub fn start(spec: &'static SpanSpec) -> LocalSpanGuard {
        let span_id = if registry::is_running() {
            stack::push_local(spec, Parent::Active)
        } else {
            0
        };
        LocalSpanGuard {
            span_id,
            _not_send: PhantomData,
        }
    }

    /// Starts a span with an explicit parent (`None`: a new root), e.g. a
    /// context extracted from a request, and makes it active.
    pub fn start_child_of(spec: &'static SpanSpec, parent: Option<SpanContext>) -> LocalSpanGuard {
        let span_id = if registry::is_running() {
            stack::push_local(spec, Parent::Explicit(parent))
        } else {
            0
        };
        LocalSpanGuard {
            span_id,
            _not_send: PhantomData,
        }
    }

    /// Whether this guard records a span (tracing on and a tracer running).
    pub fn is_recording(&self) -> bool {
        self.span_id != 0
    }

    /// The span's id (0 when not recording).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Sets a tag on this span.
    pub fn set_tag(&self, key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
        self.with_record(|record| record.set_tag(key.into(), value.into()));
    }

    /// Marks this span as an error with the error's fields (what a returned
    /// `Err` records).
    pub fn record_error(&self, error: crate::ErrorFields) {
        self.with_record(|record| error.apply(record));
    }

    fn with_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        if self.span_id != 0 {
            with_local_record(self.span_id, f);
        }
    }
}

impl Drop for LocalSpanGuard {
    #[inline]
    fn drop(&mut self) {
        if self.span_id != 0 {
            if std::thread::panicking() {
                self.with_record(crate::span::panic::mark_unwinding);
            }
            stack::exit(self.span_id);
        }
    }
}

impl std::fmt::Debug for LocalSpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSpanGuard")
            .field("span_id", &self.span_id)
            .finish()
    }
}
