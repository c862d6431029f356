//! The stats of the spans the writer took, in 10 s buckets by aggregation
//! key, until they are sent.
//!
//! Besides the key of the module's docs, the agent's newer `ClientGroupedStats`
//! carries `HTTPMethod` and `HTTPEndpoint` (`http.method`; `http.endpoint`,
//! else `http.route`); spans with `_dd.partial_version` (snapshots of open
//! spans) are left out, as the agent does.

use std::collections::{BTreeMap, HashMap};

use libdd_ddsketch::DDSketch;

use crate::record::tag::{truncated, StaticValue};
use crate::record::{Chunk, SpanRecord};

/// The width of a bucket, as the agent's: 10 s in nanoseconds.
pub(crate) const BUCKET_NS: u64 = 10_000_000_000;

/// The agent's own limits on names and resources (as the trace encoder
/// cuts them), so that stats and traces name a span alike.
const MAX_NAME_LEN: usize = 100;
const MAX_RESOURCE_LEN: usize = 5000;

/// `IsTraceRoot` of the agent's proto: a trilean, 1 true, 2 false.
pub(crate) const TRACE_ROOT_TRUE: i32 = 1;
pub(crate) const TRACE_ROOT_FALSE: i32 = 2;

/// What the stats of a span are aggregated on: the agent's
/// `ClientGroupedStats` key.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct Key {
    pub(crate) service: String,
    pub(crate) name: String,
    pub(crate) resource: String,
    pub(crate) span_type: String,
    pub(crate) http_status_code: u32,
    pub(crate) span_kind: String,
    pub(crate) synthetics: bool,
    /// `tag:value`, in the order of the agent's `peer_tags`.
    pub(crate) peer_tags: Vec<String>,
    pub(crate) is_trace_root: i32,
    /// `http.method`.
    pub(crate) http_method: String,
    /// `http.endpoint` (dd-trace-go's), else `http.route`.
    pub(crate) http_endpoint: String,
}

/// The stats of one key in one bucket.
#[derive(Clone, Debug, Default)]
pub(crate) struct Group {
    pub(crate) hits: u64,
    pub(crate) top_level_hits: u64,
    pub(crate) errors: u64,
    /// Sum of durations, ns.
    pub(crate) duration: u64,
    pub(crate) ok: DDSketch,
    pub(crate) error: DDSketch,
}

/// One 10 s bucket: its start (unix ns, a multiple of [`BUCKET_NS`]) and
/// its groups.
pub(crate) struct Bucket {
    pub(crate) start: u64,
    pub(crate) groups: HashMap<Key, Group>,
}

/// What the name and resource of the overflow key say: the sentinel of
/// Datadog's client-side stats specification.
pub(crate) const BLOCKED: &str = "tracer_blocked_value";

/// The buckets not sent yet, by start.
pub(crate) struct Concentrator {
    service: String,
    /// The most keys a bucket holds; then spans of new keys count under
    /// their service's overflow key, so that memory stays bounded whatever
    /// the resources' cardinality.
    max_keys: usize,
    buckets: BTreeMap<u64, HashMap<Key, Group>>,
}

impl Concentrator {
    /// Stats of spans whose service is `service` when they set none, at
    /// most `max_keys` keys per bucket (plus one overflow key per service).
    pub(crate) fn new(service: String, max_keys: usize) -> Concentrator {
        Concentrator {
            service,
            max_keys,
            buckets: BTreeMap::new(),
        }
    }

