use ddspan::dd_ignore;

#[dd_ignore(reason = "noisy")]
fn handler() {}

fn main() {
    handler();
}
