//! ddapm-test-agent, Datadog's agent stand-in, on free loopback ports: one
//! per test, killed when dropped. It decodes every payload strictly and runs
//! the trace checks named in `ENABLED_CHECKS` ([`DEFAULT_CHECKS`]), with
//! `DD_POOL_TRACE_CHECK_FAILURES=true`. The test process's own `DD_*` (and
//! other agent) variables are not passed on: a `DD_TRACE_AGENT_URL` would
//! make the agent forward what it receives. Its output goes to a log file
//! quoted in the harness's panic messages.
//!
//! What the agent's read endpoints return (ddapm-test-agent 1.69.1):
//! - `/test/traces`: every trace received, newest first, the spans of all
//!   requests grouped by `trace_id` (two payloads with the same trace id
//!   make one trace), each span as decoded (`trace_id`, `span_id`,
//!   `parent_id`, `name`, `resource`, `service`, `type`, `start`, `duration`,
//!   `error`, `meta`, `metrics`, ...). Session tokens play no part.
//! - A payload whose checks fail is answered 400 but still stored: its spans
//!   show in `/test/traces`. A payload that cannot be decoded (e.g. a nil
//!   `meta`) is answered 400 with no reason, is stored too, and from then on
//!   every read of traces answers `400` with an empty body until
//!   `/test/session/clear`.
//! - Sessions (`/test/session/...` reads): without a token, a read covers
//!   the requests sent without a token since the latest
//!   `/test/session/start` (of any token), or all requests if there was
//!   none; with a token, the requests since that token's start sent with the
//!   token or with none. One agent per test needs no session.

use std::ffi::OsString;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The trace checks enabled unless [`TestAgentBuilder::checks`] says
/// otherwise.
pub const DEFAULT_CHECKS: &str =
    "trace_count_header,meta_tracer_version_header,trace_content_length";

/// How long an agent has to answer `/info` after it was spawned.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Spawn attempts, each on new ports, when the agent exits at start (e.g.
/// a port taken between picking it and binding it).
const ATTEMPTS: usize = 3;

/// Lines of the agent's log quoted in panic messages.
const LOG_TAIL_LINES: usize = 60;

/// Environment variables the agent reads besides the `DD_*` ones: none of
/// the test process's values reach it (e.g. a `DD_TRACE_AGENT_URL` would
/// make it forward everything it receives, `HOST` or `PORT` move it).
const AGENT_ENV: &[&str] = &[
    "ENABLED_CHECKS",
    "HOST",
    "PORT",
    "OTLP_HTTP_PORT",
    "OTLP_GRPC_PORT",
    "WEB_UI_PORT",
    "LOG_LEVEL",
    "LOG_SPAN_FMT",
    "MAX_REQUESTS",
    "TEST_SESSION_TOKEN",
    "TEST_AGENT_VERSION",
    "ORG_PROP_MARKER",
    "DISABLE_LLMOBS_DATA_FORWARDING",
];

/// Prefixes of more such variables.
const AGENT_ENV_PREFIXES: &[&str] = &["DD_", "SNAPSHOT_", "VCR_"];

/// A running ddapm-test-agent, on its own free ports on 127.0.0.1; killed
/// (and reaped) when dropped.
pub struct TestAgent {
    child: Child,
    port: u16,
    otlp_http_port: u16,
    otlp_grpc_port: u16,
    unix_socket: Option<PathBuf>,
    log: PathBuf,
    keep_log: bool,
    http: ureq::Agent,
}

/// Options for a [`TestAgent`]: [`TestAgent::builder`], then
/// [`start`](TestAgentBuilder::start).
#[derive(Debug, Default, Clone)]
pub struct TestAgentBuilder {
    port: Option<u16>,
    unix_socket: Option<PathBuf>,
    env: Vec<(String, String)>,
    checks: Option<String>,
}

