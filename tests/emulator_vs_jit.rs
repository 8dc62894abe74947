//! The emulator agrees with the CPU: random programs over the game's ISA (`mov r, [mem]`,
//! `mov [mem], r`, `mov r, r`, `cmp`, `cmovcc`), usually opening with the n loads, whose read
//! operands are drawn among the registers defined at that point (so the emulator accepts every
//! instruction and nothing undefined is ever read), run on [`CpuState`] over every weak
//! ordering and, encoded with [`superopt::isa::encode`], natively through a small dynasmrt
//! wrapper.
//! Memory, every defined register and (after a `cmp`) the signed flags must agree on every
//! test vector. Native inputs are the dense ranks mapped through a random strictly increasing
//! map into i32, so that signed comparisons of extreme values are exercised too.
#![cfg(target_arch = "x86_64")]

use dynasmrt::{dynasm, x64::Assembler, DynasmApi, ExecutableBuffer};
use proptest::prelude::*;
use superopt::game::{CpuState, FLAG_EQ, FLAG_GT, FLAG_LT};
use superopt::isa::{encode, Cond, Insn, Reg};
use superopt::task::TestVectors;

/// `fn(buf, out)`: runs the kernel with rdi = `buf`, then writes eax, ecx, edx, esi, r8d-r11d
/// to `out[0..8]` and the low 32 bits of RFLAGS to `out[8]`. The kernel only touches
/// caller-saved registers, so the wrapper needs no prologue.
type Wrapper = unsafe extern "sysv64" fn(*mut i32, *mut u32);

struct Native {
    _code: ExecutableBuffer,
    entry: Wrapper,
}

impl Native {
    fn new(kernel: &[u8]) -> Native {
        let mut ops = Assembler::new().expect("map JIT memory");
        let start = ops.offset();
        dynasm!(ops
            ; .arch x64
            ; push rsi                      // out
        );
        ops.extend(kernel);
        dynasm!(ops
            ; .arch x64
            ; pushfq                        // [rsp] flags, [rsp+8] out
            ; push rax                      // [rsp] rax, [rsp+8] flags, [rsp+16] out
            ; mov rax, [rsp + 16]
            ; mov [rax + 4], ecx
            ; mov [rax + 8], edx
            ; mov [rax + 12], esi
            ; mov [rax + 16], r8d
            ; mov [rax + 20], r9d
            ; mov [rax + 24], r10d
            ; mov [rax + 28], r11d
            ; pop rcx
            ; mov [rax], ecx
            ; pop rcx
            ; mov [rax + 32], ecx
            ; pop rcx
            ; ret
        );
        let code = ops.finalize().expect("executable JIT memory");
        // SAFETY: the wrapper above follows the SysV ABI for this signature; the kernel writes
        // only caller-saved registers and the flags.
        let entry: Wrapper = unsafe { std::mem::transmute(code.ptr(start)) };
        Native { _code: code, entry }
    }

    /// Runs on `buf` (whose length the kernel respects: every slot it names is < n).
    fn call(&self, buf: &mut [i32]) -> [u32; 9] {
        let mut out = [0u32; 9];
        // SAFETY: the kernel reads and writes only [rdi + 4k] for k < buf.len(), checked by
        // the emulator (which refuses slots outside the array) before this runs.
        unsafe { (self.entry)(buf.as_mut_ptr(), out.as_mut_ptr()) };
        out
    }
}

/// Signed outcome of the last `cmp` from RFLAGS (ZF bit 6, SF bit 7, OF bit 11).
fn signed_outcome(rflags: u32) -> u8 {
    let zf = rflags >> 6 & 1 == 1;
    let sf = rflags >> 7 & 1;
    let of = rflags >> 11 & 1;
    if zf {
        FLAG_EQ
    } else if sf != of {
        FLAG_LT
    } else {
        FLAG_GT
    }
}

/// One raw instruction: an opcode, two register choices, a slot and a condition. Register
/// operands that are read are resolved against the registers defined at that point (see
/// [`resolve`]), so that most raw instructions become instructions the emulator accepts.
#[derive(Clone, Copy, Debug)]
struct Raw {
    op: u8,
    x: u8,
    y: u8,
    slot: u8,
    cc: Cond,
}

