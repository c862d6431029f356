//! The web example as a user runs it, between two services traced by
//! Datadog's Python tracer: a ddtrace client sends Datadog and W3C headers
//! to the example (an axum service behind `ServerLayer`), which calls a
//! ddtrace inventory service through reqwest and `ReqwestMiddleware`. All
//! three ship to one ddapm-test-agent, which must hold one trace per
//! request across the three, with the web-span conventions.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::agent::{meta, metric, TestAgent};

fn peer_script(name: &str) -> String {
    format!("{}/../../tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn python(agent: &TestAgent) -> Command {
    let mut command = Command::new(support::python::python());
    command
        .env("DD_TRACE_AGENT_URL", agent.url())
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_REMOTE_CONFIGURATION_ENABLED", "false")
        .env("DD_ENV", "test")
        .stdin(Stdio::null());
    command
}

/// A child process killed if the test fails before it exits.
struct Process(Child);

impl Process {
    fn spawn(command: &mut Command) -> (Process, BufReader<ChildStdout>) {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn");
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        (Process(child), stdout)
    }

    /// Waits for the exit the process was asked for; panics if it fails or
    /// has not exited within `limit` (a hang, not a slow machine).
    fn wait(mut self, what: &str, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.0.try_wait().expect("try_wait") {
                assert!(status.success(), "{what} exited with {status}");
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{what} has not exited after {limit:?}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.0.try_wait().ok().flatten().is_none() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn first_line(stdout: &mut BufReader<ChildStdout>, what: &str) -> String {
    let mut line = String::new();
    stdout
        .read_line(&mut line)
        .unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(!line.is_empty(), "{what} printed nothing");
    line.trim().to_owned()
}

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap_or(0)
}

/// The one span of `spans` for which `pick` holds.
fn one<'a>(spans: &[&'a Value], what: &str, pick: impl Fn(&Value) -> bool) -> &'a Value {
    let found: Vec<&&Value> = spans.iter().filter(|s| pick(s)).collect();
    assert_eq!(found.len(), 1, "one {what} in {spans:#?}");
    found[0]
}

