//! Recycled buffers of finished spans.
//!
//! Finished spans travel to the writer thread in `Vec`s. Freeing each one
//! there and allocating a fresh one here defeats the allocator's per-thread
//! cache (every new buffer took `malloc`'s slow path) and makes it trim and
//! re-fault pages: measured at about 20 ns per span in the child-span
//! benchmark. The writer hands emptied buffers back instead. Each thread
//! keeps a few in its own cache and refills it from the shared pool in
//! batches, so the shared lock is taken once per [`BATCH`] chunks, never per
//! span.

use std::cell::RefCell;
use std::sync::{Mutex, MutexGuard, TryLockError};

use crate::record::reuse_budget;
use crate::record::SpanRecord;

/// Buffers kept in the shared pool; more are freed.
const MAX_POOLED: usize = 256;
/// How many a thread moves from the shared pool to its own cache at once
/// (and the most its cache keeps).
const BATCH: usize = 8;
/// Bigger buffers are freed rather than kept, so one huge trace does not pin
/// its memory for the life of the process.
const MAX_POOLED_CAPACITY: usize = 8 * 1024;
/// Bigger buffers go to the shared pool rather than a thread's cache, so
/// a thread keeps at most [`BATCH`] × 64 KiB.
const MAX_LOCAL_CAPACITY: usize = 1024;
/// A new buffer's room: a fresh one never grows through 1, 2, 4 spans.
const FRESH_CAPACITY: usize = 8;

/// The most the shared pool keeps, in bytes of span records.
const MAX_POOLED_BYTES: usize = 8 << 20;

/// Buffers any thread may take.
struct SharedPool {
    buffers: Vec<Vec<SpanRecord>>,
    /// What `buffers` hold, in bytes of records.
    bytes: usize,
}

impl SharedPool {
    fn pop(&mut self) -> Option<Vec<SpanRecord>> {
        let buffer = self.buffers.pop()?;
        self.bytes -= bytes_of(&buffer);
        Some(buffer)
    }

    /// Keeps `buffer` if it is worth it and there is room; else hands it back.
    fn push(&mut self, buffer: Vec<SpanRecord>) -> Option<Vec<SpanRecord>> {
        let bytes = bytes_of(&buffer);
        if !worth_keeping(&buffer)
            || self.buffers.len() >= MAX_POOLED
            || self.bytes + bytes > MAX_POOLED_BYTES
        {
            return Some(buffer);
        }
        self.bytes += bytes;
        self.buffers.push(buffer);
        None
    }
}

static BUFFERS: Mutex<SharedPool> = Mutex::new(SharedPool {
    buffers: Vec::new(),
    bytes: 0,
});

/// What a buffer keeps alive: its room, and what the records still in it
/// hold (a buffer comes back from the writer with its spans, dropped only
/// when a thread takes it: see [`take`]).
fn bytes_of(buffer: &Vec<SpanRecord>) -> usize {
    buffer.capacity() * std::mem::size_of::<SpanRecord>()
        + buffer.iter().map(SpanRecord::retained_bytes).sum::<usize>()
}

/// The shared pool, if its lock is free now. Never waits: a busy pool is
/// treated as empty (take) or full (give). Above all, the child of a `fork`
/// may find the lock held by a thread it does not have, for ever.
fn shared_pool() -> Option<MutexGuard<'static, SharedPool>> {
    match BUFFERS.try_lock() {
        Ok(pool) => Some(pool),
        Err(TryLockError::Poisoned(poisoned)) => Some(poisoned.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    }
}

/// [`shared_pool`], tried a few times (off the application's threads: the
/// writer returning buffers, a thread's exit): another thread holds the lock
/// for microseconds at a time, and in a forked child it may never be free.
fn shared_pool_patiently() -> Option<MutexGuard<'static, SharedPool>> {
    for _ in 0..100 {
        if let Some(pool) = shared_pool() {
            return Some(pool);
        }
        std::thread::yield_now();
    }
    None
}

/// This thread's buffers, at most [`BATCH`], within its share of the
/// process's reuse budget (`reuse_budget.rs`).
struct LocalCache(RefCell<Kept>);

/// A thread's buffers and what they hold of the process's reuse budget.
struct Kept {
    buffers: Vec<Vec<SpanRecord>>,
    budget: reuse_budget::Reservation,
}

