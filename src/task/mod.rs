//! Task specs (`programs/*.toml`) and the test vectors they imply.
//!
//! A task says what a kernel must compute (`kind = "sort"`), on what data (`n` signed i32
//! elements at `[rdi + 4k]`), with which instructions and scratch registers, and what lengths
//! the literature reports for it. Built-in tasks are compiled into the binary; any other
//! `.toml` file can be named by path. The schema is documented in README.md ("Task files").

mod vectors;

pub use vectors::{weak_orderings, TestVectors};

use crate::error::{Error, Result};
use crate::isa::{Cond, Element, Reg, VectorIsa};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The built-in task files, compiled in: (name, TOML text). sort2-sort8 sort i32; the
/// `sortN-u32`, `sortN-i64` and `sortN-u64` variants (N = 3, 4, 5) sort the other element types;
/// the vector tasks play lane minimum and maximum on xmm registers: `sortN-avx2` (N = 3 to 8)
/// and `sortN-u32-avx2` (N = 3, 4, 5) with AVX, `sort4-sse41` with SSE4.1, `sort4-i64-avx512`
/// with AVX-512VL; `sort4-avx2-packed` and `sort4-u32-avx2-packed` hold the whole array in
/// the four lanes of one register (AVX2); `sort3-mem`, `sort4-mem` and `sort5-mem` let `cmp`
/// and `cmovcc` read array slots directly.
pub const BUILTIN: [(&str, &str); 32] = [
    ("sort2", include_str!("../../programs/sort2.toml")),
    ("sort3", include_str!("../../programs/sort3.toml")),
    ("sort4", include_str!("../../programs/sort4.toml")),
    ("sort5", include_str!("../../programs/sort5.toml")),
    ("sort6", include_str!("../../programs/sort6.toml")),
    ("sort7", include_str!("../../programs/sort7.toml")),
    ("sort8", include_str!("../../programs/sort8.toml")),
    ("sort3-u32", include_str!("../../programs/sort3-u32.toml")),
    ("sort3-i64", include_str!("../../programs/sort3-i64.toml")),
    ("sort3-u64", include_str!("../../programs/sort3-u64.toml")),
    ("sort4-u32", include_str!("../../programs/sort4-u32.toml")),
    ("sort4-i64", include_str!("../../programs/sort4-i64.toml")),
    ("sort4-u64", include_str!("../../programs/sort4-u64.toml")),
    ("sort5-u32", include_str!("../../programs/sort5-u32.toml")),
    ("sort5-i64", include_str!("../../programs/sort5-i64.toml")),
    ("sort5-u64", include_str!("../../programs/sort5-u64.toml")),
    ("sort3-avx2", include_str!("../../programs/sort3-avx2.toml")),
    ("sort4-avx2", include_str!("../../programs/sort4-avx2.toml")),
    ("sort5-avx2", include_str!("../../programs/sort5-avx2.toml")),
    ("sort6-avx2", include_str!("../../programs/sort6-avx2.toml")),
    ("sort7-avx2", include_str!("../../programs/sort7-avx2.toml")),
    ("sort8-avx2", include_str!("../../programs/sort8-avx2.toml")),
    (
        "sort3-u32-avx2",
        include_str!("../../programs/sort3-u32-avx2.toml"),
    ),
    (
        "sort4-u32-avx2",
        include_str!("../../programs/sort4-u32-avx2.toml"),
    ),
    (
        "sort5-u32-avx2",
        include_str!("../../programs/sort5-u32-avx2.toml"),
    ),
    ("sort3-mem", include_str!("../../programs/sort3-mem.toml")),
    ("sort4-mem", include_str!("../../programs/sort4-mem.toml")),
    ("sort5-mem", include_str!("../../programs/sort5-mem.toml")),
    (
        "sort4-avx2-packed",
        include_str!("../../programs/sort4-avx2-packed.toml"),
    ),
    (
        "sort4-u32-avx2-packed",
        include_str!("../../programs/sort4-u32-avx2-packed.toml"),
    ),
    (
        "sort4-sse41",
        include_str!("../../programs/sort4-sse41.toml"),
    ),
    (
        "sort4-i64-avx512",
        include_str!("../../programs/sort4-i64-avx512.toml"),
    ),
];

/// Largest `n` a sort task may have: the proof runs on every weak ordering, and their number
/// grows as the ordered Bell numbers (n = 6: 4,683; n = 7: 47,293; n = 8: 545,835).
pub const MAX_N: usize = 8;

/// Largest `n` whose search may play on every weak ordering (`search.vectors = "all"`): at
/// n = 8 each state would hold 545,835 test vectors (about 10 MB), and one move of the search
/// would outlast any budget check.
pub const MAX_ALL_SEARCH_N: usize = 7;

/// How many permutations join the 0-1 test vectors in a search on them
/// ([`TestVectors::zero_one_and_permutations`]).
pub const SEARCH_PERMUTATIONS: usize = 256;

/// Largest `n` whose search runs on every weak ordering; past it the search runs on the 0-1
/// test vectors ([`Task::search_vectors`]) and only the oracle's proof sees them all.
pub const MAX_EXACT_SEARCH_N: usize = 5;

