//! Vector tasks (`[isa] vector`): lane minimum and maximum on xmm registers. The emulator
//! agrees with the CPU on random programs of the vector moves; the task files refuse what
//! the game cannot play; the searches find the networks' lengths (and A* proves sort3's
//! optimal in the space); verify refuses a kernel that reads past the array, one that leaves
//! the upper vector state dirty and one that uses a signed minimum on u32; a kernel that needs
//! AVX-512 is "proved, not run" where the CPU lacks it; exports link into C and Rust, and the
//! Rust wrapper refuses on a CPU without the features.
#![cfg(target_arch = "x86_64")]

mod common;

use common::{
    astar, bench_model_row, c_sort_test, gcc_run, have, rustc_tests, stderr, stdout, superopt,
    write,
};
use dynasmrt::{dynasm, x64::Assembler, DynasmApi, ExecutableBuffer};
use proptest::prelude::*;
use std::path::Path;
use superopt::asm::{parse_str, Syntax};
use superopt::game::{CpuState, SortGame};
use superopt::isa::{encode_as, Element, Insn, Reg};
use superopt::oracle::{verify_kernel, NativeConfig, Status};
use superopt::search::Environment;
use superopt::task::{Task, TestVectors};

/// `fn(buf, out)`: runs the kernel with rdi = `buf`, then writes lane 0 of xmm0-xmm7 to
/// `out[0..8]` and the four lanes of xmm0-xmm3 to `out[8..24]`. A program of vector moves touches no general-purpose register, so `rsi` still
/// holds `out` after it.
type Wrapper = unsafe extern "sysv64" fn(*mut u32, *mut u32);

struct Native {
    _code: ExecutableBuffer,
    entry: Wrapper,
}

impl Native {
    fn new(kernel: &[u8]) -> Native {
        let mut ops = Assembler::new().expect("map JIT memory");
        let start = ops.offset();
        ops.extend(kernel);
        dynasm!(ops
            ; .arch x64
            ; movd [rsi], xmm0
            ; movd [rsi + 4], xmm1
            ; movd [rsi + 8], xmm2
            ; movd [rsi + 12], xmm3
            ; movd [rsi + 16], xmm4
            ; movd [rsi + 20], xmm5
            ; movd [rsi + 24], xmm6
            ; movd [rsi + 28], xmm7
            ; movdqu [rsi + 32], xmm0
            ; movdqu [rsi + 48], xmm1
            ; movdqu [rsi + 64], xmm2
            ; movdqu [rsi + 80], xmm3
            ; ret
        );
        let code = ops.finalize().expect("executable JIT memory");
        // SAFETY: the wrapper follows the SysV ABI for this signature; the kernel writes only
        // xmm registers (caller-saved) and the array.
        let entry: Wrapper = unsafe { std::mem::transmute(code.ptr(start)) };
        Native { _code: code, entry }
    }

    fn call(&self, buf: &mut [u32]) -> [u32; 24] {
        let mut out = [0u32; 24];
        // SAFETY: the kernel reads and writes only [rdi + 4k] for k < buf.len() (the emulator
        // refuses other slots before this runs).
        unsafe { (self.entry)(buf.as_mut_ptr(), out.as_mut_ptr()) };
        out
    }
}

/// One raw vector instruction: an opcode (load, store, copy, min, max), three register
/// choices, a slot and the encoding. Read operands resolve to registers defined at that point.
#[derive(Clone, Copy, Debug)]
struct Raw {
    op: u8,
    x: u8,
    y: u8,
    z: u8,
    slot: u8,
    avx: bool,
}

fn raw(n: usize) -> impl Strategy<Value = Raw> {
    (
        prop_oneof![2 => Just(0u8), 2 => Just(1), 1 => Just(2), 3 => Just(3), 3 => Just(4)],
        0u8..8,
        0u8..8,
        0u8..8,
        0..n as u8,
        any::<bool>(),
    )
        .prop_map(|(op, x, y, z, slot, avx)| Raw {
            op,
            x,
            y,
            z,
            slot,
            avx,
        })
}

/// The instruction for `r` in `cpu`'s state (`None` when it would read nothing defined); the
/// SSE minimum and maximum write their first source.
fn resolve(r: Raw, cpu: &CpuState, avx_ok: bool) -> Option<Insn> {
    let defined: Vec<Reg> = Reg::ALL
        .into_iter()
        .filter(|&g| g.index() < 8 && cpu.reg_defined(g))
        .collect();
    let any = |i: u8| Reg::from_index(i as usize % 8);
    let def = |i: u8| (!defined.is_empty()).then(|| defined[i as usize % defined.len()]);
    let avx = r.avx && avx_ok;
    Some(match r.op {
        0 => Insn::VLoad {
            dst: any(r.x),
            slot: r.slot,
            avx,
        },
        1 => Insn::VStore {
            slot: r.slot,
            src: def(r.y)?,
            avx,
        },
        2 => Insn::VMov {
            dst: any(r.x),
            src: def(r.y)?,
            avx,
        },
        op => {
            let (a, b) = (def(r.y)?, def(r.z)?);
            let dst = if avx { any(r.x) } else { a };
            if op == 3 {
                Insn::Min { dst, a, b, avx }
            } else {
                Insn::Max { dst, a, b, avx }
            }
        }
    })
}

