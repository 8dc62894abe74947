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

/// The vector instruction set a task's kernels may use (`[isa] vector` in a task file): the
/// game's vector moves ([`Insn::is_vector`]) in the encoding the level allows. A kernel
/// records the CPU features it actually needs ([`features_as`]), which can be fewer than its
/// task's level.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
pub enum VectorIsa {
    /// SSE4.1: two-operand `pminsd`/`pminud` (and max), `movd`, `movdqa`. i32 and u32 only.
    #[serde(rename = "sse4.1")]
    Sse41,
    /// AVX2: three-operand VEX `vpminsd`/`vpminud` (and max), `vmovd`, `vmovdqa`. On xmm
    /// registers these need only AVX; the level is named for the CPUs that have it. i32 and
    /// u32 only.
    #[serde(rename = "avx2")]
    Avx2,
    /// AVX-512 (F + VL): as AVX2, and the EVEX `vpminsq`/`vpminuq` (and max) that 64-bit
    /// elements need.
    #[serde(rename = "avx512")]
    Avx512,
}

impl VectorIsa {
    /// Every level, in the order of the instructions they add.
    pub const ALL: [VectorIsa; 3] = [VectorIsa::Sse41, VectorIsa::Avx2, VectorIsa::Avx512];

    /// The name in task files: `sse4.1`, `avx2`, `avx512`.
    pub fn name(self) -> &'static str {
        ["sse4.1", "avx2", "avx512"][self as usize]
    }

    /// Parses a name as written in a task file.
    pub fn parse(s: &str) -> Option<VectorIsa> {
        VectorIsa::ALL.into_iter().find(|v| v.name() == s)
    }

    /// Whether the level's moves use the VEX (three-operand) encoding.
    pub fn avx(self) -> bool {
        self != VectorIsa::Sse41
    }

    /// Whether the level has a lane minimum and maximum for elements of type `el` (64-bit
    /// ones need AVX-512).
    pub fn has_min_max(self, el: Element) -> bool {
        !el.is_wide() || self == VectorIsa::Avx512
    }
}

impl fmt::Display for VectorIsa {
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

    /// The vector register with this column: `xmm{i}`.
    pub fn xmm(self) -> Register {
        Register::XMM0 + self as u32
    }

    /// The name of the vector register with this column: `xmm0` ... `xmm13`.
    pub fn xmm_name(self) -> String {
        format!("xmm{}", self as usize)
    }

    /// The column of a vector register (`xmm0` ... `xmm13`), if the game has it.
    pub fn from_xmm(r: Register) -> Option<Reg> {
        Reg::ALL.into_iter().find(|x| x.xmm() == r)
    }

