use ddspan::dd_span;

#[dd_span(span.name = "")]
fn handler() {}

fn main() {
    handler();
}
