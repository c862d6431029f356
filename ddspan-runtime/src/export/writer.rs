//! The background writer: one named thread that takes finished trace chunks
//! from a bounded queue, encodes them into payloads, and sends them to the
//! agent every flush interval, or sooner when a payload reaches its size
//! cap. Payloads are v0.5 (a string table, about half the bytes) when the
//! agent's `GET /info`, asked from this thread at start and again when the
//! agent changes or comes back, lists `/v0.5/traces`, and v0.4 otherwise
//! ([`crate::export::agent_info`]). This file is the thread's loop; what it decides with lives apart and
//! is tested without threads: the payload ([`crate::export::payload`]), what
//! it holds within its byte budget ([`crate::export::buffer`]), what an
//! answer means ([`crate::export::outcome`]) and how long to wait
//! ([`crate::export::backoff`]).
//!
//! The writer polls the queue on its own clock (every 10 ms while chunks
//! arrive, backing off to 100 ms when idle) instead of blocking on it, so
//! application threads never pay for waking it: handing a chunk over is one
//! `try_send` ([`crate::export::queue`]). It blocks only on the control
//! channel, which carries the rare flush and shutdown requests.
//!
//! What cannot be sent yet waits in a backlog of encoded payloads, in order,
//! bounded in bytes (`buffer_bytes`); once the backlog holds that much, new
//! chunks are dropped and counted until it drains. What happens to a payload
//! depends on the answer to its send:
//! - 2xx: delivered; the agent's sampling rates are taken from the answer;
//! - no connection at all (agent down, restarting): kept, retried with a
//!   back-off that doubles up to one second; the agent never saw it, so it
//!   cannot arrive twice;
//! - 429 (agent overloaded): kept, sent again after the answer's
//!   `Retry-After` (at least the first back-off, at most 30 s) or the
//!   back-off;
//! - 413 (payload too large): split in two halves of whole traces, each sent
//!   on its own; a single trace too large is dropped;
//! - 5xx, and a timeout or lost connection *before* the request was
//!   written whole (the agent cannot have decoded it): retried
//!   `max_retries` times with exponential back-off, then dropped;
//! - the request written whole, then no answer (a timeout, the connection
//!   lost, an answer that cannot be read): the agent may have taken it, so
//!   it is never sent again (no span reaches the agent twice), and counted
//!   as unconfirmed (`spans_unconfirmed`), with one warning. The answer's
//!   first byte is waited for at least 10 s (a busy agent decodes a full
//!   payload first), the rest within the request timeout;
//! - 404 or 415 to a v0.5 payload (an agent that does not take v0.5 after
//!   all): rewritten as v0.4 and sent again at once, the agent having
//!   refused the whole of it; v0.4 from then on, until the agent changes;
//! - any other status (4xx, and the 1xx and 3xx a v0.4 endpoint never
//!   answers): dropped at once;
//! - the body never came back from the sender thread: dropped.
//!
//! Every span dropped is counted ([`crate::tracer::stats`]); the first loss
//! is logged at once, later ones every minute and at shutdown.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::export::agent_info::{Formats, STATS_PATH};
use crate::export::backoff::Backoff;
use crate::export::buffer::Buffer;
use crate::export::client_stats::{droppable, ClientStats};
use crate::export::encode::Encoder;
use crate::export::outcome::{classify, Answer, Outcome};
use crate::export::payload::{Format, Payload};
use crate::export::sender::{Exchange, Link, Method};
use crate::export::stats::{add, Counters, Stats, Tally};
use crate::export::transport::{Response, SendError, Transport};
use crate::record::Chunk;
use crate::record::SpanRecord;
use crate::sampling::Sampler;

const INFO_PATH: &str = "/info";
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

const MIN_POLL: Duration = Duration::from_millis(10);
const MAX_POLL: Duration = Duration::from_millis(100);
/// Chunks in one drain that mean the queue is filling faster than a poll
/// empties it: the writer looks again at once instead of waiting a poll.
const BUSY_DRAIN: usize = 256;
/// How often the queue is drained while a request is under way.
const SEND_POLL: Duration = Duration::from_millis(2);

