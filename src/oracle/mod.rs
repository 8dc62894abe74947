//! The oracle: decides whether a kernel is correct, and says which checks that rests on.
//!
//! * **Stage 1, proof on the emulator.** The kernel runs on the [`crate::game::CpuState`]
//!   emulator over every weak ordering of its inputs. For programs made only of `mov`, `cmp`
//!   and `cmovcc` this is a proof for all inputs (see [`crate::task::weak_orderings`]). It also
//!   shows that every memory access stays inside the array and that no undefined register or
//!   flag is read, before any byte runs on the CPU.
//! * **Stage 2, the real CPU.** The machine code runs natively behind a wrapper that poisons
//!   scratch registers and flags and checks guard words and callee-saved registers
//!   ([`native`]), on exhaustive, extreme and random inputs.
//!
//! A kernel is [`Status::Verified`] only when both stages passed. A kernel of game moves that
//! needs CPU features this CPU lacks (AVX-512 for the 64-bit lane minimum) is proved by stage
//! 1 and not run: [`Status::ProvedNotRun`], never verified. A kernel with instructions
//! outside the game's ISA cannot get the stage-1 proof; after a static safety check it may be
//! run by stage 2 alone and is then [`Status::TestedNotProven`].

pub mod native;

use crate::asm::Kernel;
use crate::error::Result;
use crate::game::CpuState;
use crate::isa::{encode_as, Insn};
use crate::task::{Task, TestVectors};
pub use native::{NativeConfig, NativeFailure, NativeReport};

/// The outcome of the oracle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Proved on every weak ordering (stage 1) and passed the native run (stage 2).
    Verified,
    /// Outside the game's ISA: passed stage 2 only, which tests but does not prove.
    TestedNotProven,
    /// Proved on every weak ordering (stage 1), but not run: it needs CPU features this CPU
    /// lacks ([`Verdict::reason`]: `proved, not run: needs avx512f, avx512vl`).
    ProvedNotRun,
    /// Incorrect or unsafe; see [`Verdict::reason`].
    Failed,
}

/// What the oracle concluded and on what grounds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Verdict {
    /// The outcome.
    pub status: Status,
    /// The checks that ran and passed, one line each (for reports and logs).
    pub checks: Vec<String>,
    /// Why the kernel failed, one line, with a smallest failing input where there is one
    /// (`not sorted: [1,1,0] -> [0,1,0]`); for [`Status::TestedNotProven`], why no proof.
    pub reason: Option<String>,
    /// Program length in instructions (`ret` excluded).
    pub length: usize,
}

impl Verdict {
    fn failed(checks: Vec<String>, reason: String, length: usize) -> Verdict {
        Verdict {
            status: Status::Failed,
            checks,
            reason: Some(reason),
            length,
        }
    }
}

/// Stage 1: runs `program` on the emulator over every weak ordering of `n` inputs, smallest
/// inputs first. Returns the check line on success, or the reason for the first failure:
/// `reads ecx before writing it` with the index of the faulting instruction, or
/// `not sorted: [1,1,0] -> [0,1,0]` (a smallest failing input) without one.
pub fn prove(
    task: &Task,
    program: &[Insn],
) -> std::result::Result<String, (Option<usize>, String)> {
    let tv = task.test_vectors();
    // A program of vector moves may use any of xmm0-13 (all caller-saved), whatever the task
    // lists; a scalar one the task's general-purpose registers.
    let vector = program.iter().any(|i| i.is_vector());
    // A packed program (or any program of a packed task) runs with four lanes per register.
    let packed = task.packed || program.iter().any(|i| i.is_packed());
    let mut cpu = if packed {
        CpuState::packed(&tv, crate::isa::NUM_REGS)
    } else if vector {
        CpuState::new(&tv, crate::isa::NUM_REGS)
    } else {
        CpuState::new(&tv, task.columns())
    };
    for (i, &insn) in program.iter().enumerate() {
        cpu.apply(insn).map_err(|f| (Some(i), f.describe(vector)))?;
    }
    let mut order: Vec<usize> = (0..tv.len()).collect();
    order.sort_by_key(|&t| (tv.inputs[t].iter().max().copied(), tv.inputs[t].clone()));
    for t in order {
        let out: Vec<u8> = (0..tv.n).map(|k| cpu.mem(k)[t]).collect();
        if out != tv.sorted[t] {
            return Err((
                None,
                format!("not sorted: {} -> {}", list(&tv.inputs[t]), list(&out)),
            ));
        }
    }
    let memory = program.iter().any(|i| i.has_memory_operand());
    Ok(proof_line(&tv, vector, packed, memory))
}

