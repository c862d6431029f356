//! Recycled buffers of finished spans.
//!
//! Finished spans travel to the writer thread in `Vec`s. Freeing each one
//! there and allocating a fresh one here makes the allocator trim and
//! re-fault pages for every chunk: measured at about 20 ns per span in the
//! child-span benchmark. The writer hands emptied buffers back instead; the
//! pool's lock is taken once per chunk, never per span.

use std::sync::{Mutex, PoisonError};

use crate::record::SpanRecord;

/// Buffers kept for reuse; more are freed.
const MAX_POOLED: usize = 256;
/// Bigger buffers are freed rather than kept, so one huge trace does not pin
/// its memory for the life of the process.
const MAX_POOLED_CAPACITY: usize = 8 * 1024;

static POOL: Mutex<Vec<Vec<SpanRecord>>> = Mutex::new(Vec::new());

/// An empty buffer, recycled when one is available. The spans a returned
/// buffer still holds are dropped here, on the thread that allocated their
/// tags: freeing them on the writer's thread contends for this thread's
/// allocator arena and makes it trim and re-fault pages.
pub(crate) fn take() -> Vec<SpanRecord> {
    let mut buffer = POOL
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .pop()
        .unwrap_or_default();
    buffer.clear();
    buffer
}

/// Returns a buffer for reuse, with the spans it holds (see [`take`]).
pub(crate) fn give(buffer: Vec<SpanRecord>) {
    if buffer.capacity() == 0 || buffer.capacity() > MAX_POOLED_CAPACITY {
        return;
    }
    let mut pool = POOL.lock().unwrap_or_else(PoisonError::into_inner);
    if pool.len() < MAX_POOLED {
        pool.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_come_back_empty_with_their_capacity() {
        let mut buffer = Vec::with_capacity(100);
        buffer.push(SpanRecord::named(1, 0, "op".into()));
        give(buffer);
        // Other tests may use the pool concurrently: look for our buffer's shape.
        let taken: Vec<Vec<SpanRecord>> = (0..MAX_POOLED).map(|_| take()).collect();
        assert!(taken.iter().all(Vec::is_empty));
        assert!(taken.iter().any(|b| b.capacity() >= 100));
    }

    #[test]
    fn huge_buffers_are_not_kept() {
        give(Vec::with_capacity(MAX_POOLED_CAPACITY + 1));
        let taken: Vec<Vec<SpanRecord>> = (0..MAX_POOLED).map(|_| take()).collect();
        assert!(taken.iter().all(|b| b.capacity() <= MAX_POOLED_CAPACITY));
    }
}
