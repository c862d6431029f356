//! The per-thread span stack and per-thread buffers of finished spans.
//!
//! The stack's top is the active span: the parent of spans started on this
//! thread. Spans that start and finish on this thread (the common case, and
//! every sync `#[dd_span]` function) live in the stack while open and go to a
//! per-thread *segment* of their trace when they finish: no lock, no atomic,
//! no allocation for static names. A segment is merged into its trace, under
//! one lock, when the outermost span of that trace on this thread leaves the
//! stack (or when a partial flush is due).
//!
//! A trace begun here by a local span is this thread's own until something
//! asks to share it (a [`crate::Span`] started under it, its context taken,
//! its root looked up): until then its segment hands its spans straight to
//! the writer, and a root span costs no shared allocation, lock or
//! reference count (see [`TraceSeed`]).
//!
//! Guards remove their own frame by span id, so dropping guards out of order
//! never corrupts the stack.

use std::borrow::Cow;
use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use crate::context::SpanContext;
use crate::record::pool;
use crate::record::spec::SpanSpec;
use crate::record::tag::TagValue;
use crate::record::SpanRecord;
use crate::span::SpanInner;
use crate::trace::{TraceSeed, TraceShared};
use crate::tracer;
use crate::tracer::TracerCore;
use crate::util::clock;
use crate::util::id;

thread_local! {
    static STACK: RefCell<LocalStack> = const { RefCell::new(LocalStack::new()) };
}

enum FrameKind {
    /// A span started here; its data lives in the stack while it is open.
    Local(SpanRecord),
    /// A [`crate::Span`] entered here (`Span::enter`, or a future being polled);
    /// its data stays in the span.
    Entered(Arc<SpanInner>),
}

struct Frame {
    span_id: u64,
    segment: usize,
    /// The span's service when it differs from the tracer's default.
    service: Option<Cow<'static, str>>,
    kind: FrameKind,
}

/// This thread's view of a trace.
enum SegmentTrace {
    /// Begun here by a local span, and not seen by anything else yet: its
    /// spans go to the writer straight from this segment, with no shared
    /// state, lock or reference count (see [`TraceSeed`]).
    Own(TraceSeed),
    /// Shared with other threads or [`crate::Span`]s.
    Shared(Arc<TraceShared>),
}

struct Segment {
    trace: SegmentTrace,
    finished: Vec<SpanRecord>,
    frames: usize,
    /// Finished spans that make a partial flush (`usize::MAX`: never),
    /// read once from the tracer's configuration.
    flush_at: usize,
}

impl Segment {
    fn new(trace: SegmentTrace) -> Segment {
        let mut segment = Segment {
            trace,
            finished: Vec::new(),
            frames: 0,
            flush_at: usize::MAX,
        };
        let config = &segment.tracer().config;
        if config.partial_flush_enabled {
            segment.flush_at = config.partial_flush_min_spans;
        }
        segment
    }

    fn tracer(&self) -> &Arc<TracerCore> {
        match &self.trace {
            SegmentTrace::Own(seed) => &seed.tracer,
            SegmentTrace::Shared(trace) => &trace.tracer,
        }
    }

    fn root_span_id(&self) -> u64 {
        match &self.trace {
            SegmentTrace::Own(seed) => seed.root_span_id,
            SegmentTrace::Shared(trace) => trace.root_span_id,
        }
    }

    /// The shared trace, sharing an own one now (this segment is then its
    /// one open holder). `None` never happens.
    fn shared(&mut self) -> Option<&Arc<TraceShared>> {
        if let SegmentTrace::Own(seed) = &self.trace {
            self.trace = SegmentTrace::Shared(seed.share());
        }
        match &self.trace {
            SegmentTrace::Shared(trace) => Some(trace),
            SegmentTrace::Own(_) => None,
        }
    }

    /// Hands finished spans on: to the writer for an own trace, to the
    /// shared trace otherwise.
    fn hand_over(&self, finished: Vec<SpanRecord>) {
        match &self.trace {
            SegmentTrace::Own(seed) => seed.submit(finished),
            SegmentTrace::Shared(trace) => trace.merge(finished),
        }
    }

    /// The last frame of this segment is gone: everything goes on, and a
    /// shared trace loses this segment as a holder.
    fn close(self) {
        match self.trace {
            SegmentTrace::Own(seed) => seed.submit(self.finished),
            SegmentTrace::Shared(trace) => trace.release(self.finished),
        }
    }
}

struct LocalStack {
    frames: Vec<Frame>,
    segments: Vec<Option<Segment>>,
}

