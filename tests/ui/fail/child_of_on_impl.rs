use ddspan::dd_span;

struct Handler;

#[dd_span(child_of = None::<ddspan::SpanContext>)]
impl Handler {
    fn get(&self) {}
}

fn main() {
    Handler.get();
}
