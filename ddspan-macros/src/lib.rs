//! Procedural macros of [ddspan](https://docs.rs/ddspan): `#[dd_span]` and
//! `#[dd_ignore]`.
//!
//! The crate follows the parse → validate → expand layout of the best macro
//! crates; the attributes themselves land with their own issue. Until then
//! the crate exists so the workspace layout is whole and the facade can pin
//! it exactly.
#![deny(missing_docs)]
#![forbid(unsafe_code)]
