//! The running tracer, as the rest of the runtime reaches it: one atomic
//! word says whether a tracer runs (read by every span start), and each
//! thread caches its reference to it; start and stop replace it.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock, TryLockError};
use std::time::Duration;

use crate::config::Config;
use crate::export::stats::{Counters, Stats};
use crate::runtime::core::TracerCore;

const UNINITIALIZED: u8 = 0;
const RUNNING: u8 = 1;
const OFF: u8 = 2;
/// In the child of a `fork`: the running tracer is the parent's, whose
/// writer thread the child does not have. The next span restarts it.
const FORKED: u8 = 3;
/// One thread of a forked child is restarting the tracer.
const RESTARTING: u8 = 4;

/// The one word every span start reads: is there a running tracer?
static STATE: AtomicU8 = AtomicU8::new(UNINITIALIZED);
static CURRENT: RwLock<Option<Arc<TracerCore>>> = RwLock::new(None);
/// Changes whenever `CURRENT` does, so a thread can keep its own reference
/// to the running tracer and check it with one load of a word that is only
/// ever read, instead of taking the lock (whose reader count every thread
/// writes) and cloning the `Arc` (whose count the writer thread also
/// writes) for every new trace.
static GENERATION: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static CACHED: RefCell<Option<(u64, Arc<TracerCore>)>> = const { RefCell::new(None) };
}
/// Serialises start and stop.
static LIFECYCLE: Mutex<()> = Mutex::new(());
/// The final counters of the last tracer stopped.
/// The counters of the last tracer stopped, live: its writer may still be
/// finishing a request, and spans of its traces may finish later.
static LAST_COUNTERS: Mutex<Option<Arc<Counters>>> = Mutex::new(None);

/// Whether spans are recorded now. One relaxed load; starts the tracer from
/// the environment the first time it is asked.
#[inline]
pub(crate) fn is_running() -> bool {
    match STATE.load(Ordering::Relaxed) {
        RUNNING => true,
        OFF => false,
        _ => start_from_env(),
    }
}

#[cold]
fn start_from_env() -> bool {
    match STATE.load(Ordering::Acquire) {
        FORKED => return restart_after_fork(),
        RESTARTING => return false,
        _ => {}
    }
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(PoisonError::into_inner);
    if STATE.load(Ordering::Acquire) == UNINITIALIZED {
        install(Config::from_env());
    }
    STATE.load(Ordering::Acquire) == RUNNING
}

/// In a forked child (see `process_hooks::in_forked_child`): only atomics.
fn mark_forked() {
    let _ = STATE.compare_exchange(RUNNING, FORKED, Ordering::AcqRel, Ordering::Relaxed);
}

