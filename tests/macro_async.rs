//! Async code: `async fn`, functions returning a future, `#[async_trait]`.
//! The span times the future (not its creation or boxing), is active on
//! every poll on any worker thread, and finishes when the future completes
//! or is dropped.

mod support;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use ddspan::dd_span;
use serde_json::Value;
use support::agent::{flatten, span_by_name};
use support::session::traced;

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap()
}

fn duration(span: &Value) -> i64 {
    span["duration"].as_i64().unwrap()
}

#[dd_span]
fn child() {}

#[dd_span]
async fn slow(ms: u64) -> u64 {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    child();
    ms
}

#[dd_span(span.name = "returns.future")]
fn returns_future(ms: u64) -> impl Future<Output = u64> {
    async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        child();
        ms
    }
}

#[dd_span]
fn returns_boxed(ms: u64) -> Pin<Box<dyn Future<Output = u64> + Send>> {
    Box::pin(async move {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        ms
    })
}

#[async_trait::async_trait]
trait Repository {
    async fn find(&self, ms: u64) -> Result<u64, std::io::Error>;
}

struct Postgres;

#[async_trait::async_trait]
impl Repository for Postgres {
    #[dd_span(db.system = "postgresql")]
    async fn find(&self, ms: u64) -> Result<u64, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Err(std::io::Error::other("no rows"))
    }
}

struct Redis;

