//! Generated code uses absolute paths and hidden locals: it compiles next
//! to user items that shadow std's names, under strict lints.
#![deny(unused_qualifications, unused_mut, clippy::all, clippy::pedantic)]
#![allow(dead_code)]

use ddspan::{dd_ignore, dd_span};

mod core {}
struct Result;
struct Ok;
struct Some;
struct Option;
struct Box;

/// Doc comments stay.
#[dd_span(component = "hygiene")]
fn plain(__ddspan_ret: u32, __ddspan_guard: u32) -> u32 {
    __ddspan_ret + __ddspan_guard
}

#[dd_span]
fn fallible() -> ::core::result::Result<u32, ::std::io::Error> {
    ::core::result::Result::Ok(1)
}

// `return` and `?` become `break`s out of a labeled block (rewritten as
// tokens here, parsed in the next one: it has a closure).
#[dd_span]
fn early(text: &str) -> ::core::result::Result<u32, ::std::num::ParseIntError> {
    if text.is_empty() {
        return ::core::result::Result::Ok(0);
    }
    let value: u32 = text.trim().parse()?;
    ::core::result::Result::Ok(value + 1)
}

#[dd_span]
fn early_parsed(texts: &[&str]) -> ::core::result::Result<usize, ::std::num::ParseIntError> {
    let total = texts.iter().map(|t| t.len()).sum::<usize>();
    let value: usize = texts.first().copied().unwrap_or("0").parse()?;
    ::core::result::Result::Ok(value + total)
}

#[dd_span]
async fn asynchronous(value: u32) -> u32 {
    value
}

struct Counter(u32);

#[dd_span]
impl Counter {
    fn bump(&mut self) -> &mut u32 {
        self.0 += 1;
        &mut self.0
    }

    #[dd_ignore]
    fn quiet(&self) -> u32 {
        self.0
    }
}

// Tags computed from the arguments, in every form, with the names above
// shadowing std's.
#[dd_span(id = id, name = name, shown = %name, debugged = ?name, sum = id + 1, span.kind = "internal", error = false)]
fn tagged(id: u64, name: &str) -> ::core::result::Result<u64, ::std::io::Error> {
    ::core::result::Result::Ok(id + name.len() as u64)
}

#[dd_span(id = id, shown = %id)]
async fn tagged_async(id: u64) -> u64 {
    id
}

pub(crate) fn main() {
    let _ = tagged(1, "x");
    drop(tagged_async(2));
    let _ = plain(1, 2);
    let _ = fallible();
    let _ = early(" 1");
    let _ = early_parsed(&["2"]);
    drop(asynchronous(3));
    let mut counter = Counter(0);
    *counter.bump() += 1;
    let _ = counter.quiet();
}
