use ddspan::dd_span;

#[dd_span]
const fn limit() -> u32 {
    3
}

fn main() {
    let _ = limit();
}
