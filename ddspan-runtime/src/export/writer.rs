//! The background writer: one named thread that takes finished trace chunks
//! from a bounded queue, encodes them into v0.4 payloads, and sends them to
//! the agent every flush interval, or sooner when a payload reaches its size
//! cap.
//!
//! The writer polls the queue on its own clock (every 10 ms while chunks
//! arrive, backing off to 100 ms when idle) instead of blocking on it, so
//! application threads never pay for waking it: handing a chunk over is one
//! `try_send`. It blocks only on the control channel, which carries the rare
//! flush and shutdown requests.
//!
//! What cannot be sent yet waits in a backlog of encoded payloads, in order,
//! bounded in bytes (`buffer_bytes`); once the backlog holds that much, new
//! chunks are dropped and counted until it drains. What happens to a payload
//! depends on how its send failed:
//! - no connection at all (agent down, restarting): kept, retried with a
//!   back-off that doubles up to one second; the agent never saw it, so it
//!   cannot arrive twice;
//! - 429 (agent overloaded): kept, sent again after the answer's
//!   `Retry-After` or the back-off;
//! - 413 (payload too large): split in two halves of whole traces, each sent
//!   on its own; a single trace too large is dropped;
//! - 5xx, timeouts, connections lost mid-request: retried `max_retries`
//!   times with exponential back-off, then dropped;
//! - any other 4xx: dropped at once.
//!
//! Every span dropped is counted ([`crate::tracer::stats`]); the first loss
//! is logged at once, later ones every minute and at shutdown.

use std::collections::VecDeque;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::export::encode::{self, Encoder, ARRAY32_HEADER_LEN};
use crate::export::msgpack;
use crate::export::sender::{Exchange, Link};
use crate::export::stats::Counters;
use crate::export::stats::{add, set, Stats};
use crate::record::Chunk;
use crate::record::SpanRecord;
use crate::sampling::Sampler;
use crate::transport::{Response, SendError, Transport};

const TRACES_PATH: &str = "/v0.4/traces";
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

const MIN_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(100);
/// Chunks in one drain that mean the queue is filling faster than a poll
/// empties it: the writer looks again at once instead of waiting a poll.
const BUSY_DRAIN: usize = 256;
/// How often the queue is drained while a request is under way.
const SEND_POLL: Duration = Duration::from_millis(2);

/// The longest wait between two attempts to reach an agent that is down:
/// short, so that traces flow again soon after it is back.
const MAX_UNREACHABLE_BACKOFF: Duration = Duration::from_secs(1);
/// The longest pause a 429's `Retry-After` may impose.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);

pub(crate) enum Control {
    /// Send everything queued so far, trying until the deadline; reply
    /// whether nothing is left unsent.
    Flush {
        deadline: Instant,
        reply: SyncSender<bool>,
    },
    /// The same, then drop what is left (counted) and end the thread.
    Shutdown {
        deadline: Instant,
        reply: SyncSender<bool>,
    },
}

/// The wait before retry number `retry` (from 1): `first`, doubling.
fn retry_wait(first: Duration, retry: u32) -> Duration {
    first.saturating_mul(1 << retry.saturating_sub(1).min(16))
}

/// Starts the writer thread. It owns a copy of the configuration, shares
/// the counters with the tracer that feeds it, and hands the agent's
/// sampling rates to the sampler.
pub(crate) fn spawn(
    config: Config,
    counters: Arc<Counters>,
    sampler: Arc<Sampler>,
    chunks: Receiver<Chunk>,
    control: Receiver<Control>,
) -> std::io::Result<JoinHandle<()>> {
    let writer = Writer::new(config, counters, sampler, chunks);
    std::thread::Builder::new()
        .name("ddspan-writer".to_owned())
        .spawn(move || writer.run(&control))
}

/// An encoded v0.4 payload: an array of traces, and where each one ends so
/// that the payload can be split between traces.
#[derive(Default)]
struct Payload {
    bytes: Vec<u8>,
    traces: Vec<TraceEnd>,
    spans: usize,
    /// Sends that failed in a way that may succeed if repeated (5xx,
    /// timeout): bounded by `max_retries`.
    failed_attempts: u32,
    /// Whether it was sent before (a resend counts as a retry).
    sent_before: bool,
    /// Sealing order: a pump or a flush is about the payloads sealed
    /// before it began, not those sealed while its requests are under way.
    sequence: u64,
}

