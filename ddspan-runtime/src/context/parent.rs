//! What `#[dd_span(child_of = ...)]` and the span builder accept as a
//! parent: a context, an optional one, or incoming headers to extract it
//! from.

use crate::context::SpanContext;

/// A source of a parent span context.
pub trait ParentSource {
    /// The parent, or `None` for a new root.
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
