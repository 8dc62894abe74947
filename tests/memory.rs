//! Memory operands (issue 14, first step): `cmp` and `cmovcc` with an array slot as operand
//! are proved by the emulator (they compare and select input values), run natively, exported
//! and timed, only for tasks that set `isa.memory_operands`; the search does not play them yet.
//! (The emulator against the CPU on random programs with them: tests/emulator_vs_jit.rs.)

mod common;

use common::{c_sort_test, gcc_run, have, stderr, stdout, superopt, write};
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
    // The search does not play memory operands yet, and says so.
    let o = superopt(&["search", &task, "--budget", "1s"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "error: task sort3-mem sets isa.memory_operands: the search does not play memory operands yet (verify, bench and export take such kernels)\n");
    // Not for vector tasks.
    let vector = std::fs::read_to_string("programs/sort3-avx2.toml")
        .unwrap()
        .replacen("[isa]\n", "[isa]\nmemory_operands = true\n", 1);
    let o = superopt(&["verify", &write(d, "v.toml", &vector), &good]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).ends_with("isa.memory_operands: memory operands are for tasks of mov, cmp and cmovcc (no isa.vector)\n"), "{}", stderr(&o));
}

#[test]
fn memory_operand_kernels_export_to_c_and_bench_times_them() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let task = task_file(d);
    let good = write(d, "mem3.s", SORT3_MEM);
    let out = d.join("out");
    let o = superopt(&[
        "export",
        &good,
        "--task",
        &task,
        "--syntax",
        "intel",
        "--format",
        "c",
        "--name",
        "sort3_mem",
        "-o",
        &out.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
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
    let o = superopt(&[
        "bench",
        "sort3",
        &good,
        "--syntax",
        "intel",
        "--meter",
        "model",
        "--log-dir",
        &d.display().to_string(),
        "--csv",
        &d.join("b.csv").display().to_string(),
        "--png",
        &d.join("b.png").display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    let row = out.lines().find(|l| l.starts_with("mem3.s")).unwrap();
    assert!(
        row.contains("     17 ") && row.ends_with("  verified"),
        "{row}"
    );
}
