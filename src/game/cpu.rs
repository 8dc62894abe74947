//! The CPU state on every test vector at once, laid out as a struct of arrays: one column of
//! `T` bytes per register, per memory slot and for the flags, so that applying one instruction
//! is one tight loop over a column (which the compiler vectorises).
//!
//! Values are dense ranks (`0..n`), which is all a mov/cmp/cmov program can observe (see
//! [`crate::task::weak_orderings`]), and all a program of the vector moves can observe too:
//! a lane minimum or maximum selects one of its inputs by their order. A vector move's
//! register column `i` is `xmm{i}`, lane 0 (a task plays one register file). Definedness is tracked per column, not per test vector:
//! the game never lets a column become defined on some test vectors only, because every
//! instruction that reads an undefined column is refused ([`Fault`]).
//!
//! **Packed lanes.** A state made with [`CpuState::packed`] models the four 32-bit lanes of
//! each xmm register: lane `l` of `xmm{r}` is column `4r + l`, with definedness per lane.
//! The packed moves ([`Insn::is_packed`]: whole-array `vmovdqu`, `vpshufd`, `vpblendd`) and
//! the lane minimum and maximum act on every lane; a lane that holds no input value (one a
//! `vmovd` load zeroed, or one computed from such a lane) is undefined and taints every lane
//! computed from it, and only a store of an undefined lane faults. Every one of these moves
//! selects or moves input values (lanes are chosen by immediates, minimum and maximum by
//! order), so the order-type argument holds for packed programs too.
//!
//! Extending: branches (VarSort) will add a per-test-vector program counter / active mask and
//! apply each instruction to the active test vectors only; new opcodes add an arm to
//! [`CpuState::apply`].

use crate::isa::{Insn, Reg, NUM_REGS};

use crate::task::TestVectors;

/// Flags value after `cmp a, b` with `a < b` (signed).
pub const FLAG_LT: u8 = 0;
/// Flags value after `cmp a, b` with `a == b`.
pub const FLAG_EQ: u8 = 1;
/// Flags value after `cmp a, b` with `a > b`.
pub const FLAG_GT: u8 = 2;

/// Why an instruction cannot be applied: the program reads something never written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The instruction reads a scratch register that holds no input value.
    UndefinedRegister(Reg),
    /// A `cmovcc` runs before any `cmp`.
    UndefinedFlags,
    /// A memory slot outside the array.
    SlotOutOfRange(u8),
    /// A store of a lane (register, lane) that holds no input value (packed states).
    UndefinedLane(Reg, u8),
    /// A read of a register none of whose lanes holds an input value (packed states): never
    /// written, or written only from lanes without input values.
    EmptyLanes(Reg),
    /// A packed-lane move in a state without lanes, or a general-purpose move in a state with
    /// them: the program mixes what one task cannot model.
    Unmodelled(Insn),
}

impl Fault {
    /// The message, naming a register as the program's register file does: `reads xmm1
    /// before writing it` for a program of vector moves (`vector`), as `Display` otherwise.
    pub fn describe(&self, vector: bool) -> String {
        match self {
            Fault::UndefinedRegister(r) if vector => {
                format!("reads {} before writing it", r.xmm_name())
            }
            _ => self.to_string(),
        }
    }
}

impl std::fmt::Display for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Fault::UndefinedRegister(r) => write!(f, "reads {r} before writing it"),
            Fault::UndefinedFlags => write!(f, "reads the flags before any cmp"),
            Fault::SlotOutOfRange(k) => write!(f, "accesses slot {k}, outside the array"),
            Fault::EmptyLanes(r) => write!(
                f,
                "reads {}, none of whose lanes holds an input value",
                r.xmm_name()
            ),
            Fault::UndefinedLane(r, l) => write!(
                f,
                "stores lane {l} of {}, which holds no input value",
                r.xmm_name()
            ),
            Fault::Unmodelled(i) if i.is_packed() => write!(
                f,
                "{} moves whole registers of lanes, which only a task with isa.packed models",
                i.intel().split(' ').next().unwrap_or("")
            ),
            Fault::Unmodelled(i) => write!(
                f,
                "{} is a general-purpose move, which a task with isa.packed does not play",
                i.intel().split(' ').next().unwrap_or("")
            ),
        }
    }
}

