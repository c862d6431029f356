use ddspan::dd_span;

#[dd_span(team = "a", http.route = "/", team = "b")]
fn handler() {}

fn main() {
    handler();
}
