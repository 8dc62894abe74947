//! `superopt export`: the written files compile, link and sort with real toolchains (gcc,
//! rustc, cargo), and bad input gets one-line errors with the right exit codes.

mod common;

use common::{gcc_run, have, limited, stderr, stdout, superopt, write};
use std::path::Path;
use std::process::Command;

const SORT3_LOG: &str = "search-logs/examples/sort3-mcts-seed1.json";

/// Runs `superopt export ARGS`, asserts exit 0, and returns stdout.
fn export_ok(args: &[&str]) -> String {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let o = superopt(&all);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(stderr(&o), "");
    stdout(&o)
}

/// Runs `superopt export ARGS` and returns (exit code, stderr).
fn export_err(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["export"];
    all.extend_from_slice(args);
    let o = superopt(&all);
    (o.status.code(), stderr(&o))
}

/// A C program that checks `NAME` against insertion sort on all 13 weak orderings of 3
/// elements, all 343 tuples over 7 extremes and 1000 random tuples, and prints the count.
const C_TEST: &str = r#"
#include <stdio.h>
#include <stdint.h>
#include "NAME.h"

static int passed, total;

static void check(const int32_t *in) {
    int32_t got[3] = {in[0], in[1], in[2]}, want[3] = {in[0], in[1], in[2]};
    for (int i = 1; i < 3; i++)
        for (int j = i; j > 0 && want[j - 1] > want[j]; j--) {
            int32_t t = want[j]; want[j] = want[j - 1]; want[j - 1] = t;
        }
    NAME(got);
    total++;
    if (got[0] == want[0] && got[1] == want[1] && got[2] == want[2]) passed++;
    else printf("FAIL %d %d %d\n", in[0], in[1], in[2]);
}

int main(void) {
    int orderings = 0;
    for (int a = 0; a < 3; a++) for (int b = 0; b < 3; b++) for (int c = 0; c < 3; c++) {
        int max = a > b ? (a > c ? a : c) : (b > c ? b : c);
        int has[3] = {0, 0, 0};
        has[a] = has[b] = has[c] = 1;
        int dense = 1;
        for (int k = 0; k <= max; k++) dense &= has[k];
        if (!dense) continue;
        int32_t v[3] = {a, b, c};
        check(v);
        orderings++;
    }
    const int32_t ext[7] = {INT32_MIN, INT32_MIN + 1, -1, 0, 1, INT32_MAX - 1, INT32_MAX};
    for (int a = 0; a < 7; a++) for (int b = 0; b < 7; b++) for (int c = 0; c < 7; c++) {
        int32_t v[3] = {ext[a], ext[b], ext[c]};
        check(v);
    }
    uint64_t s = 88172645463325252ull;
    for (int i = 0; i < 1000; i++) {
        int32_t v[3];
        for (int k = 0; k < 3; k++) {
            s ^= s << 13; s ^= s >> 7; s ^= s << 17;
            v[k] = (int32_t)(uint32_t)(s >> 32);
            if (i % 2) v[k] %= 3;
        }
        check(v);
    }
    printf("weak orderings %d; passed %d of %d\n", orderings, passed, total);
    return passed == total ? 0 : 1;
}
"#;

/// Compiles `dir/test.c` with `dir/NAME.h` and `dir/NAME.S`, runs it, and asserts that all
/// 1356 cases pass.
fn c_program_passes(dir: &Path, name: &str) {
    let src = write(dir, "test.c", &C_TEST.replace("NAME", name));
    let exe = dir.join("test");
    let o = gcc_run(&exe, &[Path::new(&src), &dir.join(format!("{name}.S"))]);
    assert_eq!(
        stdout(&o),
        "weak orderings 13; passed 1356 of 1356\n",
        "{}",
        dir.display()
    );
    assert!(o.status.success());
}

#[test]
fn gas_intel_and_c_exports_link_with_gcc_and_sort() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = |f: &str| tmp.path().join(f).display().to_string();
    // gas and intel: a header of our own; c: the generated one.
    for (format, name) in [
        ("gas", "sort3"),
        ("intel", "sort3_intel"),
        ("c", "my_sort3"),
    ] {
        let out = export_ok(&[
            SORT3_LOG,
            "--format",
            format,
            "--name",
            name,
            "-o",
            &dir(format),
        ]);
        let s_path = format!("{}/{name}.S", dir(format));
        let first = format!(
            "wrote {s_path}: verified again after writing: GNU as assembled symbol {name} to 17 instructions + ret; proved on all 13 weak orderings of 3 inputs by the emulator (mov/cmp/cmov only: a proof for all inputs); 6 native checks passed\n"
        );
        if format == "c" {
            let compiled = if have("gcc") {
                format!(
                    "gcc compiled it after the standard C and POSIX headers, with a call of {name}"
                )
            } else {
                "not compiled: gcc not found".to_string()
            };
            assert_eq!(
                out,
                format!(
                    "{first}wrote {0}/{name}.h: declares {name}; its code is {s_path}, verified above; {compiled}\n",
                    dir(format)
                )
            );
        } else {
            assert_eq!(out, first);
            write(
                Path::new(&dir(format)),
                &format!("{name}.h"),
                &format!("#include <stdint.h>\nvoid {name}(int32_t *buf);\n"),
            );
        }
        let text = std::fs::read_to_string(&s_path).unwrap();
        assert!(text.contains(" * Task: sort3 (n = 3, builtin:sort3)\n"));
        assert!(text.contains(" * Length: 17 instructions (ret excluded)\n"));
        assert!(text.contains(&format!(" * From: search log {SORT3_LOG}\n")));
        assert!(text.contains(" * Generated by superopt 0.1.0; verified before writing by:\n"));
        assert!(text.contains(
            "\n.globl NAME\n.type NAME, @function\nNAME:\n"
                .replace("NAME", name)
                .as_str()
        ));
        assert!(text.contains(
            "    ret\n.size NAME, .-NAME\n"
                .replace("NAME", name)
                .as_str()
        ));
        assert!(text.ends_with(".section .note.GNU-stack,\"\",@progbits\n"));
        assert_eq!(text.contains(".intel_syntax noprefix\n"), format == "intel");
        assert!(!text.contains('#'), "no '#': gcc preprocesses .S files");
        if have("gcc") {
            c_program_passes(Path::new(&dir(format)), name);
        }
    }
}

