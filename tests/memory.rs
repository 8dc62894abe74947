//! Memory operands (issue 14): `cmp` and `cmovcc` with an array slot as operand are proved by
//! the emulator (they compare and select input values), run natively, exported, timed and
//! searched, only for tasks that set `isa.memory_operands` (built in: sort3-mem ... sort5-mem).
//! (The emulator against the CPU on random programs with them: tests/emulator_vs_jit.rs.)

mod common;

use common::{
    astar, bench_model_row, c_sort_test, gcc_run, have, rustc_tests, stderr, stdout, superopt,
    write,
};
use std::path::Path;

/// A sort3 I wrote with memory operands: the first compare-exchange takes both its values
/// from the array instead of a saved copy (17 instructions, one fewer than the network).
const SORT3_MEM: &str = "mov eax, dword ptr [rdi]
mov ecx, dword ptr [rdi+4]
mov edx, dword ptr [rdi+8]
cmp eax, ecx
cmovg eax, dword ptr [rdi+4]
cmovg ecx, dword ptr [rdi]
mov esi, ecx
cmp ecx, edx
cmovg ecx, edx
cmovg edx, esi
mov esi, eax
cmp eax, ecx
cmovg eax, ecx
cmovg ecx, esi
mov dword ptr [rdi], eax
mov dword ptr [rdi+4], ecx
mov dword ptr [rdi+8], edx
";

/// sort3's task file with `memory_operands = true`, named `sort3-mem`, in `dir`.
fn task_file(dir: &Path) -> String {
    let text = std::fs::read_to_string("programs/sort3.toml")
        .unwrap()
        .replace("name = \"sort3\"", "name = \"sort3-mem\"")
        .replacen("[isa]\n", "[isa]\nmemory_operands = true\n", 1);
    assert!(text.contains("memory_operands = true"));
    write(dir, "sort3-mem.toml", &text)
}

fn verify(task: &str, file: &str) -> (i32, String) {
    let o = superopt(&["verify", task, file, "--syntax", "intel"]);
    (o.status.code().unwrap(), stdout(&o))
}

#[test]
fn memory_operand_kernels_are_proved_only_for_tasks_that_allow_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let task = task_file(d);
    let good = write(d, "mem3.s", SORT3_MEM);
    let (code, out) = verify(&task, &good);
    assert_eq!(code, 0, "{out}");
    assert!(out.starts_with("verified: "), "{out}");
    assert!(out.contains("(17 instructions)"), "{out}");
    assert!(
        out.contains(
            "(mov/cmp/cmov only, some with an array slot as operand: a proof for all inputs)"
        ),
        "{out}"
    );
    // The built-in sort3 plays register operands only.
    let (code, out) = verify("sort3", &good);
    assert_eq!(code, 1);
    assert_eq!(out, format!("rejected: {good}: cmovg takes an array slot as an operand (line 5); task sort3 plays register operands only: use a task file with isa.memory_operands = true\n"));
    // The other condition on the slot: wrong, with a smallest input that shows it.
    let wrong = write(
        d,
        "wrong.s",
        &SORT3_MEM.replacen(
            "cmovg eax, dword ptr [rdi+4]",
            "cmovl eax, dword ptr [rdi+4]",
            1,
        ),
    );
    let (code, out) = verify(&task, &wrong);
    assert_eq!(code, 1);
    assert!(
        out.starts_with(&format!("rejected: {wrong}: not sorted: [")),
        "{out}"
    );
    // A slot past the array.
    let past = write(
        d,
        "past.s",
        &SORT3_MEM.replacen(
            "cmovg ecx, dword ptr [rdi]",
            "cmovg ecx, dword ptr [rdi+12]",
            1,
        ),
    );
    let (code, out) = verify(&task, &past);
    assert_eq!(code, 1);
    assert_eq!(
        out,
        format!("rejected: {past}: reads outside the array (line 6)\n")
    );

    // Not for vector tasks.
    let vector = std::fs::read_to_string("programs/sort3-avx2.toml")
        .unwrap()
        .replacen("[isa]\n", "[isa]\nmemory_operands = true\n", 1);
    let o = superopt(&["verify", &write(d, "v.toml", &vector), &good]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).ends_with("isa.memory_operands: memory operands are for tasks of mov, cmp and cmovcc (no isa.vector)\n"), "{}", stderr(&o));
}

#[test]
fn memory_operand_kernels_export_to_c_and_rust_and_bench_times_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let task = task_file(d);
    let good = write(d, "mem3.s", SORT3_MEM);
    let out = d.join("out");
    for format in ["c", "rust"] {
        let o = superopt(&[
            "export",
            &good,
            "--task",
            &task,
            "--syntax",
            "intel",
            "--format",
            format,
            "--name",
            "sort3_mem",
            "-o",
            &out.display().to_string(),
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    if have("rustc") {
        let o = rustc_tests(&out.join("sort3_mem.rs"));
        assert!(stdout(&o).contains("test result: ok."), "{}", stdout(&o));
    }
    if have("gcc") {
        let src = write(&out, "test.c", &c_sort_test("sort3_mem", "i32", 3));
        let o = gcc_run(
            &out.join("test"),
            &[Path::new(&src), &out.join("sort3_mem.S")],
        );
        // 7^3 tuples over the extremes and 2000 random ones.
        assert_eq!(stdout(&o), "passed 2343 of 2343\n");
    }
    // bench times it beside the register-only kernels of sort3.
    let row = bench_model_row(d, "sort3", &good, "mem3.s");
    assert!(
        row.contains("     17 ") && row.ends_with("  verified"),
        "{row}"
    );
}

#[test]
fn the_search_plays_memory_operands_and_finds_sort3_in_15() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").display().to_string();
    let (out, log) = astar("sort3-mem", "sort3-mem", "2s", &logs, 0);
    assert!(
        out.starts_with(
            "sort3-mem: verified kernel, 15 instructions (classic network 18, AlphaDev 17)"
        ),
        "{out}"
    );
    // The kernel reads array slots directly (and not every slot with a load first).
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&log).unwrap()).unwrap();
    let att: Vec<&str> = v["best"]["program_att"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(att.len(), 15);
    assert!(
        att.iter()
            .any(|l| l.starts_with("cmov") && l.contains("(%rdi)")),
        "{att:?}"
    );
    // The same kernel through verify: refused for the register-only sort3.
    let file = write(dir.path(), "found.s", &att.join("\n"));
    let o = superopt(&["verify", "sort3-mem", &file]);
    assert_eq!(o.status.code(), Some(0), "{}", stdout(&o));
    let o = superopt(&["verify", "sort3", &file]);
    assert_eq!(o.status.code(), Some(1), "{}", stdout(&o));
}
