#![deny(dead_code)]

use ddspan::dd_span;

// Instrumenting a function must not hide that nothing calls it.
#[dd_span]
fn unused() -> u32 {
    1
}

fn main() {}
