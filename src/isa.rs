//! The instruction set of the game: the registers a kernel may use, the condition codes, and
//! [`Insn`], one move of the game. Conversion to and from iced-x86 lives here too, so that the
//! rest of the crate never builds machine code by hand.
//!
//! Semantics follow Intel syntax: `cmp a, b` sets the flags from `a - b`, and `cmovl d, s`
//! copies `s` into `d` when `a < b` (signed). AT&T syntax writes the operands reversed.
//!
//! New opcodes (immediates, branches for VarSort) are added as new [`Insn`] variants; the
//! emulator in [`crate::game::cpu`] and the move table match on them exhaustively, so the
//! compiler lists every place that must learn the new opcode.

use iced_x86::{Code, Instruction, MemoryOperand, Register};
use std::fmt;

/// A 32-bit scratch register: the eight caller-saved ones (eax, ecx, edx, esi, r8d-r11d),
/// which a kernel may use as a SysV function without saving anything, then the six
/// callee-saved ones (ebx, ebp, r12d-r15d), which a task may list as scratch when it needs
/// more registers (sort8 holds 8 values and needs a temporary): the exported function then
/// pushes each one the body uses and pops it before `ret`, and the native stage of the oracle
/// runs the body the same way. Never rsp or rdi. The discriminant is the register's column in
/// the CPU state.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
#[allow(missing_docs)] // each variant is the register it names
pub enum Reg {
    Eax = 0,
    Ecx = 1,
    Edx = 2,
    Esi = 3,
    R8d = 4,
    R9d = 5,
    R10d = 6,
    R11d = 7,
    Ebx = 8,
    Ebp = 9,
    R12d = 10,
    R13d = 11,
    R14d = 12,
    R15d = 13,
}

/// Number of scratch registers, caller- and callee-saved ([`Reg::ALL`]).
pub const NUM_REGS: usize = 14;

/// Number of caller-saved scratch registers ([`Reg::CALLER_SAVED`]), the first columns.
pub const NUM_CALLER_SAVED: usize = 8;

impl Reg {
    /// All scratch registers in column order: the caller-saved ones, then the callee-saved.
    pub const ALL: [Reg; NUM_REGS] = [
        Reg::Eax,
        Reg::Ecx,
        Reg::Edx,
        Reg::Esi,
        Reg::R8d,
        Reg::R9d,
        Reg::R10d,
        Reg::R11d,
        Reg::Ebx,
        Reg::Ebp,
        Reg::R12d,
        Reg::R13d,
        Reg::R14d,
        Reg::R15d,
    ];

    /// The caller-saved scratch registers, columns 0..8.
    pub const CALLER_SAVED: [Reg; NUM_CALLER_SAVED] = [
        Reg::Eax,
        Reg::Ecx,
        Reg::Edx,
        Reg::Esi,
        Reg::R8d,
        Reg::R9d,
        Reg::R10d,
        Reg::R11d,
    ];

    /// The register with column `i` (0..14).
    pub fn from_index(i: usize) -> Reg {
        Reg::ALL[i]
    }

    /// Column of this register in the CPU state.
    pub fn index(self) -> usize {
        self as usize
    }

    /// Whether the SysV ABI makes the callee preserve this register (rbx, rbp, r12-r15): a
    /// kernel that writes it must save and restore it.
    pub fn is_callee_saved(self) -> bool {
        self.index() >= NUM_CALLER_SAVED
    }

