//! Where finished chunks go: the agent writer (encoding, sending, retries,
//! accounting), the console and the in-memory exporter.

pub(crate) mod backoff;
pub(crate) mod buffer;
pub(crate) mod console;
pub(crate) mod encode;
pub(crate) mod memory;
pub(crate) mod msgpack;
pub(crate) mod outcome;
pub(crate) mod payload;
pub(crate) mod sender;
pub(crate) mod stats;
pub(crate) mod writer;
