//! What a tracer costs the whole process per span it ships: producers
//! create web-request traces at a fixed rate, and each tracer's process
//! pays for its spans on the application threads and for encoding and
//! sending them on its own threads. The per-span benchmarks (`--bench span`)
//! time only the creating thread.
//!
//! Each tracer runs in a child process of its own (this bench runs itself
//! again with `--child <tracer>`), so no global tracer state mixes; the
//! stand-in agent (`support/agent.rs`) runs in this parent process, so its
//! decoding is not counted. For each tracer:
//!
//! - CPU: the child's user + system time, all its threads, from start to
//!   exit (`getrusage(RUSAGE_CHILDREN)` before and after waiting for it);
//! - shipped: the spans the agent decoded from the child's payloads, and
//!   created: the spans the producers made; CPU is shown per each;
//! - bytes: the request bodies of the trace payloads, per shipped span.
//!
//! One trace ([`SPANS_PER_TRACE`] spans) is one web request:
//!
//! ```text
//! http.request      resource "GET /users/:id", type web
//!                   http.method, http.route, component (static strings),
//!                   http.url (a string built per request), http.status_code (integer)
//! ├─ cache.get      resource "GET user", type cache; db.system
//! ├─ db.query       resource "SELECT * FROM users WHERE id = ?", type sql; db.system, db.row_count (integer)
//! ├─ db.query       resource "SELECT * FROM orders WHERE user_id = ?", type sql; db.system, db.row_count (integer)
//! └─ template.render  template.name
//! ```
//!
//! Tracers, each with its default configuration except where it is pointed
//! at the agent:
//!
//! - `none`: the same producers and request functions, no tracer: the
//!   floor that pacing and the application's own work cost;
//! - `ddspan`: `#[dd_span]` functions, static tags in the attribute, the
//!   dynamic ones by `tracer::current_span().set_tag(..)`;
//! - `dd-otel` (with `--features bench-datadog-opentelemetry`):
//!   `#[tracing::instrument]` through `tracing-opentelemetry` into
//!   Datadog's `datadog-opentelemetry` (remote configuration and telemetry
//!   off), as its README sets it up; each span also carries
//!   `operation.name`, without which Datadog names an OpenTelemetry span
//!   by its kind (`internal`);
//! - `fastrace`: `#[fastrace::trace]` with `fastrace-datadog`'s reporter
//!   (it has one resource and one span type for all spans, and string
//!   properties only);
//! - `otel`: the OpenTelemetry API on the OpenTelemetry SDK, its batch span
//!   processor (own thread) and the OTLP/HTTP protobuf exporter with its
//!   default blocking `reqwest` client.
//!
//! `cargo bench -p ddspan-benches --bench whole_process [--features bench-datadog-opentelemetry]`;
//! `WHOLE_PROCESS_RATE` (spans/s, 200000), `WHOLE_PROCESS_SECONDS` (10),
//! `WHOLE_PROCESS_THREADS` (producers, 2), `WHOLE_PROCESS_TRACERS` (a comma
//! list of the tracers above; all by default); `WHOLE_PROCESS_SAMPLE=1`
//! prints the first trace the agent received from each tracer, decoded;
//! `WHOLE_PROCESS_INFO=empty` makes the agent's `/info` list no endpoints
//! (tracers then send v0.4; by default it answers as a Datadog Agent 7,
//! whose list has `/v0.5/traces`);
//! `WHOLE_PROCESS_WRAP` runs each child under a profiler (e.g.
//! `"valgrind --tool=callgrind --separate-threads=yes"`).

use std::hint::black_box;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[path = "support/agent.rs"]
mod agent;
#[path = "support/cpu.rs"]
mod cpu;

/// Spans in one request's trace.
const SPANS_PER_TRACE: u64 = 5;

/// The tracers, in the order they run.
const TRACERS: [&str; 5] = ["none", "ddspan", "dd-otel", "fastrace", "otel"];

/// Environment of a child: the agent's URL.
const AGENT_VAR: &str = "WHOLE_PROCESS_AGENT";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(at) = args.iter().position(|a| a == "--child") {
        let tracer = args.get(at + 1).expect("--child names a tracer");
        child::run(tracer);
        return;
    }
    if args.iter().any(|a| a == "--list") {
        return; // `cargo bench` probes harness=false benches with --list
    }
    parent::run();
}

