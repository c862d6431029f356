//! The span clock: monotonic readings expressed as nanoseconds since the
//! unix epoch, so a span's start needs no conversion and its duration is a
//! subtraction.
//!
//! Every span reads the clock twice, so the clock is much of a span's cost.
//! Where the CPU has a stable time stamp counter (Linux on x86 with an
//! invariant or kernel-validated TSC), `fastant` reads it (about 10 ns here;
//! `clock_gettime` through the vDSO costs about 20 ns); it is what `fastrace`
//! uses. Elsewhere fastant would fall back to the wall clock, which can step
//! backwards, so ddspan uses `std::time::Instant` instead. Both are tied to
//! the unix epoch by one anchor taken at first use.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

/// A monotonic reading, in nanoseconds since the unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(pub(crate) u64);

impl Instant {
    /// Whole seconds since the unix epoch.
    pub(crate) fn unix_seconds(self) -> u64 {
        self.0 / 1_000_000_000
    }
}

struct Anchor {
    tsc: Option<fastant::Anchor>,
    std_instant: std::time::Instant,
    std_unix_nanos: u64,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| Anchor {
    tsc: fastant::is_tsc_available().then(fastant::Anchor::new),
    std_instant: std::time::Instant::now(),
    std_unix_nanos: system_time_nanos(SystemTime::now()),
});

/// Reads the span clock. The TSC path is small enough to inline into every
/// span's start and end; the `Instant` path stays out of line.
#[inline(always)]
pub(crate) fn now() -> Instant {
    match &ANCHOR.tsc {
        Some(tsc) => Instant(fastant::Instant::now().as_unix_nanos(tsc)),
        None => now_without_tsc(),
    }
}

#[inline(never)]
fn now_without_tsc() -> Instant {
    let anchor = &*ANCHOR;
    let elapsed = anchor.std_instant.elapsed().as_nanos();
    Instant(
        anchor
            .std_unix_nanos
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX)),
    )
}

/// Nanoseconds since the unix epoch of a wall-clock time (0 before 1970).
pub(crate) fn system_time_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seconds since the unix epoch, now, from the span clock (no system call).
#[cfg(any(test, feature = "__bench"))]
pub(crate) fn unix_seconds_now() -> u64 {
    now().unix_seconds()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readings_are_close_to_system_time() {
        let system = system_time_nanos(SystemTime::now());
        let span_clock = now().0;
        let skew = system.abs_diff(span_clock);
        assert!(
            skew < 50_000_000,
            "span clock is {skew} ns away from the system clock"
        );
    }

    #[test]
    fn readings_are_monotonic() {
        let mut last = now();
        for _ in 0..10_000 {
            let next = now();
            assert!(next >= last);
            last = next;
        }
    }
}