impl TestAgentBuilder {
    /// Listen for traces on this port instead of a free one (e.g. one a
    /// tracer already points at, to start the agent after the tracer).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// Also listen on this unix socket (`--trace-uds-socket`); the agent
    /// replaces a file already there. Keep the path short: at most 103
    /// bytes.
    pub fn unix_socket(mut self, path: impl AsRef<Path>) -> Self {
        self.unix_socket = Some(path.as_ref().to_owned());
        self
    }

    /// An extra environment variable for the agent, e.g.
    /// `DD_TEST_STALL_REQUEST_SECONDS` (with `trace_stall` among the
    /// [`checks`](Self::checks)). Applied last: it can override the
    /// harness's own variables (`DD_POOL_TRACE_CHECK_FAILURES`, ...).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// The trace checks to enable, comma separated (`ENABLED_CHECKS`),
    /// instead of [`DEFAULT_CHECKS`]; `""` enables none.
    pub fn checks(mut self, checks: &str) -> Self {
        self.checks = Some(checks.to_owned());
        self
    }

    /// Starts the agent (installing the Python peers first if needed) and
    /// waits until it answers `GET /info`; panics loudly, with the agent's
    /// log, when it cannot.
    pub fn start(self) -> TestAgent {
        if let Some(socket) = &self.unix_socket {
            // sun_path holds 108 bytes on Linux, 104 on macOS, NUL included.
            assert!(
                socket.as_os_str().len() < 104,
                "the test agent's unix socket path is too long ({} bytes, at most 103): {}",
                socket.as_os_str().len(),
                socket.display()
            );
        }
        let program = super::python::venv_bin("ddapm-test-agent");
        let mut failures = Vec::new();
        for attempt in 1..=ATTEMPTS {
            let [free, otlp_http_port, otlp_grpc_port] = free_ports();
            let port = self.port.unwrap_or(free);
            let log = log_path(port);
            let child = self.spawn(&program, &log, [port, otlp_http_port, otlp_grpc_port]);
            let mut agent = TestAgent {
                child,
                port,
                otlp_http_port,
                otlp_grpc_port,
                unix_socket: self.unix_socket.clone(),
                log,
                keep_log: false,
                http: http_client(),
            };
            match agent.wait_ready() {
                Ready::Yes => return agent,
                Ready::Exited(status) => {
                    // Most likely a port taken meanwhile: try new ones.
                    agent.keep_log = true;
                    failures.push(format!(
                        "attempt {attempt}: ddapm-test-agent (port {port}, OTLP {otlp_http_port}/{otlp_grpc_port}) exited with {status}\n{}",
                        agent.log_tail()
                    ));
                }
                Ready::TimedOut => panic!(
                    "\n\nddspan tests: ddapm-test-agent on port {port} did not answer GET /info \
                     within {READY_TIMEOUT:?}\n{}\n",
                    agent.log_tail()
                ),
            }
        }
        panic!(
            "\n\nddspan tests: ddapm-test-agent did not start in {ATTEMPTS} attempts:\n{}\n",
            failures.join("\n")
        );
    }

    fn spawn(&self, program: &Path, log: &Path, ports: [u16; 3]) -> Child {
        let log_file = File::create(log).unwrap_or_else(|e| {
            panic!("cannot create the test agent's log {}: {e}", log.display())
        });
        let log_err = log_file
            .try_clone()
            .unwrap_or_else(|e| panic!("cannot clone the log's handle: {e}"));
        let mut command = Command::new(program);
        command
            .args(["--host", "127.0.0.1"])
            .args(["--port", &ports[0].to_string()])
            .args(["--otlp-http-port", &ports[1].to_string()])
            .args(["--otlp-grpc-port", &ports[2].to_string()]);
        if let Some(socket) = &self.unix_socket {
            command.arg("--trace-uds-socket").arg(socket);
        }
        let inherited: Vec<OsString> = std::env::vars_os()
            .map(|(key, _)| key)
            .filter(|key| {
                let key = key.to_string_lossy();
                AGENT_ENV.contains(&key.as_ref())
                    || AGENT_ENV_PREFIXES.iter().any(|p| key.starts_with(p))
            })
            .collect();
        for key in inherited {
            command.env_remove(key);
        }
        command
            .env(
                "ENABLED_CHECKS",
                self.checks.as_deref().unwrap_or(DEFAULT_CHECKS),
            )
            .env("DD_POOL_TRACE_CHECK_FAILURES", "true")
            .env("PYTHONUNBUFFERED", "1")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(log_file)
            .stderr(log_err);
        command
            .spawn()
            .unwrap_or_else(|e| panic!("\n\nddspan tests: cannot run {}: {e}\n", program.display()))
    }
}