/// Lengths reported in the literature, in instructions (loads and stores included, `ret`
/// excluded).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Reference {
    /// The classic sorting network: 4 instructions per comparator plus 2n loads and stores.
    pub network: Option<usize>,
    /// AlphaDev (Mankowitz et al., Nature 618:257, 2023).
    pub alphadev: Option<usize>,
}

/// A parsed, validated task.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Task {
    /// Task name, e.g. `sort3`.
    pub name: String,
    /// One line for humans.
    pub description: String,
    /// Number of elements in the array.
    pub n: usize,
    /// The element type (`element = "i32" | "u32" | "i64" | "u64"`): register width, stride
    /// and signedness of the comparisons.
    pub element: Element,
    /// Condition codes the kernel may use in `cmovcc`: the four of the element's signedness
    /// ([`Element::conds`]) unless the task narrows them; empty for a vector task.
    pub conds: Vec<Cond>,
    /// `Some` for a vector task (`[isa] vector = "sse4.1" | "avx2" | "avx512"`): its kernels
    /// play the vector moves ([`crate::isa::Insn::is_vector`]: `movd` loads and stores, lane
    /// minimum and maximum, `movdqa` copies when listed) on xmm registers, never the scalar
    /// ones. `None` (the default): `mov`, `cmp`, `cmovcc` on general-purpose registers.
    pub vector: Option<VectorIsa>,
    /// Whether register-to-register copies are moves: always in a scalar task (`mov`), in a
    /// vector task when its opcodes list `movdqa`.
    pub copies: bool,
    /// Whether a vector task plays packed lanes (`[isa] packed = true`): the whole array of
    /// four 32-bit elements in one xmm register (`vmovdqu` load and store), `vpshufd`,
    /// `vpblendd` and the lane minimum and maximum on all four lanes
    /// ([`crate::isa::Insn::is_packed`]). Needs `isa.vector = "avx2"` or `"avx512"`, 32-bit
    /// elements, `n = 4`, at most xmm0-xmm2 as scratch (four lane columns each), and
    /// `layout.align = 8`.
    pub packed: bool,
    /// Whether `cmp` and `cmovcc` may take an array slot as an operand (`[isa]
    /// memory_operands = true`, scalar tasks only): `cmp r, [rdi+4k]`, `cmp [rdi+4k], r`,
    /// `cmovcc r, [rdi+4k]`. verify, bench and export take such kernels; the search does not
    /// play them yet (issue 14) and refuses such a task.
    pub memory_operands: bool,
    /// The alignment in bytes that callers guarantee for the array (`[layout] align`: the
    /// element size, the default, or 8). Accesses must be aligned (a caller may enable
    /// alignment checking); at 8, a 16-byte `vmovdqu` of the array is ([`crate::asm::Kernel::check_safe_aligned`]).
    pub align: usize,
    /// Scratch registers the kernel may use, in preference order: general-purpose registers
    /// as columns ([`Reg`]), or in a vector task `xmm{i}` as column `i` ([`Reg::xmm_name`]).
    pub scratch: Vec<Reg>,
    /// Reference lengths.
    pub reference: Reference,
    /// Budget used when `search` is given none.
    #[serde(with = "humantime_serde_compat")]
    pub default_budget: Duration,
    /// Whether the search plays on the 0-1 test vectors (`search.vectors = "zero-one"`, the
    /// default past [`MAX_EXACT_SEARCH_N`] elements) instead of every weak ordering (`"all"`).
    pub zero_one_search: bool,
    /// How many permutations join the 0-1 test vectors when [`Task::zero_one_search`]
    /// (`search.permutations`, default [`SEARCH_PERMUTATIONS`]; 0 leaves the 0-1 vectors
    /// alone, which lets many more candidates reach the proof and fail it).
    pub search_permutations: usize,
    /// Where the spec came from: `builtin:sort3`, or the task file's absolute path (as
    /// [`std::path::absolute`] makes it, symbolic links kept) when [`Task::load`] read one; the
    /// path given to [`Task::parse`] otherwise.
    pub source: String,
}

mod humantime_serde_compat {
    pub fn serialize<S: serde::Serializer>(
        d: &std::time::Duration,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(*d).to_string())
    }
}

impl Task {
    /// The file the task was loaded from (its absolute path, [`Task::source`]), or `None`
    /// for a built-in task or one whose file is no longer there.
    pub fn file(&self) -> Option<PathBuf> {
        let path = Path::new(&self.source);
        (!self.source.starts_with("builtin:") && path.is_file()).then(|| path.to_path_buf())
    }