#[derive(Clone, Copy)]
struct TraceEnd {
    /// The offset just past the trace in `bytes`.
    end: usize,
    spans: usize,
}

impl Payload {
    fn push(&mut self, encoder: &Encoder, chunk: &Chunk) -> usize {
        if self.bytes.is_empty() {
            self.bytes.resize(ARRAY32_HEADER_LEN, 0);
        }
        let before = self.bytes.len();
        encoder.encode_chunk(&mut self.bytes, chunk);
        self.traces.push(TraceEnd {
            end: self.bytes.len(),
            spans: chunk.spans.len(),
        });
        self.spans += chunk.spans.len();
        self.bytes.len() - before
    }

    fn is_empty(&self) -> bool {
        self.traces.is_empty()
    }

    /// Fixes the array header to the number of traces: done before sending.
    fn seal(&mut self) {
        encode::patch_array32(&mut self.bytes, 0, self.traces.len() as u32);
    }

    /// Two payloads with the first and the second half of the traces; `None`
    /// for a payload of one trace.
    fn split(self) -> Result<(Payload, Payload), Payload> {
        if self.traces.len() < 2 {
            return Err(self);
        }
        let middle = self.traces.len() / 2;
        let cut = self.traces[middle - 1].end;
        let mut second = Payload {
            bytes: Vec::with_capacity(ARRAY32_HEADER_LEN + self.bytes.len() - cut),
            // The halves stand where the whole stood.
            sequence: self.sequence,
            ..Payload::default()
        };
        second.bytes.resize(ARRAY32_HEADER_LEN, 0);
        second.bytes.extend_from_slice(&self.bytes[cut..]);
        let shift = cut - ARRAY32_HEADER_LEN;
        second.traces = self.traces[middle..]
            .iter()
            .map(|t| TraceEnd {
                end: t.end - shift,
                spans: t.spans,
            })
            .collect();
        second.spans = second.traces.iter().map(|t| t.spans).sum();
        let mut first = self;
        first.bytes.truncate(cut);
        first.traces.truncate(middle);
        first.spans -= second.spans;
        // Each half is a new payload: its first send is not a retry.
        first.failed_attempts = 0;
        first.sent_before = false;
        first.seal();
        second.seal();
        Ok((first, second))
    }
}

/// How long the writer may go on sending before it answers a flush or
/// shutdown.
#[derive(Clone, Copy)]
enum Until {
    /// Its own rounds: no deadline.
    Unbounded,
    /// A flush: no new request after the deadline, but a request already
    /// made runs to its own timeout. Cutting it would count as a failure
    /// and send the payload again, while the agent may well have taken it;
    /// the caller stops waiting at its deadline anyway.
    Flush(Instant),
    /// A shutdown: the request in flight is cut at the deadline too (what
    /// is left is dropped then).
    Shutdown(Instant),
}

impl Until {
    fn deadline(self) -> Option<Instant> {
        match self {
            Until::Unbounded => None,
            Until::Flush(deadline) | Until::Shutdown(deadline) => Some(deadline),
        }
    }

    /// The time limit of a request made at `now`, when shorter than the
    /// configured one.
    fn request_limit(self, now: Instant) -> Option<Duration> {
        match self {
            Until::Shutdown(deadline) => Some(deadline.saturating_duration_since(now)),
            _ => None,
        }
    }
}

/// What one send of a payload came to.
#[derive(Clone, Copy)]
enum Outcome {
    Delivered,
    /// Not taken now; send it again later (agent down, 429).
    Later(Duration),
    /// May succeed if repeated (5xx, timeout, connection lost).
    Retry,
    /// Too large (413): split it.
    Split,
    /// Never accepted (4xx).
    Rejected,
}

