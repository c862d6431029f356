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

// `?` and `return` in every shape the expansion handles: as tokens, parsed
// (a closure or macro in the body), or caught by a closure (a macro that may
// hide a `return`, an alias not spelled `Result`).

#[derive(Debug, PartialEq)]
struct AppError(String);

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "app: {}", self.0)
    }
}

impl std::error::Error for AppError {}

impl From<std::num::ParseIntError> for AppError {
    fn from(error: std::num::ParseIntError) -> Self {
        AppError(error.to_string())
    }
}

/// Neither `Clone` nor `Copy`: an `Ok` is moved out, never copied.
#[derive(Debug, PartialEq)]
struct Token(String);

struct Store(Vec<String>);

impl Store {
    fn get(&self, i: usize) -> Result<&String, AppError> {
        self.0
            .get(i)
            .ok_or_else(|| AppError(format!("no item {i}")))
    }

    /// `?` converts with `From`; a chain after `?` at a statement's start.
    #[dd_span]
    fn converted(&self, i: usize) -> Result<u32, AppError> {
        let mut scratch = String::new();
        self.get(i)?.clone_into(&mut scratch);
        let value = self.get(i)?.trim().parse::<u32>()?;
        if value == 0 {
            return Err(AppError("zero".to_owned()));
        }
        Ok(value)
    }

    /// `&mut self` reborrowed into the `Ok`.
    #[dd_span]
    fn first_mut(&mut self) -> Result<&mut String, AppError> {
        let _: u8 = "1".parse()?;
        self.0
            .first_mut()
            .ok_or_else(|| AppError("empty".to_owned()))
    }
}

#[dd_span]
fn moved(text: &str) -> Result<Token, AppError> {
    let count: usize = text.parse()?;
    Ok(Token("x".repeat(count)))
}

/// A closure's `?` is the closure's own, and a macro in the body.
#[dd_span]
fn with_closure(items: &[&str]) -> Result<Vec<u8>, AppError> {
    let parse = |s: &str| -> Result<u8, AppError> { Ok(s.parse::<u8>()?) };
    let values = items
        .iter()
        .map(|s| parse(s))
        .collect::<Result<Vec<_>, _>>()?;
    assert!(values.len() <= items.len(), "{values:?}");
    Ok(values)
}

/// `bail!` hides a `return` from the macro.
#[dd_span]
fn bails(fail: bool) -> anyhow::Result<u8> {
    if fail {
        anyhow::bail!("bailed out");
    }
    Ok(1)
}

type Parsed<T> = Result<T, AppError>;

/// An alias not spelled `Result`: its `?` is left to a closure.
#[dd_span]
fn aliased(text: &str) -> Parsed<u8> {
    let value: u8 = text.parse()?;
    Ok(value)
}

type Maybe<T> = Option<T>;

/// An alias of `Option` with `?` compiles and records nothing.
#[dd_span]
fn maybe(values: &[u8]) -> Maybe<u8> {
    let first = values.first()?;
    Some(*first + 1)
}

#[test]
fn question_marks_and_returns_keep_their_meaning() {
    let traced = traced();
    let mut store = Store(vec!["7".to_owned(), " 0 ".to_owned(), "x".to_owned()]);
    assert_eq!(store.converted(0), Ok(7));
    assert_eq!(store.converted(1), Err(AppError("zero".to_owned())));
    assert_eq!(store.converted(5), Err(AppError("no item 5".to_owned())));
    assert_eq!(
        store.converted(2),
        Err(AppError("invalid digit found in string".to_owned())),
        "converted by From"
    );
    store.first_mut().unwrap().push('7');
    assert_eq!(store.0[0], "77");
    assert_eq!(moved("3"), Ok(Token("xxx".to_owned())));
    assert_eq!(with_closure(&["1", "2"]), Ok(vec![1, 2]));
    assert!(with_closure(&["1", "y"]).is_err());
    assert_eq!(bails(true).unwrap_err().to_string(), "bailed out");
    assert_eq!(
        aliased("300"),
        Err(AppError(
            "number too large to fit in target type".to_owned()
        ))
    );
    assert_eq!(maybe(&[]), None);
    assert_eq!(maybe(&[1]), Some(2));
    let spans = flatten(traced.collect(12));

    let converted: Vec<&Value> = spans.iter().filter(|s| s["name"] == "converted").collect();
    assert_eq!(converted.len(), 4);
    let messages: Vec<Option<&str>> = converted.iter().map(|s| meta(s, "error.message")).collect();
    for expected in [
        None,
        Some("app: zero"),
        Some("app: no item 5"),
        Some("app: invalid digit found in string"),
    ] {
        assert!(
            messages.contains(&expected),
            "{messages:?} lacks {expected:?}"
        );
    }
    for span in &converted {
        if span["error"] == 1 {
            assert!(
                meta(span, "error.type").unwrap().ends_with("AppError"),
                "the converted type"
            );
        }
    }
    assert_eq!(by_name(&spans, "first_mut")["error"], 0);
    assert_eq!(by_name(&spans, "moved")["error"], 0);
    let closures: Vec<&Value> = spans
        .iter()
        .filter(|s| s["name"] == "with_closure")
        .collect();
    assert_eq!(closures.iter().filter(|s| s["error"] == 1).count(), 1);
    let bailed = by_name(&spans, "bails");
    assert_eq!(bailed["error"], 1, "a return hidden in a macro is caught");
    assert_eq!(meta(bailed, "error.message"), Some("bailed out"));
    let alias = by_name(&spans, "aliased");
    assert_eq!(
        meta(alias, "error.message"),
        Some("app: number too large to fit in target type")
    );
    assert!(spans
        .iter()
        .filter(|s| s["name"] == "maybe")
        .all(|s| s["error"] == 0));
    traced.agent.assert_no_check_failures();
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
