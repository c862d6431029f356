//! Manual keep and drop against Datadog's test agent: `keep_trace` /
//! `drop_trace` and the `manual.keep` / `manual.drop` tags on every handle
//! decide for the whole trace (priority 2 / -1, `_dd.p.dm` `-4`), whatever
//! sampling said, and headers injected afterwards carry the decision.

mod support;

use std::collections::HashMap;

use ddspan::tracer;
use ddspan::{LocalSpanGuard, SpanSpec};
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced_with;

static GUARDED: SpanSpec = SpanSpec::new("guarded.root");

#[test]
fn keep_overrides_a_rule_that_drops_and_travels_downstream() {
    let traced = traced_with(|b| b.sample_rate(0.0));
    let mut headers: HashMap<String, String> = HashMap::new();
    {
        let root = tracer::trace("kept.root");
        let child = tracer::trace("child");
        child.keep_trace();
        tracer::inject(&child.context().unwrap(), &mut headers);
        drop(child);
        drop(root);
    }
    {
        let root = tracer::trace("tagged.root");
        root.set_tag("manual.keep", true);
    }
    assert_eq!(headers["x-datadog-sampling-priority"], "2");
    assert!(
        headers["x-datadog-tags"].contains("_dd.p.dm=-4"),
        "{headers:?}"
    );
    assert!(headers["tracestate"].contains("s:2"), "{headers:?}");
    let spans = flatten(traced.collect(3));
    for name in ["kept.root", "tagged.root"] {
        let root = span_by_name(&spans, name);
        assert_eq!(metric(root, "_sampling_priority_v1"), Some(2.0), "{name}");
        assert_eq!(meta(root, "_dd.p.dm"), Some("-4"), "{name}");
        assert_eq!(meta(root, "manual.keep"), None, "not sent as a tag");
        assert_eq!(metric(root, "manual.keep"), None, "not sent as a tag");
    }
}

#[test]
fn drop_overrides_default_and_inherited_decisions() {
    let traced = traced_with(|b| b);
    let mut headers: HashMap<String, String> = HashMap::new();
    {
        // The macro's guard: its trace lives in this thread until shared.
        let root = LocalSpanGuard::start(&GUARDED);
        root.set_tag("manual.drop", true);
        tracer::inject(&root.context().unwrap(), &mut headers);
    }
    let upstream: HashMap<String, String> = [
        ("x-datadog-trace-id", "123456789"),
        ("x-datadog-parent-id", "987654321"),
        ("x-datadog-sampling-priority", "2"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    {
        let server = tracer::span("server.root")
            .child_of(tracer::extract(&upstream).ok())
            .start();
        server.drop_trace();
    }
    {
        let unchanged = tracer::trace("false.tag");
        unchanged.set_tag("manual.drop", false);
    }
    assert_eq!(headers["x-datadog-sampling-priority"], "-1");
    assert!(headers["traceparent"].ends_with("-00"), "{headers:?}");
    let spans = flatten(traced.collect(3));
    for name in ["guarded.root", "server.root"] {
        let root = span_by_name(&spans, name);
        assert_eq!(metric(root, "_sampling_priority_v1"), Some(-1.0), "{name}");
        assert_eq!(meta(root, "manual.drop"), None);
    }
    let unchanged = span_by_name(&spans, "false.tag");
    assert_eq!(metric(unchanged, "_sampling_priority_v1"), Some(1.0));
    assert_eq!(metric(unchanged, "manual.drop"), None);
}
