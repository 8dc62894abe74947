//! Stage 2 of the oracle: run a kernel's machine code on the real CPU.
//!
//! Stage 1 proves a kernel on the emulator; stage 2 checks that the bytes we would ship behave
//! the same on silicon, and catches what the emulator cannot see: an encoding that does not mean
//! what the game thought, a read of a register the kernel never wrote, a write next to the
//! array, or a clobbered callee-saved register.
//!
//! The kernel (raw x86-64 bytes for `void f(T *buf)`, no `ret`, where `T` is the task's
//! [`Element`]: `int32_t`, `uint32_t`, `int64_t` or `uint64_t`) is inlined verbatim into a
//! wrapper assembled with dynasmrt, `extern "sysv64" fn(buf, poison, out)`, which
//!
//! 1. saves rbx, rbp, r12-r15 and the `out` pointer on the stack, and the stack pointer in a
//!    slot outside the stack;
//! 2. sets rbx, rbp, r12-r15 to distinct sentinel values;
//! 3. saves the caller's MXCSR, then loads a *poison pattern* into MXCSR (rounding mode,
//!    flush-to-zero and denormals-are-zero; exceptions stay masked), into every vector register
//!    at the widest width the CPU has (zmm0-31 and k1-k7 with AVX-512, else ymm0-15 with AVX,
//!    else xmm0-15), into all 64 bits of rax, rcx, rdx, rsi, r8-r11 and into the arithmetic
//!    flags (CF PF AF ZF SF OF only, never TF, IF or DF);
//! 4. runs the kernel with rdi = `buf`;
//! 5. restores the stack pointer from its slot (so even a kernel that moved rsp returns) and the
//!    caller's MXCSR, writes rbx, rbp, r12-r15 and how far rsp moved into `out`, clears the
//!    upper vector state (`vzeroupper`, with AVX), restores the callee-saved registers and
//!    returns.
//!
//! Every input runs once under each of four poison patterns, each with its own buffer in which
//! the array sits between guard words (values that differ per pattern). After every call the
//! guard words, the sentinels and rsp are checked, then the array is compared with the input
//! sorted by `sort_unstable`.
//!
//! Inputs, in this order: every tuple over `{0..n-1}^n`, smallest first (by largest element,
//! then lexicographically, so the first failure reported is a small one such as `[1,1,0]`);
//! every tuple over the element type's extreme values ([`extremes`]: 0, 1, MAX-1, MAX, and
//! -1, MIN, MIN+1 for the signed types), smallest first in the same sense, so that a kernel
//! right only for the other signedness fails on a small input such as `[0,0,-1]`; then
//! [`NativeConfig::random`] pseudo-random tuples from `ChaCha8Rng` seeded with
//! [`NativeConfig::seed`], a mix of values of the full width and small ranges so that ties
//! happen. Values are held as `i128`, which holds every value of the four types.
//!
//! A wrong result is classified as follows: if the outputs differ between poison patterns the
//! verdict is [`NativeFailure::PoisonDependent`] (even when one of them is right), otherwise
//! [`NativeFailure::NotSorted`]. Guard words and callee-saved registers are checked first.
//!
//! Stage 2 detects misbehaviour, it does not contain it: a kernel that faults, or writes far
//! outside the buffer, takes the process down. The caller must have checked statically that the
//! kernel has no control flow and touches memory only at `[rdi + 4k]` inside the array.

use crate::error::{Error, Result};
use crate::isa::Element;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::fmt;

/// The extreme values of an element type, in the order the native stage enumerates them:
/// `0, 1, MAX-1, MAX` for the unsigned types; `0, 1, -1, MIN, MIN+1, MAX-1, MAX` for the
/// signed ones. Every tuple over them runs.
pub fn extremes(el: Element) -> Vec<i128> {
    let bits = 8 * el.bytes() as u32;
    if el.is_signed() {
        let max = (1i128 << (bits - 1)) - 1;
        vec![0, 1, -1, -max - 1, -max, max - 1, max]
    } else {
        let max = (1i128 << bits) - 1;
        vec![0, 1, max - 1, max]
    }
}

/// How the report names [`extremes`]: `{0, 1, -1, INT_MIN, INT_MIN+1, INT_MAX-1, INT_MAX}`.
fn extremes_text(el: Element) -> &'static str {
    match el {
        Element::I32 => "{0, 1, -1, INT_MIN, INT_MIN+1, INT_MAX-1, INT_MAX}",
        Element::U32 => "{0, 1, UINT_MAX-1, UINT_MAX}",
        Element::I64 => "{0, 1, -1, INT64_MIN, INT64_MIN+1, INT64_MAX-1, INT64_MAX}",
        Element::U64 => "{0, 1, UINT64_MAX-1, UINT64_MAX}",
    }
}

/// `v` as an element of type `el` holds it: truncated to the width, then read signed or
/// unsigned.
fn wrap(el: Element, v: i128) -> i128 {
    match el {
        Element::I32 => v as i32 as i128,
        Element::U32 => v as u32 as i128,
        Element::I64 => v as i64 as i128,
        Element::U64 => v as u64 as i128,
    }
}

/// Writes element `k` of an array of `el` packed in little-endian 64-bit words.
fn put(words: &mut [u64], el: Element, k: usize, v: i128) {
    if el.is_wide() {
        words[k] = v as u64;
    } else {
        let shift = 32 * (k % 2);
        let w = &mut words[k / 2];
        *w = (*w & !(0xFFFF_FFFFu64 << shift)) | ((v as u32 as u64) << shift);
    }
}

/// Reads element `k` of an array of `el` packed in little-endian 64-bit words.
fn get(words: &[u64], el: Element, k: usize) -> i128 {
    if el.is_wide() {
        wrap(el, words[k] as i128)
    } else {
        wrap(el, (words[k / 2] >> (32 * (k % 2))) as i128)
    }
}

/// Words in a poison pattern: rax, rcx, rdx, rsi, r8, r9, r10, r11 (the scratch registers in
/// [`crate::isa::Reg`] column order), then RFLAGS, then MXCSR.
const POISON_WORDS: usize = 10;

