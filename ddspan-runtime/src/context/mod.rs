//! Where a span lives while it is open: its [`SpanContext`] (what other spans
//! are parented on), the sources of a parent, this thread's stack of active
//! spans, and the log correlation fields derived from a context.

pub(crate) mod correlation;
pub(crate) mod parent;
mod span_context;
pub(crate) mod stack;

pub use span_context::*;
