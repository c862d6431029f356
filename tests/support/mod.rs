//! The test harness: Datadog's own test agent and Python tracer, installed
//! into `target/` on first use and started on loopback per test.
#![allow(dead_code, unreachable_pub)]

pub mod agent;
pub mod python;
pub mod session;
