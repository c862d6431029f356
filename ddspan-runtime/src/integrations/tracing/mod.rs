//! The `tracing` crate, both ways:
//!
//! - [`DatadogLayer`], a `tracing-subscriber` layer that records `tracing`
//!   spans (`#[tracing::instrument]`, `info_span!`, the spans of tower-http,
//!   hyper, tonic, sqlx, ...) as Datadog spans in the same traces as
//!   ddspan's own: each world's spans are the other's parents and children.
//! - [`CorrelatedFormat`], an event format for `tracing-subscriber`'s fmt
//!   layer that adds the active span's log correlation fields to every line:
//!   before the text, or as fields of the object with `.json()`
//!   (`fmt::layer().json().map_event_format(CorrelatedFormat::new)`).
//!
//! # Examples
//!
//! ```
//! use ddspan_runtime::integrations::tracing::{CorrelatedFormat, DatadogLayer};
//! use tracing_subscriber::layer::SubscriberExt;
//!
//! let subscriber = tracing_subscriber::registry()
//!     .with(DatadogLayer::new())
//!     .with(tracing_subscriber::fmt::layer().json().map_event_format(CorrelatedFormat::new));
//! tracing::subscriber::with_default(subscriber, || {
//!     let _request = tracing::info_span!("request", dd.resource = "GET /").entered();
//!     let _query = ddspan_runtime::tracer::trace("db.query"); // a child of "request"
//!     tracing::info!("querying"); // {"dd.trace_id":"…","dd.span_id":"…",…,"fields":{…}}
//! });
//! ```

mod fields;
mod format;
mod layer;

pub use format::CorrelatedFormat;
pub use layer::DatadogLayer;
