//! The static latency model: a deterministic estimate of one call's cycles, for tests and as
//! the cheap proxy during `search --objective latency`.
//!
//! # The microarchitectures: AMD Zen 4
//!
//! The machine this project is developed and benchmarked on is an AMD EPYC of family 19h,
//! model 11h (Zen 4), so the first table ([`Uarch::Zen4`], the default) describes Zen 4; a
//! second describes Intel Golden Cove (below). Figures are from uops.info's Zen 4
//! measurements and Agner Fog's "Instruction tables" (2022 edition, AMD Zen 4 section), with
//! the pipe counts of AMD's "Software Optimization Guide for AMD Family 19h Processors"
//! (publication 56665, sections 2.9-2.12):
//!
//! | class | instructions | latency (cycles) | pipes |
//! |---|---|---|---|
//! | load | `mov r32, [rdi + k]` | 4 (load-to-use, simple address) | 3 load pipes |
//! | store | `mov [rdi + k], r32` | 1 to complete; a later load of the same slot sees it 6 cycles after its data is ready (store-to-load forwarding) | 2 store pipes |
//! | move | `mov r, r` | 0 (eliminated at register renaming, SOG 19h §2.9.4 "Zero Cycle Move") | none |
//! | ALU | `cmp r, r` and any other integer instruction | 1 | 4 ALU pipes |
//! | cmov | `cmovcc r, r` | 1 (from each source and the flags) | 2 of the 4 ALU pipes (reciprocal throughput 0.5) |
//! | vector load | `movd xmm, [rdi + k]`, `vmovd` | 7 (load-to-use into the vector register file) | the 3 load pipes |
//! | vector store | `movd [rdi + k], xmm`, `vmovd` | 1 to complete, as a store | the 2 store pipes |
//! | vector move | `movdqa xmm, xmm`, `vmovdqa` | 0 (eliminated at renaming, as `mov r, r`) | none |
//! | vector ALU | `pminsd`, `vpminsd`, `vpmaxud`, `vpblendd`, ... on xmm, and any other instruction writing a vector register | 1 | 4 vector pipes |
//! | shuffle | `vpshufd`, `pshufd` on xmm | 1 | 2 of the 4 vector pipes |
//! | packed load / store | `vmovdqu xmm, [rdi]`, `vmovdqu [rdi], xmm` | as the vector load / store | as they |
//!
//! Dispatch: 6 instructions per cycle.
//!
//! The vector rows (for the tasks with `[isa] vector`) are from the same sources: Agner Fog's
//! Zen 4 table gives `pminsd`/`pmaxsd` and their VEX forms latency 1 and reciprocal throughput
//! 0.25 (4 pipes), and register-to-register `movdqa` latency 0; the SOG gives loads into the
//! vector register file a longer load-to-use latency than integer loads (7 cycles against 4).
//! uops.info's Zen 4 pages give `vpshufd` (xmm, imm8) latency 1 on the two shuffle pipes (FP1,
//! FP2; reciprocal throughput 0.5) and `vpblendd` (xmm) latency 1; the model takes blends on
//! all 4 vector pipes, as the minimum. A packed store and a later packed load of the array
//! forward as the slot-0 store and load do (the model tracks forwarding per slot).
//! A first version counted 2 vector pipes; bench on this machine (sort6-avx2: 24 minima and
//! maxima at 5.32 reference cycles per independent call) showed more than 2 at work.
//!
//! # Intel Golden Cove
//!
//! [`Uarch::GoldenCove`], the performance core of Alder Lake, Raptor Lake and Sapphire Rapids,
//! chosen on an Intel CPU (CPUID vendor `GenuineIntel`) or with `--uarch golden-cove`. Sources:
//! Intel's "64 and IA-32 Architectures Optimization Reference Manual" (Golden Cove
//! microarchitecture: 5-cycle L1 data cache load-to-use latency, 3 load ports, 2 store-data
//! ports, 5 integer ALU ports, 3 vector ALU ports, 6-wide rename and allocation, move
//! elimination) and uops.info's Alder Lake-P measurements (`cmovl r32, r32`: 1 uop on ports 0
//! and 6, latency 1; `vpminsd xmm` and `vpblendd xmm`: ports 0, 1, 5, latency 1; `vpshufd xmm`:
//! ports 1 and 5, latency 1):
//!
//! | class | latency (cycles) | pipes |
//! |---|---|---|
//! | load | 5 | 3 |
//! | store | 1; forwarded to a later load of the slot 5 cycles after its data is ready | 2 |
//! | move | 0 (eliminated) | none |
//! | ALU | 1 | 5 |
//! | cmov | 1 | 2 of the ALU pipes |
//! | vector load | 6 | the 3 load pipes |
//! | vector ALU (min, max, blend) | 1 | 3 |
//! | shuffle | 1 | 2 of the vector pipes |
//!
//! Two figures are estimates, not read off a table: the 6-cycle load into an xmm register
//! (the 5-cycle load plus one cycle into the vector domain) and the 5-cycle store forwarding
//! (Agner Fog's microarchitecture guide gives about 5 for recent Intel cores). No Intel machine
//! was at hand to check the table against bench; the Zen 4 one was checked on this project's
//! machine (BENCHMARKS.md). With 5 ALU pipes, the ALU port-pressure term is rounded down to a
//! twelfth of a cycle (still a lower bound).
//!
//! # The figure
//!
//! One call in isolation, starting at cycle 0 with `rdi` ready:
//! `cycles = max(schedule length, instructions / 6, ALU-pipe instructions / 4, cmovs / 2,
//! vector ALU instructions / 4, loads / 3, stores / 2)`. The schedule follows true dependencies only (registers, flags,
//! and stores to loads of the same slot; register renaming removes the false ones) and places
//! each instruction, in program order, in the first cycle at which its sources are ready and
//! a pipe of its kind is free (the oldest-first choice of an out-of-order scheduler), so it is
//! the critical path stretched by port contention. It ends when the last instruction
//! completes (a store one cycle after its data is ready). The other terms are the
//! port-pressure bounds of a perfectly balanced schedule. Figures are exact multiples of 1/12
//! cycle (12 is the least common multiple of the pipe counts), so the model is computed in
//! integers and is bit-for-bit deterministic.
//!
//! What it ignores: front-end effects (decode, the op cache), branch prediction (there are no
//! branches), scheduler-queue limits, and the cost of the call itself. It is a proxy for
//! ranking kernels, not a prediction of a stopwatch; `bench` prints it beside real meters.

