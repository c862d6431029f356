//! Client-side stats: what the agent would otherwise compute from every
//! span it receives, counted by the writer from the chunks it takes, so
//! that sampled-out (P0) traces need not be sent at all.
//!
//! As dd-trace-go's concentrator and libdatadog's span concentrator do:
//! - the spans counted are those the agent counts: service entries
//!   (`_dd.top_level`), measured spans (`_dd.measured`) and spans of kind
//!   `server`, `client`, `producer` or `consumer`;
//! - each goes into the 10 s bucket its end falls in (bucket starts are
//!   multiples of 10 s in unix time, as the agent aligns its own), under
//!   its aggregation key (`concentrator::Key`): service, name, resource,
//!   type, HTTP status code, HTTP method and endpoint, `span.kind`,
//!   synthetics (the span's or the trace's origin starts with
//!   `synthetics`), whether it is the trace's root, and for client,
//!   producer and consumer spans the peer tags the agent's `/info` lists
//!   (`peer_tags`); at most `DD_TRACE_STATS_CARDINALITY_LIMIT` keys per
//!   bucket, further spans under their service's `tracer_blocked_value`
//!   key;
//! - per key: hits, top-level hits, errors, the sum of durations and two
//!   DDSketches of durations, one of the spans without error and one of
//!   those with (libdatadog's sketch, encoded as the agent's protobuf
//!   `DDSketch`);
//! - buckets whose 10 s are over are sent by the writer's periodic round,
//!   every bucket at a flush and at the stop, as one msgpack
//!   `ClientStatsPayload` to `PUT /v0.6/stats` (`payload`).
//!
//! Stats are computed only with the feature `stats`, with
//! `DD_TRACE_STATS_COMPUTATION_ENABLED` (on by default, as in dd-trace-go
//! v2) and when the agent's `/info` lists `/v0.6/stats`. Then a chunk
//! whose trace was sampled out is not sent when the agent says
//! `client_drop_p0s` ([`droppable`]), unless a span of it has an error or
//! was kept by single-span sampling (`_dd.span_sampling.mechanism` = 8);
//! the trace requests then say so (`Datadog-Client-Computed-Stats`) and
//! carry the counts of what was left out
//! (`Datadog-Client-Dropped-P0-Traces`, `-Spans`).

use crate::record::{Chunk, SpanRecord};

#[cfg(feature = "stats")]
pub(crate) mod concentrator;
#[cfg(feature = "stats")]
pub(crate) mod payload;

/// The metric single-span sampling sets on a span it keeps.
const SPAN_SAMPLING_MECHANISM: &str = "_dd.span_sampling.mechanism";

/// Whether a chunk may be left unsent once its spans are in the stats: its
/// trace was sampled out, no span of it has an error, none was kept by
/// single-span sampling.
pub(crate) fn droppable(chunk: &Chunk) -> bool {
    !chunk.sampling.keep()
        && !chunk
            .spans
            .iter()
            .any(|span| span.error || kept_alone(span))
}

/// A span single-span sampling kept out of a dropped trace.
fn kept_alone(span: &SpanRecord) -> bool {
    span.metrics()
        .iter()
        .any(|(key, _)| key == SPAN_SAMPLING_MECHANISM)
        || span
            .spec
            .tags
            .iter()
            .any(|tag| tag.key == SPAN_SAMPLING_MECHANISM)
}

/// The writer's side of client-side stats: whether they are wanted, the
/// stats of the buckets not sent yet, and the P0 counts the next trace
/// request reports.
pub(crate) struct ClientStats {
    /// Built with the feature and enabled in the configuration.
    wanted: bool,
    #[cfg(feature = "stats")]
    concentrator: concentrator::Concentrator,
    #[cfg(feature = "stats")]
    payload: payload::Identity,
    /// P0 chunks and spans left unsent since the last trace request that
    /// reported them.
    p0_traces: u64,
    p0_spans: u64,
}

impl ClientStats {
    pub(crate) fn new(config: &crate::config::Config) -> ClientStats {
        if config.stats_computation_enabled && !cfg!(feature = "stats") {
            crate::util::diagnostics::debug(format_args!(
                "client-side stats need the feature `stats`: not computed"
            ));
        }
        ClientStats {
            wanted: config.stats_computation_enabled && cfg!(feature = "stats"),
            #[cfg(feature = "stats")]
            concentrator: concentrator::Concentrator::new(
                config.service.clone(),
                config.stats_cardinality_limit,
            ),
            #[cfg(feature = "stats")]
            payload: payload::Identity::new(config),
            p0_traces: 0,
            p0_spans: 0,
        }
    }

    /// Whether stats are computed, with what the agent's `/info` said.
    pub(crate) fn active(&self, info: &crate::export::agent_info::StatsInfo) -> bool {
        self.wanted && info.listed
    }

    /// Counts the spans of a chunk (stats active).
    pub(crate) fn add(&mut self, chunk: &Chunk, peer_tags: &[String]) {
        #[cfg(feature = "stats")]
        self.concentrator.add(chunk, peer_tags);
        #[cfg(not(feature = "stats"))]
        let _ = (chunk, peer_tags);
    }

    /// A P0 chunk left unsent.
    pub(crate) fn p0_dropped(&mut self, spans: usize) {
        self.p0_traces += 1;
        self.p0_spans += spans as u64;
    }

    /// The P0 counts for the next trace request, taken: `(traces, spans)`.
    pub(crate) fn take_p0(&mut self) -> (u64, u64) {
        let taken = (self.p0_traces, self.p0_spans);
        self.p0_traces = 0;
        self.p0_spans = 0;
        taken
    }

    /// Counts that a request did not deliver, for the next one.
    pub(crate) fn restore_p0(&mut self, (traces, spans): (u64, u64)) {
        self.p0_traces += traces;
        self.p0_spans += spans;
    }

    /// The `ClientStatsPayload` of the buckets over at `now_ns` (unix ns),
    /// or of every bucket with `all`; `None` when there is nothing to send.
    pub(crate) fn take_payload(&mut self, now_ns: u64, all: bool) -> Option<Vec<u8>> {
        #[cfg(feature = "stats")]
        {
            let buckets = self.concentrator.take(now_ns, all);
            if buckets.is_empty() {
                return None;
            }
            Some(self.payload.encode(buckets))
        }
        #[cfg(not(feature = "stats"))]
        {
            let _ = (now_ns, all);
            None
        }
    }
}