    /// Loads a task by built-in name (`sort3`) or by path to a `.toml` file; a file's
    /// [`Task::source`] is its absolute path (error messages name the path as given).
    ///
    /// Errors: [`Error::UnknownTask`] for a name that is neither; [`Error::TaskSpec`] naming the
    /// file and the field for a malformed file.
    pub fn load(name_or_path: &str) -> Result<Task> {
        if let Some((name, text)) = BUILTIN.iter().find(|(n, _)| *n == name_or_path) {
            return Task::parse(text, Path::new(&format!("programs/{name}.toml"))).map(|t| Task {
                source: format!("builtin:{name}"),
                ..t
            });
        }
        let path = Path::new(name_or_path);
        if path.extension().is_some_and(|e| e == "toml") || path.exists() {
            let text = crate::log::read_regular(path)?;
            let mut t = Task::parse(&text, path)?;
            // Absolute, so that a log naming it can be resumed from any folder.
            t.source = std::path::absolute(path)
                .unwrap_or_else(|_| path.to_path_buf())
                .display()
                .to_string();
            return Ok(t);
        }
        Err(Error::UnknownTask {
            name: name_or_path.to_string(),
            known: BUILTIN.map(|(n, _)| n).join(", "),
        })
    }

    /// All built-in tasks.
    pub fn builtins() -> Vec<Task> {
        BUILTIN
            .iter()
            .map(|(n, _)| Task::load(n).expect("built-in task files are valid"))
            .collect()
    }

