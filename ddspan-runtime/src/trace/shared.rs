//! A local trace: the spans of one trace id in this process, gathered until
//! every one of them has finished, then handed to the writer as one chunk.
//!
//! `open` counts what may still add spans: unfinished [`crate::Span`]s and
//! per-thread segments (see `local.rs`) that hold finished spans not yet
//! merged. Merging a segment costs one uncontended lock per segment, not per
//! span.

use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::record::pool;
use crate::record::SamplingDecision;
use crate::record::Upstream;
use crate::record::{Chunk, SpanRecord};
use crate::runtime::TracerCore;

enum Finished {
    One(SpanRecord),
    Many(Vec<SpanRecord>),
}

pub(crate) struct TraceShared {
    pub(crate) trace_id: u128,
    /// The span that began this local trace (its parent is remote or none).
    pub(crate) root_span_id: u64,
    pub(crate) tracer: Arc<TracerCore>,
    /// What the calling service sent.
    pub(crate) upstream: Arc<Upstream>,
    /// An injection dropped `x-datadog-tags` for its size: the chunks say so
    /// in `_dd.propagation_error` (as dd-trace-go does).
    pub(crate) inject_max_size: AtomicBool,
    state: Mutex<TraceState>,
}

struct TraceState {
    /// The root, when it is a [`crate::Span`] (for `current_root_span`).
    root_span: Option<std::sync::Weak<crate::trace::SpanInner>>,
    /// W3C baggage: received, and set by any span of the trace.
    baggage: Vec<(String, String)>,
    spans: Vec<SpanRecord>,
    open: usize,
    closed: bool,
    sampling: SamplingDecision,
}

impl TraceShared {
    /// A new local trace with one open holder (its first span or segment).
    pub(crate) fn new(
        tracer: &Arc<TracerCore>,
        trace_id: u128,
        root_span_id: u64,
        sampling: SamplingDecision,
        upstream: &Arc<Upstream>,
    ) -> Arc<TraceShared> {
        Arc::new(TraceShared {
            trace_id,
            root_span_id,
            tracer: Arc::clone(tracer),
            upstream: Arc::clone(upstream),
            inject_max_size: AtomicBool::new(false),
            state: Mutex::new(TraceState {
                root_span: None,
                baggage: upstream.baggage.clone(),
                spans: Vec::new(),
                open: 1,
                closed: false,
                sampling,
            }),
        })
    }

    /// A chunk of these spans, with the trace's fields as they are now.
    pub(crate) fn chunk(&self, spans: Vec<SpanRecord>, sampling: SamplingDecision) -> Chunk {
        Chunk {
            trace_id: self.trace_id,
            root_span_id: self.root_span_id,
            upstream: (!Arc::ptr_eq(&self.upstream, Upstream::none_ref()))
                .then(|| Arc::clone(&self.upstream)),
            inject_max_size: self
                .inject_max_size
                .load(std::sync::atomic::Ordering::Relaxed),
            spans,
            sampling,
            global_tags: crate::record::global_tags::snapshot(),
        }
    }

    fn state(&self) -> MutexGuard<'_, TraceState> {
        // A panic while holding this lock cannot leave the state half-updated
        // in a way that matters more than losing the trace; keep going.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers one more holder; `false` if the trace was already sent whole.
    pub(crate) fn try_acquire(&self) -> bool {
        let mut state = self.state();
        if state.closed {
            return false;
        }
        state.open += 1;
        true
    }

    pub(crate) fn sampling(&self) -> SamplingDecision {
        self.state().sampling
    }

    pub(crate) fn set_root_span(&self, root: &Arc<crate::trace::SpanInner>) {
        self.state().root_span = Some(Arc::downgrade(root));
    }

    pub(crate) fn root_span(&self) -> Option<Arc<crate::trace::SpanInner>> {
        self.state()
            .root_span
            .as_ref()
            .and_then(std::sync::Weak::upgrade)
    }

    /// Sets (or replaces) a baggage item for the whole trace.
    pub(crate) fn set_baggage(&self, key: String, value: String) {
        let mut state = self.state();
        state.baggage.retain(|(k, _)| *k != key);
        state.baggage.push((key, value));
    }

