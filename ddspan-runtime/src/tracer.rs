//! The tracer: start, stop, flush, and the entry points that create spans.
//!
//! The tracer starts by itself from the environment on the first span, so
//! instrumented code needs no set-up; [`start`] configures it in code.
//!
//! This module holds functions only; the types they take and return
//! ([`Config`], [`Span`], [`SpanContext`], ...) are at the crate root.

use std::borrow::Cow;
use std::time::Duration;

use crate::config::Config;
use crate::context::correlation::LogContext;
use crate::context::SpanContext;
use crate::export::stats::Stats;
use crate::propagation::{ExtractError, Extractor, Injector, Propagator};
use crate::span::{EnteredSpan, Span, SpanBuilder};

pub use crate::record::global_tags::set_global_tag;
pub use crate::span::span_ref::{current_root_span, current_span};

/// Starts the tracer with this configuration. A tracer already running is
/// stopped first (delivering what it holds), so tests and programs can
/// reconfigure.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::{tracer, Config};
///
/// tracer::start(Config::builder().service("billing").env("staging").build());
/// let _span = tracer::trace("invoice.render");
/// ```
pub fn start(config: Config) {
    crate::runtime::registry::start(config)
}

/// Delivers everything finished so far and stops the writer; spans started
/// afterwards are not recorded until [`start`] is called again. Returns
/// whether everything was delivered within the configured shutdown timeout
/// (`false` also when the agent could not be reached).
///
/// # Examples
///
/// ```
/// ddspan_runtime::tracer::stop();
/// ```
pub fn stop() -> bool {
    crate::runtime::registry::stop()
}

/// Sends every trace finished so far to the agent now, trying for up to
/// `timeout` (waiting out retries and an agent that is down). Returns `true`
/// when every trace finished since the previous flush (or the start) was
/// delivered. `false` means some are still buffered (the writer keeps
/// trying), the writer did not answer in time, or spans were lost since the
/// previous flush: dropped (queue or buffer full, a 4xx, retries used up)
/// or sent with no answer; [`stats`] has the counts. Traces whose spans are
/// still open are not sent.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ddspan_runtime::tracer::flush(Duration::from_secs(1));
/// ```
pub fn flush(timeout: Duration) -> bool {
    crate::runtime::registry::flush(timeout)
}

/// The running tracer's counters: sent, dropped and failed spans and traces;
/// after [`stop`], the stopped tracer's final counters.
///
/// # Examples
///
/// ```
/// let stats = ddspan_runtime::tracer::stats();
/// assert!(stats.spans_sent <= stats.spans_queued);
/// ```
pub fn stats() -> Stats {
    crate::runtime::registry::stats()
}

/// Starts a span and makes it the active span of this thread until the
/// returned guard drops: Python's `with tracer.trace(name)`.
///
/// # Examples
///
/// ```
/// let _request = ddspan_runtime::tracer::trace("http.request");
/// let _query = ddspan_runtime::tracer::trace("db.query"); // a child of http.request
/// ```
pub fn trace(name: impl Into<Cow<'static, str>>) -> EnteredSpan {
    EnteredSpan::on_stack(name.into())
}

/// Starts a span that is not made active: a child of the active span, or a
/// new root.
///
/// # Examples
///
/// ```
/// let span = ddspan_runtime::tracer::start_span("background.job");
/// span.set_tag("job.id", 42);
/// span.finish();
/// ```
pub fn start_span(name: impl Into<Cow<'static, str>>) -> Span {
    span(name).start()
}

/// A builder for a span with options.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let parent = tracer::start_span("parent");
/// let child = tracer::span("child")
///     .resource("SELECT 1")
///     .span_type("sql")
///     .tag("db.system", "postgresql")
///     .child_of(parent.context())
///     .start();
/// ```
pub fn span(name: impl Into<Cow<'static, str>>) -> SpanBuilder {
    SpanBuilder::new(name.into())
}

/// The context of the active span on this thread (or in this future), if any.
///
/// # Examples
///
/// ```
/// let _span = ddspan_runtime::tracer::trace("op");
/// let context = ddspan_runtime::tracer::active_context();
/// ```
pub fn active_context() -> Option<SpanContext> {
    crate::context::stack::active_context()
}

/// Writes a span's context into outgoing headers, in the configured styles
/// (`datadog`, `tracecontext`, `baggage` by default).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use ddspan_runtime::tracer;
///
/// let span = tracer::start_span("http.client");
/// let mut headers: HashMap<String, String> = HashMap::new();
/// if let Some(context) = span.context() {
///     tracer::inject(&context, &mut headers);
/// }
/// ```
pub fn inject(context: &SpanContext, carrier: &mut dyn Injector) {
    Propagator::from_tracer().inject(context, carrier);
}

/// Reads a context from incoming headers; pass the result to
/// [`SpanBuilder::child_of`] to continue the trace. Headers with W3C baggage
/// and no trace context give a context of baggage alone
/// ([`SpanContext::is_baggage_only`]): spans under it begin a new trace
/// that carries the baggage, as ddtrace does.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let headers = vec![
///     ("x-datadog-trace-id".to_owned(), "1890081292213679918".to_owned()),
///     ("x-datadog-parent-id".to_owned(), "7628922200302827473".to_owned()),
/// ];
/// let parent = tracer::extract(&headers).ok();
/// let _span = tracer::span("http.server").child_of(parent).start();
/// ```
pub fn extract<E: Extractor + ?Sized>(carrier: &E) -> Result<SpanContext, ExtractError> {
    Propagator::from_tracer().extract(carrier)
}

/// The log correlation fields of the active span (`dd.trace_id`, ...), to
/// add to a log line.
///
/// # Examples
///
/// ```
/// let _span = ddspan_runtime::tracer::trace("job");
/// if let Some(fields) = ddspan_runtime::tracer::log_context() {
///     eprintln!("job started {fields}");
/// }
/// ```
pub fn log_context() -> Option<LogContext> {
    active_context().map(|context| LogContext::of(&context))
}
