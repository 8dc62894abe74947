//! The assembly front end of `superopt verify <task> <file> [--syntax att|intel]`: reads a
//! kernel written by a person (or a compiler) and turns it into machine code, decoded
//! instructions and, where possible, game moves.
//!
//! # Input
//!
//! One instruction per line for `void f(int32_t *buf)`: the array pointer is in `rdi`, and
//! there is no `ret` (a `ret` on the last instruction line is accepted and dropped; see
//! [`Kernel::ret_line`]). The accepted language is a strict subset of what GNU as reads, chosen
//! so that every accepted file means the same to GNU as (as a `.s` file, and as a `.S` file
//! through gcc's preprocessor) as it means here; anything else is refused with its line:
//!
//! * **Comments** start with `#` and run to the end of the line. `;` is refused (GNU as reads
//!   it as a statement separator, not a comment), and so is `/` outside comments (`//` is not
//!   a comment to GNU as on x86-64, `/` is division or a prefix separator). Refused anywhere,
//!   comments included: `/*` and `*/` (a comment that may span lines), a line ending in `\`
//!   (a line continuation to the preprocessor), a `#` line that the preprocessor or GNU as
//!   would act on (`#define`, `#include`, `#if`, ..., line markers, `#APP` / `#NO_APP`), and
//!   names C reserves (`__x`, `_X`: gcc's predefined macros, whose function-like ones swallow
//!   the lines after them).
//! * **Directives**: only `.intel_syntax noprefix`, `.att_syntax` and `.att_syntax prefix`.
//! * **Instruction lines** use only ASCII letters, digits, blanks and
//!   `% $ , ( ) [ ] + - * { } _`, plus `:` right after a segment register (`%es:(%rdi)`,
//!   `es:[rdi]`): no labels, no directives after a label, no `.`, no quotes, no `=`, no
//!   non-ASCII characters. Any symbol GNU as records (a name that is not a register or
//!   keyword) is refused after assembly, even one that cancels out (`x-x`).
//! * **Control characters** other than tab are refused anywhere, comments included (a CRLF
//!   line end is a line end); so is a byte-order mark.
//! * A file larger than [`MAX_FILE_BYTES`] is refused before it is read.
//!
//! # Design
//!
//! * **GNU as for fidelity.** The text is assembled by the system GNU assembler
//!   (`as --64`), so the bytes we verify are exactly the bytes a user's toolchain produces,
//!   with GNU as's own error messages ("no such instruction: `movz eax,ecx'") for bad lines.
//!   Warnings (e.g. an ambiguous operand size that GNU as resolves by default) are treated as
//!   errors: a verifier should not guess.
//! * **One label per line.** Each instruction line `k` is written to the temporary `.s`
//!   file as `__superopt_line_k: <text>`, after one prefix line that selects the syntax, so
//!   GNU as's line `k + 1` is the user's line `k`. The object's symbol table then gives the
//!   byte range of every source line, which we read from the ELF file directly (no
//!   `objcopy`, no listing to scrape). A line must assemble to exactly one instruction;
//!   relocations (references to symbols, e.g. a typo `mov eax, exc` that GNU as reads as a
//!   memory operand at symbol `exc`) are rejected with the symbol's name.
//! * **The whole file, once more.** After the line-by-line assembly, the file is assembled
//!   again as written (comments included, only the syntax line in front) by GNU as and, where
//!   gcc is installed, by `gcc -c -x assembler-with-cpp` ([`Kernel::cpp_checked`]); each
//!   `.text` must be byte for byte the code verified line by line, with no relocations: a
//!   check that what the user's toolchain builds is what we verify, whatever the filter missed.
//! * **Limits.** GNU as and gcc run with a time and memory limit ([`crate::tool::AS_LIMITS`]).
//! * **iced-x86 for decoding.** Each line's bytes are decoded with iced-x86; the decoded
//!   [`Instruction`]s feed [`Kernel::to_game`] (via [`Insn::from_iced`]) and the static
//!   safety check [`Kernel::check_safe`], which uses iced's instruction info (registers and
//!   memory used, with access kinds; flow control; CPUID features) rather than mnemonic lists
//!   where it can.

use crate::error::{Error, Result};
use crate::isa::{Element, Insn, BASELINE_FEATURES as BASELINE};
use iced_x86::{
    Code, CpuidFeature, Decoder, DecoderError, DecoderOptions, EncodingKind, FlowControl,
    Instruction, InstructionInfoFactory, Mnemonic, OpAccess, OpKind, Register, RflagsBits,
};
use std::fmt;
use std::path::Path;
use std::process::Command;
use std::str::FromStr;

/// The assembly syntax a kernel file starts in (a `.intel_syntax` / `.att_syntax` line in the
/// file switches it from there on, as in GNU as).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Syntax {
    /// GNU AT&T syntax (`mov %ecx, %eax`), GNU as's default.
    #[default]
    Att,
    /// Intel syntax without register prefixes (`mov eax, ecx`), as `.intel_syntax noprefix`.
    Intel,
}

impl Syntax {
    /// The name used on the command line: `att` or `intel`.
    pub fn name(self) -> &'static str {
        match self {
            Syntax::Att => "att",
            Syntax::Intel => "intel",
        }
    }

    /// The GNU as directive that selects this syntax.
    fn directive(self) -> &'static str {
        match self {
            Syntax::Att => ".att_syntax prefix",
            Syntax::Intel => ".intel_syntax noprefix",
        }
    }
}

impl fmt::Display for Syntax {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Syntax {
    type Err = String;

    /// Parses `att` or `intel` (case-insensitive).
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        if s.eq_ignore_ascii_case("att") {
            Ok(Syntax::Att)
        } else if s.eq_ignore_ascii_case("intel") {
            Ok(Syntax::Intel)
        } else {
            Err(format!("unknown syntax '{s}': expected att or intel"))
        }
    }
}

/// One parsed kernel: the instructions of a source file with their source lines, machine
/// code and iced-x86 decoding. The vectors `lines`, `text` and `decoded` are parallel.
#[derive(Clone, Debug)]
pub struct Kernel {
    /// The file's path, or `<string>`-like name given to [`parse_str`], for messages.
    pub source: String,
    /// 1-based source line of each instruction.
    pub lines: Vec<usize>,
    /// Source text of each instruction, comment removed and trimmed.
    pub text: Vec<String>,
    /// Machine code of the whole kernel, without the dropped trailing `ret`.
    pub code: Vec<u8>,
    /// Each instruction as decoded by iced-x86 (64-bit mode, IP = offset in `code`).
    pub decoded: Vec<Instruction>,
    /// The line of a trailing `ret` that was accepted and dropped (the caller appends its own
    /// `ret`), so the CLI can say so; `None` when the file had none.
    pub ret_line: Option<usize>,
    /// For a kernel parsed from text ([`parse_str`]): whether gcc was installed and built the
    /// text, as a `.S` file through its preprocessor, into the same bytes (GNU as always
    /// did). `None` for a kernel made some other way (e.g. cut out of an exported file).
    pub cpp_checked: Option<bool>,
}

/// When GNU as rejects a kernel read in one syntax whose text looks like the other (AT&T
/// without any `%register`, or Intel with them), a hint to add to the message, else "".
fn syntax_hint(lines: &[(usize, String)], syntax: Syntax) -> String {
    let percent = lines.iter().any(|(_, l)| l.contains('%'));
    match (syntax, percent) {
        (Syntax::Att, false) => {
            " (no %registers in the file: Intel syntax? try --syntax intel)".into()
        }
        (Syntax::Intel, true) => " (%registers in the file: AT&T syntax? try --syntax att)".into(),
        _ => String::new(),
    }
}

/// Prefix of the label put before each instruction line in the temporary `.s` file.
const LABEL: &str = "__superopt_line_";