    /// Parses a vector register's name (`xmm3`; case-insensitive) as a column.
    pub fn parse_xmm(s: &str) -> Option<Reg> {
        Reg::ALL
            .into_iter()
            .find(|r| r.xmm_name().eq_ignore_ascii_case(s))
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
/// element is.
///
/// The vector moves (`VLoad`, `VStore`, `VMov`, `Min`, `Max`; [`Insn::is_vector`]) name
/// `xmm{i}` by the same [`Reg`] column `i` ([`Reg::xmm_name`]) and keep one element in lane 0:
/// a task plays either the scalar moves or the vector ones, never both, so a column is one
/// register file's register (the task file and [`Kernel`](crate::asm::Kernel) reading refuse a
/// mix). `avx` picks the VEX encoding (three operands) over the legacy SSE one. The methods without a type (`to_iced`, `intel`, `att`, [`encode`], `Display`)
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
    /// `cmp a, [rdi + stride*slot]` (or, with `mem_first`, `cmp [rdi + stride*slot], a`):
    /// flags from comparing a register with an array slot directly (a memory operand).
    CmpMem { a: Reg, slot: u8, mem_first: bool },
    /// `cmovcc dst, [rdi + stride*slot]`: `dst` takes the slot's value when `cc` holds (the
    /// load happens either way, as on the CPU).
    CmovMem { cc: Cond, dst: Reg, slot: u8 },
    /// `movd xmm, dword ptr [rdi + 4*slot]` (`movq`, qword, for 64-bit elements; `vmovd` /
    /// `vmovq` with `avx`): the element into lane 0 of `xmm{dst}`, the other lanes zeroed.
    VLoad { dst: Reg, slot: u8, avx: bool },
    /// `movd dword ptr [rdi + 4*slot], xmm` (`movq` for 64-bit elements; `v` with `avx`):
    /// lane 0 of `xmm{src}` to memory.
    VStore { slot: u8, src: Reg, avx: bool },
    /// `movdqa xmm, xmm` (`vmovdqa` with `avx`): copies every lane.
    VMov { dst: Reg, src: Reg, avx: bool },
    /// Lane-wise minimum in the element's order: `vpminsd dst, a, b` with `avx`, or the SSE4.1
    /// two-operand `pminsd dst, b` where `dst` is `a` (or `b`: the minimum commutes).
    /// `pminud` for u32, `vpminsq` / `vpminuq` (EVEX, AVX-512F + AVX-512VL) for 64-bit
    /// elements, which have no SSE or VEX form (so `avx` must be true for them).
    Min { dst: Reg, a: Reg, b: Reg, avx: bool },
    /// Lane-wise maximum, as [`Insn::Min`]: `vpmaxsd`, `pmaxsd`, `pmaxud`, `vpmaxsq`, `vpmaxuq`.
    Max { dst: Reg, a: Reg, b: Reg, avx: bool },
    /// `vmovdqu xmm, xmmword ptr [rdi]`: the first 16 bytes of the array (four 32-bit
    /// elements) into the lanes of `xmm{dst}`, element `k` in lane `k`. A packed-lane move
    /// ([`Insn::is_packed`]); it reads outside an array shorter than 16 bytes.
    PLoad { dst: Reg },
    /// `vmovdqu xmmword ptr [rdi], xmm`: the four lanes of `xmm{src}` to the first 16 bytes of
    /// the array.
    PStore { src: Reg },
    /// `vpshufd xmm{dst}, xmm{src}, imm`: lane `l` of the destination gets lane
    /// `(imm >> 2l) & 3` of the source (a lane may be copied more than once).
    Shuf { dst: Reg, src: Reg, imm: u8 },
    /// `vpblendd xmm{dst}, xmm{a}, xmm{b}, imm` (AVX2): lane `l` of the destination gets lane
    /// `l` of `b` when bit `l` of `imm` is set, else lane `l` of `a` (bits 0-3 only).
    Blend { dst: Reg, a: Reg, b: Reg, imm: u8 },
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
            Insn::CmpMem {
                a,
                slot,
                mem_first: false,
            } => Instruction::with2(cmp, r(a), mem(slot)),
            Insn::CmpMem {
                a,
                slot,
                mem_first: true,
            } => Instruction::with2(MoveCodes::of(el).cmp_reversed, mem(slot), r(a)),
            Insn::CmovMem { cc, dst, slot } => {
                Instruction::with2(cc.iced_code(el), r(dst), mem(slot))
            }
            Insn::VLoad { dst, slot, avx } => {
                Instruction::with2(VecCodes::of(el, avx).load, dst.xmm(), mem(slot))
            }
            Insn::VStore { slot, src, avx } => {
                Instruction::with2(VecCodes::of(el, avx).store, mem(slot), src.xmm())
            }
            Insn::VMov { dst, src, avx } => {
                Instruction::with2(VecCodes::of(el, avx).mov, dst.xmm(), src.xmm())
            }
            Insn::Min { dst, a, b, avx } | Insn::Max { dst, a, b, avx } => {
                let v = VecCodes::of(el, avx);
                let code = if matches!(self, Insn::Min { .. }) {
                    v.min
                } else {
                    v.max
                };
                let code = code.unwrap_or_else(|| {
                    panic!("{el} elements have no {} lane minimum or maximum: the move table and the task file never make one", if avx { "VEX/EVEX" } else { "SSE" })
                });
                if avx {
                    Instruction::with3(code, dst.xmm(), a.xmm(), b.xmm())
                } else {
                    // Two operands: the destination is one of the sources.
                    let other = if dst == a {
                        b
                    } else if dst == b {
                        a
                    } else {
                        panic!("an SSE minimum or maximum writes one of its sources (got {dst:?} = {a:?}, {b:?})")
                    };
                    Instruction::with2(code, dst.xmm(), other.xmm())
                }
            }
            Insn::PLoad { dst } => Instruction::with2(
                Code::VEX_Vmovdqu_xmm_xmmm128,
                dst.xmm(),
                MemoryOperand::with_base(Register::RDI),
            ),
            Insn::PStore { src } => Instruction::with2(
                Code::VEX_Vmovdqu_xmmm128_xmm,
                MemoryOperand::with_base(Register::RDI),
                src.xmm(),
            ),
            Insn::Shuf { dst, src, imm } => Instruction::with3(
                Code::VEX_Vpshufd_xmm_xmmm128_imm8,
                dst.xmm(),
                src.xmm(),
                imm as u32,
            ),
            Insn::Blend { dst, a, b, imm } => Instruction::with4(
                Code::VEX_Vpblendd_xmm_xmm_xmmm128_imm8,
                dst.xmm(),
                a.xmm(),
                b.xmm(),
                (imm & 0xF) as u32,
            ),
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
        // Memory operands: cmp with an array slot on either side, cmovcc from one.
        let rm = (2, OpKind::Register, OpKind::Memory);
        if code == cmp && kinds == rm {
            return Ok(Insn::CmpMem {
                a: reg(0)?,
                slot: slot()?,
                mem_first: false,
            });
        }
        if code == cmp_reversed && kinds == (2, OpKind::Memory, OpKind::Register) {
            return Ok(Insn::CmpMem {
                a: reg(1)?,
                slot: slot()?,
                mem_first: true,
            });
        }
        if kinds == rm {
            if let Some(cc) = Cond::ALL.into_iter().find(|c| c.iced_code(el) == code) {
                return Ok(Insn::CmovMem {
                    cc,
                    dst: reg(0)?,
                    slot: slot()?,
                });
            }
        }
        if let Some(insn) = packed_from_iced(ins, n, el)? {
            return Ok(insn);
        }
        if let Some(v) = VecCodes::decode(ins, el) {
            let x = |i: u32| xmm_operand(ins, i);
            let (regs, mems) = (
                (0..ins.op_count())
                    .filter(|&i| ins.op_kind(i) == OpKind::Register)
                    .count(),
                (0..ins.op_count())
                    .filter(|&i| ins.op_kind(i) == OpKind::Memory)
                    .count(),
            );
            return match (v, ins.op_count(), regs, mems) {
                (VecOp::Load(avx), 2, 1, 1) if ins.op0_kind() == OpKind::Register => {
                    Ok(Insn::VLoad {
                        dst: x(0)?,
                        slot: slot()?,
                        avx,
                    })
                }
                (VecOp::Store(avx), 2, 1, 1) if ins.op1_kind() == OpKind::Register => {
                    Ok(Insn::VStore {
                        slot: slot()?,
                        src: x(1)?,
                        avx,
                    })
                }
                (VecOp::Mov(avx), 2, 2, 0) => Ok(Insn::VMov {
                    dst: x(0)?,
                    src: x(1)?,
                    avx,
                }),
                (VecOp::MinMax(min, false), 2, 2, 0) => {
                    let (dst, b) = (x(0)?, x(1)?);
                    Ok(min_max(min, dst, dst, b, false))
                }
                (VecOp::MinMax(min, true), 3, 3, 0) if ins.op_mask() == Register::None => {
                    Ok(min_max(min, x(0)?, x(1)?, x(2)?, true))
                }
                _ => Err(format!(
                    "unsupported operands for {mnemonic} (the game's vector moves take xmm0-xmm13 and {} ptr [rdi+{}k])",
                    if el.is_wide() { "qword" } else { "dword" },
                    el.bytes()
                )),
            };
        }
        if let Some(why) = other_order(ins, el) {
            return Err(why);
        }
        Err(unsupported(&mnemonic, el))
    }

