//! CPU time (user + system) of this process, its waited-for children, and
//! its live threads by name, for `--bench whole_process`.

use std::collections::BTreeMap;
use std::time::Duration;

fn rusage(who: libc::c_int) -> Duration {
    // SAFETY: `getrusage` writes one `rusage` we own; a zeroed `rusage` is
    // a valid value of that plain C struct.
    #[allow(unsafe_code)]
    let usage = unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        libc::getrusage(who, &mut usage);
        usage
    };
    let micros = |t: libc::timeval| t.tv_sec as u64 * 1_000_000 + t.tv_usec as u64;
    Duration::from_micros(micros(usage.ru_utime) + micros(usage.ru_stime))
}

/// Every thread of this process so far, those that ended included.
pub(crate) fn process() -> Duration {
    rusage(libc::RUSAGE_SELF)
}

/// The children this process has waited for, all their threads.
pub(crate) fn children() -> Duration {
    rusage(libc::RUSAGE_CHILDREN)
}

/// The live threads' CPU grouped by name (`producer-0` and `producer-1`
/// are `producer-*`), from `/proc/self/task/*/stat` (clock ticks, so
/// 10 ms steps), largest first, and what ended threads used (the process's
/// total less the live threads'): `"producer-* 812 ms, ddspan-writer
/// 95 ms, ..., ended threads 3 ms"`.
pub(crate) fn threads() -> String {
    // SAFETY: `sysconf` only reads a configuration value.
    #[allow(unsafe_code)]
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let total = process();
    let mut by_name: BTreeMap<String, f64> = BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return "no /proc/self/task".to_owned();
    };
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        // `pid (comm) state ...`: comm may hold spaces and parentheses.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = &stat[open + 1..close];
        let name = match name.rsplit_once('-') {
            Some((stem, n)) if n.chars().all(|c| c.is_ascii_digit()) && !n.is_empty() => {
                format!("{stem}-*")
            }
            _ => name.to_owned(),
        };
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        // Fields 14 and 15 of stat(5), utime and stime; `state` is field 3.
        let (Some(user), Some(system)) = (fields.get(11), fields.get(12)) else {
            continue;
        };
        let used = user.parse::<f64>().unwrap_or(0.0) + system.parse::<f64>().unwrap_or(0.0);
        *by_name.entry(name).or_default() += used / ticks * 1e3;
    }
    let live: f64 = by_name.values().sum();
    let mut sorted: Vec<(String, f64)> = by_name.into_iter().filter(|(_, ms)| *ms > 0.0).collect();
    sorted.sort_by(|a, b| b.1.total_cmp(&a.1));
    let mut parts: Vec<String> = sorted
        .iter()
        .map(|(name, ms)| format!("{name} {ms:.0} ms"))
        .collect();
    parts.push(format!(
        "ended threads {:.0} ms",
        (total.as_secs_f64() * 1e3 - live).max(0.0)
    ));
    parts.join(", ")
}
