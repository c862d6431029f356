//! Datadog's cross-tracer conventions on the spans ddspan sends, checked
//! as the agent (ddapm-test-agent) decodes them.

mod support;

use ddspan::tracer;
use support::agent::{flatten, meta, span_by_name};
use support::session::traced;

/// `_dd.base_service`: a span of another service than `DD_SERVICE` names
/// the service it ran in (ddtrace, dd-trace-java); one of the same service
/// (compared without case, as the agent does) does not.
#[test]
fn spans_of_other_services_name_the_base_service() {
    let session = traced();
    {
        let _request = tracer::trace("request");
        let _cache = tracer::span("cache.get").service("redis").start().entered();
        let _same = tracer::span("local")
            .service("DDSPAN-TESTS")
            .start()
            .entered();
    }
    let spans = flatten(session.collect(3));
    let request = span_by_name(&spans, "request");
    let cache = span_by_name(&spans, "cache.get");
    let same = span_by_name(&spans, "local");
    assert_eq!(meta(cache, "_dd.base_service"), Some("ddspan-tests"));
    assert_eq!(meta(request, "_dd.base_service"), None);
    assert_eq!(meta(same, "_dd.base_service"), None);
    assert_eq!(
        meta(cache, "version"),
        None,
        "the version is this service's"
    );
}

/// A Synthetics request names its trace but no parent span: the span
/// continues that trace, as a root, with the caller's decision and origin
/// (system-tests `test_distributed_headers_synthetics_sampling_decision`).
#[test]
fn a_synthetics_request_without_a_parent_span_continues_its_trace() {
    let session = traced();
    let headers: Vec<(String, String)> = [
        ("x-datadog-trace-id", "123456789"),
        ("x-datadog-parent-id", "0"),
        ("x-datadog-sampling-priority", "1"),
        ("x-datadog-origin", "synthetics;=web,z"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let context = tracer::extract(&headers).expect("a Synthetics context");
    drop(tracer::span("check").child_of(context).start());
    let spans = flatten(session.collect(1));
    let span = span_by_name(&spans, "check");
    assert_eq!(span["trace_id"], 123_456_789);
    assert!(matches!(span["parent_id"].as_u64(), None | Some(0)));
    assert_eq!(meta(span, "_dd.origin"), Some("synthetics;=web,z"));
    assert_eq!(
        support::agent::metric(span, "_sampling_priority_v1"),
        Some(1.0)
    );
}
