//! The tracer's own diagnostics, on standard error.
//!
//! A tracer cannot log through the application's logger without risking
//! recursion into itself, so, like dd-trace-go and ddtrace, it writes plain
//! lines to stderr: warnings always, debug lines with `DD_TRACE_DEBUG=true`.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static DEBUG: AtomicBool = AtomicBool::new(false);

pub(crate) fn set_debug(enabled: bool) {
    DEBUG.store(enabled, Ordering::Relaxed);
}

pub(crate) fn debug_enabled() -> bool {
    DEBUG.load(Ordering::Relaxed)
}

pub(crate) fn warn(message: std::fmt::Arguments<'_>) {
    line("WARN", message);
}

pub(crate) fn info(message: std::fmt::Arguments<'_>) {
    line("INFO", message);
}

pub(crate) fn debug(message: std::fmt::Arguments<'_>) {
    if debug_enabled() {
        line("DEBUG", message);
    }
}

/// One line on stderr. A closed or broken stderr (a pipe whose reader is
/// gone) is ignored: `eprintln!` would panic, in the application's thread.
fn line(level: &str, message: std::fmt::Arguments<'_>) {
    let _ = writeln!(std::io::stderr().lock(), "ddspan {level}: {message}");
}
