//! Helpers shared by the command-line tests.
#![allow(dead_code)] // each test file uses some of them

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `superopt` binary with `args`.
pub fn superopt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_superopt"))
        .args(args)
        .output()
        .expect("run superopt")
}

/// The process's stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The process's stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p.display().to_string()
}

/// Output of an external tool (gcc, rustc, cargo, the programs they build), run with a
/// 10-minute time limit so that a hang fails the test instead of stalling CI.
pub fn limited(cmd: &mut Command) -> std::io::Result<Output> {
    let limits = superopt::tool::Limits {
        time: std::time::Duration::from_secs(600),
        memory: None,
    };
    superopt::tool::run(cmd, "an external tool", limits).map_err(std::io::Error::other)
}

/// Whether `tool --version` runs; prints a note when it does not, so a skip is visible.
pub fn have(tool: &str) -> bool {
    let ok = limited(Command::new(tool).arg("--version")).is_ok_and(|o| o.status.success());
    if !ok {
        eprintln!("note: {tool} not found; skipping the part of this test that needs it");
    }
    ok
}

/// Builds `exe` from `sources` (C and assembly files) with `gcc -O2 -Wall -Werror`, asserts
/// that gcc succeeded, runs it, and returns its output (both under [`limited`]).
pub fn gcc_run(exe: &Path, sources: &[&Path]) -> Output {
    let o = limited(
        Command::new("gcc")
            .args(["-O2", "-Wall", "-Werror", "-o"])
            .arg(exe)
            .args(sources),
    )
    .unwrap();
    assert!(o.status.success(), "gcc: {}", stderr(&o));
    limited(&mut Command::new(exe)).unwrap()
}
