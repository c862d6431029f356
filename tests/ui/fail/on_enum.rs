use ddspan::dd_span;

#[dd_span]
enum State {
    Open,
}

fn main() {
    let _ = State::Open;
}
