//! Log correlation for the logging crates of the ecosystem, each behind
//! its feature: log lines carry the active span's `dd.trace_id` and
//! `dd.span_id` (see [`crate::LogContext`]), so Datadog links them to the
//! trace.

#[cfg(feature = "tower")]
pub mod http;
#[cfg(feature = "log")]
pub mod log;
#[cfg(feature = "tracing")]
pub mod tracing;
