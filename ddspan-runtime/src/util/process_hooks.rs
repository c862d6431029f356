//! What std does not offer: a function run when the process exits normally
//! (`atexit`: on return from `main` and on `std::process::exit`), so that
//! programs that only annotate functions still deliver their last traces;
//! and one run in the child of a `fork` (`pthread_atfork`), so that the
//! child gets a writer of its own and draws its own ids.
//!
//! This is the crate's only unsafe code: two calls into the C runtime.

use std::sync::OnceLock;

static AT_EXIT: OnceLock<fn()> = OnceLock::new();
static IN_FORKED_CHILD: OnceLock<fn()> = OnceLock::new();
/// Runs `hook` in the child process right after each `fork`, on its only
/// thread. It may do no more than atomic loads and stores: the child of a
/// multi-threaded process may not allocate or lock there. The first hook
/// given is kept.
pub(crate) fn in_forked_child(hook: fn()) {
    if IN_FORKED_CHILD.set(hook).is_ok() {
        register_fork();
    }
}

extern "C" fn run_in_forked_child() {
    if let Some(hook) = IN_FORKED_CHILD.get() {
        hook();
    }
}

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

#[cfg(unix)]
#[allow(unsafe_code)]
fn register_fork() {
    // SAFETY: `pthread_atfork` only stores the pointer; the child handler
    // does atomic operations alone (see `in_forked_child`).
    let status = unsafe { libc::pthread_atfork(None, None, Some(run_in_forked_child)) };
    if status != 0 {
        crate::util::diagnostics::debug(format_args!(
            "could not register the fork hook; a forked child will not trace"
        ));
    }
}

#[cfg(not(unix))]
fn register_fork() {
    let _ = run_in_forked_child;
}

#[cfg(not(unix))]
fn register() {
    // No exit hook here: programs call `tracer::stop()` (or use
    // `#[dd_span] fn main`, which flushes on return).
    let _ = run_at_exit;
}
