//! `#[dd_span]` on a sync `main`: the trace is delivered before exit.
use ddspan::dd_span;

#[dd_span]
fn work() -> u32 {
    2
}

#[dd_span]
fn main() {
    println!("{}", work());
}
