//! Oversized names, resources, services, types, tag keys and values: cut
//! to the Datadog Agent's own limits (at a character boundary) before they
//! leave, so the agent takes them as they are and never rejects a span.

mod support;

use ddspan::tracer;
use support::agent::{meta, metric, span_by_name};
use support::session::traced;

/// The agent's limits (datadog-agent `pkg/trace/traceutil`): resource 5000
/// bytes, meta keys 200, meta values 25 000, names, services and types 100.
const MAX_RESOURCE: usize = 5000;
const MAX_KEY: usize = 200;
const MAX_VALUE: usize = 25_000;
const MAX_NAME: usize = 100;

#[test]
fn oversized_fields_are_cut_to_the_agents_limits_and_accepted() {
    let session = traced();
    // Two-byte characters, so that a cut in the middle of one must back off.
    let long = |n: usize| "é".repeat(n);
    let key = format!("k{}", "x".repeat(MAX_KEY * 2));
    let metric_key = format!("m{}", "y".repeat(MAX_KEY * 2));
    {
        let span = tracer::span(format!("op.{}", "n".repeat(MAX_NAME * 3)))
            .resource(long(MAX_RESOURCE))
            .service(format!("svc-{}", "s".repeat(MAX_NAME * 3)))
            .span_type(format!("web{}", "t".repeat(MAX_NAME * 3)))
            .start();
        span.set_tag(key.clone(), long(MAX_VALUE));
        span.set_tag(metric_key.clone(), 42.0);
        span.set_tag("small", "kept as is");
        let _active = span.enter();
        drop(tracer::trace("control"));
    }
    let traces = session.collect(2);
    session.agent.assert_no_check_failures();
    let trace = &traces[0];
    let control = span_by_name(trace, "control");
    let parent_id = control["parent_id"].as_u64().unwrap();
    let big = trace
        .iter()
        .find(|s| s["span_id"].as_u64() == Some(parent_id))
        .expect("the oversized span arrived");

    let name = big["name"].as_str().unwrap();
    assert!(
        name.len() <= MAX_NAME && name.starts_with("op.nnn"),
        "{name}"
    );
    let resource = big["resource"].as_str().unwrap();
    assert!(resource.len() <= MAX_RESOURCE && resource.len() >= MAX_RESOURCE - 1);
    assert!(
        resource.chars().all(|c| c == 'é'),
        "cut at a character boundary"
    );
    let service = big["service"].as_str().unwrap();
    assert!(service.len() <= MAX_NAME && service.starts_with("svc-"));
    let span_type = big["type"].as_str().unwrap();
    assert!(span_type.len() <= MAX_NAME && span_type.starts_with("web"));

    let cut_key = &key[..MAX_KEY];
    let value = meta(big, cut_key).expect("the key cut to 200 bytes");
    assert!(value.len() <= MAX_VALUE && value.len() >= MAX_VALUE - 1);
    assert!(value.chars().all(|c| c == 'é'));
    assert_eq!(metric(big, &metric_key[..MAX_KEY]), Some(42.0));
    assert_eq!(meta(big, "small"), Some("kept as is"));
}

/// Span maps of more than 15 entries (patched map headers), with
/// tracer-wide tags overridden at each level.
mod big_maps {
    use super::support;

    use std::time::Duration;

    use ddspan::tracer;
    use support::fault_agent::FaultAgent;

    #[test]
    fn big_meta_and_metrics_maps_arrive_whole_with_the_right_precedence() {
        let agent = FaultAgent::healthy();
        let _guard = support::session::tracer_at(&agent.url(), |mut b| {
            for i in 0..20 {
                b = b.global_tag(format!("base{i}"), format!("b{i}"));
            }
            b.env("test").version("1.2.3")
        });
        tracer::set_global_tag("base1", "global");
        tracer::set_global_tag("extra", "g");
        {
            let span = tracer::trace("big");
            for i in 0..18 {
                span.set_tag(format!("m{i}"), format!("v{i}"));
                span.set_tag(format!("n{i}"), i as f64);
            }
            span.set_tag("base2", "span");
            span.set_tag("base3", 3.0);
        }
        {
            let _small = tracer::trace("small");
        }
        assert!(tracer::flush(Duration::from_secs(5)));
        assert!(agent.wait_for_spans(2, Duration::from_secs(5)));
        let spans = agent.spans();
        let big = spans.iter().find(|s| s.name == "big").unwrap();
        for i in 0..20 {
            let want = match i {
                1 => Some("global"),
                2 => Some("span"),
                3 => None,
                _ => None,
            };
            let key = format!("base{i}");
            match (i, want) {
                (3, _) => assert!(!big.meta.contains_key(&key), "{key}: {:?}", big.meta),
                (_, Some(v)) => assert_eq!(big.meta[&key], v, "{key}"),
                _ => assert_eq!(big.meta[&key], format!("b{i}"), "{key}"),
            }
        }
        assert_eq!(big.metrics["base3"], 3.0);
        for i in 0..18 {
            assert_eq!(big.meta[&format!("m{i}")], format!("v{i}"));
            assert_eq!(big.metrics[&format!("n{i}")], i as f64);
        }
        assert_eq!(big.meta["extra"], "g");
        assert_eq!(big.meta["env"], "test");
        assert_eq!(big.meta["version"], "1.2.3");
        assert_eq!(big.meta["language"], "rust");
        // 19 base left (20 - base3) + env + version + extra + m0..m17 + chunk-level
        // (language, runtime-id, _dd.p.tid, _dd.p.dm).
        assert!(big.meta.len() >= 19 + 2 + 1 + 18 + 4, "{}", big.meta.len());
        let small = spans.iter().find(|s| s.name == "small").unwrap();
        assert_eq!(small.meta["base1"], "global");
        assert_eq!(small.meta["base19"], "b19");
        tracer::stop();
        agent.assert_no_errors();
    }
}