#[test]
fn rust_export_passes_its_own_tests_with_rustc() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().display().to_string();
    let out = export_ok(&[SORT3_LOG, "--format", "rust", "-o", &out_dir]);
    let rs = tmp.path().join("sort3.rs");
    assert!(out.starts_with(&format!(
        "wrote {}: verified again after writing: GNU as assembled symbol superopt_sort3 to 17 instructions + ret;",
        rs.display()
    )));
    let text = std::fs::read_to_string(&rs).unwrap();
    assert!(text.contains("pub fn sort3(v: &mut [i32; 3]) {"));
    assert!(text.contains("        pub fn superopt_sort3(buf: *mut i32);\n"));
    assert!(text.contains("    \".pushsection .text.superopt_sort3,\\\"ax\\\",@progbits\",\n"));
    assert!(text.contains("    options(att_syntax)\n"));
    if !have("rustc") {
        return;
    }
    let exe = tmp.path().join("sort3-tests");
    let o = limited(
        Command::new("rustc")
            .args(["--edition", "2021", "--test"])
            .arg(&rs)
            .arg("-o")
            .arg(&exe),
    )
    .unwrap();
    assert!(o.status.success(), "rustc: {}", stderr(&o));
    assert_eq!(stderr(&o), "", "no warnings");
    let o = limited(&mut Command::new(&exe)).unwrap();
    let out = stdout(&o);
    assert!(
        out.contains("test tests::sorts_all_weak_orderings ... ok\n"),
        "{out}"
    );
    assert!(
        out.contains("test tests::sorts_all_tuples_over_extremes ... ok\n"),
        "{out}"
    );
    assert!(
        out.contains("test result: ok. 2 passed; 0 failed;"),
        "{out}"
    );
    // As a library crate (the module form), and clippy's default lints.
    let o = limited(
        Command::new("rustc")
            .args(["--edition", "2021", "--crate-type", "lib", "-o"])
            .arg(tmp.path().join("libsort3.rlib"))
            .arg(&rs),
    )
    .unwrap();
    assert!(
        o.status.success() && stderr(&o).is_empty(),
        "{}",
        stderr(&o)
    );
    if have("clippy-driver") {
        let o = limited(
            Command::new("clippy-driver")
                .args(["--edition", "2021", "--test", "-D", "warnings", "-o"])
                .arg(tmp.path().join("clippy-out"))
                .arg(&rs),
        )
        .unwrap();
        assert!(o.status.success(), "clippy: {}", stderr(&o));
    }
}

#[test]
fn library_crate_builds_and_passes_cargo_test() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("sorting-kernels");
    let lib_s = lib.display().to_string();
    let out = export_ok(&[
        "--library",
        &lib_s,
        "sort3",
        "sort4",
        "sort5",
        "--log-dir",
        "search-logs",
    ]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(
        lines[0],
        format!("wrote {lib_s}/Cargo.toml: the crate's manifest (no dependencies)")
    );
    assert_eq!(
        lines[1],
        format!("wrote {lib_s}/src/lib.rs: the crate root")
    );
    for (i, (task, len)) in [("sort3", 17), ("sort4", 28), ("sort5", 42)]
        .iter()
        .enumerate()
    {
        assert!(
            lines[2 + i].starts_with(&format!(
                "wrote {lib_s}/src/{task}.rs: verified again after writing: GNU as assembled symbol superopt_{task} to {len} instructions + ret;"
            )),
            "{}",
            lines[2 + i]
        );
    }
    assert_eq!(
        lines[5],
        format!("wrote {lib_s}/tests/kernels.rs: integration tests through the crate's public API")
    );
    let manifest = std::fs::read_to_string(lib.join("Cargo.toml")).unwrap();
    assert!(manifest.starts_with(&format!(
        "# {MARKER}\n[package]\nname = \"sorting_kernels\"\nversion = \"0.1.0\"\nedition = \"2021\"\n"
    )));
    assert!(manifest.contains("\n[dependencies]\n\n"));
    assert!(manifest.ends_with("[workspace]\n"));
    let root = std::fs::read_to_string(lib.join("src/lib.rs")).unwrap();
    assert!(root.contains(
        "//! * [`sort5()`](sort5::sort5): 5 `i32` elements, 42 instructions (ret excluded), from search log search-logs/examples/sort5-mcts-seed1.json\n"
    ), "{root}");
    assert!(root.contains("pub mod sort4;\n"));
    assert!(root.contains("pub use self::sort4::sort4;\n"));
    if !have("cargo") {
        return;
    }
    let target = tempfile::tempdir().unwrap();
    let o = limited(
        Command::new("cargo")
            .args(["test", "--offline"])
            .current_dir(&lib)
            .env("CARGO_TARGET_DIR", target.path())
            .env_remove("RUSTFLAGS"),
    )
    .unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "cargo test: {out}\n{}", stderr(&o));
    for task in ["sort3", "sort4", "sort5"] {
        for t in [
            format!("test {task}::tests::sorts_all_weak_orderings ... ok\n"),
            format!("test {task}::tests::sorts_all_tuples_over_extremes ... ok\n"),
            format!("test {task}_sorts_ties_extremes_and_random_inputs ... ok\n"),
        ] {
            assert!(out.contains(&t), "missing {t:?} in {out}");
        }
    }
    assert!(
        out.contains("test result: ok. 6 passed; 0 failed;"),
        "{out}"
    );
    assert!(
        out.contains("test result: ok. 3 passed; 0 failed;"),
        "{out}"
    );
}