/// How many register columns a CPU state needs for a task with these scratch registers: the
/// eight caller-saved ones always (so that tasks using only them share one layout), and up to
/// the highest callee-saved one listed.
pub fn columns_for(scratch: &[Reg]) -> usize {
    scratch
        .iter()
        .map(|r| r.index() + 1)
        .max()
        .unwrap_or(0)
        .max(crate::isa::NUM_CALLER_SAVED)
}

/// Registers, memory and flags on all `T` test vectors.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CpuState {
    t: usize,
    n: usize,
    /// Registers with a column: those with index below this (8 for a task whose scratch
    /// registers are all caller-saved, up to [`NUM_REGS`]).
    regs: usize,
    /// Column-major: register column `r` at `r*t`, memory slot `k` at `(regs+k)*t`, flags
    /// last.
    data: Vec<u8>,
    /// Bit `c` set when register column `c` holds input values (memory always does; flags use
    /// `flags_defined`).
    defined: u64,
    flags_defined: bool,
    /// Lanes per register: 1 (a register is one column), or 4 for a packed state (lane `l`
    /// of `xmm{r}` is column `4r + l`).
    lanes: usize,
}

/// 32-bit lanes per xmm register in a packed state ([`CpuState::packed`]).
pub const LANES: usize = 4;

impl CpuState {
    /// The state before the first instruction: memory holds the inputs, registers and flags
    /// are undefined. Columns are kept for the registers with index below `regs` (at most
    /// [`NUM_REGS`]; see [`columns_for`]); an instruction naming another register faults.
    pub fn new(tv: &TestVectors, regs: usize) -> CpuState {
        let (t, n) = (tv.len(), tv.n);
        let regs = regs.min(NUM_REGS);
        let mut data = vec![0u8; (regs + n + 1) * t];
        for (i, input) in tv.inputs.iter().enumerate() {
            for (k, &v) in input.iter().enumerate() {
                data[(regs + k) * t + i] = v;
            }
        }
        CpuState {
            t,
            n,
            regs,
            data,
            defined: 0,
            flags_defined: false,
            lanes: 1,
        }
    }

    /// The state before the first instruction of a packed program: as [`CpuState::new`], with
    /// the four lanes of `xmm0` ... `xmm{xmm_regs - 1}` (at most [`NUM_REGS`]) as columns
    /// `0 .. 4 * xmm_regs`.
    pub fn packed(tv: &TestVectors, xmm_regs: usize) -> CpuState {
        let mut s = CpuState::new(tv, 0);
        let regs = LANES * xmm_regs.min(NUM_REGS);
        let mut data = vec![0u8; regs * s.t];
        data.extend_from_slice(&s.data);
        s.data = data;
        s.regs = regs;
        s.lanes = LANES;
        s
    }

    /// Lanes per register: 1, or [`LANES`] for a packed state.
    pub fn lanes(&self) -> usize {
        self.lanes
    }

    /// Whether column `c` holds input values.
    pub fn col_defined(&self, c: usize) -> bool {
        self.defined & (1 << c) != 0
    }

    /// Column `c` (a register, or in a packed state a lane) on every test vector.
    pub fn column(&self, c: usize) -> &[u8] {
        self.col(c)
    }

    /// Bit mask of the defined lanes of `xmm{r}` in a packed state (bit `l` for lane `l`).
    pub fn lanes_defined(&self, r: Reg) -> u8 {
        ((self.defined >> (LANES * r.index())) & 0xF) as u8
    }

    /// Number of test vectors.
    pub fn num_vectors(&self) -> usize {
        self.t
    }

