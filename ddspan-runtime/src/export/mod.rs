//! Where finished chunks go: the agent writer (encoding, sending, retries,
//! accounting), the console and the in-memory exporter.
//!
//! The tracer shows every finished chunk to its [`Export`]ers (the console,
//! the memory exporter), then hands it to the agent writer's queue when it
//! has one ([`queue::AgentQueue`]): the writer takes the chunk itself, the
//! others only read it.

use std::time::Instant;

use crate::record::Chunk;

pub(crate) mod agent_info;
pub(crate) mod backoff;
pub(crate) mod buffer;
pub(crate) mod client_stats;
pub(crate) mod console;
pub(crate) mod encode;
pub(crate) mod encode_links;
pub(crate) mod encode_v05;
pub(crate) mod memory;
pub(crate) mod msgpack;
pub(crate) mod outcome;
pub(crate) mod payload;
pub(crate) mod queue;
pub(crate) mod sender;
pub(crate) mod stats;
pub(crate) mod transport;
pub(crate) mod tree;
pub(crate) mod writer;

/// Something shown every finished chunk, on the application thread that
/// finished it, before the agent writer (when there is one) takes the
/// chunk: the console, the memory exporter, test captures.
pub(crate) trait Export: Send + Sync {
    /// Reads a finished chunk. It runs on application threads: nothing slow
    /// may make it wait.
    fn export(&self, chunk: &Chunk);

    /// Waits, until `deadline` at most, for what it was shown to be out;
    /// whether it is.
    fn flush(&self, _deadline: Instant) -> bool {
        true
    }

    /// The same at the tracer's stop; it may let its threads go.
    fn shutdown(&self, deadline: Instant) -> bool {
        self.flush(deadline)
    }
}