use crate::isa::{Insn, Reg};
use iced_x86::{Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register};

/// The microarchitectures the model has a table for. [`Uarch::Zen4`] is the default of every
/// library function without an explicit one (so figures do not depend on the machine that
/// computes them); the CLI takes [`Uarch::current`], i.e. `--uarch`, else `SUPEROPT_UARCH`,
/// else the one this CPU's vendor suggests.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    clap::ValueEnum,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum Uarch {
    /// AMD Zen 4 (family 19h), the table this project's machine checks.
    #[default]
    Zen4,
    /// Intel Golden Cove (the performance cores of Alder Lake, Raptor Lake and Sapphire
    /// Rapids), from the sources alone.
    GoldenCove,
}

/// One microarchitecture's figures: latencies in cycles, pipe counts per kind.
#[derive(Debug, PartialEq, Eq)]
pub struct Table {
    /// The name printed in reports, e.g. `AMD Zen 4`.
    pub name: &'static str,
    /// Load-to-use latency into a general-purpose register.
    pub load_latency: u16,
    /// Load-to-use latency into a vector register.
    pub vec_load_latency: u16,
    /// Cycles from a store's data being ready until a later load of the same slot has it.
    pub forward_latency: u16,
    /// Instructions dispatched (renamed) per cycle.
    pub dispatch_width: u32,
    /// Integer ALU pipes.
    pub alu_pipes: u32,
    /// Of them, the pipes that execute `cmovcc`.
    pub cmov_pipes: u32,
    /// Vector ALU pipes (lane minimum and maximum, blends).
    pub vec_pipes: u32,
    /// Of them, the pipes that shuffle (`vpshufd`).
    pub shuf_pipes: u32,
    /// Load pipes.
    pub load_pipes: u32,
    /// Store pipes.
    pub store_pipes: u32,
}

const ZEN4: Table = Table {
    name: "AMD Zen 4",
    load_latency: 4,
    vec_load_latency: 7,
    forward_latency: 6,
    dispatch_width: 6,
    alu_pipes: 4,
    cmov_pipes: 2,
    vec_pipes: 4,
    shuf_pipes: 2,
    load_pipes: 3,
    store_pipes: 2,
};

const GOLDEN_COVE: Table = Table {
    name: "Intel Golden Cove",
    load_latency: 5,
    vec_load_latency: 6,
    forward_latency: 5,
    dispatch_width: 6,
    alu_pipes: 5,
    cmov_pipes: 2,
    vec_pipes: 3,
    shuf_pipes: 2,
    load_pipes: 3,
    store_pipes: 2,
};

impl Uarch {
    /// Every table, in `--uarch` order.
    pub const ALL: [Uarch; 2] = [Uarch::Zen4, Uarch::GoldenCove];

