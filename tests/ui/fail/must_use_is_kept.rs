#![deny(unused_must_use)]

use ddspan::dd_span;

#[must_use]
#[dd_span]
fn important() -> u32 {
    1
}

fn main() {
    important();
}
