//! The running tracer: the core object the pipeline hands chunks to, and the
//! registry through which spans find it.

pub(crate) mod core;
pub(crate) mod registry;

pub(crate) use self::core::TracerCore;