/// What a span started here needs from the active span.
pub(crate) struct ActiveParent {
    pub(crate) trace: Arc<TraceShared>,
    pub(crate) span_id: u64,
    pub(crate) service: Option<Cow<'static, str>>,
}

impl LocalStack {
    const fn new() -> LocalStack {
        LocalStack {
            frames: Vec::new(),
            segments: Vec::new(),
        }
    }

    /// The slot of this thread's segment of `trace`, creating it. A new
    /// segment holds the trace open; `acquired` says the caller already
    /// registered that hold.
    fn segment_for(&mut self, trace: &Arc<TraceShared>, acquired: bool) -> Option<usize> {
        if let Some(slot) = self.segments.iter().position(|s| {
            matches!(s, Some(Segment { trace: SegmentTrace::Shared(shared), .. })
                if Arc::ptr_eq(shared, trace))
        }) {
            if acquired {
                // The caller's hold is not needed: this segment holds the trace.
                trace.release(Vec::new());
            }
            return Some(slot);
        }
        if !acquired && !trace.try_acquire() {
            return None;
        }
        Some(self.add_segment(Segment::new(SegmentTrace::Shared(Arc::clone(trace)))))
    }

    fn add_segment(&mut self, segment: Segment) -> usize {
        match self.segments.iter().position(Option::is_none) {
            Some(slot) => {
                self.segments[slot] = Some(segment);
                slot
            }
            None => {
                self.segments.push(Some(segment));
                self.segments.len() - 1
            }
        }
    }

    /// Frames only point at live segments; `None` would be a bug, and is
    /// survived by recording nothing rather than by panicking.
    fn segment(&mut self, slot: usize) -> Option<&mut Segment> {
        self.segments.get_mut(slot).and_then(Option::as_mut)
    }

    /// A new trace (from `parent`, or a root) held by a new segment.
    fn begin_trace(
        &mut self,
        spec: &'static SpanSpec,
        span_id: u64,
        parent: Option<&SpanContext>,
        now: clock::Instant,
    ) -> Option<usize> {
        let seed = tracer::with_current(|core| {
            let service = spec.service.unwrap_or(&core.config.service);
            TraceSeed::begin(core, span_id, parent, service, now)
        })?;
        Some(self.add_segment(Segment::new(SegmentTrace::Own(seed))))
    }

    /// `parent`: `None` for the active span (or a new root), `Some(context)`
    /// for an explicit parent (`Some(None)`: a new root).
    fn push_local(&mut self, spec: &'static SpanSpec, parent: Option<Option<SpanContext>>) -> u64 {
        let span_id = id::new_span_id();
        let start = clock::now();
        // (segment, parent id, parent's service, parent is in another process)
        let choice = match parent {
            None => match self.frames.last() {
                Some(top) => Some((top.segment, top.span_id, top.service.clone(), false)),
                None => self
                    .begin_trace(spec, span_id, None, start)
                    .map(|slot| (slot, 0, None, false)),
            },
            Some(None) => self
                .begin_trace(spec, span_id, None, start)
                .map(|slot| (slot, 0, None, false)),
            Some(Some(context)) => {
                let joined = context
                    .local_trace
                    .as_ref()
                    .filter(|trace| trace.try_acquire())
                    .and_then(|trace| self.segment_for(trace, true));
                match joined {
                    Some(slot) => Some((slot, context.span_id, context.service.clone(), false)),
                    None => self
                        .begin_trace(spec, span_id, Some(&context), start)
                        .map(|slot| (slot, context.span_id, context.service.clone(), true)),
                }
            }
        };
        let Some((slot, parent_id, parent_service, remote_parent)) = choice else {
            return 0;
        };
        let Some(segment) = self.segment(slot) else {
            return 0;
        };
        segment.frames += 1;
        let top_level = parent_id == 0
            || remote_parent
            || spec.service.is_some_and(|service| {
                service
                    != parent_service
                        .as_deref()
                        .unwrap_or(&segment.tracer().config.service)
            });
        let mut record = SpanRecord::starting_at(span_id, parent_id, spec, start);
        let service = match spec.service {
            Some(service) => Some(Cow::Borrowed(service)),
            None => {
                if let Some(inherited) = &parent_service {
                    record.set_service(inherited.clone());
                }
                parent_service
            }
        };
        record.top_level = top_level;
        self.frames.push(Frame {
            span_id,
            segment: slot,
            service,
            kind: FrameKind::Local(record),
        });
        span_id
    }

    fn push_entered(&mut self, span: &Arc<SpanInner>) -> bool {
        let Some(slot) = self.segment_for(&span.trace, false) else {
            return false;
        };
        let Some(segment) = self.segment(slot) else {
            return false;
        };
        segment.frames += 1;
        self.frames.push(Frame {
            span_id: span.span_id,
            segment: slot,
            service: span.service.clone(),
            kind: FrameKind::Entered(Arc::clone(span)),
        });
        true
    }

