//! How much CPU a thread that mostly sleeps (the writer, the sender, an
//! agent on the same machine) gets while many application threads are
//! busy: the ceiling on what a tracer's background thread can do during a
//! burst (issue #15, item 3). No tracer involved.
//!
//! A thread wakes every 2 ms and works 100 µs, for 500 ms, while N other
//! threads spin; it reports its wake-ups, how late the worst one was and
//! the work it got done. `cargo bench -p ddspan-benches --bench cpu_share`
//! (`CPU_SHARE_SPINNERS`: a comma list of N, `0,2,30,300` by default).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const PERIOD: Duration = Duration::from_millis(2);
const WORK: Duration = Duration::from_micros(100);
const RUN: Duration = Duration::from_millis(500);

fn measure(spinners: usize) {
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = (0..spinners)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut x = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(10));
    let started = Instant::now();
    let (mut wakes, mut worst, mut work) = (0, Duration::ZERO, Duration::ZERO);
    while started.elapsed() < RUN {
        let asleep = Instant::now();
        std::thread::sleep(PERIOD);
        worst = worst.max(asleep.elapsed().saturating_sub(PERIOD));
        wakes += 1;
        let working = Instant::now();
        while working.elapsed() < WORK {}
        work += working.elapsed();
    }
    stop.store(true, Ordering::Relaxed);
    for thread in threads {
        thread.join().expect("a spinner");
    }
    println!(
        "{spinners:>4} spinning threads: {wakes:>4} wake-ups in {RUN:?}, the latest {worst:>10.1?} late, {work:>8.1?} of work done"
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo bench` probes harness=false benches with --list
    }
    let spinners = std::env::var("CPU_SHARE_SPINNERS").unwrap_or_else(|_| "0,2,30,300".to_owned());
    println!("a thread sleeping {PERIOD:?} then working {WORK:?}, for {RUN:?}, while others spin:");
    for n in spinners.split(',').filter_map(|n| n.trim().parse().ok()) {
        measure(n);
    }
}
