//! Client-side stats (issue #14 item 4): computed when the agent's `/info`
//! lists `/v0.6/stats`, sent there as a `ClientStatsPayload` with exact
//! counts per aggregation key and decodable sketches; sampled-out (P0)
//! chunks left unsent when the agent says `client_drop_p0s`, except those
//! holding an error or a single-span-sampled span, and counted in the next
//! trace request's headers; nothing of it when `/info` does not allow it.
//! Against the scriptable fake agent, and ddapm-test-agent decoding what
//! is sent.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use ddspan::tracer;
use serde::Deserialize;
use support::fault_agent::{FaultAgent, Reply, StatsRequest};
use support::session::{assert_accounted, traced_with, tracer_at};

const LONG: Duration = Duration::from_secs(20);

#[derive(Deserialize, Debug)]
#[allow(non_snake_case)]
struct Payload {
    Env: String,
    Lang: String,
    Service: String,
    Sequence: u64,
    Stats: Vec<Bucket>,
}

#[derive(Deserialize, Debug)]
#[allow(non_snake_case)]
struct Bucket {
    Start: u64,
    Duration: u64,
    Stats: Vec<Group>,
}

#[derive(Deserialize, Debug)]
#[allow(non_snake_case)]
struct Group {
    Service: String,
    Name: String,
    Resource: String,
    Type: String,
    HTTPStatusCode: u32,
    SpanKind: String,
    Synthetics: bool,
    PeerTags: Vec<String>,
    IsTraceRoot: i32,
    Hits: u64,
    Errors: u64,
    Duration: u64,
    TopLevelHits: u64,
    #[serde(deserialize_with = "bytes")]
    OkSummary: Vec<u8>,
    #[serde(deserialize_with = "bytes")]
    ErrorSummary: Vec<u8>,
}

/// A msgpack `bin`.
fn bytes<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
    struct Bytes;
    impl serde::de::Visitor<'_> for Bytes {
        type Value = Vec<u8>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("bytes")
        }
        fn visit_bytes<E>(self, v: &[u8]) -> Result<Vec<u8>, E> {
            Ok(v.to_vec())
        }
    }
    d.deserialize_bytes(Bytes)
}

/// The totals of one aggregation key over every payload and bucket.
#[derive(Debug, Default, PartialEq)]
struct Totals {
    hits: u64,
    errors: u64,
    top_level_hits: u64,
    ok_count: f64,
    error_count: f64,
    duration: u64,
}

/// (name, resource, status, kind, is_trace_root, peer tags) → totals.
type Key = (String, String, u32, String, i32, Vec<String>);

fn totals(requests: &[StatsRequest]) -> HashMap<Key, Totals> {
    let mut all: HashMap<Key, Totals> = HashMap::new();
    for request in requests {
        let payload: Payload = rmp_serde::from_slice(&request.body).expect("a ClientStatsPayload");
        assert_eq!(
            (payload.Env.as_str(), payload.Lang.as_str()),
            ("test", "rust")
        );
        assert_eq!(payload.Service, "ddspan-tests");
        assert!(payload.Sequence >= 1);
        for bucket in &payload.Stats {
            assert_eq!(bucket.Duration, 10_000_000_000);
            assert_eq!(bucket.Start % bucket.Duration, 0, "aligned on 10 s");
            for group in &bucket.Stats {
                assert_eq!(group.Service, "ddspan-tests");
                assert!(!group.Synthetics);
                let ok = libdd_ddsketch::DDSketch::from_encoded(&group.OkSummary)
                    .expect("a protobuf DDSketch");
                let error = libdd_ddsketch::DDSketch::from_encoded(&group.ErrorSummary)
                    .expect("a protobuf DDSketch");
                let _ = &group.Type;
                let entry = all
                    .entry((
                        group.Name.clone(),
                        group.Resource.clone(),
                        group.HTTPStatusCode,
                        group.SpanKind.clone(),
                        group.IsTraceRoot,
                        group.PeerTags.clone(),
                    ))
                    .or_default();
                entry.hits += group.Hits;
                entry.errors += group.Errors;
                entry.top_level_hits += group.TopLevelHits;
                entry.ok_count += ok.count();
                entry.error_count += error.count();
                entry.duration += group.Duration;
            }
        }
    }
    all
}

