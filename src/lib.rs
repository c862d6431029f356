//! ddspan: compile-time Datadog APM instrumentation for Rust.
//!
//! Add `ddspan` as the one dependency, set `DD_SERVICE`, `DD_ENV` and
//! `DD_VERSION`, and every span reaches the Datadog Agent as a v0.4 trace
//! payload, shipped in batches from a background thread. The tracer starts by
//! itself from the environment on the first span.
//!
//! ```
//! use ddspan::tracer;
//!
//! fn handle_request() {
//!     let _request = tracer::trace("http.request");
//!     let query = tracer::span("db.query").resource("SELECT * FROM users").start();
//!     query.set_tag("db.rows", 3);
//!     query.finish();
//! }
//! handle_request();
//! tracer::stop();
//! ```
//!
//! The `#[dd_span]` and `#[dd_ignore]` attributes come with the macro issue;
//! [`tracer`] is the runtime they build on.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use ddspan_macros::{dd_closure, dd_ignore, dd_span};
pub use ddspan_runtime::*;