    /// Number of memory slots (array elements).
    pub fn num_slots(&self) -> usize {
        self.n
    }

    fn col(&self, c: usize) -> &[u8] {
        &self.data[c * self.t..(c + 1) * self.t]
    }

    /// Register `r` on every test vector (meaningless unless [`CpuState::reg_defined`]).
    pub fn reg(&self, r: Reg) -> &[u8] {
        self.col(r.index())
    }

    /// Memory slot `k` on every test vector.
    pub fn mem(&self, k: usize) -> &[u8] {
        self.col(self.regs + k)
    }

    /// The flags on every test vector: [`FLAG_LT`], [`FLAG_EQ`] or [`FLAG_GT`].
    pub fn flags(&self) -> &[u8] {
        self.col(self.regs + self.n)
    }

    /// Whether register `r` holds an input value.
    pub fn reg_defined(&self, r: Reg) -> bool {
        self.defined & (1 << r.index()) != 0
    }

    /// Bit mask of defined registers (bit `r.index()`; in a packed state, of lane columns).
    pub fn defined_regs(&self) -> u64 {
        self.defined
    }

    /// Whether a `cmp` has run.
    pub fn flags_defined(&self) -> bool {
        self.flags_defined
    }

    /// Applies one instruction to every test vector.
    ///
    /// Errors: a [`Fault`] when the instruction reads an undefined register or undefined flags
    /// (`cmovcc` reads its destination too: when the condition fails it keeps it), or names a
    /// slot outside the array. The state is unchanged on error.
    pub fn apply(&mut self, insn: Insn) -> Result<(), Fault> {
        if self.lanes > 1 {
            return self.apply_packed(insn);
        }
        if insn.is_packed() {
            return Err(Fault::Unmodelled(insn));
        }
        let t = self.t;
        let regs = self.regs;
        // A register without a column is never defined, so reading it faults like any
        // undefined register (`need`, and `cmovcc` reads its destination); the two moves
        // that define a register check that it has a column.
        let column = |r: Reg| {
            if r.index() < regs {
                Ok(())
            } else {
                Err(Fault::UndefinedRegister(r))
            }
        };
        let need = |s: &Self, r: Reg| {
            if s.reg_defined(r) {
                Ok(())
            } else {
                Err(Fault::UndefinedRegister(r))
            }
        };
        match insn {
            // Memory operands compare with, or select, an array slot's current value: an
            // input value (or one stored there), so the order-type argument holds for them.
            Insn::CmpMem { a, slot, mem_first } => {
                if slot as usize >= self.n {
                    return Err(Fault::SlotOutOfRange(slot));
                }
                need(self, a)?;
                let fc = regs + self.n;
                let (head, flags) = self.data.split_at_mut(fc * t);
                let ca = &head[a.index() * t..(a.index() + 1) * t];
                let cm = &head[(regs + slot as usize) * t..(regs + slot as usize + 1) * t];
                for ((f, &r), &m) in flags.iter_mut().zip(ca).zip(cm) {
                    let (x, y) = if mem_first { (m, r) } else { (r, m) };
                    *f = (x > y) as u8 + (x >= y) as u8;
                }
                self.flags_defined = true;
            }
            Insn::CmovMem { cc, dst, slot } => {
                if !self.flags_defined {
                    return Err(Fault::UndefinedFlags);
                }
                if slot as usize >= self.n {
                    return Err(Fault::SlotOutOfRange(slot));
                }
                need(self, dst)?;
                let mask = cc.mask();
                let (d, m, f) = (
                    dst.index() * t,
                    (regs + slot as usize) * t,
                    (regs + self.n) * t,
                );
                for i in 0..t {
                    let take = 0u8.wrapping_sub((mask >> self.data[f + i]) & 1);
                    self.data[d + i] = (self.data[m + i] & take) | (self.data[d + i] & !take);
                }
            }
            Insn::Load { dst, slot } | Insn::VLoad { dst, slot, .. } => {
                if slot as usize >= self.n {
                    return Err(Fault::SlotOutOfRange(slot));
                }
                column(dst)?;
                self.copy_col(regs + slot as usize, dst.index());
                self.defined |= 1 << dst.index();
            }
            Insn::Store { slot, src } | Insn::VStore { slot, src, .. } => {
                if slot as usize >= self.n {
                    return Err(Fault::SlotOutOfRange(slot));
                }
                need(self, src)?;
                self.copy_col(src.index(), regs + slot as usize);
            }
            Insn::Mov { dst, src } | Insn::VMov { dst, src, .. } => {
                need(self, src)?;
                column(dst)?;
                self.copy_col(src.index(), dst.index());
                self.defined |= 1 << dst.index();
            }
            Insn::Cmp { a, b } => {
                need(self, a)?;
                need(self, b)?;
                let fc = regs + self.n;
                let (head, flags) = self.data.split_at_mut(fc * t);
                let ca = &head[a.index() * t..(a.index() + 1) * t];
                let cb = &head[b.index() * t..(b.index() + 1) * t];
                for ((f, &x), &y) in flags.iter_mut().zip(ca).zip(cb) {
                    *f = (x > y) as u8 + (x >= y) as u8;
                }
                self.flags_defined = true;
            }
            Insn::Cmov { cc, dst, src } => {
                if !self.flags_defined {
                    return Err(Fault::UndefinedFlags);
                }
                need(self, src)?;
                need(self, dst)?;
                if dst != src {
                    let mask = cc.mask();
                    let fc = regs + self.n;
                    let (head, flags) = self.data.split_at_mut(fc * t);
                    let s = src.index() * t;
                    let d = dst.index() * t;
                    // Split so that the source and destination columns can be borrowed together.
                    let (src_col, dst_col) = if s < d {
                        let (lo, hi) = head.split_at_mut(d);
                        (&lo[s..s + t], &mut hi[..t])
                    } else {
                        let (lo, hi) = head.split_at_mut(s);
                        (&hi[..t], &mut lo[d..d + t])
                    };
                    for ((dv, &sv), &f) in dst_col.iter_mut().zip(src_col).zip(flags.iter()) {
                        let take = 0u8.wrapping_sub((mask >> f) & 1);
                        *dv = (sv & take) | (*dv & !take);
                    }
                }
            }
            Insn::Min { dst, a, b, .. } | Insn::Max { dst, a, b, .. } => {
                // Values are dense ranks in the element's order, so the minimum of two ranks is
                // the rank of the minimum: lane minimum and maximum select, never make, values.
                for r in insn.read_regs() {
                    need(self, r)?;
                }
                column(dst)?;
                let min = matches!(insn, Insn::Min { .. });
                let (ca, cb, d) = (a.index() * t, b.index() * t, dst.index() * t);
                // Element `i` of the destination depends on element `i` of the sources only,
                // so writing in place is right even when the destination is a source.
                for i in 0..t {
                    let (x, y) = (self.data[ca + i], self.data[cb + i]);
                    self.data[d + i] = if min { x.min(y) } else { x.max(y) };
                }
                self.defined |= 1 << dst.index();
            }
            Insn::PLoad { .. } | Insn::PStore { .. } | Insn::Shuf { .. } | Insn::Blend { .. } => {
                unreachable!("refused above")
            }
        }
        Ok(())
    }