fn info(drop_p0s: bool, stats: bool) -> Reply {
    let endpoints = if stats {
        r#"["/v0.4/traces","/v0.6/stats"]"#
    } else {
        r#"["/v0.4/traces"]"#
    };
    Reply::status(
        200,
        &format!(
            r#"{{"version":"7.99.0","endpoints":{endpoints},"client_drop_p0s":{drop_p0s},"peer_tags":["db.name","peer.service"]}}"#
        ),
    )
}

/// Web-shaped traces: `ok` requests (a server root, a client query with
/// `db.name`, an internal render), `failed` ones (a server root answering
/// 500, as an error), and one job whose root single-span sampling kept.
fn web_traces(ok: usize, failed: usize) {
    for _ in 0..ok {
        let root = tracer::span("web.request")
            .resource("GET /users")
            .span_type("web")
            .start();
        let _active = root.enter();
        root.set_tag("span.kind", "server");
        root.set_tag("http.status_code", "200");
        let query = tracer::span("db.query").resource("SELECT").start();
        query.set_tag("span.kind", "client");
        query.set_tag("db.name", "users");
        query.set_tag("out.host", "db1");
        query.finish();
        drop(tracer::start_span("render"));
    }
    for _ in 0..failed {
        let root = tracer::span("web.request")
            .resource("GET /users")
            .span_type("web")
            .start();
        root.set_tag("span.kind", "server");
        root.set_tag("http.status_code", "500");
        root.set_error_flag(true);
    }
    let job = tracer::start_span("job");
    job.set_tag("_dd.span_sampling.mechanism", 8);
}

fn key(name: &str, resource: &str, status: u32, kind: &str, root: bool, peer: &[&str]) -> Key {
    (
        name.to_owned(),
        resource.to_owned(),
        status,
        kind.to_owned(),
        if root { 1 } else { 2 },
        peer.iter().map(|p| (*p).to_owned()).collect(),
    )
}

fn header_sum(agent: &FaultAgent, name: &str) -> u64 {
    agent
        .requests()
        .iter()
        .filter_map(|r| r.headers.get(name))
        .map(|v| v.parse::<u64>().expect("a count"))
        .sum()
}

#[test]
fn stats_count_every_span_and_p0_chunks_stay_home_but_errors_and_single_spans() {
    let agent = FaultAgent::healthy();
    agent.set_info(|_| info(true, true));
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(0.0).stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG), "the writer asked /info");
    web_traces(5, 2);
    assert!(tracer::flush(LONG));

    // Sent: the two error traces and the job; not the five P0 requests.
    let spans = agent.spans();
    assert_eq!(spans.len(), 3, "{spans:#?}");
    assert_eq!(spans.iter().filter(|s| s.error == 1).count(), 2);
    assert!(spans.iter().any(|s| s.name == "job"));
    assert_eq!(header_sum(&agent, "datadog-client-dropped-p0-traces"), 5);
    assert_eq!(header_sum(&agent, "datadog-client-dropped-p0-spans"), 15);
    for request in agent.requests() {
        assert_eq!(
            request
                .headers
                .get("datadog-client-computed-stats")
                .map(String::as_str),
            Some("yes")
        );
        assert!(request
            .headers
            .contains_key("datadog-client-computed-top-level"));
    }

    let stats = tracer::stats();
    assert_eq!((stats.traces_p0_dropped, stats.spans_p0_dropped), (5, 15));
    assert_eq!(stats.spans_dropped(), 0, "P0 chunks are not losses");
    assert_eq!(stats.spans_sent, 3);
    assert_accounted(&stats);

    // Every eligible span is in the stats, sent or not.
    let requests = agent.stats_requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert_eq!(
            request.headers.get("content-type").map(String::as_str),
            Some("application/msgpack")
        );
        assert_eq!(
            request.headers.get("datadog-meta-lang").map(String::as_str),
            Some("rust")
        );
    }
    let totals = totals(&requests);
    let web_ok = &totals[&key("web.request", "GET /users", 200, "server", true, &[])];
    assert_eq!(
        (web_ok.hits, web_ok.errors, web_ok.top_level_hits),
        (5, 0, 5)
    );
    assert_eq!((web_ok.ok_count, web_ok.error_count), (5.0, 0.0));
    let web_failed = &totals[&key("web.request", "GET /users", 500, "server", true, &[])];
    assert_eq!(
        (
            web_failed.hits,
            web_failed.errors,
            web_failed.top_level_hits
        ),
        (2, 2, 2)
    );
    assert_eq!((web_failed.ok_count, web_failed.error_count), (0.0, 2.0));
    let query = &totals[&key("db.query", "SELECT", 0, "client", false, &["db.name:users"])];
    assert_eq!(
        (query.hits, query.errors, query.top_level_hits),
        (5, 0, 0),
        "a client span: counted, not top-level, with its peer tag"
    );
    let job = &totals[&key("job", "job", 0, "", true, &[])];
    assert_eq!((job.hits, job.top_level_hits), (1, 1));
    assert_eq!(
        totals.len(),
        4,
        "render is neither top-level, measured nor of a kind: {totals:#?}"
    );
    agent.assert_no_errors();
}