/// The first span of a forked child: a tracer of its own, with the parent's
/// configuration and a new writer thread (as dd-trace-py restarts its
/// writer), so the child's spans are sent by the child and the parent's
/// queued chunks are not sent twice. The parent's locks may have been held
/// by threads the child does not have: they are only tried, and the tracer
/// is off in the child (one warning) if one is taken.
#[cold]
fn restart_after_fork() -> bool {
    if STATE
        .compare_exchange(FORKED, RESTARTING, Ordering::AcqRel, Ordering::Acquire)
        .is_err()
    {
        return STATE.load(Ordering::Acquire) == RUNNING;
    }
    // Start and stop are serialised with the restart: another thread of
    // the child may be in one (then it decides the state), or the parent's
    // may have held the lock at the fork (then for ever: off, below).
    let lifecycle = match LIFECYCLE.try_lock() {
        Ok(lifecycle) => Some(lifecycle),
        Err(TryLockError::Poisoned(lifecycle)) => Some(lifecycle.into_inner()),
        Err(TryLockError::WouldBlock) => None,
    };
    if lifecycle.is_none() {
        let _ = STATE.compare_exchange(RESTARTING, OFF, Ordering::AcqRel, Ordering::Relaxed);
        crate::util::diagnostics::warn(format_args!(
            "forked while the tracer was starting or stopping: process {} does not trace",
            std::process::id()
        ));
        return false;
    }
    // This thread is the child's only one, with its parent's id generator:
    // reseeded before any span of the child draws an id.
    crate::util::id::reseed();
    let config = match CURRENT.try_read() {
        Ok(current) => current.as_ref().map(|core| core.config.clone()),
        Err(TryLockError::Poisoned(current)) => current
            .into_inner()
            .as_ref()
            .map(|core| core.config.clone()),
        Err(TryLockError::WouldBlock) => None,
    };
    let restarted = config.and_then(|config| {
        let core = TracerCore::launch(config);
        let mut current = match CURRENT.try_write() {
            Ok(current) => current,
            Err(TryLockError::Poisoned(current)) => current.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        // The parent's tracer stays with the parent: nothing of it to stop
        // or join here.
        std::mem::forget(current.replace(core));
        GENERATION.fetch_add(1, Ordering::Release);
        Some(())
    });
    if restarted.is_some() {
        STATE.store(RUNNING, Ordering::Release);
        crate::util::diagnostics::debug(format_args!(
            "forked: process {} traces with a writer of its own",
            std::process::id()
        ));
        true
    } else {
        STATE.store(OFF, Ordering::Release);
        crate::util::diagnostics::warn(format_args!(
            "forked while the tracer was starting or stopping: process {} does not trace",
            std::process::id()
        ));
        false
    }
}

/// Runs `f` on the running tracer, through this thread's cached reference
/// (see [`GENERATION`]); `None` when no tracer is running.
#[inline]
pub(crate) fn with_current<R>(f: impl FnOnce(&Arc<TracerCore>) -> R) -> Option<R> {
    if !is_running() {
        return None;
    }
    let generation = GENERATION.load(Ordering::Acquire);
    let mut f = Some(f);
    let cached = CACHED.try_with(|cached| {
        let mut cached = cached.try_borrow_mut().ok()?;
        if !matches!(&*cached, Some((seen, _)) if *seen == generation) {
            // Published before the generation changed (see `set_current`).
            *cached = Some((generation, current_locked()?));
            // Not installed when the tracer started in a panicking thread.
            crate::util::panic_message::install_hook();
        }
        let (_, core) = cached.as_ref()?;
        f.take().map(|f| f(core))
    });
    match cached {
        Ok(Some(result)) => Some(result),
        // Thread teardown, or re-entered from `f`: the shared reference.
        _ => f.and_then(|f| current_locked().map(|core| f(&core))),
    }
}

fn current_locked() -> Option<Arc<TracerCore>> {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// Replaces the running tracer and tells the threads' caches.
fn set_current(core: Option<Arc<TracerCore>>) -> Option<Arc<TracerCore>> {
    let previous = std::mem::replace(
        &mut *CURRENT.write().unwrap_or_else(PoisonError::into_inner),
        core,
    );
    GENERATION.fetch_add(1, Ordering::Release);
    previous
}

fn install(config: Config) {
    *LAST_COUNTERS.lock().unwrap_or_else(PoisonError::into_inner) = None;
    crate::util::diagnostics::set_debug(config.debug);
    if config.startup_logs {
        crate::util::diagnostics::info(format_args!(
            "tracer {} started: service={:?} env={:?} version={:?} agent_url={} enabled={} sample_rate={:?} rate_limit={}",
            env!("CARGO_PKG_VERSION"),
            config.service,
            config.env.as_deref().unwrap_or(""),
            config.version.as_deref().unwrap_or(""),
            config.agent_url,
            config.enabled,
            config.sample_rate,
            config.rate_limit,
        ));
    }
    if !config.enabled {
        set_current(None);
        STATE.store(OFF, Ordering::Release);
        return;
    }
    crate::util::panic_message::install_hook();
    crate::util::clock::begin_calibration();
    let core = TracerCore::launch(config);
    set_current(Some(core));
    STATE.store(RUNNING, Ordering::Release);
    crate::util::process_hooks::at_exit(flush_at_exit);
    crate::util::process_hooks::in_forked_child(mark_forked);
}

pub(crate) fn start(config: Config) {
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(PoisonError::into_inner);
    stop_locked();
    install(config);
}

pub(crate) fn stop() -> bool {
    let _lifecycle = LIFECYCLE.lock().unwrap_or_else(PoisonError::into_inner);
    stop_locked()
}

fn stop_locked() -> bool {
    if matches!(STATE.swap(OFF, Ordering::AcqRel), FORKED | RESTARTING) {
        // A forked child that never restarted: the tracer is the parent's,
        // with no writer here to ask (it would wait out the whole timeout).
        std::mem::forget(set_current(None));
        return true;
    }
    match set_current(None) {
        Some(core) => {
            // From now on, chunks of this tracer's traces are counted as
            // finished after the stop.
            core.counters.stopped.store(true, Ordering::SeqCst);
            let delivered = core.shutdown();
            // A writer that did not answer in time is finishing a request
            // it started before the stop: what it holds stays counted as
            // buffered until it settles it (it ends soon after; `stats()`
            // reads these counters live).
            let stats = core.counters.settled_snapshot();
            *LAST_COUNTERS.lock().unwrap_or_else(PoisonError::into_inner) =
                Some(Arc::clone(&core.counters));
            let settled = stats.spans_dropped() == 0
                && stats.spans_unconfirmed == 0
                && stats.spans_buffered == 0;
            if !settled {
                crate::util::diagnostics::warn(format_args!("at shutdown: {stats}"));
            }
            delivered && settled
        }
        None => true,
    }
}

pub(crate) fn flush(timeout: Duration) -> bool {
    if STATE.load(Ordering::Acquire) == FORKED {
        restart_after_fork();
    }
    match CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
    {
        Some(core) => core.flush(timeout),
        None => true,
    }
}

pub(crate) fn stats() -> Stats {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        // Running: chunks in the writer's queue are counted once it takes
        // them (as queued), or at once if refused.
        .map(|core| core.counters.snapshot())
        .or_else(|| {
            LAST_COUNTERS
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .as_ref()
                .map(|counters| counters.settled_snapshot())
        })
        .unwrap_or_default()
}

/// The longest the process waits at exit for the last traces to go.
const EXIT_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// At process exit (return from `main`, `process::exit`): sends what has
/// finished, within [`EXIT_FLUSH_TIMEOUT`] (or the shutdown timeout, when
/// shorter). The exiting thread's open spans were finished just before, by
/// its stack's destructor.
fn flush_at_exit() {
    if STATE.load(Ordering::Acquire) != RUNNING {
        return;
    }
    let Some(core) = current_locked() else {
        return;
    };
    let timeout = core.config.shutdown_timeout.min(EXIT_FLUSH_TIMEOUT);
    if !core.flush(timeout) {
        crate::util::diagnostics::warn(format_args!(
            "at exit, not everything was delivered within {timeout:?}: {}",
            core.counters.snapshot()
        ));
    } else {
        crate::util::diagnostics::debug(format_args!("at exit: {}", core.counters.snapshot()));
    }
}

/// The running tracer's configuration, if one runs.
pub(crate) fn current_config() -> Option<Arc<TracerCore>> {
    CURRENT
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}
