//! The cost of a span on the thread that creates it, side by side with the
//! Rust tracers people use today, in one run so the ratios compare on a
//! noisy machine: `#[dd_span]`, `#[tracing::instrument]` under a registry
//! with a minimal timing layer, `#[fastrace::trace]` with a counting
//! reporter (its collection included, as ddspan's hand-off to the writer
//! is), and the OpenTelemetry API (`tracer.in_span`) on the OpenTelemetry
//! SDK with its `BatchSpanProcessor` and an exporter that counts and drops.
//! With `--features bench-datadog-opentelemetry`, the same OpenTelemetry
//! functions also run on Datadog's `datadog-opentelemetry` tracer, shipping
//! to a stand-in agent on 127.0.0.1. Prints a ratio table at the end.
//!
//! `cargo bench -p ddspan-benches --bench span [--features bench-datadog-opentelemetry]`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use criterion::{criterion_group, Bencher, Criterion};
use ddspan::tracer;
use ddspan::{dd_span, AgentUrl, Config, LocalSpanGuard, SpanSpec};

#[path = "support/sink.rs"]
mod sink;
use opentelemetry::trace::{Status, TraceContextExt, Tracer, TracerProvider};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchSpanProcessor, SdkTracer, SdkTracerProvider, SpanData, SpanExporter,
};

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

/// An error that costs nothing to make, so the disabled benches time the
/// instrumentation, not an allocation of the function's own.
#[derive(Debug)]
struct NotFound;

impl std::fmt::Display for NotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("not found")
    }
}

impl std::error::Error for NotFound {}

#[dd_span]
#[inline(never)]
fn dd_not_found(x: u64) -> Result<u64, NotFound> {
    if black_box(x) > 0 {
        return Err(NotFound);
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

// ---------------------------------------------------------------- OpenTelemetry

// The OpenTelemetry API as an application writes it by hand: `in_span`
// makes the span current for the closure and ends it on return. `DD` picks
// the tracer: the plain SDK, or datadog-opentelemetry's provider.

/// The tracers, made once (as an application keeps its tracer) so that the
/// cost measured is the span's, not a `global::tracer` lookup.
static OTEL_TRACERS: [OnceLock<SdkTracer>; 2] = [OnceLock::new(), OnceLock::new()];
/// Index in [`OTEL_TRACERS`] and [`OTEL_CREATED`] of each OpenTelemetry peer.
const OTEL_SDK: usize = 0;
const DD_OTEL: usize = 1;

fn ot_tracer<const DD: bool>() -> &'static SdkTracer {
    OTEL_TRACERS[if DD { DD_OTEL } else { OTEL_SDK }]
        .get()
        .expect("the tracer is made before the benchmarks run")
}

#[inline(never)]
fn ot_leaf<const DD: bool>(x: u64) -> u64 {
    ot_tracer::<DD>().in_span("ot_leaf", |_cx| black_box(x))
}

#[inline(never)]
fn ot_outer<const DD: bool>(x: u64) -> u64 {
    ot_tracer::<DD>().in_span("ot_outer", |_cx| ot_leaf::<DD>(x))
}

#[inline(never)]
fn ot_tagged<const DD: bool>(x: u64) -> u64 {
    ot_tracer::<DD>().in_span("ot_tagged", |cx| {
        let span = cx.span();
        span.set_attribute(KeyValue::new("component", "bench"));
        span.set_attribute(KeyValue::new("peer.service", "db"));
        black_box(x)
    })
}

#[inline(never)]
fn ot_fails<const DD: bool>(x: u64) -> Result<u64, std::io::Error> {
    ot_tracer::<DD>().in_span("ot_fails", |cx| {
        let result = if black_box(x) > 0 {
            Err(std::io::Error::other("failed"))
        } else {
            Ok(x)
        };
        if let Err(error) = &result {
            let span = cx.span();
            span.record_error(error);
            span.set_status(Status::error(error.to_string()));
        }
        result
    })
}

/// Spans the benchmarks created on each OpenTelemetry peer (parents
/// included), to compare with what reached the exporter or the agent.
static OTEL_CREATED: [AtomicU64; 2] = [AtomicU64::new(0), AtomicU64::new(0)];
static OTEL_EXPORTED: AtomicU64 = AtomicU64::new(0);

/// Counts the spans of each batch and drops them.
#[derive(Debug)]
struct DroppingExporter;

impl SpanExporter for DroppingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        OTEL_EXPORTED.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

/// The SDK's default batch processor: its own thread, no async runtime.
fn start_otel() -> SdkTracerProvider {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BatchSpanProcessor::builder(DroppingExporter).build())
        .build();
    let _ = OTEL_TRACERS[OTEL_SDK].set(provider.tracer("bench"));
    provider
}