    /// The figures.
    pub fn table(self) -> &'static Table {
        match self {
            Uarch::Zen4 => &ZEN4,
            Uarch::GoldenCove => &GOLDEN_COVE,
        }
    }

    /// The name printed in reports: `AMD Zen 4`, `Intel Golden Cove`.
    pub fn name(self) -> &'static str {
        self.table().name
    }

    /// The name as `--uarch` and `SUPEROPT_UARCH` take it: `zen4`, `golden-cove`.
    pub fn id(self) -> &'static str {
        match self {
            Uarch::Zen4 => "zen4",
            Uarch::GoldenCove => "golden-cove",
        }
    }

    /// Parses [`Uarch::id`].
    pub fn parse(s: &str) -> Option<Uarch> {
        Uarch::ALL.into_iter().find(|u| u.id() == s)
    }

    /// The table closest to this CPU, by its CPUID vendor string: Golden Cove for
    /// `GenuineIntel`, Zen 4 otherwise (AMD, and any other vendor or architecture). The
    /// tables describe one core each; an older core of either vendor gets the nearest.
    pub fn detect() -> Uarch {
        #[cfg(target_arch = "x86_64")]
        {
            // CPUID leaf 0 (the vendor string) exists on every x86-64 CPU.
            let r = std::arch::x86_64::__cpuid(0);
            let mut vendor = [0u8; 12];
            vendor[..4].copy_from_slice(&r.ebx.to_le_bytes());
            vendor[4..8].copy_from_slice(&r.edx.to_le_bytes());
            vendor[8..].copy_from_slice(&r.ecx.to_le_bytes());
            if &vendor == b"GenuineIntel" {
                return Uarch::GoldenCove;
            }
        }
        Uarch::Zen4
    }

    /// The table the CLI uses when `--uarch` is not given: `SUPEROPT_UARCH` (`zen4` or
    /// `golden-cove`) when set, else [`Uarch::detect`].
    ///
    /// Errors: a `SUPEROPT_UARCH` that names no table (`SUPEROPT_UARCH=zen5 names no model
    /// table (known: zen4, golden-cove)`).
    pub fn current() -> std::result::Result<Uarch, String> {
        let known = || Uarch::ALL.map(|u| u.id()).join(", ");
        match std::env::var("SUPEROPT_UARCH") {
            Ok(v) => Uarch::parse(&v).ok_or_else(|| {
                format!(
                    "SUPEROPT_UARCH={v} names no model table (known: {})",
                    known()
                )
            }),
            Err(std::env::VarError::NotPresent) => Ok(Uarch::detect()),
            Err(std::env::VarError::NotUnicode(v)) => Err(format!(
                "SUPEROPT_UARCH={} names no model table (known: {})",
                v.to_string_lossy(),
                known()
            )),
        }
    }
}

/// Units of the model's figures per cycle.
pub const TICKS_PER_CYCLE: u32 = 12;

/// What an instruction is, for the model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpClass {
    /// A load from memory into a register.
    Load,
    /// A store of a register to memory.
    Store,
    /// A register-to-register `mov` (eliminated at renaming).
    Move,
    /// `cmovcc` between registers.
    Cmov,
    /// An ALU instruction with a memory source (`cmp r, [rdi + k]`): a load (which waits only
    /// for the address and the slot's last store), then one cycle on an ALU pipe once the
    /// load's data and the other sources are ready.
    LoadAlu,
    /// `cmovcc r, [rdi + k]`: a load, then one cycle on a cmov pipe, as [`OpClass::LoadAlu`].
    LoadCmov,
    /// A load from memory into a vector register.
    VecLoad,
    /// An instruction writing a vector register other than a load or an eliminated move
    /// (lane minimum and maximum, blends): one cycle on a vector pipe.
    VecAlu,
    /// A lane shuffle (`vpshufd`): one cycle on a vector pipe that shuffles.
    VecShuf,
    /// Any other instruction: one cycle on an ALU pipe.
    Alu,
}

/// One instruction as the model sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Op {
    /// The class, which fixes latency and pipes.
    pub class: OpClass,
    /// Registers read, one bit per register: bit `i < 16` the `i`-th of rax, rcx, rdx, rbx,
    /// rsp, rbp, rsi, rdi, r8-r15 (sub-registers count as their 64-bit register), bit
    /// `16 + i` vector register `i` (xmm, ymm and zmm `i` are one register).
    pub reads: u32,
    /// Registers written, same bits.
    pub writes: u32,
    /// Whether it reads the arithmetic flags.
    pub reads_flags: bool,
    /// Whether it writes the arithmetic flags.
    pub writes_flags: bool,
    /// For a load or store at `[rdi + 4k]` with `k < 8`, the slot `k` (for store forwarding).
    pub slot: Option<u8>,
}

/// Bit of a register in [`Op::reads`] / [`Op::writes`]; `None` for registers the model does
/// not track (segment, mask, vector registers past 15, ...).
fn reg_bit(r: Register) -> Option<u32> {
    let full = r.full_register();
    if full.is_gpr64() {
        return Some(1 << (full as u32 - Register::RAX as u32));
    }
    if (r.is_xmm() || r.is_ymm() || r.is_zmm()) && r.number() < 16 {
        return Some(1 << (16 + r.number()));
    }
    None
}

/// The index in [`ModelState::ready`] of a game register column: the general-purpose register,
/// or with `vector` the column's `xmm` register.
pub fn ready_index(r: Reg, vector: bool) -> usize {
    let bit = if vector {
        reg_bit(r.xmm())
    } else {
        reg_bit(r.iced())
    };
    bit.expect("game registers are tracked").trailing_zeros() as usize
}

/// Bit of `rdi`, which holds the array pointer (ready at cycle 0).
const RDI_BIT: u32 = 1 << 7;

