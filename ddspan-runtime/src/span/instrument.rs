//! Futures that carry a span: the span is active during every `poll`, on
//! whichever executor thread polls, so spans started after any `.await` get
//! the right parent; it finishes when the future completes or is dropped.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::span::Span;

pin_project_lite::pin_project! {
    /// A future whose span is active while it is polled (see [`InSpan`]).
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
    pub fn span(&self) -> &Span {
        &self.span
    }
}

/// Runs a future inside a span: `.in_span(span)`, like
/// `tracing::Instrument::instrument`.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, InSpan};
///
/// async fn fetch() -> u32 {
///     let _child = tracer::trace("fetch.parse"); // a child of "fetch"
///     7
/// }
/// let future = fetch().in_span(tracer::start_span("fetch"));
/// # drop(future);
/// ```
pub trait InSpan: Sized {
    /// Wraps `self` so that `span` is active whenever it is polled.
    fn in_span(self, span: Span) -> Instrumented<Self> {
        Instrumented { inner: self, span }
    }
}

impl<F: Future> InSpan for F {}