// ---------------------------------------------------------------- the parent

mod parent {
    use super::*;

    /// What one tracer's child came to.
    pub(super) struct Outcome {
        pub(super) tracer: String,
        pub(super) created: u64,
        pub(super) shipped: u64,
        pub(super) body_bytes: u64,
        pub(super) payloads: u64,
        pub(super) undecodable: u64,
        pub(super) connections: u64,
        pub(super) cpu: Duration,
        /// The child's own report: CPU while producing, by thread, and at
        /// the flush.
        pub(super) detail: String,
    }

    impl Outcome {
        fn ns_per_shipped(&self) -> Option<f64> {
            (self.shipped > 0).then(|| self.cpu.as_nanos() as f64 / self.shipped as f64)
        }
    }

    pub(super) fn run() {
        let rate: f64 = env_or("WHOLE_PROCESS_RATE", 200_000.0);
        let seconds: f64 = env_or("WHOLE_PROCESS_SECONDS", 10.0);
        let threads: usize = env_or("WHOLE_PROCESS_THREADS", 2);
        let chosen: Option<Vec<String>> = std::env::var("WHOLE_PROCESS_TRACERS")
            .ok()
            .map(|list| list.split(',').map(|t| t.trim().to_owned()).collect());
        let tracers: Vec<&str> = TRACERS
            .into_iter()
            .filter(|t| *t != "dd-otel" || cfg!(feature = "bench-datadog-opentelemetry"))
            .filter(|t| chosen.as_ref().is_none_or(|c| c.iter().any(|c| c == t)))
            .collect();
        println!(
            "whole-process cost per shipped span, {}: {rate:.0} spans/s ({:.0} traces/s of \
             {SPANS_PER_TRACE} spans) for {seconds} s from {threads} producer threads; \
             tracers: {}",
            utc_date(),
            rate / SPANS_PER_TRACE as f64,
            tracers.join(", ")
        );
        if !cfg!(feature = "bench-datadog-opentelemetry") {
            println!("(datadog-opentelemetry: add --features bench-datadog-opentelemetry)");
        }
        let outcomes: Vec<Outcome> = tracers.iter().map(|t| run_child(t)).collect();
        report(&outcomes);
    }

