//! Process start of a program that links ddspan. `idle`: never starts the
//! tracer; `disabled`: calls a `#[dd_span]` function that returns `Err`,
//! under `DD_TRACE_ENABLED=false` (a CLI or test binary with tracing off).

use ddspan::dd_span;

#[dd_span]
fn load(x: u64) -> Result<u64, std::io::Error> {
    if x > 0 {
        return Err(std::io::Error::other("not found"));
    }
    Ok(x)
}

fn main() {
    match std::env::args().nth(1).as_deref() {
        Some("disabled") => {
            let _ = std::hint::black_box(load(std::hint::black_box(1)));
        }
        _ => {
            // Keeps ddspan linked without starting anything.
            std::hint::black_box(ddspan::tracer::active_context());
        }
    }
}
