use ddspan::dd_span;

// A tag's expression runs as the span starts, before the body: it may use
// the arguments, not the body's locals.
#[dd_span(user.id = id, user.name = name, tenant = %tenant.trim())]
fn handler(id: u64) {
    let name = "ann";
    let tenant = " acme ";
    let _ = (id, name, tenant);
}

fn main() {
    handler(1);
}
