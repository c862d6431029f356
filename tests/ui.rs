//! The macros' compile errors, one case each (`tests/ui/fail/*.rs` with
//! its `.stderr`), and code that must compile (`tests/ui/pass`).
//! Regenerate expectations with `TRYBUILD=overwrite cargo test --test ui`.

#[test]
fn ui() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/ui/fail/*.rs");
    cases.pass("tests/ui/pass/*.rs");
}