    /// The register (column) this instruction writes, if any: a general-purpose register for
    /// the scalar moves, `xmm{i}` for the vector ones ([`Insn::is_vector`]).
    pub fn written_reg(self) -> Option<Reg> {
        match self {
            Insn::Load { dst, .. }
            | Insn::Mov { dst, .. }
            | Insn::Cmov { dst, .. }
            | Insn::VLoad { dst, .. }
            | Insn::VMov { dst, .. }
            | Insn::Min { dst, .. }
            | Insn::Max { dst, .. }
            | Insn::PLoad { dst }
            | Insn::Shuf { dst, .. }
            | Insn::Blend { dst, .. }
            | Insn::CmovMem { dst, .. } => Some(dst),
            Insn::Store { .. }
            | Insn::Cmp { .. }
            | Insn::CmpMem { .. }
            | Insn::VStore { .. }
            | Insn::PStore { .. } => None,
        }
    }

    /// The registers (columns) this instruction reads: for `cmovcc` and the SSE two-operand
    /// minimum and maximum, the destination too.
    pub fn read_regs(self) -> Vec<Reg> {
        match self {
            Insn::Load { .. } | Insn::VLoad { .. } | Insn::PLoad { .. } => vec![],
            Insn::Store { src, .. } | Insn::VStore { src, .. } | Insn::PStore { src } => vec![src],
            Insn::Mov { src, .. } | Insn::VMov { src, .. } | Insn::Shuf { src, .. } => vec![src],
            Insn::Blend { a, b, .. } => vec![a, b],
            Insn::Cmp { a, b } => vec![a, b],
            Insn::Cmov { dst, src, .. } => vec![dst, src],
            Insn::CmpMem { a, .. } => vec![a],
            Insn::CmovMem { dst, .. } => vec![dst],
            Insn::Min { dst, a, b, avx } | Insn::Max { dst, a, b, avx } => {
                if avx || dst == a || dst == b {
                    vec![a, b]
                } else {
                    vec![dst, a, b]
                }
            }
        }
    }