#[test]
fn bad_names_are_one_line_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    let long = "s".repeat(101);
    for (name, why) in [
        ("for", "a keyword in C and Rust"),
        ("match", "a keyword in Rust"),
        ("double", "a keyword in C"),
        (
            "9lives",
            "use ASCII letters, digits and '_', not starting with a digit",
        ),
        (
            "3sort",
            "use ASCII letters, digits and '_', not starting with a digit",
        ),
        (
            "class",
            "a keyword in C++ (the header is included from C++ too)",
        ),
        (
            "__sort",
            "reserved in C (names with a leading '_' belong to the implementation)",
        ),
        (
            "_start",
            "reserved in C (names with a leading '_' belong to the implementation)",
        ),
        (
            "main",
            "a name of the C standard library (or main), which the export would clash with",
        ),
        (
            "printf",
            "a name of the C standard library (or main), which the export would clash with",
        ),
        (
            "NULL",
            "a name of the C standard library (or main), which the export would clash with",
        ),
        (&long, "longer than 100 characters"),
        (
            "_Sort",
            "reserved in C (names with a leading '_' belong to the implementation)",
        ),
        (
            "linux",
            "a macro gcc predefines, which would rewrite the .S file",
        ),
        (
            "int32_t",
            "a type or macro name of <stdint.h> (or reserved for one)",
        ),
        (
            "INT32_MAX",
            "a type or macro name of <stdint.h> (or reserved for one)",
        ),
        (
            "EINVAL",
            "reserved for the C or POSIX library (names starting with E and an upper-case letter or a digit)",
        ),
        (
            "pthread_sort",
            "reserved for the C or POSIX library (names starting with pthread_ and a lower-case letter)",
        ),
        (
            "rax",
            "a register or operator name in Intel syntax, which GNU as would not read as a symbol",
        ),
        (
            "xmm0",
            "a register or operator name in Intel syntax, which GNU as would not read as a symbol",
        ),
        (
            "dword",
            "a register or operator name in Intel syntax, which GNU as would not read as a symbol",
        ),
    ]
    .into_iter()
    .chain(
        // Registers of other widths and GNU as's own aliases: iced-x86 knows r8l, sil, spl
        // and eip; r8b, r15b, axl and bxl only GNU as does (its probe catches them).
        [
            "r8b", "r15b", "R9B", "r8l", "sil", "spl", "bpl", "dil", "axl", "bxl", "r8w", "eip",
        ]
        .map(|n| {
            (
                n,
                "a register or operator name in Intel syntax, which GNU as would not read as a symbol",
            )
        }),
    )
    .chain(
        // Names of the C library whose header broke programs that include common headers:
        // refused by the lists, with or without gcc.
        [
            "RAND_MAX", "offsetof", "CHAR_BIT", "INFINITY", "NAN", "isnan", "signbit", "va_arg",
            "va_start", "I", "complex", "imaginary", "noreturn", "unreachable", "MB_CUR_MAX",
            "math_errhandling", "sqrtf",
        ]
        .map(|n| {
            (
                n,
                "a name of the C standard library (or main), which the export would clash with",
            )
        }),
    )
    .chain(
        ["stat", "wait", "environ", "timezone", "getline"]
            .map(|n| (n, "a name of the POSIX C library, which the export would clash with")),
    ) {
        // Intel format, where a register name would fail only after writing.
        let (code, err) = export_err(&[SORT3_LOG, "--format", "intel", "--name", name, "-o", &d]);
        assert_eq!(code, Some(2));
        assert_eq!(
            err,
            format!("error: invalid name '{name}': {why}; choose another with --name\n")
        );
    }
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    // Names that only the headers know: gcc, after every standard C and common POSIX
    // header, refuses them.
    if have("gcc") {
        for (name, why) in [
            ("strverscmp", "declared by the standard C or POSIX headers, so the header does not compile in a program that includes them (gcc)"),
            ("qsort_r", "declared by the standard C or POSIX headers, so the header does not compile in a program that includes them (gcc)"),
            ("M_SQRT2", "a macro of the standard C or POSIX headers, which would rewrite the header in a program that includes them (gcc)"),
            ("MIN", "a macro of the standard C or POSIX headers, which would rewrite the header in a program that includes them (gcc)"),
        ] {
            let (code, err) = export_err(&[SORT3_LOG, "--format", "c", "--name", name, "-o", &d]);
            assert_eq!(code, Some(2));
            assert_eq!(
                err,
                format!("error: invalid name '{name}': {why}; choose another with --name\n")
            );
        }
        assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 0);
    }
    // Names GNU as reads as symbols in both syntaxes pass, in Intel syntax too.
    for name in ["r8x", "sil_sort", "r16", "eiz"] {
        let out = export_ok(&[SORT3_LOG, "--format", "intel", "--name", name, "-o", &d]);
        assert!(
            out.starts_with(&format!(
                "wrote {d}/{name}.S: verified again after writing: GNU as assembled symbol {name} to 17 instructions + ret;"
            )),
            "{out}"
        );
    }
}

