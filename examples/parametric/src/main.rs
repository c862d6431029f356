//! ddspan's parametric server: the HTTP app through which Datadog's
//! cross-tracer system-tests ("parametric" scenario) drive a tracer. The
//! tests start one process per test with the tracer's environment
//! (`DD_SERVICE`, `DD_TRACE_AGENT_URL`, `DD_TRACE_SAMPLING_RULES`, ...),
//! call `/trace/span/start`, `/trace/span/inject_headers`, ... and check
//! what ddapm-test-agent received.
//!
//! ```sh
//! APM_TEST_CLIENT_SERVER_PORT=8080 DD_SERVICE=demo cargo run -p ddspan-parametric
//! curl -s -XPOST localhost:8080/trace/span/start -d '{"name":"op"}'
//! ```
//!
//! It listens on 127.0.0.1 at `APM_TEST_CLIENT_SERVER_PORT` (8080 by
//! default; `0` picks a free port) and prints `listening on ADDRESS` on
//! stdout once it accepts connections. `scripts/conformance.sh` builds it
//! and runs Datadog's test files against it; CONFORMANCE.md has the results.

mod app;
mod protocol;
mod settings;

use std::convert::Infallible;
use std::io::Write;
use std::net::Ipv4Addr;
use std::sync::Arc;

use ddspan::{tracer, Config};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::app::App;

const DEFAULT_PORT: u16 = 8080;

// One thread: the client sends one request at a time, and `span/flush`
// blocks while the writer delivers, which is what the tests want (they
// read the agent as soon as it answers).
#[tokio::main(flavor = "current_thread")]
async fn main() {
    let port = match std::env::var("APM_TEST_CLIENT_SERVER_PORT") {
        Ok(port) => port.trim().parse::<u16>().unwrap_or_else(|_| {
            eprintln!("parametric: APM_TEST_CLIENT_SERVER_PORT={port:?} is not a port");
            std::process::exit(2)
        }),
        Err(_) => DEFAULT_PORT,
    };
    let config = Config::from_env();
    tracer::start(config.clone());
    let app = Arc::new(App::new(config));
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, port)).await {
        Ok(listener) => listener,
        Err(error) => {
            eprintln!("parametric: cannot listen on 127.0.0.1:{port}: {error}");
            std::process::exit(1)
        }
    };
    if let Ok(address) = listener.local_addr() {
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {address}");
        let _ = stdout.flush();
    }
    serve(listener, app).await;
}

/// Accepts connections until the process is stopped (the harness sends
/// SIGTERM). Keep-alive is off: every answer closes its connection. The
/// client is a Python `requests.Session`, which reuses connections; with
/// keep-alive on, Datadog's Rust app saw it fail at random with
/// `RemoteDisconnected` on the flush calls that end each test (the race of
/// cpython#85517 between a server closing an idle connection and the
/// client reusing it), and answers with keep-alive off; so does this one.
async fn serve(listener: TcpListener, app: Arc<App>) {
    loop {
        let (stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                eprintln!("parametric: accept: {error}");
                continue;
            }
        };
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            let service = service_fn(move |request| {
                let app = Arc::clone(&app);
                async move { Ok::<_, Infallible>(answer(&app, request).await) }
            });
            let connection = http1::Builder::new()
                .keep_alive(false)
                .serve_connection(TokioIo::new(stream), service);
            if let Err(error) = connection.await {
                eprintln!("parametric: connection: {error}");
            }
        });
    }
}

/// Reads the whole body (GET requests carry JSON too: `get_baggage`) and
/// answers; unknown routes get 404.
async fn answer(app: &App, request: Request<Incoming>) -> Response<Full<Bytes>> {
    let (parts, body) = request.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => return reply(StatusCode::BAD_REQUEST, error.to_string().into_bytes()),
    };
    let path = parts.uri.path();
    let (status, json) = app
        .handle(&parts.method, path, &body)
        .unwrap_or((StatusCode::NOT_FOUND, b"{}".to_vec()));
    if status != StatusCode::NOT_FOUND || path.starts_with("/trace/") {
        eprintln!("parametric: {} {path} -> {}", parts.method, status.as_u16());
    }
    reply(status, json)
}

fn reply(status: StatusCode, json: Vec<u8>) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(json)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