/// Byte offset of the vector registers' poison in a [`Poison`]: 32 registers of 64 bytes.
const VECTOR_OFFSET: i32 = 128;

/// Byte offset of the mask registers' poison (k0-k7, 8 bytes each) in a [`Poison`].
const MASK_OFFSET: i32 = VECTOR_OFFSET + 32 * 64;

/// One poison pattern as the JIT wrapper reads it (through the pointer in rsi).
#[repr(C, align(64))]
struct Poison {
    /// See [`POISON_WORDS`]; the rest of the first 128 bytes is padding.
    words: [u64; 16],
    /// zmm0-31, 64 bytes each (the low 32 or 16 bytes are what ymm / xmm loads take).
    vectors: [[u64; 8]; 32],
    /// k0-k7.
    masks: [u64; 8],
}

/// RFLAGS bits a poison pattern may set: CF PF AF ZF SF OF and the always-one bit 1.
const FLAGS_MASK: u64 = 0x1 | 0x4 | 0x10 | 0x40 | 0x80 | 0x800 | 0x2;

/// The GPR, flag and MXCSR words of the poison patterns. Each input runs under every one; a
/// kernel whose result differs between them reads something it never wrote. Low halves include
/// 0, -1, i32::MIN and i32::MAX; high halves differ from low halves; the flags read as
/// "greater" (pattern 0), "equal" (1) and "less" (2, 3) for the signed conditions and differ
/// for the unsigned ones too; MXCSR rounds to nearest (0), toward zero with FTZ and DAZ (1),
/// down (2) and up with FTZ (3).
const POISONS: [[u64; POISON_WORDS]; 4] = [
    [0, 0, 0, 0, 0, 0, 0, 0, 0x2, 0x1F80],
    [
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        u64::MAX,
        FLAGS_MASK,
        0x1F80 | 0x6000 | 0x8000 | 0x40,
    ],
    [
        0x9E37_79B9_7F4A_7C15,
        0xBF58_476D_1CE4_E5B9,
        0x94D0_49BB_1331_11EB,
        0x2545_F491_4F6C_DD1D,
        0xD6E8_FEB8_6659_FD93,
        0xA076_1D64_78BD_642F,
        0xE703_7ED1_A0B4_28DB,
        0x8EBC_6AF0_9C88_C6E3,
        0x800 | 0x4 | 0x2, // OF PF: signed "less", unsigned "above"
        0x1F80 | 0x2000,
    ],
    [
        0x7FFF_FFFF_8000_0000,
        0x8000_0000_7FFF_FFFF,
        0x0000_0001_FFFF_FFFF,
        0xFFFF_FFFF_0000_0001,
        0x8000_0000_8000_0001,
        0x7FFF_FFFF_7FFF_FFFE,
        0x0000_0000_0000_0002,
        0xFFFF_FFFE_FFFF_FFFF,
        0x80 | 0x10 | 0x1 | 0x2, // SF AF CF: signed "less", unsigned "below"
        0x1F80 | 0x4000 | 0x8000,
    ],
];

impl Poison {
    /// Pattern `p` of [`POISONS`], with vector and mask registers filled in its style: all
    /// zero bits (pattern 0), all one bits (1), and SplitMix64 noise that differs per
    /// register, lane and pattern (2, 3), so that every 32-bit lane differs between patterns.
    fn new(p: usize) -> Poison {
        let mut words = [0u64; 16];
        words[..POISON_WORDS].copy_from_slice(&POISONS[p]);
        let fill = |k: usize| -> u64 {
            match p {
                0 => 0,
                1 => u64::MAX,
                _ => splitmix(0x0B5E_55ED_0000_0000 ^ ((p as u64) << 24) ^ k as u64),
            }
        };
        let mut vectors = [[0u64; 8]; 32];
        for (r, v) in vectors.iter_mut().enumerate() {
            for (l, w) in v.iter_mut().enumerate() {
                *w = fill(r * 8 + l);
            }
        }
        let masks = std::array::from_fn(|k| fill(1000 + k));
        Poison {
            words,
            vectors,
            masks,
        }
    }
}

/// SplitMix64's output for state `z`: the golden-ratio step, then its finaliser
/// ([`crate::search::mix64`]).
fn splitmix(z: u64) -> u64 {
    crate::search::mix64(z.wrapping_add(0x9E37_79B9_7F4A_7C15))
}

/// Guard words on each side of the array.
const GUARD_WORDS: usize = 8;

/// Words the wrapper writes to `out`: rbx, rbp, r12, r13, r14, r15, then rsp after the kernel
/// minus rsp before it.
const OUT_WORDS: usize = 7;

/// Names of the registers reported in `out`, in order.
const OUT_NAMES: [&str; OUT_WORDS] = ["rbx", "rbp", "r12", "r13", "r14", "r15", "rsp"];

/// Values the wrapper puts in rbx, rbp, r12-r15 before the kernel runs.
const SENTINELS: [u64; 6] = [
    0x5E47_0B0B_0000_00B1,
    0x5E47_0B0B_0000_0B9B,
    0x5E47_0B0B_0000_0012,
    0x5E47_0B0B_0000_0013,
    0x5E47_0B0B_0000_0014,
    0x5E47_0B0B_0000_0015,
];

/// Options for stage 2.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeConfig {
    /// Number of pseudo-random input tuples run after the exhaustive and extreme ones
    /// (default 100,000). Each runs under every poison pattern.
    pub random: usize,
    /// Seed of the `ChaCha8Rng` that draws the random tuples (default 0).
    pub seed: u64,
}

impl Default for NativeConfig {
    fn default() -> Self {
        NativeConfig {
            random: 100_000,
            seed: 0,
        }
    }
}

/// What stage 2 ran, for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NativeReport {
    /// One human-readable line per check, e.g. `all 27 tuples over {0..2}^3` or
    /// `4 poison patterns for rax rcx rdx rsi r8-r11 (all 64 bits), the flags, zmm0-31 (all
    /// 512 bits) and k1-k7, and MXCSR (rounding mode, FTZ, DAZ)`.
    pub checks: Vec<String>,
    /// Number of calls of the kernel: input tuples times poison patterns.
    pub calls: u64,
}

