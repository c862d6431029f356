//! The application side of the agent writer: the bounded queue a finished
//! chunk is handed to (small chunks in batches, from their thread's outbox:
//! [`crate::export::outbox`]), and the flush and shutdown requests. Handing
//! a chunk over is a push into the thread's outbox, or one `try_send`: no
//! system call (the writer polls the queue on its own clock), never a wait.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::export::outbox::{Handoff, Outboxes, Put};
use crate::export::stats::Counters;
use crate::export::writer::{self, Control};
use crate::record::Chunk;
use crate::sampling::Sampler;

/// The most the writer's deadline comes before its caller's, for its
/// answer to arrive in time: a flush or stop given 5 s returns within 5 s.
const REPLY_MARGIN: Duration = Duration::from_millis(200);

/// The deadline the writer works to, for a caller waiting until `deadline`:
/// a tenth of the time left before it, at most [`REPLY_MARGIN`].
fn writer_deadline(deadline: Instant, now: Instant) -> Instant {
    let left = deadline.saturating_duration_since(now);
    deadline - (left / 10).min(REPLY_MARGIN)
}

/// Drops what the queue refused (or what came after the stop), counting
/// each chunk as a trace lost.
fn drop_all(handoff: Handoff, counters: &Counters, stopped: bool) {
    for chunk in handoff.into_chunks() {
        let spans = chunk.spans.len();
        if stopped {
            counters.dropped_stopped(spans);
        } else {
            counters.dropped_queue_full(spans);
        }
        crate::record::pool::give(chunk.spans);
    }
}

/// The way to the writer thread.
pub(crate) struct AgentQueue {
    /// Finished chunks and batches; application threads only ever
    /// `try_send`.
    chunks: SyncSender<Handoff>,
    /// The threads' batches being filled; `None` without a writer.
    outboxes: Option<Arc<Outboxes>>,
    /// Flush and shutdown requests.
    control: Sender<Control>,
    /// The most spans the queued chunks may hold (`queue_max_spans`).
    max_spans: u64,
    /// The most chunks queued (`queue_capacity`): a batch counts its
    /// chunks, so batching does not multiply what the queue may hold.
    max_chunks: u64,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl AgentQueue {
    /// Starts the writer thread, sharing the tracer's counters and sampler.
    /// Without a thread, chunks are dropped and counted.
    pub(crate) fn start(
        config: &Config,
        counters: &Arc<Counters>,
        sampler: &Arc<Sampler>,
    ) -> AgentQueue {
        let (chunks, chunk_receiver) = std::sync::mpsc::sync_channel(config.queue_capacity);
        let (control, control_receiver) = std::sync::mpsc::channel();
        let outboxes = Arc::new(Outboxes::new());
        let worker = writer::spawn(
            config.clone(),
            Arc::clone(counters),
            Arc::clone(sampler),
            (chunk_receiver, Arc::clone(&outboxes)),
            control_receiver,
        )
        .map_err(|error| {
            crate::util::diagnostics::warn(format_args!(
                "could not start the writer thread ({error}); traces will be dropped"
            ));
        })
        .ok();
        AgentQueue {
            chunks,
            outboxes: worker.is_some().then_some(outboxes),
            control,
            max_spans: config.queue_max_spans as u64,
            max_chunks: config.queue_capacity as u64,
            worker: Mutex::new(worker),
        }
    }

    /// Hands a finished chunk to the writer without ever blocking: into
    /// this thread's outbox when small (a full batch then crosses the
    /// queue), else through the queue on its own. A full queue drops what
    /// it refuses and counts it.
    #[inline]
    pub(crate) fn hand_off(&self, chunk: Chunk, counters: &Counters) {
        let chunk = match &self.outboxes {
            Some(outboxes) => {
                let send = |batch| self.send(Handoff::Batch(batch), counters);
                match outboxes.put(chunk, &counters.stopped, send) {
                    Put::Waiting | Put::Sent => return,
                    Put::Alone(chunk) => chunk,
                }
            }
            None => chunk,
        };
        self.send(Handoff::One(chunk), counters);
    }

    /// Puts a chunk or batch in the queue, or drops and counts it.
    fn send(&self, handoff: Handoff, counters: &Counters) {
        // The writer polls this queue on its own clock, so a send never
        // wakes a thread: no system call on this path.
        let counted = handoff.spans() as u64;
        let chunks = handoff.chunks() as u64;
        // Counted first, then the stop checked (both SeqCst, as the writer's
        // last drain reads them in the other order): a hand-off that saw no
        // stop is in `queued_spans` before the stopping writer's last look,
        // which waits for it (`Writer::shut_down`).
        let queued = counters.queued_spans.fetch_add(counted, Ordering::SeqCst);
        let queued_chunks = counters.queued_chunks.fetch_add(chunks, Ordering::Relaxed);
        let refuse = |handoff, stopped| {
            counters.queued_spans.fetch_sub(counted, Ordering::Relaxed);
            counters.queued_chunks.fetch_sub(chunks, Ordering::Relaxed);
            drop_all(handoff, counters, stopped);
        };
        if counters.stopped.load(Ordering::SeqCst) {
            refuse(handoff, true);
            return;
        }
        let fits = (queued == 0 || queued + counted <= self.max_spans)
            && queued_chunks + chunks <= self.max_chunks.max(chunks);
        if !fits {
            refuse(handoff, false);
            return;
        }
        match self.chunks.try_send(handoff) {
            Ok(()) => {}
            Err(TrySendError::Full(handoff)) => refuse(handoff, false),
            Err(TrySendError::Disconnected(handoff)) => refuse(handoff, true),
        }
    }

    /// Asks the writer to send what is queued, trying until `deadline`;
    /// whether nothing is left unsent.
    pub(crate) fn flush(&self, deadline: Instant) -> bool {
        let works_to = writer_deadline(deadline, Instant::now());
        self.request(
            |reply| Control::Flush {
                deadline: works_to,
                reply,
            },
            deadline,
        )
    }

    /// The same, then the writer drops what is left (counted) and ends.
    pub(crate) fn shutdown(&self, deadline: Instant) -> bool {
        let works_to = writer_deadline(deadline, Instant::now());
        let delivered = self.request(
            |reply| Control::Shutdown {
                deadline: works_to,
                reply,
            },
            deadline,
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

    /// Sends a request and waits for its answer until `deadline`: the
    /// writer works to a deadline a little before it (see
    /// [`writer_deadline`]), so the caller's time is kept.
    fn request(
        &self,
        message: impl FnOnce(SyncSender<bool>) -> Control,
        deadline: Instant,
    ) -> bool {
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        let wait = deadline.saturating_duration_since(Instant::now());
        self.control.send(message(reply)).is_ok() && done.recv_timeout(wait).unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A flush or stop given `t` returns within `t`: the writer's own
    /// deadline leaves room for its answer.
    #[test]
    fn the_writer_works_to_a_deadline_before_its_callers() {
        let now = Instant::now();
        for (timeout, margin) in [
            (Duration::from_secs(5), REPLY_MARGIN),
            (Duration::from_secs(1), Duration::from_millis(100)),
            (Duration::from_millis(10), Duration::from_millis(1)),
            (Duration::ZERO, Duration::ZERO),
        ] {
            let deadline = now + timeout;
            assert_eq!(
                writer_deadline(deadline, now),
                deadline - margin,
                "{timeout:?}"
            );
        }
    }
}
