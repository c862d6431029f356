//! `crate = path` for a crate that renamed ddspan: every generated path goes
//! through it. `::ddspan` is made to name another crate here, so a path
//! that did not would fail to compile.
#![deny(unused_qualifications, clippy::all)]

extern crate core as ddspan;
extern crate ddspan as renamed;

use renamed::{dd_closure, dd_span};

#[dd_span(crate = renamed, component = "renamed")]
fn plain(value: u32) -> u32 {
    value + 1
}

#[dd_span(crate = ::renamed)]
fn fallible(text: &str) -> Result<u32, std::num::ParseIntError> {
    if text.is_empty() {
        return Ok(0);
    }
    let value: u32 = text.parse()?;
    Ok(value)
}

macro_rules! ensure {
    ($condition:expr) => {
        if !$condition {
            return Err(stringify!($condition).to_owned());
        }
    };
}

// A macro that may hide an exit: the body runs in a closure.
#[dd_span(crate = "renamed")]
fn hidden_exit(text: &str) -> Result<u32, String> {
    ensure!(!text.is_empty());
    Ok(1)
}

#[dd_span(crate = renamed, child_of = None::<renamed::SpanContext>)]
async fn asynchronous(value: u32) -> Result<u32, String> {
    Ok(value)
}

#[dd_span(crate = renamed)]
fn boxed(value: u32) -> std::pin::Pin<Box<dyn std::future::Future<Output = u32>>> {
    Box::pin(async move { value })
}

#[dd_span(crate = renamed)]
fn with_closures(values: &[u32]) -> u32 {
    let double = #[dd_span(step = "double")]
    |x: &u32| -> Result<u32, String> { Ok(x * 2) };
    values.iter().map(|x| double(x).unwrap_or(0)).sum()
}

struct Handler;

#[dd_span(crate = renamed, layer = "handler")]
impl Handler {
    fn get(&self) -> u32 {
        1
    }

    #[dd_span(span.name = "handler.put")]
    fn put(&self) -> u32 {
        2
    }
}

#[dd_span(crate = renamed)]
fn main() {
    let add = dd_closure!(crate = renamed, span.name = "add"; |x: u32| x + 1);
    assert_eq!(plain(1), 2);
    assert_eq!(fallible("3"), Ok(3));
    assert_eq!(hidden_exit("4"), Ok(1));
    drop(asynchronous(1));
    drop(boxed(1));
    assert_eq!(with_closures(&[1, 2]), 6);
    assert_eq!(Handler.get() + Handler.put(), 3);
    assert_eq!(add(1), 2);
}
