//! What std does not offer: a function run when the process exits normally
//! (`atexit`: on return from `main` and on `std::process::exit`), so that
//! programs that only annotate functions still deliver their last traces.
//!
//! This is the crate's only unsafe code: one call into the C runtime.

use std::sync::OnceLock;

static AT_EXIT: OnceLock<fn()> = OnceLock::new();

/// Runs `hook` when the process exits normally. The first hook given is
/// kept; later calls do nothing. The C runtime runs it after the exiting
/// thread's thread-local destructors (so that thread's open spans have
/// finished) and while the other threads still run.
pub(crate) fn at_exit(hook: fn()) {
    if AT_EXIT.set(hook).is_ok() {
        register();
    }
}

extern "C" fn run_at_exit() {
    if let Some(hook) = AT_EXIT.get() {
        // Unwinding out of an `extern "C"` function aborts the process.
        let _ = std::panic::catch_unwind(hook);
    }
}

#[cfg(unix)]
#[allow(unsafe_code)]
fn register() {
    // SAFETY: `atexit` only stores the pointer to `run_at_exit`, a plain
    // function with no arguments that never unwinds (see above).
    let status = unsafe { libc::atexit(run_at_exit) };
    if status != 0 {
        crate::util::diagnostics::debug(format_args!(
            "could not register the exit-time flush; call tracer::stop() before exiting"
        ));
    }
}

#[cfg(not(unix))]
fn register() {
    // No exit hook here: programs call `tracer::stop()` (or use
    // `#[dd_span] fn main`, which flushes on return).
    let _ = run_at_exit;
}