/// Why stage 2 rejected a kernel. `Display` gives one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NativeFailure {
    /// The same wrong output under every poison pattern:
    /// `not sorted: [1,1,0] -> [0,1,0]`.
    NotSorted {
        /// The input tuple.
        input: Vec<i128>,
        /// The array after the kernel ran.
        output: Vec<i128>,
    },
    /// A guard word next to the array changed:
    /// `writes outside the array: guard word before it changed on [1,0,2]` (or `after it`).
    OutsideArray {
        /// The input tuple of the call that changed it.
        input: Vec<i128>,
        /// Whether the changed guard word lies before the array (else after it).
        before: bool,
    },
    /// A callee-saved register (`rbx`, `rbp`, `r12`-`r15`) or the stack pointer (`rsp`) differs
    /// after the kernel: `clobbers callee-saved rbx`.
    CalleeSaved {
        /// The register's 64-bit name.
        reg: &'static str,
        /// The input tuple of the call.
        input: Vec<i128>,
    },
    /// The output differs between poison patterns, so the kernel reads a register or flag it
    /// never wrote (or memory next to the array, whose guard words also differ per pattern):
    /// `result depends on leftover register values: [0,1,2] -> [0,1,2] or [0,0,2]`.
    PoisonDependent {
        /// The input tuple.
        input: Vec<i128>,
        /// The output under the first poison pattern, and a different one under another.
        outputs: (Vec<i128>, Vec<i128>),
    },
}

/// Writes a tuple as `[1,-2,3]`, without spaces.
struct Tuple<'a>(&'a [i128]);

impl fmt::Display for Tuple<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, x) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(f, "{x}")?;
        }
        f.write_str("]")
    }
}

impl fmt::Display for NativeFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NativeFailure::NotSorted { input, output } => {
                write!(f, "not sorted: {} -> {}", Tuple(input), Tuple(output))
            }
            NativeFailure::OutsideArray { input, before } => {
                let side = if *before { "before" } else { "after" };
                write!(
                    f,
                    "writes outside the array: guard word {side} it changed on {}",
                    Tuple(input)
                )
            }
            NativeFailure::CalleeSaved { reg, .. } => write!(f, "clobbers callee-saved {reg}"),
            NativeFailure::PoisonDependent {
                input,
                outputs: (a, b),
            } => write!(
                f,
                "result depends on leftover register values: {} -> {} or {}",
                Tuple(input),
                Tuple(a),
                Tuple(b)
            ),
        }
    }
}

/// Runs the kernel `code` (x86-64 machine code, no `ret`, for `void f(T *buf)` sorting `n`
/// elements of type `el` at `[rdi]` ascending in `el`'s order) on the CPU over the inputs
/// described in the module documentation, stopping at the first failure.
///
/// `code` must already have passed the static check (no control flow, memory only at
/// `[rdi + stride*k]` inside the array, no writes to rsp or rdi): a kernel that faults kills
/// the process. With `n` = 5, i32 elements and the default config this makes 479,728 calls.
///
/// Errors: [`Error::Runtime`] when `n` is not in `1..=8` ([`crate::task::MAX_N`]), when the JIT
/// cannot map executable memory, or on a CPU other than x86-64. The inner `Result` is the
/// verdict: a [`NativeReport`] of what passed, or the first [`NativeFailure`].
pub fn run_native(
    code: &[u8],
    n: usize,
    el: Element,
    cfg: &NativeConfig,
) -> Result<Result<NativeReport, NativeFailure>> {
    if !(1..=crate::task::MAX_N).contains(&n) {
        return Err(Error::Runtime(format!(
            "stage 2 supports 1 to {} array elements, got {n}",
            crate::task::MAX_N
        )));
    }
    let jit = jit::Jit::new(code)?;
    let mut bench = Bench::new(&jit, n, el);
    let mut checks = Vec::new();

    if let Err(failure) = run_inputs(&mut bench, n, cfg, &mut checks) {
        return Ok(Err(failure));
    }
    checks.push(format!(
        "{} poison patterns for rax rcx rdx rsi r8-r11 (all 64 bits), the flags, {}, and MXCSR (rounding mode, FTZ, DAZ)",
        POISONS.len(),
        jit.vectors().describe()
    ));
    checks.push(format!(
        "{GUARD_WORDS} guard words on both sides of the array"
    ));
    checks.push("callee-saved rbx rbp r12-r15 and rsp preserved".to_string());
    Ok(Ok(NativeReport {
        checks,
        calls: bench.calls,
    }))
}

/// Runs the three input sets in order, adding a line to `checks` for each that passed.
fn run_inputs(
    bench: &mut Bench<'_>,
    n: usize,
    cfg: &NativeConfig,
    checks: &mut Vec<String>,
) -> Result<(), NativeFailure> {
    let el = bench.el;
    let count = bench.run_all(SmallestFirst::new(n))?;
    checks.push(format!("all {count} tuples over {{0..{}}}^{n}", n - 1));
    let count = bench.run_all(SmallestFirst::over(n, extremes(el)))?;
    checks.push(format!("all {count} tuples over {}^{n}", extremes_text(el)));
    let count = bench.run_all(RandomTuples::new(n, el, cfg.random, cfg.seed))?;
    checks.push(format!("{count} random tuples (seed {})", cfg.seed));
    Ok(())
}

/// Every tuple over `{0..n-1}^n`, smallest first: ordered by largest element, then
/// lexicographically (`[0,0,0]`, `[0,0,1]`, `[0,1,0]`, `[0,1,1]`, `[1,0,0]`, ...). Yields
/// `n^n` tuples; for `n = 0`, none.
pub fn smallest_first_tuples(n: usize) -> impl Iterator<Item = Vec<i32>> {
    let mut it = SmallestFirst::new(n);
    std::iter::from_fn(move || {
        it.next_tuple()
            .map(|t| t.iter().map(|&v| v as i32).collect())
    })
}