struct Writer {
    config: Config,
    counters: Arc<Counters>,
    /// Takes the agent's rates from each answer.
    sampler: Arc<Sampler>,
    /// The queue of finished chunks.
    chunks: Receiver<Chunk>,
    /// To the agent, through the sender thread.
    link: Link,
    /// A request is under way: chunks taken meanwhile are encoded, and
    /// sealed payloads wait for it (no second request).
    sending: bool,
    /// The sequence number of the last payload sealed.
    sealed: u64,
    encoder: Encoder,
    headers: Vec<(&'static str, String)>,
    /// The payload being filled.
    open: Payload,
    /// Sealed payloads waiting to be sent, oldest first.
    backlog: VecDeque<Payload>,
    backlog_bytes: usize,
    backlog_spans: usize,
    /// No send before this instant (back-off after a failure).
    resume_at: Option<Instant>,
    /// The next wait when the agent cannot be reached.
    unreachable_backoff: Duration,
    /// When the agent stopped answering, while it is unreachable.
    outage_since: Option<Instant>,
    /// Sends in a row that found no agent at all.
    unreachable_streak: u32,
    /// The latest failure, for the loss warnings.
    last_failure: String,
    warned_send_failure: bool,
    warned_buffer_full: bool,
    last_summary: Instant,
    summarised: Stats,
    /// Counts of chunks taken since the last [`Writer::publish`]: the
    /// shared counters are written once per batch of chunks, not per chunk.
    pending: Pending,
    /// Emptied span buffers, handed back to the pool in batches (one lock
    /// per batch, not per chunk).
    spent: Vec<Vec<SpanRecord>>,
}

#[derive(Default)]
struct Pending {
    /// Spans taken out of the queue, not yet subtracted from its count.
    spans_taken: usize,
    traces_queued: usize,
    spans_queued: usize,
    traces_dropped_buffer_full: usize,
    spans_dropped_buffer_full: usize,
    tags_dropped: usize,
}

/// Emptied buffers kept before they go back to the pool.
const SPENT_BATCH: usize = 32;

impl Writer {
    fn new(
        config: Config,
        counters: Arc<Counters>,
        sampler: Arc<Sampler>,
        chunks: Receiver<Chunk>,
    ) -> Writer {
        let transport = Transport::new(&config.agent_url, config.request_timeout);
        let encoder = Encoder::new(&config);
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
            unreachable_backoff: config.retry_backoff,
            chunks,
            link: Link::new(transport),
            sending: false,
            sealed: 0,
            encoder,
            headers,
            open: Payload::default(),
            backlog: VecDeque::new(),
            backlog_bytes: 0,
            backlog_spans: 0,
            resume_at: None,
            outage_since: None,
            unreachable_streak: 0,
            last_failure: String::new(),
            warned_send_failure: false,
            warned_buffer_full: false,
            last_summary: Instant::now(),
            summarised: Stats::default(),
            pending: Pending::default(),
            spent: Vec::with_capacity(SPENT_BATCH),
            counters,
            sampler,
            config,
        }
    }

    fn run(mut self, control: &Receiver<Control>) {
        let interval = self.config.flush_interval;
        let max_poll = MAX_POLL.min(interval);
        let mut poll = MIN_POLL.min(max_poll);
        let mut next_send = Instant::now() + interval;
        loop {
            match control.recv_timeout(poll) {
                Ok(Control::Flush { deadline, reply }) => {
                    let done = self.flush(Until::Flush(deadline));
                    let _ = reply.try_send(done);
                }
                Ok(Control::Shutdown { deadline, reply }) => {
                    let done = self.shut_down(deadline);
                    let _ = reply.try_send(done);
                    return;
                }
                Err(RecvTimeoutError::Timeout) => {
                    let taken = self.drain(Until::Unbounded);
                    poll = if taken >= BUSY_DRAIN {
                        Duration::ZERO
                    } else if taken > 0 {
                        MIN_POLL.min(max_poll)
                    } else {
                        (poll * 2).clamp(MIN_POLL.min(max_poll), max_poll)
                    };
                    if Instant::now() >= next_send {
                        self.seal();
                        self.summarise();
                        next_send = Instant::now() + interval;
                    }
                    self.pump(Until::Unbounded);
                }
                // Not reached today (this thread's `core` owns the control
                // sender); kept so that a change of ownership still ends
                // the writer with a delivery, not a spin.
                Err(RecvTimeoutError::Disconnected) => {
                    let deadline = Instant::now() + self.config.shutdown_timeout;
                    self.shut_down(deadline);
                    return;
                }
            }
        }
    }

