//! The four element types (`i32`, `u32`, `i64`, `u64`): the built-in variants find kernels of
//! the i32 lengths, verify refuses a kernel written for another type with the smallest input
//! that shows it, and each type's export links into C and Rust and sorts.

mod common;

use common::{
    astar, c_sort_test, gcc_run, have, limited, rustc_tests, stderr, stdout, superopt, write,
};
use std::path::Path;
use std::process::Command;

const TYPES: [&str; 3] = ["u32", "i64", "u64"];

#[test]
fn typed_tasks_load_with_their_registers_conditions_and_proof_sets() {
    use superopt::isa::{Cond, Element, Reg};
    use superopt::task::Task;
    for (ty, el) in [
        ("u32", Element::U32),
        ("i64", Element::I64),
        ("u64", Element::U64),
    ] {
        for (n, orderings) in [(3, 13), (4, 75), (5, 541)] {
            let t = Task::load(&format!("sort{n}-{ty}")).unwrap();
            assert_eq!((t.n, t.element), (n, el));
            assert_eq!(t.test_vectors().len(), orderings);
            assert_eq!(t.scratch, Reg::CALLER_SAVED);
            let conds = if el.is_signed() {
                Cond::SIGNED
            } else {
                Cond::UNSIGNED
            };
            assert_eq!(t.conds, conds);
            assert_eq!(t.function_name(), format!("sort{n}_{ty}"));
            assert_eq!(t.reference.network, Some(2 * n + 4 * [3, 5, 9][n - 3]));
            assert_eq!(t.reference.alphadev, None, "AlphaDev released i32 only");
        }
    }
}

#[test]
fn typed_tasks_find_the_i32_lengths() {
    // A* finds 17 / 28 / 42 for i32 in well under a second (BENCHMARKS.md); the game does
    // not see the element type, so each type must reach the same lengths.
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().display().to_string();
    for ty in TYPES {
        for (n, len, network) in [(3, 17, 18), (4, 28, 28), (5, 42, 46)] {
            let task = format!("sort{n}-{ty}");
            let logs = format!("{logs}/{task}");
            let (out, _) = astar(&task, &task, "4s", &logs, 0);
            assert!(
                out.starts_with(&format!(
                    "{task}: verified kernel, {len} instructions (classic network {network})\n"
                )),
                "{out}"
            );
            let bits = if ty.ends_with("64") { "r" } else { "e" };
            assert!(out.contains(&format!("    mov {bits}ax, [rdi]\n")), "{out}");
        }
    }
}

/// `superopt verify TASK FILE --syntax SYNTAX`: (exit code, stdout's first line).
fn verify(task: &str, file: &str, syntax: &str) -> (Option<i32>, String) {
    let o = superopt(&["verify", task, file, "--syntax", syntax]);
    let first = stdout(&o).lines().next().unwrap_or("").to_string();
    (o.status.code(), first)
}

#[test]
fn verify_refuses_a_kernel_for_another_type_with_the_smallest_input_that_shows_it() {
    let i32_kernel = "tests/kernels/sort3_found17.s";
    let u32_kernel = "tests/kernels/sort3_u32_found17.s";
    let u64_kernel = "tests/kernels/sort3_u64_found17.s";
    let (i32_k, u32_k, u64_k) = (
        (i32_kernel, "intel"),
        (u32_kernel, "intel"),
        (u64_kernel, "att"),
    );
    // (task, kernel, exit code, the first line after the file's name)
    let cases = [
        ("sort3-u32", i32_k, 1, "not sorted: [0,0,4294967294] -> [4294967294,0,0] (cmovl compares signed; u32 elements compare unsigned, line 8)"),
        ("sort3", u32_k, 1, "not sorted: [0,0,-1] -> [0,0,-1] (cmova compares unsigned; i32 elements compare signed, line 8)"),
        ("sort3-i64", u64_k, 1, "not sorted: [0,0,-1] -> [0,0,-1] (cmova compares unsigned; i64 elements compare signed, line 8)"),
        ("sort3-u64", u32_k, 1, "not sorted: [0,1,0] -> [0,1,0] (a kernel for 32-bit elements; u64 elements are 64-bit)"),
        ("sort3-u32", u64_k, 1, "a kernel for 64-bit elements; u32 elements are 32-bit: mov accesses 8 bytes at [rdi+0], which may be misaligned (rdi is only 4-byte aligned) and faults when the caller enables alignment checking (line 3)"),
        // Each under its own type.
        ("sort3-u32", u32_k, 0, "sorts 3 u32 for all inputs (17 instructions)"),
        ("sort3-u64", u64_k, 0, "sorts 3 u64 for all inputs (17 instructions)"),
    ];
    for (task, (file, syntax), code, line) in cases {
        let verdict = if code == 0 { "verified" } else { "rejected" };
        let want = if code == 0 {
            format!("{verdict}: {file} {line}")
        } else {
            format!("{verdict}: {file}: {line}")
        };
        assert_eq!(
            verify(task, file, syntax),
            (Some(code), want),
            "{task} {file}"
        );
    }
    let o = superopt(&["verify", "sort3-u64", u64_kernel]);
    let out = stdout(&o);
    assert!(
        out.contains("  - native: all 64 tuples over {0, 1, UINT64_MAX-1, UINT64_MAX}^3\n"),
        "{out}"
    );
}

