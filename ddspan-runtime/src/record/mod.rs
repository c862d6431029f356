//! What a span is made of, as data: its compile-time description
//! ([`SpanSpec`]), tags, the record that carries it from start to export,
//! the chunk an exporter receives, and the reuse of record buffers.
//!
//! Everything above this folder builds or moves records; nothing here
//! knows about threads, traces in progress or the agent.

pub(crate) mod global_tags;
pub(crate) mod pool;
mod span_record;
pub(crate) mod spec;
pub(crate) mod tag;

pub(crate) use span_record::*;
