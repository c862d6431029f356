//! The console exporter: every finished trace drawn as a tree on stderr, for
//! development. Enable it with `DDSPAN_CONSOLE=true` (or
//! `Config::builder().console(true)`); it works beside the agent writer, the
//! memory exporter, or alone.
//!
//! The tree is drawn on the application thread that finished the trace (it
//! needs the spans, which then go on to the agent writer) and written by a
//! thread of its own, so a slow or blocked stderr (a full pipe, a paused
//! terminal) never holds the application up: when that thread falls
//! [`QUEUE`] trees behind, further trees are dropped and a note says how
//! many. Write errors are ignored: there is nowhere left to report them.

use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::config::Config;
use crate::export::tree;
use crate::export::Export;
use crate::record::Chunk;

/// Trees drawn but not yet written that the console keeps.
pub(crate) const QUEUE: usize = 1024;

/// Draws trees and hands them to the console thread.
pub(crate) struct Console {
    /// The service and env of the trees' first line.
    config: Config,
    /// Trees to write; `None` ends the thread.
    trees: SyncSender<Option<String>>,
    /// Trees handed to the thread.
    queued: AtomicU64,
    progress: Arc<Progress>,
    stopped: AtomicBool,
}

/// How far the console thread got.
#[derive(Default)]
struct Progress {
    /// Trees the thread is done with.
    written: Mutex<u64>,
    advanced: Condvar,
    /// Trees dropped since the last note, the queue full.
    missed: AtomicU64,
}

impl Progress {
    fn written(&self) -> MutexGuard<'_, u64> {
        self.written.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Console {
    /// A console on stderr; `None` (with a warning) when its thread cannot
    /// be started.
    pub(crate) fn start(config: &Config) -> Option<Console> {
        Console::start_on(config, Box::new(std::io::stderr()), QUEUE)
    }

    /// A console writing to `out`, keeping up to `queue` trees unwritten.
    pub(crate) fn start_on(
        config: &Config,
        out: Box<dyn Write + Send>,
        queue: usize,
    ) -> Option<Console> {
        let (trees, incoming) = mpsc::sync_channel(queue);
        let progress = Arc::new(Progress::default());
        let shared = Arc::clone(&progress);
        let spawned = std::thread::Builder::new()
            .name("ddspan-console".to_owned())
            .spawn(move || write_trees(&incoming, out, &shared));
        match spawned {
            Ok(_) => Some(Console {
                config: config.clone(),
                trees,
                queued: AtomicU64::new(0),
                progress,
                stopped: AtomicBool::new(false),
            }),
            Err(error) => {
                crate::util::diagnostics::warn(format_args!(
                    "could not start the console thread ({error}); traces are not drawn"
                ));
                None
            }
        }
    }
}

/// The console thread: writes each tree, and a note of the trees dropped
/// before it; ends on `None` or when the [`Console`] is dropped.
fn write_trees(
    incoming: &Receiver<Option<String>>,
    mut out: Box<dyn Write + Send>,
    progress: &Progress,
) {
    while let Ok(Some(tree)) = incoming.recv() {
        let _ = out.write_all(tree.as_bytes());
        let missed = progress.missed.swap(0, Ordering::Relaxed);
        if missed > 0 {
            let _ = writeln!(
                out,
                "(ddspan console: {missed} traces not drawn, the output could not keep up)"
            );
        }
        let _ = out.flush();
        *progress.written() += 1;
        progress.advanced.notify_all();
    }
}

impl Export for Console {
    fn export(&self, chunk: &Chunk) {
        if self.stopped.load(Ordering::Relaxed) {
            return;
        }
        let tree = tree::render(chunk, &self.config);
        match self.trees.try_send(Some(tree)) {
            Ok(()) => {
                self.queued.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_)) => {
                self.progress.missed.fetch_add(1, Ordering::Relaxed);
            }
            Err(TrySendError::Disconnected(_)) => {}
        }
    }

