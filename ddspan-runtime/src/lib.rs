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
//! let config = ddspan_runtime::Config::builder().service("doc-example").enabled(false).build();
//! tracer::start(config);
//! {
//!     let _root = tracer::trace("request");
//!     let _child = tracer::trace("database.query");
//! }
//! tracer::stop();
//! ```
#![deny(missing_docs)]
// Two: one call into the C runtime (`util/process_hooks.rs`) and the
// time stamp counter's intrinsic (`util/clock.rs`); nothing else.
#![deny(unsafe_code)]

mod config;
mod context;
mod export;
pub mod integrations;
mod propagation;
mod record;
mod runtime;
mod sampling;
mod span;
mod trace;
pub mod tracer;
mod util;

// One path per item: types, traits and constants at the crate root; the
// functions of the running tracer under `tracer::`; the log and tracing
// integrations under `integrations::`.
pub use config::{
    AgentUrl, AgentUrlError, AgentUrlErrorKind, Config, ConfigBuilder, HttpStatuses,
    HttpStatusesError, Style,
};
pub use context::correlation::LogContext;
pub use context::parent::ParentSource;
pub use context::SpanContext;
pub use export::memory::{FinishedSpan, MemoryExporter};
pub use export::stats::Stats;
pub use propagation::{ExtractError, Extractor, HeaderError, Injector, Propagator};
pub use record::link::AttributeValue;
pub use record::spec::SpanSpec;
pub use record::tag::{
    AsTagValue, SpanKind, StaticTag, StaticValue, TagValue, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN,
};
pub use span::error::{ErrorFields, ExpectedError};
pub use span::instrument::{InActiveSpan, Instrument, Instrumented};
pub use span::span_ref::SpanRef;
#[allow(deprecated)]
pub use span::ActiveSpan;
pub use span::LocalSpanGuard;
pub use span::{Entered, EnteredSpan, Span, SpanBuilder};

/// What `#[dd_span]` expands to. Not a public API: it may change in any
/// release.
#[doc(hidden)]
pub mod __private {
    pub use crate::record::spec::SpanSpec;
    pub use crate::record::tag::StaticTag;
    pub use crate::span::error::{ErrorRung, ReturnValue};
    pub use crate::span::instrument::{Instrumented, SpanOnFirstPoll};
    pub use crate::span::LocalSpanGuard;
    pub use crate::span::{Span, SpanBuilder};

    pub use crate::record::tag::AsTagValue;

    /// `key = expression` of `#[dd_span]`: a tag on the guard's span
    /// (`None`: no tag).
    #[inline]
    pub fn tag(guard: &LocalSpanGuard, key: &'static str, value: Option<crate::TagValue>) {
        if let Some(value) = value {
            guard.set_tag(key, value);
        }
    }

    /// `key = expression` of `#[dd_span]` on a future: a tag on the active
    /// span, the future's own while it is polled.
    #[inline]
    pub fn tag_active(key: &'static str, value: Option<crate::TagValue>) {
        if let Some(value) = value {
            crate::context::stack::with_active_record(|record| {
                record.set_tag(std::borrow::Cow::Borrowed(key), value);
            });
        }
    }

    /// `key = expression` of `#[dd_span]` on a function returning a future:
    /// a tag on its span, set as it starts.
    #[inline]
    pub fn tag_span(span: &Span, key: &'static str, value: Option<crate::TagValue>) {
        if let Some(value) = value {
            span.set_tag(key, value);
        }
    }

    /// `key = %expression`: the value's `Display`.
    pub fn display<T: core::fmt::Display + ?Sized>(value: &T) -> Option<crate::TagValue> {
        Some(crate::TagValue::from(crate::util::safe_display::display(
            &value,
        )))
    }

    /// `key = ?expression`: the value's `Debug`.
    pub fn debug<T: core::fmt::Debug + ?Sized>(value: &T) -> Option<crate::TagValue> {
        Some(crate::TagValue::from(crate::util::safe_display::debug(
            &value,
        )))
    }

    /// Calls a closure once. Passing the body as an `FnOnce` lets it move out
    /// what it captured (a `&mut self` reborrowed for the return value).
    #[inline(always)]
    pub fn call_once<R>(body: impl FnOnce() -> R) -> R {
        body()
    }

    /// The parent named by `child_of = ...`.
    pub fn parent_from(source: impl crate::ParentSource) -> Option<crate::SpanContext> {
        source.into_parent()
    }

    /// Starts a span with an explicit parent (`child_of = ...` on an async fn).
    pub fn start_span_child_of(
        spec: &'static SpanSpec,
        parent: Option<crate::SpanContext>,
    ) -> Span {
        SpanBuilder::from_spec(spec).child_of(parent).start()
    }

    /// Starts a span that may move between threads (futures).
    pub fn start_span(spec: &'static SpanSpec) -> Span {
        SpanBuilder::from_spec(spec).start()
    }

    /// Wraps a future so its span is active whenever it is polled.
    pub fn instrument<F: core::future::Future>(future: F, span: Span) -> Instrumented<F> {
        crate::Instrument::in_span(future, span)
    }

