//! The `tracing` bridge under a global filter (its own binary: the filter
//! belongs to the process-wide subscriber): spans and events the filter
//! turns off do not exist, and what they would have contained attaches to
//! the nearest span that does; a per-layer level filter on the bridge alone
//! leaves the other layers their spans.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;

use ddspan::integrations::tracing::DatadogLayer;
use ddspan::tracer;
use serde_json::Value;
use support::agent::{flatten, span_by_name};
use support::session::traced;
use tracing_subscriber::filter::{LevelFilter, Targets};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::Layer;

/// Spans seen by a layer beside the bridge.
static SEEN_BESIDE: AtomicUsize = AtomicUsize::new(0);

struct CountSpans;

impl<S: tracing::Subscriber> Layer<S> for CountSpans {
    fn on_new_span(
        &self,
        _: &tracing::span::Attributes<'_>,
        _: &tracing::span::Id,
        _: tracing_subscriber::layer::Context<'_, S>,
    ) {
        SEEN_BESIDE.fetch_add(1, Ordering::Relaxed);
    }
}

fn subscriber() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // Global: nothing below DEBUG, and nothing at all from `noisy`.
        let global = Targets::new()
            .with_default(LevelFilter::DEBUG)
            .with_target("noisy", LevelFilter::OFF);
        let subscriber = tracing_subscriber::registry()
            .with(global)
            .with(DatadogLayer::new().with_filter(LevelFilter::INFO))
            .with(CountSpans);
        tracing::subscriber::set_global_default(subscriber).unwrap();
    });
}

fn id(span: &Value, key: &str) -> u64 {
    span[key].as_u64().unwrap()
}

#[test]
fn filtered_spans_leave_their_children_to_the_nearest_recorded_ancestor() {
    subscriber();
    let traced = traced();
    let before = SEEN_BESIDE.load(Ordering::Relaxed);
    {
        let _top = tracing::info_span!("top").entered();
        // Off for everyone (global filter): it does not exist.
        let _trace_level = tracing::trace_span!("trace_level").entered();
        let _noisy = tracing::info_span!(target: "noisy", "noisy").entered();
        // Off for the bridge only (its per-layer filter).
        let _debug_level = tracing::debug_span!("debug_level").entered();
        let _middle = tracing::info_span!("middle").entered();
        drop(tracer::trace("leaf"));
        drop(tracing::warn_span!("warn_leaf").entered());
    }
    let spans = flatten(traced.collect(4));
    assert_eq!(spans.len(), 4, "{spans:#?}");
    let (top, middle) = (span_by_name(&spans, "top"), span_by_name(&spans, "middle"));
    assert_eq!(id(middle, "parent_id"), id(top, "span_id"));
    for leaf in ["leaf", "warn_leaf"] {
        assert_eq!(
            id(span_by_name(&spans, leaf), "parent_id"),
            id(middle, "span_id"),
            "{leaf}"
        );
    }
    assert_eq!(
        SEEN_BESIDE.load(Ordering::Relaxed) - before,
        4,
        "the other layer still sees the debug span: top, debug_level, middle, warn_leaf"
    );
}
