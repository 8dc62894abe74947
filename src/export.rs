//! `superopt export`: turns a verified kernel into files another program can use, and
//! verifies what it wrote.
//!
//! # Formats
//!
//! Every export defines `void NAME(T *buf)` (SysV x86-64: `buf` in `rdi`), which sorts the
//! task's `n` elements at `buf` in place, ascending, where `T` is the task's element type
//! ([`crate::isa::Element`]: `int32_t`, `uint32_t`, `int64_t` or `uint64_t`; in Rust `i32`,
//! `u32`, `i64`, `u64`).
//!
//! * [`Format::Gas`]: `DIR/NAME.S`, GNU AT&T syntax: `.text`, `.p2align 4`, `.globl`,
//!   `.type`, the label, pushes of any callee-saved register the body uses, the body, the
//!   matching pops, `ret`, `.size`, and a `.note.GNU-stack` section (no executable stack).
//!   A `/* ... */` header (not `#`: gcc runs `.S` files through the C preprocessor) names the
//!   task, the length, the checks that verified the kernel, where it came from and the
//!   superopt version.
//! * [`Format::Intel`]: the same with `.intel_syntax noprefix`.
//! * [`Format::C`]: the AT&T `.S` plus `DIR/NAME.h` declaring the function (include guard,
//!   `extern "C"` for C++).
//! * [`Format::Rust`]: `DIR/NAME.rs`, a file that compiles as a crate root and as a module:
//!   the kernel in `core::arch::global_asm!` (AT&T, in section `.text.superopt_NAME`, symbol
//!   `superopt_NAME` so it cannot clash with a C function `NAME`), a safe wrapper
//!   `pub fn NAME(v: &mut [T; N])`, and tests against `sort_unstable` on every weak
//!   ordering of N elements and every tuple over the type's extreme values.
//!
//! [`export_library`] writes a small Rust crate (no dependencies) with one such module per
//! task.
//!
//! # Verification
//!
//! Only a kernel that [`oracle::verify_kernel`] finds [`Status::Verified`] is written. After
//! writing, each assembly-bearing file is read back and checked from scratch: the assembly
//! (for Rust, the unescaped `global_asm!` string literals) is assembled by GNU as, the
//! function symbol's bytes are cut from the object ([`asm::assemble_function`]) and decoded
//! with iced-x86; they must be pushes of callee-saved registers, a body, the matching pops in
//! reverse order and `ret`, and the body must be verified again by the oracle. Where the
//! tools are installed, a Rust module is also type-checked by rustc with its tests, and a C
//! header compiled by gcc after every standard C and common POSIX header (a missing tool is
//! named in the check line). If any file fails, every file written by the call is removed
//! and [`Error::NotVerified`] names the file and the reason.
//!
//! Text from outside (paths, task files) goes into the files' comments escaped, so that it
//! is printable ASCII that closes and opens no comment (`\u{202e}` for a bidirectional
//! character, which rustc refuses in a doc comment).
//!
//! # What is never replaced
//!
//! Every file starts with a comment line carrying [`MARKER`]. An existing target is replaced
//! only with `overwrite` and only when its first line carries the marker, so a file that
//! superopt did not write (a crate's own `Cargo.toml`) is never replaced; and a target that
//! is one of the export's inputs (the same file by device and inode, through symlinks and
//! hard links, or by canonical path: `crate::log::same_file`) is refused even with the
//! marker; and no file is written through a symbolic link to a folder below the output
//! folder (a library's `src/` linking into another crate). All are checked for every file
//! before anything is written.

use crate::asm::{self, Kernel};
use crate::error::{Error, Result};
use crate::oracle::{self, NativeConfig, Status, Verdict};
use crate::task::Task;
use iced_x86::{Code, Decoder, DecoderOptions, Formatter, Register};
use std::path::{Path, PathBuf};

/// What `export` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Format {
    /// `NAME.S` in GNU AT&T syntax.
    #[default]
    Gas,
    /// `NAME.S` in Intel syntax (`.intel_syntax noprefix`).
    Intel,
    /// `NAME.S` (AT&T) and the C header `NAME.h`.
    C,
    /// `NAME.rs`, a Rust module with `global_asm!`, a safe wrapper and tests.
    Rust,
}

/// One file written by [`export`] or [`export_library`], with what was checked after writing.
#[derive(Clone, Debug)]
pub struct Written {
    /// The file's path (under the output folder).
    pub path: PathBuf,
    /// One line: the result of the check after writing (`verified again after writing: ...`)
    /// for files with code, or what the file is for the others.
    pub check: String,
}

/// Where a kernel came from, for the files' headers: `search log PATH` or `file PATH`.
pub type Provenance = String;

/// The callee-saved general-purpose registers of the SysV ABI, in push order.
const CALLEE_SAVED: [Register; 6] = [
    Register::RBX,
    Register::RBP,
    Register::R12,
    Register::R13,
    Register::R14,
    Register::R15,
];

const C_KEYWORDS: &[&str] = &[
    "auto",
    "break",
    "case",
    "char",
    "const",
    "continue",
    "default",
    "do",
    "double",
    "else",
    "enum",
    "extern",
    "float",
    "for",
    "goto",
    "if",
    "inline",
    "int",
    "long",
    "register",
    "restrict",
    "return",
    "short",
    "signed",
    "sizeof",
    "static",
    "struct",
    "switch",
    "typedef",
    "union",
    "unsigned",
    "void",
    "volatile",
    "while",
    "alignas",
    "alignof",
    "bool",
    "constexpr",
    "false",
    "nullptr",
    "static_assert",
    "thread_local",
    "true",
    "typeof",
    "typeof_unqual",
    "_Alignas",
    "_Alignof",
    "_Atomic",
    "_BitInt",
    "_Bool",
    "_Complex",
    "_Decimal128",
    "_Decimal32",
    "_Decimal64",
    "_Generic",
    "_Imaginary",
    "_Noreturn",
    "_Static_assert",
    "_Thread_local",
];

const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum", "extern",
    "false", "fn", "for", "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub",
    "ref", "return", "self", "Self", "static", "struct", "super", "trait", "true", "type",
    "unsafe", "use", "where", "while", "abstract", "become", "box", "do", "final", "gen", "macro",
    "override", "priv", "try", "typeof", "unsized", "virtual", "yield", "union", "_",
];

/// Checks that `name` can name the exported function of a single [`export`]: see
/// [`name_problem`] for the rules.
///
/// Errors: [`Error::Runtime`] with a one-line reason that ends with the way out (`invalid
/// name 'for': a keyword in C and Rust; choose another with --name`), or naming GNU as when
/// it cannot be run for the probe (missing, failing on a plain name, or past its limits
/// [`crate::tool::AS_LIMITS`]: `GNU as ran past its time limit of 20 s and was stopped`).
pub fn check_name(name: &str) -> Result<()> {
    match name_problem(name)? {
        Some(why) => Err(Error::Runtime(format!(
            "invalid name '{name}': {why}; choose another with --name"
        ))),
        None => Ok(()),
    }
}

/// Checks that a task's name can name its module and function in [`export_library`], which
/// has no `--name`: the rules of [`name_problem`], and not `lib` (`src/lib.rs` is the crate
/// root).
///
/// Errors: as [`check_name`], with the way out for a library (`invalid name 'for': a keyword
/// in C and Rust; --library names each module and function after its task: rename the task
/// (the name field of its task file)`).
pub fn check_library_name(name: &str) -> Result<()> {
    let why = if name == "lib" {
        Some("the crate root is src/lib.rs, so no module can be named lib".to_string())
    } else {
        name_problem(name)?
    };
    match why {
        Some(why) => Err(Error::Runtime(format!(
            "invalid name '{name}': {why}; --library names each module and function after its task: rename the task (the name field of its task file)"
        ))),
        None => Ok(()),
    }
}

/// Why `name` cannot name an exported function, or `None` when it can: it must be ASCII
/// letters, digits and `_`, not starting with a digit or `_`, at most 100 characters, not a
/// keyword of C, C++ or Rust, a macro gcc predefines, a name of the C17 library
/// (`C_LIBRARY`, `MATH_FUNCTIONS`), of POSIX (`POSIX_LIBRARY`) or `<stdint.h>`, or one
/// of the prefixes C and POSIX reserve (`RESERVED_PREFIXES`) — these lists hold on every
/// machine — and GNU as must read it as a symbol in both syntaxes: first checked against
/// iced-x86's register names and Intel syntax's operators (fast, and the usual reason), then
/// by running GNU as on a small file that defines and calls a function of that name with the
/// directives the export writes, in AT&T and in Intel syntax (within
/// [`crate::tool::AS_LIMITS`] each);
/// this catches the names only GNU as knows (`r8b`, `axl`, and whatever a newer GNU as
/// adds). Last, where gcc is installed, the header's declaration must compile after every
/// standard C and common POSIX header, with a call of the function
/// (`gcc_after_headers`): this catches what the headers of this machine define beyond
/// the lists (`strverscmp`, `M_SQRT2`).
///
/// Errors: [`Error::Runtime`] when GNU as cannot be run for the probe, or gcc runs past its
/// limits.
pub fn name_problem(name: &str) -> Result<Option<String>> {
    let bad = |why: &str| Ok(Some(why.to_string()));
    let ident = name.chars().next().is_some_and(|c| !c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if !ident {
        return bad("use ASCII letters, digits and '_', not starting with a digit");
    }
    match (C_KEYWORDS.contains(&name), RUST_KEYWORDS.contains(&name)) {
        (true, true) => return bad("a keyword in C and Rust"),
        (true, false) => return bad("a keyword in C"),
        (false, true) => return bad("a keyword in Rust"),
        (false, false) => {}
    }
    if CPP_KEYWORDS.contains(&name) {
        return bad("a keyword in C++ (the header is included from C++ too)");
    }
    if name.len() > 100 {
        return bad("longer than 100 characters");
    }
    if name.starts_with('_') {
        return bad("reserved in C (names with a leading '_' belong to the implementation)");
    }
    if C_MACROS.contains(&name) {
        return bad("a macro gcc predefines, which would rewrite the .S file");
    }
    if listed(C_LIBRARY, name) || math_function(name) {
        return bad(
            "a name of the C standard library (or main), which the export would clash with",
        );
    }
    if listed(POSIX_LIBRARY, name) {
        return bad("a name of the POSIX C library, which the export would clash with");
    }
    if name.ends_with("_t")
        || [
            "INT",
            "UINT",
            "SIZE_",
            "PTRDIFF_",
            "SIG_ATOMIC_",
            "WCHAR_",
            "WINT_",
        ]
        .iter()
        .any(|p| {
            name.starts_with(p)
                && name.ends_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit())
        })
    {
        return bad("a type or macro name of <stdint.h> (or reserved for one)");
    }
    if let Some(prefix) = reserved_prefix(name) {
        return bad(&format!("reserved for the C or POSIX library ({prefix})"));
    }
    let lower = name.to_ascii_lowercase();
    let intel =
        "a register or operator name in Intel syntax, which GNU as would not read as a symbol";
    if INTEL_OPERATORS.contains(&lower.as_str()) || is_register(&lower) {
        return bad(intel);
    }
    match probe_name(name)? {
        None => {}
        Some(asm::Syntax::Intel) => return bad(intel),
        Some(asm::Syntax::Att) => {
            return bad("a name GNU as does not read as a symbol in AT&T syntax")
        }
    }
    match gcc_after_headers(name, &c_declaration(name, 3, crate::isa::Element::I32, 4))? {
        Gcc::Macro => bad(
            "a macro of the standard C or POSIX headers, which would rewrite the header in a program that includes them (gcc)",
        ),
        Gcc::Refused(_) => bad(
            "declared by the standard C or POSIX headers, so the header does not compile in a program that includes them (gcc)",
        ),
        Gcc::Compiles | Gcc::Unavailable(_) => Ok(None),
    }
}

/// The standard headers of C17 (<threads.h> and the others that a C library may lack
/// included), then the POSIX headers and glibc's common extras, that `gcc_after_headers`
/// includes before a header: a program that includes any of them must still compile.
const C_HEADERS: &str = concat!(
    "assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal ",
    "stdalign stdarg stdatomic stdbool stddef stdint stdio stdlib stdnoreturn string tgmath ",
    "threads time uchar wchar wctype ",
    "aio arpa/inet cpio dirent dlfcn fcntl fmtmsg fnmatch ftw glob grp iconv langinfo libgen ",
    "monetary mqueue net/if netdb netinet/in netinet/tcp nl_types poll pthread pwd regex sched ",
    "search semaphore spawn strings sys/ipc sys/mman sys/msg sys/resource sys/select sys/sem ",
    "sys/shm sys/socket sys/stat sys/statvfs sys/time sys/times sys/types sys/uio sys/un ",
    "sys/utsname sys/wait syslog tar termios unistd utime utmpx wordexp ",
    "alloca err getopt malloc sys/file sys/ioctl sys/param",
);

/// The limits for gcc on the small files of `gcc_after_headers`: 30 s and 2 GiB (it takes
/// a fifth of a second and some 60 MB).
const GCC_LIMITS: crate::tool::Limits = crate::tool::Limits {
    time: std::time::Duration::from_secs(30),
    memory: Some(2 << 30),
};

/// What gcc says of a C header after the standard headers (`gcc_after_headers`).
#[derive(Debug, PartialEq)]
enum Gcc {
    /// It compiles, without a warning.
    Compiles,
    /// The function's name is a macro once the headers are included.
    Macro,
    /// gcc refuses it (or warns): its first diagnostic, with the header's line number.
    Refused(String),
    /// gcc cannot check it here: why (`gcc not found`, or it fails on the headers alone).
    Unavailable(String),
}