impl Op {
    /// The model's view of a game instruction.
    pub fn of_insn(insn: Insn) -> Op {
        let bit = |r: Reg| reg_bit(r.iced()).expect("game registers are GPRs");
        let xbit = |r: Reg| reg_bit(r.xmm()).expect("game vector registers are xmm0-15");
        let base = Op {
            class: OpClass::Alu,
            reads: 0,
            writes: 0,
            reads_flags: false,
            writes_flags: false,
            slot: None,
        };
        match insn {
            Insn::Load { dst, slot } => Op {
                class: OpClass::Load,
                reads: RDI_BIT,
                writes: bit(dst),
                slot: Some(slot),
                ..base
            },
            Insn::Store { slot, src } => Op {
                class: OpClass::Store,
                reads: RDI_BIT | bit(src),
                slot: Some(slot),
                ..base
            },
            Insn::Mov { dst, src } => Op {
                class: OpClass::Move,
                reads: bit(src),
                writes: bit(dst),
                ..base
            },
            Insn::Cmp { a, b } => Op {
                class: OpClass::Alu,
                reads: bit(a) | bit(b),
                writes_flags: true,
                ..base
            },
            Insn::Cmov { dst, src, .. } => Op {
                class: OpClass::Cmov,
                reads: bit(dst) | bit(src),
                writes: bit(dst),
                reads_flags: true,
                ..base
            },
            Insn::CmpMem { a, slot, .. } => Op {
                class: OpClass::LoadAlu,
                reads: RDI_BIT | bit(a),
                writes_flags: true,
                slot: Some(slot),
                ..base
            },
            Insn::CmovMem { dst, slot, .. } => Op {
                class: OpClass::LoadCmov,
                reads: RDI_BIT | bit(dst),
                writes: bit(dst),
                reads_flags: true,
                slot: Some(slot),
                ..base
            },
            Insn::VLoad { dst, slot, .. } => Op {
                class: OpClass::VecLoad,
                reads: RDI_BIT,
                writes: xbit(dst),
                slot: Some(slot),
                ..base
            },
            Insn::VStore { slot, src, .. } => Op {
                class: OpClass::Store,
                reads: RDI_BIT | xbit(src),
                slot: Some(slot),
                ..base
            },
            Insn::VMov { dst, src, .. } => Op {
                class: OpClass::Move,
                reads: xbit(src),
                writes: xbit(dst),
                ..base
            },
            Insn::Min { dst, .. } | Insn::Max { dst, .. } | Insn::Blend { dst, .. } => Op {
                class: OpClass::VecAlu,
                reads: insn.read_regs().into_iter().fold(0, |m, r| m | xbit(r)),
                writes: xbit(dst),
                ..base
            },
            Insn::Shuf { dst, src, .. } => Op {
                class: OpClass::VecShuf,
                reads: xbit(src),
                writes: xbit(dst),
                ..base
            },
            Insn::PLoad { dst } => Op {
                class: OpClass::VecLoad,
                reads: RDI_BIT,
                writes: xbit(dst),
                slot: Some(0),
                ..base
            },
            Insn::PStore { src } => Op {
                class: OpClass::Store,
                reads: RDI_BIT | xbit(src),
                slot: Some(0),
                ..base
            },
        }
    }

    /// The model's view of any decoded instruction (e.g. from a user's `.s` file), using
    /// iced-x86's instruction info for the registers and flags it reads and writes.
    pub fn of_iced(ins: &Instruction, info: &mut InstructionInfoFactory) -> Op {
        let i = info.info(ins);
        let (mut reads, mut writes) = (0u32, 0u32);
        for u in i.used_registers() {
            let Some(bit) = reg_bit(u.register()) else {
                continue;
            };
            match u.access() {
                OpAccess::Read | OpAccess::CondRead => reads |= bit,
                OpAccess::Write => writes |= bit,
                // A conditional write keeps the old value when it does not happen: a read too.
                OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite => {
                    reads |= bit;
                    writes |= bit;
                }
                _ => {}
            }
        }
        // A 32-bit write zero-extends: `mov eax, ecx` does not read rax, which iced reports
        // as a plain write already; nothing to adjust.
        let mem = (0..ins.op_count()).find(|&k| ins.op_kind(k) == OpKind::Memory);
        let slot = mem.and_then(|_| {
            let d = ins.memory_displacement64() as i64;
            (ins.memory_base() == Register::RDI
                && ins.memory_index() == Register::None
                && d >= 0
                && d % 4 == 0
                && d / 4 < 8)
                .then_some((d / 4) as u8)
        });
        use Mnemonic::{
            Movd, Movdqa, Movdqu, Movq, Pshufd, Vmovd, Vmovdqa, Vmovdqu, Vmovq, Vpshufd,
        };
        let vector_writes = writes >> 16 != 0;
        let class = match (ins.mnemonic(), mem) {
            (Mnemonic::Mov, Some(0)) => OpClass::Store,
            (Mnemonic::Mov, Some(_)) => OpClass::Load,
            (Mnemonic::Mov, None) => OpClass::Move,
            (Movd | Movq | Vmovd | Vmovq | Movdqa | Vmovdqa | Movdqu | Vmovdqu, Some(0)) => {
                OpClass::Store
            }
            (Movd | Movq | Vmovd | Vmovq | Movdqa | Vmovdqa | Movdqu | Vmovdqu, Some(_)) => {
                OpClass::VecLoad
            }
            (Movdqa | Vmovdqa | Movdqu | Vmovdqu, None) => OpClass::Move,
            (Pshufd | Vpshufd, None) => OpClass::VecShuf,
            (m, None) if is_cmov(m) => OpClass::Cmov,
            (m, Some(_)) if is_cmov(m) => OpClass::LoadCmov,
            (Mnemonic::Cmp, Some(_)) => OpClass::LoadAlu,
            _ if vector_writes => OpClass::VecAlu,
            _ => OpClass::Alu,
        };
        Op {
            class,
            reads,
            writes,
            reads_flags: ins.rflags_read() != 0,
            writes_flags: ins.rflags_modified() != 0,
            slot: if matches!(
                class,
                OpClass::Load
                    | OpClass::Store
                    | OpClass::VecLoad
                    | OpClass::LoadAlu
                    | OpClass::LoadCmov
            ) {
                slot
            } else {
                None
            },
        }
    }
}

