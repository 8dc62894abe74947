//! The command line as a user meets it: exact messages and exit codes.

mod common;

use common::{limited, stderr, stdout, superopt, write};
use std::path::Path;
use std::process::Command;

#[test]
fn unknown_task_is_a_one_line_error() {
    let o = superopt(&["search", "sort9"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: unknown task 'sort9' (known tasks: sort2, sort3, sort4, sort5, sort6, sort7, sort8, sort3-u32, sort3-i64, sort3-u64, sort4-u32, sort4-i64, sort4-u64, sort5-u32, sort5-i64, sort5-u64, sort3-avx2, sort4-avx2, sort5-avx2, sort6-avx2, sort7-avx2, sort8-avx2, sort3-u32-avx2, sort4-u32-avx2, sort5-u32-avx2, sort3-mem, sort4-mem, sort5-mem, sort4-avx2-packed, sort4-u32-avx2-packed, sort4-sse41, sort4-i64-avx512)\n"
    );
}

#[test]
fn bad_budget_is_a_one_line_error() {
    for b in ["abc", "0s", "10x"] {
        let o = superopt(&["search", "sort3", "--budget", b]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!("error: invalid budget '{b}': expected a positive duration such as 60s, 10m or 1h\n")
        );
    }
}

#[test]
fn malformed_task_files_name_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("programs/sort3.toml").unwrap();
    let cases = [
        (good.replace("n = 3\n", ""), "n: missing"),
        (
            good.replace("n = 3", "n = \"three\""),
            "n: expected an integer, found string",
        ),
        (
            good.replace("n = 3", "n = 9"),
            "n: 9 is out of range (2..=8)",
        ),
        (
            good.replace("\"esi\"", "\"rbx\""),
            "isa.scratch: 'rbx' is not a 32-bit general-purpose register (eax, ecx, edx, esi, r8d-r11d; callee-saved ebx, ebp, r12d-r15d), as i32 elements need",
        ),
        (
            good.replace("\"cmovge\"", "\"cmovz\""),
            "isa.opcodes: unknown opcode 'cmovz' (known for i32: mov, cmp, cmovl, cmovg, cmovle, cmovge)",
        ),
        (
            good.replace("element = \"i32\"", "element = \"f32\""),
            "element: unsupported element type 'f32' (supported: i32, u32, i64, u64)",
        ),
        (
            good.replace("element = \"i32\"", "element = \"i64\""),
            "layout.stride: 4 is not supported (i64 elements are 8 bytes apart)",
        ),
        (
            good.replace("element = \"i32\"", "element = \"u32\""),
            "isa.opcodes: cmovl compares signed, but u32 elements compare unsigned (use cmovb, cmova, cmovbe, cmovae)",
        ),
        (
            good.replace("element = \"i32\"", "element = \"u64\"")
                .replace("stride = 4 ", "stride = 8 "),
            "isa.opcodes: cmovl compares signed, but u64 elements compare unsigned (use cmovb, cmova, cmovbe, cmovae)",
        ),
        (
            good.replace("element = \"i32\"", "element = \"i64\"")
                .replace("stride = 4 ", "stride = 8 "),
            "isa.scratch: 'eax' is not a 64-bit general-purpose register (rax, rcx, rdx, rsi, r8-r11; callee-saved rbx, rbp, r12-r15), as i64 elements need",
        ),
        (
            good.replace("kind = \"sort\"", "kind = \"hash\""),
            "kind: unsupported kind 'hash' (supported: sort)",
        ),
        (
            good.replace("budget = \"60s\"", "budget = \"soon\""),
            "search.budget: 'soon' is not a duration such as 60s, 10m or 1h",
        ),
        ("name = [".to_string(), "syntax: line 1: "),
        (
            good.replace("[search]", "[serach]"),
            "serach: unknown field (known here: name, description, kind, element, n, layout, isa, reference, search)",
        ),
        (
            good.replace("stride = 4", "stride = 4\nstrid = 4"),
            "layout.strid: unknown field (known here: pointer, stride, align)",
        ),
    ];
    for (i, (text, want)) in cases.iter().enumerate() {
        let path = write(dir.path(), &format!("bad{i}.toml"), text);
        let o = superopt(&["search", &path, "--budget", "1s"]);
        assert_eq!(o.status.code(), Some(2), "{want}");
        let err = stderr(&o);
        assert!(
            err.starts_with(&format!("error: {path}: {want}")),
            "got {err:?}, want {want:?}"
        );
        assert_eq!(err.lines().count(), 1, "one line: {err:?}");
    }
}

