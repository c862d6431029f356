//! Process start without ddspan: the baseline of `--bench process_start`.

fn main() {}
