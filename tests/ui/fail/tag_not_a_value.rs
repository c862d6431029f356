use ddspan::dd_span;

struct Order {
    id: u64,
}

#[dd_span(order = order)]
fn handler(order: Order) -> u64 {
    order.id
}

fn main() {
    handler(Order { id: 1 });
}
