//! `impl Trait` nested anywhere in a return type (`Result<(impl Display,
//! u8), E>`), which a `let` cannot name: such functions compile, return
//! what they return without the macro, and an `Err` marks the span.
//! (The expansion looked only at the type's top-level tokens and wrote a
//! `let` of the type, which did not compile.)

use std::fmt::{Debug, Display};
use std::future::Future;
use std::num::ParseIntError;
use std::pin::pin;
use std::sync::MutexGuard;
use std::task::{Context, Poll, Waker};

use ddspan::{dd_span, FinishedSpan, MemoryExporter};

#[path = "support/memory.rs"]
mod memory;

fn capture() -> (MutexGuard<'static, ()>, MemoryExporter) {
    memory::capture("impl-trait")
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(value) = future.as_mut().poll(&mut context) {
            return value;
        }
    }
}

#[derive(Debug, PartialEq)]
struct Refused;

impl From<ParseIntError> for Refused {
    fn from(_: ParseIntError) -> Self {
        Refused
    }
}

#[dd_span]
fn in_a_tuple(text: &str) -> Result<(impl Display, u8), Refused> {
    if text.is_empty() {
        return Err(Refused);
    }
    let value: u8 = text.parse()?;
    Ok((format!("<{value}>"), value))
}

#[dd_span]
fn in_an_array(text: &str) -> Result<[impl Display; 2], Refused> {
    let value: u8 = text.parse()?;
    Ok([value, value + 1])
}

#[dd_span]
fn behind_a_reference(known: bool) -> Result<&'static (impl Display + ?Sized), Refused> {
    if known {
        Ok("known")
    } else {
        Err(Refused)
    }
}

#[dd_span]
fn in_an_option(value: u8) -> Option<Box<(u8, impl Debug)>> {
    (value > 0).then(|| Box::new((value, [value])))
}

#[dd_span]
async fn async_in_a_tuple(text: &str) -> Result<(impl Display, u8), Refused> {
    let value: u8 = text.parse()?;
    Ok((value * 2, value))
}

#[dd_span]
async fn async_tuple(value: u8) -> (impl Display, u8) {
    (value, value)
}

struct Parser;

#[dd_span(component = "parser")]
impl Parser {
    fn method(&self, text: &str) -> Result<(u8, impl Display), Refused> {
        let value: u8 = text.parse()?;
        Ok((value, value))
    }
}

fn shown<D: Display>(value: Result<(D, u8), Refused>) -> Result<(String, u8), Refused> {
    value.map(|(a, b)| (a.to_string(), b))
}

/// The error flags of the spans named `name`, in order.
fn errors(spans: &[FinishedSpan], name: &str) -> Vec<bool> {
    spans
        .iter()
        .filter(|s| s.name == name)
        .map(|s| s.error)
        .collect()
}

#[test]
fn nested_impl_trait_returns_compile_and_record_errors() {
    let (_guard, spans) = capture();
    assert_eq!(shown(in_a_tuple("7")), Ok(("<7>".to_owned(), 7)));
    assert_eq!(shown(in_a_tuple("")), Err(Refused));
    assert_eq!(shown(in_a_tuple("x")), Err(Refused));
    let array = in_an_array("1").map(|a| a.map(|v| v.to_string()));
    assert_eq!(array, Ok(["1".to_owned(), "2".to_owned()]));
    assert!(in_an_array("x").is_err());
    assert_eq!(
        behind_a_reference(true).map(ToString::to_string),
        Ok("known".to_owned())
    );
    assert!(behind_a_reference(false).is_err());
    assert_eq!(format!("{:?}", in_an_option(3)), "Some((3, [3]))");
    assert!(in_an_option(0).is_none());
    assert_eq!(
        shown(block_on(async_in_a_tuple("4"))),
        Ok(("8".to_owned(), 4))
    );
    assert_eq!(shown(block_on(async_in_a_tuple("x"))), Err(Refused));
    let (a, b) = block_on(async_tuple(5));
    assert_eq!((a.to_string(), b), ("5".to_owned(), 5));
    let method = Parser.method("9").map(|(a, b)| (a, b.to_string()));
    assert_eq!(method, Ok((9, "9".to_owned())));
    assert!(Parser.method("x").is_err());
    let spans = spans.take();

    assert_eq!(errors(&spans, "in_a_tuple"), [false, true, true]);
    assert_eq!(errors(&spans, "in_an_array"), [false, true]);
    assert_eq!(errors(&spans, "behind_a_reference"), [false, true]);
    assert_eq!(errors(&spans, "in_an_option"), [false, false]);
    assert_eq!(errors(&spans, "async_in_a_tuple"), [false, true]);
    assert_eq!(errors(&spans, "async_tuple"), [false]);
    assert_eq!(errors(&spans, "method"), [false, true]);
    let refused = spans
        .iter()
        .find(|s| s.name == "in_a_tuple" && s.error)
        .unwrap();
    assert_eq!(
        refused.meta.get("error.type").map(String::as_str),
        Some(std::any::type_name::<Refused>())
    );
    assert!(spans
        .iter()
        .filter(|s| s.name == "method")
        .all(|s| s.meta["component"] == "parser"));
}
