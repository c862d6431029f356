//! The `tracing` crate: [`CorrelatedFormat`], an event format for
//! `tracing-subscriber`'s fmt layer that adds the active span's log
//! correlation fields to every line: before the text, or as fields of the
//! object with `.json()`.

mod format;

pub use format::CorrelatedFormat;