/// In a library the task's name names the module and the function, and there is no
/// --name: the message says to rename the task, and comes before the logs are searched.
#[test]
fn library_task_names_are_checked_with_the_library_hint() {
    let tmp = tempfile::tempdir().unwrap();
    let sort3 = std::fs::read_to_string("programs/sort3.toml").unwrap();
    let lib = tmp.path().join("lib").display().to_string();
    for (name, why) in [
        ("for", "a keyword in C and Rust"),
        (
            "r8b",
            "a register or operator name in Intel syntax, which GNU as would not read as a symbol",
        ),
        (
            "sil",
            "a register or operator name in Intel syntax, which GNU as would not read as a symbol",
        ),
        (
            "3sort",
            "use ASCII letters, digits and '_', not starting with a digit",
        ),
        (
            "lib",
            "the crate root is src/lib.rs, so no module can be named lib",
        ),
    ] {
        let file = write(
            tmp.path(),
            &format!("{name}.toml"),
            &sort3.replace("name = \"sort3\"", &format!("name = \"{name}\"")),
        );
        let (code, err) = export_err(&["--library", &lib, &file, "--log-dir", "search-logs"]);
        assert_eq!(code, Some(2));
        assert_eq!(
            err,
            format!("error: invalid name '{name}': {why}; --library names each module and function after its task: rename the task (the name field of its task file)\n")
        );
    }
    assert!(!Path::new(&lib).exists());
}