    /// Encodes every chunk queued now; returns how many there were.
    fn drain(&mut self, until: Until) -> usize {
        let mut taken = 0;
        loop {
            // While a request is under way, what finds no room in the buffer
            // waits in the queue rather than being dropped.
            if self.sending
                && self.backlog_bytes + self.open.bytes.len() >= self.config.buffer_bytes
            {
                break;
            }
            let Ok(chunk) = self.chunks.try_recv() else {
                break;
            };
            self.pending.spans_taken += chunk.spans.len();
            self.add(chunk, until);
            taken += 1;
            if taken % BUSY_DRAIN == 0 {
                // A long drain: the queue's span count must not wait for
                // its end, or traces are refused while the queue empties.
                self.publish();
            }
        }
        if taken > 0 {
            self.publish();
            crate::record::pool::give_all(&mut self.spent);
        }
        taken
    }

    fn add(&mut self, chunk: Chunk, until: Until) {
        let config = &self.config;
        let spans = chunk.spans.len();
        self.pending.traces_queued += 1;
        self.pending.spans_queued += spans;
        let tags_dropped: u32 = chunk.spans.iter().map(SpanRecord::tags_dropped).sum();
        self.pending.tags_dropped += tags_dropped as usize;
        if config.console {
            eprint!("{}", crate::export::console::render(&chunk, config));
        }
        if self.backlog_bytes + self.open.bytes.len() >= config.buffer_bytes {
            self.pending.traces_dropped_buffer_full += 1;
            self.pending.spans_dropped_buffer_full += spans;
            if !self.warned_buffer_full {
                self.warned_buffer_full = true;
                crate::util::diagnostics::warn(format_args!(
                    "the writer holds {} bytes of traces it could not send yet (its limit): \
                     dropping new traces until the agent takes them. Last failure: {}",
                    self.backlog_bytes + self.open.bytes.len(),
                    self.last_failure
                ));
            }
        } else {
            self.open.push(&self.encoder, &chunk);
        }
        self.spent.push(chunk.spans);
        if self.spent.len() >= SPENT_BATCH {
            crate::record::pool::give_all(&mut self.spent);
        }
        // A full payload goes at once; so does what fills the buffer, or a
        // buffer smaller than a payload would drop traces while the agent
        // takes everything (the back-off still applies).
        let config = &self.config;
        let held = self.backlog_bytes + self.open.bytes.len();
        if self.open.bytes.len() >= config.max_payload_bytes || held >= config.buffer_bytes {
            // The counters first: a send may take long, and they must add
            // up meanwhile.
            self.publish();
            self.seal();
            if !self.sending {
                self.pump(until);
            }
        }
    }

    /// Moves the open payload to the backlog.
    fn seal(&mut self) {
        if self.open.is_empty() {
            return;
        }
        let mut payload = std::mem::take(&mut self.open);
        payload.seal();
        self.sealed += 1;
        payload.sequence = self.sealed;
        self.backlog_bytes += payload.bytes.len();
        self.backlog_spans += payload.spans;
        self.backlog.push_back(payload);
    }

    /// Publishes the counts of the chunks taken since the last call (the
    /// queue's span count too) and the gauges of what the writer holds.
    fn publish(&mut self) {
        let counters = &self.counters;
        let pending = std::mem::take(&mut self.pending);
        if pending.spans_taken > 0 {
            self.counters.queued_spans.fetch_sub(
                pending.spans_taken as u64,
                std::sync::atomic::Ordering::Relaxed,
            );
        }
        for (counter, n) in [
            (&counters.traces_queued, pending.traces_queued),
            (&counters.spans_queued, pending.spans_queued),
            (&counters.tags_dropped, pending.tags_dropped),
            (
                &counters.traces_dropped_buffer_full,
                pending.traces_dropped_buffer_full,
            ),
            (
                &counters.spans_dropped_buffer_full,
                pending.spans_dropped_buffer_full,
            ),
        ] {
            if n > 0 {
                add(counter, n);
            }
        }
        let bytes = self.backlog_bytes + self.open.bytes.len();
        set(&counters.bytes_buffered, bytes);
        counters
            .bytes_buffered_peak
            .fetch_max(bytes as u64, std::sync::atomic::Ordering::Relaxed);
        set(
            &counters.spans_buffered,
            self.backlog_spans + self.open.spans,
        );
    }

    /// Sends the backlog in order until it is empty, a send must wait, or
    /// the deadline passes.
    ///
    /// Only payloads sealed before it began: those sealed while its requests
    /// are under way wait for the next round, so that a caller (the run
    /// loop, a flush, a shutdown) gets control back.
    fn pump(&mut self, until: Until) {
        self.pump_through(until, self.sealed);
    }

