//! Where a trace is assembled: the spans of one trace id in this process
//! are gathered until all have finished (or a partial flush is due), then
//! handed to the exporters as one chunk.

mod shared;

pub(crate) use shared::*;