#[test]
fn input_errors_are_one_line_with_exit_code_2() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let att = superopt_log_att();
    let s = write(d, "k.s", &att.join("\n"));
    let (code, err) = export_err(&[&s]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {s}: an assembly file needs --task (e.g. --task sort3)\n")
    );
    // --syntax reads an assembly file; a log's kernel is read as logged.
    let out = d.join("syn");
    let (code, err) = export_err(&[SORT3_LOG, "--syntax", "intel", "-o", out.to_str().unwrap()]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: --syntax is for an assembly-file INPUT; a search log's kernel is read as logged (choose the output's syntax with --format gas or intel)\n"
    );
    assert!(!out.exists());
    let (code, err) = export_err(&[SORT3_LOG, "--task", "sort4"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: --task sort4 does not match the log's task sort3\n"
    );
    let (code, err) = export_err(&[&s, "--task", "sort9"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: unknown task 'sort9' (known tasks: sort2, sort3, sort4, sort5, sort6, sort7, sort8, sort3-u32, sort3-i64, sort3-u64, sort4-u32, sort4-i64, sort4-u64, sort5-u32, sort5-i64, sort5-u64, sort3-avx2, sort4-avx2, sort5-avx2, sort6-avx2, sort7-avx2, sort8-avx2, sort3-u32-avx2, sort4-u32-avx2, sort5-u32-avx2, sort3-mem, sort4-mem, sort5-mem, sort4-avx2-packed, sort4-u32-avx2-packed, sort4-sse41, sort4-i64-avx512)\n"
    );
    let txt = write(d, "k.txt", "");
    let (code, err) = export_err(&[&txt]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {txt}: expected a search log (.json) or an assembly file (.s, .S, .asm)\n")
    );
    // A truncated log, and a log whose search found nothing.
    let full = std::fs::read_to_string(SORT3_LOG).unwrap();
    let cut = write(d, "cut.json", &full[..full.len() / 2]);
    let (code, err) = export_err(&[&cut]);
    assert_eq!(code, Some(2));
    assert!(
        err.starts_with(&format!(
            "error: {cut}: truncated search log: the JSON ends early (line "
        )) && err.lines().count() == 1,
        "{err}"
    );
    let mut v: serde_json::Value = serde_json::from_str(&full).unwrap();
    v["best"] = serde_json::Value::Null;
    let none = write(d, "none.json", &v.to_string());
    let (code, err) = export_err(&[&none]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {none}: the log has no kernel (its search found none)\n")
    );
    let bad = write(d, "bad.s", "mov (%rdi), %eax\nfoo %eax\n");
    let (code, err) = export_err(&[&bad, "--task", "sort3"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {bad}:2: no such instruction: `foo %eax'\n")
    );
    let (code, err) = export_err(&[
        SORT3_LOG,
        "--crate-name",
        "k",
        "-o",
        &d.display().to_string(),
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(err, "error: --crate-name goes with --library DIR\n");
    // The output folder is a regular file.
    let file = write(d, "file", "");
    let (code, err) = export_err(&[SORT3_LOG, "-o", &file]);
    assert_eq!(code, Some(2));
    assert_eq!(err, format!("error: {file}: not a folder\n"));
    // An unknown --syntax is refused even for a log, which does not use it.
    let (code, err) = export_err(&[SORT3_LOG, "--syntax", "foo"]);
    assert_eq!(code, Some(2));
    assert_eq!(err, "error: unknown syntax 'foo': expected att or intel\n");
}

/// The first line of every file export writes carries this (src/export.rs, `MARKER`).
const MARKER: &str =
    "Generated by superopt export (superopt export --overwrite may replace this file)";

#[test]
fn existing_files_are_replaced_only_with_overwrite() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path().display().to_string();
    let out = superopt(&["export", SORT3_LOG, "-o", &d]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let path = tmp.path().join("sort3.S");
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(
        first.starts_with(&format!("/* {MARKER}\n *\n * sort3: sorts 3")),
        "{first}"
    );
    // An export's own file: refused without --overwrite, replaced with it.
    let (code, err) = export_err(&[SORT3_LOG, "-o", &d]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!(
            "error: {} exists; pass --overwrite to replace it\n",
            path.display()
        )
    );
    std::fs::write(&path, first.replace("    ret\n", "    ret\n\n")).unwrap();
    export_ok(&[SORT3_LOG, "-o", &d, "--overwrite"]);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
    // A file superopt did not write: refused with and without --overwrite, also when it
    // carries the marker further down, and when it is a symlink to an export's file.
    let other = tmp.path().join("other.S");
    std::fs::rename(&path, &other).unwrap();
    for text in [
        "my own code\n".to_string(),
        format!("my own code\n/* {MARKER} */\n"),
    ] {
        std::fs::write(&path, &text).unwrap();
        for overwrite in [false, true] {
            let mut args = vec![SORT3_LOG, "-o", &d];
            if overwrite {
                args.push("--overwrite");
            }
            let (code, err) = export_err(&args);
            assert_eq!(code, Some(2));
            assert_eq!(
                err,
                format!(
                    "error: {} exists and was not written by superopt; refusing to replace it (move it away first)\n",
                    path.display()
                )
            );
            assert_eq!(std::fs::read_to_string(&path).unwrap(), text);
        }
    }
    std::fs::remove_file(&path).unwrap();
    std::os::unix::fs::symlink(&other, &path).unwrap();
    let (code, err) = export_err(&[SORT3_LOG, "-o", &d, "--overwrite"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!(
            "error: {} is a symbolic link; export never writes through one (move it away first)\n",
            path.display()
        )
    );
    assert!(std::fs::symlink_metadata(&path).unwrap().is_symlink());
    std::fs::remove_file(&path).unwrap();
    std::fs::remove_file(&other).unwrap();
    export_ok(&[SORT3_LOG, "-o", &d]);
    // Nothing but the export itself is left in the folder (no temporary files).
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 1);
    // A library goes only into an empty or new folder unless --overwrite.
    let (code, err) = export_err(&["--library", &d, "sort3"]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {d} is not empty; pass --overwrite to write the crate's files into it\n")
    );
}

/// `--library DIR --overwrite` replaces the files of an earlier export, never a crate's own.
#[test]
fn a_library_never_replaces_files_superopt_did_not_write() {
    let tmp = tempfile::tempdir().unwrap();
    let lib = tmp.path().join("kernels");
    let lib_s = lib.display().to_string();
    let args = ["--library", &lib_s, "sort3", "--log-dir", "search-logs"];
    export_ok(&args);
    let files = [
        "Cargo.toml",
        "src/lib.rs",
        "src/sort3.rs",
        "tests/kernels.rs",
    ];
    let texts: Vec<String> = files
        .iter()
        .map(|f| std::fs::read_to_string(lib.join(f)).unwrap())
        .collect();
    for (f, text) in files.iter().zip(&texts) {
        let comment = if f.ends_with(".toml") { "#" } else { "//" };
        assert!(
            text.starts_with(&format!("{comment} {MARKER}\n")),
            "{f}: {text}"
        );
    }
    // Again with --overwrite: the export's own files are replaced (same text).
    let mut again = args.to_vec();
    again.push("--overwrite");
    let out = export_ok(&again);
    assert_eq!(out.lines().count(), 4, "{out}");
    for (f, text) in files.iter().zip(&texts) {
        assert_eq!(&std::fs::read_to_string(lib.join(f)).unwrap(), text, "{f}");
    }
    // Any one of them written by someone else stops the whole export before it writes.
    for (i, f) in files.iter().enumerate() {
        let theirs = "[package]\nname = \"theirs\"\n# theirs\n";
        std::fs::write(lib.join(f), theirs).unwrap();
        let (code, err) = export_err(&again);
        assert_eq!(code, Some(2));
        assert_eq!(
            err,
            format!("error: {lib_s}/{f} exists and was not written by superopt; refusing to replace it (move it away first)\n")
        );
        for (j, (g, text)) in files.iter().zip(&texts).enumerate() {
            let want = if j == i { theirs } else { text.as_str() };
            assert_eq!(std::fs::read_to_string(lib.join(g)).unwrap(), want, "{g}");
        }
        std::fs::write(lib.join(f), &texts[i]).unwrap();
    }
    // Another crate's folder: its Cargo.toml and lib.rs are left alone, nothing is added.
    let other = tmp.path().join("other");
    std::fs::create_dir_all(other.join("src")).unwrap();
    std::fs::write(other.join("Cargo.toml"), "[package]\nname = \"other\"\n").unwrap();
    std::fs::write(other.join("src/lib.rs"), "pub fn f() {}\n").unwrap();
    let other_s = other.display().to_string();
    let (code, err) = export_err(&[
        "--library",
        &other_s,
        "sort3",
        "--log-dir",
        "search-logs",
        "--overwrite",
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {other_s}/Cargo.toml exists and was not written by superopt; refusing to replace it (move it away first)\n")
    );
    assert_eq!(
        std::fs::read_to_string(other.join("Cargo.toml")).unwrap(),
        "[package]\nname = \"other\"\n"
    );
    assert_eq!(
        std::fs::read_to_string(other.join("src/lib.rs")).unwrap(),
        "pub fn f() {}\n"
    );
    assert!(!other.join("tests").exists(), "no folder created either");
    assert_eq!(std::fs::read_dir(other.join("src")).unwrap().count(), 1);
}

/// An export never writes over its own input, however the output path reaches it: the
/// same path, another spelling of it, a symlink or a hard link. Even with --overwrite, and
/// even when the input carries the marker line.
#[test]
fn an_export_never_replaces_its_input() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let d_s = d.display().to_string();
    // A kernel file whose first line (a comment) carries the marker.
    let text = format!("# {MARKER}\n{}\n", superopt_log_att().join("\n"));
    let input = write(d, "k.S", &text);
    let refused = |target: &str, input: &str, args: &[&str]| {
        let (code, err) = export_err(args);
        assert_eq!(code, Some(2), "{args:?}");
        assert_eq!(
            err,
            format!("error: {target} is the input file {input}; export never replaces its input (choose another -o DIR or --name)\n"),
            "{args:?}"
        );
    };
    let target = format!("{d_s}/k.S");
    refused(
        &target,
        &input,
        &[
            &input,
            "--task",
            "sort3",
            "--name",
            "k",
            "-o",
            &d_s,
            "--overwrite",
        ],
    );
    refused(
        &target,
        &input,
        &[&input, "--task", "sort3", "--name", "k", "-o", &d_s],
    );
    // The folder spelled another way, and reached through a symlinked folder.
    std::fs::create_dir(d.join("sub")).unwrap();
    let dotted = format!("{d_s}/sub/..");
    refused(
        &format!("{dotted}/k.S"),
        &input,
        &[
            &input,
            "--task",
            "sort3",
            "--name",
            "k",
            "-o",
            &dotted,
            "--overwrite",
        ],
    );
    std::os::unix::fs::symlink(d, d.join("link")).unwrap();
    let link = format!("{d_s}/link");
    refused(
        &format!("{link}/k.S"),
        &input,
        &[
            &input,
            "--task",
            "sort3",
            "--name",
            "k",
            "-o",
            &link,
            "--overwrite",
        ],
    );
    // The target a symlink to the input, and a hard link of it; the input through a
    // symlink to the target.
    let out = d.join("out");
    std::fs::create_dir(&out).unwrap();
    let out_s = out.display().to_string();
    let target = format!("{out_s}/k.S");
    std::os::unix::fs::symlink(&input, &target).unwrap();
    refused(
        &target,
        &input,
        &[
            &input,
            "--task",
            "sort3",
            "--name",
            "k",
            "-o",
            &out_s,
            "--overwrite",
        ],
    );
    std::fs::remove_file(&target).unwrap();
    std::fs::hard_link(&input, &target).unwrap();
    refused(
        &target,
        &input,
        &[
            &input,
            "--task",
            "sort3",
            "--name",
            "k",
            "-o",
            &out_s,
            "--overwrite",
        ],
    );
    let via = format!("{d_s}/via.S");
    std::os::unix::fs::symlink(&target, &via).unwrap();
    refused(
        &target,
        &via,
        &[
            &via,
            "--task",
            "sort3",
            "--name",
            "k",
            "-o",
            &out_s,
            "--overwrite",
        ],
    );
    std::fs::remove_file(&target).unwrap();
    // A search log as input: its file reached as the C header, through a symlink or a hard
    // link.
    let log = d.join("log.json");
    std::fs::copy(SORT3_LOG, &log).unwrap();
    let log_s = log.display().to_string();
    let header = format!("{out_s}/sort3.h");
    std::os::unix::fs::symlink(&log, &header).unwrap();
    refused(
        &header,
        &log_s,
        &[&log_s, "--format", "c", "-o", &out_s, "--overwrite"],
    );
    std::fs::remove_file(&header).unwrap();
    std::fs::hard_link(&log, &header).unwrap();
    refused(
        &header,
        &log_s,
        &[&log_s, "--format", "c", "-o", &out_s, "--overwrite"],
    );
    // Nothing was written or replaced: the inputs are as they were, and no other file.
    assert_eq!(std::fs::read_to_string(&input).unwrap(), text);
    assert_eq!(
        std::fs::read_to_string(&log).unwrap(),
        std::fs::read_to_string(SORT3_LOG).unwrap()
    );
    let mut left: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    assert_eq!(left, ["sort3.h"]);
    // Written elsewhere, the same input exports.
    std::fs::remove_file(&header).unwrap();
    let written = export_ok(&[&input, "--task", "sort3", "--name", "k", "-o", &out_s]);
    assert!(written.starts_with(&format!("wrote {out_s}/k.S: verified again")));
}

/// Whatever the kernel file's path and the task file hold (bidirectional and other format
/// characters, a newline, `*/` and `/*`, backslashes, non-ASCII), every format's comments
/// carry it escaped, and the files compile: gcc -Wall -Werror on the C and assembly, rustc
/// on the Rust (which refuses bidirectional characters in doc comments).
#[test]
fn comments_are_safe_in_every_format() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let folder = d.join("a*");
    std::fs::create_dir(&folder).unwrap();
    let kernel = folder.join("*b\u{202e}\u{2066}c\nd\\e\u{e9}\u{200b}.s");
    std::fs::write(&kernel, superopt_log_att().join("\n")).unwrap();
    let kernel_s = kernel.to_str().unwrap();
    let escaped = format!(
        "{}/a* / *b\\u{{202e}}\\u{{2066}}c\\nd\\\\e\\u{{e9}}\\u{{200b}}.s",
        d.display()
    );
    // Task names are plain (the task file refuses others); its path is not.
    let task_path = folder.join("\u{2067}t\n.toml");
    std::fs::copy("programs/sort3.toml", &task_path).unwrap();
    let task = task_path.to_str().unwrap().to_string();
    let task_escaped = format!("{}/a* /\\u{{2067}}t\\n.toml", d.display());
    for (format, name) in [
        ("gas", "k_gas"),
        ("intel", "k_intel"),
        ("c", "k_c"),
        ("rust", "k_rust"),
    ] {
        let out_dir = d.join(format);
        let out = export_ok(&[
            kernel_s,
            "--task",
            &task,
            "--format",
            format,
            "--name",
            name,
            "-o",
            out_dir.to_str().unwrap(),
        ]);
        assert!(out.contains(": verified again after writing:"), "{out}");
        let ext = if format == "rust" { "rs" } else { "S" };
        let text = std::fs::read_to_string(out_dir.join(format!("{name}.{ext}"))).unwrap();
        let comment = if format == "rust" { "//!" } else { " *" };
        assert!(
            text.contains(&format!("\n{comment} From: file {escaped}\n")),
            "{text}"
        );
        assert!(
            text.contains(&format!(
                "\n{comment} Task: sort3 (n = 3, {task_escaped})\n"
            )),
            "{text}"
        );
        assert!(text.is_ascii(), "{text}");
        if format == "c" {
            let header = std::fs::read_to_string(out_dir.join("k_c.h")).unwrap();
            assert!(
                header.contains(&format!(
                    " * Task sort3, 17 instructions, from file {escaped}. */\n"
                )),
                "{header}"
            );
            assert!(header.is_ascii());
        } else if format != "rust" {
            write(
                &out_dir,
                &format!("{name}.h"),
                &format!("#include <stdint.h>\nvoid {name}(int32_t *buf);\n"),
            );
        }
        if format == "rust" {
            assert!(
                out.trim_end().ends_with(if have("rustc") {
                    "; rustc type-checked the module and its tests"
                } else {
                    "; not compiled: rustc not found"
                }),
                "{out}"
            );
            if have("rustc") {
                let exe = out_dir.join("tests");
                let o = limited(
                    Command::new("rustc")
                        .args(["--edition", "2021", "--test", "-D", "warnings"])
                        .arg(out_dir.join("k_rust.rs"))
                        .arg("-o")
                        .arg(&exe),
                )
                .unwrap();
                assert!(o.status.success(), "rustc: {}", stderr(&o));
                let o = limited(&mut Command::new(&exe)).unwrap();
                assert!(
                    stdout(&o).contains("test result: ok. 2 passed;"),
                    "{}",
                    stdout(&o)
                );
            }
        } else if have("gcc") {
            c_program_passes(&out_dir, name);
        }
    }
}

