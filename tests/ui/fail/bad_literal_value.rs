use ddspan::dd_span;

#[dd_span(initial = 'c', sign = -true)]
fn handler() {}

fn main() {
    handler();
}
