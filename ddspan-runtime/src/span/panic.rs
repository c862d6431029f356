//! Panics inside spans: the span is marked as an error (`error.type` =
//! `panic`, `error.message` = the panic's message when it is a string) and
//! the panic keeps unwinding.
//!
//! A span learns it is being unwound from `std::thread::panicking()` when its
//! guard drops; the message comes from a panic hook installed when the
//! tracer starts, which records it for the panicking thread and then calls
//! the hook that was there before (so the usual report is still printed).

use crate::record::SpanRecord;

/// Marks a span that is being unwound by a panic.
pub(crate) fn mark_unwinding(record: &mut SpanRecord) {
    if record.error {
        return;
    }
    let message =
        crate::util::panic_message::last().unwrap_or_else(|| "the span panicked".to_owned());
    record.set_error_fields(message, std::borrow::Cow::Borrowed("panic"), None);
}
