//! The tracer: start, stop, flush, and the entry points that create spans.
//!
//! The tracer starts by itself from the environment on the first span, so
//! instrumented code needs no set-up; [`start`] configures it in code.

use std::borrow::Cow;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

pub use crate::config::{AgentUrl, Config, ConfigBuilder};
pub use crate::context::SpanContext;
pub use crate::export::stats::Stats;
pub use crate::record::global_tags::set_global_tag;
pub use crate::span::span_ref::{current_root_span, current_span};
pub use crate::span::{ActiveSpan, Span, SpanBuilder};

use crate::export::stats::Counters;
use crate::export::writer::{self, Control};
use crate::sampling::Sampler;
use crate::trace::Chunk;

/// How much longer than its deadline a flush's caller waits for the writer.
const REPLY_GRACE: Duration = Duration::from_millis(200);

const UNINITIALIZED: u8 = 0;
const RUNNING: u8 = 1;
const OFF: u8 = 2;

/// The one word every span start reads: is there a running tracer?
static STATE: AtomicU8 = AtomicU8::new(UNINITIALIZED);
static CURRENT: RwLock<Option<Arc<TracerCore>>> = RwLock::new(None);
/// Changes whenever `CURRENT` does, so a thread can keep its own reference
/// to the running tracer and check it with one load of a word that is only
/// ever read, instead of taking the lock (whose reader count every thread
/// writes) and cloning the `Arc` (whose count the writer thread also
/// writes) for every new trace.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CACHED: RefCell<Option<(u64, Arc<TracerCore>)>> = const { RefCell::new(None) };
}
/// Serialises start and stop.
static LIFECYCLE: Mutex<()> = Mutex::new(());
/// The final counters of the last tracer stopped.
static LAST_STATS: Mutex<Option<Stats>> = Mutex::new(None);

/// A running tracer: its configuration, sampler, counters and writer.
pub(crate) struct TracerCore {
    pub(crate) config: Config,
    pub(crate) sampler: Sampler,
    pub(crate) counters: Arc<Counters>,
    /// Spans in the chunks queued for the writer (bounded by
    /// `queue_max_spans`); the writer subtracts what it takes.
    pub(crate) queued_spans: crate::export::stats::Counter,
    sink: Sink,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// Captured chunks, as lists of span ids (unit tests).
#[cfg(test)]
pub(crate) type CapturedChunks = Arc<Mutex<Vec<Vec<u64>>>>;

enum Sink {
    Memory(crate::MemoryExporter),
    Writer {
        /// Finished chunks; application threads only ever `try_send`.
        chunks: SyncSender<Chunk>,
        /// Flush and shutdown requests.
        control: Sender<Control>,
    },
    #[cfg(test)]
    Capture(CapturedChunks),
}

impl TracerCore {
    fn launch(config: Config) -> Arc<TracerCore> {
        let counters = Arc::new(Counters::default());
        let sampler = Sampler::new(config.sample_rate, config.rate_limit, config.env.as_deref());
        if let Some(exporter) = config.memory_exporter.clone() {
            return Arc::new(TracerCore {
                config,
                sampler,
                counters,
                queued_spans: crate::export::stats::Counter::default(),
                sink: Sink::Memory(exporter),
                worker: Mutex::new(None),
            });
        }
        let (chunks, chunk_receiver) = std::sync::mpsc::sync_channel(config.queue_capacity);
        let (control, control_receiver) = std::sync::mpsc::channel();
        let core = Arc::new(TracerCore {
            config,
            sampler,
            counters,
            queued_spans: crate::export::stats::Counter::default(),
            sink: Sink::Writer { chunks, control },
            worker: Mutex::new(None),
        });
        match writer::spawn(&core, chunk_receiver, control_receiver) {
            Ok(handle) => {
                *core.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle)
            }
            Err(error) => crate::util::diagnostics::warn(format_args!(
                "could not start the writer thread ({error}); traces will be dropped"
            )),
        }
        core
    }

    /// A tracer with no writer (its chunks go to a memory exporter): for
    /// building traces outside the running tracer (benchmarks).
    pub(crate) fn detached(config: Config) -> Arc<TracerCore> {
        Arc::new(TracerCore {
            sampler: Sampler::new(config.sample_rate, config.rate_limit, config.env.as_deref()),
            counters: Arc::new(Counters::default()),
            queued_spans: crate::export::stats::Counter::default(),
            sink: Sink::Memory(crate::MemoryExporter::new()),
            worker: Mutex::new(None),
            config,
        })
    }

