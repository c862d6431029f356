//! The running tracer: its configuration, sampler, counters, and where its
//! finished chunks go: the exporters that read them (the console, the
//! memory exporter), then the agent writer's queue.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::export::console::Console;
use crate::export::memory::MemorySink;
use crate::export::queue::AgentQueue;
use crate::export::stats::Counters;
use crate::export::Export;
use crate::record::Chunk;
use crate::sampling::Sampler;

/// The longest a flush or shutdown waits for the exporters that read
/// chunks (the console's stderr) before it turns to the agent writer:
/// delivery matters more than a development view.
const READERS_WAIT: Duration = Duration::from_secs(1);

/// A running tracer: its configuration, sampler, counters and exporters.
pub(crate) struct TracerCore {
    pub(crate) config: Config,
    pub(crate) sampler: Arc<Sampler>,
    pub(crate) counters: Arc<Counters>,
    /// Shown every chunk, in order, before the agent writer takes it: the
    /// console and the memory exporter when configured; none by default.
    readers: Vec<Box<dyn Export>>,
    /// The agent writer's queue; none when a memory exporter keeps the
    /// spans.
    agent: Option<AgentQueue>,
    /// Spans lost or unconfirmed when the last flush returned: a flush
    /// answers `true` only if none were lost since (it only grows).
    lost_at_last_flush: AtomicU64,
}

impl TracerCore {
    fn new(
        config: Config,
        counters: Arc<Counters>,
        readers: Vec<Box<dyn Export>>,
        agent: impl FnOnce(&Config, &Arc<Counters>, &Arc<Sampler>) -> Option<AgentQueue>,
    ) -> Arc<TracerCore> {
        let sampler = Arc::new(Sampler::from_config(&config));
        let agent = agent(&config, &counters, &sampler);
        Arc::new(TracerCore {
            config,
            sampler,
            counters,
            readers,
            agent,
            lost_at_last_flush: AtomicU64::new(0),
        })
    }

    /// The tracer `config` asks for: the console if on, and the memory
    /// exporter if set, else the agent writer.
    pub(crate) fn launch(config: Config) -> Arc<TracerCore> {
        let counters = Arc::new(Counters::default());
        let mut readers: Vec<Box<dyn Export>> = Vec::new();
        if config.console {
            readers.extend(Console::start(&config).map(|c| Box::new(c) as Box<dyn Export>));
        }
        if let Some(spans) = &config.memory_exporter {
            readers.push(Box::new(MemorySink::new(
                spans.clone(),
                &config.service,
                &counters,
            )));
        }
        let to_agent = config.memory_exporter.is_none();
        TracerCore::new(config, counters, readers, |config, counters, sampler| {
            to_agent.then(|| AgentQueue::start(config, counters, sampler))
        })
    }

    /// A tracer with no exporter (its chunks are dropped): for building
    /// traces outside the running tracer (benchmarks).
    #[cfg(feature = "__bench")]
    pub(crate) fn detached(config: Config) -> Arc<TracerCore> {
        TracerCore::new(config, Arc::default(), Vec::new(), |_, _, _| None)
    }

    /// Shows a finished chunk to the readers, then hands it to the agent
    /// writer without ever blocking (a full queue drops it and counts it).
    ///
    /// On application threads, once per chunk: with no reader configured
    /// (production), the loop is one length check and the rest is the
    /// writer's `try_send`.
    pub(crate) fn submit(&self, chunk: Chunk) {
        for reader in &self.readers {
            reader.export(&chunk);
        }
        match &self.agent {
            Some(agent) => agent.hand_off(chunk, &self.counters),
            None => crate::record::pool::give(chunk.spans),
        }
    }

