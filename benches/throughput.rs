//! The writer end to end: two threads create traces (a root and nine
//! children each) as fast as they can for 10 s; the writer ships them to a
//! local HTTP sink that decodes every payload and counts the spans. Prints
//! spans shipped per second and what was lost.
//!
//! `cargo bench --bench throughput` (`THROUGHPUT_SECONDS` changes the length)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use ddspan::tracer::{self, AgentUrl, Config};
use ddspan::{LocalSpanGuard, SpanSpec};

static ROOT: SpanSpec = SpanSpec::new("request");
static CHILD: SpanSpec = SpanSpec::new("step");

/// Counts the spans of every v0.4 payload it receives.
fn sink(received: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let received = Arc::clone(&received);
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("a stream");
                let mut reader = BufReader::new(stream);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let mut length = 0;
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap_or(0);
                        let header = line.trim_end();
                        if header.is_empty() {
                            break;
                        }
                        if let Some((name, value)) = header.split_once(':') {
                            if name.eq_ignore_ascii_case("content-length") {
                                length = value.trim().parse().unwrap_or(0);
                            }
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let traces: Vec<Vec<serde::de::IgnoredAny>> =
                        rmp_serde::from_slice(&body).expect("a valid payload");
                    let spans: usize = traces.iter().map(Vec::len).sum();
                    received.fetch_add(spans as u64, Ordering::Relaxed);
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                }
            });
        }
    });
    url
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench` probes harness=false benches with --list
    }
    let seconds: u64 = std::env::var("THROUGHPUT_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(10);
    let received = Arc::new(AtomicU64::new(0));
    let url = sink(Arc::clone(&received));
    tracer::start(
        Config::builder()
            .service("throughput")
            .agent_url(AgentUrl::Http(url))
            .startup_logs(false)
            .queue_capacity(65_536usize)
            .build(),
    );
    let stop = Arc::new(AtomicBool::new(false));
    let created = Arc::new(AtomicU64::new(0));
    let producers: Vec<_> = (0..2)
        .map(|_| {
            let (stop, created) = (Arc::clone(&stop), Arc::clone(&created));
            std::thread::spawn(move || {
                let mut count = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let _root = LocalSpanGuard::start(&ROOT);
                    for _ in 0..9 {
                        drop(LocalSpanGuard::start(&CHILD));
                    }
                    count += 10;
                }
                created.fetch_add(count, Ordering::Relaxed);
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    stop.store(true, Ordering::Relaxed);
    for producer in producers {
        producer.join().expect("a producer");
    }
    let produced_for = started.elapsed();
    tracer::stop();
    let stats = tracer::stats();
    // Let the sink count the last payload.
    std::thread::sleep(Duration::from_millis(200));
    let shipped = received.load(Ordering::Relaxed);
    let created = created.load(Ordering::Relaxed);
    println!(
        "created {created} spans in {:.1} s ({:.2} M/s from 2 threads); shipped {shipped} ({:.2} M/s); lost {} \
         (queue full {}, send failed {})",
        produced_for.as_secs_f64(),
        created as f64 / produced_for.as_secs_f64() / 1e6,
        shipped as f64 / produced_for.as_secs_f64() / 1e6,
        created - shipped,
        stats.spans_dropped_queue_full,
        stats.spans_dropped_send_failed,
    );
    assert_eq!(
        created,
        shipped + stats.spans_dropped(),
        "every span is either shipped or counted as dropped"
    );
}
