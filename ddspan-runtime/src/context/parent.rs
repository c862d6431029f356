//! What `#[dd_span(child_of = ...)]` and the span builder accept as a
//! parent: a context, an optional one, or incoming headers to extract it
//! from.

use crate::context::SpanContext;

/// A source of a parent span context, what
/// [`SpanBuilder::child_of`](crate::SpanBuilder::child_of) and
/// `#[dd_span(child_of = ...)]` accept: a [`SpanContext`] (or a reference),
/// an `Option` of one (`None`: a new root), or a reference to incoming
/// headers (any [`Extractor`](crate::Extractor)), extracted with the
/// tracer's styles.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, ParentSource, SpanContext};
///
/// let remote = SpanContext::remote(0xabc, 0xdef, Some(1));
/// assert_eq!(remote.clone().into_parent().map(|c| c.span_id()), Some(0xdef));
/// let _span = tracer::span("job").child_of(remote).start();
/// ```
pub trait ParentSource {
    /// The parent, or `None` for a new root.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{ParentSource, SpanContext};
    ///
    /// assert!(None::<SpanContext>.into_parent().is_none());
    /// ```
    fn into_parent(self) -> Option<SpanContext>;
}

impl ParentSource for SpanContext {
    fn into_parent(self) -> Option<SpanContext> {
        Some(self)
    }
}

impl ParentSource for Option<SpanContext> {
    fn into_parent(self) -> Option<SpanContext> {
        self
    }
}

impl ParentSource for &SpanContext {
    fn into_parent(self) -> Option<SpanContext> {
        Some(self.clone())
    }
}

impl ParentSource for &Option<SpanContext> {
    fn into_parent(self) -> Option<SpanContext> {
        self.clone()
    }
}