fn raw(n: usize) -> impl Strategy<Value = Raw> {
    let cond = prop_oneof![Just(Cond::L), Just(Cond::G), Just(Cond::Le), Just(Cond::Ge)];
    // op weights: load 2, store 2, mov 2, cmp 2, cmov 3, cmp with a slot 1 (either operand
    // order), cmov from a slot 1
    (
        prop_oneof![2 => Just(0u8), 2 => Just(1), 2 => Just(2), 2 => Just(3), 3 => Just(4), 1 => Just(5), 1 => Just(6)],
        0u8..8,
        0u8..8,
        0..n as u8,
        cond,
    )
        .prop_map(|(op, x, y, slot, cc)| Raw { op, x, y, slot, cc })
}

/// The instruction for `r` in `cpu`'s state: written registers are any of the eight, read
/// ones are picked among the defined registers; `None` when there is nothing to read (no
/// defined register, or a `cmovcc` before any `cmp`).
fn resolve(r: Raw, cpu: &CpuState) -> Option<Insn> {
    let defined: Vec<Reg> = Reg::ALL
        .into_iter()
        .filter(|&g| cpu.reg_defined(g))
        .collect();
    let any = |i: u8| Reg::from_index(i as usize % 8);
    let def = |i: u8| (!defined.is_empty()).then(|| defined[i as usize % defined.len()]);
    Some(match r.op {
        0 => Insn::Load {
            dst: any(r.x),
            slot: r.slot,
        },
        1 => Insn::Store {
            slot: r.slot,
            src: def(r.y)?,
        },
        2 => Insn::Mov {
            dst: any(r.x),
            src: def(r.y)?,
        },
        3 => Insn::Cmp {
            a: def(r.x)?,
            b: def(r.y)?,
        },
        5 => Insn::CmpMem {
            a: def(r.x)?,
            slot: r.slot,
            mem_first: r.y % 2 == 0,
        },
        6 if cpu.flags_defined() => Insn::CmovMem {
            cc: r.cc,
            dst: def(r.x)?,
            slot: r.slot,
        },
        _ if cpu.flags_defined() => Insn::Cmov {
            cc: r.cc,
            dst: def(r.x)?,
            src: def(r.y)?,
        },
        _ => return None,
    })
}

/// Up to 24 raw instructions, after the n loads `mov scratch[k], [rdi+4k]` in three cases
/// out of four.
fn program(n: usize) -> impl Strategy<Value = (bool, Vec<Raw>)> {
    (
        prop::bool::weighted(0.75),
        proptest::collection::vec(raw(n), 1..25),
    )
}

/// A strictly increasing map from ranks `0..n` into i32, often including the extremes.
fn value_map(n: usize) -> impl Strategy<Value = Vec<i32>> {
    let pool = prop_oneof![
        Just(i32::MIN),
        Just(i32::MIN + 1),
        Just(-1),
        Just(0),
        Just(1),
        Just(i32::MAX - 1),
        Just(i32::MAX),
        any::<i32>(),
        -10i32..10,
    ];
    proptest::collection::btree_set(pool, n..=n).prop_map(|s| s.into_iter().collect())
}