/// Compiles, with gcc (`-fsyntax-only -Wall -Werror`, in its default C dialect, under
/// [`GCC_LIMITS`]), a file that defines `_GNU_SOURCE`, includes every header of
/// [`C_HEADERS`] that the system has, fails if `name` is then a macro, and then holds
/// `header` and a function that calls `name(buf)` with a `void *buf` (which converts to the
/// parameter's pointer type, whatever the element type). A failure is
/// checked again with a plain name ([`PLAIN_NAME`]) and its declaration, so that a gcc
/// that fails on the headers alone is reported as [`Gcc::Unavailable`], not blamed on the
/// header.
///
/// Errors: [`Error::Runtime`] when gcc runs past its limits.
fn gcc_after_headers(name: &str, header: &str) -> Result<Gcc> {
    let verdict = gcc_compile(name, header)?;
    if !matches!(verdict, Gcc::Macro | Gcc::Refused(_)) {
        return Ok(verdict);
    }
    match gcc_compile(
        PLAIN_NAME,
        &c_declaration(PLAIN_NAME, 3, crate::isa::Element::I32, 4),
    )? {
        Gcc::Compiles => Ok(verdict),
        Gcc::Unavailable(why) => Ok(Gcc::Unavailable(why)),
        _ => Ok(Gcc::Unavailable(
            "gcc fails on the standard headers alone".into(),
        )),
    }
}

/// One run of gcc for `gcc_after_headers`, without the check on a plain name.
fn gcc_compile(name: &str, header: &str) -> Result<Gcc> {
    let mut text = String::from("#define _GNU_SOURCE 1\n#if defined __has_include\n");
    for h in C_HEADERS.split_whitespace() {
        text.push_str(&format!(
            "#if __has_include(<{h}.h>)\n#include <{h}.h>\n#endif\n"
        ));
    }
    text.push_str(&format!(
        "#endif\n#ifdef {name}\n#error superopt: the name is a macro\n#endif\n"
    ));
    // The header's line 1 is the file's line `first`.
    let first = text.lines().count() + 1;
    text.push_str(header);
    if !header.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&format!(
        "void superopt_probe_caller(void *buf);\nvoid superopt_probe_caller(void *buf) {{ {name}(buf); }}\n"
    ));
    let dir = tempfile::Builder::new()
        .prefix("superopt-gcc")
        .tempdir()
        .map_err(|e| Error::Runtime(format!("cannot create a temporary directory: {e}")))?;
    let source = dir.path().join("probe.c");
    std::fs::write(&source, &text).map_err(|e| Error::io(&source, e))?;
    let out = match crate::tool::run(
        std::process::Command::new("gcc")
            .args(["-fsyntax-only", "-Wall", "-Werror", "-x", "c", "probe.c"])
            .env("LC_ALL", "C")
            .current_dir(dir.path()),
        "gcc",
        GCC_LIMITS,
    ) {
        Ok(out) => out,
        Err(Error::Runtime(m)) if m.starts_with("gcc not found") => {
            return Ok(Gcc::Unavailable("gcc not found".into()))
        }
        Err(Error::Runtime(m)) if m.starts_with("cannot run gcc") => {
            return Ok(Gcc::Unavailable(m))
        }
        Err(e) => return Err(e),
    };
    let stderr = String::from_utf8_lossy(&out.stderr);
    if out.status.success() && stderr.trim().is_empty() {
        return Ok(Gcc::Compiles);
    }
    if stderr.contains("#error superopt: the name is a macro") {
        return Ok(Gcc::Macro);
    }
    // The first diagnostic: `probe.c:LINE:COL: error: MESSAGE`.
    let first_line = stderr
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("probe.c:")?;
            let (line, rest) = rest.split_once(':')?;
            let line: usize = line.parse().ok()?;
            let (_, message) = rest.split_once(": ")?;
            Some(if line >= first {
                format!("line {}: {message}", line + 1 - first)
            } else {
                message.to_string()
            })
        })
        .unwrap_or_else(|| stderr.lines().next().unwrap_or("gcc failed").to_string());
    Ok(Gcc::Refused(first_line))
}

/// A name every GNU as reads as a symbol: the control of [`probe_name`].
const PLAIN_NAME: &str = "superopt_probe";

/// The first syntax (AT&T, then Intel) in which GNU as does not read `name` as a symbol
/// ([`as_reads_symbol`]), or `None`. A failing probe is run again with a plain name, so that
/// an assembler that fails on everything is reported as such, not blamed on the name.
///
/// Errors: [`Error::Runtime`] when GNU as is missing, times out, or fails on the plain name.
fn probe_name(name: &str) -> Result<Option<asm::Syntax>> {
    for syntax in [asm::Syntax::Att, asm::Syntax::Intel] {
        if !as_reads_symbol(name, syntax)? {
            if !as_reads_symbol(PLAIN_NAME, syntax)? {
                let syntax = match syntax {
                    asm::Syntax::Att => "AT&T",
                    asm::Syntax::Intel => "Intel",
                };
                return Err(Error::Runtime(format!(
                    "GNU as fails to assemble a function named {PLAIN_NAME} in {syntax} syntax, so it cannot check names; check the installed binutils"
                )));
            }
            return Ok(Some(syntax));
        }
    }
    Ok(None)
}

/// Whether GNU as reads `name` as a symbol in `syntax`: it assembles the directives and
/// label the export writes for a function `name` ([`function_asm_of`]) around a body that
/// refers to it twice (`call NAME` and a RIP-relative `lea` of it), without any diagnostic
/// (warnings included), and the object must define `name` in a section with a size and carry
/// exactly two relocations against it. A name GNU as takes for a register or an operator
/// fails one of these.
///
/// Errors: [`Error::Runtime`] when GNU as cannot be run or passes its limits.
fn as_reads_symbol(name: &str, syntax: asm::Syntax) -> Result<bool> {
    let lea = match syntax {
        asm::Syntax::Att => format!("lea {name}(%rip), %rax"),
        asm::Syntax::Intel => format!("lea rax, [rip + {name}]"),
    };
    let body = vec!["ret".to_string(), format!("call {name}"), lea];
    let mut text = function_asm_of(body, syntax, name, ".text", "").join("\n");
    text.push('\n');
    let dir = tempfile::Builder::new()
        .prefix("superopt-name")
        .tempdir()
        .map_err(|e| Error::Runtime(format!("cannot create a temporary directory: {e}")))?;
    let (source, object) = (dir.path().join("probe.s"), dir.path().join("probe.o"));
    std::fs::write(&source, text).map_err(|e| Error::io(&source, e))?;
    let out = asm::gnu_as("as", "probe.s", "probe.o", dir.path())?;
    if !out.status.success() || !String::from_utf8_lossy(&out.stderr).trim().is_empty() {
        return Ok(false);
    }
    let bytes = std::fs::read(&object).map_err(|e| Error::io(&object, e))?;
    let object = asm::read_object(&bytes)
        .map_err(|e| Error::Runtime(format!("cannot read GNU as output: {e}")))?;
    let defined = object
        .symbols
        .iter()
        .any(|(n, shndx, _, size)| n == name && *shndx != 0 && *shndx < 0xff00 && *size > 0);
    let references = object
        .all_relocs
        .iter()
        .filter(|(_, _, n)| n == name)
        .count();
    Ok(defined && references == 2)
}

/// Whether `lower` (lower case) names an x86 register, as iced-x86 knows them.
fn is_register(lower: &str) -> bool {
    iced_x86::Register::values()
        .any(|r| r != iced_x86::Register::None && format!("{r:?}").to_ascii_lowercase() == lower)
        || ["st", "rip", "eip", "ip"].contains(&lower)
}

/// Words GNU as reads as operators or size keywords in Intel syntax.
const INTEL_OPERATORS: &[&str] = &[
    "byte", "word", "dword", "fword", "qword", "mmword", "tbyte", "oword", "xmmword", "ymmword",
    "zmmword", "ptr", "offset", "short", "near", "far", "flat", "and", "or", "xor", "not", "mod",
    "shl", "shr", "eq", "ne", "lt", "le", "gt", "ge",
];

/// Names of the C17 standard library (every function, macro, object and type its headers
/// define without a leading underscore, and `main`, `std`), by header, separated by spaces.
/// The functions of <math.h> and <complex.h> are in `MATH_FUNCTIONS` (with their `f` and
/// `l` forms), the reserved prefixes in `RESERVED_PREFIXES`.
const C_LIBRARY: &str = concat!(
    "main std ",
    // <assert.h>, <complex.h>, <ctype.h>, <errno.h>, <fenv.h>, <float.h>
    "assert static_assert NDEBUG complex imaginary I _Complex_I _Imaginary_I CMPLX CMPLXF CMPLXL ",
    "isalnum isalpha isblank iscntrl isdigit isgraph islower isprint ispunct isspace isupper ",
    "isxdigit tolower toupper errno feclearexcept fegetexceptflag feraiseexcept fesetexceptflag ",
    "fetestexcept fegetround fesetround fegetenv feholdexcept fesetenv feupdateenv DECIMAL_DIG ",
    // <inttypes.h>, <limits.h>, <locale.h>
    "imaxabs imaxdiv strtoimax strtoumax wcstoimax wcstoumax CHAR_BIT SCHAR_MIN SCHAR_MAX ",
    "UCHAR_MAX CHAR_MIN CHAR_MAX MB_LEN_MAX SHRT_MIN SHRT_MAX USHRT_MAX LONG_MIN LONG_MAX ",
    "ULONG_MAX LLONG_MIN LLONG_MAX ULLONG_MAX BOOL_WIDTH BOOL_MAX lconv setlocale localeconv ",
    // <math.h> macros
    "HUGE_VAL HUGE_VALF HUGE_VALL INFINITY NAN MATH_ERRNO MATH_ERREXCEPT math_errhandling ",
    "fpclassify isfinite isinf isnan isnormal signbit isgreater isgreaterequal isless ",
    "islessequal islessgreater isunordered iscanonical issignaling issubnormal iszero ",
    // <setjmp.h>, <signal.h>, <stdalign.h>, <stdarg.h>
    "jmp_buf setjmp longjmp signal raise alignas alignof va_list va_arg va_copy va_end va_start ",
    // <stdatomic.h>, <stdbool.h>, <stddef.h> (unreachable: C23)
    "atomic_flag memory_order kill_dependency bool true false offsetof unreachable NULL ",
    // <stdio.h>
    "FILE BUFSIZ EOF FOPEN_MAX FILENAME_MAX L_tmpnam SEEK_CUR SEEK_END SEEK_SET TMP_MAX stderr ",
    "stdin stdout remove rename tmpfile tmpnam fclose fflush fopen freopen setbuf setvbuf ",
    "fprintf fscanf printf scanf snprintf sprintf sscanf vfprintf vfscanf vprintf vscanf ",
    "vsnprintf vsprintf vsscanf fgetc fgets fputc fputs getc getchar gets putc putchar puts ",
    "ungetc fread fwrite fgetpos fseek fsetpos ftell rewind clearerr feof ferror perror ",
    // <stdlib.h>
    "EXIT_FAILURE EXIT_SUCCESS RAND_MAX MB_CUR_MAX atof atoi atol atoll strtod strtof strtold ",
    "strtol strtoll strtoul strtoull rand srand aligned_alloc calloc free malloc realloc abort ",
    "atexit at_quick_exit exit getenv quick_exit system bsearch qsort abs labs llabs div ",
    "ldiv lldiv mblen mbtowc wctomb mbstowcs wcstombs ",
    // <stdnoreturn.h>, <string.h>
    "noreturn memcpy memmove strcpy strncpy strcat strncat memcmp strcmp strcoll strncmp ",
    "strxfrm memchr strchr strcspn strpbrk strrchr strspn strstr strtok memset strerror strlen ",
    // <threads.h>
    "thread_local ONCE_FLAG_INIT TSS_DTOR_ITERATIONS once_flag call_once ",
    // <time.h>
    "CLOCKS_PER_SEC timespec tm clock difftime mktime time timespec_get asctime ctime gmtime ",
    "localtime strftime ",
    // <uchar.h>
    "mbrtoc16 c16rtomb mbrtoc32 c32rtomb mbrtoc8 c8rtomb ",
    // <wchar.h>
    "WEOF fwprintf fwscanf swprintf swscanf vfwprintf vfwscanf vswprintf vswscanf vwprintf ",
    "vwscanf wprintf wscanf fgetwc fgetws fputwc fputws fwide getwc getwchar putwc putwchar ",
    "ungetwc wcstod wcstof wcstold wcstol wcstoll wcstoul wcstoull wcscpy wcsncpy wmemcpy ",
    "wmemmove wcscat wcsncat wcscmp wcscoll wcsncmp wcsxfrm wmemcmp wcschr wcscspn wcspbrk ",
    "wcsrchr wcsspn wcsstr wcstok wmemchr wcslen wmemset wcsftime btowc wctob mbsinit mbrlen ",
    "mbrtowc wcrtomb mbsrtowcs wcsrtombs ",
    // <wctype.h>
    "iswalnum iswalpha iswblank iswcntrl iswdigit iswgraph iswlower iswprint iswpunct iswspace ",
    "iswupper iswxdigit iswctype wctype towlower towupper towctrans wctrans",
);

/// The functions of <math.h> and <complex.h>, each also taken with an `f` or `l` after it
/// (`sqrtf`, `sqrtl`), separated by spaces.
const MATH_FUNCTIONS: &str = concat!(
    "acos asin atan atan2 cos sin tan acosh asinh atanh cosh sinh tanh exp exp2 expm1 frexp ",
    "ilogb ldexp log log10 log1p log2 logb modf scalbn scalbln cbrt fabs hypot pow sqrt erf ",
    "erfc lgamma tgamma ceil floor nearbyint rint lrint llrint round lround llround trunc fmod ",
    "remainder remquo copysign nan nextafter nexttoward fdim fmax fmin fma cacos casin catan ",
    "ccos csin ctan cacosh casinh catanh ccosh csinh ctanh cexp clog cabs cpow csqrt carg cimag ",
    "conj cproj creal",
);