fn proof_line(tv: &TestVectors, vector: bool, packed: bool, memory: bool) -> String {
    format!(
        "proved on all {} weak orderings of {} inputs by the emulator ({}: a proof for all inputs)",
        tv.len(),
        tv.n,
        if packed {
            "loads, stores, lane shuffles and blends with immediates, and lane min/max only, which move inputs or select them by their order"
        } else if vector {
            "vector loads, stores, copies and lane min/max only, which select inputs by their order"
        } else if memory {
            "mov/cmp/cmov only, some with an array slot as operand"
        } else {
            "mov/cmp/cmov only"
        }
    )
}

fn list<T: std::fmt::Display>(v: &[T]) -> String {
    format!(
        "[{}]",
        v.iter()
            .map(|x| x.to_string())
            .collect::<Vec<_>>()
            .join(",")
    )
}

/// Both stages on a program of game moves. Stage 2 runs only if stage 1 passed.
///
/// Errors: only when the JIT cannot run at all ([`crate::Error::Runtime`]).
pub fn verify_program(task: &Task, program: &[Insn], cfg: &NativeConfig) -> Result<Verdict> {
    let mut checks = Vec::new();
    match prove(task, program) {
        Ok(line) => checks.push(line),
        Err((at, reason)) => {
            let reason = match at {
                Some(i) => format!(
                    "{reason} (instruction {}: {})",
                    i + 1,
                    program[i].intel_as(task.element)
                ),
                None => reason,
            };
            return Ok(Verdict::failed(checks, reason, program.len()));
        }
    }
    let missing = crate::asm::lacking(crate::isa::features_as(program, task.element));
    if !missing.is_empty() {
        return Ok(not_run(checks, &missing, program.len()));
    }
    let body: Vec<iced_x86::Instruction> =
        program.iter().map(|i| i.to_iced_as(task.element)).collect();
    let saved = callee_saved_used(&body, &task.saved_registers());
    stage2(
        task,
        &encode_as(program, task.element),
        cfg,
        checks,
        program.len(),
        None,
        &saved,
    )
}

/// The verdict on a proved kernel that needs `missing` CPU features to run: stage 2 skipped.
fn not_run(checks: Vec<String>, missing: &[iced_x86::CpuidFeature], len: usize) -> Verdict {
    let names: Vec<String> = missing
        .iter()
        .map(|&f| crate::isa::feature_name(f))
        .collect();
    Verdict {
        status: Status::ProvedNotRun,
        checks,
        reason: Some(format!(
            "proved, not run: needs {}, which this CPU lacks",
            names.join(", ")
        )),
        length: len,
    }
}

/// The callee-saved registers among `saved` (the task's) that the decoded body names, in
/// the task's order: the function around the body pushes and pops them.
pub fn callee_saved_used(
    body: &[iced_x86::Instruction],
    saved: &[iced_x86::Register],
) -> Vec<iced_x86::Register> {
    let mut factory = iced_x86::InstructionInfoFactory::new();
    let used: Vec<iced_x86::Register> = body
        .iter()
        .flat_map(|ins| {
            factory
                .info(ins)
                .used_registers()
                .iter()
                .map(|u| u.register().full_register())
                .collect::<Vec<_>>()
        })
        .collect();
    saved.iter().copied().filter(|r| used.contains(r)).collect()
}

/// `code` between pushes of `saved` (64-bit registers) and the pops in reverse order: how
/// the exported function runs a body that uses callee-saved registers.
pub fn with_saves(code: &[u8], saved: &[iced_x86::Register]) -> Vec<u8> {
    use iced_x86::{Code, Encoder, Instruction};
    let mut enc = Encoder::new(64);
    for &r in saved {
        let push = Instruction::with1(Code::Push_r64, r).expect("push of a 64-bit register");
        enc.encode(&push, 0).expect("push encodes");
    }
    let mut out = enc.take_buffer();
    out.extend_from_slice(code);
    let mut enc = Encoder::new(64);
    for &r in saved.iter().rev() {
        let pop = Instruction::with1(Code::Pop_r64, r).expect("pop of a 64-bit register");
        enc.encode(&pop, 0).expect("pop encodes");
    }
    out.extend(enc.take_buffer());
    out
}

