use ddspan::dd_span;

#[dd_span(tag)]
fn handler() {}

fn main() {
    handler();
}
