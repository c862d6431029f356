//! What a span is on the wire, once for every payload format: its fields
//! cut to the agent's length limits, and its tags in order of precedence
//! (tracer-wide tags, chunk-level fields, static tags, run-time tags),
//! described to a [`SpanWriter`]. [`V04`] writes the v0.4 schema (a msgpack
//! array of span maps); `encode_v05.rs` the v0.5 one (a string table and
//! spans as arrays of indexes).
//!
//! The msgpack primitives are in [`crate::export::msgpack`]; the tests
//! decode this output with `rmp-serde` as an independent check. Tracer-wide
//! tags (env, version, `DD_TAGS`) and chunk-level fields are added here, on
//! the writer thread, not when spans finish.

use crate::config::Config;
use crate::export::encode_links;
use crate::export::msgpack::{write_array_len, write_int, write_str, write_uint, MapWriter};
use crate::record::link::{Event, Link};
use crate::record::tag::{truncated, StaticValue, MAX_TAG_KEY_LEN, MAX_TAG_VALUE_LEN};
use crate::record::Chunk;
use crate::record::SamplingDecision;
use crate::record::SpanRecord;
use crate::util::id;

/// The agent cuts service, name and type at 100 characters and resources at
/// 5000; cutting here keeps payloads small and identical to what it stores.
const MAX_NAME_LEN: usize = 100;
const MAX_RESOURCE_LEN: usize = 5000;

#[cfg(any(test, feature = "__bench"))]
pub(crate) use crate::export::msgpack::{patch_array32, ARRAY32_HEADER_LEN};

pub(crate) struct Encoder {
    service: String,
    /// The tracer's service, msgpack-encoded once.
    service_encoded: Vec<u8>,
    /// `DD_TAGS`, `env` and `version`, deduplicated (`DD_ENV` and
    /// `DD_VERSION` win over the same keys in `DD_TAGS`), each pair also
    /// msgpack-encoded once: every span carries them.
    base_meta: BaseMeta,
    /// The same without `version`, for spans of other services.
    base_meta_other_service: BaseMeta,
    runtime_id: String,
    process_id: f64,
    /// The agent's `/info` says it takes `span_events` (set by the writer):
    /// events go natively in v0.4, else as `events` meta JSON.
    pub(crate) native_span_events: bool,
}

impl Encoder {
    pub(crate) fn new(config: &Config) -> Encoder {
        let mut base_meta_other_service: Vec<(String, String)> = Vec::new();
        let put = |list: &mut Vec<(String, String)>, key: &str, value: &str| {
            list.retain(|(k, _)| k != key);
            list.push((key.to_owned(), value.to_owned()));
        };
        for (key, value) in &config.global_tags {
            put(&mut base_meta_other_service, key, value);
        }
        if let Some(env) = &config.env {
            put(&mut base_meta_other_service, "env", env);
        }
        let mut base_meta = base_meta_other_service.clone();
        if let Some(version) = &config.version {
            put(&mut base_meta, "version", version);
        }
        base_meta_other_service.retain(|(k, _)| k != "version");
        // A span of another service says which service it ran in, as
        // ddtrace and dd-trace-java do (the version is this service's, not
        // that one's: dropped above).
        put(
            &mut base_meta_other_service,
            "_dd.base_service",
            &config.service,
        );
        let mut service_encoded = Vec::new();
        write_str(
            &mut service_encoded,
            truncated(&config.service, MAX_NAME_LEN),
        );
        Encoder {
            service: config.service.clone(),
            service_encoded,
            base_meta: BaseMeta::new(0, base_meta),
            base_meta_other_service: BaseMeta::new(1, base_meta_other_service),
            runtime_id: runtime_id().to_owned(),
            process_id: f64::from(std::process::id()),
            native_span_events: false,
        }
    }

    /// Appends one trace chunk as v0.4 (a msgpack array of span maps) to
    /// `out`.
    pub(crate) fn encode_chunk(&self, out: &mut Vec<u8>, chunk: &Chunk) {
        // The writer owns the bytes while it writes: one indirection less
        // on every push than through a `&mut Vec`.
        let mut writer = V04 {
            out: std::mem::take(out),
            map: MapWriter::default(),
        };
        self.encode_chunk_to(&mut writer, chunk);
        *out = writer.out;
    }

