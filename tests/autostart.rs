//! Zero code: a program that only creates spans, configured by `DD_*`
//! variables alone, starts the tracer by itself and ships its traces.
//! The program is this test binary again, run as a child with the variables
//! set, so the tracer really starts from a fresh process's environment.

mod support;

use std::process::Command;
use std::time::Duration;

use support::agent::{flatten, meta, span_by_name, TestAgent};

const CHILD: &str = "DDSPAN_AUTOSTART_CHILD";

#[test]
fn the_tracer_starts_itself_from_the_environment() {
    if std::env::var_os(CHILD).is_some() {
        // The child: spans with no set-up at all.
        {
            let _root = ddspan::tracer::trace("from.env");
            drop(ddspan::tracer::trace("child"));
        }
        assert!(ddspan::tracer::stop());
        return;
    }
    let agent = TestAgent::start();
    let output = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "the_tracer_starts_itself_from_the_environment",
            "--nocapture",
        ])
        .env(CHILD, "1")
        .env("DD_TRACE_AGENT_URL", agent.url())
        .env("DD_SERVICE", "env-service")
        .env("DD_ENV", "staging")
        .env("DD_VERSION", "4.5.6")
        .env("DD_TAGS", "team:apm region:eu")
        .env("DD_TRACE_SAMPLE_RATE", "not-a-rate")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "the child failed: {stderr}");
    assert_eq!(
        stderr.matches("DD_TRACE_SAMPLE_RATE").count(),
        1,
        "one warning for the malformed rate: {stderr}"
    );
    assert!(
        stderr.contains("tracer 0.1.0 started"),
        "a startup line: {stderr}"
    );

    let spans = flatten(agent.wait_for_spans(2, Duration::from_secs(20)));
    let root = span_by_name(&spans, "from.env");
    for span in &spans {
        assert_eq!(span["service"], "env-service");
        assert_eq!(meta(span, "env"), Some("staging"));
        assert_eq!(meta(span, "version"), Some("4.5.6"));
        assert_eq!(meta(span, "team"), Some("apm"));
        assert_eq!(meta(span, "region"), Some("eu"));
    }
    assert_eq!(
        meta(root, "_dd.p.dm"),
        Some("-0"),
        "the bad rate fell back to no rule"
    );
    agent.assert_no_check_failures();
}
