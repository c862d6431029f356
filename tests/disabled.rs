//! Tracing off costs nothing: a `#[dd_span]` function returning `Err`
//! formats nothing (its error's `Display` and `source()` are not called)
//! when no span records.

use std::sync::atomic::{AtomicUsize, Ordering};

use ddspan::{dd_span, tracer, Config};

static FORMATTED: AtomicUsize = AtomicUsize::new(0);

#[derive(Debug)]
struct Counted;

impl std::fmt::Display for Counted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        FORMATTED.fetch_add(1, Ordering::SeqCst);
        f.write_str("counted")
    }
}

impl std::error::Error for Counted {}

#[dd_span]
fn fails() -> Result<(), Counted> {
    Err(Counted)
}

#[dd_span]
async fn fails_later() -> Result<(), Counted> {
    Err(Counted)
}

#[test]
fn an_err_is_not_formatted_when_tracing_is_off() {
    tracer::start(Config::builder().enabled(false).startup_logs(false).build());
    for _ in 0..3 {
        assert!(fails().is_err());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    assert!(runtime.block_on(fails_later()).is_err());
    assert_eq!(FORMATTED.load(Ordering::SeqCst), 0);
    tracer::stop();
}