/// A source of input tuples that lends each tuple instead of allocating it.
trait TupleSource {
    /// The next tuple, or `None` when exhausted.
    fn next_tuple(&mut self) -> Option<&[i128]>;
}

/// Advances `digits` (each in `0..base`) as an odometer, last digit fastest. Returns false,
/// leaving all digits zero, when it wraps around.
fn odometer_step(digits: &mut [i32], base: i32) -> bool {
    for d in digits.iter_mut().rev() {
        *d += 1;
        if *d < base {
            return true;
        }
        *d = 0;
    }
    false
}

/// The tuples of [`smallest_first_tuples`], or of any list of values by index in the same
/// order ([`SmallestFirst::over`]).
struct SmallestFirst {
    /// Largest index of the tuples now being enumerated.
    max: i32,
    /// Number of values.
    base: i32,
    /// The values the indices name.
    values: Vec<i128>,
    idx: Vec<i32>,
    cur: Vec<i128>,
    started: bool,
}

impl SmallestFirst {
    /// Tuples over `0..n`.
    fn new(n: usize) -> Self {
        SmallestFirst::over(n, (0..n as i128).collect())
    }

    /// Tuples of length `n` over `values`, smallest index first.
    fn over(n: usize, values: Vec<i128>) -> Self {
        SmallestFirst {
            max: 0,
            base: values.len() as i32,
            cur: vec![values.first().copied().unwrap_or(0); n],
            values,
            idx: vec![0; n],
            started: false,
        }
    }

    fn fill(&mut self) -> Option<&[i128]> {
        for (v, &i) in self.cur.iter_mut().zip(&self.idx) {
            *v = self.values[i as usize];
        }
        Some(&self.cur)
    }
}

impl TupleSource for SmallestFirst {
    fn next_tuple(&mut self) -> Option<&[i128]> {
        if self.max >= self.base || self.idx.is_empty() {
            return None;
        }
        if !self.started {
            // [0; n] is the only tuple with largest index 0.
            self.started = true;
            return self.fill();
        }
        loop {
            if !odometer_step(&mut self.idx, self.max + 1) {
                self.max += 1;
                if self.max >= self.base {
                    return None;
                }
                continue;
            }
            if self.idx.contains(&self.max) {
                return self.fill();
            }
        }
    }
}

/// Pseudo-random tuples: each tuple is drawn in one of four styles, so that ties are common.
struct RandomTuples {
    rng: ChaCha8Rng,
    el: Element,
    extremes: Vec<i128>,
    left: usize,
    cur: Vec<i128>,
}

impl RandomTuples {
    fn new(n: usize, el: Element, count: usize, seed: u64) -> Self {
        RandomTuples {
            rng: ChaCha8Rng::seed_from_u64(seed),
            el,
            extremes: extremes(el),
            left: count,
            cur: vec![0; n],
        }
    }
}

impl TupleSource for RandomTuples {
    fn next_tuple(&mut self) -> Option<&[i128]> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let n = self.cur.len() as i128;
        let (el, rng) = (self.el, &mut self.rng);
        let style = rng.gen_range(0..4u8);
        for v in self.cur.iter_mut() {
            *v = match style {
                0 => wrap(el, rng.gen::<u64>() as i128),
                1 => rng.gen_range(0..n),
                // Near zero: both signs for signed types, 0..3 and MAX-3..MAX for unsigned.
                2 => wrap(el, rng.gen_range(-3..=3)),
                _ if rng.gen() => self.extremes[rng.gen_range(0..self.extremes.len())],
                _ => wrap(el, rng.gen::<u64>() as i128),
            };
        }
        Some(&self.cur)
    }
}

/// A distinctive guard word for position `k` under poison pattern `p` (SplitMix64 output),
/// as an element of type `el`.
fn guard_word(el: Element, p: usize, k: usize) -> i128 {
    wrap(
        el,
        splitmix(0x5AFE_6A4D_0000_0000u64 ^ ((p as u64) << 16) ^ k as u64) as i128,
    )
}

/// The test bench: one buffer per poison pattern, reused for every call.
struct Bench<'a> {
    jit: &'a jit::Jit,
    n: usize,
    el: Element,
    /// Per pattern: `GUARD_WORDS` guard elements, the array, `GUARD_WORDS` guard elements,
    /// packed into 64-bit words (so 8-byte aligned) as [`put`] writes them.
    buffers: Vec<Vec<u64>>,
    /// The untouched guard layout of each buffer.
    templates: Vec<Vec<u64>>,
    out: [u64; OUT_WORDS],
    expected: Vec<i128>,
    calls: u64,
    /// The poison patterns, as the wrapper reads them.
    poisons: Vec<Poison>,
}

impl<'a> Bench<'a> {
    fn new(jit: &'a jit::Jit, n: usize, el: Element) -> Self {
        let len = 2 * GUARD_WORDS + n;
        let words = (len * el.bytes()).div_ceil(8);
        let templates: Vec<Vec<u64>> = (0..POISONS.len())
            .map(|p| {
                let mut w = vec![0u64; words];
                for k in 0..len {
                    put(&mut w, el, k, guard_word(el, p, k));
                }
                w
            })
            .collect();
        Bench {
            jit,
            n,
            el,
            buffers: templates.clone(),
            templates,
            out: [0; OUT_WORDS],
            expected: vec![0; n],
            calls: 0,
            poisons: (0..POISONS.len()).map(Poison::new).collect(),
        }
    }

    /// Runs every tuple of `source`; returns how many there were.
    fn run_all(&mut self, mut source: impl TupleSource) -> Result<u64, NativeFailure> {
        let mut count = 0;
        while let Some(input) = source.next_tuple() {
            self.check(input)?;
            count += 1;
        }
        Ok(count)
    }

    /// The array of pattern `p`'s buffer.
    fn array(&self, p: usize) -> Vec<i128> {
        (0..self.n)
            .map(|k| get(&self.buffers[p], self.el, GUARD_WORDS + k))
            .collect()
    }

