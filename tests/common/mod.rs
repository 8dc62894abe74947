//! Helpers shared by the command-line tests.
#![allow(dead_code)] // each test file uses some of them

use std::path::Path;
use std::process::{Command, Output};

/// Runs the built `superopt` binary with `args`.
/// The latency model's figures are pinned to the Zen 4 table (`SUPEROPT_UARCH`), so that the
/// tests that read them pass on any CPU.
pub fn superopt(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_superopt"))
        .env("SUPEROPT_UARCH", "zen4")
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

/// `superopt bench TASK FILE --syntax intel --meter model` with its outputs and (empty) log
/// folder in `dir`: asserts success and returns the row whose subject starts with `name`.
pub fn bench_model_row(dir: &Path, task: &str, file: &str, name: &str) -> String {
    let o = superopt(&[
        "bench",
        task,
        file,
        "--syntax",
        "intel",
        "--meter",
        "model",
        "--log-dir",
        &dir.display().to_string(),
        "--csv",
        &dir.join("b.csv").display().to_string(),
        "--png",
        &dir.join("b.png").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    out.lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{out}"))
        .to_string()
}

/// `superopt search TASK --strategy astar --budget BUDGET --log-dir LOGS`: asserts that it
/// exits with `code` (0: a verified kernel; 1: none, or one proved but not run) and returns
/// stdout and the path of the log written (the only one under `LOGS/NAME/`, NAME the task's
/// name).
pub fn astar(task: &str, name: &str, budget: &str, logs: &str, code: i32) -> (String, String) {
    let o = superopt(&[
        "search",
        task,
        "--strategy",
        "astar",
        "--budget",
        budget,
        "--log-dir",
        logs,
    ]);
    assert_eq!(o.status.code(), Some(code), "{}", stderr(&o));
    let log = std::fs::read_dir(Path::new(logs).join(name))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path()
        .display()
        .to_string();
    (stdout(&o), log)
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

/// Builds the tests of an exported Rust module (`rustc --edition 2021 --test`, asserting that
/// rustc succeeded) next to it and runs them with `--nocapture` (so that what they print on
/// stderr, such as a skip, can be checked), both under [`limited`].
pub fn rustc_tests(module: &Path) -> Output {
    let exe = module.with_extension("tests");
    let o = limited(
        Command::new("rustc")
            .args(["--edition", "2021", "--test"])
            .arg(module)
            .arg("-o")
            .arg(&exe),
    )
    .unwrap();
    assert!(o.status.success(), "rustc: {}", stderr(&o));
    limited(Command::new(&exe).arg("--nocapture")).unwrap()
}

/// A C program that sorts `N` values of `T` with `NAME` on every tuple over the type's
/// extremes and on 2000 pseudo-random tuples (half of them small, so that ties happen), checks
/// each against insertion sort, and prints the count.
pub const C_SORT_TEST: &str = r#"
#include <stdio.h>
#include <stdint.h>
#include "NAME.h"

static int passed, total;

static void check(const T *in) {
    T got[N], want[N];
    for (int i = 0; i < N; i++) got[i] = want[i] = in[i];
    for (int i = 1; i < N; i++)
        for (int j = i; j > 0 && want[j - 1] > want[j]; j--) {
            T t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
        }
    NAME(got);
    total++;
    int ok = 1;
    for (int i = 0; i < N; i++) ok &= got[i] == want[i];
    passed += ok;
}

int main(void) {
    const T ext[] = EXTREMES;
    const int k = sizeof ext / sizeof ext[0];
    int count = 1;
    for (int i = 0; i < N; i++) count *= k;
    for (int code = 0; code < count; code++) {
        T v[N];
        for (int i = 0, c = code; i < N; i++, c /= k) v[i] = ext[c % k];
        check(v);
    }
    uint64_t s = 88172645463325252ull;
    for (int r = 0; r < 2000; r++) {
        T v[N];
        for (int i = 0; i < N; i++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            v[i] = r % 2 ? (T)(s % 3) : (T)s;
        }
        check(v);
    }
    printf("passed %d of %d\n", passed, total);
    return passed == total ? 0 : 1;
}
"#;

/// [`C_SORT_TEST`] for function `name` on `n` elements of Rust type `ty` (`i32`, `u64`, ...).
pub fn c_sort_test(name: &str, ty: &str, n: usize) -> String {
    let c_type = match ty {
        "i32" => "int32_t",
        "u32" => "uint32_t",
        "i64" => "int64_t",
        _ => "uint64_t",
    };
    C_SORT_TEST
        .replace("NAME", name)
        .replace("EXTREMES", c_extremes(ty))
        .replace(
            "\nstatic int passed",
            &format!("\n#define N {n}\ntypedef {c_type} T;\nstatic int passed"),
        )
}

/// The type's extremes in C.
pub fn c_extremes(ty: &str) -> &'static str {
    match ty {
        "i32" => "{0, 1, -1, INT32_MIN, INT32_MIN + 1, INT32_MAX - 1, INT32_MAX}",
        "u32" => "{0, 1, UINT32_MAX - 1, UINT32_MAX}",
        "i64" => "{0, 1, -1, INT64_MIN, INT64_MIN + 1, INT64_MAX - 1, INT64_MAX}",
        _ => "{0, 1, UINT64_MAX - 1, UINT64_MAX}",
    }
}
