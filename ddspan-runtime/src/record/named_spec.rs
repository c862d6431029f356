//! Specs for the static names `tracer::trace` is given. A span named by a
//! `&'static str` gets a `&'static SpanSpec` of that name, as a `#[dd_span]`
//! span has one, so it needs no box for a run-time name and its record
//! stays 64 bytes with nothing to free (a `tracer::trace` root cost ~80 ns
//! more than the macro's without it).
//!
//! Each distinct name is leaked once, for the life of the process, up to
//! [`MAX_SPECS`] names (a program's literals are far fewer); past that, and
//! while the process-wide table is busy, names take the run-time way. A
//! thread looks its names up in a small cache of its own first, so the
//! table's lock is taken once per name and thread.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::{Mutex, TryLockError};

use crate::record::spec::SpanSpec;

/// The most names given a spec of their own.
const MAX_SPECS: usize = 4096;
/// A thread's cache: direct-mapped on the name's address.
const CACHE_SLOTS: usize = 16;

/// Every spec made, by the name's address and length.
static SPECS: Mutex<Option<HashMap<(usize, usize), &'static SpanSpec>>> = Mutex::new(None);

thread_local! {
    static CACHE: [Cell<Option<&'static SpanSpec>>; CACHE_SLOTS] =
        const { [const { Cell::new(None) }; CACHE_SLOTS] };
}

/// The spec of spans named `name` (the same `&'static str`: the same
/// address and length); `None` when it cannot be given one.
#[inline]
pub(crate) fn spec_named(name: &'static str) -> Option<&'static SpanSpec> {
    let address = name.as_ptr() as usize;
    let slot = ((address >> 3) ^ name.len()) % CACHE_SLOTS;
    CACHE
        .try_with(|cache| {
            if let Some(spec) = cache[slot].get() {
                if std::ptr::eq(spec.name, name) {
                    return Some(spec);
                }
            }
            let spec = intern(name)?;
            cache[slot].set(Some(spec));
            Some(spec)
        })
        .ok()
        .flatten()
}

/// Finds or makes the spec of `name` in the process-wide table, if its lock
/// is free now (never waited for: a forked child may find it held for ever).
#[cold]
fn intern(name: &'static str) -> Option<&'static SpanSpec> {
    let mut specs = match SPECS.try_lock() {
        Ok(specs) => specs,
        Err(TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
        Err(TryLockError::WouldBlock) => return None,
    };
    find_or_make(specs.get_or_insert_with(HashMap::new), name)
}

/// The spec of `name` in `specs`, made if there is room.
fn find_or_make(
    specs: &mut HashMap<(usize, usize), &'static SpanSpec>,
    name: &'static str,
) -> Option<&'static SpanSpec> {
    let key = (name.as_ptr() as usize, name.len());
    if let Some(spec) = specs.get(&key) {
        return Some(spec);
    }
    if specs.len() >= MAX_SPECS {
        return None;
    }
    let spec: &'static SpanSpec = Box::leak(Box::new(SpanSpec::new(name)));
    specs.insert(key, spec);
    Some(spec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_static_name_gets_one_spec_for_good() {
        // One literal: two equal literals may sit at two addresses.
        static NAME: &str = "named.spec.test";
        let first = spec_named(NAME).expect("a spec");
        assert_eq!(first.name(), "named.spec.test");
        assert!(first.resource().is_none() && first.service().is_none());
        let again = spec_named(NAME).expect("a spec");
        assert!(std::ptr::eq(first, again));
        let from_another_thread =
            std::thread::spawn(|| spec_named(NAME).map(|s| s as *const SpanSpec as usize))
                .join()
                .unwrap();
        assert_eq!(from_another_thread, Some(first as *const SpanSpec as usize));
    }

    /// Names made at run time and leaked (the one way to get unboundedly
    /// many `&'static str`) stop getting specs at the bound.
    #[test]
    fn the_table_is_bounded() {
        let mut specs = HashMap::new();
        let mut given = 0;
        for i in 0..MAX_SPECS + 10 {
            let name: &'static str = Box::leak(format!("bounded.{i}").into_boxed_str());
            given += usize::from(find_or_make(&mut specs, name).is_some());
        }
        assert_eq!(given, MAX_SPECS);
        assert_eq!(specs.len(), MAX_SPECS);
    }
}