/// Common names of the POSIX C library (and of glibc's <err.h> and <alloca.h>), separated by
/// spaces: what <unistd.h>, <fcntl.h>, <sys/stat.h>, <sys/wait.h>, <time.h>, <signal.h>,
/// <sys/mman.h>, <sys/socket.h>, <arpa/inet.h>, <dirent.h>, <dlfcn.h>, <string.h>,
/// <strings.h>, <stdio.h>, <stdlib.h>, <math.h>, <libgen.h> and their neighbours add.
const POSIX_LIBRARY: &str = concat!(
    "environ optarg optind opterr optopt getopt timezone daylight tzname tzset access alarm ",
    "chdir chown close dup dup2 execl execle execlp execv execve execvp fork fsync ftruncate ",
    "getcwd getegid geteuid getgid getpid getppid getuid isatty link lseek nice pause pipe read ",
    "readlink rmdir setgid setsid setuid sleep symlink sync sysconf truncate unlink usleep ",
    "write pread pwrite open openat creat fcntl stat fstat lstat chmod fchmod mkdir mkfifo ",
    "mknod umask wait waitpid waitid kill sigaction sigprocmask sigemptyset sigfillset ",
    "sigaddset sigdelset sigismember select pselect poll mmap munmap mprotect msync socket bind ",
    "listen accept connect send recv sendto recvfrom shutdown getaddrinfo freeaddrinfo ",
    "gethostbyname htonl htons ntohl ntohs inet_addr inet_ntoa inet_pton inet_ntop opendir ",
    "readdir closedir rewinddir dlopen dlsym dlclose dlerror strdup strndup strtok_r ",
    "strerror_r strnlen stpcpy strcasecmp strncasecmp index rindex bzero bcopy ffs getline ",
    "getdelim fdopen fileno popen pclose random srandom drand48 erand48 lrand48 mrand48 ",
    "srand48 setenv unsetenv putenv mkstemp mkdtemp realpath localtime_r gmtime_r ctime_r ",
    "asctime_r nanosleep clock_gettime clock_getres gettimeofday times uname basename dirname ",
    "glob globfree fnmatch regcomp regexec regfree syslog openlog closelog sched_yield ",
    "sem_init sem_wait sem_post j0 j1 jn y0 y1 yn signgam M_PI M_E err errx warn warnx alloca",
);

/// Prefixes the C standard (7.31, future library directions) and POSIX reserve: a name that
/// starts with the prefix and then a character of the class given (`A`: an upper-case
/// letter; `A0`: an upper-case letter or a digit; `a`: a lower-case letter; `aX`: a
/// lower-case letter or `X`) belongs to the library.
const RESERVED_PREFIXES: &[(&str, &str)] = &[
    ("E", "A0"),
    ("SIG", "A"),
    ("SIG_", "A"),
    ("LC_", "A"),
    ("FE_", "A"),
    ("FP_", "A"),
    ("FLT_", "A"),
    ("DBL_", "A"),
    ("LDBL_", "A"),
    ("ATOMIC_", "A"),
    ("TIME_", "A"),
    ("PRI", "aX"),
    ("SCN", "aX"),
    ("atomic_", "a"),
    ("memory_order_", "a"),
    ("cnd_", "a"),
    ("mtx_", "a"),
    ("thrd_", "a"),
    ("tss_", "a"),
    ("pthread_", "a"),
    ("posix_", "a"),
];

/// The reserved prefix `name` starts with, described (`names starting with SIG and an
/// upper-case letter`), if any.
fn reserved_prefix(name: &str) -> Option<String> {
    RESERVED_PREFIXES.iter().find_map(|&(prefix, class)| {
        let next = name.strip_prefix(prefix)?.chars().next()?;
        let (fits, words) = match class {
            "A" => (next.is_ascii_uppercase(), "an upper-case letter"),
            "A0" => (
                next.is_ascii_uppercase() || next.is_ascii_digit(),
                "an upper-case letter or a digit",
            ),
            "a" => (next.is_ascii_lowercase(), "a lower-case letter"),
            _ => (
                next.is_ascii_lowercase() || next == 'X',
                "a lower-case letter or X",
            ),
        };
        fits.then(|| format!("names starting with {prefix} and {words}"))
    })
}

/// Whether `name` is a word of the space-separated `list`.
fn listed(list: &str, name: &str) -> bool {
    list.split_whitespace().any(|w| w == name)
}

/// Whether `name` is a function of `MATH_FUNCTIONS`, or one with `f` or `l` after it.
fn math_function(name: &str) -> bool {
    listed(MATH_FUNCTIONS, name)
        || name
            .strip_suffix(['f', 'l'])
            .is_some_and(|base| listed(MATH_FUNCTIONS, base))
}

/// Macros gcc predefines without a leading underscore on x86-64 Linux (in GNU C modes, which
/// is how it preprocesses `.S` files).
const C_MACROS: &[&str] = &["linux", "unix", "i386"];

/// C++ keywords that are not C keywords too.
const CPP_KEYWORDS: &[&str] = &[
    "and",
    "and_eq",
    "asm",
    "bitand",
    "bitor",
    "catch",
    "char8_t",
    "char16_t",
    "char32_t",
    "class",
    "compl",
    "concept",
    "consteval",
    "constinit",
    "const_cast",
    "co_await",
    "co_return",
    "co_yield",
    "decltype",
    "delete",
    "dynamic_cast",
    "explicit",
    "export",
    "friend",
    "mutable",
    "namespace",
    "new",
    "noexcept",
    "not",
    "not_eq",
    "operator",
    "or",
    "or_eq",
    "private",
    "protected",
    "public",
    "reinterpret_cast",
    "requires",
    "static_cast",
    "template",
    "this",
    "throw",
    "try",
    "typeid",
    "typename",
    "using",
    "virtual",
    "wchar_t",
    "xor",
    "xor_eq",
];

/// The crate name [`export_library`] uses for a folder: its last component in lower case,
/// with `-`, `.` and spaces as `_`, other characters dropped, and leading digits and `_`
/// dropped.
///
/// Errors: [`Error::Runtime`] when nothing is left (`--crate-name` can give one).
pub fn crate_name_for(dir: &Path) -> Result<String> {
    let last = dir
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = last
        .chars()
        .filter_map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => Some(c),
            'A'..='Z' => Some(c.to_ascii_lowercase()),
            '-' | '.' | ' ' => Some('_'),
            _ => None,
        })
        .collect();
    let name = name.trim_start_matches(|c: char| c.is_ascii_digit() || c == '_');
    if name.is_empty() {
        return Err(Error::Runtime(format!(
            "cannot make a crate name from '{}': give one with --crate-name",
            dir.display()
        )));
    }
    check_crate_name(name)?;
    Ok(name.to_string())
}

/// Checks a crate name for [`export_library`]: lower-case ASCII letters, digits and `_`,
/// starting with a letter, not a Rust keyword. Errors: [`Error::Runtime`], one line.
pub fn check_crate_name(name: &str) -> Result<()> {
    let ok = name.chars().next().is_some_and(|c| c.is_ascii_lowercase())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !RUST_KEYWORDS.contains(&name)
        && !["std", "core", "alloc", "proc_macro", "test"].contains(&name);
    if ok {
        Ok(())
    } else {
        Err(Error::Runtime(format!(
            "invalid crate name '{name}': use lower-case ASCII letters, digits and '_', starting with a letter, not a Rust keyword or a crate of Rust's own (std, core, alloc, proc_macro, test)"
        )))
    }
}

/// Verifies `kernel` for `task` and refuses it unless it is [`Status::Verified`], or
/// [`Status::ProvedNotRun`] (proved; needs CPU features this CPU lacks, which the exported
/// files name and the Rust wrapper checks at run time).
///
/// Errors: [`Error::NotVerified`] (`not verified: not sorted: [1,1,0] -> [0,1,0]; export
/// writes only verified kernels`); [`Error::Runtime`] when the native stage cannot run.
pub fn require_verified(task: &Task, kernel: &Kernel, cfg: &NativeConfig) -> Result<Verdict> {
    let verdict = oracle::verify_kernel(task, kernel, cfg)?;
    match verdict.status {
        // Proved on the emulator, not run here for want of CPU features: the files say so,
        // and the Rust wrapper checks the features before each call.
        Status::Verified | Status::ProvedNotRun => Ok(verdict),
        Status::TestedNotProven => Err(Error::NotVerified(format!(
            "not verified: tested on the CPU but not proven: {}; export writes only verified kernels",
            verdict.reason.as_deref().unwrap_or("no proof")
        ))),
        Status::Failed => Err(Error::NotVerified(format!(
            "not verified: {}; export writes only verified kernels",
            verdict.reason.as_deref().unwrap_or("failed")
        ))),
    }
}

/// Where and how [`export`] writes.
#[derive(Clone, Debug)]
pub struct Target<'a> {
    /// The output format.
    pub format: Format,
    /// The function's name (see [`check_name`]).
    pub name: &'a str,
    /// The output folder (created if needed).
    pub dir: &'a Path,
    /// Replace files that exist and carry [`MARKER`] (else they are refused; files without
    /// it are refused either way).
    pub overwrite: bool,
    /// The files the export reads (the kernel's file or log, a task file): never written,
    /// even with `overwrite`, whatever path or link reaches them.
    pub inputs: &'a [PathBuf],
}

/// Exports a kernel for `task` as `to.format` under `to.dir`, naming the function `to.name`
/// (for [`Format::Rust`] the assembly symbol is `superopt_NAME`). `provenance` is written
/// into the headers.
///
/// The kernel is verified first ([`require_verified`]); then each file is written to a
/// temporary file beside its target, verified again from what is on disk (see the
/// [module docs](self)), and renamed into place once all pass. Returns the files written, in
/// order, with their check lines.
///
/// Errors: [`Error::Runtime`] for a bad name, a target that is one of `to.inputs`, or a
/// target that exists and was not written by superopt (no [`MARKER`]) or exists without
/// `to.overwrite`; [`Error::NotVerified`] when the kernel is not verified or a written file
/// fails its check (then no target is touched; the message names the file and the reason);
/// [`Error::Io`] when the folder or a file cannot be written.
pub fn export(
    task: &Task,
    kernel: &Kernel,
    to: &Target,
    provenance: &str,
    cfg: &NativeConfig,
) -> Result<Vec<Written>> {
    let (format, name, dir, overwrite) = (to.format, to.name, to.dir, to.overwrite);
    check_name(name)?;
    let verdict = require_verified(task, kernel, cfg)?;
    let doc = Doc {
        task,
        kernel,
        verdict: &verdict,
        provenance,
    };
    let files = match format {
        Format::Gas => vec![asm_file(dir, &doc, kernel, name, asm::Syntax::Att)],
        Format::Intel => vec![asm_file(dir, &doc, kernel, name, asm::Syntax::Intel)],
        Format::C => vec![
            asm_file(dir, &doc, kernel, name, asm::Syntax::Att),
            Planned {
                path: dir.join(format!("{name}.h")),
                text: c_header(&doc, name),
                check: Check::Header {
                    name: name.to_string(),
                    note: format!(
                        "declares {name}; its code is {}, {} above",
                        dir.join(format!("{name}.S")).display(),
                        if verdict.status == Status::ProvedNotRun {
                            "proved (not run)"
                        } else {
                            "verified"
                        }
                    ),
                },
            },
        ],
        Format::Rust => vec![Planned {
            path: dir.join(format!("{name}.rs")),
            text: rust_module(&doc, kernel, name),
            check: Check::Code {
                symbol: format!("superopt_{name}"),
                rust: true,
            },
        }],
    };
    let guard = Guard {
        root: dir,
        inputs: to.inputs,
        instead: "choose another -o DIR or --name",
        overwrite,
    };
    write_verified(task, &files, &guard, cfg)
}

/// One kernel of [`export_library`]: the task (its name names the module and the function),
/// the kernel, and where it came from.
pub type LibraryKernel = (Task, Kernel, Provenance);