    /// Whether the guard elements before (`true`) or after the array of pattern `p` changed.
    fn guard_changed(&self, p: usize, before: bool) -> bool {
        let (buf, template, el) = (&self.buffers[p], &self.templates[p], self.el);
        let range = if before {
            0..GUARD_WORDS
        } else {
            GUARD_WORDS + self.n..2 * GUARD_WORDS + self.n
        };
        range
            .into_iter()
            .any(|k| get(buf, el, k) != get(template, el, k))
    }

    /// Runs one input under every poison pattern.
    fn check(&mut self, input: &[i128]) -> Result<(), NativeFailure> {
        let (g, n, el) = (GUARD_WORDS, self.n, self.el);
        self.expected.copy_from_slice(input);
        self.expected.sort_unstable();
        let mut all_sorted = true;
        for p in 0..self.poisons.len() {
            let buf = &mut self.buffers[p];
            for (k, &v) in input.iter().enumerate() {
                put(buf, el, g + k, v);
            }
            // SAFETY: the array starts `g` elements into the buffer, which holds all of it.
            let array = unsafe { (buf.as_mut_ptr() as *mut u8).add(g * el.bytes()) };
            self.jit.call(array, &self.poisons[p], &mut self.out);
            self.calls += 1;

            for before in [true, false] {
                if self.guard_changed(p, before) {
                    return Err(NativeFailure::OutsideArray {
                        input: input.to_vec(),
                        before,
                    });
                }
            }
            let saved = SENTINELS.iter().chain(&[0]);
            if let Some(i) = self
                .out
                .iter()
                .zip(saved)
                .position(|(got, want)| got != want)
            {
                return Err(NativeFailure::CalleeSaved {
                    reg: OUT_NAMES[i],
                    input: input.to_vec(),
                });
            }
            all_sorted &= (0..n).all(|k| get(&self.buffers[p], el, g + k) == self.expected[k]);
        }
        if all_sorted {
            return Ok(());
        }
        let first = self.array(0);
        let input = input.to_vec();
        match (1..POISONS.len())
            .map(|p| self.array(p))
            .find(|o| *o != first)
        {
            Some(other) => Err(NativeFailure::PoisonDependent {
                input,
                outputs: (first, other),
            }),
            None => Err(NativeFailure::NotSorted {
                input,
                output: first,
            }),
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod jit {
    //! The dynasmrt wrapper around the kernel bytes.

    use super::{Poison, MASK_OFFSET, OUT_WORDS, SENTINELS, VECTOR_OFFSET};
    use crate::error::{Error, Result};
    use dynasmrt::{dynasm, x64::Assembler, DynasmApi, ExecutableBuffer};
    use iced_x86::code_asm::{self as ca, CodeAssembler};
    use iced_x86::Register;
    use std::cell::UnsafeCell;

    /// `wrapper(buf, poison, out)`; see the module documentation of `oracle::native`.
    type Wrapper = unsafe extern "sysv64" fn(*mut u8, *const Poison, *mut u64);

    /// Which vector registers the wrapper poisons: the widest the CPU has.
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Vectors {
        /// zmm0-31 (all 512 bits) and k1-k7 (AVX-512F; k0 cannot be a write mask).
        Avx512,
        /// ymm0-15 (all 256 bits).
        Avx,
        /// xmm0-15.
        Sse,
    }

    impl Vectors {
        fn detect() -> Vectors {
            if std::arch::is_x86_feature_detected!("avx512f") {
                Vectors::Avx512
            } else if std::arch::is_x86_feature_detected!("avx") {
                Vectors::Avx
            } else {
                Vectors::Sse
            }
        }

        /// What is poisoned, for the report.
        pub(super) fn describe(self) -> &'static str {
            match self {
                Vectors::Avx512 => "zmm0-31 (all 512 bits) and k1-k7",
                Vectors::Avx => "ymm0-15 (all 256 bits)",
                Vectors::Sse => "xmm0-15 (all 128 bits)",
            }
        }

        /// Machine code that loads the vector (and mask) poison from `[rsi + ...]` and MXCSR
        /// from `[rsi + 72]`, after saving the caller's MXCSR at `[rax]`.
        fn prologue(self) -> std::result::Result<Vec<u8>, iced_x86::IcedError> {
            let mut a = CodeAssembler::new(64)?;
            a.stmxcsr(ca::dword_ptr(ca::rax))?;
            a.ldmxcsr(ca::dword_ptr(ca::rsi + 72))?;
            let count = if self == Vectors::Avx512 { 32 } else { 16 };
            for i in 0..count {
                let at = ca::rsi + (VECTOR_OFFSET + 64 * i as i32);
                match self {
                    Vectors::Avx512 => {
                        let r = ca::registers::get_zmm(zmm(i)).expect("a zmm register");
                        a.vmovdqu64(r, ca::zmmword_ptr(at))?;
                    }
                    Vectors::Avx => {
                        let r = ca::registers::get_ymm(ymm(i)).expect("a ymm register");
                        a.vmovdqu(r, ca::ymmword_ptr(at))?;
                    }
                    Vectors::Sse => {
                        let r = ca::registers::get_xmm(xmm(i)).expect("an xmm register");
                        a.movdqu(r, ca::xmmword_ptr(at))?;
                    }
                }
            }
            if self == Vectors::Avx512 {
                for k in 1..8u32 {
                    let r = ca::registers::get_k(Register::K0 + k).expect("a mask register");
                    a.kmovw(r, ca::word_ptr(ca::rsi + (MASK_OFFSET + 8 * k as i32)))?;
                }
            }
            a.assemble(0)
        }

        /// Machine code that restores the caller's MXCSR from `[rax]` and, with AVX, clears
        /// the upper halves of the vector registers.
        fn epilogue(self) -> std::result::Result<Vec<u8>, iced_x86::IcedError> {
            let mut a = CodeAssembler::new(64)?;
            a.ldmxcsr(ca::dword_ptr(ca::rax))?;
            if self != Vectors::Sse {
                a.vzeroupper()?;
            }
            a.assemble(0)
        }
    }

    fn zmm(i: usize) -> Register {
        Register::ZMM0 + i as u32
    }
    fn ymm(i: usize) -> Register {
        Register::YMM0 + i as u32
    }
    fn xmm(i: usize) -> Register {
        Register::XMM0 + i as u32
    }

    /// A kernel inlined into the wrapper, ready to call.
    pub(super) struct Jit {
        /// Keeps the code mapped; `entry` points into it.
        _code: ExecutableBuffer,
        entry: Wrapper,
        /// Where the wrapper keeps rsp while the kernel runs. Only the JIT code touches it.
        _rsp_slot: Box<UnsafeCell<u64>>,
        /// Where the wrapper keeps the caller's MXCSR while the kernel runs.
        _mxcsr_slot: Box<UnsafeCell<u64>>,
        vectors: Vectors,
    }

    impl Jit {
        /// Assembles the wrapper around `code`. Errors: [`Error::Runtime`] when executable
        /// memory cannot be mapped.
        pub(super) fn new(code: &[u8]) -> Result<Jit> {
            let rsp_slot = Box::new(UnsafeCell::new(0u64));
            let mxcsr_slot = Box::new(UnsafeCell::new(0u64));
            let slot = rsp_slot.get() as i64;
            let mslot = mxcsr_slot.get() as i64;
            let vectors = Vectors::detect();
            let internal = |e: iced_x86::IcedError| Error::Runtime(format!("JIT wrapper: {e}"));
            let prologue = vectors.prologue().map_err(internal)?;
            let epilogue = vectors.epilogue().map_err(internal)?;
            let [s_rbx, s_rbp, s_r12, s_r13, s_r14, s_r15] = SENTINELS.map(|s| s as i64);
            let mut ops = Assembler::new()
                .map_err(|e| Error::Runtime(format!("cannot map memory for the JIT: {e}")))?;
            let start = ops.offset();
            dynasm!(ops
                ; .arch x64
                ; push rbx
                ; push rbp
                ; push r12
                ; push r13
                ; push r14
                ; push r15
                ; push rdx                      // out, at [rsp]
                ; mov rax, QWORD slot
                ; mov [rax], rsp
                ; mov rbx, QWORD s_rbx
                ; mov rbp, QWORD s_rbp
                ; mov r12, QWORD s_r12
                ; mov r13, QWORD s_r13
                ; mov r14, QWORD s_r14
                ; mov r15, QWORD s_r15
                ; mov rax, QWORD mslot
            );
            ops.extend(&prologue); // MXCSR saved at [rax], poison loaded
            dynasm!(ops
                ; .arch x64
                ; push QWORD [rsi + 64]         // poison flags, masked to CF PF AF ZF SF OF
                ; popfq
                ; mov rax, [rsi]
                ; mov rcx, [rsi + 8]
                ; mov rdx, [rsi + 16]
                ; mov r8, [rsi + 32]
                ; mov r9, [rsi + 40]
                ; mov r10, [rsi + 48]
                ; mov r11, [rsi + 56]
                ; mov rsi, [rsi + 24]           // last: it held the poison pointer
            );
            ops.extend(code);
            dynasm!(ops
                ; .arch x64
                ; mov r11, rsp
                ; mov rax, QWORD slot
                ; mov rsp, [rax]
                ; mov rax, QWORD mslot
            );
            ops.extend(&epilogue); // MXCSR restored from [rax]
            dynasm!(ops
                ; .arch x64
                ; mov rax, [rsp]                // out
                ; mov [rax], rbx
                ; mov [rax + 8], rbp
                ; mov [rax + 16], r12
                ; mov [rax + 24], r13
                ; mov [rax + 32], r14
                ; mov [rax + 40], r15
                ; sub r11, rsp
                ; mov [rax + 48], r11
                ; add rsp, 8
                ; pop r15
                ; pop r14
                ; pop r13
                ; pop r12
                ; pop rbp
                ; pop rbx
                ; ret
            );
            let buffer = ops
                .finalize()
                .map_err(|_| Error::Runtime("cannot make the JIT code executable".into()))?;
            // SAFETY: `start` is the offset of the wrapper assembled above, which follows the
            // SysV calling convention with the signature of `Wrapper`.
            let entry: Wrapper = unsafe { std::mem::transmute(buffer.ptr(start)) };
            Ok(Jit {
                _code: buffer,
                entry,
                _rsp_slot: rsp_slot,
                _mxcsr_slot: mxcsr_slot,
                vectors,
            })
        }

        /// The vector registers the wrapper poisons.
        pub(super) fn vectors(&self) -> Vectors {
            self.vectors
        }

        /// Runs the kernel once on the array at `buf` under `poison`, writing rbx, rbp,
        /// r12-r15 and the rsp displacement to `out`.
        pub(super) fn call(&self, buf: *mut u8, poison: &Poison, out: &mut [u64; OUT_WORDS]) {
            // SAFETY: the wrapper restores every callee-saved register, rsp and MXCSR whatever
            // the kernel does to them, and writes only `out` and its two slots. The kernel
            // touches only `[buf + stride*k]` inside the array, which the caller checked statically;
            // `buf` points at the array inside a live buffer with guard words on both sides.
            // `poison` is a whole `Poison`, so every load of the prologue is in bounds.
            unsafe { (self.entry)(buf, poison, out.as_mut_ptr()) }
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod jit {
    //! Stand-in on CPUs that cannot run x86-64 code.

    use super::{Poison, OUT_WORDS};
    use crate::error::{Error, Result};

    pub(super) enum Jit {}

    /// No vector registers to poison off x86-64.
    #[derive(Clone, Copy)]
    pub(super) enum Vectors {}

    impl Vectors {
        pub(super) fn describe(self) -> &'static str {
            match self {}
        }
    }

    impl Jit {
        pub(super) fn new(_code: &[u8]) -> Result<Jit> {
            Err(Error::Runtime("stage 2 needs an x86-64 CPU".into()))
        }

        pub(super) fn call(&self, _: *mut u8, _: &Poison, _: &mut [u64; OUT_WORDS]) {
            match *self {}
        }

        pub(super) fn vectors(&self) -> Vectors {
            match *self {}
        }
    }
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use crate::isa::{encode, Element, Reg};

    /// A sorting network on `n` values as machine code (temporary: scratch register `n`).
    fn network(n: usize, comparators: &[(usize, usize)]) -> Vec<u8> {
        encode(&crate::game::network::network_kernel(
            &Reg::ALL,
            n,
            comparators,
        ))
    }

    const SORT3: &[(usize, usize)] = &[(0, 1), (1, 2), (0, 1)];

    fn quick() -> NativeConfig {
        NativeConfig {
            random: 1000,
            seed: 7,
        }
    }

    #[test]
    fn smallest_first_order_and_count() {
        let all: Vec<Vec<i32>> = smallest_first_tuples(3).collect();
        assert_eq!(all.len(), 27);
        assert_eq!(
            all[..8],
            [
                vec![0, 0, 0],
                vec![0, 0, 1],
                vec![0, 1, 0],
                vec![0, 1, 1],
                vec![1, 0, 0],
                vec![1, 0, 1],
                vec![1, 1, 0],
                vec![1, 1, 1],
            ]
        );
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 27);
        let maxima: Vec<i32> = all.iter().map(|t| *t.iter().max().unwrap()).collect();
        assert!(maxima.windows(2).all(|w| w[0] <= w[1]));
        assert_eq!(smallest_first_tuples(1).collect::<Vec<_>>(), vec![vec![0]]);
        assert_eq!(smallest_first_tuples(0).count(), 0);
        assert_eq!(smallest_first_tuples(5).count(), 3125);
    }

    #[test]
    fn extremes_enumerate_every_tuple_smallest_first() {
        let collect = |el| {
            let mut it = SmallestFirst::over(2, extremes(el));
            let mut all = Vec::new();
            while let Some(t) = it.next_tuple() {
                all.push(t.to_vec());
            }
            assert!(it.next_tuple().is_none());
            all
        };
        let all = collect(Element::I32);
        assert_eq!(all.len(), 49);
        assert_eq!(all[..4], [vec![0, 0], vec![0, 1], vec![1, 0], vec![1, 1]]);
        assert_eq!(all[4], vec![0, -1]);
        assert_eq!(all[48], vec![i32::MAX as i128, i32::MAX as i128]);
        let mut dedup = all.clone();
        dedup.sort();
        dedup.dedup();
        assert_eq!(dedup.len(), 49);
        assert_eq!(
            extremes(Element::I64),
            [
                0,
                1,
                -1,
                i64::MIN as i128,
                i64::MIN as i128 + 1,
                i64::MAX as i128 - 1,
                i64::MAX as i128
            ]
        );
        assert_eq!(
            extremes(Element::U32),
            [0, 1, u32::MAX as i128 - 1, u32::MAX as i128]
        );
        let all = collect(Element::U64);
        assert_eq!(all.len(), 16);
        assert_eq!(all[4], vec![0, u64::MAX as i128 - 1]);
        assert_eq!(all[15], vec![u64::MAX as i128, u64::MAX as i128]);
    }

    #[test]
    fn packed_elements_round_trip() {
        for el in Element::ALL {
            let mut w = vec![0u64; 4];
            let vals = extremes(el);
            for (k, &v) in vals.iter().take(4).enumerate() {
                put(&mut w, el, k, v);
            }
            for (k, &v) in vals.iter().take(4).enumerate() {
                assert_eq!(get(&w, el, k), v, "{el} element {k}");
            }
        }
        assert_eq!(wrap(Element::U32, -1), u32::MAX as i128);
        assert_eq!(wrap(Element::I32, u32::MAX as i128), -1);
    }

    #[test]
    fn random_tuples_are_reproducible_and_have_ties() {
        let collect = |seed| {
            let mut it = RandomTuples::new(4, Element::I32, 500, seed);
            let mut v = Vec::new();
            while let Some(t) = it.next_tuple() {
                v.push(t.to_vec());
            }
            v
        };
        let a = collect(3);
        assert_eq!(a.len(), 500);
        assert_eq!(a, collect(3));
        assert_ne!(a, collect(4));
        let with_ties = a
            .iter()
            .filter(|t| (1..4).any(|i| t[..i].contains(&t[i])))
            .count();
        assert!(with_ties > 100, "only {with_ties} tuples with ties");
        assert!(a.iter().flatten().any(|&x| x < -1000) && a.iter().flatten().any(|&x| x > 1000));
    }

    /// MXCSR bits a poison pattern may set: all six exception masks (so that nothing traps),
    /// rounding control (bits 13-14), flush-to-zero (15) and denormals-are-zero (6).
    const MXCSR_MASK: u64 = 0x1F80 | 0x6000 | 0x8000 | 0x40;

    #[test]
    fn poison_patterns_set_only_arithmetic_flags_and_differ() {
        for p in &POISONS {
            assert_eq!(p[8] & !FLAGS_MASK, 0);
            assert_eq!(p[8] & 0x2, 0x2);
            // Every exception masked, so that no poison makes a kernel trap.
            assert_eq!(p[9] & !MXCSR_MASK, 0);
            assert_eq!(p[9] & 0x1F80, 0x1F80);
        }
        let mxcsr: std::collections::HashSet<u64> = POISONS.iter().map(|p| p[9]).collect();
        assert_eq!(mxcsr.len(), POISONS.len());
        // Vector lanes differ between every two patterns, in every 32-bit lane.
        let vectors: Vec<Poison> = (0..POISONS.len()).map(Poison::new).collect();
        for (i, a) in vectors.iter().enumerate() {
            for b in &vectors[i + 1..] {
                for (ra, rb) in a.vectors.iter().zip(&b.vectors) {
                    for (x, y) in ra.iter().zip(rb) {
                        assert!(x & 0xFFFF_FFFF != y & 0xFFFF_FFFF && x >> 32 != y >> 32);
                    }
                }
            }
        }
        for (i, a) in POISONS.iter().enumerate() {
            for b in &POISONS[i + 1..] {
                assert!(a[..8].iter().zip(&b[..8]).all(|(x, y)| x != y));
            }
        }
    }

    #[test]
    fn failure_lines() {
        let f = NativeFailure::NotSorted {
            input: vec![1, 1, 0],
            output: vec![0, 1, 0],
        };
        assert_eq!(f.to_string(), "not sorted: [1,1,0] -> [0,1,0]");
        let f = NativeFailure::OutsideArray {
            input: vec![1, 0, 2],
            before: true,
        };
        assert_eq!(
            f.to_string(),
            "writes outside the array: guard word before it changed on [1,0,2]"
        );
        let f = NativeFailure::CalleeSaved {
            reg: "r12",
            input: vec![0],
        };
        assert_eq!(f.to_string(), "clobbers callee-saved r12");
        let f = NativeFailure::PoisonDependent {
            input: vec![0, 1, 2],
            outputs: (vec![0, 1, 2], vec![0, 0, 2]),
        };
        assert_eq!(
            f.to_string(),
            "result depends on leftover register values: [0,1,2] -> [0,1,2] or [0,0,2]"
        );
    }

    #[test]
    fn sort3_network_passes_with_full_report() {
        let report = run_native(
            &network(3, SORT3),
            3,
            Element::I32,
            &NativeConfig::default(),
        )
        .unwrap()
        .unwrap();
        assert_eq!(report.calls, (27 + 343 + 100_000) * 4);
        assert_eq!(
            report.checks,
            [
                "all 27 tuples over {0..2}^3",
                "all 343 tuples over {0, 1, -1, INT_MIN, INT_MIN+1, INT_MAX-1, INT_MAX}^3",
                "100000 random tuples (seed 0)",
                &format!("4 poison patterns for rax rcx rdx rsi r8-r11 (all 64 bits), the flags, {}, and MXCSR (rounding mode, FTZ, DAZ)", vectors_line()),
                "8 guard words on both sides of the array",
                "callee-saved rbx rbp r12-r15 and rsp preserved",
            ]
        );
    }

    /// What this CPU's wrapper poisons, as the report names it.
    fn vectors_line() -> &'static str {
        if std::arch::is_x86_feature_detected!("avx512f") {
            "zmm0-31 (all 512 bits) and k1-k7"
        } else if std::arch::is_x86_feature_detected!("avx") {
            "ymm0-15 (all 256 bits)"
        } else {
            "xmm0-15 (all 128 bits)"
        }
    }

    /// Machine code from Intel-syntax lines, through iced's assembler of GNU as.
    fn bytes(intel: &str) -> Vec<u8> {
        crate::asm::parse_str(intel, crate::asm::Syntax::Intel, "<test>")
            .unwrap()
            .code
    }

    #[test]
    fn vector_registers_are_poisoned_at_full_width() {
        // Reads the caller's upper half of ymm5 (or of zmm5's 256..511, or xmm5 on SSE-only
        // CPUs) into the array: must differ between poison patterns.
        let code = if std::arch::is_x86_feature_detected!("avx512f") {
            bytes("vextracti64x4 ymm0, zmm5, 1\nvmovd eax, xmm0\nmov [rdi], eax")
        } else if std::arch::is_x86_feature_detected!("avx") {
            bytes("vextractf128 xmm0, ymm5, 1\nvmovd eax, xmm0\nmov [rdi], eax")
        } else {
            bytes("movd eax, xmm5\nmov [rdi], eax")
        };
        let verdict = run_native(&code, 1, Element::I32, &quick()).unwrap();
        assert!(
            matches!(verdict, Err(NativeFailure::PoisonDependent { .. })),
            "{verdict:?}"
        );
        // A legacy SSE write defines only the low 128 bits: the upper ones still differ.
        if std::arch::is_x86_feature_detected!("avx") {
            let code = bytes(
                "pxor xmm5, xmm5\nvextractf128 xmm0, ymm5, 1\nvmovd eax, xmm0\nmov [rdi], eax",
            );
            let verdict = run_native(&code, 1, Element::I32, &quick()).unwrap();
            assert!(
                matches!(verdict, Err(NativeFailure::PoisonDependent { .. })),
                "{verdict:?}"
            );
        }
    }

    #[test]
    fn mxcsr_is_poisoned_and_restored() {
        // int -> float -> int rounds by MXCSR: INT_MAX comes back as INT_MIN (overflow) when
        // rounding up or to nearest, as 2147483520 when rounding down or toward zero.
        let code = bytes("mov eax, [rdi]\ncvtsi2ss xmm0, eax\ncvtss2si eax, xmm0\nmov [rdi], eax");
        let before = mxcsr();
        let verdict = run_native(&code, 1, Element::I32, &quick()).unwrap();
        assert!(
            matches!(verdict, Err(NativeFailure::PoisonDependent { .. })),
            "{verdict:?}"
        );
        assert_eq!(mxcsr(), before, "the wrapper restores the caller's MXCSR");
    }

    fn mxcsr() -> u32 {
        let mut m = 0u32;
        // SAFETY: stmxcsr stores 4 bytes at a valid, aligned address.
        unsafe { std::arch::asm!("stmxcsr [{}]", in(reg) &mut m) };
        m
    }

    #[test]
    fn missing_comparator_fails_on_a_small_input() {
        let verdict = run_native(&network(3, &SORT3[..2]), 3, Element::I32, &quick()).unwrap();
        assert_eq!(
            verdict.unwrap_err().to_string(),
            "not sorted: [1,1,0] -> [1,0,1]"
        );
    }

    #[test]
    fn bad_n_is_a_runtime_error() {
        for n in [0, 9] {
            let err = run_native(&[], n, Element::I32, &quick()).unwrap_err();
            assert!(matches!(err, Error::Runtime(_)), "{err}");
        }
    }
}