/// A strictly increasing map from ranks `0..n` into the element type's values (as raw u32
/// bits), often with the type's extremes, so that signed and unsigned orders differ.
fn value_map(n: usize, el: Element) -> Vec<u32> {
    use rand::{Rng, SeedableRng};
    let mut rng = rand::rngs::StdRng::seed_from_u64(n as u64);
    let mut v: Vec<i64> = if el.is_signed() {
        vec![i32::MIN as i64, -1, 0, 1, i32::MAX as i64]
    } else {
        vec![0, 1, 0x7FFF_FFFF, 0x8000_0000, u32::MAX as i64]
    };
    while v.len() < n + 3 {
        let x: u32 = rng.gen();
        v.push(if el.is_signed() {
            x as i32 as i64
        } else {
            x as i64
        });
    }
    v.sort_unstable();
    v.dedup();
    // n values spread over the pool, in order.
    (0..n)
        .map(|k| v[k * (v.len() - 1) / (n - 1).max(1)] as u32)
        .collect()
}

fn compare(
    n: usize,
    el: Element,
    raws: &[Raw],
    seed_map: u8,
    avx_ok: bool,
) -> Result<(), TestCaseError> {
    let tv = TestVectors::new(n);
    let mut cpu = CpuState::new(&tv, 8);
    let mut prog = Vec::new();
    for k in 0..n {
        let l = Insn::VLoad {
            dst: Reg::from_index(k),
            slot: k as u8,
            avx: avx_ok && seed_map % 2 == 0,
        };
        cpu.apply(l).unwrap();
        prog.push(l);
    }
    for &r in raws {
        if let Some(i) = resolve(r, &cpu, avx_ok) {
            prop_assert_eq!(cpu.apply(i), Ok(()), "{:?} reads only defined registers", i);
            prog.push(i);
        }
    }
    // Lane 0 of xmm0-xmm7: the wrapper's out[0..8].
    let lanes: Vec<(usize, usize, String)> = Reg::ALL
        .into_iter()
        .filter(|r| r.index() < 8 && cpu.reg_defined(*r))
        .map(|r| (r.index(), r.index(), r.xmm_name()))
        .collect();
    agrees(&tv, el, &cpu, &prog, &lanes)
}

/// Runs `prog` natively on every input of `tv` (mapped into `el`'s values) and checks that
/// memory and each `(out index, emulator column, name)` of `lanes` agree with `cpu`, the
/// emulator's state after `prog`.
fn agrees(
    tv: &TestVectors,
    el: Element,
    cpu: &CpuState,
    prog: &[Insn],
    lanes: &[(usize, usize, String)],
) -> Result<(), TestCaseError> {
    let map = value_map(tv.n, el);
    let native = Native::new(&encode_as(prog, el));
    for (t, input) in tv.inputs.iter().enumerate() {
        let mut buf: Vec<u32> = input.iter().map(|&v| map[v as usize]).collect();
        let out = native.call(&mut buf);
        for k in 0..tv.n {
            prop_assert_eq!(
                buf[k],
                map[cpu.mem(k)[t] as usize],
                "slot {} on {:?} after {:?}",
                k,
                input,
                prog
            );
        }
        for (o, c, name) in lanes {
            prop_assert_eq!(
                out[*o],
                map[cpu.column(*c)[t] as usize],
                "{} on {:?} after {:?}",
                name,
                input,
                prog
            );
        }
    }
    Ok(())
}

/// One raw packed-lane instruction: an opcode (whole-array load and store, `vmovd` load and
/// store, shuffle, blend, min, max), three register choices among xmm0-xmm3, a slot and an
/// immediate. Read operands resolve to registers with a defined lane.
fn raw_packed() -> impl Strategy<Value = (u8, u8, u8, u8, u8, u8)> {
    (0u8..8, 0u8..4, 0u8..4, 0u8..4, 0u8..4, any::<u8>())
}

fn resolve_packed(r: (u8, u8, u8, u8, u8, u8), cpu: &CpuState) -> Option<Insn> {
    let (op, x, y, z, slot, imm) = r;
    let xmm = |i: u8| Reg::from_index(i as usize % 4);
    let lanes = |g: Reg| cpu.lanes_defined(g);
    let with = |i: u8, need: u8| {
        let ok: Vec<Reg> = (0..4)
            .map(Reg::from_index)
            .filter(|&g| lanes(g) & need == need && lanes(g) != 0)
            .collect();
        (!ok.is_empty()).then(|| ok[i as usize % ok.len()])
    };
    Some(match op {
        0 => Insn::PLoad { dst: xmm(x) },
        1 => Insn::PStore { src: with(y, 0xF)? },
        2 => Insn::VLoad {
            dst: xmm(x),
            slot,
            avx: true,
        },
        3 => Insn::VStore {
            slot,
            src: with(y, 1)?,
            avx: true,
        },
        4 => Insn::Shuf {
            dst: xmm(x),
            src: with(y, 0)?,
            imm,
        },
        5 => Insn::Blend {
            dst: xmm(x),
            a: with(y, 0)?,
            b: with(z, 0)?,
            imm: imm & 0xF,
        },
        op => {
            let (a, b) = (with(y, 0)?, with(z, 0)?);
            let (dst, avx) = (xmm(x), true);
            if op == 6 {
                Insn::Min { dst, a, b, avx }
            } else {
                Insn::Max { dst, a, b, avx }
            }
        }
    })
}

