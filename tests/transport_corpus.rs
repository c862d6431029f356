//! Replays the `agent_answer` fuzz target's corpus and its past findings
//! (named after what they reproduce) as a regular test, so `cargo test`
//! guards what fuzzing learned. Fuzz further with
//! `cargo fuzz run agent_answer` (README).
//!
//! The reader and its property are the runtime's own files, included as
//! they are (std only), as the fuzz target does.

#[allow(dead_code, unreachable_pub)]
#[path = "../ddspan-runtime/src/export/transport/wire.rs"]
mod wire;

#[allow(dead_code, unreachable_pub)]
#[path = "../ddspan-runtime/src/export/transport/check.rs"]
mod check;

use std::path::Path;

fn replay(dir: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| check::check_answer(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the agent-answer property",
            path.display()
        );
        count += 1;
    }
    count
}

#[test]
fn agent_answer_corpus_and_regressions_hold() {
    assert!(replay("fuzz/corpus/agent_answer") >= 6);
    assert!(replay("fuzz/regressions/agent_answer") >= 3);
}
