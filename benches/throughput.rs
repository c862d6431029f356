//! The writer end to end: two threads create traces (a root and nine
//! children each); the writer ships them to a local HTTP sink that decodes
//! every payload and counts the spans. Two measurements in one run:
//!
//! - paced: the producers hold a fixed total rate (1 M spans/s by default)
//!   for 10 s with the default configuration; reports spans/s shipped and
//!   whether any span was lost. Then a short sweep of rising rates shows the
//!   highest rate shipped with zero loss;
//! - flat out: the producers create as fast as they can; shows where the
//!   bounded queue starts dropping (counted, never blocking).
//!
//! `cargo bench -p ddspan-benches --bench throughput`; `THROUGHPUT_SECONDS` (10) and
//! `THROUGHPUT_RATE` (spans/s, 1000000) change the paced run.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddspan::tracer;
use ddspan::{AgentUrl, Config, ConfigBuilder, LocalSpanGuard, SpanSpec};

#[path = "support/sink.rs"]
mod sink;

static ROOT: SpanSpec = SpanSpec::new("request");
static CHILD: SpanSpec = SpanSpec::new("step");

/// What one run came to.
struct Run {
    created: u64,
    shipped: u64,
    dropped: u64,
    seconds: f64,
}

impl Run {
    fn report(&self, label: &str) {
        println!(
            "{label}: created {} spans in {:.1} s ({:.2} M/s); shipped {} ({:.2} M/s); lost {}",
            self.created,
            self.seconds,
            self.created as f64 / self.seconds / 1e6,
            self.shipped,
            self.shipped as f64 / self.seconds / 1e6,
            self.created - self.shipped,
        );
    }
}

/// Two producers for `duration`, together at `rate` spans/s (`None`: as
/// fast as they can), against a fresh tracer and sink.
fn run(
    rate: Option<f64>,
    duration: Duration,
    configure: impl FnOnce(ConfigBuilder) -> ConfigBuilder,
) -> Run {
    let received = Arc::new(AtomicU64::new(0));
    let url = sink::start(sink::Payloads::Count, Arc::clone(&received));
    let builder = Config::builder()
        .service("throughput")
        .agent_url(AgentUrl::Http(url))
        .startup_logs(false);
    tracer::start(configure(builder).build());
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, created) = (Arc::clone(&stop), Arc::clone(&created));
            // Each producer's share of the rate, as time per trace of 10.
            let per_trace = rate.map(|r| Duration::from_secs_f64(20.0 / r));
            std::thread::spawn(move || {
                let mut count = 0u64;
                let mut due = Instant::now();
                while !stop.load(Ordering::Relaxed) {
                    for _ in 0..100 {
                        let _root = LocalSpanGuard::start(&ROOT);
                        for _ in 0..9 {
                            drop(LocalSpanGuard::start(&CHILD));
                        }
                    }
                    count += 1000;
                    if let Some(per_trace) = per_trace {
                        due += per_trace * 100;
                        let now = Instant::now();
                        if due > now {
                            std::thread::sleep(due - now);
                        }
                    }
                }
                created.fetch_add(count, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::sleep(duration);
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.join().expect("a producer");
    }
    let seconds = started.elapsed().as_secs_f64();
    tracer::stop();
    let stats = tracer::stats();
    // Let the sink count the last payload.
    std::thread::sleep(Duration::from_millis(200));
    let run = Run {
        created: created.load(Ordering::Relaxed),
        shipped: received.load(Ordering::Relaxed),
        dropped: stats.spans_dropped(),
        seconds,
    };
    assert_eq!(
        run.created,
        run.shipped + run.dropped,
        "every span is either shipped or counted as dropped: {stats}"
    );
    run
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench` probes harness=false benches with --list
    }
    let seconds: u64 = std::env::var("THROUGHPUT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let rate: f64 = std::env::var("THROUGHPUT_RATE")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1e6);
    let duration = Duration::from_secs(seconds);

    let paced = run(Some(rate), duration, |b| b);
    paced.report(&format!(
        "paced at {:.2} M/s, default configuration",
        rate / 1e6
    ));
    println!(
        "  zero loss: {}",
        if paced.dropped == 0 { "yes" } else { "NO" }
    );

    let mut best = None;
    for step in [0.5, 1.0, 1.5, 2.0, 3.0, 4.0] {
        let sweep = run(Some(step * 1e6), Duration::from_secs(3), |b| b);
        sweep.report(&format!("  sweep {step:.1} M/s"));
        if sweep.dropped > 0 {
            break;
        }
        best = Some(sweep.shipped as f64 / sweep.seconds);
    }
    match best {
        Some(best) => println!(
            "highest rate shipped with zero loss: {:.2} M spans/s",
            best / 1e6
        ),
        None => println!("no rate of the sweep shipped with zero loss"),
    }

    let flat_out = run(None, duration, |b| {
        b.queue_capacity(65_536usize).queue_max_spans(usize::MAX)
    });
    flat_out.report("flat out, queue of 65536 chunks");
}