/// `--library DIR` writes no file through a symbolic link below DIR: a `src/` or `tests/`
/// that links into another crate would put the files there.
#[test]
fn a_library_never_writes_through_a_symlinked_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let bin = d.join("bin4");
    std::fs::create_dir_all(bin.join("src")).unwrap();
    std::fs::write(bin.join("Cargo.toml"), "[package]\nname = \"bin4\"\n").unwrap();
    std::fs::write(bin.join("src/main.rs"), "fn main() {}\n").unwrap();
    let lib = d.join("lib4");
    std::fs::create_dir(&lib).unwrap();
    let lib_s = lib.display().to_string();
    let args = [
        "--library",
        &lib_s,
        "sort3",
        "--log-dir",
        "search-logs",
        "--overwrite",
    ];
    std::os::unix::fs::symlink(bin.join("src"), lib.join("src")).unwrap();
    let (code, err) = export_err(&args);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {lib_s}/src is a symbolic link; export never writes through one (choose another --library DIR)\n")
    );
    std::fs::remove_file(lib.join("src")).unwrap();
    std::os::unix::fs::symlink(&bin, lib.join("tests")).unwrap();
    let (code, err) = export_err(&args);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: {lib_s}/tests is a symbolic link; export never writes through one (choose another --library DIR)\n")
    );
    // Nothing was written on either side, not even a folder.
    let mut names: Vec<String> = std::fs::read_dir(&lib)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["tests"]);
    assert_eq!(std::fs::read_dir(bin.join("src")).unwrap().count(), 1);
    assert_eq!(std::fs::read_dir(&bin).unwrap().count(), 2);
    // With real folders, the crate is written.
    std::fs::remove_file(lib.join("tests")).unwrap();
    let out = export_ok(&args);
    assert_eq!(out.lines().count(), 4, "{out}");
}

