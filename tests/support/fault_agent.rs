//! A stand-in for the agent that misbehaves on purpose, for the faults
//! ddapm-test-agent cannot be made to show: answers chosen per request
//! (status, body, `Retry-After`, a delay, a dropped connection), a port that
//! can be closed and opened again, and every payload decoded and kept.
//!
//! It listens on 127.0.0.1 or on a unix socket ([`FaultAgent::start_unix`]),
//! and can answer with raw bytes of any shape ([`Reply::raw`]): the hostile
//! answers of `tests/transport_*.rs`.
//!
//! Only payloads answered with a 2xx count as received (as with a real
//! agent); every request is logged with the answer it got. Payloads are
//! decoded as v0.4 or v0.5 by their path.
//!
//! `GET /info` is answered apart, by its own script ([`FaultAgent::set_info`],
//! [`FaultAgent::start_on_info`]; 404 by default, as an agent older than
//! `/info`, so the tracer sends v0.4), and is neither numbered with the
//! trace requests nor logged with them ([`FaultAgent::info_requests`]).

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
#[cfg(unix)]
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Deserialize;

/// Writes a whole answer of any shape; returns when done or when the
/// client is gone (a write error).
pub type RawAnswer = Arc<dyn Fn(&mut dyn Write) -> std::io::Result<()> + Send + Sync>;

/// The answer to one request.
#[derive(Clone)]
pub struct Reply {
    status: u16,
    body: String,
    delay: Duration,
    retry_after: Option<String>,
    drop_connection: bool,
    raw: Option<RawAnswer>,
    headers: Vec<(String, String)>,
}

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reply")
            .field("status", &self.status)
            .field("body", &self.body)
            .field("delay", &self.delay)
            .field("retry_after", &self.retry_after)
            .field("drop_connection", &self.drop_connection)
            .field("raw", &self.raw.is_some())
            .finish()
    }
}

