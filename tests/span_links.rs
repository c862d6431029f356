//! Span links and span events through ddapm-test-agent: native v0.4
//! `span_links` and `span_events` to an agent whose `/info` says
//! `span_events`, the `events` meta JSON to one that does not, both as
//! meta JSON in v0.5, and the `terminated_context` link extraction adds
//! when two styles name different traces.

mod support;

use std::time::Duration;

use ddspan::{dd_span, tracer, AttributeValue};
use serde_json::{json, Value};
use support::agent::{flatten, meta, span_by_name, TestAgent};
use support::session::{traced_on, traced_with};

/// An agent that takes only v0.4 (`DD_AGENT_EXTRA_INFO` replaces the
/// endpoints its `/info` lists), with or without native span events.
fn v04_agent(span_events: bool) -> TestAgent {
    let info = json!({
        "endpoints": ["/v0.4/traces", "/info"],
        "span_events": span_events,
    });
    TestAgent::builder()
        .env("DD_AGENT_EXTRA_INFO", info.to_string())
        .start()
}

/// Two traces: `first`, and `second` linked to it with attributes and
/// carrying two events (one at an explicit time).
fn linked_traces() {
    let first = tracer::start_span("first");
    let context = first.context().expect("a recording span");
    first.finish();
    let second = tracer::span("second")
        .link(&context, &[("from", "builder".into())])
        .start();
    second.add_link(
        &context,
        &[
            ("foo", "bar".into()),
            ("array", vec!["a", "b", "c"].into()),
            ("bools", vec![true, false].into()),
            ("n", 2.into()),
        ],
    );
    let at = std::time::UNIX_EPOCH + Duration::from_micros(123_450);
    second.add_event_at(
        "event_name",
        at,
        &[
            ("string", "bar".into()),
            ("bool", true.into()),
            ("int", 1.into()),
            ("double", 2.3.into()),
            ("int_arr", vec![5, 6].into()),
            ("mixed", AttributeValue::Array(vec![1.into(), "a".into()])),
        ],
    );
    second.add_event("other_event", &[]);
    second.finish();
}

/// Flushes once before the spans so that the writer has read `/info`.
fn collect(traced: &support::session::Traced, spans: usize) -> Vec<Value> {
    flatten(traced.collect(spans))
}

