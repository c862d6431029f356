//! The ecosystem's logging and tracing crates, each behind its feature:
//! log lines carry the active span's `dd.trace_id` and `dd.span_id` (see
//! [`crate::LogContext`]), so Datadog links them to the trace, and
//! `tracing` spans become Datadog spans (`tracing::DatadogLayer`, feature `tracing`).

#[cfg(feature = "tower")]
pub mod http;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "tracing")]
pub mod tracing;
