//! What an exporter receives: the finished spans of one trace (all of
//! them, or a part when a partial flush is due) with the trace's fields.

use std::sync::Arc;

use crate::record::{SamplingDecision, SpanRecord, Upstream};

/// What the writer receives: finished spans of one trace, and what it needs
/// of the trace, by value: a chunk shares nothing with the application's
/// threads, so handing it over moves no reference count or lock between
/// cores.
pub(crate) struct Chunk {
    pub(crate) trace_id: u128,
    /// The span that began the local trace (its first span on the wire).
    pub(crate) root_span_id: u64,
    /// What the calling service sent; `None` when nothing did.
    pub(crate) upstream: Option<Arc<Upstream>>,
    /// An injection dropped `x-datadog-tags` for its size.
    pub(crate) inject_max_size: bool,
    pub(crate) spans: Vec<SpanRecord>,
    pub(crate) sampling: SamplingDecision,
    /// Tags set with `set_global_tag` when the chunk was handed over.
    pub(crate) global_tags: crate::record::global_tags::Snapshot,
}

impl Chunk {
    /// What the calling service sent (empty when nothing did).
    pub(crate) fn upstream(&self) -> &Upstream {
        self.upstream
            .as_deref()
            .unwrap_or_else(|| Upstream::none_ref())
    }
}