/// Both stages on a parsed foreign kernel: the static safety check, then stage 1 if every
/// instruction is a game move, then stage 2. A kernel outside the game's ISA gets stage 2
/// only and at best [`Status::TestedNotProven`].
pub fn verify_kernel(task: &Task, kernel: &Kernel, cfg: &NativeConfig) -> Result<Verdict> {
    let len = kernel.decoded.len();
    let mut checks = Vec::new();
    let el = task.element;
    // A kernel of game moves may need features this CPU lacks: the emulator proves it and
    // stage 2 is skipped ("proved, not run"). Any other kernel must be able to run here.
    let game = kernel.to_game_as(task.n, el);
    if let Some((i, why)) = kernel
        .decoded
        .iter()
        .enumerate()
        .find_map(|(i, ins)| crate::isa::other_order(ins, el).map(|w| (i, w)))
    {
        // A lane minimum or maximum of the other signedness: outside the proof, like a cmovcc
        // of the other signedness below. Where the kernel is safe to run here, the native
        // stage shows an input it gets wrong; the signedness is the reason either way (not a
        // CPU feature this machine lacks).
        let line = kernel.lines[i];
        let mut reason = format!("{why} (line {line})");
        let runs_here = kernel.missing_features().is_empty()
            && kernel
                .check_safe_aligned(task.n, el, task.align, &task.saved_registers(), true)
                .is_ok();
        if runs_here {
            let saved = callee_saved_used(&kernel.decoded, &task.saved_registers());
            let code = with_saves(&kernel.code, &saved);
            if let Err(failure) = native::run_native(&code, task.n, el, cfg)? {
                reason = format!("{failure} ({why}, line {line})");
            }
        }
        return Ok(Verdict::failed(checks, reason, len));
    }
    // A kernel of the other register file or level: say which task fits, before any
    // static check of this task's layout.
    if let Some(reason) = game
        .as_ref()
        .ok()
        .and_then(|program| outside_task(task, kernel, program))
    {
        return Ok(Verdict::failed(checks, reason, len));
    }
    let safe = if game.is_ok() {
        kernel.check_safe_aligned(task.n, el, task.align, &task.saved_registers(), false)
    } else {
        kernel.check_safe_aligned(task.n, el, task.align, &task.saved_registers(), true)
    };
    if let Err((line, reason)) = safe {
        // A kernel for the other width fails here first: lead with that.
        let note = width_note(task, kernel).map_or(String::new(), |w| format!("{w}: "));
        return Ok(Verdict::failed(
            checks,
            format!("{note}{reason} (line {line})"),
            len,
        ));
    }
    match kernel.cpp_checked {
        Some(true) => checks.push(
            "the file as written: GNU as, and gcc as a .S file, build exactly the bytes checked"
                .into(),
        ),
        Some(false) => checks.push("the file as written: GNU as builds exactly the bytes checked (gcc not found: not checked as a .S file)".into()),
        None => {}
    }
    let bytes = el.bytes();
    checks.push(if task.saved_registers().is_empty() {
        format!("static check: no control flow, memory only inside [rdi, rdi+{bytes}n), no callee-saved writes")
    } else {
        format!("static check: no control flow, memory only inside [rdi, rdi+{bytes}n), no callee-saved writes but to the task's scratch (saved around the body)")
    });
    let scratch = task.gpr_scratch();
    if let Err((line, reason)) = kernel.check_registers(&task.name, &scratch) {
        return Ok(Verdict::failed(
            checks,
            format!("{reason} (line {line})"),
            len,
        ));
    }
    checks.push("static check: general-purpose registers only from the task's scratch list".into());
    match game {
        Ok(program) => {
            if let Some(i) = program
                .iter()
                .position(|insn| matches!(insn, Insn::Cmov { cc, .. } if !task.conds.contains(cc)))
            {
                let opcodes: Vec<String> = task
                    .conds
                    .iter()
                    .map(|c| format!("cmov{}", c.suffix()))
                    .collect();
                let Insn::Cmov { cc, .. } = program[i] else {
                    unreachable!("position found a cmov")
                };
                let mut reason = format!(
                    "uses cmov{}, which is not among task {}'s opcodes (mov, cmp, {}) (line {})",
                    cc.suffix(),
                    task.name,
                    opcodes.join(", "),
                    kernel.lines[i]
                );
                if cc.is_signed() != el.is_signed() {
                    // A condition of the other signedness: the weak-ordering proof does not
                    // cover it, but the kernel is otherwise a game program that passed the
                    // static check, so the native stage can show the smallest input it fails.
                    let why = format!(
                        "cmov{} compares {}; {el} elements compare {}",
                        cc.suffix(),
                        if cc.is_signed() { "signed" } else { "unsigned" },
                        if el.is_signed() { "signed" } else { "unsigned" },
                    );
                    let saved = callee_saved_used(&kernel.decoded, &task.saved_registers());
                    let code = with_saves(&kernel.code, &saved);
                    if let Err(failure) = native::run_native(&code, task.n, el, cfg)? {
                        reason = format!("{failure} ({why}, line {})", kernel.lines[i]);
                    }
                }
                return Ok(Verdict::failed(checks, reason, len));
            }
            match prove(task, &program) {
                Ok(line) => checks.push(line),
                Err((at, reason)) => {
                    let reason = match at {
                        Some(i) => format!("{reason} (line {})", kernel.lines[i]),
                        None => reason,
                    };
                    return Ok(Verdict::failed(checks, reason, len));
                }
            }
            let missing = kernel.missing_features();
            if !missing.is_empty() {
                return Ok(not_run(checks, &missing, len));
            }
            let saved = callee_saved_used(&kernel.decoded, &task.saved_registers());
            stage2(task, &kernel.code, cfg, checks, len, None, &saved)
        }
        Err((line, why)) => {
            if let Err((line, reason)) = kernel.check_defined() {
                return Ok(Verdict::failed(
                    checks,
                    format!("{reason} (line {line})"),
                    len,
                ));
            }
            checks.push("static check: reads no state the caller left (registers or parts of them, flags, MXCSR, x87/MMX), no result the SDM leaves undefined, never the array's address, accesses aligned".into());
            // Game moves never write ymm or zmm: only a kernel outside the game can leave the
            // upper vector state dirty.
            if let Err((line, reason)) = kernel.check_upper_clean() {
                return Ok(Verdict::failed(
                    checks,
                    format!("{reason} (line {line})"),
                    len,
                ));
            }
            checks.push("static check: leaves the upper vector state clean (no ymm or zmm write after the last vzeroupper)".into());
            let unproven = format!("line {line} is outside the game's ISA ({why}), so the weak-ordering proof does not apply");
            let saved = callee_saved_used(&kernel.decoded, &task.saved_registers());
            let mut verdict = stage2(task, &kernel.code, cfg, checks, len, Some(unproven), &saved)?;
            if verdict.status == Status::Failed {
                if let Some(note) = width_note(task, kernel) {
                    verdict.reason = verdict.reason.map(|r| format!("{r} ({note})"));
                }
            }
            Ok(verdict)
        }
    }
}