fn is_cmov(m: Mnemonic) -> bool {
    format!("{m:?}").starts_with("Cmov")
}

/// The model's running state over a program prefix: when each value becomes ready and how
/// many instructions of each kind there are. Small and `Copy`, so the game keeps one per
/// state. All times in cycles from the call's start.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ModelState {
    /// Cycle at which each register's current value is ready, indexed as the bits of
    /// [`Op::reads`]: the 16 general-purpose registers, then xmm0-15.
    pub ready: [u16; 32],
    /// Cycle at which the flags are ready.
    pub flags_ready: u16,
    /// Cycle at which a later load of slot `k` would have the stored value (0 = never stored).
    slot_ready: [u16; 8],
    /// Completion of the last instruction to complete.
    pub end: u16,
    /// Instructions so far.
    pub count: u16,
    /// Instructions on ALU pipes (cmov included).
    pub alu: u16,
    /// cmov instructions.
    pub cmov: u16,
    /// Vector ALU instructions (lane minimum and maximum, blends, shuffles).
    pub vec: u16,
    /// Shuffles.
    pub shuf: u16,
    /// Loads.
    pub loads: u16,
    /// Stores.
    pub stores: u16,
    /// Pipes taken in each of the first [`SCHEDULED_CYCLES`] cycles: bits 0-2 ALU, 3-4
    /// cmov, 5-6 load, 7-8 store, 9-11 vector ALU, 12-13 shuffle.
    pipes: [u16; SCHEDULED_CYCLES],
    /// The table the figures come from.
    pub uarch: Uarch,
}

/// Cycles over which [`ModelState`] tracks pipe use; later instructions are not delayed by
/// pipe contention (sort8's network takes about 25 model cycles).
pub const SCHEDULED_CYCLES: usize = 64;

impl Default for ModelState {
    fn default() -> Self {
        ModelState {
            ready: [0; 32],
            flags_ready: 0,
            slot_ready: [0; 8],
            end: 0,
            count: 0,
            alu: 0,
            cmov: 0,
            vec: 0,
            shuf: 0,
            loads: 0,
            stores: 0,
            pipes: [0; SCHEDULED_CYCLES],
            uarch: Uarch::Zen4,
        }
    }
}

impl ModelState {
    /// The state before the first instruction, with the figures of `uarch`.
    pub fn new(uarch: Uarch) -> ModelState {
        ModelState {
            uarch,
            ..ModelState::default()
        }
    }
}

/// `(shift, mask, pipes)` of each pipe group in [`ModelState::pipes`].
/// `(shift, mask)` of each pipe group in [`ModelState::pipes`]; the capacity comes from the
/// table (at most the mask).
const ALU_FIELD: (u32, u16) = (0, 0b111);
const CMOV_FIELD: (u32, u16) = (3, 0b11);
const LOAD_FIELD: (u32, u16) = (5, 0b11);
const STORE_FIELD: (u32, u16) = (7, 0b11);
const VEC_FIELD: (u32, u16) = (9, 0b111);
const SHUF_FIELD: (u32, u16) = (12, 0b11);

impl ModelState {
    /// The first cycle at or after `from` with a free pipe in every group of `fields`, which
    /// it then takes.
    fn issue(&mut self, from: u16, fields: &[(u32, u16, u32)]) -> u16 {
        let mut c = from as usize;
        while c < SCHEDULED_CYCLES {
            let w = self.pipes[c];
            if fields
                .iter()
                .all(|&(sh, mask, cap)| (((w >> sh) & mask) as u32) < cap)
            {
                for &(sh, _, _) in fields {
                    self.pipes[c] += 1 << sh;
                }
                return c as u16;
            }
            c += 1;
        }
        from.max(SCHEDULED_CYCLES as u16)
    }