/// Writes a Rust crate named `crate_name` at `dir`: `Cargo.toml` (version 0.1.0, edition
/// 2021, no dependencies; an empty `[workspace]` table so that it builds on its own, unless
/// `dir` lies inside a cargo workspace, which must then list it as a member),
/// `src/lib.rs` (crate docs listing each kernel with its length and provenance;
/// `pub mod TASK;` and `pub use TASK::TASK;` per kernel), `src/TASK.rs` per kernel (the
/// [`Format::Rust`] module) and `tests/kernels.rs` (each function through the public API on
/// ties, extremes and random inputs). Every kernel is verified before anything is written
/// and each module again after (see the [module docs](self)).
///
/// `inputs` are the files the export read (logs, task files), never written; with
/// `overwrite`, a non-empty `dir` is accepted and the crate's files replace files of the same
/// paths that an earlier export wrote (they carry [`MARKER`]); any other file there is
/// refused before anything is written.
///
/// Errors: as [`export`]; [`Error::Runtime`] for a bad crate name, a task name that is not a
/// valid name ([`check_library_name`]), no kernels, or a task given twice.
pub fn export_library(
    dir: &Path,
    crate_name: &str,
    kernels: &[LibraryKernel],
    overwrite: bool,
    inputs: &[PathBuf],
    cfg: &NativeConfig,
) -> Result<Vec<Written>> {
    check_crate_name(crate_name)?;
    if !overwrite && std::fs::read_dir(dir).is_ok_and(|mut entries| entries.next().is_some()) {
        return Err(Error::Runtime(format!(
            "{} is not empty; pass --overwrite to write the crate's files into it",
            dir.display()
        )));
    }
    if kernels.is_empty() {
        return Err(Error::Runtime("no kernels to export".into()));
    }
    let mut verdicts = Vec::new();
    for (i, (task, kernel, _)) in kernels.iter().enumerate() {
        check_library_name(&task.function_name())?;
        if let Some((t, _, _)) = kernels[..i]
            .iter()
            .find(|(t, _, _)| t.function_name() == task.function_name())
        {
            return Err(Error::Runtime(if t.name == task.name {
                format!("task {} is named twice", task.name)
            } else {
                format!(
                    "tasks {} and {} would both name the module and function {} ('-' becomes '_'): rename one (the name field of its task file)",
                    t.name,
                    task.name,
                    task.function_name()
                )
            }));
        }
        verdicts.push(require_verified(task, kernel, cfg).map_err(|e| match e {
            Error::NotVerified(m) => Error::NotVerified(format!("{}: {m}", task.name)),
            e => e,
        })?);
    }
    let version = env!("CARGO_PKG_VERSION");
    let mut files = vec![Planned {
        path: dir.join("Cargo.toml"),
        text: format!(
            "# {MARKER}\n[package]\nname = \"{crate_name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\ndescription = \"Sorting kernels found and verified by superopt {version}\"\n\n[dependencies]\n{}",
            match enclosing_workspace(dir) {
                // Inside a workspace the crate must be one of its members (or excluded there).
                Some(root) => format!(
                    "\n# Inside the workspace of {}: add this folder to its members (or exclude).\n",
                    comment_text(&root.display().to_string())
                ),
                None => "\n# Not part of any enclosing workspace.\n[workspace]\n".to_string(),
            }
        ),
        check: Check::Note("the crate's manifest (no dependencies)".into()),
    }];
    let mut lib = format!(
        "// {MARKER}\n//! `{crate_name}`: x86-64 sorting kernels found and verified by superopt {version}.\n//!\n//! Each function sorts a fixed-size array of integers in place, ascending (in the order of\n//! its element type, listed below), with a branch-free kernel (`mov`/`cmp`/`cmov`, or lane minimum and maximum on xmm\n//! registers where the line says what CPU features it needs) that superopt proved correct\n//! for all inputs and tested natively before writing this crate (unless its line says it\n//! was not run), then verified again from the written source. x86-64 only: elsewhere the\n//! modules are empty.\n//!\n"
    );
    for ((task, kernel, provenance), verdict) in kernels.iter().zip(&verdicts) {
        let needs = needed_features(kernel);
        let needs = match (needs.is_empty(), verdict.status == Status::ProvedNotRun) {
            (true, _) => String::new(),
            (false, false) => format!("; needs {}", needs.join(", ")),
            (false, true) => format!(
                "; needs {}; proved, not run on the machine that exported it",
                needs.join(", ")
            ),
        };
        lib.push_str(&format!(
            "//! * [`{0}()`]({0}::{0}): {1} `{4}` elements, {2} instructions (ret excluded), from {3}{needs}\n",
            task.function_name(),
            task.n,
            verdict.length,
            comment_text(provenance),
            task.element
        ));
    }
    lib.push('\n');
    for (task, _, _) in kernels {
        lib.push_str(&format!("pub mod {0};\n", task.function_name()));
    }
    lib.push('\n');
    for (task, _, _) in kernels {
        lib.push_str(&format!(
            "#[cfg(target_arch = \"x86_64\")]\npub use self::{0}::{0};\n",
            task.function_name()
        ));
    }
    files.push(Planned {
        path: dir.join("src").join("lib.rs"),
        text: lib,
        check: Check::Note("the crate root".into()),
    });
    for ((task, kernel, provenance), verdict) in kernels.iter().zip(&verdicts) {
        let doc = Doc {
            task,
            kernel,
            verdict,
            provenance,
        };
        files.push(Planned {
            path: dir.join("src").join(format!("{}.rs", task.function_name())),
            text: rust_module(&doc, kernel, &task.function_name()),
            check: Check::Code {
                symbol: format!("superopt_{}", task.function_name()),
                rust: true,
            },
        });
    }
    files.push(Planned {
        path: dir.join("tests").join("kernels.rs"),
        text: integration_tests(crate_name, kernels),
        check: Check::Note("integration tests through the crate's public API".into()),
    });
    write_verified_tasks(
        &files,
        |p| {
            kernels
                .iter()
                .find(|(t, _, _)| p.ends_with(format!("src/{}.rs", t.function_name())))
                .map(|(t, _, _)| t)
        },
        &Guard {
            root: dir,
            inputs,
            instead: "choose another --library DIR",
            overwrite,
        },
        cfg,
    )
}

/// The manifest of the cargo workspace `dir` would fall under (a `Cargo.toml` with a
/// `[workspace]` table in a folder above it), if any.
fn enclosing_workspace(dir: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(dir).ok()?;
    abs.ancestors().skip(1).find_map(|d| {
        let manifest = d.join("Cargo.toml");
        let text = std::fs::read_to_string(&manifest).ok()?;
        // Any `workspace` table makes a root (`[workspace]`, `workspace = {...}`, or only
        // `[workspace.package]`); a manifest that does not parse is taken as one too, to be
        // safe (cargo would refuse to build inside it anyway).
        let is_root = match text.parse::<toml::Table>() {
            Ok(t) => t.contains_key("workspace"),
            Err(_) => true,
        };
        is_root.then_some(manifest)
    })
}

/// What the headers say about a kernel.
struct Doc<'a> {
    task: &'a Task,
    kernel: &'a Kernel,
    verdict: &'a Verdict,
    provenance: &'a str,
}

/// A file to write, with what to check after writing it.
struct Planned {
    path: PathBuf,
    text: String,
    check: Check,
}

enum Check {
    /// Assemble the file (for Rust, its `global_asm!` literals), cut out `symbol` and verify.
    Code { symbol: String, rust: bool },
    /// A C header declaring `name`: compile it after the standard headers
    /// (`gcc_after_headers`) where gcc is installed; `note` starts the check line.
    Header { name: String, note: String },
    /// No code to check: the line to print.
    Note(String),
}

/// `s` made safe inside one comment line of every file export writes (`/* */` in `.S` and
/// `.h` files, `//` and `//!` in `.rs` files, `#` in `Cargo.toml`), whatever a path, a task
/// name or a task file holds: printable ASCII is kept; a backslash is doubled; newline,
/// carriage return and tab are written `\n`, `\r`, `\t`; every other character (the other
/// control characters, and everything outside ASCII, which includes the bidirectional and
/// other format characters that rustc refuses in doc comments) is written as Rust writes it
/// in a literal, `\u{202e}`; and a space goes between `/` and `*` in either order, so that no
/// comment is closed early or a nested one opened (gcc's `-Wcomment`).
fn comment_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if (c == '*' && out.ends_with('/')) || (c == '/' && out.ends_with('*')) {
            out.push(' ');
        }
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            ' '..='~' => out.push(c),
            c => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
        }
    }
    out
}

