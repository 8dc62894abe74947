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

/// The element type of a task's array: its width (4 or 8 bytes, so 32- or 64-bit registers
/// and a stride of 4 or 8) and its order (signed, compared with `cmovl`/`cmovg`/`cmovle`/
/// `cmovge`, or unsigned, with `cmovb`/`cmova`/`cmovbe`/`cmovae`). The game does not see the
/// type: it plays on order types, and a move's [`Cond`] reads "less" or "greater" in the
/// element's order. The type matters where the moves become machine code ([`Insn::to_iced_as`],
/// [`encode_as`]), where text is read back ([`Insn::from_iced`]), and in the native stage of
/// the oracle, which runs each type's own extreme values.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Element {
    /// Signed 32-bit integers (`int32_t`, `i32`).
    #[default]
    I32,
    /// Unsigned 32-bit integers (`uint32_t`, `u32`).
    U32,
    /// Signed 64-bit integers (`int64_t`, `i64`).
    I64,
    /// Unsigned 64-bit integers (`uint64_t`, `u64`).
    U64,
}

impl Element {
    /// Every element type.
    pub const ALL: [Element; 4] = [Element::I32, Element::U32, Element::I64, Element::U64];

    /// The name in task files and Rust (`i32`, `u64`).
    pub fn name(self) -> &'static str {
        ["i32", "u32", "i64", "u64"][self as usize]
    }

    /// Parses a name as written in a task file (`i32`, `u32`, `i64`, `u64`).
    pub fn parse(s: &str) -> Option<Element> {
        Element::ALL.into_iter().find(|e| e.name() == s)
    }

    /// Bytes per element, also the stride of the array: 4 or 8.
    pub fn bytes(self) -> usize {
        if self.is_wide() {
            8
        } else {
            4
        }
    }

    /// Whether elements are 64-bit (and kernels use 64-bit registers).
    pub fn is_wide(self) -> bool {
        matches!(self, Element::I64 | Element::U64)
    }

    /// Whether elements compare signed.
    pub fn is_signed(self) -> bool {
        matches!(self, Element::I32 | Element::I64)
    }

    /// The C type (`int32_t`, `uint64_t`).
    pub fn c_type(self) -> &'static str {
        ["int32_t", "uint32_t", "int64_t", "uint64_t"][self as usize]
    }

    /// Words for prose: `signed 32-bit integers`.
    pub fn describe(self) -> String {
        format!(
            "{} {}-bit integers",
            if self.is_signed() {
                "signed"
            } else {
                "unsigned"
            },
            8 * self.bytes()
        )
    }

    /// The four condition codes that compare elements of this type: signed `l g le ge` or
    /// unsigned `b a be ae`, in the order of [`Cond::SIGNED`].
    pub fn conds(self) -> [Cond; 4] {
        if self.is_signed() {
            Cond::SIGNED
        } else {
            Cond::UNSIGNED
        }
    }
}

impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

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
        self.name_as(Element::I32)
    }

    /// The lower-case name at the width of `el`: `eax`, `r8d` (32-bit), `rax`, `r8` (64-bit).
    pub fn name_as(self, el: Element) -> &'static str {
        const NARROW: [&str; NUM_REGS] = [
            "eax", "ecx", "edx", "esi", "r8d", "r9d", "r10d", "r11d", "ebx", "ebp", "r12d", "r13d",
            "r14d", "r15d",
        ];
        const WIDE: [&str; NUM_REGS] = [
            "rax", "rcx", "rdx", "rsi", "r8", "r9", "r10", "r11", "rbx", "rbp", "r12", "r13",
            "r14", "r15",
        ];
        if el.is_wide() {
            WIDE[self as usize]
        } else {
            NARROW[self as usize]
        }
    }

    /// Parses a 32-bit name as written in a task file (`eax`, `r8d`; case-insensitive).
    pub fn parse(s: &str) -> Option<Reg> {
        Reg::parse_as(s, Element::I32)
    }

    /// Parses a name at the width of `el` (`eax` for 32-bit, `rax` for 64-bit elements;
    /// case-insensitive).
    pub fn parse_as(s: &str, el: Element) -> Option<Reg> {
        Reg::ALL
            .into_iter()
            .find(|r| r.name_as(el).eq_ignore_ascii_case(s))
    }

    /// The iced-x86 register (32-bit).
    pub fn iced(self) -> Register {
        self.iced_as(Element::I32)
    }

    /// The iced-x86 register at the width of `el`.
    pub fn iced_as(self, el: Element) -> Register {
        let narrow = [
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
        ][self as usize];
        if el.is_wide() {
            narrow.full_register()
        } else {
            narrow
        }
    }

    /// The scratch register for an iced-x86 32-bit register, if it is one.
    pub fn from_iced(r: Register) -> Option<Reg> {
        Reg::from_iced_as(r, Element::I32)
    }

    /// The scratch register for an iced-x86 register of the width of `el`, if it is one.
    pub fn from_iced_as(r: Register, el: Element) -> Option<Reg> {
        Reg::ALL.into_iter().find(|x| x.iced_as(el) == r)
    }
}

