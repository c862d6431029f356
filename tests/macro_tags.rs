//! Tags of `#[dd_span(...)]` beyond literals: expressions over the
//! arguments (`key = id`, `key = %name`, `key = ?request`), `span.kind`,
//! `http.status_code` as a string, and errors that are not errors
//! (`error = false`, [`ddspan::ExpectedError`]).

mod support;

use std::fmt;

use ddspan::{dd_closure, dd_span, ExpectedError};
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced;

struct Tenant(&'static str);

impl fmt::Display for Tenant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "tenant-{}", self.0)
    }
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct Request {
    path: &'static str,
}

#[dd_span(user.id = id, tenant = %tenant, req = ?request, name.len = name.len(), user.name = name, vip = id > 100, team = "billing", note = None::<u8>)]
fn handle(id: u64, name: &str, tenant: Tenant, request: Request, secret: &str) -> usize {
    name.len() + secret.len() + tenant.0.len() + request.path.len()
}

#[dd_span(order.id = order, shard = %order % 4)]
async fn handle_async(order: u64) -> u64 {
    order * 2
}

#[dd_span(order.id = order)]
fn returns_future(order: u64) -> impl std::future::Future<Output = u64> {
    async move { order + 1 }
}

struct Service {
    region: String,
}

impl Service {
    #[dd_span(region = self.region.as_str(), attempt = attempt)]
    fn call(&self, attempt: u32) -> u32 {
        attempt
    }
}

#[test]
fn expressions_over_arguments_become_tags_at_span_start() {
    let traced = traced();
    let request = Request { path: "/cart" };
    assert_eq!(handle(7, "ann", Tenant("acme"), request, "hunter2"), 19);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(handle_async(42)), 84);
    assert_eq!(runtime.block_on(returns_future(1)), 2);
    let service = Service {
        region: "eu-west-1".into(),
    };
    assert_eq!(service.call(3), 3);
    let double = dd_closure!(input = x; |x: u32| x * 2);
    assert_eq!(double(21), 42);

    let spans = flatten(traced.collect(5));
    let handle = span_by_name(&spans, "handle");
    assert_eq!(metric(handle, "user.id"), Some(7.0));
    assert_eq!(meta(handle, "tenant"), Some("tenant-acme"));
    assert_eq!(meta(handle, "req"), Some("Request { path: \"/cart\" }"));
    assert_eq!(metric(handle, "name.len"), Some(3.0));
    assert_eq!(meta(handle, "user.name"), Some("ann"));
    assert_eq!(metric(handle, "vip"), Some(0.0));
    assert_eq!(meta(handle, "team"), Some("billing"));
    assert_eq!(handle["meta"].get("note"), None, "None records no tag");
    let all = handle.to_string();
    assert!(
        !all.contains("hunter2"),
        "an argument not named is never recorded: {all}"
    );

    let future = span_by_name(&spans, "handle_async");
    assert_eq!(metric(future, "order.id"), Some(42.0));
    assert_eq!(meta(future, "shard"), Some("2"));
    let future = span_by_name(&spans, "returns_future");
    assert_eq!(metric(future, "order.id"), Some(1.0));
    let call = span_by_name(&spans, "call");
    assert_eq!(meta(call, "region"), Some("eu-west-1"));
    assert_eq!(metric(call, "attempt"), Some(3.0));
    let closure = span_by_name(&spans, "closure");
    assert_eq!(metric(closure, "input"), Some(21.0));
    traced.agent.assert_no_check_failures();
}

#[dd_span(span.kind = "server", http.status_code = 200)]
fn serve() {}

#[dd_span(span.kind = "consumer")]
async fn consume() {}