/// The lines of the header comment every code file starts with, without comment markers.
fn header_lines(doc: &Doc, name: &str, signature: &str) -> Vec<String> {
    let task = doc.task;
    let mut lines = vec![
        format!(
            "{name}: sorts {} {} in place, ascending.",
            task.n,
            task.element.describe()
        ),
        format!("{signature} (SysV x86-64 ABI: buf in rdi)."),
        String::new(),
        format!(
            "Task: {} (n = {}, {})",
            comment_text(&task.name),
            task.n,
            comment_text(&task.source)
        ),
        {
            let saved = callee_saved_used(doc.kernel);
            if saved.is_empty() {
                format!("Length: {} instructions (ret excluded)", doc.verdict.length)
            } else {
                format!(
                    "Length: {} instructions in the body (ret excluded), {} with the push and pop of {}",
                    doc.verdict.length,
                    doc.verdict.length + 2 * saved.len(),
                    saved
                        .iter()
                        .map(|r| format!("{r:?}").to_lowercase())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            }
        },
        format!("From: {}", comment_text(doc.provenance)),
    ];
    let needs = needed_features(doc.kernel);
    if !needs.is_empty() {
        lines.push(format!(
            "Needs the CPU features {}: call it only on a CPU that has them.",
            needs.join(", ")
        ));
    }
    lines.push(if doc.verdict.status == Status::ProvedNotRun {
        format!(
            "Generated by superopt {}; {}. Checked before writing by:",
            env!("CARGO_PKG_VERSION"),
            comment_text(doc.verdict.reason.as_deref().unwrap_or("proved, not run")),
        )
    } else {
        format!(
            "Generated by superopt {}; verified before writing by:",
            env!("CARGO_PKG_VERSION")
        )
    });
    lines.extend(
        doc.verdict
            .checks
            .iter()
            .map(|c| format!("  - {}", comment_text(c))),
    );
    lines.push(String::new());
    lines.push(if doc.verdict.status == Status::ProvedNotRun {
        "After writing, superopt assembled this file again with GNU as and proved the function's bytes again (on the emulator)."
            .into()
    } else {
        "After writing, superopt assembled this file again with GNU as and verified the function's bytes."
            .into()
    });
    lines
}

/// The callee-saved registers (full 64-bit) that `kernel` uses, in push order: those a task
/// lists as scratch (the verifier refuses writes to any other), which the exported function
/// pushes before the body and pops after it.
fn callee_saved_used(kernel: &Kernel) -> Vec<Register> {
    crate::oracle::callee_saved_used(&kernel.decoded, &CALLEE_SAVED)
}

/// The function's instructions in `syntax`: pushes, the body, pops in reverse order, `ret`.
fn function_lines(kernel: &Kernel, syntax: asm::Syntax) -> Vec<String> {
    let mut formatter: Box<dyn Formatter> = match syntax {
        asm::Syntax::Att => Box::new(iced_x86::GasFormatter::new()),
        asm::Syntax::Intel => Box::new(iced_x86::IntelFormatter::new()),
    };
    let opts = formatter.options_mut();
    opts.set_space_after_operand_separator(true);
    // GNU as reads `0xC`, not MASM's `0Ch`.
    opts.set_hex_prefix("0x");
    opts.set_hex_suffix("");
    let reg = |r: Register| {
        let name = format!("{r:?}").to_lowercase();
        match syntax {
            asm::Syntax::Att => format!("%{name}"),
            asm::Syntax::Intel => name,
        }
    };
    let saved = callee_saved_used(kernel);
    let mut lines: Vec<String> = saved.iter().map(|&r| format!("push {}", reg(r))).collect();
    for ins in &kernel.decoded {
        let mut s = String::new();
        formatter.format(ins, &mut s);
        lines.push(s);
    }
    lines.extend(saved.iter().rev().map(|&r| format!("pop {}", reg(r))));
    lines.push("ret".into());
    lines
}

/// The assembly of the function `symbol`, one line per statement, without a header:
/// section, alignment, symbol directives, instructions, `.size`. `section` is the directive
/// that opens the section and `close` the one after `.size` (empty for none).
fn function_asm(
    kernel: &Kernel,
    syntax: asm::Syntax,
    symbol: &str,
    section: &str,
    close: &str,
) -> Vec<String> {
    function_asm_of(
        function_lines(kernel, syntax),
        syntax,
        symbol,
        section,
        close,
    )
}

/// [`function_asm`] with the function's statements given (`body`, in `syntax`, `ret`
/// included): the one place that writes the directives around an exported symbol, so that
/// [`as_reads_symbol`] probes a name exactly as the export uses it.
fn function_asm_of(
    body: Vec<String>,
    syntax: asm::Syntax,
    symbol: &str,
    section: &str,
    close: &str,
) -> Vec<String> {
    let mut out = vec![section.to_string()];
    if syntax == asm::Syntax::Intel {
        out.push(".intel_syntax noprefix".into());
    }
    out.push(".p2align 4".into());
    out.push(format!(".globl {symbol}"));
    out.push(format!(".type {symbol}, @function"));
    out.push(format!("{symbol}:"));
    out.extend(body.into_iter().map(|l| format!("    {l}")));
    out.push(format!(".size {symbol}, .-{symbol}"));
    if syntax == asm::Syntax::Intel {
        out.push(".att_syntax prefix".into());
    }
    if !close.is_empty() {
        out.push(close.to_string());
    }
    out
}

/// `DIR/NAME.S` in `syntax`.
fn asm_file(dir: &Path, doc: &Doc, kernel: &Kernel, name: &str, syntax: asm::Syntax) -> Planned {
    let mut text = format!("/* {MARKER}\n *\n");
    let c_type = doc.task.element.c_type();
    for l in header_lines(doc, name, &format!("void {name}({c_type} *buf)")) {
        text.push_str(format!(" * {l}").trim_end());
        text.push('\n');
    }
    text.push_str(" */\n\n");
    for l in function_asm(kernel, syntax, name, ".text", "") {
        text.push_str(&l);
        text.push('\n');
    }
    text.push_str("\n.section .note.GNU-stack,\"\",@progbits\n");
    Planned {
        path: dir.join(format!("{name}.S")),
        text,
        check: Check::Code {
            symbol: name.to_string(),
            rust: false,
        },
    }
}

/// The CPU features `kernel` needs beyond x86-64's baseline, as GCC and Rust name them
/// (`avx`, `avx512vl`).
fn needed_features(kernel: &Kernel) -> Vec<String> {
    kernel
        .features()
        .into_iter()
        .map(crate::isa::feature_name)
        .collect()
}

/// `NAME.h`: a comment naming the kernel (and the CPU features it needs), then
/// [`c_declaration`].
fn c_header(doc: &Doc, name: &str) -> String {
    let needs = needed_features(doc.kernel);
    let needs = if needs.is_empty() {
        String::new()
    } else {
        let checks: Vec<String> = needs
            .iter()
            .map(|f| format!("__builtin_cpu_supports(\"{f}\")"))
            .collect();
        format!(
            "\n * Needs the CPU features {}: call it only where {} (GCC, Clang).",
            needs.join(", "),
            checks.join(" && ")
        )
    };
    let needs = if doc.verdict.status == Status::ProvedNotRun {
        format!(
            "{needs}\n * {}: proved on the emulator, not run on the machine that exported it.",
            comment_text(doc.verdict.reason.as_deref().unwrap_or("proved, not run"))
        )
    } else {
        needs
    };
    format!(
        "/* {MARKER}\n * {name}.h: declaration of the kernel in {name}.S (generated by superopt {version}).\n * Task {task}, {len} instructions, from {from}.{needs} */\n{declaration}",
        version = env!("CARGO_PKG_VERSION"),
        task = comment_text(&doc.task.name),
        len = doc.verdict.length,
        from = comment_text(doc.provenance),
        declaration = c_declaration(name, doc.task.n, doc.task.element, doc.task.align),
    )
}

/// The code of `NAME.h` after its first comment: the include guard, `<stdint.h>`, and the
/// declaration of `void NAME(T *buf)` for `n` elements of type `el` (`extern "C"` in C++). The one
/// place that writes it, so that the name check (`gcc_after_headers`) compiles exactly
/// what the header holds.
fn c_declaration(name: &str, n: usize, el: crate::isa::Element, align: usize) -> String {
    let (c_type, what) = (el.c_type(), el.describe());
    let aligned = if align > el.bytes() {
        format!("aligned to {align} bytes (its 16-byte loads and stores may fault otherwise\n * when alignment checking is on)")
    } else {
        format!("aligned as {c_type} is")
    };
    // The name as it is (not upper-cased), so that `foo` and `FOO` get different guards.
    let guard = format!("SUPEROPT_{name}_H");
    format!(
        "#ifndef {guard}\n#define {guard}\n\n#include <stdint.h>\n\n#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n/* Sorts the {n} {what} buf[0..{n}) in place, ascending.\n * buf must point to {n} readable and writable {c_type}, {aligned}. x86-64 only. */\nvoid {name}({c_type} *buf);\n\n#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {guard} */\n"
    )
}

/// A Rust string literal holding `s`, escaped for a `global_asm!` template (`{` and `}`
/// doubled).
fn rust_literal(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '{' => out.push_str("{{"),
            '}' => out.push_str("}}"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The wrapper's call of the kernel `symbol` on `v`: directly, or for a task whose array must
/// be aligned beyond its element type (a packed task's `layout.align = 8`), on an aligned copy
/// when `v` is not aligned so.
fn rust_call(doc: &Doc, symbol: &str) -> String {
    let (el, n, align) = (doc.task.element, doc.task.n, doc.task.align);
    if align <= el.bytes() {
        return format!("unsafe {{ ffi::{symbol}(v.as_mut_ptr()) }}");
    }
    format!(
        "// The kernel moves the array with 16-byte loads and stores, which need an array aligned\n    // to {align} bytes where alignment checking is on: sort an aligned copy otherwise.\n    #[repr(C, align({align}))]\n    struct Aligned([{el}; {n}]);\n    if v.as_ptr() as usize % {align} == 0 {{\n        unsafe {{ ffi::{symbol}(v.as_mut_ptr()) }}\n    }} else {{\n        let mut a = Aligned(*v);\n        unsafe {{ ffi::{symbol}(a.0.as_mut_ptr()) }}\n        *v = a.0;\n    }}"
    )
}

/// `NAME.rs`: a module (or crate root) with the kernel, a safe wrapper and tests.
fn rust_module(doc: &Doc, kernel: &Kernel, name: &str) -> String {
    let n = doc.task.n;
    let el = doc.task.element;
    let order = if el.is_signed() { "signed" } else { "unsigned" };
    let symbol = format!("superopt_{name}");
    let mut text = format!("// {MARKER}\n");
    for l in header_lines(doc, name, &format!("`pub fn {name}(v: &mut [{el}; {n}])`")) {
        text.push_str(format!("//! {l}").trim_end());
        text.push('\n');
    }
    text.push_str(&format!(
        "//!\n//! The assembly symbol is `{symbol}` (not `{name}`, so that it cannot clash with a C function).\n\n"
    ));
    text.push_str("#[cfg(target_arch = \"x86_64\")]\ncore::arch::global_asm!(\n");
    let section = format!(".pushsection .text.{symbol},\"ax\",@progbits");
    for l in function_asm(kernel, asm::Syntax::Att, &symbol, &section, ".popsection") {
        text.push_str(&format!("    {},\n", rust_literal(&l)));
    }
    text.push_str("    options(att_syntax)\n);\n\n");
    text.push_str(&format!(
        "#[cfg(target_arch = \"x86_64\")]\nmod ffi {{\n    unsafe extern \"sysv64\" {{\n        /// The kernel: sorts the {n} `{el}` at `buf` in place.\n        pub fn {symbol}(buf: *mut {el});\n    }}\n}}\n\n"
    ));
    let snake = name.chars().all(|c| !c.is_ascii_uppercase());
    let allow = if snake {
        ""
    } else {
        "#[allow(non_snake_case)]\n"
    };
    let needs = needed_features(kernel);
    if needs.is_empty() {
        text.push_str(&format!(
            "/// Sorts the {n} elements of `v` in place, ascending ({order} order), with the kernel\n/// above ({len} instructions, no branches).\n#[cfg(target_arch = \"x86_64\")]\n{allow}pub fn {name}(v: &mut [{el}; {n}]) {{\n    // SAFETY: the kernel reads and writes only the {n} {el} at the pointer; it changes no\n    // register the SysV ABI asks to preserve (callee-saved ones it uses are pushed and popped\n    // around its body) and no flags the ABI asks to preserve;\n    // superopt verified this for all inputs before and after writing this file.\n    {call}\n}}\n\n",
            len = doc.verdict.length,
            call = rust_call(doc, &symbol),
        ));
    } else {
        // The kernel needs CPU features: the wrapper checks them at run time (std's
        // `is_x86_feature_detected!`, cached after the first call) and refuses without them.
        // One (name, detected) pair per feature: the macro takes a literal.
        let pairs: Vec<String> = needs
            .iter()
            .map(|f| format!("(\"{f}\", std::arch::is_x86_feature_detected!(\"{f}\"))"))
            .collect();
        let list = needs.join(", ");
        text.push_str(&format!(
            "/// The CPU features the kernel needs: {list}.\n#[cfg(target_arch = \"x86_64\")]\npub const {upper}_NEEDS: &[&str] = &[{quoted}];\n\n/// Sorts the {n} elements of `v` in place, ascending ({order} order), with the kernel\n/// above ({len} instructions, no branches), if this CPU has {list}.\n///\n/// # Errors\n/// Without them, `v` unchanged and the features it lacks, e.g. `Err(\"{name} needs the\n/// CPU features {list}, which this CPU lacks\")` (std's `is_x86_feature_detected!`).\n#[cfg(target_arch = \"x86_64\")]\n{allow}pub fn try_{name}(v: &mut [{el}; {n}]) -> Result<(), String> {{\n    let lacks: Vec<&str> = [{pairs}]\n        .into_iter()\n        .filter(|&(_, has)| !has)\n        .map(|(f, _)| f)\n        .collect();\n    if !lacks.is_empty() {{\n        return Err(format!(\n            \"{name} needs the CPU features {{}}, which this CPU lacks\",\n            lacks.join(\", \")\n        ));\n    }}\n    // SAFETY: the CPU has the features the kernel's instructions need (checked above); the\n    // kernel reads and writes only the {n} {el} at the pointer and changes no register the\n    // SysV ABI asks to preserve (xmm registers are all caller-saved) and no flags the ABI\n    // asks to preserve; superopt proved it for all inputs before and after writing this file.\n    {call}\n    Ok(())\n}}\n\n/// [`try_{name}`], which panics with its message on a CPU without {list}.\n#[cfg(target_arch = \"x86_64\")]\n{allow}pub fn {name}(v: &mut [{el}; {n}]) {{\n    if let Err(why) = try_{name}(v) {{\n        panic!(\"{{why}}\");\n    }}\n}}\n\n",
            len = doc.verdict.length,
            upper = name.to_uppercase(),
            quoted = needs.iter().map(|f| format!("\"{f}\"")).collect::<Vec<_>>().join(", "),
            pairs = pairs.join(", "),
            call = rust_call(doc, &symbol),
        ));
    }
    // On a CPU without the features the sorting tests cannot run the kernel: they return
    // early (and pass; libtest has no run-time skip), printing why (`--nocapture` shows it).
    let skip = if needs.is_empty() {
        String::new()
    } else {
        format!(
            "        if let Err(why) = super::try_{name}(&mut [0; N]) {{\n            eprintln!(\"skipped: {{why}}\");\n            return;\n        }}\n"
        )
    };
    let refusal = if needs.is_empty() {
        String::new()
    } else {
        format!(
            r#"
    #[test]
    fn refuses_exactly_without_the_features() {{
        let lacks: Vec<&str> = [{pairs}]
            .into_iter()
            .filter(|&(_, has)| !has)
            .map(|(f, _)| f)
            .collect();
        let mut v = [0; N];
        v[0] = 1;
        let got = super::try_{name}(&mut v);
        if lacks.is_empty() {{
            assert_eq!(got, Ok(()));
        }} else {{
            let want = format!("{name} needs the CPU features {{}}, which this CPU lacks", lacks.join(", "));
            assert_eq!(got, Err(want));
            assert_eq!(v[0], 1, "a refused call leaves the array alone");
        }}
    }}
"#,
            pairs = needs
                .iter()
                .map(|f| format!("(\"{f}\", std::arch::is_x86_feature_detected!(\"{f}\"))"))
                .collect::<Vec<_>>()
                .join(", "),
        )
    };
    let orderings = doc.task.test_vectors().len();
    let extremes = rust_extremes(el);
    text.push_str(&format!(
        r#"#[cfg(all(test, target_arch = "x86_64"))]
mod tests {{
    // Under another name, so that the helpers below cannot clash with the kernel's.
    use super::{name} as exported;

    const N: usize = {n};

    /// The tuple number `code` in base `base`, digits mapped through `values`.
    fn tuple(mut code: usize, values: &[{el}]) -> [{el}; N] {{
        let mut v = [0; N];
        for x in v.iter_mut() {{
            *x = values[code % values.len()];
            code /= values.len();
        }}
        v
    }}

    fn check(v: [{el}; N]) {{
        let mut want = v;
        want.sort_unstable();
        let mut got = v;
        exported(&mut got);
        assert_eq!(got, want, "input {{v:?}}");
    }}

    #[test]
    fn sorts_all_weak_orderings() {{
{skip}        // The weak orderings of N elements: the tuples over 0..N whose values are 0..k.
        let digits: Vec<{el}> = (0..N as {el}).collect();
        let mut count = 0;
        for code in 0..N.pow(N as u32) {{
            let v = tuple(code, &digits);
            let k = v.iter().max().map_or(0, |&m| m + 1);
            if (0..k).all(|x| v.contains(&x)) {{
                check(v);
                count += 1;
            }}
        }}
        assert_eq!(count, {orderings});
    }}

    #[test]
    fn sorts_all_tuples_over_extremes() {{
{skip}        let extremes = {extremes};
        for code in 0..extremes.len().pow(N as u32) {{
            check(tuple(code, &extremes));
        }}
    }}
{refusal}}}
"#
    ));
    text
}

/// The extreme values of `el` as a Rust array expression, in the native stage's order
/// ([`crate::oracle::native::extremes`]): `[0, 1, -1, i32::MIN, ...]`.
fn rust_extremes(el: crate::isa::Element) -> String {
    let t = el.name();
    if el.is_signed() {
        format!("[0, 1, -1, {t}::MIN, {t}::MIN + 1, {t}::MAX - 1, {t}::MAX]")
    } else {
        format!("[0, 1, {t}::MAX - 1, {t}::MAX]")
    }
}

/// `tests/kernels.rs` of [`export_library`].
fn integration_tests(crate_name: &str, kernels: &[LibraryKernel]) -> String {
    let mut text = format!(
        r#"// {MARKER}
//! Calls each kernel of `{crate_name}` through the crate's public API.
#![cfg(target_arch = "x86_64")]

/// xorshift64: deterministic pseudo-random inputs.
fn next(state: &mut u64) -> u64 {{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}}
"#
    );
    for (task, kernel, _) in kernels {
        let n = task.n;
        let t = task.element.name();
        let needs = needed_features(kernel);
        let list = |f: &dyn Fn(usize) -> String| {
            format!("[{}]", (0..n).map(f).collect::<Vec<_>>().join(", "))
        };
        let (min, max) = (format!("{t}::MIN"), format!("{t}::MAX"));
        let low = if task.element.is_signed() {
            "-1".to_string()
        } else {
            format!("{t}::MAX - 1")
        };
        let cases = [
            list(&|i| format!("{}", n - 1 - i)),
            list(&|i| format!("{i}")),
            list(&|_| "7".into()),
            list(&|i| format!("{}", i % 2)),
            list(&|i| format!("{}", i.div_ceil(2))),
            list(&|i| if i % 2 == 0 { max.clone() } else { min.clone() }),
            list(&|i| if i == 0 { min.clone() } else { max.clone() }),
            list(&|i| [low.as_str(), "0", "1", &min, &max][i % 5].into()),
        ];
        let name = task.function_name();
        text.push_str(&format!(
            r#"
#[test]
fn {name}_sorts_ties_extremes_and_random_inputs() {{
"#
        ));
        if !needs.is_empty() {
            // The kernel needs CPU features: on a CPU without them the wrapper refuses,
            // which the module's own tests check; here the test says it skipped.
            text.push_str(&format!(
                "    if let Err(why) = {crate_name}::{name}::try_{name}(&mut [0; {n}]) {{\n        eprintln!(\"skipped: {{why}}\");\n        return;\n    }}\n"
            ));
        }
        text.push_str(&format!(
            r#"    let mut cases: Vec<[{t}; {n}]> = vec![
"#
        ));
        for c in cases {
            text.push_str(&format!("        {c},\n"));
        }
        text.push_str(&format!(
            r#"    ];
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    for _ in 0..1000 {{
        let mut v = [0; {n}];
        for x in v.iter_mut() {{
            // Small values half the time, so that ties are common.
            let r = next(&mut state);
            *x = if r & 1 == 0 {{ (r % 3) as {t} }} else {{ r.rotate_right(1) as {t} }};
        }}
        cases.push(v);
    }}
    for v in cases {{
        let mut want = v;
        want.sort_unstable();
        let mut got = v;
        {crate_name}::{name}(&mut got);
        assert_eq!(got, want, "input {{v:?}}");
    }}
}}
"#
        ));
    }
    text
}

/// The first line of every file `superopt export` writes, inside the comment syntax of the
/// file (`/* ... */` in `.S` and `.h` files, `//` in `.rs` files, `#` in `Cargo.toml`).
/// With `--overwrite`, an existing file is replaced only if its first line carries this
/// text, so that an export never replaces a file that superopt did not write (a crate's
/// own `Cargo.toml`, someone's `sort3.S`). Keep it stable: files written by earlier
/// versions are recognised by it.
pub const MARKER: &str =
    "Generated by superopt export (superopt export --overwrite may replace this file)";

/// Whether `path` is a regular file (not a symlink, FIFO or folder) whose first line
/// carries [`MARKER`]. Reads at most 4 KiB. The file is opened without following a symlink
/// and without blocking, so that one swapped in after the check is neither followed nor
/// waited on.
fn written_by_superopt(path: &Path) -> bool {
    crate::log::read_head(path).is_some_and(|head| {
        let first = head.split(|&b| b == b'\n').next().unwrap_or_default();
        String::from_utf8_lossy(first).contains(MARKER)
    })
}

/// What a write must leave alone, and how the messages say so.
struct Guard<'a> {
    /// The folder the files go under (`-o DIR`, `--library DIR`): no folder between it and a
    /// file may be a symbolic link.
    root: &'a Path,
    /// The files the export reads: never written.
    inputs: &'a [PathBuf],
    /// What to do instead when a target is an input (`choose another -o DIR or --name`).
    instead: &'a str,
    /// Replace existing files that carry [`MARKER`].
    overwrite: bool,
}

/// Checks, before anything is written, that every target may be written: it is none of the
/// inputs; no folder on its path below `guard.root` (a library's `src/` and `tests/`) is a
/// symbolic link, which would take the file into another folder (another crate's); and if
/// it exists, it carries [`MARKER`] and `overwrite` is set; then that each one can be
/// written ([`crate::log::check_writable`], which creates missing folders).
///
/// Errors: [`Error::Runtime`], one line naming the target (`DIR/sort3.S is the input file
/// k.S; export never replaces its input (choose another -o DIR or --name)`, `DIR/src is a
/// symbolic link; export never writes through one (choose another --library DIR)`, `DIR/Cargo.toml
/// exists and was not written by superopt; refusing to replace it (move it away first)`,
/// `DIR/sort3.S exists; pass --overwrite to replace it`); [`Error::Io`] from the check that
/// it can be written.
fn check_targets(files: &[Planned], guard: &Guard) -> Result<()> {
    for f in files {
        if let Some(input) = guard
            .inputs
            .iter()
            .find(|i| crate::log::same_file(&f.path, i))
        {
            return Err(Error::Runtime(format!(
                "{} is the input file {}; export never replaces its input ({})",
                f.path.display(),
                input.display(),
                guard.instead
            )));
        }
    }
    for f in files {
        let Ok(below) = f.path.strip_prefix(guard.root) else {
            continue;
        };
        let mut folder = guard.root.to_path_buf();
        let components: Vec<_> = below.components().collect();
        for c in &components[..components.len().saturating_sub(1)] {
            folder.push(c);
            if std::fs::symlink_metadata(&folder).is_ok_and(|m| m.file_type().is_symlink()) {
                return Err(Error::Runtime(format!(
                    "{} is a symbolic link; export never writes through one ({})",
                    folder.display(),
                    guard.instead
                )));
            }
        }
    }
    for f in files {
        let Ok(meta) = std::fs::symlink_metadata(&f.path) else {
            continue;
        };
        if meta.file_type().is_symlink() {
            return Err(Error::Runtime(format!(
                "{} is a symbolic link; export never writes through one (move it away first)",
                f.path.display()
            )));
        }
        if !written_by_superopt(&f.path) {
            return Err(Error::Runtime(format!(
                "{} exists and was not written by superopt; refusing to replace it (move it away first)",
                f.path.display()
            )));
        }
        if !guard.overwrite {
            return Err(Error::Runtime(format!(
                "{} exists; pass --overwrite to replace it",
                f.path.display()
            )));
        }
    }
    for f in files {
        crate::log::check_writable(&f.path)?;
    }
    Ok(())
}

/// Writes `files` for one task and checks them; see [`write_verified_tasks`].
fn write_verified(
    task: &Task,
    files: &[Planned],
    guard: &Guard,
    cfg: &NativeConfig,
) -> Result<Vec<Written>> {
    write_verified_tasks(files, |_| Some(task), guard, cfg)
}

/// Writes each of `files` to a temporary file beside its target, checks each one with code
/// (`task_of` gives its task) by reading the temporary file back from disk, and only when all
/// pass renames them into place. A failure leaves every target as it was (the temporary
/// files are deleted) and returns [`Error::NotVerified`] naming the file and the reason.
///
/// Errors: also those of [`check_targets`], which runs before anything is written.
fn write_verified_tasks<'a>(
    files: &[Planned],
    task_of: impl Fn(&Path) -> Option<&'a Task>,
    guard: &Guard,
    cfg: &NativeConfig,
) -> Result<Vec<Written>> {
    check_targets(files, guard)?;
    let mut temps = Vec::new();
    for f in files {
        let dir = match f.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| Error::io(dir, e))?;
        std::io::Write::write_all(&mut tmp, f.text.as_bytes())
            .and_then(|()| tmp.as_file().sync_all())
            .map_err(|e| Error::io(&f.path, e))?;
        temps.push(tmp);
    }
    let mut out = Vec::new();
    for (f, tmp) in files.iter().zip(&temps) {
        let check = match &f.check {
            Check::Note(line) => line.clone(),
            Check::Header { name, note } => {
                header_compiles(tmp.path(), name, note).map_err(|reason| {
                    Error::NotVerified(format!(
                        "{}: failed verification after writing: {reason}; nothing was written",
                        f.path.display()
                    ))
                })?
            }
            Check::Code { symbol, rust } => {
                let task = task_of(&f.path).expect("every code file has a task");
                verify_written(task, tmp.path(), &f.path, symbol, *rust, cfg).map_err(|reason| {
                    Error::NotVerified(format!(
                        "{}: failed verification after writing: {reason}; nothing was written",
                        f.path.display()
                    ))
                })?
            }
        };
        out.push(Written {
            path: f.path.clone(),
            check,
        });
    }
    place_all(files.iter().map(|f| f.path.as_path()).zip(temps))?;
    Ok(out)
}

