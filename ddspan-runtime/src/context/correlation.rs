//! Log correlation: the fields that tie a log line to its trace in
//! Datadog, in dd-trace-go's format.

use std::fmt;

use crate::context::SpanContext;

/// `dd.service=… dd.env=… dd.version=… dd.trace_id="…" dd.span_id="…"`, as
/// dd-trace-go writes a span with `%v`. Empty service, env and version are
/// left out. The trace id is 32 lower-case hex digits when its upper 64 bits
/// are set (128-bit ids, what Datadog's log correlation expects, as in
/// dd-trace-go and ddtrace), else the decimal of the lower 64 bits; the span
/// id is decimal.
///
/// Given by [`Span::log_context`](crate::Span::log_context) (also on
/// `SpanRef` and `LocalSpanGuard`) and
/// [`tracer::log_context`](crate::tracer::log_context); `#[non_exhaustive]`
/// so that more fields can come.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let span = tracer::start_span("job");
/// if let Some(fields) = span.log_context() {
///     println!("starting the job {fields}");
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct LogContext {
    /// The service.
    pub service: String,
    /// The environment, possibly empty.
    pub env: String,
    /// The version, possibly empty.
    pub version: String,
    /// The full trace id.
    pub trace_id: u128,
    /// The span id.
    pub span_id: u64,
}

impl LogContext {
    pub(crate) fn of(context: &SpanContext) -> LogContext {
        let core = crate::runtime::registry::current_config();
        let config = core.as_ref().map(|core| &core.config);
        let service = context
            .service
            .as_deref()
            .map(str::to_owned)
            .or_else(|| config.map(|c| c.service.clone()))
            .unwrap_or_default();
        LogContext {
            service,
            env: config.and_then(|c| c.env.clone()).unwrap_or_default(),
            version: config.and_then(|c| c.version.clone()).unwrap_or_default(),
            trace_id: context.trace_id,
            span_id: context.span_id,
        }
    }

    /// The trace id as Datadog's log correlation expects it.
    ///
    /// # Examples
    ///
    /// ```
    /// let span = ddspan_runtime::tracer::start_span("job");
    /// if let Some(fields) = span.log_context() {
    ///     let id = fields.trace_id_text(); // 32 hex digits for a 128-bit id
    ///     assert!(id.len() == 32 || id.parse::<u64>().is_ok());
    /// }
    /// ```
    pub fn trace_id_text(&self) -> String {
        if crate::util::id::high_bits(self.trace_id) != 0 {
            format!("{:032x}", self.trace_id)
        } else {
            crate::util::id::low_bits(self.trace_id).to_string()
        }
    }
}

impl fmt::Display for LogContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value) in [
            ("service", &self.service),
            ("env", &self.env),
            ("version", &self.version),
        ] {
            if !value.is_empty() {
                write!(f, "dd.{key}={value} ")?;
            }
        }
        write!(
            f,
            "dd.trace_id={:?} dd.span_id=\"{}\"",
            self.trace_id_text(),
            self.span_id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_matches_dd_trace_go() {
        let mut fields = LogContext {
            service: "svc".into(),
            env: String::new(),
            version: "1.0".into(),
            trace_id: 0x6b03_41ba_0000_0000_5101_bbdc_3700_58e8,
            span_id: 42,
        };
        assert_eq!(
            fields.to_string(),
            r#"dd.service=svc dd.version=1.0 dd.trace_id="6b0341ba000000005101bbdc370058e8" dd.span_id="42""#
        );
        fields.trace_id = 0x5101_bbdc_3700_58e8;
        fields.service.clear();
        fields.version.clear();
        assert_eq!(
            fields.to_string(),
            r#"dd.trace_id="5837153146538842344" dd.span_id="42""#
        );
    }
}
