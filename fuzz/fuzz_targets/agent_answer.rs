//! An agent's answer, any bytes: reading it never panics, takes at most a
//! bounded number of bytes from the connection, keeps the body within its
//! limit, and comes to the same outcome however the bytes are split into
//! reads. `cargo fuzz run agent_answer` (see README).
//!
//! The reader and the property are included as they are in the runtime
//! (std only), so the target fuzzes exactly the code that reads the agent.
#![no_main]

#[allow(dead_code)]
#[path = "../../ddspan-runtime/src/export/transport/wire.rs"]
mod wire;

#[allow(dead_code)]
#[path = "../../ddspan-runtime/src/export/transport/check.rs"]
mod check;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check::check_answer(data);
});
