//! The background writer: one named thread that takes finished trace chunks
//! from a bounded queue, encodes them into a v0.4 payload, and sends it to
//! the agent every flush interval, or sooner when the payload reaches its
//! size cap.
//!
//! The writer polls the queue on its own clock (every 10 ms while chunks
//! arrive, backing off to 100 ms when idle) instead of blocking on it, so
//! application threads never pay for waking it: handing a chunk over is one
//! `try_send`. It blocks only on the control channel, which carries the rare
//! flush and shutdown requests.
//!
//! Connection errors, timeouts, 429 and 5xx answers are retried a bounded
//! number of times with exponential backoff; other 4xx answers are never
//! retried. Whatever cannot be delivered is counted, reported once when it
//! first happens, then summarised every minute and at shutdown.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::encode::{self, Encoder, ARRAY32_HEADER_LEN};
use crate::record::SpanRecord;
use crate::stats::{add, Stats};
use crate::trace::Chunk;
use crate::tracer::TracerCore;
use crate::transport::Transport;

const TRACES_PATH: &str = "/v0.4/traces";
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

const MIN_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(100);

pub(crate) enum Control {
    /// Send everything queued so far, then reply.
    Flush(SyncSender<()>),
    /// Send everything queued so far, reply, and end the thread.
    Shutdown(SyncSender<()>),
}

pub(crate) fn spawn(
    core: &Arc<TracerCore>,
    chunks: Receiver<Chunk>,
    control: Receiver<Control>,
) -> std::io::Result<JoinHandle<()>> {
    let writer = Writer::new(Arc::clone(core));
    std::thread::Builder::new()
        .name("ddspan-writer".to_owned())
        .spawn(move || writer.run(&chunks, &control))
}

struct Writer {
    core: Arc<TracerCore>,
    transport: Transport,
    encoder: Encoder,
    headers: Vec<(&'static str, String)>,
    payload: Vec<u8>,
    traces: u32,
    spans: usize,
    warned_send_failure: bool,
    last_summary: Instant,
    summarised: Stats,
}

impl Writer {
    fn new(core: Arc<TracerCore>) -> Writer {
        let config = &core.config;
        let transport = Transport::new(&config.agent_url, config.request_timeout);
        let encoder = Encoder::new(config);
        let headers = vec![
            ("Content-Type", "application/msgpack".to_owned()),
            ("Datadog-Meta-Lang", "rust".to_owned()),
            (
                "Datadog-Meta-Lang-Version",
                env!("DDSPAN_RUSTC_VERSION").to_owned(),
            ),
            ("Datadog-Meta-Lang-Interpreter", "rustc".to_owned()),
            (
                "Datadog-Meta-Tracer-Version",
                env!("CARGO_PKG_VERSION").to_owned(),
            ),
            ("Datadog-Client-Computed-Top-Level", "true".to_owned()),
            // Without it an overloaded agent answers 200 and drops silently.
            ("Datadog-Send-Real-Http-Status", "true".to_owned()),
        ];
        Writer {
            core,
            transport,
            encoder,
            headers,
            payload: Vec::new(),
            traces: 0,
            spans: 0,
            warned_send_failure: false,
            last_summary: Instant::now(),
            summarised: Stats::default(),
        }
    }

    fn run(mut self, chunks: &Receiver<Chunk>, control: &Receiver<Control>) {
        let interval = self.core.config.flush_interval;
        let max_poll = MAX_POLL.min(interval);
        let mut poll = MIN_POLL.min(max_poll);
        let mut next_send = Instant::now() + interval;
        loop {
            match control.recv_timeout(poll) {
                Ok(Control::Flush(reply)) => {
                    self.drain(chunks);
                    self.send(None);
                    let _ = reply.try_send(());
                }
                Ok(Control::Shutdown(reply)) => {
                    self.drain(chunks);
                    let deadline = Instant::now() + self.core.config.shutdown_timeout;
                    self.send(Some(deadline));
                    let _ = reply.try_send(());
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let taken = self.drain(chunks);
                    poll = if taken > 0 {
                        MIN_POLL.min(max_poll)
                    } else {
                        (poll * 2).min(max_poll)
                    };
                    if Instant::now() >= next_send {
                        self.send(None);
                        self.summarise();
                        next_send = Instant::now() + interval;
                    }
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.drain(chunks);
                    self.send(Some(Instant::now() + self.core.config.shutdown_timeout));
                    return;
                }
            }
        }
    }