fn superopt_log_att() -> Vec<String> {
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SORT3_LOG).unwrap()).unwrap();
    v["best"]["program_att"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn unverified_kernels_are_refused_with_exit_code_1() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let out = d.join("out");
    let out_s = out.display().to_string();
    // sort3 without its last cmov.
    let mut att = superopt_log_att();
    let last_cmov = att.iter().rposition(|l| l.starts_with("cmov")).unwrap();
    att.remove(last_cmov);
    let s = write(d, "wrong.s", &att.join("\n"));
    let (code, err) = export_err(&[&s, "--task", "sort3", "-o", &out_s]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        "error: not verified: not sorted: [1,1,0] -> [0,0,1]; export writes only verified kernels\n"
    );
    assert!(!out.exists(), "nothing is written");
    // A log that records its kernel as not verified.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SORT3_LOG).unwrap()).unwrap();
    v["best"]["verified"] = serde_json::Value::Bool(false);
    let log = write(d, "unverified.json", &v.to_string());
    let (code, err) = export_err(&[&log, "-o", &out_s]);
    assert_eq!(code, Some(1));
    assert_eq!(
        err,
        format!("error: not verified: {log} records its kernel as not verified; export writes only verified kernels\n")
    );
    assert!(!out.exists());
    // The right kernel from the same kind of file exports (and in Intel syntax).
    let intel: Vec<String> = {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(SORT3_LOG).unwrap()).unwrap();
        v["best"]["program_intel"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let good = write(d, "good.asm", &intel.join("\n"));
    let text = export_ok(&[&good, "--task", "sort3", "--syntax", "intel", "-o", &out_s]);
    assert!(text.starts_with(&format!(
        "wrote {out_s}/sort3.S: verified again after writing:"
    )));
    let written = std::fs::read_to_string(out.join("sort3.S")).unwrap();
    assert!(written.contains(&format!(" * From: file {good}\n")));
}

#[test]
fn library_errors_name_the_task_and_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let logs = tmp.path().join("logs");
    std::fs::create_dir_all(logs.join("sort3")).unwrap();
    std::fs::copy(SORT3_LOG, logs.join("sort3/a.json")).unwrap();
    let logs_s = logs.display().to_string();
    let lib = tmp.path().join("lib").display().to_string();
    let (code, err) = export_err(&["--library", &lib, "sort3", "sort4", "--log-dir", &logs_s]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: no verified sort4 kernel in the search logs under {logs_s} (looked in {logs_s}/sort4/ and {logs_s}/examples/)\n")
    );
    assert!(!Path::new(&lib).exists());
    let (code, err) = export_err(&[
        "--library",
        &lib,
        "sort3",
        "--log-dir",
        &logs_s,
        "--crate-name",
        "Bad-Name",
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: invalid crate name 'Bad-Name': use lower-case ASCII letters, digits and '_', starting with a letter, not a Rust keyword or a crate of Rust's own (std, core, alloc, proc_macro, test)\n"
    );
    let (code, err) = export_err(&[
        "--library",
        &lib,
        "sort3",
        "--log-dir",
        &logs_s,
        "--crate-name",
        "std",
    ]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        "error: invalid crate name 'std': use lower-case ASCII letters, digits and '_', starting with a letter, not a Rust keyword or a crate of Rust's own (std, core, alloc, proc_macro, test)\n"
    );
    let digits = tmp.path().join("123").display().to_string();
    let (code, err) = export_err(&["--library", &digits, "sort3", "--log-dir", &logs_s]);
    assert_eq!(code, Some(2));
    assert_eq!(
        err,
        format!("error: cannot make a crate name from '{digits}': give one with --crate-name\n")
    );
    // Ties on length go to the earliest start.
    let mut v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(SORT3_LOG).unwrap()).unwrap();
    v["started"] = serde_json::Value::String("2020-01-01T00:00:00Z".into());
    write(&logs.join("sort3"), "b.json", &v.to_string());
    let out = export_ok(&["--library", &lib, "sort3", "--log-dir", &logs_s]);
    assert!(out.contains("src/sort3.rs: verified again after writing"));
    let root = std::fs::read_to_string(Path::new(&lib).join("src/lib.rs")).unwrap();
    assert!(
        root.contains(&format!("from search log {logs_s}/sort3/b.json\n")),
        "{root}"
    );
    // A log whose "verified" kernel is wrong (and shorter) is skipped with a warning naming
    // it; the next best kernel is exported.
    let mut bad = v.clone();
    let mut att: Vec<serde_json::Value> = bad["best"]["program_att"].as_array().unwrap().clone();
    let cmov = att
        .iter()
        .rposition(|l| l.as_str().unwrap().starts_with("cmov"))
        .unwrap();
    att.remove(cmov);
    bad["best"]["program_att"] = att.into();
    bad["best"]["length"] = 16.into();
    write(&logs.join("sort3"), "c.json", &bad.to_string());
    let o = superopt(&[
        "export",
        "--library",
        &lib,
        "sort3",
        "--log-dir",
        &logs_s,
        "--overwrite",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let warning = stderr(&o);
    assert!(
        warning.starts_with(&format!(
            "warning: skipping the kernel of {logs_s}/sort3/c.json: not verified: not sorted: ["
        )),
        "{warning}"
    );
    let root = std::fs::read_to_string(Path::new(&lib).join("src/lib.rs")).unwrap();
    assert!(root.contains("/sort3/b.json\n"), "{root}");
}