    fn run_child(tracer: &str) -> Outcome {
        let received = Arc::new(agent::Received::default());
        let url = agent::start(Arc::clone(&received));
        let cpu_before = cpu::children();
        let started = Instant::now();
        // `WHOLE_PROCESS_WRAP="perf record -o dd.data --"` (or valgrind ...)
        // runs the children under a profiler.
        let wrap = std::env::var("WHOLE_PROCESS_WRAP").unwrap_or_default();
        let mut words = wrap.split_whitespace();
        let this = std::env::current_exe().expect("this bench's path");
        let mut command = match words.next() {
            Some(program) => {
                let mut command = Command::new(program);
                command.args(words).arg(&this);
                command
            }
            None => Command::new(&this),
        };
        let output = command
            .args(["--child", tracer])
            .env(AGENT_VAR, &url)
            .stderr(std::process::Stdio::inherit())
            .output()
            .expect("the child runs");
        let wall = started.elapsed();
        let cpu = cpu::children() - cpu_before;
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success(),
            "the {tracer} child failed: {}\n{stdout}",
            output.status
        );
        // Payloads the child sent before it exited may still be decoding.
        let mut last = received.progress();
        let mut still = Instant::now();
        let deadline = Instant::now() + Duration::from_secs(5);
        while still.elapsed() < Duration::from_millis(500) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
            let now = received.progress();
            if now != last {
                (last, still) = (now, Instant::now());
            }
        }
        let field = |name: &str| -> Option<&str> {
            stdout
                .lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        };
        let outcome = Outcome {
            tracer: tracer.to_owned(),
            created: field("created").and_then(|c| c.parse().ok()).unwrap_or(0),
            shipped: received.spans.load(Ordering::Relaxed),
            body_bytes: received.body_bytes.load(Ordering::Relaxed),
            payloads: received.payloads.load(Ordering::Relaxed),
            undecodable: received.undecodable.load(Ordering::Relaxed),
            connections: received.connections.load(Ordering::Relaxed),
            cpu,
            detail: field("detail").unwrap_or("").to_owned(),
        };
        if let Some(sample) = received.sample.lock().expect("not poisoned").as_ref() {
            println!("  {tracer}: the first trace the agent received:\n{sample}");
        }
        println!(
            "  {:<9} done: {:.1} s wall, {:.0} ms CPU, created {}, shipped {}, {} payloads \
             ({} undecodable) on {} connections\n            {}",
            tracer,
            wall.as_secs_f64(),
            cpu.as_secs_f64() * 1e3,
            outcome.created,
            outcome.shipped,
            outcome.payloads,
            outcome.undecodable,
            outcome.connections,
            outcome.detail
        );
        outcome
    }

    fn report(outcomes: &[Outcome]) {
        let baseline = outcomes.iter().find(|o| o.tracer == "none");
        let ddspan = outcomes
            .iter()
            .find(|o| o.tracer == "ddspan")
            .and_then(Outcome::ns_per_shipped);
        println!(
            "\n{:<9} {:>10} {:>10} {:>7} {:>9} {:>12} {:>12} {:>12} {:>8} {:>9}",
            "tracer",
            "created",
            "shipped",
            "shipped",
            "CPU ms",
            "ns/shipped",
            "net",
            "ns/created",
            "B/span",
            "ddspan /"
        );
        for o in outcomes {
            let per_span = o.ns_per_shipped();
            let net = baseline
                .filter(|_| o.tracer != "none" && o.shipped > 0)
                .map(|b| (o.cpu.as_nanos() as f64 - b.cpu.as_nanos() as f64) / o.shipped as f64);
            let show = |v: Option<f64>, digits: usize| {
                v.map_or("-".to_owned(), |v| format!("{v:.digits$}"))
            };
            println!(
                "{:<9} {:>10} {:>10} {:>6.1}% {:>9.0} {:>12} {:>12} {:>12} {:>8} {:>9}",
                o.tracer,
                o.created,
                o.shipped,
                100.0 * o.shipped as f64 / o.created.max(1) as f64,
                o.cpu.as_secs_f64() * 1e3,
                show(per_span, 1),
                show(net, 1),
                show(
                    (o.created > 0).then(|| o.cpu.as_nanos() as f64 / o.created as f64),
                    1
                ),
                show(
                    (o.shipped > 0).then(|| o.body_bytes as f64 / o.shipped as f64),
                    1
                ),
                match (ddspan, per_span) {
                    (Some(d), Some(p)) if o.tracer != "none" && o.tracer != "ddspan" =>
                        format!("{:.2}x", d / p),
                    _ => "-".to_owned(),
                },
            );
        }
        println!(
            "(CPU: the child process from start to exit, all threads, user + system; \
             ns/shipped: its CPU per shipped span; net: the same less the `none` child's \
             CPU; ns/created: its CPU per span created; B/span: trace request bodies per \
             shipped span; ddspan /: ddspan's ns/shipped over the tracer's)"
        );
        let Some(dd) = ddspan else { return };
        let lowest = outcomes
            .iter()
            .filter(|o| o.tracer != "none" && o.tracer != "ddspan")
            .filter_map(Outcome::ns_per_shipped)
            .all(|p| dd < p);
        println!("targets (issue #15, item 4):");
        println!(
            "  ddspan the lowest CPU per shipped span: {}",
            if lowest { "met" } else { "NOT met" }
        );
        println!(
            "  <= 150 ns CPU per shipped span: {dd:.1} ns, {}",
            if dd <= 150.0 { "met" } else { "NOT met" }
        );
        match outcomes
            .iter()
            .find(|o| o.tracer == "dd-otel")
            .and_then(Outcome::ns_per_shipped)
        {
            Some(p) => println!(
                "  <= 0.3x datadog-opentelemetry's: {:.2}x, {}",
                dd / p,
                if dd / p <= 0.3 { "met" } else { "NOT met" }
            ),
            None => println!("  <= 0.3x datadog-opentelemetry's: not run"),
        }
    }

    /// Today's date (UTC) as YYYY-MM-DD.
    fn utc_date() -> String {
        let days = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / 86_400) as i64;
        // Howard Hinnant's days_from_civil, inverted.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        format!("{year:04}-{month:02}-{day:02}")
    }
}

