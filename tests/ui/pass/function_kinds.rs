//! Every kind of function the attribute accepts compiles unchanged.
#![allow(dead_code, clippy::unused_async)]

use std::fmt::Display;
use std::future::Future;
use std::pin::Pin;

use ddspan::dd_span;

#[dd_span]
fn generic<'a, T: Display + ?Sized, U>(value: &'a T, other: U) -> String
where
    U: Into<u64>,
{
    format!("{value}{}", other.into())
}

#[dd_span]
fn longest<'a>(a: &'a str, b: &'a str) -> &'a str {
    if a.len() > b.len() {
        return a;
    }
    b
}

#[dd_span]
unsafe fn dangerous(pointer: *const u8) -> u8 {
    // SAFETY: callers pass a valid pointer.
    unsafe { *pointer }
}

#[dd_span]
extern "C" fn exported(value: u32) -> u32 {
    value + 1
}

#[dd_span]
fn iterator(limit: u32) -> impl Iterator<Item = u32> {
    0..limit
}

#[dd_span]
fn never() -> ! {
    panic!("never returns")
}

#[dd_span]
fn future(value: u32) -> impl Future<Output = u32> {
    async move { value }
}

#[dd_span]
fn boxed(value: u32) -> Pin<Box<dyn Future<Output = u32> + Send>> {
    Box::pin(async move { value })
}

#[dd_span]
fn question_mark(text: &str) -> Result<u32, std::num::ParseIntError> {
    let value: u32 = text.parse()?;
    Ok(value)
}

struct Machine(u32);

impl Machine {
    #[dd_span]
    fn new() -> Self {
        Machine(0)
    }

    #[dd_span]
    fn by_value(self) -> u32 {
        self.0
    }

    #[dd_span]
    fn boxed_self(self: Box<Self>) -> u32 {
        self.0
    }

    #[dd_span]
    fn pinned(self: Pin<&mut Self>) -> u32 {
        self.0
    }

    #[dd_span]
    async fn later(&self) -> u32 {
        self.0
    }
}

trait Greeter {
    #[dd_span]
    fn greet(&self) -> String {
        "hello".to_owned()
    }

    fn name(&self) -> String;
}

impl Greeter for Machine {
    #[dd_span]
    fn name(&self) -> String {
        "machine".to_owned()
    }
}

#[async_trait::async_trait]
trait Store {
    async fn load(&self) -> u32;
}

#[async_trait::async_trait]
impl Store for Machine {
    #[dd_span]
    async fn load(&self) -> u32 {
        self.0
    }
}

struct Other;

#[dd_span]
#[async_trait::async_trait]
impl Store for Other {
    async fn load(&self) -> u32 {
        1
    }
}

#[dd_span(layer = "module")]
mod handlers {
    pub fn list() -> Vec<u32> {
        vec![1]
    }

    pub struct Handler;

    impl Handler {
        pub fn run(&self) -> u32 {
            super::handlers::list().len() as u32
        }
    }

    #[ddspan::dd_ignore]
    pub fn health() -> bool {
        true
    }

    pub const fn limit() -> u32 {
        3
    }
}

fn main() {
    let _ = generic("a", 1u8);
    let _ = longest("a", "bb");
    let _ = unsafe { dangerous(&1) };
    let _ = exported(1);
    let _ = iterator(3).count();
    let _ = future(1);
    let _ = boxed(1);
    let _ = question_mark("1");
    let _ = Machine::new().by_value();
    let _ = handlers::Handler.run() + handlers::limit();
    let _ = handlers::health();
}