    /// Removes the frame of `span_id` (normally the top) and finishes it if
    /// it is a local span.
    fn pop(&mut self, span_id: u64, end: clock::Instant) {
        let Some(position) = self.frames.iter().rposition(|f| f.span_id == span_id) else {
            return;
        };
        // Nearly always the top: a pop, not a shift.
        let frame = if position + 1 == self.frames.len() {
            self.frames.pop()
        } else {
            Some(self.frames.remove(position))
        };
        let Some(frame) = frame else {
            return;
        };
        let Some(segment) = self.segment(frame.segment) else {
            return;
        };
        if let FrameKind::Local(mut record) = frame.kind {
            record.finish(end);
            if segment.finished.capacity() == 0 {
                segment.finished = pool::take();
            }
            segment.finished.push(record);
            if segment.finished.len() >= segment.flush_at {
                let finished = std::mem::replace(&mut segment.finished, pool::take());
                segment.hand_over(finished);
            }
        }
        segment.frames -= 1;
        if segment.frames == 0 {
            if let Some(segment) = self.segments[frame.segment].take() {
                segment.close();
            }
            while matches!(self.segments.last(), Some(None)) {
                self.segments.pop();
            }
        }
    }
}

impl Drop for LocalStack {
    /// Thread exit: spans whose guards were leaked are finished now, and every
    /// segment is merged, so nothing buffered on this thread is lost.
    fn drop(&mut self) {
        let end = clock::now();
        while let Some(frame) = self.frames.last() {
            let span_id = frame.span_id;
            self.pop(span_id, end);
        }
    }
}

fn with_stack<R>(f: impl FnOnce(&mut LocalStack) -> R) -> Option<R> {
    // `try_with`: spans during thread teardown are not recorded; `try_borrow_mut`:
    // never panic, even if the stack were re-entered.
    STACK
        .try_with(|stack| stack.try_borrow_mut().ok().map(|mut stack| f(&mut stack)))
        .ok()
        .flatten()
}

pub(crate) fn enter(span: &Arc<SpanInner>) -> bool {
    with_stack(|stack| stack.push_entered(span)).unwrap_or(false)
}

pub(crate) fn exit(span_id: u64) {
    let end = clock::now();
    with_stack(|stack| stack.pop(span_id, end));
}

/// The active span, for a span about to start as its child. Registers a hold
/// on the trace for the new span.
pub(crate) fn active_parent() -> Option<ActiveParent> {
    with_stack(|stack| {
        let top = stack.frames.last()?;
        let (span_id, service, slot) = (top.span_id, top.service.clone(), top.segment);
        let trace = Arc::clone(stack.segment(slot)?.shared()?);
        trace.try_acquire().then_some(ActiveParent {
            trace,
            span_id,
            service,
        })
    })
    .flatten()
}

/// Runs `f` on the active span's data, if there is an active span.
pub(crate) fn with_active_record(f: impl FnOnce(&mut SpanRecord)) {
    let inner = with_stack(|stack| match stack.frames.last_mut() {
        Some(Frame {
            kind: FrameKind::Local(record),
            ..
        }) => {
            f(record);
            None
        }
        Some(Frame {
            kind: FrameKind::Entered(inner),
            ..
        }) => Some((Arc::clone(inner), f)),
        None => None,
    })
    .flatten();
    // The span's own lock is taken outside the stack's borrow.
    if let Some((inner, f)) = inner {
        inner.with_record(f);
    }
}

/// Runs `f` on the record of a span living in this thread's stack.
pub(crate) fn with_local_record(span_id: u64, f: impl FnOnce(&mut SpanRecord)) {
    with_stack(|stack| {
        if let Some(Frame {
            kind: FrameKind::Local(record),
            ..
        }) = stack.frames.iter_mut().rev().find(|f| f.span_id == span_id)
        {
            f(record);
        }
    });
}

fn target_of(frame: &Frame) -> crate::span::span_ref::Target {
    match &frame.kind {
        FrameKind::Local(_) => crate::span::span_ref::Target::Local(frame.span_id),
        FrameKind::Entered(inner) => crate::span::span_ref::Target::Shared(Arc::clone(inner)),
    }
}

/// The active span, as a handle target.
pub(crate) fn active_target() -> Option<crate::span::span_ref::Target> {
    with_stack(|stack| stack.frames.last().map(target_of)).flatten()
}

