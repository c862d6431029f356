//! `#[dd_span]` on every kind of function: names, tags, parents, errors.

mod support;

use ddspan::{dd_ignore, dd_span};
use serde_json::Value;
use support::agent::{flatten, meta, metric, span_by_name};
use support::session::traced;

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap()
}

fn assert_child_of(spans: &[Value], child: &str, parent: &str) {
    let (child, parent) = (span_by_name(spans, child), span_by_name(spans, parent));
    assert_eq!(
        id(child, "parent_id"),
        id(parent, "span_id"),
        "{child} under {parent}"
    );
}

#[dd_span(component = "billing", retries = 3, span.type = "custom")]
fn charge(amount: u64) -> u64 {
    validate(amount);
    amount * 2
}

#[dd_span]
fn validate(amount: u64) {
    assert!(amount > 0);
}

#[dd_span(span.name = "db.query", resource.name = "SELECT 1", service.name = "postgres")]
fn query() -> u8 {
    1
}

#[derive(Debug)]
struct Account {
    balance: u64,
}

#[dd_span(team = "payments")]
impl Account {
    fn deposit(&mut self, amount: u64) -> &mut u64 {
        self.balance += amount;
        &mut self.balance
    }

    #[dd_span(span.name = "account.read", team = "ledger")]
    fn balance(&self) -> &u64 {
        &self.balance
    }

    #[dd_ignore]
    fn untraced(&self) -> u64 {
        self.balance
    }

    #[allow(clippy::boxed_local)] // the receiver kind is what is tested
    fn consume(self: Box<Self>) -> u64 {
        self.balance
    }
}

#[test]
fn names_tags_and_parents() {
    let traced = traced();
    {
        let _root = ddspan::tracer::trace("root");
        assert_eq!(charge(21), 42);
        assert_eq!(query(), 1);
        let mut account = Account { balance: 1 };
        *account.deposit(2) += 1;
        assert_eq!(*account.balance(), 4);
        assert_eq!(account.untraced(), 4);
        assert_eq!(Box::new(account).consume(), 4);
    }
    let spans = flatten(traced.collect(7));
    assert_eq!(spans.len(), 7, "{spans:#?}");
    assert_child_of(&spans, "charge", "root");
    assert_child_of(&spans, "validate", "charge");
    assert_child_of(&spans, "db.query", "root");
    let charge = span_by_name(&spans, "charge");
    assert_eq!(meta(charge, "component"), Some("billing"));
    assert_eq!(metric(charge, "retries"), Some(3.0));
    assert_eq!(meta(charge, "function-name"), Some("charge"));
    assert_eq!(charge["type"], "custom");
    let query = span_by_name(&spans, "db.query");
    assert_eq!(query["resource"], "SELECT 1");
    assert_eq!(query["service"], "postgres");
    assert_eq!(meta(query, "function-name"), Some("query"));
    assert_eq!(
        metric(query, "_dd.top_level"),
        Some(1.0),
        "a new service is a service entry"
    );
    let deposit = span_by_name(&spans, "deposit");
    assert_eq!(meta(deposit, "team"), Some("payments"));
    let read = span_by_name(&spans, "account.read");
    assert_eq!(meta(read, "team"), Some("ledger"));
    assert_eq!(meta(read, "function-name"), Some("balance"));
    span_by_name(&spans, "consume");
    assert!(spans.iter().all(|s| s["name"] != "untraced"));
    traced.agent.assert_no_check_failures();
}

#[derive(Debug)]
struct Failure;
impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the card was declined")
    }
}
impl std::error::Error for Failure {}

type Outcome<T> = Result<T, Failure>;

#[dd_span]
fn decline(fail: bool) -> Outcome<u8> {
    if fail {
        return Err(Failure);
    }
    Ok(1)
}

#[dd_span]
fn propagate() -> std::io::Result<u8> {
    let value = std::fs::read("/definitely/not/here")?;
    Ok(value.len() as u8)
}

#[test]
fn errors_mark_the_span_and_are_returned_unchanged() {
    let traced = traced();
    assert!(decline(true).is_err());
    assert!(decline(false).is_ok());
    assert!(propagate().is_err());
    let spans = flatten(traced.collect(3));
    let failed: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "decline" && s["error"] == 1)
        .collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(
        meta(failed[0], "error.message"),
        Some("the card was declined")
    );
    assert!(meta(failed[0], "error.type").unwrap().ends_with("Failure"));
    let io = span_by_name(&spans, "propagate");
    assert_eq!(io["error"], 1);
    assert_eq!(meta(io, "error.type"), Some("std::io::error::Error"));
    traced.agent.assert_no_check_failures();
}

#[dd_span]
async fn fetch(n: u32) -> Result<u32, String> {
    tokio::task::yield_now().await;
    inner_sync();
    if n == 0 {
        Err("zero".to_owned())?;
    }
    Ok(n)
}

#[dd_span]
fn inner_sync() {}

#[test]
fn async_functions_time_their_future_across_threads() {
    let traced = traced();
    let runtime = support::runtime::multi_thread();
    runtime.block_on(async {
        let _root = ddspan::tracer::start_span("root");
        let handle = tokio::spawn(fetch(3));
        assert_eq!(handle.await.unwrap(), Ok(3));
        assert_eq!(fetch(0).await, Err("zero".to_owned()));
    });
    let spans = flatten(traced.collect(4));
    let fetches: Vec<&Value> = spans.iter().filter(|s| s["name"] == "fetch").collect();
    assert_eq!(fetches.len(), 2);
    for fetch in &fetches {
        let inner = spans
            .iter()
            .find(|s| s["name"] == "inner_sync" && id(s, "parent_id") == id(fetch, "span_id"));
        assert!(inner.is_some(), "inner_sync under each fetch");
    }
    let failed = fetches
        .iter()
        .find(|s| s["error"] == 1)
        .expect("the failing fetch");
    assert_eq!(meta(failed, "error.message"), Some("zero"));
    assert_eq!(meta(failed, "error.type"), Some("alloc::string::String"));
}

#[test]
fn closures_inside_instrumented_functions() {
    #[dd_span]
    fn pipeline(items: &[u32]) -> u32 {
        let double = #[dd_span(step = "double")]
        |x: &u32| x * 2;
        #[dd_span(span.name = "sum")]
        let sum = |values: Vec<u32>| -> Result<u32, std::num::TryFromIntError> {
            Ok(values.iter().sum())
        };
        let plain = |x: u32| x + 1;
        let doubled: Vec<u32> = items.iter().map(double).collect();
        plain(sum(doubled).unwrap())
            + items
                .iter()
                .map(
                    #[dd_span]
                    |x| x + 1,
                )
                .sum::<u32>()
    }
    let traced = traced();
    assert_eq!(pipeline(&[1, 2]), 6 + 1 + 5);
    let spans = flatten(traced.collect(1 + 2 + 1 + 2));
    assert_eq!(
        spans.iter().filter(|s| s["name"] == "double").count(),
        2,
        "named by the first tag's value"
    );
    assert_child_of(&spans, "sum", "pipeline");
    assert_eq!(
        spans
            .iter()
            .filter(|s| s["name"] == "pipeline.closure")
            .count(),
        2
    );
}
