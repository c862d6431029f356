//! HTTP to the agent: one small HTTP/1.1 client of our own, the same over
//! TCP and over the agent's unix socket. Each request has one deadline for
//! all of it (resolving, connecting, sending, reading the whole answer);
//! everything an agent controls is read with a bound ([`wire`]); one
//! connection is kept between requests and dialled again when it fails.
//!
//! Why not ureq (which the TCP path used, next to a second hand-written
//! client for unix sockets with other semantics):
//! - ureq logs through `log` unconditionally: its debug records (about
//!   eleven per flush) reach the application's logger, and a library
//!   cannot filter them out (`log`'s level features apply to the whole
//!   program). A tracer must not write into its user's logs.
//! - A unix socket needs ureq's connector API, which lives in
//!   `ureq::unversioned` and breaks in minor releases: we would pin
//!   `ureq = "=3.x.y"`, and then any application needing another 3.x
//!   could not build with ddspan at all.
//! - What we need is small: one `PUT` with a body, small JSON answers
//!   and `GET /info`, a local agent, so no TLS, proxies, redirects,
//!   cookies or compression. Keeping that small client bounded is easier
//!   than wrapping a general one, and [`wire`] is fuzzed against hostile
//!   answers (`fuzz/fuzz_targets/agent_answer.rs`).

mod dial;
mod wire;

#[cfg(test)]
mod check;
#[cfg(test)]
mod wire_tests;

use std::io::{self, Write};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::config::AgentUrl;
use dial::{Stream, Target};

/// What the agent answered.
#[derive(Debug)]
pub(crate) struct Response {
    pub(crate) status: u16,
    /// The body, or empty when it could not be read whole.
    pub(crate) body: String,
    /// The `Retry-After` header in seconds, when the agent sent one.
    pub(crate) retry_after: Option<Duration>,
    /// The `Datadog-Agent-State` header, when the agent sent one.
    pub(crate) agent_state: Option<String>,
}

/// Why no answer came.
#[derive(Debug)]
pub(crate) struct SendError {
    /// Whether the request certainly never reached the agent (its host did
    /// not resolve, or no connection could be made): resending it cannot
    /// deliver it twice.
    pub(crate) unreachable: bool,
    /// Whether the whole request was written before the failure (a
    /// timeout or a lost connection while waiting for the answer): the
    /// agent may have taken it, so resending it could deliver it twice.
    pub(crate) maybe_taken: bool,
    pub(crate) message: String,
}

impl SendError {
    pub(crate) fn failed(message: impl std::fmt::Display) -> SendError {
        SendError {
            unreachable: false,
            maybe_taken: false,
            message: message.to_string(),
        }
    }
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// A kept connection is not used after this long idle: the agent closes
/// idle connections after its request timeout (5 s by default), and one
/// closed while our request is on its way would cost a retry.
const MAX_IDLE: Duration = Duration::from_secs(4);

/// The client of one agent.
pub(crate) struct Transport {
    /// Where the agent is, or why its URL cannot be used.
    target: Result<Target, String>,
    /// The `Host` header.
    host: String,
    /// Put before each request's path (a URL such as `http://h:p/prefix`).
    prefix: String,
    /// The longest a request may take.
    timeout: Duration,
    /// The connection of the last answer, when it can carry the next
    /// request, and since when it is idle.
    kept: Mutex<Option<(Stream, Instant)>>,
}

/// How an exchange on a connection failed.
enum Failed {
    /// The request did not go out whole: the agent cannot have taken it.
    Sending(io::Error),
    /// The request went out; no usable answer came.
    Reading(io::Error),
}

impl Transport {
    pub(crate) fn new(url: &AgentUrl, timeout: Duration) -> Transport {
        let (target, host, prefix) = match url {
            AgentUrl::Http(base) => match dial::parse_http(base) {
                Ok(parts) => (Ok(parts.0), parts.1, parts.2),
                Err(error) => (Err(error), String::new(), String::new()),
            },
            AgentUrl::Unix(path) => (
                Ok(Target::Unix(path.clone())),
                "localhost".to_owned(),
                String::new(),
            ),
        };
        Transport {
            target,
            host,
            prefix,
            timeout,
            kept: Mutex::new(None),
        }
    }

    /// One PUT; `timeout` bounds the whole exchange when shorter than the
    /// configured request timeout (a shutdown's deadline).
    pub(crate) fn put(
        &self,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        timeout: Option<Duration>,
    ) -> Result<Response, SendError> {
        self.request("PUT", path, headers, body, timeout)
    }

