//! The server layer against ddapm-test-agent: an axum router served on
//! loopback with `ServerLayer`, requests from a plain reqwest client, and
//! the spans the agent received.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::future::Future;
use std::task::{Context, Poll};

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use ddspan::integrations::http::ServerLayer;
use ddspan::{dd_span, HttpStatuses};
use serde_json::Value;
use support::agent::{meta, metric, span_by_name};
use support::session::{traced, traced_with};
use tower_layer::Layer;
use tower_service::Service;

#[dd_span]
async fn lookup(id: u64) -> u64 {
    tokio::task::yield_now().await;
    id * 2
}

async fn user(Path(id): Path<u64>) -> String {
    lookup(id).await.to_string()
}

async fn status(
    Path(code): Path<u16>,
) -> (StatusCode, [(&'static str, &'static str); 1], &'static str) {
    (
        StatusCode::from_u16(code).unwrap(),
        [("x-served-by", "unit")],
        "answered",
    )
}

async fn boom() -> String {
    panic!("handler exploded on purpose");
}

/// The test router behind the layer, served on a free loopback port;
/// returns its base URL.
async fn serve() -> String {
    let router = Router::new()
        .route("/users/{id}", get(user))
        .route("/status/{code}", get(status))
        .route("/boom", get(boom))
        .layer(ServerLayer::new().component("axum"));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    base
}

async fn get_with(url: &str, headers: &[(&str, &str)]) -> reqwest::Result<reqwest::Response> {
    let mut request = reqwest::Client::new().get(url);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await
}

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap_or(0)
}