    /// Parses a task from TOML text; `path` is used in error messages only.
    pub fn parse(text: &str, path: &Path) -> Result<Task> {
        let err = |field: &str, message: String| Error::TaskSpec {
            path: PathBuf::from(path),
            field: field.to_string(),
            message,
        };
        let root: toml::Table = text.parse::<toml::Table>().map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .unwrap_or(0);
            let msg = e
                .message()
                .lines()
                .next()
                .unwrap_or("invalid TOML")
                .to_string();
            err("syntax", format!("line {line}: {msg}"))
        })?;
        // Misspelt keys are errors, not silently ignored.
        const KNOWN: [(&str, &[&str]); 5] = [
            (
                "",
                &[
                    "name",
                    "description",
                    "kind",
                    "element",
                    "n",
                    "layout",
                    "isa",
                    "reference",
                    "search",
                ],
            ),
            ("layout", &["pointer", "stride", "align"]),
            (
                "isa",
                &["opcodes", "scratch", "vector", "packed", "memory_operands"],
            ),
            ("reference", &["network", "alphadev"]),
            ("search", &["budget", "vectors", "permutations"]),
        ];
        for (table, keys) in KNOWN {
            let t = if table.is_empty() {
                Some(&root)
            } else {
                match root.get(table) {
                    Some(toml::Value::Table(t)) => Some(t),
                    Some(v) => {
                        return Err(err(
                            table,
                            format!("expected a table, found {}", v.type_str()),
                        ))
                    }
                    None => None,
                }
            };
            for k in t.into_iter().flat_map(|t| t.keys()) {
                if !keys.contains(&k.as_str()) {
                    let field = if table.is_empty() {
                        k.clone()
                    } else {
                        format!("{table}.{k}")
                    };
                    return Err(err(
                        &field,
                        format!("unknown field (known here: {})", keys.join(", ")),
                    ));
                }
            }
        }
        let get = |key: &str| -> Option<&toml::Value> {
            let mut v: Option<&toml::Value> = None;
            for (i, part) in key.split('.').enumerate() {
                v = if i == 0 {
                    root.get(part)
                } else {
                    v?.as_table()?.get(part)
                };
            }
            v
        };
        let string = |key: &str| -> Result<String> {
            match get(key) {
                Some(toml::Value::String(s)) => Ok(s.clone()),
                Some(v) => Err(err(
                    key,
                    format!("expected a string, found {}", v.type_str()),
                )),
                None => Err(err(key, "missing".into())),
            }
        };
        let int = |key: &str| -> Result<Option<i64>> {
            match get(key) {
                Some(toml::Value::Integer(i)) => Ok(Some(*i)),
                Some(v) => Err(err(
                    key,
                    format!("expected an integer, found {}", v.type_str()),
                )),
                None => Ok(None),
            }
        };
        let length = |key: &str| -> Result<Option<usize>> {
            match int(key)? {
                Some(v) if v >= 1 => Ok(Some(v as usize)),
                Some(v) => Err(err(
                    key,
                    format!("{v} is not a length (at least 1 instruction)"),
                )),
                None => Ok(None),
            }
        };
        let strings = |key: &str| -> Result<Vec<String>> {
            match get(key) {
                Some(toml::Value::Array(a)) => a
                    .iter()
                    .map(|v| v.as_str().map(str::to_string))
                    .collect::<Option<Vec<_>>>()
                    .ok_or_else(|| err(key, "expected an array of strings".into())),
                Some(v) => Err(err(
                    key,
                    format!("expected an array of strings, found {}", v.type_str()),
                )),
                None => Err(err(key, "missing".into())),
            }
        };

        let name = string("name")?;
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        {
            return Err(err(
                "name",
                format!("'{name}' must be non-empty and use only letters, digits, '_' and '-'"),
            ));
        }
        let description = match get("description") {
            None => String::new(),
            Some(_) => string("description")?,
        };
        let kind = string("kind")?;
        if kind != "sort" {
            return Err(err(
                "kind",
                format!("unsupported kind '{kind}' (supported: sort)"),
            ));
        }
        let element = string("element")?;
        let element = Element::parse(&element).ok_or_else(|| {
            err(
                "element",
                format!("unsupported element type '{element}' (supported: i32, u32, i64, u64)"),
            )
        })?;
        let n = int("n")?.ok_or_else(|| err("n", "missing".into()))?;
        if !(2..=MAX_N as i64).contains(&n) {
            return Err(err("n", format!("{n} is out of range (2..={MAX_N})")));
        }
        let n = n as usize;
        let pointer = string("layout.pointer")?;
        if pointer != "rdi" {
            return Err(err("layout.pointer", format!("'{pointer}' is not supported (the array pointer is rdi, the first SysV argument)")));
        }
        match int("layout.stride")? {
            Some(s) if s == element.bytes() as i64 => {}
            Some(s) => {
                return Err(err(
                    "layout.stride",
                    format!(
                        "{s} is not supported ({element} elements are {} bytes apart)",
                        element.bytes()
                    ),
                ))
            }
            None => return Err(err("layout.stride", "missing".into())),
        }
        let align = match int("layout.align")? {
            None => element.bytes(),
            Some(a) if a == element.bytes() as i64 || a == 8 => a as usize,
            Some(a) => {
                return Err(err(
                    "layout.align",
                    format!(
                        "{a} is not supported (the array's alignment in bytes: {} or 8)",
                        element.bytes()
                    ),
                ))
            }
        };
        let vector = match get("isa.vector") {
            None => None,
            Some(_) => {
                let v = string("isa.vector")?;
                let level = VectorIsa::parse(&v).ok_or_else(|| {
                    err(
                        "isa.vector",
                        format!(
                            "unknown vector instruction set '{v}' (known: sse4.1, avx2, avx512)"
                        ),
                    )
                })?;
                if !level.has_min_max(element) {
                    return Err(err(
                        "isa.vector",
                        format!("{v} has no lane minimum or maximum for {element} elements (vpmin{}q needs avx512)", if element.is_signed() { "s" } else { "u" }),
                    ));
                }
                Some(level)
            }
        };
        let packed = match get("isa.packed") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                return Err(err(
                    "isa.packed",
                    format!("expected true or false, found {}", v.type_str()),
                ))
            }
        };
        let memory_operands = match get("isa.memory_operands") {
            None => false,
            Some(toml::Value::Boolean(b)) => *b,
            Some(v) => {
                return Err(err(
                    "isa.memory_operands",
                    format!("expected true or false, found {}", v.type_str()),
                ))
            }
        };
        if memory_operands && vector.is_some() {
            return Err(err(
                "isa.memory_operands",
                "memory operands are for tasks of mov, cmp and cmovcc (no isa.vector)".into(),
            ));
        }
        // (level, scratch, copies) of a vector task, packed or not.
        let vector_isa = if packed {
            let level = vector.filter(|v| v.avx());
            let Some(level) = level else {
                return Err(err(
                    "isa.packed",
                    "packed lanes need isa.vector = \"avx2\" or \"avx512\" (vpblendd is AVX2)"
                        .into(),
                ));
            };
            if align < 8 {
                return Err(err(
                    "isa.packed",
                    "packed lanes load and store the array with vmovdqu, which may raise an alignment-check fault below 8-byte alignment (Intel SDM vol. 3A, 6.15): set layout.align = 8".into(),
                ));
            }
            if element.is_wide() || n != crate::game::cpu::LANES {
                return Err(err(
                    "isa.packed",
                    format!("packed lanes hold exactly 4 32-bit elements in one xmm register (this task: {n} {element} elements)"),
                ));
            }
            let scratch =
                packed_scratch(&strings("isa.scratch")?).map_err(|m| err("isa.scratch", m))?;
            packed_opcodes(&strings("isa.opcodes")?, element).map_err(|m| err("isa.opcodes", m))?;
            Some((level, scratch, false))
        } else if let Some(level) = vector {
            let scratch =
                vector_scratch(&strings("isa.scratch")?, n).map_err(|m| err("isa.scratch", m))?;
            let copies = vector_opcodes(&strings("isa.opcodes")?, element, level)
                .map_err(|m| err("isa.opcodes", m))?;
            Some((level, scratch, copies))
        } else {
            None
        };
        if let Some((level, scratch, copies)) = vector_isa {
            return Ok(Task {
                name,
                description,
                n,
                element,
                conds: Vec::new(),
                vector: Some(level),
                copies,
                packed,
                memory_operands: false,
                align,
                scratch,
                reference: Reference {
                    network: length("reference.network")?,
                    alphadev: length("reference.alphadev")?,
                },
                default_budget: budget(get("search.budget")).map_err(|(f, m)| err(f, m))?,
                zero_one_search: zero_one(get("search.vectors"), n).map_err(|(f, m)| err(f, m))?,
                search_permutations: permutations(int("search.permutations")?)
                    .map_err(|(f, m)| err(f, m))?,
                source: path.display().to_string(),
            });
        }
        let mut conds = Vec::new();
        let mut has_mov = false;
        let mut has_cmp = false;
        for op in strings("isa.opcodes")? {
            match op.as_str() {
                "mov" => has_mov = true,
                "cmp" => has_cmp = true,
                _ => match op.strip_prefix("cmov").and_then(Cond::parse) {
                    Some(c) if c.is_signed() != element.is_signed() => {
                        return Err(err(
                            "isa.opcodes",
                            format!(
                                "{op} compares {}, but {element} elements compare {} (use {})",
                                if c.is_signed() { "signed" } else { "unsigned" },
                                if element.is_signed() {
                                    "signed"
                                } else {
                                    "unsigned"
                                },
                                opcode_list(element)
                            ),
                        ))
                    }
                    Some(c) if !conds.contains(&c) => conds.push(c),
                    Some(_) => {}
                    None => {
                        return Err(err(
                            "isa.opcodes",
                            format!(
                                "unknown opcode '{op}' (known for {element}: mov, cmp, {})",
                                opcode_list(element)
                            ),
                        ))
                    }
                },
            }
        }
        if !has_mov || !has_cmp || conds.is_empty() {
            return Err(err(
                "isa.opcodes",
                "a sort task needs mov, cmp and at least one cmovcc".into(),
            ));
        }
        conds.sort();
        // The game's symmetry pruning (cmp operand order, mirrored flags) replaces a condition
        // by its mirror, so the mirror must be a move too.
        if let Some(c) = conds.iter().find(|c| !conds.contains(&c.mirrored())) {
            return Err(err(
                "isa.opcodes",
                format!(
                    "cmov{} needs its mirror cmov{} (the search relies on mirrored conditions)",
                    c.suffix(),
                    c.mirrored().suffix()
                ),
            ));
        }
        let mut scratch = Vec::new();
        for r in strings("isa.scratch")? {
            let reg = Reg::parse_as(&r, element).ok_or_else(|| {
                let why = match r.to_ascii_lowercase().as_str() {
                    "esp" | "rsp" => "is the stack pointer".to_string(),
                    "edi" | "rdi" => "holds the array pointer".to_string(),
                    _ if element.is_wide() => format!("is not a 64-bit general-purpose register (rax, rcx, rdx, rsi, r8-r11; callee-saved rbx, rbp, r12-r15), as {element} elements need"),
                    _ => format!("is not a 32-bit general-purpose register (eax, ecx, edx, esi, r8d-r11d; callee-saved ebx, ebp, r12d-r15d), as {element} elements need"),
                };
                err("isa.scratch", format!("'{r}' {why}"))
            })?;
            if scratch.contains(&reg) {
                return Err(err("isa.scratch", format!("'{r}' is listed twice")));
            }
            scratch.push(reg);
        }
        if scratch.len() < n {
            return Err(err(
                "isa.scratch",
                format!("{} cannot hold {n} elements", registers(scratch.len())),
            ));
        }
        let reference = Reference {
            network: length("reference.network")?,
            alphadev: length("reference.alphadev")?,
        };
        let default_budget = budget(get("search.budget")).map_err(|(f, m)| err(f, m))?;
        let zero_one_search = zero_one(get("search.vectors"), n).map_err(|(f, m)| err(f, m))?;
        let search_permutations =
            permutations(int("search.permutations")?).map_err(|(f, m)| err(f, m))?;
        Ok(Task {
            name,
            description,
            n,
            element,
            conds,
            vector: None,
            copies: true,
            packed: false,
            memory_operands,
            align,
            scratch,
            reference,
            default_budget,
            zero_one_search,
            search_permutations,
            source: path.display().to_string(),
        })
    }

    /// The test vectors of the task: every weak ordering of `n` values (see [`weak_orderings`]).
    /// The oracle's proof runs on these.
    pub fn test_vectors(&self) -> TestVectors {
        TestVectors::new(self.n)
    }

    /// The test vectors the search plays on: every weak ordering (so a solution of the game is
    /// proved; the default up to [`MAX_EXACT_SEARCH_N`] elements), or with
    /// [`Task::zero_one_search`] the 0-1 vectors ([`TestVectors::zero_one`]: 63 / 127 / 255 for n = 6 / 7 / 8 instead of 4,683 /
    /// 47,293 / 545,835), on which a solution is only a candidate until the proof on every
    /// weak ordering passes.
    pub fn search_vectors(&self) -> TestVectors {
        if self.zero_one_search {
            TestVectors::zero_one_and_permutations(self.n, self.search_permutations)
        } else {
            self.test_vectors()
        }
    }

    /// How many register columns the emulator keeps for this task
    /// ([`crate::game::cpu::columns_for`]).
    pub fn columns(&self) -> usize {
        if self.packed {
            return crate::game::cpu::LANES * self.packed_registers();
        }
        crate::game::cpu::columns_for(&self.scratch)
    }

    /// In a packed task, how many xmm registers the emulator models (xmm0 up to the highest
    /// listed scratch register); 0 otherwise.
    pub fn packed_registers(&self) -> usize {
        if !self.packed {
            return 0;
        }
        self.scratch
            .iter()
            .map(|r| r.index() + 1)
            .max()
            .unwrap_or(0)
    }

    /// The emulator's state before the first instruction on `tv`, with this task's columns:
    /// [`crate::game::CpuState::packed`] for a packed task, else [`crate::game::CpuState::new`].
    pub fn cpu_state(&self, tv: &TestVectors) -> crate::game::CpuState {
        if self.packed {
            crate::game::CpuState::packed(tv, self.packed_registers())
        } else {
            crate::game::CpuState::new(tv, self.columns())
        }
    }

    /// The name the task's exported function (and library module) gets by default: the task
    /// name with `-` as `_` (`sort3-u32` -> `sort3_u32`).
    pub fn function_name(&self) -> String {
        self.name.replace('-', "_")
    }

    /// This task with every callee-saved register added to its scratch list (after the
    /// listed ones): what `bench` checks kernel files against, so that kernels written as
    /// inline asm with clobbers (AlphaDev's sort6-8 use rbx and r12-r14) can be timed.
    pub fn with_all_callee_saved(&self) -> Task {
        let mut t = self.clone();
        if t.vector.is_some() {
            return t; // xmm registers are all caller-saved
        }
        for r in Reg::ALL.into_iter().filter(|r| r.is_callee_saved()) {
            if !t.scratch.contains(&r) {
                t.scratch.push(r);
            }
        }
        t
    }

    /// The general-purpose registers a kernel for this task may name besides `rdi` (at the
    /// element's width): the scratch list of a scalar task, none for a vector task.
    pub fn gpr_scratch(&self) -> Vec<iced_x86::Register> {
        if self.vector.is_some() {
            return Vec::new();
        }
        self.scratch
            .iter()
            .map(|r| r.iced_as(self.element))
            .collect()
    }

    /// This task's twin in the other register file, for timing kernels of either kind side by
    /// side (`bench`): a vector task's twin plays `mov`/`cmp`/`cmovcc` on the eight
    /// caller-saved registers (the element's conditions); a scalar task's twin plays the
    /// vector moves at the widest level (`avx512`, `movdqa` listed) on xmm0-13. Same name,
    /// `n`, element and test vectors.
    pub fn twin(&self) -> Task {
        let mut t = self.clone();
        if self.vector.is_some() {
            t.vector = None;
            t.packed = false;
            t.conds = self.element.conds().to_vec();
            t.conds.sort();
            t.scratch = Reg::CALLER_SAVED.to_vec();
        } else {
            t.vector = Some(VectorIsa::Avx512);
            t.conds = Vec::new();
            t.scratch = Reg::ALL.to_vec();
        }
        t.copies = true;
        t
    }

    /// The task `bench` checks a kernel file against: of the file's register file (`vector`:
    /// it names xmm, ymm or zmm registers), this task or its [`Task::twin`], widened so that
    /// any kernel of that family passes its rules (every callee-saved register for a scalar
    /// task, and memory operands; the widest level, `avx512`, and `movdqa` for a vector one,
    /// and for a packed task the one-element moves too). bench compares
    /// kernels across instruction sets; verify keeps each task's own rules.
    pub fn bench_view(&self, vector: bool) -> Task {
        let mut t = if vector == self.vector.is_some() {
            self.clone()
        } else {
            self.twin()
        };
        if t.vector.is_some() {
            t.vector = Some(VectorIsa::Avx512);
            t.copies = true;
        } else {
            t.memory_operands = true;
        }
        t.with_all_callee_saved()
    }

    /// The callee-saved scratch registers (64-bit, in the order the task lists them): a kernel
    /// may write them only because the function around its body pushes and pops them. None
    /// for a vector task (SysV makes every xmm register caller-saved).
    pub fn saved_registers(&self) -> Vec<iced_x86::Register> {
        if self.vector.is_some() {
            return Vec::new(); // xmm registers are all caller-saved
        }
        self.scratch
            .iter()
            .filter(|r| r.is_callee_saved())
            .map(|r| r.iced().full_register())
            .collect()
    }
}