// ---------------------------------------------------------------- a child

mod child {
    use super::*;

    /// One tracer in this process: how a request is traced, and how its
    /// spans are flushed at the end (returns a note on what it says it did).
    pub(super) struct Traced {
        pub(super) request: fn(u64),
        pub(super) finish: Box<dyn FnOnce() -> String>,
    }

    pub(super) fn run(tracer: &str) {
        let agent = std::env::var(AGENT_VAR).expect("the parent gives the agent's URL");
        let rate: f64 = env_or("WHOLE_PROCESS_RATE", 200_000.0);
        let seconds: f64 = env_or("WHOLE_PROCESS_SECONDS", 10.0);
        let threads: usize = env_or("WHOLE_PROCESS_THREADS", 2);
        let traced = match tracer {
            "none" => Traced {
                request: super::none::request,
                finish: Box::new(String::new),
            },
            "ddspan" => super::ddspan::start(&agent),
            #[cfg(feature = "bench-datadog-opentelemetry")]
            "dd-otel" => super::dd_otel::start(&agent),
            "fastrace" => super::fastrace_dd::start(&agent),
            "otel" => super::otel::start(&agent),
            other => panic!("no tracer {other} in this build"),
        };
        let at_start = cpu::process();
        let (created, by_thread) = produce(
            traced.request,
            rate,
            Duration::from_secs_f64(seconds),
            threads,
        );
        let producing = cpu::process() - at_start;
        let before_flush = cpu::process();
        let note = (traced.finish)();
        let flushing = cpu::process() - before_flush;
        println!("created={created}");
        println!(
            "detail=producing {:.0} ms CPU ({}), flush {:.0} ms{}",
            producing.as_secs_f64() * 1e3,
            by_thread,
            flushing.as_secs_f64() * 1e3,
            if note.is_empty() {
                String::new()
            } else {
                format!("; {note}")
            }
        );
    }

    /// `threads` producers together at `rate` spans/s for `duration`, each
    /// calling `request` in bursts of about 2 ms of its share and sleeping
    /// to the next burst's due time. Returns the spans created, and the CPU
    /// of the process's threads by name just before the producers stop.
    fn produce(request: fn(u64), rate: f64, duration: Duration, threads: usize) -> (u64, String) {
        let stop = Arc::new(AtomicBool::new(false));
        let created = Arc::new(AtomicU64::new(0));
        let traces_per_second = rate / SPANS_PER_TRACE as f64 / threads as f64;
        let burst = (traces_per_second / 500.0).ceil().max(1.0) as u64;
        let period = Duration::from_secs_f64(burst as f64 / traces_per_second);
        let producers: Vec<_> = (0..threads)
            .map(|n| {
                let (stop, created) = (Arc::clone(&stop), Arc::clone(&created));
                std::thread::Builder::new()
                    .name(format!("producer-{n}"))
                    .spawn(move || {
                        let mut id = n as u64 * 1_000_000_000;
                        let mut due = Instant::now();
                        while !stop.load(Ordering::Relaxed) {
                            for _ in 0..burst {
                                request(black_box(id));
                                id += 1;
                            }
                            created.fetch_add(burst * SPANS_PER_TRACE, Ordering::Relaxed);
                            due += period;
                            let now = Instant::now();
                            if due > now {
                                std::thread::sleep(due - now);
                            }
                        }
                    })
                    .expect("a producer thread")
            })
            .collect();
        std::thread::sleep(duration);
        let by_thread = cpu::threads();
        stop.store(true, Ordering::Relaxed);
        for producer in producers {
            producer.join().expect("a producer");
        }
        (created.load(Ordering::Relaxed), by_thread)
    }
}

// ---------------------------------------------------------------- the request's work

/// The application's own work in a request, the same under every tracer:
/// the URL it built, a cache lookup, two queries, a render.
mod app {
    use std::hint::black_box;

