//! The Python peers, pinned: ddapm-test-agent (Datadog's agent stand-in) and
//! ddtrace (Datadog's Python tracer), in one venv under the cargo target
//! dir: `<target>/ddspan-peers/venv`.
//!
//! Installed on first use by any test, from `PyPI` with `python3 -m venv` and
//! pip (`DDSPAN_PYTHON` names another interpreter). Safe when many test
//! threads and several test binaries ask at once: a `OnceLock` in the
//! process, a lock directory across processes (a lock whose owner died is
//! taken over), and an install into a staging venv that is renamed into place
//! only when complete, so a half-built venv is never used. A marker file in
//! the venv holds the pins; a venv with other pins is rebuilt.
//!
//! Any failure panics with pip's output: a test that needs the peers fails,
//! it never skips.

use std::ffi::OsStr;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant, SystemTime};

/// The packages the venv holds, exactly these versions.
pub const PINS: &[&str] = &["ddapm-test-agent==1.69.1", "ddtrace==4.16.0"];

/// The marker file's name, inside the venv.
const MARKER: &str = "ddspan-pins.txt";

/// How long a process waits for another one's install.
const LOCK_WAIT: Duration = Duration::from_secs(30 * 60);

/// A lock older than this is taken over even if its owner seems alive
/// (e.g. a pid reused after a crash).
const LOCK_MAX_AGE: Duration = Duration::from_secs(30 * 60);

/// The directory that holds the venv, its lock and its staging copies:
/// `<target>/ddspan-peers`.
pub fn peers_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is `<target>/tmp`; the peers live beside it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent (the cargo target dir)")
        .join("ddspan-peers")
}

/// The venv with the pinned peers, installed first if needed; panics
/// loudly (with pip's output) if it cannot be installed.
pub fn peers_venv() -> PathBuf {
    // A failure is kept too: every test that asks fails with the same
    // message, without trying the install again.
    static VENV: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    match VENV.get_or_init(install) {
        Ok(venv) => venv.clone(),
        Err(why) => panic!(
            "\n\nddspan tests: FAILED to install the Python peers ({}): {why}\n\
             The integration tests need Python 3 with venv and pip, and PyPI.\n",
            PINS.join(" ")
        ),
    }
}

/// The venv's Python interpreter (with ddtrace importable).
pub fn python() -> PathBuf {
    peers_venv().join("bin").join("python")
}

/// An executable script the peers installed into the venv's `bin`, e.g.
/// `ddapm-test-agent`.
pub fn venv_bin(name: &str) -> PathBuf {
    peers_venv().join("bin").join(name)
}

fn marker_text() -> String {
    let mut text = PINS.join("\n");
    text.push('\n');
    text
}

/// Complete, with the current pins, and its interpreter still there (a
/// venv's `python` links to the interpreter that made it).
fn is_ready(venv: &Path) -> bool {
    std::fs::read_to_string(venv.join(MARKER)).is_ok_and(|m| m.trim() == marker_text().trim())
        && venv.join("bin").join("python").exists()
}