    /// Counts the eligible spans of `chunk`.
    pub(crate) fn add(&mut self, chunk: &Chunk, peer_tags: &[String]) {
        let trace_origin = chunk.upstream().origin.as_deref();
        for span in &chunk.spans {
            // The trace's origin, or one set on the span itself.
            let synthetics = meta(span, "_dd.origin")
                .or(trace_origin)
                .is_some_and(|origin| origin.starts_with("synthetics"));
            let kind = meta(span, "span.kind").unwrap_or("");
            let eligible_kind = matches!(kind, "server" | "client" | "producer" | "consumer");
            let measured = metric(span, "_dd.measured").is_some_and(|v| v != 0.0);
            // A snapshot of a span still open (`_dd.partial_version`) is
            // not its end: the agent leaves it out of stats, and so do we.
            if !(span.top_level || measured || eligible_kind)
                || metric(span, "_dd.partial_version").is_some()
            {
                continue;
            }
            let peer = if matches!(kind, "client" | "producer" | "consumer") {
                peer_tags
                    .iter()
                    .filter_map(|tag| {
                        meta(span, tag)
                            .filter(|value| !value.is_empty())
                            .map(|value| format!("{tag}:{value}"))
                    })
                    .collect()
            } else {
                Vec::new()
            };
            let key = Key {
                service: truncated(span.service().unwrap_or(&self.service), MAX_NAME_LEN)
                    .to_owned(),
                name: truncated(span.name(), MAX_NAME_LEN).to_owned(),
                resource: truncated(span.resource().unwrap_or(span.name()), MAX_RESOURCE_LEN)
                    .to_owned(),
                span_type: truncated(span.span_type().unwrap_or(""), MAX_NAME_LEN).to_owned(),
                http_status_code: http_status_code(span),
                span_kind: kind.to_owned(),
                synthetics,
                peer_tags: peer,
                is_trace_root: if span.parent_id == 0 {
                    TRACE_ROOT_TRUE
                } else {
                    TRACE_ROOT_FALSE
                },
                http_method: meta(span, "http.method").unwrap_or("").to_owned(),
                http_endpoint: meta(span, "http.endpoint")
                    .or_else(|| meta(span, "http.route"))
                    .unwrap_or("")
                    .to_owned(),
            };
            let end = span.start.saturating_add(span.duration_ns);
            let bucket = self.buckets.entry(end - end % BUCKET_NS).or_default();
            let key = if bucket.len() >= self.max_keys && !bucket.contains_key(&key) {
                Key {
                    service: key.service,
                    name: BLOCKED.to_owned(),
                    resource: BLOCKED.to_owned(),
                    span_type: String::new(),
                    http_status_code: 0,
                    span_kind: String::new(),
                    synthetics: false,
                    peer_tags: Vec::new(),
                    is_trace_root: 0,
                    http_method: String::new(),
                    http_endpoint: String::new(),
                }
            } else {
                key
            };
            let group = bucket.entry(key).or_default();
            group.hits += 1;
            group.duration = group.duration.saturating_add(span.duration_ns);
            if span.top_level {
                group.top_level_hits += 1;
            }
            // A duration is never negative or infinite: the sketch takes it.
            let duration = span.duration_ns as f64;
            if span.error {
                group.errors += 1;
                let _ = group.error.add(duration);
            } else {
                let _ = group.ok.add(duration);
            }
        }
    }

    /// The buckets whose 10 s ended by `now_ns`, or all of them with `all`,
    /// taken out, oldest first.
    pub(crate) fn take(&mut self, now_ns: u64, all: bool) -> Vec<Bucket> {
        let kept = if all {
            BTreeMap::new()
        } else {
            // The buckets still open: those ending after now.
            self.buckets
                .split_off(&now_ns.saturating_sub(BUCKET_NS).saturating_add(1))
        };
        std::mem::replace(&mut self.buckets, kept)
            .into_iter()
            .map(|(start, groups)| Bucket { start, groups })
            .collect()
    }
}

/// A string tag of the span: set at run time, else by its `#[dd_span]`.
fn meta<'a>(span: &'a SpanRecord, key: &str) -> Option<&'a str> {
    span.meta()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_ref())
        .or_else(|| {
            span.spec.tags.iter().find_map(|tag| match tag.value {
                StaticValue::Str(value) if tag.key == key => Some(value),
                _ => None,
            })
        })
}

/// A numeric tag of the span, the same way.
fn metric(span: &SpanRecord, key: &str) -> Option<f64> {
    span.metrics()
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| *v)
        .or_else(|| {
            span.spec.tags.iter().find_map(|tag| match tag.value {
                StaticValue::Number(value) if tag.key == key => Some(value),
                _ => None,
            })
        })
}

