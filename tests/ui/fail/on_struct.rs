use ddspan::dd_span;

#[dd_span]
struct Order {
    id: u64,
}

fn main() {
    let _ = Order { id: 1 }.id;
}