fn install() -> Result<PathBuf, String> {
    let dir = peers_dir();
    let venv = dir.join("venv");
    if is_ready(&venv) {
        return Ok(venv);
    }
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let _lock = DirLock::acquire(&dir.join("install.lock"))?;
    if is_ready(&venv) {
        // Another process installed it while this one waited.
        return Ok(venv);
    }
    // Staging venvs left by killed installs: nobody else builds while we
    // hold the lock.
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            if entry
                .file_name()
                .to_string_lossy()
                .starts_with("venv-staging-")
            {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let python = std::env::var_os("DDSPAN_PYTHON").unwrap_or_else(|| "python3".into());
    let staging = dir.join(format!("venv-staging-{}", std::process::id()));
    let started = Instant::now();
    eprintln!(
        "ddspan tests: installing {} into {} (first use only, about 30 s)",
        PINS.join(" "),
        venv.display()
    );
    if let Err(why) = build(&python, &staging, &venv) {
        let _ = std::fs::remove_dir_all(&staging);
        return Err(why);
    }
    match std::fs::remove_dir_all(&venv) {
        Ok(()) => {}
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => {
            return Err(format!(
                "cannot remove the old venv {}: {e}",
                venv.display()
            ))
        }
    }
    std::fs::rename(&staging, &venv).map_err(|e| {
        format!(
            "cannot move {} to {}: {e}",
            staging.display(),
            venv.display()
        )
    })?;
    if !is_ready(&venv) {
        return Err(format!("the venv at {} is incomplete", venv.display()));
    }
    eprintln!(
        "ddspan tests: Python peers installed in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(venv)
}

/// Builds a complete venv at `staging`, ready to be renamed to `venv`.
fn build(python: &OsStr, staging: &Path, venv: &Path) -> Result<(), String> {
    run(
        Command::new(python)
            .args(["-m", "venv", "--prompt", "ddspan-peers"])
            .arg(staging),
        "create a venv (DDSPAN_PYTHON names another python3)",
    )?;
    run(
        Command::new(staging.join("bin").join("python"))
            .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
            .args(PINS),
        "pip install the pinned peers",
    )?;
    // A venv's scripts name their interpreter by absolute path: point them
    // at the final place before the venv is seen there.
    relocate(staging, venv)?;
    let marker = staging.join(MARKER);
    std::fs::write(&marker, marker_text())
        .map_err(|e| format!("cannot write {}: {e}", marker.display()))
}

/// Rewrites the absolute paths to `from` in a venv's scripts and config
/// (shebangs, activate scripts, pyvenv.cfg) to `to`.
fn relocate(from: &Path, to: &Path) -> Result<(), String> {
    let (old, new) = (from.to_string_lossy(), to.to_string_lossy());
    let bin = std::fs::read_dir(from.join("bin"))
        .map_err(|e| format!("cannot read {}/bin: {e}", from.display()))?;
    let files = bin
        .flatten()
        .map(|entry| entry.path())
        .chain([from.join("pyvenv.cfg")]);
    for path in files {
        if path.is_symlink() || !path.is_file() {
            continue;
        }
        // Binary files are not UTF-8 and are left alone.
        if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains(old.as_ref()) {
                std::fs::write(&path, text.replace(old.as_ref(), &new))
                    .map_err(|e| format!("cannot rewrite {}: {e}", path.display()))?;
            }
        }
    }
    Ok(())
}

/// Runs an install step non-interactively; its output is the error if it
/// fails.
fn run(command: &mut Command, what: &str) -> Result<(), String> {
    command
        .stdin(Stdio::null())
        .env("PIP_NO_INPUT", "1")
        .env("PIP_DISABLE_PIP_VERSION_CHECK", "1");
    let output = command
        .output()
        .map_err(|e| format!("cannot {what}: cannot run {command:?}: {e}"))?;
    if output.status.success() {
        return Ok(());
    }
    Err(format!(
        "cannot {what}: {command:?} exited with {}\n\
         --- stderr ---\n{}\n--- stdout ---\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr).trim_end(),
        String::from_utf8_lossy(&output.stdout).trim_end(),
    ))
}

/// A lock across processes: a directory created atomically, with a file
/// naming its owner's pid. A lock whose owner is gone (or older than
/// [`LOCK_MAX_AGE`]) was left by a killed process and is taken over.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> Result<DirLock, String> {
        let started = Instant::now();
        let mut waiting = false;
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => {
                    let _ = std::fs::write(path.join("pid"), std::process::id().to_string());
                    return Ok(DirLock(path.to_owned()));
                }
                Err(e) if e.kind() == ErrorKind::AlreadyExists => {
                    if is_stale(path) {
                        // Rename first, so two waiters never both remove
                        // (one of them a lock just taken by the other).
                        let grave = path.with_extension(format!(
                            "stale-{}-{}",
                            std::process::id(),
                            SystemTime::now()
                                .duration_since(SystemTime::UNIX_EPOCH)
                                .unwrap_or_default()
                                .as_nanos()
                        ));
                        if std::fs::rename(path, &grave).is_ok() {
                            let _ = std::fs::remove_dir_all(&grave);
                        }
                        continue;
                    }
                    if !waiting {
                        waiting = true;
                        eprintln!(
                            "ddspan tests: waiting for another process installing the Python peers ({})",
                            path.display()
                        );
                    }
                    if started.elapsed() > LOCK_WAIT {
                        return Err(format!(
                            "waited {LOCK_WAIT:?} for the install lock {}; \
                             remove it if no install is running",
                            path.display()
                        ));
                    }
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => return Err(format!("cannot create {}: {e}", path.display())),
            }
        }
    }
}

/// Whether a lock directory was left by a process that is gone.
fn is_stale(path: &Path) -> bool {
    let age = std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    let Some(age) = age else {
        // Gone already (released), or unreadable: try again.
        return false;
    };
    if age > LOCK_MAX_AGE {
        return true;
    }
    match std::fs::read_to_string(path.join("pid")) {
        Ok(pid) => match pid.trim().parse::<u32>() {
            Ok(pid) => !process_alive(pid),
            Err(_) => age > Duration::from_secs(10),
        },
        // Its owner creates the directory, then writes the pid: give it
        // time to do so.
        Err(_) => age > Duration::from_secs(10),
    }
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    if Path::new("/proc/self").exists() {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    // No procfs (macOS): `kill -0` tells whether the process exists.
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_or(true, |s| s.success())
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
