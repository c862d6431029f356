//! A stand-in agent for `--bench whole_process`: an HTTP/1.1 server on
//! 127.0.0.1 that takes what every tracer of that bench sends, answers as
//! the Datadog Agent does, and counts what arrived: the spans it decodes
//! and the bytes of the request bodies that carried them.
//!
//! - `PUT`/`POST /v0.4/traces` (ddspan, fastrace-datadog,
//!   datadog-opentelemetry) and `/v0.5/traces`: msgpack, decoded to count
//!   the spans; answered `200 {"rate_by_service":{}}`.
//! - `POST /v1/traces` (OTLP/HTTP, protobuf): decoded as an
//!   `ExportTraceServiceRequest`; answered `200` with an empty
//!   `ExportTraceServiceResponse`.
//! - `GET /info`: what a Datadog Agent 7 answers: its endpoints
//!   (`/v0.5/traces` among them, which ddspan then uses) and
//!   `client_drop_p0s` (ddspan then computes client-side stats and sends
//!   them to `/v0.6/stats`); with `WHOLE_PROCESS_INFO=empty`, `200 {}`
//!   (an agent that lists no endpoints: tracers send v0.4). Counted with
//!   the other requests.
//! - anything else (stats, telemetry): `200 {}`, counted apart.
//!
//! Bodies may come with `Content-Length` or chunked. It runs in the bench's
//! own process, so its CPU is not the measured child's.

use std::io::{BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[path = "http.rs"]
mod http;

/// What the agent received.
#[derive(Default)]
pub(crate) struct Received {
    /// Spans decoded from trace payloads.
    pub(crate) spans: AtomicU64,
    /// Bytes of the bodies of trace payloads, as sent (compressed if the
    /// tracer compressed them; none of the bench's tracers does).
    pub(crate) body_bytes: AtomicU64,
    /// Trace payloads (requests to a traces endpoint).
    pub(crate) payloads: AtomicU64,
    /// Trace payloads that did not decode (their spans are not counted).
    pub(crate) undecodable: AtomicU64,
    /// Every other request.
    pub(crate) other_requests: AtomicU64,
    /// TCP connections accepted.
    pub(crate) connections: AtomicU64,
    /// The first trace of the first payload, decoded, when asked for
    /// (see [`start`]).
    pub(crate) sample: std::sync::Mutex<Option<String>>,
}

impl Received {
    /// A snapshot of the counters that move while payloads arrive.
    pub(crate) fn progress(&self) -> (u64, u64, u64) {
        (
            self.spans.load(Ordering::Relaxed),
            self.body_bytes.load(Ordering::Relaxed),
            self.payloads.load(Ordering::Relaxed) + self.other_requests.load(Ordering::Relaxed),
        )
    }
}

/// Starts an agent; returns its URL (`http://127.0.0.1:port`). With
/// `WHOLE_PROCESS_SAMPLE` set, it keeps the first trace it receives in
/// [`Received::sample`], decoded, to show what a tracer really sends.
pub(crate) fn start(received: Arc<Received>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
    let url = format!("http://{}", listener.local_addr().expect("its address"));
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            received.connections.fetch_add(1, Ordering::Relaxed);
            let received = Arc::clone(&received);
            std::thread::spawn(move || serve(stream, &received));
        }
    });
    url
}

const TRACES_ANSWER: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\
    Content-Length: 22\r\n\r\n{\"rate_by_service\":{}}";
const OTLP_ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
/// `/info` as a Datadog Agent 7 answers it (the fields tracers read).
const AGENT_INFO_BODY: &str = r#"{"version":"7.60.0","endpoints":["/v0.3/traces","/v0.4/traces","/v0.5/traces","/v0.7/traces","/v0.6/stats","/telemetry/proxy/","/evp_proxy/v2/"],"client_drop_p0s":true,"span_meta_structs":true,"long_running_spans":true,"config":{"statsd_port":8125}}"#;
const OTHER_ANSWER: &[u8] =
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}";

/// Serves one keep-alive connection until the client closes it.
fn serve(stream: TcpStream, received: &Received) -> Option<()> {
    let mut writer = stream.try_clone().ok()?;
    let mut reader = BufReader::with_capacity(1 << 16, stream);
    let mut body = Vec::new();
    let agent_info = std::env::var("WHOLE_PROCESS_INFO").map_or(true, |v| v != "empty");
    let info_answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{AGENT_INFO_BODY}",
        AGENT_INFO_BODY.len()
    );
    loop {
        let path = http::read_request(&mut reader, &mut body)?;
        let answer = if path.ends_with("/traces") {
            let spans = if path.starts_with("/v1/") {
                otlp_spans(&body)
            } else {
                http::trace_spans(&path, &body)
            };
            match spans {
                Some(spans) => received.spans.fetch_add(spans, Ordering::Relaxed),
                None => received.undecodable.fetch_add(1, Ordering::Relaxed),
            };
            if std::env::var_os("WHOLE_PROCESS_SAMPLE").is_some() {
                let mut sample = received.sample.lock().expect("not poisoned");
                if sample.is_none() {
                    *sample = Some(first_trace(&path, &body));
                }
            }
            received
                .body_bytes
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            received.payloads.fetch_add(1, Ordering::Relaxed);
            if path.starts_with("/v1/") {
                OTLP_ANSWER
            } else {
                TRACES_ANSWER
            }
        } else {
            received.other_requests.fetch_add(1, Ordering::Relaxed);
            if path == "/info" && agent_info {
                info_answer.as_bytes()
            } else {
                OTHER_ANSWER
            }
        };
        writer.write_all(answer).ok()?;
    }
}

/// OTLP/HTTP protobuf: resource spans → scope spans → spans.
fn otlp_spans(body: &[u8]) -> Option<u64> {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    let request = ExportTraceServiceRequest::decode(body).ok()?;
    Some(
        request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len() as u64)
            .sum(),
    )
}

/// The first trace of a payload as text: JSON for msgpack (at most 6
/// spans); for OTLP, each of its first 6 spans on a line.
fn first_trace(path: &str, body: &[u8]) -> String {
    if path.starts_with("/v1/") {
        use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
        use prost::Message;
        let Ok(request) = ExportTraceServiceRequest::decode(body) else {
            return "undecodable".to_owned();
        };
        use opentelemetry_proto::tonic::common::v1::any_value::Value;
        let spans: Vec<String> = request
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .flat_map(|s| &s.spans)
            .take(6)
            .map(|span| {
                let attributes: Vec<String> = span
                    .attributes
                    .iter()
                    .map(
                        |kv| match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
                            Some(Value::StringValue(s)) => format!("{}={s:?}", kv.key),
                            Some(Value::IntValue(i)) => format!("{}={i}", kv.key),
                            other => format!("{}={other:?}", kv.key),
                        },
                    )
                    .collect();
                format!(
                    "{} ({:?}, {} ns) {}",
                    span.name,
                    span.kind(),
                    span.end_time_unix_nano - span.start_time_unix_nano,
                    attributes.join(" ")
                )
            })
            .collect();
        return spans.join("\n");
    }
    match rmp_serde::from_slice::<Vec<Vec<serde_json::Value>>>(body) {
        Ok(traces) => {
            let first: Vec<_> = traces.into_iter().flatten().take(6).collect();
            serde_json::to_string_pretty(&first).unwrap_or_default()
        }
        Err(error) => format!("undecodable: {error}"),
    }
}
