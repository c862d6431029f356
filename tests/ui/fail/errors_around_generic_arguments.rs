use ddspan::dd_span;

fn pick<A, B>(value: u8) -> u8 {
    value
}

// Each bad argument is reported once, on its own tokens, also where its
// value does not parse (`pick(1 2)`); values holding commas
// (`pick::<u8, u16>(1)`, `[1, 2]`: tags computed as the span starts) are
// one argument each; the good ones after a bad one are read, and the
// function is still emitted.
#[dd_span(k = pick::<u8, u16>(1), span.name = 3, child_of = , tag, crate = 1 + 1, n = [1, 2], g = pick(1 2), ok = "fine")]
fn handler() {}

fn main() {
    handler();
    let _ = pick::<u8, u16>(1);
}