/// The emulator's packed state against the CPU: after a random program of packed moves on
/// xmm0-xmm3, every memory slot and every defined lane agree on every weak ordering of 4.
fn compare_packed(el: Element, raws: &[(u8, u8, u8, u8, u8, u8)]) -> Result<(), TestCaseError> {
    let tv = TestVectors::new(4);
    let mut cpu = CpuState::packed(&tv, 4);
    let mut prog = vec![Insn::PLoad {
        dst: Reg::from_index(0),
    }];
    cpu.apply(prog[0]).unwrap();
    for &r in raws {
        if let Some(i) = resolve_packed(r, &cpu) {
            prop_assert_eq!(cpu.apply(i), Ok(()), "{:?}", i);
            prog.push(i);
        }
    }
    // The four lanes of xmm0-xmm3: the wrapper's out[8..24].
    let lanes: Vec<(usize, usize, String)> = (0..16)
        .filter(|&c| cpu.col_defined(c))
        .map(|c| (8 + c, c, format!("xmm{} lane {}", c / 4, c % 4)))
        .collect();
    agrees(&tv, el, &cpu, &prog, &lanes)
}

fn cpu_has(feature: &str) -> bool {
    match feature {
        "sse4.1" => std::arch::is_x86_feature_detected!("sse4.1"),
        "avx" => std::arch::is_x86_feature_detected!("avx"),
        "avx2" => std::arch::is_x86_feature_detected!("avx2"),
        _ => {
            std::arch::is_x86_feature_detected!("avx512vl")
                && std::arch::is_x86_feature_detected!("avx512f")
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn emulator_matches_cpu_on_vector_programs_i32(raws in proptest::collection::vec(raw(4), 1..25), m in any::<u8>()) {
        prop_assume!(cpu_has("sse4.1"));
        compare(4, Element::I32, &raws, m, cpu_has("avx"))?;
    }

    #[test]
    fn emulator_matches_cpu_on_packed_programs_i32(raws in proptest::collection::vec(raw_packed(), 1..25)) {
        prop_assume!(cpu_has("avx2"));
        compare_packed(Element::I32, &raws)?;
    }

    #[test]
    fn emulator_matches_cpu_on_packed_programs_u32(raws in proptest::collection::vec(raw_packed(), 1..25)) {
        prop_assume!(cpu_has("avx2"));
        compare_packed(Element::U32, &raws)?;
    }

    #[test]
    fn emulator_matches_cpu_on_vector_programs_u32(raws in proptest::collection::vec(raw(3), 1..25), m in any::<u8>()) {
        prop_assume!(cpu_has("sse4.1"));
        compare(3, Element::U32, &raws, m, cpu_has("avx"))?;
    }
}

fn parse_err(text: &str) -> String {
    Task::parse(text, Path::new("t.toml"))
        .unwrap_err()
        .to_string()
}

#[test]
fn vector_task_files_refuse_what_the_game_cannot_play() {
    let base = std::fs::read_to_string("programs/sort3-avx2.toml").unwrap();
    let t = Task::load("sort3-avx2").unwrap();
    assert_eq!(t.vector.map(|v| v.name()), Some("avx2"));
    assert_eq!(t.scratch.len(), 8);
    assert!(t.conds.is_empty() && !t.copies);
    assert_eq!(t.reference.network, Some(12));
    assert!(Task::load("sort4-sse41").unwrap().copies);
    let cases = [
        (
            base.replace("vector = \"avx2\"", "vector = \"avx3\""),
            "t.toml: isa.vector: unknown vector instruction set 'avx3' (known: sse4.1, avx2, avx512)",
        ),
        (
            base.replace("\"pminsd\"", "\"cmovl\""),
            "t.toml: isa.opcodes: cmovl is a scalar move; a task with isa.vector = \"avx2\" plays the vector moves only (movd, pminsd, pmaxsd, movdqa)",
        ),
        (
            base.replace("\"pminsd\", ", ""),
            "t.toml: isa.opcodes: a vector sort task needs movd, pminsd and pmaxsd (movdqa is optional)",
        ),
        (
            base.replace("\"pminsd\"", "\"pminud\""),
            "t.toml: isa.opcodes: unknown opcode 'pminud' (known for i32 with isa.vector: movd, pminsd, pmaxsd, movdqa)",
        ),
        (
            base.replace("\"xmm0\"", "\"eax\""),
            "t.toml: isa.scratch: 'eax' is not a vector register of the game (xmm0-xmm13), as a task with isa.vector needs",
        ),
        (
            std::fs::read_to_string("programs/sort4-sse41.toml")
                .unwrap()
                .replace(", \"movdqa\"", ""),
            "t.toml: isa.opcodes: an sse4.1 task needs movdqa: the two-operand pminsd and pmaxsd overwrite a source, so a compare-exchange needs a copy",
        ),
        (
            std::fs::read_to_string("programs/sort4-i64-avx512.toml")
                .unwrap()
                .replace("\"avx512\"", "\"avx2\""),
            "t.toml: isa.vector: avx2 has no lane minimum or maximum for i64 elements (vpminsq needs avx512)",
        ),
    ];
    for (text, want) in cases {
        assert_eq!(parse_err(&text), want);
    }
}

#[test]
fn the_vector_networks_are_the_games_incumbents_with_their_lengths() {
    for (task, len) in [
        ("sort3-avx2", 12),
        ("sort4-avx2", 18),
        ("sort5-avx2", 28),
        ("sort8-avx2", 54),
        ("sort4-sse41", 23),
        ("sort4-i64-avx512", 18),
    ] {
        let t = Task::load(task).unwrap();
        let game = SortGame::new(&t);
        let actions = game.network_actions().expect(task);
        let program = game.program(&actions).unwrap();
        assert_eq!(program.len(), len, "{task}");
        assert_eq!(Some(len), t.reference.network, "{task}");
        assert!(program.iter().all(|i| i.is_vector()));
        assert_eq!(
            superopt::oracle::prove(&t, &program).map_err(|e| e.1),
            Ok(format!(
                "proved on all {} weak orderings of {} inputs by the emulator (vector loads, stores, copies and lane min/max only, which select inputs by their order: a proof for all inputs)",
                t.test_vectors().len(),
                t.n
            ))
        );
        // The lower bound is admissible at the start: n loads are played, and at least one
        // new column (a minimum or maximum) per slot not yet sorted, and the n stores.
        let s = game.initial();
        assert!(game.cost(&s) + game.lower_bound(&s) <= len as u32);
    }
}

#[test]
fn astar_proves_sort3_with_lane_min_max_needs_12_instructions_in_its_space() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().display().to_string();
    let (out, _) = astar("sort3-avx2", "sort3-avx2", "60s", &logs, 0);
    assert!(
        out.starts_with("sort3-avx2: verified kernel, 12 instructions (classic network 12)\n"),
        "{out}"
    );
    // A* ran out of states under its admissible bound: nothing shorter in the searched space
    // (loads first, stores last, one element per register).
    assert!(out.contains("; stopped: exhausted\n"), "{out}");
}

/// The game's network kernel for `task` (its incumbent), in Intel syntax, one per line.
fn network_text(task: &str) -> String {
    let t = Task::load(task).unwrap();
    let game = SortGame::new(&t);
    let program = game.program(&game.network_actions().unwrap()).unwrap();
    let text: Vec<String> = program.iter().map(|i| i.intel_as(t.element)).collect();
    text.join("\n")
}

/// The i32 network kernel for sort3 with lane min/max, as I wrote it (Intel syntax).
const SORT3_AVX: &str = "vmovd xmm0, dword ptr [rdi]
vmovd xmm1, dword ptr [rdi+4]
vmovd xmm2, dword ptr [rdi+8]
vpminsd xmm3, xmm0, xmm1
vpmaxsd xmm1, xmm0, xmm1
vpminsd xmm0, xmm1, xmm2
vpmaxsd xmm2, xmm1, xmm2
vpminsd xmm1, xmm0, xmm3
vpmaxsd xmm0, xmm0, xmm3
vmovd dword ptr [rdi], xmm1
vmovd dword ptr [rdi+4], xmm0
vmovd dword ptr [rdi+8], xmm2
";

fn verdict(task: &str, text: &str) -> (Status, String) {
    let k = parse_str(text, Syntax::Intel, "k.s").unwrap();
    let v = verify_kernel(
        &Task::load(task).unwrap(),
        &k,
        &NativeConfig {
            random: 1000,
            ..NativeConfig::default()
        },
    )
    .unwrap();
    (v.status, v.reason.unwrap_or_default())
}

#[test]
fn verify_refuses_past_the_array_dirty_upper_state_and_signed_min_on_u32() {
    if !cpu_has("avx") {
        eprintln!("note: this CPU lacks AVX; skipping");
        return;
    }
    assert_eq!(
        verdict("sort3-avx2", SORT3_AVX),
        (Status::Verified, String::new())
    );
    let past = SORT3_AVX.replace(
        "vmovd xmm2, dword ptr [rdi+8]",
        "vmovd xmm2, dword ptr [rdi+12]",
    );
    assert_eq!(
        verdict("sort3-avx2", &past),
        (Status::Failed, "reads outside the array (line 3)".into())
    );
    let dirty = format!("{SORT3_AVX}vxorps ymm5, ymm5, ymm5\n");
    assert_eq!(
        verdict("sort3-avx2", &dirty),
        (
            Status::Failed,
            "leaves the upper vector state dirty: vxorps writes a 256-bit register and no vzeroupper follows (line 13)".into()
        )
    );
    let (status, why) = verdict("sort3-avx2", &format!("{dirty}vzeroupper\n"));
    assert_eq!(status, Status::TestedNotProven, "{why}");
    assert_eq!(
        verdict("sort3-u32-avx2", SORT3_AVX),
        (
            Status::Failed,
            "not sorted: [0,0,4294967294] -> [4294967294,0,0] (vpminsd compares signed; u32 elements compare unsigned, as vpminud does, line 4)".into()
        )
    );
    // A kernel must play its task's moves: the register file, the level, the opcodes.
    assert_eq!(
        verdict("sort3", SORT3_AVX),
        (
            Status::Failed,
            "a kernel of vector moves (line 1); task sort3 plays mov, cmp and cmovcc (no isa.vector): verify it against a task such as sort3-avx2".into()
        )
    );
    let network = std::fs::read_to_string("tests/kernels/sort3_network_intel.s").unwrap();
    assert_eq!(
        verdict("sort3-avx2", &network),
        (
            Status::Failed,
            "a kernel of mov, cmp and cmovcc (line 2); task sort3-avx2 plays the avx2 vector moves: verify it against a task such as sort3".into()
        )
    );
    let sse3 = Task::parse(
        &std::fs::read_to_string("programs/sort4-sse41.toml")
            .unwrap()
            .replace("n = 4", "n = 3"),
        Path::new("sse3.toml"),
    )
    .unwrap();
    let k = parse_str(SORT3_AVX, Syntax::Intel, "k.s").unwrap();
    let v = verify_kernel(&sse3, &k, &NativeConfig::default()).unwrap();
    assert_eq!(
        (v.status, v.reason.unwrap_or_default()),
        (
            Status::Failed,
            "vmovd is a VEX instruction, beyond task sort4-sse41's isa.vector = \"sse4.1\" (legacy SSE only) (line 1)".into()
        )
    );
    let copy = SORT3_AVX.replace(
        "vpminsd xmm3, xmm0, xmm1\n",
        "vmovdqa xmm4, xmm0\nvpminsd xmm3, xmm4, xmm1\n",
    );
    assert_eq!(
        verdict("sort3-avx2", &copy),
        (
            Status::Failed,
            "uses vmovdqa, which is not among task sort3-avx2's opcodes (line 4)".into()
        )
    );
    assert_eq!(
        verdict("sort3-avx2", &format!("xor eax, eax\n{SORT3_AVX}")),
        (
            Status::Failed,
            "uses eax, which task sort3-avx2 does not list as scratch (none: a vector task's kernels use xmm registers) (line 1)".into()
        )
    );
    let unsigned = SORT3_AVX
        .replace("vpminsd", "vpminud")
        .replace("vpmaxsd", "vpmaxud");
    assert_eq!(
        verdict("sort3-u32-avx2", &unsigned),
        (Status::Verified, String::new())
    );
}

#[test]
fn a_kernel_that_needs_avx512_is_proved_and_runs_only_where_the_cpu_has_it() {
    let t = Task::load("sort4-i64-avx512").unwrap();
    let game = SortGame::new(&t);
    let program = game.program(&game.network_actions().unwrap()).unwrap();
    let text: Vec<String> = program.iter().map(|i| i.intel_as(t.element)).collect();
    let (status, reason) = verdict("sort4-i64-avx512", &text.join("\n"));
    if cpu_has("avx512") {
        assert_eq!((status, reason), (Status::Verified, String::new()));
    } else {
        assert_eq!(
            (status, reason),
            (
                Status::ProvedNotRun,
                "proved, not run: needs avx512f, avx512vl, which this CPU lacks".into()
            )
        );
    }
    if !cpu_has("avx512") {
        // A latency search would run its finalists here: refused before it starts.
        let o = superopt(&[
            "search",
            "sort4-i64-avx512",
            "--objective",
            "latency",
            "--budget",
            "1s",
        ]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            "error: search --objective latency times its finalists on this CPU, and task sort4-i64-avx512's moves need avx512f, avx512vl, which this CPU lacks (rank them with --meter model)\n"
        );
    }
    assert_eq!(
        superopt::isa::features_as(&program, t.element)
            .into_iter()
            .map(superopt::isa::feature_name)
            .collect::<Vec<_>>(),
        ["avx", "avx512f", "avx512vl"]
    );
}

#[test]
fn vector_kernels_export_to_c_and_rust_that_link_sort_and_check_features() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").display().to_string();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    for (task, ty, runs) in [
        ("sort4-avx2", "i32", cpu_has("avx")),
        ("sort4-i64-avx512", "i64", cpu_has("avx512")),
    ] {
        // Exit 1 where the kernel is proved but cannot run here.
        let (_, log) = astar(task, task, "2s", &logs, if runs { 0 } else { 1 });
        let name = task.replace('-', "_");
        for format in ["c", "rust"] {
            let o = superopt(&["export", &log, "--format", format, "-o", &out_s]);
            assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
            if format == "c" {
                // The header's check line says how the code was checked.
                let how = if runs { "verified" } else { "proved (not run)" };
                assert!(
                    stdout(&o).contains(&format!(".S, {how} above; ")),
                    "{}",
                    stdout(&o)
                );
            }
        }
        // An export is not a kernel file: the message says what to give instead.
        let exported = out.join(format!("{name}.S")).display().to_string();
        let o = superopt(&["verify", task, &exported]);
        assert_eq!(o.status.code(), Some(2));
        assert_eq!(
            stderr(&o),
            format!("error: {exported}:1: this file is an export (superopt export wrote it), not a kernel file of one instruction per line: use the instructions between its label and ret (or, for export, the search log it came from)\n")
        );
        let header = std::fs::read_to_string(out.join(format!("{name}.h"))).unwrap();
        if !runs {
            assert!(
                header.contains(" * proved, not run: needs avx512f, avx512vl, which this CPU lacks: proved on the emulator, not run on the machine that exported it."),
                "{header}"
            );
        }
        let needs = if ty == "i32" {
            " * Needs the CPU features avx: call it only where __builtin_cpu_supports(\"avx\") (GCC, Clang). */"
        } else {
            " * Needs the CPU features avx, avx512f, avx512vl: call it only where __builtin_cpu_supports(\"avx\") && __builtin_cpu_supports(\"avx512f\") && __builtin_cpu_supports(\"avx512vl\") (GCC, Clang).\n"
        };
        assert!(header.contains(needs), "{header}");
        if runs && have("gcc") {
            let src = write(&out, &format!("test_{name}.c"), &c_sort_test(&name, ty, 4));
            let o = gcc_run(
                &out.join(format!("test_{name}")),
                &[Path::new(&src), &out.join(format!("{name}.S"))],
            );
            // 7^4 tuples over the extremes and 2000 random ones.
            assert_eq!(stdout(&o), "passed 4401 of 4401\n");
        }
        if have("rustc") {
            let o = rustc_tests(&out.join(format!("{name}.rs")));
            let text = stdout(&o);
            assert!(
                text.contains("test result: ok. 3 passed; 0 failed;"),
                "{text}"
            );
            if !runs {
                // The wrapper refused: the sorting tests say they skipped.
                assert!(
                    stderr(&o).contains("skipped: sort4_i64_avx512 needs the CPU features avx512f, avx512vl, which this CPU lacks"),
                    "{}",
                    stderr(&o)
                );
            }
        }
    }
    // A library of both: each line of the crate's docs says what its kernel needs.
    let lib = dir.path().join("lib").display().to_string();
    let o = superopt(&[
        "export",
        "--library",
        &lib,
        "sort4-avx2",
        "sort4-i64-avx512",
        "--log-dir",
        &logs,
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(Path::new(&lib).join("src/lib.rs")).unwrap();
    assert!(
        text.contains(" instructions (ret excluded), from search log "),
        "{text}"
    );
    assert!(text.contains("; needs avx\n"), "{text}");
    let wide = if cpu_has("avx512") {
        "; needs avx, avx512f, avx512vl\n"
    } else {
        "; needs avx, avx512f, avx512vl; proved, not run on the machine that exported it\n"
    };
    assert!(text.contains(wide), "{text}");
}

#[test]
fn bench_of_a_vector_task_times_both_networks_sort8_included() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (csv, png) = (d.join("b.csv"), d.join("b.png"));
    let o = superopt(&[
        "bench",
        "sort8-avx2",
        "--meter",
        "model",
        "--log-dir",
        &d.display().to_string(),
        "--csv",
        &csv.display().to_string(),
        "--png",
        &png.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let out = stdout(&o);
    // The cmov network needs a ninth register (rbx), which the timing loop saves.
    let vector = out
        .lines()
        .find(|l| l.starts_with("network, avx2 min/max (19 comparators)"))
        .unwrap();
    let cmov = out
        .lines()
        .find(|l| l.starts_with("network, cmov (19 comparators)"))
        .unwrap();
    assert!(vector.contains("     54 "), "{vector}");
    assert!(
        out.contains("\nvs ref: faster (slower) when the model's figure is below (above) the reference's, else tie\n"),
        "{out}"
    );
    assert!(
        cmov.contains("     92 ") && cmov.ends_with("verified; body timed, rbx saved outside"),
        "{cmov}"
    );
}

#[test]
fn a_library_by_latency_takes_each_tasks_latest_latency_search() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib").display().to_string();
    let o = superopt(&[
        "export",
        "--library",
        &lib,
        "sort3",
        "sort5-avx2",
        "--objective",
        "latency",
        "--log-dir",
        "search-logs",
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    let text = std::fs::read_to_string(Path::new(&lib).join("src/lib.rs")).unwrap();
    for line in [
        "//! * [`sort3()`](sort3::sort3): 3 `i32` elements, 18 instructions (ret excluded), from search log search-logs/examples/sort3-latency-seed0.json (latency search)\n",
        "//! * [`sort5_avx2()`](sort5_avx2::sort5_avx2): 5 `i32` elements, 28 instructions (ret excluded), from search log search-logs/examples/sort5-avx2-latency-seed0.json (latency search); needs avx\n",
    ] {
        assert!(text.contains(line), "{text}");
    }
    // A task no latency search has run for, and the flag without --library.
    let empty = dir.path().join("none").display().to_string();
    let o = superopt(&[
        "export",
        "--library",
        &lib,
        "sort4-avx2",
        "--objective",
        "latency",
        "--log-dir",
        &empty,
    ]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        format!("error: no verified sort4-avx2 kernel from a latency search in the search logs under {empty} (looked in {empty}/sort4-avx2/ and {empty}/examples/)\n")
    );
    let o = superopt(&["export", "x.json", "--objective", "latency"]);
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(stderr(&o), "error: --objective goes with --library DIR\n");
}

#[test]
fn bench_checks_a_file_against_its_own_register_file_at_the_widest_level() {
    // sort4-sse41's network (with movdqa copies) beside sort4-avx2's kernels: bench compares
    // instruction sets, so the file is checked at the widest level, where movdqa is a move.
    let text = network_text("sort4-sse41");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // bench TASK FILE (model meter), the row of FILE.
    let row_of =
        |task: &str, name: &str, text: &str| bench_model_row(d, task, &write(d, name, text), name);
    let row = row_of("sort4-avx2", "sse4.s", &text);
    assert!(
        row.contains("     23 ") && row.ends_with("  verified"),
        "{row}"
    );
    // verify keeps the task's own rules.
    let (status, reason) = verdict("sort4-avx2", &text);
    assert_eq!(status, Status::Failed);
    assert!(
        reason.starts_with("uses movdqa, which is not among task sort4-avx2's opcodes"),
        "{reason}"
    );
    // A packed task's bench takes one-element kernels too (verify does not).
    let row = row_of("sort4-avx2-packed", "one.s", &network_text("sort4-avx2"));
    assert!(
        row.contains("     18 ") && row.ends_with("  verified"),
        "{row}"
    );
    assert!(verdict("sort4-avx2-packed", &network_text("sort4-avx2"))
        .1
        .starts_with("uses vmovd, which is not among task sort4-avx2-packed's opcodes"));
}

#[test]
fn a_64_bit_min_of_the_other_signedness_is_refused_for_it_not_for_a_cpu_feature() {
    // sort4-i64-avx512's network (vpminsq, signed) for u64 elements.
    let text = network_text("sort4-i64-avx512");
    let u64_task = Task::parse(
        &std::fs::read_to_string("programs/sort4-i64-avx512.toml")
            .unwrap()
            .replace("element = \"i64\"", "element = \"u64\"")
            .replace("pminsq", "pminuq")
            .replace("pmaxsq", "pmaxuq"),
        Path::new("u64.toml"),
    )
    .unwrap();
    let k = parse_str(&text, Syntax::Intel, "k.s").unwrap();
    let v = verify_kernel(&u64_task, &k, &NativeConfig::default()).unwrap();
    let reason = v.reason.unwrap_or_default();
    assert_eq!(v.status, Status::Failed);
    if cpu_has("avx512") {
        assert!(
            reason.ends_with(
                "(vpminsq compares signed; u64 elements compare unsigned, as vpminuq does, line 5)"
            ),
            "{reason}"
        );
    } else {
        assert_eq!(
            reason,
            "vpminsq compares signed; u64 elements compare unsigned, as vpminuq does (line 5)"
        );
    }
}

#[test]
fn packed_tasks_play_the_in_register_network_and_verify_refuses_what_they_cannot_hold() {
    let t = Task::load("sort4-avx2-packed").unwrap();
    assert!(t.packed);
    assert_eq!(
        (t.align, t.columns(), t.reference.network),
        (8, 12, Some(14))
    );
    let base = std::fs::read_to_string("programs/sort4-avx2-packed.toml").unwrap();
    for (from, to, want) in [
        (
            "align = 8 ",
            "# ",
            "packed lanes load and store the array with vmovdqu, which may raise an alignment-check fault below 8-byte alignment (Intel SDM vol. 3A, 6.15): set layout.align = 8",
        ),
        (
            "n = 4",
            "n = 3",
            "packed lanes hold exactly 4 32-bit elements in one xmm register (this task: 3 i32 elements)",
        ),
        (
            "vector = \"avx2\"",
            "vector = \"sse4.1\"",
            "packed lanes need isa.vector = \"avx2\" or \"avx512\" (vpblendd is AVX2)",
        ),
        (
            "\"xmm2\"]",
            "\"xmm3\"]",
            "'xmm3' is past xmm2: a packed task keeps four lane columns per register, and the game has room for xmm0-xmm2",
        ),
        (
            "\"vpblendd\", ",
            "",
            "a packed task needs all of vmovdqu, vpshufd, vpblendd, vpminsd, vpmaxsd",
        ),
    ] {
        assert!(base.contains(from), "{from}");
        let e = parse_err(&base.replacen(from, to, 1));
        assert!(e.ends_with(want), "{e}");
    }

    // The game starts after the one load and finishes with the one store.
    let g = SortGame::new(&t);
    let s0 = g.initial();
    assert_eq!(s0.len, 1);
    assert_eq!(g.lower_bound(&s0), 2, "a move, then the store");
    let program = g.program(&g.network_actions().unwrap()).unwrap();
    assert_eq!(program.len(), 14);
    assert_eq!(
        program[0],
        Insn::PLoad {
            dst: Reg::from_index(0)
        }
    );
    assert_eq!(
        program[13],
        Insn::PStore {
            src: Reg::from_index(0)
        }
    );

    let text = network_text("sort4-avx2-packed");
    assert!(text.starts_with("vmovdqu xmm0, "), "{text}");
    assert_eq!(
        text.lines().nth(1),
        Some("vpshufd xmm1, xmm0, 0xB1"),
        "{text}"
    );
    let (status, why) = verdict("sort4-avx2-packed", &text);
    let want = if cpu_has("avx2") {
        Status::Verified
    } else {
        Status::ProvedNotRun
    };
    assert_eq!(status, want, "{why}");
    // The same kernel for a task of one element per register, or of three elements.
    assert_eq!(
        verdict("sort4-avx2", &text).1,
        "vmovdqu moves packed lanes (line 1); task sort4-avx2 holds one element per register (no isa.packed): verify it against a task such as sort4-avx2-packed"
    );
    assert_eq!(
        verdict("sort3-avx2", &text).1,
        "reads outside the array (line 1)"
    );
    // A one-element load is not among a packed task's moves.
    let partial = "vmovd xmm0, dword ptr [rdi]\nvmovdqu xmmword ptr [rdi], xmm0\n";
    assert_eq!(
        verdict("sort4-avx2-packed", partial).1,
        "uses vmovd, which is not among task sort4-avx2-packed's opcodes (vmovdqu, vpshufd, vpblendd, vpminsd, vpmaxsd) (line 1)"
    );
    // The emulator refuses to store the lanes such a load leaves without an input value.
    let mut cpu = CpuState::packed(&TestVectors::new(4), 3);
    let x0 = Reg::from_index(0);
    cpu.apply(Insn::VLoad {
        dst: x0,
        slot: 0,
        avx: true,
    })
    .unwrap();
    assert_eq!(cpu.lanes_defined(x0), 0b0001);
    let fault = cpu.apply(Insn::PStore { src: x0 }).unwrap_err();
    assert_eq!(
        fault.to_string(),
        "stores lane 1 of xmm0, which holds no input value"
    );
}

#[test]
fn packed_kernels_search_export_and_link_into_c_and_rust() {
    let dir = tempfile::tempdir().unwrap();
    let logs = dir.path().join("logs").display().to_string();
    let out = dir.path().join("out");
    let out_s = out.display().to_string();
    let runs = cpu_has("avx2");
    let (text, log) = astar(
        "sort4-avx2-packed",
        "sort4-avx2-packed",
        "2s",
        &logs,
        if runs { 0 } else { 1 },
    );
    assert!(
        text.starts_with(
            "sort4-avx2-packed: verified kernel, 14 instructions (classic network 14)"
        ) || !runs,
        "{text}"
    );
    for format in ["c", "rust"] {
        let o = superopt(&["export", &log, "--format", format, "-o", &out_s]);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    }
    let header = std::fs::read_to_string(out.join("sort4_avx2_packed.h")).unwrap();
    assert!(header.contains("buf must point to 4 readable and writable int32_t, aligned to 8 bytes (its 16-byte loads and stores may fault otherwise\n * when alignment checking is on). x86-64 only."), "{header}");
    assert!(
        header.contains("Needs the CPU features avx, avx2: "),
        "{header}"
    );
    if runs && have("gcc") {
        let src = write(
            &out,
            "test_packed.c",
            &c_sort_test("sort4_avx2_packed", "i32", 4),
        );
        let o = gcc_run(
            &out.join("test_packed"),
            &[Path::new(&src), &out.join("sort4_avx2_packed.S")],
        );
        assert_eq!(stdout(&o), "passed 4401 of 4401\n");
    }
    if have("rustc") {
        let module = std::fs::read_to_string(out.join("sort4_avx2_packed.rs")).unwrap();
        assert!(module.contains("#[repr(C, align(8))]"), "{module}");
        let o = rustc_tests(&out.join("sort4_avx2_packed.rs"));
        assert!(
            stdout(&o).contains("test result: ok. 3 passed; 0 failed;"),
            "{}",
            stdout(&o)
        );
    }
}
