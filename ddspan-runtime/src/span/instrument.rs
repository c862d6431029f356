//! Futures that carry a span: the span is active during every `poll`, on
//! whichever executor thread polls, so spans started after any `.await` get
//! the right parent; it finishes when the future completes or is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::span::Span;

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
}

impl<F: Future> Instrument for F {}
