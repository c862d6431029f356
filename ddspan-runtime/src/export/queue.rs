//! The application side of the agent writer: the bounded queue a finished
//! chunk is handed to, and the flush and shutdown requests. Handing a chunk
//! over is one `try_send`: no allocation, no system call (the writer polls
//! the queue on its own clock), never a wait.

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
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

/// The way to the writer thread.
pub(crate) struct AgentQueue {
    /// Finished chunks; application threads only ever `try_send`.
    chunks: SyncSender<Chunk>,
    /// Flush and shutdown requests.
    control: Sender<Control>,
    /// The most spans the queued chunks may hold (`queue_max_spans`).
    max_spans: u64,
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
        let worker = writer::spawn(
            config.clone(),
            Arc::clone(counters),
            Arc::clone(sampler),
            chunk_receiver,
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
            control,
            max_spans: config.queue_max_spans as u64,
            worker: Mutex::new(worker),
        }
    }

    /// Hands a finished chunk to the writer without ever blocking; a full
    /// queue drops the chunk and counts it.
    #[inline]
    pub(crate) fn hand_off(&self, chunk: Chunk, counters: &Counters) {
        // The writer polls this queue on its own clock, so a send never
        // wakes a thread: no system call on this path.
        let spans = chunk.spans.len();
        let counted = spans as u64;
        // Counted first, then the stop checked (both SeqCst, as the writer's
        // last drain reads them in the other order): a chunk whose hand-off
        // saw no stop is in `queued_spans` before the stopping writer's
        // last look, which waits for it (`Writer::shut_down`).
        let queued = counters.queued_spans.fetch_add(counted, Ordering::SeqCst);
        if counters.stopped.load(Ordering::SeqCst) {
            counters.queued_spans.fetch_sub(counted, Ordering::Relaxed);
            counters.dropped_stopped(spans);
            crate::record::pool::give(chunk.spans);
            return;
        }
        let fits = queued == 0 || queued + counted <= self.max_spans;
        let refused = if fits {
            match self.chunks.try_send(chunk) {
                Ok(()) => return,
                Err(TrySendError::Full(chunk)) => Some((chunk, false)),
                Err(TrySendError::Disconnected(chunk)) => Some((chunk, true)),
            }
        } else {
            Some((chunk, false))
        };
        if let Some((chunk, stopped)) = refused {
            counters.queued_spans.fetch_sub(counted, Ordering::Relaxed);
            if stopped {
                counters.dropped_stopped(spans);
            } else {
                counters.dropped_queue_full(spans);
            }
            crate::record::pool::give(chunk.spans);
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