#[test]
fn p0_counts_of_a_request_the_agent_did_not_take_go_with_the_next() {
    let agent = FaultAgent::scripted(vec![Reply::status(503, "busy"), Reply::ok()]);
    agent.set_info(|_| info(true, true));
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(0.0).stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG));
    web_traces(5, 1);
    assert!(tracer::flush(LONG));
    let requests = agent.requests();
    assert_eq!(requests[0].answered, Some(503));
    let delivered: u64 = requests
        .iter()
        .filter(|r| r.answered == Some(200))
        .filter_map(|r| r.headers.get("datadog-client-dropped-p0-traces"))
        .map(|v| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(delivered, 5, "{requests:#?}");
    assert_eq!(agent.span_count(), 2);
    assert_accounted(&tracer::stats());
}

#[test]
fn kept_traces_are_all_sent_with_stats_and_no_p0_counts() {
    let agent = FaultAgent::healthy();
    agent.set_info(|_| info(true, true));
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(1.0).stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG));
    web_traces(4, 1);
    assert!(tracer::flush(LONG));
    assert_eq!(agent.span_count(), 4 * 3 + 1 + 1);
    assert_eq!(header_sum(&agent, "datadog-client-dropped-p0-traces"), 0);
    assert!(agent
        .requests()
        .iter()
        .all(|r| !r.headers.contains_key("datadog-client-dropped-p0-spans")));
    let totals = totals(&agent.stats_requests());
    assert_eq!(
        totals[&key("web.request", "GET /users", 200, "server", true, &[])].hits,
        4
    );
    let stats = tracer::stats();
    assert_eq!(stats.spans_p0_dropped, 0);
    assert_accounted(&stats);
}

#[test]
fn without_client_drop_p0s_stats_are_sent_and_p0_chunks_too() {
    let agent = FaultAgent::healthy();
    agent.set_info(|_| info(false, true));
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(0.0).stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG));
    web_traces(3, 0);
    assert!(tracer::flush(LONG));
    assert_eq!(agent.span_count(), 3 * 3 + 1, "every chunk sent");
    assert_eq!(header_sum(&agent, "datadog-client-dropped-p0-traces"), 0);
    assert!(agent.requests().iter().all(|r| r
        .headers
        .get("datadog-client-computed-stats")
        .is_some_and(|v| v == "yes")));
    let totals = totals(&agent.stats_requests());
    assert_eq!(
        totals[&key("web.request", "GET /users", 200, "server", true, &[])].hits,
        3
    );
    assert_eq!(tracer::stats().spans_p0_dropped, 0);
}

#[test]
fn an_agent_without_the_stats_endpoint_gets_every_trace_and_no_stats() {
    for (info, configure_off) in [(info(true, false), false), (info(true, true), true)] {
        let agent = FaultAgent::healthy();
        agent.set_info(move |_| info.clone());
        let _guard = tracer_at(&agent.url(), |b| {
            b.sample_rate(0.0).stats_computation_enabled(!configure_off)
        });
        assert!(tracer::flush(LONG));
        web_traces(3, 0);
        assert!(tracer::flush(LONG));
        assert_eq!(agent.span_count(), 3 * 3 + 1);
        assert!(agent.stats_requests().is_empty());
        assert!(agent
            .requests()
            .iter()
            .all(|r| !r.headers.contains_key("datadog-client-computed-stats")));
        assert_eq!(tracer::stats().spans_p0_dropped, 0);
        tracer::stop();
    }
}