impl fmt::Display for Reg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A condition code for `cmovcc`, read after `cmp a, b` (Intel operand order): the signed
/// ones for signed elements, the unsigned ones for unsigned elements ([`Element::conds`]).
/// The emulator reads a condition in the order of the task's elements, so `b` acts as `l`
/// there; a kernel that mixes signedness is caught by the oracle's native stage.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Cond {
    /// `a < b` (signed)
    L = 0,
    /// `a > b` (signed)
    G = 1,
    /// `a <= b` (signed)
    Le = 2,
    /// `a >= b` (signed)
    Ge = 3,
    /// `a < b` (unsigned: below)
    B = 4,
    /// `a > b` (unsigned: above)
    A = 5,
    /// `a <= b` (unsigned: below or equal)
    Be = 6,
    /// `a >= b` (unsigned: above or equal)
    Ae = 7,
}

impl Cond {
    /// The signed condition codes of the game (AlphaDev's four, Nature 2023, Methods).
    pub const SIGNED: [Cond; 4] = [Cond::L, Cond::G, Cond::Le, Cond::Ge];

    /// The unsigned condition codes, in the order of [`Cond::SIGNED`].
    pub const UNSIGNED: [Cond; 4] = [Cond::B, Cond::A, Cond::Be, Cond::Ae];

    /// Every condition code, signed then unsigned.
    pub const ALL: [Cond; 8] = [
        Cond::L,
        Cond::G,
        Cond::Le,
        Cond::Ge,
        Cond::B,
        Cond::A,
        Cond::Be,
        Cond::Ae,
    ];

    /// Suffix as in `cmovl`, `cmovae`.
    pub fn suffix(self) -> &'static str {
        ["l", "g", "le", "ge", "b", "a", "be", "ae"][self as usize]
    }

    /// Parses a suffix (`l`, `g`, `le`, `ge`, `b`, `a`, `be`, `ae`).
    pub fn parse(s: &str) -> Option<Cond> {
        Cond::ALL.into_iter().find(|c| c.suffix() == s)
    }

    /// Whether the condition compares signed.
    pub fn is_signed(self) -> bool {
        (self as u8) < 4
    }

    /// The signed condition with the same meaning in an order (`b` -> `l`, `ae` -> `ge`);
    /// a signed condition is returned unchanged.
    pub fn as_signed(self) -> Cond {
        Cond::SIGNED[self as usize % 4]
    }

    /// The same comparison for elements of type `el` (`l` -> `b` for unsigned ones).
    pub fn for_element(self, el: Element) -> Cond {
        el.conds()[self as usize % 4]
    }

    /// The condition read with the compared operands swapped (`l` <-> `g`, `le` <-> `ge`,
    /// and the same for the unsigned ones).
    pub fn mirrored(self) -> Cond {
        let m = [1, 0, 3, 2][self as usize % 4];
        if self.is_signed() {
            Cond::SIGNED[m]
        } else {
            Cond::UNSIGNED[m]
        }
    }

    /// Whether the condition holds for a flags value (see [`crate::game::cpu::FLAG_LT`]).
    /// A bit mask over {LT, EQ, GT}: bit `f` set when the condition holds for outcome `f`,
    /// the outcome of comparing in the element's order.
    pub fn mask(self) -> u8 {
        // outcomes: 0 = a<b, 1 = a==b, 2 = a>b
        [0b001, 0b100, 0b011, 0b110][self as usize % 4]
    }

    fn iced_code(self, el: Element) -> Code {
        const NARROW: [Code; 8] = [
            Code::Cmovl_r32_rm32,
            Code::Cmovg_r32_rm32,
            Code::Cmovle_r32_rm32,
            Code::Cmovge_r32_rm32,
            Code::Cmovb_r32_rm32,
            Code::Cmova_r32_rm32,
            Code::Cmovbe_r32_rm32,
            Code::Cmovae_r32_rm32,
        ];
        const WIDE: [Code; 8] = [
            Code::Cmovl_r64_rm64,
            Code::Cmovg_r64_rm64,
            Code::Cmovle_r64_rm64,
            Code::Cmovge_r64_rm64,
            Code::Cmovb_r64_rm64,
            Code::Cmova_r64_rm64,
            Code::Cmovbe_r64_rm64,
            Code::Cmovae_r64_rm64,
        ];
        if el.is_wide() {
            WIDE[self as usize]
        } else {
            NARROW[self as usize]
        }
    }
}

