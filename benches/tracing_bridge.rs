//! What a `tracing` span costs when it becomes a Datadog span: a
//! `#[tracing::instrument]` function under a registry with ddspan's
//! `DatadogLayer`, side by side in one run with the same function under
//! `tracing-opentelemetry` on the OpenTelemetry SDK (batch processor, an
//! exporter that counts and drops), the same function under a registry
//! with no layer (the floor any layer starts from) and a plain
//! `#[dd_span]` function. With
//! `--features bench-datadog-opentelemetry`, also `tracing-opentelemetry`
//! on Datadog's `datadog-opentelemetry` tracer, shipping to a stand-in
//! agent. Each peer has its own subscriber (`Dispatch`), the one in scope
//! while its functions run. Prints a ratio table at the end.
//!
//! `cargo bench -p ddspan-benches --bench tracing_bridge [--features bench-datadog-opentelemetry]`
#![allow(missing_docs)] // criterion_group! generates undocumented functions

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, Criterion};
use ddspan::integrations::tracing::DatadogLayer;
use ddspan::{dd_span, tracer, AgentUrl, Config};
use opentelemetry::trace::TracerProvider;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use tracing::Dispatch;
use tracing_subscriber::layer::SubscriberExt;

#[path = "support/sink.rs"]
mod sink;

// ---------------------------------------------------------------- the functions

#[dd_span]
#[inline(never)]
fn dd_leaf(x: u64) -> u64 {
    black_box(x)
}

#[dd_span(component = "bench", peer.service = "db")]
#[inline(never)]
fn dd_tagged(x: u64) -> u64 {
    black_box(x)
}

#[tracing::instrument(skip_all)]
#[inline(never)]
fn tr_leaf(x: u64) -> u64 {
    black_box(x)
}

#[tracing::instrument(skip_all, fields(component = "bench", peer.service = "db"))]
#[inline(never)]
fn tr_tagged(x: u64) -> u64 {
    black_box(x)
}

// ---------------------------------------------------------------- the peers

/// Counts the spans of each batch and drops them.
#[derive(Debug)]
struct DroppingExporter(Arc<AtomicU64>);

impl SpanExporter for DroppingExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

static OTEL_EXPORTED: std::sync::LazyLock<Arc<AtomicU64>> = std::sync::LazyLock::new(Arc::default);

/// `tracing-opentelemetry` on the OpenTelemetry SDK.
fn otel_sdk() -> (Dispatch, SdkTracerProvider) {
    let provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(DroppingExporter(Arc::clone(&OTEL_EXPORTED))).build(),
        )
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        provider,
    )
}

/// `tracing-opentelemetry` on `datadog-opentelemetry`, as its README
/// starts it, pointed at a stand-in agent, without remote configuration or
/// telemetry (ddspan has neither), with ddspan's partial flush.
#[cfg(feature = "bench-datadog-opentelemetry")]
fn dd_otel(agent: String) -> (Dispatch, SdkTracerProvider) {
    let config = datadog_opentelemetry::configuration::Config::builder()
        .set_service("bench".into())
        .set_trace_agent_url(agent)
        .set_remote_config_enabled(false)
        .set_telemetry_enabled(false)
        .set_trace_partial_flush_enabled(true)
        .set_trace_partial_flush_min_spans(1000)
        .build();
    let (provider, _propagator) = datadog_opentelemetry::tracing()
        .with_config(config)
        .init_local();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    (
        Dispatch::new(tracing_subscriber::registry().with(layer)),
        provider,
    )
}

/// ddspan against a stand-in agent that takes every payload.
fn start_ddspan(agent: String) {
    tracer::start(
        Config::builder()
            .service("bench")
            .agent_url(AgentUrl::Http(agent))
            .startup_logs(false)
            .partial_flush_enabled(true)
            .partial_flush_min_spans(1000usize)
            .max_retries(0u32)
            .build(),
    );
}

struct Peers {
    /// A registry and no layer: what every `tracing` layer starts from.
    registry: Dispatch,
    bridge: Dispatch,
    otel: Dispatch,
    #[cfg(feature = "bench-datadog-opentelemetry")]
    dd_otel: Dispatch,
}

static PEERS: std::sync::OnceLock<Peers> = std::sync::OnceLock::new();

fn peers() -> &'static Peers {
    PEERS.get().expect("made in main")
}

// ---------------------------------------------------------------- the runs

