//! The parametric server as system-tests drives it, without system-tests:
//! the built binary against ddapm-test-agent, the protocol spoken over HTTP
//! (start, set_meta, error, finish, inject, extract, flush), and the spans
//! checked as the agent decoded them.

// The workspace's test agent harness (`tests/support/`): `agent` reaches
// `python` as `super::python`, so both sit at the crate root.
#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/support/agent.rs"]
mod agent;
#[allow(dead_code, unreachable_pub)]
#[path = "../../../tests/support/python.rs"]
mod python;

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent::{meta, metric, span_by_name, TestAgent};
use serde_json::{json, Value};

/// The server, killed when dropped; its stderr (one line per request) goes
/// to a log file, printed if the test fails.
struct Server {
    child: Child,
    log: PathBuf,
    url: String,
    http: ureq::Agent,
}

impl Server {
    /// Starts the binary as the harness does: the tracer's configuration in
    /// the environment (none of the test process's own `DD_*`), the port in
    /// `APM_TEST_CLIENT_SERVER_PORT` (0: it picks one and prints it).
    fn start(agent: &TestAgent) -> Server {
        let log = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("parametric-server-{}.log", std::process::id()));
        let stderr = File::create(&log).expect("the server's log file");
        let mut command = Command::new(env!("CARGO_BIN_EXE_parametric"));
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("DD_") {
                command.env_remove(key);
            }
        }
        let mut child = command
            .env("APM_TEST_CLIENT_SERVER_PORT", "0")
            .env("DD_TRACE_AGENT_URL", agent.url())
            .env("DD_SERVICE", "parametric-smoke")
            .env("DD_ENV", "test")
            .env("DD_TRACE_STARTUP_LOGS", "false")
            // A loaded machine's test agent may answer `/info` after the
            // default 2 s: the payload format must not depend on it.
            .env("DD_TRACE_AGENT_TIMEOUT_SECONDS", "30")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .expect("the parametric binary starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server's first line");
        let address = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("not the listening line: {line:?}"));
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .proxy(None)
            .build();
        Server {
            child,
            log,
            url: format!("http://{address}"),
            http: ureq::Agent::new_with_config(config),
        }
    }

    /// `POST path` with a JSON body: the status and the JSON answer.
    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let mut response = self
            .http
            .post(&format!("{}{path}", self.url))
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// `POST path` that must answer 200.
    fn call(&self, path: &str, body: Value) -> Value {
        let (status, json) = self.post(path, body.clone());
        assert_eq!(status, 200, "POST {path} {body} answered {status}: {json}");
        json
    }

    /// `GET path` with a JSON body, as the client reads baggage.
    fn get(&self, path: &str, body: Value) -> (u16, Value) {
        let mut response = self
            .http
            .get(&format!("{}{path}", self.url))
            .force_send_body()
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn start_span(&self, name: &str, parent_id: Value, extra: Value) -> u64 {
        let mut body = json!({
            "name": name, "service": null, "resource": null, "type": null,
            "parent_id": parent_id, "span_tags": [],
        });
        if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
            body.extend(extra.clone());
        }
        let answer = self.call("/trace/span/start", body);
        answer["span_id"].as_u64().expect("a span id")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            eprintln!("--- the server's log ({}) ---\n{log}", self.log.display());
        } else {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

fn id(span: &Value, field: &str) -> u64 {
    span[field].as_u64().unwrap_or_default()
}

#[test]
fn spans_tags_parents_and_propagation_reach_the_agent() {
    let agent = TestAgent::start();
    let server = Server::start(&agent);

    // The harness's readiness probe: any unknown path answers 404.
    let (status, _) = server.get(
        "/non-existent-endpoint-to-ping-until-the-server-starts",
        json!({}),
    );
    assert_eq!(status, 404);

    // The tracer's configuration, from the environment.
    let (status, answer) = server.get("/trace/config", json!({}));
    assert_eq!(status, 200);
    let config = &answer["config"];
    assert_eq!(config["dd_service"], "parametric-smoke");
    assert_eq!(config["dd_env"], "test");
    assert_eq!(config["dd_trace_agent_url"], agent.url().as_str());
    assert_eq!(config["dd_trace_rate_limit"], "100");

    let root = server.start_span(
        "web.request",
        Value::Null,
        json!({"service": "web", "resource": "GET /users", "type": "web",
               "span_tags": [["http.method", "GET"]]}),
    );
    assert_eq!(
        server.get("/trace/span/current", json!({})).1["span_id"],
        root
    );
    server.call(
        "/trace/span/set_meta",
        json!({"span_id": root, "key": "user.tier", "value": "gold"}),
    );
    server.call(
        "/trace/span/set_metric",
        json!({"span_id": root, "key": "items", "value": 3}),
    );
    server.call(
        "/trace/span/set_baggage",
        json!({"span_id": root, "key": "cart", "value": "c-17"}),
    );

    // A child named by the id start returned, as a hex string this time.
    let child = server.start_span("db.query", json!(format!("0x{root:x}")), json!({}));
    server.call(
        "/trace/span/error",
        json!({"span_id": child, "type": "DbError", "message": "timeout", "stack": "at query"}),
    );
    server.call("/trace/span/finish", json!({"span_id": child}));
    assert_eq!(
        server.get("/trace/span/current", json!({})).1["span_id"],
        root,
        "finishing a span makes its parent current again"
    );

    // A finished span still injects; the parent id is its own.
    let headers = server.call("/trace/span/inject_headers", json!({"span_id": child}));
    let headers: Vec<(String, String)> =
        serde_json::from_value(headers["http_headers"].clone()).expect("[[name, value], ...]");
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(
        header("x-datadog-parent-id"),
        Some(child.to_string().as_str())
    );
    assert!(header("traceparent").is_some(), "{headers:?}");
    assert!(
        header("baggage").is_some_and(|b| b.contains("cart=c-17")),
        "{headers:?}"
    );
    let (_, baggage) = server.get(
        "/trace/span/get_baggage",
        json!({"span_id": child, "key": "cart"}),
    );
    assert_eq!(baggage["baggage"], "c-17");
    server.call("/trace/span/finish", json!({"span_id": root}));
    assert_eq!(server.get("/trace/span/current", json!({})).1["span_id"], 0);

    // A context from another service, then a span under it.
    let extracted = server.call(
        "/trace/span/extract_headers",
        json!({"http_headers": [
            ["x-datadog-trace-id", "1234567890"],
            ["x-datadog-parent-id", "987654321"],
            ["x-datadog-sampling-priority", "2"],
        ]}),
    );
    assert_eq!(extracted["span_id"], 987_654_321);
    let remote_child = server.start_span("consumer", extracted["span_id"].clone(), json!({}));
    server.call("/trace/span/finish", json!({"span_id": remote_child}));

    // A duplicated traceparent is no context at all.
    let duplicated = server.call(
        "/trace/span/extract_headers",
        json!({"http_headers": [
            ["traceparent", "00-12345678901234567890123456789011-1234567890123456-01"],
            ["traceparent", "00-12345678901234567890123456789012-1234567890123456-01"],
        ]}),
    );
    assert_eq!(duplicated["span_id"], Value::Null);

    assert_eq!(server.call("/trace/span/flush", json!({}))["success"], true);
    assert_eq!(
        server.call("/trace/otel/flush", json!({"seconds": 1}))["success"],
        true
    );
    server.call("/trace/stats/flush", json!({}));

    let spans: Vec<Value> = agent
        .wait_for_spans(3, Duration::from_secs(30))
        .into_iter()
        .flatten()
        .collect();
    let root_span = span_by_name(&spans, "web.request");
    assert_eq!(id(root_span, "span_id"), root);
    assert_eq!(root_span["service"], "web");
    assert_eq!(root_span["resource"], "GET /users");
    assert_eq!(root_span["type"], "web");
    assert_eq!(meta(root_span, "http.method"), Some("GET"));
    assert_eq!(meta(root_span, "user.tier"), Some("gold"));
    assert_eq!(meta(root_span, "env"), Some("test"));
    assert_eq!(metric(root_span, "items"), Some(3.0));

    let child_span = span_by_name(&spans, "db.query");
    assert_eq!(id(child_span, "parent_id"), root);
    assert_eq!(id(child_span, "trace_id"), id(root_span, "trace_id"));
    assert_eq!(child_span["error"], 1);
    assert_eq!(meta(child_span, "error.type"), Some("DbError"));
    assert_eq!(meta(child_span, "error.message"), Some("timeout"));
    assert_eq!(meta(child_span, "error.stack"), Some("at query"));

    let consumer = span_by_name(&spans, "consumer");
    assert_eq!(id(consumer, "trace_id"), 1_234_567_890);
    assert_eq!(id(consumer, "parent_id"), 987_654_321);
    assert_eq!(consumer["service"], "parametric-smoke");
    assert_eq!(metric(consumer, "_sampling_priority_v1"), Some(2.0));
    agent.assert_no_check_failures();
}

/// `add_link` to a span started here and to an extracted context, and
/// `add_event`, as `test_span_links.py` drives them; the agent's `/info`
/// lists v0.5, so both reach it as meta JSON.
#[test]
fn links_and_events_reach_the_agent() {
    let agent = TestAgent::start();
    let server = Server::start(&agent);
    // The writer answers a flush once it has read `/info`: the spans below
    // go as v0.5, whose links and events are meta JSON (a first payload
    // sent before `/info` answered went as v0.4, on a busy machine).
    assert_eq!(server.call("/trace/span/flush", json!({}))["success"], true);
    let first = server.start_span("first", Value::Null, json!({}));
    server.call("/trace/span/finish", json!({"span_id": first}));
    let second = server.start_span("second", Value::Null, json!({}));
    server.call(
        "/trace/span/add_link",
        json!({"span_id": second, "parent_id": first,
               "attributes": {"foo": "bar", "array": ["a", "b", "c"]}}),
    );
    let extracted = server.call(
        "/trace/span/extract_headers",
        json!({"http_headers": [
            ["traceparent", "00-12345678901234567890123456789012-1234567890123456-01"],
            ["tracestate", "foo=1,dd=t.dm:-4;s:2,bar=baz"],
        ]}),
    );
    server.call(
        "/trace/span/add_link",
        json!({"span_id": second, "parent_id": extracted["span_id"], "attributes": {}}),
    );
    server.call(
        "/trace/span/add_event",
        json!({"span_id": second, "name": "retry", "timestamp": 123_450_000u64,
               "attributes": {"attempt": 2, "ok": false}}),
    );
    let (status, _) = server.post(
        "/trace/span/add_link",
        json!({"span_id": second, "parent_id": 42, "attributes": {}}),
    );
    assert_eq!(status, 400, "an unknown link target");
    server.call("/trace/span/finish", json!({"span_id": second}));
    assert_eq!(server.call("/trace/span/flush", json!({}))["success"], true);

    let spans: Vec<Value> = agent
        .wait_for_spans(2, Duration::from_secs(20))
        .into_iter()
        .flatten()
        .collect();
    let first = span_by_name(&spans, "first");
    let second = span_by_name(&spans, "second");
    let links: Value = serde_json::from_str(meta(second, "_dd.span_links").unwrap()).unwrap();
    assert_eq!(
        links[0]["span_id"],
        format!("{:016x}", id(first, "span_id")).as_str()
    );
    assert_eq!(links[0]["attributes"]["array.2"], "c");
    assert_eq!(links[1]["trace_id"], "12345678901234567890123456789012");
    assert_eq!(links[1]["span_id"], "1234567890123456");
    assert_eq!(links[1]["flags"], 1);
    let tracestate = links[1]["tracestate"].as_str().unwrap();
    assert!(
        tracestate.contains("foo=1")
            && tracestate.contains("bar=baz")
            && tracestate.contains("s:2"),
        "{tracestate}"
    );
    let events: Value = serde_json::from_str(meta(second, "events").unwrap()).unwrap();
    assert_eq!(
        events,
        json!([{"name": "retry", "time_unix_nano": 123_450_000u64,
                "attributes": {"attempt": 2, "ok": false}}])
    );
}
