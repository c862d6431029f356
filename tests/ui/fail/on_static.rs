use ddspan::dd_span;

#[dd_span]
static NAME: &str = "x";

fn main() {
    let _ = NAME;
}