    /// One GET (`/info`), bounded as a PUT.
    pub(crate) fn get(
        &self,
        path: &str,
        headers: &[(&str, String)],
        timeout: Option<Duration>,
    ) -> Result<Response, SendError> {
        self.request("GET", path, headers, &[], timeout)
    }

    fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, String)],
        body: &[u8],
        limit: Option<Duration>,
    ) -> Result<Response, SendError> {
        let target = self.target.as_ref().map_err(SendError::failed)?;
        // Only ever shorter: a later deadline must not lift the configured
        // limit (a hung request would use up a whole shutdown, leaving no
        // time for a retry).
        let timeout = limit.map_or(self.timeout, |limit| limit.min(self.timeout));
        if timeout.is_zero() {
            return Err(SendError::failed("no time was left for the request"));
        }
        let now = Instant::now();
        let deadline = Deadlines::new(now, timeout, limit);
        let target_path = format!("{}{path}", self.prefix);
        let head = wire::request_head(method, &target_path, &self.host, headers, body.len());

        if let Some(stream) = self.take_kept() {
            match exchange(&stream, &head, body, deadline) {
                Ok(done) => return Ok(self.settle(stream, done)),
                // The agent closed the kept connection before it had the
                // whole request: send it on a new one.
                Err(Failed::Sending(error)) if error.kind() != io::ErrorKind::TimedOut => {}
                Err(failed) => return Err(failed.into()),
            }
        }
        let stream = dial::connect(target, deadline.send).map_err(|error| SendError {
            unreachable: true,
            maybe_taken: false,
            message: format!("connecting: {error}"),
        })?;
        match exchange(&stream, &head, body, deadline) {
            Ok(done) => Ok(self.settle(stream, done)),
            Err(failed) => Err(failed.into()),
        }
    }

    /// The kept connection, if it is still good to use.
    fn take_kept(&self) -> Option<Stream> {
        let kept = self
            .kept
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        kept.filter(|(stream, since)| since.elapsed() < MAX_IDLE && stream.is_idle_and_open())
            .map(|(stream, _)| stream)
    }

    /// Keeps `stream` for the next request when its answer allows.
    fn settle(&self, stream: Stream, (response, reusable): (Response, bool)) -> Response {
        if reusable {
            *self.kept.lock().unwrap_or_else(PoisonError::into_inner) =
                Some((stream, Instant::now()));
        }
        response
    }
}

impl From<Failed> for SendError {
    fn from(failed: Failed) -> SendError {
        match failed {
            Failed::Sending(error) => SendError::failed(format!("sending the request: {error}")),
            Failed::Reading(error) => SendError {
                maybe_taken: true,
                ..SendError::failed(format!("reading the answer: {error}"))
            },
        }
    }
}

/// The least time a healthy agent gets to begin its answer once it has
/// the whole request (decoding a full payload takes a busy agent seconds):
/// a request cut then may have been taken, and is not sent again, so the
/// wait must not be what fails it. Once the answer has begun, the rest
/// must come within the request timeout.
const MIN_ANSWER_WAIT: Duration = Duration::from_secs(10);

/// When a request must be written by, and when its answer must have come.
#[derive(Clone, Copy)]
struct Deadlines {
    /// Lookup, connect and write: the request timeout (or the caller's
    /// shorter limit).
    send: Instant,
    /// Once the answer has begun, the rest must follow within this (a
    /// dripping answer cannot stretch a request).
    timeout: Duration,
    /// The answer: at least [`MIN_ANSWER_WAIT`] after the request was
    /// written, unless the caller's limit (a shutdown) is sooner.
    answer_wait: Duration,
    hard: Option<Instant>,
}

impl Deadlines {
    fn new(now: Instant, timeout: Duration, limit: Option<Duration>) -> Deadlines {
        let at = |after: Duration| {
            now.checked_add(after)
                .unwrap_or(now + Duration::from_secs(24 * 3600))
        };
        Deadlines {
            send: at(timeout),
            timeout,
            answer_wait: timeout.max(MIN_ANSWER_WAIT),
            hard: limit.map(at),
        }
    }

    /// Once the request is written: when the answer must have come.
    fn answer(&self, written: Instant) -> Instant {
        let wait = written
            .checked_add(self.answer_wait)
            .unwrap_or(self.send)
            .max(self.send);
        self.hard.map_or(wait, |hard| wait.min(hard))
    }
}