/// `search.vectors`: whether the search plays on the 0-1 test vectors. Errors name the field.
fn zero_one(
    v: Option<&toml::Value>,
    n: usize,
) -> std::result::Result<bool, (&'static str, String)> {
    let field = "search.vectors";
    match v {
        None => Ok(n > MAX_EXACT_SEARCH_N),
        Some(toml::Value::String(v)) if v == "all" && n > MAX_ALL_SEARCH_N => Err((
            field,
            format!("\"all\" is not supported for n = {n} (too many weak orderings to search on; the proof still uses them all): use \"zero-one\""),
        )),
        Some(toml::Value::String(v)) if v == "all" => Ok(false),
        Some(toml::Value::String(v)) if v == "zero-one" => Ok(true),
        Some(v) => Err((
            field,
            format!(
                "expected \"all\" or \"zero-one\", found {}",
                v.as_str()
                    .map_or(v.type_str().to_string(), |s| format!("'{s}'"))
            ),
        )),
    }
}

/// `search.permutations`, default [`SEARCH_PERMUTATIONS`].
fn permutations(k: Option<i64>) -> std::result::Result<usize, (&'static str, String)> {
    match k {
        None => Ok(SEARCH_PERMUTATIONS),
        Some(k) if (0..=100_000).contains(&k) => Ok(k as usize),
        Some(k) => Err((
            "search.permutations",
            format!("{k} is out of range (0..=100000)"),
        )),
    }
}