    /// An `async fn`'s future: its span starts at the first poll, under
    /// the span active here, where the function is called.
    #[inline]
    pub fn span_on_first_poll<F: core::future::Future>(
        future: F,
        spec: &'static SpanSpec,
    ) -> SpanOnFirstPoll<F> {
        SpanOnFirstPoll::new(future, spec)
    }

    /// The end of an instrumented `main`: deliver what is finished.
    pub fn flush_before_exit() {
        crate::tracer::flush(std::time::Duration::from_secs(5));
    }
}

/// The fuzz target's entry point (`fuzz/`, `tests/fuzz_corpus.rs`). Not a
/// public API.
#[cfg(feature = "__fuzz")]
#[doc(hidden)]
pub mod __fuzz {
    pub use crate::propagation::check_extract;
}

/// Entry points for ddspan's own benchmarks. Not a public API.
#[cfg(feature = "__bench")]
#[doc(hidden)]
pub mod __bench {

    use crate::record::spec::SpanSpec;
    use crate::record::tag::{StaticTag, TagValue};
    use crate::record::Chunk;
    use crate::record::SamplingDecision;
    use crate::record::SpanRecord;
    use crate::trace::TraceShared;

    /// Trace chunks shaped like a web request: a root and children with
    /// a resource, static tags and one run-time tag each.
    pub struct EncodeSample {
        chunks: Vec<Chunk>,
        encoder: crate::export::encode::Encoder,
        /// The v0.5 traces' buffer, kept between calls.
        traces: std::cell::RefCell<Vec<u8>>,
    }

    static REQUEST: SpanSpec = SpanSpec::new("http.request")
        .with_resource("GET /users/:id")
        .with_span_type("web")
        .with_tags(&[
            StaticTag::str("component", "http"),
            StaticTag::str("http.method", "GET"),
        ]);
    static QUERY: SpanSpec = SpanSpec::new("db.query")
        .with_resource("SELECT * FROM users WHERE id = ?")
        .with_span_type("sql")
        .with_tags(&[StaticTag::str("db.system", "postgresql")]);

    impl EncodeSample {
        /// `traces` chunks of `spans_per_trace` spans.
        pub fn new(traces: usize, spans_per_trace: usize) -> EncodeSample {
            let config = crate::Config::builder()
                .service("bench")
                .env("prod")
                .version("1.0.0")
                .startup_logs(false)
                .build();
            let core = crate::runtime::TracerCore::detached(config.clone());
            let chunks = (0..traces)
                .map(|t| {
                    let trace_id = crate::util::id::new_trace_id(true);
                    let decision = SamplingDecision::inherited(1);
                    let root_id = crate::util::id::new_span_id();
                    let trace = TraceShared::new(
                        &core,
                        trace_id,
                        root_id,
                        decision,
                        crate::record::Upstream::none_ref(),
                    );
                    let spans = (0..spans_per_trace)
                        .map(|i| {
                            let (id, parent, spec) = if i == 0 {
                                (root_id, 0, &REQUEST)
                            } else {
                                (crate::util::id::new_span_id(), root_id, &QUERY)
                            };
                            let mut span = SpanRecord::new(id, parent, spec);
                            span.top_level = i == 0;
                            span.set_tag("user.id".into(), TagValue::from(t as u64));
                            span.duration_ns = 1_234_567;
                            span
                        })
                        .collect();
                    trace.chunk(spans, decision)
                })
                .collect();
            EncodeSample {
                chunks,
                encoder: crate::export::encode::Encoder::new(&config),
                traces: std::cell::RefCell::new(Vec::new()),
            }
        }

        /// Encodes every chunk into `out` (cleared first) as one payload;
        /// returns the span count.
        pub fn encode(&self, out: &mut Vec<u8>) -> usize {
            out.clear();
            out.resize(crate::export::encode::ARRAY32_HEADER_LEN, 0);
            for chunk in &self.chunks {
                self.encoder.encode_chunk(out, chunk);
            }
            let traces = u32::try_from(self.chunks.len()).unwrap_or(u32::MAX);
            crate::export::encode::patch_array32(out, 0, traces);
            self.chunks.iter().map(|c| c.spans.len()).sum()
        }

        /// The same as a sealed v0.5 payload (a string table of its own,
        /// then the traces) in `out`; returns the span count.
        pub fn encode_v05(&self, out: &mut Vec<u8>) -> usize {
            use crate::export::payload::{Format, Payload};
            // The traces go in a buffer of their own, then behind the
            // table into `out`, both reused from call to call as the
            // writer reuses its rooms.
            let traces = std::mem::take(&mut *self.traces.borrow_mut());
            let mut payload = Payload::new_in(Format::V05, traces);
            for chunk in &self.chunks {
                payload.append(&self.encoder, chunk);
            }
            let traces = payload.seal_into(std::mem::take(out));
            *out = payload.into_bytes();
            *self.traces.borrow_mut() = traces;
            self.chunks.iter().map(|c| c.spans.len()).sum()
        }
    }
}