impl Drop for LocalCache {
    /// Thread exit: the buffers go to the shared pool, for other threads.
    fn drop(&mut self) {
        let buffers = std::mem::take(&mut self.0.get_mut().buffers);
        if let Some(mut pool) = shared_pool_patiently() {
            for buffer in buffers {
                let _ = pool.push(buffer);
            }
        }
    }
}

thread_local! {
    static LOCAL: LocalCache = const {
        LocalCache(RefCell::new(Kept {
            buffers: Vec::new(),
            budget: reuse_budget::Reservation::new(),
        }))
    };
}

/// Puts `buffer` in this thread's cache if it has room and the budget
/// allows; else hands it back.
fn keep_locally(cache: &mut Kept, buffer: Vec<SpanRecord>) -> Option<Vec<SpanRecord>> {
    if cache.buffers.len() < BATCH
        && buffer.capacity() <= MAX_LOCAL_CAPACITY
        && cache.budget.keep(bytes_of(&buffer))
    {
        cache.buffers.push(buffer);
        return None;
    }
    Some(buffer)
}

fn take_locally(cache: &mut Kept) -> Option<Vec<SpanRecord>> {
    let buffer = cache.buffers.pop()?;
    cache.budget.release(bytes_of(&buffer));
    Some(buffer)
}

/// An empty buffer, recycled when one is available: from this thread's
/// cache, refilled from the shared pool when empty. The spans a returned
/// buffer still holds are dropped here, on the thread that allocated their
/// tags: freeing them on the writer's thread contends for this thread's
/// allocator arena and makes it trim and re-fault pages.
pub(crate) fn take() -> Vec<SpanRecord> {
    let recycled = LOCAL
        .try_with(|cache| {
            let mut cache = cache.0.try_borrow_mut().ok()?;
            if cache.buffers.is_empty() {
                let mut shared = shared_pool()?;
                while cache.buffers.len() < BATCH {
                    let Some(buffer) = shared.pop() else {
                        break;
                    };
                    if let Some(buffer) = keep_locally(&mut cache, buffer) {
                        // Too big (or over budget) to keep here: this take's.
                        return Some(buffer);
                    }
                }
            }
            take_locally(&mut cache)
        })
        .ok()
        .flatten();
    match recycled {
        Some(mut buffer) => {
            crate::record::recycle(&mut buffer);
            buffer
        }
        None => Vec::with_capacity(FRESH_CAPACITY),
    }
}

/// Whether a buffer is kept for reuse: it has room, and not so much that
/// keeping it would pin a huge trace's memory.
fn worth_keeping(buffer: &Vec<SpanRecord>) -> bool {
    (1..=MAX_POOLED_CAPACITY).contains(&buffer.capacity())
}

/// Returns a buffer for reuse, with the spans it holds (see [`take`]):
/// to this thread's cache when it has room (no lock), else to the shared
/// pool. For application threads; the writer uses [`give_all`].
pub(crate) fn give(buffer: Vec<SpanRecord>) {
    if !worth_keeping(&buffer) {
        return;
    }
    let buffer = match LOCAL.try_with(|cache| match cache.0.try_borrow_mut() {
        Ok(mut cache) => keep_locally(&mut cache, buffer),
        Err(_) => Some(buffer),
    }) {
        Ok(None) => return,
        Ok(Some(buffer)) => buffer,
        // Thread teardown: the buffer went with the closure, freed.
        Err(_) => return,
    };
    if let Some(mut pool) = shared_pool() {
        // What the pool has no room for is freed here.
        let _ = pool.push(buffer);
    }
}