/// Renames each checked temporary file onto its target, all or none: a target that exists is
/// first moved aside, and if any step fails, the files already placed are removed and the
/// old ones put back. Last file first, so that a crate's manifest and root and a C header
/// go in after the code they name.
///
/// Errors: [`Error::Io`] naming the target that could not be placed.
fn place_all<'a>(
    pairs: impl DoubleEndedIterator<Item = (&'a Path, tempfile::NamedTempFile)>,
) -> Result<()> {
    // (target, the old file moved aside, if there was one)
    let mut placed: Vec<(&Path, Option<tempfile::TempPath>)> = Vec::new();
    let undo = |placed: Vec<(&Path, Option<tempfile::TempPath>)>| {
        for (target, old) in placed.into_iter().rev() {
            match old {
                Some(old) => {
                    let _ = std::fs::rename(&old, target);
                    // Renamed away: nothing left for the TempPath to delete.
                    let _ = old.keep();
                }
                None => {
                    let _ = std::fs::remove_file(target);
                }
            }
        }
    };
    for (target, tmp) in pairs.rev() {
        let step = || -> Result<Option<tempfile::TempPath>> {
            let dir = match target.parent() {
                Some(d) if !d.as_os_str().is_empty() => d,
                _ => Path::new("."),
            };
            let old = if std::fs::symlink_metadata(target).is_ok() {
                let aside = tempfile::Builder::new()
                    .prefix(".superopt-old-")
                    .tempfile_in(dir)
                    .map_err(|e| Error::io(dir, e))?
                    .into_temp_path();
                std::fs::rename(target, &aside).map_err(|e| Error::io(target, e))?;
                Some(aside)
            } else {
                None
            };
            Ok(old)
        };
        let old = match step() {
            Ok(old) => old,
            Err(e) => {
                undo(placed);
                return Err(e);
            }
        };
        let had_old = old.is_some();
        placed.push((target, old));
        if let Err(e) = tmp
            .persist(target)
            .map_err(|e| Error::io(target, e.error))
            .and_then(|_| crate::log::readable(target))
        {
            // Nothing was placed at `target` unless the rename itself succeeded.
            if !had_old && std::fs::symlink_metadata(target).is_err() {
                placed.pop();
            }
            undo(placed);
            return Err(e);
        }
    }
    // Success: the old files moved aside are deleted as their TempPaths drop.
    Ok(())
}

/// The string literals of the `global_asm!(...)` invocation in a Rust file, unescaped (and
/// `{{`/`}}` undoubled), with their 1-based lines in the file. Only plain one-line literals
/// with the escapes [`rust_literal`] writes (plus `\n`, `\t`, `\'`) are read.
fn global_asm_literals(text: &str) -> std::result::Result<Vec<(usize, String)>, String> {
    let mut out = Vec::new();
    let mut inside = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if !inside {
            inside = line.starts_with("core::arch::global_asm!(");
            continue;
        }
        if line.starts_with(')') {
            if out.is_empty() {
                break;
            }
            return Ok(out);
        }
        let Some(body) = line.strip_prefix('"') else {
            continue; // options(...), comments
        };
        let body = body
            .strip_suffix(',')
            .unwrap_or(body)
            .strip_suffix('"')
            .ok_or_else(|| format!("line {}: unterminated string literal", i + 1))?;
        let mut s = String::new();
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some('\\') => s.push('\\'),
                    Some('"') => s.push('"'),
                    Some('\'') => s.push('\''),
                    Some('n') => s.push('\n'),
                    Some('t') => s.push('\t'),
                    other => {
                        return Err(format!(
                            "line {}: unsupported escape \\{}",
                            i + 1,
                            other.map_or(String::new(), String::from)
                        ))
                    }
                },
                '"' => return Err(format!("line {}: unescaped quote", i + 1)),
                '{' | '}' => {
                    if chars.next() != Some(c) {
                        return Err(format!("line {}: format placeholder {c}", i + 1));
                    }
                    s.push(c);
                }
                c => s.push(c),
            }
        }
        out.push((i + 1, s));
    }
    Err("no global_asm! with string literals".into())
}

/// Checks a written file from disk: assembles it (for `rust`, its `global_asm!` literals)
/// with GNU as, cuts out `symbol`, decodes it, checks pushes / pops / `ret` and verifies the
/// body with the oracle. Returns the check line, or the reason it failed.
fn verify_written(
    task: &Task,
    path: &Path,
    shown: &Path,
    symbol: &str,
    rust: bool,
    cfg: &NativeConfig,
) -> std::result::Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it back: {e}"))?;
    let (asm_text, line_of): (String, Vec<usize>) = if rust {
        let lits = global_asm_literals(&text)?;
        let asm = lits.iter().map(|(_, s)| s.as_str()).collect::<Vec<_>>();
        (asm.join("\n"), lits.iter().map(|(l, _)| *l).collect())
    } else {
        (text.clone(), (1..=text.lines().count()).collect())
    };
    let source = shown.display().to_string();
    let bytes = asm::assemble_function(&asm_text, symbol, &source).map_err(|e| match e {
        // GNU as's line in the assembly text, mapped to the file's line.
        Error::Asm { line, message, .. } => {
            let line = line_of.get(line.wrapping_sub(1)).copied().unwrap_or(line);
            format!("GNU as: line {line}: {message}")
        }
        e => e.to_string(),
    })?;
    let mut decoder = Decoder::with_ip(64, &bytes, 0, DecoderOptions::NONE);
    let mut all = Vec::new();
    while decoder.can_decode() {
        let ins = decoder.decode();
        if ins.is_invalid() {
            return Err(format!(
                "symbol {symbol}: invalid instruction at byte {}",
                ins.ip()
            ));
        }
        all.push(ins);
    }
    if all.last().map(|i| i.code()) != Some(Code::Retnq) {
        return Err(format!("symbol {symbol} does not end with ret"));
    }
    let push_reg = |ins: &iced_x86::Instruction| {
        (ins.code() == Code::Push_r64 && CALLEE_SAVED.contains(&ins.op0_register()))
            .then(|| ins.op0_register())
    };
    let pop_reg = |ins: &iced_x86::Instruction| {
        (ins.code() == Code::Pop_r64 && CALLEE_SAVED.contains(&ins.op0_register()))
            .then(|| ins.op0_register())
    };
    let pushes: Vec<Register> = all.iter().map_while(push_reg).collect();
    let before_ret = &all[pushes.len()..all.len() - 1];
    let pops: Vec<Register> = before_ret.iter().rev().map_while(pop_reg).collect();
    if pops != pushes {
        let names = |v: &[Register]| {
            let s: Vec<String> = v.iter().map(|r| format!("{r:?}").to_lowercase()).collect();
            if s.is_empty() {
                "none".to_string()
            } else {
                s.join(" ")
            }
        };
        return Err(format!(
            "the pops before ret ({}) do not match the pushes ({}) in reverse order",
            names(&pops),
            names(&pushes)
        ));
    }
    let body = &before_ret[..before_ret.len() - pops.len()];
    if body.is_empty() {
        return Err(format!("symbol {symbol} has no instructions besides ret"));
    }
    let start = body[0].ip() as usize;
    let end = (body[body.len() - 1].ip() as usize) + body[body.len() - 1].len();
    let code = bytes[start..end].to_vec();
    let mut decoded = Vec::new();
    let mut decoder = Decoder::with_ip(64, &code, 0, DecoderOptions::NONE);
    while decoder.can_decode() {
        decoded.push(decoder.decode());
    }
    // The file's lines of the instructions: the statements after the label, if they match.
    let label = format!("{symbol}:");
    let asm_lines: Vec<&str> = asm_text.lines().collect();
    let mut stmt_lines: Vec<usize> = Vec::new();
    if let Some(at) = asm_lines.iter().position(|l| l.trim() == label) {
        for (k, l) in asm_lines.iter().enumerate().skip(at + 1) {
            let l = l.trim();
            let statement = !(l.is_empty()
                || l.starts_with('.')
                || l.starts_with("/*")
                || l.starts_with('*')
                || l.starts_with('#')
                || l.starts_with("//")
                || l.ends_with(':'));
            if statement {
                stmt_lines.push(line_of.get(k).copied().unwrap_or(k + 1));
                if l == "ret" {
                    break;
                }
            }
        }
    }
    let lines = if stmt_lines.len() == all.len() {
        stmt_lines[pushes.len()..pushes.len() + decoded.len()].to_vec()
    } else {
        (1..=decoded.len()).collect()
    };
    let kernel = Kernel {
        source: source.clone(),
        lines,
        text: Vec::new(),
        code,
        decoded,
        ret_line: None,
        cpp_checked: None,
    };
    let verdict = oracle::verify_kernel(task, &kernel, cfg).map_err(|e| e.to_string())?;
    match verdict.status {
        Status::Verified | Status::ProvedNotRun => {
            let saved = if pushes.is_empty() {
                String::new()
            } else {
                format!(
                    ", with a push and pop of {} callee-saved register{}",
                    pushes.len(),
                    if pushes.len() == 1 { "" } else { "s" }
                )
            };
            let proof = verdict
                .checks
                .iter()
                .find(|c| c.starts_with("proved"))
                .cloned()
                .unwrap_or_default();
            let native = verdict
                .checks
                .iter()
                .filter(|c| c.starts_with("native:"))
                .count();
            let compiled = if rust {
                format!("; {}", rustc_checks(path)?)
            } else {
                String::new()
            };
            if verdict.status == Status::ProvedNotRun {
                return Ok(format!(
                    "proved again after writing: GNU as assembled symbol {symbol} to {} instructions + ret{saved}; {proof}; {}{compiled}",
                    verdict.length,
                    verdict.reason.as_deref().unwrap_or("not run")
                ));
            }
            Ok(format!(
                "verified again after writing: GNU as assembled symbol {symbol} to {} instructions + ret{saved}; {proof}; {native} native checks passed{compiled}",
                verdict.length
            ))
        }
        _ => Err(verdict.reason.unwrap_or_else(|| "not verified".into())),
    }
}

