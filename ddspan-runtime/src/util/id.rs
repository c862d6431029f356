//! Trace and span ids.
//!
//! Ids come from a per-thread wyrand generator: one multiply and one add, no
//! shared state, so id generation never contends across threads. Each thread's
//! generator is seeded from std's per-process random hasher keys (drawn from
//! the OS), the thread id and the clock, so threads and processes never share a
//! sequence.

use std::cell::Cell;
use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

thread_local! {
    static RNG: Cell<u64> = Cell::new(seed());
}

/// Seeds this thread's generator afresh: in the child of a `fork`, whose
/// only thread has its parent's generator state (the tracer's restart in
/// the child calls it before the child draws any id).
pub(crate) fn reseed() {
    let _ = RNG.try_with(|rng| rng.set(seed()));
}

fn seed() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    // A forked child has its parent's thread-local state and hasher keys:
    // its process id sets it apart.
    hasher.write_u32(std::process::id());
    hasher.write_u64(crate::util::clock::system_time_nanos(
        std::time::SystemTime::now(),
    ));
    hasher.write(format!("{:?}", std::thread::current().id()).as_bytes());
    hasher.finish()
}

/// The next pseudo-random 64-bit value of this thread's generator (wyrand).
#[inline]
pub(crate) fn random_u64() -> u64 {
    let state = RNG
        .try_with(|rng| {
            let next = rng.get().wrapping_add(0xa076_1d64_78bd_642f);
            rng.set(next);
            next
        })
        // During thread teardown the thread-local is gone: fall back to a fresh seed.
        .unwrap_or_else(|_| seed());
    let product = u128::from(state) * u128::from(state ^ 0xe703_7ed1_a0b4_28db);
    // Truncations are the point of the mix: fold the 128-bit product to 64 bits.
    ((product >> 64) as u64) ^ (product as u64)
}

/// A random, non-zero span id.
#[inline]
pub(crate) fn new_span_id() -> u64 {
    loop {
        let id = random_u64();
        if id != 0 {
            return id;
        }
    }
}

/// A new trace id: with 128-bit generation, the upper 64 bits are the unix
/// seconds shifted left by 32 (Datadog's layout), the lower 64 bits random.
#[cfg(any(test, feature = "__bench"))]
pub(crate) fn new_trace_id(generate_128_bit: bool) -> u128 {
    new_trace_id_at(generate_128_bit, crate::util::clock::unix_seconds_now())
}

/// A new trace id (see `new_trace_id`, for tests and benches) for a trace
/// beginning at `unix_seconds` (a clock reading the caller already has).
pub(crate) fn new_trace_id_at(generate_128_bit: bool, unix_seconds: u64) -> u128 {
    let low = u128::from(new_span_id());
    if generate_128_bit {
        let high = unix_seconds << 32;
        (u128::from(high) << 64) | low
    } else {
        low
    }
}

/// The lower 64 bits of a trace id, the `trace_id` field on the wire.
#[inline]
pub(crate) fn low_bits(trace_id: u128) -> u64 {
    trace_id as u64
}

/// The upper 64 bits of a trace id, carried as `_dd.p.tid`.
#[inline]
pub(crate) fn high_bits(trace_id: u128) -> u64 {
    (trace_id >> 64) as u64
}

/// A random version-4 UUID (the `runtime-id` of this process).
pub(crate) fn uuid_v4() -> String {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&random_u64().to_be_bytes());
    bytes[8..].copy_from_slice(&random_u64().to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn span_ids_are_non_zero_and_unique() {
        let ids: HashSet<u64> = (0..100_000).map(|_| new_span_id()).collect();
        assert_eq!(ids.len(), 100_000);
        assert!(!ids.contains(&0));
    }

    #[test]
    fn threads_do_not_share_a_sequence() {
        let a: Vec<u64> = std::thread::spawn(|| (0..16).map(|_| new_span_id()).collect())
            .join()
            .unwrap();
        let b: Vec<u64> = std::thread::spawn(|| (0..16).map(|_| new_span_id()).collect())
            .join()
            .unwrap();
        assert_ne!(a, b);
    }

    #[test]
    fn trace_id_high_bits_are_unix_seconds_shifted() {
        let before = crate::util::clock::unix_seconds_now();
        let id = new_trace_id(true);
        let after = crate::util::clock::unix_seconds_now();
        let high = high_bits(id);
        assert_eq!(
            high & 0xffff_ffff,
            0,
            "the lower 32 bits of the upper half are zero"
        );
        let seconds = high >> 32;
        assert!(before <= seconds && seconds <= after);
        assert_ne!(low_bits(id), 0);
    }

    #[test]
    fn sixty_four_bit_trace_ids_have_no_upper_half() {
        let id = new_trace_id(false);
        assert_eq!(high_bits(id), 0);
        assert_ne!(low_bits(id), 0);
    }

    #[test]
    fn uuid_has_version_and_variant() {
        let uuid = uuid_v4();
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "4");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
    }
}
