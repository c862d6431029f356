//! A stand-in agent for the benches: an HTTP/1.1 server on 127.0.0.1 that
//! reads every `PUT`, answers `200 {}` on the same (kept-alive) connection,
//! and either decodes the v0.4 payload to count its spans or discards it.
#![allow(dead_code)] // each bench uses part of it

use std::io::{BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Also the other stand-in agents' request reading.
#[path = "http.rs"]
pub(crate) mod http;

/// What the sink does with a payload.
#[derive(Clone, Copy)]
pub(crate) enum Payloads {
    /// Decode it (as an agent does) and add its spans to the counter.
    Count,
    /// Read it and throw it away: the cheapest agent there can be.
    Discard,
    /// Throw it away and answer after [`SLOW_ANSWER`]: an agent that is
    /// up but overloaded.
    DiscardSlowly,
}

/// How long [`Payloads::DiscardSlowly`] takes to answer.
pub(crate) const SLOW_ANSWER: std::time::Duration = std::time::Duration::from_millis(200);

/// Starts a sink; returns its URL. `spans` counts what [`Payloads::Count`]
/// decoded.
pub(crate) fn start(payloads: Payloads, spans: Arc<AtomicU64>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a port");
    let url = format!("http://{}", listener.local_addr().expect("an address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let spans = Arc::clone(&spans);
            std::thread::spawn(move || {
                let mut writer = stream.try_clone().expect("a stream");
                let mut reader = BufReader::new(stream);
                let mut body = Vec::new();
                while let Some(path) = http::read_request(&mut reader, &mut body) {
                    if let Payloads::Count = payloads {
                        let count = http::trace_spans(&path, &body).expect("a valid payload");
                        spans.fetch_add(count, Ordering::Relaxed);
                    }
                    if let Payloads::DiscardSlowly = payloads {
                        std::thread::sleep(SLOW_ANSWER);
                    }
                    let _ = writer.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}");
                }
            });
        }
    });
    url
}