/// Assembles `text` (a whole kernel, see the [module docs](self)) written in `syntax`.
/// `source` names the text in messages (a path, or e.g. `<string>`).
///
/// Errors: [`Error::Asm`] with the 1-based line of the first bad line (GNU as's message for
/// text it rejects, cleaned to one line; "no instructions" at line 1 for an empty kernel);
/// [`Error::Runtime`] when GNU as is missing or misbehaves.
pub fn parse_str(text: &str, syntax: Syntax, source: &str) -> Result<Kernel> {
    let asm_err = |line: usize, message: String| Error::Asm {
        path: source.to_string(),
        line,
        message,
    };

    // 1. Split into lines, strip comments, reject labels and directives textually.
    let mut problems: Vec<(usize, String)> = Vec::new();
    let mut insn_lines: Vec<(usize, String)> = Vec::new();
    let mut file = String::from(syntax.directive());
    file.push('\n');
    // GNU as rejects a byte-order mark ("invalid character (0xef) in mnemonic").
    if text.starts_with('\u{feff}') {
        return Err(asm_err(
            1,
            "a byte-order mark is not allowed: GNU as rejects it (save the file as UTF-8 without BOM)"
                .into(),
        ));
    }
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        // GNU as ends a statement at a NUL byte, so a control character could hide code
        // from the line-by-line checks.
        if let Some(c) = raw.chars().find(|&c| c.is_control() && c != '\t') {
            problems.push((
                line,
                format!("control character U+{:04X} is not allowed", c as u32),
            ));
            file.push('\n');
            continue;
        }
        if let Err(msg) = check_line_as_a_whole(raw) {
            problems.push((line, msg));
            file.push('\n');
            continue;
        }
        let stmt = strip_comment(raw).trim();
        match classify(stmt) {
            Ok(LineKind::Blank) => {}
            Ok(LineKind::Syntax) => file.push_str(stmt),
            Ok(LineKind::Insn) => {
                file.push_str(&format!("{LABEL}{line}: {stmt}"));
                insn_lines.push((line, stmt.to_string()));
            }
            Err(msg) => problems.push((line, msg)),
        }
        file.push('\n');
    }
    if insn_lines.is_empty() && problems.is_empty() {
        return Err(asm_err(1, "no instructions".into()));
    }

    // 2. Assemble with GNU as; its diagnostics compete with ours for the first line.
    let dir = tempfile::Builder::new()
        .prefix("superopt-asm")
        .tempdir()
        .map_err(|e| Error::Runtime(format!("cannot create a temporary directory: {e}")))?;
    let s_path = dir.path().join("kernel.s");
    std::fs::write(&s_path, &file).map_err(|e| Error::io(&s_path, e))?;
    let object = match run_as(dir.path())? {
        Ok(object) => Some(object),
        Err(diagnostics) => {
            let hint = syntax_hint(&insn_lines, syntax);
            problems.extend(diagnostics.into_iter().map(|(l, m)| (l, m + &hint)));
            None
        }
    };
    if let Some((line, msg)) = first(problems) {
        return Err(asm_err(line, msg));
    }
    let object = object.expect("GNU as succeeded without diagnostics");
    let object = read_object(&object)
        .map_err(|e| Error::Runtime(format!("cannot read GNU as output: {e}")))?;
    // Any symbol but our labels is a name GNU as took for one, even where it cancels out and
    // leaves no relocation (`sym-sym`); gcc's preprocessor may replace it (`__COUNTER__`).
    if let Some(name) = object
        .symbols
        .iter()
        .map(|(name, _, _, _)| name)
        .find(|name| !name.is_empty() && !name.starts_with(LABEL))
    {
        let line = insn_lines
            .iter()
            .find(|(_, t)| t.contains(name.as_str()))
            .map_or(1, |(l, _)| *l);
        return Err(asm_err(
            line,
            format!("refers to symbol '{name}'; symbols and labels are not allowed"),
        ));
    }

    // 3. Cut .text into per-line byte ranges and decode each.
    let mut starts = Vec::with_capacity(insn_lines.len());
    for (line, _) in &insn_lines {
        match object.labels.iter().find(|(l, _)| l == line) {
            Some(&(_, offset)) => starts.push(offset as usize),
            None => {
                let msg = "does not assemble to an instruction in .text".to_string();
                return Err(asm_err(*line, msg));
            }
        }
    }
    if starts.first().is_some_and(|&s| s != 0) {
        // Defence in depth: every byte of .text must belong to a checked line.
        return Err(asm_err(
            insn_lines[0].0,
            "code before the first instruction".into(),
        ));
    }
    let mut problems = Vec::new();
    let mut decoded = Vec::with_capacity(insn_lines.len());
    let mut code = Vec::new();
    for (i, (line, _)) in insn_lines.iter().enumerate() {
        let start = starts[i];
        let end = starts.get(i + 1).copied().unwrap_or(object.text.len());
        if start > end || end > object.text.len() {
            return Err(Error::Runtime(format!(
                "GNU as output has a bad label for line {line}"
            )));
        }
        if let Some((_, sym)) = object
            .relocs
            .iter()
            .find(|(off, _)| (start..end).contains(&(*off as usize)))
        {
            let what = if sym.is_empty() {
                "a symbol".to_string()
            } else {
                format!("symbol '{sym}'")
            };
            problems.push((
                *line,
                format!("refers to {what}; symbols and labels are not allowed"),
            ));
            continue;
        }
        let bytes = &object.text[start..end];
        match decode_one(bytes, code.len() as u64) {
            Ok(ins) => {
                code.extend_from_slice(bytes);
                decoded.push(ins);
            }
            Err(msg) => problems.push((*line, msg)),
        }
    }
    if let Some((line, msg)) = first(problems) {
        return Err(asm_err(line, msg));
    }

    // 4. The whole file as written must build to exactly these bytes.
    let as_written = format!("{}\n{text}\n", syntax.directive());
    let same_bytes = |built: &Object, who: &str| -> Result<()> {
        if built.text == code && built.all_relocs.is_empty() {
            return Ok(());
        }
        Err(asm_err(
            1,
            format!(
                "{who} into other bytes ({} bytes of .text) than its lines one by one ({} bytes)",
                built.text.len(),
                code.len()
            ),
        ))
    };
    std::fs::write(&s_path, &as_written).map_err(|e| Error::io(&s_path, e))?;
    let whole = match run_as(dir.path())? {
        Ok(object) => read_object(&object)
            .map_err(|e| Error::Runtime(format!("cannot read GNU as output: {e}")))?,
        Err(diagnostics) => {
            let (line, msg) = first(diagnostics).expect("diagnostics are not empty");
            return Err(asm_err(
                line,
                format!("GNU as rejects the file as written, though it accepts each line: {msg}"),
            ));
        }
    };
    same_bytes(&whole, "GNU as builds the file as written")?;

    // 5. And through gcc's preprocessor, as a .S file, where gcc is installed.
    let cpp_checked = gcc_installed();
    if cpp_checked {
        let s_cpp = dir.path().join("kernel.S");
        std::fs::write(&s_cpp, &as_written).map_err(|e| Error::io(&s_cpp, e))?;
        let out = crate::tool::run(
            Command::new("gcc")
                .args([
                    "-c",
                    "-x",
                    "assembler-with-cpp",
                    "-o",
                    "kernel_cpp.o",
                    "kernel.S",
                ])
                .current_dir(dir.path()),
            "gcc",
            crate::tool::AS_LIMITS,
        )?;
        let said = String::from_utf8_lossy(&out.stderr);
        if !out.status.success() || !said.trim().is_empty() {
            let first_line = said.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            return Err(asm_err(
                1,
                format!(
                    "gcc does not build the file as a .S file (through its preprocessor): {}",
                    first_line.trim()
                ),
            ));
        }
        let obj = dir.path().join("kernel_cpp.o");
        let bytes = std::fs::read(&obj).map_err(|e| Error::io(&obj, e))?;
        let built = read_object(&bytes)
            .map_err(|e| Error::Runtime(format!("cannot read gcc's output: {e}")))?;
        same_bytes(
            &built,
            "gcc builds the file as a .S file (through its preprocessor)",
        )?;
    }

    // 6. Drop a trailing `ret`.
    let (mut lines, mut texts): (Vec<usize>, Vec<String>) = insn_lines.into_iter().unzip();
    let mut ret_line = None;
    if decoded.last().is_some_and(|ins| ins.code() == Code::Retnq) {
        let ins = decoded.pop().expect("checked non-empty");
        code.truncate(code.len() - ins.len());
        ret_line = lines.pop();
        texts.pop();
    }
    if decoded.is_empty() {
        return Err(asm_err(1, "no instructions".into()));
    }
    Ok(Kernel {
        source: source.to_string(),
        lines,
        text: texts,
        code,
        decoded,
        ret_line,
        cpp_checked: Some(cpp_checked),
    })
}

/// Reads and assembles a kernel file; see [`parse_str`]. [`Error::Io`] if it cannot be read,
/// and [`Error::Asm`] (line 1) when it is larger than [`MAX_FILE_BYTES`].
pub fn parse_file(path: &Path, syntax: Syntax) -> Result<Kernel> {
    if std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.len() > MAX_FILE_BYTES) {
        return Err(Error::Asm {
            path: path.display().to_string(),
            line: 1,
            message: format!(
                "the file is larger than {} KiB, too large for a kernel",
                MAX_FILE_BYTES >> 10
            ),
        });
    }
    let text = crate::log::read_regular(path)?;
    if text
        .lines()
        .next()
        .is_some_and(|l| l.contains(crate::export::MARKER))
        && text.contains(".globl")
    {
        // An export (.S with directives, or a Rust module): say what to give instead.
        return Err(Error::Asm {
            path: path.display().to_string(),
            line: 1,
            message: "this file is an export (superopt export wrote it), not a kernel file of one instruction per line: use the instructions between its label and ret (or, for export, the search log it came from)".into(),
        });
    }
    parse_str(&text, syntax, &path.display().to_string())
}

/// Assembles a whole GNU as source file `text` (directives, labels and all, in whatever
/// syntax it selects; AT&T by default) and returns the machine code of the function
/// `symbol`: the `size` bytes at the symbol's value in its section, as `.size` declared them.
/// `source` names the text in messages.
///
/// Errors: [`Error::Asm`] with the 1-based line of GNU as's first diagnostic (warnings
/// included); [`Error::Runtime`] when GNU as is missing, or when `symbol` is undefined, has
/// no size, lies outside its section, or its bytes carry a relocation (they would depend on
/// where the linker puts something).
pub fn assemble_function(text: &str, symbol: &str, source: &str) -> Result<Vec<u8>> {
    let dir = tempfile::Builder::new()
        .prefix("superopt-asm")
        .tempdir()
        .map_err(|e| Error::Runtime(format!("cannot create a temporary directory: {e}")))?;
    let s_path = dir.path().join("kernel.s");
    // One blank line first: GNU as's line k + 1 is the text's line k (see parse_diagnostic).
    std::fs::write(&s_path, format!("\n{text}\n")).map_err(|e| Error::io(&s_path, e))?;
    let object = match run_as(dir.path())? {
        Ok(object) => object,
        Err(diagnostics) => {
            let (line, message) = first(diagnostics).expect("diagnostics are not empty");
            return Err(Error::Asm {
                path: source.to_string(),
                line,
                message,
            });
        }
    };
    let object = read_object(&object)
        .map_err(|e| Error::Runtime(format!("cannot read GNU as output: {e}")))?;
    let runtime = |why: String| Error::Runtime(format!("{source}: symbol '{symbol}' {why}"));
    let &(_, shndx, value, size) = object
        .symbols
        .iter()
        .find(|(name, shndx, _, _)| name == symbol && *shndx != 0 && *shndx < 0xff00)
        .ok_or_else(|| runtime("is not defined in a section".into()))?;
    if size == 0 {
        return Err(runtime("has no size (a .size directive)".into()));
    }
    let section = object
        .sections
        .get(shndx as usize)
        .ok_or_else(|| runtime("is in a bad section".into()))?;
    let end = value
        .checked_add(size)
        .filter(|&e| e <= section.len() as u64);
    let end = end.ok_or_else(|| runtime("extends past the end of its section".into()))?;
    if let Some((_, _, name)) = object
        .all_relocs
        .iter()
        .find(|(sec, off, _)| *sec == shndx as usize && (value..end).contains(off))
    {
        return Err(runtime(format!("refers to symbol '{name}' (a relocation)")));
    }
    Ok(section[value as usize..end as usize].to_vec())
}