    /// A tracer whose chunks are kept in memory as lists of span ids (unit tests).
    #[cfg(test)]
    pub(crate) fn capturing(config: Config) -> (Arc<TracerCore>, CapturedChunks) {
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let core = Arc::new(TracerCore {
            sampler: Sampler::new(config.sample_rate, config.rate_limit, config.env.as_deref()),
            config,
            counters: Arc::new(Counters::default()),
            queued_spans: crate::export::stats::Counter::default(),
            sink: Sink::Capture(Arc::clone(&chunks)),
            worker: Mutex::new(None),
        });
        (core, chunks)
    }

    /// Hands a finished chunk to the writer without ever blocking; a full
    /// queue drops the chunk and counts it.
    pub(crate) fn submit(&self, chunk: Chunk) {
        match &self.sink {
            Sink::Writer { chunks, .. } => {
                // The writer polls this queue on its own clock, so a send
                // never wakes a thread: no system call on this path.
                let spans = chunk.spans.len();
                let counted = spans as u64;
                let queued = self.queued_spans.fetch_add(counted, Ordering::Relaxed);
                let fits = queued == 0 || queued + counted <= self.config.queue_max_spans as u64;
                let refused = if fits {
                    match chunks.try_send(chunk) {
                        Ok(()) => return,
                        Err(TrySendError::Full(chunk)) => Some((chunk, false)),
                        Err(TrySendError::Disconnected(chunk)) => Some((chunk, true)),
                    }
                } else {
                    Some((chunk, false))
                };
                if let Some((chunk, stopped)) = refused {
                    self.queued_spans.fetch_sub(counted, Ordering::Relaxed);
                    if stopped {
                        self.counters.dropped_stopped(spans);
                    } else {
                        self.counters.dropped_queue_full(spans);
                    }
                    crate::record::pool::give(chunk.spans);
                }
            }
            Sink::Memory(exporter) => {
                exporter.export(&chunk, &self.config.service);
                crate::export::stats::add(&self.counters.spans_sent, chunk.spans.len());
                crate::export::stats::add(&self.counters.traces_sent, 1);
            }
            #[cfg(test)]
            Sink::Capture(chunks) => chunks
                .lock()
                .unwrap()
                .push(chunk.spans.iter().map(|s| s.span_id).collect()),
        }
    }

    /// Asks the writer for a flush or shutdown that may take until
    /// `timeout` from now, and waits for its answer: whether nothing is
    /// left unsent.
    fn control(
        &self,
        message: impl FnOnce(Instant, SyncSender<bool>) -> Control,
        timeout: Duration,
    ) -> bool {
        #[allow(irrefutable_let_patterns)] // the capture sink exists in unit tests only
        let Sink::Writer { control, .. } = &self.sink
        else {
            return true;
        };
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        let now = Instant::now();
        // `Duration::MAX` means "as long as it takes": a year will do.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        // The writer may be in the middle of a request when asked: give it
        // a little longer than the deadline it works to.
        control.send(message(deadline, reply)).is_ok()
            && done
                .recv_timeout(timeout.saturating_add(REPLY_GRACE))
                .unwrap_or(false)
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.control(
            |deadline, reply| Control::Flush { deadline, reply },
            timeout,
        )
    }

    fn shutdown(&self) -> bool {
        let timeout = self.config.shutdown_timeout;
        let delivered = self.control(
            |deadline, reply| Control::Shutdown { deadline, reply },
            timeout,
        );
        if delivered {
            if let Some(worker) = self
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                let _ = worker.join();
            }
        }
        delivered
    }
}

/// Whether spans are recorded now. One relaxed load; starts the tracer from
/// the environment the first time it is asked.
#[inline]
pub(crate) fn is_running() -> bool {
    match STATE.load(Ordering::Relaxed) {
        RUNNING => true,
        OFF => false,
        _ => start_from_env(),
    }
}

#[cold]
fn start_from_env() -> bool {
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(PoisonError::into_inner);
    if STATE.load(Ordering::Acquire) == UNINITIALIZED {
        install(Config::from_env());
    }
    STATE.load(Ordering::Acquire) == RUNNING
}

/// The running tracer, owned (a `Span` keeps it), through the thread's cache.
pub(crate) fn current() -> Option<Arc<TracerCore>> {
    with_current(Arc::clone)
}