    /// Describes one trace chunk to `writer`, which writes it in its format:
    /// the local root first, with the chunk-level fields.
    pub(crate) fn encode_chunk_to<W: SpanWriter>(&self, writer: &mut W, chunk: &Chunk) {
        let first = chunk
            .spans
            .iter()
            .position(|s| s.span_id == chunk.root_span_id)
            .unwrap_or(0);
        let mut tid_hex = [0u8; 16];
        let chunk_meta = self.chunk_meta(chunk, &mut tid_hex);
        let (metrics, count) = chunk_metrics(&chunk.sampling, self.process_id);
        let chunk_metrics = &metrics[..count];
        let global: &[(String, String)] = chunk.global_tags.as_deref().map_or(&[], Vec::as_slice);
        writer.chunk(chunk.spans.len());
        if let Some(span) = chunk.spans.get(first) {
            self.encode_span(
                writer,
                chunk.trace_id,
                span,
                global,
                &chunk_meta,
                chunk_metrics,
            );
        }
        for (i, span) in chunk.spans.iter().enumerate() {
            if i != first {
                self.encode_span(writer, chunk.trace_id, span, global, &[], &[]);
            }
        }
    }

    /// Meta of the chunk's first span: trace-level tags and process
    /// identity, all borrowed (the `_dd.p.tid` text from `tid_hex`): a
    /// chunk of one span costs one allocation here, not one per field.
    fn chunk_meta<'a>(
        &'a self,
        chunk: &'a Chunk,
        tid_hex: &'a mut [u8; 16],
    ) -> Vec<(&'a str, &'a str)> {
        let mut meta: Vec<(&str, &str)> = Vec::with_capacity(8);
        let upstream = chunk.upstream();
        for (key, value) in upstream.propagated_tags.iter().chain(&upstream.root_meta) {
            if key != "_dd.p.tid" {
                meta.push((key, value));
            }
        }
        if chunk.inject_max_size && !meta.iter().any(|(k, _)| *k == "_dd.propagation_error") {
            meta.push(("_dd.propagation_error", "inject_max_size"));
        }
        let high = id::high_bits(chunk.trace_id);
        if high != 0 {
            meta.push(("_dd.p.tid", hex16(high, tid_hex)));
        }
        if let (Some(mechanism), true) = (chunk.sampling.mechanism, chunk.sampling.keep()) {
            meta.retain(|(k, _)| *k != "_dd.p.dm");
            meta.push(("_dd.p.dm", decision_maker(mechanism)));
        }
        if let Some(origin) = &upstream.origin {
            meta.push(("_dd.origin", origin));
        }
        meta.push(("language", "rust"));
        meta.push(("runtime-id", &self.runtime_id));
        meta
    }

    /// One span: its fields cut to the agent's limits, then its tags in
    /// order of precedence. This is the one description of a span both
    /// formats share.
    fn encode_span<W: SpanWriter>(
        &self,
        writer: &mut W,
        trace_id: u128,
        span: &SpanRecord,
        global: &[(String, String)],
        chunk_meta: &[(&str, &str)],
        chunk_metrics: &[(&'static str, f64)],
    ) {
        let service = span.service().unwrap_or(&self.service);
        let own_service = service == self.service;
        // Precedence, lowest first: tracer-wide tags, chunk-level fields,
        // the span's static tags, its run-time tags. Nothing is collected:
        // each group is filtered against the later ones and written, and
        // the map's length is patched in afterwards.
        // The agent lowercases services: "Main" and "main" are one (the
        // exact comparison first: lowercasing byte by byte was a tenth of
        // a span's encoding).
        let base = if own_service || service.eq_ignore_ascii_case(&self.service) {
            &self.base_meta
        } else {
            &self.base_meta_other_service
        };
        let dynamic_meta = span.meta();
        let dynamic_metrics = span.metrics();
        let static_tags = span.spec.tags;
        let set_at_run_time = |key: &str| {
            dynamic_meta.iter().any(|(k, _)| k == key)
                || dynamic_metrics.iter().any(|(k, _)| k == key)
        };
        let set_on_span =
            |key: &str| set_at_run_time(key) || static_tags.iter().any(|t| t.key == key);

        // Links and events: native fields of v0.4 (events only for an agent
        // that takes them), else meta JSON.
        let (links, events) = (span.links(), span.events());
        let native_links: &[Link] = if W::NATIVE_LINKS_EVENTS { links } else { &[] };
        let native_events: &[Event] = if W::NATIVE_LINKS_EVENTS && self.native_span_events {
            events
        } else {
            &[]
        };
        let head = Head {
            trace_id: id::low_bits(trace_id),
            span_id: span.span_id,
            parent_id: span.parent_id,
            name: truncated(span.name(), MAX_NAME_LEN),
            resource: truncated(span.resource().unwrap_or(span.name()), MAX_RESOURCE_LEN),
            service: truncated(service, MAX_NAME_LEN),
            service_encoded: own_service.then_some(self.service_encoded.as_slice()),
            span_type: truncated(span.span_type().unwrap_or(""), MAX_NAME_LEN),
            start: i64::try_from(span.start).unwrap_or(i64::MAX),
            duration: i64::try_from(span.duration_ns).unwrap_or(i64::MAX),
            error: i32::from(span.error),
            links: native_links,
            events: native_events,
        };
        let most = base.pairs.len()
            + global.len()
            + chunk_meta.len()
            + static_tags.len()
            + dynamic_meta.len()
            + usize::from(native_links.len() < links.len())
            + usize::from(native_events.len() < events.len());
        writer.head(&head, most);
        // The span sets none of the tracer-wide keys (nearly always): they
        // go as one block.
        let base_overridden = base.pairs.iter().any(|(k, _)| {
            global.iter().any(|(g, _)| g == k)
                || set_on_span(k)
                || chunk_meta.iter().any(|(c, _)| c == k)
        });
        if base_overridden {
            for (index, (key, _)) in base.pairs.iter().enumerate() {
                if !global.iter().any(|(g, _)| g == key)
                    && !set_on_span(key)
                    && !chunk_meta.iter().any(|(c, _)| c == key)
                {
                    writer.base_one(base, index);
                }
            }
        } else {
            writer.base_all(base);
        }
        for (key, value) in global {
            if !set_on_span(key) && !chunk_meta.iter().any(|(c, _)| c == key) {
                meta_entry(writer, key, value);
            }
        }
        for (key, value) in chunk_meta {
            if !set_on_span(key) {
                meta_entry(writer, key, value);
            }
        }
        for tag in static_tags {
            if let StaticValue::Str(value) = tag.value {
                if !set_at_run_time(tag.key) {
                    meta_entry(writer, tag.key, value);
                }
            }
        }
        for (key, value) in dynamic_meta {
            meta_entry(writer, key, value);
        }
        // A tag of the same key set on the span wins; the JSON is bounded
        // to a tag value whole (never cut).
        if native_links.len() < links.len() && !set_on_span(encode_links::LINKS_META_KEY) {
            writer.meta(
                encode_links::LINKS_META_KEY,
                &encode_links::links_json(links),
            );
        }
        if native_events.len() < events.len() && !set_on_span(encode_links::EVENTS_META_KEY) {
            writer.meta(
                encode_links::EVENTS_META_KEY,
                &encode_links::events_json(events),
            );
        }

        let top_level: &[(&str, f64)] = if span.top_level {
            &[("_dd.top_level", 1.0)]
        } else {
            &[]
        };
        let most =
            top_level.len() + chunk_metrics.len() + static_tags.len() + dynamic_metrics.len();
        writer.metrics(most);
        for (key, value) in top_level.iter().chain(chunk_metrics) {
            if !set_on_span(key) {
                metric_entry(writer, key, *value);
            }
        }
        for tag in static_tags {
            if let StaticValue::Number(value) = tag.value {
                if !set_at_run_time(tag.key) {
                    metric_entry(writer, tag.key, value);
                }
            }
        }
        for (key, value) in dynamic_metrics {
            metric_entry(writer, key, *value);
        }
        writer.end(&head);
    }
}

/// A span's fields, cut to the agent's limits: what every format writes
/// besides the tags.
pub(crate) struct Head<'a> {
    pub(crate) trace_id: u64,
    pub(crate) span_id: u64,
    pub(crate) parent_id: u64,
    pub(crate) name: &'a str,
    pub(crate) resource: &'a str,
    pub(crate) service: &'a str,
    /// The service as a msgpack string, encoded once, when it is the
    /// tracer's own.
    pub(crate) service_encoded: Option<&'a [u8]>,
    pub(crate) span_type: &'a str,
    pub(crate) start: i64,
    pub(crate) duration: i64,
    pub(crate) error: i32,
    /// Links written as the native `span_links` field (v0.4).
    pub(crate) links: &'a [Link],
    /// Events written as the native `span_events` field (v0.4).
    pub(crate) events: &'a [Event],
}

