//! ddspan: compile-time Datadog APM instrumentation for Rust.
//!
//! Add `ddspan` as the one dependency, write `#[dd_span]` on functions, set
//! `DD_SERVICE`, `DD_ENV` and `DD_VERSION`, and every span reaches the
//! Datadog Agent as a v0.4 trace payload, shipped in batches from a
//! background thread. The tracer starts by itself from the environment on
//! the first span.
//!
//! ```
//! use ddspan::{dd_ignore, dd_span};
//!
//! #[derive(Debug)]
//! struct NotFound;
//! impl std::fmt::Display for NotFound {
//!     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
//!         f.write_str("no such user")
//!     }
//! }
//! impl std::error::Error for NotFound {}
//!
//! #[dd_span(span.name = "db.query", resource.name = "SELECT user", span.type = "sql")]
//! fn load_user(id: u64) -> Result<String, NotFound> {
//!     if id == 0 {
//!         return Err(NotFound); // marks the span: error, error.message, error.type
//!     }
//!     Ok(format!("user-{id}"))
//! }
//!
//! struct Handler;
//!
//! #[dd_span(component = "http")] // every method below gets a span and the tag
//! impl Handler {
//!     fn get(&self, id: u64) -> String {
//!         let names: Vec<String> = [id, id + 1]
//!             .iter()
//!             .map(#[dd_span(step = "render")] |id| format!("<{id}>"))
//!             .collect();
//!         load_user(id).unwrap_or_default() + &names.concat()
//!     }
//!
//!     #[dd_ignore] // no span
//!     fn health(&self) -> bool {
//!         true
//!     }
//! }
//!
//! assert!(Handler.get(1).starts_with("user-1"));
//! assert!(Handler.health());
//! # ddspan::tracer::stop();
//! ```
//!
//! # `#[dd_span(...)]`
//!
//! On a function (sync or `async`, methods with any receiver, associated and
//! trait functions, generics, `unsafe`, `extern "C"`, `-> impl Trait`,
//! `-> !`), on an `impl` block or inline `mod` (every function with a body
//! inside), and on closures inside any of those. Arguments are
//! `key = value`, keys may be dotted and are unique:
//!
//! - string literals become string tags (`meta`); integers, floats and
//!   booleans become numeric tags (`metrics`); literals cost nothing at run
//!   time (`http.status_code = 200` is sent as the string `"200"`, as
//!   Datadog's tracers send it);
//! - any other expression over the function's arguments is evaluated as the
//!   span starts: `user.id = id` (numbers, bools, strings and `Option`s of
//!   them, through [`AsTagValue`]), `tenant = %tenant` (its `Display`),
//!   `req = ?req` (its `Debug`); arguments not named are never recorded;
//! - `span.name`, `resource.name`, `service.name` and `span.type` set the
//!   span's fields instead; `span.kind` is one of `server`, `client`,
//!   `producer`, `consumer`, `internal`; `error = false` leaves a returned
//!   `Err` unmarked;
//! - the operation name is, as Orchestrion's `//dd:span`: `span.name`, else
//!   the function's name, else (closures) the first tag's value, else
//!   `<enclosing function>.closure`; named functions also carry the tag
//!   `function-name`;
//! - arguments are never recorded.
//!
//! A returned `Err` marks the span (`error` = 1, `error.message`,
//! `error.type`, `error.stack` with the `source()` chain, or anyhow's chain
//! and backtrace) and is returned unchanged; whether the value is a `Result`
//! is decided by its type, so aliases such as `io::Result<T>` work. For a
//! closure, write its return type (`|x| -> Result<_, E> { ... }`) for its
//! `Err` to be recorded: Rust infers closure types from their use, too late
//! for the macro. An error type that implements [`ExpectedError`] says
//! which of its values are expected outcomes (a `NotFound`): those leave
//! the span unmarked. A panic marks the span (`error.type` = `panic`) and
//! keeps unwinding. `#[dd_span]` on `fn main` flushes the tracer before `main`
//! returns.
//!
//! Parents: the active span, per thread and per future. An `async fn`'s span
//! starts when the future is first polled (as `tracing`'s `#[instrument]`),
//! under the span that was active where the function was called, so
//! `tokio::spawn(work())` stays in the caller's trace; a function returning
//! a future starts its span when called; either way the span is active on
//! every poll and finishes when the future completes or is dropped.
//! [`Instrument::in_active_span`] does the same for any future.
//!
//! `#[dd_ignore]` opts an item or closure out of an enclosing `#[dd_span]`;
//! [`dd_closure!`] instruments a closure anywhere.
//!
//! The runtime underneath is [`tracer`]: manual spans, configuration,
//! flush and stop. Its types ([`Span`], [`SpanContext`], [`Config`], ...)
//! are at the crate root, its functions under [`tracer`].
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use ddspan_macros::{dd_closure, dd_ignore, dd_span};
pub use ddspan_runtime::*;