#[test]
fn span_kind_and_status_code_land_in_meta_as_datadog_tracers_send_them() {
    let traced = traced();
    serve();
    futures_block_on(consume());
    {
        let manual = ddspan::tracer::span("manual")
            .kind(ddspan::SpanKind::Client)
            .tag("http.status_code", 404)
            .start();
        manual.set_tag("out.port", 8126);
        let _entered = manual.enter();
        let current = ddspan::tracer::current_span().unwrap();
        current.set_tag("http.status_code", 503);
    }
    let spans = flatten(traced.collect(3));
    let serve = span_by_name(&spans, "serve");
    assert_eq!(meta(serve, "span.kind"), Some("server"));
    assert_eq!(meta(serve, "http.status_code"), Some("200"));
    assert_eq!(metric(serve, "http.status_code"), None);
    assert_eq!(
        meta(span_by_name(&spans, "consume"), "span.kind"),
        Some("consumer")
    );
    let manual = span_by_name(&spans, "manual");
    assert_eq!(meta(manual, "span.kind"), Some("client"));
    assert_eq!(meta(manual, "http.status_code"), Some("503"));
    assert_eq!(metric(manual, "http.status_code"), None);
    assert_eq!(
        metric(manual, "out.port"),
        Some(8126.0),
        "other numbers stay numbers"
    );
    traced.agent.assert_no_check_failures();
}

fn futures_block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(future)
}

#[derive(Debug)]
enum ApiError {
    NotFound,
    Database,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiError::NotFound => f.write_str("not found"),
            ApiError::Database => f.write_str("database down"),
        }
    }
}

impl std::error::Error for ApiError {}

impl ExpectedError for ApiError {
    fn is_expected(&self) -> bool {
        matches!(self, ApiError::NotFound)
    }
}

#[dd_span]
fn find(found: bool) -> Result<u8, ApiError> {
    if found {
        Err(ApiError::Database)
    } else {
        Err(ApiError::NotFound)
    }
}

#[dd_span]
async fn find_async() -> Result<u8, ApiError> {
    Err(ApiError::NotFound)
}

#[dd_span(error = false)]
fn lookup() -> Result<u8, std::io::Error> {
    Err(std::io::Error::other("cache miss"))
}

#[dd_span(error = false)]
async fn lookup_async() -> Result<u8, std::io::Error> {
    Err(std::io::Error::other("cache miss"))
}

#[dd_span(error = false)]
fn lookup_panics() -> Result<u8, std::io::Error> {
    panic!("still an error")
}

fn error_of(span: &Value) -> i64 {
    span["error"].as_i64().unwrap()
}

/// Before: every `Err` marked its span (a 404's `NotFound` marked the
/// handler span); now an expected error, or any error under `error =
/// false`, leaves it unmarked, and other errors and panics still mark it.
#[test]
fn expected_errors_do_not_mark_the_span() {
    let traced = traced();
    assert!(find(false).is_err());
    assert!(find(true).is_err());
    assert!(futures_block_on(find_async()).is_err());
    assert!(lookup().is_err());
    assert!(futures_block_on(lookup_async()).is_err());
    assert!(std::panic::catch_unwind(lookup_panics).is_err());
    let spans = flatten(traced.collect(6));
    let finds: Vec<&Value> = spans.iter().filter(|s| s["name"] == "find").collect();
    let not_found = finds
        .iter()
        .find(|s| meta(s, "error.message").is_none())
        .unwrap();
    assert_eq!(error_of(not_found), 0, "{not_found}");
    let broken = finds
        .iter()
        .find(|s| meta(s, "error.message").is_some())
        .unwrap();
    assert_eq!(error_of(broken), 1);
    assert_eq!(meta(broken, "error.message"), Some("database down"));
    assert_eq!(error_of(span_by_name(&spans, "find_async")), 0);
    for name in ["lookup", "lookup_async"] {
        let span = span_by_name(&spans, name);
        assert_eq!(error_of(span), 0, "{span}");
        assert_eq!(meta(span, "error.message"), None);
    }
    let panicked = span_by_name(&spans, "lookup_panics");
    assert_eq!(error_of(panicked), 1, "a panic is still an error");
    traced.agent.assert_no_check_failures();
}
