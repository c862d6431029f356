//! Bodies of fallible functions that the rewrite must leave compiling
//! without warnings: `unsafe` code around `?`, and bodies that never reach
//! their end (nothing is left to check after them).
#![deny(warnings, clippy::all)]
#![allow(dead_code)]

use std::num::ParseIntError;

use ddspan::dd_span;

/// # Safety
/// `p` is valid.
#[dd_span]
unsafe fn read(p: *const Result<u8, u8>) -> Result<u8, u8> {
    let value = unsafe { *p }?;
    Ok(value)
}

/// # Safety
/// Always safe.
unsafe fn parse_unchecked(text: &str) -> Result<u8, ParseIntError> {
    text.parse()
}

#[dd_span]
fn unsafe_operand(text: &str) -> Result<u8, ParseIntError> {
    // SAFETY: always safe.
    let value = unsafe { parse_unchecked(text) }?;
    Ok(value)
}

#[dd_span]
fn unfinished() -> Result<u8, ParseIntError> {
    todo!()
}

#[dd_span]
fn unimplemented_body(text: &str) -> Result<u8, ParseIntError> {
    unimplemented!("{text}")
}

#[dd_span]
fn panics(text: &str) -> Result<u8, ParseIntError> {
    panic!("{text}")
}

#[dd_span]
fn exits(code: i32) -> Result<u8, ParseIntError> {
    std::process::exit(code)
}

#[dd_span]
fn spins() -> std::io::Result<()> {
    loop {
        std::thread::yield_now();
    }
}

#[dd_span]
fn serve(requests: &[&str]) -> Result<(), ParseIntError> {
    let mut i = 0;
    loop {
        let _: u8 = requests[i].parse()?;
        i += 1;
    }
}

mod server {
    /// A `main` (flushes when it returns) that never returns.
    #[ddspan::dd_span]
    pub(crate) fn main() {
        loop {
            std::thread::park();
        }
    }
}

#[dd_span]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let value: u8 = "1".parse()?;
    if value == 0 {
        return Err("zero".into());
    }
    // SAFETY: a valid pointer.
    let read = unsafe { read(&Ok(1)) };
    assert_eq!(read, Ok(1));
    assert_eq!(unsafe_operand("2"), Ok(2));
    Ok(())
}