#[test]
fn each_type_exports_to_c_and_rust_that_link_and_sort() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").display().to_string();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    for ty in TYPES {
        let task = format!("sort5-{ty}");
        let (_, log) = astar(&task, &task, "2s", &logs, 0);
        let name = format!("sort5_{ty}");
        for format in ["c", "rust"] {
            let o = superopt(&["export", &log, "--format", format, "-o", &out_s]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        }
        let c_type = match ty {
            "u32" => "uint32_t",
            "i64" => "int64_t",
            _ => "uint64_t",
        };
        let header = std::fs::read_to_string(out.join(format!("{name}.h"))).unwrap();
        assert!(
            header.contains(&format!("\nvoid {name}({c_type} *buf);\n")),
            "{header}"
        );
        let rs = std::fs::read_to_string(out.join(format!("{name}.rs"))).unwrap();
        assert!(
            rs.contains(&format!("pub fn {name}(v: &mut [{ty}; 5]) {{")),
            "{rs}"
        );
        assert!(rs.contains(&format!(
            "        pub fn superopt_{name}(buf: *mut {ty});\n"
        )));
        if have("gcc") {
            let src = write(&out, &format!("test_{ty}.c"), &c_sort_test(&name, ty, 5));
            let exe = out.join(format!("test_{ty}"));
            let o = gcc_run(&exe, &[Path::new(&src), &out.join(format!("{name}.S"))]);
            let cases = if ty == "i64" { 16807 } else { 1024 } + 2000;
            assert_eq!(stdout(&o), format!("passed {cases} of {cases}\n"), "{ty}");
        }
        if have("rustc") {
            let o = rustc_tests(&out.join(format!("{name}.rs")));
            assert!(
                stdout(&o).contains("test result: ok. 2 passed; 0 failed;"),
                "{}",
                stdout(&o)
            );
            // Edition 2024 (cargo new's default) asks for `unsafe extern`.
            let o = limited(
                Command::new("rustc")
                    .args(["--edition", "2024", "--crate-type", "lib", "-o"])
                    .arg(out.join(format!("lib{name}.rlib")))
                    .arg(out.join(format!("{name}.rs"))),
            )
            .unwrap();
            assert!(
                o.status.success() && stderr(&o).is_empty(),
                "{}",
                stderr(&o)
            );
        }
    }
}

#[test]
fn typed_variants_use_the_shipped_net_of_their_i32_task() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().display().to_string();
    for (task, net, len) in [("sort3-u32", "sort3", "17"), ("sort4-u64", "sort4", "28")] {
        let o = superopt(&[
            "search",
            task,
            "--seed",
            "1",
            "--target",
            len,
            "--budget",
            "20s",
            "--log-dir",
            &logs,
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        let out = stdout(&o);
        assert!(
            out.contains(&format!(
                "guided by: net nets/{net}.safetensors (shipped) x heuristic"
            )),
            "{out}"
        );
        assert!(
            out.starts_with(&format!("{task}: verified kernel, {len} instructions")),
            "{out}"
        );
    }
}

#[test]
fn export_refuses_a_same_named_task_of_another_element_type() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").display().to_string();
    let (_, log) = astar("sort3-u32", "sort3-u32", "1s", &logs, 0);
    // Same name, signed elements: the log's kernel (unsigned conditions) is not for it.
    let toml = std::fs::read_to_string("programs/sort3-u32.toml")
        .unwrap()
        .replace("element = \"u32\"", "element = \"i32\"")
        .replace(
            "\"cmovb\", \"cmova\", \"cmovbe\", \"cmovae\"",
            "\"cmovl\", \"cmovg\", \"cmovle\", \"cmovge\"",
        );
    let t = write(dir.path(), "sort3-u32.toml", &toml);
    let out = dir.path().join("out");
    let o = superopt(&["export", &log, "--task", &t, "-o", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2), "{}", stdout(&o));
    assert_eq!(
        stderr(&o),
        format!("error: --task {t} differs from the log's task sort3-u32 (n, element type, scratch registers or opcodes); export the log without --task, or the kernel as a .s file with --task\n")
    );
    assert!(!out.exists());
}

#[test]
fn a_library_refuses_task_names_that_clash_once_dashes_become_underscores() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").display().to_string();
    let toml = std::fs::read_to_string("programs/sort3-u32.toml")
        .unwrap()
        .replace("name = \"sort3-u32\"", "name = \"sort3_u32\"");
    let custom = write(dir.path(), "sort3_u32.toml", &toml);
    for (task, name) in [("sort3-u32", "sort3-u32"), (custom.as_str(), "sort3_u32")] {
        astar(task, name, "1s", &logs, 0);
    }
    let lib = dir.path().join("lib");
    let o = superopt(&[
        "export",
        "--library",
        lib.to_str().unwrap(),
        "--log-dir",
        &logs,
        "sort3-u32",
        &custom,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: tasks sort3-u32 and sort3_u32 would both name the module and function sort3_u32 ('-' becomes '_'): rename one (the name field of its task file)\n"
    );
    assert!(!lib.exists());
}
