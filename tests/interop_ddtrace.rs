//! Distributed traces across ddspan and ddtrace (Datadog's Python tracer),
//! both shipping to one ddapm-test-agent: in each direction and for each
//! propagation style, the agent holds one trace with the same 128-bit id,
//! correct parents and the sampling decision kept.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};

use ddspan::tracer;
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced_with;

const STYLES: [&str; 3] = ["datadog", "tracecontext", "datadog,tracecontext,baggage"];

fn styles(list: &str) -> Vec<ddspan::Style> {
    list.split(',')
        .map(|s| ddspan::Style::parse(s).unwrap())
        .collect()
}

fn peer_script(name: &str) -> String {
    format!("{}/tests/peers/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Runs a peer script with `arg`; its last line of output, as JSON.
fn run_peer(agent_url: &str, style: &str, script: &str, arg: &str) -> Value {
    let output = python(agent_url, style)
        .arg(peer_script(script))
        .arg(arg)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{script} {arg} ({style}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let last = output
        .stdout
        .split(|b| *b == b'\n')
        .rev()
        .find(|l| !l.is_empty())
        .unwrap_or_default();
    serde_json::from_slice(last)
        .unwrap_or_else(|e| panic!("{script}: {e}: {}", String::from_utf8_lossy(&output.stdout)))
}

fn python(agent_url: &str, style: &str) -> Command {
    let mut command = Command::new(support::python::python());
    command
        .env("DD_TRACE_AGENT_URL", agent_url)
        .env("DD_TRACE_PROPAGATION_STYLE", style)
        .env("DD_INSTRUMENTATION_TELEMETRY_ENABLED", "false")
        .env("DD_REMOTE_CONFIGURATION_ENABLED", "false")
        .env("DD_ENV", "test")
        .stdin(Stdio::null());
    command
}

/// Serves one request: continues the caller's trace in a ddspan span.
fn rust_server(listener: TcpListener) -> std::thread::JoinHandle<Vec<(String, String)>> {
    std::thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let (headers, _) = support::fault_agent::read_request(&stream).unwrap();
        let headers: Vec<(String, String)> = headers.into_iter().collect();
        handle(&headers);
        let mut stream = stream;
        stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
            .unwrap();
        headers
    })
}

fn handle(headers: &[(String, String)]) {
    let parent = tracer::extract(&headers.to_vec()).expect("the caller's context");
    let server = tracer::span("rust.server")
        .service("rust-server")
        .child_of(parent)
        .start();
    let _entered = server.enter();
    drop(tracer::trace("rust.work"));
}

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap()
}

#[test]
fn python_client_to_rust_server() {
    for style in STYLES {
        let traced = traced_with(|b| b.propagation_styles(&styles(style)));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/rust", listener.local_addr().unwrap());
        let server = rust_server(listener);
        let client = run_peer(&traced.agent.url(), style, "ddtrace_client.py", &url);
        let headers = server.join().unwrap();

        let traces = traced.collect(3);
        let spans = flatten(traces.clone());
        assert_eq!(
            traces.len(),
            1,
            "{style}: one trace in the agent: {traces:#?}"
        );
        let py = span_by_name(&spans, "py.client");
        let rust = span_by_name(&spans, "rust.server");
        let work = span_by_name(&spans, "rust.work");
        let trace_id: u128 = client["trace_id"].as_str().unwrap().parse().unwrap();
        for span in [py, rust, work] {
            assert_eq!(
                u128::from(id(span, "trace_id")),
                trace_id & u128::from(u64::MAX),
                "{style}"
            );
        }
        assert_eq!(
            id(rust, "parent_id"),
            id(py, "span_id"),
            "{style}: the Rust server under the Python client"
        );
        assert_eq!(id(work, "parent_id"), id(rust, "span_id"));
        assert_eq!(
            meta(rust, "_dd.p.tid"),
            Some(format!("{:016x}", trace_id >> 64).as_str()),
            "{style}: 128-bit id kept"
        );
        assert_eq!(
            metric(rust, "_sampling_priority_v1"),
            metric(py, "_sampling_priority_v1"),
            "{style}"
        );
        assert_eq!(metric(rust, "_dd.top_level"), Some(1.0));
        // Re-injecting the context ddtrace sent gives back ddtrace's headers.
        let sent: Vec<(String, String)> = client["headers"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.to_lowercase(), v.as_str().unwrap().to_owned()))
            .collect();
        let propagator = ddspan::Propagator::new(&styles(style));
        let mut ours: Vec<(String, String)> = Vec::new();
        propagator.inject(&propagator.extract(&sent).unwrap(), &mut ours);
        let mut theirs = sent.clone();
        theirs.sort();
        ours.sort();
        assert_eq!(ours, theirs, "{style}: the same headers as ddtrace");
        assert!(headers
            .iter()
            .any(|(k, _)| k.eq_ignore_ascii_case(if style == "datadog" {
                "x-datadog-trace-id"
            } else {
                "traceparent"
            })));
        traced.agent.assert_no_check_failures();
    }
}