#[test]
fn one_trace_across_a_ddtrace_client_the_web_example_and_a_ddtrace_service() {
    let agent = TestAgent::start();

    let (inventory, mut inventory_out) = Process::spawn(
        python(&agent)
            .arg(peer_script("ddtrace_web_downstream.py"))
            .arg("2"),
    );
    let inventory_port = first_line(&mut inventory_out, "the inventory service");

    let (web, mut web_out) = Process::spawn(
        Command::new(env!("CARGO_BIN_EXE_ddspan-example-web"))
            .env("PORT", "0")
            .env(
                "DOWNSTREAM_URL",
                format!("http://127.0.0.1:{inventory_port}"),
            )
            .env("WEB_EXIT_AFTER", "2")
            .env("DD_TRACE_AGENT_URL", agent.url())
            .env("DD_SERVICE", "web-orders")
            .env("DD_ENV", "test")
            .env("DD_VERSION", "1.2.3")
            .env("DD_TRACE_STARTUP_LOGS", "false")
            .env(
                "DD_TRACE_HEADER_TAGS",
                "x-datadog-sampling-priority:sampling.header",
            )
            .stdin(Stdio::null()),
    );
    let listening = first_line(&mut web_out, "the web example");
    let base = listening
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("{listening}"))
        .to_owned();

    let output = python(&agent)
        .arg(peer_script("ddtrace_web_client.py"))
        .arg(&base)
        .args(["/orders/7", "/orders/13"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let calls: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(calls[0]["status"], 200);
    assert_eq!(calls[1]["status"], 500);
    for call in &calls {
        let sent = &call["headers"];
        assert!(
            sent["x-datadog-trace-id"].is_string(),
            "Datadog headers: {sent}"
        );
        assert!(sent["traceparent"].is_string(), "W3C headers: {sent}");
    }

    // The example exits after its second /orders request, flushing first.
    web.wait("the web example", Duration::from_secs(60));
    inventory.wait("the inventory service", Duration::from_secs(60));
    // Per request: py.client, the server span, load_order, check_stock, the
    // client span, py.inventory.
    let spans = support::agent::flatten(agent.wait_for_spans(12, Duration::from_secs(30)));
    assert_eq!(spans.len(), 12, "{spans:#?}");
    let mut traces: HashMap<u64, Vec<&Value>> = HashMap::new();
    for span in &spans {
        traces.entry(id(span, "trace_id")).or_default().push(span);
    }
    assert_eq!(traces.len(), 2, "one trace per request: {spans:#?}");

    for call in &calls {
        let path = call["path"].as_str().unwrap();
        let full: u128 = call["trace_id"].as_str().unwrap().parse().unwrap();
        let trace = &traces[&(full as u64)];
        assert_eq!(trace.len(), 6, "{path}: {trace:#?}");
        let tid = format!("{:016x}", (full >> 64) as u64);

        let client = one(trace, "py.client", |s| s["name"] == "py.client");
        let server = one(trace, "server span", |s| {
            meta(s, "span.kind") == Some("server") && s["service"] == "web-orders"
        });
        let load = one(trace, "load_order", |s| s["name"] == "load_order");
        let stock = one(trace, "check_stock", |s| s["name"] == "check_stock");
        let outgoing = one(trace, "client span", |s| {
            meta(s, "span.kind") == Some("client") && s["service"] == "web-orders"
        });
        let downstream = one(trace, "py.inventory", |s| s["name"] == "py.inventory");

        // Exact parents, across the three processes.
        assert_eq!(
            client["span_id"].to_string(),
            call["span_id"].as_str().unwrap()
        );
        assert_eq!(id(server, "parent_id"), id(client, "span_id"), "{path}");
        assert_eq!(id(load, "parent_id"), id(server, "span_id"), "{path}");
        assert_eq!(id(stock, "parent_id"), id(server, "span_id"), "{path}");
        assert_eq!(id(outgoing, "parent_id"), id(stock, "span_id"), "{path}");
        assert_eq!(
            id(downstream, "parent_id"),
            id(outgoing, "span_id"),
            "{path}"
        );
        // The same 128-bit trace id in every chunk.
        assert_eq!(meta(server, "_dd.p.tid"), Some(tid.as_str()), "{path}");

        // The server span.
        assert_eq!(server["name"], "http.request");
        assert_eq!(server["type"], "web");
        assert_eq!(server["resource"], "GET /orders/{id}");
        assert_eq!(meta(server, "component"), Some("axum"));
        assert_eq!(meta(server, "http.method"), Some("GET"));
        assert_eq!(meta(server, "http.route"), Some("/orders/{id}"));
        assert_eq!(
            meta(server, "http.url"),
            Some(format!("{base}{path}").as_str())
        );
        assert!(meta(server, "http.useragent").is_some_and(|ua| ua.starts_with("Python-urllib")));
        assert_eq!(
            meta(server, "sampling.header"),
            Some("1"),
            "DD_TRACE_HEADER_TAGS"
        );
        assert_eq!(meta(server, "version"), Some("1.2.3"));
        assert_eq!(metric(server, "_dd.top_level"), Some(1.0));
        // The client span.
        assert_eq!(outgoing["name"], "http.request");
        assert_eq!(outgoing["type"], "http");
        assert_eq!(meta(outgoing, "component"), Some("reqwest"));
        assert_eq!(meta(outgoing, "out.host"), Some("127.0.0.1"));
        assert_eq!(meta(outgoing, "peer.service"), Some("inventory"));
        let item = path.rsplit('/').next().unwrap();
        assert_eq!(
            meta(outgoing, "http.url"),
            Some(format!("http://127.0.0.1:{inventory_port}/inventory/{item}").as_str())
        );
        assert_eq!(downstream["service"], "py-inventory");
        assert_eq!(metric(downstream, "_dd.top_level"), Some(1.0));
    }

    let ok = &traces[&(calls[0]["trace_id"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .unwrap() as u64)];
    let server = one(ok, "server span", |s| {
        meta(s, "span.kind") == Some("server") && s["service"] == "web-orders"
    });
    assert_eq!(meta(server, "http.status_code"), Some("200"));
    assert_eq!(server["error"], 0);

    // /orders/13: the inventory answers 503 (not a client error by
    // default), check_stock returns an Err, the handler answers 500.
    let failed = &traces[&(calls[1]["trace_id"]
        .as_str()
        .unwrap()
        .parse::<u128>()
        .unwrap() as u64)];
    let server = one(failed, "server span", |s| {
        meta(s, "span.kind") == Some("server") && s["service"] == "web-orders"
    });
    assert_eq!(meta(server, "http.status_code"), Some("500"));
    assert_eq!(server["error"], 1);
    assert_eq!(
        meta(server, "error.message"),
        Some("500: Internal Server Error")
    );
    let outgoing = one(failed, "client span", |s| {
        meta(s, "span.kind") == Some("client") && s["service"] == "web-orders"
    });
    assert_eq!(meta(outgoing, "http.status_code"), Some("503"));
    assert_eq!(outgoing["error"], 0);
    let stock = one(failed, "check_stock", |s| s["name"] == "check_stock");
    assert_eq!(stock["error"], 1);
    assert_eq!(
        meta(stock, "error.message"),
        Some("inventory unavailable: 503 Service Unavailable")
    );
}
