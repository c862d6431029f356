use ddspan::dd_span;

#[dd_span]
fn handler() -> u32 {
    #[dd_span]
    let value = 3;
    value
}

fn main() {
    handler();
}
