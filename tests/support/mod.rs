//! The test harness: Datadog's own test agent and Python tracer, pinned,
//! installed into the cargo target dir on first use ([`python`]), and a
//! test agent started on free loopback ports per test ([`agent`]), and an
//! agent stand-in that fails on purpose ([`fault_agent`]).
//!
//! Each integration test file includes it with `mod support;` and uses what
//! it needs; the rest is allowed to go unused.
#![allow(dead_code, unreachable_pub)]

pub mod agent;
pub mod fault_agent;
pub mod python;
pub mod runtime;
pub mod session;