/// What a payload format writes the encoder's description of a chunk
/// with. The encoder decides every field and tag (precedence, limits,
/// chunk-level fields) and calls, per chunk, [`chunk`](SpanWriter::chunk),
/// then per span: [`head`](SpanWriter::head); the meta entries
/// ([`base_all`](SpanWriter::base_all) or [`base_one`](SpanWriter::base_one)s,
/// then [`meta`](SpanWriter::meta)s); [`metrics`](SpanWriter::metrics) and
/// its [`metric`](SpanWriter::metric)s; [`end`](SpanWriter::end). Keys and
/// values come already cut to the tag limits.
pub(crate) trait SpanWriter {
    /// Whether the format has fields for links and events (else the
    /// encoder gives them as meta JSON).
    const NATIVE_LINKS_EVENTS: bool;
    /// A chunk of `spans` spans begins.
    fn chunk(&mut self, spans: usize);
    /// A span begins, with its meta map of at most `most_meta` entries.
    fn head(&mut self, head: &Head<'_>, most_meta: usize);
    /// Every pair of the tracer-wide meta.
    fn base_all(&mut self, base: &BaseMeta);
    /// The pair `index` of the tracer-wide meta.
    fn base_one(&mut self, base: &BaseMeta, index: usize);
    fn meta(&mut self, key: &str, value: &str);
    /// The meta map ends and the metrics map begins, of at most `most`
    /// entries.
    fn metrics(&mut self, most: usize);
    fn metric(&mut self, key: &str, value: f64);
    /// The span ends.
    fn end(&mut self, head: &Head<'_>);
}

/// The v0.4 format: each span a map of its 12 fields, keyed by name.
pub(crate) struct V04 {
    out: Vec<u8>,
    map: MapWriter,
}

impl V04 {
    /// Every field but the tags: shared with the v0.5 to v0.4 transcoder.
    pub(crate) fn fields(out: &mut Vec<u8>, head: &Head<'_>) {
        // A fixmap of 12 fields, and one for each native extra.
        let extras = u8::from(!head.links.is_empty()) + u8::from(!head.events.is_empty());
        out.push(0x80 | (12 + extras));
        out.extend_from_slice(KEY_TRACE_ID);
        write_uint(out, head.trace_id);
        out.extend_from_slice(KEY_SPAN_ID);
        write_uint(out, head.span_id);
        out.extend_from_slice(KEY_PARENT_ID);
        write_uint(out, head.parent_id);
        out.extend_from_slice(KEY_NAME);
        write_str(out, head.name);
        out.extend_from_slice(KEY_RESOURCE);
        write_str(out, head.resource);
        out.extend_from_slice(KEY_SERVICE);
        match head.service_encoded {
            Some(encoded) => out.extend_from_slice(encoded),
            None => write_str(out, head.service),
        }
        out.extend_from_slice(KEY_TYPE);
        write_str(out, head.span_type);
        out.extend_from_slice(KEY_START);
        write_int(out, head.start);
        out.extend_from_slice(KEY_DURATION);
        write_int(out, head.duration);
        out.extend_from_slice(KEY_ERROR);
        write_int(out, i64::from(head.error));
    }
}

impl SpanWriter for V04 {
    const NATIVE_LINKS_EVENTS: bool = true;

    #[inline]
    fn chunk(&mut self, spans: usize) {
        write_array_len(&mut self.out, spans);
    }

    #[inline]
    fn head(&mut self, head: &Head<'_>, most_meta: usize) {
        V04::fields(&mut self.out, head);
        self.out.extend_from_slice(KEY_META);
        self.map = MapWriter::begin(&mut self.out, most_meta);
    }

    #[inline]
    fn base_all(&mut self, base: &BaseMeta) {
        self.map
            .raw_many(&mut self.out, &base.block, base.pairs.len());
    }

    #[inline]
    fn base_one(&mut self, base: &BaseMeta, index: usize) {
        self.map.raw(&mut self.out, &base.encoded[index]);
    }

    #[inline]
    fn meta(&mut self, key: &str, value: &str) {
        self.map.str_pair(&mut self.out, key, value);
    }

    #[inline]
    fn metrics(&mut self, most: usize) {
        std::mem::take(&mut self.map).end(&mut self.out);
        self.out.extend_from_slice(KEY_METRICS);
        self.map = MapWriter::begin(&mut self.out, most);
    }

    #[inline]
    fn metric(&mut self, key: &str, value: f64) {
        self.map.f64_pair(&mut self.out, key, value);
    }

    #[inline]
    fn end(&mut self, head: &Head<'_>) {
        std::mem::take(&mut self.map).end(&mut self.out);
        if !head.links.is_empty() {
            write_str(&mut self.out, "span_links");
            encode_links::write_links(&mut self.out, head.links);
        }
        if !head.events.is_empty() {
            write_str(&mut self.out, "span_events");
            encode_links::write_events(&mut self.out, head.events);
        }
    }
}

/// Tracer-wide meta (`DD_TAGS`, `env`, `version`, `_dd.base_service`), with
/// each pair msgpack-encoded once for v0.4.
pub(crate) struct BaseMeta {
    /// Which of the encoder's two sets this is: 0 for the tracer's own
    /// service, 1 for other services (a key for formats that cache them).
    pub(crate) id: usize,
    /// As configured: [`cut_pair`] gives what is written.
    pub(crate) pairs: Vec<(String, String)>,
    encoded: Vec<Vec<u8>>,
    /// Every pair's bytes, in order.
    block: Vec<u8>,
}

impl BaseMeta {
    fn new(id: usize, pairs: Vec<(String, String)>) -> BaseMeta {
        let encoded: Vec<Vec<u8>> = pairs
            .iter()
            .map(|(key, value)| {
                let (key, value) = cut_pair(key, value);
                let mut bytes = Vec::new();
                write_str(&mut bytes, key);
                write_str(&mut bytes, value);
                bytes
            })
            .collect();
        let block = encoded.concat();
        BaseMeta {
            id,
            pairs,
            encoded,
            block,
        }
    }
}

/// A meta pair cut to the tag limits.
pub(crate) fn cut_pair<'a>(key: &'a str, value: &'a str) -> (&'a str, &'a str) {
    (
        truncated(key, MAX_TAG_KEY_LEN),
        truncated(value, MAX_TAG_VALUE_LEN),
    )
}

/// A meta entry, cut to the tag limits.
#[inline]
fn meta_entry<W: SpanWriter>(writer: &mut W, key: &str, value: &str) {
    writer.meta(
        truncated(key, MAX_TAG_KEY_LEN),
        truncated(value, MAX_TAG_VALUE_LEN),
    );
}

/// A metrics entry, its key cut to the tag limit.
#[inline]
fn metric_entry<W: SpanWriter>(writer: &mut W, key: &str, value: f64) {
    writer.metric(truncated(key, MAX_TAG_KEY_LEN), value);
}

/// A span is a map of 12 entries (and `span_links`, `span_events`); its
/// keys, msgpack-encoded (checked against `write_str` in the tests).
const KEY_TRACE_ID: &[u8] = b"\xa8trace_id";
const KEY_SPAN_ID: &[u8] = b"\xa7span_id";
const KEY_PARENT_ID: &[u8] = b"\xa9parent_id";
const KEY_NAME: &[u8] = b"\xa4name";
const KEY_RESOURCE: &[u8] = b"\xa8resource";
const KEY_SERVICE: &[u8] = b"\xa7service";
const KEY_TYPE: &[u8] = b"\xa4type";
const KEY_START: &[u8] = b"\xa5start";
const KEY_DURATION: &[u8] = b"\xa8duration";
const KEY_ERROR: &[u8] = b"\xa5error";
pub(crate) const KEY_META: &[u8] = b"\xa4meta";
pub(crate) const KEY_METRICS: &[u8] = b"\xa7metrics";

/// The sampling metrics of a chunk's first span, without allocating:
/// the first `count` entries of the array.
fn chunk_metrics(
    sampling: &SamplingDecision,
    process_id: f64,
) -> ([(&'static str, f64); 5], usize) {
    let mut metrics = [("", 0.0); 5];
    metrics[0] = ("_sampling_priority_v1", f64::from(sampling.priority));
    metrics[1] = ("process_id", process_id);
    let mut count = 2;
    for (key, rate) in [
        ("_dd.agent_psr", sampling.agent_rate),
        ("_dd.rule_psr", sampling.rule_rate),
        ("_dd.limit_psr", sampling.limit_rate),
    ] {
        if let Some(rate) = rate {
            metrics[count] = (key, rate);
            count += 1;
        }
    }
    (metrics, count)
}

/// `value` as 16 lowercase hex digits, written into `buffer`.
fn hex16(value: u64, buffer: &mut [u8; 16]) -> &str {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in buffer.iter_mut().enumerate() {
        *byte = DIGITS[((value >> (60 - 4 * i)) & 0xf) as usize];
    }
    std::str::from_utf8(buffer).unwrap_or("")
}

/// `_dd.p.dm`: the sampling mechanism, as `-N`. Datadog's mechanisms are
/// 0 to 12, and ddspan decides with 0, 1 and 3 only.
fn decision_maker(mechanism: u8) -> &'static str {
    const KNOWN: [&str; 13] = [
        "-0", "-1", "-2", "-3", "-4", "-5", "-6", "-7", "-8", "-9", "-10", "-11", "-12",
    ];
    KNOWN.get(usize::from(mechanism)).copied().unwrap_or("-0")
}

/// One random id for the life of the process.
pub(crate) fn runtime_id() -> &'static str {
    static RUNTIME_ID: std::sync::LazyLock<String> = std::sync::LazyLock::new(id::uuid_v4);
    &RUNTIME_ID
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::spec::SpanSpec;
    use crate::record::tag::{StaticTag, TagValue};
    use crate::record::SamplingDecision;
    use crate::runtime::TracerCore;
    use crate::trace::TraceShared;
    use serde::Deserialize;
    use std::collections::HashMap;

    #[test]
    fn pre_encoded_keys_are_what_write_str_writes() {
        let encoded = |key: &str| {
            let mut out = Vec::new();
            write_str(&mut out, key);
            out
        };
        for (constant, key) in [
            (KEY_TRACE_ID, "trace_id"),
            (KEY_SPAN_ID, "span_id"),
            (KEY_PARENT_ID, "parent_id"),
            (KEY_NAME, "name"),
            (KEY_RESOURCE, "resource"),
            (KEY_SERVICE, "service"),
            (KEY_TYPE, "type"),
            (KEY_START, "start"),
            (KEY_DURATION, "duration"),
            (KEY_ERROR, "error"),
            (KEY_META, "meta"),
            (KEY_METRICS, "metrics"),
        ] {
            assert_eq!(constant, encoded(key), "{key}");
        }
    }

    #[test]
    fn trace_level_texts_match_their_formatting() {
        let mut buffer = [0u8; 16];
        for value in [0, 1, 0x6b03_35ef_0000_0000, u64::MAX] {
            assert_eq!(hex16(value, &mut buffer), format!("{value:016x}"));
        }
        for mechanism in 0..=12u8 {
            assert_eq!(decision_maker(mechanism), format!("-{mechanism}"));
        }
    }

    /// A span as `rmp-serde` decodes it from v0.4.
    #[derive(Deserialize, Debug, PartialEq)]
    pub(crate) struct WireSpan {
        pub(crate) trace_id: u64,
        pub(crate) span_id: u64,
        pub(crate) parent_id: u64,
        pub(crate) name: String,
        pub(crate) resource: String,
        pub(crate) service: String,
        pub(crate) r#type: String,
        pub(crate) start: i64,
        pub(crate) duration: i64,
        pub(crate) error: i32,
        pub(crate) meta: HashMap<String, String>,
        pub(crate) metrics: HashMap<String, f64>,
    }

    static QUERY: SpanSpec = SpanSpec::new("query").with_tags(&[
        StaticTag::str("component", "db"),
        StaticTag::number("rows", 3.0),
    ]);

    /// A root and a child with static, run-time and oversized tags.
    pub(crate) fn chunk(config: crate::Config) -> (std::sync::Arc<TraceShared>, Chunk) {
        let (core, _) = TracerCore::capturing(config);
        let mut decision = SamplingDecision::inherited(1);
        decision.mechanism = Some(0);
        decision.agent_rate = Some(1.0);
        let trace_id = (0x6b03_35ef_0000_0000_u128 << 64) | 0x1a3a_eaeb_d301_f72e;
        let trace = TraceShared::new(
            &core,
            trace_id,
            10,
            decision,
            crate::record::Upstream::none_ref(),
        );
        let mut root = SpanRecord::named(10, 0, "request".into());
        root.top_level = true;
        root.finish(crate::util::clock::now());
        let mut child = SpanRecord::new(11, 10, &QUERY);
        child.set_tag("user".into(), TagValue::from("ana"));
        child.set_tag("env".into(), TagValue::from("span-wins"));
        child.set_tag(
            "k".into(),
            TagValue::from("x".repeat(MAX_TAG_VALUE_LEN + 7)),
        );
        child.error = true;
        child.set_resource("SELECT 1".into());
        child.finish(crate::util::clock::now());
        let mut chunk = trace.chunk(vec![child, root], decision);
        chunk.global_tags = Some(std::sync::Arc::new(vec![(
            "deploy".to_owned(),
            "blue".to_owned(),
        )]));
        (trace, chunk)
    }

    pub(crate) fn decode(chunk: &Chunk, encoder: &Encoder) -> Vec<Vec<WireSpan>> {
        let mut out = vec![0; ARRAY32_HEADER_LEN];
        encoder.encode_chunk(&mut out, chunk);
        patch_array32(&mut out, 0, 1);
        rmp_serde::from_slice(&out).expect("a valid v0.4 payload")
    }

    #[test]
    fn an_oversized_injection_is_noted_on_the_chunk() {
        let config = crate::Config::builder().build();
        let encoder = Encoder::new(&config);
        let (trace, chunk) = chunk(config);
        let context = crate::context::SpanContext::local(&trace, 10, None)
            .with_propagated_tags(vec![("_dd.p.big".to_owned(), "x".repeat(600))]);
        let root = |chunk: &Chunk| decode(chunk, &encoder).remove(0).remove(0);
        assert!(!root(&chunk).meta.contains_key("_dd.propagation_error"));
        let mut headers: Vec<(String, String)> = Vec::new();
        crate::propagation::Propagator::new(&[crate::propagation::Style::Datadog])
            .inject(&context, &mut headers);
        assert!(headers.iter().all(|(k, _)| k != "x-datadog-tags"));
        // The chunks handed over from now on say so.
        let later = trace.chunk(chunk.spans, chunk.sampling);
        assert_eq!(
            root(&later).meta["_dd.propagation_error"],
            "inject_max_size"
        );
    }

    #[test]
    fn round_trip() {
        let config = crate::Config::builder()
            .service("checkout")
            .env("prod")
            .version("1.2.3")
            .global_tag("team", "payments")
            .build();
        let encoder = Encoder::new(&config);
        let (_trace, chunk) = chunk(config);
        let traces = decode(&chunk, &encoder);
        assert_eq!(traces.len(), 1);
        let spans = &traces[0];
        assert_eq!(spans.len(), 2);
        let (root, child) = (&spans[0], &spans[1]);
        assert_eq!(root.span_id, 10, "the local root is encoded first");
        assert_eq!(root.trace_id, 0x1a3a_eaeb_d301_f72e);
        assert_eq!(root.meta["_dd.p.tid"], "6b0335ef00000000");
        assert_eq!(root.meta["_dd.p.dm"], "-0");
        assert_eq!(root.meta["language"], "rust");
        assert_eq!(root.meta["runtime-id"], runtime_id());
        assert_eq!(root.metrics["_sampling_priority_v1"], 1.0);
        assert_eq!(root.metrics["_dd.top_level"], 1.0);
        assert_eq!(root.metrics["_dd.agent_psr"], 1.0);
        assert_eq!(root.metrics["process_id"], f64::from(std::process::id()));
        assert_eq!(root.resource, "request");
        assert_eq!(root.parent_id, 0);
        assert_eq!(root.error, 0);
        assert!(root.start > 1_600_000_000_000_000_000);
        assert!(root.duration >= 0);

        assert_eq!(child.parent_id, 10);
        assert_eq!(child.name, "query");
        assert_eq!(child.resource, "SELECT 1");
        assert_eq!(child.service, "checkout");
        assert_eq!(child.r#type, "");
        assert_eq!(child.error, 1);
        assert_eq!(child.meta["env"], "span-wins");
        assert_eq!(child.meta["version"], "1.2.3");
        assert_eq!(child.meta["team"], "payments");
        assert_eq!(
            child.meta["deploy"], "blue",
            "set_global_tag reaches every span"
        );
        assert_eq!(root.meta["deploy"], "blue");
        assert_eq!(child.meta["component"], "db");
        assert_eq!(child.meta["user"], "ana");
        assert_eq!(child.meta["k"].len(), MAX_TAG_VALUE_LEN);
        assert_eq!(child.metrics["rows"], 3.0);
        assert!(
            !child.meta.contains_key("_dd.p.tid"),
            "trace-level tags go on the first span only"
        );
        assert!(!child.metrics.contains_key("_dd.top_level"));
        assert!(!child.metrics.contains_key("_sampling_priority_v1"));
    }

    #[test]
    fn version_only_on_the_configured_service() {
        let config = crate::Config::builder()
            .service("main")
            .version("9")
            .build();
        let encoder = Encoder::new(&config);
        let (_trace, mut chunk) = chunk(config);
        chunk.spans[0].set_service("other".into());
        let traces = decode(&chunk, &encoder);
        let other = traces[0].iter().find(|s| s.span_id == 11).unwrap();
        assert_eq!(other.service, "other");
        assert!(!other.meta.contains_key("version"));
    }

    #[test]
    fn precedence_of_tags() {
        static SPEC: SpanSpec = SpanSpec::new("op").with_tags(&[
            StaticTag::str("team", "from-spec"),
            StaticTag::str("k", "static"),
        ]);
        let config = crate::Config::builder()
            .service("svc")
            .env("prod")
            .global_tag("env", "from-dd-tags")
            .global_tag("team", "from-dd-tags")
            .build();
        let encoder = Encoder::new(&config);
        let (_trace, mut chunk) = chunk(config);
        let mut span = SpanRecord::new(12, 10, &SPEC);
        span.set_tag("k".into(), TagValue::from(5));
        chunk.spans.push(span);
        let traces = decode(&chunk, &encoder);
        let span = traces[0].iter().find(|s| s.span_id == 12).unwrap();
        assert_eq!(span.meta["env"], "prod", "DD_ENV wins over env in DD_TAGS");
        assert_eq!(
            span.meta["team"], "from-spec",
            "a span's tag wins over DD_TAGS"
        );
        assert_eq!(
            span.metrics["k"], 5.0,
            "a run-time tag wins over a static one"
        );
        assert!(!span.meta.contains_key("k"));
    }

    /// As ddtrace and dd-trace-java: a span of another service than
    /// `DD_SERVICE` says which service it ran in; the agent compares
    /// services without case, and so does this.
    #[test]
    fn spans_of_other_services_carry_the_base_service() {
        let config = crate::Config::builder().service("Main").build();
        let encoder = Encoder::new(&config);
        let (_trace, mut chunk) = chunk(config);
        chunk.spans[0].set_service("redis".into());
        let mut same = SpanRecord::named(12, 10, "op".into());
        same.set_service("main".into());
        chunk.spans.push(same);
        let traces = decode(&chunk, &encoder);
        let span = |id: u64| traces[0].iter().find(|s| s.span_id == id).unwrap();
        assert_eq!(span(11).service, "redis");
        assert_eq!(span(11).meta["_dd.base_service"], "Main");
        assert!(!span(10).meta.contains_key("_dd.base_service"));
        assert!(!span(12).meta.contains_key("_dd.base_service"));
    }
}
