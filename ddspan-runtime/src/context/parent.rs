//! What `#[dd_span(child_of = ...)]` and the span builder accept as a
//! parent: a context, an optional one, or incoming headers to extract it
//! from.

use crate::context::SpanContext;
use crate::propagation::Extractor;

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

/// Headers: the context is extracted with the tracer's styles; headers
/// without a valid context give a new root.
impl<T: Extractor + ?Sized> ParentSource for &T {
    fn into_parent(self) -> Option<SpanContext> {
        match crate::tracer::extract(self) {
            Ok(context) => Some(context),
            Err(error) => {
                crate::util::diagnostics::debug(format_args!(
                    "child_of: {error}; starting a new trace"
                ));
                None
            }
        }
    }
}