    /// Whether this is one of the vector moves, whose registers are `xmm{i}`.
    pub fn is_vector(self) -> bool {
        matches!(
            self,
            Insn::VLoad { .. }
                | Insn::VStore { .. }
                | Insn::VMov { .. }
                | Insn::Min { .. }
                | Insn::Max { .. }
        ) || self.is_packed()
    }

    /// Whether this instruction takes an array slot as an operand of `cmp` or `cmovcc`
    /// ([`Insn::CmpMem`], [`Insn::CmovMem`]; loads and stores are not counted).
    pub fn has_memory_operand(self) -> bool {
        matches!(self, Insn::CmpMem { .. } | Insn::CmovMem { .. })
    }

    /// Whether this is one of the packed-lane moves, which read or write all four 32-bit
    /// lanes of an xmm register as a whole: `vmovdqu` loads and stores of the array,
    /// `vpshufd`, `vpblendd`. (The lane minimum and maximum act on every lane too, but a
    /// single-element kernel uses only lane 0 of them.)
    pub fn is_packed(self) -> bool {
        matches!(
            self,
            Insn::PLoad { .. } | Insn::PStore { .. } | Insn::Shuf { .. } | Insn::Blend { .. }
        )
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

/// The iced-x86 codes of the vector moves for an element type and encoding (legacy SSE or,
/// with `avx`, VEX; EVEX for the 64-bit minimum and maximum, which exist only in AVX-512).
struct VecCodes {
    load: Code,
    store: Code,
    mov: Code,
    /// `None` where the element type has no lane minimum in this encoding (64-bit, SSE/VEX).
    min: Option<Code>,
    max: Option<Code>,
}

/// A decoded vector instruction's role in the game: `(avx)` for the moves, `(min, avx)`.
#[derive(Clone, Copy)]
enum VecOp {
    Load(bool),
    Store(bool),
    Mov(bool),
    MinMax(bool, bool),
}

impl VecCodes {
    fn of(el: Element, avx: bool) -> VecCodes {
        use Code::*;
        let (load, store) = match (el.is_wide(), avx) {
            (false, false) => (Movd_xmm_rm32, Movd_rm32_xmm),
            (false, true) => (VEX_Vmovd_xmm_rm32, VEX_Vmovd_rm32_xmm),
            (true, false) => (Movq_xmm_rm64, Movq_rm64_xmm),
            (true, true) => (VEX_Vmovq_xmm_rm64, VEX_Vmovq_rm64_xmm),
        };
        let mov = if avx {
            VEX_Vmovdqa_xmm_xmmm128
        } else {
            Movdqa_xmm_xmmm128
        };
        let (min, max) = match (el, avx) {
            (Element::I32, false) => (Some(Pminsd_xmm_xmmm128), Some(Pmaxsd_xmm_xmmm128)),
            (Element::U32, false) => (Some(Pminud_xmm_xmmm128), Some(Pmaxud_xmm_xmmm128)),
            (Element::I32, true) => (
                Some(VEX_Vpminsd_xmm_xmm_xmmm128),
                Some(VEX_Vpmaxsd_xmm_xmm_xmmm128),
            ),
            (Element::U32, true) => (
                Some(VEX_Vpminud_xmm_xmm_xmmm128),
                Some(VEX_Vpmaxud_xmm_xmm_xmmm128),
            ),
            (Element::I64, true) => (
                Some(EVEX_Vpminsq_xmm_k1z_xmm_xmmm128b64),
                Some(EVEX_Vpmaxsq_xmm_k1z_xmm_xmmm128b64),
            ),
            (Element::U64, true) => (
                Some(EVEX_Vpminuq_xmm_k1z_xmm_xmmm128b64),
                Some(EVEX_Vpmaxuq_xmm_k1z_xmm_xmmm128b64),
            ),
            (Element::I64 | Element::U64, false) => (None, None),
        };
        VecCodes {
            load,
            store,
            mov,
            min,
            max,
        }
    }

    /// The role of `ins` among the vector moves for elements of type `el`, if it has one. Also
    /// takes the other encodings GNU as may pick: `movq xmm, m64` (F3 0F 7E), `movq m64, xmm`
    /// (66 0F D6) and the store form of `movdqa xmm, xmm`.
    fn decode(ins: &Instruction, el: Element) -> Option<VecOp> {
        use Code::*;
        let code = ins.code();
        for avx in [false, true] {
            let v = VecCodes::of(el, avx);
            let alt_load = match (el.is_wide(), avx) {
                (true, false) => Some(Movq_xmm_xmmm64),
                (true, true) => Some(VEX_Vmovq_xmm_xmmm64),
                _ => None,
            };
            let alt_store = match (el.is_wide(), avx) {
                (true, false) => Some(Movq_xmmm64_xmm),
                (true, true) => Some(VEX_Vmovq_xmmm64_xmm),
                _ => None,
            };
            let alt_mov = if avx {
                VEX_Vmovdqa_xmmm128_xmm
            } else {
                Movdqa_xmmm128_xmm
            };
            let mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == iced_x86::OpKind::Memory);
            if code == v.load || (Some(code) == alt_load && mem) {
                return Some(VecOp::Load(avx));
            }
            if code == v.store || (Some(code) == alt_store && mem) {
                return Some(VecOp::Store(avx));
            }
            if code == v.mov || code == alt_mov {
                return Some(VecOp::Mov(avx));
            }
            if Some(code) == v.min {
                return Some(VecOp::MinMax(true, avx));
            }
            if Some(code) == v.max {
                return Some(VecOp::MinMax(false, avx));
            }
        }
        None
    }
}

/// Operand `i` of `ins` as a vector register column of the game, or why it is not one.
fn xmm_operand(ins: &Instruction, i: u32) -> Result<Reg, String> {
    let r = ins.op_register(i);
    Reg::from_xmm(r).ok_or_else(|| {
        format!(
            "register {} is not a vector register of the game (xmm0-xmm13)",
            format!("{r:?}").to_lowercase()
        )
    })
}

/// The packed-lane move an iced-x86 instruction is (`vmovdqu` to or from `[rdi]`, `vpshufd`,
/// `vpblendd` on xmm registers), `Ok(None)` when it is none of them, or why it cannot be one:
/// a load or store of 16 bytes that do not lie inside an array of `n` elements of type `el`
/// (`vmovdqu reads [rdi+0, rdi+16), past the array of 3 i32 elements (12 bytes)`), a memory
/// operand other than `[rdi]`, a register the game lacks, a 64-bit element type.
fn packed_from_iced(ins: &Instruction, n: usize, el: Element) -> Result<Option<Insn>, String> {
    use iced_x86::OpKind;
    let code = ins.code();
    let packed = [
        Code::VEX_Vmovdqu_xmm_xmmm128,
        Code::VEX_Vmovdqu_xmmm128_xmm,
        Code::VEX_Vpshufd_xmm_xmmm128_imm8,
        Code::VEX_Vpblendd_xmm_xmm_xmmm128_imm8,
    ];
    if !packed.contains(&code) {
        return Ok(None);
    }
    let mnemonic = format!("{:?}", ins.mnemonic()).to_lowercase();
    let x = |i: u32| xmm_operand(ins, i);
    let mem = (0..ins.op_count()).find(|&i| ins.op_kind(i) == OpKind::Memory);
    let whole = || -> Result<(), String> {
        let disp = ins.memory_displacement64() as i64;
        if ins.memory_base() != Register::RDI || ins.memory_index() != Register::None || disp != 0 {
            return Err(format!(
                "{mnemonic} moves the whole array at [rdi] only (got [rdi{disp:+}] or another base)"
            ));
        }
        let bytes = n * el.bytes();
        if bytes < 16 {
            return Err(format!(
                "{mnemonic} {} [rdi+0, rdi+16), past the array of {n} {el} elements ({bytes} bytes)",
                if ins.op0_kind() == OpKind::Memory { "writes" } else { "reads" }
            ));
        }
        Ok(())
    };
    if el.is_wide() {
        return Err(format!(
            "{mnemonic}: packed lanes hold 32-bit elements; {el} elements are 64-bit"
        ));
    }
    let insn = match code {
        Code::VEX_Vmovdqu_xmm_xmmm128 if mem.is_some() => {
            whole()?;
            Insn::PLoad { dst: x(0)? }
        }
        Code::VEX_Vmovdqu_xmmm128_xmm if mem.is_some() => {
            whole()?;
            Insn::PStore { src: x(1)? }
        }
        Code::VEX_Vpshufd_xmm_xmmm128_imm8 if mem.is_none() => Insn::Shuf {
            dst: x(0)?,
            src: x(1)?,
            imm: ins.immediate8(),
        },
        Code::VEX_Vpblendd_xmm_xmm_xmmm128_imm8 if mem.is_none() => Insn::Blend {
            dst: x(0)?,
            a: x(1)?,
            b: x(2)?,
            imm: ins.immediate8() & 0xF,
        },
        _ => {
            return Err(format!(
                "unsupported operands for {mnemonic} (the game's packed moves are vmovdqu between xmm and [rdi], vpshufd and vpblendd on xmm registers)"
            ))
        }
    };
    Ok(Some(insn))
}

fn min_max(min: bool, dst: Reg, a: Reg, b: Reg, avx: bool) -> Insn {
    if min {
        Insn::Min { dst, a, b, avx }
    } else {
        Insn::Max { dst, a, b, avx }
    }
}

/// Why a lane minimum or maximum of the other signedness is not a move for elements of type
/// `el`: `pminsd compares signed; u32 elements compare unsigned, as pminud does`; `None` for any
/// other instruction.
pub fn other_order(ins: &Instruction, el: Element) -> Option<String> {
    let other = Element::ALL
        .into_iter()
        .find(|o| o.is_wide() == el.is_wide() && o.is_signed() != el.is_signed())?;
    let Some(VecOp::MinMax(min, avx)) = VecCodes::decode(ins, other) else {
        return None;
    };
    let v = VecCodes::of(el, avx);
    let ours = if min { v.min } else { v.max }?;
    let name = |c: Code| {
        let mut i = Instruction::default();
        i.set_code(c);
        format!("{:?}", i.mnemonic()).to_lowercase()
    };
    Some(format!(
        "{} compares {}; {el} elements compare {}, as {} does",
        name(ins.code()),
        if other.is_signed() {
            "signed"
        } else {
            "unsigned"
        },
        if el.is_signed() { "signed" } else { "unsigned" },
        name(ours)
    ))
}

/// The CPU features (CPUID) a program needs beyond what every x86-64 CPU has (SSE2 and
/// older), in a fixed order and without repeats: none for the scalar moves, `SSE4_1` for the
/// SSE minimum and maximum, `AVX` for VEX moves, `AVX512F` and `AVX512VL` for the 64-bit
/// minimum and maximum. iced-x86's table of each instruction's features is the source.
pub fn features_as(program: &[Insn], el: Element) -> Vec<iced_x86::CpuidFeature> {
    let code: Vec<Instruction> = program.iter().map(|i| i.to_iced_as(el)).collect();
    features_of(&code)
}

/// CPU features every x86-64 CPU has and that are harmless in a kernel: what
/// [`features_of`] leaves out, and what the verifier's static check allows on any CPU.
pub const BASELINE_FEATURES: [iced_x86::CpuidFeature; 13] = {
    use iced_x86::CpuidFeature as F;
    [
        F::INTEL8086,
        F::INTEL186,
        F::INTEL286,
        F::INTEL386,
        F::INTEL486,
        F::X64,
        F::CMOV,
        F::CX8,
        F::SSE,
        F::SSE2,
        F::MULTIBYTENOP,
        F::PAUSE,
        F::CLFSH,
    ]
};

/// The CPU features (CPUID, iced-x86's table) that `code` needs beyond
/// [`BASELINE_FEATURES`], in iced-x86's order of features and without repeats.
pub fn features_of<'a>(
    code: impl IntoIterator<Item = &'a Instruction>,
) -> Vec<iced_x86::CpuidFeature> {
    let mut out = Vec::new();
    for ins in code {
        for &f in ins.cpuid_features() {
            if !BASELINE_FEATURES.contains(&f) && !out.contains(&f) {
                out.push(f);
            }
        }
    }
    out.sort_by_key(|&f| f as u32);
    out
}

/// A CPU feature as Rust's `is_x86_feature_detected!` and GCC's `-m` flags name it:
/// `sse4.1`, `avx`, `avx512f`, `avx512vl`.
pub fn feature_name(f: iced_x86::CpuidFeature) -> String {
    format!("{f:?}").to_lowercase().replace('_', ".")
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