/// Why a kernel of game moves is not one of `task`'s kernels, if it is not: vector moves for
/// a scalar task or the other way round, an instruction beyond the task's vector level, or a
/// copy (`movdqa`) a vector task does not list. Each names the line.
fn outside_task(task: &Task, kernel: &Kernel, program: &[Insn]) -> Option<String> {
    let first = program.first()?;
    let line = |i: usize| kernel.lines[i];
    let memory = program.iter().position(|i| i.has_memory_operand());
    match task.vector {
        None if !task.memory_operands && memory.is_some() => {
            let i = memory?;
            Some(format!(
                "{} takes an array slot as an operand (line {}); task {} plays register operands only: use a task file with isa.memory_operands = true",
                program[i].intel_as(task.element).split(' ').next().unwrap_or(""),
                line(i),
                task.name
            ))
        }
        None if first.is_vector() => Some(format!(
            "a kernel of vector moves (line {}); task {} plays mov, cmp and cmovcc (no isa.vector): {}",
            line(0),
            task.name,
            fitting_task(task, kernel, program)
        )),
        Some(v) if !first.is_vector() => Some(format!(
            "a kernel of mov, cmp and cmovcc (line {}); task {} plays the {v} vector moves: {}",
            line(0),
            task.name,
            fitting_task(task, kernel, program)
        )),
        Some(_) if !task.packed && program.iter().any(|i| i.is_packed()) => {
            let i = program.iter().position(|i| i.is_packed())?;
            Some(format!(
                "{} moves packed lanes (line {}); task {} holds one element per register (no isa.packed): {}",
                program[i].intel_as(task.element).split(' ').next().unwrap_or(""),
                line(i),
                task.name,
                fitting_task(task, kernel, program)
            ))
        }
        Some(v) => {
            // A packed task lists its five opcodes; the one-element moves are not among them
            // (bench's widened view of a task, which lists copies, takes them).
            let unlisted = |i: &Insn| match i {
                Insn::VMov { .. } => !task.copies,
                Insn::VLoad { .. } | Insn::VStore { .. } => task.packed && !task.copies,
                _ => false,
            };
            if let Some(i) = program.iter().position(unlisted) {
                let listed = if task.packed {
                    let names = crate::task::packed_opcode_names(task.element);
                    format!(" ({})", names.map(|n| format!("v{n}")).join(", "))
                } else {
                    String::new()
                };
                return Some(format!(
                    "uses {}, which is not among task {}'s opcodes{listed} (line {})",
                    program[i].intel_as(task.element).split(' ').next().unwrap_or(""),
                    task.name,
                    line(i)
                ));
            }
            // The level's encodings: legacy SSE for sse4.1; SSE or VEX for avx2 (whose
            // xmm forms need only AVX); anything the element's moves have for avx512.
            let beyond = program.iter().position(|i| {
                let avx = match *i {
                    Insn::VLoad { avx, .. }
                    | Insn::VStore { avx, .. }
                    | Insn::VMov { avx, .. }
                    | Insn::Min { avx, .. }
                    | Insn::Max { avx, .. } => avx,
                    _ => false,
                };
                avx && !v.avx()
            })?;
            Some(format!(
                "{} is a VEX instruction, beyond task {}'s isa.vector = \"{v}\" (legacy SSE only) (line {})",
                program[beyond].intel_as(task.element).split(' ').next().unwrap_or(""),
                task.name,
                line(beyond)
            ))
        }
        None => None,
    }
}