#[dd_span(db.system = "redis")]
#[async_trait::async_trait]
impl Repository for Redis {
    async fn find(&self, ms: u64) -> Result<u64, std::io::Error> {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Ok(ms)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    support::runtime::multi_thread()
}

#[test]
fn spans_time_the_future_and_parent_what_it_awaits() {
    let traced = traced();
    runtime().block_on(async {
        let root = ddspan::tracer::start_span("root");
        let work = async {
            assert_eq!(slow(30).await, 30);
            let pending = returns_future(30);
            tokio::time::sleep(Duration::from_millis(30)).await; // not part of its span
            assert_eq!(pending.await, 30);
            assert_eq!(returns_boxed(20).await, 20);
            assert!(Postgres.find(20).await.is_err());
            assert_eq!(Redis.find(20).await.unwrap(), 20);
        };
        ddspan::Instrument::in_span(work, root).await;
    });
    let spans = flatten(traced.collect(8));
    let root = span_by_name(&spans, "root");
    for name in ["slow", "returns.future", "returns_boxed", "find"] {
        let span = span_by_name(&spans, name);
        assert_eq!(
            id(span, "parent_id"),
            id(root, "span_id"),
            "{name} under root"
        );
        assert!(
            duration(span) >= 15_000_000,
            "{name} timed its future: {}",
            duration(span)
        );
    }
    let future = span_by_name(&spans, "returns.future");
    // A function returning a future starts its span when called (its parent is
    // the caller's span), so the wait before the first poll is part of it.
    assert!(
        duration(future) >= 55_000_000,
        "timed from the call: {}",
        duration(future)
    );
    for child in spans.iter().filter(|s| s["name"] == "child") {
        let parent = spans
            .iter()
            .find(|s| id(s, "span_id") == id(child, "parent_id"))
            .unwrap();
        assert!(
            parent["name"] == "slow" || parent["name"] == "returns.future",
            "{parent}"
        );
    }
    let finds: Vec<&Value> = spans.iter().filter(|s| s["name"] == "find").collect();
    assert_eq!(finds.len(), 2, "async-trait in both attribute orders");
    let postgres = finds
        .iter()
        .find(|s| s["meta"]["db.system"] == "postgresql")
        .unwrap();
    assert_eq!(postgres["error"], 1);
    assert_eq!(postgres["meta"]["error.message"], "no rows");
    let redis = finds
        .iter()
        .find(|s| s["meta"]["db.system"] == "redis")
        .unwrap();
    assert_eq!(redis["error"], 0);
    traced.agent.assert_no_check_failures();
}

#[test]
fn a_dropped_future_finishes_its_span() {
    let traced = traced();
    runtime().block_on(async {
        let outcome = tokio::time::timeout(Duration::from_millis(20), slow(5_000)).await;
        assert!(outcome.is_err(), "cancelled");
    });
    let spans = flatten(traced.collect(1));
    let slow = span_by_name(&spans, "slow");
    assert!(duration(slow) >= 15_000_000 && duration(slow) < 2_000_000_000);
}

static DROPS: std::sync::Mutex<Vec<&'static str>> = std::sync::Mutex::new(Vec::new());

struct Noisy(&'static str);

impl Noisy {
    fn len(&self) -> usize {
        self.0.len()
    }
}

impl Drop for Noisy {
    fn drop(&mut self) {
        DROPS.lock().unwrap().push(self.0);
    }
}

async fn drops_plain(first: Noisy, _unused: Noisy) -> usize {
    let local = Noisy("local");
    tokio::task::yield_now().await;
    first.len() + local.len() + Noisy("tail").len()
}

#[dd_span]
async fn drops_instrumented(first: Noisy, _unused: Noisy) -> usize {
    let local = Noisy("local");
    tokio::task::yield_now().await;
    first.len() + local.len() + Noisy("tail").len()
}

/// The body of an instrumented `async fn` drops its locals, its tail's
/// temporaries and its arguments in the order the plain function does
/// (the rewrite into a `fn` returning a future keeps the user's edition
/// for the body, and moves every argument into the future).
#[test]
fn an_async_fn_drops_as_without_the_macro() {
    let runtime = runtime();
    let mut orders = Vec::new();
    for instrumented in [false, true] {
        DROPS.lock().unwrap().clear();
        let (first, unused) = (Noisy("first"), Noisy("unused"));
        let length = if instrumented {
            runtime.block_on(drops_instrumented(first, unused))
        } else {
            runtime.block_on(drops_plain(first, unused))
        };
        assert_eq!(length, 14);
        orders.push(DROPS.lock().unwrap().clone());
    }
    assert_eq!(orders[0], orders[1], "plain, then instrumented");
}

/// Arguments as an `async fn` takes them: patterns, `mut`, `_`, raw names,
/// references with elided lifetimes, and a `Send` but not `Sync` value held
/// across an `.await` (the future stays `Send`).
#[dd_span(first = a)]
async fn argument_shapes(
    (a, mut b): (u8, u8),
    _: Noisy,
    mut list: Vec<u8>,
    r#type: &str,
    cell: std::cell::Cell<u8>,
) -> usize {
    b += 1;
    list.push(b);
    tokio::task::yield_now().await;
    cell.set(cell.get() + a);
    list.len() + r#type.len() + usize::from(cell.get())
}

struct Repo {
    name: String,
}

impl Repo {
    #[dd_span]
    async fn name_of(&self, prefix: &str) -> String {
        tokio::task::yield_now().await;
        format!("{prefix}{}", self.name)
    }
}

#[test]
fn async_fn_arguments_keep_their_meaning() {
    let runtime = runtime();
    DROPS.lock().unwrap().clear();
    let future = argument_shapes(
        (1, 2),
        Noisy("wildcard"),
        vec![0],
        "ab",
        std::cell::Cell::new(3),
    );
    assert!(
        DROPS.lock().unwrap().is_empty(),
        "a `_` argument lives in the future, as in an `async fn`"
    );
    let joined = runtime.spawn(future); // `Send` though `Cell` is not `Sync`
    assert_eq!(runtime.block_on(joined).unwrap(), 2 + 2 + 4);
    assert_eq!(*DROPS.lock().unwrap(), ["wildcard"]);
    let repo = Repo {
        name: "ddspan".into(),
    };
    let prefix = String::from("repo:");
    assert_eq!(runtime.block_on(repo.name_of(&prefix)), "repo:ddspan");
}