fn compare(n: usize, loads_first: bool, raw: &[Raw], map: &[i32]) -> Result<(), TestCaseError> {
    let tv = TestVectors::new(n);
    let mut cpu = CpuState::new(&tv, 8);
    let mut prog = Vec::new();
    if loads_first {
        for k in 0..n {
            let l = Insn::Load {
                dst: Reg::from_index(k),
                slot: k as u8,
            };
            cpu.apply(l).unwrap();
            prog.push(l);
        }
    }
    for &r in raw {
        if let Some(i) = resolve(r, &cpu) {
            prop_assert_eq!(
                cpu.apply(i),
                Ok(()),
                "{} reads only defined registers and flags",
                i
            );
            prog.push(i);
        }
    }
    prop_assume!(!prog.is_empty());
    let native = Native::new(&encode(&prog));
    for (t, input) in tv.inputs.iter().enumerate() {
        let mut buf: Vec<i32> = input.iter().map(|&v| map[v as usize]).collect();
        let out = native.call(&mut buf);
        for k in 0..n {
            prop_assert_eq!(
                buf[k],
                map[cpu.mem(k)[t] as usize],
                "slot {} on {:?} after {:?}",
                k,
                input,
                prog
            );
        }
        for r in Reg::ALL {
            if cpu.reg_defined(r) {
                prop_assert_eq!(
                    out[r.index()] as i32,
                    map[cpu.reg(r)[t] as usize],
                    "{} on {:?} after {:?}",
                    r,
                    input,
                    prog
                );
            }
        }
        if cpu.flags_defined() {
            prop_assert_eq!(
                signed_outcome(out[8]),
                cpu.flags()[t],
                "flags on {:?} after {:?}",
                input,
                prog
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn emulator_matches_cpu_n3((loads_first, raw) in program(3), map in value_map(3)) {
        compare(3, loads_first, &raw, &map)?;
    }

    #[test]
    fn emulator_matches_cpu_n4((loads_first, raw) in program(4), map in value_map(4)) {
        compare(4, loads_first, &raw, &map)?;
    }
}

/// `mov eax,[rdi]; mov ecx,[rdi+4]; cmp eax,ecx; cmovg eax,ecx; mov [rdi+4*out],eax`: the
/// minimum of the first two elements into slot `out`.
fn min_program(out: u8) -> [Insn; 5] {
    [
        Insn::Load {
            dst: Reg::Eax,
            slot: 0,
        },
        Insn::Load {
            dst: Reg::Ecx,
            slot: 1,
        },
        Insn::Cmp {
            a: Reg::Eax,
            b: Reg::Ecx,
        },
        Insn::Cmov {
            cc: Cond::G,
            dst: Reg::Eax,
            src: Reg::Ecx,
        },
        Insn::Store {
            slot: out,
            src: Reg::Eax,
        },
    ]
}

#[test]
fn wrapper_reports_registers_memory_and_flags() {
    // mov eax,[rdi]; mov ecx,[rdi+4]; cmp eax,ecx; cmovg eax,ecx; mov [rdi+8],eax
    let prog = min_program(2);
    let native = Native::new(&encode(&prog));
    let mut buf = [5, -7, 0];
    let out = native.call(&mut buf);
    assert_eq!(buf, [5, -7, -7]);
    assert_eq!(out[0] as i32, -7);
    assert_eq!(out[1] as i32, -7);
    assert_eq!(signed_outcome(out[8]), FLAG_GT);
    let mut buf = [i32::MIN, i32::MAX, 0];
    let out = native.call(&mut buf);
    assert_eq!(buf, [i32::MIN, i32::MAX, i32::MIN], "signed: MIN < MAX");
    assert_eq!(signed_outcome(out[8]), FLAG_LT);
    let mut buf = [3, 3, 9];
    let out = native.call(&mut buf);
    assert_eq!(buf, [3, 3, 3]);
    assert_eq!(signed_outcome(out[8]), FLAG_EQ);
}

#[test]
fn a_wrong_condition_encoding_would_be_caught() {
    // Unsigned `cmova` instead of signed `cmovg` (what an AT&T/Intel or signed/unsigned mix-up
    // would produce) differs from the emulator on negative values: the comparison above would
    // fail on it.
    let tv = TestVectors::new(2);
    let mut cpu = CpuState::new(&tv, 8);
    let prog = min_program(0);
    for i in prog {
        cpu.apply(i).unwrap();
    }
    let mut code = encode(&prog);
    // cmovg r32, r/m32 is 0F 4F; cmova is 0F 47.
    let pos = code
        .windows(2)
        .position(|w| w == [0x0F, 0x4F])
        .expect("cmovg opcode");
    code[pos + 1] = 0x47;
    let native = Native::new(&code);
    let map = [-1, 1]; // rank 0 -> -1, rank 1 -> 1
    let mut mismatches = 0;
    for (t, input) in tv.inputs.iter().enumerate() {
        let mut buf: Vec<i32> = input.iter().map(|&v| map[v as usize]).collect();
        native.call(&mut buf);
        if buf[0] != map[cpu.mem(0)[t] as usize] {
            mismatches += 1;
        }
    }
    assert_eq!(
        mismatches, 2,
        "[0,1] and [1,0] differ between signed and unsigned"
    );
}
