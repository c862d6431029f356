//! The span clock: monotonic readings expressed as nanoseconds since the
//! unix epoch, so a span's start needs no conversion and its duration is a
//! subtraction.
//!
//! Every span reads the clock twice, so the clock is much of a span's cost.
//! Where the CPU has a stable time stamp counter (an invariant TSC, or one
//! the Linux kernel uses as its clock source), reading it costs about 10 ns
//! here against about 20 ns for `clock_gettime` through the vDSO. Elsewhere,
//! and until the TSC is calibrated, the clock is `std::time::Instant`. Both
//! are tied to the unix epoch by one anchor taken at first use.
//!
//! Calibration costs no process anything at start: it used to be
//! `fastant`'s, which busy-waits for 20 ms or more in a constructor before
//! `main` of every binary that links it, tracer started or not. Here it is
//! two samples of (TSC, `Instant`) taken [`CALIBRATION_SPAN`] apart: the
//! first when the tracer starts, the second by the first clock reading
//! after that span has passed. The TSC clock is anchored on the `Instant`
//! clock at that moment, so a span that started before the switch and
//! ends after it keeps a true duration.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// How far apart the two calibration samples are. A sample is exact to
/// about 100 ns, so the frequency is to a few parts in ten million: a
/// second-long span is off by well under a microsecond.
const CALIBRATION_SPAN: Duration = Duration::from_millis(200);

/// A monotonic reading, in nanoseconds since the unix epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Instant(pub(crate) u64);

impl Instant {
    /// Whole seconds since the unix epoch.
    pub(crate) fn unix_seconds(self) -> u64 {
        self.0 / 1_000_000_000
    }
}

/// Where the `Instant` clock meets the unix epoch.
struct Anchor {
    std_instant: std::time::Instant,
    std_unix_nanos: u64,
}

static ANCHOR: LazyLock<Anchor> = LazyLock::new(|| Anchor {
    std_instant: std::time::Instant::now(),
    std_unix_nanos: system_time_nanos(SystemTime::now()),
});

impl Anchor {
    fn unix_nanos(&self, at: std::time::Instant) -> u64 {
        let elapsed = at.saturating_duration_since(self.std_instant).as_nanos();
        self.std_unix_nanos
            .saturating_add(u64::try_from(elapsed).unwrap_or(u64::MAX))
    }
}

/// The calibrated TSC clock. Its fields are written once, before `ready`
/// is set (release); a reader that sees `ready` (acquire) sees them.
struct TscClock {
    ready: AtomicBool,
    /// The TSC at the anchor.
    cycles: AtomicU64,
    /// Nanoseconds since the unix epoch at the anchor.
    unix_nanos: AtomicU64,
    /// Nanoseconds per cycle, as `f64` bits.
    nanos_per_cycle: AtomicU64,
}

static TSC: TscClock = TscClock {
    ready: AtomicBool::new(false),
    cycles: AtomicU64::new(0),
    unix_nanos: AtomicU64::new(0),
    nanos_per_cycle: AtomicU64::new(0),
};

/// When the second sample is due, in nanoseconds since the anchor's
/// `Instant` (`u64::MAX`: not due, calibration not begun or over).
static SECOND_SAMPLE_DUE: AtomicU64 = AtomicU64::new(u64::MAX);

/// The first sample, between the two steps of calibration.
static FIRST_SAMPLE: Mutex<Option<Sample>> = Mutex::new(None);

/// A TSC reading and the `Instant` it was taken at.
#[derive(Clone, Copy)]
struct Sample {
    cycles: u64,
    at: std::time::Instant,
    /// How far `at` may be from the true moment of `cycles`.
    error: Duration,
}

/// Reads the span clock. The TSC path is small enough to inline into every
/// span's start and end; the `Instant` path stays out of line.
#[inline(always)]
pub(crate) fn now() -> Instant {
    if TSC.ready.load(Ordering::Acquire) {
        if let Some(cycles) = tsc::read() {
            return from_cycles(cycles);
        }
    }
    now_without_tsc()
}

#[inline(always)]
fn from_cycles(cycles: u64) -> Instant {
    let anchor_cycles = TSC.cycles.load(Ordering::Relaxed);
    let anchor_nanos = TSC.unix_nanos.load(Ordering::Relaxed);
    let nanos_per_cycle = f64::from_bits(TSC.nanos_per_cycle.load(Ordering::Relaxed));
    // Signed: another core's counter may read a few cycles behind the anchor.
    let cycles = cycles.wrapping_sub(anchor_cycles) as i64;
    let offset = (cycles as f64 * nanos_per_cycle) as i64;
    Instant(anchor_nanos.saturating_add_signed(offset))
}

#[inline(never)]
fn now_without_tsc() -> Instant {
    let anchor = &*ANCHOR;
    let at = std::time::Instant::now();
    let since_anchor = at.saturating_duration_since(anchor.std_instant).as_nanos();
    let since_anchor = u64::try_from(since_anchor).unwrap_or(u64::MAX);
    if since_anchor >= SECOND_SAMPLE_DUE.load(Ordering::Relaxed) {
        finish_calibration();
    }
    Instant(anchor.std_unix_nanos.saturating_add(since_anchor))
}

