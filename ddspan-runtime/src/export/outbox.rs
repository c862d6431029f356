//! Per-thread batches of small finished chunks, on their way to the writer.
//!
//! Handing every chunk to the writer's queue on its own cost a one-span
//! trace a `try_send` and a shared span count whose cache line the writer
//! also writes: about a fifth of a root span's time, and under 300 threads
//! the queue's contended head. Small chunks now wait in an outbox of their
//! thread (a mutex only its thread and the writer take) and cross as one
//! batch of up to [`BATCH_CHUNKS`] chunks or [`BATCH_SPANS`] spans. The
//! writer also sweeps every outbox each time it drains the queue, so a
//! chunk waits no longer than it did in the queue (one poll), and a flush
//! or stop sees every chunk finished before it.
//!
//! Nobody waits for an outbox: the thread tries its lock and hands the
//! chunk over on its own when the writer holds it, and the writer leaves a
//! busy outbox for its next sweep (a flush or stop tries a while longer).
//! Bounded: at most [`BATCH_SPANS`] + [`DIRECT_SPANS`] spans an outbox.
//! When the thread ends, its outbox goes with the writer's next sweep.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, TryLockError};
use std::time::Instant;

use crate::record::Chunk;

/// Chunks of at least this many spans go to the queue on their own: the
/// hand-off is a small part of their cost, and the queue's span bound
/// applies to them at once.
pub(crate) const DIRECT_SPANS: usize = 64;
/// A batch leaves when it holds this many chunks...
pub(crate) const BATCH_CHUNKS: usize = 32;
/// ...or this many spans.
pub(crate) const BATCH_SPANS: usize = 256;

/// What crosses the writer's queue: a chunk, or a thread's batch.
pub(crate) enum Handoff {
    One(Chunk),
    Batch(Vec<Chunk>),
}

impl Handoff {
    /// The spans it carries.
    pub(crate) fn spans(&self) -> usize {
        match self {
            Handoff::One(chunk) => chunk.spans.len(),
            Handoff::Batch(chunks) => chunks.iter().map(|c| c.spans.len()).sum(),
        }
    }

    /// The chunks it carries.
    pub(crate) fn chunks(&self) -> usize {
        match self {
            Handoff::One(_) => 1,
            Handoff::Batch(chunks) => chunks.len(),
        }
    }

    /// Its chunks, in the order they were handed over.
    pub(crate) fn into_chunks(self) -> impl Iterator<Item = Chunk> {
        let (one, batch) = match self {
            Handoff::One(chunk) => (Some(chunk), Vec::new()),
            Handoff::Batch(chunks) => (None, chunks),
        };
        one.into_iter().chain(batch)
    }
}

/// What became of a chunk put in an outbox.
pub(crate) enum Put {
    /// It waits in the outbox.
    Waiting,
    /// It filled a batch, which went to `send`.
    Sent,
    /// It is to be handed over on its own: a big chunk, the tracer
    /// stopping, an outbox busy or gone (thread teardown).
    Alone(Chunk),
}

/// One thread's pending chunks.
#[derive(Default)]
struct Outbox {
    pending: Mutex<Pending>,
}

#[derive(Default)]
struct Pending {
    chunks: Vec<Chunk>,
    spans: usize,
}

impl Pending {
    fn take(&mut self) -> Vec<Chunk> {
        self.spans = 0;
        std::mem::take(&mut self.chunks)
    }
}

/// Every outbox of one tracer's writer.
pub(crate) struct Outboxes {
    /// Tells this tracer's outboxes from those of a tracer before it (or
    /// of the parent, in a forked child).
    id: u64,
    all: Mutex<Vec<Arc<Outbox>>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    /// This thread's outbox, and the [`Outboxes`] it belongs to.
    static MINE: RefCell<Option<(u64, Arc<Outbox>)>> = const { RefCell::new(None) };
}

