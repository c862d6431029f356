//! The `tracing` bridge in a real service's shape: tower-http's request
//! span, a `#[tracing::instrument]` handler step and `#[dd_span]` functions
//! in one Datadog trace, and JSON log lines that carry the trace's ids.
//!
//! `cargo run -p ddspan-example-web --bin tracing_bridge` (draws the trace
//! with `DDSPAN_CONSOLE=true`; ships it to a Datadog Agent when one is
//! reachable: `DD_TRACE_AGENT_URL`, or localhost:8126).

use std::time::Duration;

use ddspan::integrations::tracing::{CorrelatedFormat, DatadogLayer};
use ddspan::{dd_span, tracer};
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, Layer};

#[derive(Debug, thiserror::Error)]
#[error("no user {0}")]
struct NoUser(u64);

/// A ddspan span, child of the `tracing` span active where it is called.
#[dd_span(span.name = "db.query", resource.name = "SELECT user", span.type = "sql")]
fn load(id: u64) -> Result<String, NoUser> {
    tracing::info!(id, "querying");
    if id == 0 {
        return Err(NoUser(id));
    }
    Ok(format!("user-{id}"))
}

/// A `tracing` span: recorded as a Datadog span by the bridge, with its
/// fields as tags; `err` marks it when it returns `Err`.
#[tracing::instrument(err, fields(dd.resource = "GET /users/:id", otel.kind = "server"))]
async fn get_user(id: u64) -> Result<String, NoUser> {
    let name = load(id)?;
    // A `tracing` span inside a `#[dd_span]`-free stretch, still one tree.
    let _render = tracing::info_span!("render", bytes = name.len()).entered();
    Ok(name)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    tracing_subscriber::registry()
        .with(DatadogLayer::new().with_filter(LevelFilter::INFO))
        .with(fmt::layer().json().map_event_format(CorrelatedFormat::new))
        .init();
    for id in [7, 0] {
        match get_user(id).await {
            Ok(name) => tracing::info!(%name, "found"),
            Err(error) => tracing::warn!(%error, "not found"),
        }
    }
    tracer::flush(Duration::from_secs(5));
}