    /// Waits until the trees handed over so far are written.
    fn flush(&self, deadline: Instant) -> bool {
        let target = self.queued.load(Ordering::Relaxed);
        let mut written = self.progress.written();
        while *written < target {
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            written = self
                .progress
                .advanced
                .wait_timeout(written, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }

    /// Writes what is queued, then ends the thread (unless stderr is stuck:
    /// then it ends with the tracer).
    fn shutdown(&self, deadline: Instant) -> bool {
        let done = self.flush(deadline);
        self.stopped.store(true, Ordering::Relaxed);
        let _ = self.trees.try_send(None);
        done
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::record::{SamplingDecision, SpanRecord, Upstream};
    use crate::runtime::TracerCore;
    use std::time::Duration;

    /// Bytes written, shared with the test.
    #[derive(Clone, Default)]
    pub(crate) struct Output(pub(crate) Arc<Mutex<Vec<u8>>>);

    impl Write for Output {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Output {
        pub(crate) fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A chunk of one span named `name`.
    pub(crate) fn chunk(core: &Arc<TracerCore>, name: &'static str) -> Chunk {
        let decision = SamplingDecision::inherited(1);
        let trace = crate::trace::TraceShared::new(core, 1, 1, decision, Upstream::none_ref());
        trace.chunk(vec![SpanRecord::named(1, 0, name.into())], decision)
    }

    fn soon() -> Instant {
        Instant::now() + Duration::from_secs(10)
    }

    #[test]
    fn trees_are_written_in_order_by_the_flush() {
        let config = Config::builder().service("svc").build();
        let (core, _) = TracerCore::capturing(config.clone());
        let out = Output::default();
        let console = Console::start_on(&config, Box::new(out.clone()), 4).unwrap();
        for name in ["first", "second", "third"] {
            console.export(&chunk(&core, name));
        }
        assert!(console.flush(soon()));
        let text = out.text();
        let at = |name: &str| text.find(&format!("└─ {name} ")).expect(name);
        assert!(
            at("first") < at("second") && at("second") < at("third"),
            "{text}"
        );
        assert!(console.shutdown(soon()));
        console.export(&chunk(&core, "after"));
        assert!(console.flush(soon()), "nothing more to wait for");
        assert!(
            !out.text().contains("after"),
            "nothing drawn after the shutdown"
        );
    }

    /// An output that blocks until the test lets it go: a stuck stderr.
    struct Stuck {
        out: Output,
        gate: Arc<Mutex<()>>,
    }

    impl Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            let _open = self.gate.lock().unwrap();
            self.out.write(bytes)
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Err(std::io::Error::other("errors are ignored"))
        }
    }

    #[test]
    fn a_stuck_output_never_holds_the_application_and_drops_are_noted() {
        let config = Config::builder().service("svc").build();
        let (core, _) = TracerCore::capturing(config.clone());
        let out = Output::default();
        let gate = Arc::new(Mutex::new(()));
        let closed = gate.lock().unwrap();
        let stuck = Stuck {
            out: out.clone(),
            gate: Arc::clone(&gate),
        };
        let console = Arc::new(Console::start_on(&config, Box::new(stuck), 2).unwrap());
        // Forty trees while nothing can be written: exporting returns
        // (a hang here would be the bug), and most trees are dropped.
        let (done, finished) = mpsc::channel();
        let exporting = Arc::clone(&console);
        std::thread::spawn(move || {
            for _ in 0..40 {
                exporting.export(&chunk(&core, "busy"));
            }
            let _ = done.send(());
        });
        finished
            .recv_timeout(Duration::from_secs(30))
            .expect("exporting never waits for the output");
        assert!(!console.flush(Instant::now() + Duration::from_millis(10)));
        drop(closed);
        assert!(console.flush(soon()));
        let text = out.text();
        let drawn = text.matches("└─ busy").count();
        assert!(
            (1..=3).contains(&drawn),
            "the queue's worth and the one being written: {text}"
        );
        assert!(
            text.contains(&format!("{} traces not drawn", 40 - drawn)),
            "{text}"
        );
    }
}
