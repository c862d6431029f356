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
use std::sync::Arc;

use crate::context::SpanContext;
use crate::record::pool;
use crate::record::spec::SpanSpec;
use crate::record::SpanRecord;
use crate::runtime::TracerCore;
use crate::trace::SpanInner;
use crate::trace::{TraceSeed, TraceShared};
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
    /// Left already, below the top (guards dropped out of order): kept in
    /// place so that no frame above it moves and every guard's index stays
    /// right; gone when it reaches the top.
    Left,
    /// A span whose data lives in another thread's stack (a sync
    /// `#[dd_span]`'s), entered here by a future that captured it where it
    /// was made ([`capture_active`]): the parent of spans started here and
    /// nothing more (its tags cannot be reached from here).
    Elsewhere,
}

/// Where a guard's frame is: its span and its place in the stack, so that
/// leaving it finds it at once whatever the order guards drop in.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameRef {
    /// 0: nothing was pushed (not recording).
    pub(crate) span_id: u64,
    index: u32,
}

impl FrameRef {
    /// No frame: the span records nothing.
    pub(crate) const NONE: FrameRef = FrameRef {
        span_id: 0,
        index: 0,
    };
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
    /// `root`: the trace's root when it is open in this thread's stack,
    /// for a sampling decision that waited (see `sampling/mod.rs`).
    fn hand_over(&mut self, finished: Vec<SpanRecord>, root: Option<&SpanRecord>) {
        match &mut self.trace {
            SegmentTrace::Own(seed) => seed.submit(finished, root),
            SegmentTrace::Shared(trace) => {
                if let Some(root) = root {
                    trace.decide_now(|_, decide| decide(root));
                }
                trace.merge(finished);
            }
        }
    }

    /// The last frame of this segment is gone: everything goes on, and a
    /// shared trace loses this segment as a holder.
    fn close(self) {
        match self.trace {
            SegmentTrace::Own(mut seed) => seed.submit(self.finished, None),
            SegmentTrace::Shared(trace) => trace.release(self.finished),
        }
    }
}

/// Where a new span's parent comes from: the one parent type of every
/// entry point.
pub(crate) enum Parent {
    /// The active span of this thread, else a new root.
    Active,
    /// This context, or a new root when `None`.
    Explicit(Option<SpanContext>),
    /// A span captured where a future was made, its trace held open since
    /// ([`capture_active`]): the new span joins that trace and takes over
    /// the hold.
    Held(HeldParent),
}

/// The active span of a thread, captured where a future is made so that
/// the future's span (or the spans started while it is polled) are its
/// children wherever the future runs. It holds the span's local trace open
/// until it is used or dropped, so the trace is not sent before the future
/// has added its spans.
pub(crate) struct HeldParent {
    /// `None` once the hold was handed over.
    trace: Option<Arc<TraceShared>>,
    span_id: u64,
    service: Option<Cow<'static, str>>,
    /// The span itself when it is a [`crate::Span`]: entered as itself.
    span: Option<Arc<SpanInner>>,
}

impl HeldParent {
    /// The trace and its hold, taken out (the drop then releases nothing).
    fn take_trace(&mut self) -> Option<Arc<TraceShared>> {
        self.trace.take()
    }
}

impl Drop for HeldParent {
    fn drop(&mut self) {
        if let Some(trace) = self.trace.take() {
            trace.release_hold();
        }
    }
}

/// What holds a new span's trace open.
enum TraceHold {
    /// This thread's segment in that slot (a span living in the stack).
    Segment(usize),
    /// A hold registered on the shared trace (a span that may move).
    Shared(Arc<TraceShared>),
}

/// A new span's place, as [`LocalStack::place`] decided it.
struct Placement {
    hold: TraceHold,
    span: Placed,
}

/// What was decided about the span itself.
struct Placed {
    parent_id: u64,
    /// The parent's service when it is not the tracer's (the span's own,
    /// if it has one, wins).
    parent_service: Option<Cow<'static, str>>,
    top_level: bool,
}

