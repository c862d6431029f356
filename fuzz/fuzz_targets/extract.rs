//! Propagation headers from anywhere: extraction never panics, and what it
//! extracts survives a round trip. `cargo fuzz run extract` (see README).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    ddspan_runtime::__fuzz::check_extract(data);
});