/// One instruction of the game: a move. Memory operands are `[rdi + stride*slot]`, one array
/// element each (stride 4 or 8, [`Element::bytes`]); registers are 32- or 64-bit as the
/// element is. The methods without a type (`to_iced`, `intel`, `att`, [`encode`], `Display`)
/// write i32 code; the `_as` ones take the task's [`Element`]. Program length counts every
/// `Insn`; the final `ret` is not an `Insn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[allow(missing_docs)] // fields are the operands each variant's text names
pub enum Insn {
    /// `mov dst, [rdi + stride*slot]`
    Load { dst: Reg, slot: u8 },
    /// `mov [rdi + stride*slot], src`
    Store { slot: u8, src: Reg },
    /// `mov dst, src`
    Mov { dst: Reg, src: Reg },
    /// `cmp a, b`: flags from the comparison of `a` with `b`.
    Cmp { a: Reg, b: Reg },
    /// `cmovcc dst, src`: `dst = src` when `cc` holds for the current flags.
    Cmov { cc: Cond, dst: Reg, src: Reg },
}

impl Insn {
    /// The iced-x86 instruction (64-bit mode) for i32 elements.
    pub fn to_iced(self) -> Instruction {
        self.to_iced_as(Element::I32)
    }

    /// The iced-x86 instruction (64-bit mode) for elements of type `el`: 32- or 64-bit
    /// registers and stride.
    pub fn to_iced_as(self, el: Element) -> Instruction {
        let stride = el.bytes() as i64;
        let mem = |slot: u8| MemoryOperand::with_base_displ(Register::RDI, stride * slot as i64);
        let r = |x: Reg| x.iced_as(el);
        let MoveCodes {
            load, store, cmp, ..
        } = MoveCodes::of(el);
        let ins = match self {
            Insn::Load { dst, slot } => Instruction::with2(load, r(dst), mem(slot)),
            Insn::Store { slot, src } => Instruction::with2(store, mem(slot), r(src)),
            Insn::Mov { dst, src } => Instruction::with2(load, r(dst), r(src)),
            Insn::Cmp { a, b } => Instruction::with2(cmp, r(a), r(b)),
            Insn::Cmov { cc, dst, src } => Instruction::with2(cc.iced_code(el), r(dst), r(src)),
        };
        ins.expect("operands of a game instruction always match its iced code")
    }

    /// Reads an iced-x86 instruction back as a game move, for a task with `n` array elements
    /// of type `el`. Fails with a one-line reason (`unsupported instruction sbb`, `reads
    /// outside the array`, `register eax is not a 64-bit scratch register of the task`) when
    /// the instruction is not one of the game's moves at that width. A `cmovcc` of either
    /// signedness is a move: the oracle decides whether it fits the element type.
    pub fn from_iced(ins: &Instruction, n: usize, el: Element) -> Result<Insn, String> {
        use iced_x86::OpKind;
        let mnemonic = format!("{:?}", ins.mnemonic()).to_lowercase();
        let reg = |i: u32| -> Result<Reg, String> {
            let r = ins.op_register(i);
            Reg::from_iced_as(r, el).ok_or_else(|| register_reason(r, el))
        };
        let stride = el.bytes() as i64;
        let slot = || -> Result<u8, String> {
            let disp = ins.memory_displacement64() as i64;
            if ins.memory_base() != Register::RDI || ins.memory_index() != Register::None {
                return Err(format!("memory operand is not [rdi + {stride}k]"));
            }
            if disp < 0 || disp % stride != 0 || disp / stride >= n as i64 {
                return Err(format!(
                    "accesses [rdi{disp:+}], outside the array of {n} {el} elements"
                ));
            }
            Ok((disp / stride) as u8)
        };
        let MoveCodes {
            load,
            store,
            cmp,
            cmp_reversed,
        } = MoveCodes::of(el);
        let code = ins.code();
        let kinds = (ins.op_count(), ins.op0_kind(), ins.op1_kind());
        let rr = (2, OpKind::Register, OpKind::Register);
        if (code == load || code == store) && kinds == rr {
            return Ok(Insn::Mov {
                dst: reg(0)?,
                src: reg(1)?,
            });
        }
        if code == load && kinds == (2, OpKind::Register, OpKind::Memory) {
            return Ok(Insn::Load {
                dst: reg(0)?,
                slot: slot()?,
            });
        }
        if code == store && kinds == (2, OpKind::Memory, OpKind::Register) {
            return Ok(Insn::Store {
                slot: slot()?,
                src: reg(1)?,
            });
        }
        if (code == cmp || code == cmp_reversed) && kinds == rr {
            return Ok(Insn::Cmp {
                a: reg(0)?,
                b: reg(1)?,
            });
        }
        if kinds == rr {
            if let Some(cc) = Cond::ALL.into_iter().find(|c| c.iced_code(el) == code) {
                return Ok(Insn::Cmov {
                    cc,
                    dst: reg(0)?,
                    src: reg(1)?,
                });
            }
        }
        Err(unsupported(&mnemonic, el))
    }

