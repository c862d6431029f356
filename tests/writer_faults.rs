//! The writer against an agent that fails on purpose: a scripted HTTP
//! server on loopback that answers each request with the next status of its
//! script and keeps the decoded payloads.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ddspan::tracer::{self, AgentUrl, Config};
use serde::Deserialize;

#[derive(Deserialize, Debug)]
struct WireSpan {
    name: String,
    meta: HashMap<String, String>,
    metrics: HashMap<String, f64>,
}

/// What the scripted agent received: one entry per request.
#[derive(Default)]
struct Received {
    payloads: Vec<Vec<Vec<WireSpan>>>,
    headers: Vec<HashMap<String, String>>,
}

struct ScriptedAgent {
    url: String,
    received: Arc<Mutex<Received>>,
}

impl ScriptedAgent {
    /// Answers request n with `script[n]` (the last entry repeats).
    fn start(script: Vec<(u16, &'static str)>) -> ScriptedAgent {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Received::default()));
        let sink = Arc::clone(&received);
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                let Ok(mut stream) = stream else { return };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut headers = HashMap::new();
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                loop {
                    line.clear();
                    reader.read_line(&mut line).unwrap();
                    let Some((k, v)) = line.trim_end().split_once(':') else {
                        break;
                    };
                    headers.insert(k.to_ascii_lowercase(), v.trim().to_owned());
                }
                let length: usize = headers["content-length"].parse().unwrap();
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let payload = rmp_serde::from_slice(&body).expect("a v0.4 payload");
                {
                    let mut received = sink.lock().unwrap();
                    received.payloads.push(payload);
                    received.headers.push(headers);
                }
                let (status, answer) = script[n.min(script.len() - 1)];
                let response = format!(
                    "HTTP/1.1 {status} X\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = stream.write_all(response.as_bytes());
            }
        });
        ScriptedAgent { url, received }
    }

    fn requests(&self) -> usize {
        self.received.lock().unwrap().payloads.len()
    }
}

static LOCK: Mutex<()> = Mutex::new(());

fn start_tracer(url: &str) -> std::sync::MutexGuard<'static, ()> {
    let guard = LOCK
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tracer::start(
        Config::builder()
            .service("faults")
            .env("test")
            .agent_url(AgentUrl::Http(url.to_owned()))
            .startup_logs(false)
            .retry_backoff(Duration::from_millis(20))
            .max_retries(2u32)
            .build(),
    );
    guard
}

#[test]
fn a_5xx_is_retried_then_delivered() {
    let agent = ScriptedAgent::start(vec![(503, "busy"), (200, "{\"rate_by_service\":{}}")]);
    let _guard = start_tracer(&agent.url);
    drop(tracer::trace("retried"));
    assert!(tracer::flush(Duration::from_secs(5)));
    let stats = tracer::stats();
    assert_eq!(agent.requests(), 2, "one failure, one retry");
    assert_eq!(
        (stats.spans_sent, stats.retries, stats.send_failures),
        (1, 1, 1)
    );
    assert_eq!(stats.spans_dropped(), 0);
    tracer::stop();
}

#[test]
fn a_4xx_is_never_retried_and_is_counted() {
    let agent = ScriptedAgent::start(vec![(400, "bad payload")]);
    let _guard = start_tracer(&agent.url);
    {
        let _root = tracer::trace("rejected");
        drop(tracer::trace("child"));
    }
    assert!(tracer::flush(Duration::from_secs(5)));
    let stats = tracer::stats();
    assert_eq!(agent.requests(), 1);
    assert_eq!(stats.retries, 0);
    assert_eq!(
        (
            stats.spans_dropped_send_failed,
            stats.traces_dropped_send_failed
        ),
        (2, 1)
    );
    tracer::stop();
}

#[test]
fn retries_are_bounded_when_the_agent_keeps_failing() {
    let agent = ScriptedAgent::start(vec![(500, "down")]);
    let _guard = start_tracer(&agent.url);
    drop(tracer::trace("lost"));
    assert!(tracer::flush(Duration::from_secs(5)));
    assert_eq!(agent.requests(), 3, "one attempt and two retries");
    let stats = tracer::stats();
    assert_eq!((stats.retries, stats.spans_dropped_send_failed), (2, 1));
    tracer::stop();
}

#[test]
fn stop_returns_within_its_timeout_when_no_agent_listens() {
    let closed = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let _guard = start_tracer(&url);
    drop(tracer::trace("nowhere"));
    let started = Instant::now();
    let delivered = tracer::stop();
    assert!(!delivered);
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(tracer::stats().spans_dropped_send_failed, 1);
}

#[test]
fn the_agents_sampling_rates_decide_later_traces() {
    let rates = r#"{"rate_by_service":{"service:faults,env:test":0.0,"service:,env:":1.0}}"#;
    let agent = ScriptedAgent::start(vec![(200, rates)]);
    let _guard = start_tracer(&agent.url);
    drop(tracer::trace("before-rates"));
    assert!(tracer::flush(Duration::from_secs(5)));
    drop(tracer::trace("after-rates"));
    drop(tracer::span("other-service").service("billing").start());
    assert!(tracer::flush(Duration::from_secs(5)));
    tracer::stop();

    let received = agent.received.lock().unwrap();
    let spans: Vec<&WireSpan> = received.payloads.iter().flatten().flatten().collect();
    let span = |name: &str| *spans.iter().find(|s| s.name == name).unwrap();
    let before = span("before-rates");
    assert_eq!(before.metrics["_sampling_priority_v1"], 1.0);
    assert_eq!(before.meta["_dd.p.dm"], "-0");
    let after = span("after-rates");
    assert_eq!(
        after.metrics["_sampling_priority_v1"], 0.0,
        "dropped, and still sent"
    );
    assert_eq!(after.metrics["_dd.agent_psr"], 0.0);
    assert!(!after.meta.contains_key("_dd.p.dm"));
    let other = span("other-service");
    assert_eq!(
        other.metrics["_sampling_priority_v1"], 1.0,
        "the default rate applies"
    );
    assert_eq!(other.meta["_dd.p.dm"], "-1");

    let headers = &received.headers[0];
    assert_eq!(headers["content-type"], "application/msgpack");
    assert_eq!(headers["x-datadog-trace-count"], "1");
    assert_eq!(headers["datadog-meta-lang"], "rust");
    assert_eq!(
        headers["datadog-meta-tracer-version"],
        env!("CARGO_PKG_VERSION")
    );
    assert!(!headers["datadog-meta-lang-version"].is_empty());
}
