//! Futures that carry a span: the span is active during every `poll`, on
//! whichever executor thread polls, so spans started after any `.await` get
//! the right parent; it finishes when the future completes or is dropped.
//!
//! A future is often first polled far from where it was made (`tokio::spawn`,
//! `join_all`, a task queue): [`Instrument::in_active_span`] and
//! `#[dd_span] async fn` capture the span active where the future is made
//! (as Python's asyncio copies the context when a task is created), so what
//! the future starts stays in that span's trace.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::context::stack::{self, FrameRef, HeldParent};
use crate::record::spec::SpanSpec;
use crate::span::{Span, SpanBuilder};

pin_project_lite::pin_project! {
    /// A future whose span is active while it is polled, made by
    /// [`Instrument::in_span`]; it finishes the span when it completes or
    /// is dropped.
    #[must_use = "futures do nothing unless polled"]
    pub struct Instrumented<F> {
        #[pin]
        inner: F,
        span: Span,
    }
}

impl<F: Future> Future for Instrumented<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = this.span.enter();
        let output = this.inner.poll(cx);
        if output.is_ready() {
            this.span.finish();
        }
        output
    }
}

impl<F> Instrumented<F> {
    /// The span this future carries.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, Instrument};
    ///
    /// let future = async { 7 }.in_span(tracer::start_span("compute"));
    /// future.span().set_tag("input.size", 3);
    /// ```
    pub fn span(&self) -> &Span {
        &self.span
    }
}

impl<F> std::fmt::Debug for Instrumented<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Instrumented")
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// A future during whose every poll the span that was active where it
    /// was made is active again, made by [`Instrument::in_active_span`]. It
    /// does not finish that span.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, InActiveSpan, Instrument};
    ///
    /// let request = tracer::start_span("request");
    /// let _entered = request.enter();
    /// let job: InActiveSpan<_> = async { 1 + 1 }.in_active_span();
    /// # drop(job);
    /// ```
    #[must_use = "futures do nothing unless polled"]
    pub struct InActiveSpan<F> {
        #[pin]
        inner: F,
        parent: Option<HeldParent>,
    }
}

/// Leaves a frame when dropped (also when the polled future panics).
struct Entered(FrameRef);

impl Drop for Entered {
    fn drop(&mut self) {
        stack::exit(self.0);
    }
}

impl<F: Future> Future for InActiveSpan<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _entered = Entered(
            this.parent
                .as_ref()
                .map_or(FrameRef::NONE, stack::enter_held),
        );
        let output = this.inner.poll(cx);
        if output.is_ready() {
            // The span's trace need not wait for this future any longer.
            *this.parent = None;
        }
        output
    }
}

impl<F> std::fmt::Debug for InActiveSpan<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InActiveSpan")
            .field("captured", &self.parent.is_some())
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// What `#[dd_span]` makes of an `async fn`: the span starts at the
    /// first poll, as a child of the span that was active where the
    /// function was called (else of the span active at that first poll),
    /// is active on every poll, and finishes when the future completes or
    /// is dropped. Not a public API.
    #[doc(hidden)]
    #[must_use = "futures do nothing unless polled"]
    pub struct SpanOnFirstPoll<F> {
        #[pin]
        inner: F,
        spec: &'static SpanSpec,
        parent: Option<HeldParent>,
        span: Option<Span>,
    }
}

impl<F> SpanOnFirstPoll<F> {
    /// Captures the active span now: a thread-local read, and a reference
    /// count and a hold on its trace when there is one.
    #[inline]
    pub(crate) fn new(inner: F, spec: &'static SpanSpec) -> SpanOnFirstPoll<F> {
        SpanOnFirstPoll {
            inner,
            spec,
            parent: stack::capture_active(),
            span: None,
        }
    }
}

impl<F: Future> Future for SpanOnFirstPoll<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let span = this.span.get_or_insert_with(|| {
            let builder = SpanBuilder::from_spec(this.spec);
            match this.parent.take() {
                Some(parent) => builder.held_parent(parent),
                None => builder,
            }
            .start()
        });
        let _entered = span.enter();
        let output = this.inner.poll(cx);
        if output.is_ready() {
            span.finish();
        }
        output
    }
}

impl<F> std::fmt::Debug for SpanOnFirstPoll<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanOnFirstPoll")
            .field("name", &self.spec.name())
            .field("span", &self.span)
            .finish_non_exhaustive()
    }
}

/// Instruments a future: `future.in_span(span)` gives an [`Instrumented`]
/// future whose `span` is active whenever it is polled (so spans started
/// inside, after any `.await`, are its children) and finishes when it
/// completes or is dropped.
///
/// The trait and its future are named as `tracing`'s (`Instrument`,
/// `Instrumented`); the method keeps its own name, `in_span` (as
/// `fastrace`'s), so that `tracing::Instrument` in the same scope does not
/// make `.instrument(..)` ambiguous.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, Instrument};
///
/// async fn fetch() -> u32 {
///     let _child = tracer::trace("fetch.parse"); // a child of "fetch"
///     7
/// }
/// let future = fetch().in_span(tracer::start_span("fetch"));
/// # drop(future);
/// ```
pub trait Instrument: Sized {
    /// Wraps `self` so that `span` is active whenever it is polled.
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, Instrument};
    ///
    /// let span = tracer::span("job").resource("nightly").start();
    /// let future = async { 1 + 1 }.in_span(span);
    /// # drop(future);
    /// ```
    fn in_span(self, span: Span) -> Instrumented<Self> {
        Instrumented { inner: self, span }
    }

    /// Wraps `self` so that the span active now, where the future is made,
    /// is active whenever it is polled, on whichever thread: what it
    /// starts joins that span's trace even when it runs on another task
    /// (`tokio::spawn(work().in_active_span())`). The span is not finished
    /// by the future; its trace is kept open until the future completes
    /// or is dropped. Nothing active: the future runs as it is.
    ///
    /// (`tracing`'s `in_current_span`, named apart so that both traits can
    /// be in scope.)
    ///
    /// # Examples
    ///
    /// ```
    /// use ddspan_runtime::{tracer, Instrument};
    ///
    /// let _request = tracer::trace("request");
    /// let job = async {
    ///     let _step = tracer::trace("job.step"); // a child of "request"
    /// }
    /// .in_active_span();
    /// # drop(job);
    /// ```
    fn in_active_span(self) -> InActiveSpan<Self> {
        InActiveSpan {
            inner: self,
            parent: stack::capture_active(),
        }
    }
}

impl<F: Future> Instrument for F {}
