//! The client spans against ddapm-test-agent: reqwest through
//! `ReqwestMiddleware`, hyper-util's client through `ClientLayer`, calling
//! a loopback axum server (no layer) that records the headers it gets.

#[path = "../../../tests/support/mod.rs"]
mod support;

use std::sync::{Arc, Mutex};

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use ddspan::integrations::http::{ClientLayer, ReqwestMiddleware};
use ddspan::{tracer, HttpStatuses, Instrument};
use serde_json::Value;
use support::agent::{meta, metric, span_by_name};
use support::session::{traced, traced_with};
use tower_layer::Layer;
use tower_service::Service;

type Seen = Arc<Mutex<Vec<HeaderMap>>>;

async fn status(State(seen): State<Seen>, Path(code): Path<u16>, headers: HeaderMap) -> StatusCode {
    seen.lock().unwrap().push(headers);
    StatusCode::from_u16(code).unwrap()
}

/// A server answering `/status/{code}` with that code; its base URL and
/// the headers of each request it got.
async fn downstream() -> (String, Seen) {
    let seen = Seen::default();
    let router = Router::new()
        .route("/status/{code}", get(status))
        .with_state(Arc::clone(&seen));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, router).await });
    (base, seen)
}

fn reqwest_client() -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(ReqwestMiddleware::new())
        .build()
}

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap_or(0)
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("{name} injected: {headers:?}"))
        .to_str()
        .unwrap()
}

/// The headers carry the client span's context: it is the parent of what
/// the server starts.
fn assert_injected(headers: &HeaderMap, client: &Value) {
    assert_eq!(
        header(headers, "x-datadog-parent-id"),
        id(client, "span_id").to_string()
    );
    assert_eq!(
        header(headers, "x-datadog-trace-id"),
        id(client, "trace_id").to_string()
    );
    let traceparent = header(headers, "traceparent");
    assert!(
        traceparent.ends_with(&format!("{:016x}-01", id(client, "span_id"))),
        "{traceparent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reqwest_client_span_is_a_child_of_the_active_span_and_injects_its_context() {
    let traced = traced();
    let (base, seen) = downstream().await;
    let port = base.rsplit(':').next().unwrap().parse::<f64>().unwrap();
    let client = reqwest_client();
    let url = format!("{base}/status/200?token=secret");
    async {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200);
    }
    .in_span(tracer::start_span("checkout"))
    .await;
    let spans = support::agent::flatten(traced.collect(2));
    let parent = span_by_name(&spans, "checkout");
    let client_span = span_by_name(&spans, "http.request");
    assert_eq!(id(client_span, "parent_id"), id(parent, "span_id"));
    assert_eq!(client_span["type"], "http");
    assert_eq!(client_span["resource"], "GET");
    assert_eq!(client_span["error"], 0);
    assert_eq!(meta(client_span, "span.kind"), Some("client"));
    assert_eq!(meta(client_span, "component"), Some("reqwest"));
    assert_eq!(meta(client_span, "http.method"), Some("GET"));
    assert_eq!(
        meta(client_span, "http.url"),
        Some(format!("{base}/status/200").as_str())
    );
    assert_eq!(meta(client_span, "http.status_code"), Some("200"));
    assert_eq!(meta(client_span, "out.host"), Some("127.0.0.1"));
    assert_eq!(metric(client_span, "network.destination.port"), Some(port));
    assert_eq!(meta(client_span, "peer.service"), None, "only when set");
    assert_eq!(
        metric(client_span, "_dd.top_level"),
        None,
        "not a service entry"
    );
    assert_injected(&seen.lock().unwrap()[0], client_span);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_by_default_are_4xx_only() {
    let traced = traced();
    let (base, _) = downstream().await;
    let client = reqwest_client();
    client
        .get(format!("{base}/status/404"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/status/503"))
        .send()
        .await
        .unwrap();
    let spans = support::agent::flatten(traced.collect(2));
    let by_status = |code: &str| {
        spans
            .iter()
            .find(|s| meta(s, "http.status_code") == Some(code))
            .unwrap_or_else(|| panic!("a span with status {code}: {spans:?}"))
    };
    assert_eq!(by_status("404")["error"], 1);
    assert_eq!(
        meta(by_status("404"), "error.message"),
        Some("404: Not Found")
    );
    assert_eq!(by_status("503")["error"], 0, "the server's span says it");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_error_statuses_follow_the_configuration() {
    let traced = traced_with(|b| b.http_client_error_statuses(HttpStatuses::new([500..=599])));
    let (base, _) = downstream().await;
    let client = reqwest_client();
    client
        .get(format!("{base}/status/404"))
        .send()
        .await
        .unwrap();
    client
        .get(format!("{base}/status/503"))
        .send()
        .await
        .unwrap();
    for span in support::agent::flatten(traced.collect(2)) {
        let expected = i64::from(meta(&span, "http.status_code") == Some("503"));
        assert_eq!(span["error"], expected, "{span}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transport_error_marks_the_client_span() {
    let traced = traced();
    // A port nobody listens on any more.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/status/200", closed.local_addr().unwrap());
    drop(closed);
    assert!(reqwest_client().get(&url).send().await.is_err());
    let spans = support::agent::flatten(traced.collect(1));
    let client_span = span_by_name(&spans, "http.request");
    assert_eq!(client_span["error"], 1);
    assert_eq!(
        meta(client_span, "error.type"),
        Some("reqwest::error::Error")
    );
    assert!(meta(client_span, "error.message").is_some_and(|m| !m.is_empty()));
    assert!(
        meta(client_span, "error.stack").is_some(),
        "the causes: {client_span}"
    );
    assert_eq!(meta(client_span, "http.status_code"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hyper_util_client_through_the_tower_layer() {
    let traced = traced_with(|b| b.header_tag("x-request-id", Some("request.id")));
    let (base, seen) = downstream().await;
    let hyper = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<String>();
    let mut client = ClientLayer::new()
        .component("hyper")
        .peer_service("statuses")
        .layer(hyper);
    let request = http::Request::get(format!("{base}/status/201?page=2"))
        .header("x-request-id", "r-7")
        .body(String::new())
        .unwrap();
    let response = client.call(request).await.unwrap();
    assert_eq!(response.status(), 201);
    let spans = support::agent::flatten(traced.collect(1));
    let client_span = span_by_name(&spans, "http.request");
    assert_eq!(client_span["type"], "http");
    assert_eq!(meta(client_span, "span.kind"), Some("client"));
    assert_eq!(meta(client_span, "component"), Some("hyper"));
    assert_eq!(
        meta(client_span, "http.url"),
        Some(format!("{base}/status/201").as_str())
    );
    assert_eq!(meta(client_span, "http.status_code"), Some("201"));
    assert_eq!(meta(client_span, "peer.service"), Some("statuses"));
    assert_eq!(
        meta(client_span, "_dd.peer.service.source"),
        Some("peer.service")
    );
    assert_eq!(meta(client_span, "request.id"), Some("r-7"));
    assert_injected(&seen.lock().unwrap()[0], client_span);

    // A transport error through the layer.
    traced.agent.clear();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/", closed.local_addr().unwrap());
    drop(closed);
    let request = http::Request::get(url).body(String::new()).unwrap();
    assert!(client.call(request).await.is_err());
    let spans = support::agent::flatten(traced.collect(1));
    let failed = span_by_name(&spans, "http.request");
    assert_eq!(failed["error"], 1);
    assert_eq!(
        meta(failed, "error.type"),
        Some("hyper_util::client::legacy::client::Error")
    );
}
