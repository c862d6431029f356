//! How much memory threads keep for reuse, bounded across the process.
//!
//! Each thread keeps emptied span buffers (`pool.rs`) and span extras
//! (`span_record.rs`) so that its next spans allocate nothing. Bounded per
//! thread only, 300 threads kept well over 100 MiB. A thread now reserves
//! room from one process-wide budget, in grains (one atomic operation per
//! grain, never per span), and gives its reservation back when it exits.
//! Past the budget, threads free what they would have kept.

use std::sync::atomic::{AtomicUsize, Ordering};

/// What all threads together may keep for reuse.
pub(crate) const PROCESS_BUDGET: usize = 16 << 20;
/// What a thread reserves at a time.
const GRAIN: usize = 64 << 10;

static RESERVED: AtomicUsize = AtomicUsize::new(0);

/// One thread-local cache's share of [`PROCESS_BUDGET`]: kept inside the
/// cache's own thread-local, so counting costs no other lookup; what it
/// reserved goes back when the cache drops (thread exit).
#[derive(Debug, Default)]
pub(crate) struct Reservation {
    /// Reserved from the process budget.
    reserved: usize,
    /// Kept now by the cache.
    used: usize,
}

impl Reservation {
    /// An empty reservation (for `const` thread-local initialisers).
    pub(crate) const fn new() -> Reservation {
        Reservation {
            reserved: 0,
            used: 0,
        }
    }

    /// Whether the cache may keep `bytes` more; if so they are counted
    /// until [`Reservation::release`]d.
    #[inline]
    pub(crate) fn keep(&mut self, bytes: usize) -> bool {
        let used = self.used + bytes;
        if used > self.reserved && !self.reserve(used - self.reserved) {
            return false;
        }
        self.used = used;
        true
    }

    #[cold]
    fn reserve(&mut self, missing: usize) -> bool {
        let more = missing.div_ceil(GRAIN) * GRAIN;
        let reserved = RESERVED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |all| {
            (all + more <= PROCESS_BUDGET).then_some(all + more)
        });
        if reserved.is_err() {
            return false;
        }
        self.reserved += more;
        true
    }

    /// The cache no longer keeps `bytes` (taken back into use, or freed).
    #[inline]
    pub(crate) fn release(&mut self, bytes: usize) {
        self.used = self.used.saturating_sub(bytes);
    }
}

impl Drop for Reservation {
    /// Thread exit: the reservation goes back to the process.
    fn drop(&mut self) {
        RESERVED.fetch_sub(self.reserved, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 300 threads each asking for 1 MiB, all alive at once: what they
    /// were allowed to keep.
    fn three_hundred_threads() -> usize {
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(300));
        let threads: Vec<_> = (0..300)
            .map(|_| {
                let barrier = std::sync::Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let mut reservation = Reservation::new();
                    let kept = (0..256).filter(|_| reservation.keep(4096)).count() * 4096;
                    barrier.wait();
                    kept
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|thread| thread.join().expect("a thread"))
            .sum()
    }

    /// The tests that fill the process's budget and those that need room
    /// in it take turns (on a loaded machine the 300 threads held it all
    /// while the other test asked for 1000 bytes).
    static BUDGET: std::sync::Mutex<()> = std::sync::Mutex::new(());

    fn turn() -> std::sync::MutexGuard<'static, ()> {
        BUDGET
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn many_threads_keep_no_more_than_the_process_budget_and_give_it_back() {
        let _turn = turn();
        for round in 0..3 {
            let total = three_hundred_threads();
            assert!(total <= PROCESS_BUDGET, "round {round}: {total}");
            // Other tests of this binary may hold a little of the budget;
            // the threads of the round before gave theirs back on exit.
            assert!(total > PROCESS_BUDGET / 4, "round {round}: {total}");
        }
    }

    #[test]
    fn released_room_is_kept_again_without_reserving_more() {
        let _turn = turn();
        let mut reservation = Reservation::new();
        assert!(reservation.keep(1000));
        let before = reservation.reserved;
        reservation.release(1000);
        assert!(reservation.keep(1000));
        assert_eq!(reservation.reserved, before);
    }
}