#[test]
fn stats_left_at_stop_are_sent_by_it() {
    let agent = FaultAgent::healthy();
    agent.set_info(|_| info(true, true));
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(0.0).stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG));
    web_traces(2, 0);
    assert!(tracer::stop());
    let totals = totals(&agent.stats_requests());
    assert_eq!(
        totals[&key("web.request", "GET /users", 200, "server", true, &[])].hits,
        2
    );
}

#[test]
fn stats_the_agent_refuses_are_dropped_not_resent_and_traces_go_on() {
    let agent = FaultAgent::healthy();
    agent.set_info(|_| info(true, true));
    agent.set_stats_status(500);
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(1.0).stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG));
    web_traces(2, 0);
    assert!(tracer::flush(LONG), "the traces were delivered");
    // One request, or two when the spans straddle a bucket's end.
    let refused = agent.stats_requests().len();
    assert!(refused >= 1);
    assert_eq!(agent.span_count(), 2 * 3 + 1);
    assert!(tracer::flush(LONG));
    assert_eq!(agent.stats_requests().len(), refused, "not sent again");
    agent.set_stats_status(200);
    web_traces(1, 0);
    assert!(tracer::flush(LONG));
    let requests = agent.stats_requests();
    assert!(requests.len() > refused);
    let totals = totals(&requests[refused..]);
    assert_eq!(
        totals[&key("web.request", "GET /users", 200, "server", true, &[])].hits,
        1,
        "only the spans since"
    );
    let stats = tracer::stats();
    assert_eq!(stats.spans_dropped(), 0);
    assert_accounted(&stats);
}

#[test]
fn the_test_agent_decodes_the_stats_with_their_counts() {
    let traced = traced_with(|b| b.sample_rate(0.0).stats_computation_enabled(true));
    // ddapm-test-agent lists /v0.6/stats, client_drop_p0s and db.name
    // among its peer tags.
    assert!(tracer::flush(LONG));
    web_traces(6, 1);
    assert!(tracer::flush(LONG));
    let payloads = traced.agent.stats();
    assert!(!payloads.is_empty(), "no stats reached the test agent");
    let mut hits: HashMap<(String, u64), u64> = HashMap::new();
    let mut errors = 0;
    for payload in &payloads {
        assert_eq!(payload["Env"], "test");
        assert_eq!(payload["Version"], "0.0.1");
        for bucket in payload["Stats"].as_array().unwrap() {
            for group in bucket["Stats"].as_array().unwrap() {
                // The number of bytes its protobuf decoder read.
                assert!(group["OkSummary"].as_u64().unwrap() > 0);
                assert!(group["ErrorSummary"].as_u64().unwrap() > 0);
                *hits
                    .entry((
                        group["Name"].as_str().unwrap().to_owned(),
                        group["HTTPStatusCode"].as_u64().unwrap(),
                    ))
                    .or_default() += group["Hits"].as_u64().unwrap();
                errors += group["Errors"].as_u64().unwrap();
            }
        }
    }
    assert_eq!(hits[&("web.request".to_owned(), 200)], 6);
    assert_eq!(hits[&("web.request".to_owned(), 500)], 1);
    assert_eq!(hits[&("db.query".to_owned(), 0)], 6);
    assert_eq!(hits[&("job".to_owned(), 0)], 1);
    assert_eq!(errors, 1);
    // The error trace and the job arrive; the six P0 requests do not.
    let traces = traced.agent.wait_for_spans(2, LONG);
    assert_eq!(traces.iter().map(Vec::len).sum::<usize>(), 2, "{traces:#?}");
    let stats = tracer::stats();
    assert_eq!((stats.traces_p0_dropped, stats.spans_p0_dropped), (6, 18));
    assert_accounted(&stats);
    traced.agent.assert_no_check_failures();
}

