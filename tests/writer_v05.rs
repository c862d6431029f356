//! Compact payloads (`PUT /v0.5/traces`): sent to an agent whose `/info`
//! lists them, v0.4 otherwise; the choice made again when the agent comes
//! back or changes; a v0.5 payload the agent refuses sent once as v0.4; and
//! through ddapm-test-agent, the same traces decode to the same spans in
//! either format.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use ddspan::tracer;
use serde_json::Value;
use support::agent::TestAgent;
use support::fault_agent::{read_request_line, FaultAgent, Reply};
use support::session::{one_span_traces, tracer_at, wait_until};

const V04: &str = "/v0.4/traces";
const V05: &str = "/v0.5/traces";
const LONG: Duration = Duration::from_secs(20);

/// The paths of the trace requests `agent` answered, in order.
fn paths(agent: &FaultAgent) -> Vec<String> {
    agent.requests().into_iter().map(|r| r.path).collect()
}

#[test]
fn an_agent_without_v05_in_its_info_gets_v04() {
    for info in [
        Reply::status(404, "404 page not found"),
        Reply::info(&[V04, "/v0.3/traces"]),
        Reply::status(200, "not json"),
    ] {
        let agent = FaultAgent::healthy();
        agent.set_info(move |_| info.clone());
        let _guard = tracer_at(&agent.url(), |b| b);
        one_span_traces("old-agent", 3);
        assert!(tracer::flush(LONG));
        assert_eq!(agent.span_count(), 3);
        assert!(
            paths(&agent).iter().all(|p| p == V04),
            "{:?}",
            paths(&agent)
        );
        assert_eq!(agent.info_requests(), 1, "asked once, at start");
        tracer::stop();
        agent.assert_no_errors();
    }
}

#[test]
fn an_agent_listing_v05_gets_v05_with_every_tag() {
    let agent = FaultAgent::healthy();
    agent.set_info(|_| Reply::info(&[V04, V05]));
    let _guard = tracer_at(&agent.url(), |b| b.env("prod").global_tag("team", "a"));
    // The writer asks /info before it answers a flush.
    assert!(tracer::flush(LONG));
    {
        let root = tracer::trace("request");
        root.set_tag("http.status_code", 200);
        root.set_tag("http.method", "GET");
        let child = tracer::span("query").service("db").start();
        child.finish();
    }
    assert!(tracer::flush(LONG));
    assert_eq!(paths(&agent), [V05]);
    let spans = agent.spans();
    assert_eq!(spans.len(), 2);
    let root = spans.iter().find(|s| s.name == "request").unwrap();
    let child = spans.iter().find(|s| s.name == "query").unwrap();
    assert_eq!(child.parent_id, root.span_id);
    assert_eq!(root.meta["http.method"], "GET");
    assert_eq!(root.meta["http.status_code"], "200"); // a string, as ddtrace sends it
    assert_eq!(root.meta["env"], "prod");
    assert_eq!(root.meta["language"], "rust");
    assert_eq!(child.service, "db");
    assert_eq!(child.meta["_dd.base_service"], "ddspan-tests");
    assert_eq!(child.meta["team"], "a");
    tracer::stop();
    agent.assert_no_errors();
}

/// A 404 or 415 means the agent refused the whole payload: the same traces
/// go once more, as v0.4, and every later payload is v0.4 too.
#[test]
fn a_v05_payload_refused_is_sent_once_as_v04() {
    for refusal in [404, 415] {
        let agent = FaultAgent::scripted(vec![Reply::status(refusal, "no"), Reply::ok()]);
        agent.set_info(|_| Reply::info(&[V04, V05]));
        let _guard = tracer_at(&agent.url(), |b| b);
        assert!(tracer::flush(LONG));
        one_span_traces("refused", 5);
        assert!(tracer::flush(LONG));
        one_span_traces("later", 2);
        assert!(tracer::flush(LONG));
        let requests = agent.requests();
        let seen: Vec<(&str, Option<u16>, usize)> = requests
            .iter()
            .map(|r| (r.path.as_str(), r.answered, r.spans))
            .collect();
        assert_eq!(
            seen,
            [
                (V05, Some(refusal), 5),
                (V04, Some(200), 5),
                (V04, Some(200), 2)
            ]
        );
        let stats = tracer::stats();
        assert_eq!(
            (stats.spans_sent, stats.spans_dropped(), stats.retries),
            (7, 0, 0),
            "{stats}"
        );
        let mut names: Vec<String> = agent.spans().into_iter().map(|s| s.name).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), 7, "every span once");
        support::session::assert_accounted(&stats);
        tracer::stop();
        agent.assert_no_errors();
    }
}

