//! Closures: annotated inside instrumented items (any expression position,
//! `let`, `move`, returned, async), or anywhere with `dd_closure!`.

mod support;

use std::future::Future;

use ddspan::{dd_closure, dd_span};
use serde_json::Value;
use support::agent::{flatten, meta, span_by_name};
use support::session::traced;

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap()
}

fn count(spans: &[Value], name: &str) -> usize {
    spans.iter().filter(|s| s["name"] == name).count()
}

#[dd_span]
fn make_adder(base: u32) -> impl Fn(u32) -> u32 {
    #[dd_span(span.name = "adder")]
    move |x| x + base
}

#[dd_span]
fn positions(words: &[&str]) -> Vec<usize> {
    words
        .iter()
        .map(
            #[dd_span(operation = "measure")]
            |w| w.len(),
        )
        .filter(|n| *n > 1) // not annotated: no span
        .collect()
}

#[dd_span]
fn fallible_closure(input: &str) -> usize {
    let parse = #[dd_span(span.name = "parse")]
    |s: &str| -> Result<usize, std::num::ParseIntError> { s.parse() };
    let skipped = #[ddspan::dd_ignore]
    |s: &str| s.len();
    parse(input).unwrap_or(0) + skipped(input)
}

#[dd_span]
fn async_closures() -> impl Future<Output = u32> {
    let later = #[dd_span(span.name = "later")]
    |x: u32| async move { x * 2 };
    let with_async_keyword = #[dd_span(span.name = "async.closure")]
    async move |x: u32| x + 1;
    async move { later(1).await + with_async_keyword(1).await }
}

#[test]
fn annotated_closures_get_spans_under_their_caller() {
    let traced = traced();
    let add = make_adder(10);
    {
        let _root = ddspan::tracer::trace("root");
        assert_eq!(add(1), 11);
        assert_eq!(positions(&["a", "bb", "ccc"]), vec![2, 3]);
        assert_eq!(fallible_closure("12"), 14);
        assert_eq!(fallible_closure("x"), 1);
    }
    let spans = flatten(traced.collect(1 + 1 + 1 + 1 + 3 + 2 + 2));
    let root = span_by_name(&spans, "root");
    let adder = span_by_name(&spans, "adder");
    assert_eq!(
        id(adder, "parent_id"),
        id(root, "span_id"),
        "a returned closure parents on its caller"
    );
    assert_eq!(
        count(&spans, "measure"),
        3,
        "named by the first tag's value"
    );
    let positions = span_by_name(&spans, "positions");
    for measure in spans.iter().filter(|s| s["name"] == "measure") {
        assert_eq!(id(measure, "parent_id"), id(positions, "span_id"));
        assert_eq!(meta(measure, "operation"), Some("measure"));
    }
    assert_eq!(count(&spans, "positions.closure"), 0);
    let parses: Vec<&Value> = spans.iter().filter(|s| s["name"] == "parse").collect();
    assert_eq!(parses.len(), 2);
    assert_eq!(
        parses.iter().filter(|s| s["error"] == 1).count(),
        1,
        "an annotated Result closure records Err"
    );
    assert_eq!(
        count(&spans, "fallible_closure.closure"),
        0,
        "dd_ignore: no span"
    );
    traced.agent.assert_no_check_failures();
}

#[test]
fn async_closures_time_their_future() {
    let traced = traced();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    assert_eq!(runtime.block_on(async_closures()), 4);
    let spans = flatten(traced.collect(3));
    let parent = span_by_name(&spans, "async_closures");
    for name in ["later", "async.closure"] {
        assert_eq!(
            id(span_by_name(&spans, name), "parent_id"),
            id(parent, "span_id"),
            "{name}"
        );
    }
}

#[test]
fn dd_closure_works_anywhere() {
    let traced = traced();
    let square = dd_closure!(span.name = "square", unit = "px"; |x: u32| x * x);
    let unnamed = dd_closure!(|x: u32| x + 1);
    assert_eq!(square(3) + unnamed(1), 11);
    let spans = flatten(traced.collect(2));
    assert_eq!(meta(span_by_name(&spans, "square"), "unit"), Some("px"));
    span_by_name(&spans, "closure");
}
