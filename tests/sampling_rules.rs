//! `DD_TRACE_SAMPLING_RULES` against Datadog's test agent: the first rule
//! matching the local root decides, by what the root is when the decision
//! is needed (a resource or tag set after the start counts), with the
//! mechanism and rates Datadog's tracers report.

mod support;

use std::collections::HashMap;

use ddspan::tracer;
use ddspan::{LocalSpanGuard, SpanSpec};
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced_with;

const RULES: &str = r#"[
    {"resource": "GET /health*", "sample_rate": 0},
    {"tags": {"tier": "gold", "http.status_code": "2??"}, "sample_rate": 1},
    {"name": "batch.?ob", "sample_rate": 1, "provenance": "customer"}
]"#;

fn root_of<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    span_by_name(spans, name)
}

static BATCH: SpanSpec = SpanSpec::new("batch.job");
static OTHER: SpanSpec = SpanSpec::new("other.op");

#[test]
fn rules_see_the_resource_and_tags_set_after_the_root_started() {
    let traced = traced_with(|b| b.trace_sampling_rules(RULES.to_owned()));
    {
        let health = tracer::trace("health.check");
        health.set_resource("GET /health/live");
    }
    {
        let gold = tracer::trace("gold.request");
        gold.set_tag("tier", "GOLD");
        gold.set_tag("http.status_code", 204);
    }
    {
        // A `#[dd_span]`-style root, living in its thread's stack.
        let _batch = LocalSpanGuard::start(&BATCH);
    }
    {
        let other = LocalSpanGuard::start(&OTHER);
        other.set_tag("tier", "gold"); // no status code: the rule needs both
    }
    let spans = flatten(traced.collect(4));

    let health = root_of(&spans, "health.check");
    assert_eq!(metric(health, "_sampling_priority_v1"), Some(-1.0));
    assert_eq!(metric(health, "_dd.rule_psr"), Some(0.0));
    assert_eq!(
        metric(health, "_dd.limit_psr"),
        None,
        "the limiter sees kept traces only"
    );
    assert_eq!(meta(health, "_dd.p.dm"), None);

    let gold = root_of(&spans, "gold.request");
    assert_eq!(metric(gold, "_sampling_priority_v1"), Some(2.0));
    assert_eq!(meta(gold, "_dd.p.dm"), Some("-3"));
    assert_eq!(metric(gold, "_dd.rule_psr"), Some(1.0));
    assert_eq!(metric(gold, "_dd.limit_psr"), Some(1.0));

    let batch = root_of(&spans, "batch.job");
    assert_eq!(metric(batch, "_sampling_priority_v1"), Some(2.0));
    assert_eq!(meta(batch, "_dd.p.dm"), Some("-11"), "provenance customer");

    let other = root_of(&spans, "other.op");
    assert_eq!(
        metric(other, "_sampling_priority_v1"),
        Some(1.0),
        "no rule matched: the agent's rates (none yet) keep it"
    );
    assert_eq!(meta(other, "_dd.p.dm"), Some("-0"));
    assert_eq!(metric(other, "_dd.rule_psr"), None);
    traced.agent.assert_no_check_failures();
}

#[test]
fn injection_decides_and_the_decision_then_stays() {
    let traced = traced_with(|b| b.trace_sampling_rules(RULES.to_owned()));
    let mut headers: HashMap<String, String> = HashMap::new();
    {
        let root = tracer::trace("client.call");
        root.set_tag("tier", "gold");
        root.set_tag("http.status_code", 200);
        let child = tracer::trace("outgoing");
        tracer::inject(&child.context().unwrap(), &mut headers);
        // Too late: downstream was told already.
        root.set_resource("GET /health");
    }
    assert_eq!(headers["x-datadog-sampling-priority"], "2");
    assert!(
        headers["x-datadog-tags"].contains("_dd.p.dm=-3"),
        "{headers:?}"
    );
    let spans = flatten(traced.collect(2));
    let root = root_of(&spans, "client.call");
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(2.0));
    assert_eq!(meta(root, "_dd.p.dm"), Some("-3"));
}