    /// [`Writer::pump`] for the payloads sealed up to `last`.
    fn pump_through(&mut self, until: Until, last: u64) {
        let deadline = until.deadline();
        while self.backlog.front().is_some_and(|p| p.sequence <= last) {
            let now = Instant::now();
            if self.resume_at.is_some_and(|at| now < at) || deadline.is_some_and(|d| now >= d) {
                break;
            }
            self.resume_at = None;
            let outcome = self.send_front(until);
            // Back-offs count from the answer, not from the request.
            let now = Instant::now();
            let payload = match outcome {
                Outcome::Later(wait) => {
                    self.resume_at = Some(now + wait);
                    break;
                }
                Outcome::Retry => {
                    let retries = self.config.max_retries;
                    let front = self.backlog.front_mut().expect("the payload just sent");
                    front.failed_attempts += 1;
                    if front.failed_attempts <= retries {
                        let backoff = retry_wait(self.config.retry_backoff, front.failed_attempts);
                        self.resume_at = Some(now + backoff);
                        break;
                    }
                    self.take_front()
                }
                Outcome::Delivered | Outcome::Split | Outcome::Rejected => self.take_front(),
            };
            match outcome {
                Outcome::Delivered => self.delivered(&payload),
                Outcome::Split => match payload.split() {
                    Ok((first, second)) => {
                        add(&self.counters.payloads_split, 1);
                        self.backlog_bytes += first.bytes.len() + second.bytes.len();
                        self.backlog_spans += first.spans + second.spans;
                        self.backlog.push_front(second);
                        self.backlog.push_front(first);
                    }
                    Err(single) => {
                        self.last_failure = format!(
                            "a trace of {} spans ({} bytes) is larger than the agent accepts",
                            single.spans,
                            single.bytes.len()
                        );
                        self.dropped(&single);
                    }
                },
                _ => self.dropped(&payload),
            }
            // After each payload settled: the next send may take long.
            self.publish();
        }
        self.publish();
    }

    fn take_front(&mut self) -> Payload {
        let payload = self.backlog.pop_front().expect("a payload in the backlog");
        self.backlog_bytes -= payload.bytes.len();
        self.backlog_spans -= payload.spans;
        payload
    }

    /// One send of the oldest payload.
    fn send_front(&mut self, until: Until) -> Outcome {
        let counters = Arc::clone(&self.counters);
        let payload = self.backlog.front_mut().expect("a payload to send");
        if payload.sent_before {
            add(&counters.retries, 1);
        }
        payload.sent_before = true;
        let traces = payload.traces.len();
        let mut headers = self.headers.clone();
        headers.push(("X-Datadog-Trace-Count", traces.to_string()));
        let body = std::mem::take(&mut payload.bytes);
        let length = body.len();
        let (answer, body) = self.exchange(headers, body, until);
        // The body comes back with the answer; only a sender thread that
        // ended (not reached: it turns panics into failed sends) keeps it.
        let lost = body.len() != length;
        if let Some(front) = self.backlog.front_mut() {
            front.bytes = if lost { vec![0; length] } else { body };
        }
        if lost {
            self.last_failure = "the sender thread ended".to_owned();
            return Outcome::Rejected;
        }
        if answer.is_ok() {
            self.unreachable_streak = 0;
        }
        let response = match answer {
            Ok(response) if (200..300).contains(&response.status) => {
                if !self.sampler.update_agent_rates(&response.body) {
                    crate::util::diagnostics::debug(format_args!(
                        "the agent's answer carried no sampling rates: {:?}",
                        crate::record::tag::truncated(&response.body, 200)
                    ));
                }
                return Outcome::Delivered;
            }
            Ok(response) => {
                if response.status != 429 {
                    self.agent_answers();
                }
                response
            }
            Err(error) => {
                add(&counters.send_failures, 1);
                if error.unreachable {
                    self.unreachable_streak += 1;
                }
                self.last_failure = format!(
                    "could not reach the agent at {}: {error}",
                    self.config.agent_url
                );
                if !error.unreachable {
                    return Outcome::Retry;
                }
                if self.outage_since.is_none() {
                    self.outage_since = Some(Instant::now());
                    crate::util::diagnostics::warn(format_args!(
                        "{}; keeping up to {} bytes of traces until it is back",
                        self.last_failure, self.config.buffer_bytes
                    ));
                }
                let wait = self.unreachable_backoff;
                self.unreachable_backoff = (wait * 2).min(MAX_UNREACHABLE_BACKOFF);
                return Outcome::Later(wait);
            }
        };
        add(&counters.send_failures, 1);
        self.last_failure = format!(
            "the agent answered {} to a payload of {traces} traces: {}",
            response.status,
            crate::record::tag::truncated(response.body.trim(), 300)
        );
        match response.status {
            413 => Outcome::Split,
            429 => {
                // At least the first back-off: `Retry-After: 0` must not
                // turn a flush into a loop of requests with no pause.
                let wait = response
                    .retry_after
                    .unwrap_or(self.unreachable_backoff)
                    .max(self.config.retry_backoff)
                    .min(MAX_RETRY_AFTER);
                self.unreachable_backoff =
                    (self.unreachable_backoff * 2).min(MAX_UNREACHABLE_BACKOFF);
                crate::util::diagnostics::debug(format_args!(
                    "{}; waiting {wait:?}",
                    self.last_failure
                ));
                Outcome::Later(wait)
            }
            status if status >= 500 => Outcome::Retry,
            _ => Outcome::Rejected,
        }
    }