/// The check line of a C header written to `path` (shown as its target) that declares
/// `name`: `note`, then what gcc said of it after the standard headers
/// (`gcc_after_headers`): `; gcc compiled it after the standard C and POSIX headers, with a
/// call of NAME`, or `; not compiled: gcc not found`. Returns the reason when gcc refuses it.
fn header_compiles(path: &Path, name: &str, note: &str) -> std::result::Result<String, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read it back: {e}"))?;
    match gcc_after_headers(name, &text).map_err(|e| e.to_string())? {
        Gcc::Compiles => Ok(format!(
            "{note}; gcc compiled it after the standard C and POSIX headers, with a call of {name}"
        )),
        Gcc::Unavailable(why) => Ok(format!("{note}; not compiled: {why}")),
        Gcc::Macro => Err(format!(
            "{name} is a macro after the standard C and POSIX headers (gcc)"
        )),
        Gcc::Refused(why) => Err(format!(
            "gcc refuses it after the standard C and POSIX headers: {why}"
        )),
    }
}

/// The limits for rustc on one exported module: 120 s, and no memory limit (rustc reserves
/// large address ranges that it never touches).
const RUSTC_LIMITS: crate::tool::Limits = crate::tool::Limits {
    time: std::time::Duration::from_secs(120),
    memory: None,
};