impl Kernel {
    /// The kernel as game moves ([`Insn::from_iced`]) for a task with `n` array elements, or
    /// the first instruction that is not one, with its 1-based line and reason
    /// (`unsupported instruction sbb`).
    pub fn to_game(&self, n: usize) -> std::result::Result<Vec<Insn>, (usize, String)> {
        self.to_game_as(n, Element::I32)
    }

    /// [`Kernel::to_game`] for `n` elements of type `el` (64-bit registers and stride 8 for
    /// `i64`/`u64`).
    pub fn to_game_as(
        &self,
        n: usize,
        el: Element,
    ) -> std::result::Result<Vec<Insn>, (usize, String)> {
        let program: Vec<Insn> = self
            .decoded
            .iter()
            .zip(&self.lines)
            .map(|(ins, &line)| Insn::from_iced(ins, n, el).map_err(|reason| (line, reason)))
            .collect::<std::result::Result<_, _>>()?;
        // The game plays one register file per program: column i is a general-purpose
        // register or xmm{i}, never both.
        if let Some(first) = program.first() {
            if let Some(i) = program
                .iter()
                .position(|insn| insn.is_vector() != first.is_vector())
            {
                return Err((
                    self.lines[i],
                    "mixes general-purpose and vector moves (the game plays one register file per kernel)".into(),
                ));
            }
        }
        Ok(program)
    }

    /// Static safety check that must pass before any byte of the kernel runs on the CPU
    /// (stage 2 of the oracle), for an array of `n` i32 elements at `rdi`. Returns the
    /// 1-based line and reason of the first offending instruction.
    ///
    /// Each instruction must:
    /// * fall through (no jump, call, `ret`, `int`, `syscall`, `ud2`);
    /// * not be privileged or I/O, not `div`/`idiv` (divide error), not touch the stack
    ///   (`push`, `pop`, any use of `rsp`), not set the direction flag or load MXCSR;
    /// * need only CPU features that are x86-64 baseline or detected on this CPU, and none
    ///   that the verifier bans (x87, MMX, `rdtsc`, `rdrand`, ...);
    /// * access memory only through an explicit operand of the form `[rdi + disp]` (no index,
    ///   no `fs`/`gs`, no string instructions, no bit-string offsets) with every accessed
    ///   byte in `[0, 4n)`, else "reads outside the array" / "writes outside the array";
    ///   16-byte accesses that fault when misaligned (`movaps`, legacy SSE operands) are
    ///   rejected since `rdi`'s alignment is not known;
    /// * not write `rdi` or a segment register, and not write a callee-saved register other
    ///   than those in `saved` ("clobbers callee-saved rbx", naming the 64-bit register;
    ///   reading one is fine). `saved` holds the 64-bit callee-saved registers the task lists
    ///   as scratch: the function that runs the body pushes and pops them around it.
    pub fn check_safe(
        &self,
        n: usize,
        saved: &[Register],
    ) -> std::result::Result<(), (usize, String)> {
        self.check_safe_as(n, Element::I32, saved)
    }

    /// [`Kernel::check_safe`] for `n` elements of type `el`: accessed bytes in
    /// `[0, n * el.bytes())`, each access naturally aligned and no wider than an element
    /// (`rdi` is only known to be aligned to the element size).
    pub fn check_safe_as(
        &self,
        n: usize,
        el: Element,
        saved: &[Register],
    ) -> std::result::Result<(), (usize, String)> {
        self.check_safe_aligned(n, el, el.bytes(), saved, true)
    }

    /// [`Kernel::check_safe_as`] that lets instructions need CPU features this CPU lacks (but
    /// not features the verifier bans): for a kernel of game moves that the emulator proves
    /// and that is then reported "proved, not run" instead of running here.
    pub fn check_safe_unrun_as(
        &self,
        n: usize,
        el: Element,
        saved: &[Register],
    ) -> std::result::Result<(), (usize, String)> {
        self.check_safe_aligned(n, el, el.bytes(), saved, false)
    }

    /// [`Kernel::check_safe_as`] for an array that callers align to `align` bytes (a task's
    /// [`crate::task::Task::align`]; at least the element size): an access of up to `align`
    /// bytes at an offset it divides is aligned, and so is a 16-byte unaligned move (`movdqu`,
    /// `movups`, `movupd`, `lddqu` or their VEX forms, which raise no alignment-check fault at
    /// an 8-byte-aligned address: Intel SDM vol. 3A, 6.15, "Interrupt 17") when `align` is 8
    /// or more. With `run_here` false, instructions
    /// may need CPU features this CPU lacks ([`Kernel::check_safe_unrun_as`]).
    pub fn check_safe_aligned(
        &self,
        n: usize,
        el: Element,
        align: usize,
        saved: &[Register],
        run_here: bool,
    ) -> std::result::Result<(), (usize, String)> {
        let mut factory = InstructionInfoFactory::new();
        for (ins, &line) in self.decoded.iter().zip(&self.lines) {
            check_one(ins, n, el, align, saved, run_here, &mut factory)
                .map_err(|reason| (line, reason))?;
        }
        Ok(())
    }

    /// Checks that the kernel leaves the upper vector state clean: after its last write of a
    /// ymm or zmm register (a 256- or 512-bit operation) comes a `vzeroupper` or `vzeroall`.
    /// Dirty upper halves make the caller's later SSE code pay a state transition or a false
    /// dependency (Intel SDM vol. 1, 14.1.3; AMD's SOG for family 19h, 2.11.6), so the ABI
    /// expects functions to clean them. Writes of xmm registers (SSE, or VEX.128, which zeroes
    /// bits 128 and up) never dirty it. Returns the 1-based line of the last dirtying
    /// instruction and the reason.
    pub fn check_upper_clean(&self) -> std::result::Result<(), (usize, String)> {
        let mut dirty: Option<usize> = None;
        for (i, ins) in self.decoded.iter().enumerate() {
            if matches!(ins.mnemonic(), Mnemonic::Vzeroupper | Mnemonic::Vzeroall) {
                dirty = None;
                continue;
            }
            // The destination operand as written: iced-x86's used registers report a VEX.128
            // write as a write of the whole zmm register (it zeroes the upper bits), which
            // leaves the state clean.
            let dst = (ins.op_count() > 0 && ins.op0_kind() == OpKind::Register)
                .then(|| ins.op0_register());
            if dst.is_some_and(|r| r.is_ymm() || r.is_zmm()) {
                dirty = Some(i);
            }
        }
        match dirty {
            None => Ok(()),
            Some(i) => Err((
                self.lines[i],
                format!(
                    "leaves the upper vector state dirty: {} writes a {}-bit register and no vzeroupper follows",
                    mnemonic(&self.decoded[i]),
                    if self.decoded[i].op_register(0).is_zmm() { 512 } else { 256 }
                ),
            )),
        }
    }

    /// The CPU features the kernel's instructions need beyond the x86-64 baseline
    /// ([`crate::isa::features_of`]): `[SSE4_1]` for `pminsd`, `[AVX]` for `vpminsd`,
    /// `[AVX, AVX512F, AVX512VL]` for a `vmovq`/`vpminsq` kernel.
    pub fn features(&self) -> Vec<CpuidFeature> {
        crate::isa::features_of(&self.decoded)
    }

    /// The CPU features the kernel's instructions need that this CPU lacks
    /// ([`lacking`] of [`Kernel::features`]).
    pub fn missing_features(&self) -> Vec<CpuidFeature> {
        lacking(self.features())
    }

