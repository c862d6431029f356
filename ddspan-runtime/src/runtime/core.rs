//! The running tracer: its configuration, sampler, counters, and where its
//! finished chunks go (the agent writer or the memory exporter).

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::export::stats::Counters;
use crate::export::writer::{self, Control};
use crate::record::Chunk;
use crate::sampling::Sampler;

/// How much longer than its deadline a flush's caller waits for the writer.
const REPLY_GRACE: Duration = Duration::from_millis(200);

/// A running tracer: its configuration, sampler, counters and writer.
pub(crate) struct TracerCore {
    pub(crate) config: Config,
    pub(crate) sampler: Arc<Sampler>,
    pub(crate) counters: Arc<Counters>,
    sink: Sink,
    worker: Mutex<Option<JoinHandle<()>>>,
}

/// Captured chunks, as lists of span ids (unit tests).
#[cfg(test)]
pub(crate) type CapturedChunks = Arc<Mutex<Vec<Vec<u64>>>>;

enum Sink {
    Memory(crate::MemoryExporter),
    Writer {
        /// Finished chunks; application threads only ever `try_send`.
        chunks: SyncSender<Chunk>,
        /// Flush and shutdown requests.
        control: Sender<Control>,
    },
    #[cfg(test)]
    Capture(CapturedChunks),
}

impl TracerCore {
    pub(crate) fn launch(config: Config) -> Arc<TracerCore> {
        let counters = Arc::new(Counters::default());
        let sampler = Arc::new(Sampler::new(
            config.sample_rate,
            config.rate_limit,
            config.env.as_deref(),
        ));
        if let Some(exporter) = config.memory_exporter.clone() {
            return Arc::new(TracerCore {
                config,
                sampler,
                counters,
                sink: Sink::Memory(exporter),
                worker: Mutex::new(None),
            });
        }
        let (chunks, chunk_receiver) = std::sync::mpsc::sync_channel(config.queue_capacity);
        let (control, control_receiver) = std::sync::mpsc::channel();
        let core = Arc::new(TracerCore {
            config,
            sampler,
            counters,
            sink: Sink::Writer { chunks, control },
            worker: Mutex::new(None),
        });
        match writer::spawn(
            core.config.clone(),
            Arc::clone(&core.counters),
            Arc::clone(&core.sampler),
            chunk_receiver,
            control_receiver,
        ) {
            Ok(handle) => {
                *core.worker.lock().unwrap_or_else(PoisonError::into_inner) = Some(handle)
            }
            Err(error) => crate::util::diagnostics::warn(format_args!(
                "could not start the writer thread ({error}); traces will be dropped"
            )),
        }
        core
    }

    /// A tracer with no writer (its chunks go to a memory exporter): for
    /// building traces outside the running tracer (benchmarks).
    #[cfg(feature = "__bench")]
    pub(crate) fn detached(config: Config) -> Arc<TracerCore> {
        Arc::new(TracerCore {
            sampler: Arc::new(Sampler::new(
                config.sample_rate,
                config.rate_limit,
                config.env.as_deref(),
            )),
            counters: Arc::new(Counters::default()),
            sink: Sink::Memory(crate::MemoryExporter::new()),
            worker: Mutex::new(None),
            config,
        })
    }

    /// A tracer whose chunks are kept in memory as lists of span ids (unit tests).
    #[cfg(test)]
    pub(crate) fn capturing(config: Config) -> (Arc<TracerCore>, CapturedChunks) {
        let chunks = Arc::new(Mutex::new(Vec::new()));
        let core = Arc::new(TracerCore {
            sampler: Arc::new(Sampler::new(
                config.sample_rate,
                config.rate_limit,
                config.env.as_deref(),
            )),
            config,
            counters: Arc::new(Counters::default()),
            sink: Sink::Capture(Arc::clone(&chunks)),
            worker: Mutex::new(None),
        });
        (core, chunks)
    }

    /// Hands a finished chunk to the writer without ever blocking; a full
    /// queue drops the chunk and counts it.
    pub(crate) fn submit(&self, chunk: Chunk) {
        match &self.sink {
            Sink::Writer { chunks, .. } => {
                // The writer polls this queue on its own clock, so a send
                // never wakes a thread: no system call on this path.
                let spans = chunk.spans.len();
                let counted = spans as u64;
                let queued = self
                    .counters
                    .queued_spans
                    .fetch_add(counted, Ordering::Relaxed);
                let fits = queued == 0 || queued + counted <= self.config.queue_max_spans as u64;
                let refused = if fits {
                    match chunks.try_send(chunk) {
                        Ok(()) => return,
                        Err(TrySendError::Full(chunk)) => Some((chunk, false)),
                        Err(TrySendError::Disconnected(chunk)) => Some((chunk, true)),
                    }
                } else {
                    Some((chunk, false))
                };
                if let Some((chunk, stopped)) = refused {
                    self.counters
                        .queued_spans
                        .fetch_sub(counted, Ordering::Relaxed);
                    if stopped {
                        self.counters.dropped_stopped(spans);
                    } else {
                        self.counters.dropped_queue_full(spans);
                    }
                    crate::record::pool::give(chunk.spans);
                }
            }
            Sink::Memory(exporter) => {
                exporter.export(&chunk, &self.config.service);
                crate::export::stats::add(&self.counters.spans_sent, chunk.spans.len());
                crate::export::stats::add(&self.counters.traces_sent, 1);
            }
            #[cfg(test)]
            Sink::Capture(chunks) => chunks
                .lock()
                .unwrap()
                .push(chunk.spans.iter().map(|s| s.span_id).collect()),
        }
    }

    /// Asks the writer for a flush or shutdown that may take until
    /// `timeout` from now, and waits for its answer: whether nothing is
    /// left unsent.
    fn control(
        &self,
        message: impl FnOnce(Instant, SyncSender<bool>) -> Control,
        timeout: Duration,
    ) -> bool {
        #[allow(irrefutable_let_patterns)] // the capture sink exists in unit tests only
        let Sink::Writer { control, .. } = &self.sink
        else {
            return true;
        };
        let (reply, done) = std::sync::mpsc::sync_channel(1);
        let now = Instant::now();
        // `Duration::MAX` means "as long as it takes": a year will do.
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600));
        // The writer may be in the middle of a request when asked: give it
        // a little longer than the deadline it works to.
        control.send(message(deadline, reply)).is_ok()
            && done
                .recv_timeout(timeout.saturating_add(REPLY_GRACE))
                .unwrap_or(false)
    }

    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.control(
            |deadline, reply| Control::Flush { deadline, reply },
            timeout,
        )
    }

    pub(crate) fn shutdown(&self) -> bool {
        let timeout = self.config.shutdown_timeout;
        let delivered = self.control(
            |deadline, reply| Control::Shutdown { deadline, reply },
            timeout,
        );
        if delivered {
            if let Some(worker) = self
                .worker
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
            {
                let _ = worker.join();
            }
        }
        delivered
    }
}
