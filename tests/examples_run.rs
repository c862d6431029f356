//! The examples, run against the test agent. `#[dd_span]` on `fn main` (sync,
//! and under `#[tokio::main]` in both
//! attribute orders) delivers the trace before the program exits, with no
//! explicit flush or stop. Each program is an example run as a child.

mod support;

use std::process::Command;
use std::time::Duration;

use support::agent::{flatten, span_by_name, TestAgent};

/// Runs an example: the binary `cargo test` already built next to this
/// test (same profile and features), else through `cargo run`.
fn run_example(name: &str, agent: &TestAgent) -> String {
    let built = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map(|target| target.join("debug").join("examples").join(name))
        .filter(|path| path.is_file());
    let mut command = match built {
        Some(binary) => Command::new(binary),
        None => {
            let mut cargo =
                Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned()));
            cargo.args(["run", "--quiet", "--example", name]);
            cargo
        }
    };
    let output = command
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env("DD_TRACE_AGENT_URL", agent.url())
        .env("DD_SERVICE", name)
        .env("DD_TRACE_STARTUP_LOGS", "false")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{name} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn instrumented_mains_deliver_before_exit() {
    for (example, root) in [
        ("main_sync", "main"),
        ("main_tokio_outer", "main"),
        ("main_tokio_inner", "main"),
    ] {
        let agent = TestAgent::start();
        let _ = run_example(example, &agent);
        // No flush from the test: the program delivered on its way out.
        let spans = flatten(agent.wait_for_spans(2, Duration::from_secs(5)));
        let main = span_by_name(&spans, root);
        let work = span_by_name(&spans, "work");
        assert_eq!(work["parent_id"], main["span_id"], "{example}");
        assert_eq!(main["service"], example);
    }
}

#[test]
fn the_distributed_example_is_one_trace_across_two_services() {
    let agent = TestAgent::start();
    let _ = run_example("distributed", &agent);
    let traces = agent.wait_for_spans(4, Duration::from_secs(10)); // main, checkout, request, count
    assert_eq!(traces.len(), 1, "one trace: {traces:#?}");
    let spans = flatten(traces);
    let checkout = span_by_name(&spans, "storefront.checkout");
    let inventory = span_by_name(&spans, "inventory.request");
    assert_eq!(
        inventory["parent_id"], checkout["span_id"],
        "continued across HTTP"
    );
    assert_eq!(checkout["service"], "storefront");
    assert_eq!(inventory["service"], "inventory");
    assert_eq!(
        span_by_name(&spans, "inventory.count")["parent_id"],
        inventory["span_id"]
    );
    assert_eq!(inventory["metrics"]["_dd.top_level"], 1.0);
    agent.assert_no_check_failures();
}

#[test]
fn the_quickstart_draws_its_trace_and_ships_it() {
    let agent = TestAgent::start();
    let output = run_example("quickstart", &agent);
    assert!(output.contains("shipped 8 spans to the agent"), "{output}");
    assert!(output.contains("└─ quickstart.run"), "the tree: {output}");
    assert!(
        output.contains("✗ ShopError: no product 9"),
        "the error: {output}"
    );
    let spans = flatten(agent.wait_for_spans(8, Duration::from_secs(5)));
    assert_eq!(spans.iter().filter(|s| s["error"] == 1).count(), 1);
    agent.assert_no_check_failures();
}