/// `search.budget`, default 60 s.
fn budget(v: Option<&toml::Value>) -> std::result::Result<Duration, (&'static str, String)> {
    let field = "search.budget";
    match v {
        Some(toml::Value::String(s)) => parse_budget(s).map_err(|e| {
            (
                field,
                match e {
                    Error::BudgetTooLong(_) => {
                        format!("'{s}' is longer than the maximum, {MAX_BUDGET_TEXT}")
                    }
                    _ => format!("'{s}' is not a duration such as 60s, 10m or 1h"),
                },
            )
        }),
        Some(v) => Err((
            field,
            format!("expected a string such as \"60s\", found {}", v.type_str()),
        )),
        None => Ok(Duration::from_secs(60)),
    }
}

/// A vector task's `isa.scratch`: `xmm0` ... `xmm13`, as columns, at least `n` of them.
fn vector_scratch(names: &[String], n: usize) -> std::result::Result<Vec<Reg>, String> {
    let mut scratch = Vec::new();
    for r in names {
        let reg = Reg::parse_xmm(r).ok_or_else(|| {
            format!("'{r}' is not a vector register of the game (xmm0-xmm13), as a task with isa.vector needs")
        })?;
        if scratch.contains(&reg) {
            return Err(format!("'{r}' is listed twice"));
        }
        scratch.push(reg);
    }
    if scratch.len() < n {
        return Err(format!(
            "{} cannot hold {n} elements",
            registers(scratch.len())
        ));
    }
    Ok(scratch)
}