/// Returns buffers for reuse under one lock, leaving `buffers` empty (its
/// own room kept). What the pool has no room for is freed.
pub(crate) fn give_all(buffers: &mut Vec<Vec<SpanRecord>>) {
    let mut rest = {
        let Some(mut pool) = shared_pool_patiently() else {
            buffers.clear();
            return;
        };
        let mut rest = Vec::new();
        for buffer in buffers.drain(..) {
            rest.extend(pool.push(buffer));
        }
        rest
    };
    // Freed outside the lock.
    rest.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Other tests share the pool: take everything, from this thread's
    /// cache and the shared pool.
    fn take_all() -> Vec<Vec<SpanRecord>> {
        (0..MAX_POOLED + BATCH).map(|_| take()).collect()
    }

    #[test]
    fn buffers_come_back_empty_with_their_capacity() {
        let mut buffer = Vec::with_capacity(100);
        buffer.push(SpanRecord::named(1, 0, "op".into()));
        give(buffer);
        let taken = take_all();
        assert!(taken.iter().all(Vec::is_empty));
        assert!(taken.iter().any(|b| b.capacity() >= 100));
    }

    #[test]
    fn huge_buffers_are_not_kept() {
        give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        let taken = take_all();
        assert!(taken.iter().all(|b| b.capacity() <= MAX_POOLED_CAPACITY));
    }

    #[test]
    fn buffers_given_together_come_back() {
        let mut buffers: Vec<Vec<SpanRecord>> = (0..3).map(|_| Vec::with_capacity(77)).collect();
        buffers.push(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        give_all(&mut buffers);
        assert!(buffers.is_empty());
        let taken = take_all();
        assert!(taken.iter().filter(|b| b.capacity() == 77).count() >= 3);
        assert!(taken.iter().all(|b| b.capacity() <= MAX_POOLED_CAPACITY));
    }

    #[test]
    fn a_thread_caches_only_small_buffers() {
        give_all(&mut vec![
            Vec::with_capacity(MAX_LOCAL_CAPACITY + 1),
            Vec::with_capacity(10),
        ]);
        // Whatever this thread takes next, its cache holds no big buffer.
        let _taken = take();
        let cached_big = LOCAL.with(|cache| {
            cache
                .0
                .borrow()
                .buffers
                .iter()
                .any(|b| b.capacity() > MAX_LOCAL_CAPACITY)
        });
        assert!(!cached_big);
    }

    #[test]
    fn a_thread_that_exits_leaves_its_buffers_to_the_others() {
        let mut pooled = Vec::new();
        std::thread::spawn(|| {
            for _ in 0..BATCH {
                give(Vec::with_capacity(79));
            }
        })
        .join()
        .expect("a thread");
        // Other tests share the pool: look for the exited thread's buffers,
        // and put the others back.
        while let Some(buffer) = shared_pool().and_then(|mut pool| pool.pop()) {
            pooled.push(buffer);
        }
        let (ours, others): (Vec<_>, Vec<_>) = pooled.into_iter().partition(|b| b.capacity() == 79);
        give_all(&mut others.into_iter().collect());
        let pooled = ours;
        // (A test running at the same time may have taken some.)
        let returned = pooled.iter().filter(|b| b.capacity() == 79).count();
        assert!(returned > 0, "none of the exited thread's buffers returned");
    }

    #[test]
    fn the_shared_pool_keeps_a_bounded_number_of_bytes() {
        let mut pool = SharedPool {
            buffers: Vec::new(),
            bytes: 0,
        };
        let mut refused = 0;
        for _ in 0..MAX_POOLED {
            refused += usize::from(pool.push(Vec::with_capacity(MAX_POOLED_CAPACITY)).is_some());
        }
        assert!(pool.bytes <= MAX_POOLED_BYTES);
        assert!(refused > 0, "bytes bound the pool before its count does");
    }

    /// A buffer back from the writer still holds its spans (and their
    /// tags): the pool's bound counts them, not only the buffer's room.
    #[test]
    fn the_pool_bound_counts_what_the_spans_in_a_buffer_hold() {
        let mut pool = SharedPool {
            buffers: Vec::new(),
            bytes: 0,
        };
        let heavy = || {
            let mut buffer = Vec::with_capacity(1);
            let mut record = SpanRecord::named(1, 0, "op".into());
            record.set_tag(
                "payload".into(),
                crate::record::tag::TagValue::from("x".repeat(20_000)),
            );
            buffer.push(record);
            buffer
        };
        assert!(bytes_of(&heavy()) > 20_000);
        let mut kept = 0;
        for _ in 0..1000 {
            if pool.push(heavy()).is_none() {
                kept += 1;
            }
        }
        assert!(pool.bytes <= MAX_POOLED_BYTES, "{}", pool.bytes);
        assert!(kept < 1000 * 64 / 20_000 + 500, "{kept} heavy buffers kept");
        while let Some(buffer) = pool.pop() {
            drop(buffer);
        }
        assert_eq!(pool.bytes, 0, "what was counted in is counted out");
    }

    #[test]
    fn fresh_buffers_have_room() {
        assert!(take().capacity() >= FRESH_CAPACITY);
    }
}
