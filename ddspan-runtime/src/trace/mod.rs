//! Where a trace is assembled: the spans of one trace id in this process
//! are gathered until all have finished (or a partial flush is due), then
//! handed to the exporters as one chunk.

mod open_span;
mod seed;
mod shared;

pub(crate) use open_span::SpanInner;
pub(crate) use seed::{Continued, TraceSeed};
pub(crate) use shared::*;
