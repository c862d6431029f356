//! Replays the fuzz targets' corpora and their past findings (named after
//! what they found) as regular tests, so `cargo test` guards what fuzzing
//! learned. Fuzz further with `cargo fuzz run extract` or
//! `cargo fuzz run agent_answer` (README).
//!
//! The agent-answer reader and its property are the runtime's own files,
//! included as they are (std only), as its fuzz target does.

use std::path::Path;

#[allow(dead_code, unreachable_pub)]
#[path = "../ddspan-runtime/src/export/transport/wire.rs"]
mod wire;

#[allow(dead_code, unreachable_pub)]
#[path = "../ddspan-runtime/src/export/transport/check.rs"]
mod check;

/// Runs `property` on every file of `dir` (under the package); how many.
fn replay(dir: &str, property: fn(&[u8]), name: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| property(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the {name} property",
            path.display()
        );
        count += 1;
    }
    count
}

fn extract(data: &[u8]) {
    ddspan::__fuzz::check_extract(data);
}

fn agent_answer(data: &[u8]) {
    check::check_answer(data);
}

#[test]
fn extract_corpus_and_regressions_hold() {
    assert!(replay("fuzz/corpus/extract", extract, "extract") >= 3);
    assert!(replay("fuzz/regressions/extract", extract, "extract") >= 2);
}

#[test]
fn agent_answer_corpus_and_regressions_hold() {
    assert!(replay("fuzz/corpus/agent_answer", agent_answer, "agent-answer") >= 6);
    assert!(
        replay(
            "fuzz/regressions/agent_answer",
            agent_answer,
            "agent-answer"
        ) >= 3
    );
}
