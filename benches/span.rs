//! The raw span path: what a span costs the thread that creates it,
//! including the hand-off of finished spans toward the writer.
//!
//! Run with `cargo bench --bench span`. The tracer ships to a closed local
//! port, so the writer's failures cost nothing here; every span still goes
//! through the full path (stack, buffer, chunk, queue).
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use ddspan::tracer::{self, AgentUrl, Config};
use ddspan::{LocalSpanGuard, SpanSpec, StaticTag};

static CHILD: SpanSpec = SpanSpec::new("child");
static GRANDCHILD: SpanSpec = SpanSpec::new("grandchild");
static ROOT: SpanSpec = SpanSpec::new("root");
static TAGGED: SpanSpec = SpanSpec::new("tagged").with_tags(&[
    StaticTag::str("component", "bench"),
    StaticTag::str("peer.service", "db"),
]);

#[inline(never)]
fn empty_call(x: u64) -> u64 {
    black_box(x)
}

fn start_tracer(enabled: bool) {
    tracer::start(
        Config::builder()
            .service("bench")
            .agent_url(AgentUrl::Http("http://127.0.0.1:1".into()))
            .enabled(enabled)
            .startup_logs(false)
            .partial_flush_enabled(true)
            .partial_flush_min_spans(1000usize)
            .queue_capacity(
                std::env::var("QCAP")
                    .ok()
                    .and_then(|v| v.parse::<usize>().ok())
                    .unwrap_or(1 << 16),
            )
            .max_retries(0u32)
            .build(),
    );
}

fn floor(c: &mut Criterion) {
    let mut group = c.benchmark_group("floor");
    group.bench_function("empty_call", |b| b.iter(|| empty_call(black_box(1))));
    group.bench_function("clock_read", |b| b.iter(fastant::Instant::now));
    group.finish();
}

fn spans(c: &mut Criterion) {
    start_tracer(true);
    let mut group = c.benchmark_group("ddspan");
    {
        let _parent = tracer::trace("parent");
        group.bench_function("child_span", |b| {
            b.iter(|| {
                let _span = LocalSpanGuard::start(&CHILD);
            })
        });
        group.bench_function("nested_depth_2", |b| {
            b.iter(|| {
                let _a = LocalSpanGuard::start(&CHILD);
                let _b = LocalSpanGuard::start(&GRANDCHILD);
            })
        });
        group.bench_function("child_span_two_static_tags", |b| {
            b.iter(|| {
                let _span = LocalSpanGuard::start(&TAGGED);
            })
        });
        group.bench_function("child_send_span", |b| b.iter(|| tracer::trace("child")));
    }
    group.bench_function("root_span", |b| {
        b.iter(|| {
            let _span = LocalSpanGuard::start(&ROOT);
        })
    });
    group.finish();
    tracer::stop();

    start_tracer(false);
    c.bench_function("ddspan/disabled", |b| {
        b.iter(|| {
            let _span = LocalSpanGuard::start(&CHILD);
        })
    });
    tracer::stop();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = floor, spans
}
criterion_main!(benches);