#[test]
fn rust_client_to_python_server() {
    for style in STYLES {
        let traced = traced_with(|b| b.propagation_styles(&styles(style)));
        let mut server = python(&traced.agent.url(), style)
            .arg(peer_script("ddtrace_server.py"))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(server.stdout.take().unwrap());
        let mut port = String::new();
        stdout.read_line(&mut port).unwrap();
        let port: u16 = port.trim().parse().unwrap_or_else(|_| {
            let mut err = String::new();
            server
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("{style}: the Python server did not start: {port:?} {err}")
        });

        let client = tracer::span("rust.client").service("rust-client").start();
        let context = client.context().unwrap();
        let mut headers = std::collections::HashMap::new();
        tracer::inject(&context, &mut headers);
        let mut request = ureq::get(format!("http://127.0.0.1:{port}/py"));
        for (name, value) in &headers {
            request = request.header(name.as_str(), value.as_str());
        }
        request.call().unwrap();
        client.finish();
        let mut result = String::new();
        stdout.read_to_string(&mut result).unwrap();
        assert!(server.wait().unwrap().success());
        let python: Value = serde_json::from_str(result.trim()).unwrap();

        let traces = traced.collect(2);
        let spans = flatten(traces.clone());
        assert_eq!(traces.len(), 1, "{style}: one trace: {traces:#?}");
        let rust = span_by_name(&spans, "rust.client");
        let py = span_by_name(&spans, "py.server");
        assert_eq!(id(py, "trace_id"), id(rust, "trace_id"), "{style}");
        assert_eq!(
            id(py, "parent_id"),
            id(rust, "span_id"),
            "{style}: Python under Rust"
        );
        let full: u128 = python["trace_id"].as_str().unwrap().parse().unwrap();
        assert_eq!(
            full,
            context.trace_id(),
            "{style}: ddtrace sees the same 128-bit id"
        );
        assert_eq!(
            python["priority"].as_i64(),
            Some(1),
            "{style}: the decision travelled"
        );
        assert_eq!(metric(py, "_sampling_priority_v1"), Some(1.0));
        traced.agent.assert_no_check_failures();
    }
}

/// A request that carries only W3C baggage (no trace context): ddtrace
/// starts a new trace that carries the baggage, and so does ddspan; both
/// then inject the same baggage header and the same set of headers.
#[test]
fn baggage_without_a_trace_context_matches_ddtrace() {
    let style = "datadog,tracecontext,baggage";
    let traced = traced_with(|b| b.propagation_styles(&styles(style)));
    for baggage in [
        "user.id=42",
        "user.id=42,session=abc%20def",
        " tenant = acme%2Cinc ,emoji=%E2%9C%93,k%20ey=a=b",
        // Malformed: neither keeps any baggage.
        "a=1,empty=",
        "no-equal-sign,foo=dropped",
    ] {
        let request = serde_json::json!({ "baggage": baggage }).to_string();
        let python_side = run_peer(&traced.agent.url(), style, "ddtrace_baggage.py", &request);
        assert!(python_side["extracted_trace_id"].is_null(), "{python_side}");
        assert!(python_side["parent_id"].is_null(), "{python_side}");

        let headers = vec![("baggage".to_owned(), baggage.to_owned())];
        let Ok(context) = tracer::extract(&headers) else {
            // Nothing to continue: ddtrace kept nothing either.
            assert_eq!(
                python_side["extracted_baggage"],
                serde_json::json!({}),
                "{baggage}"
            );
            assert!(python_side["injected"].get("baggage").is_none());
            continue;
        };
        assert!(context.is_baggage_only(), "{baggage}");
        let extracted: serde_json::Map<String, Value> = context
            .baggage()
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect();
        assert_eq!(
            Value::Object(extracted),
            python_side["extracted_baggage"],
            "{baggage}: the same items"
        );

        let span = tracer::span("rust.baggage").child_of(context).start();
        let mut ours: Vec<(String, String)> = Vec::new();
        tracer::inject(&span.context().unwrap(), &mut ours);
        span.finish();
        let theirs = python_side["injected"].as_object().unwrap();
        let header = |name: &str| {
            ours.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(
            header("baggage"),
            theirs["baggage"].as_str(),
            "{baggage}: the baggage passed on"
        );
        let mut our_names: Vec<&str> = ours.iter().map(|(k, _)| k.as_str()).collect();
        let mut their_names: Vec<&str> = theirs.keys().map(String::as_str).collect();
        our_names.sort_unstable();
        their_names.sort_unstable();
        assert_eq!(our_names, their_names, "{baggage}: the same headers");
        assert_eq!(
            header("x-datadog-sampling-priority"),
            theirs["x-datadog-sampling-priority"].as_str(),
            "{baggage}: a new trace, kept by default"
        );
        assert!(
            header("x-datadog-tags").is_some_and(|t| t.contains("_dd.p.dm=-0")),
            "{ours:?}"
        );
    }
    // Three Rust spans (the well-formed headers) and five Python ones.
    let spans = flatten(traced.collect(8));
    let ours: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "rust.baggage")
        .collect();
    assert_eq!(ours.len(), 3, "{spans:?}");
    for span in ours {
        assert_eq!(id(span, "parent_id"), 0, "a new trace: {span}");
    }
    traced.agent.assert_no_check_failures();
}
