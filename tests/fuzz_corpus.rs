//! Replays the extract fuzz target's corpus and its past crashes (named
//! after what they found) as a regular test, so `cargo test` guards what
//! fuzzing learned. Fuzz further with `cargo fuzz run extract` (README).

use std::path::Path;

fn replay(dir: &str) -> usize {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut count = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let outcome = std::panic::catch_unwind(|| ddspan::__fuzz::check_extract(&data));
        assert!(
            outcome.is_ok(),
            "{} fails the extract property",
            path.display()
        );
        count += 1;
    }
    count
}

#[test]
fn extract_corpus_and_regressions_hold() {
    assert!(replay("fuzz/corpus/extract") >= 3);
    assert!(replay("fuzz/regressions/extract") >= 2);
}
