//! The tracer as a service experiences it (issue #15, items 3 and 5), with
//! the writer shipping to a stand-in agent (`support/sink.rs`) on loopback:
//!
//! - many small traces: one thread loops over spans with no parent, each
//!   its own trace (background jobs, message consumers), in four shapes,
//!   against a fast agent, a slow one (200 ms an answer) and no agent at
//!   all; reports the application thread's time per span and how many
//!   spans were shipped;
//! - bursts of threads: 300 threads × 2000 spans, every span returning
//!   `Err`, each span its own trace and then one trace per thread;
//!   reports the share of spans delivered and what `flush` answered.
//!
//! `cargo bench -p ddspan-benches --bench field` (`FIELD_SPANS`: spans per
//! small-trace run, 2 000 000; `FIELD_ONLY`: only the small-trace shapes
//! whose name contains it).

use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddspan::{dd_span, tracer, AgentUrl, Config};

#[path = "support/sink.rs"]
mod sink;

#[dd_span]
#[inline(never)]
fn job(x: u64) -> u64 {
    std::hint::black_box(x)
}

#[dd_span]
#[inline(never)]
fn job_with_child(x: u64) -> u64 {
    job(x)
}

#[dd_span]
#[inline(never)]
fn failing(x: u64) -> Result<u64, std::io::Error> {
    if std::hint::black_box(x) > 0 {
        return Err(std::io::Error::other("no such row"));
    }
    Ok(x)
}

/// Where the writer ships to.
#[derive(Clone, Copy)]
enum Agent {
    /// The sink, decoding nothing (what it costs is not the tracer's).
    Fast,
    /// The sink, answering each payload after 200 ms.
    Slow,
    /// A port nothing listens on.
    Down,
}

fn start_tracer(agent: Agent, counted: &Arc<AtomicU64>) {
    let url = match agent {
        Agent::Fast => sink::start(sink::Payloads::Discard, Arc::clone(counted)),
        Agent::Slow => sink::start(sink::Payloads::DiscardSlowly, Arc::clone(counted)),
        Agent::Down => {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a port");
            let url = format!("http://{}", listener.local_addr().expect("an address"));
            drop(listener);
            url
        }
    };
    tracer::start(
        Config::builder()
            .service("field")
            .agent_url(AgentUrl::Http(url))
            .startup_logs(false)
            .queue_capacity(
                std::env::var("FIELD_QUEUE")
                    .ok()
                    .and_then(|q| q.parse::<usize>().ok())
                    .unwrap_or(8192),
            )
            .queue_max_spans(
                std::env::var("FIELD_QUEUE_SPANS")
                    .ok()
                    .and_then(|q| q.parse::<usize>().ok())
                    .unwrap_or(100_000),
            )
            .build(),
    );
}

/// One small-trace shape: `spans` per call of `body`.
struct Shape {
    name: &'static str,
    spans: u64,
    body: fn(u64),
}

const SHAPES: [Shape; 4] = [
    Shape {
        name: "#[dd_span] root alone",
        spans: 1,
        body: |i| {
            job(i);
        },
    },
    Shape {
        name: "tracer::trace root alone",
        spans: 1,
        body: |_| {
            let _root = tracer::trace("job");
        },
    },
    Shape {
        name: "tracer::trace root + #[dd_span] child",
        spans: 2,
        body: |i| {
            let _root = tracer::trace("job");
            job(i);
        },
    },
    Shape {
        name: "#[dd_span] root + #[dd_span] child",
        spans: 2,
        body: |i| {
            job_with_child(i);
        },
    },
];

fn small_traces(total_spans: u64) {
    println!("many small traces, {total_spans} spans per run, one thread:");
    println!(
        "{:<40} {:>6} {:>10} {:>12} {:>9}",
        "shape", "agent", "ns/span", "shipped", "shipped %"
    );
    // `FIELD_ONLY=<part of a shape's name>` runs only those (for profiles).
    let only = std::env::var("FIELD_ONLY").unwrap_or_default();
    for agent in [Agent::Fast, Agent::Slow, Agent::Down] {
        for shape in SHAPES.iter().filter(|s| s.name.contains(only.as_str())) {
            let counted = Arc::new(AtomicU64::new(0));
            start_tracer(agent, &counted);
            let calls = total_spans / shape.spans;
            let started = Instant::now();
            for i in 0..calls {
                (shape.body)(i);
            }
            let elapsed = started.elapsed();
            tracer::flush(Duration::from_secs(10));
            tracer::stop();
            // The sink counts the last payload after answering it.
            std::thread::sleep(Duration::from_millis(100));
            let spans = calls * shape.spans;
            let shipped = tracer::stats().spans_sent;
            println!(
                "{:<40} {:>6} {:>10.0} {:>12} {:>8.1}%",
                shape.name,
                match agent {
                    Agent::Fast => "fast",
                    Agent::Slow => "slow",
                    Agent::Down => "down",
                },
                elapsed.as_nanos() as f64 / spans as f64,
                shipped,
                shipped as f64 * 100.0 / spans as f64
            );
        }
    }
}

fn burst(threads: u64, spans_per_thread: u64, one_trace_per_thread: bool) {
    let counted = Arc::new(AtomicU64::new(0));
    start_tracer(Agent::Fast, &counted);
    let started = Instant::now();
    let workers: Vec<_> = (0..threads)
        .map(|_| {
            std::thread::spawn(move || {
                if one_trace_per_thread {
                    let _root = tracer::trace("worker");
                    for i in 1..spans_per_thread {
                        let _ = failing(i);
                    }
                } else {
                    for i in 0..spans_per_thread {
                        let _ = failing(i + 1);
                    }
                }
            })
        })
        .collect();
    for worker in workers {
        worker.join().expect("a worker");
    }
    let created = started.elapsed();
    let flushed = tracer::flush(Duration::from_secs(30));
    tracer::stop();
    std::thread::sleep(Duration::from_millis(200));
    let spans = threads * spans_per_thread;
    let stats = tracer::stats();
    let shipped = stats.spans_sent;
    println!(
        "{:<40} {:>8.1}% delivered ({shipped} of {spans}; dropped {}), created in {:.2} s, flush returned {flushed}",
        if one_trace_per_thread {
            "one trace per thread"
        } else {
            "each span its own trace"
        },
        shipped as f64 * 100.0 / spans as f64,
        stats.spans_dropped(),
        created.as_secs_f64(),
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench` probes harness=false benches with --list
    }
    let spans: u64 = std::env::var("FIELD_SPANS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2_000_000);
    small_traces(spans);
    if std::env::var_os("FIELD_ONLY").is_some() {
        return;
    }
    println!("bursts: 300 threads × 2000 spans, each returning Err, fast agent:");
    burst(300, 2000, false);
    burst(300, 2000, true);
}
