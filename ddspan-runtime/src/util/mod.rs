//! Small tools every layer uses: the span clock, id generation, the tracer's
//! own diagnostics on stderr, and formatting of values the tracer does not own.

pub(crate) mod clock;
pub(crate) mod diagnostics;
pub(crate) mod id;
pub(crate) mod panic_message;
pub(crate) mod process_hooks;
pub(crate) mod safe_display;
