//! The console draws every finished trace on stderr whatever else takes the
//! trace: here the in-memory exporter, which used to silence it. Each case
//! runs this test binary again as a child (the tracer is process-wide, and
//! the console writes to the real stderr) and reads what it printed.

use std::process::Command;

use ddspan::tracer;
use ddspan::Config;
use ddspan::MemoryExporter;

/// Set in the child to the case it runs.
const CHILD: &str = "DDSPAN_CONSOLE_TEST_CHILD";

/// The child: a trace of two spans, kept in memory, with the console on
/// in code or by `DDSPAN_CONSOLE`.
fn child(console_in_code: bool) {
    let spans = MemoryExporter::new();
    let mut config = Config::builder()
        .service("console-test")
        .env("dev")
        .startup_logs(false)
        .memory_exporter(spans.clone());
    if console_in_code {
        config = config.console(true);
    }
    tracer::start(config.build());
    {
        let _root = tracer::trace("checkout");
        drop(tracer::trace("lookup"));
    }
    assert!(tracer::stop());
    let kept: Vec<String> = spans.take().into_iter().map(|s| s.name).collect();
    assert_eq!(
        kept,
        ["lookup", "checkout"],
        "the memory exporter still has them"
    );
}

/// Runs `test` of this binary as a child with `env`; its stderr.
fn run_child(test: &str, env: &[(&str, &str)]) -> String {
    let output = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads=1"])
        .env(CHILD, test)
        .env_remove("DDSPAN_CONSOLE")
        .envs(env.iter().copied())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(output.status.success(), "the child failed: {stderr}");
    stderr
}

fn assert_draws_the_tree(stderr: &str) {
    let tree = "service console-test · env dev\n└─ checkout  ";
    assert!(stderr.contains(tree), "the trace line and root: {stderr}");
    assert!(
        stderr.contains("   └─ lookup  "),
        "the child under it: {stderr}"
    );
    assert_eq!(stderr.matches("└─ checkout").count(), 1, "once: {stderr}");
}

fn is_child(test: &str) -> bool {
    std::env::var(CHILD).is_ok_and(|case| case == test)
}

#[test]
fn the_console_set_in_code_draws_traces_kept_in_memory() {
    const TEST: &str = "the_console_set_in_code_draws_traces_kept_in_memory";
    if is_child(TEST) {
        return child(true);
    }
    assert_draws_the_tree(&run_child(TEST, &[]));
}

#[test]
fn ddspan_console_draws_traces_kept_in_memory() {
    const TEST: &str = "ddspan_console_draws_traces_kept_in_memory";
    if is_child(TEST) {
        return child(false);
    }
    assert_draws_the_tree(&run_child(TEST, &[("DDSPAN_CONSOLE", "true")]));
}

#[test]
fn without_the_console_nothing_is_drawn() {
    const TEST: &str = "without_the_console_nothing_is_drawn";
    if is_child(TEST) {
        return child(false);
    }
    let stderr = run_child(TEST, &[]);
    assert!(!stderr.contains("└─"), "{stderr}");
}