/// `http.status_code` as a string (dd-trace-go's and ddspan's HTTP
/// integrations) or a number; 0 when absent or not a status.
fn http_status_code(span: &SpanRecord) -> u32 {
    const KEY: &str = "http.status_code";
    meta(span, KEY)
        .and_then(|code| code.trim().parse::<u32>().ok())
        .or_else(|| {
            metric(span, KEY)
                .filter(|code| code.fract() == 0.0 && (0.0..=f64::from(u32::MAX)).contains(code))
                .map(|code| code as u32)
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tag::TagValue;
    use std::borrow::Cow;

    fn span(
        name: &'static str,
        parent_id: u64,
        end_ns: u64,
        duration_ns: u64,
        top_level: bool,
    ) -> SpanRecord {
        let mut span = SpanRecord::named(7, parent_id, Cow::Borrowed(name));
        span.start = end_ns - duration_ns;
        span.duration_ns = duration_ns;
        span.top_level = top_level;
        span
    }

    fn chunk(spans: Vec<SpanRecord>) -> Chunk {
        let (_shared, mut chunk) =
            crate::export::encode::tests::chunk(crate::Config::builder().service("svc").build());
        chunk.spans = spans;
        chunk
    }

    const T0: u64 = 1_700_000_000 * 1_000_000_000;

    #[test]
    fn eligible_spans_are_counted_per_key_and_bucket() {
        let mut root = span("web.request", 0, T0 + 1_000, 900, true);
        root.set_tag(Cow::Borrowed("http.method"), TagValue::Str("GET".into()));
        root.set_tag(Cow::Borrowed("http.route"), TagValue::Str("/u/:id".into()));
        root.set_tag(
            Cow::Borrowed("http.status_code"),
            TagValue::Str("200".into()),
        );
        root.set_tag(Cow::Borrowed("span.kind"), TagValue::Str("server".into()));
        let mut failed = span("web.request", 0, T0 + 2_000, 100, true);
        failed.set_tag(Cow::Borrowed("http.method"), TagValue::Str("GET".into()));
        failed.set_tag(Cow::Borrowed("http.route"), TagValue::Str("/u/:id".into()));
        failed.error = true;
        failed.set_tag(
            Cow::Borrowed("http.status_code"),
            TagValue::Str("200".into()),
        );
        failed.set_tag(Cow::Borrowed("span.kind"), TagValue::Str("server".into()));
        let internal = span("compute", 5, T0 + 3_000, 50, false);
        let mut snapshot = span("web.request", 0, T0 + 3_000, 50, true);
        snapshot.set_tag(Cow::Borrowed("_dd.partial_version"), TagValue::Number(0.0));
        let mut measured = span("cache", 5, T0 + 3_000, 60, false);
        measured.set_tag(Cow::Borrowed("_dd.measured"), TagValue::Number(1.0));
        let mut synthetic = span("compute", 5, T0 + 3_000, 50, true);
        synthetic.set_tag(
            Cow::Borrowed("_dd.origin"),
            TagValue::Str("synthetics-browser".into()),
        );
        let mut client = span("db.query", 5, T0 + BUCKET_NS + 1, 70, false);
        client.set_tag(Cow::Borrowed("span.kind"), TagValue::Str("client".into()));
        client.set_tag(Cow::Borrowed("db.name"), TagValue::Str("orders".into()));
        client.set_tag(Cow::Borrowed("out.host"), TagValue::Str("db1".into()));
        let mut concentrator = Concentrator::new("svc".into(), 100);
        concentrator.add(
            &chunk(vec![
                root, failed, internal, snapshot, measured, synthetic, client,
            ]),
            &["db.name".to_owned(), "peer.service".to_owned()],
        );

        let open = concentrator.take(T0 + BUCKET_NS + 5, false);
        assert_eq!(open.len(), 1, "only the bucket that is over");
        let first = &open[0];
        assert_eq!(first.start, T0 - T0 % BUCKET_NS);
        assert_eq!(
            first.groups.len(),
            3,
            "web.request (not its snapshot), cache, the top-level compute; not the other"
        );
        let synthetic = first.groups.keys().find(|k| k.name == "compute").unwrap();
        assert!(synthetic.synthetics, "its own _dd.origin");
        let (key, web) = first
            .groups
            .iter()
            .find(|(k, _)| k.name == "web.request")
            .unwrap();
        assert_eq!(
            (
                key.http_status_code,
                key.span_kind.as_str(),
                key.is_trace_root
            ),
            (200, "server", TRACE_ROOT_TRUE)
        );
        assert_eq!(key.service, "svc");
        assert!(!key.synthetics);
        assert_eq!(
            (key.http_method.as_str(), key.http_endpoint.as_str()),
            ("GET", "/u/:id")
        );
        assert_eq!(
            (web.hits, web.top_level_hits, web.errors, web.duration),
            (2, 2, 1, 1000)
        );
        assert_eq!((web.ok.count(), web.error.count()), (1.0, 1.0));
        let (key, cache) = first
            .groups
            .iter()
            .find(|(k, _)| k.name == "cache")
            .unwrap();
        assert_eq!(key.is_trace_root, TRACE_ROOT_FALSE);
        assert_eq!((cache.hits, cache.top_level_hits), (1, 0));

        let rest = concentrator.take(T0, true);
        assert_eq!(rest.len(), 1);
        let (key, db) = rest[0].groups.iter().next().unwrap();
        assert_eq!(key.peer_tags, ["db.name:orders"], "only the listed tags");
        assert_eq!(db.hits, 1);
        assert!(concentrator.take(T0, true).is_empty(), "taken once");
    }

    #[test]
    fn keys_beyond_the_limit_count_under_the_overflow_key() {
        let mut concentrator = Concentrator::new("svc".into(), 3);
        let spans = (0..10)
            .map(|i| {
                let mut s = span("web.request", 0, T0 + 1_000, 10, true);
                s.set_resource(Cow::Owned(format!("/resource/{i}")));
                s
            })
            .collect();
        concentrator.add(&chunk(spans), &[]);
        let buckets = concentrator.take(T0, true);
        let groups = &buckets[0].groups;
        assert_eq!(groups.len(), 4, "three keys and the overflow");
        let overflow = groups
            .iter()
            .find(|(k, _)| k.resource == BLOCKED)
            .map(|(k, g)| (k.service.as_str(), k.name.as_str(), g.hits));
        assert_eq!(overflow, Some(("svc", BLOCKED, 7)));
        assert_eq!(groups.values().map(|g| g.hits).sum::<u64>(), 10);
    }

    #[test]
    fn status_codes_from_meta_or_metrics() {
        for (value, expected) in [
            (TagValue::Str("404".into()), 404),
            (TagValue::Number(503.0), 503),
            (TagValue::Str("ok".into()), 0),
            (TagValue::Number(-1.0), 0),
        ] {
            let mut s = span("a", 0, T0, 1, true);
            s.set_tag(Cow::Borrowed("http.status_code"), value);
            assert_eq!(http_status_code(&s), expected);
        }
    }
}
