//! How much memory threads keep for reuse, bounded across the process.
//!
//! Each thread keeps emptied span buffers (`pool.rs`) and span extras
//! (`span_record.rs`) so that its next spans allocate nothing. Bounded per
//! thread only, 300 threads kept well over 100 MiB. A thread now reserves
//! room from one process-wide budget, in grains (one atomic operation per
//! grain, never per span), and gives its reservation back when it exits.
//! Past the budget, threads free what they would have kept.

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

/// What all threads together may keep for reuse.
pub(crate) const PROCESS_BUDGET: usize = 16 << 20;
/// What a thread reserves at a time.
const GRAIN: usize = 64 << 10;

static RESERVED: AtomicUsize = AtomicUsize::new(0);

struct Allowance {
    /// Reserved from [`RESERVED`] by this thread.
    reserved: Cell<usize>,
    /// Kept now by this thread.
    used: Cell<usize>,
}

impl Drop for Allowance {
    /// Thread exit: the reservation goes back to the process.
    fn drop(&mut self) {
        RESERVED.fetch_sub(self.reserved.get(), Ordering::Relaxed);
    }
}

thread_local! {
    static ALLOWANCE: Allowance = const {
        Allowance {
            reserved: Cell::new(0),
            used: Cell::new(0),
        }
    };
}

/// Whether this thread may keep `bytes` more for reuse; if so they are
/// counted until [`release`]d.
pub(crate) fn keep(bytes: usize) -> bool {
    ALLOWANCE
        .try_with(|allowance| {
            let used = allowance.used.get() + bytes;
            if used > allowance.reserved.get() {
                let more = (used - allowance.reserved.get()).div_ceil(GRAIN) * GRAIN;
                let reserved = RESERVED.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |all| {
                    (all + more <= PROCESS_BUDGET).then_some(all + more)
                });
                if reserved.is_err() {
                    return false;
                }
                allowance.reserved.set(allowance.reserved.get() + more);
            }
            allowance.used.set(used);
            true
        })
        .unwrap_or(false)
}

/// This thread no longer keeps `bytes` (taken back into use, or freed).
pub(crate) fn release(bytes: usize) {
    let _ = ALLOWANCE.try_with(|allowance| {
        allowance
            .used
            .set(allowance.used.get().saturating_sub(bytes));
    });
}

/// What all threads have reserved now.
#[cfg(test)]
pub(crate) fn reserved() -> usize {
    RESERVED.load(Ordering::Relaxed)
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
                    let kept = (0..256).filter(|_| keep(4096)).count() * 4096;
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

    #[test]
    fn many_threads_keep_no_more_than_the_process_budget_and_give_it_back() {
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
        assert!(keep(1000));
        let before = reserved();
        release(1000);
        assert!(keep(1000));
        assert_eq!(reserved(), before);
        release(1000);
    }
}
