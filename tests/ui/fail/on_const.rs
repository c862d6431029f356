use ddspan::dd_span;

#[dd_span]
const LIMIT: u32 = 3;

fn main() {
    let _ = LIMIT;
}
