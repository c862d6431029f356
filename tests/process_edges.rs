//! How a process around the tracer may end or misbehave, tried for real: the
//! child is this test binary run again with `DDSPAN_EDGE` naming what it
//! does, configured only by `DD_*` variables (the tracer starts itself), and
//! the parent checks its exit status and what its test agent received.
//!
//! The exit rows need no `tracer::stop()` or `flush()` in the child: the
//! tracer delivers at exit by itself. (A child here returns from a test
//! function and the test harness then returns from `main`: the same exit
//! path as a program whose `main` returns.)

mod support;

use std::io::{Read, Write};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use ddspan::{dd_span, tracer};
use support::agent::{flatten, span_by_name, TestAgent};

const MODE: &str = "DDSPAN_EDGE";

fn child_mode() -> Option<String> {
    std::env::var(MODE).ok()
}

/// Runs this binary's test `test` as a child in mode `mode` against `agent`
/// (or an unreachable agent), with `env` added.
fn child(test: &str, mode: &str, agent_url: &str, env: &[(&str, &str)]) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("the test binary"));
    command
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(MODE, mode)
        .env("DD_TRACE_AGENT_URL", agent_url)
        .env("DD_SERVICE", "edge-child")
        .env("DD_TRACE_WRITER_INTERVAL_SECONDS", "0.1");
    for (key, value) in env {
        command.env(key, value);
    }
    command
}

