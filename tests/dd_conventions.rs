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
