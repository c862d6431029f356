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

/// The most the shared pool keeps, in bytes of span records and what they
/// hold, while spans are flowing. Buffers circulate between the threads
/// that fill them and the writer: with 1000 error spans a buffer (~500 KiB
/// with their tags), a steady load keeps a few dozen in flight. A pool
/// smaller than that frees the excess on the writer's thread, and the
/// application threads allocate it again: with 8 MiB, an `Err` span cost
/// 1.7× its time, most of it in the allocator's arena lock.
const MAX_POOLED_BYTES: usize = 32 << 20;

/// What the pool keeps once the writer has seen no chunk for a while
/// ([`trim`]): an idle process does not pin a burst's memory.
pub(crate) const IDLE_POOLED_BYTES: usize = 4 << 20;

/// A buffer kept for reuse and what it keeps alive, counted once.
struct Pooled {
    records: Vec<SpanRecord>,
    /// [`bytes_of`] the buffer when it was given back.
    bytes: usize,
}

impl Pooled {
    fn new(records: Vec<SpanRecord>) -> Pooled {
        let bytes = bytes_of(&records);
        Pooled { records, bytes }
    }
}

/// Buffers any thread may take.
struct SharedPool {
    buffers: Vec<Pooled>,
    /// What `buffers` hold, in bytes of records.
    bytes: usize,
}

impl SharedPool {
    fn pop(&mut self) -> Option<Pooled> {
        let buffer = self.buffers.pop()?;
        self.bytes -= buffer.bytes;
        Some(buffer)
    }

    /// Keeps `buffer` if it is worth it and there is room; else hands it back.
    fn push(&mut self, buffer: Pooled) -> Option<Pooled> {
        if !worth_keeping(&buffer.records)
            || self.buffers.len() >= MAX_POOLED
            || self.bytes + buffer.bytes > MAX_POOLED_BYTES
        {
            return Some(buffer);
        }
        self.bytes += buffer.bytes;
        self.buffers.push(buffer);
        None
    }

