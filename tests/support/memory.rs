//! The global tracer keeping finished spans in memory, for tests that need
//! no agent. Test files include this file alone
//! (`#[path = "support/memory.rs"] mod memory;`) so that they do not
//! compile the agent harness of `support/mod.rs`.
#![allow(unreachable_pub)]

use std::sync::{Mutex, MutexGuard, PoisonError};

use ddspan::tracer;
use ddspan::{Config, MemoryExporter};

/// Serialises the tests of one binary: the tracer is process-wide.
static TRACER_LOCK: Mutex<()> = Mutex::new(());

/// Starts the tracer for `service` with a fresh in-memory exporter; the
/// guard keeps other tests of this binary off the tracer until dropped.
pub fn capture(service: &str) -> (MutexGuard<'static, ()>, MemoryExporter) {
    let guard = TRACER_LOCK.lock().unwrap_or_else(PoisonError::into_inner);
    let spans = MemoryExporter::new();
    tracer::start(
        Config::builder()
            .service(service)
            .startup_logs(false)
            .memory_exporter(spans.clone())
            .build(),
    );
    (guard, spans)
}