enum Ready {
    Yes,
    Exited(ExitStatus),
    TimedOut,
}

fn http_client() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        // Loopback only: never through an HTTP_PROXY of the environment.
        .proxy(None)
        .build();
    ureq::Agent::new_with_config(config)
}

/// Three distinct free ports: bound at once on 127.0.0.1:0, then released
/// for the agent to bind.
fn free_ports() -> [u16; 3] {
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| {
            TcpListener::bind("127.0.0.1:0")
                .unwrap_or_else(|e| panic!("cannot bind a free port on 127.0.0.1: {e}"))
        })
        .collect();
    let port = |i: usize| {
        listeners[i]
            .local_addr()
            .expect("a bound listener's address")
            .port()
    };
    [port(0), port(1), port(2)]
}

/// A new log file's path under the target's tmp dir, unique across the
/// test processes.
fn log_path(port: u16) -> PathBuf {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ddspan-test-agent");
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir.join(format!(
        "agent-{}-{}-port{port}.log",
        std::process::id(),
        SEQ.fetch_add(1, Ordering::Relaxed)
    ))
}

/// `s` as a URL query value.
fn query_value(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl TestAgent {
    /// Starts an agent with the default options ([`DEFAULT_CHECKS`], TCP
    /// only).
    pub fn start() -> TestAgent {
        TestAgent::builder().start()
    }

    /// Options for a new agent.
    pub fn builder() -> TestAgentBuilder {
        TestAgentBuilder::default()
    }

    /// The agent's base URL, `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The trace port (the one of [`url`](Self::url)).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The OTLP HTTP port.
    pub fn otlp_http_port(&self) -> u16 {
        self.otlp_http_port
    }

    /// The OTLP gRPC port. (The agent's gRPC server shares ports
    /// (`SO_REUSEPORT`): two agents given the same one both start.)
    pub fn otlp_grpc_port(&self) -> u16 {
        self.otlp_grpc_port
    }

    /// The unix socket the agent also listens on, if one was asked for.
    pub fn unix_socket(&self) -> Option<&Path> {
        self.unix_socket.as_deref()
    }

    /// The file holding the agent's stdout and stderr (under
    /// `<target>/tmp/ddspan-test-agent/`); removed when the agent is dropped,
    /// unless the thread is panicking or the agent failed to start.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last lines of the agent's log, with a header naming the file.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
        format!(
            "--- last {LOG_TAIL_LINES} lines of the test agent's log ({}) ---\n{tail}\n--- end of log ---",
            self.log.display()
        )
    }

    /// Ready when this process (not another one on the port) logged that
    /// it serves and `/info` answers 200.
    fn wait_ready(&mut self) -> Ready {
        let serving = format!("Running APM server on port {}", self.port);
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Ready::Exited(status);
            }
            let logged = std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(&serving));
            if logged && matches!(self.get("/info"), Ok((200, _))) {
                return Ready::Yes;
            }
            if started.elapsed() > READY_TIMEOUT {
                return Ready::TimedOut;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `GET path`: the status and body; a transport error is retried once.
    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let url = format!("{}{path}", self.url());
        let call = || self.http.get(&url).call();
        let mut response = call().or_else(|_| call()).map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(1 << 30)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    /// `GET path` answered 200, as JSON; panics otherwise.
    fn get_json(&self, path: &str) -> Value {
        match self.get(path) {
            Ok((200, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}")),
            Ok((status, body)) => {
                let hint = if status == 400 && body.trim_end() == "400:" {
                    "\n(an empty 400 means the agent stored a payload it cannot decode, \
                     e.g. a nil meta/metrics/error or a span encoded as an array; \
                     see requests() for the raw request)"
                } else {
                    ""
                };
                panic!(
                    "GET {path} on the test agent answered {status}: {body}{hint}\n{}",
                    self.log_tail()
                )
            }
            Err(e) => panic!(
                "GET {path} on the test agent failed: {e}\n{}",
                self.log_tail()
            ),
        }
    }

    /// `GET path` answered 200 (with a text body, `200: OK`); panics
    /// otherwise.
    fn get_ok(&self, path: &str) {
        match self.get(path) {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!(
                "GET {path} on the test agent answered {status}: {body}\n{}",
                self.log_tail()
            ),
            Err(e) => panic!(
                "GET {path} on the test agent failed: {e}\n{}",
                self.log_tail()
            ),
        }
    }

    fn get_list<T: serde::de::DeserializeOwned>(&self, path: &str) -> Vec<T> {
        let json = self.get_json(path);
        serde_json::from_value(json.clone())
            .unwrap_or_else(|e| panic!("GET {path}: not the list expected ({e}): {json}"))
    }

    /// `GET /info`: the endpoints, `client_drop_p0s`, ...
    pub fn info(&self) -> Value {
        self.get_json("/info")
    }

    /// Every trace this agent received (`GET /test/traces`), newest first,
    /// spans grouped by trace id across requests, whatever their session
    /// token. Panics with the answer if it is not 200.
    pub fn traces(&self) -> Vec<Vec<Value>> {
        self.get_list("/test/traces")
    }

    /// Starts a test session (`GET /test/session/start`): later reads with
    /// `token`, and requests sent with header
    /// `X-Datadog-Test-Session-Token: token` (or none), belong to it.
    pub fn start_session(&self, token: &str) {
        self.get_ok(&format!(
            "/test/session/start?test_session_token={}",
            query_value(token)
        ));
    }

    /// The traces of a session (`GET /test/session/traces`): those of the
    /// requests since [`start_session`](Self::start_session) sent with this
    /// token or with none.
    pub fn session_traces(&self, token: &str) -> Vec<Vec<Value>> {
        self.get_list(&format!(
            "/test/session/traces?test_session_token={}",
            query_value(token)
        ))
    }

    /// The client-side stats payloads it decoded (`GET /test/session/stats`),
    /// oldest first: each with its `Stats` buckets of grouped stats (a
    /// sketch shows as the number of bytes the agent's protobuf decoder
    /// read from it).
    pub fn stats(&self) -> Vec<Value> {
        self.get_list("/test/session/stats")
    }

    /// Forgets the requests of the latest session, or of all if there was
    /// none (`GET /test/session/clear`): e.g. after a payload it could not
    /// decode.
    pub fn clear(&self) {
        self.get_ok("/test/session/clear");
    }

    /// Polls [`traces`](Self::traces) every 50 ms until they hold at least
    /// `spans` spans, and returns them; panics with what the agent holds on
    /// timeout.
    pub fn wait_for_spans(&self, spans: usize, timeout: Duration) -> Vec<Vec<Value>> {
        let started = Instant::now();
        loop {
            let traces = self.traces();
            let count: usize = traces.iter().map(Vec::len).sum();
            if count >= spans {
                return traces;
            }
            assert!(
                started.elapsed() < timeout,
                "waited {timeout:?} for {spans} spans; the test agent holds {count} in {} traces:\n{}\n{}",
                traces.len(),
                serde_json::to_string_pretty(&traces).unwrap_or_default(),
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The raw intake requests the agent received (`GET
    /// /test/session/requests`), oldest first (the endpoint lists them
    /// newest first). Only intake endpoints (traces, stats, telemetry, ...),
    /// never `/info` nor `/test/...`; after a session start, only those sent
    /// since without a token (see the module's doc). Each is an object:
    ///
    /// ```json
    /// {"method": "PUT",
    ///  "url": "http://127.0.0.1:PORT/v0.4/traces",
    ///  "headers": {"Content-Type": "application/msgpack", "X-Datadog-Trace-Count": "1", ...},
    ///  "body": "<base64 of the raw body>"}
    /// ```
    ///
    /// Header names are as aiohttp parsed them: well-known ones canonical
    /// (`Content-Type`, `Content-Length`, `Host`, `User-Agent`), the others
    /// as the client spelled them (lower case from ureq/`http`); use
    /// [`header`] to look one up case-insensitively. A repeated header keeps
    /// one value. Requests the agent rejected are listed too.
    pub fn requests(&self) -> Vec<Value> {
        let mut requests: Vec<Value> = self.get_list("/test/session/requests");
        requests.reverse();
        requests
    }

    /// [`requests`](Self::requests) of a session.
    pub fn session_requests(&self, token: &str) -> Vec<Value> {
        let mut requests: Vec<Value> = self.get_list(&format!(
            "/test/session/requests?test_session_token={}",
            query_value(token)
        ));
        requests.reverse();
        requests
    }

    /// Panics with the agent's report if any enabled trace check failed
    /// (`GET /test/trace_check/failures?return_all=true` answers 200 when
    /// none did, 400 with the report otherwise).
    pub fn assert_no_check_failures(&self) {
        match self.get("/test/trace_check/failures?return_all=true") {
            Ok((200, _)) => {}
            Ok((status, report)) => {
                panic!("the test agent's trace checks failed ({status}):\n{report}")
            }
            Err(e) => panic!(
                "cannot read the test agent's trace check failures: {e}\n{}",
                self.log_tail()
            ),
        }
    }

    /// Changes the agent's settings at run time (`POST /test/settings`),
    /// e.g. `{"trace_request_delay": 0.7}` (which only acts with the
    /// `trace_stall` check enabled); panics unless the agent accepts them.
    pub fn set_settings(&self, json: &str) {
        let url = format!("{}/test/settings", self.url());
        let mut response = self
            .http
            .post(&url)
            .header("Content-Type", "application/json")
            .send(json)
            .unwrap_or_else(|e| panic!("POST /test/settings failed: {e}"));
        let status = response.status();
        if !status.is_success() {
            let body = response.body_mut().read_to_string().unwrap_or_default();
            panic!("POST /test/settings {json} answered {status}: {body}");
        }
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(socket) = &self.unix_socket {
            // Killed, the agent leaves its socket file behind.
            let _ = std::fs::remove_file(socket);
        }
        if !self.keep_log && !std::thread::panicking() {
            let _ = std::fs::remove_file(&self.log);
        }
    }
}

/// The span named `name` in a trace (or any list of spans); panics listing
/// the names present.
pub fn span_by_name<'a>(trace: &'a [Value], name: &str) -> &'a Value {
    trace.iter().find(|s| s["name"] == name).unwrap_or_else(|| {
        let names: Vec<&Value> = trace.iter().map(|s| &s["name"]).collect();
        panic!("no span named {name:?} among {names:?}")
    })
}

/// A `meta` string of a decoded span.
pub fn meta<'a>(span: &'a Value, key: &str) -> Option<&'a str> {
    span["meta"][key].as_str()
}

/// A `metrics` number of a decoded span.
pub fn metric(span: &Value, key: &str) -> Option<f64> {
    span["metrics"][key].as_f64()
}

/// All spans of all traces, in one list.
pub fn flatten(traces: Vec<Vec<Value>>) -> Vec<Value> {
    traces.into_iter().flatten().collect()
}

/// A header of one of [`TestAgent::requests`], its name matched
/// case-insensitively.
pub fn header<'a>(request: &'a Value, name: &str) -> Option<&'a str> {
    request["headers"]
        .as_object()?
        .iter()
        .find(|(key, _)| key.eq_ignore_ascii_case(name))
        .and_then(|(_, value)| value.as_str())
}