/// Takes the first calibration sample, where the CPU's TSC is stable; the
/// clock switches to it [`CALIBRATION_SPAN`] later. Called when a tracer
/// starts (not before: a process that never traces never calibrates);
/// later calls do nothing.
pub(crate) fn begin_calibration() {
    static BEGUN: AtomicBool = AtomicBool::new(false);
    if BEGUN.swap(true, Ordering::AcqRel) || !tsc::is_stable() {
        return;
    }
    let Some(first) = sample() else {
        return;
    };
    let Ok(mut slot) = FIRST_SAMPLE.try_lock() else {
        return;
    };
    *slot = Some(first);
    let due = first
        .at
        .saturating_duration_since(ANCHOR.std_instant)
        .saturating_add(CALIBRATION_SPAN)
        .as_nanos();
    SECOND_SAMPLE_DUE.store(u64::try_from(due).unwrap_or(u64::MAX), Ordering::Relaxed);
}

/// The second sample, by whichever reading finds it due first (the others
/// go on with the `Instant` clock: never a wait).
#[cold]
fn finish_calibration() {
    let Ok(mut slot) = FIRST_SAMPLE.try_lock() else {
        return;
    };
    let Some(first) = slot.take() else {
        return;
    };
    SECOND_SAMPLE_DUE.store(u64::MAX, Ordering::Relaxed);
    let Some(second) = sample() else {
        return;
    };
    let cycles = second.cycles.wrapping_sub(first.cycles);
    let nanos = second.at.saturating_duration_since(first.at).as_nanos();
    if cycles == 0 || nanos == 0 {
        return;
    }
    let nanos_per_cycle = nanos as f64 / cycles as f64;
    // 100 MHz to 20 GHz: anything else is not a clock to trust.
    if !(0.05..=10.0).contains(&nanos_per_cycle) {
        return;
    }
    TSC.cycles.store(second.cycles, Ordering::Relaxed);
    // Anchored by the sample's error later than the `Instant` clock, so
    // that no TSC reading falls before an `Instant` one taken earlier: the
    // clock stays monotonic across the switch (off by at most that error,
    // tens of nanoseconds).
    let anchor_nanos = ANCHOR.unix_nanos(second.at + second.error);
    TSC.unix_nanos.store(anchor_nanos, Ordering::Relaxed);
    TSC.nanos_per_cycle
        .store(nanos_per_cycle.to_bits(), Ordering::Relaxed);
    TSC.ready.store(true, Ordering::Release);
}

/// A TSC reading paired with an `Instant`: the closest pair of a few
/// tries, an interrupt between the two reads would spoil one.
fn sample() -> Option<Sample> {
    let mut best: Option<(Duration, Sample)> = None;
    for _ in 0..5 {
        let before = std::time::Instant::now();
        let cycles = tsc::read()?;
        let after = std::time::Instant::now();
        let width = after.saturating_duration_since(before);
        if best.is_none_or(|(narrowest, _)| width < narrowest) {
            let error = width / 2;
            let at = before + error;
            best = Some((width, Sample { cycles, at, error }));
        }
    }
    best.map(|(_, sample)| sample)
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

/// The time stamp counter, on x86-64 only.
#[cfg(target_arch = "x86_64")]
mod tsc {
    /// The counter now.
    #[inline(always)]
    pub(super) fn read() -> Option<u64> {
        // SAFETY: `rdtsc` reads a register; every x86-64 CPU has it, and
        // it has no preconditions (it is `unsafe` only as an intrinsic).
        #[allow(unsafe_code)]
        let cycles = unsafe { core::arch::x86_64::_rdtsc() };
        Some(cycles)
    }

    /// Whether the counter ticks at one rate on every core, for ever: an
    /// invariant TSC (CPUID), or one the kernel chose as its clock source
    /// (it checks them, and some VMs hide the CPUID bit).
    pub(super) fn is_stable() -> bool {
        let invariant = core::arch::x86_64::__cpuid(0x8000_0000).eax >= 0x8000_0007
            && core::arch::x86_64::__cpuid(0x8000_0007).edx & (1 << 8) != 0;
        invariant || kernel_clock_source_is_tsc()
    }

    fn kernel_clock_source_is_tsc() -> bool {
        const DIR: &str = "/sys/devices/system/clocksource/clocksource0";
        match std::fs::read_to_string(format!("{DIR}/current_clocksource")) {
            Ok(current) => current.trim() == "tsc",
            Err(_) => false,
        }
    }
}

/// No counter to read: the `Instant` clock throughout.
#[cfg(not(target_arch = "x86_64"))]
mod tsc {
    #[inline(always)]
    pub(super) fn read() -> Option<u64> {
        None
    }

    pub(super) fn is_stable() -> bool {
        false
    }
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

    /// Across the switch to the TSC, readings stay with the `Instant`
    /// clock: a duration measured over it is the `Instant` duration.
    #[test]
    fn calibration_switches_to_the_tsc_without_a_jump() {
        let before = now();
        let std_before = std::time::Instant::now();
        begin_calibration();
        if tsc::is_stable() {
            let deadline = std::time::Instant::now() + Duration::from_secs(30);
            while !TSC.ready.load(Ordering::Acquire) {
                assert!(
                    std::time::Instant::now() < deadline,
                    "the clock was never calibrated"
                );
                std::thread::sleep(Duration::from_millis(10));
                let _ = now();
            }
        }
        let after = now();
        let std_elapsed = std_before.elapsed().as_nanos() as u64;
        let elapsed = after.0.saturating_sub(before.0);
        // Within 1 ms plus one part in 1000 of the true duration.
        assert!(
            elapsed.abs_diff(std_elapsed) < 1_000_000 + std_elapsed / 1000,
            "span clock: {elapsed} ns, Instant: {std_elapsed} ns"
        );
        let system = system_time_nanos(SystemTime::now());
        assert!(now().0.abs_diff(system) < 50_000_000);
    }
}
