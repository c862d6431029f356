//! The span clock.
//!
//! Every span reads the clock twice, so the clock is most of a span's cost.
//! `fastant` reads the CPU's time stamp counter (about 7 ns) where the
//! kernel's vDSO `clock_gettime` costs about 20 ns, is monotonic across
//! cores after its start-up calibration, and falls back to the system clock
//! where no stable TSC exists. It is what `fastrace` and `minitrace` use.
//! Unix timestamps are derived from one process-wide anchor, off the hot path.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) use fastant::Instant;

static ANCHOR: LazyLock<fastant::Anchor> = LazyLock::new(fastant::Anchor::new);

/// Reads the monotonic span clock.
#[inline]
pub(crate) fn now() -> Instant {
    Instant::now()
}

/// Converts a span clock reading to nanoseconds since the unix epoch.
pub(crate) fn unix_nanos(instant: Instant) -> u64 {
    instant.as_unix_nanos(&ANCHOR)
}

/// Nanoseconds since the unix epoch of a wall-clock time (0 before 1970).
pub(crate) fn system_time_nanos(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// Seconds since the unix epoch, now, from the span clock (no system call).
pub(crate) fn unix_seconds_now() -> u64 {
    unix_nanos(now()) / 1_000_000_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_nanos_is_close_to_system_time() {
        let system = system_time_nanos(SystemTime::now());
        let span_clock = unix_nanos(now());
        let skew = system.abs_diff(span_clock);
        assert!(
            skew < 50_000_000,
            "span clock is {skew} ns away from the system clock"
        );
    }

    #[test]
    fn readings_are_monotonic() {
        let a = now();
        let b = now();
        assert!(b >= a);
    }
}