/// An agent down when the tracer starts: v0.4 until it answers, then its
/// `/info` decides.
#[test]
fn an_agent_down_at_start_is_asked_once_it_answers() {
    let port = FaultAgent::closed_port();
    let _guard = tracer_at(&format!("http://127.0.0.1:{port}"), |b| b);
    one_span_traces("while-down", 2);
    assert!(!tracer::flush(Duration::from_millis(300)));
    let agent = FaultAgent::start_on_info(port, |_| Reply::info(&[V04, V05]), |_| Reply::ok());
    wait_until("the spans kept while down", LONG, || {
        agent.span_count() == 2
    });
    wait_until("the agent's /info", LONG, || agent.info_requests() == 1);
    // Answered once the writer takes a flush: it asks between sends.
    assert!(tracer::flush(LONG));
    one_span_traces("after", 3);
    assert!(tracer::flush(LONG));
    assert_eq!(paths(&agent).first().map(String::as_str), Some(V04));
    assert_eq!(paths(&agent).last().map(String::as_str), Some(V05));
    assert_eq!(agent.span_count(), 5);
    tracer::stop();
    agent.assert_no_errors();
}

/// A restart, seen as connections refused and then an answer: the new agent
/// (here a newer one, with v0.5) is asked again.
#[test]
fn an_agent_restarted_as_another_version_is_asked_again() {
    let old = FaultAgent::healthy();
    let port = old.port();
    let _guard = tracer_at(&old.url(), |b| b);
    one_span_traces("old", 1);
    assert!(tracer::flush(LONG));
    assert_eq!(paths(&old), [V04]);
    drop(old);
    one_span_traces("between", 1);
    assert!(!tracer::flush(Duration::from_millis(300)));
    let new = FaultAgent::start_on_info(port, |_| Reply::info(&[V04, V05]), |_| Reply::ok());
    wait_until("the span kept while down", LONG, || new.span_count() == 1);
    // The writer asks /info right after that send, before it takes a flush.
    assert!(tracer::flush(LONG));
    one_span_traces("new", 2);
    assert!(tracer::flush(LONG));
    assert_eq!(new.info_requests(), 1);
    assert_eq!(paths(&new).last().map(String::as_str), Some(V05));
    assert_eq!(new.span_count(), 3);
    tracer::stop();
    new.assert_no_errors();
}

/// A `Datadog-Agent-State` that changes (the agent's configuration did):
/// `/info` is asked again, once per change.
#[test]
fn a_new_agent_state_asks_info_again() {
    let switched = Arc::new(AtomicBool::new(false));
    let state = Arc::clone(&switched);
    let agent = FaultAgent::start(move |_| {
        let hash = if state.load(Ordering::SeqCst) {
            "b"
        } else {
            "a"
        };
        Reply::ok().header("Datadog-Agent-State", hash)
    });
    let info_switched = Arc::clone(&switched);
    agent.set_info(move |_| {
        if info_switched.load(Ordering::SeqCst) {
            Reply::info(&[V04, V05]).header("Datadog-Agent-State", "b")
        } else {
            Reply::info(&[V04]).header("Datadog-Agent-State", "a")
        }
    });
    let _guard = tracer_at(&agent.url(), |b| b);
    for _ in 0..2 {
        one_span_traces("before", 1);
        assert!(tracer::flush(LONG));
    }
    assert_eq!(agent.info_requests(), 1, "the same state: not asked again");
    switched.store(true, Ordering::SeqCst);
    one_span_traces("switching", 1);
    assert!(tracer::flush(LONG));
    one_span_traces("after", 1);
    assert!(tracer::flush(LONG));
    assert_eq!(agent.info_requests(), 2, "asked once for the new state");
    assert_eq!(paths(&agent), [V04, V04, V04, V05]);
    tracer::stop();
    agent.assert_no_errors();
}

/// A proxy in front of a test agent that answers `/info` itself, without
/// v0.5, and passes every other request on: the tracer then sends v0.4 to
/// the same test agent.
fn v04_proxy(agent_port: u16) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut client = client;
                let Ok((line, headers, body)) = read_request_line(&mut client) else {
                    return;
                };
                let answer = if line.starts_with("GET /info") {
                    let info = r#"{"endpoints":["/v0.4/traces"]}"#;
                    format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{info}",
                        info.len()
                    )
                    .into_bytes()
                } else {
                    let mut upstream = TcpStream::connect(("127.0.0.1", agent_port)).unwrap();
                    let mut head = format!("{line}\r\nConnection: close\r\n");
                    for (name, value) in &headers {
                        if name != "connection" {
                            head.push_str(&format!("{name}: {value}\r\n"));
                        }
                    }
                    head.push_str("\r\n");
                    upstream.write_all(head.as_bytes()).unwrap();
                    upstream.write_all(&body).unwrap();
                    let mut answer = Vec::new();
                    let _ = upstream.read_to_end(&mut answer);
                    answer
                };
                let _ = client.write_all(&answer);
            });
        }
    });
    url
}