fn run(mut command: Command) -> Output {
    let output = command.output().expect("the child runs");
    assert!(
        output.status.success(),
        "the child failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Four spans, all finished: a root and three children.
fn four_spans() {
    let _root = tracer::trace("edge.root");
    for _ in 0..3 {
        drop(tracer::trace("edge.child"));
    }
}

fn four_spans_arrive(agent: &TestAgent, root: &str) {
    let spans = flatten(agent.wait_for_spans(4, Duration::from_secs(30)));
    assert_eq!(spans.len(), 4, "{spans:?}");
    let root = span_by_name(&spans, root);
    assert_eq!(root["parent_id"].as_u64().unwrap_or(0), 0, "{root}");
    agent.assert_no_check_failures();
}

#[test]
fn spans_finished_before_main_returns_are_delivered() {
    if let Some(mode) = child_mode() {
        assert_eq!(mode, "returns");
        four_spans();
        return;
    }
    let agent = TestAgent::start();
    run(child(
        "spans_finished_before_main_returns_are_delivered",
        "returns",
        &agent.url(),
        &[],
    ));
    four_spans_arrive(&agent, "edge.root");
}

#[test]
fn spans_finished_before_process_exit_are_delivered() {
    if child_mode().is_some() {
        four_spans();
        std::process::exit(0);
    }
    let agent = TestAgent::start();
    run(child(
        "spans_finished_before_process_exit_are_delivered",
        "exits",
        &agent.url(),
        &[],
    ));
    four_spans_arrive(&agent, "edge.root");
}

#[dd_span]
async fn task_work() {
    drop(tracer::trace("edge.task.child"));
}

#[test]
fn spans_of_a_tokio_program_without_an_instrumented_main_are_delivered() {
    if child_mode().is_some() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .build()
            .expect("a runtime");
        runtime.block_on(async {
            let first = tokio::spawn(task_work());
            let second = tokio::spawn(task_work());
            let _ = (first.await, second.await);
        });
        return;
    }
    let agent = TestAgent::start();
    run(child(
        "spans_of_a_tokio_program_without_an_instrumented_main_are_delivered",
        "tokio",
        &agent.url(),
        &[],
    ));
    let spans = flatten(agent.wait_for_spans(4, Duration::from_secs(30)));
    assert_eq!(spans.len(), 4, "{spans:?}");
    assert_eq!(spans.iter().filter(|s| s["name"] == "task_work").count(), 2);
    agent.assert_no_check_failures();
}

#[dd_span]
fn step() {}

/// An instrumented `main` that ends with `process::exit`: its own span is
/// still open then, and is finished at exit with the thread's stack.
#[dd_span]
fn main_like() {
    for _ in 0..3 {
        step();
    }
    std::process::exit(0);
}

#[test]
fn an_instrumented_main_that_calls_process_exit_is_delivered_whole() {
    if child_mode().is_some() {
        main_like();
    }
    let agent = TestAgent::start();
    run(child(
        "an_instrumented_main_that_calls_process_exit_is_delivered_whole",
        "dd_span_main_exits",
        &agent.url(),
        &[],
    ));
    four_spans_arrive(&agent, "main_like");
}

/// The child of the broken-stderr tests waits until its stdin closes: the
/// parent closes it only after closing the reading end of its stderr, so
/// every line the child writes meets a broken pipe.
fn wait_for_stdin_to_close() {
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
}

fn run_with_broken_stderr(mut command: Command) -> Output {
    let mut running = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the child runs");
    drop(running.stderr.take());
    drop(running.stdin.take());
    let output = running.wait_with_output().expect("the child ends");
    assert!(
        output.status.success(),
        "the child failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stdout)
    );
    output
}

#[test]
fn a_broken_stderr_does_not_stop_spans_or_the_startup_line() {
    if child_mode().is_some() {
        wait_for_stdin_to_close();
        four_spans(); // the startup line is written now, into the broken pipe
        assert!(tracer::stop());
        return;
    }
    let agent = TestAgent::start();
    run_with_broken_stderr(child(
        "a_broken_stderr_does_not_stop_spans_or_the_startup_line",
        "broken_stderr",
        &agent.url(),
        &[
            ("DD_TRACE_STARTUP_LOGS", "true"),
            ("DD_TRACE_DEBUG", "true"),
        ],
    ));
    four_spans_arrive(&agent, "edge.root");
}

#[test]
fn a_broken_stderr_does_not_kill_the_writer_when_it_warns() {
    if child_mode().is_some() {
        wait_for_stdin_to_close();
        four_spans();
        // Nothing listens: the writer warns (into the broken pipe) and keeps
        // going; stop() still gets its answer.
        tracer::flush(Duration::from_millis(500));
        four_spans();
        let delivered = tracer::stop();
        let stats = tracer::stats();
        let mut stdout = std::io::stdout().lock();
        writeln!(
            stdout,
            "delivered={delivered} queued={} failures={}",
            stats.spans_queued, stats.send_failures
        )
        .expect("stdout");
        return;
    }
    // A port nobody listens on: bind, learn it, close.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let output = run_with_broken_stderr(child(
        "a_broken_stderr_does_not_kill_the_writer_when_it_warns",
        "broken_stderr_writer",
        &format!("http://127.0.0.1:{port}"),
        &[("DD_TRACE_STARTUP_LOGS", "false")],
    ));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("delivered=false queued=8 failures="),
        "the child's report: {stdout}"
    );
    assert!(
        !stdout.contains("failures=0"),
        "the writer kept trying: {stdout}"
    );
}

/// Starts the process's first span from its `Drop`, while unwinding.
struct SpanWhenDropped;

impl Drop for SpanWhenDropped {
    fn drop(&mut self) {
        drop(tracer::trace("edge.unwinding"));
    }
}