impl Reply {
    /// 200 with an empty rate table, at once.
    pub fn ok() -> Reply {
        Reply::status(200, r#"{"rate_by_service":{}}"#)
    }

    /// This status and body.
    pub fn status(status: u16, body: &str) -> Reply {
        Reply {
            status,
            body: body.to_owned(),
            delay: Duration::ZERO,
            retry_after: None,
            drop_connection: false,
            raw: None,
            headers: Vec::new(),
        }
    }

    /// Whatever `write` writes, instead of an HTTP answer; the request is
    /// logged with the bytes the client took ([`Request::written`]) once
    /// `write` returns.
    pub fn raw(
        write: impl Fn(&mut dyn Write) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Reply {
        Reply {
            raw: Some(Arc::new(write)),
            ..Reply::ok()
        }
    }

    /// Closes the connection after reading the request, with no answer.
    pub fn drop_connection() -> Reply {
        Reply {
            drop_connection: true,
            ..Reply::ok()
        }
    }

    /// Answers only after `delay`.
    pub fn after(mut self, delay: Duration) -> Reply {
        self.delay = delay;
        self
    }

    /// With a `Retry-After` header.
    pub fn retry_after(mut self, value: &str) -> Reply {
        self.retry_after = Some(value.to_owned());
        self
    }

    /// With this header too (e.g. `Datadog-Agent-State`).
    pub fn header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// An `/info` answer listing these trace endpoints.
    pub fn info(endpoints: &[&str]) -> Reply {
        let list: Vec<String> = endpoints.iter().map(|e| format!("{e:?}")).collect();
        Reply::status(
            200,
            &format!(r#"{{"version":"7.99.0","endpoints":[{}]}}"#, list.join(",")),
        )
    }
}

/// A span as the agent decodes it from a v0.4 payload.
#[derive(Deserialize, Debug, Clone)]
pub struct WireSpan {
    pub trace_id: u64,
    pub span_id: u64,
    pub parent_id: u64,
    pub name: String,
    pub resource: String,
    pub service: String,
    #[serde(default)]
    pub error: i32,
    #[serde(default)]
    pub meta: HashMap<String, String>,
    #[serde(default)]
    pub metrics: HashMap<String, f64>,
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Request {
    /// When it arrived, from the agent's start.
    pub at: Duration,
    /// Its path (`/v0.4/traces`, `/v0.5/traces`).
    pub path: String,
    pub headers: HashMap<String, String>,
    /// How many spans its payload held.
    pub spans: usize,
    /// The status it was answered with (`None`: connection dropped on
    /// purpose, or a raw answer).
    pub answered: Option<u16>,
    /// The bytes of a raw answer written before it ended or the client
    /// hung up (0 for the others).
    pub written: u64,
    /// The length of its body.
    pub body_bytes: usize,
}

/// A `PUT /v0.6/stats` request (client-side stats), answered 200.
#[derive(Debug, Clone)]
pub struct StatsRequest {
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
}

type Behaviour = Box<dyn FnMut(usize, &HashMap<String, String>) -> Reply + Send>;
type InfoBehaviour = Box<dyn FnMut(usize) -> Reply + Send>;

struct Shared {
    behaviour: Mutex<Behaviour>,
    info: Mutex<InfoBehaviour>,
    info_requests: Mutex<usize>,
    accepted: Mutex<Vec<Vec<Vec<WireSpan>>>>,
    requests: Mutex<Vec<Request>>,
    stats: Mutex<Vec<StatsRequest>>,
    stats_status: Mutex<u16>,
    errors: Mutex<Vec<String>>,
    started: Instant,
    next_request: Mutex<usize>,
}

/// A fault-injecting agent on 127.0.0.1 or a unix socket; stops listening
/// when dropped.
pub struct FaultAgent {
    port: u16,
    socket: Option<PathBuf>,
    shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl FaultAgent {
    /// On a free port; request `n` (from 0) is answered with `behaviour(n)`.
    pub fn start(behaviour: impl FnMut(usize) -> Reply + Send + 'static) -> FaultAgent {
        let mut behaviour = behaviour;
        FaultAgent::start_with_request(move |n, _| behaviour(n))
    }

    /// On a free port; request `n` (from 0) with these headers (names in
    /// lower case) is answered with `behaviour(n, headers)`.
    pub fn start_with_request(
        behaviour: impl FnMut(usize, &HashMap<String, String>) -> Reply + Send + 'static,
    ) -> FaultAgent {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port on 127.0.0.1");
        FaultAgent::serve(Listener::Tcp(listener), Box::new(behaviour))
    }

    /// On a unix socket at `path` (replacing a stale file); request `n`
    /// (from 0) is answered with `behaviour(n)`. The file is removed when
    /// the agent is dropped.
    #[cfg(unix)]
    pub fn start_unix(
        path: &Path,
        behaviour: impl FnMut(usize) -> Reply + Send + 'static,
    ) -> FaultAgent {
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path)
            .unwrap_or_else(|e| panic!("cannot listen on {}: {e}", path.display()));
        let mut behaviour = behaviour;
        FaultAgent::serve(
            Listener::Unix(listener, path.to_owned()),
            Box::new(move |n, _| behaviour(n)),
        )
    }

    /// Answers request `n` with `script[n]`, the last entry repeating.
    pub fn scripted(script: Vec<Reply>) -> FaultAgent {
        assert!(!script.is_empty());
        FaultAgent::start(move |n| script[n.min(script.len() - 1)].clone())
    }

    /// Always 200.
    pub fn healthy() -> FaultAgent {
        FaultAgent::start(|_| Reply::ok())
    }

    /// On this port (one a tracer already points at); waits up to 10 s for
    /// it to be free.
    pub fn start_on(
        port: u16,
        behaviour: impl FnMut(usize) -> Reply + Send + 'static,
    ) -> FaultAgent {
        FaultAgent::start_on_info(
            port,
            |_| Reply::status(404, "404 page not found"),
            behaviour,
        )
    }

    /// [`FaultAgent::start_on`] with `GET /info` request `n` answered with
    /// `info(n)` from the first one: an agent restarted as another version.
    pub fn start_on_info(
        port: u16,
        info: impl FnMut(usize) -> Reply + Send + 'static,
        behaviour: impl FnMut(usize) -> Reply + Send + 'static,
    ) -> FaultAgent {
        let mut info = Some(info);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            match TcpListener::bind(("127.0.0.1", port)) {
                Ok(listener) => {
                    let mut behaviour = behaviour;
                    let agent = FaultAgent::serve(
                        Listener::Tcp(listener),
                        Box::new(move |n, _| behaviour(n)),
                    );
                    if let Some(info) = info.take() {
                        *lock(&agent.shared.info) = Box::new(info);
                    }
                    return agent;
                }
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(e) => panic!("cannot listen on 127.0.0.1:{port} again: {e}"),
            }
        }
    }

    /// A port nothing listens on (bound, then released): a tracer pointed
    /// at it finds no agent until [`FaultAgent::start_on`] takes it.
    pub fn closed_port() -> u16 {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
        listener.local_addr().unwrap().port()
    }

    fn serve(listener: Listener, behaviour: Behaviour) -> FaultAgent {
        let (port, socket) = match &listener {
            Listener::Tcp(tcp) => (tcp.local_addr().unwrap().port(), None),
            #[cfg(unix)]
            Listener::Unix(_, path) => (0, Some(path.clone())),
        };
        listener.set_nonblocking();
        let shared = Arc::new(Shared {
            behaviour: Mutex::new(behaviour),
            info: Mutex::new(Box::new(|_| Reply::status(404, "404 page not found"))),
            info_requests: Mutex::new(0),
            accepted: Mutex::default(),
            requests: Mutex::default(),
            stats: Mutex::default(),
            stats_status: Mutex::new(200),
            errors: Mutex::default(),
            started: Instant::now(),
            next_request: Mutex::new(0),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let acceptor = {
            let (shared, stop) = (Arc::clone(&shared), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok(Accepted::Tcp(stream)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                            let shared = Arc::clone(&shared);
                            std::thread::spawn(move || serve_connection(stream, &shared));
                        }
                        #[cfg(unix)]
                        Ok(Accepted::Unix(stream)) => {
                            let _ = stream.set_nonblocking(false);
                            let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                            let shared = Arc::clone(&shared);
                            std::thread::spawn(move || serve_connection(stream, &shared));
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(2));
                        }
                        Err(e) => lock(&shared.errors).push(format!("accept: {e}")),
                    }
                }
            })
        };
        FaultAgent {
            port,
            socket,
            shared,
            stop,
            acceptor: Some(acceptor),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Where a tracer finds this agent: its port on 127.0.0.1, or its unix
    /// socket.
    pub fn agent_url(&self) -> ddspan::AgentUrl {
        match &self.socket {
            Some(path) => ddspan::AgentUrl::Unix(path.clone()),
            None => ddspan::AgentUrl::Http(self.url()),
        }
    }

    /// A flag that, once set, makes the agent stop listening (its port
    /// closes within a few milliseconds; requests already read are still
    /// answered): for a behaviour that closes the agent from inside.
    pub fn closer(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Answers `GET /info` request `n` (from 0) with `info(n)` from now on
    /// (set it before a tracer points here).
    pub fn set_info(&self, info: impl FnMut(usize) -> Reply + Send + 'static) {
        *lock(&self.shared.info) = Box::new(info);
    }

    /// How many `GET /info` requests arrived.
    pub fn info_requests(&self) -> usize {
        *lock(&self.shared.info_requests)
    }

    /// How many requests arrived, answered or not yet.
    pub fn arrived(&self) -> usize {
        *lock(&self.shared.next_request)
    }

    /// Every request answered so far (or dropped on purpose), in order of
    /// answer.
    pub fn requests(&self) -> Vec<Request> {
        lock(&self.shared.requests).clone()
    }

    /// The client-side stats requests, in order of arrival (not among
    /// [`FaultAgent::requests`]).
    pub fn stats_requests(&self) -> Vec<StatsRequest> {
        lock(&self.shared.stats).clone()
    }

    /// Answers later `/v0.6/stats` requests with `status` (200 until set).
    pub fn set_stats_status(&self, status: u16) {
        *lock(&self.shared.stats_status) = status;
    }

    /// The payloads answered with a 2xx, each as its traces.
    pub fn payloads(&self) -> Vec<Vec<Vec<WireSpan>>> {
        lock(&self.shared.accepted).clone()
    }

    /// Every span of the payloads answered with a 2xx.
    pub fn spans(&self) -> Vec<WireSpan> {
        lock(&self.shared.accepted)
            .iter()
            .flatten()
            .flatten()
            .cloned()
            .collect()
    }

    /// How many spans the payloads answered with a 2xx held.
    pub fn span_count(&self) -> usize {
        lock(&self.shared.accepted)
            .iter()
            .flatten()
            .map(Vec::len)
            .sum()
    }

    /// Waits until at least `spans` spans were accepted; whether they were.
    pub fn wait_for_spans(&self, spans: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.span_count() < spans {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// Panics if a request could not be read or decoded.
    pub fn assert_no_errors(&self) {
        let errors = lock(&self.shared.errors);
        assert!(errors.is_empty(), "the fault agent saw: {errors:#?}");
    }
}

impl Drop for FaultAgent {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        if let Some(socket) = &self.socket {
            let _ = std::fs::remove_file(socket);
        }
    }
}

enum Listener {
    Tcp(TcpListener),
    #[cfg(unix)]
    Unix(UnixListener, PathBuf),
}

enum Accepted {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
}

impl Listener {
    fn set_nonblocking(&self) {
        match self {
            Listener::Tcp(l) => l.set_nonblocking(true).unwrap(),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.set_nonblocking(true).unwrap(),
        }
    }

    fn accept(&self) -> std::io::Result<Accepted> {
        match self {
            Listener::Tcp(l) => l.accept().map(|(s, _)| Accepted::Tcp(s)),
            #[cfg(unix)]
            Listener::Unix(l, _) => l.accept().map(|(s, _)| Accepted::Unix(s)),
        }
    }
}

/// Counts what goes through to the client.
struct Counting<'a, W: Write> {
    inner: &'a mut W,
    written: u64,
}

impl<W: Write> Write for Counting<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn serve_connection<S: Read + Write>(mut stream: S, shared: &Shared) {
    let (line, headers, body) = match read_request_line(&mut stream) {
        Ok(request) => request,
        Err(e) => {
            // A client that gave up (a timeout) is not an error.
            if e.kind() != std::io::ErrorKind::UnexpectedEof {
                lock(&shared.errors).push(format!("reading a request: {e}"));
            }
            return;
        }
    };
    let at = shared.started.elapsed();
    let path = line.split(' ').nth(1).unwrap_or_default().to_owned();
    if line.starts_with("GET ") {
        let n = {
            let mut next = lock(&shared.info_requests);
            *next += 1;
            *next - 1
        };
        let reply = (lock(&shared.info))(n);
        std::thread::sleep(reply.delay);
        let _ = stream
            .write_all(answer_text(&reply).as_bytes())
            .and_then(|()| stream.flush());
        return;
    }
    if path == "/v0.6/stats" {
        lock(&shared.stats).push(StatsRequest { headers, body });
        let status = *lock(&shared.stats_status);
        let _ = stream
            .write_all(answer_text(&Reply::status(status, "{}")).as_bytes())
            .and_then(|()| stream.flush());
        return;
    }
    let n = {
        let mut next = lock(&shared.next_request);
        *next += 1;
        *next - 1
    };
    let reply = (lock(&shared.behaviour))(n, &headers);
    let decoded = if path == "/v0.5/traces" {
        decode_v05(&body)
    } else {
        rmp_serde::from_slice(&body).map_err(|e| e.to_string())
    };
    let traces: Vec<Vec<WireSpan>> = match decoded {
        Ok(traces) => traces,
        Err(e) => {
            lock(&shared.errors).push(format!("request {n}: not a {path} payload: {e}"));
            Vec::new()
        }
    };
    let spans = traces.iter().map(Vec::len).sum();
    let mut request = Request {
        at,
        path,
        headers,
        spans,
        answered: None,
        written: 0,
        body_bytes: body.len(),
    };
    std::thread::sleep(reply.delay);
    if let Some(raw) = &reply.raw {
        let mut counting = Counting {
            inner: &mut stream,
            written: 0,
        };
        let _ = raw(&mut counting);
        request.written = counting.written;
        lock(&shared.requests).push(request);
        return;
    }
    if reply.drop_connection {
        lock(&shared.requests).push(request);
        return;
    }
    let response = answer_text(&reply);
    // Kept before answering, so that a client that saw the answer finds
    // the payload here (a real agent has it too, whether or not the answer
    // then reaches the client).
    request.answered = Some(reply.status);
    if (200..300).contains(&reply.status) {
        lock(&shared.accepted).push(traces);
    }
    lock(&shared.requests).push(request);
    let _ = stream
        .write_all(response.as_bytes())
        .and_then(|()| stream.flush());
}

/// The HTTP answer of a (non-raw) reply.
fn answer_text(reply: &Reply) -> String {
    let mut response = format!(
        "HTTP/1.1 {} Fault\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n",
        reply.status,
        reply.body.len()
    );
    if let Some(retry_after) = &reply.retry_after {
        response.push_str(&format!("Retry-After: {retry_after}\r\n"));
    }
    for (name, value) in &reply.headers {
        response.push_str(&format!("{name}: {value}\r\n"));
    }
    response.push_str("\r\n");
    response.push_str(&reply.body);
    response
}

/// A v0.5 payload (string table, spans as arrays of 12) as the agent reads
/// it, each index looked up.
pub fn decode_v05(body: &[u8]) -> Result<Vec<Vec<WireSpan>>, String> {
    type Span05 = (
        u32,
        u32,
        u32,
        u64,
        u64,
        u64,
        i64,
        i64,
        i32,
        HashMap<u32, u32>,
        HashMap<u32, f64>,
        u32,
    );
    let (strings, traces): (Vec<String>, Vec<Vec<Span05>>) =
        rmp_serde::from_slice(body).map_err(|e| e.to_string())?;
    let s = |i: u32| {
        strings
            .get(i as usize)
            .cloned()
            .ok_or_else(|| format!("index {i} out of the table of {}", strings.len()))
    };
    let mut decoded = Vec::new();
    for trace in traces {
        let mut spans = Vec::new();
        for span in trace {
            spans.push(WireSpan {
                service: s(span.0)?,
                name: s(span.1)?,
                resource: s(span.2)?,
                trace_id: span.3,
                span_id: span.4,
                parent_id: span.5,
                error: span.8,
                meta: span
                    .9
                    .iter()
                    .map(|(k, v)| Ok((s(*k)?, s(*v)?)))
                    .collect::<Result<_, String>>()?,
                metrics: span
                    .10
                    .iter()
                    .map(|(k, v)| Ok((s(*k)?, *v)))
                    .collect::<Result<_, String>>()?,
            });
            let _ = s(span.11)?;
        }
        decoded.push(spans);
    }
    Ok(decoded)
}

/// The headers (lower-cased names) and the `Content-Length` body of one
/// HTTP/1.1 request.
pub fn read_request(stream: impl Read) -> std::io::Result<(HashMap<String, String>, Vec<u8>)> {
    read_request_line(stream).map(|(_, headers, body)| (headers, body))
}

/// The request line, headers (lower-cased names) and `Content-Length` body
/// of one HTTP/1.1 request.
pub fn read_request_line(
    stream: impl Read,
) -> std::io::Result<(String, HashMap<String, String>, Vec<u8>)> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    let request_line = line.trim_end().to_owned();
    let mut headers = HashMap::new();
    loop {
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break;
        };
        headers.insert(name.to_ascii_lowercase(), value.trim().to_owned());
    }
    let length = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok((request_line, headers, body))
}
