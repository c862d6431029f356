//! The Python peers, pinned: ddapm-test-agent (the agent stand-in) and
//! ddtrace (Datadog's Python tracer), in a venv under the cargo target dir.
//!
//! Installed on first use by any test; safe when several test threads and
//! test binaries ask at once (an in-process once, a cross-process lock
//! directory, and an install into a temporary venv renamed into place).
//! Any failure panics: a test that needs the peers never silently skips.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

const PINS: &[&str] = &["ddapm-test-agent==1.69.1", "ddtrace==4.16.0"];

fn peers_dir() -> PathBuf {
    // CARGO_TARGET_TMPDIR is <target>/tmp; the venv lives beside it.
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR has a parent")
        .join("ddspan-peers")
}

/// The venv's directory, installing it if needed.
pub fn peers_venv() -> PathBuf {
    static VENV: OnceLock<PathBuf> = OnceLock::new();
    VENV.get_or_init(install).clone()
}

/// The venv's python interpreter.
pub fn python() -> PathBuf {
    peers_venv().join("bin").join("python")
}

fn marker() -> String {
    PINS.join("\n")
}

fn install() -> PathBuf {
    let dir = peers_dir();
    let venv = dir.join("venv");
    let marker_file = venv.join("ddspan-pins.txt");
    let ready = || std::fs::read_to_string(&marker_file).is_ok_and(|m| m == marker());
    if ready() {
        return venv;
    }
    std::fs::create_dir_all(&dir).expect("create the peers directory");
    let _lock = DirLock::acquire(&dir.join("install.lock"));
    if ready() {
        return venv;
    }
    let python = std::env::var("DDSPAN_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let staging = dir.join(format!("venv-staging-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    eprintln!(
        "ddspan tests: installing {} into {} (first use only)",
        PINS.join(" "),
        venv.display()
    );
    run(
        Command::new(&python).arg("-m").arg("venv").arg(&staging),
        "create the venv",
    );
    run(
        Command::new(staging.join("bin").join("pip"))
            .args(["install", "--disable-pip-version-check", "-q"])
            .args(PINS),
        "pip install the peers",
    );
    std::fs::write(staging.join("ddspan-pins.txt"), marker()).expect("write the pins marker");
    let _ = std::fs::remove_dir_all(&venv);
    // A venv's scripts name their interpreter by absolute path: create it in
    // place by renaming, then rewrite the shebangs and pyvenv.cfg paths.
    std::fs::rename(&staging, &venv).expect("move the venv into place");
    relocate(&venv, &staging);
    assert!(ready(), "the venv at {} is incomplete", venv.display());
    venv
}

/// Points the scripts of a venv renamed from `old` at its new place.
fn relocate(venv: &Path, old: &Path) {
    let (old, new) = (
        old.to_string_lossy().into_owned(),
        venv.to_string_lossy().into_owned(),
    );
    let bin = venv.join("bin");
    for entry in std::fs::read_dir(&bin)
        .expect("read the venv's bin")
        .flatten()
    {
        let path = entry.path();
        if path.is_symlink() || !path.is_file() {
            continue;
        }
        if let Ok(text) = std::fs::read_to_string(&path) {
            if text.contains(&old) {
                std::fs::write(&path, text.replace(&old, &new)).expect("rewrite a venv script");
            }
        }
    }
}

fn run(command: &mut Command, what: &str) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("ddspan tests: cannot {what}: {e} ({command:?})"));
    assert!(
        output.status.success(),
        "ddspan tests: failed to {what} ({command:?}): {}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A cross-process lock: a directory created atomically; a lock older than
/// ten minutes is taken to be left by a killed process.
struct DirLock(PathBuf);

impl DirLock {
    fn acquire(path: &Path) -> DirLock {
        let started = Instant::now();
        loop {
            match std::fs::create_dir(path) {
                Ok(()) => return DirLock(path.to_owned()),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let stale = std::fs::metadata(path)
                        .and_then(|m| m.modified())
                        .is_ok_and(|t| t.elapsed().unwrap_or_default() > Duration::from_secs(600));
                    if stale {
                        let _ = std::fs::remove_dir(path);
                        continue;
                    }
                    assert!(
                        started.elapsed() < Duration::from_secs(900),
                        "ddspan tests: waited 15 minutes for {}",
                        path.display()
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!("ddspan tests: cannot create {}: {e}", path.display()),
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.0);
    }
}
