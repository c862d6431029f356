//! The quick start: a small traced program. With a Datadog Agent (or
//! ddapm-test-agent) on `DD_TRACE_AGENT_URL` / localhost:8126, its trace is
//! shipped there; without one, ddspan says so and the program is unaffected.
//!
//! `cargo run --example quickstart`

use std::time::Duration;

use ddspan::tracer;
use ddspan::{LocalSpanGuard, SpanSpec, StaticTag};

static LOAD_USER: SpanSpec = SpanSpec::new("db.query")
    .with_resource("SELECT * FROM users WHERE id = ?")
    .with_span_type("sql")
    .with_tags(&[StaticTag::str("db.system", "postgresql")]);

fn load_user(id: u64) -> String {
    let span = LocalSpanGuard::start(&LOAD_USER);
    span.set_tag("user.id", id);
    std::thread::sleep(Duration::from_millis(5));
    format!("user-{id}")
}

fn main() {
    let request = tracer::trace("http.request");
    request.set_resource("GET /users/:id");
    request.set_tag("http.method", "GET");
    let context = request.context();

    let user = load_user(42);

    // A child on another thread, parented through the request's context.
    std::thread::spawn(move || {
        let _render = tracer::span("render").child_of(context).start();
        std::thread::sleep(Duration::from_millis(2));
    })
    .join()
    .expect("the render thread");

    // Async code: the span is active on every poll, on any runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    use ddspan::InSpan;
    runtime.block_on(
        async {
            tokio::time::sleep(Duration::from_millis(3)).await;
            drop(tracer::trace("cache.write"));
        }
        .in_span(tracer::start_span("audit")),
    );
    request.set_tag("http.status_code", 200);
    drop(request);

    let delivered = tracer::stop();
    let stats = tracer::stats();
    println!("served {user}");
    println!("ddspan: {stats}");
    if !delivered {
        println!(
            "ddspan: no agent took the trace. Start one with:\n  \
             python3 -m venv /tmp/dd && /tmp/dd/bin/pip install ddapm-test-agent && /tmp/dd/bin/ddapm-test-agent\n\
             and run this again."
        );
    }
}