/// One shape: each peer calls its function `iters` times inside an active
/// parent of its own (`parent`), or with nothing active.
fn shape(c: &mut Criterion, group: &str, dd: fn(u64) -> u64, tr: fn(u64) -> u64, parent: bool) {
    let mut g = c.benchmark_group(group);
    g.bench_function("dd_span", |b| {
        let _parent = parent.then(|| tracer::trace("parent"));
        b.iter(|| dd(black_box(1)));
    });
    let mut tracing_peer = |name: &str, dispatch: &Dispatch| {
        g.bench_function(name, |b| {
            tracing::dispatcher::with_default(dispatch, || {
                let _parent = parent.then(|| tracing::info_span!("parent").entered());
                b.iter(|| tr(black_box(1)));
            });
        });
    };
    tracing_peer("registry", &peers().registry);
    tracing_peer("bridge", &peers().bridge);
    tracing_peer("tracing-otel", &peers().otel);
    #[cfg(feature = "bench-datadog-opentelemetry")]
    tracing_peer("tracing-dd-otel", &peers().dd_otel);
    g.finish();
}

fn shapes(c: &mut Criterion) {
    shape(c, "bridge_child_span", dd_leaf, tr_leaf, true);
    shape(c, "bridge_two_tags", dd_tagged, tr_tagged, true);
    shape(c, "bridge_root_span", dd_leaf, tr_leaf, false);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = shapes
}

/// Mean time of one benchmark from criterion's own estimates, in ns.
fn mean_ns(group: &str, function: &str) -> Option<f64> {
    let target = std::env::var("CARGO_TARGET_DIR")
        .unwrap_or_else(|_| format!("{}/../target", env!("CARGO_MANIFEST_DIR")));
    let path = format!("{target}/criterion/{group}/{function}/new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["mean"]["point_estimate"].as_f64()
}

fn print_ratios() {
    let mut peers = vec!["dd_span", "registry", "bridge", "tracing-otel"];
    if cfg!(feature = "bench-datadog-opentelemetry") {
        peers.push("tracing-dd-otel");
    }
    let mut head = format!("\n{:<18}", "shape");
    for peer in &peers {
        head += &format!(" {peer:>15}");
    }
    for peer in &peers[3..] {
        head += &format!(" {:>18}", format!("bridge/{peer}"));
    }
    println!("{head} {:>16}", "bridge/dd_span");
    for group in ["bridge_child_span", "bridge_two_tags", "bridge_root_span"] {
        let Some(means) = peers
            .iter()
            .map(|peer| mean_ns(group, peer))
            .collect::<Option<Vec<f64>>>()
        else {
            continue;
        };
        let mut line = format!("{group:<18}");
        for mean in &means {
            line += &format!(" {mean:>13.1}ns");
        }
        for mean in &means[3..] {
            line += &format!(" {:>17.2}x", means[2] / mean);
        }
        println!("{line} {:>15.2}x", means[2] / means[0]);
    }
}

fn main() {
    let agent = sink::start(sink::Payloads::Discard, Default::default());
    start_ddspan(agent.clone());
    let (otel, otel_provider) = otel_sdk();
    #[cfg(feature = "bench-datadog-opentelemetry")]
    let (dd_otel, dd_otel_provider) = dd_otel(agent);
    let _ = PEERS.set(Peers {
        registry: Dispatch::new(tracing_subscriber::registry()),
        bridge: Dispatch::new(tracing_subscriber::registry().with(DatadogLayer::new())),
        otel,
        #[cfg(feature = "bench-datadog-opentelemetry")]
        dd_otel,
    });
    benches();
    Criterion::default().configure_from_args().final_summary();
    if let Err(error) = otel_provider.shutdown() {
        eprintln!("otel shutdown: {error}");
    }
    #[cfg(feature = "bench-datadog-opentelemetry")]
    if let Err(error) = dd_otel_provider.shutdown_with_timeout(Duration::from_secs(10)) {
        eprintln!("dd-otel shutdown: {error}");
    }
    tracer::stop();
    let stats = tracer::stats();
    print_ratios();
    println!(
        "(ddspan shipped {} spans, dropped {}; otel exported {})",
        stats.spans_sent,
        stats.spans_dropped_queue_full + stats.spans_dropped_send_failed,
        OTEL_EXPORTED.load(Ordering::Relaxed),
    );
}