    /// Appends one instruction.
    pub fn push(&mut self, op: &Op) {
        let t = self.uarch.table();
        let field = |(sh, mask): (u32, u16), cap: u32| (sh, mask, cap);
        // An instruction with a memory source is a load and an operation: the load waits
        // only for the address (rdi) and the slot's last store, the operation for the load's
        // data, its other sources and the flags.
        let with_load = matches!(op.class, OpClass::LoadAlu | OpClass::LoadCmov);
        let mut start = 0u16;
        if with_load {
            let rdi = RDI_BIT.trailing_zeros() as usize;
            let mut addr = self.ready[rdi];
            if let Some(k) = op.slot {
                addr = addr.max(self.slot_ready[k as usize]);
            }
            let issued = self.issue(addr, &[field(LOAD_FIELD, t.load_pipes)]);
            start = issued + t.load_latency;
        }
        for i in 0..32 {
            if op.reads & (1 << i) != 0 && !(with_load && 1 << i == RDI_BIT) {
                start = start.max(self.ready[i]);
            }
        }
        if op.reads_flags {
            start = start.max(self.flags_ready);
        }
        let latency = match op.class {
            OpClass::Load => {
                if let Some(k) = op.slot {
                    start = start.max(self.slot_ready[k as usize]);
                }
                t.load_latency
            }
            OpClass::VecLoad => {
                if let Some(k) = op.slot {
                    start = start.max(self.slot_ready[k as usize]);
                }
                t.vec_load_latency
            }
            // The load part is placed above; the operation takes one cycle.
            OpClass::LoadAlu | OpClass::LoadCmov => 1,
            OpClass::Store => 1,
            OpClass::Move => 0,
            OpClass::Cmov | OpClass::Alu | OpClass::VecAlu | OpClass::VecShuf => 1,
        };
        // In program order, each instruction takes the first cycle with a free pipe of its
        // kind (the oldest-first choice of an out-of-order scheduler).
        let start = match op.class {
            OpClass::Load | OpClass::VecLoad => {
                self.issue(start, &[field(LOAD_FIELD, t.load_pipes)])
            }
            OpClass::VecAlu => self.issue(start, &[field(VEC_FIELD, t.vec_pipes)]),
            OpClass::VecShuf => self.issue(
                start,
                &[
                    field(VEC_FIELD, t.vec_pipes),
                    field(SHUF_FIELD, t.shuf_pipes),
                ],
            ),
            OpClass::Store => self.issue(start, &[field(STORE_FIELD, t.store_pipes)]),
            OpClass::Move => start,
            OpClass::Cmov => self.issue(
                start,
                &[
                    field(ALU_FIELD, t.alu_pipes),
                    field(CMOV_FIELD, t.cmov_pipes),
                ],
            ),
            OpClass::Alu => self.issue(start, &[field(ALU_FIELD, t.alu_pipes)]),
            OpClass::LoadAlu => self.issue(start, &[field(ALU_FIELD, t.alu_pipes)]),
            OpClass::LoadCmov => self.issue(
                start,
                &[
                    field(ALU_FIELD, t.alu_pipes),
                    field(CMOV_FIELD, t.cmov_pipes),
                ],
            ),
        };
        let done = start + latency;
        for i in 0..32 {
            if op.writes & (1 << i) != 0 {
                self.ready[i] = done;
            }
        }
        if op.writes_flags {
            self.flags_ready = done;
        }
        if op.class == OpClass::Store {
            if let Some(k) = op.slot {
                self.slot_ready[k as usize] = start + t.forward_latency;
            }
        }
        self.end = self.end.max(done);
        self.count += 1;
        match op.class {
            OpClass::Load | OpClass::VecLoad => self.loads += 1,
            OpClass::VecAlu => self.vec += 1,
            OpClass::VecShuf => {
                self.vec += 1;
                self.shuf += 1;
            }
            OpClass::Store => self.stores += 1,
            OpClass::Move => {}
            OpClass::Cmov => {
                self.cmov += 1;
                self.alu += 1;
            }
            OpClass::Alu => self.alu += 1,
            OpClass::LoadAlu => {
                self.loads += 1;
                self.alu += 1;
            }
            OpClass::LoadCmov => {
                self.loads += 1;
                self.alu += 1;
                self.cmov += 1;
            }
        }
    }

    /// The figure in 1/12 cycles ([`TICKS_PER_CYCLE`]) with the bound that sets it.
    pub fn ticks(&self) -> (u32, Bound) {
        let t = TICKS_PER_CYCLE;
        let per = |count: u16, width: u32| count as u32 * t / width;
        let u = self.uarch.table();
        [
            (self.end as u32 * t, Bound::CriticalPath),
            (per(self.count, u.dispatch_width), Bound::Dispatch),
            (per(self.alu, u.alu_pipes), Bound::AluPipes),
            (per(self.cmov, u.cmov_pipes), Bound::CmovPipes),
            (per(self.vec, u.vec_pipes), Bound::VecPipes),
            (per(self.shuf, u.shuf_pipes), Bound::ShufPipes),
            (per(self.loads, u.load_pipes), Bound::LoadPipes),
            (per(self.stores, u.store_pipes), Bound::StorePipes),
        ]
        .into_iter()
        // The first of equal bounds wins: the critical path, when it ties.
        .fold((0, Bound::CriticalPath), |best, b| {
            if b.0 > best.0 {
                b
            } else {
                best
            }
        })
    }