// ---------------------------------------------------------------- datadog-opentelemetry

/// Datadog's OpenTelemetry tracer, shipping v0.4 payloads to a local
/// stand-in for the agent that answers `200 {}` to every request.
#[cfg(feature = "bench-datadog-opentelemetry")]
mod dd_otel {
    use std::io::{BufReader, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicU64, Ordering};

    use opentelemetry::trace::TracerProvider;
    use opentelemetry_sdk::trace::SdkTracerProvider;

    /// Spans decoded from the trace payloads the sink received.
    pub(super) static SHIPPED: AtomicU64 = AtomicU64::new(0);
    /// Trace payloads, and every other request (`/info`, stats...).
    pub(super) static PAYLOADS: AtomicU64 = AtomicU64::new(0);
    pub(super) static OTHER_REQUESTS: AtomicU64 = AtomicU64::new(0);

    /// The tracer as its README starts it, pointed at the sink, with the
    /// partial flush ddspan's run uses (the child shapes run under one
    /// long-lived parent) and without remote configuration or telemetry
    /// (ddspan has neither; both only add background requests).
    pub(super) fn start() -> SdkTracerProvider {
        let url = agent_sink();
        let config = datadog_opentelemetry::configuration::Config::builder()
            .set_service("bench".into())
            .set_trace_agent_url(url)
            .set_remote_config_enabled(false)
            .set_telemetry_enabled(false)
            .set_trace_partial_flush_enabled(true)
            .set_trace_partial_flush_min_spans(1000)
            .build();
        let (provider, _propagator) = datadog_opentelemetry::tracing()
            .with_config(config)
            .init_local();
        let _ = super::OTEL_TRACERS[super::DD_OTEL].set(provider.tracer("bench"));
        provider
    }

    /// An HTTP/1.1 server on 127.0.0.1 that answers every request with
    /// `200 {}` and counts the spans of v0.4 and v0.5 trace payloads.
    fn agent_sink() -> String {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let url = format!("http://{}", listener.local_addr().expect("its address"));
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                std::thread::spawn(move || serve(stream));
            }
        });
        url
    }

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

    /// Serves one keep-alive connection until the client closes it.
    fn serve(stream: TcpStream) -> Option<()> {
        let mut writer = stream.try_clone().ok()?;
        let mut reader = BufReader::new(stream);
        let mut body = Vec::new();
        loop {
            let path = crate::sink::http::read_request(&mut reader, &mut body)?;
            if path.ends_with("/traces") {
                PAYLOADS.fetch_add(1, Ordering::Relaxed);
                let spans = crate::sink::http::trace_spans(&path, &body).unwrap_or(0);
                SHIPPED.fetch_add(spans, Ordering::Relaxed);
            } else {
                OTHER_REQUESTS.fetch_add(1, Ordering::Relaxed);
            }
            writer.write_all(OK).ok()?;
        }
    }
}

// ---------------------------------------------------------------- runs

#[inline(never)]
fn empty_call(x: u64) -> u64 {
    black_box(x)
}

/// A stand-in agent that takes every payload, shared by the runs.
fn ddspan_sink() -> String {
    static URL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    URL.get_or_init(|| sink::start(sink::Payloads::Discard, Default::default()))
        .clone()
}

/// ddspan's spans over all runs: (created and handed over, shipped).
static DDSPAN_HANDED: AtomicU64 = AtomicU64::new(0);
static DDSPAN_SHIPPED: AtomicU64 = AtomicU64::new(0);

static DDSPAN_RUNNING: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Stops the tracer [`start_ddspan`] started and adds its counts to the
/// totals.
fn stop_ddspan() {
    if !DDSPAN_RUNNING.swap(false, Ordering::Relaxed) {
        return;
    }
    tracer::stop();
    let stats = tracer::stats();
    DDSPAN_HANDED.fetch_add(
        stats.spans_queued + stats.spans_dropped_queue_full,
        Ordering::Relaxed,
    );
    DDSPAN_SHIPPED.fetch_add(stats.spans_sent, Ordering::Relaxed);
}

