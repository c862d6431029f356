//! The message of the panic unwinding this thread, for the spans it
//! unwinds: a panic hook, installed when the tracer starts, records it and
//! then calls the hook that was there before (so the usual report is still
//! printed).

use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;

thread_local! {
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

static INSTALLED: AtomicBool = AtomicBool::new(false);

/// Installs the hook once. Not from a thread that is panicking (a span
/// started in a `Drop` during unwinding, or in the application's own panic
/// hook): std aborts the process when the hook is changed there. The
/// caller tries again on a later occasion (see `registry::with_current`).
pub(crate) fn install_hook() {
    if INSTALLED.load(Ordering::Acquire) || std::thread::panicking() {
        return;
    }
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
        INSTALLED.store(true, Ordering::Release);
    });
}

/// The message of this thread's last panic, when it was a string.
pub(crate) fn last() -> Option<String> {
    LAST_PANIC
        .try_with(|last| last.try_borrow().ok().and_then(|m| m.clone()))
        .ok()
        .flatten()
}