/// The local root of the active span's trace, as a handle target: found in
/// this thread's stack, else through the trace (a root [`crate::Span`]).
pub(crate) fn root_target() -> Option<crate::span::span_ref::Target> {
    with_stack(|stack| {
        let slot = stack.frames.last()?.segment;
        let segment = stack.segment(slot)?;
        let root = segment.root_span_id();
        // Only a shared trace can have a `Span` as its root.
        let shared = match &segment.trace {
            SegmentTrace::Shared(trace) => Some(Arc::clone(trace)),
            SegmentTrace::Own(_) => None,
        };
        if let Some(frame) = stack.frames.iter().find(|f| f.span_id == root) {
            return Some(target_of(frame));
        }
        shared?
            .root_span()
            .map(crate::span::span_ref::Target::Shared)
    })
    .flatten()
}

/// The context of a span living in this thread's stack.
pub(crate) fn context_of(span_id: u64) -> Option<SpanContext> {
    with_stack(|stack| {
        let frame = stack.frames.iter().rev().find(|f| f.span_id == span_id)?;
        let (service, slot) = (frame.service.clone(), frame.segment);
        Some(SpanContext::local(
            stack.segment(slot)?.shared()?,
            span_id,
            service,
        ))
    })
    .flatten()
}

pub(crate) fn active_context() -> Option<SpanContext> {
    with_stack(|stack| {
        let top = stack.frames.last()?;
        let (span_id, service, slot) = (top.span_id, top.service.clone(), top.segment);
        Some(SpanContext::local(
            stack.segment(slot)?.shared()?,
            span_id,
            service,
        ))
    })
    .flatten()
}

/// A span that lives on this thread, from its start until the guard drops:
/// the fastest kind of span, used by `#[dd_span]` on sync functions.
///
/// While the guard lives, the span is the active span of this thread. The
/// guard is neither `Send` nor `Sync`: the span must finish on the thread
/// that started it. When tracing is off, the guard is empty and costs one
/// load.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{LocalSpanGuard, SpanSpec};
///
/// static SPEC: SpanSpec = SpanSpec::new("parse.config");
/// fn parse() {
///     let _span = LocalSpanGuard::start(&SPEC);
///     // ... the span covers the rest of this scope
/// }
/// parse();
/// ```
#[must_use = "the span finishes when the guard drops"]
pub struct LocalSpanGuard {
    span_id: u64,
    _not_send: PhantomData<*const ()>,
}

impl LocalSpanGuard {
    /// Starts a span described by a static [`SpanSpec`] as a child of the
    /// active span (or as a new root) and makes it active.
    #[inline]
    pub fn start(spec: &'static SpanSpec) -> LocalSpanGuard {
        let span_id = if tracer::is_running() {
            with_stack(|stack| stack.push_local(spec, None)).unwrap_or(0)
        } else {
            0
        };
        LocalSpanGuard {
            span_id,
            _not_send: PhantomData,
        }
    }

    /// Starts a span with an explicit parent (`None`: a new root), e.g. a
    /// context extracted from a request, and makes it active.
    pub fn start_child_of(spec: &'static SpanSpec, parent: Option<SpanContext>) -> LocalSpanGuard {
        let span_id = if tracer::is_running() {
            with_stack(|stack| stack.push_local(spec, Some(parent))).unwrap_or(0)
        } else {
            0
        };
        LocalSpanGuard {
            span_id,
            _not_send: PhantomData,
        }
    }

    /// Whether this guard records a span (tracing on and a tracer running).
    pub fn is_recording(&self) -> bool {
        self.span_id != 0
    }

    /// The span's id (0 when not recording).
    pub fn span_id(&self) -> u64 {
        self.span_id
    }

    /// Sets a tag on this span.
    pub fn set_tag(&self, key: impl Into<Cow<'static, str>>, value: impl Into<TagValue>) {
        self.with_record(|record| record.set_tag(key.into(), value.into()));
    }

    /// Marks this span as an error with the error's fields (what a returned
    /// `Err` records).
    pub fn record_error(&self, error: crate::ErrorFields) {
        self.with_record(|record| error.apply(record));
    }

    fn with_record(&self, f: impl FnOnce(&mut SpanRecord)) {
        if self.span_id != 0 {
            with_local_record(self.span_id, f);
        }
    }
}

impl Drop for LocalSpanGuard {
    #[inline]
    fn drop(&mut self) {
        if self.span_id != 0 {
            if std::thread::panicking() {
                self.with_record(crate::span::panic::mark_unwinding);
            }
            exit(self.span_id);
        }
    }
}

impl std::fmt::Debug for LocalSpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalSpanGuard")
            .field("span_id", &self.span_id)
            .finish()
    }
}
