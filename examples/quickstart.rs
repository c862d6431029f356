//! The quick start: a small instrumented program. It draws every trace it
//! produces in the terminal, and ships them to a Datadog Agent when one is
//! reachable (`DD_TRACE_AGENT_URL`, or localhost:8126).
//!
//! `cargo run --example quickstart`

use std::collections::HashMap;
use std::time::Duration;

use ddspan::tracer;
use ddspan::{dd_ignore, dd_span, Config};

#[derive(Debug, thiserror::Error)]
enum ShopError {
    #[error("no product {0}")]
    UnknownProduct(u32),
}

struct Catalog {
    prices: HashMap<u32, u32>,
}

#[dd_span(component = "catalog")]
impl Catalog {
    fn price(&self, product: u32) -> Result<u32, ShopError> {
        std::thread::sleep(Duration::from_millis(2));
        self.prices
            .get(&product)
            .copied()
            .ok_or(ShopError::UnknownProduct(product))
    }

    #[dd_ignore]
    fn len(&self) -> usize {
        self.prices.len()
    }
}

#[dd_span(span.name = "cart.total", resource.name = "POST /cart/total", span.type = "web")]
fn total(catalog: &Catalog, products: &[u32]) -> u32 {
    products
        .iter()
        .filter_map(|p| catalog.price(*p).ok()) // product 9 does not exist: an error span
        .map(
            #[dd_span(span.name = "tax", rate = 0.2)]
            |price| price + price / 5,
        )
        .sum()
}

#[dd_span(db.system = "redis")]
async fn cache_total(total: u32) -> u32 {
    tokio::time::sleep(Duration::from_millis(3)).await;
    total
}

#[dd_span(span.name = "quickstart.run")]
fn run() -> u32 {
    let catalog = Catalog {
        prices: HashMap::from([(1, 100), (2, 250)]),
    };
    let total = total(&catalog, &[1, 2, 9]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let cached = runtime.block_on(cache_total(total));
    println!("{} products, total with tax: {cached}", catalog.len());
    cached
}

fn main() {
    let config = Config::builder()
        .service("quickstart")
        .console(true)
        .startup_logs(false)
        .build();
    let agent = config.agent_url().to_string();
    tracer::start(config);
    run();
    let delivered = tracer::stop();
    let stats = tracer::stats();
    if delivered && stats.spans_sent > 0 {
        println!("shipped {} spans to the agent at {agent}", stats.spans_sent);
    } else {
        println!(
            "no agent took the trace at {agent} (the tree above is all there is).\n\
             To ship it, run Datadog's test agent and try again:\n  \
             python3 -m venv /tmp/dd && /tmp/dd/bin/pip install ddapm-test-agent && /tmp/dd/bin/ddapm-test-agent"
        );
    }
}
