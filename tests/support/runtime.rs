//! The async runtime the tests run futures on.

/// A tokio runtime with two worker threads and its I/O and timers: futures
/// move between threads, as in a service.
pub fn multi_thread() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}