/// Where to verify a kernel of the other register file than `task`'s: a built-in task of
/// the same `n` and element type whose moves it plays (`verify it against a task such as
/// sort4-sse41`), or else a task file of the right kind.
fn fitting_task(task: &Task, kernel: &Kernel, program: &[Insn]) -> String {
    let vector = program.first().is_some_and(|i| i.is_vector());
    crate::task::BUILTIN
        .iter()
        .filter_map(|(name, _)| Task::load(name).ok())
        .find(|t| {
            t.n == task.n
                && t.element == task.element
                && t.vector.is_some() == vector
                && (t.packed || !program.iter().any(|i| i.is_packed()))
                && outside_task(t, kernel, program).is_none()
        })
        .map_or_else(
            || {
                format!(
                    "verify it against a task file {} (no built-in task of {} {} elements fits)",
                    if program.iter().any(|i| i.is_packed()) {
                        "with isa.packed"
                    } else if vector {
                        "with isa.vector"
                    } else {
                        "without isa.vector"
                    },
                    task.n,
                    task.element
                )
            },
            |t| format!("verify it against a task such as {}", t.name),
        )
}

/// `a kernel for 32-bit elements; i64 elements are 64-bit` when `kernel` is made of game moves
/// at the other element width than `task`'s, to go with the failure it causes.
fn width_note(task: &Task, kernel: &Kernel) -> Option<String> {
    let el = task.element;
    let other = crate::isa::Element::ALL
        .into_iter()
        .find(|o| o.is_wide() != el.is_wide() && o.is_signed() == el.is_signed())?;
    kernel.to_game_as(task.n, other).ok()?;
    Some(format!(
        "a kernel for {}-bit elements; {el} elements are {}-bit",
        8 * other.bytes(),
        8 * el.bytes()
    ))
}

fn stage2(
    task: &Task,
    code: &[u8],
    cfg: &NativeConfig,
    mut checks: Vec<String>,
    len: usize,
    unproven: Option<String>,
    saved: &[iced_x86::Register],
) -> Result<Verdict> {
    let code = with_saves(code, saved);
    match native::run_native(&code, task.n, task.element, cfg)? {
        Ok(report) => {
            if !saved.is_empty() {
                let names: Vec<String> = saved
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect();
                checks.push(format!(
                    "native: the body ran between push and pop of callee-saved {}, as the exported function runs it (body length {len}, {} with them)",
                    names.join(" "),
                    len + 2 * saved.len()
                ));
            }
            checks.extend(report.checks.into_iter().map(|c| format!("native: {c}")));
            let status = if unproven.is_some() {
                Status::TestedNotProven
            } else {
                Status::Verified
            };
            Ok(Verdict {
                status,
                checks,
                reason: unproven,
                length: len,
            })
        }
        Err(failure) => Ok(Verdict::failed(checks, failure.to_string(), len)),
    }
}
