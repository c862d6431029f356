//! What linking a tracer costs a process that starts and exits: wall time
//! and CPU time of tiny programs, run alternately in rounds so that the
//! machine's drift hits them alike. Prints medians and the differences
//! from the program without a tracer.
//!
//! `cargo bench -p ddspan-benches --bench process_start` (`ROUNDS=n`).

use std::process::Command;
use std::time::{Duration, Instant};

struct Program {
    label: &'static str,
    path: &'static str,
    arg: &'static str,
}

const PROGRAMS: [Program; 4] = [
    Program {
        label: "no tracer",
        path: env!("CARGO_BIN_EXE_start-plain"),
        arg: "",
    },
    Program {
        label: "ddspan linked, tracer never started",
        path: env!("CARGO_BIN_EXE_start-linked"),
        arg: "idle",
    },
    Program {
        label: "ddspan, DD_TRACE_ENABLED=false, one #[dd_span] Err",
        path: env!("CARGO_BIN_EXE_start-linked"),
        arg: "disabled",
    },
    Program {
        label: "fastrace linked (fastant calibrates before main)",
        path: env!("CARGO_BIN_EXE_start-fastrace"),
        arg: "",
    },
];

/// CPU time (user + system) of this process's waited-for children so far.
fn children_cpu() -> Duration {
    // SAFETY: `getrusage` writes one `rusage` we own; a zeroed `rusage` is
    // a valid value of that plain C struct.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// One run: wall time from spawn to exit, and the child's CPU time (user +
/// system, all its threads, constructors before `main` included).
fn run(program: &Program) -> (Duration, Duration) {
    let cpu_before = children_cpu();
    let started = Instant::now();
    let output = Command::new(program.path)
        .arg(program.arg)
        .env("DD_TRACE_ENABLED", "false")
        .output()
        .expect("the start bench's program runs");
    let wall = started.elapsed();
    assert!(output.status.success(), "{} failed", program.label);
    (wall, children_cpu() - cpu_before)
}

fn median(mut values: Vec<Duration>) -> Duration {
    values.sort();
    values[values.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument is not supported.
    let rounds: usize = std::env::var("ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let mut walls = vec![Vec::new(); PROGRAMS.len()];
    let mut cpus = vec![Vec::new(); PROGRAMS.len()];
    for program in &PROGRAMS {
        run(program); // page cache warm
    }
    for _ in 0..rounds {
        for (i, program) in PROGRAMS.iter().enumerate() {
            let (wall, cpu) = run(program);
            walls[i].push(wall);
            cpus[i].push(cpu);
        }
    }
    let base_wall = ms(median(walls[0].clone()));
    let base_cpu = ms(median(cpus[0].clone()));
    println!("process start and exit, {rounds} rounds, medians:");
    println!(
        "{:<52} {:>9} {:>9} {:>9} {:>9}",
        "program", "wall ms", "+wall ms", "cpu ms", "+cpu ms"
    );
    for (i, program) in PROGRAMS.iter().enumerate() {
        let wall = ms(median(walls[i].clone()));
        let cpu = ms(median(cpus[i].clone()));
        println!(
            "{:<52} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
            program.label,
            wall,
            wall - base_wall,
            cpu,
            cpu - base_cpu
        );
    }
}
