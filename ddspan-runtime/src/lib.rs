//! The span runtime of [ddspan](https://docs.rs/ddspan): span model, ids, context,
//! trace chunks, sampling, configuration, the v0.4 msgpack encoder and the
//! background writer that ships traces to the Datadog Agent.
//!
//! Users depend on the `ddspan` facade crate, which re-exports everything here.
//!
//! # Examples
//!
//! ```
//! use ddspan_runtime::tracer;
//!
//! // Spans started with no agent around are buffered, then dropped and counted.
//! let config = tracer::Config::builder().service("doc-example").enabled(false).build();
//! tracer::start(config);
//! {
//!     let _root = tracer::trace("request");
//!     let _child = tracer::trace("database.query");
//! }
//! tracer::stop();
//! ```
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod clock;
mod config;
mod context;
mod encode;
mod future;
mod id;
mod local;
mod log;
mod pool;
mod record;
mod sampling;
mod span;
mod spec;
mod stats;
mod tag;
mod trace;
pub mod tracer;
mod transport;
mod writer;

pub use config::{AgentUrl, Config, ConfigBuilder};
pub use context::SpanContext;
pub use future::{InSpan, Instrumented};
pub use local::LocalSpanGuard;
pub use span::{ActiveSpan, Entered, Span, SpanBuilder};
pub use spec::SpanSpec;
pub use stats::Stats;
pub use tag::{StaticTag, StaticValue, TagValue, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
