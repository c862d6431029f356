use ddspan::dd_span;

// Every bad argument is reported in one build, and the function itself is
// still emitted: `main` calls it without a follow-on error.
#[dd_span(tag, k = missing, span.name = "", team = "a", team = "b", span.type = 3)]
fn handler() {}

fn main() {
    handler();
}