    /// Takes out what it holds beyond `keep` bytes, newest first.
    fn trim(&mut self, keep: usize) -> Vec<Pooled> {
        let mut excess = Vec::new();
        while self.bytes > keep {
            let Some(buffer) = self.pop() else {
                break;
            };
            excess.push(buffer);
        }
        excess
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
    buffers: Vec<Pooled>,
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
fn keep_locally(cache: &mut Kept, buffer: Pooled) -> Option<Pooled> {
    if cache.buffers.len() < BATCH
        && buffer.records.capacity() <= MAX_LOCAL_CAPACITY
        && cache.budget.keep(buffer.bytes)
    {
        cache.buffers.push(buffer);
        return None;
    }
    Some(buffer)
}

fn take_locally(cache: &mut Kept) -> Option<Pooled> {
    let buffer = cache.buffers.pop()?;
    cache.budget.release(buffer.bytes);
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
        Some(Pooled { mut records, .. }) => {
            crate::record::recycle(&mut records);
            records
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
    let buffer = Pooled::new(buffer);
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
            rest.extend(pool.push(Pooled::new(buffer)));
        }
        rest
    };
    // Freed outside the lock.
    rest.clear();
}

/// Frees what the shared pool holds beyond `keep` bytes, outside its lock:
/// the writer's call when no chunk came for a while, so that a burst's
/// buffers do not stay pinned in an idle process. The frees happen on the
/// caller's thread, which is why only an idle writer calls it.
pub(crate) fn trim(keep: usize) {
    let excess = match shared_pool() {
        Some(mut pool) => pool.trim(keep),
        None => return,
    };
    drop(excess);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::tag::TagValue;

    /// The tests that use the process's pool take turns: one draining it
    /// while another counts what it gave would see the other's buffers go.
    static GLOBAL_POOL: Mutex<()> = Mutex::new(());

    fn turn() -> MutexGuard<'static, ()> {
        GLOBAL_POOL
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Other tests share the pool: take everything, from this thread's
    /// cache and the shared pool.
    fn take_all() -> Vec<Vec<SpanRecord>> {
        (0..MAX_POOLED + BATCH).map(|_| take()).collect()
    }

    #[test]
    fn buffers_come_back_empty_with_their_capacity() {
        let _turn = turn();
        let mut buffer = Vec::with_capacity(100);
        buffer.push(SpanRecord::named(1, 0, "op".into()));
        give(buffer);
        let taken = take_all();
        assert!(taken.iter().all(Vec::is_empty));
        assert!(taken.iter().any(|b| b.capacity() >= 100));
    }

    #[test]
    fn huge_buffers_are_not_kept() {
        let _turn = turn();
        give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        let taken = take_all();
        assert!(taken.iter().all(|b| b.capacity() <= MAX_POOLED_CAPACITY));
    }

    #[test]
    fn buffers_given_together_come_back() {
        let _turn = turn();
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
        let _turn = turn();
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
                .any(|b| b.records.capacity() > MAX_LOCAL_CAPACITY)
        });
        assert!(!cached_big);
    }

    #[test]
    fn a_thread_that_exits_leaves_its_buffers_to_the_others() {
        let _turn = turn();
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
            pooled.push(buffer.records);
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
            refused += usize::from(
                pool.push(Pooled::new(Vec::with_capacity(MAX_POOLED_CAPACITY)))
                    .is_some(),
            );
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
            record.set_tag("payload".into(), TagValue::from("x".repeat(200_000)));
            buffer.push(record);
            buffer
        };
        assert!(bytes_of(&heavy()) > 200_000);
        let mut kept = 0;
        for _ in 0..MAX_POOLED {
            if pool.push(Pooled::new(heavy())).is_none() {
                kept += 1;
            }
        }
        assert!(pool.bytes <= MAX_POOLED_BYTES, "{}", pool.bytes);
        assert!(
            kept <= MAX_POOLED_BYTES / 200_000,
            "{kept} heavy buffers kept"
        );
        while let Some(buffer) = pool.pop() {
            drop(buffer);
        }
        assert_eq!(pool.bytes, 0, "what was counted in is counted out");
    }

    /// What the writer gives back in one batch of full error-span buffers
    /// is kept: what the pool refuses is freed on the writer's thread and
    /// allocated again by the application's (the cost that made an `Err`
    /// span 1.7× slower when the bound first counted the spans' tags).
    #[test]
    fn a_writer_batch_of_error_span_buffers_is_kept() {
        let mut pool = SharedPool {
            buffers: Vec::new(),
            bytes: 0,
        };
        let error_spans = || {
            let mut buffer = Vec::with_capacity(1024);
            for id in 1..=1000 {
                let mut record = SpanRecord::named(id, 0, "op".into());
                record.set_tag("error.message".into(), TagValue::from("x".repeat(40)));
                record.set_tag("error.type".into(), TagValue::from("std::io::Error"));
                record.set_tag("error.stack".into(), TagValue::from("y".repeat(200)));
                buffer.push(record);
            }
            Pooled::new(buffer)
        };
        let refused = (0..32)
            .filter(|_| pool.push(error_spans()).is_some())
            .count();
        assert_eq!(refused, 0, "{} bytes held", pool.bytes);
    }

    /// An idle writer's trim leaves at most what an idle process keeps.
    #[test]
    fn a_trim_frees_what_is_over_the_idle_bound() {
        let mut pool = SharedPool {
            buffers: Vec::new(),
            bytes: 0,
        };
        while pool
            .push(Pooled::new(Vec::with_capacity(MAX_POOLED_CAPACITY)))
            .is_none()
        {}
        assert!(pool.bytes > IDLE_POOLED_BYTES);
        let held = pool.bytes;
        let freed: usize = pool.trim(IDLE_POOLED_BYTES).iter().map(|b| b.bytes).sum();
        assert!(pool.bytes <= IDLE_POOLED_BYTES, "{}", pool.bytes);
        assert_eq!(
            pool.bytes + freed,
            held,
            "what was counted in is counted out"
        );
        assert!(!pool.buffers.is_empty(), "an idle pool still keeps some");
    }

    #[test]
    fn fresh_buffers_have_room() {
        let _turn = turn();
        assert!(take().capacity() >= FRESH_CAPACITY);
    }
}