    /// A hash of the pipes taken per cycle (for transposition keys).
    pub fn pipe_hash(&self) -> u64 {
        self.pipes
            .iter()
            .fold(0u64, |h, &w| crate::search::mix64(h ^ w as u64))
    }

    /// The figure in cycles.
    pub fn cycles(&self) -> f64 {
        self.ticks().0 as f64 / TICKS_PER_CYCLE as f64
    }

    /// The reciprocal throughput in cycles: the largest port-pressure bound (dispatch, ALU,
    /// cmov, vector, load and store pipes), leaving out the critical path. What back-to-back
    /// independent calls would cost each if the core overlapped them perfectly; a lower bound
    /// of a measured figure, which also pays the loop and the front end.
    pub fn throughput_cycles(&self) -> f64 {
        let t = TICKS_PER_CYCLE;
        let per = |count: u16, width: u32| count as u32 * t / width;
        let u = self.uarch.table();
        [
            per(self.count, u.dispatch_width),
            per(self.alu, u.alu_pipes),
            per(self.cmov, u.cmov_pipes),
            per(self.vec, u.vec_pipes),
            per(self.shuf, u.shuf_pipes),
            per(self.loads, u.load_pipes),
            per(self.stores, u.store_pipes),
        ]
        .into_iter()
        .max()
        .unwrap_or(0) as f64
            / t as f64
    }
}

/// Which term of the model's maximum sets the figure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bound {
    /// The longest chain of true dependencies.
    CriticalPath,
    /// Six instructions per cycle.
    Dispatch,
    /// Four ALU pipes.
    AluPipes,
    /// Two cmov pipes.
    CmovPipes,
    /// Four vector ALU pipes.
    VecPipes,
    /// Two shuffle pipes.
    ShufPipes,
    /// Three load pipes.
    LoadPipes,
    /// Two store pipes.
    StorePipes,
}

impl Bound {
    /// A short name for reports: `critical path`, `dispatch`, `ALU pipes`, ...
    pub fn name(self) -> &'static str {
        match self {
            Bound::CriticalPath => "critical path",
            Bound::Dispatch => "dispatch",
            Bound::AluPipes => "ALU pipes",
            Bound::CmovPipes => "cmov pipes",
            Bound::VecPipes => "vector pipes",
            Bound::ShufPipes => "shuffle pipes",
            Bound::LoadPipes => "load pipes",
            Bound::StorePipes => "store pipes",
        }
    }
}

/// The model's state after a game program, in the Zen 4 table.
pub fn program_state(program: &[Insn]) -> ModelState {
    program_state_on(Uarch::Zen4, program)
}

/// The model's state after a game program, in the table of `uarch`.
pub fn program_state_on(uarch: Uarch, program: &[Insn]) -> ModelState {
    let mut m = ModelState::new(uarch);
    for &i in program {
        m.push(&Op::of_insn(i));
    }
    m
}

/// The model's figure for a whole game program, in cycles (Zen 4 table).
pub fn program_cycles(program: &[Insn]) -> f64 {
    program_state(program).cycles()
}

/// The model's state after a decoded kernel (e.g. a user's `.s` file), in the Zen 4 table.
pub fn decoded_state(decoded: &[Instruction]) -> ModelState {
    decoded_state_on(Uarch::Zen4, decoded)
}

