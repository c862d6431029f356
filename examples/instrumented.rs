//! `#[dd_span]` on the shapes of a real service: functions, methods, an
//! `impl` block with `#[dd_ignore]`, closures, async code and errors.
//!
//! `cargo run --example instrumented` (with an agent on localhost:8126, or
//! `DD_TRACE_AGENT_URL`, to see the trace).

use std::collections::HashMap;
use std::time::Duration;

use ddspan::{dd_ignore, dd_span};

#[derive(Debug, thiserror::Error)]
enum StoreError {
    #[error("no order {0}")]
    Missing(u64),
}

struct Store {
    orders: HashMap<u64, u64>,
}

#[dd_span(component = "store", peer.service = "postgres")]
impl Store {
    fn total(&self, id: u64) -> Result<u64, StoreError> {
        self.orders.get(&id).copied().ok_or(StoreError::Missing(id))
    }

    async fn total_async(&self, id: u64) -> Result<u64, StoreError> {
        tokio::time::sleep(Duration::from_millis(2)).await;
        self.total(id)
    }

    #[dd_ignore]
    fn len(&self) -> usize {
        self.orders.len()
    }
}

#[dd_span(span.name = "checkout", resource.name = "POST /checkout", span.type = "web")]
fn checkout(store: &Store, ids: &[u64]) -> Vec<u64> {
    ids.iter()
        .filter_map(
            #[dd_span(span.name = "lookup")]
            |id| store.total(*id).ok(),
        )
        .collect()
}

#[dd_span]
fn main() {
    let store = Store {
        orders: HashMap::from([(1, 250), (2, 75)]),
    };
    println!("totals: {:?}", checkout(&store, &[1, 2, 3])); // order 3 is an error span
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    println!("async: {:?}", runtime.block_on(store.total_async(2)));
    println!("{} orders", store.len());
}