impl Placed {
    /// The span's service (its own, else its parent's; `None`: the
    /// tracer's), written into its record with the rest of the decision.
    #[inline]
    fn apply(
        self,
        record: &mut SpanRecord,
        spec: &'static SpanSpec,
        own_service: Option<Cow<'static, str>>,
    ) -> Option<Cow<'static, str>> {
        let service = own_service.or(self.parent_service);
        if let Some(service) = service
            .as_ref()
            .filter(|s| Some(s.as_ref()) != spec.service)
        {
            record.set_service(service.clone());
        }
        record.top_level = self.top_level;
        service
    }
}

/// A span that may leave this thread, placed: its trace (with a hold
/// registered for it), its record, its service.
pub(crate) struct SharedStart {
    pub(crate) trace: Arc<TraceShared>,
    pub(crate) record: SpanRecord,
    pub(crate) service: Option<Cow<'static, str>>,
}

/// dd-trace-go's rule for `_dd.top_level`, the one every span start uses: a
/// service entry has no parent in this process, or a service of its own
/// other than its parent's (`parent_service`: the parent's, else the
/// tracer's; asked only when it matters). A local parent whose trace was
/// already sent still counts as local.
#[inline]
fn is_service_entry<'a>(
    local_parent: bool,
    own_service: Option<&str>,
    parent_service: impl FnOnce() -> Option<&'a str>,
) -> bool {
    !local_parent || own_service.is_some_and(|own| Some(own) != parent_service())
}

struct LocalStack {
    frames: Vec<Frame>,
    segments: Vec<Option<Segment>>,
    /// Frames left below the top (`FrameKind::Left`) still in `frames`.
    left: usize,
}

