use ddspan::dd_span;

// A body that does not parse reaches rustc untouched: its own error, and no
// error from the macro.
#[dd_span]
fn broken() -> u32 {
    let x = ;
    x
}

fn main() {
    broken();
}