/// `1 register`, `3 registers`: a count of scratch registers for messages.
fn registers(k: usize) -> String {
    if k == 1 {
        "1 register".into()
    } else {
        format!("{k} registers")
    }
}

/// Checks a packed task's `isa.scratch`: xmm registers, each once, none past xmm2 (the game
/// keeps four lane columns per register and has 14 columns).
fn packed_scratch(names: &[String]) -> std::result::Result<Vec<Reg>, String> {
    if names.is_empty() {
        return Err("a packed task needs a register for the array (xmm0)".into());
    }
    let scratch = vector_scratch(names, 1)?;
    if let Some(r) = scratch.iter().find(|r| r.index() >= 3) {
        return Err(format!(
            "'{}' is past xmm2: a packed task keeps four lane columns per register, and the game has room for xmm0-xmm2",
            r.xmm_name()
        ));
    }
    Ok(scratch)
}

/// The opcodes a packed task for `el` lists, all required (a `v` prefix is optional on each).
pub fn packed_opcode_names(el: Element) -> [&'static str; 5] {
    let [_, min, max, _] = vector_opcode_names(el);
    ["movdqu", "pshufd", "pblendd", min, max]
}

/// Checks a packed task's `isa.opcodes`: exactly the names of [`packed_opcode_names`].
fn packed_opcodes(ops: &[String], el: Element) -> std::result::Result<(), String> {
    let names = packed_opcode_names(el);
    let list = names.map(|n| format!("v{n}")).join(", ");
    let mut seen = [false; 5];
    for op in ops {
        let base = op.strip_prefix('v').unwrap_or(op);
        match names.iter().position(|&n| n == base) {
            Some(i) => seen[i] = true,
            None => {
                return Err(format!(
                    "unknown opcode '{op}' (a packed task for {el} plays {list})"
                ))
            }
        }
    }
    if !seen.iter().all(|&x| x) {
        return Err(format!("a packed task needs all of {list}"));
    }
    Ok(())
}

/// The opcodes a vector task for `el` may list, as written in task files (the SSE mnemonic;
/// the level picks the encoding): loads and stores, the lane minimum and maximum, and copies.
pub fn vector_opcode_names(el: Element) -> [&'static str; 4] {
    match el {
        Element::I32 => ["movd", "pminsd", "pmaxsd", "movdqa"],
        Element::U32 => ["movd", "pminud", "pmaxud", "movdqa"],
        Element::I64 => ["movq", "pminsq", "pmaxsq", "movdqa"],
        Element::U64 => ["movq", "pminuq", "pmaxuq", "movdqa"],
    }
}

/// Checks a vector task's `isa.opcodes`: the load/store, minimum and maximum of `el` must be
/// listed, `movdqa` may be (a `v` prefix is accepted on each). Returns whether copies
/// (`movdqa`) are moves.
fn vector_opcodes(
    ops: &[String],
    el: Element,
    level: VectorIsa,
) -> std::result::Result<bool, String> {
    let names = vector_opcode_names(el);
    let list = names.join(", ");
    let mut seen = [false; 4];
    for op in ops {
        let base = op.strip_prefix('v').unwrap_or(op);
        match names.iter().position(|&n| n == base) {
            Some(i) => seen[i] = true,
            None => {
                let scalar = ["mov", "cmp"].contains(&base)
                    || base
                        .strip_prefix("cmov")
                        .is_some_and(|c| Cond::parse(c).is_some());
                return Err(if scalar {
                    format!("{op} is a scalar move; a task with isa.vector = \"{level}\" plays the vector moves only ({list})")
                } else {
                    format!("unknown opcode '{op}' (known for {el} with isa.vector: {list})")
                });
            }
        }
    }
    if !seen[..3].iter().all(|&x| x) {
        return Err(format!(
            "a vector sort task needs {}, {} and {} ({} is optional)",
            names[0], names[1], names[2], names[3]
        ));
    }
    if !level.avx() && !seen[3] {
        return Err(format!(
            "an sse4.1 task needs movdqa: the two-operand {} and {} overwrite a source, so a compare-exchange needs a copy",
            names[1], names[2]
        ));
    }
    Ok(seen[3])
}