    /// The lower-case 32-bit name (`eax`, `r8d`).
    pub fn name(self) -> &'static str {
        [
            "eax", "ecx", "edx", "esi", "r8d", "r9d", "r10d", "r11d", "ebx", "ebp", "r12d", "r13d",
            "r14d", "r15d",
        ][self as usize]
    }

    /// Parses a 32-bit name as written in a task file (`eax`, `r8d`; case-insensitive).
    pub fn parse(s: &str) -> Option<Reg> {
        Reg::ALL
            .into_iter()
            .find(|r| r.name().eq_ignore_ascii_case(s))
    }

    /// The iced-x86 register (32-bit).
    pub fn iced(self) -> Register {
        [
            Register::EAX,
            Register::ECX,
            Register::EDX,
            Register::ESI,
            Register::R8D,
            Register::R9D,
            Register::R10D,
            Register::R11D,
            Register::EBX,
            Register::EBP,
            Register::R12D,
            Register::R13D,
            Register::R14D,
            Register::R15D,
        ][self as usize]
    }

    /// The scratch register for an iced-x86 32-bit register, if it is one.
    pub fn from_iced(r: Register) -> Option<Reg> {
        Reg::ALL.into_iter().find(|x| x.iced() == r)
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A signed condition code for `cmovcc`, read after `cmp a, b` (Intel operand order).
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Cond {
    /// `a < b`
    L = 0,
    /// `a > b`
    G = 1,
    /// `a <= b`
    Le = 2,
    /// `a >= b`
    Ge = 3,
}

impl Cond {
    /// All condition codes of the game (AlphaDev's four, Nature 2023, Methods).
    pub const ALL: [Cond; 4] = [Cond::L, Cond::G, Cond::Le, Cond::Ge];

    /// Suffix as in `cmovl`, `cmovge`.
    pub fn suffix(self) -> &'static str {
        ["l", "g", "le", "ge"][self as usize]
    }

    /// Parses a suffix (`l`, `g`, `le`, `ge`).
    pub fn parse(s: &str) -> Option<Cond> {
        Cond::ALL.into_iter().find(|c| c.suffix() == s)
    }

    /// The condition read with the compared operands swapped (`l` <-> `g`, `le` <-> `ge`).
    pub fn mirrored(self) -> Cond {
        match self {
            Cond::L => Cond::G,
            Cond::G => Cond::L,
            Cond::Le => Cond::Ge,
            Cond::Ge => Cond::Le,
        }
    }

    /// Whether the condition holds for a flags value (see [`crate::game::cpu::FLAG_LT`]).
    /// A bit mask over {LT, EQ, GT}: bit `f` set when the condition holds for outcome `f`.
    pub fn mask(self) -> u8 {
        // outcomes: 0 = a<b, 1 = a==b, 2 = a>b
        [0b001, 0b100, 0b011, 0b110][self as usize]
    }

    fn iced_code(self) -> Code {
        [
            Code::Cmovl_r32_rm32,
            Code::Cmovg_r32_rm32,
            Code::Cmovle_r32_rm32,
            Code::Cmovge_r32_rm32,
        ][self as usize]
    }
}

/// One instruction of the game: a move. Memory operands are `[rdi + 4*slot]`, one i32 array
/// element each. Program length counts every `Insn`; the final `ret` is not an `Insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // fields are the operands each variant's text names
pub enum Insn {
    /// `mov dst, dword [rdi + 4*slot]`
    Load { dst: Reg, slot: u8 },
    /// `mov dword [rdi + 4*slot], src`
    Store { slot: u8, src: Reg },
    /// `mov dst, src`
    Mov { dst: Reg, src: Reg },
    /// `cmp a, b`: flags from the signed comparison of `a` with `b`.
    Cmp { a: Reg, b: Reg },
    /// `cmovcc dst, src`: `dst = src` when `cc` holds for the current flags.
    Cmov { cc: Cond, dst: Reg, src: Reg },
}

impl Insn {
    /// The iced-x86 instruction (64-bit mode).
    pub fn to_iced(self) -> Instruction {
        let mem = |slot: u8| MemoryOperand::with_base_displ(Register::RDI, 4 * slot as i64);
        let r = match self {
            Insn::Load { dst, slot } => {
                Instruction::with2(Code::Mov_r32_rm32, dst.iced(), mem(slot))
            }
            Insn::Store { slot, src } => {
                Instruction::with2(Code::Mov_rm32_r32, mem(slot), src.iced())
            }
            Insn::Mov { dst, src } => {
                Instruction::with2(Code::Mov_r32_rm32, dst.iced(), src.iced())
            }
            Insn::Cmp { a, b } => Instruction::with2(Code::Cmp_r32_rm32, a.iced(), b.iced()),
            Insn::Cmov { cc, dst, src } => {
                Instruction::with2(cc.iced_code(), dst.iced(), src.iced())
            }
        };
        r.expect("operands of a game instruction always match its iced code")
    }

