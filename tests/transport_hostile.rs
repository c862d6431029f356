//! The writer's HTTP client against agents that answer with hostile bytes
//! ([`Reply::raw`]), over the agent's unix socket and over TCP: no panic,
//! a bounded read of what the agent sends, and the request's one deadline
//! kept however slowly the answer comes.
#![cfg(unix)]

mod support;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Once;
use std::time::Duration;

use ddspan::tracer;
use ddspan::AgentUrl;
use support::fault_agent::{FaultAgent, Reply};
use support::session::wait_until;

/// Catches a hang only: the requests below end in well under a second.
const HANG: Duration = Duration::from_secs(120);

/// Panics anywhere in this binary, caught or not (the sender thread turns
/// a panic of the HTTP client into a failed send: invisible otherwise).
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

fn socket_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("ddspan-{}-{name}.sock", std::process::id()))
}

/// The tracer pointed at `url`: no retries (one request per payload) and
/// the given request timeout.
fn tracer_at(url: AgentUrl, timeout: Duration) -> std::sync::MutexGuard<'static, ()> {
    support::session::tracer_at("http://127.0.0.1:9", |b| {
        b.agent_url(url).max_retries(0u32).request_timeout(timeout)
    })
}

/// Sends one span and waits until the agent's raw answer ended (written
/// out, or the client hung up); returns the bytes the client took.
fn one_request(agent: &FaultAgent) -> u64 {
    drop(tracer::trace("hostile"));
    wait_until("the raw answer to end", HANG, || {
        !agent.requests().is_empty()
    });
    // Settled: delivered, dropped or unconfirmed, nothing left to send (a
    // hostile answer is a loss, so the flush itself may say `false`).
    tracer::flush(HANG);
    assert_eq!(tracer::stats().spans_buffered, 0, "the payload is settled");
    agent.requests()[0].written
}

/// `HTTP/1.1 200 OK` and then `bytes` bytes without a newline, 64 KiB at
/// a time, unless the client hangs up first.
fn endless_status_line(bytes: u64) -> Reply {
    Reply::raw(move |out| {
        out.write_all(b"HTTP/1.1 200 OK")?;
        let block = [b'A'; 64 * 1024];
        let mut sent = 0;
        while sent < bytes {
            out.write_all(&block)?;
            sent += block.len() as u64;
        }
        Ok(())
    })
}

/// A valid status line, then one header byte every 20 ms, `bytes` of them,
/// unless the client hangs up first.
fn slow_drip(bytes: usize) -> Reply {
    Reply::raw(move |out| {
        out.write_all(b"HTTP/1.1 200 OK\r\nX-Slow: ")?;
        for _ in 0..bytes {
            std::thread::sleep(Duration::from_millis(20));
            out.write_all(b"a")?;
            out.flush()?;
        }
        out.write_all(b"\r\nContent-Length: 0\r\n\r\n")
    })
}

#[test]
fn a_unix_socket_answer_with_a_chunk_size_near_u64_max_does_not_panic() {
    count_panics();
    let socket = socket_path("chunk");
    // A first chunk, then one whose size overflows any running total.
    let agent = FaultAgent::start_unix(&socket, |_| {
        Reply::raw(|out| {
            out.write_all(
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nabc\r\nFFFFFFFFFFFFFFFF\r\nabc\r\n0\r\n\r\n",
            )
        })
    });
    let _lock = tracer_at(agent.agent_url(), Duration::from_secs(2));
    one_request(&agent);
    assert_eq!(PANICS.load(Ordering::SeqCst), 0, "the HTTP client panicked");
    // The status came whole: the agent took the payload. Only the body
    // (the sampling rates) was unreadable.
    let stats = tracer::stats();
    assert_eq!((stats.spans_sent, stats.spans_dropped()), (1, 0), "{stats}");
}

#[test]
fn a_unix_socket_status_line_without_a_newline_is_read_boundedly() {
    let socket = socket_path("newline");
    // 64 MiB: what a client without a bound reads whole.
    let agent = FaultAgent::start_unix(&socket, |_| endless_status_line(64 << 20));
    let _lock = tracer_at(agent.agent_url(), Duration::from_secs(10));
    let written = one_request(&agent);
    // What the client read (a few KiB) plus the socket's buffers.
    assert!(
        written < 4 << 20,
        "the client took {written} bytes of one status line"
    );
    let stats = tracer::stats();
    assert_eq!(
        (stats.send_failures, stats.spans_unconfirmed),
        (1, 1),
        "{stats}"
    );
}

#[test]
fn a_unix_socket_answer_dripping_one_byte_at_a_time_keeps_the_request_deadline() {
    let socket = socket_path("drip");
    // 1500 bytes at 50 per second: 30 s, for a request timeout of 300 ms.
    let agent = FaultAgent::start_unix(&socket, |_| slow_drip(1500));
    let _lock = tracer_at(agent.agent_url(), Duration::from_millis(300));
    let written = one_request(&agent);
    // About 15 bytes come in 300 ms; 300 would be 6 s.
    assert!(
        written < 300,
        "the client waited for {written} bytes of a slow answer"
    );
    let stats = tracer::stats();
    assert_eq!(
        (stats.send_failures, stats.spans_unconfirmed),
        (1, 1),
        "{stats}"
    );
}

#[test]
fn over_tcp_the_same_client_bounds_the_status_line_and_keeps_the_deadline() {
    let agent = FaultAgent::start(|_| endless_status_line(64 << 20));
    let _lock = tracer_at(agent.agent_url(), Duration::from_secs(10));
    let written = one_request(&agent);
    assert!(written < 16 << 20, "the client took {written} bytes");
    drop(_lock);

    let agent = FaultAgent::start(|_| slow_drip(1500));
    let _lock = tracer_at(agent.agent_url(), Duration::from_millis(300));
    let written = one_request(&agent);
    assert!(written < 300, "the client waited for {written} bytes");
    // Sent whole, answered with garbage: perhaps taken, never sent again.
    assert_eq!(tracer::stats().spans_unconfirmed, 1);
}