    /// The upstream context with the trace's current baggage.
    pub(crate) fn upstream_with_baggage(&self) -> Arc<Upstream> {
        let state = self.state();
        if state.baggage == self.upstream.baggage {
            return Arc::clone(&self.upstream);
        }
        let mut upstream = (*self.upstream).clone();
        upstream.baggage.clone_from(&state.baggage);
        Arc::new(upstream)
    }

    /// Adds finished spans and releases one holder; hands the trace, or a part
    /// of it, to the writer when it is due.
    pub(crate) fn release(self: &Arc<Self>, finished: Vec<SpanRecord>) {
        self.add(Finished::Many(finished), true);
    }

    /// Adds one finished span and releases the holder it was.
    pub(crate) fn release_one(self: &Arc<Self>, record: SpanRecord) {
        self.add(Finished::One(record), true);
    }

    /// Adds finished spans without releasing a holder (a per-thread buffer
    /// that reached the partial-flush size).
    pub(crate) fn merge(self: &Arc<Self>, finished: Vec<SpanRecord>) {
        self.add(Finished::Many(finished), false);
    }

    fn add(self: &Arc<Self>, finished: Finished, release: bool) {
        let mut spare = None;
        let chunk = {
            let mut state = self.state();
            match finished {
                Finished::Many(finished) if state.spans.is_empty() => {
                    spare = Some(std::mem::replace(&mut state.spans, finished));
                }
                Finished::Many(mut finished) => {
                    state.spans.append(&mut finished);
                    spare = Some(finished);
                }
                Finished::One(record) => {
                    if state.spans.capacity() == 0 {
                        state.spans = pool::take();
                    }
                    state.spans.push(record);
                }
            }
            if release {
                state.open = state.open.saturating_sub(1);
            }
            let config = &self.tracer.config;
            if state.open == 0 {
                state.closed = true;
                Some(std::mem::take(&mut state.spans))
            } else if config.partial_flush_enabled
                && state.spans.len() >= config.partial_flush_min_spans
            {
                Some(std::mem::take(&mut state.spans))
            } else {
                None
            }
            .filter(|spans| !spans.is_empty())
            .map(|spans| self.chunk(spans, state.sampling))
        };
        if let Some(spare) = spare {
            pool::give(spare);
        }
        if let Some(chunk) = chunk {
            self.tracer.submit(chunk);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::SamplingDecision;
    use std::borrow::Cow;

    fn record(id: u64) -> SpanRecord {
        SpanRecord::named(id, 0, Cow::Borrowed("op"))
    }

    #[test]
    fn chunk_is_sent_when_the_last_holder_releases() {
        let (tracer, chunks) = TracerCore::capturing(crate::Config::builder().build());
        let trace = TraceShared::new(
            &tracer,
            7,
            1,
            SamplingDecision::inherited(1),
            Upstream::none_ref(),
        );
        assert!(trace.try_acquire());
        trace.release(vec![record(2)]);
        assert!(
            chunks.lock().unwrap().is_empty(),
            "one holder is still open"
        );
        trace.release(vec![record(1)]);
        let chunks = chunks.lock().unwrap();
        assert_eq!(chunks.len(), 1);
        assert_eq!(chunks[0].len(), 2);
        assert!(!trace.try_acquire(), "a sent trace takes no new holders");
    }

    #[test]
    fn partial_flush_sends_finished_spans_early() {
        let config = crate::Config::builder()
            .partial_flush_enabled(true)
            .partial_flush_min_spans(3usize)
            .build();
        let (tracer, chunks) = TracerCore::capturing(config);
        let trace = TraceShared::new(
            &tracer,
            7,
            1,
            SamplingDecision::inherited(1),
            Upstream::none_ref(),
        );
        for id in 2..=4 {
            assert!(trace.try_acquire());
            trace.release(vec![record(id)]);
        }
        assert_eq!(
            chunks.lock().unwrap().len(),
            1,
            "three finished spans form a part"
        );
        trace.release(vec![record(1)]);
        let chunks = chunks.lock().unwrap();
        assert_eq!(chunks.len(), 2);
        assert_eq!(chunks[0].len(), 3);
        assert_eq!(chunks[1].len(), 1);
    }
}
