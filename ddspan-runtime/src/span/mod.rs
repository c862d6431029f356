//! Where a span is born and how the application holds it: the builder, the
//! span types (owned, thread-local guard, handles on running spans, futures)
//! with the one set of setters they share, and what a returned error or a
//! panic records on it.

mod builder;
pub(crate) mod error;
mod guard;
pub(crate) mod handle;
pub(crate) mod instrument;
mod owned;
pub(crate) mod panic;
pub(crate) mod span_ref;

pub use builder::SpanBuilder;
pub use guard::LocalSpanGuard;
pub use owned::*;
