//! A returned `Err` marks the span, whatever the error type and however
//! the `Result` is spelled; panics mark it too and keep unwinding.

mod support;

use ddspan::dd_span;
use serde_json::Value;
use support::agent::{flatten, meta};
use support::session::traced;

#[derive(Debug, thiserror::Error)]
enum CheckoutError {
    #[error("payment declined")]
    Declined(#[source] std::io::Error),
}

#[dd_span]
fn thiserror_enum() -> Result<(), CheckoutError> {
    Err(CheckoutError::Declined(std::io::Error::other(
        "card expired",
    )))
}

#[dd_span]
fn anyhow_error() -> anyhow::Result<u8> {
    let inner: Result<u8, std::io::Error> = Err(std::io::Error::other("socket closed"));
    let value = anyhow::Context::context(inner, "fetching the price")?;
    Ok(value)
}

#[dd_span]
fn boxed_error() -> Result<u8, Box<dyn std::error::Error + Send + Sync>> {
    Err("bad header".into())
}

#[derive(Debug)]
#[allow(dead_code)] // read through Debug
struct OnlyDebug(u8);

#[dd_span]
fn debug_only() -> Result<(), OnlyDebug> {
    Err(OnlyDebug(7))
}

#[dd_span]
fn succeeds() -> Result<Vec<u8>, std::io::Error> {
    Ok(vec![1, 2, 3])
}

#[dd_span]
fn panics(message: &str) -> u8 {
    if !message.is_empty() {
        panic!("{message}");
    }
    1
}

fn by_name<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    support::agent::span_by_name(spans, name)
}

#[test]
fn every_error_type_marks_its_span() {
    let traced = traced();
    assert!(matches!(thiserror_enum(), Err(CheckoutError::Declined(_))));
    let error = anyhow_error().unwrap_err();
    assert_eq!(
        error.to_string(),
        "fetching the price",
        "returned unchanged"
    );
    assert_eq!(boxed_error().unwrap_err().to_string(), "bad header");
    assert!(debug_only().is_err());
    assert_eq!(succeeds().unwrap(), vec![1, 2, 3]);
    let spans = flatten(traced.collect(5));

    let thiserror = by_name(&spans, "thiserror_enum");
    assert_eq!(thiserror["error"], 1);
    assert_eq!(meta(thiserror, "error.message"), Some("payment declined"));
    assert!(meta(thiserror, "error.type")
        .unwrap()
        .ends_with("CheckoutError"));
    assert_eq!(
        meta(thiserror, "error.stack"),
        Some("caused by: card expired\n")
    );

    let anyhow = by_name(&spans, "anyhow_error");
    assert_eq!(anyhow["error"], 1);
    assert_eq!(meta(anyhow, "error.message"), Some("fetching the price"));
    assert_eq!(meta(anyhow, "error.type"), Some("anyhow::Error"));
    assert!(
        meta(anyhow, "error.stack")
            .unwrap()
            .contains("socket closed"),
        "the chain"
    );

    let boxed = by_name(&spans, "boxed_error");
    assert_eq!(meta(boxed, "error.message"), Some("bad header"));
    assert!(meta(boxed, "error.type")
        .unwrap()
        .starts_with("alloc::boxed::Box<dyn core::error::Error"));

    let debug = by_name(&spans, "debug_only");
    assert_eq!(meta(debug, "error.message"), Some("OnlyDebug(7)"));

    let ok = by_name(&spans, "succeeds");
    assert_eq!(ok["error"], 0);
    assert_eq!(meta(ok, "error.message"), None);
    traced.agent.assert_no_check_failures();
}

#[test]
fn a_panic_marks_the_span_and_keeps_unwinding() {
    let traced = traced();
    let outcome = std::panic::catch_unwind(|| {
        let _root = ddspan::tracer::trace("request");
        panics("the cache is poisoned")
    });
    assert!(outcome.is_err(), "the panic reached the caller");
    assert_eq!(panics(""), 1, "the tracer still works after a panic");
    let spans = flatten(traced.collect(3));
    let panicked: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "panics" && s["error"] == 1)
        .collect();
    assert_eq!(panicked.len(), 1);
    assert_eq!(meta(panicked[0], "error.type"), Some("panic"));
    assert_eq!(
        meta(panicked[0], "error.message"),
        Some("the cache is poisoned")
    );
    let request = by_name(&spans, "request");
    assert_eq!(request["error"], 1, "every span the panic unwound through");
    traced.agent.assert_no_check_failures();
}