    /// The register this instruction writes, if any.
    pub fn written_reg(self) -> Option<Reg> {
        match self {
            Insn::Load { dst, .. } | Insn::Mov { dst, .. } | Insn::Cmov { dst, .. } => Some(dst),
            Insn::Store { .. } | Insn::Cmp { .. } => None,
        }
    }

    /// Intel-syntax text for i32 elements, e.g. `cmovl eax, ecx` or
    /// `mov dword ptr [rdi+8], edx`.
    pub fn intel(self) -> String {
        self.intel_as(Element::I32)
    }

    /// Intel-syntax text for elements of type `el`, e.g. `cmovb rax, rcx`.
    pub fn intel_as(self, el: Element) -> String {
        format_with(&mut iced_x86::IntelFormatter::new(), self, el)
    }

    /// GNU AT&T-syntax text that GNU as accepts, for i32 elements: `cmovl %ecx,%eax`.
    pub fn att(self) -> String {
        self.att_as(Element::I32)
    }

    /// GNU AT&T-syntax text for elements of type `el`, e.g. `cmovb %rcx, %rax`.
    pub fn att_as(self, el: Element) -> String {
        format_with(&mut iced_x86::GasFormatter::new(), self, el)
    }
}

/// The iced-x86 codes of the game's `mov` and `cmp` at the width of an element type: what
/// [`Insn::to_iced_as`] writes and [`Insn::from_iced`] reads back (which also takes the other
/// encoding of a register-register `cmp`).
struct MoveCodes {
    /// `mov r, r/m`: loads and register moves.
    load: Code,
    /// `mov r/m, r`: stores (and the other encoding of a register move).
    store: Code,
    /// `cmp r, r/m`.
    cmp: Code,
    /// `cmp r/m, r`.
    cmp_reversed: Code,
}

impl MoveCodes {
    fn of(el: Element) -> MoveCodes {
        if el.is_wide() {
            MoveCodes {
                load: Code::Mov_r64_rm64,
                store: Code::Mov_rm64_r64,
                cmp: Code::Cmp_r64_rm64,
                cmp_reversed: Code::Cmp_rm64_r64,
            }
        } else {
            MoveCodes {
                load: Code::Mov_r32_rm32,
                store: Code::Mov_rm32_r32,
                cmp: Code::Cmp_r32_rm32,
                cmp_reversed: Code::Cmp_rm32_r32,
            }
        }
    }
}

/// Why a decoded instruction is not a game move: an opcode outside the game, or a game opcode
/// with operands the game does not have (registers of another width, immediates, memory).
fn unsupported(mnemonic: &str, el: Element) -> String {
    let game = ["mov", "cmp"].contains(&mnemonic)
        || mnemonic
            .strip_prefix("cmov")
            .is_some_and(|c| Cond::parse(c).is_some());
    if game {
        let bits = 8 * el.bytes();
        let ptr = if el.is_wide() { "qword" } else { "dword" };
        format!("unsupported operands for {mnemonic} (the game's moves take {bits}-bit scratch registers and {ptr} [rdi+{}k] for {el} elements)", el.bytes())
    } else {
        format!("unsupported instruction {mnemonic}")
    }
}

fn register_reason(r: Register, el: Element) -> String {
    use Register::*;
    let name = format!("{r:?}").to_lowercase();
    match r.full_register() {
        RSP => format!("uses the stack pointer {name}"),
        RDI => format!("uses the array pointer register {name}"),
        _ => format!(
            "register {name} is not a {}-bit scratch register of the task ({el} elements)",
            8 * el.bytes()
        ),
    }
}

fn format_with(f: &mut dyn iced_x86::Formatter, insn: Insn, el: Element) -> String {
    let mut out = String::new();
    f.options_mut().set_space_after_operand_separator(true);
    // GNU as reads `0xC`, not MASM's `0Ch`.
    f.options_mut().set_hex_prefix("0x");
    f.options_mut().set_hex_suffix("");
    f.format(&insn.to_iced_as(el), &mut out);
    out
}

impl fmt::Display for Insn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.intel())
    }
}

/// Encodes a program (no `ret`) for i32 elements to x86-64 machine code with iced-x86.
pub fn encode(program: &[Insn]) -> Vec<u8> {
    encode_as(program, Element::I32)
}

/// Encodes a program (no `ret`) for elements of type `el` to x86-64 machine code.
pub fn encode_as(program: &[Insn], el: Element) -> Vec<u8> {
    let mut enc = iced_x86::Encoder::new(64);
    for insn in program {
        enc.encode(&insn.to_iced_as(el), 0)
            .expect("game instructions always encode");
    }
    enc.take_buffer()
}
