//! The cost of a span on the thread that creates it, side by side with the
//! Rust tracers people use today, in one run so the ratios compare on a
//! noisy machine: `#[dd_span]`, `#[tracing::instrument]` under a registry
//! with a minimal timing layer, and `#[fastrace::trace]` with a counting
//! reporter (its collection included, as ddspan's hand-off to the writer
//! is). Prints a ratio table at the end.
//!
//! `cargo bench --bench span`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use ddspan::tracer::{self, AgentUrl, Config};
use ddspan::{dd_span, LocalSpanGuard, SpanSpec};

// ---------------------------------------------------------------- ddspan

#[dd_span]
#[inline(never)]
fn dd_leaf(x: u64) -> u64 {
    black_box(x)
}

#[dd_span]
#[inline(never)]
fn dd_outer(x: u64) -> u64 {
    dd_leaf(x)
}

#[dd_span(component = "bench", peer.service = "db")]
#[inline(never)]
fn dd_tagged(x: u64) -> u64 {
    black_box(x)
}

#[dd_span]
#[inline(never)]
fn dd_fails(x: u64) -> Result<u64, std::io::Error> {
    if black_box(x) > 0 {
        return Err(std::io::Error::other("failed"));
    }
    Ok(x)
}

// ---------------------------------------------------------------- tracing

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tr_leaf(x: u64) -> u64 {
    black_box(x)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tr_outer(x: u64) -> u64 {
    tr_leaf(x)
}

#[tracing::instrument(skip_all, fields(component = "bench", peer.service = "db"))]
#[inline(never)]
fn tr_tagged(x: u64) -> u64 {
    black_box(x)
}

#[tracing::instrument(skip_all, err)]
#[inline(never)]
fn tr_fails(x: u64) -> Result<u64, std::io::Error> {
    if black_box(x) > 0 {
        return Err(std::io::Error::other("failed"));
    }
    Ok(x)
}

/// Records each span's duration: the least a real subscriber does.
struct TimingLayer;

static TRACING_SPANS: AtomicU64 = AtomicU64::new(0);

impl<S> tracing_subscriber::Layer<S> for TimingLayer
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(std::time::Instant::now());
        }
    }

    fn on_close(&self, id: tracing::span::Id, ctx: tracing_subscriber::layer::Context<'_, S>) {
        if let Some(span) = ctx.span(&id) {
            if let Some(start) = span.extensions().get::<std::time::Instant>() {
                black_box(start.elapsed());
                TRACING_SPANS.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

// ---------------------------------------------------------------- fastrace

#[fastrace::trace]
#[inline(never)]
fn fr_leaf(x: u64) -> u64 {
    black_box(x)
}

#[fastrace::trace]
#[inline(never)]
fn fr_outer(x: u64) -> u64 {
    fr_leaf(x)
}

#[fastrace::trace(properties = { "component": "bench", "peer.service": "db" })]
#[inline(never)]
fn fr_tagged(x: u64) -> u64 {
    black_box(x)
}

#[fastrace::trace]
#[inline(never)]
fn fr_fails(x: u64) -> Result<u64, std::io::Error> {
    if black_box(x) > 0 {
        return Err(std::io::Error::other("failed"));
    }
    Ok(x)
}

struct CountingReporter;

static FASTRACE_SPANS: AtomicU64 = AtomicU64::new(0);

impl fastrace::collector::Reporter for CountingReporter {
    fn report(&mut self, spans: Vec<fastrace::prelude::SpanRecord>) {
        FASTRACE_SPANS.fetch_add(spans.len() as u64, Ordering::Relaxed);
    }
}

// ---------------------------------------------------------------- runs

#[inline(never)]
fn empty_call(x: u64) -> u64 {
    black_box(x)
}

fn start_ddspan(enabled: bool) {
    tracer::start(
        Config::builder()
            .service("bench")
            .agent_url(AgentUrl::Http("http://127.0.0.1:1".into()))
            .enabled(enabled)
            .startup_logs(false)
            .partial_flush_enabled(true)
            .partial_flush_min_spans(1000usize)
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

/// One shape, three tracers: `child` runs inside an active parent of each.
fn shape(
    c: &mut Criterion,
    name: &str,
    dd: fn(u64) -> u64,
    tr: fn(u64) -> u64,
    fr: fn(u64) -> u64,
    with_parent: bool,
) {
    let mut group = c.benchmark_group(name);
    {
        let _parent = with_parent.then(|| tracer::trace("parent"));
        group.bench_function("ddspan", |b| b.iter(|| dd(black_box(1))));
    }
    {
        let parent = with_parent.then(|| tracing::info_span!("parent"));
        let _entered = parent.as_ref().map(tracing::Span::enter);
        group.bench_function("tracing", |b| b.iter(|| tr(black_box(1))));
    }
    if with_parent {
        let root = fastrace::Span::root("parent", fastrace::prelude::SpanContext::random());
        let _guard = root.set_local_parent();
        group.bench_function("fastrace", |b| b.iter(|| fr(black_box(1))));
    } else {
        group.bench_function("fastrace", |b| {
            b.iter(|| {
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let _guard = root.set_local_parent();
                fr(black_box(1))
            })
        });
    }
    group.finish();
}

fn shapes(c: &mut Criterion) {
    start_ddspan(true);
    shape(c, "child_span", dd_leaf, tr_leaf, fr_leaf, true);
    shape(c, "nested_depth_2", dd_outer, tr_outer, fr_outer, true);
    shape(c, "two_string_tags", dd_tagged, tr_tagged, fr_tagged, true);
    shape(
        c,
        "err_return",
        |x| dd_fails(x).unwrap_or(0),
        |x| tr_fails(x).unwrap_or(0),
        |x| fr_fails(x).unwrap_or(0),
        true,
    );
    shape(c, "root_span", dd_leaf, tr_leaf, fr_leaf, false);
    tracer::stop();

    start_ddspan(false);
    static SPEC: SpanSpec = SpanSpec::new("disabled");
    c.bench_function("disabled/ddspan", |b| {
        b.iter(|| LocalSpanGuard::start(&SPEC))
    });
    tracer::stop();
}

/// v0.4 msgpack encoding: 1000 spans in 10 traces per payload.
fn encoding(c: &mut Criterion) {
    let sample = ddspan::__bench::EncodeSample::new(10, 100);
    let mut out = Vec::with_capacity(1 << 20);
    let spans = sample.encode(&mut out);
    ENCODED_BYTES_PER_SPAN.store((out.len() / spans) as u64, Ordering::Relaxed);
    let mut group = c.benchmark_group("encode");
    group.throughput(criterion::Throughput::Elements(spans as u64));
    group.bench_function("1000_spans_10_traces", |b| {
        b.iter(|| sample.encode(black_box(&mut out)))
    });
    group.finish();
}

static ENCODED_BYTES_PER_SPAN: AtomicU64 = AtomicU64::new(0);

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = floor, shapes, encoding
}

/// Mean time of one benchmark from criterion's own estimates, in ns.
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let path = format!(
        "{}/criterion/{group}/{function}/new/estimates.json",
        target_dir()
    );
    let text = std::fs::read_to_string(path).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn target_dir() -> String {
    std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/target", env!("CARGO_MANIFEST_DIR")))
}

fn print_ratios() {
    println!(
        "\n{:<16} {:>10} {:>10} {:>10} {:>12} {:>12}",
        "shape", "ddspan", "tracing", "fastrace", "vs tracing", "vs fastrace"
    );
    for group in [
        "child_span",
        "nested_depth_2",
        "two_string_tags",
        "err_return",
        "root_span",
    ] {
        let (Some(dd), Some(tr), Some(fr)) = (
            mean_ns(group, "ddspan"),
            mean_ns(group, "tracing"),
            mean_ns(group, "fastrace"),
        ) else {
            continue;
        };
        println!(
            "{group:<16} {dd:>8.1}ns {tr:>8.1}ns {fr:>8.1}ns {:>11.2}x {:>11.2}x",
            dd / tr,
            dd / fr
        );
    }
    if let Some(disabled) = mean_ns("disabled", "ddspan") {
        println!("{:<16} {disabled:>8.2}ns", "disabled");
    }
    if let Some(encode) = mean_ns("encode", "1000_spans_10_traces") {
        println!(
            "encoding: {:.2} M spans/s, {} bytes per span",
            1000.0 / encode * 1e3,
            ENCODED_BYTES_PER_SPAN.load(Ordering::Relaxed)
        );
    }
    println!(
        "(spans collected: tracing {}, fastrace {})",
        TRACING_SPANS.load(Ordering::Relaxed),
        FASTRACE_SPANS.load(Ordering::Relaxed)
    );
}

fn main() {
    use tracing_subscriber::layer::SubscriberExt;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(TimingLayer))
        .expect("the benchmark's subscriber");
    fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    benches();
    Criterion::default().configure_from_args().final_summary();
    fastrace::flush();
    print_ratios();
}
