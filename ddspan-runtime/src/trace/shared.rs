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
use crate::record::upstream::{baggage_bytes, BAGGAGE_MAX_BYTES, BAGGAGE_MAX_ITEMS};
use crate::record::SamplingDecision;
use crate::record::Upstream;
use crate::record::{Chunk, SpanRecord};
use crate::runtime::TracerCore;
use crate::trace::seed::{decide_deferred, sample_single_spans};

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
    /// What upstream sent, with the W3C baggage as it is now (received, and
    /// set by any span of the trace). Contexts share it; setting an item
    /// copies it only while an older context still holds it.
    current: Arc<Upstream>,
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
                current: Arc::clone(upstream),
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

    /// The priority, if decided.
    pub(crate) fn decided_priority(&self) -> Option<i8> {
        let sampling = self.state().sampling;
        (!sampling.deferred).then_some(sampling.priority)
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

    /// Sets (or replaces) a baggage item for the whole trace. A new item
    /// beyond [`BAGGAGE_MAX_ITEMS`] or [`BAGGAGE_MAX_BYTES`] is refused with
    /// one warning per process: the items already set stay. Returns whether
    /// it was set.
    pub(crate) fn set_baggage(&self, key: String, value: String) -> bool {
        let mut state = self.state();
        let baggage = &state.current.baggage;
        let existing = baggage.iter().position(|(k, _)| *k == key);
        let replaced = existing.map_or(0, |i| baggage[i].1.len() + key.len() + 2);
        let bytes = baggage_bytes(baggage) - replaced + key.len() + value.len() + 2;
        if (existing.is_none() && baggage.len() >= BAGGAGE_MAX_ITEMS) || bytes > BAGGAGE_MAX_BYTES {
            drop(state);
            static WARNED: std::sync::Once = std::sync::Once::new();
            WARNED.call_once(|| {
                crate::util::diagnostics::warn(format_args!(
                    "baggage item {:?} not set: a trace carries at most {BAGGAGE_MAX_ITEMS} items and {BAGGAGE_MAX_BYTES} bytes of baggage (said once)",
                    crate::record::tag::truncated(&key, 64),
                ));
            });
            return false;
        }
        let baggage = &mut Arc::make_mut(&mut state.current).baggage;
        match existing {
            Some(i) => baggage[i].1 = value,
            None => baggage.push((key, value)),
        }
        true
    }

    /// What upstream sent, with the trace's current baggage: shared, not copied.
    pub(crate) fn upstream_with_baggage(&self) -> Arc<Upstream> {
        Arc::clone(&self.state().current)
    }

    /// Adds finished spans and releases one holder; hands the trace, or a part
    /// of it, to the writer when it is due.
    pub(crate) fn release(self: &Arc<Self>, finished: Vec<SpanRecord>) {
        self.add(Finished::Many(finished), true);
    }

    /// Releases a holder that added no spans (a captured parent, see
    /// `context::stack::HeldParent`): the trace is sent if it was the last.
    pub(crate) fn release_hold(self: &Arc<Self>) {
        let chunk = {
            let mut state = self.state();
            state.open = state.open.saturating_sub(1);
            if state.open > 0 {
                return;
            }
            state.closed = true;
            let spans = std::mem::take(&mut state.spans);
            (!spans.is_empty()).then(|| self.chunk(spans, state.sampling))
        };
        if let Some(chunk) = chunk {
            self.submit(chunk);
        }
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
            self.submit(chunk);
        }
    }

    /// Hands a chunk to the writer, its sampling decided first if it
    /// waited: by the root when the chunk holds it, else by the root
    /// [`crate::Span`] as it is now (outside the trace's lock).
    fn submit(&self, mut chunk: Chunk) {
        if chunk.sampling.deferred {
            let root = chunk.spans.iter().find(|s| s.span_id == self.root_span_id);
            chunk.sampling = match root {
                Some(root) => {
                    let decision = decide_deferred(&self.tracer, self.trace_id, Some(root));
                    self.settle(decision)
                }
                None => self.decide_now(|_, _| {}),
            };
        }
        sample_single_spans(&self.tracer, chunk.sampling, &mut chunk.spans);
        self.tracer.submit(chunk);
    }

    /// The decision, made now if it waited (an injection needs it, as does
    /// a chunk leaving without its root): by the root [`crate::Span`] when
    /// there is one, else by the root `look_up` finds by its id (a span
    /// living in this thread's stack), else by the service alone.
    pub(crate) fn decide_now(
        &self,
        look_up: impl FnOnce(u64, &mut dyn FnMut(&SpanRecord)),
    ) -> SamplingDecision {
        let root_span = {
            let state = self.state();
            if !state.sampling.deferred {
                return state.sampling;
            }
            state.root_span.clone()
        };
        let mut decision = None;
        let mut decide = |root: &SpanRecord| {
            decision = Some(decide_deferred(&self.tracer, self.trace_id, Some(root)));
        };
        match root_span.as_ref().and_then(std::sync::Weak::upgrade) {
            Some(root) => root.with_record(|record| decide(record)),
            None => look_up(self.root_span_id, &mut decide),
        }
        let decision =
            decision.unwrap_or_else(|| decide_deferred(&self.tracer, self.trace_id, None));
        self.settle(decision)
    }

    /// Stores a decision unless another was stored first; the one stored.
    fn settle(&self, decision: SamplingDecision) -> SamplingDecision {
        let mut state = self.state();
        if state.sampling.deferred {
            state.sampling = decision;
        }
        state.sampling
    }

    /// A user's keep or drop: the trace's decision from now on, whatever
    /// decided it before (as ddtrace's `manual.keep` / `manual.drop`).
    pub(crate) fn set_manual(&self, keep: bool) {
        self.state().sampling = SamplingDecision::manual(keep);
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

    fn new_trace() -> Arc<TraceShared> {
        let (tracer, _) = TracerCore::capturing(crate::Config::builder().build());
        TraceShared::new(
            &tracer,
            7,
            1,
            SamplingDecision::inherited(1),
            Upstream::none_ref(),
        )
    }

    #[test]
    fn baggage_keeps_the_first_items_up_to_its_bounds() {
        let trace = new_trace();
        for i in 0..BAGGAGE_MAX_ITEMS + 36 {
            let set = trace.set_baggage(format!("k{i}"), "v".into());
            assert_eq!(set, i < BAGGAGE_MAX_ITEMS, "item {i}");
        }
        let baggage = trace.upstream_with_baggage().baggage.clone();
        assert_eq!(baggage.len(), BAGGAGE_MAX_ITEMS);
        assert_eq!(baggage[0], ("k0".to_owned(), "v".to_owned()));
        // Replacing an item is still possible when full.
        assert!(trace.set_baggage("k0".into(), "w".into()));
        assert_eq!(trace.upstream_with_baggage().baggage[0].1, "w");
        // Too many bytes: refused, the rest kept.
        let big = "x".repeat(BAGGAGE_MAX_BYTES);
        assert!(!trace.set_baggage("k1".into(), big));
        assert_eq!(trace.upstream_with_baggage().baggage[1].1, "v");
    }

    #[test]
    fn setting_one_item_many_times_keeps_one() {
        let trace = new_trace();
        for i in 0..100_000 {
            trace.set_baggage("user".into(), i.to_string());
        }
        let baggage = &trace.upstream_with_baggage().baggage;
        assert_eq!(baggage, &[("user".to_owned(), "99999".to_owned())]);
    }

    #[test]
    fn contexts_share_the_baggage_until_it_changes() {
        let trace = new_trace();
        trace.set_baggage("k".into(), "v".into());
        let first = trace.upstream_with_baggage();
        let second = trace.upstream_with_baggage();
        assert!(Arc::ptr_eq(&first, &second), "no copy per context");
        trace.set_baggage("k".into(), "w".into());
        let third = trace.upstream_with_baggage();
        assert_eq!(first.baggage[0].1, "v", "an older context keeps its view");
        assert_eq!(third.baggage[0].1, "w");
    }
}