    /// One request through the sender thread. While the agent takes its
    /// time, the queue keeps moving: chunks are taken and encoded (within
    /// the byte budget), and sealed payloads wait their turn.
    ///
    /// Not during a shutdown: what finishes then is counted as finished
    /// after the stop (see [`Writer::shut_down`]), not encoded.
    fn exchange(
        &mut self,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        until: Until,
    ) -> (Result<Response, SendError>, Vec<u8>) {
        let limit = until.request_limit(Instant::now());
        if let Exchange::Done(answer) = self.link.start(TRACES_PATH, headers, body, limit) {
            return (answer.result, answer.body);
        }
        let keep_draining = !matches!(until, Until::Shutdown(_));
        loop {
            if let Some(answer) = self.link.answer(SEND_POLL) {
                return (answer.result, answer.body);
            }
            if keep_draining {
                self.sending = true;
                self.drain(Until::Unbounded);
                self.sending = false;
            }
        }
    }

    fn delivered(&mut self, payload: &Payload) {
        let counters = &self.counters;
        add(&counters.traces_sent, payload.traces.len());
        add(&counters.spans_sent, payload.spans);
        add(&counters.payloads_sent, 1);
        self.agent_answers();
        crate::util::diagnostics::debug(format_args!(
            "sent {} spans in {} traces",
            payload.spans,
            payload.traces.len()
        ));
    }

    /// The agent answered (other than 429): it is back if it was away.
    fn agent_answers(&mut self) {
        self.unreachable_backoff = self.config.retry_backoff;
        if let Some(since) = self.outage_since.take() {
            crate::util::diagnostics::warn(format_args!(
                "the agent at {} answers again after {:.1?}; {} spans waiting",
                self.config.agent_url,
                since.elapsed(),
                self.backlog_spans + self.open.spans
            ));
        }
    }

    fn dropped(&mut self, payload: &Payload) {
        let counters = &self.counters;
        add(&counters.traces_dropped_send_failed, payload.traces.len());
        add(&counters.spans_dropped_send_failed, payload.spans);
        if !self.warned_send_failure {
            self.warned_send_failure = true;
            crate::util::diagnostics::warn(format_args!(
                "{}; dropped {} spans. Further losses are summarised every minute",
                self.last_failure, payload.spans
            ));
        }
    }