    /// [`CpuState::apply`] on a packed state: every register operand is an xmm register of
    /// four lane columns. Faults: a register without columns, a store of an undefined lane
    /// (any read of a register none of whose lanes is defined), a slot outside
    /// the array, a general-purpose move.
    fn apply_packed(&mut self, insn: Insn) -> Result<(), Fault> {
        let t = self.t;
        let xmms = self.regs / LANES;
        let has = |r: Reg| {
            if r.index() < xmms {
                Ok(())
            } else {
                Err(Fault::UndefinedRegister(r))
            }
        };
        // Reading a register with no defined lane at all is refused, as it is without lanes.
        let need_any = |s: &Self, r: Reg| {
            if r.index() >= xmms {
                Err(Fault::UndefinedRegister(r))
            } else if s.lanes_defined(r) == 0 {
                Err(Fault::EmptyLanes(r))
            } else {
                Ok(())
            }
        };
        let need_all = |s: &Self, r: Reg, lanes: u8| {
            need_any(s, r)?;
            match (0..LANES as u8)
                .find(|&l| lanes >> l & 1 == 1 && s.lanes_defined(r) >> l & 1 == 0)
            {
                Some(l) => Err(Fault::UndefinedLane(r, l)),
                None => Ok(()),
            }
        };
        let slots = |s: &Self, count: usize| {
            if count > s.n {
                Err(Fault::SlotOutOfRange(s.n as u8))
            } else {
                Ok(())
            }
        };
        // The new lanes of the destination: (source column, defined) per lane, computed from
        // the state before the instruction, then written.
        let col = |r: Reg, l: usize| LANES * r.index() + l;
        let mut out: Vec<(usize, Vec<u8>, bool)> = Vec::with_capacity(LANES);
        match insn {
            Insn::PLoad { dst } => {
                slots(self, LANES)?;
                has(dst)?;
                for l in 0..LANES {
                    out.push((col(dst, l), self.mem(l).to_vec(), true));
                }
            }
            Insn::VLoad { dst, slot, .. } => {
                slots(self, slot as usize + 1)?;
                has(dst)?;
                out.push((col(dst, 0), self.mem(slot as usize).to_vec(), true));
                for l in 1..LANES {
                    out.push((col(dst, l), vec![0; t], false));
                }
            }
            Insn::PStore { src } => {
                slots(self, LANES)?;
                need_all(self, src, 0xF)?;
                for l in 0..LANES {
                    self.copy_col(col(src, l), self.regs + l);
                }
                return Ok(());
            }
            Insn::VStore { slot, src, .. } => {
                slots(self, slot as usize + 1)?;
                need_all(self, src, 1)?;
                self.copy_col(col(src, 0), self.regs + slot as usize);
                return Ok(());
            }
            Insn::VMov { dst, src, .. } | Insn::Shuf { dst, src, .. } => {
                need_any(self, src)?;
                has(dst)?;
                let imm = match insn {
                    Insn::Shuf { imm, .. } => imm,
                    _ => 0b11_10_01_00,
                };
                for l in 0..LANES {
                    let from = (imm as usize >> (2 * l)) & 3;
                    let c = col(src, from);
                    out.push((col(dst, l), self.col(c).to_vec(), self.col_defined(c)));
                }
            }
            Insn::Blend { dst, a, b, imm } => {
                need_any(self, a)?;
                need_any(self, b)?;
                has(dst)?;
                for l in 0..LANES {
                    let c = if imm >> l & 1 == 1 {
                        col(b, l)
                    } else {
                        col(a, l)
                    };
                    out.push((col(dst, l), self.col(c).to_vec(), self.col_defined(c)));
                }
            }
            Insn::Min { dst, .. } | Insn::Max { dst, .. } => {
                for r in insn.read_regs() {
                    need_any(self, r)?;
                }
                has(dst)?;
                let (a, b) = match insn {
                    Insn::Min { a, b, .. } | Insn::Max { a, b, .. } => (a, b),
                    _ => unreachable!(),
                };
                let min = matches!(insn, Insn::Min { .. });
                for l in 0..LANES {
                    let (ca, cb) = (col(a, l), col(b, l));
                    let v: Vec<u8> = self
                        .col(ca)
                        .iter()
                        .zip(self.col(cb))
                        .map(|(&x, &y)| if min { x.min(y) } else { x.max(y) })
                        .collect();
                    let d = self.col_defined(ca) && self.col_defined(cb);
                    out.push((col(dst, l), v, d));
                }
            }
            Insn::Load { .. }
            | Insn::Store { .. }
            | Insn::Mov { .. }
            | Insn::Cmp { .. }
            | Insn::Cmov { .. }
            | Insn::CmpMem { .. }
            | Insn::CmovMem { .. } => return Err(Fault::Unmodelled(insn)),
        }
        for (c, v, d) in out {
            self.data[c * t..(c + 1) * t].copy_from_slice(&v);
            if d {
                self.defined |= 1 << c;
            } else {
                self.defined &= !(1 << c);
            }
        }
        Ok(())
    }

