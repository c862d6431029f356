use ddspan::dd_span;

// A type error in the body is reported on the user's tokens, not on the
// macro's.
#[dd_span]
fn handler() -> u32 {
    let text: &str = "three";
    text
}

fn main() {
    handler();
}