/// Type-checks the Rust module at `path` with the rustc on `PATH`, run in the module's
/// folder (so that a toolchain the destination pins is the one used): edition 2021, as a
/// crate with its tests (`--test --emit=metadata`, which parses the doc comments and checks
/// every item, the tests included, without generating code). Warnings are not errors.
/// Returns the check line's part (`rustc type-checked the module and its tests`, or
/// `not compiled: rustc not found`), or the reason (`rustc refuses it: line 5: ...`). A
/// failure is checked again on an empty crate, so that a rustc that fails on everything is
/// reported as such (`not compiled: rustc fails on an empty crate here`), not blamed on the
/// module.
fn rustc_checks(path: &Path) -> std::result::Result<String, String> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let file = path.file_name().unwrap_or_default();
    let out = tempfile::Builder::new()
        .prefix("superopt-rustc")
        .tempdir()
        .map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    let run = |source: &std::ffi::OsStr| {
        crate::tool::run(
            std::process::Command::new("rustc")
                .args(["--edition", "2021", "--test", "--emit=metadata"])
                .args([
                    "--crate-name",
                    "superopt_check",
                    "--error-format=short",
                    "-o",
                ])
                .arg(out.path().join("check.rmeta"))
                .arg(source)
                .env("LC_ALL", "C")
                .current_dir(dir),
            "rustc",
            RUSTC_LIMITS,
        )
    };
    let o = match run(file) {
        Ok(o) => o,
        Err(Error::Runtime(m)) if m.starts_with("rustc not found") => {
            return Ok("not compiled: rustc not found".into())
        }
        Err(e) => return Err(e.to_string()),
    };
    if o.status.success() {
        return Ok("rustc type-checked the module and its tests".into());
    }
    let empty = out.path().join("empty.rs");
    std::fs::write(&empty, "pub fn f() {}\n").map_err(|e| e.to_string())?;
    if !run(empty.as_os_str()).is_ok_and(|o| o.status.success()) {
        return Ok("not compiled: rustc fails on an empty crate here".into());
    }
    // `FILE:LINE:COL: error[E0308]: MESSAGE`.
    let stderr = String::from_utf8_lossy(&o.stderr);
    let prefix = format!("{}:", file.to_string_lossy());
    let why = stderr
        .lines()
        .find_map(|l| {
            let (line, rest) = l.strip_prefix(&prefix)?.split_once(':')?;
            let (_, rest) = rest.split_once(": ")?;
            let message = rest.split_once(": ").map_or(rest, |(_, m)| m);
            rest.starts_with("error")
                .then(|| format!("line {line}: {message}"))
        })
        .or_else(|| {
            stderr
                .lines()
                .find(|l| l.contains("error"))
                .map(str::to_string)
        })
        .unwrap_or_else(|| "it does not compile".into());
    Err(format!("rustc refuses it: {why}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sort3_att() -> Vec<String> {
        let log =
            crate::log::SearchLog::read(Path::new("search-logs/examples/sort3-mcts-seed1.json"))
                .unwrap();
        log.best.unwrap().program_att
    }

    /// No inputs to protect.
    fn guard(overwrite: bool) -> Guard<'static> {
        Guard {
            root: Path::new("."),
            inputs: &[],
            instead: "choose another -o DIR or --name",
            overwrite,
        }
    }

    fn cfg() -> NativeConfig {
        NativeConfig {
            random: 1000,
            seed: 0,
        }
    }

    /// A placement that fails midway puts back what it had already replaced or added.
    #[test]
    fn placing_is_all_or_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let a = d.join("a.S");
        let c = d.join("c.h");
        std::fs::write(&a, "old a").unwrap();
        // A target that cannot be replaced by a file: a folder with something in it.
        let b = d.join("b.rs");
        std::fs::create_dir(&b).unwrap();
        std::fs::write(b.join("x"), "x").unwrap();
        let temp = |text: &str| {
            let mut t = tempfile::NamedTempFile::new_in(d).unwrap();
            std::io::Write::write_all(&mut t, text.as_bytes()).unwrap();
            t
        };
        // Placed last first: c.h (new), then a.S (replaced), then b.rs fails.
        let pairs = vec![
            (b.as_path(), temp("new b")),
            (a.as_path(), temp("new a")),
            (c.as_path(), temp("new c")),
        ];
        assert!(place_all(pairs.into_iter()).is_err());
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old a");
        assert!(!c.exists());
        assert!(b.join("x").exists());
        let mut left: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            ["a.S", "b.rs"],
            "no temporary or moved-aside file left"
        );
        // And when every step works, every target holds its new text.
        let pairs = vec![(a.as_path(), temp("new a")), (c.as_path(), temp("new c"))];
        place_all(pairs.into_iter()).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new a");
        assert_eq!(std::fs::read_to_string(&c).unwrap(), "new c");
        assert_eq!(std::fs::read_dir(d).unwrap().count(), 3);
    }

    #[test]
    fn only_regular_files_with_the_marker_on_their_first_line_count_as_ours() {
        let tmp = tempfile::tempdir().unwrap();
        let p = |f: &str| tmp.path().join(f);
        std::fs::write(p("ours.S"), format!("/* {MARKER}\n * x\n */\n")).unwrap();
        std::fs::write(p("toml"), format!("# {MARKER}\n[package]\n")).unwrap();
        std::fs::write(p("second.S"), format!("/* mine */\n/* {MARKER} */\n")).unwrap();
        std::fs::write(p("empty"), "").unwrap();
        std::os::unix::fs::symlink(p("ours.S"), p("link.S")).unwrap();
        let fifo = std::ffi::CString::new(p("fifo").display().to_string()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        std::fs::create_dir(p("dir")).unwrap();
        assert!(written_by_superopt(&p("ours.S")));
        assert!(written_by_superopt(&p("toml")));
        // A FIFO is neither ours nor waited on; a symlink to our file is not ours either.
        for f in ["second.S", "empty", "link.S", "fifo", "dir", "missing"] {
            assert!(!written_by_superopt(&p(f)), "{f}");
        }
    }

    #[test]
    fn workspaces_are_found_however_their_table_is_written() {
        let tmp = tempfile::tempdir().unwrap();
        let inner = tmp.path().join("crates").join("kern");
        assert_eq!(enclosing_workspace(&inner), None);
        for manifest in [
            "[workspace] # the workspace\nmembers = [\"crates/*\"]\n",
            "[ workspace ]\n",
            "workspace = { members = [\"crates/*\"] }\n",
            "[workspace.package]\nversion = \"1.0.0\"\n",
        ] {
            std::fs::write(tmp.path().join("Cargo.toml"), manifest).unwrap();
            assert_eq!(
                enclosing_workspace(&inner),
                Some(tmp.path().join("Cargo.toml")),
                "{manifest}"
            );
        }
        std::fs::write(tmp.path().join("Cargo.toml"), "[package]\nname = \"x\"\n").unwrap();
        assert_eq!(enclosing_workspace(&inner), None);
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("sort3").is_ok());
        assert!(check_name("Sort_3").is_ok());
        let msg = |n: &str| check_name(n).unwrap_err().to_string();
        assert_eq!(
            msg("for"),
            "invalid name 'for': a keyword in C and Rust; choose another with --name"
        );
        assert_eq!(
            msg("fn"),
            "invalid name 'fn': a keyword in Rust; choose another with --name"
        );
        assert_eq!(
            msg("int"),
            "invalid name 'int': a keyword in C; choose another with --name"
        );
        assert_eq!(
            msg("3sort"),
            "invalid name '3sort': use ASCII letters, digits and '_', not starting with a digit; choose another with --name"
        );
        assert_eq!(
            msg("my-sort"),
            "invalid name 'my-sort': use ASCII letters, digits and '_', not starting with a digit; choose another with --name"
        );
        assert_eq!(
            msg(""),
            "invalid name '': use ASCII letters, digits and '_', not starting with a digit; choose another with --name"
        );
    }

    /// Whatever a path or task file holds, comment text is printable ASCII that closes no
    /// comment and opens none.
    #[test]
    fn comment_text_escapes_everything_but_printable_ascii() {
        assert_eq!(
            comment_text("a*/b/*c\u{202e}d\u{2066}e\u{200b}f\u{e9}\n\r\t\\\u{7f}\u{0}"),
            "a* /b/ *c\\u{202e}d\\u{2066}e\\u{200b}f\\u{e9}\\n\\r\\t\\\\\\u{7f}\\u{0}"
        );
        // `*/` and `/*` overlapping, and runs of them.
        assert_eq!(comment_text("/*/"), "/ * /");
        assert_eq!(comment_text("**//**"), "** // **");
        assert_eq!(
            comment_text("search log a b/c.json"),
            "search log a b/c.json"
        );
        for c in [
            '\u{202a}', '\u{202b}', '\u{202c}', '\u{202d}', '\u{2067}', '\u{2068}', '\u{2069}',
            '\u{feff}',
        ] {
            let out = comment_text(&format!("x{c}y"));
            assert!(out.chars().all(|c| (' '..='~').contains(&c)), "{out}");
            assert_eq!(out, format!("x\\u{{{:x}}}y", c as u32));
        }
    }

    /// The names of the C library that broke programs including common headers, refused by
    /// the lists on any machine (with or without gcc).
    #[test]
    fn c_and_posix_library_names_are_refused() {
        let msg = |n: &str| check_name(n).unwrap_err().to_string();
        for n in [
            "RAND_MAX",
            "offsetof",
            "CHAR_BIT",
            "INFINITY",
            "NAN",
            "isnan",
            "signbit",
            "va_arg",
            "va_start",
            "I",
            "complex",
            "imaginary",
            "noreturn",
            "unreachable",
            "MB_CUR_MAX",
            "math_errhandling",
            "sqrtf",
            "fabsl",
            "cexp",
            "strtok",
            "wcslen",
            "call_once",
        ] {
            assert_eq!(
                msg(n),
                format!("invalid name '{n}': a name of the C standard library (or main), which the export would clash with; choose another with --name")
            );
        }
        for n in [
            "stat", "wait", "environ", "timezone", "getline", "M_PI", "y0",
        ] {
            assert_eq!(
                msg(n),
                format!("invalid name '{n}': a name of the POSIX C library, which the export would clash with; choose another with --name")
            );
        }
        for (n, why) in [
            ("EINVAL", "E and an upper-case letter or a digit"),
            ("E2BIG", "E and an upper-case letter or a digit"),
            ("SIGSORT", "SIG and an upper-case letter"),
            ("SIG_SORT", "SIG_ and an upper-case letter"),
            ("LC_SORT", "LC_ and an upper-case letter"),
            ("FLT_SORT", "FLT_ and an upper-case letter"),
            ("PRIsort", "PRI and a lower-case letter or X"),
            ("atomic_sort", "atomic_ and a lower-case letter"),
            ("pthread_sort", "pthread_ and a lower-case letter"),
        ] {
            assert_eq!(
                msg(n),
                format!("invalid name '{n}': reserved for the C or POSIX library (names starting with {why}); choose another with --name")
            );
        }
        // Near misses are names like any other.
        for n in [
            "Esort", "SIGs", "is_nan", "sqrt3", "stats", "sort3f", "atomic_", "Ix",
        ] {
            assert_eq!(reserved_prefix(n), None, "{n}");
            assert!(
                !listed(C_LIBRARY, n) && !math_function(n) && !listed(POSIX_LIBRARY, n),
                "{n}"
            );
        }
    }

    /// Whether gcc is installed (tests that need it say so when it is not).
    fn have_gcc() -> bool {
        let ok = std::process::Command::new("gcc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok {
            eprintln!("note: gcc not found; skipping the part of this test that needs it");
        }
        ok
    }

    /// gcc, after every standard and common POSIX header, catches what the lists miss.
    #[test]
    fn gcc_refuses_names_the_headers_define() {
        if !have_gcc() {
            assert_eq!(
                gcc_after_headers(
                    "sort3",
                    &c_declaration("sort3", 3, crate::isa::Element::I32, 4)
                )
                .unwrap(),
                Gcc::Unavailable("gcc not found".into())
            );
            return;
        }
        let probe = |n: &str| {
            gcc_after_headers(n, &c_declaration(n, 3, crate::isa::Element::I32, 4)).unwrap()
        };
        assert_eq!(probe("sort3"), Gcc::Compiles);
        for n in [
            "RAND_MAX", "isnan", "I", "complex", "noreturn", "offsetof", "M_SQRT2", "MIN",
        ] {
            assert_eq!(probe(n), Gcc::Macro, "{n}");
        }
        for n in [
            "stat",
            "wait",
            "environ",
            "timezone",
            "strverscmp",
            "qsort_r",
        ] {
            assert!(matches!(probe(n), Gcc::Refused(_)), "{n}: {:?}", probe(n));
        }
        // Not in any list, so refused by gcc alone, with its own reason.
        assert_eq!(
            check_name("strverscmp").unwrap_err().to_string(),
            "invalid name 'strverscmp': declared by the standard C or POSIX headers, so the header does not compile in a program that includes them (gcc); choose another with --name"
        );
        assert_eq!(
            check_name("M_SQRT2").unwrap_err().to_string(),
            "invalid name 'M_SQRT2': a macro of the standard C or POSIX headers, which would rewrite the header in a program that includes them (gcc); choose another with --name"
        );
        // A written header is compiled as it is: a nested comment opener is a warning, so
        // an error, reported with the header's line.
        let dir = tempfile::tempdir().unwrap();
        let h = dir.path().join("h");
        std::fs::write(
            &h,
            format!(
                "/* a /* b */\n{}",
                c_declaration("sort3", 3, crate::isa::Element::I32, 4)
            ),
        )
        .unwrap();
        let err = header_compiles(&h, "sort3", "note").unwrap_err();
        assert!(
            err.starts_with("gcc refuses it after the standard C and POSIX headers: line 1: "),
            "{err}"
        );
        std::fs::write(
            &h,
            format!(
                "/* a / * b */\n{}",
                c_declaration("sort3", 3, crate::isa::Element::I32, 4)
            ),
        )
        .unwrap();
        assert_eq!(
            header_compiles(&h, "sort3", "note").unwrap(),
            "note; gcc compiled it after the standard C and POSIX headers, with a call of sort3"
        );
    }

    /// A Rust module that GNU as and the oracle accept but rustc does not (a bidirectional
    /// character in a doc comment) fails the check after writing.
    #[test]
    fn rustc_checks_the_rust_module() {
        let task = Task::load("sort3").unwrap();
        let kernel = asm::parse_str(&sort3_att().join("\n"), asm::Syntax::Att, "<log>").unwrap();
        let verdict = require_verified(&task, &kernel, &cfg()).unwrap();
        let doc = Doc {
            task: &task,
            kernel: &kernel,
            verdict: &verdict,
            provenance: "file bidi\u{202e}.s",
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sort3.rs");
        let text = rust_module(&doc, &kernel, "sort3");
        assert!(text.contains("//! From: file bidi\\u{202e}.s\n"), "{text}");
        std::fs::write(&path, &text).unwrap();
        let rustc = std::process::Command::new("rustc")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        let ok = verify_written(&task, &path, &path, "superopt_sort3", true, &cfg()).unwrap();
        if !rustc {
            assert!(ok.ends_with("; not compiled: rustc not found"), "{ok}");
            return;
        }
        assert!(
            ok.ends_with("native checks passed; rustc type-checked the module and its tests"),
            "{ok}"
        );
        // The character itself, as the old escaping wrote it.
        let line = text
            .lines()
            .position(|l| l.starts_with("//! From:"))
            .unwrap()
            + 1;
        std::fs::write(&path, text.replace("\\u{202e}", "\u{202e}")).unwrap();
        let err = verify_written(&task, &path, &path, "superopt_sort3", true, &cfg()).unwrap_err();
        assert!(
            err.starts_with(&format!(
                "rustc refuses it: line {line}: unicode codepoint changing visible direction of text present in doc comment"
            )),
            "{err}"
        );
        assert_eq!(err.lines().count(), 1);
    }

    /// The probe is what catches GNU as's own register names: iced-x86 does not know them.
    #[test]
    fn gnu_as_decides_what_is_a_symbol() {
        for name in ["r8b", "r15b", "axl", "bxl", "R9B"] {
            assert!(!is_register(&name.to_ascii_lowercase()), "{name}");
            assert_eq!(
                probe_name(name).unwrap(),
                Some(asm::Syntax::Intel),
                "{name}"
            );
        }
        // Known to both (the list answers first, but GNU as agrees).
        for name in ["sil", "rax", "xmm0", "dword", "offset"] {
            assert_eq!(
                probe_name(name).unwrap(),
                Some(asm::Syntax::Intel),
                "{name}"
            );
        }
        for name in ["sort3", "r8x", "eiz", "My_Sort"] {
            assert_eq!(probe_name(name).unwrap(), None, "{name}");
        }
        assert!(check_name("r8x").is_ok());
        assert_eq!(
            check_name("r8b").unwrap_err().to_string(),
            "invalid name 'r8b': a register or operator name in Intel syntax, which GNU as would not read as a symbol; choose another with --name"
        );
    }

    #[test]
    fn library_names_get_the_library_hint() {
        assert!(check_library_name("sort3").is_ok());
        let msg = |n: &str| check_library_name(n).unwrap_err().to_string();
        assert_eq!(
            msg("fn"),
            "invalid name 'fn': a keyword in Rust; --library names each module and function after its task: rename the task (the name field of its task file)"
        );
        assert_eq!(
            msg("r15b"),
            "invalid name 'r15b': a register or operator name in Intel syntax, which GNU as would not read as a symbol; --library names each module and function after its task: rename the task (the name field of its task file)"
        );
        assert_eq!(
            msg("lib"),
            "invalid name 'lib': the crate root is src/lib.rs, so no module can be named lib; --library names each module and function after its task: rename the task (the name field of its task file)"
        );
    }

    #[test]
    fn crate_names_come_from_the_folder() {
        assert_eq!(
            crate_name_for(Path::new("/tmp/My-Kernels.v2")).unwrap(),
            "my_kernels_v2"
        );
        assert_eq!(crate_name_for(Path::new("out/2-fast")).unwrap(), "fast");
        assert_eq!(
            crate_name_for(Path::new("/tmp/123"))
                .unwrap_err()
                .to_string(),
            "cannot make a crate name from '/tmp/123': give one with --crate-name"
        );
    }

    // The push/pop generation on a synthetic kernel that uses ebx and r12d (tests/large.rs
    // exports a verified sort8 kernel that uses ebx).
    #[test]
    fn callee_saved_registers_are_pushed_and_popped() {
        let k = asm::parse_str(
            "mov (%rdi), %ebx\nmov %ebx, %eax\nmov %r12d, %ecx",
            asm::Syntax::Att,
            "<synthetic>",
        )
        .unwrap();
        assert_eq!(callee_saved_used(&k), vec![Register::RBX, Register::R12]);
        assert_eq!(
            function_lines(&k, asm::Syntax::Att),
            [
                "push %rbx",
                "push %r12",
                "mov (%rdi), %ebx",
                "mov %ebx, %eax",
                "mov %r12d, %ecx",
                "pop %r12",
                "pop %rbx",
                "ret"
            ]
        );
        assert_eq!(
            function_lines(&k, asm::Syntax::Intel),
            [
                "push rbx",
                "push r12",
                "mov ebx, [rdi]",
                "mov eax, ebx",
                "mov ecx, r12d",
                "pop r12",
                "pop rbx",
                "ret"
            ]
        );
    }

    #[test]
    fn literals_round_trip() {
        let lines = [
            ".pushsection .x,\"ax\",@progbits",
            "a\\b {x}",
            "mov (%rdi), %eax",
        ];
        let text = format!(
            "core::arch::global_asm!(\n{}\n    options(att_syntax)\n);\n",
            lines
                .iter()
                .map(|l| format!("    {},", rust_literal(l)))
                .collect::<Vec<_>>()
                .join("\n")
        );
        let back = global_asm_literals(&text).unwrap();
        assert_eq!(
            back,
            vec![
                (2, lines[0].to_string()),
                (3, lines[1].to_string()),
                (4, lines[2].to_string())
            ]
        );
    }

    /// Writes a sort3 export, tampers with a copy of its text (drops the last cmov) and
    /// checks that the re-verification catches it and leaves the existing target untouched.
    #[test]
    fn a_tampered_file_fails_the_check_after_writing_and_nothing_is_replaced() {
        let task = Task::load("sort3").unwrap();
        let kernel = asm::parse_str(&sort3_att().join("\n"), asm::Syntax::Att, "<log>").unwrap();
        let verdict = require_verified(&task, &kernel, &cfg()).unwrap();
        let doc = Doc {
            task: &task,
            kernel: &kernel,
            verdict: &verdict,
            provenance: "test",
        };
        let dir = tempfile::tempdir().unwrap();
        for syntax in [asm::Syntax::Att, asm::Syntax::Intel] {
            let good = asm_file(dir.path(), &doc, &kernel, "sort3", syntax);
            // The untampered file passes (replacing the previous round's file).
            let written = write_verified(&task, &[good], &guard(true), &cfg()).unwrap();
            assert!(written[0].check.starts_with(
                "verified again after writing: GNU as assembled symbol sort3 to 17 instructions + ret; proved on all 13 weak orderings"
            ), "{}", written[0].check);
            let mut bad = asm_file(dir.path(), &doc, &kernel, "sort3", syntax);
            let at = bad.text.rfind("    cmov").unwrap();
            let end = at + bad.text[at..].find('\n').unwrap() + 1;
            bad.text.replace_range(at..end, "");
            let path = bad.path.clone();
            let before = std::fs::read_to_string(&path).unwrap();
            let err = write_verified(&task, &[bad], &guard(true), &cfg())
                .unwrap_err()
                .to_string();
            assert!(
                err.starts_with(&format!(
                    "{}: failed verification after writing: not sorted: [",
                    path.display()
                )),
                "{err}"
            );
            assert!(err.ends_with("; nothing was written"), "{err}");
            // The good file from before is still there, unchanged, and no temporary file.
            assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
            assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
            // Without --overwrite an existing file is refused before anything is checked.
            let again = asm_file(dir.path(), &doc, &kernel, "sort3", syntax);
            let err = write_verified(&task, &[again], &guard(false), &cfg()).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("{} exists; pass --overwrite to replace it", path.display())
            );
            std::fs::remove_file(&path).unwrap();
        }
        // Edited on disk after a good export: verify_written reads the file itself.
        let good = asm_file(dir.path(), &doc, &kernel, "sort3", asm::Syntax::Att);
        write_verified(&task, &[good], &guard(false), &cfg()).unwrap();
        let path = dir.path().join("sort3.S");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("    cmovl", "    cmovg", 1)).unwrap();
        let err = verify_written(&task, &path, &path, "sort3", false, &cfg()).unwrap_err();
        assert!(err.starts_with("not sorted: ["), "{err}");
        std::fs::write(
            &path,
            text.replacen("    pop", "    nop", 1)
                .replacen("    ret", "    pop %rbx\n    ret", 1),
        )
        .unwrap();
        assert_eq!(
            verify_written(&task, &path, &path, "sort3", false, &cfg()).unwrap_err(),
            "the pops before ret (rbx) do not match the pushes (none) in reverse order"
        );
        std::fs::write(&path, text.replace(".size sort3, .-sort3", "")).unwrap();
        assert_eq!(
            verify_written(&task, &path, &path, "sort3", false, &cfg()).unwrap_err(),
            format!(
                "{}: symbol 'sort3' has no size (a .size directive)",
                path.display()
            )
        );
    }

    #[test]
    fn a_tampered_rust_module_fails_with_its_line() {
        let task = Task::load("sort3").unwrap();
        let kernel = asm::parse_str(&sort3_att().join("\n"), asm::Syntax::Att, "<log>").unwrap();
        let verdict = require_verified(&task, &kernel, &cfg()).unwrap();
        let doc = Doc {
            task: &task,
            kernel: &kernel,
            verdict: &verdict,
            provenance: "test",
        };
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sort3.rs");
        let text = rust_module(&doc, &kernel, "sort3");
        std::fs::write(&path, &text).unwrap();
        assert!(verify_written(&task, &path, &path, "superopt_sort3", true, &cfg()).is_ok());
        // Write to the array out of bounds: caught by the static check, with the .rs line.
        let line = text
            .lines()
            .position(|l| l.contains("\"    mov %edx, (%rdi)\""))
            .unwrap()
            + 1;
        std::fs::write(
            &path,
            text.replace("\"    mov %edx, (%rdi)\"", "\"    mov %edx, 12(%rdi)\""),
        )
        .unwrap();
        assert_eq!(
            verify_written(&task, &path, &path, "superopt_sort3", true, &cfg()).unwrap_err(),
            format!("writes outside the array (line {line})")
        );
    }
}
