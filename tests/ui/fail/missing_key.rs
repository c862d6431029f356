use ddspan::dd_span;

#[dd_span(= "x")]
fn handler() {}

fn main() {
    handler();
}