/// The web trace of benches/README.md's bytes-per-span figure: a server
/// root with HTTP tags and four children (a PostgreSQL query, a Redis
/// command, an outgoing HTTP call, rendering); no error.
fn typical_web_trace(user: usize) {
    let root = tracer::span("http.request")
        .resource("GET /users/:id")
        .span_type("web")
        .start();
    let _active = root.enter();
    for (key, value) in [
        ("component", "axum"),
        ("span.kind", "server"),
        ("http.method", "GET"),
        ("http.route", "/users/:id"),
        ("http.url", "http://shop.example/users/42"),
        ("http.status_code", "200"),
    ] {
        root.set_tag(key, value);
    }
    root.set_tag("usr.id", user.to_string());
    for (name, resource, span_type, service, kind, tags) in [
        (
            "postgresql.query",
            "SELECT * FROM users WHERE id = $1",
            "sql",
            "postgres",
            "client",
            &[("db.system", "postgresql"), ("db.name", "shop")][..],
        ),
        (
            "redis.command",
            "GET",
            "redis",
            "redis",
            "client",
            &[("db.system", "redis"), ("out.host", "cache1")][..],
        ),
        (
            "http.request",
            "GET /inventory",
            "http",
            "shop",
            "client",
            &[("http.method", "GET"), ("out.host", "inventory")][..],
        ),
        ("render", "render", "template", "shop", "internal", &[][..]),
    ] {
        let child = tracer::span(name)
            .resource(resource)
            .span_type(span_type)
            .service(service)
            .start();
        child.set_tag("span.kind", kind);
        for (key, value) in tags {
            child.set_tag(*key, *value);
        }
    }
}

/// Bytes on the wire (trace and stats request bodies) for `traces` web
/// traces sampled at 10 %, with the agent's `/info` as given.
fn bytes_on_the_wire(info: Reply, traces: usize) -> (usize, usize, u64) {
    let agent = FaultAgent::healthy();
    agent.set_info(move |_| info.clone());
    // No rate limit: the figure is about the 10 %, not the limiter.
    let _guard = tracer_at(&agent.url(), |b| {
        b.sample_rate(0.1)
            .rate_limit(1e9)
            .flush_interval(Duration::from_secs(3600))
            .stats_computation_enabled(true)
    });
    assert!(tracer::flush(LONG));
    for user in 0..traces {
        typical_web_trace(user);
    }
    assert!(tracer::flush(LONG));
    let trace_bytes: usize = agent.requests().iter().map(|r| r.body_bytes).sum();
    let stats_bytes: usize = agent.stats_requests().iter().map(|r| r.body.len()).sum();
    let stats = tracer::stats();
    assert_accounted(&stats);
    assert_eq!(stats.spans_dropped(), 0);
    tracer::stop();
    (trace_bytes, stats_bytes, stats.traces_sent)
}

/// The saving of issue #14: a service sampling 10 % of its traces stops
/// shipping the other 90 %. Run with `--nocapture` for the figures
/// (benches/README.md, "Client-side stats").
#[test]
fn p0_dropping_at_a_10_percent_sample_rate_saves_most_of_the_bytes() {
    const TRACES: usize = 2000;
    for format in ["/v0.4/traces", "/v0.5/traces"] {
        let info = |stats: bool| {
            let endpoints = if stats {
                format!(r#"["/v0.4/traces","{format}","/v0.6/stats"]"#)
            } else {
                format!(r#"["/v0.4/traces","{format}"]"#)
            };
            Reply::status(
                200,
                &format!(
                    r#"{{"endpoints":{endpoints},"client_drop_p0s":true,"peer_tags":["db.name","out.host"]}}"#
                ),
            )
        };
        let (without, _, all_sent) = bytes_on_the_wire(info(false), TRACES);
        let (traces, stats, kept) = bytes_on_the_wire(info(true), TRACES);
        assert_eq!(all_sent, TRACES as u64);
        println!(
            "{format}: {TRACES} web traces of 5 spans at a 10 % sample rate: {without} bytes \
             without client stats; with them {} bytes ({traces} of the {kept} kept traces + \
             {stats} of stats) = {:.1} %",
            traces + stats,
            100.0 * (traces + stats) as f64 / without as f64
        );
        assert!(
            (traces + stats) * 2 < without,
            "{format}: {without} bytes without stats, {traces} + {stats} with"
        );
    }
}
