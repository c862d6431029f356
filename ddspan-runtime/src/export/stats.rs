//! Exact accounting of what the tracer sent and what it lost.
//!
//! Application threads touch these counters only when they drop something;
//! everything else is counted by the writer thread, per chunk.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of the tracer's counters since it started.
///
/// Every span handed to the writer is, at any time, in exactly one of: sent,
/// dropped because its send failed, dropped because the writer's buffer was
/// full, or buffered (waiting to be sent):
/// `spans_queued == spans_sent + spans_dropped_send_failed +
/// spans_dropped_buffer_full + spans_buffered`. Spans that never reached the
/// writer are counted as dropped because the queue was full or the tracer
/// was stopped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Trace chunks handed to the writer.
    pub traces_queued: u64,
    /// Spans handed to the writer.
    pub spans_queued: u64,
    /// Trace chunks the agent accepted.
    pub traces_sent: u64,
    /// Spans the agent accepted.
    pub spans_sent: u64,
    /// Payloads the agent accepted.
    pub payloads_sent: u64,
    /// Chunks dropped because the writer's queue was full.
    pub traces_dropped_queue_full: u64,
    /// Spans dropped because the writer's queue was full.
    pub spans_dropped_queue_full: u64,
    /// Spans finished after the tracer was stopped.
    pub spans_dropped_stopped: u64,
    /// Chunks dropped after a 4xx answer, after the last retry of a 5xx or
    /// timeout, or still unsent when a shutdown's time ran out.
    pub traces_dropped_send_failed: u64,
    /// Spans dropped for the same reasons.
    pub spans_dropped_send_failed: u64,
    /// Chunks dropped by the writer because its buffer of unsent payloads
    /// held its byte limit (the agent down or slow for long).
    pub traces_dropped_buffer_full: u64,
    /// Spans dropped for the same reason.
    pub spans_dropped_buffer_full: u64,
    /// Spans the writer holds now, encoded, waiting to be sent.
    pub spans_buffered: u64,
    /// Bytes the writer holds now in encoded payloads waiting to be sent.
    pub bytes_buffered: u64,
    /// The most bytes the writer ever held at once.
    pub bytes_buffered_peak: u64,
    /// Requests to the agent that failed (no connection, timeout, 4xx, 5xx).
    pub send_failures: u64,
    /// Requests repeated after a failure: the same payload sent again.
    pub retries: u64,
    /// Payloads the agent found too large (413), split in two and resent.
    pub payloads_split: u64,
    /// Tags not kept because a span already had the most it may keep.
    pub tags_dropped: u64,
}

impl Stats {
    /// Every span lost, for whatever reason.
    pub fn spans_dropped(&self) -> u64 {
        self.spans_dropped_queue_full
            + self.spans_dropped_stopped
            + self.spans_dropped_send_failed
            + self.spans_dropped_buffer_full
    }
}

impl std::fmt::Display for Stats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} spans in {} traces sent, {} spans buffered; dropped: {} spans ({} traces) \
             with the queue full, {} spans ({} traces) with the buffer full, \
             {} spans after stop, {} spans ({} traces) the agent did not take; \
             {} failed requests, {} retries",
            self.spans_sent,
            self.traces_sent,
            self.spans_buffered,
            self.spans_dropped_queue_full,
            self.traces_dropped_queue_full,
            self.spans_dropped_buffer_full,
            self.traces_dropped_buffer_full,
            self.spans_dropped_stopped,
            self.spans_dropped_send_failed,
            self.traces_dropped_send_failed,
            self.send_failures,
            self.retries,
        )
    }
}

/// A counter on a cache line of its own: application threads write some
/// counters (drops at a full queue) while the writer writes others, and
/// counters sharing a line would make each side wait for the other's
/// writes (measured: a dropped chunk cost the application thread over
/// 100 ns when the writer was busy).
#[derive(Default)]
#[repr(align(128))]
pub(crate) struct Counter(AtomicU64);

impl std::ops::Deref for Counter {
    type Target = AtomicU64;

    fn deref(&self) -> &AtomicU64 {
        &self.0
    }
}

macro_rules! counters {
    ($($field:ident),*) => {
        #[derive(Default)]
        pub(crate) struct Counters {
            $(pub(crate) $field: Counter,)*
            /// Spans in the chunks queued for the writer (bounded by
            /// `queue_max_spans`): added at hand-off, subtracted by the
            /// writer as it takes them. Not a statistic.
            pub(crate) queued_spans: Counter,
            warned_queue_full: AtomicBool,
            warned_stopped: AtomicBool,
        }

        impl Counters {
            pub(crate) fn snapshot(&self) -> Stats {
                Stats { $($field: self.$field.load(Ordering::Relaxed),)* }
            }
        }
    };
}

counters!(
    traces_queued,
    spans_queued,
    traces_sent,
    spans_sent,
    payloads_sent,
    traces_dropped_queue_full,
    spans_dropped_queue_full,
    spans_dropped_stopped,
    traces_dropped_send_failed,
    spans_dropped_send_failed,
    traces_dropped_buffer_full,
    spans_dropped_buffer_full,
    spans_buffered,
    bytes_buffered,
    bytes_buffered_peak,
    send_failures,
    retries,
    payloads_split,
    tags_dropped
);

pub(crate) fn add(counter: &AtomicU64, n: usize) {
    counter.fetch_add(n as u64, Ordering::Relaxed);
}

/// Sets a gauge (written by the writer thread only).
pub(crate) fn set(gauge: &AtomicU64, n: usize) {
    gauge.store(n as u64, Ordering::Relaxed);
}

impl Counters {
    pub(crate) fn dropped_queue_full(&self, spans: usize) {
        add(&self.traces_dropped_queue_full, 1);
        add(&self.spans_dropped_queue_full, spans);
        // A load first: while the queue stays full, no write to the flag.
        if !self.warned_queue_full.load(Ordering::Relaxed)
            && !self.warned_queue_full.swap(true, Ordering::Relaxed)
        {
            crate::util::diagnostics::warn(format_args!(
                "the writer's queue is full (the agent is slow or down): dropping traces; \
                 a summary follows at shutdown and every minute while it lasts"
            ));
        }
    }

    pub(crate) fn dropped_stopped(&self, spans: usize) {
        add(&self.spans_dropped_stopped, spans);
        if !self.warned_stopped.load(Ordering::Relaxed)
            && !self.warned_stopped.swap(true, Ordering::Relaxed)
        {
            crate::util::diagnostics::warn(format_args!(
                "spans finished after the tracer stopped are dropped"
            ));
        }
    }
}
