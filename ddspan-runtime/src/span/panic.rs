//! Panics inside spans: the span is marked as an error (`error.type` =
//! `panic`, `error.message` = the panic's message when it is a string) and
//! the panic keeps unwinding.
//!
//! A span learns it is being unwound from `std::thread::panicking()` when its
//! guard drops; the message comes from a panic hook installed when the
//! tracer starts, which records it for the panicking thread and then calls
//! the hook that was there before (so the usual report is still printed).

use std::cell::RefCell;
use std::sync::Once;

use crate::record::SpanRecord;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

pub(crate) fn install_hook() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let payload = info.payload();
            let message = payload
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| payload.downcast_ref::<String>().cloned());
            let _ = LAST_PANIC.try_with(|last| {
                if let Ok(mut last) = last.try_borrow_mut() {
                    *last = message;
                }
            });
            previous(info);
        }));
    });
}

/// Marks a span that is being unwound by a panic.
pub(crate) fn mark_unwinding(record: &mut SpanRecord) {
    if record.error {
        return;
    }
    let message = LAST_PANIC
        .try_with(|last| last.try_borrow().ok().and_then(|m| m.clone()))
        .ok()
        .flatten()
        .unwrap_or_else(|| "the span panicked".to_owned());
    record.set_error_fields(message, std::borrow::Cow::Borrowed("panic"), None);
}