fn start_ddspan(enabled: bool) {
    stop_ddspan();
    DDSPAN_RUNNING.store(true, Ordering::Relaxed);
    tracer::start(
        Config::builder()
            .service("bench")
            // An agent that takes everything: the writer encodes and sends
            // every span it is handed, as in production.
            .agent_url(AgentUrl::Http(ddspan_sink()))
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

/// One span shape, one function per tracer.
struct Shape {
    name: &'static str,
    dd: fn(u64) -> u64,
    tr: fn(u64) -> u64,
    fr: fn(u64) -> u64,
    /// The OpenTelemetry function on the SDK, and on datadog-opentelemetry.
    ot: [fn(u64) -> u64; 2],
    /// Spans one call creates.
    spans: u64,
    /// `true`: the calls run inside an active parent of each tracer.
    with_parent: bool,
}

/// Criterion's `iter`, also counting the spans the calls create.
fn iter_counting(b: &mut Bencher<'_>, f: fn(u64) -> u64, spans: u64, created: &AtomicU64) {
    b.iter_custom(|iters| {
        created.fetch_add(iters * spans, Ordering::Relaxed);
        let start = Instant::now();
        for _ in 0..iters {
            black_box(f(black_box(1)));
        }
        start.elapsed()
    });
}

fn shape(c: &mut Criterion, shape: &Shape) {
    let with_parent = shape.with_parent;
    let mut group = c.benchmark_group(shape.name);
    {
        let _parent = with_parent.then(|| tracer::trace("parent"));
        group.bench_function("ddspan", |b| b.iter(|| (shape.dd)(black_box(1))));
    }
    {
        let parent = with_parent.then(|| tracing::info_span!("parent"));
        let _entered = parent.as_ref().map(tracing::Span::enter);
        group.bench_function("tracing", |b| b.iter(|| (shape.tr)(black_box(1))));
    }
    if with_parent {
        // A new parent every 1000 calls, so that every span is collected
        // and reported (fastrace keeps a bounded number of spans under one
        // root and drops the rest): its collection is included, as ddspan's
        // partial flush of 1000 spans ships all of its spans.
        group.bench_function("fastrace", |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                let mut done = 0;
                while done < iters {
                    let batch = (iters - done).min(1000);
                    let root =
                        fastrace::Span::root("parent", fastrace::prelude::SpanContext::random());
                    let guard = root.set_local_parent();
                    for _ in 0..batch {
                        black_box((shape.fr)(black_box(1)));
                    }
                    drop(guard);
                    drop(root);
                    done += batch;
                }
                start.elapsed()
            })
        });
    } else {
        group.bench_function("fastrace", |b| {
            b.iter(|| {
                let root = fastrace::Span::root("root", fastrace::prelude::SpanContext::random());
                let _guard = root.set_local_parent();
                (shape.fr)(black_box(1))
            })
        });
    }
    let mut otel_peers = vec![("otel", OTEL_SDK)];
    if cfg!(feature = "bench-datadog-opentelemetry") {
        otel_peers.push(("dd-otel", DD_OTEL));
    }
    for (peer, index) in otel_peers {
        let Some(tracer) = OTEL_TRACERS[index].get() else {
            continue;
        };
        let created = &OTEL_CREATED[index];
        let _attached = with_parent.then(|| {
            created.fetch_add(1, Ordering::Relaxed);
            Context::current_with_span(tracer.start("parent")).attach()
        });
        group.bench_function(peer, |b| {
            iter_counting(b, shape.ot[index], shape.spans, created)
        });
    }
    group.finish();
}