    pub(super) fn url(id: u64) -> String {
        format!("/users/{id}")
    }
    pub(super) fn cache_hit(id: u64) -> bool {
        black_box(id) % 4 != 0
    }
    pub(super) fn user_rows(id: u64) -> i64 {
        black_box(id) as i64 & 1
    }
    pub(super) fn order_rows(id: u64) -> i64 {
        black_box(id) as i64 % 8
    }
    pub(super) fn render(rows: i64) -> usize {
        black_box(rows as usize * 64)
    }
}

mod none {
    use super::app;
    use std::hint::black_box;

    #[inline(never)]
    pub(super) fn request(id: u64) {
        black_box(app::url(id));
        black_box(app::cache_hit(id));
        let rows = app::user_rows(id) + app::order_rows(id);
        black_box(app::render(rows));
        black_box(200);
    }
}

// ---------------------------------------------------------------- ddspan

mod ddspan {
    use super::app;
    use ddspan::{dd_span, tracer, AgentUrl, Config};

    pub(super) fn start(agent: &str) -> super::child::Traced {
        tracer::start(
            Config::builder()
                .service("whole-process")
                .agent_url(AgentUrl::Http(agent.to_owned()))
                .startup_logs(false)
                .build(),
        );
        super::child::Traced {
            request,
            finish: Box::new(|| {
                let delivered = tracer::stop();
                let stats = tracer::stats();
                format!(
                    "ddspan: stop delivered all: {delivered}; sent {} spans in {} payloads, \
                     dropped {}",
                    stats.spans_sent,
                    stats.payloads_sent,
                    stats.spans_dropped()
                )
            }),
        }
    }

    #[dd_span(
        span.name = "http.request",
        resource.name = "GET /users/:id",
        span.type = "web",
        http.method = "GET",
        http.route = "/users/:id",
        component = "http"
    )]
    #[inline(never)]
    fn request(id: u64) {
        let span = tracer::current_span();
        if let Some(span) = &span {
            span.set_tag("http.url", app::url(id));
        }
        cache_get(id);
        let rows = select_user(id) + select_orders(id);
        render(rows);
        if let Some(span) = &span {
            span.set_tag("http.status_code", 200);
        }
    }

    #[dd_span(
        span.name = "cache.get",
        resource.name = "GET user",
        span.type = "cache",
        db.system = "redis"
    )]
    #[inline(never)]
    fn cache_get(id: u64) -> bool {
        app::cache_hit(id)
    }

    #[dd_span(
        span.name = "db.query",
        resource.name = "SELECT * FROM users WHERE id = ?",
        span.type = "sql",
        db.system = "postgresql"
    )]
    #[inline(never)]
    fn select_user(id: u64) -> i64 {
        let rows = app::user_rows(id);
        if let Some(span) = tracer::current_span() {
            span.set_tag("db.row_count", rows);
        }
        rows
    }

    #[dd_span(
        span.name = "db.query",
        resource.name = "SELECT * FROM orders WHERE user_id = ?",
        span.type = "sql",
        db.system = "postgresql"
    )]
    #[inline(never)]
    fn select_orders(id: u64) -> i64 {
        let rows = app::order_rows(id);
        if let Some(span) = tracer::current_span() {
            span.set_tag("db.row_count", rows);
        }
        rows
    }

    #[dd_span(span.name = "template.render", template.name = "user.html")]
    #[inline(never)]
    fn render(rows: i64) -> usize {
        app::render(rows)
    }
}

// ---------------------------------------------------------------- tracing + datadog-opentelemetry

#[cfg(feature = "bench-datadog-opentelemetry")]
mod dd_otel {
    use std::time::Duration;

    use super::app;
    use opentelemetry::trace::TracerProvider;
    use tracing::field::Empty;
    use tracing_subscriber::layer::SubscriberExt;

