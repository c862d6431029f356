//! The start of a local trace: its id and sampling decision, kept in the
//! thread that began it until something needs to share it.

use std::sync::Arc;

use crate::record::{pool, Chunk, SamplingDecision, SpanRecord, Upstream};
use crate::runtime::TracerCore;
use crate::trace::TraceShared;

/// What a new local trace continues: a parent from another service (or a
/// local trace already sent), by its ids and what it carried.
pub(crate) struct Continued<'a> {
    /// 0 for a context of baggage alone: there is no trace to continue.
    pub(crate) trace_id: u128,
    pub(crate) sampling_priority: Option<i8>,
    pub(crate) upstream: &'a Arc<Upstream>,
}

/// A local trace's identity and sampling decision, before (and unless) any
/// other thread or `Span` needs to share it: a trace begun by a local span
/// lives in its thread's segment as a seed, and becomes a [`TraceShared`]
/// only when something asks for a shared handle (see `local.rs`). Most
/// traces never do, and skip the allocation, the lock and the counts.
pub(crate) struct TraceSeed {
    pub(crate) tracer: Arc<TracerCore>,
    pub(crate) trace_id: u128,
    pub(crate) root_span_id: u64,
    pub(crate) sampling: SamplingDecision,
    /// `None`: no upstream (the common case, and no count to touch).
    pub(crate) upstream: Option<Arc<Upstream>>,
}

impl TraceSeed {
    /// Begins a local trace whose first span is `root_span_id`: a new trace,
    /// or the continuation of a remote (or already sent) parent. The root
    /// decides sampling unless the parent carries a decision. `now` is the
    /// root's start (the high half of a 128-bit trace id is its second).
    pub(crate) fn begin(
        tracer: &Arc<TracerCore>,
        root_span_id: u64,
        parent: Option<Continued<'_>>,
        service: &str,
        now: crate::util::clock::Instant,
    ) -> TraceSeed {
        let trace_id = match &parent {
            // A baggage-only parent has no trace to continue.
            Some(parent) if parent.trace_id != 0 => parent.trace_id,
            _ => {
                crate::util::id::new_trace_id_at(tracer.config.trace_id_128_bit, now.unix_seconds())
            }
        };
        let sampling = match parent.as_ref().and_then(|p| p.sampling_priority) {
            Some(priority) => SamplingDecision::inherited(priority),
            None => tracer
                .sampler
                .begin(crate::util::id::low_bits(trace_id), service),
        };
        TraceSeed {
            tracer: Arc::clone(tracer),
            trace_id,
            root_span_id,
            sampling,
            upstream: parent
                .filter(|p| !Arc::ptr_eq(p.upstream, Upstream::none_ref()))
                .map(|p| Arc::clone(p.upstream)),
        }
    }

    /// The shared form, with one open holder.
    pub(crate) fn share(&self) -> Arc<TraceShared> {
        TraceShared::new(
            &self.tracer,
            self.trace_id,
            self.root_span_id,
            self.sampling,
            self.upstream
                .as_ref()
                .unwrap_or_else(|| Upstream::none_ref()),
        )
    }

    /// Hands finished spans of this trace to the writer, deciding sampling
    /// first if it waited: by the root when it is among them (it has
    /// finished, nothing about it changes any more), else by `open_root`
    /// (the root still open in this thread's stack: a partial flush).
    pub(crate) fn submit(&mut self, mut spans: Vec<SpanRecord>, open_root: Option<&SpanRecord>) {
        if spans.is_empty() {
            pool::give(spans);
            return;
        }
        if self.sampling.deferred {
            let root = spans
                .iter()
                .find(|s| s.span_id == self.root_span_id)
                .or(open_root);
            self.sampling = decide_deferred(&self.tracer, self.trace_id, root);
        }
        sample_single_spans(&self.tracer, self.sampling, &mut spans);
        self.tracer.submit(Chunk {
            trace_id: self.trace_id,
            root_span_id: self.root_span_id,
            upstream: self.upstream.clone(),
            inject_max_size: false,
            spans,
            sampling: self.sampling,
            global_tags: crate::record::global_tags::snapshot(),
        });
    }
}

/// A deferred decision, made now by `root` (`None`: the root could not be
/// reached, as in a partial flush while it is open on another thread; the
/// rules then see only the tracer's service).
pub(crate) fn decide_deferred(
    tracer: &TracerCore,
    trace_id: u128,
    root: Option<&SpanRecord>,
) -> SamplingDecision {
    let low = crate::util::id::low_bits(trace_id);
    let service = tracer.config.service.as_str();
    match root {
        Some(root) => tracer
            .sampler
            .decide_root(low, &crate::sampling::RootView::of(root, service)),
        None => tracer.sampler.decide(low, service),
    }
}

/// Single-span sampling: the spans of a dropped chunk that a rule keeps
/// are marked (see `sampling/span_rules.rs`).
#[inline]
pub(crate) fn sample_single_spans(
    tracer: &TracerCore,
    decision: SamplingDecision,
    spans: &mut [SpanRecord],
) {
    if decision.priority <= 0 && tracer.sampler.has_span_rules() {
        tracer.sampler.sample_spans(spans, &tracer.config.service);
    }
}