/// The model's state after a decoded kernel, in the table of `uarch`.
pub fn decoded_state_on(uarch: Uarch, decoded: &[Instruction]) -> ModelState {
    let mut info = InstructionInfoFactory::new();
    let mut m = ModelState::new(uarch);
    for ins in decoded {
        m.push(&Op::of_iced(ins, &mut info));
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Cond;
    use Reg::*;

    use super::program_state as state;

    fn cmov(dst: Reg, src: Reg) -> Insn {
        Insn::Cmov {
            cc: Cond::L,
            dst,
            src,
        }
    }

    #[test]
    fn dependent_chain_is_slower_than_independent_instructions() {
        let cmp = Insn::Cmp { a: Eax, b: Ecx };
        // Four cmovs, each reading the previous one's result.
        let chain = [
            cmp,
            cmov(Edx, Eax),
            cmov(Esi, Edx),
            cmov(R8d, Esi),
            cmov(R9d, R8d),
        ];
        // Four cmovs into different registers from registers nobody writes.
        let wide = [
            cmp,
            cmov(Edx, Eax),
            cmov(Esi, Eax),
            cmov(R8d, Ecx),
            cmov(R9d, Ecx),
        ];
        let (c, w) = (state(&chain), state(&wide));
        assert_eq!(c.ticks(), (5 * 12, Bound::CriticalPath));
        // The cmp, then the four cmovs on the two cmov pipes: two in cycle 1, two in cycle 2.
        assert_eq!(w.ticks(), (3 * 12, Bound::CriticalPath));
        assert!(c.cycles() > w.cycles());
    }

    #[test]
    fn the_same_program_gives_the_same_figure() {
        let p = [
            Insn::Load { dst: Eax, slot: 0 },
            Insn::Load { dst: Ecx, slot: 1 },
            Insn::Mov { dst: Edx, src: Eax },
            Insn::Cmp { a: Eax, b: Ecx },
            cmov(Eax, Ecx),
            Insn::Cmov {
                cc: Cond::L,
                dst: Ecx,
                src: Edx,
            },
            Insn::Store { slot: 0, src: Eax },
            Insn::Store { slot: 1, src: Ecx },
        ];
        // load 4, mov 0, cmp 1, cmov 1, store 1.
        assert_eq!(program_cycles(&p), 7.0);
        assert_eq!(program_cycles(&p), program_cycles(&p));
        assert_eq!(state(&p).ticks().1, Bound::CriticalPath);
    }

    #[test]
    fn a_memory_operand_loads_in_parallel_with_its_register_source() {
        let p = [
            Insn::Load { dst: Eax, slot: 0 },
            Insn::CmpMem {
                a: Eax,
                slot: 1,
                mem_first: false,
            },
            Insn::CmovMem {
                cc: Cond::G,
                dst: Eax,
                slot: 1,
            },
        ];
        // Both loads done at 4, the cmp at 5, the cmov (its load long done) at 6; not the
        // 4 + 5 + 5 of loads that wait for the register source.
        let m = state(&p);
        assert_eq!(m.end, 6);
        assert_eq!((m.loads, m.alu, m.cmov), (3, 2, 1));
    }

    #[test]
    fn store_then_load_of_the_same_slot_waits_for_forwarding() {
        let p = [
            Insn::Load { dst: Eax, slot: 0 },
            Insn::Store { slot: 1, src: Eax },
            Insn::Load { dst: Ecx, slot: 1 },
        ];
        // load 4; store data ready at 4; forwarded at 4 + 6 = 10; load done at 14.
        assert_eq!(state(&p).end, 14);
    }

    #[test]
    fn resource_bounds_take_over_for_wide_programs() {
        // 12 independent loads on 3 load pipes: issued in cycles 0-3, the last done at 7.
        let loads: Vec<Insn> = (0..15)
            .map(|k| Insn::Load {
                dst: Reg::ALL[k % 8],
                slot: (k % 5) as u8,
            })
            .collect();
        assert_eq!(state(&loads[..12]).ticks(), (7 * 12, Bound::CriticalPath));
        assert_eq!(state(&loads).ticks(), (8 * 12, Bound::CriticalPath));
        // Wide and cheap: 12 independent cmps on 4 ALU pipes end at cycle 3, but 13 movs
        // (no pipe) dispatch 6 per cycle: 25 instructions / 6 > 3.
        let mut wide = vec![Insn::Load { dst: Eax, slot: 0 }; 1];
        wide.extend((0..12).map(|_| Insn::Cmp { a: Eax, b: Eax }));
        wide.extend((0..13).map(|_| Insn::Mov { dst: Ecx, src: Eax }));
        let m = state(&wide);
        assert_eq!(m.end, 7);
        assert_eq!(m.ticks(), (7 * 12, Bound::CriticalPath));
        let mut wider = wide.clone();
        wider.extend((0..24).map(|_| Insn::Mov { dst: Ecx, src: Eax }));
        assert_eq!(state(&wider).ticks(), (50 * 12 / 6, Bound::Dispatch));
    }

    #[test]
    fn decoded_instructions_match_game_instructions() {
        let p = [
            Insn::Load { dst: Eax, slot: 0 },
            Insn::Load { dst: R9d, slot: 2 },
            Insn::Mov { dst: Edx, src: Eax },
            Insn::Cmp { a: Eax, b: R9d },
            cmov(Eax, R9d),
            Insn::Cmov {
                cc: Cond::Ge,
                dst: R9d,
                src: Edx,
            },
            Insn::Store { slot: 0, src: Eax },
            Insn::Store { slot: 2, src: R9d },
        ];
        let mut info = InstructionInfoFactory::new();
        for &i in &p {
            assert_eq!(Op::of_iced(&i.to_iced(), &mut info), Op::of_insn(i), "{i}");
        }
        let decoded: Vec<Instruction> = p.iter().map(|i| i.to_iced()).collect();
        assert_eq!(decoded_state(&decoded), state(&p));
    }

    #[test]
    fn throughput_is_the_largest_port_pressure_bound() {
        // sort3's network: 18 instructions (3 per cycle to dispatch at 6 wide), 6 cmovs on
        // 2 pipes (3 cycles), 9 ALU ops on 4 pipes (2.25), 3 loads (1), 3 stores (1.5).
        let net = crate::game::network::classic_comparators(3).unwrap();
        let prog = crate::game::network::network_kernel(&crate::isa::Reg::ALL, 3, net);
        let m = program_state(&prog);
        assert_eq!(m.throughput_cycles(), 3.0);
        assert_eq!(m.cycles(), 11.0);
        assert_eq!(ModelState::default().throughput_cycles(), 0.0);
    }
}