    /// Seals what is queued and sends it, with what waited before it, until
    /// all of it went or the deadline passes, waiting out back-offs;
    /// whether all of it went. What finishes meanwhile is not waited for.
    ///
    /// An agent that cannot be reached at all gets the bounded retries of a
    /// failed request (`max_retries`, `retry_backoff` doubling), not the
    /// whole deadline: a short program run without an agent must not wait
    /// seconds at exit. What is left stays buffered.
    fn flush(&mut self, until: Until) -> bool {
        let Some(deadline) = until.deadline() else {
            return false;
        };
        self.drain(until);
        self.seal();
        // What finished before the flush: not what finishes while its
        // requests are under way.
        let target = self.sealed;
        // Misses in a row during this flush only: one answer (a 503 from an
        // agent shutting down) resets the streak, and a count taken
        // relative to the streak before would then not reach the bound
        // until the deadline.
        self.unreachable_streak = 0;
        loop {
            self.pump_through(until, target);
            if self.backlog.front().is_none_or(|p| p.sequence > target) {
                return true;
            }
            let misses = self.unreachable_streak;
            if misses > self.config.max_retries {
                return false;
            }
            let now = Instant::now();
            let mut wake = self.resume_at.unwrap_or(now).max(now);
            if misses > 0 {
                wake = wake.min(now + retry_wait(self.config.retry_backoff, misses));
                self.resume_at = Some(wake);
            }
            if wake >= deadline {
                return false;
            }
            std::thread::sleep(wake - now);
        }
    }

    /// A last flush; what it could not send is dropped and counted.
    fn shut_down(&mut self, deadline: Instant) -> bool {
        let done = self.flush(Until::Shutdown(deadline));
        if !done {
            let (mut traces, mut spans) = (0, 0);
            while !self.backlog.is_empty() {
                let payload = self.take_front();
                traces += payload.traces.len();
                spans += payload.spans;
            }
            let counters = &self.counters;
            add(&counters.traces_dropped_send_failed, traces);
            add(&counters.spans_dropped_send_failed, spans);
            crate::util::diagnostics::warn(format_args!(
                "stopping: {spans} spans in {traces} traces were not delivered. Last failure: {}",
                self.last_failure
            ));
        }
        // Chunks of spans finished while the shutdown was under way (the
        // tracer is off, their traces still hold it): counted as finished
        // after the stop, as are those that find the queue closed.
        while let Ok(chunk) = self.chunks.try_recv() {
            let spans = chunk.spans.len();
            self.pending.spans_taken += spans;
            self.counters.dropped_stopped(spans);
            self.spent.push(chunk.spans);
        }
        crate::record::pool::give_all(&mut self.spent);
        self.publish();
        done
    }

    fn summarise(&mut self) {
        if self.last_summary.elapsed() < SUMMARY_EVERY {
            return;
        }
        let stats = self.counters.snapshot();
        if stats.spans_dropped() != self.summarised.spans_dropped() {
            crate::util::diagnostics::warn(format_args!("{stats}"));
        }
        self.summarised = stats;
        self.last_summary = Instant::now();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload_of(sizes: &[usize]) -> Payload {
        let mut payload = Payload::default();
        payload.bytes.resize(ARRAY32_HEADER_LEN, 0);
        for (i, &spans) in sizes.iter().enumerate() {
            // Stand-in trace bodies: a msgpack array of `spans` small ints.
            msgpack::write_array_len(&mut payload.bytes, spans);
            payload.bytes.extend(std::iter::repeat_n(i as u8, spans));
            payload.traces.push(TraceEnd {
                end: payload.bytes.len(),
                spans,
            });
            payload.spans += spans;
        }
        payload.seal();
        payload
    }

    #[test]
    fn a_split_keeps_every_trace_once_in_order() {
        let mut whole = payload_of(&[1, 2, 3, 4, 5]);
        (whole.sent_before, whole.failed_attempts) = (true, 1);
        let bytes = whole.bytes.clone();
        let (first, second) = whole.split().ok().expect("five traces split");
        for half in [&first, &second] {
            assert_eq!((half.sent_before, half.failed_attempts), (false, 0));
        }
        assert_eq!((first.traces.len(), second.traces.len()), (2, 3));
        assert_eq!((first.spans, second.spans), (3, 12));
        let decode = |p: &Payload| -> Vec<Vec<u8>> { rmp_serde::from_slice(&p.bytes).unwrap() };
        let all: Vec<Vec<u8>> = rmp_serde::from_slice(&bytes).unwrap();
        let mut halves = decode(&first);
        halves.extend(decode(&second));
        assert_eq!(halves, all);
        assert_eq!(second.traces.last().unwrap().end, second.bytes.len());
        let (a, b) = second.split().ok().unwrap();
        assert_eq!((decode(&a).len(), decode(&b).len()), (1, 2));
        assert!(a.split().is_err(), "one trace cannot be split");
    }
}