/// The one span named `http.request` among all traces.
fn server_span(traces: Vec<Vec<Value>>) -> Value {
    let spans = support::agent::flatten(traces);
    span_by_name(&spans, "http.request").clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_span_has_the_web_conventions_and_the_handler_nests_under_it() {
    let traced = traced();
    let base = serve().await;
    let response = get_with(
        &format!("{base}/users/21?token=secret#top"),
        &[("user-agent", "probe/1.0")],
    )
    .await
    .unwrap();
    assert_eq!(response.text().await.unwrap(), "42");
    let spans = support::agent::flatten(traced.collect(2));
    let server = span_by_name(&spans, "http.request");
    let lookup = span_by_name(&spans, "lookup");
    let host = base.trim_start_matches("http://");
    assert_eq!(server["resource"], "GET /users/{id}");
    assert_eq!(server["type"], "web");
    assert_eq!(server["error"], 0);
    assert_eq!(id(server, "parent_id"), 0, "a new trace");
    assert_eq!(meta(server, "span.kind"), Some("server"));
    assert_eq!(meta(server, "component"), Some("axum"));
    assert_eq!(meta(server, "http.method"), Some("GET"));
    assert_eq!(
        meta(server, "http.url"),
        Some(format!("{base}/users/21").as_str()),
        "no query"
    );
    assert_eq!(meta(server, "http.route"), Some("/users/{id}"));
    assert_eq!(
        meta(server, "http.status_code"),
        Some("200"),
        "a string, in meta"
    );
    assert_eq!(metric(server, "http.status_code"), None);
    assert_eq!(meta(server, "http.useragent"), Some("probe/1.0"));
    assert_eq!(meta(server, "http.host"), Some(host));
    assert_eq!(
        meta(server, "http.client_ip"),
        None,
        "off by default in Datadog's tracers"
    );
    assert_eq!(metric(server, "_dd.top_level"), Some(1.0));
    assert_eq!(metric(server, "_dd.measured"), Some(1.0));
    assert_eq!(
        id(lookup, "parent_id"),
        id(server, "span_id"),
        "the handler's span nests"
    );
    assert_eq!(id(lookup, "trace_id"), id(server, "trace_id"));
    assert_eq!(metric(lookup, "_dd.top_level"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incoming_datadog_and_w3c_headers_continue_the_trace() {
    let traced = traced();
    let base = serve().await;
    // What ddtrace 4.16 injects for a child span (tests/peers, TEST-PEERS.md).
    let ddtrace = [
        ("x-datadog-trace-id", "1890081292213679918"),
        ("x-datadog-parent-id", "7628922200302827473"),
        ("x-datadog-sampling-priority", "1"),
        ("x-datadog-tags", "_dd.p.dm=-0,_dd.p.tid=6b0335ef00000000"),
        (
            "traceparent",
            "00-6b0335ef000000001a3aeaebd301f72e-69df6052482437d1-01",
        ),
        (
            "tracestate",
            "dd=p:69df6052482437d1;s:1;t.dm:-0;t.tid:6b0335ef00000000",
        ),
    ];
    get_with(&format!("{base}/users/1"), &ddtrace)
        .await
        .unwrap();
    let server = server_span(traced.collect(2));
    assert_eq!(id(&server, "trace_id"), 1890081292213679918);
    assert_eq!(id(&server, "parent_id"), 7628922200302827473);
    assert_eq!(meta(&server, "_dd.p.tid"), Some("6b0335ef00000000"));
    assert_eq!(
        metric(&server, "_dd.top_level"),
        Some(1.0),
        "a service entry"
    );
    assert_eq!(metric(&server, "_sampling_priority_v1"), Some(1.0));
    traced.agent.clear();

    // W3C alone.
    let w3c = [(
        "traceparent",
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )];
    get_with(&format!("{base}/users/2"), &w3c).await.unwrap();
    let server = server_span(traced.collect(2));
    assert_eq!(id(&server, "trace_id"), 0x8448eb211c80319c);
    assert_eq!(id(&server, "parent_id"), 0xb7ad6b7169203331);
    assert_eq!(meta(&server, "_dd.p.tid"), Some("0af7651916cd43dd"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_propagation_headers_start_a_new_trace_without_failing_the_request() {
    let traced = traced();
    let base = serve().await;
    let bad = [
        ("x-datadog-trace-id", "not-a-number"),
        ("x-datadog-parent-id", "7"),
        ("traceparent", "00-zz-yy-01"),
    ];
    let response = get_with(&format!("{base}/users/3"), &bad).await.unwrap();
    assert_eq!(response.status(), 200);
    let server = server_span(traced.collect(2));
    assert_eq!(id(&server, "parent_id"), 0);
    assert_ne!(id(&server, "trace_id"), 0);
    assert_eq!(meta(&server, "http.status_code"), Some("200"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_by_default_are_5xx_only() {
    let traced = traced();
    let base = serve().await;
    get_with(&format!("{base}/status/503"), &[]).await.unwrap();
    get_with(&format!("{base}/status/404"), &[]).await.unwrap();
    let spans = support::agent::flatten(traced.collect(2));
    let by_status = |code: &str| {
        spans
            .iter()
            .find(|s| meta(s, "http.status_code") == Some(code))
            .unwrap_or_else(|| panic!("a span with status {code}: {spans:?}"))
    };
    let unavailable = by_status("503");
    assert_eq!(unavailable["error"], 1);
    assert_eq!(
        meta(unavailable, "error.message"),
        Some("503: Service Unavailable")
    );
    assert_eq!(unavailable["resource"], "GET /status/{code}");
    let not_found = by_status("404");
    assert_eq!(not_found["error"], 0);
    assert_eq!(meta(not_found, "error.message"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_error_statuses_follow_the_configuration() {
    let traced =
        traced_with(|b| b.http_server_error_statuses(HttpStatuses::new([404..=404, 418..=418])));
    let base = serve().await;
    get_with(&format!("{base}/status/503"), &[]).await.unwrap();
    get_with(&format!("{base}/status/404"), &[]).await.unwrap();
    let spans = support::agent::flatten(traced.collect(2));
    for span in &spans {
        let expected = i64::from(meta(span, "http.status_code") == Some("404"));
        assert_eq!(span["error"], expected, "{span}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn header_tags_on_requests_and_responses() {
    let traced = traced_with(|b| {
        b.header_tag("X-Request-Id", Some("request.id"))
            .header_tag("x-served-by", None)
            .header_tag("x-tenant", None)
            .header_tag("x-absent", None)
    });
    let base = serve().await;
    get_with(
        &format!("{base}/status/200"),
        &[("x-request-id", "abc-123"), ("x-tenant", "acme")],
    )
    .await
    .unwrap();
    let server = server_span(traced.collect(1));
    assert_eq!(meta(&server, "request.id"), Some("abc-123"));
    assert_eq!(meta(&server, "http.request.headers.x-tenant"), Some("acme"));
    assert_eq!(
        meta(&server, "http.response.headers.x-served-by"),
        Some("unit")
    );
    assert_eq!(meta(&server, "http.request.headers.x-absent"), None);
    assert_eq!(meta(&server, "http.response.headers.x-absent"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_handler_marks_its_span() {
    let traced = traced();
    let base = serve().await;
    // hyper's connection task unwinds: the client sees the connection close.
    assert!(get_with(&format!("{base}/boom"), &[]).await.is_err());
    let server = server_span(traced.collect(1));
    assert_eq!(server["error"], 1);
    assert_eq!(meta(&server, "error.type"), Some("panic"));
    assert_eq!(
        meta(&server, "error.message"),
        Some("handler exploded on purpose")
    );
    assert_eq!(meta(&server, "http.status_code"), None);
}

/// A service outside axum: no route, so the resource is the method, and
/// its errors and panics are its own.
#[derive(Clone)]
struct Plain {
    outcome: &'static str,
}

impl Service<http::Request<String>> for Plain {
    type Response = http::Response<String>;
    type Error = std::io::Error;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<http::Response<String>, std::io::Error>> + Send>,
    >;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), std::io::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: http::Request<String>) -> Self::Future {
        let outcome = self.outcome;
        Box::pin(async move {
            match outcome {
                "panic" => panic!("caught by an outer layer"),
                "error" => Err(std::io::Error::other("backend gone")),
                _ => Ok(http::Response::new(String::new())),
            }
        })
    }
}

fn plain_request() -> http::Request<String> {
    http::Request::post("/jobs?id=9")
        .header("host", "jobs.internal:8443")
        .body(String::new())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_inner_error_marks_the_span_and_the_resource_is_the_method_without_a_route() {
    let traced = traced();
    let mut service = ServerLayer::new().layer(Plain { outcome: "error" });
    let error = service.call(plain_request()).await.unwrap_err();
    assert_eq!(error.to_string(), "backend gone");
    let server = server_span(traced.collect(1));
    assert_eq!(server["resource"], "POST");
    assert_eq!(meta(&server, "component"), Some("tower"));
    assert_eq!(meta(&server, "http.route"), None);
    assert_eq!(
        meta(&server, "http.url"),
        Some("http://jobs.internal:8443/jobs")
    );
    assert_eq!(server["error"], 1);
    assert_eq!(meta(&server, "error.message"), Some("backend gone"));
    assert_eq!(meta(&server, "error.type"), Some("std::io::error::Error"));
    assert_eq!(meta(&server, "http.status_code"), None);
}

/// As tower-http's `CatchPanicLayer` outside the layer: the panic is
/// caught around `poll`, and the future is dropped later, not while
/// unwinding. The span is marked all the same.
#[test]
fn a_panic_caught_outside_the_layer_still_marks_the_span() {
    let traced = traced();
    let mut service = ServerLayer::new().layer(Plain { outcome: "panic" });
    let mut future = Box::pin(service.call(plain_request()));
    let mut cx = Context::from_waker(std::task::Waker::noop());
    let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        future.as_mut().poll(&mut cx)
    }));
    assert!(caught.is_err());
    drop(future);
    let server = server_span(traced.collect(1));
    assert_eq!(server["error"], 1);
    assert_eq!(meta(&server, "error.type"), Some("panic"));
    assert_eq!(
        meta(&server, "error.message"),
        Some("caught by an outer layer")
    );
}