/// The `cmovcc` opcodes that compare elements of type `el`, for messages:
/// `cmovl, cmovg, cmovle, cmovge`.
fn opcode_list(el: Element) -> String {
    el.conds().map(|c| format!("cmov{}", c.suffix())).join(", ")
}

/// The longest duration [`parse_budget`] accepts, for every budget and interval superopt
/// reads (`search --budget`, `search --resume --budget`, `search --checkpoint`, a task file's
/// `search.budget`, `train --budget` and `--eval-budget`): 10 years as humantime counts them
/// (365.25 days each), 315,576,000 s. Search logs record budgets in seconds, and
/// `search --resume` reads back every budget up to it ([`MAX_BUDGET_TEXT`] in messages).
pub const MAX_BUDGET: Duration = Duration::from_secs(10 * 31_557_600);

/// [`MAX_BUDGET`] as error messages name it.
pub const MAX_BUDGET_TEXT: &str = "10years (315576000 s)";

/// Parses a budget such as `90s`, `10m`, `1h`, `1h30m` or `500ms` (humantime syntax; a bare
/// number is seconds), at most [`MAX_BUDGET`].
///
/// Errors: [`Error::BudgetTooLong`] for a longer budget (`invalid budget '40years': the
/// maximum is 10years (315576000 s)`), [`Error::Budget`] for anything else that is not a
/// positive duration, zero included.
pub fn parse_budget(s: &str) -> Result<Duration> {
    let t = s.trim();
    let d = if !t.is_empty() && t.chars().all(|c| c.is_ascii_digit()) {
        // Only digits: it fails only past u64::MAX seconds.
        t.parse::<u64>().map(Duration::from_secs).map_err(|_| None)
    } else {
        humantime::parse_duration(t).map_err(Some)
    };
    match d {
        Ok(d) if d > MAX_BUDGET => Err(Error::BudgetTooLong(s.to_string())),
        Ok(d) if !d.is_zero() => Ok(d),
        Err(None | Some(humantime::DurationError::NumberOverflow)) => {
            Err(Error::BudgetTooLong(s.to_string()))
        }
        _ => Err(Error::Budget(s.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budgets_up_to_the_maximum_parse_and_longer_ones_are_refused() {
        assert_eq!(parse_budget("10years").unwrap(), MAX_BUDGET);
        assert_eq!(parse_budget("315576000").unwrap(), MAX_BUDGET);
        assert_eq!(parse_budget(" 90s ").unwrap(), Duration::from_secs(90));
        assert_eq!(
            MAX_BUDGET_TEXT,
            format!(
                "{} ({} s)",
                humantime::format_duration(MAX_BUDGET),
                MAX_BUDGET.as_secs()
            )
        );
        for s in [
            "10years1s",
            "315576001",
            "40years",
            "99999999999999999999999",
            "99999999999999999999999years",
        ] {
            assert_eq!(
                parse_budget(s).unwrap_err().to_string(),
                format!("invalid budget '{s}': the maximum is 10years (315576000 s)")
            );
        }
        for s in ["0", "0s", "", "abc", "10x", "-5s"] {
            assert_eq!(
                parse_budget(s).unwrap_err().to_string(),
                format!(
                    "invalid budget '{s}': expected a positive duration such as 60s, 10m or 1h"
                )
            );
        }
    }

    #[test]
    fn a_task_file_budget_over_the_maximum_is_refused() {
        let text = BUILTIN[1]
            .1
            .replace("budget = \"60s\"", "budget = \"40years\"");
        assert!(text.contains("40years"), "{text}");
        assert_eq!(
            Task::parse(&text, Path::new("t.toml"))
                .unwrap_err()
                .to_string(),
            "t.toml: search.budget: '40years' is longer than the maximum, 10years (315576000 s)"
        );
    }

    #[test]
    fn task_files_are_recorded_by_absolute_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, BUILTIN[1].1).unwrap();
        let task = Task::load(path.to_str().unwrap()).unwrap();
        assert_eq!(task.source, path.display().to_string());
        assert!(Path::new(&task.source).is_absolute());
        // A relative path is made absolute against the current folder.
        let rel = Task::load("programs/sort3.toml").unwrap();
        let here = std::env::current_dir().unwrap();
        assert_eq!(
            rel.source,
            here.join("programs/sort3.toml").display().to_string()
        );
        assert_eq!(Task::load("sort3").unwrap().source, "builtin:sort3");
    }
}
