//! Formatting values the tracer does not own (a user's error types) without
//! letting their failures out: a `Display` or `Debug` that panics, or that
//! returns `fmt::Error` (which makes `to_string` panic), gives a placeholder
//! instead of unwinding into the application's code.
//!
//! The panic itself is still reported by the panic hook, as any caught
//! panic is.

use std::fmt::{self, Debug, Display, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// `value`'s `Display` output, or a placeholder if it fails.
pub(crate) fn display(value: &dyn Display) -> String {
    caught("Display", |out| write!(out, "{value}"))
}

/// `value`'s `Debug` output, or a placeholder if it fails.
pub(crate) fn debug(value: &dyn Debug) -> String {
    caught("Debug", |out| write!(out, "{value:?}"))
}

/// Runs `write` on a new string; a placeholder naming `which` formatting
/// failed if it panics or returns an error.
pub(crate) fn caught(which: &str, write: impl FnOnce(&mut String) -> fmt::Result) -> String {
    let mut out = String::new();
    match catch_unwind(AssertUnwindSafe(|| write(&mut out))) {
        Ok(Ok(())) => out,
        Ok(Err(fmt::Error)) => format!("<{which} returned an error>"),
        Err(_) => format!("<{which} panicked>"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Panics;

    impl Display for Panics {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            panic!("Display of Panics")
        }
    }

    struct Fails;

    impl Debug for Fails {
        fn fmt(&self, _: &mut fmt::Formatter<'_>) -> fmt::Result {
            Err(fmt::Error)
        }
    }

    #[test]
    fn failures_give_placeholders() {
        assert_eq!(display(&"fine"), "fine");
        assert_eq!(debug(&"fine"), "\"fine\"");
        assert_eq!(display(&Panics), "<Display panicked>");
        assert_eq!(debug(&Fails), "<Debug returned an error>");
    }
}