/// The spans of a session, keyed by name, without what differs between
/// two runs (ids, times, the trace id's upper half); parents by name.
fn normalized(traces: Vec<Vec<Value>>) -> BTreeMap<String, Value> {
    let spans: Vec<Value> = traces.into_iter().flatten().collect();
    let name_of = |id: &Value| {
        spans
            .iter()
            .find(|s| &s["span_id"] == id)
            .map(|s| s["name"].clone())
    };
    spans
        .iter()
        .map(|span| {
            let mut span = span.clone();
            let parent = name_of(&span["parent_id"]);
            let object = span.as_object_mut().unwrap();
            for key in ["trace_id", "span_id", "parent_id", "start", "duration"] {
                object.remove(key);
            }
            object.insert("parent".into(), parent.unwrap_or(Value::Null));
            if let Some(meta) = object.get_mut("meta").and_then(Value::as_object_mut) {
                meta.remove("_dd.p.tid");
            }
            (span["name"].as_str().unwrap().to_owned(), span)
        })
        .collect()
}

/// A web request as a service sees it: a root with HTTP tags, four
/// children (one of another service, one failing, one with a long value),
/// tags from the configuration, in code and at run time.
fn web_request() {
    let root = tracer::span("http.request")
        .resource("GET /users/:id")
        .span_type("web")
        .start();
    root.set_tag("http.method", "GET");
    root.set_tag("http.url", "http://shop.example/users/42?x=1");
    root.set_tag("http.status_code", 200);
    root.set_tag("span.kind", "server");
    let _active = root.enter();
    {
        let auth = tracer::trace("auth.check");
        auth.set_tag("user.id", "42");
    }
    {
        let query = tracer::span("db.query")
            .resource("SELECT * FROM users WHERE id = ?")
            .span_type("sql")
            .service("postgres")
            .start();
        query.set_tag("db.system", "postgresql");
        query.set_tag("db.rows", 1);
    }
    {
        let cache = tracer::trace("cache.get");
        cache.set_tag("payload", "v".repeat(30_000));
        cache.set_tag("hit", false);
    }
    {
        let render = tracer::trace("render");
        render.set_error(&std::io::Error::other("template missing"));
    }
}

#[test]
fn the_same_traces_decode_to_the_same_spans_as_v04_and_as_v05() {
    let agent = TestAgent::start();
    let port = agent.port();
    let configure = |b: ddspan::ConfigBuilder| {
        b.service("shop")
            .env("prod")
            .version("2.1")
            .global_tag("team", "web")
    };
    let mut runs = Vec::new();
    let _guard = tracer_at(&agent.url(), configure);
    for (token, url) in [("as-v05", agent.url()), ("as-v04", v04_proxy(port))] {
        agent.start_session(token);
        tracer::start(
            configure(ddspan::Config::builder())
                .agent_url(ddspan::AgentUrl::Http(url))
                .startup_logs(false)
                .flush_interval(Duration::from_millis(50))
                .build(),
        );
        assert!(tracer::flush(LONG), "the writer asked /info");
        web_request();
        assert!(tracer::flush(LONG));
        wait_until("the test agent's traces", LONG, || {
            agent
                .session_traces(token)
                .iter()
                .map(Vec::len)
                .sum::<usize>()
                == 5
        });
        let requests = agent.session_requests(token);
        let expected = if token == "as-v05" { V05 } else { V04 };
        assert!(
            requests
                .iter()
                .all(|r| r["url"].as_str().unwrap_or("").ends_with(expected)),
            "{requests:#?}"
        );
        runs.push(normalized(agent.session_traces(token)));
        tracer::stop();
    }
    assert_eq!(runs[0].len(), 5);
    assert_eq!(runs[0], runs[1]);
    let cache = &runs[0]["cache.get"];
    assert_eq!(cache["meta"]["payload"].as_str().unwrap().len(), 25_000);
    assert_eq!(runs[0]["db.query"]["meta"]["_dd.base_service"], "shop");
    agent.assert_no_check_failures();
}