fn shapes(c: &mut Criterion) {
    start_ddspan(true);
    for one in [
        Shape {
            name: "child_span",
            dd: dd_leaf,
            tr: tr_leaf,
            fr: fr_leaf,
            ot: [ot_leaf::<false>, ot_leaf::<true>],
            spans: 1,
            with_parent: true,
        },
        Shape {
            name: "nested_depth_2",
            dd: dd_outer,
            tr: tr_outer,
            fr: fr_outer,
            ot: [ot_outer::<false>, ot_outer::<true>],
            spans: 2,
            with_parent: true,
        },
        Shape {
            name: "two_string_tags",
            dd: dd_tagged,
            tr: tr_tagged,
            fr: fr_tagged,
            ot: [ot_tagged::<false>, ot_tagged::<true>],
            spans: 1,
            with_parent: true,
        },
        Shape {
            name: "err_return",
            dd: |x| dd_fails(x).unwrap_or(0),
            tr: |x| tr_fails(x).unwrap_or(0),
            fr: |x| fr_fails(x).unwrap_or(0),
            ot: [
                |x| ot_fails::<false>(x).unwrap_or(0),
                |x| ot_fails::<true>(x).unwrap_or(0),
            ],
            spans: 1,
            with_parent: true,
        },
        Shape {
            name: "root_span",
            dd: dd_leaf,
            tr: tr_leaf,
            fr: fr_leaf,
            ot: [ot_leaf::<false>, ot_leaf::<true>],
            spans: 1,
            with_parent: false,
        },
    ] {
        shape(c, &one);
    }
    stop_ddspan();

    start_ddspan(false);
    static SPEC: SpanSpec = SpanSpec::new("disabled");
    // A group, so that criterion keeps `disabled/ddspan` where `mean_ns` reads it.
    let mut group = c.benchmark_group("disabled");
    group.bench_function("ddspan", |b| b.iter(|| LocalSpanGuard::start(&SPEC)));
    // Tracing off, a `#[dd_span]` function returning `Ok` and one returning
    // `Err`: the error must not be formatted when nothing records.
    group.bench_function("ddspan_ok", |b| b.iter(|| dd_not_found(black_box(0))));
    group.bench_function("ddspan_err", |b| b.iter(|| dd_not_found(black_box(1))));
    group.finish();
    stop_ddspan();
}

/// Encoding, v0.4 and v0.5: 1000 spans in 10 traces per payload.
fn encoding(c: &mut Criterion) {
    let sample = ddspan_runtime::__bench::EncodeSample::new(10, 100);
    let mut out = Vec::with_capacity(1 << 20);
    let spans = sample.encode(&mut out);
    ENCODED_BYTES_PER_SPAN.store((out.len() / spans) as u64, Ordering::Relaxed);
    let mut group = c.benchmark_group("encode");
    group.throughput(criterion::Throughput::Elements(spans as u64));
    group.bench_function("1000_spans_10_traces", |b| {
        b.iter(|| sample.encode(black_box(&mut out)))
    });
    // v0.5, what a Datadog Agent takes: the strings go through the
    // payload's string table.
    group.bench_function("v05_1000_spans_10_traces", |b| {
        b.iter(|| sample.encode_v05(black_box(&mut out)))
    });
    group.finish();
}

static ENCODED_BYTES_PER_SPAN: AtomicU64 = AtomicU64::new(0);

#[ddspan::dd_span]
async fn dd_async(x: u64) -> u64 {
    black_box(x)
}

/// Polls a future that is ready at once.
fn poll_once<F: std::future::Future>(future: F) -> F::Output {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match future.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(output) => output,
        std::task::Poll::Pending => unreachable!("ready at once"),
    }
}

/// What an `async fn` call adds to keep spawned work in its trace: the
/// span active where the future is made, captured (a thread-local read, a
/// reference count and a hold on the trace), then released
/// (`async_call/capture`, under a sync `#[dd_span]`'s local span and under
/// an entered `Span`); and a whole `#[dd_span] async fn` call under a
/// parent, polled to its end (`async_call/ddspan`).
fn async_call(c: &mut Criterion) {
    use ddspan::Instrument;
    start_ddspan(true);
    static PARENT: SpanSpec = SpanSpec::new("parent");
    let mut group = c.benchmark_group("async_call");
    {
        let _parent = LocalSpanGuard::start(&PARENT);
        group.bench_function("capture_local", |b| {
            b.iter(|| black_box(std::future::ready(1).in_active_span()))
        });
        group.bench_function("ddspan_local", |b| {
            b.iter(|| poll_once(dd_async(black_box(1))))
        });
    }
    {
        let _parent = tracer::trace("parent");
        group.bench_function("capture", |b| {
            b.iter(|| black_box(std::future::ready(1).in_active_span()))
        });
        group.bench_function("ddspan", |b| b.iter(|| poll_once(dd_async(black_box(1)))));
    }
    group.finish();
    stop_ddspan();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = floor, shapes, encoding, async_call
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
    // This package is a member of the workspace at `..`, whose target
    // directory criterion writes to.
    std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/../target", env!("CARGO_MANIFEST_DIR")))
}