/// A lock tried once: `None` when another thread holds it.
fn try_lock<T>(mutex: &Mutex<T>) -> Option<MutexGuard<'_, T>> {
    match mutex.try_lock() {
        Ok(guard) => Some(guard),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

impl Outboxes {
    pub(crate) fn new() -> Outboxes {
        Outboxes {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            all: Mutex::new(Vec::new()),
        }
    }

    /// Puts a finished chunk in this thread's outbox (see [`Put`]). A full
    /// batch is given to `send` while the outbox is still locked, so that
    /// a flush or the stop, sweeping, finds its chunks either here or
    /// already counted in the queue, never in between. `stopped` is read
    /// first (no outbox is registered with a stopped tracer) and again
    /// under the lock, which the writer's last sweep also takes: a chunk
    /// put in after that sweep sees the stop.
    #[inline]
    pub(crate) fn put(
        &self,
        chunk: Chunk,
        stopped: &AtomicBool,
        send: impl FnOnce(Vec<Chunk>),
    ) -> Put {
        if chunk.spans.len() >= DIRECT_SPANS || stopped.load(Ordering::Relaxed) {
            return Put::Alone(chunk);
        }
        let mut chunk = Some(chunk);
        let put = MINE.try_with(|mine| {
            let mut mine = mine.try_borrow_mut().ok()?;
            if mine.as_ref().is_none_or(|(id, _)| *id != self.id) {
                *mine = Some((self.id, self.register()?));
            }
            let (_, outbox) = mine.as_ref()?;
            let mut pending = try_lock(&outbox.pending)?;
            if stopped.load(Ordering::SeqCst) {
                return None;
            }
            let chunk = chunk.take()?;
            pending.spans += chunk.spans.len();
            pending.chunks.push(chunk);
            if pending.chunks.len() >= BATCH_CHUNKS || pending.spans >= BATCH_SPANS {
                send(pending.take());
                return Some(Put::Sent);
            }
            Some(Put::Waiting)
        });
        match (put, chunk) {
            (_, Some(chunk)) => Put::Alone(chunk),
            (Ok(Some(put)), None) => put,
            // Not reached: the chunk is taken only where `Some` is returned.
            (_, None) => Put::Waiting,
        }
    }

    /// A new outbox for this thread, if the list is free now.
    #[cold]
    fn register(&self) -> Option<Arc<Outbox>> {
        let mut all = try_lock(&self.all)?;
        let outbox = Arc::new(Outbox::default());
        all.push(Arc::clone(&outbox));
        Some(outbox)
    }

    /// Moves every outbox's chunks to `into`, and forgets the outboxes of
    /// threads that ended (once emptied). An outbox its thread holds right
    /// now (for the time of a push) is tried again until `patience` (a
    /// flush, the stop), else left for the next sweep. Whether every
    /// outbox was emptied.
    pub(crate) fn sweep(&self, patience: Option<Instant>, into: &mut VecDeque<Chunk>) -> bool {
        let mut all = self.all.lock().unwrap_or_else(PoisonError::into_inner);
        let mut complete = true;
        all.retain(|outbox| {
            let pending = loop {
                if let Some(pending) = try_lock(&outbox.pending) {
                    break Some(pending);
                }
                if patience.is_none_or(|until| Instant::now() >= until) {
                    break None;
                }
                std::thread::yield_now();
            };
            let Some(mut pending) = pending else {
                complete = false;
                return true;
            };
            into.extend(pending.take());
            // The list's is the last reference: the thread has ended.
            Arc::strong_count(outbox) > 1
        });
        complete
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{SamplingDecision, SpanRecord, Upstream};

    fn chunk(spans: u64) -> Chunk {
        let config = crate::Config::builder().service("svc").build();
        let (core, _) = crate::runtime::TracerCore::capturing(config);
        let decision = SamplingDecision::inherited(1);
        let trace = crate::trace::TraceShared::new(&core, 1, 1, decision, Upstream::none_ref());
        let records = (1..=spans)
            .map(|id| SpanRecord::named(id, 0, "op".into()))
            .collect();
        trace.chunk(records, decision)
    }

    #[test]
    fn small_chunks_wait_for_a_batch_and_big_ones_go_alone() {
        let outboxes = Outboxes::new();
        let running = AtomicBool::new(false);
        let mut sent = Vec::new();
        for _ in 1..BATCH_CHUNKS {
            let put = outboxes.put(chunk(1), &running, |b| sent.push(b.len()));
            assert!(matches!(put, Put::Waiting));
        }
        let put = outboxes.put(chunk(1), &running, |b| sent.push(b.len()));
        assert!(matches!(put, Put::Sent));
        assert_eq!(sent, [BATCH_CHUNKS]);
        assert!(matches!(
            outboxes.put(chunk(DIRECT_SPANS as u64), &running, |_| panic!("no batch")),
            Put::Alone(_)
        ));
        // Spans fill a batch too.
        let mut batches = 0;
        for _ in 0..BATCH_SPANS / 32 {
            outboxes.put(chunk(32), &running, |_| batches += 1);
        }
        assert_eq!(batches, 1);
    }

    #[test]
    fn a_stopped_tracer_takes_no_chunk_into_an_outbox() {
        let outboxes = Outboxes::new();
        let stopped = AtomicBool::new(true);
        assert!(matches!(
            outboxes.put(chunk(1), &stopped, |_| {}),
            Put::Alone(_)
        ));
        let mut swept = VecDeque::new();
        assert!(outboxes.sweep(None, &mut swept));
        assert!(swept.is_empty());
        assert!(
            outboxes.all.lock().unwrap().is_empty(),
            "no outbox registered with a stopped tracer"
        );
    }

    /// A sweep takes what threads left, and forgets the outboxes of threads
    /// that ended; a new tracer's outboxes are apart from the old one's.
    #[test]
    fn a_sweep_takes_every_threads_chunks_and_forgets_ended_threads() {
        let outboxes = Arc::new(Outboxes::new());
        let running = Arc::new(AtomicBool::new(false));
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let (outboxes, running) = (Arc::clone(&outboxes), Arc::clone(&running));
                std::thread::spawn(move || {
                    for _ in 0..3 {
                        assert!(matches!(
                            outboxes.put(chunk(2), &running, |_| {}),
                            Put::Waiting
                        ));
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        let mut swept = VecDeque::new();
        assert!(outboxes.sweep(None, &mut swept));
        assert_eq!(swept.len(), 12);
        assert!(outboxes.all.lock().unwrap().is_empty(), "the threads ended");

        let newer = Outboxes::new();
        assert!(matches!(
            outboxes.put(chunk(1), &running, |_| {}),
            Put::Waiting
        ));
        assert!(matches!(
            newer.put(chunk(1), &running, |_| {}),
            Put::Waiting
        ));
        let (mut old, mut new) = (VecDeque::new(), VecDeque::new());
        outboxes.sweep(None, &mut old);
        newer.sweep(None, &mut new);
        assert_eq!(
            (old.len(), new.len()),
            (1, 1),
            "each tracer's sweep finds its own chunks"
        );
    }
}