    pub(super) fn start(agent: &str) -> super::child::Traced {
        let config = datadog_opentelemetry::configuration::Config::builder()
            .set_service("whole-process".into())
            .set_trace_agent_url(agent.to_owned())
            .set_remote_config_enabled(false)
            .set_telemetry_enabled(false)
            .build();
        let (provider, _propagator) = datadog_opentelemetry::tracing()
            .with_config(config)
            .init_local();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("whole-process"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
            .expect("the only subscriber");
        super::child::Traced {
            request,
            finish: Box::new(move || {
                match provider.shutdown_with_timeout(Duration::from_secs(10)) {
                    Ok(()) => "dd-otel: shutdown ok".to_owned(),
                    Err(error) => format!("dd-otel: shutdown: {error}"),
                }
            }),
        }
    }

    #[tracing::instrument(
        name = "http.request",
        skip_all,
        fields(
            operation.name = "http.request",
            resource.name = "GET /users/:id",
            span.type = "web",
            http.method = "GET",
            http.route = "/users/:id",
            component = "http",
            http.url = Empty,
            http.status_code = Empty,
        )
    )]
    #[inline(never)]
    fn request(id: u64) {
        let span = tracing::Span::current();
        span.record("http.url", app::url(id).as_str());
        cache_get(id);
        let rows = select_user(id) + select_orders(id);
        render(rows);
        span.record("http.status_code", 200);
    }

    #[tracing::instrument(
        name = "cache.get",
        skip_all,
        fields(
            operation.name = "cache.get",
            resource.name = "GET user",
            span.type = "cache",
            db.system = "redis",
        )
    )]
    #[inline(never)]
    fn cache_get(id: u64) -> bool {
        app::cache_hit(id)
    }

    #[tracing::instrument(
        name = "db.query",
        skip_all,
        fields(
            operation.name = "db.query",
            resource.name = "SELECT * FROM users WHERE id = ?",
            span.type = "sql",
            db.system = "postgresql",
            db.row_count = Empty,
        )
    )]
    #[inline(never)]
    fn select_user(id: u64) -> i64 {
        let rows = app::user_rows(id);
        tracing::Span::current().record("db.row_count", rows);
        rows
    }

    #[tracing::instrument(
        name = "db.query",
        skip_all,
        fields(
            operation.name = "db.query",
            resource.name = "SELECT * FROM orders WHERE user_id = ?",
            span.type = "sql",
            db.system = "postgresql",
            db.row_count = Empty,
        )
    )]
    #[inline(never)]
    fn select_orders(id: u64) -> i64 {
        let rows = app::order_rows(id);
        tracing::Span::current().record("db.row_count", rows);
        rows
    }

    #[tracing::instrument(
        name = "template.render",
        skip_all,
        fields(operation.name = "template.render", template.name = "user.html")
    )]
    #[inline(never)]
    fn render(rows: i64) -> usize {
        app::render(rows)
    }
}

// ---------------------------------------------------------------- fastrace + fastrace-datadog

mod fastrace_dd {
    use std::net::SocketAddr;

    use super::app;
    use fastrace::local::LocalSpan;
    use fastrace::prelude::{Span, SpanContext};

    pub(super) fn start(agent: &str) -> super::child::Traced {
        let address: SocketAddr = agent
            .trim_start_matches("http://")
            .parse()
            .expect("the agent's address");
        // The reporter has one resource and one span type for all spans.
        let reporter = fastrace_datadog::DatadogReporter::new(
            address,
            "whole-process",
            "GET /users/:id",
            "web",
        );
        fastrace::set_reporter(reporter, fastrace::collector::Config::default());
        super::child::Traced {
            request,
            finish: Box::new(|| {
                fastrace::flush();
                String::new()
            }),
        }
    }

    #[inline(never)]
    fn request(id: u64) {
        let root = Span::root("http.request", SpanContext::random()).with_properties(|| {
            [
                ("http.method", "GET"),
                ("http.route", "/users/:id"),
                ("component", "http"),
            ]
        });
        let _active = root.set_local_parent();
        root.add_property(|| ("http.url", app::url(id)));
        cache_get(id);
        let rows = select_user(id) + select_orders(id);
        render(rows);
        root.add_property(|| ("http.status_code", 200.to_string()));
    }

    #[fastrace::trace(name = "cache.get", properties = { "db.system": "redis" })]
    #[inline(never)]
    fn cache_get(id: u64) -> bool {
        app::cache_hit(id)
    }