#[test]
fn tasks_lists_reference_lengths() {
    let o = superopt(&["tasks"]);
    assert!(o.status.success());
    let out = stdout(&o);
    assert!(
        out.starts_with(
            "task               n element vector  network  alphadev   budget  source\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "\nsort3              3     i32      -       18        17       1m  builtin:sort3\n"
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "\nsort5              5     i32      -       46        42      10m  builtin:sort5\n"
        ),
        "{out}"
    );
    assert!(
        out.contains("\nsort5-u64          5     u64      -       46         -      10m  builtin:sort5-u64\n"),
        "{out}"
    );
    assert!(
        out.contains("\nsort4-i64-avx512   4     i64 avx512       18         -       1m  builtin:sort4-i64-avx512\n"),
        "{out}"
    );
}

#[test]
fn verify_accepts_the_network_in_both_syntaxes() {
    let o = superopt(&["verify", "sort3", "tests/kernels/sort3_network.s"]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with(
        "verified: tests/kernels/sort3_network.s sorts 3 i32 for all inputs (18 instructions)"
    ));
    assert!(stdout(&o).contains("proved on all 13 weak orderings"));
    for (task, file, len) in [
        ("sort4", "tests/kernels/sort4_network.s", 28),
        ("sort5", "tests/kernels/sort5_network.s", 46),
    ] {
        let o = superopt(&["verify", task, file]);
        assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
        assert!(stdout(&o).starts_with(&format!(
            "verified: {file} sorts {} i32 for all inputs ({len} instructions)",
            &task[4..]
        )));
    }
    let o = superopt(&[
        "verify",
        "sort3",
        "tests/kernels/sort3_found17.s",
        "--syntax",
        "intel",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).contains("(17 instructions)"));
    let o = superopt(&[
        "verify",
        "sort3",
        "tests/kernels/sort3_network_intel.s",
        "--syntax",
        "intel",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}{}", stdout(&o), stderr(&o));
}

/// Each kind of wrong kernel from the literature is rejected with its exact reason.
#[test]
fn verify_rejects_each_kind_of_wrong_kernel() {
    let dir = tempfile::tempdir().unwrap();
    let net = std::fs::read_to_string("tests/kernels/sort3_network.s").unwrap();
    // Drop the last comparator: a half sort that assumes its first two outputs are ordered.
    let half: String = net
        .lines()
        .filter(|l| !l.starts_with('#'))
        .take(11)
        .chain(["mov %eax, (%rdi)", "mov %ecx, 4(%rdi)", "mov %edx, 8(%rdi)"])
        .collect::<Vec<_>>()
        .join("\n");
    let cases: Vec<(&str, String, &str)> = vec![
        ("half.s", half, "not sorted: [1,1,0] -> [1,0,1]"),
        (
            "uninit.s",
            net.replace("mov %eax, %esi\ncmp %ecx, %eax", "cmp %ecx, %eax")
                .replacen("cmovg %esi, %ecx", "cmovg %r8d, %ecx", 1),
            "reads r8d before writing it (line 8)",
        ),
        (
            "outside.s",
            net.replace("ret\n", "mov %eax, 12(%rdi)\nret\n"),
            "writes outside the array (line 23)",
        ),
        (
            "rbx.s",
            format!("mov %eax, %ebx\n{net}"),
            "clobbers callee-saved rbx (line 1)",
        ),
        // Unsigned conditions on signed ints: not among sort3's opcodes, and the native stage
        // shows the smallest input over the extremes that they get wrong.
        (
            "unsigned.s",
            net.replace("cmovg", "cmova"),
            "not sorted: [0,0,-1] -> [0,0,-1] (cmova compares unsigned; i32 elements compare signed, line 8)",
        ),
        // The sign of a subtraction as the comparison: wrong when it overflows.
        (
            "sign.s",
            net.replace("cmovg", "cmovns"),
            "not sorted: [0,0,-2147483648] -> [0,0,-2147483648]",
        ),
        // Correct on every permutation, wrong on ties (a checker of distinct values passes
        // it): superopt's 17-instruction sort3 with a strict condition where a tie needs `le`.
        (
            "ties.s",
            std::fs::read_to_string("tests/kernels/sort3_found17.s")
                .unwrap()
                .replace("cmovle esi, edx", "cmovl esi, edx")
                .replace("mov eax, [rdi]", ".intel_syntax noprefix\nmov eax, [rdi]"),
            "not sorted: [0,1,1] -> [0,1,0]",
        ),
    ];
    for (name, text, want) in cases {
        let path = write(dir.path(), name, &text);
        let o = superopt(&["verify", "sort3", &path]);
        assert_eq!(
            o.status.code(),
            Some(1),
            "{name}: {}{}",
            stdout(&o),
            stderr(&o)
        );
        let got = stdout(&o);
        assert!(
            got.starts_with(&format!("rejected: {path}: {want}")),
            "{name}: got {got:?}, want {want:?}"
        );
    }
}

#[test]
fn kernels_outside_the_isa_are_tested_not_proven() {
    let dir = tempfile::tempdir().unwrap();
    let net = std::fs::read_to_string("tests/kernels/sort3_network.s").unwrap();
    // `sbb %esi, %esi` on a dead register: harmless, but not a game move.
    let path = write(
        dir.path(),
        "sbb.s",
        &net.replace("mov %eax, (%rdi)", "sbb %esi, %esi\nmov %eax, (%rdi)"),
    );
    let o = superopt(&["verify", "sort3", &path]);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        stdout(&o).starts_with(&format!("tested, not proven: {path} (19 instructions)")),
        "{}",
        stdout(&o)
    );
    assert!(
        stdout(&o).contains("why not proven: line 20 is outside the game's ISA (unsupported instruction sbb), so the weak-ordering proof does not apply"),
        "{}",
        stdout(&o)
    );
    let o = superopt(&["verify", "sort3", &path, "--allow-unproven"]);
    assert_eq!(o.status.code(), Some(0));
}