    /// Sends what is queued, until `timeout` from now; whether nothing is
    /// left unsent and no span was lost (dropped, or sent without an answer)
    /// since the previous flush or the start. The readers are waited for
    /// first, briefly; only the agent's delivery decides the answer.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        // Losses since the last flush that returned: callers flushing at
        // the same time all see them.
        let before = self.lost_at_last_flush.load(Ordering::Relaxed);
        let deadline = deadline_after(timeout);
        let readers_deadline = deadline.min(Instant::now() + READERS_WAIT);
        for reader in &self.readers {
            reader.flush(readers_deadline);
        }
        let sent = self
            .agent
            .as_ref()
            .is_none_or(|agent| agent.flush(deadline));
        let stats = self.counters.snapshot();
        let lost = stats.spans_dropped() + stats.spans_unconfirmed;
        self.lost_at_last_flush.fetch_max(lost, Ordering::Relaxed);
        sent && lost == before
    }

    /// The same within `shutdown_timeout`, then the exporters stop.
    pub(crate) fn shutdown(&self) -> bool {
        let deadline = deadline_after(self.config.shutdown_timeout);
        let readers_deadline = deadline.min(Instant::now() + READERS_WAIT);
        for reader in &self.readers {
            reader.shutdown(readers_deadline);
        }
        self.agent
            .as_ref()
            .is_none_or(|agent| agent.shutdown(deadline))
    }
}

/// `timeout` from now; `Duration::MAX` means "as long as it takes": a year
/// will do.
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// Captured chunks, as lists of span ids (unit tests).
#[cfg(test)]
pub(crate) type CapturedChunks = std::sync::Arc<std::sync::Mutex<Vec<Vec<u64>>>>;

#[cfg(test)]
impl TracerCore {
    /// A tracer whose chunks are kept in memory as lists of span ids.
    pub(crate) fn capturing(config: Config) -> (Arc<TracerCore>, CapturedChunks) {
        let chunks = CapturedChunks::default();
        let capture = Box::new(tests::Capture(Arc::clone(&chunks)));
        let core = TracerCore::new(config, Arc::default(), vec![capture], |_, _, _| None);
        (core, chunks)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::console::tests::{chunk, Output};

    /// Keeps the span ids of each chunk.
    pub(super) struct Capture(pub(super) CapturedChunks);

    impl Export for Capture {
        fn export(&self, chunk: &Chunk) {
            let ids = chunk.spans.iter().map(|s| s.span_id).collect();
            self.0.lock().unwrap().push(ids);
        }
    }

    fn console(config: &Config, out: &Output) -> Box<dyn Export> {
        Box::new(Console::start_on(config, Box::new(out.clone()), 8).unwrap())
    }

    #[test]
    fn every_reader_sees_every_chunk_in_order() {
        let config = Config::builder().service("svc").build();
        let out = Output::default();
        let first = CapturedChunks::default();
        let second = CapturedChunks::default();
        let readers: Vec<Box<dyn Export>> = vec![
            Box::new(Capture(Arc::clone(&first))),
            console(&config, &out),
            Box::new(Capture(Arc::clone(&second))),
        ];
        let core = TracerCore::new(config, Arc::default(), readers, |_, _, _| None);
        core.submit(chunk(&core, "one"));
        core.submit(chunk(&core, "two"));
        assert!(core.flush(Duration::from_secs(10)));
        assert_eq!(*first.lock().unwrap(), [[1], [1]]);
        assert_eq!(*second.lock().unwrap(), [[1], [1]]);
        let text = out.text();
        assert!(
            text.find("└─ one").unwrap() < text.find("└─ two").unwrap(),
            "{text}"
        );
    }

    #[test]
    fn the_console_alone_draws_and_stops() {
        let config = Config::builder().service("svc").build();
        let out = Output::default();
        let core = TracerCore::new(
            config,
            Arc::default(),
            vec![console(&Config::builder().service("svc").build(), &out)],
            |_, _, _| None,
        );
        core.submit(chunk(&core, "alone"));
        assert!(core.shutdown(), "nothing to deliver");
        assert!(
            out.text().contains("service svc\n└─ alone"),
            "{}",
            out.text()
        );
        assert_eq!(
            core.counters.snapshot(),
            crate::Stats::default(),
            "nothing sent"
        );
    }

    #[test]
    fn a_memory_exporter_counts_what_it_keeps_and_no_writer_starts() {
        let spans = crate::MemoryExporter::new();
        let config = Config::builder()
            .service("svc")
            .memory_exporter(spans.clone())
            .build();
        let core = TracerCore::launch(config);
        assert!(core.agent.is_none());
        core.submit(chunk(&core, "kept"));
        assert!(core.shutdown());
        assert_eq!(spans.take()[0].name, "kept");
        let stats = core.counters.snapshot();
        assert_eq!((stats.traces_sent, stats.spans_sent), (1, 1));
    }
}
