//! The `tracing` crate: an event format for `tracing-subscriber`'s fmt
//! layer that puts the active ddspan span's correlation fields first.

use std::fmt;

use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;

/// Wraps an event format: every event emitted while a ddspan span is active
/// starts with its correlation fields.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::integrations::tracing::CorrelatedFormat;
///
/// let subscriber = tracing_subscriber::fmt()
///     .event_format(CorrelatedFormat::new(tracing_subscriber::fmt::format()))
///     .finish();
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = ddspan_runtime::tracer::trace("job");
///     tracing::info!("started"); // dd.trace_id="…" dd.span_id="…" INFO started
/// });
/// ```
#[derive(Debug)]
pub struct CorrelatedFormat<F> {
    inner: F,
}

impl<F> CorrelatedFormat<F> {
    /// Wraps `inner`.
    pub fn new(inner: F) -> CorrelatedFormat<F> {
        CorrelatedFormat { inner }
    }
}

impl<S, N, F> FormatEvent<S, N> for CorrelatedFormat<F>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
    F: FormatEvent<S, N>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        if let Some(fields) = crate::tracer::log_context() {
            write!(writer, "{fields} ")?;
        }
        self.inner.format_event(ctx, writer, event)
    }
}