#[test]
fn sample_rate_is_the_last_rule_and_inherited_decisions_stay() {
    let traced = traced_with(|b| {
        b.trace_sampling_rules(r#"[{"name":"kept.*","sample_rate":1}]"#.to_owned())
            .sample_rate(0.0)
    });
    drop(tracer::trace("kept.op"));
    drop(tracer::trace("dropped.op"));
    let headers: HashMap<String, String> = [
        ("x-datadog-trace-id", "123456789"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "1"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    {
        let server = tracer::span("server.op")
            .child_of(tracer::extract(&headers).ok())
            .start();
        server.set_resource("GET /health");
    }
    let spans = flatten(traced.collect(3));
    assert_eq!(
        metric(root_of(&spans, "kept.op"), "_sampling_priority_v1"),
        Some(2.0)
    );
    let dropped = root_of(&spans, "dropped.op");
    assert_eq!(metric(dropped, "_sampling_priority_v1"), Some(-1.0));
    assert_eq!(metric(dropped, "_dd.rule_psr"), Some(0.0));
    let server = root_of(&spans, "server.op");
    assert_eq!(
        metric(server, "_sampling_priority_v1"),
        Some(1.0),
        "upstream decided"
    );
    assert_eq!(metric(server, "_dd.rule_psr"), None);
}

#[test]
fn the_rate_limit_caps_rule_kept_traces() {
    // A limit of 0: every rule-kept trace is over it, whatever the timing.
    let traced = traced_with(|b| {
        b.trace_sampling_rules(r#"[{"resource":"GET *","sample_rate":1}]"#.to_owned())
            .rate_limit(0.0)
    });
    {
        let root = tracer::trace("limited");
        root.set_resource("GET /users");
    }
    let spans = flatten(traced.collect(1));
    let root = root_of(&spans, "limited");
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(-1.0));
    assert_eq!(metric(root, "_dd.rule_psr"), Some(1.0));
    assert_eq!(metric(root, "_dd.limit_psr"), Some(0.0));
}

#[test]
fn bad_rules_are_left_out_and_tracing_goes_on() {
    let traced = traced_with(|b| {
        b.trace_sampling_rules(
            r#"[{"sample_rate": 7}, {"service": 3}, {"name": "good", "sample_rate": 0}]"#
                .to_owned(),
        )
    });
    drop(tracer::trace("good"));
    drop(tracer::trace("plain"));
    let spans = flatten(traced.collect(2));
    assert_eq!(
        metric(root_of(&spans, "good"), "_sampling_priority_v1"),
        Some(-1.0),
        "the valid rule applies"
    );
    assert_eq!(
        metric(root_of(&spans, "plain"), "_sampling_priority_v1"),
        Some(1.0)
    );
    drop(traced);

    let traced = traced_with(|b| b.trace_sampling_rules("{not json".to_owned()));
    drop(tracer::trace("plain"));
    let spans = flatten(traced.collect(1));
    assert_eq!(
        metric(root_of(&spans, "plain"), "_sampling_priority_v1"),
        Some(1.0)
    );
}

static BIG: SpanSpec = SpanSpec::new("big.root");
static ITEM: SpanSpec = SpanSpec::new("item");

#[test]
fn a_partial_flush_decides_by_the_root_still_open() {
    let traced = traced_with(|b| {
        b.trace_sampling_rules(r#"[{"resource":"GET /big","sample_rate":0}]"#.to_owned())
            .partial_flush_enabled(true)
            .partial_flush_min_spans(2usize)
    });
    {
        // A `#[dd_span]`-style root and children, in this thread's stack.
        let root = LocalSpanGuard::start(&BIG);
        root.set_resource("GET /big");
        for _ in 0..3 {
            drop(LocalSpanGuard::start(&ITEM));
        }
    }
    let spans = flatten(traced.collect(4));
    // Every chunk's first span carries the decision.
    let firsts: Vec<&Value> = spans
        .iter()
        .filter(|s| metric(s, "_sampling_priority_v1").is_some())
        .collect();
    assert!(firsts.len() >= 2, "the trace left in parts: {spans:?}");
    for first in firsts {
        assert_eq!(
            metric(first, "_sampling_priority_v1"),
            Some(-1.0),
            "{first}"
        );
        assert_eq!(metric(first, "_dd.rule_psr"), Some(0.0));
    }
}
