//! ddapm-test-agent, Datadog's agent stand-in, on free loopback ports: one
//! per test, killed when dropped. It validates every payload it decodes.

use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

const DEFAULT_CHECKS: &str = "trace_count_header,meta_tracer_version_header,trace_content_length";

/// A running test agent.
pub struct TestAgent {
    child: Child,
    port: u16,
    log: PathBuf,
    http: ureq::Agent,
}

/// Options for [`TestAgent`].
#[derive(Default)]
pub struct TestAgentBuilder {
    unix_socket: Option<PathBuf>,
    env: Vec<(String, String)>,
    checks: Option<String>,
}

impl TestAgentBuilder {
    /// Also listen on this unix socket.
    pub fn unix_socket(mut self, path: &Path) -> Self {
        self.unix_socket = Some(path.to_owned());
        self
    }

    /// An extra environment variable for the agent.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_owned(), value.to_owned()));
        self
    }

    /// The trace checks to enable (`ENABLED_CHECKS`).
    pub fn checks(mut self, checks: &str) -> Self {
        self.checks = Some(checks.to_owned());
        self
    }

    /// Starts the agent and waits until it answers `/info`; panics loudly
    /// (with the agent's log) when it cannot.
    pub fn start(self) -> TestAgent {
        let venv = super::python::peers_venv();
        let mut last_error = String::new();
        for _ in 0..3 {
            let [port, otlp_http, otlp_grpc] = free_ports();
            let log = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("test-agent-{port}.log"));
            let log_file = File::create(&log).expect("create the test agent's log");
            let mut command = Command::new(venv.join("bin").join("ddapm-test-agent"));
            command
                .args(["--port", &port.to_string()])
                .args(["--otlp-http-port", &otlp_http.to_string()])
                .args(["--otlp-grpc-port", &otlp_grpc.to_string()])
                .env(
                    "ENABLED_CHECKS",
                    self.checks.as_deref().unwrap_or(DEFAULT_CHECKS),
                )
                .env("DD_POOL_TRACE_CHECK_FAILURES", "true")
                .env("PYTHONUNBUFFERED", "1")
                .stdin(Stdio::null())
                .stdout(log_file.try_clone().expect("clone the log handle"))
                .stderr(log_file);
            if let Some(socket) = &self.unix_socket {
                command.arg("--trace-uds-socket").arg(socket);
            }
            for (key, value) in &self.env {
                command.env(key, value);
            }
            let child = command.spawn().unwrap_or_else(|e| {
                panic!("cannot run ddapm-test-agent from {}: {e}", venv.display())
            });
            let mut agent = TestAgent {
                child,
                port,
                log,
                http: http_client(),
            };
            match agent.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return agent,
                Err(why) => last_error = format!("{why}\n{}", agent.log_tail()),
            }
        }
        panic!("ddapm-test-agent did not start: {last_error}");
    }
}

fn http_client() -> ureq::Agent {
    let config = ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build();
    ureq::Agent::new_with_config(config)
}

fn free_ports() -> [u16; 3] {
    // Hold all three listeners at once so the ports differ, then release them.
    let listeners: Vec<TcpListener> = (0..3)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    let ports: Vec<u16> = listeners
        .iter()
        .map(|l| l.local_addr().expect("local address").port())
        .collect();
    [ports[0], ports[1], ports[2]]
}

impl TestAgent {
    /// Starts an agent with the default options.
    pub fn start() -> TestAgent {
        TestAgent::builder().start()
    }

    /// Options for a new agent.
    pub fn builder() -> TestAgentBuilder {
        TestAgentBuilder::default()
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The trace port.
    pub fn port(&self) -> u16 {
        self.port
    }

    fn wait_ready(&mut self, timeout: Duration) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("the test agent exited with {status}"));
            }
            if let Ok((200, _)) = self.get("/info") {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "the test agent did not answer /info within {timeout:?}"
        ))
    }

    fn get(&self, path: &str) -> Result<(u16, String), String> {
        let mut response = self
            .http
            .get(format!("{}{path}", self.url()))
            .call()
            .map_err(|e| e.to_string())?;
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(256 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| e.to_string())?;
        Ok((status, body))
    }

    fn get_json(&self, path: &str) -> Value {
        match self.get(path) {
            Ok((200, body)) => serde_json::from_str(&body)
                .unwrap_or_else(|e| panic!("GET {path}: not JSON ({e}): {body}")),
            Ok((status, body)) => {
                panic!("GET {path} answered {status}: {body}\n{}", self.log_tail())
            }
            Err(e) => panic!("GET {path} failed: {e}\n{}", self.log_tail()),
        }
    }

    /// Every trace this agent received, as decoded by the agent.
    pub fn traces(&self) -> Vec<Vec<Value>> {
        serde_json::from_value(self.get_json("/test/traces")).expect("a list of traces")
    }

    /// Starts a test session with this token.
    pub fn start_session(&self, token: &str) {
        self.get_json(&format!("/test/session/start?test_session_token={token}"));
    }

    /// The traces of a session.
    pub fn session_traces(&self, token: &str) -> Vec<Vec<Value>> {
        serde_json::from_value(
            self.get_json(&format!("/test/session/traces?test_session_token={token}")),
        )
        .expect("a list of traces")
    }

    /// Polls until the agent holds at least `spans` spans; panics with what
    /// it holds on timeout.
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
                "waited {timeout:?} for {spans} spans, the agent holds {count}: {traces:#?}\n{}",
                self.log_tail()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The raw requests the agent received (each with its headers).
    pub fn requests(&self) -> Vec<Value> {
        serde_json::from_value(self.get_json("/test/session/requests")).expect("a list of requests")
    }

    /// Panics with the report if any enabled trace check failed.
    pub fn assert_no_check_failures(&self) {
        match self.get("/test/trace_check/failures?return_all=true") {
            Ok((200, _)) => {}
            Ok((status, body)) => panic!("the test agent's trace checks failed ({status}): {body}"),
            Err(e) => panic!("cannot read the trace check failures: {e}"),
        }
    }

    /// Changes settings at run time (`POST /test/settings`).
    pub fn set_settings(&self, json: &str) {
        let response = self
            .http
            .post(format!("{}/test/settings", self.url()))
            .header("Content-Type", "application/json")
            .send(json)
            .expect("POST /test/settings");
        assert!(
            response.status().is_success(),
            "POST /test/settings: {}",
            response.status()
        );
    }

    /// The last lines the agent logged.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        let tail = lines[lines.len().saturating_sub(40)..].join("\n");
        format!("--- test agent log ({}) ---\n{tail}", self.log.display())
    }
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The span named `name`; panics listing the names present.
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

/// All spans of all traces.
pub fn flatten(traces: Vec<Vec<Value>>) -> Vec<Value> {
    traces.into_iter().flatten().collect()
}