#[test]
fn the_first_span_may_start_while_a_thread_panics() {
    if let Some(mode) = child_mode() {
        let caught = std::panic::catch_unwind(|| {
            let _guard = SpanWhenDropped;
            panic!("the first span starts in a Drop during this unwinding");
        });
        assert!(caught.is_err());
        if mode == "hook" {
            // An application panic hook that records the panic as a span.
            std::panic::set_hook(Box::new(|_| drop(tracer::trace("edge.panic.hook"))));
            let caught = std::panic::catch_unwind(|| panic!("recorded by the hook"));
            assert!(caught.is_err());
            let _ = std::panic::take_hook();
        }
        four_spans();
        assert!(tracer::stop());
        return;
    }
    for mode in ["drop", "hook"] {
        let agent = TestAgent::start();
        run(child(
            "the_first_span_may_start_while_a_thread_panics",
            mode,
            &agent.url(),
            &[],
        ));
        let expected = if mode == "hook" { 6 } else { 5 };
        let spans = flatten(agent.wait_for_spans(expected, Duration::from_secs(30)));
        assert_eq!(spans.len(), expected, "{mode}: {spans:?}");
        span_by_name(&spans, "edge.unwinding");
        agent.assert_no_check_failures();
    }
}

/// Waits for a forked child with a bound (a hung child is killed, and
/// reported as hung); its exit code.
#[allow(unsafe_code)]
fn wait_for_child(pid: libc::pid_t) -> i32 {
    let mut status = 0;
    for _ in 0..3000 {
        // SAFETY: waitpid on our own child, with a valid status pointer.
        let done = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
        if done == pid {
            return if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                -1
            };
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: kill and reap our own child.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
        libc::waitpid(pid, &mut status, 0);
    }
    panic!("forked child {pid} hung for a minute");
}

#[test]
#[allow(unsafe_code)]
fn a_forked_child_traces_on_its_own_with_new_ids_and_never_hangs() {
    const FORKS: usize = 20;
    if child_mode().is_some() {
        use std::sync::atomic::{AtomicBool, Ordering};
        use std::sync::Arc;
        drop(tracer::trace("parent.started"));
        // Threads that keep the span machinery and its locks busy while
        // the main thread forks.
        let stop = Arc::new(AtomicBool::new(false));
        let noise: Vec<_> = (0..2)
            .map(|_| {
                let stop = Arc::clone(&stop);
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        drop(tracer::trace("parent.noise"));
                        std::thread::sleep(Duration::from_micros(200));
                    }
                })
            })
            .collect();
        let mut codes = Vec::new();
        for i in 0..FORKS {
            // SAFETY: the child only traces, stops the tracer and _exits.
            let pid = unsafe { libc::fork() };
            if pid == 0 {
                {
                    let _root = tracer::trace(format!("fork.child.{i}"));
                    drop(tracer::trace("fork.grandchild"));
                }
                let delivered = tracer::stop();
                // SAFETY: leave the child without running the parent's
                // exit hooks or test harness twice.
                unsafe { libc::_exit(if delivered { 0 } else { 3 }) };
            }
            assert!(pid > 0, "fork failed");
            // The same thread goes on drawing ids in the parent.
            drop(tracer::trace(format!("fork.parent.{i}")));
            codes.push(wait_for_child(pid));
        }
        stop.store(true, Ordering::Relaxed);
        for thread in noise {
            thread.join().expect("a noise thread");
        }
        assert_eq!(codes, vec![0; FORKS], "each child delivered");
        assert!(tracer::stop());
        return;
    }
    let agent = TestAgent::start();
    run(child(
        "a_forked_child_traces_on_its_own_with_new_ids_and_never_hangs",
        "fork",
        &agent.url(),
        &[],
    ));
    let spans = flatten(agent.wait_for_spans(3 * FORKS + 1, Duration::from_secs(30)));
    let mut ids: Vec<u64> = spans
        .iter()
        .map(|s| s["span_id"].as_u64().expect("a span id"))
        .collect();
    let all = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), all, "a span id drawn twice (parent and child)");
    for i in 0..FORKS {
        let root = span_by_name(&spans, &format!("fork.child.{i}"));
        span_by_name(&spans, &format!("fork.parent.{i}"));
        let grandchild = spans
            .iter()
            .find(|s| s["name"] == "fork.grandchild" && s["parent_id"] == root["span_id"]);
        assert!(grandchild.is_some(), "child {i}'s trace arrived whole");
    }
    agent.assert_no_check_failures();
}