    #[fastrace::trace(name = "db.query", properties = { "db.system": "postgresql" })]
    #[inline(never)]
    fn select_user(id: u64) -> i64 {
        let rows = app::user_rows(id);
        LocalSpan::add_property(|| ("db.row_count", rows.to_string()));
        rows
    }

    #[fastrace::trace(name = "db.query", properties = { "db.system": "postgresql" })]
    #[inline(never)]
    fn select_orders(id: u64) -> i64 {
        let rows = app::order_rows(id);
        LocalSpan::add_property(|| ("db.row_count", rows.to_string()));
        rows
    }

    #[fastrace::trace(name = "template.render", properties = { "template.name": "user.html" })]
    #[inline(never)]
    fn render(rows: i64) -> usize {
        app::render(rows)
    }
}

// ---------------------------------------------------------------- OpenTelemetry SDK + OTLP

mod otel {
    use std::sync::OnceLock;

    use super::app;
    use opentelemetry::trace::{TraceContextExt, Tracer, TracerProvider};
    use opentelemetry::{Context, KeyValue};
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracer, SdkTracerProvider};

    static TRACER: OnceLock<SdkTracer> = OnceLock::new();

    pub(super) fn start(agent: &str) -> super::child::Traced {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_endpoint(format!("{agent}/v1/traces"))
            .build()
            .expect("the OTLP exporter");
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .build();
        let _ = TRACER.set(provider.tracer("whole-process"));
        super::child::Traced {
            request,
            finish: Box::new(move || {
                let flushed = provider.force_flush();
                let shut = provider.shutdown();
                format!("otel: force_flush {flushed:?}, shutdown {shut:?}")
            }),
        }
    }

    /// A span made current for `body`, ended after it: what an
    /// instrumented function does with the OpenTelemetry API.
    fn in_span<R>(
        name: &'static str,
        attributes: Vec<KeyValue>,
        body: impl FnOnce(&Context) -> R,
    ) -> R {
        let tracer = TRACER.get().expect("started");
        let span = tracer
            .span_builder(name)
            .with_attributes(attributes)
            .start(tracer);
        let cx = Context::current_with_span(span);
        let _attached = cx.clone().attach();
        let result = body(&cx);
        cx.span().end();
        result
    }

    #[inline(never)]
    fn request(id: u64) {
        in_span(
            "http.request",
            vec![
                KeyValue::new("resource.name", "GET /users/:id"),
                KeyValue::new("span.type", "web"),
                KeyValue::new("http.method", "GET"),
                KeyValue::new("http.route", "/users/:id"),
                KeyValue::new("component", "http"),
                KeyValue::new("http.url", app::url(id)),
            ],
            |cx| {
                cache_get(id);
                let rows = select_user(id) + select_orders(id);
                render(rows);
                cx.span()
                    .set_attribute(KeyValue::new("http.status_code", 200i64));
            },
        );
    }

    #[inline(never)]
    fn cache_get(id: u64) -> bool {
        in_span(
            "cache.get",
            vec![
                KeyValue::new("resource.name", "GET user"),
                KeyValue::new("span.type", "cache"),
                KeyValue::new("db.system", "redis"),
            ],
            |_| app::cache_hit(id),
        )
    }

    fn query(resource: &'static str, rows: impl FnOnce() -> i64) -> i64 {
        in_span(
            "db.query",
            vec![
                KeyValue::new("resource.name", resource),
                KeyValue::new("span.type", "sql"),
                KeyValue::new("db.system", "postgresql"),
            ],
            |cx| {
                let rows = rows();
                cx.span().set_attribute(KeyValue::new("db.row_count", rows));
                rows
            },
        )
    }

    #[inline(never)]
    fn select_user(id: u64) -> i64 {
        query("SELECT * FROM users WHERE id = ?", || app::user_rows(id))
    }

    #[inline(never)]
    fn select_orders(id: u64) -> i64 {
        query("SELECT * FROM orders WHERE user_id = ?", || {
            app::order_rows(id)
        })
    }

    #[inline(never)]
    fn render(rows: i64) -> usize {
        in_span(
            "template.render",
            vec![KeyValue::new("template.name", "user.html")],
            |_| app::render(rows),
        )
    }
}
