use ddspan::dd_span;

fn some_fn() -> &'static str {
    "x"
}

#[dd_span(k = some_fn())]
fn handler() {}

fn main() {
    handler();
}
