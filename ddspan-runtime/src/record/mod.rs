//! What a span is made of, as data: its compile-time description
//! ([`SpanSpec`](spec::SpanSpec)), tags, the record that carries it from start to export,
//! the chunk an exporter receives, and the reuse of record buffers.
//!
//! Everything above this folder builds or moves records; nothing here
//! knows about threads, traces in progress or the agent.

mod chunk;
pub(crate) mod global_tags;
pub(crate) mod link;
pub(crate) mod named_spec;
pub(crate) mod pool;
mod reuse_budget;
pub(crate) mod sampling_decision;
mod span_record;
pub(crate) mod spec;
pub(crate) mod tag;

pub(crate) mod upstream;

pub(crate) use chunk::Chunk;
pub(crate) use sampling_decision::SamplingDecision;
pub(crate) use span_record::*;
pub(crate) use upstream::Upstream;