    /// Reads an iced-x86 instruction back as a game move, for a task with `n` array elements.
    /// Fails with a one-line reason (`unsupported instruction sbb`, `reads outside the array`)
    /// when the instruction is not one of the game's moves.
    pub fn from_iced(ins: &Instruction, n: usize) -> Result<Insn, String> {
        use iced_x86::OpKind;
        let mnemonic = format!("{:?}", ins.mnemonic()).to_lowercase();
        let reg = |i: u32| -> Result<Reg, String> {
            let r = ins.op_register(i);
            Reg::from_iced(r).ok_or_else(|| register_reason(r))
        };
        let slot = || -> Result<u8, String> {
            let disp = ins.memory_displacement64() as i64;
            if ins.memory_base() != Register::RDI || ins.memory_index() != Register::None {
                return Err("memory operand is not [rdi + 4k]".into());
            }
            if disp < 0 || disp % 4 != 0 || disp / 4 >= n as i64 {
                return Err(format!(
                    "accesses [rdi{disp:+}], outside the array of {n} elements"
                ));
            }
            Ok((disp / 4) as u8)
        };
        let kinds = (ins.op_count(), ins.op0_kind(), ins.op1_kind());
        match (ins.code(), kinds) {
            (Code::Mov_r32_rm32 | Code::Mov_rm32_r32, (2, OpKind::Register, OpKind::Register)) => {
                Ok(Insn::Mov {
                    dst: reg(0)?,
                    src: reg(1)?,
                })
            }
            (Code::Mov_r32_rm32, (2, OpKind::Register, OpKind::Memory)) => Ok(Insn::Load {
                dst: reg(0)?,
                slot: slot()?,
            }),
            (Code::Mov_rm32_r32, (2, OpKind::Memory, OpKind::Register)) => Ok(Insn::Store {
                slot: slot()?,
                src: reg(1)?,
            }),
            (Code::Cmp_r32_rm32 | Code::Cmp_rm32_r32, (2, OpKind::Register, OpKind::Register)) => {
                Ok(Insn::Cmp {
                    a: reg(0)?,
                    b: reg(1)?,
                })
            }
            (code, (2, OpKind::Register, OpKind::Register)) => {
                let cc = Cond::ALL.into_iter().find(|c| c.iced_code() == code);
                match cc {
                    Some(cc) => Ok(Insn::Cmov {
                        cc,
                        dst: reg(0)?,
                        src: reg(1)?,
                    }),
                    None => Err(unsupported(&mnemonic)),
                }
            }
            _ => Err(unsupported(&mnemonic)),
        }
    }

    /// The register this instruction writes, if any.
    pub fn written_reg(self) -> Option<Reg> {
        match self {
            Insn::Load { dst, .. } | Insn::Mov { dst, .. } | Insn::Cmov { dst, .. } => Some(dst),
            Insn::Store { .. } | Insn::Cmp { .. } => None,
        }
    }

    /// Intel-syntax text, e.g. `cmovl eax, ecx` or `mov dword ptr [rdi+8], edx`.
    pub fn intel(self) -> String {
        format_with(&mut iced_x86::IntelFormatter::new(), self)
    }

    /// GNU AT&T-syntax text that GNU as accepts, e.g. `cmovl %ecx,%eax`.
    pub fn att(self) -> String {
        format_with(&mut iced_x86::GasFormatter::new(), self)
    }
}

/// Why a decoded instruction is not a game move: an opcode outside the game, or a game opcode
/// with operands the game does not have (64-bit or 16-bit registers, immediates, memory).
fn unsupported(mnemonic: &str) -> String {
    if ["mov", "cmp", "cmovl", "cmovg", "cmovle", "cmovge"].contains(&mnemonic) {
        format!("unsupported operands for {mnemonic} (the game's moves take 32-bit scratch registers and dword [rdi+4k])")
    } else {
        format!("unsupported instruction {mnemonic}")
    }
}

fn register_reason(r: Register) -> String {
    use Register::*;
    let name = format!("{r:?}").to_lowercase();
    match r.full_register() {
        RSP => format!("uses the stack pointer {name}"),
        RDI => format!("uses the array pointer register {name}"),
        _ => format!("register {name} is not a 32-bit scratch register of the task"),
    }
}

fn format_with(f: &mut dyn iced_x86::Formatter, insn: Insn) -> String {
    let mut out = String::new();
    f.options_mut().set_space_after_operand_separator(true);
    // GNU as reads `0xC`, not MASM's `0Ch`.
    f.options_mut().set_hex_prefix("0x");
    f.options_mut().set_hex_suffix("");
    f.format(&insn.to_iced(), &mut out);
    out
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.intel())
    }
}

/// Encodes a program (no `ret`) to x86-64 machine code with iced-x86.
pub fn encode(program: &[Insn]) -> Vec<u8> {
    let mut enc = iced_x86::Encoder::new(64);
    for insn in program {
        enc.encode(&insn.to_iced(), 0)
            .expect("game instructions always encode");
    }
    enc.take_buffer()
}