#[test]
fn v04_carries_native_span_links_and_span_events() {
    let traced = traced_on(v04_agent(true), |b| b, true);
    assert!(tracer::flush(Duration::from_secs(10)), "/info read");
    linked_traces();
    let spans = collect(&traced, 2);
    let first = span_by_name(&spans, "first");
    let second = span_by_name(&spans, "second");
    let links = second["span_links"].as_array().expect("native span_links");
    assert_eq!(links.len(), 2);
    let tid_high = u64::from_str_radix(meta(first, "_dd.p.tid").unwrap(), 16).unwrap();
    for link in links {
        assert_eq!(link["trace_id"], first["trace_id"]);
        assert_eq!(link["span_id"], first["span_id"]);
        assert_eq!(link["trace_id_high"], tid_high);
        assert_eq!(link["flags"], 1u64 | 1 << 31, "sampled, with the set bit");
        let tracestate = link["tracestate"].as_str().unwrap();
        assert!(tracestate.starts_with("dd=p:"), "{tracestate}");
    }
    assert_eq!(links[0]["attributes"], json!({"from": "builder"}));
    assert_eq!(
        links[1]["attributes"],
        json!({
            "foo": "bar", "array.0": "a", "array.1": "b", "array.2": "c",
            "bools.0": "true", "bools.1": "false", "n": "2",
        })
    );
    let events = second["span_events"]
        .as_array()
        .expect("native span_events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["name"], "event_name");
    assert_eq!(events[0]["time_unix_nano"], 123_450_000u64);
    assert_eq!(
        events[0]["attributes"],
        json!({
            "string": {"type": 0, "string_value": "bar"},
            "bool": {"type": 1, "bool_value": true},
            "int": {"type": 2, "int_value": 1},
            "double": {"type": 3, "double_value": 2.3},
            "int_arr": {"type": 4, "array_value": {"values": [
                {"type": 2, "int_value": 5}, {"type": 2, "int_value": 6}
            ]}},
        }),
        "the mixed array is left out"
    );
    assert_eq!(events[1]["name"], "other_event");
    assert!(events[1]["time_unix_nano"].as_u64().unwrap() > 1_600_000_000_000_000_000);
    assert_eq!(meta(second, "events"), None);
    assert_eq!(meta(second, "_dd.span_links"), None);
    assert!(first.get("span_links").is_none());
    traced.agent.assert_no_check_failures();
}

#[test]
fn events_are_meta_json_for_an_agent_without_span_events() {
    let traced = traced_on(v04_agent(false), |b| b, true);
    assert!(tracer::flush(Duration::from_secs(10)), "/info read");
    linked_traces();
    let spans = collect(&traced, 2);
    let second = span_by_name(&spans, "second");
    assert_eq!(second["span_links"].as_array().unwrap().len(), 2);
    assert!(second.get("span_events").is_none());
    let events: Value = serde_json::from_str(meta(second, "events").unwrap()).unwrap();
    assert_eq!(
        events[0],
        json!({
            "name": "event_name",
            "time_unix_nano": 123_450_000u64,
            "attributes": {"string": "bar", "bool": true, "int": 1, "double": 2.3, "int_arr": [5, 6]},
        })
    );
    assert_eq!(events[1]["name"], "other_event");
}

#[test]
fn v05_carries_both_as_meta_json() {
    let traced = traced_with(|b| b);
    assert!(tracer::flush(Duration::from_secs(10)), "/info read");
    linked_traces();
    let spans = collect(&traced, 2);
    let first = span_by_name(&spans, "first");
    let second = span_by_name(&spans, "second");
    assert!(second.get("span_links").is_none());
    assert!(second.get("span_events").is_none());
    let links: Value = serde_json::from_str(meta(second, "_dd.span_links").unwrap()).unwrap();
    let trace_id = format!(
        "{}{:016x}",
        meta(first, "_dd.p.tid").unwrap(),
        first["trace_id"].as_u64().unwrap()
    );
    assert_eq!(links[1]["trace_id"], trace_id.as_str());
    assert_eq!(
        links[1]["span_id"],
        format!("{:016x}", first["span_id"].as_u64().unwrap()).as_str()
    );
    assert_eq!(links[1]["attributes"]["array.2"], "c");
    let events: Value = serde_json::from_str(meta(second, "events").unwrap()).unwrap();
    assert_eq!(events[0]["attributes"]["int_arr"], json!([5, 6]));
    let requests = traced.agent.requests();
    assert!(
        requests.iter().any(|r| r["url"]
            .as_str()
            .is_some_and(|u| u.contains("/v0.5/traces"))),
        "sent as v0.5"
    );
}

/// Headers whose Datadog and W3C parts name two traces.
fn conflicting_headers() -> Vec<(String, String)> {
    [
        ("x-datadog-trace-id", "1234567890"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "1"),
        (
            "traceparent",
            "00-12345678901234567890123456789012-1234567890123456-01",
        ),
        ("tracestate", "foo=1,dd=s:2;t.dm:-4"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect()
}

#[dd_span(child_of = headers)]
fn handle(headers: &Vec<(String, String)>) {
    let _ = headers;
}

#[test]
fn conflicting_styles_link_the_span_to_the_terminated_context() {
    let traced = traced_on(v04_agent(true), |b| b, true);
    let headers = conflicting_headers();
    tracer::span("server").child_of(&headers).start().finish();
    handle(&headers);
    let spans = collect(&traced, 2);
    for name in ["server", "handle"] {
        let span = span_by_name(&spans, name);
        assert_eq!(span["trace_id"], 1234567890u64, "the Datadog context wins");
        assert_eq!(span["parent_id"], 987654321u64);
        let links = span["span_links"].as_array().expect("a span link");
        assert_eq!(links.len(), 1, "{name}");
        let link = &links[0];
        assert_eq!(link["trace_id"], 0x7890_1234_5678_9012u64);
        assert_eq!(link["trace_id_high"], 0x1234_5678_9012_3456u64);
        assert_eq!(link["span_id"], 0x1234_5678_9012_3456u64);
        assert_eq!(link["flags"], 1u64 | 1 << 31);
        assert_eq!(
            link["attributes"],
            json!({"reason": "terminated_context", "context_headers": "tracecontext"})
        );
        let tracestate = link["tracestate"].as_str().unwrap();
        assert!(tracestate.contains("s:2"), "{tracestate}");
        assert!(tracestate.ends_with(",foo=1"), "{tracestate}");
    }
}