impl LocalStack {
    const fn new() -> LocalStack {
        LocalStack {
            frames: Vec::new(),
            segments: Vec::new(),
            left: 0,
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

    /// A new trace (continuing `parent`, or a root) whose first span is
    /// `span_id`: held by a new segment of this thread, or shared.
    fn begin_trace(
        &mut self,
        own_service: Option<&str>,
        span_id: u64,
        parent: Option<&SpanContext>,
        start: clock::Instant,
        shared: bool,
    ) -> Option<TraceHold> {
        let seed = crate::runtime::registry::with_current(|core| {
            let service = own_service.unwrap_or(&core.config.service);
            TraceSeed::begin(
                core,
                span_id,
                parent.map(SpanContext::continued),
                service,
                start,
            )
        })?;
        Some(if shared {
            TraceHold::Shared(seed.share())
        } else {
            TraceHold::Segment(self.add_segment(Segment::new(SegmentTrace::Own(seed))))
        })
    }

    /// The active span's trace, for a child about to start: its segment,
    /// or the shared trace with a hold registered for the child.
    fn active_hold(&mut self, shared: bool) -> Option<(TraceHold, u64, Option<Cow<'static, str>>)> {
        let top = self.frames.last()?;
        let (span_id, service, slot) = (top.span_id, top.service.clone(), top.segment);
        let hold = if shared {
            let trace = Arc::clone(self.segment(slot)?.shared()?);
            if !trace.try_acquire() {
                return None;
            }
            TraceHold::Shared(trace)
        } else {
            TraceHold::Segment(slot)
        };
        Some((hold, span_id, service))
    }

    /// Decides where a new span goes: its trace, its parent, its service,
    /// and whether it is a service entry. Every kind of span starts here
    /// (the macro's thread-local guard, [`crate::Span`]s from the builder
    /// and futures); `shared` says the span may leave this thread.
    #[inline(always)]
    fn place<const SHARED: bool>(
        &mut self,
        own_service: Option<&str>,
        parent: Parent,
        span_id: u64,
        start: clock::Instant,
    ) -> Option<Placement> {
        let shared = SHARED;
        // (trace, parent id, parent's service, the parent is in this process)
        let (hold, parent_id, parent_service, local_parent) = match parent {
            Parent::Active => match self.active_hold(shared) {
                Some((hold, id, service)) => (hold, id, service, true),
                None => {
                    let hold = self.begin_trace(own_service, span_id, None, start, shared)?;
                    (hold, 0, None, false)
                }
            },
            Parent::Explicit(None) => {
                let hold = self.begin_trace(own_service, span_id, None, start, shared)?;
                (hold, 0, None, false)
            }
            Parent::Held(mut held) => {
                let trace = held.take_trace()?;
                let hold = if shared {
                    TraceHold::Shared(trace)
                } else {
                    TraceHold::Segment(self.segment_for(&trace, true)?)
                };
                (hold, held.span_id, held.service.take(), true)
            }
            Parent::Explicit(Some(context)) => {
                let joined = context
                    .local_trace
                    .as_ref()
                    .filter(|trace| trace.try_acquire())
                    .and_then(|trace| {
                        if shared {
                            Some(TraceHold::Shared(Arc::clone(trace)))
                        } else {
                            self.segment_for(trace, true).map(TraceHold::Segment)
                        }
                    });
                let hold = match joined {
                    Some(hold) => hold,
                    None => {
                        self.begin_trace(own_service, span_id, Some(&context), start, shared)?
                    }
                };
                let local = context.local_trace.is_some();
                (hold, context.span_id, context.service, local)
            }
        };
        let top_level = is_service_entry(local_parent, own_service, || {
            let tracer = match &hold {
                TraceHold::Segment(slot) => self
                    .segments
                    .get(*slot)
                    .and_then(Option::as_ref)
                    .map(Segment::tracer),
                TraceHold::Shared(trace) => Some(&trace.tracer),
            };
            parent_service
                .as_deref()
                .or(tracer.map(|t| t.config.service.as_str()))
        });
        Some(Placement {
            hold,
            span: Placed {
                parent_id,
                parent_service,
                top_level,
            },
        })
    }

    /// A child of the active span, the common case (every sync
    /// `#[dd_span]` below another): placed here, without building a
    /// `Placement` or passing a `Parent` (measured: those cost the child span
    /// a fifth more instructions). With no active span it is a root, placed
    /// by [`LocalStack::place`]. Both use the same rule, `is_service_entry`.
    #[inline]
    fn push_child_of_active(&mut self, spec: &'static SpanSpec) -> FrameRef {
        let Some(top) = self
            .frames
            .last()
            .filter(|top| !matches!(top.kind, FrameKind::Left))
        else {
            return self.push_local(spec, Parent::Active);
        };
        let span_id = id::new_span_id();
        let start = clock::now();
        let (slot, parent_id, parent_service) = (top.segment, top.span_id, top.service.clone());
        let top_level = is_service_entry(true, spec.service, || {
            parent_service.as_deref().or_else(|| {
                self.segments
                    .get(slot)
                    .and_then(Option::as_ref)
                    .map(|s| s.tracer().config.service.as_str())
            })
        });
        let placed = Placed {
            parent_id,
            parent_service,
            top_level,
        };
        self.push_frame(spec, span_id, start, slot, placed)
    }

    /// A span that lives in this stack, placed by [`LocalStack::place`].
    fn push_local(&mut self, spec: &'static SpanSpec, parent: Parent) -> FrameRef {
        let span_id = id::new_span_id();
        let start = clock::now();
        let Some(placement) = self.place::<false>(spec.service, parent, span_id, start) else {
            return FrameRef::NONE;
        };
        let (TraceHold::Segment(slot), placed) = (placement.hold, placement.span) else {
            return FrameRef::NONE; // not reached: a local span's trace is held by a segment
        };
        self.push_frame(spec, span_id, start, slot, placed)
    }

    /// Pushes the frame of a span placed in segment `slot`.
    #[inline(always)]
    fn push_frame(
        &mut self,
        spec: &'static SpanSpec,
        span_id: u64,
        start: clock::Instant,
        slot: usize,
        placed: Placed,
    ) -> FrameRef {
        let Some(segment) = self.segment(slot) else {
            return FrameRef::NONE;
        };
        segment.frames += 1;
        let mut record = SpanRecord::starting_at(span_id, placed.parent_id, spec, start);
        record.top_level = placed.top_level;
        // The span's own service is in its spec; else it inherits its
        // parent's (see `Placed::apply`, for spans that may move).
        let service = match spec.service {
            Some(own) => Some(Cow::Borrowed(own)),
            None => {
                if let Some(inherited) = &placed.parent_service {
                    record.set_service(inherited.clone());
                }
                placed.parent_service
            }
        };
        let index = self.frames.len();
        self.frames.push(Frame {
            span_id,
            segment: slot,
            service,
            kind: FrameKind::Local(record),
        });
        FrameRef {
            span_id,
            index: u32::try_from(index).unwrap_or(u32::MAX),
        }
    }

    fn push_entered(&mut self, span: &Arc<SpanInner>) -> FrameRef {
        let kind = FrameKind::Entered(Arc::clone(span));
        self.push_held(&span.trace, span.span_id, span.service.clone(), kind)
    }

    /// Enters a captured span that is not a [`crate::Span`] (see
    /// [`FrameKind::Elsewhere`]).
    fn push_elsewhere(&mut self, trace: &Arc<TraceShared>, held: &HeldParent) -> FrameRef {
        self.push_held(
            trace,
            held.span_id,
            held.service.clone(),
            FrameKind::Elsewhere,
        )
    }

    /// Pushes the frame of a span whose data lives outside this stack, in
    /// this thread's segment of its shared `trace`.
    fn push_held(
        &mut self,
        trace: &Arc<TraceShared>,
        span_id: u64,
        service: Option<Cow<'static, str>>,
        kind: FrameKind,
    ) -> FrameRef {
        let Some(slot) = self.segment_for(trace, false) else {
            return FrameRef::NONE;
        };
        let Some(segment) = self.segment(slot) else {
            return FrameRef::NONE;
        };
        segment.frames += 1;
        let index = u32::try_from(self.frames.len()).unwrap_or(u32::MAX);
        self.frames.push(Frame {
            span_id,
            segment: slot,
            service,
            kind,
        });
        FrameRef { span_id, index }
    }

    /// The active span, captured with a hold on its trace.
    fn capture_active(&mut self) -> Option<HeldParent> {
        let top = self.frames.last()?;
        let (span_id, service, slot) = (top.span_id, top.service.clone(), top.segment);
        let span = match &top.kind {
            FrameKind::Entered(inner) => Some(Arc::clone(inner)),
            FrameKind::Local(_) | FrameKind::Elsewhere => None,
            FrameKind::Left => return None,
        };
        let trace = match &span {
            Some(inner) => Arc::clone(&inner.trace),
            None => Arc::clone(self.segment(slot)?.shared()?),
        };
        if !trace.try_acquire() {
            return None;
        }
        Some(HeldParent {
            trace: Some(trace),
            span_id,
            service,
            span,
        })
    }

    /// Removes the `Left` frames that the last pop uncovered on the top.
    #[cold]
    fn drop_left_on_top(&mut self) {
        while matches!(self.frames.last(), Some(f) if matches!(f.kind, FrameKind::Left)) {
            self.frames.pop();
            self.left -= 1;
        }
    }

    fn pop(&mut self, frame: FrameRef, end: clock::Instant) {
        let hinted = frame.index as usize;
        let position = if self
            .frames
            .get(hinted)
            .is_some_and(|f| f.span_id == frame.span_id)
        {
            hinted
        } else {
            match self.frames.iter().rposition(|f| f.span_id == frame.span_id) {
                Some(position) => position,
                None => return,
            }
        };
        // Nearly always the top: a pop. Below it, the frame is left in
        // place as `Left` (removing it would shift every frame above: with
        // 100 000 guards dropped oldest first, quadratic).
        let frame = if position + 1 == self.frames.len() {
            self.frames.pop()
        } else {
            let left = Frame {
                span_id: 0,
                segment: usize::MAX,
                service: None,
                kind: FrameKind::Left,
            };
            self.left += 1;
            Some(std::mem::replace(&mut self.frames[position], left))
        };
        let Some(frame) = frame else {
            return;
        };
        if self.left > 0 {
            self.drop_left_on_top();
        }
        // Not `self.segment(..)`: the frames stay readable for the root.
        let Some(segment) = self
            .segments
            .get_mut(frame.segment)
            .and_then(Option::as_mut)
        else {
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
                let root_id = segment.root_span_id();
                let root = self.frames.iter().find_map(|f| match &f.kind {
                    FrameKind::Local(root) if f.span_id == root_id => Some(root),
                    _ => None,
                });
                segment.hand_over(finished, root);
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
            let top = FrameRef {
                span_id: frame.span_id,
                index: u32::try_from(self.frames.len() - 1).unwrap_or(u32::MAX),
            };
            self.pop(top, end);
        }
    }
}

#[inline(always)]
fn with_stack<R>(f: impl FnOnce(&mut LocalStack) -> R) -> Option<R> {
    // `try_with`: spans during thread teardown are not recorded; `try_borrow_mut`:
    // never panic, even if the stack were re-entered.
    STACK
        .try_with(|stack| stack.try_borrow_mut().ok().map(|mut stack| f(&mut stack)))
        .ok()
        .flatten()
}

/// Starts a span that lives in this thread's stack (see
/// [`crate::LocalSpanGuard`]); its id, or 0 when nothing is recorded.
#[inline]
pub(crate) fn push_local(spec: &'static SpanSpec, parent: Parent) -> FrameRef {
    with_stack(|stack| stack.push_local(spec, parent)).unwrap_or(FrameRef::NONE)
}

/// Starts a span that lives in this thread's stack as a child of the active
/// span (or a new root); see [`push_local`].
#[inline]
pub(crate) fn push_child_of_active(spec: &'static SpanSpec) -> FrameRef {
    with_stack(|stack| stack.push_child_of_active(spec)).unwrap_or(FrameRef::NONE)
}

/// Starts a span named `name` that lives in this thread's stack as a child
/// of the active span (or a new root), as [`push_child_of_active`] does for
/// a span with a spec. A `&'static str` name gets a spec of its own
/// ([`crate::record::named_spec`]); another is set on the record. `Err(name)`
/// when the stack cannot be used (thread teardown): the caller starts a
/// shared span instead.
pub(crate) fn push_named_child_of_active(
    name: Cow<'static, str>,
) -> Result<FrameRef, Cow<'static, str>> {
    let spec = match &name {
        Cow::Borrowed(name) => crate::record::named_spec::spec_named(name),
        Cow::Owned(_) => None,
    };
    let mut name = Some(name);
    let pushed = with_stack(|stack| match spec {
        Some(spec) => stack.push_child_of_active(spec),
        None => {
            let frame = stack.push_child_of_active(&crate::record::DYNAMIC);
            if let (Some(top), Some(name)) = (stack.frames.last_mut(), name.take()) {
                if let FrameKind::Local(record) = &mut top.kind {
                    if frame.span_id == top.span_id {
                        record.set_name(name);
                    }
                }
            }
            frame
        }
    });
    match (pushed, name) {
        (Some(frame), _) => Ok(frame),
        (None, Some(name)) => Err(name),
        (None, None) => Ok(FrameRef::NONE),
    }
}

/// Makes `span` the active span; its frame ([`FrameRef::NONE`] when it
/// cannot be entered).
pub(crate) fn enter(span: &Arc<SpanInner>) -> FrameRef {
    with_stack(|stack| stack.push_entered(span)).unwrap_or(FrameRef::NONE)
}

/// The active span, captured where a future is made (see [`HeldParent`]);
/// `None` when nothing is active (or its trace was sent already).
pub(crate) fn capture_active() -> Option<HeldParent> {
    with_stack(LocalStack::capture_active).flatten()
}

/// Makes a captured span the active span, for one poll of the future that
/// captured it; its frame ([`FrameRef::NONE`] when it cannot be entered).
pub(crate) fn enter_held(held: &HeldParent) -> FrameRef {
    if let Some(span) = &held.span {
        return enter(span);
    }
    let Some(trace) = &held.trace else {
        return FrameRef::NONE;
    };
    with_stack(|stack| stack.push_elsewhere(trace, held)).unwrap_or(FrameRef::NONE)
}

/// Leaves a frame pushed here (a no-op for [`FrameRef::NONE`]).
#[inline]
pub(crate) fn exit(frame: FrameRef) {
    if frame.span_id == 0 {
        return;
    }
    let end = clock::now();
    with_stack(|stack| stack.pop(frame, end));
}

/// Starts a span that may leave this thread (see [`LocalStack::place`]).
/// During thread teardown, when the stack is gone, the span is placed as if
/// nothing were active. `name`: a name set at run time (else the spec's).
pub(crate) fn start_shared(
    spec: &'static SpanSpec,
    name: Option<Cow<'static, str>>,
    own_service: Option<Cow<'static, str>>,
    parent: Parent,
) -> Option<SharedStart> {
    let span_id = id::new_span_id();
    let start = clock::now();
    let mut parent = Some(parent);
    let own = own_service.as_deref();
    let mut place =
        |stack: &mut LocalStack| stack.place::<true>(own, parent.take()?, span_id, start);
    let placement = match with_stack(&mut place) {
        Some(placement) => placement,
        None => place(&mut LocalStack::new()),
    }?;
    let (TraceHold::Shared(trace), placed) = (placement.hold, placement.span) else {
        return None; // not reached: `shared` places in a shared trace
    };
    let mut record = match name {
        Some(name) => SpanRecord::named_at(span_id, placed.parent_id, name, start),
        None => SpanRecord::starting_at(span_id, placed.parent_id, spec, start),
    };
    let service = placed.apply(&mut record, spec, own_service);
    Some(SharedStart {
        trace,
        record,
        service,
    })
}

/// Runs `f` on the active span's data, if there is an active span.
/// Whether an active span records here (what [`with_active_record`]
/// would reach): a cheap question to ask before formatting anything.
#[inline]
pub(crate) fn active_records() -> bool {
    with_stack(|stack| {
        matches!(
            stack.frames.last(),
            Some(Frame {
                kind: FrameKind::Local(_) | FrameKind::Entered(_),
                ..
            })
        )
    })
    .unwrap_or(false)
}

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
        Some(Frame {
            kind: FrameKind::Left | FrameKind::Elsewhere,
            ..
        })
        | None => None,
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

/// Where a handle on a running span finds it.
pub(crate) enum Target {
    /// A span living in this thread's stack (`#[dd_span]` on a sync fn).
    Local(u64),
    /// A [`crate::Span`].
    Shared(Arc<SpanInner>),
}

fn target_of(frame: &Frame) -> Option<Target> {
    match &frame.kind {
        // A span of another thread's stack: a handle that can give its
        // context, and tags nothing from here.
        FrameKind::Local(_) | FrameKind::Elsewhere => Some(Target::Local(frame.span_id)),
        FrameKind::Entered(inner) => Some(Target::Shared(Arc::clone(inner))),
        FrameKind::Left => None,
    }
}

/// The active span, as a handle target.
pub(crate) fn active_target() -> Option<Target> {
    with_stack(|stack| stack.frames.last().and_then(target_of)).flatten()
}

/// The local root of the active span's trace, as a handle target: found in
/// this thread's stack, else through the trace (a root [`crate::Span`]).
pub(crate) fn root_target() -> Option<Target> {
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
            return target_of(frame);
        }
        shared?.root_span().map(Target::Shared)
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