/// Runs `f` on the running tracer, through this thread's cached reference
/// (see [`GENERATION`]); `None` when no tracer is running.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<TracerCore>) -> R) -> Option<R> {
    if !is_running() {
        return None;
    }
    let generation = GENERATION.load(Ordering::Acquire);
    let mut f = Some(f);
    let cached = CACHED.try_with(|cached| {
        let mut cached = cached.try_borrow_mut().ok()?;
        if !matches!(&*cached, Some((seen, _)) if *seen == generation) {
            // Published before the generation changed (see `set_current`).
            *cached = Some((generation, current_locked()?));
        }
        let (_, core) = cached.as_ref()?;
        f.take().map(|f| f(core))
    });
    match cached {
        Ok(Some(result)) => Some(result),
        // Thread teardown, or re-entered from `f`: the shared reference.
        _ => f.and_then(|f| current_locked().map(|core| f(&core))),
    }
}

fn current_locked() -> Option<Arc<TracerCore>> {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Replaces the running tracer and tells the threads' caches.
fn set_current(core: Option<Arc<TracerCore>>) -> Option<Arc<TracerCore>> {
    let previous = std::mem::replace(
        &mut *CURRENT.write().unwrap_or_else(PoisonError::into_inner),
        core,
    );
    GENERATION.fetch_add(1, Ordering::Release);
    previous
}

fn install(config: Config) {
    *LAST_STATS.lock().unwrap_or_else(PoisonError::into_inner) = None;
    crate::util::diagnostics::set_debug(config.debug);
    if config.startup_logs {
        crate::util::diagnostics::info(format_args!(
            "tracer {} started: service={:?} env={:?} version={:?} agent_url={} enabled={} sample_rate={:?} rate_limit={}",
            env!("CARGO_PKG_VERSION"),
            config.service,
            config.env.as_deref().unwrap_or(""),
            config.version.as_deref().unwrap_or(""),
            config.agent_url,
            config.enabled,
            config.sample_rate,
            config.rate_limit,
        ));
    }
    if !config.enabled {
        set_current(None);
        STATE.store(OFF, Ordering::Release);
        return;
    }
    crate::span::panic::install_hook();
    let core = TracerCore::launch(config);
    set_current(Some(core));
    STATE.store(RUNNING, Ordering::Release);
}

/// Starts the tracer with this configuration. A tracer already running is
/// stopped first (delivering what it holds), so tests and programs can
/// reconfigure.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer::{self, Config};
///
/// tracer::start(Config::builder().service("billing").env("staging").build());
/// let _span = tracer::trace("invoice.render");
/// ```
pub fn start(config: Config) {
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(PoisonError::into_inner);
    stop_locked();
    install(config);
}

/// Delivers everything finished so far and stops the writer; spans started
/// afterwards are not recorded until [`start`] is called again. Returns
/// whether everything was delivered within the configured shutdown timeout
/// (`false` also when the agent could not be reached).
///
/// # Examples
///
/// ```
/// ddspan_runtime::tracer::stop();
/// ```
pub fn stop() -> bool {
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(PoisonError::into_inner);
    stop_locked()
}

fn stop_locked() -> bool {
    STATE.store(OFF, Ordering::Release);
    match set_current(None) {
        Some(core) => {
            let delivered = core.shutdown();
            let mut stats = core.counters.snapshot();
            // A writer that did not answer in time is inside a request it
            // started before the stop (one that cannot be cut): what it
            // still holds is counted as not delivered, so the final counts
            // add up. It may still arrive; the writer ends after that
            // request.
            if stats.spans_buffered > 0 {
                stats.spans_dropped_send_failed += stats.spans_buffered;
                stats.spans_buffered = 0;
                stats.bytes_buffered = 0;
            }
            *LAST_STATS.lock().unwrap_or_else(PoisonError::into_inner) = Some(stats);
            if stats.spans_dropped() > 0 {
                crate::util::diagnostics::warn(format_args!("at shutdown: {stats}"));
            }
            delivered && stats.spans_dropped() == 0
        }
        None => true,
    }
}

/// Sends every trace finished so far to the agent now, trying for up to
/// `timeout` (waiting out retries and an agent that is down). Returns `true`
/// when nothing finished before the call is left unsent: each trace was
/// delivered, or dropped and counted in [`stats`] (a 4xx, retries used up).
/// `false` means some are still buffered (the writer keeps trying) or the
/// writer did not answer in time. Traces whose spans are still open are not
/// sent.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// ddspan_runtime::tracer::flush(Duration::from_secs(1));
/// ```
pub fn flush(timeout: Duration) -> bool {
    match CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    {
        Some(core) => core.flush(timeout),
        None => true,
    }
}

/// The running tracer's counters: sent, dropped and failed spans and traces;
/// after [`stop`], the stopped tracer's final counters.
///
/// # Examples
///
/// ```
/// let stats = ddspan_runtime::tracer::stats();
/// assert!(stats.spans_sent <= stats.spans_queued);
/// ```
pub fn stats() -> Stats {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .map(|core| core.counters.snapshot())
        .or_else(|| *LAST_STATS.lock().unwrap_or_else(PoisonError::into_inner))
        .unwrap_or_default()
}

/// Starts a span and makes it the active span of this thread until the
/// returned guard drops: Python's `with tracer.trace(name)`.
///
/// # Examples
///
/// ```
/// let _request = ddspan_runtime::tracer::trace("http.request");
/// let _query = ddspan_runtime::tracer::trace("db.query"); // a child of http.request
/// ```
pub fn trace(name: impl Into<Cow<'static, str>>) -> ActiveSpan {
    span(name).start().entered()
}

/// Starts a span that is not made active: a child of the active span, or a
/// new root.
///
/// # Examples
///
/// ```
/// let span = ddspan_runtime::tracer::start_span("background.job");
/// span.set_tag("job.id", 42);
/// span.finish();
/// ```
pub fn start_span(name: impl Into<Cow<'static, str>>) -> Span {
    span(name).start()
}

/// A builder for a span with options.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let parent = tracer::start_span("parent");
/// let child = tracer::span("child")
///     .resource("SELECT 1")
///     .span_type("sql")
///     .tag("db.system", "postgresql")
///     .child_of(parent.context())
///     .start();
/// ```
pub fn span(name: impl Into<Cow<'static, str>>) -> SpanBuilder {
    SpanBuilder::new(name.into())
}

/// The context of the active span on this thread (or in this future), if any.
///
/// # Examples
///
/// ```
/// let _span = ddspan_runtime::tracer::trace("op");
/// let context = ddspan_runtime::tracer::active_context();
/// ```
pub fn active_context() -> Option<SpanContext> {
    crate::context::stack::active_context()
}

/// The running tracer's configuration, if one runs.
pub(crate) fn current_config() -> Option<Arc<TracerCore>> {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Writes a span's context into outgoing headers, in the configured styles
/// (`datadog`, `tracecontext`, `baggage` by default).
///
/// # Examples
///
/// ```
/// use std::collections::HashMap;
/// use ddspan_runtime::tracer;
///
/// let span = tracer::start_span("http.client");
/// let mut headers: HashMap<String, String> = HashMap::new();
/// if let Some(context) = span.context() {
///     tracer::inject(&context, &mut headers);
/// }
/// ```
pub fn inject(context: &SpanContext, carrier: &mut dyn crate::propagation::Injector) {
    crate::propagation::Propagator::from_tracer().inject(context, carrier);
}

/// Reads a context from incoming headers; pass the result to
/// [`SpanBuilder::child_of`] to continue the trace. Headers with W3C baggage
/// and no trace context give a context of baggage alone
/// ([`SpanContext::is_baggage_only`]): spans under it begin a new trace
/// that carries the baggage, as ddtrace does.
///
/// # Examples
///
/// ```
/// use ddspan_runtime::tracer;
///
/// let headers = vec![
///     ("x-datadog-trace-id".to_owned(), "1890081292213679918".to_owned()),
///     ("x-datadog-parent-id".to_owned(), "7628922200302827473".to_owned()),
/// ];
/// let parent = tracer::extract(&headers).ok();
/// let _span = tracer::span("http.server").child_of(parent).start();
/// ```
pub fn extract<E: crate::propagation::Extractor + ?Sized>(
    carrier: &E,
) -> Result<SpanContext, crate::propagation::ExtractError> {
    crate::propagation::Propagator::from_tracer().extract(carrier)
}

/// The log correlation fields of the active span (`dd.trace_id`, ...), to
/// add to a log line.
///
/// # Examples
///
/// ```
/// let _span = ddspan_runtime::tracer::trace("job");
/// if let Some(fields) = ddspan_runtime::tracer::log_context() {
///     eprintln!("job started {fields}");
/// }
/// ```
pub fn log_context() -> Option<crate::LogContext> {
    active_context().map(|context| crate::LogContext::of(&context))
}