fn print_ratios() {
    let dd_otel = cfg!(feature = "bench-datadog-opentelemetry");
    let mut head = format!(
        "\n{:<16} {:>10} {:>10} {:>10} {:>10}",
        "shape", "ddspan", "tracing", "fastrace", "otel"
    );
    if dd_otel {
        head += &format!(" {:>10}", "dd-otel");
    }
    head += &format!(
        " {:>11} {:>11} {:>11}",
        "vs tracing", "vs fastrace", "vs otel"
    );
    if dd_otel {
        head += &format!(" {:>11}", "vs dd-otel");
    }
    println!("{head}");
    for group in [
        "child_span",
        "nested_depth_2",
        "two_string_tags",
        "err_return",
        "root_span",
    ] {
        let mut peers = vec!["ddspan", "tracing", "fastrace", "otel"];
        if dd_otel {
            peers.push("dd-otel");
        }
        let Some(means) = peers
            .iter()
            .map(|peer| mean_ns(group, peer))
            .collect::<Option<Vec<f64>>>()
        else {
            continue;
        };
        let mut line = format!("{group:<16}");
        for mean in &means {
            line += &format!(" {mean:>8.1}ns");
        }
        for mean in &means[1..] {
            line += &format!(" {:>10.2}x", means[0] / mean);
        }
        println!("{line}");
    }
    if let Some(disabled) = mean_ns("disabled", "ddspan") {
        println!("{:<16} {disabled:>8.2}ns", "disabled");
    }
    for (label, function) in [("disabled Ok", "ddspan_ok"), ("disabled Err", "ddspan_err")] {
        if let Some(mean) = mean_ns("disabled", function) {
            println!("{label:<16} {mean:>8.2}ns");
        }
    }
    if let Some(encode) = mean_ns("encode", "1000_spans_10_traces") {
        println!(
            "encoding: {:.2} M spans/s, {} bytes per span",
            1000.0 / encode * 1e3,
            ENCODED_BYTES_PER_SPAN.load(Ordering::Relaxed)
        );
    }
    stop_ddspan();
    println!(
        "(spans collected: ddspan shipped {} of {} created; tracing {}, fastrace {}; \
         otel exported {} of {} created)",
        DDSPAN_SHIPPED.load(Ordering::Relaxed),
        DDSPAN_HANDED.load(Ordering::Relaxed),
        TRACING_SPANS.load(Ordering::Relaxed),
        FASTRACE_SPANS.load(Ordering::Relaxed),
        OTEL_EXPORTED.load(Ordering::Relaxed),
        OTEL_CREATED[OTEL_SDK].load(Ordering::Relaxed),
    );
    #[cfg(feature = "bench-datadog-opentelemetry")]
    println!(
        "(dd-otel: {} spans of {} created reached the agent in {} trace payloads; {} other requests)",
        dd_otel::SHIPPED.load(Ordering::Relaxed),
        OTEL_CREATED[DD_OTEL].load(Ordering::Relaxed),
        dd_otel::PAYLOADS.load(Ordering::Relaxed),
        dd_otel::OTHER_REQUESTS.load(Ordering::Relaxed),
    );
}

fn main() {
    use tracing_subscriber::layer::SubscriberExt;
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(TimingLayer))
        .expect("the benchmark's subscriber");
    fastrace::set_reporter(CountingReporter, fastrace::collector::Config::default());
    let otel = start_otel();
    #[cfg(feature = "bench-datadog-opentelemetry")]
    let dd_otel = dd_otel::start();
    benches();
    Criterion::default().configure_from_args().final_summary();
    fastrace::flush();
    // Shutting down exports what the batch processors still hold.
    if let Err(error) = otel.shutdown() {
        eprintln!("otel shutdown: {error}");
    }
    #[cfg(feature = "bench-datadog-opentelemetry")]
    if let Err(error) = dd_otel.shutdown_with_timeout(Duration::from_secs(10)) {
        eprintln!("dd-otel shutdown: {error}");
    }
    print_ratios();
}