    /// Checks that every general-purpose register the kernel names, read or written, other
    /// than the array pointer `rdi`, is one of `scratch` (compared as 64-bit registers, so
    /// `r8`, `r8d` and `r8b` are all `r8d`'s), the task's scratch list. Vector and mask
    /// registers are not restricted (task files list general-purpose registers only; all of
    /// them are caller-saved). Returns the 1-based line and the reason of the first offender:
    /// `uses r8d, which task sort3 does not list as scratch (eax, ecx, edx)`.
    pub fn check_registers(
        &self,
        task: &str,
        scratch: &[Register],
    ) -> std::result::Result<(), (usize, String)> {
        let mut factory = InstructionInfoFactory::new();
        let allowed: Vec<Register> = scratch.iter().map(|r| r.full_register()).collect();
        for (ins, &line) in self.decoded.iter().zip(&self.lines) {
            for u in factory.info(ins).used_registers() {
                let r = u.register();
                let full = r.full_register();
                if !r.is_gpr() || full == Register::RDI || allowed.contains(&full) {
                    continue;
                }
                let mut names: Vec<String> = scratch
                    .iter()
                    .map(|r| format!("{r:?}").to_lowercase())
                    .collect();
                if names.is_empty() {
                    names.push("none: a vector task's kernels use xmm registers".into());
                }
                // Name the register as the instruction writes it (iced reports `r8` for a
                // write of `r8d`, which zero-extends).
                let shown = (0..ins.op_count())
                    .filter(|&k| ins.op_kind(k) == OpKind::Register)
                    .map(|k| ins.op_register(k))
                    .find(|o| o.full_register() == full)
                    .unwrap_or(r);
                return Err((
                    line,
                    format!(
                        "uses {}, which task {task} does not list as scratch ({})",
                        register_name(shown),
                        names.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Rejects a kernel whose result could depend on state the caller left behind, which
    /// stage 2 cannot vary enough to catch. For kernels outside the game's ISA, which the
    /// emulator cannot check. Errors carry the 1-based source line. Refused:
    ///
    /// * reading a register, or part of one, before writing it. Definedness is tracked per
    ///   register as a defined low part: a 32- or 64-bit write defines the whole GPR, an 8-
    ///   or 16-bit write only its low 1 or 2 bytes (`ah`-style writes define nothing new); a
    ///   VEX or EVEX write of an xmm/ymm/zmm register defines all 512 bits (they zero the rest),
    ///   a legacy SSE write only the low 128 (bits 128 and up keep the caller's values); a
    ///   conditional write (`cmovcc` whose condition fails, merge-masked EVEX) defines nothing,
    ///   and a result the Intel SDM leaves undefined (`bsf`/`bsr` of zero, ...: see
    ///   `undefined_result`) makes its destination undefined (refused for a memory
    ///   destination). `xor r, r`, `sub r, r`, `sbb r, r` (which reads only CF), `pxor x, x`
    ///   and the other same-register idioms in [`SAME_REGISTER_IDIOMS`] do not read `r`;
    /// * reading a flag no instruction has defined: flags an instruction leaves undefined
    ///   (iced-x86's `rflags_undefined`, e.g. SF after `imul`, and those of
    ///   `undefined_result`) are undefined after it; a shift or rotate whose count is `cl`
    ///   may leave every flag it writes unchanged, so a flag is defined after it only if it was
    ///   before and the shift defines it too; one whose immediate masks to 0 changes no flag;
    ///   `rcl`/`rcr` by 9 or 17 keep CF and leave OF undefined;
    /// * the array pointer as a value: `rdi` as a register operand, or as the base or index of
    ///   `lea` (the address differs between heap and stack buffers); a `rip`-relative `lea`
    ///   (a code address);
    /// * reading a segment register, and instructions whose result depends on control state
    ///   the caller owns: MXCSR (floating-point arithmetic, comparisons and conversions, see
    ///   [`depends_on_mxcsr`]; `stmxcsr`) and the descriptor tables (`lar`, `lsl`, `verr`,
    ///   `verw`).
    pub fn check_defined(&self) -> std::result::Result<(), (usize, String)> {
        self.first_undefined_read()
            .map_err(|(i, reason)| (self.lines[i], reason))
    }

    fn first_undefined_read(&self) -> std::result::Result<(), (usize, String)> {
        let mut factory = InstructionInfoFactory::new();
        let mut state = Defined::default();
        for (i, ins) in self.decoded.iter().enumerate() {
            let m = mnemonic(ins);
            if matches!(ins.mnemonic(), Mnemonic::Stmxcsr | Mnemonic::Vstmxcsr) {
                return Err((i, format!("{m} reads MXCSR, which the caller owns")));
            }
            if depends_on_mxcsr(ins) {
                return Err((
                    i,
                    format!(
                        "{m} depends on MXCSR (rounding mode, denormal handling), which the caller owns"
                    ),
                ));
            }
            if matches!(
                ins.mnemonic(),
                Mnemonic::Lar | Mnemonic::Lsl | Mnemonic::Verr | Mnemonic::Verw
            ) {
                return Err((
                    i,
                    format!("{m} reads the descriptor tables, which the operating system owns"),
                ));
            }
            if ins.mnemonic() == Mnemonic::Lea {
                let uses = |r: Register| {
                    ins.memory_base().full_register() == r
                        || ins.memory_index().full_register() == r
                };
                if uses(Register::RDI) {
                    return Err((
                        i,
                        "lea computes the array's address as a value (it differs between heap and stack buffers)".into(),
                    ));
                }
                if uses(Register::RIP) || ins.is_ip_rel_memory_operand() {
                    return Err((i, "lea computes a code address as a value".into()));
                }
            }
            if undefined_result(ins).0 && ins.op0_kind() == OpKind::Memory {
                return Err((
                    i,
                    format!(
                        "{m} leaves its memory destination undefined for some inputs (Intel SDM)"
                    ),
                ));
            }
            let idiom = is_same_register_idiom(ins);
            let info = factory.info(ins);
            if matches!(ins.mnemonic(), Mnemonic::Vzeroupper | Mnemonic::Vzeroall) {
                // iced lists the registers as read (their low halves are kept), but no value
                // depends on them: an undefined low half simply stays undefined.
                state.step(ins, info.used_registers(), idiom);
                continue;
            }
            let value_reads_rdi = (0..ins.op_count()).any(|k| {
                ins.op_kind(k) == OpKind::Register
                    && ins.op_register(k).full_register() == Register::RDI
            });
            if value_reads_rdi {
                return Err((i, "uses the array pointer rdi as a value".into()));
            }
            for u in info.used_registers() {
                let r = u.register();
                let reads = matches!(
                    u.access(),
                    OpAccess::Read
                        | OpAccess::ReadWrite
                        | OpAccess::CondRead
                        | OpAccess::ReadCondWrite
                );
                if !reads || (idiom && is_explicit_operand(ins, r)) {
                    continue;
                }
                if r.full_register() == Register::RDI {
                    continue; // a memory base: check_safe allows only [rdi + disp]
                }
                if r.is_segment_register() {
                    let name = register_name(r);
                    return Err((i, format!("reads segment register {name}")));
                }
                if !state.covers(r) {
                    let name = register_name(r);
                    return Err((i, format!("reads {name} before writing it")));
                }
            }
            if ins.rflags_read() & !state.flags != 0 {
                return Err((
                    i,
                    "reads flags that are undefined here (never set, or left undefined by an instruction such as imul)".into(),
                ));
            }
            state.step(ins, info.used_registers(), idiom);
        }
        Ok(())
    }
}

/// Instructions that, with the same register in every source operand (`xor eax, eax`,
/// `vpxor xmm1, xmm2, xmm2`), compute a constant (or, for `sbb`, a value of CF alone) without
/// reading that register, as the CPU's own zero idioms do.
pub const SAME_REGISTER_IDIOMS: [Mnemonic; 42] = [
    Mnemonic::Xor,
    Mnemonic::Sub,
    Mnemonic::Sbb,
    Mnemonic::Pxor,
    Mnemonic::Xorps,
    Mnemonic::Xorpd,
    Mnemonic::Vpxor,
    Mnemonic::Vpxord,
    Mnemonic::Vpxorq,
    Mnemonic::Vxorps,
    Mnemonic::Vxorpd,
    Mnemonic::Pandn,
    Mnemonic::Vpandn,
    Mnemonic::Andnps,
    Mnemonic::Andnpd,
    Mnemonic::Vandnps,
    Mnemonic::Vandnpd,
    Mnemonic::Psubb,
    Mnemonic::Psubw,
    Mnemonic::Psubd,
    Mnemonic::Psubq,
    Mnemonic::Vpsubb,
    Mnemonic::Vpsubw,
    Mnemonic::Vpsubd,
    Mnemonic::Vpsubq,
    Mnemonic::Pcmpeqb,
    Mnemonic::Pcmpeqw,
    Mnemonic::Pcmpeqd,
    Mnemonic::Pcmpeqq,
    Mnemonic::Vpcmpeqb,
    Mnemonic::Vpcmpeqw,
    Mnemonic::Vpcmpeqd,
    Mnemonic::Vpcmpeqq,
    Mnemonic::Pcmpgtb,
    Mnemonic::Pcmpgtw,
    Mnemonic::Pcmpgtd,
    Mnemonic::Pcmpgtq,
    Mnemonic::Vpcmpgtb,
    Mnemonic::Vpcmpgtw,
    Mnemonic::Vpcmpgtd,
    Mnemonic::Vpcmpgtq,
    Mnemonic::Psubsb,
];

/// Whether `ins` is one of [`SAME_REGISTER_IDIOMS`] with one register in all its source
/// operands (all register operands after the destination, or both for a two-operand form).
fn is_same_register_idiom(ins: &Instruction) -> bool {
    if !SAME_REGISTER_IDIOMS.contains(&ins.mnemonic()) {
        return false;
    }
    let count = ins.op_count();
    if count < 2 || (0..count).any(|k| ins.op_kind(k) != OpKind::Register) {
        return false;
    }
    // Two operands: `op0 op= op1`, both sources. Three: `op0 = op1 op op2`.
    let sources: Vec<Register> = if count == 2 {
        vec![ins.op_register(0), ins.op_register(1)]
    } else {
        (1..count).map(|k| ins.op_register(k)).collect()
    };
    // EVEX compares into a mask register (`vpcmpeqd k1, zmm0, zmm0`) still read no data, but
    // a write mask would merge: only unmasked forms count.
    sources.windows(2).all(|w| w[0] == w[1]) && ins.op_mask() == Register::None
}

/// Whether `r` is one of `ins`'s explicit register operands.
fn is_explicit_operand(ins: &Instruction, r: Register) -> bool {
    (0..ins.op_count()).any(|k| ins.op_kind(k) == OpKind::Register && ins.op_register(k) == r)
}

/// Whether the result of `ins` may depend on MXCSR (rounding control, flush-to-zero,
/// denormals-are-zero): SSE/AVX floating-point arithmetic, comparisons, conversions and the
/// like. Recognised from the mnemonic (iced-x86 does not list MXCSR as a register): every
/// `cvt*`, and every mnemonic ending in `ps`, `pd`, `ss`, `sd`, `ph`, `sh` or containing
/// `bf16`, except packed-integer instructions (those starting with `p` after an optional `v`:
/// `pminsd`, `pabsd`, `vpermps`) and the bitwise moves, logic, shuffles and blends, which
/// copy bits without interpreting them ([`MXCSR_FREE`]).
pub fn depends_on_mxcsr(ins: &Instruction) -> bool {
    // Only SSE/AVX-family instructions read MXCSR (clflush is not a float op).
    let simd = ins.cpuid_features().iter().any(|f| {
        let f = format!("{f:?}");
        f.starts_with("SSE") || f.starts_with("AVX") || f == "FMA" || f == "F16C"
    });
    if !simd {
        return false;
    }
    let name = mnemonic(ins);
    let base = match ins.encoding() {
        EncodingKind::Legacy => name.as_str(),
        _ => name.strip_prefix('v').unwrap_or(&name),
    };
    if base.starts_with("cvt") {
        return true;
    }
    if base.starts_with('p') || MXCSR_FREE.contains(&base) {
        return false;
    }
    ["ps", "pd", "ss", "sd", "ph", "sh"]
        .iter()
        .any(|suffix| base.ends_with(suffix))
        || base.contains("bf16")
}

/// Floating-point-domain instructions (mnemonics without a leading `v`) that only move,
/// mask, shuffle or blend bits, so that MXCSR cannot change their result.
pub const MXCSR_FREE: [&str; 50] = [
    "movaps",
    "movups",
    "movapd",
    "movupd",
    "movss",
    "movsd",
    "movhps",
    "movlps",
    "movhpd",
    "movlpd",
    "movhlps",
    "movlhps",
    "movshdup",
    "movsldup",
    "movddup",
    "movmskps",
    "movmskpd",
    "andps",
    "andpd",
    "andnps",
    "andnpd",
    "orps",
    "orpd",
    "xorps",
    "xorpd",
    "shufps",
    "shufpd",
    "unpcklps",
    "unpckhps",
    "unpcklpd",
    "unpckhpd",
    "blendps",
    "blendpd",
    "blendvps",
    "blendvpd",
    "insertps",
    "extractps",
    "broadcastss",
    "broadcastsd",
    "compressps",
    "compresspd",
    "expandps",
    "expandpd",
    "maskmovps",
    "maskmovpd",
    "blendmps",
    "blendmpd",
    "testps",
    "testpd",
    "movsh",
];

/// What [`Kernel::check_defined`] knows is defined after a prefix of the kernel.
#[derive(Default)]
struct Defined {
    /// Per GPR (by number 0-15): how many low bytes are defined (0, 1, 2 or 8).
    gpr: [u8; 16],
    /// Per vector register (0-31): how many low bytes are defined (0, 16 or 64).
    vec: [u8; 32],
    /// Mask registers k0-k7 that are defined, as bits.
    k: u8,
    /// RFLAGS bits that hold defined values.
    flags: u32,
}

impl Defined {
    /// Whether reading `r` (whole, at its size) reads only defined bits.
    fn covers(&self, r: Register) -> bool {
        let size = r.size() as u8;
        if r.is_gpr() {
            let need = if is_high_byte(r) { 2 } else { size };
            self.gpr[r.full_register().number()] >= need
        } else if r.is_xmm() || r.is_ymm() || r.is_zmm() {
            self.vec[r.number()] >= size
        } else if r.is_k() {
            self.k & (1 << r.number()) != 0
        } else {
            false
        }
    }

    /// The state after `ins`, whose register uses are `used` (`idiom`: a same-register idiom,
    /// which writes its destination unconditionally).
    fn step(&mut self, ins: &Instruction, used: &[iced_x86::UsedRegister], idiom: bool) {
        // Flags: undefined ones become undefined; written ones defined unless the write is
        // conditional on a count that may be zero.
        let written = ins.rflags_written() | ins.rflags_cleared() | ins.rflags_set();
        match shift_count(ins) {
            ShiftCount::Zero => {}
            // Zero at run time: the flags keep their old values; else as written. Defined
            // after only if defined both ways.
            ShiftCount::Variable => {
                self.flags &= !ins.rflags_modified() | (written & !ins.rflags_undefined());
            }
            // rcl/rcr of a byte (word) by a masked count of 9 (17) rotate by 0: CF keeps its
            // old value and OF is undefined (the masked count is not 1), whatever iced says.
            ShiftCount::NonZero if rotates_by_zero(ins) => {
                self.flags &= !RflagsBits::OF;
            }
            ShiftCount::NotAShift | ShiftCount::NonZero => {
                self.flags = (self.flags | written) & !ins.rflags_undefined();
            }
        }
        if matches!(ins.mnemonic(), Mnemonic::Vzeroall) {
            for v in &mut self.vec[..16] {
                *v = 64;
            }
            return;
        }
        if matches!(ins.mnemonic(), Mnemonic::Vzeroupper) {
            for v in &mut self.vec[..16] {
                if *v >= 16 {
                    *v = 64;
                }
            }
            return;
        }
        let (dest_undefined, flags_undefined) = undefined_result(ins);
        self.flags &= !flags_undefined;
        for u in used {
            let r = u.register();
            let unconditional = u.access() == OpAccess::Write
                || u.access() == OpAccess::ReadWrite
                || (idiom && is_explicit_operand(ins, r) && r == ins.op_register(0));
            if !unconditional {
                continue;
            }
            if r.is_gpr() {
                // By the 64-bit register: iced numbers byte registers apart (sil is 10).
                let d = &mut self.gpr[r.full_register().number()];
                *d = match r.size() {
                    4 | 8 => 8,
                    2 => (*d).max(2),
                    _ if is_high_byte(r) => {
                        if *d >= 1 {
                            (*d).max(2)
                        } else {
                            *d
                        }
                    }
                    _ => (*d).max(1),
                };
            } else if r.is_xmm() || r.is_ymm() || r.is_zmm() {
                let d = &mut self.vec[r.number()];
                *d = if ins.encoding() == EncodingKind::Legacy {
                    (*d).max(16)
                } else {
                    64
                };
            } else if r.is_k() {
                self.k |= 1 << r.number();
            }
        }
        if dest_undefined && ins.op0_kind() == OpKind::Register && ins.op0_register().is_gpr() {
            self.gpr[ins.op0_register().full_register().number()] = 0;
        }
    }
}

/// Whether `ins` is `rcl`/`rcr` of 8 or 16 bits by an immediate whose masked count is a
/// non-zero multiple of 9 or 17: `tempCOUNT := (COUNT AND 1FH) MOD 9` (or 17) is 0, so nothing
/// rotates (Intel SDM vol. 2, RCL/RCR/ROL/ROR Operation).
fn rotates_by_zero(ins: &Instruction) -> bool {
    let width = operand_width(ins);
    matches!(ins.mnemonic(), Mnemonic::Rcl | Mnemonic::Rcr)
        && width < 4
        && masked_count(ins).is_some_and(|c| c != 0 && c % (width * 8 + 1) == 0)
}

/// The size in bytes of `ins`'s first operand (a register, else its memory operand).
fn operand_width(ins: &Instruction) -> u64 {
    (match ins.op0_kind() {
        OpKind::Register => ins.op0_register().size(),
        _ => ins.memory_size().size(),
    }) as u64
}

/// The count of a shift or rotate `ins` as the CPU masks it (to 5 bits, 6 for a 64-bit
/// operand; before `rcl`/`rcr` take it modulo 9 or 17), or `None` for a count in `cl`.
fn masked_count(ins: &Instruction) -> Option<u64> {
    let last = ins.op_count() - 1;
    let count = match ins.op_kind(last) {
        OpKind::Register if ins.op_count() > 1 => return None,
        OpKind::Immediate8 => ins.immediate8() as u64,
        // `shl eax` (implicit count 1) has op_count 1 in some forms; D1-encoded shifts by 1.
        _ if ins.op_count() == 1 => 1,
        _ => ins.immediate(last),
    };
    Some(count & if operand_width(ins) == 8 { 0x3f } else { 0x1f })
}

/// Results the Intel SDM (vol. 2, each instruction's Operation and Flags Affected) leaves
/// undefined, which differ between CPUs and so between the caller's machines: whether the
/// destination (operand 0) may be undefined, and which flags may be (also those an earlier
/// SDM revision left undefined: ZF after the bit tests). `bsf`/`bsr` of zero (AMD
/// keeps the destination, Intel documents it as undefined); `shld`/`shrd` of 16 bits by a
/// count above 16 (destination and flags); `shl`/`shr`/`sal`/`sar` of 8 or 16 bits by a count
/// of at least the width (CF); `bswap` of 16 bits. A count in `cl` counts as any count.
fn undefined_result(ins: &Instruction) -> (bool, u32) {
    use Mnemonic as M;
    let width = operand_width(ins);
    let count = || masked_count(ins);
    match ins.mnemonic() {
        // Current SDMs say ZF is unaffected by bt/bts/btr/btc; older ones (253666-024US)
        // call OF SF ZF AF PF undefined: all count as undefined.
        M::Bt | M::Bts | M::Btr | M::Btc => (
            false,
            RflagsBits::OF | RflagsBits::SF | RflagsBits::ZF | RflagsBits::AF | RflagsBits::PF,
        ),
        M::Bsf | M::Bsr => (true, 0),
        M::Bswap if width == 2 => (true, 0),
        M::Shld | M::Shrd if width == 2 && count().map_or(true, |c| c > 16) => {
            (true, ins.rflags_modified())
        }
        M::Shl | M::Shr | M::Sal | M::Sar
            if width < 4 && count().map_or(true, |c| c >= width * 8) =>
        {
            (false, RflagsBits::CF)
        }
        _ => (false, 0),
    }
}

/// A register's name as GNU as and Intel's manuals write it: lower case, with `r8b`-`r15b`
/// for iced-x86's `R8L`-`R15L`.
fn register_name(r: Register) -> String {
    let name = format!("{r:?}").to_lowercase();
    match name.strip_suffix('l') {
        Some(stem) if stem.starts_with('r') && stem[1..].parse::<u8>().is_ok() => {
            format!("{stem}b")
        }
        _ => name,
    }
}

/// `ah`, `bh`, `ch` or `dh`.
fn is_high_byte(r: Register) -> bool {
    matches!(r, Register::AH | Register::BH | Register::CH | Register::DH)
}

/// The count of a shift or rotate, as far as it decides whether flags change.
enum ShiftCount {
    NotAShift,
    /// An immediate that the CPU masks to 0: no flag changes.
    Zero,
    /// An immediate that masks to a non-zero count.
    NonZero,
    /// A count in `cl`: zero or not at run time.
    Variable,
}

/// Classifies `ins`'s count if it is a shift or rotate (`shl`, `sar`, `rol`, `rcr`, `shld`,
/// ...; not the flagless BMI2 forms), by its [`masked_count`] (Intel SDM vol. 2,
/// SAL/SAR/SHL/SHR and RCL/RCR/ROL/ROR: "If the masked count is 0, the flags are not
/// affected").
fn shift_count(ins: &Instruction) -> ShiftCount {
    use Mnemonic as M;
    if !matches!(
        ins.mnemonic(),
        M::Shl | M::Sal | M::Shr | M::Sar | M::Rol | M::Ror | M::Rcl | M::Rcr | M::Shld | M::Shrd
    ) {
        return ShiftCount::NotAShift;
    }
    match masked_count(ins) {
        None => ShiftCount::Variable,
        Some(0) => ShiftCount::Zero,
        Some(_) => ShiftCount::NonZero,
    }
}

/// What a comment-free, trimmed source line is.
enum LineKind {
    Blank,
    /// `.intel_syntax ...` or `.att_syntax ...`, passed through to GNU as.
    Syntax,
    /// Anything else: handed to GNU as, which must make one instruction of it.
    Insn,
}

/// Whether `gcc` runs here (checked once per process).
fn gcc_installed() -> bool {
    static INSTALLED: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *INSTALLED.get_or_init(|| {
        crate::tool::run(
            Command::new("gcc").arg("--version"),
            "gcc",
            crate::tool::AS_LIMITS,
        )
        .is_ok_and(|o| o.status.success())
    })
}

/// Largest kernel file [`parse_file`] reads: 1 MiB (a kernel is a few hundred short lines).
pub const MAX_FILE_BYTES: u64 = 1 << 20;

/// Words that make a `#` line a directive of gcc's preprocessor (for a `.S` file), or a
/// switch of GNU as's own preprocessor (`APP`, `NO_APP`).
const HASH_DIRECTIVES: [&str; 22] = [
    "define",
    "undef",
    "include",
    "include_next",
    "import",
    "if",
    "ifdef",
    "ifndef",
    "elif",
    "elifdef",
    "elifndef",
    "else",
    "endif",
    "line",
    "error",
    "warning",
    "pragma",
    "ident",
    "sccs",
    "assert",
    "unassert",
    "embed",
];

/// Checks of a raw source line that concern comments too: what gcc's preprocessor (for a
/// `.S` file) or GNU as would read differently from us even inside a comment.
fn check_line_as_a_whole(raw: &str) -> std::result::Result<(), String> {
    if raw.contains("/*") || raw.contains("*/") {
        return Err(
            "'/*' and '*/' are not allowed, even in a comment: GNU as and gcc's preprocessor read them as a comment that may span lines".into(),
        );
    }
    if raw.trim_end().ends_with('\\') {
        return Err(
            "a line may not end in '\\': gcc's preprocessor joins it with the next line".into(),
        );
    }
    if let Some(name) = reserved_identifier(raw) {
        return Err(format!(
            "'{name}' is not allowed, even in a comment: names starting with '_' and a capital or a second '_' are gcc's, and its preprocessor may expand them (a function-like macro swallows the lines after it)"
        ));
    }
    if let Some(rest) = raw.trim_start().strip_prefix('#') {
        let rest = rest.trim_start();
        let word_end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let word = &rest[..word_end];
        if word == "APP" || word == "NO_APP" {
            return Err(format!(
                "#{word} is not allowed: it switches GNU as's preprocessor (write comments as '# text')"
            ));
        }
        if word.starts_with(|c: char| c.is_ascii_digit()) {
            return Err(
                "'# NUMBER' is a line marker to gcc's preprocessor and GNU as (write comments as '# text')".into(),
            );
        }
        if HASH_DIRECTIVES.contains(&word) {
            return Err(format!(
                "#{word} is a preprocessor directive when the file is built as .S by gcc (write comments as '# text')"
            ));
        }
    }
    Ok(())
}

/// The first identifier in `line` that C reserves for the implementation (`__x`, `_X`), such
/// as the macros gcc predefines (`__INT8_C(`, `_Pragma`, `__COUNTER__`); our own labels
/// (`__superopt_line_N`) are among them.
fn reserved_identifier(line: &str) -> Option<&str> {
    let bytes = line.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        if c.is_ascii_alphanumeric() || c == b'_' {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                i += 1;
            }
            let word = &line[start..i];
            let w = word.as_bytes();
            if w[0] == b'_' && w.len() > 1 && (w[1] == b'_' || w[1].is_ascii_uppercase()) {
                return Some(word);
            }
        } else {
            i += 1;
        }
    }
    None
}

/// Cuts a line at the first `#`, the only comment character (see the [module docs](self)).
fn strip_comment(line: &str) -> &str {
    &line[..line.find('#').unwrap_or(line.len())]
}

/// Segment registers, the only words a `:` may follow in an instruction line.
const SEGMENTS: [&str; 6] = ["cs", "ds", "es", "fs", "gs", "ss"];

/// Characters an instruction line may hold besides ASCII letters, digits and blanks.
const INSN_PUNCTUATION: &str = "%$,()[]+-*{}_:";

fn classify(stmt: &str) -> std::result::Result<LineKind, String> {
    if stmt.is_empty() {
        return Ok(LineKind::Blank);
    }
    let word_end = stmt
        .find(|c: char| !(c.is_ascii_alphanumeric() || "_.$".contains(c)))
        .unwrap_or(stmt.len());
    let word = &stmt[..word_end];
    if word.starts_with('.') {
        let words: Vec<String> = stmt
            .split_whitespace()
            .map(str::to_ascii_lowercase)
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        if matches!(
            words.as_slice(),
            [".intel_syntax", "noprefix"] | [".att_syntax"] | [".att_syntax", "prefix"]
        ) {
            return Ok(LineKind::Syntax);
        }
        if matches!(
            words.first().copied(),
            Some(".intel_syntax" | ".att_syntax")
        ) {
            return Err(format!(
                "'{}' is not allowed (only .intel_syntax noprefix, .att_syntax and .att_syntax prefix)",
                stmt.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
        return Err(format!(
            "directive {word} is not allowed (only .intel_syntax noprefix and .att_syntax)"
        ));
    }
    for (at, c) in stmt.char_indices() {
        if c.is_ascii_alphanumeric() || c == ' ' || c == '\t' || INSN_PUNCTUATION.contains(c) {
            if c == ':' {
                check_colon(stmt, at)?;
            }
            continue;
        }
        return Err(match c {
            ';' => "';' is not allowed: GNU as reads it as a statement separator, not a comment (one instruction per line; comments start with '#')".into(),
            '/' => "'/' is not allowed: GNU as reads it as division or a prefix separator, not a comment (comments start with '#')".into(),
            '.' => "'.' is not allowed in an instruction (no directives, no location counter)".into(),
            '"' | '\'' => "quoted strings and characters are not allowed".into(),
            '=' => format!("symbol assignment {word} = ... is not allowed"),
            c if !c.is_ascii() => format!(
                "non-ASCII character '{c}' (U+{:04X}) is only allowed in comments",
                c as u32
            ),
            c => format!("character '{c}' is not allowed in an instruction"),
        });
    }
    Ok(LineKind::Insn)
}

/// A `:` at byte `at` of an instruction line must follow a segment register (`%es:`,
/// `es:`); anything else would be a label (or GNU as's `name:` syntax for one).
fn check_colon(stmt: &str, at: usize) -> std::result::Result<(), String> {
    let before = stmt[..at].trim_end();
    let start = before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .map_or(0, |i| i + 1);
    let name = &before[start..];
    if SEGMENTS.contains(&name.to_ascii_lowercase().as_str()) {
        return Ok(());
    }
    if name.is_empty() {
        return Err("':' is only allowed after a segment register".into());
    }
    Err(format!(
        "label {name}: is not allowed (one instruction per line, no branches)"
    ))
}

/// The diagnostic with the smallest line (the earliest one on ties).
fn first(mut problems: Vec<(usize, String)>) -> Option<(usize, String)> {
    problems.sort_by_key(|(line, _)| *line);
    problems.into_iter().next()
}

/// Diagnostics as `(user line, one-line message)`.
type Diagnostics = Vec<(usize, String)>;

/// Runs `as --64 -o kernel.o kernel.s` in `dir`. Outer error: GNU as missing or failing
/// without line diagnostics. Inner: `Ok(object bytes)` or `Err(diagnostics by user line)`.
fn run_as(dir: &Path) -> Result<std::result::Result<Vec<u8>, Diagnostics>> {
    run_assembler("as", dir)
}

/// [`run_as`] with the assembler's program name as a parameter (for tests). GNU as runs
/// under [`crate::tool::AS_LIMITS`].
fn run_assembler(program: &str, dir: &Path) -> Result<std::result::Result<Vec<u8>, Diagnostics>> {
    let out = gnu_as(program, "kernel.s", "kernel.o", dir)?;
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut diagnostics = Vec::new();
    let mut other = Vec::new();
    for l in stderr.lines() {
        match parse_diagnostic(l) {
            Some(d) => diagnostics.push(d),
            None if l.trim().is_empty() || l.ends_with("Assembler messages:") => {}
            None => other.push(l.trim().to_string()),
        }
    }
    if !diagnostics.is_empty() {
        return Ok(Err(diagnostics));
    }
    if !out.status.success() || !other.is_empty() {
        let why = other.first().map(String::as_str).unwrap_or("no message");
        return Err(Error::Runtime(format!(
            "GNU as failed ({}): {why}",
            out.status
        )));
    }
    let obj = dir.join("kernel.o");
    let bytes = std::fs::read(&obj).map_err(|e| Error::io(&obj, e))?;
    Ok(Ok(bytes))
}

/// Runs GNU as (`program`, normally `as`) as `as --64 -o OBJECT SOURCE` in `dir`, under
/// [`crate::tool::AS_LIMITS`]. Errors: [`Error::Runtime`], `GNU as not found: install
/// binutils` when it is missing, or the limit that stopped it.
pub(crate) fn gnu_as(
    program: &str,
    source: &str,
    object: &str,
    dir: &Path,
) -> Result<std::process::Output> {
    crate::tool::run(
        Command::new(program)
            .args(["--64", "-o", object, source])
            .current_dir(dir),
        "GNU as",
        crate::tool::AS_LIMITS,
    )
    .map_err(|e| match e {
        Error::Runtime(m) if m.starts_with("GNU as not found") => {
            Error::Runtime("GNU as not found: install binutils".into())
        }
        e => e,
    })
}

/// Parses `kernel.s:LINE: Error: MESSAGE` (or `Warning:`) into the user's line and a
/// one-line message. GNU as's line 1 is our syntax prefix, so the user's line is one less.
fn parse_diagnostic(l: &str) -> Option<(usize, String)> {
    let rest = l.strip_prefix("kernel.s:")?;
    let (num, rest) = rest.split_once(':')?;
    let as_line: usize = num.trim().parse().ok()?;
    let rest = rest.trim_start();
    let msg = if let Some(m) = rest.strip_prefix("Error:") {
        m.trim().to_string()
    } else if let Some(m) = rest.strip_prefix("Warning:") {
        format!("warning: {}", m.trim())
    } else {
        rest.trim().to_string()
    };
    let msg = msg.split_whitespace().collect::<Vec<_>>().join(" ");
    Some((as_line.saturating_sub(1).max(1), msg))
}

/// Decodes the bytes of one source line, which must be exactly one valid instruction.
fn decode_one(bytes: &[u8], ip: u64) -> std::result::Result<Instruction, String> {
    if bytes.is_empty() {
        return Err("does not assemble to an instruction".into());
    }
    let mut decoder = Decoder::with_ip(64, bytes, ip, DecoderOptions::NONE);
    let ins = decoder.decode();
    if ins.is_invalid() {
        let hex: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
        return Err(match decoder.last_error() {
            DecoderError::NoMoreBytes => format!(
                "does not assemble to a complete instruction ({})",
                hex.join(" ")
            ),
            _ => format!(
                "assembles to bytes that are not a valid instruction ({})",
                hex.join(" ")
            ),
        });
    }
    if decoder.position() < bytes.len() {
        return Err("assembles to more than one instruction".into());
    }
    Ok(ins)
}

/// The parts of GNU as's ELF object we need.
pub(crate) struct Object {
    /// Contents of `.text`.
    text: Vec<u8>,
    /// `(user line, offset in .text)` of every `__superopt_line_N` label.
    labels: Vec<(usize, u64)>,
    /// `(offset in .text, symbol name)` of every relocation against `.text`.
    relocs: Vec<(u64, String)>,
    /// Every symbol: `(name, section index, value, size)`.
    pub(crate) symbols: Vec<(String, u16, u64, u64)>,
    /// Contents of every section by index (empty for sections without file contents).
    sections: Vec<Vec<u8>>,
    /// `(section index, offset, symbol name)` of every relocation in the object.
    pub(crate) all_relocs: Vec<(usize, u64, String)>,
}

/// Minimal ELF64 little-endian reader for a relocatable object: section headers, `.text`,
/// the symbol table and relocation sections.
pub(crate) fn read_object(obj: &[u8]) -> std::result::Result<Object, String> {
    let bytes = |off: u64, len: u64| -> std::result::Result<&[u8], String> {
        let end = off.checked_add(len).ok_or("bad offset")?;
        obj.get(off as usize..end as usize)
            .ok_or_else(|| "truncated ELF file".to_string())
    };
    let u16_at = |off: u64| bytes(off, 2).map(|b| u16::from_le_bytes([b[0], b[1]]));
    let u32_at =
        |off: u64| bytes(off, 4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")));
    let u64_at =
        |off: u64| bytes(off, 8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")));
    let cstr = |table: (u64, u64), idx: u64| -> std::result::Result<String, String> {
        let t = bytes(table.0, table.1)?;
        let s = t.get(idx as usize..).ok_or("bad string index")?;
        let end = s
            .iter()
            .position(|&b| b == 0)
            .ok_or("unterminated string")?;
        Ok(String::from_utf8_lossy(&s[..end]).into_owned())
    };

    if bytes(0, 6)? != b"\x7fELF\x02\x01" {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let shoff = u64_at(0x28)?;
    let shentsize = u16_at(0x3a)? as u64;
    let shnum = u16_at(0x3c)? as u64;
    let shstrndx = u16_at(0x3e)? as u64;
    if shentsize < 64 {
        return Err("bad section header size".into());
    }
    struct Sh {
        name: u32,
        kind: u32,
        offset: u64,
        size: u64,
        link: u32,
        info: u32,
        entsize: u64,
    }
    let mut sections = Vec::with_capacity(shnum as usize);
    for i in 0..shnum {
        let h = shoff + i * shentsize;
        sections.push(Sh {
            name: u32_at(h)?,
            kind: u32_at(h + 4)?,
            offset: u64_at(h + 24)?,
            size: u64_at(h + 32)?,
            link: u32_at(h + 40)?,
            info: u32_at(h + 44)?,
            entsize: u64_at(h + 56)?,
        });
    }
    let shstr = sections
        .get(shstrndx as usize)
        .ok_or("no section name table")?;
    let shstr = (shstr.offset, shstr.size);
    let mut text_idx = None;
    for (i, s) in sections.iter().enumerate() {
        if cstr(shstr, s.name as u64)? == ".text" {
            text_idx = Some(i);
        }
    }
    let text_idx = text_idx.ok_or("no .text section")?;
    let ts = &sections[text_idx];
    const SHT_NOBITS: u32 = 8;
    let text = if ts.kind == SHT_NOBITS {
        Vec::new()
    } else {
        bytes(ts.offset, ts.size)?.to_vec()
    };

    const SHT_SYMTAB: u32 = 2;
    const SHT_RELA: u32 = 4;
    const SHT_REL: u32 = 9;
    let mut symbols: Vec<(String, u16, u64, u64)> = Vec::new();
    if let Some(st) = sections.iter().find(|s| s.kind == SHT_SYMTAB) {
        let strtab = sections
            .get(st.link as usize)
            .ok_or("bad symbol string table")?;
        let strtab = (strtab.offset, strtab.size);
        let entsize = if st.entsize == 0 { 24 } else { st.entsize };
        for k in 0..st.size / entsize {
            let e = st.offset + k * entsize;
            let name = cstr(strtab, u32_at(e)? as u64)?;
            symbols.push((name, u16_at(e + 6)?, u64_at(e + 8)?, u64_at(e + 16)?));
        }
    }
    let labels = symbols
        .iter()
        .filter(|(_, shndx, _, _)| *shndx as usize == text_idx)
        .filter_map(|(name, _, value, _)| Some((name.strip_prefix(LABEL)?.parse().ok()?, *value)))
        .collect();
    let mut all_relocs = Vec::new();
    for s in &sections {
        if s.kind == SHT_RELA || s.kind == SHT_REL {
            let entsize = if s.entsize == 0 { 24 } else { s.entsize };
            for k in 0..s.size / entsize {
                let e = s.offset + k * entsize;
                let sym = (u64_at(e + 8)? >> 32) as usize;
                let name = symbols
                    .get(sym)
                    .map(|(n, _, _, _)| n.clone())
                    .unwrap_or_default();
                all_relocs.push((s.info as usize, u64_at(e)?, name));
            }
        }
    }
    let relocs = all_relocs
        .iter()
        .filter(|(sec, _, _)| *sec == text_idx)
        .map(|(_, off, name)| (*off, name.clone()))
        .collect();
    let mut contents = Vec::with_capacity(sections.len());
    for s in &sections {
        contents.push(if s.kind == SHT_NOBITS || s.kind == 0 {
            Vec::new()
        } else {
            bytes(s.offset, s.size)?.to_vec()
        });
    }
    Ok(Object {
        text,
        labels,
        relocs,
        symbols,
        sections: contents,
        all_relocs,
    })
}

/// Lower-case mnemonic as iced names it (`cmovl`, `sbb`), like [`Insn::from_iced`].
fn mnemonic(ins: &Instruction) -> String {
    format!("{:?}", ins.mnemonic()).to_lowercase()
}

/// The features among `features` that this CPU lacks (optional features the verifier allows
/// that CPUID does not report), in the same order.
pub fn lacking(features: Vec<CpuidFeature>) -> Vec<CpuidFeature> {
    features
        .into_iter()
        .filter(|&f| feature_present(f) == Some(false))
        .collect()
}

/// Whether this CPU has an optional feature the verifier allows; `None` when the verifier
/// does not allow it at all (x87, MMX, timers, random numbers, system extensions, ...).
fn feature_present(f: CpuidFeature) -> Option<bool> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        use CpuidFeature as F;
        Some(match f {
            F::SSE3 => has!("sse3"),
            F::SSSE3 => has!("ssse3"),
            F::SSE4_1 => has!("sse4.1"),
            F::SSE4_2 => has!("sse4.2"),
            F::POPCNT => has!("popcnt"),
            F::LZCNT => has!("lzcnt"),
            F::BMI1 => has!("bmi1"),
            F::BMI2 => has!("bmi2"),
            F::ADX => has!("adx"),
            F::MOVBE => has!("movbe"),
            F::AVX => has!("avx"),
            F::AVX2 => has!("avx2"),
            F::FMA => has!("fma"),
            F::F16C => has!("f16c"),
            F::AES => has!("aes"),
            F::PCLMULQDQ => has!("pclmulqdq"),
            F::AVX512F => has!("avx512f"),
            F::AVX512VL => has!("avx512vl"),
            F::AVX512BW => has!("avx512bw"),
            F::AVX512DQ => has!("avx512dq"),
            F::AVX512CD => has!("avx512cd"),
            _ => return None,
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = f;
        None
    }
}

/// Loads and stores of 16 bytes or more that fault (#GP) on a misaligned address.
const ALIGNED: [Mnemonic; 17] = [
    Mnemonic::Movaps,
    Mnemonic::Movapd,
    Mnemonic::Movdqa,
    Mnemonic::Movntps,
    Mnemonic::Movntpd,
    Mnemonic::Movntdq,
    Mnemonic::Movntdqa,
    Mnemonic::Vmovaps,
    Mnemonic::Vmovapd,
    Mnemonic::Vmovdqa,
    Mnemonic::Vmovdqa32,
    Mnemonic::Vmovdqa64,
    Mnemonic::Vmovntps,
    Mnemonic::Vmovntpd,
    Mnemonic::Vmovntdq,
    Mnemonic::Vmovntdqa,
    Mnemonic::Cmpxchg16b,
];

/// Legacy-encoded instructions whose 16-byte memory operand may be misaligned.
const UNALIGNED_OK: [Mnemonic; 8] = [
    Mnemonic::Movups,
    Mnemonic::Movupd,
    Mnemonic::Movdqu,
    Mnemonic::Lddqu,
    Mnemonic::Pcmpestri,
    Mnemonic::Pcmpestrm,
    Mnemonic::Pcmpistri,
    Mnemonic::Pcmpistrm,
];

/// The checks of [`Kernel::check_safe`] for one instruction.
fn check_one(
    ins: &Instruction,
    n: usize,
    el: Element,
    align: usize,
    saved: &[Register],
    run_here: bool,
    factory: &mut InstructionInfoFactory,
) -> std::result::Result<(), String> {
    let m = mnemonic(ins);
    match ins.flow_control() {
        FlowControl::Next => {}
        FlowControl::Return if ins.code() == Code::Retnq => {
            return Err("ret is only allowed as the last line".into());
        }
        _ => return Err(format!("control-flow instruction {m} is not allowed")),
    }
    if ins.is_privileged() {
        return Err(format!("privileged instruction {m} is not allowed"));
    }
    if matches!(ins.mnemonic(), Mnemonic::Div | Mnemonic::Idiv) {
        return Err(format!("{m} is not allowed: it may fault (divide error)"));
    }
    if ins.is_stack_instruction() {
        return Err(format!("stack instruction {m} is not allowed"));
    }
    for &f in ins.cpuid_features() {
        if BASELINE.contains(&f) {
            continue;
        }
        match feature_present(f) {
            Some(true) => {}
            Some(false) if !run_here => {}
            Some(false) => {
                return Err(format!("{m} needs CPU feature {f:?}, which this CPU lacks"))
            }
            None => {
                return Err(format!(
                    "{m} needs CPU feature {f:?}, which the verifier does not allow"
                ))
            }
        }
    }
    match ins.mnemonic() {
        Mnemonic::Ldmxcsr | Mnemonic::Vldmxcsr => {
            return Err(format!(
                "{m} is not allowed: it changes MXCSR, which the caller owns"
            ));
        }
        Mnemonic::Sgdt | Mnemonic::Sidt | Mnemonic::Sldt | Mnemonic::Smsw | Mnemonic::Str => {
            return Err(format!(
                "{m} is not allowed: it faults where UMIP is enabled"
            ));
        }
        _ => {}
    }
    if ins.rflags_set() & RflagsBits::DF != 0 {
        return Err(format!(
            "{m} is not allowed: it sets the direction flag, which must stay clear"
        ));
    }

    let explicit_mem = (0..ins.op_count()).any(|i| ins.op_kind(i) == OpKind::Memory);
    if explicit_mem {
        if ALIGNED.contains(&ins.mnemonic())
            || (ins.encoding() == EncodingKind::Legacy
                && ins.memory_size().size() == 16
                && !UNALIGNED_OK.contains(&ins.mnemonic()))
        {
            return Err(format!(
                "{m} may fault on a misaligned address (rdi's alignment is unknown)"
            ));
        }
        let bit_string = matches!(
            ins.mnemonic(),
            Mnemonic::Bt | Mnemonic::Bts | Mnemonic::Btr | Mnemonic::Btc
        );
        if bit_string && ins.op_count() == 2 && ins.op1_kind() == OpKind::Register {
            return Err(format!(
                "{m} with a register bit offset may access memory outside the array"
            ));
        }
    }

    let info = factory.info(ins);
    let accesses =
        |m: &iced_x86::UsedMemory| !matches!(m.access(), OpAccess::NoMemAccess | OpAccess::None);
    if !explicit_mem && info.used_memory().iter().any(accesses) {
        return Err(format!("{m} accesses memory implicitly"));
    }
    if matches!(ins.mnemonic(), Mnemonic::Lahf | Mnemonic::Sahf) {
        // iced lists no feature for them, but in 64-bit mode they need CPUID.80000001H:ECX
        // bit 0 (LAHF-SAHF), which some early x86-64 CPUs lack (#UD; Intel SDM vol. 2).
        return Err(format!(
            "{m} is not allowed: some x86-64 CPUs lack it in 64-bit mode (CPUID LAHF-SAHF)"
        ));
    }
    if matches!(ins.mnemonic(), Mnemonic::Lzcnt | Mnemonic::Tzcnt) {
        let other = if ins.mnemonic() == Mnemonic::Lzcnt {
            "bsr"
        } else {
            "bsf"
        };
        return Err(format!(
            "{m} is not allowed: CPUs without it run its encoding as {other} (Intel SDM), with another result"
        ));
    }
    if ins.mnemonic() == Mnemonic::Wait {
        return Err(format!(
            "{m} is not allowed: it raises the caller's pending x87 exceptions"
        ));
    }
    for used in info.used_registers() {
        let r = used.register();
        if r.is_mm() || (Register::ST0..=Register::ST7).contains(&r) {
            return Err(format!(
                "uses {} register {}: the x87/MMX state is the caller's (and MMX leaves it in MMX mode)",
                if r.is_mm() { "MMX" } else { "x87" },
                format!("{r:?}").to_lowercase()
            ));
        }
    }
    for used in info.used_registers() {
        let full = used.register().full_register();
        let writes = matches!(
            used.access(),
            OpAccess::Write | OpAccess::CondWrite | OpAccess::ReadWrite | OpAccess::ReadCondWrite
        );
        let name = format!("{full:?}").to_lowercase();
        match full {
            Register::RSP => return Err("uses the stack pointer rsp".into()),
            Register::RDI if writes => return Err("writes the array pointer rdi".into()),
            Register::RBX
            | Register::RBP
            | Register::R12
            | Register::R13
            | Register::R14
            | Register::R15
                if writes && !saved.contains(&full) =>
            {
                return Err(format!("clobbers callee-saved {name}"));
            }
            r if writes && r.is_segment_register() => {
                return Err(format!("writes segment register {name}"))
            }
            _ => {}
        }
    }

    let limit = (el.bytes() * n) as i128;
    // The unaligned 16-byte moves check alignment at 8 bytes only (SDM vol. 3A, 6.15).
    let unaligned_move = {
        use iced_x86::Mnemonic::*;
        matches!(
            ins.mnemonic(),
            Movdqu | Vmovdqu | Movups | Vmovups | Movupd | Vmovupd | Lddqu | Vlddqu
        )
    };
    let align = align.max(el.bytes()) as i128;
    for mem in info.used_memory() {
        let writes = match mem.access() {
            OpAccess::NoMemAccess | OpAccess::None => continue,
            OpAccess::Read | OpAccess::CondRead => false,
            _ => true,
        };
        if mem.base() != Register::RDI || mem.index() != Register::None {
            return Err("accesses memory other than [rdi + disp]".into());
        }
        if matches!(mem.segment(), Register::FS | Register::GS) {
            let seg = format!("{:?}", mem.segment()).to_lowercase();
            return Err(format!("accesses memory through segment {seg}"));
        }
        let size = mem.memory_size().size() as i128;
        if size == 0 {
            return Err(format!("{m} accesses memory of unknown size"));
        }
        let disp = mem.displacement() as i64 as i128;
        if disp < 0 || disp + size > limit {
            return Err(if writes {
                "writes outside the array"
            } else {
                "reads outside the array"
            }
            .into());
        }
        // rdi is only known to be aligned to the element size; with EFLAGS.AC set (the
        // caller's choice) a misaligned access faults (#AC), so every access must be naturally
        // aligned.
        let aligned = if unaligned_move && size == 16 {
            align >= 8 && disp % 8 == 0
        } else {
            size <= align && disp % size == 0
        };
        if !aligned {
            return Err(format!(
                "{m} accesses {size} bytes at [rdi+{disp}], which may be misaligned (rdi is only {align}-byte aligned) and faults when the caller enables alignment checking"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_are_stripped() {
        assert_eq!(strip_comment("mov %eax, %ecx # x ; y"), "mov %eax, %ecx ");
        // ';' and '//' are not comments (GNU as: a separator, division): classify refuses them.
        assert_eq!(strip_comment("mov eax, ecx ; x"), "mov eax, ecx ; x");
        assert_eq!(strip_comment("mov eax, ecx // x # y"), "mov eax, ecx // x ");
        assert_eq!(strip_comment("ret"), "ret");
    }

    #[test]
    fn diagnostics_map_to_user_lines() {
        let d = parse_diagnostic("kernel.s:4: Error: no such instruction: `foo bar'");
        assert_eq!(d, Some((3, "no such instruction: `foo bar'".to_string())));
        let w = parse_diagnostic("kernel.s:2: Warning: using default for `mov'");
        assert_eq!(w, Some((1, "warning: using default for `mov'".to_string())));
        assert_eq!(parse_diagnostic("kernel.s: Assembler messages:"), None);
    }

    #[test]
    fn missing_assembler_is_a_runtime_error() {
        let dir = tempfile::tempdir().unwrap();
        match run_assembler("superopt-no-such-assembler", dir.path()) {
            Err(Error::Runtime(msg)) => assert_eq!(msg, "GNU as not found: install binutils"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn syntax_from_str() {
        assert_eq!("att".parse::<Syntax>(), Ok(Syntax::Att));
        assert_eq!("Intel".parse::<Syntax>(), Ok(Syntax::Intel));
        assert_eq!(
            "nasm".parse::<Syntax>(),
            Err("unknown syntax 'nasm': expected att or intel".to_string())
        );
        assert_eq!(Syntax::Intel.to_string(), "intel");
    }

    #[test]
    fn labels_and_directives_are_classified() {
        assert!(matches!(
            classify(".intel_syntax noprefix"),
            Ok(LineKind::Syntax)
        ));
        assert_eq!(
            classify(".byte 0x90").err().unwrap(),
            "directive .byte is not allowed (only .intel_syntax noprefix and .att_syntax)"
        );
        assert_eq!(
            classify("loop: mov eax, ecx").err().unwrap(),
            "label loop: is not allowed (one instruction per line, no branches)"
        );
        assert!(matches!(
            classify("mov eax, dword ptr fs:[rdi]"),
            Ok(LineKind::Insn)
        ));
        assert!(matches!(
            classify("mov %fs:(%rdi), %eax"),
            Ok(LineKind::Insn)
        ));
    }
}