#[test]
fn unparsable_asm_is_a_one_line_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "bad.s", "mov (%rdi), %eax\nfoo bar\n");
    let o = superopt(&["verify", "sort3", &path]);
    assert_eq!(o.status.code(), Some(2));
    let err = stderr(&o);
    assert!(err.starts_with(&format!("error: {path}:2: ")), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

fn json_search(args: &[&str]) -> serde_json::Value {
    let dir = tempfile::tempdir().unwrap();
    let mut a = vec![
        "search",
        "--json",
        "--log-dir",
        dir.path().to_str().unwrap(),
    ];
    a.extend_from_slice(args);
    let o = superopt(&a);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    let log = superopt::log::SearchLog::read(Path::new(v["log"].as_str().unwrap())).unwrap();
    assert_eq!(
        log.best.as_ref().unwrap().length as u64,
        v["length"].as_u64().unwrap()
    );
    v
}

#[test]
fn search_finds_sort3_at_17_with_each_strategy() {
    for strategy in ["mcts", "astar"] {
        let v = json_search(&[
            "sort3",
            "--budget",
            "120s",
            "--seed",
            "1",
            "--threads",
            "1",
            "--target",
            "17",
            "--strategy",
            strategy,
        ]);
        assert_eq!(v["verified"], true);
        assert_eq!(v["length"], 17, "{strategy}");
        assert_eq!(v["program_att"].as_array().unwrap().len(), 17);
        assert_eq!(v["stop_reason"], "target");
    }
}

/// A kernel printed by `search` assembles with GNU as and sorts when called from C with
/// poisoned scratch registers and flags.
#[test]
fn searched_kernel_links_into_c() {
    let v = json_search(&[
        "sort3",
        "--budget",
        "60s",
        "--seed",
        "2",
        "--threads",
        "1",
        "--target",
        "17",
        "--strategy",
        "astar",
    ]);
    let dir = tempfile::tempdir().unwrap();
    let body: Vec<String> = v["program_att"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| format!("    {}", l.as_str().unwrap()))
        .collect();
    let asm = format!(
        ".text\n.globl sort3\nsort3:\n{}\n    ret\n\
         .globl call_poisoned\ncall_poisoned:\n    push %rsi\n    mov $0x8000000080000000, %rax\n    mov %rax, %rcx\n    mov %rax, %rdx\n    mov %rax, %rsi\n\
         mov %rax, %r8\n    mov %rax, %r9\n    mov %rax, %r10\n    mov %rax, %r11\n    cmp %rcx, %rax\n    call sort3\n    pop %rsi\n    ret\n\
         .section .note.GNU-stack,\"\",@progbits\n",
        body.join("\n")
    );
    let c = r#"
#include <stdio.h>
#include <limits.h>
void call_poisoned(int *buf);
static int cmp(const void *a, const void *b) { int x = *(const int *)a, y = *(const int *)b; return (x > y) - (x < y); }
#include <stdlib.h>
int main(void) {
    int vals[] = {INT_MIN, INT_MIN + 1, -1, 0, 1, 2, INT_MAX - 1, INT_MAX};
    int n = 8, bad = 0;
    for (int i = 0; i < n; i++) for (int j = 0; j < n; j++) for (int k = 0; k < n; k++) {
        int buf[5] = {7, vals[i], vals[j], vals[k], 7}, want[3] = {vals[i], vals[j], vals[k]};
        qsort(want, 3, sizeof(int), cmp);
        call_poisoned(buf + 1);
        if (buf[0] != 7 || buf[4] != 7 || buf[1] != want[0] || buf[2] != want[1] || buf[3] != want[2]) bad++;
    }
    printf("%d bad\n", bad);
    return bad != 0;
}
"#;
    std::fs::write(dir.path().join("k.s"), asm).unwrap();
    std::fs::write(dir.path().join("main.c"), c).unwrap();
    let exe = dir.path().join("main");
    let cc = limited(
        Command::new("gcc")
            .args(["-O2", "-o"])
            .arg(&exe)
            .arg(dir.path().join("main.c"))
            .arg(dir.path().join("k.s")),
    )
    .expect("gcc");
    assert!(
        cc.status.success(),
        "{}",
        String::from_utf8_lossy(&cc.stderr)
    );
    let run = limited(&mut Command::new(&exe)).unwrap();
    assert_eq!(String::from_utf8_lossy(&run.stdout), "0 bad\n");
    assert!(run.status.success());
}

#[test]
fn search_finds_sort4_at_28_and_sort5_at_42() {
    for strategy in ["mcts", "astar"] {
        let v = json_search(&[
            "sort4",
            "--budget",
            "300s",
            "--seed",
            "3",
            "--threads",
            "1",
            "--target",
            "28",
            "--strategy",
            strategy,
        ]);
        assert_eq!(
            (v["verified"].as_bool(), v["length"].as_u64()),
            (Some(true), Some(28)),
            "{strategy}"
        );
    }
    let v = json_search(&[
        "sort5",
        "--budget",
        "300s",
        "--seed",
        "1",
        "--threads",
        "1",
        "--target",
        "42",
        "--strategy",
        "astar",
    ]);
    assert_eq!(
        (v["verified"].as_bool(), v["length"].as_u64()),
        (Some(true), Some(42))
    );
    assert_eq!(v["program_intel"].as_array().unwrap().len(), 42);
}

/// With one thread, a seed fixes the search: the same kernel after the same number of
/// programs.
#[test]
fn one_thread_searches_are_deterministic() {
    let args = [
        "sort4",
        "--budget",
        "300s",
        "--seed",
        "7",
        "--threads",
        "1",
        "--target",
        "28",
    ];
    let (a, b) = (json_search(&args), json_search(&args));
    assert_eq!(a["program_att"], b["program_att"]);
    assert_eq!(a["programs_explored"], b["programs_explored"]);
}

#[test]
fn usage_errors_are_one_line() {
    let o = superopt(&["search", "sort3", "--strategy", "bfs"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "error: invalid value 'bfs' for '--strategy <STRATEGY>' [possible values: mcts, astar, lns] (see 'superopt --help')\n"
    );
}

/// `verify --random` is capped at 10,000,000 (a few seconds), so a mistyped count cannot run
/// for hours: a one-line usage error, before anything runs.
#[test]
fn verify_random_is_capped() {
    for n in ["10000001", "100000000000"] {
        let o = superopt(&[
            "verify",
            "sort3",
            "tests/kernels/sort3_network.s",
            "--random",
            n,
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!("error: invalid value '{n}' for '--random <RANDOM>': {n} is not in 0..=10000000 (see 'superopt --help')\n")
        );
        assert_eq!(stdout(&o), "");
    }
    let o = superopt(&[
        "verify",
        "sort3",
        "tests/kernels/sort3_network.s",
        "--random",
        "7",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("  - native: 7 random tuples (seed 0)\n"),
        "{}",
        stdout(&o)
    );
}

/// An unwritable log folder is refused before the search starts, so no search is wasted.
#[test]
fn unwritable_log_dir_fails_before_searching() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "not-a-dir", "");
    let t = std::time::Instant::now();
    let o = superopt(&["search", "sort3", "--budget", "60s", "--log-dir", &file]);
    assert_eq!(o.status.code(), Some(2));
    assert!(t.elapsed().as_secs() < 30);
    assert!(
        stderr(&o).starts_with(&format!("error: {file}/sort3: ")),
        "{}",
        stderr(&o)
    );
    assert_eq!(stderr(&o).lines().count(), 1);
}

/// Kernels outside the game's ISA whose result depends on state stage 2 cannot vary are
/// refused statically, and so is code hidden from the line checks.
#[test]
fn verify_refuses_hidden_dependencies_and_hidden_code() {
    let dir = tempfile::tempdir().unwrap();
    let net = std::fs::read_to_string("tests/kernels/sort3_network.s").unwrap();
    let with = |extra: &str| net.replace("ret\n", &format!("{extra}\nret\n"));
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "rbx.s",
            with("mov %ebx, %r9d\nadd %r9d, (%rdi)"),
            "uses ebx, which task sort3 does not list as scratch (eax, ecx, edx, esi, r8d, r9d, r10d, r11d) (line 23)",
        ),
        (
            "k1.s",
            with("kmovw %k1, %r9d\nadd %r9d, (%rdi)"),
            // Where the CPU lacks AVX-512, the feature check refuses kmovw first.
            if std::arch::is_x86_feature_detected!("avx512f") {
                "reads k1 before writing it (line 23)"
            } else {
                "kmovw needs CPU feature AVX512F, which this CPU lacks (line 23)"
            },
        ),
        (
            "align.s",
            with("mov %edi, %r9d\nand $12, %r9d\nadd %r9d, (%rdi)"),
            "uses the array pointer rdi as a value (line 23)",
        ),
        (
            "flags.s",
            format!("sbb %r9d, %r9d\n{net}"),
            "reads flags that are undefined here (never set, or left undefined by an instruction such as imul) (line 1)",
        ),
        (
            "nul.s",
            format!(".att_syntax prefix\0movl $0, (%rdi)\n{net}"),
            "control character U+0000 is not allowed",
        ),
        (
            "directive.s",
            format!(".att_syntax prefix junk\n{net}"),
            "'.att_syntax prefix junk' is not allowed",
        ),
    ];
    for (name, text, want) in cases {
        let path = write(dir.path(), name, &text);
        let o = superopt(&["verify", "sort3", &path, "--allow-unproven"]);
        assert_ne!(o.status.code(), Some(0), "{name}: {}", stdout(&o));
        let all = format!("{}{}", stdout(&o), stderr(&o));
        assert!(all.contains(want), "{name}: got {all:?}, want {want:?}");
    }
    // Zeroing idioms define their register.
    let path = write(dir.path(), "xor.s", &with("xor %r9d, %r9d\nsbb %r9d, %r9d"));
    let o = superopt(&["verify", "sort3", &path, "--allow-unproven"]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
}

/// The literature lengths in a task file are reports, not limits on the search.
#[test]
fn reference_lengths_do_not_limit_the_search() {
    let dir = tempfile::tempdir().unwrap();
    let good = std::fs::read_to_string("programs/sort3.toml").unwrap();
    let path = write(
        dir.path(),
        "low.toml",
        &good.replace("network = 18", "network = 1"),
    );
    let v = json_search(&[
        &path,
        "--budget",
        "60s",
        "--threads",
        "1",
        "--seed",
        "1",
        "--target",
        "17",
    ]);
    assert_eq!(
        (v["verified"].as_bool(), v["length"].as_u64()),
        (Some(true), Some(17))
    );
    let path = write(
        dir.path(),
        "neg.toml",
        &good.replace("network = 18", "network = -1"),
    );
    let o = superopt(&["search", &path]);
    assert_eq!(
        stderr(&o),
        format!("error: {path}: reference.network: -1 is not a length (at least 1 instruction)\n")
    );
}

/// A target no kernel can miss still needs a kernel before it stops the search.
#[test]
fn a_huge_target_waits_for_a_kernel() {
    let v = json_search(&[
        "sort3",
        "--budget",
        "60s",
        "--threads",
        "1",
        "--target",
        "4294967295",
    ]);
    assert_eq!(v["verified"], true);
    assert_eq!(v["stop_reason"], "target");
}

#[test]
fn budgets_over_the_maximum_are_one_line_errors() {
    for b in ["40years", "10years1s", "315576001", "99999999999999999999"] {
        let o = superopt(&["search", "sort3", "--budget", b]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!("error: invalid budget '{b}': the maximum is 10years (315576000 s)\n")
        );
    }
}

/// Worker i seeds its stream with 1000 x seed + i: seeds past the largest for which that
/// cannot wrap are refused (seed 2^61 searched as seed 0), the largest itself is not.
#[test]
fn seeds_that_would_wrap_are_refused() {
    use superopt::cli::search::{worker_seed, MAX_SEED, MAX_THREADS};
    assert_eq!(MAX_SEED, 18_446_744_073_709_551);
    assert_eq!(
        worker_seed(MAX_SEED, MAX_THREADS - 1),
        18_446_744_073_709_551_255
    );
    assert_eq!(
        MAX_SEED
            .checked_mul(1000)
            .unwrap()
            .checked_add(MAX_THREADS as u64 - 1),
        Some(worker_seed(MAX_SEED, MAX_THREADS - 1))
    );
    // Before the fix: 2^61 * 1000 wraps to 0, so seed 2^61 searched as seed 0.
    assert_eq!(worker_seed(1 << 61, 0), worker_seed(0, 0));
    assert_eq!(worker_seed(7, 3), 7003);

    let dir = tempfile::tempdir().unwrap();
    for seed in [
        "2305843009213693952",
        "18446744073709552",
        "18446744073709551615",
    ] {
        let o = superopt(&[
            "search",
            "sort3",
            "--seed",
            seed,
            "--budget",
            "1s",
            "--log-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!("error: --seed {seed} is too large: the maximum is 18446744073709551 (worker i seeds its stream with 1000 x seed + i)\n")
        );
    }
    assert!(!dir.path().join("sort3").exists());
    let v = json_search(&[
        "sort3",
        "--budget",
        "60s",
        "--seed",
        "18446744073709551",
        "--threads",
        "1",
        "--target",
        "17",
        "--evaluator",
        "heuristic",
    ]);
    assert_eq!(v["length"], 17);
}