/// Emptied buffers kept before they go back to the pool.
const SPENT_BATCH: usize = 32;
/// No chunk for this long and the writer frees the pool's buffers beyond
/// what an idle process keeps ([`crate::record::pool::trim`]).
const IDLE_TRIM_AFTER: Duration = Duration::from_secs(1);

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

/// The transport's result, reduced to what decides the payload's fate.
fn answer_of(result: &Result<Response, SendError>) -> Answer {
    match result {
        Ok(response) => Answer::Status {
            code: response.status,
            retry_after: response.retry_after,
        },
        Err(error) if error.unreachable => Answer::Unreachable,
        Err(error) if error.maybe_taken => Answer::MaybeTaken,
        Err(_) => Answer::Failed,
    }
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
    encoder: Encoder,
    /// The format new payloads take, from the agent's `/info`.
    formats: Formats,
    headers: Vec<(&'static str, String)>,
    /// The payload being filled and the sealed ones waiting.
    buffer: Buffer,
    backoff: Backoff,
    /// No send before this instant (back-off after a failure).
    resume_at: Option<Instant>,
    /// When the agent stopped answering, while it is unreachable.
    outage_since: Option<Instant>,
    /// The latest failure, for the loss warnings.
    last_failure: String,
    warned_send_failure: bool,
    warned_unconfirmed: bool,
    warned_buffer_full: bool,
    last_summary: Instant,
    summarised: Stats,
    /// Counts of chunks taken since the last [`Writer::publish`].
    tally: Tally,
    /// Emptied span buffers, handed back to the pool in batches (one lock
    /// per batch, not per chunk).
    spent: Vec<Vec<SpanRecord>>,
    /// Client-side stats and the P0 chunks left unsent.
    stats: ClientStats,
}

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
            buffer: Buffer::new(config.buffer_bytes),
            backoff: Backoff::new(config.retry_backoff),
            chunks,
            link: Link::new(transport),
            sending: false,
            encoder,
            formats: Formats::new(),
            headers,
            resume_at: None,
            outage_since: None,
            last_failure: String::new(),
            warned_send_failure: false,
            warned_unconfirmed: false,
            warned_buffer_full: false,
            last_summary: Instant::now(),
            summarised: Stats::default(),
            tally: Tally::default(),
            spent: Vec::with_capacity(SPENT_BATCH),
            stats: ClientStats::new(&config),
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
        // When the last chunk came, until the pool is trimmed for idleness.
        let mut busy_since: Option<Instant> = Some(Instant::now());
        self.ask_info(Until::Unbounded);
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
                    if taken > 0 {
                        busy_since = Some(Instant::now());
                    } else if busy_since.is_some_and(|t| t.elapsed() >= IDLE_TRIM_AFTER) {
                        busy_since = None;
                        crate::record::pool::trim(crate::record::pool::IDLE_POOLED_BYTES);
                        self.buffer.release_spare();
                    }
                    poll = if taken >= BUSY_DRAIN {
                        Duration::ZERO
                    } else if taken > 0 {
                        MIN_POLL.min(max_poll)
                    } else {
                        (poll * 2).clamp(MIN_POLL.min(max_poll), max_poll)
                    };
                    if Instant::now() >= next_send {
                        self.buffer.seal();
                        self.send_stats(false, Until::Unbounded);
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
            if self.sending && self.buffer.is_full() {
                break;
            }
            let Ok(chunk) = self.chunks.try_recv() else {
                break;
            };
            self.tally.spans_taken += chunk.spans.len();
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
        // A payload sealed while a request was under way (the buffer filled
        // during an `/info` request) goes before anything is dropped for
        // want of room. The chunk is not counted yet: the counters add up
        // meanwhile.
        if self.buffer.is_full() && !self.sending {
            self.pump(until);
        }
        let spans = chunk.spans.len();
        self.tally.traces_queued += 1;
        self.tally.spans_queued += spans;
        let tags_dropped: u32 = chunk.spans.iter().map(SpanRecord::tags_dropped).sum();
        self.tally.tags_dropped += tags_dropped as usize;
        let stats_info = self.formats.stats();
        let p0_dropped = if self.stats.active(stats_info) {
            self.stats.add(&chunk, &stats_info.peer_tags);
            stats_info.drop_p0s && droppable(&chunk)
        } else {
            false
        };
        if p0_dropped {
            // Counted in the stats the agent receives: not sent, not lost.
            self.stats.p0_dropped(spans);
            self.tally.traces_p0_dropped += 1;
            self.tally.spans_p0_dropped += spans;
        } else if self.buffer.is_full() {
            self.tally.traces_dropped_buffer_full += 1;
            self.tally.spans_dropped_buffer_full += spans;
            if !self.warned_buffer_full {
                self.warned_buffer_full = true;
                crate::util::diagnostics::warn(format_args!(
                    "the writer holds {} bytes of traces it could not send yet (its limit): \
                     dropping new traces until the agent takes them. Last failure: {}",
                    self.buffer.bytes(),
                    self.last_failure
                ));
            }
        } else {
            self.buffer
                .append(&self.encoder, &chunk, self.formats.format());
        }
        self.spent.push(chunk.spans);
        if self.spent.len() >= SPENT_BATCH {
            crate::record::pool::give_all(&mut self.spent);
        }
        // A full payload goes at once; so does what fills the buffer, or a
        // buffer smaller than a payload would drop traces while the agent
        // takes everything (the back-off still applies).
        if self.buffer.open_bytes() >= self.config.max_payload_bytes || self.buffer.is_full() {
            // The counters first: a send may take long, and they must add
            // up meanwhile.
            self.publish();
            self.buffer.seal();
            if !self.sending {
                self.pump(until);
            }
        }
    }

    /// Publishes the counts of the chunks taken since the last call (the
    /// queue's span count too) and the gauges of what the writer holds.
    fn publish(&mut self) {
        self.tally
            .publish(&self.counters, self.buffer.bytes(), self.buffer.spans());
    }

    /// Sends the backlog in order until it is empty, a send must wait, or
    /// the deadline passes.
    ///
    /// Only payloads sealed before it began: those sealed while its requests
    /// are under way wait for the next round, so that a caller (the run
    /// loop, a flush, a shutdown) gets control back.
    fn pump(&mut self, until: Until) {
        self.pump_through(until, self.buffer.last_sealed());
    }

    /// [`Writer::pump`] for the payloads sealed up to `last`.
    fn pump_through(&mut self, until: Until, last: u64) {
        let deadline = until.deadline();
        while !self.buffer.done_through(last) {
            let now = Instant::now();
            if self.resume_at.is_some_and(|at| now < at) || deadline.is_some_and(|d| now >= d) {
                break;
            }
            self.resume_at = None;
            if self.formats.wants_info() {
                self.ask_info(until);
            }
            let outcome = self.send_front(until);
            if outcome == Outcome::Resend {
                continue;
            }
            // Back-offs count from the answer, not from the request.
            let now = Instant::now();
            if let Outcome::Later(wait) = outcome {
                self.resume_at = Some(now + wait);
                break;
            }
            if outcome == Outcome::Retry {
                let front = self.buffer.front().expect("the payload just sent");
                front.failed_attempts += 1;
                if front.failed_attempts <= self.config.max_retries {
                    self.resume_at = Some(now + self.backoff.retry_wait(front.failed_attempts));
                    break;
                }
            }
            let settled = self.buffer.pop().expect("the payload just sent");
            let spent = match outcome {
                Outcome::Delivered => {
                    self.delivered(&settled.payload);
                    Some(settled.payload)
                }
                Outcome::Split => match settled.payload.split() {
                    Ok(halves) => {
                        add(&self.counters.payloads_split, 1);
                        self.buffer.put_back_halves(halves, settled.sequence);
                        None
                    }
                    Err(single) => {
                        self.last_failure = format!(
                            "a trace of {} spans ({} bytes) is larger than the agent accepts",
                            single.spans(),
                            single.len()
                        );
                        self.dropped(&single);
                        Some(single)
                    }
                },
                Outcome::Unconfirmed => {
                    self.unconfirmed(&settled.payload);
                    Some(settled.payload)
                }
                _ => {
                    self.dropped(&settled.payload);
                    Some(settled.payload)
                }
            };
            if let Some(spent) = spent {
                self.buffer.reuse(spent.into_bytes());
            }
            // After each payload settled: the next send may take long.
            self.publish();
        }
        self.publish();
        // The agent changed or came back: the chunks from now on take the
        // format it allows.
        if self.formats.wants_info() && deadline.is_none_or(|d| Instant::now() < d) {
            self.ask_info(until);
        }
    }

    /// Asks the agent's `/info` (within the request timeout, whatever the
    /// answer wait of a trace request) and takes the format it allows.
    fn ask_info(&mut self, until: Until) {
        let timeout = self.config.request_timeout;
        let limit = until
            .request_limit(Instant::now())
            .map_or(timeout, |limit| limit.min(timeout));
        let before = self.formats.format();
        let drain = !matches!(until, Until::Shutdown(_));
        let (result, _) = self.exchange(
            Method::Get,
            INFO_PATH,
            Vec::new(),
            Vec::new(),
            (Some(limit), drain),
        );
        match &result {
            Ok(response) => self.formats.info(Some((
                response.status,
                &response.body,
                response.agent_state.as_deref(),
            ))),
            Err(_) => self.formats.info(None),
        }
        self.encoder.native_span_events = self.formats.span_events();
        let after = self.formats.format();
        crate::util::diagnostics::debug(format_args!(
            "the agent's /info: {}; sending {} (was {})",
            match &result {
                Ok(response) => format!("status {}", response.status),
                Err(error) => error.to_string(),
            },
            after.path(),
            before.path()
        ));
    }

    /// One send of the oldest payload, and what comes of it.
    fn send_front(&mut self, until: Until) -> Outcome {
        // A v0.5 payload made before the agent turned out not to take v0.5.
        let max = self.config.max_payload_bytes;
        if self.formats.format() == Format::V04 && !self.buffer.front_to_v04(max) {
            return Outcome::Rejected;
        }
        let front = self.buffer.front().expect("a payload to send");
        if front.sent_before {
            add(&self.counters.retries, 1);
        }
        front.sent_before = true;
        let traces = front.payload.traces();
        let format = front.payload.format();
        let body = front.payload.lend();
        let length = body.len();
        let mut headers = self.headers.clone();
        headers.push(("X-Datadog-Trace-Count", traces.to_string()));
        let p0 = self.stats.take_p0();
        if self.stats.active(self.formats.stats()) {
            headers.push(("Datadog-Client-Computed-Stats", "yes".to_owned()));
        }
        if p0 != (0, 0) {
            headers.push(("Datadog-Client-Dropped-P0-Traces", p0.0.to_string()));
            headers.push(("Datadog-Client-Dropped-P0-Spans", p0.1.to_string()));
        }
        let limit = until.request_limit(Instant::now());
        let drain = !matches!(until, Until::Shutdown(_));
        let (result, body) =
            self.exchange(Method::Put, format.path(), headers, body, (limit, drain));
        // The body comes back with the answer; only a sender thread that
        // ended (not reached: it turns panics into failed sends) keeps it.
        let answer = if body.len() == length {
            answer_of(&result)
        } else {
            Answer::BodyLost
        };
        if let Some(front) = self.buffer.front() {
            front.payload.restore(body);
        }
        if let Ok(response) = &result {
            self.formats
                .answered(response.agent_state.as_deref(), self.outage_since.is_some());
        }
        if format == Format::V05
            && matches!(
                answer,
                Answer::Status {
                    code: 404 | 415,
                    ..
                }
            )
        {
            // Refused whole, so not taken: the same traces as v0.4, with
            // the P0 counts.
            self.stats.restore_p0(p0);
            self.formats.refused_v05();
            crate::util::diagnostics::debug(format_args!(
                "the agent answered {answer:?} to a v0.5 payload: sending v0.4"
            ));
            self.agent_answers();
            return if self.buffer.front_to_v04(self.config.max_payload_bytes) {
                Outcome::Resend
            } else {
                Outcome::Rejected
            };
        }
        let outcome = classify(answer, &self.backoff);
        self.backoff.observe(answer);
        if !matches!(outcome, Outcome::Delivered | Outcome::Unconfirmed) {
            // Not taken: the next request reports them.
            self.stats.restore_p0(p0);
        }
        match result {
            _ if answer == Answer::BodyLost => {
                self.last_failure = "the sender thread ended".to_owned();
            }
            Ok(response) if outcome == Outcome::Delivered => {
                if !self.sampler.update_agent_rates(&response.body) {
                    crate::util::diagnostics::debug(format_args!(
                        "the agent's answer carried no sampling rates: {:?}",
                        crate::record::tag::truncated(&response.body, 200)
                    ));
                }
            }
            Ok(response) => {
                add(&self.counters.send_failures, 1);
                self.last_failure = format!(
                    "the agent answered {} to a payload of {traces} traces: {}",
                    response.status,
                    crate::record::tag::truncated(response.body.trim(), 300)
                );
                match outcome {
                    // A 429: overloaded, not back.
                    Outcome::Later(wait) => crate::util::diagnostics::debug(format_args!(
                        "{}; waiting {wait:?}",
                        self.last_failure
                    )),
                    _ => self.agent_answers(),
                }
            }
            Err(error) => {
                add(&self.counters.send_failures, 1);
                self.last_failure = format!(
                    "could not reach the agent at {}: {error}",
                    self.config.agent_url
                );
                if answer == Answer::Unreachable && self.outage_since.is_none() {
                    self.outage_since = Some(Instant::now());
                    crate::util::diagnostics::warn(format_args!(
                        "{}; keeping up to {} bytes of traces until it is back",
                        self.last_failure, self.config.buffer_bytes
                    ));
                }
            }
        }
        outcome
    }

    /// One request through the sender thread. While the agent takes its
    /// time, the queue keeps moving: chunks are taken and encoded (within
    /// the byte budget), and sealed payloads wait their turn.
    ///
    /// `limit` bounds the request when shorter than the request timeout;
    /// `keep_draining` is false during a shutdown: what finishes then is
    /// counted as finished after the stop (see [`Writer::shut_down`]), not
    /// encoded.
    fn exchange(
        &mut self,
        method: Method,
        path: &'static str,
        headers: Vec<(&'static str, String)>,
        body: Vec<u8>,
        (limit, keep_draining): (Option<Duration>, bool),
    ) -> (Result<Response, SendError>, Vec<u8>) {
        if let Exchange::Done(answer) = self.link.start(method, path, headers, body, limit) {
            return (answer.result, answer.body);
        }
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

    /// Sends the client-side stats of the buckets that are over (every
    /// bucket with `all`: a flush, the stop). Once: stats the agent did not
    /// take are dropped (as dd-trace-go does), with a debug line.
    fn send_stats(&mut self, all: bool, until: Until) {
        if !self.stats.active(self.formats.stats())
            || until.deadline().is_some_and(|d| Instant::now() >= d)
        {
            return;
        }
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| {
                u64::try_from(since.as_nanos()).unwrap_or(u64::MAX)
            });
        let Some(body) = self.stats.take_payload(now, all) else {
            return;
        };
        if self.outage_since.is_some() {
            // Not kept for later: the buckets of a long outage would pile up.
            crate::util::diagnostics::debug(format_args!(
                "the agent is unreachable: {} bytes of stats dropped",
                body.len()
            ));
            return;
        }
        let timeout = self.config.request_timeout;
        let limit = until
            .request_limit(Instant::now())
            .map_or(timeout, |limit| limit.min(timeout));
        let drain = !matches!(until, Until::Shutdown(_));
        let mut headers = self.headers.clone();
        headers.retain(|(name, _)| *name != "Datadog-Client-Computed-Top-Level");
        let length = body.len();
        let (result, _) =
            self.exchange(Method::Put, STATS_PATH, headers, body, (Some(limit), drain));
        match result {
            Ok(response) if (200..300).contains(&response.status) => {
                crate::util::diagnostics::debug(format_args!("sent {length} bytes of stats"));
            }
            Ok(response) => crate::util::diagnostics::debug(format_args!(
                "the agent answered {} to {length} bytes of stats: dropped",
                response.status
            )),
            Err(error) => crate::util::diagnostics::debug(format_args!(
                "stats of {length} bytes not sent: {error}"
            )),
        }
    }

    fn delivered(&mut self, payload: &Payload) {
        let counters = &self.counters;
        add(&counters.traces_sent, payload.traces());
        add(&counters.spans_sent, payload.spans());
        add(&counters.payloads_sent, 1);
        self.agent_answers();
        crate::util::diagnostics::debug(format_args!(
            "sent {} spans in {} traces",
            payload.spans(),
            payload.traces()
        ));
    }

    /// The agent answered (other than 429): it is back if it was away.
    fn agent_answers(&mut self) {
        if let Some(since) = self.outage_since.take() {
            crate::util::diagnostics::warn(format_args!(
                "the agent at {} answers again after {:.1?}; {} spans waiting",
                self.config.agent_url,
                since.elapsed(),
                self.buffer.spans()
            ));
        }
    }

    /// A payload the agent may have taken without saying so: never sent
    /// again, so that no span reaches the agent twice.
    fn unconfirmed(&mut self, payload: &Payload) {
        add(&self.counters.traces_unconfirmed, payload.traces());
        add(&self.counters.spans_unconfirmed, payload.spans());
        if !self.warned_unconfirmed {
            self.warned_unconfirmed = true;
            crate::util::diagnostics::warn(format_args!(
                "{}, after the whole payload was sent: the agent may have taken its {} spans; \
                 not sending them again, so none arrives twice (counted as unconfirmed; said once)",
                self.last_failure,
                payload.spans()
            ));
        }
    }

    fn dropped(&mut self, payload: &Payload) {
        let counters = &self.counters;
        add(&counters.traces_dropped_send_failed, payload.traces());
        add(&counters.spans_dropped_send_failed, payload.spans());
        if !self.warned_send_failure {
            self.warned_send_failure = true;
            crate::util::diagnostics::warn(format_args!(
                "{}; dropped {} spans. Further losses are summarised every minute",
                self.last_failure,
                payload.spans()
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
        self.buffer.seal();
        self.send_stats(true, until);
        // What finished before the flush: not what finishes while its
        // requests are under way.
        let target = self.buffer.last_sealed();
        // Misses in a row during this flush only: one answer (a 503 from an
        // agent shutting down) resets the streak, and a count taken
        // relative to the streak before would then not reach the bound
        // until the deadline.
        self.backoff.forget_streak();
        loop {
            self.pump_through(until, target);
            if self.buffer.done_through(target) {
                return true;
            }
            let misses = self.backoff.unreachable_streak();
            if misses > self.config.max_retries {
                return false;
            }
            let now = Instant::now();
            let mut wake = self.resume_at.unwrap_or(now).max(now);
            if misses > 0 {
                wake = wake.min(now + self.backoff.retry_wait(misses));
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
            let (traces, spans) = self.buffer.clear_waiting();
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
        // after the stop, as are those that find the queue closed. A
        // hand-off that saw no stop may still be on its way into the queue:
        // its spans are in `queued_spans` until taken, so the drain goes on
        // until that count is back to zero (a few tries: a hand-off takes
        // nanoseconds).
        for _ in 0..10_000 {
            while let Ok(chunk) = self.chunks.try_recv() {
                let spans = chunk.spans.len();
                self.tally.spans_taken += spans;
                self.counters.dropped_stopped(spans);
                self.spent.push(chunk.spans);
            }
            self.publish();
            if self
                .counters
                .queued_spans
                .load(std::sync::atomic::Ordering::SeqCst)
                == 0
            {
                break;
            }
            std::thread::yield_now();
        }
        crate::record::pool::give_all(&mut self.spent);
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
