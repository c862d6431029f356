//! Single-span sampling against Datadog's test agent: spans of dropped
//! traces that a `DD_SPAN_SAMPLING_RULES` rule keeps carry
//! `_dd.span_sampling.*`; kept traces are left alone.

mod support;

use ddspan::tracer;
use support::agent::{flatten, metric, span_by_name};
use support::session::traced_with;

const SPAN_RULES: &str =
    r#"[{"service": "ddspan-*", "name": "db.*", "sample_rate": 1.0, "max_per_second": 50}]"#;

#[test]
fn spans_of_dropped_traces_are_kept_by_rule() {
    let traced = traced_with(|b| {
        b.sample_rate(0.0)
            .span_sampling_rules(SPAN_RULES.to_owned())
    });
    {
        let _root = tracer::trace("web.request");
        drop(tracer::trace("db.query"));
        drop(tracer::trace("cache.get"));
    }
    let spans = flatten(traced.collect(3));
    let root = span_by_name(&spans, "web.request");
    assert_eq!(metric(root, "_sampling_priority_v1"), Some(-1.0));
    assert_eq!(metric(root, "_dd.span_sampling.mechanism"), None);
    let query = span_by_name(&spans, "db.query");
    assert_eq!(metric(query, "_dd.span_sampling.mechanism"), Some(8.0));
    assert_eq!(metric(query, "_dd.span_sampling.rule_rate"), Some(1.0));
    assert_eq!(
        metric(query, "_dd.span_sampling.max_per_second"),
        Some(50.0)
    );
    assert_eq!(
        metric(
            span_by_name(&spans, "cache.get"),
            "_dd.span_sampling.mechanism"
        ),
        None
    );
    traced.agent.assert_no_check_failures();
}

#[test]
fn kept_traces_are_not_span_sampled_and_the_file_is_read() {
    let path = std::env::temp_dir().join(format!("ddspan-span-rules-{}.json", std::process::id()));
    std::fs::write(&path, r#"[{"name": "db.query"}]"#).unwrap();
    let traced = traced_with(|b| {
        b.sample_rate(1.0)
            .span_sampling_rules_file(path.display().to_string())
    });
    {
        let _root = tracer::trace("kept.request");
        drop(tracer::trace("db.query"));
    }
    let spans = flatten(traced.collect(2));
    assert_eq!(
        metric(
            span_by_name(&spans, "db.query"),
            "_dd.span_sampling.mechanism"
        ),
        None,
        "the trace is kept whole"
    );
    drop(traced);

    let traced = traced_with(|b| {
        b.sample_rate(0.0)
            .span_sampling_rules_file(path.display().to_string())
    });
    {
        let _root = tracer::trace("dropped.request");
        drop(tracer::trace("db.query"));
    }
    let spans = flatten(traced.collect(2));
    let query = span_by_name(&spans, "db.query");
    assert_eq!(metric(query, "_dd.span_sampling.mechanism"), Some(8.0));
    assert_eq!(
        metric(query, "_dd.span_sampling.max_per_second"),
        None,
        "no limit"
    );
    let _ = std::fs::remove_file(path);
}