    /// Encodes every chunk queued now; returns how many there were.
    fn drain(&mut self, chunks: &Receiver<Chunk>) -> usize {
        let mut taken = 0;
        while let Ok(chunk) = chunks.try_recv() {
            self.add(chunk);
            taken += 1;
        }
        taken
    }

    fn add(&mut self, chunk: Chunk) {
        let counters = &self.core.counters;
        add(&counters.traces_queued, 1);
        add(&counters.spans_queued, chunk.spans.len());
        let tags_dropped: u32 = chunk.spans.iter().map(SpanRecord::tags_dropped).sum();
        if tags_dropped > 0 {
            add(&counters.tags_dropped, tags_dropped as usize);
        }
        if self.core.config.console {
            eprint!("{}", crate::console::render(&chunk, &self.core.config));
        }
        if self.payload.is_empty() {
            self.payload.resize(ARRAY32_HEADER_LEN, 0);
        }
        self.encoder.encode_chunk(&mut self.payload, &chunk);
        self.traces += 1;
        self.spans += chunk.spans.len();
        crate::pool::give(chunk.spans);
        if self.payload.len() >= self.core.config.max_payload_bytes {
            self.send(None);
        }
    }

    /// Sends the payload, retrying what may succeed later; `deadline` bounds
    /// the retries at shutdown.
    fn send(&mut self, deadline: Option<Instant>) {
        if self.traces == 0 {
            return;
        }
        encode::patch_array32(&mut self.payload, 0, self.traces);
        let (traces, spans) = (self.traces as usize, self.spans);
        let mut headers = self.headers.clone();
        headers.push(("X-Datadog-Trace-Count", traces.to_string()));
        let config = &self.core.config;
        let counters = &self.core.counters;
        let mut failure = String::new();
        let mut delivered = false;
        for attempt in 0..=config.max_retries {
            if attempt > 0 {
                let backoff = config
                    .retry_backoff
                    .saturating_mul(1 << (attempt - 1).min(16));
                if deadline.is_some_and(|d| Instant::now() + backoff >= d) {
                    break;
                }
                add(&counters.retries, 1);
                std::thread::sleep(backoff);
            }
            match self.transport.put(TRACES_PATH, &headers, &self.payload) {
                Ok(response) if (200..300).contains(&response.status) => {
                    if !self.core.sampler.update_agent_rates(&response.body) {
                        crate::log::debug(format_args!(
                            "the agent's answer carried no sampling rates: {:?}",
                            crate::tag::truncated(&response.body, 200)
                        ));
                    }
                    delivered = true;
                    break;
                }
                Ok(response) => {
                    add(&counters.send_failures, 1);
                    failure = format!(
                        "the agent answered {} to a payload of {traces} traces: {}",
                        response.status,
                        crate::tag::truncated(response.body.trim(), 300)
                    );
                    let retryable = response.status == 429 || response.status >= 500;
                    if !retryable {
                        break;
                    }
                }
                Err(error) => {
                    add(&counters.send_failures, 1);
                    failure = format!("could not reach the agent at {}: {error}", config.agent_url);
                }
            }
        }
        if delivered {
            add(&counters.traces_sent, traces);
            add(&counters.spans_sent, spans);
            add(&counters.payloads_sent, 1);
            crate::log::debug(format_args!("sent {spans} spans in {traces} traces"));
        } else {
            add(&counters.traces_dropped_send_failed, traces);
            add(&counters.spans_dropped_send_failed, spans);
            if !self.warned_send_failure {
                self.warned_send_failure = true;
                crate::log::warn(format_args!(
                    "{failure}; dropped {spans} spans. Further losses are summarised every minute"
                ));
            }
        }
        self.payload.clear();
        self.traces = 0;
        self.spans = 0;
    }

    fn summarise(&mut self) {
        if self.last_summary.elapsed() < SUMMARY_EVERY {
            return;
        }
        let stats = self.core.counters.snapshot();
        if stats.spans_dropped() != self.summarised.spans_dropped() {
            crate::log::warn(format_args!("{stats}"));
        }
        self.summarised = stats;
        self.last_summary = Instant::now();
    }
}
