//! The hygiene pass case, built as a normal test too so that clippy (which
//! trybuild does not run) checks its `deny(clippy::all, clippy::pedantic)`.

#[path = "ui/pass/hygiene.rs"]
mod hygiene;

#[test]
fn hygiene_case_runs() {
    hygiene::main();
}
