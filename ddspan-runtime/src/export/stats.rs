//! Exact accounting of what the tracer sent and what it lost.
//!
//! Application threads touch these counters only when they drop something;
//! everything else is counted by the writer thread, which tallies the
//! chunks it takes and publishes the tally once per batch ([`Tally`]).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// A snapshot of the tracer's counters since it started.
///
/// Every span handed to the writer is, at any time, in exactly one of: sent,
/// unconfirmed (sent whole, then no answer: perhaps taken, never sent
/// again), dropped because its send failed, dropped because the writer's
/// buffer was full, or buffered (waiting to be sent):
/// `spans_queued == spans_sent + spans_unconfirmed +
/// spans_dropped_send_failed + spans_dropped_buffer_full + spans_p0_dropped +
/// spans_buffered`. Spans that never reached the
/// writer are counted as dropped because the queue was full or the tracer
/// was stopped. P0 traces left unsent because client-side stats already
/// counted them (`spans_p0_dropped`) are not losses: the agent was told of
/// them, and [`Stats::spans_dropped`] leaves them out.
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
    /// Chunks sent whole to an agent that then did not answer (a timeout,
    /// the connection lost): it may have taken them. They are not sent
    /// again, so that nothing reaches the agent twice.
    pub traces_unconfirmed: u64,
    /// Spans in those chunks.
    pub spans_unconfirmed: u64,
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
    /// Chunks not sent because their trace was sampled out (priority 0 or
    /// less, no error, no single span kept) while client-side stats counted
    /// their spans and the agent allowed it (`client_drop_p0s`): not a loss.
    pub traces_p0_dropped: u64,
    /// Spans in those chunks.
    pub spans_p0_dropped: u64,
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
            "{} spans in {} traces sent, {} spans unconfirmed, {} spans buffered; dropped: {} spans ({} traces) \
             with the queue full, {} spans ({} traces) with the buffer full, \
             {} spans after stop, {} spans ({} traces) the agent did not take; \
             {} failed requests, {} retries; {} sampled-out spans counted in client stats, not sent",
            self.spans_sent,
            self.traces_sent,
            self.spans_unconfirmed,
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
            self.spans_p0_dropped,
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
            /// The tracer was stopped: chunks handed over from now on are
            /// counted as finished after the stop, not queued.
            pub(crate) stopped: AtomicBool,
            warned_queue_full: AtomicBool,
            warned_stopped: AtomicBool,
        }

        impl Counters {
            /// The counters of a stopped tracer, with chunks still in its
            /// writer's queue counted as buffered (held by the writer,
            /// settled when it ends): every span handed over is in exactly
            /// one counter at any time after the stop.
            pub(crate) fn settled_snapshot(&self) -> Stats {
                let mut stats = self.snapshot();
                let in_queue = self.queued_spans.load(Ordering::Relaxed);
                stats.spans_queued += in_queue;
                stats.spans_buffered += in_queue;
                stats
            }

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
    traces_unconfirmed,
    spans_unconfirmed,
    traces_dropped_buffer_full,
    spans_dropped_buffer_full,
    spans_buffered,
    bytes_buffered,
    bytes_buffered_peak,
    send_failures,
    retries,
    payloads_split,
    tags_dropped,
    traces_p0_dropped,
    spans_p0_dropped
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

/// What the writer counted since it last published: the shared counters
/// are written once per batch of chunks, not per chunk.
#[derive(Default)]
pub(crate) struct Tally {
    /// Spans taken out of the queue, not yet subtracted from its count.
    pub(crate) spans_taken: usize,
    pub(crate) traces_queued: usize,
    pub(crate) spans_queued: usize,
    pub(crate) traces_dropped_buffer_full: usize,
    pub(crate) spans_dropped_buffer_full: usize,
    pub(crate) tags_dropped: usize,
    pub(crate) traces_p0_dropped: usize,
    pub(crate) spans_p0_dropped: usize,
}

impl Tally {
    /// Adds the tally to `counters` (the queue's span count too) and starts
    /// a new one; sets the gauges of what the writer holds.
    pub(crate) fn publish(&mut self, counters: &Counters, bytes_held: usize, spans_held: usize) {
        let tally = std::mem::take(self);
        if tally.spans_taken > 0 {
            counters
                .queued_spans
                .fetch_sub(tally.spans_taken as u64, Ordering::Relaxed);
        }
        for (counter, n) in [
            (&counters.traces_queued, tally.traces_queued),
            (&counters.spans_queued, tally.spans_queued),
            (&counters.tags_dropped, tally.tags_dropped),
            (&counters.traces_p0_dropped, tally.traces_p0_dropped),
            (&counters.spans_p0_dropped, tally.spans_p0_dropped),
            (
                &counters.traces_dropped_buffer_full,
                tally.traces_dropped_buffer_full,
            ),
            (
                &counters.spans_dropped_buffer_full,
                tally.spans_dropped_buffer_full,
            ),
        ] {
            if n > 0 {
                add(counter, n);
            }
        }
        set(&counters.bytes_buffered, bytes_held);
        counters
            .bytes_buffered_peak
            .fetch_max(bytes_held as u64, Ordering::Relaxed);
        set(&counters.spans_buffered, spans_held);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tally_is_published_once_and_sets_the_gauges() {
        let counters = Counters::default();
        counters.queued_spans.store(10, Ordering::Relaxed);
        let mut tally = Tally {
            spans_taken: 7,
            traces_queued: 2,
            spans_queued: 7,
            traces_dropped_buffer_full: 1,
            spans_dropped_buffer_full: 3,
            tags_dropped: 4,
            traces_p0_dropped: 1,
            spans_p0_dropped: 2,
        };
        tally.publish(&counters, 900, 4);
        tally.publish(&counters, 100, 1);
        let stats = counters.snapshot();
        assert_eq!(counters.queued_spans.load(Ordering::Relaxed), 3);
        assert_eq!((stats.traces_queued, stats.spans_queued), (2, 7));
        assert_eq!(
            (
                stats.traces_dropped_buffer_full,
                stats.spans_dropped_buffer_full
            ),
            (1, 3)
        );
        assert_eq!(stats.tags_dropped, 4);
        assert_eq!((stats.traces_p0_dropped, stats.spans_p0_dropped), (1, 2));
        assert_eq!((stats.bytes_buffered, stats.spans_buffered), (100, 1));
        assert_eq!(stats.bytes_buffered_peak, 900);
    }
}
