use ddspan::dd_span;

#[dd_span(span.kind = "web", error = "no")]
fn handler() {}

#[dd_span(span.kind = 3, error = 0)]
fn other() {}

fn main() {
    handler();
    other();
}