/// Sends the request on `stream` and reads the answer, within `deadline`;
/// the answer and whether the connection can be used again.
fn exchange(
    stream: &Stream,
    head: &[u8],
    body: &[u8],
    deadline: Deadlines,
) -> Result<(Response, bool), Failed> {
    let mut out = stream.until(deadline.send);
    let sent = out.write_all(head).and_then(|()| out.write_all(body));
    let sent_whole = sent.is_ok();
    let answer = match sent {
        Ok(()) => {
            let first_byte_by = deadline.answer(Instant::now());
            let reader = stream.answer_until(first_byte_by, deadline.timeout, deadline.hard);
            wire::read_answer(reader).map_err(Failed::Reading)?
        }
        // An agent may answer early (a 413 before reading a large body)
        // and close: that answer is the one to act on, if it came.
        Err(error) if error.kind() == io::ErrorKind::TimedOut => {
            return Err(Failed::Sending(error))
        }
        Err(error) => match wire::read_answer(stream.until(deadline.send)) {
            Ok(answer) => answer,
            Err(_) => return Err(Failed::Sending(error)),
        },
    };
    let reusable = answer.reusable && sent_whole;
    let response = Response {
        status: answer.status,
        body: answer
            .body
            .map(|body| String::from_utf8_lossy(&body).into_owned())
            .unwrap_or_default(),
        retry_after: answer.retry_after,
        agent_state: answer.agent_state,
    };
    Ok((response, reusable))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::{TcpListener, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    const LONG: Duration = Duration::from_secs(60);

    /// Reads one request (head and `Content-Length` body); false at the
    /// end of the connection.
    fn read_request(reader: &mut impl BufRead) -> bool {
        let mut length = 0;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return false;
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).is_ok()
    }

    /// An agent on 127.0.0.1 answering `answers` requests per connection
    /// with `answer`; counts its connections.
    fn agent(answer: &'static str, answers: usize) -> (AgentUrl, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = AgentUrl::Http(format!("http://{}", listener.local_addr().unwrap()));
        let connections = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&connections);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let mut stream = stream.unwrap();
                counted.fetch_add(1, Ordering::SeqCst);
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    for _ in 0..answers {
                        if !read_request(&mut reader) {
                            return;
                        }
                        stream.write_all(answer.as_bytes()).unwrap();
                    }
                });
            }
        });
        (url, connections)
    }

    const OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 22\r\n\r\n{\"rate_by_service\":{}}";

    #[test]
    fn one_connection_carries_the_requests_while_the_agent_keeps_it() {
        let (url, connections) = agent(OK, usize::MAX);
        let transport = Transport::new(&url, LONG);
        for _ in 0..3 {
            let response = transport.put("/v0.4/traces", &[], b"[]", None).unwrap();
            assert_eq!(response.status, 200);
            assert_eq!(response.body, r#"{"rate_by_service":{}}"#);
        }
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_connection_the_agent_closed_is_dialled_again() {
        // One answer per connection, then the agent closes it unannounced.
        let (url, connections) = agent(OK, 1);
        let transport = Transport::new(&url, LONG);
        for _ in 0..3 {
            let response = transport.put("/v0.4/traces", &[], b"[]", None).unwrap();
            assert_eq!(response.status, 200);
            // Give the close time to arrive before the next request.
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn a_connection_announced_closed_is_not_kept() {
        let closing =
            "HTTP/1.1 429 Slow\r\nRetry-After: 2\r\nConnection: close\r\nContent-Length: 0\r\n\r\n";
        let (url, connections) = agent(closing, usize::MAX);
        let transport = Transport::new(&url, LONG);
        for _ in 0..2 {
            let response = transport.put("/v0.4/traces", &[], b"[]", None).unwrap();
            assert_eq!(response.status, 429);
            assert_eq!(response.retry_after, Some(Duration::from_secs(2)));
        }
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn never_connecting_is_unreachable_and_a_lost_answer_is_not() {
        let closed = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = closed.local_addr().unwrap().port();
        drop(closed);
        let refused = Transport::new(&AgentUrl::Http(format!("http://127.0.0.1:{port}")), LONG);
        assert!(refused.put("/", &[], b"", None).unwrap_err().unreachable);

        // Names that do not resolve: one we fail ourselves (`.invalid`),
        // one the system's resolver fails (a label over 63 bytes); neither
        // sends a DNS query.
        let long_label = format!("http://{}.example:8126", "a".repeat(64));
        for url in ["http://agent.invalid:8126", &long_label] {
            let unresolved = Transport::new(&AgentUrl::Http(url.to_owned()), LONG);
            let error = unresolved.put("/", &[], b"", None).unwrap_err();
            assert!(error.unreachable, "{error}");
        }

        let no_socket =
            std::env::temp_dir().join(format!("ddspan-none-{}.sock", std::process::id()));
        let missing = Transport::new(&AgentUrl::Unix(no_socket), LONG);
        assert!(missing.put("/", &[], b"", None).unwrap_err().unreachable);

        // Read, then closed without an answer: the agent may have it.
        let (url, _) = agent("", 1);
        let error = Transport::new(&url, LONG)
            .put("/", &[], b"[]", None)
            .unwrap_err();
        assert!(!error.unreachable, "{error}");
        assert!(error.maybe_taken, "{error}");
        // Refused: certainly not taken.
        assert!(!refused.put("/", &[], b"", None).unwrap_err().maybe_taken);
    }

    /// Once the request is written whole, a healthy but busy agent gets at
    /// least [`MIN_ANSWER_WAIT`] to answer, more than the request timeout;
    /// a shutdown's own limit still bounds it.
    #[test]
    fn the_answer_may_take_longer_than_the_request_timeout() {
        let now = Instant::now();
        let timeout = Duration::from_secs(2);
        let plain = Deadlines::new(now, timeout, None);
        assert_eq!(plain.send, now + timeout);
        assert_eq!(plain.answer(now), now + MIN_ANSWER_WAIT);
        let long = Deadlines::new(now, Duration::from_secs(30), None);
        assert_eq!(long.answer(now), now + Duration::from_secs(30));
        let shutdown = Deadlines::new(now, timeout, Some(Duration::from_secs(1)));
        assert_eq!(shutdown.answer(now), now + Duration::from_secs(1));
    }

    #[test]
    fn a_url_that_cannot_be_used_fails_every_request() {
        let transport = Transport::new(&AgentUrl::Http("ftp://nowhere".into()), LONG);
        let error = transport.put("/", &[], b"", None).unwrap_err();
        assert!(!error.unreachable);
        let zero = Transport::new(&AgentUrl::Http("http://127.0.0.1:9".into()), LONG);
        assert!(zero.put("/", &[], b"", Some(Duration::ZERO)).is_err());
    }

    /// Drips `answer` one byte every 10 ms into `sink` (at most `cap`
    /// bytes) until the other end hangs up; returns how many it wrote.
    fn drip(mut sink: impl Write, answer: &'static [u8], cap: usize) -> usize {
        let mut written = 0;
        for &byte in answer.iter().cycle().take(cap) {
            std::thread::sleep(Duration::from_millis(10));
            if sink.write_all(&[byte]).is_err() {
                break;
            }
            written += 1;
        }
        written
    }

    /// A slow drip gets one deadline for the whole answer: the read ends
    /// with a timeout after about 20 bytes, not after the 1000 the agent
    /// would drip.
    fn assert_deadline_kept(client: Stream, agent: impl Write + Send + 'static) {
        let dripping =
            std::thread::spawn(move || drip(agent, b"HTTP/1.1 200 OK\r\nX: y\r\n", 1000));
        let deadline = Instant::now() + Duration::from_millis(200);
        let error = wire::read_answer(client.until(deadline)).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut, "{error}");
        drop(client);
        let written = dripping.join().unwrap();
        assert!(written < 200, "the client read {written} dripped bytes");
    }

    #[test]
    #[cfg(unix)]
    fn a_slow_drip_on_a_unix_socket_ends_at_the_deadline() {
        let (client, agent) = std::os::unix::net::UnixStream::pair().unwrap();
        assert_deadline_kept(Stream::Unix(client), agent);
    }

    #[test]
    fn a_slow_drip_over_tcp_ends_at_the_deadline() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (agent, _) = listener.accept().unwrap();
        assert_deadline_kept(Stream::Tcp(client), agent);
    }

    #[test]
    fn hostile_answers_are_read_boundedly_without_panic() {
        check::hostile_answers(20_000, 0x5eed);
    }

    #[test]
    fn endless_answers_stop_at_the_bound() {
        check::endless_answers();
    }
}