    fn copy_col(&mut self, from: usize, to: usize) {
        if from != to {
            let t = self.t;
            self.data.copy_within(from * t..(from + 1) * t, to * t);
        }
    }

    /// The raw column-major bytes (registers, memory slots, flags), for hashing.
    pub fn raw(&self) -> &[u8] {
        &self.data
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Cond;

    #[test]
    fn cmp_and_cmov_follow_intel_semantics() {
        let tv = TestVectors::new(2); // [0,0], [0,1], [1,0]
        let mut s = CpuState::new(&tv, 8);
        s.apply(Insn::Load {
            dst: Reg::Eax,
            slot: 0,
        })
        .unwrap();
        s.apply(Insn::Load {
            dst: Reg::Ecx,
            slot: 1,
        })
        .unwrap();
        s.apply(Insn::Cmp {
            a: Reg::Eax,
            b: Reg::Ecx,
        })
        .unwrap();
        assert_eq!(s.flags(), &[FLAG_EQ, FLAG_LT, FLAG_GT]);
        s.apply(Insn::Cmov {
            cc: Cond::G,
            dst: Reg::Eax,
            src: Reg::Ecx,
        })
        .unwrap();
        assert_eq!(s.reg(Reg::Eax), &[0, 0, 0], "eax = min(a, b)");
    }

    #[test]
    fn registers_without_a_column_fault() {
        let tv = TestVectors::new(2);
        let mut s = CpuState::new(&tv, 8);
        let load = |dst| Insn::Load { dst, slot: 0 };
        assert_eq!(
            s.apply(load(Reg::Ebx)),
            Err(Fault::UndefinedRegister(Reg::Ebx))
        );
        s.apply(load(Reg::Eax)).unwrap();
        for insn in [
            Insn::Mov {
                dst: Reg::R12d,
                src: Reg::Eax,
            },
            Insn::Mov {
                dst: Reg::Eax,
                src: Reg::R12d,
            },
            Insn::Cmp {
                a: Reg::Eax,
                b: Reg::R12d,
            },
            Insn::Store {
                slot: 1,
                src: Reg::R12d,
            },
        ] {
            assert_eq!(s.apply(insn), Err(Fault::UndefinedRegister(Reg::R12d)));
        }
        // With columns up to r12d it is an ordinary register.
        let mut s = CpuState::new(&tv, columns_for(&[Reg::Eax, Reg::R12d]));
        s.apply(load(Reg::R12d)).unwrap();
        assert_eq!(s.reg(Reg::R12d), &[0, 0, 1]);
    }

    #[test]
    fn reading_undefined_is_a_fault() {
        let tv = TestVectors::new(3);
        let mut s = CpuState::new(&tv, 8);
        assert_eq!(
            s.apply(Insn::Mov {
                dst: Reg::Eax,
                src: Reg::Ecx
            }),
            Err(Fault::UndefinedRegister(Reg::Ecx))
        );
        s.apply(Insn::Load {
            dst: Reg::Eax,
            slot: 0,
        })
        .unwrap();
        assert_eq!(
            s.apply(Insn::Cmov {
                cc: Cond::L,
                dst: Reg::Eax,
                src: Reg::Eax
            }),
            Err(Fault::UndefinedFlags)
        );
        assert_eq!(
            Fault::UndefinedRegister(Reg::Ecx).to_string(),
            "reads ecx before writing it"
        );
    }
}
