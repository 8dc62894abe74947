//! Issue 11: `verify` never says yes to what the toolchain builds differently, and never
//! accepts an unproven kernel whose result depends on the caller's state. Each class of the
//! outside review is tested as a family of inputs, with the exact messages.

use std::path::Path;
use std::process::Command;
use superopt::asm::{parse_str, Syntax};
use superopt::oracle::{native::NativeConfig, verify_kernel, Status};
use superopt::tool::{self, Limits};
use superopt::{Error, Task};

/// The built `superopt` binary, to run with arguments.
fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_superopt"));
    // The latency model's figures pinned to the Zen 4 table, as in tests/common.
    c.env("SUPEROPT_UARCH", "zen4");
    c
}

/// The sort3 network (AT&T), one instruction per line, stores last.
const SORT3_ATT: &str = "\
mov (%rdi), %eax
mov 4(%rdi), %ecx
mov 8(%rdi), %edx
mov %eax, %esi
cmp %ecx, %eax
cmovg %ecx, %eax
cmovg %esi, %ecx
mov %ecx, %esi
cmp %edx, %ecx
cmovg %edx, %ecx
cmovg %esi, %edx
mov %eax, %esi
cmp %ecx, %eax
cmovg %ecx, %eax
cmovg %esi, %ecx
mov %eax, (%rdi)
mov %ecx, 4(%rdi)
mov %edx, 8(%rdi)
";

/// The same kernel in Intel syntax.
const SORT3_INTEL: &str = "\
mov eax, [rdi]
mov ecx, [rdi+4]
mov edx, [rdi+8]
mov esi, eax
cmp eax, ecx
cmovg eax, ecx
cmovg ecx, esi
mov esi, ecx
cmp ecx, edx
cmovg ecx, edx
cmovg edx, esi
mov esi, eax
cmp eax, ecx
cmovg eax, ecx
cmovg ecx, esi
mov [rdi], eax
mov [rdi+4], ecx
mov [rdi+8], edx
";

/// `(line, message)` of a text that must not parse.
fn refused(text: &str, syntax: Syntax) -> (usize, String) {
    match parse_str(text, syntax, "k.s") {
        Err(Error::Asm { line, message, .. }) => (line, message),
        Err(e) => panic!("expected an assembly error, got {e}"),
        Ok(k) => panic!("accepted {:?}", k.text),
    }
}

/// Appends `tail` to line `line` (1-based) of `text`.
fn with_tail(text: &str, line: usize, tail: &str) -> String {
    text.lines()
        .enumerate()
        .map(|(i, l)| {
            if i + 1 == line {
                format!("{l}{tail}\n")
            } else {
                format!("{l}\n")
            }
        })
        .collect()
}

const SEMICOLON: &str = "';' is not allowed: GNU as reads it as a statement separator, not a comment (one instruction per line; comments start with '#')";

#[test]
fn statement_separators_are_refused_on_every_line_in_both_syntaxes() {
    let cases: [(&str, Syntax, &[&str]); 2] = [
        (
            SORT3_ATT,
            Syntax::Att,
            &[
                "; mov %eax, 12(%rdi)",
                ";",
                " ; comment",
                ";mov %eax,%ecx # x",
            ],
        ),
        (
            SORT3_INTEL,
            Syntax::Intel,
            &[
                "; mov [rdi+12], eax",
                ";",
                " ; comment",
                ";mov eax, ecx # x",
            ],
        ),
    ];
    for (text, syntax, tails) in cases {
        for line in [1, 9, 18] {
            for tail in tails {
                assert_eq!(
                    refused(&with_tail(text, line, tail), syntax),
                    (line, SEMICOLON.to_string()),
                    "{tail:?} on line {line}"
                );
            }
        }
        // A `;` inside a `#` comment is part of the comment, to GNU as as well.
        let ok = with_tail(text, 18, " # ; mov %eax, 12(%rdi)");
        assert_eq!(parse_str(&ok, syntax, "k.s").unwrap().decoded.len(), 18);
    }
}

#[test]
fn comments_other_than_hash_are_refused() {
    let slash = "'/' is not allowed: GNU as reads it as division or a prefix separator, not a comment (comments start with '#')";
    let block = "'/*' and '*/' are not allowed, even in a comment: GNU as and gcc's preprocessor read them as a comment that may span lines";
    let cont = "a line may not end in '\\': gcc's preprocessor joins it with the next line";
    for (tail, message) in [
        (" // store", slash),
        (" / 2", slash),
        (" /* store */", block),
        (" # see /* below", block),
        (" # end */", block),
        (" # continued \\", cont),
        (" \\", cont),
        (" # continued \\  ", cont),
    ] {
        assert_eq!(
            refused(&with_tail(SORT3_ATT, 17, tail), Syntax::Att),
            (17, message.to_string()),
            "{tail:?}"
        );
    }
    // `#` lines that gcc's preprocessor (a .S file) or GNU as itself would act on.
    for (line, message) in [
        ("#define eax ecx", "#define is a preprocessor directive when the file is built as .S by gcc (write comments as '# text')"),
        ("  # include \"x.h\"", "#include is a preprocessor directive when the file is built as .S by gcc (write comments as '# text')"),
        ("#if 0", "#if is a preprocessor directive when the file is built as .S by gcc (write comments as '# text')"),
        ("#endif", "#endif is a preprocessor directive when the file is built as .S by gcc (write comments as '# text')"),
        ("#NO_APP", "#NO_APP is not allowed: it switches GNU as's preprocessor (write comments as '# text')"),
        ("#APP", "#APP is not allowed: it switches GNU as's preprocessor (write comments as '# text')"),
    ] {
        let text = format!("{line}\n{SORT3_ATT}");
        assert_eq!(refused(&text, Syntax::Att), (1, message.to_string()), "{line:?}");
    }
    // Plain comments are fine, in any words.
    let text = format!("# definitely fine\n#   defines nothing\n# a number: 12\n{SORT3_ATT}");
    assert_eq!(
        parse_str(&text, Syntax::Att, "k.s").unwrap().decoded.len(),
        18
    );
}

#[test]
fn labels_and_directives_are_refused_whatever_their_characters() {
    let label = |name: &str| {
        format!("label {name}: is not allowed (one instruction per line, no branches)")
    };
    let cases: Vec<(String, String)> = vec![
        (
            "é: .rept 100000000".into(),
            "non-ASCII character 'é' (U+00E9) is only allowed in comments".into(),
        ),
        (
            "λx: .byte 0x90".into(),
            "non-ASCII character 'λ' (U+03BB) is only allowed in comments".into(),
        ),
        (
            "mov (%rdi), %eax é".into(),
            "non-ASCII character 'é' (U+00E9) is only allowed in comments".into(),
        ),
        ("x: .rept 3".into(), label("x")),
        ("_a1: nop".into(), label("_a1")),
        ("x : nop".into(), label("x")),
        ("nop; x: .byte 1".into(), SEMICOLON.into()),
        (
            "a.b: nop".into(),
            "'.' is not allowed in an instruction (no directives, no location counter)".into(),
        ),
        ("$x: nop".into(), label("x")),
        (
            ": nop".into(),
            "':' is only allowed after a segment register".into(),
        ),
        (
            ".rept 1000000000".into(),
            "directive .rept is not allowed (only .intel_syntax noprefix and .att_syntax)".into(),
        ),
        (
            ".byte 0x89, 0x47, 0x0c".into(),
            "directive .byte is not allowed (only .intel_syntax noprefix and .att_syntax)".into(),
        ),
        (
            "  .REPT 3".into(),
            "directive .REPT is not allowed (only .intel_syntax noprefix and .att_syntax)".into(),
        ),
        (
            "x = 5".into(),
            "symbol assignment x = ... is not allowed".into(),
        ),
        (
            "mov $'a', %eax".into(),
            "quoted strings and characters are not allowed".into(),
        ),
        (
            "mov $1<<2, %eax".into(),
            "character '<' is not allowed in an instruction".into(),
        ),
        (
            "mov (%rdi), %eax!".into(),
            "character '!' is not allowed in an instruction".into(),
        ),
        (
            "mov .+4, %eax".into(),
            "'.' is not allowed in an instruction (no directives, no location counter)".into(),
        ),
    ];
    for (line, message) in &cases {
        let text = format!("{SORT3_ATT}{line}\n");
        assert_eq!(
            refused(&text, Syntax::Att),
            (19, message.clone()),
            "{line:?}"
        );
    }
    // A segment override is the one place a ':' may stand.
    let k = parse_str(
        "mov %es:(%rdi), %eax\nmov %eax, (%rdi)\n",
        Syntax::Att,
        "k.s",
    )
    .unwrap();
    assert_eq!(k.decoded.len(), 2);
    let k = parse_str("mov eax, es:[rdi]\nmov [rdi], eax\n", Syntax::Intel, "k.s").unwrap();
    assert_eq!(k.decoded.len(), 2);
}

/// `.text` of `path` as GNU as and objcopy build it, independently of superopt's parser.
fn built_text(path: &Path, via_gcc: bool) -> Vec<u8> {
    let dir = path.parent().unwrap();
    let obj = dir.join("k.o");
    let mut build = if via_gcc {
        let mut c = Command::new("gcc");
        c.arg("-c").arg(path).arg("-o").arg(&obj);
        c
    } else {
        let mut c = Command::new("as");
        c.arg("--64").arg(path).arg("-o").arg(&obj);
        c
    };
    let limits = Limits {
        time: std::time::Duration::from_secs(60),
        memory: None,
    };
    let out = tool::run(&mut build, "the toolchain", limits).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = dir.join("k.bin");
    let out = tool::run(
        Command::new("objcopy")
            .args(["-O", "binary", "--only-section=.text"])
            .arg(&obj)
            .arg(&bin),
        "objcopy",
        limits,
    )
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::read(bin).unwrap()
}

#[test]
fn accepted_files_build_to_the_verified_bytes_with_as_and_gcc() {
    // A family of accepted files: every comment style the parser takes, blank lines, tabs,
    // case, a syntax switch, a trailing ret. The bytes verified must be what GNU as builds
    // from the file as written (.s) and what gcc builds through its preprocessor (.S).
    let dir = tempfile::tempdir().unwrap();
    let comments = [
        "",
        " # plain",
        "\t#tab",
        " # ; not a separator in a comment",
        " # // nor is this",
        " # 'quote and \"quote",
        " # é non-ASCII",
        " ## double",
    ];
    let mut texts = Vec::new();
    for (k, c) in comments.iter().enumerate() {
        let mut t = String::from("# a sort3 kernel\n\n");
        for (i, l) in SORT3_ATT.lines().enumerate() {
            let l = if i % 3 == k % 3 {
                l.to_uppercase()
            } else {
                l.into()
            };
            t.push_str(&format!("  {l}{c}\n"));
            if i == 8 {
                t.push_str(".intel_syntax noprefix\nmov esi, esi # a no-op in the other syntax\n.att_syntax prefix\n");
            }
        }
        t.push_str("ret # the caller's\n");
        texts.push(t);
    }
    for text in &texts {
        let kernel = parse_str(text, Syntax::Att, "k.s").unwrap_or_else(|e| panic!("{e}\n{text}"));
        let mut code = kernel.code.clone();
        code.push(0xc3); // the dropped ret
        for (name, via_gcc) in [("k.s", false), ("k.S", true)] {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            assert_eq!(built_text(&path, via_gcc), code, "{name}:\n{text}");
        }
    }
}

fn sort3() -> Task {
    Task::load("sort3").unwrap()
}

fn quick() -> NativeConfig {
    NativeConfig {
        random: 2000,
        seed: 1,
    }
}

/// The verdict's status and reason for an Intel-syntax kernel.
fn verdict(task: &Task, intel: &str) -> (Status, String) {
    let kernel = parse_str(intel, Syntax::Intel, "k.s").unwrap_or_else(|e| panic!("{e}"));
    let v = verify_kernel(task, &kernel, &quick()).unwrap();
    (v.status, v.reason.unwrap_or_default())
}

/// Asserts that the static checks of an unproven kernel pass for `around(body)` (the kernel
/// itself need not sort).
fn defined(body: &str) {
    let kernel = parse_str(&around(body), Syntax::Intel, "k.s").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(kernel.check_safe(3, &[]), Ok(()), "{body}");
    assert_eq!(kernel.check_defined(), Ok(()), "{body}");
}

/// Loads, a body, and stores of eax, ecx, edx for sort3.
fn around(body: &str) -> String {
    format!("mov eax, [rdi]\nmov ecx, [rdi+4]\nmov edx, [rdi+8]\n{body}\nmov [rdi], eax\nmov [rdi+4], ecx\nmov [rdi+8], edx\n")
}

#[test]
fn unproven_kernels_that_read_caller_state_are_refused() {
    let task = sort3();
    let failed = |body: &str, line: usize, why: &str| {
        let (status, reason) = verdict(&task, &around(body));
        assert_eq!(status, Status::Failed, "{body}");
        assert_eq!(reason, format!("{why} (line {line})"), "{body}");
    };
    // The array's address as a value (lea on rdi, however written), and code addresses.
    let lea =
        "lea computes the array's address as a value (it differs between heap and stack buffers)";
    failed("lea r8, [rdi+4]\ncmp r8, rsi", 4, lea);
    failed("lea r8, [rdi]", 4, lea);
    failed("lea r8d, [rdi+rdi*2]", 4, lea);
    failed("mov r9d, 4\nlea r8, [r9+rdi*4]", 5, lea);
    failed("lea r8, [rip]", 4, "lea computes a code address as a value");
    failed("mov r8, rdi", 4, "uses the array pointer rdi as a value");
    failed("mov r8d, edi", 4, "uses the array pointer rdi as a value");
    // Legacy SSE writes define only the low 128 bits.
    for write in [
        "pxor xmm0, xmm0",
        "xorps xmm0, xmm0",
        "movd xmm0, eax",
        "movq xmm0, rax",
        "movss xmm0, [rdi]",
    ] {
        failed(
            &format!("{write}\nvmovdqu ymm1, ymm0\nvmovd r8d, xmm1"),
            5,
            "reads ymm0 before writing it",
        );
        failed(
            &format!("{write}\nvextracti128 xmm1, ymm0, 1"),
            5,
            "reads ymm0 before writing it",
        );
    }
    // A VEX write zeroes the rest, so it defines the whole register.
    defined("vpxor xmm0, xmm0, xmm0\nvmovdqu ymm1, ymm0\nvmovd r8d, xmm1\nadd eax, r8d");
    // Shifts and rotates by cl, or by an immediate that masks to 0, may leave the flags alone.
    let flags = "reads flags that are undefined here (never set, or left undefined by an instruction such as imul)";
    for shift in [
        "shl r8d, cl",
        "sar r8d, cl",
        "rol r8d, cl",
        "shld r8d, eax, cl",
        "shl r8d, 32",
        "shl r8, 64",
        "ror r8d, 0",
        "sal r8d, 96",
    ] {
        failed(&format!("mov r8d, eax\n{shift}\ncmovg eax, ecx"), 6, flags);
    }
    // rcr by cl reads CF itself; rcl of a word by 17 rotates by 17 mod 17 = 0, a no-op.
    failed("mov r8d, eax\nrcr r8d, cl\ncmovg eax, ecx", 5, flags);
    failed("mov r8d, eax\nrcl r8w, 17\ncmovg eax, ecx", 6, flags);
    defined("cmp eax, ecx\nmov r8d, eax\nrcl r8w, 17\ncmovb eax, ecx");
    // ... but a cl shift after a cmp (or after xor, which defines the flags) keeps them
    // defined either way, and an immediate shift defines what it writes.
    defined("xor r8d, r8d\nshl r8d, cl\ncmove eax, ecx");
    defined("xor r8d, r8d\nshl r8d, 32\ncmovg eax, ecx");
    defined("mov r8d, eax\ncmp eax, ecx\nshl r8d, cl\ncmove r8d, eax");
    defined("mov r8d, eax\nshl r8d, 3\ncmovc eax, r8d");
    // Undefined flags after an instruction are undefined (SF after imul, ZF after shl 2).
    failed("imul eax, ecx\ncmovs eax, edx", 5, flags);
    failed("mov r8d, eax\nshl r8d, 2\ncmovo eax, edx", 6, flags);
    // MXCSR and other control state.
    let mxcsr = |m: &str| {
        format!("{m} depends on MXCSR (rounding mode, denormal handling), which the caller owns")
    };
    failed(
        "cvtsi2ss xmm0, eax\ncvttss2si eax, xmm0",
        4,
        &mxcsr("cvtsi2ss"),
    );
    failed("movd xmm0, eax\naddss xmm0, xmm0", 5, &mxcsr("addss"));
    failed(
        "movd xmm0, eax\nmovd xmm1, ecx\nucomiss xmm0, xmm1",
        6,
        &mxcsr("ucomiss"),
    );
    failed(
        "vmovd xmm0, eax\nvminps xmm1, xmm0, xmm0",
        5,
        &mxcsr("vminps"),
    );
    failed(
        "vmovd xmm0, eax\nvroundss xmm1, xmm0, xmm0, 4",
        5,
        &mxcsr("vroundss"),
    );
    failed(
        "stmxcsr [rdi]",
        4,
        "stmxcsr reads MXCSR, which the caller owns",
    );
    failed(
        "mov r8d, eax\nlsl r8d, r8d",
        5,
        "lsl reads the descriptor tables, which the operating system owns",
    );
    failed(
        "verr ax",
        4,
        "verr reads the descriptor tables, which the operating system owns",
    );
    failed("mov r8d, ds", 4, "reads segment register ds");
    // vzeroupper defines the upper halves only where the low half was defined.
    failed(
        "vzeroupper\nvmovd r8d, xmm3",
        5,
        "reads xmm3 before writing it",
    );
    failed(
        "pxor xmm3, xmm3\nvzeroupper\nvmovdqu ymm4, ymm5",
        6,
        "reads ymm5 before writing it",
    );
    // Partial writes: a byte defines a byte, not the register.
    failed(
        "mov r8b, al\nmov eax, r8d",
        5,
        "reads r8d before writing it",
    );
    failed(
        "mov r8w, ax\nmov eax, r8d",
        5,
        "reads r8d before writing it",
    );
    failed(
        "bsf r8d, eax\nmov eax, r8d",
        5,
        "reads r8d before writing it",
    );
    failed(
        "cmp eax, ecx\ncmovg r8d, eax\nmov eax, r8d",
        5,
        "reads r8d before writing it",
    );
}

#[test]
fn unproven_kernels_that_define_what_they_read_pass() {
    let task = sort3();
    // A min/max network in vector registers: SSE4.1 pminsd/pmaxsd (signed) after movd.
    let minmax =
        |a: &str, b: &str| format!("movdqa xmm3, {a}\npminsd {a}, {b}\npmaxsd {b}, xmm3\n");
    let text = format!(
        "movd xmm0, [rdi]\nmovd xmm1, [rdi+4]\nmovd xmm2, [rdi+8]\n{}{}{}movd [rdi], xmm0\nmovd [rdi+4], xmm1\nmovd [rdi+8], xmm2\n",
        minmax("xmm0", "xmm1"),
        minmax("xmm1", "xmm2"),
        minmax("xmm0", "xmm1")
    );
    // These are the vector moves of the game (issue 13): proved on the emulator and run
    // natively for a task that plays them (sort4-sse41's file with n = 3), refused for a
    // scalar task.
    let sse3 = Task::parse(
        &std::fs::read_to_string("programs/sort4-sse41.toml")
            .unwrap()
            .replace("n = 4", "n = 3"),
        std::path::Path::new("sse3.toml"),
    )
    .unwrap();
    assert_eq!(verdict(&sse3, &text), (Status::Verified, String::new()));
    assert_eq!(
        verdict(&task, &text),
        (
            Status::Failed,
            "a kernel of vector moves (line 1); task sort3 plays mov, cmp and cmovcc (no isa.vector): verify it against a task file with isa.vector (no built-in task of 3 i32 elements fits)".into()
        )
    );
    // Same-register idioms read nothing but (for sbb) CF; byte loads define the byte.
    for body in [
        "xor r8d, r8d\nadd eax, r8d",
        "sub r8, r8\nadd eax, r8d",
        "cmp eax, eax\nsbb r8d, r8d\nadd eax, r8d",
        "pxor xmm5, xmm5\nmovd r8d, xmm5\nadd eax, r8d",
        "vpcmpeqd xmm5, xmm6, xmm6\nvpsubd xmm5, xmm5, xmm5\nvmovd r8d, xmm5\nadd eax, r8d",
        "mov r8b, al\nmov r9b, r8b\ncmp r9b, r8b\ncmovne eax, ecx",
        "vmovd xmm0, eax\nvmovaps xmm1, xmm0\nvmovd eax, xmm1",
        "vzeroupper\nvzeroall\nvmovd r8d, xmm3\nadd eax, r8d",
        "movd xmm0, eax\nvzeroupper\nvmovdqu ymm1, ymm0\nvmovd r8d, xmm1\nadd eax, r8d",
    ] {
        defined(body);
    }
    // sbb r, r without a flag-setting instruction before it reads the caller's CF.
    let (status, reason) = verdict(&task, &around("sbb r8d, r8d\nadd eax, r8d"));
    assert_eq!(status, Status::Failed);
    assert_eq!(
        reason,
        "reads flags that are undefined here (never set, or left undefined by an instruction such as imul) (line 4)"
    );
}

/// A task file like sort3 with other scratch registers and opcodes, in a temporary folder.
fn custom_task(dir: &Path, scratch: &str, opcodes: &str) -> Task {
    let path = dir.join("narrow.toml");
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/programs/sort3.toml"))
        .unwrap()
        .replace(
            "scratch = [\"eax\", \"ecx\", \"edx\", \"esi\", \"r8d\", \"r9d\", \"r10d\", \"r11d\"]",
            &format!("scratch = [{scratch}]"),
        )
        .replace(
            "opcodes = [\"mov\", \"cmp\", \"cmovl\", \"cmovg\", \"cmovle\", \"cmovge\"]",
            &format!("opcodes = [{opcodes}]"),
        )
        .replace("name = \"sort3\"", "name = \"narrow\"");
    std::fs::write(&path, text).unwrap();
    Task::load(path.to_str().unwrap()).unwrap()
}

#[test]
fn verify_keeps_to_the_task_scratch_and_opcode_lists() {
    let dir = tempfile::tempdir().unwrap();
    let all = "\"mov\", \"cmp\", \"cmovl\", \"cmovg\", \"cmovle\", \"cmovge\"";
    let task = custom_task(dir.path(), "\"eax\", \"ecx\", \"edx\", \"esi\"", all);
    // The network uses eax, ecx, edx, esi: fine.
    let (status, _) = verdict(&task, SORT3_INTEL);
    assert_eq!(status, Status::Verified);
    // The same with r8d as the temporary, in either width, proven or not.
    let msg = |r: &str, line: usize| {
        format!("uses {r}, which task narrow does not list as scratch (eax, ecx, edx, esi) (line {line})")
    };
    let r8 = SORT3_INTEL.replace("esi", "r8d");
    assert_eq!(verdict(&task, &r8), (Status::Failed, msg("r8d", 4)));
    let r8b = around("mov r8b, al");
    assert_eq!(verdict(&task, &r8b), (Status::Failed, msg("r8b", 4)));
    let r11 = around("xor r11, r11");
    assert_eq!(verdict(&task, &r11), (Status::Failed, msg("r11", 4)));
    // Opcodes: a task with cmovl/cmovg only refuses a kernel using cmovle.
    let task = custom_task(
        dir.path(),
        "\"eax\", \"ecx\", \"edx\", \"esi\"",
        "\"mov\", \"cmp\", \"cmovl\", \"cmovg\"",
    );
    assert_eq!(verdict(&task, SORT3_INTEL).0, Status::Verified);
    let le = SORT3_INTEL.replacen(
        "cmp eax, ecx\ncmovg eax, ecx\ncmovg ecx, esi",
        "cmp ecx, eax\ncmovle eax, ecx\ncmovle ecx, esi",
        1,
    );
    assert_eq!(
        verdict(&task, &le),
        (
            Status::Failed,
            "uses cmovle, which is not among task narrow's opcodes (mov, cmp, cmovl, cmovg) (line 6)".into()
        )
    );
}

#[test]
fn the_cli_refuses_with_one_line_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("semi.s");
    std::fs::write(&path, with_tail(SORT3_ATT, 18, "; mov %eax, 12(%rdi)")).unwrap();
    let out = bin().args(["verify", "sort3"]).arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!("error: {}:18: {SEMICOLON}\n", path.display())
    );
    // A file over 1 MiB is refused before GNU as sees it.
    let big = dir.path().join("big.s");
    std::fs::write(&big, "nop # padding\n".repeat(80_000)).unwrap();
    let out = bin().args(["verify", "sort3"]).arg(&big).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "error: {}:1: the file is larger than 1024 KiB, too large for a kernel\n",
            big.display()
        )
    );
}

#[test]
fn gnu_as_runs_under_a_memory_limit() {
    // A stand-in `as` that allocates without bound (perl says "Out of memory!"): verify
    // stops it at the limit with one line instead of taking the machine's memory.
    let dir = tempfile::tempdir().unwrap();
    let fake_dir = dir.path().join("bin");
    std::fs::create_dir(&fake_dir).unwrap();
    let fake = fake_dir.join("as");
    std::fs::write(
        &fake,
        "#!/bin/sh\nexec perl -e '$x = \"a\" x 4e9; print length $x'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let kernel = dir.path().join("k.s");
    std::fs::write(&kernel, SORT3_ATT).unwrap();
    let path = format!(
        "{}:{}",
        fake_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = bin()
        .env("PATH", path)
        .args(["verify", "sort3"])
        .arg(&kernel)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "error: GNU as ran out of its memory limit of 1024 MiB and was stopped\n"
    );
}

#[test]
fn names_that_cancel_out_are_still_symbols() {
    // `sym-sym` leaves no relocation, but gcc's preprocessor may replace `sym` (`linux` is 1
    // there): every symbol is refused.
    for line in ["mov $linux-linux, %ecx", "mov 4+unix-unix(%rdi),%ecx"] {
        let name = if line.contains("linux") {
            "linux"
        } else {
            "unix"
        };
        let text = SORT3_ATT.replacen("mov 4(%rdi), %ecx", line, 1);
        assert_eq!(
            refused(&text, Syntax::Att),
            (
                2,
                format!("refers to symbol '{name}'; symbols and labels are not allowed")
            )
        );
    }
    // Names gcc reserves (its predefined macros among them) are refused anywhere, comments
    // included: a function-like macro such as `__INT8_C(` swallows the lines after it.
    let reserved = |name: &str| {
        format!("'{name}' is not allowed, even in a comment: names starting with '_' and a capital or a second '_' are gcc's, and its preprocessor may expand them (a function-like macro swallows the lines after it)")
    };
    for (tail, name) in [
        (" # __INT8_C((", "__INT8_C"),
        (" # _Pragma(\"GCC poison mov\")", "_Pragma"),
        (" # __has_include(<stdio.h>)", "__has_include"),
        ("+__COUNTER__-__COUNTER__", "__COUNTER__"),
        (" # __superopt_line_2", "__superopt_line_2"),
    ] {
        let text = with_tail(SORT3_ATT, 8, tail);
        assert_eq!(refused(&text, Syntax::Att), (8, reserved(name)), "{tail:?}");
    }
    // A name with one leading underscore and a small letter is an ordinary symbol.
    let text = SORT3_ATT.replacen("mov 4(%rdi), %ecx", "mov 4+_x-_x(%rdi), %ecx", 1);
    assert_eq!(
        refused(&text, Syntax::Att),
        (
            2,
            "refers to symbol '_x'; symbols and labels are not allowed".into()
        )
    );
    // Where gcc is installed, every accepted file was also built through its preprocessor.
    let kernel = parse_str(SORT3_ATT, Syntax::Att, "k.s").unwrap();
    let gcc = Command::new("gcc")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert_eq!(kernel.cpp_checked, Some(gcc));
}

#[test]
fn a_byte_order_mark_and_line_markers_are_refused() {
    assert_eq!(
        refused(&format!("\u{feff}{SORT3_ATT}"), Syntax::Att),
        (1, "a byte-order mark is not allowed: GNU as rejects it (save the file as UTF-8 without BOM)".into())
    );
    let marker =
        "'# NUMBER' is a line marker to gcc's preprocessor and GNU as (write comments as '# text')";
    for line in ["# 1 \"foo.c\"", "#1", "  # 12"] {
        assert_eq!(
            refused(&format!("{line}\n{SORT3_ATT}"), Syntax::Att),
            (1, marker.into())
        );
    }
    // CRLF line endings are fine (GNU as and gcc read them as line ends too).
    let crlf = SORT3_ATT.replace('\n', "\r\n");
    assert_eq!(
        parse_str(&crlf, Syntax::Att, "k.s").unwrap().decoded.len(),
        18
    );
    // Only the noprefix form of Intel syntax: bare `.intel_syntax` wants %registers.
    assert_eq!(
        refused(&format!(".intel_syntax\n{SORT3_INTEL}"), Syntax::Att),
        (1, "'.intel_syntax' is not allowed (only .intel_syntax noprefix, .att_syntax and .att_syntax prefix)".into())
    );
    assert_eq!(
        refused(&format!(".att_syntax noprefix\n{SORT3_ATT}"), Syntax::Att),
        (1, "'.att_syntax noprefix' is not allowed (only .intel_syntax noprefix, .att_syntax and .att_syntax prefix)".into())
    );
}

#[test]
fn caller_state_through_byte_registers_x87_mmx_alignment_and_undefined_results() {
    let task = sort3();
    let failed = |body: &str, line: usize, why: &str| {
        let (status, reason) = verdict(&task, &around(body));
        assert_eq!(status, Status::Failed, "{body}");
        assert_eq!(reason, format!("{why} (line {line})"), "{body}");
    };
    // Byte registers are tracked by their 64-bit register (iced numbers sil as 10, dh as 6).
    failed(
        "xor r10d, r10d\nmovzx r9d, sil",
        5,
        "reads sil before writing it",
    );
    assert_eq!(
        verdict(&task, "mov esi, 0\nmovzx eax, dh\nmov [rdi], eax\n"),
        (
            Status::Failed,
            "reads dh before writing it (line 2)".to_string()
        )
    );
    defined("xor r10d, r10d\nmov r10b, 1\nmovzx r9d, r10b\nadd eax, r9d");
    // MMX and x87 state belong to the caller (and MMX would leave it in MMX mode).
    let mmx =
        "uses MMX register mm0: the x87/MMX state is the caller's (and MMX leaves it in MMX mode)";
    failed("psubq mm0, mm0", 4, mmx);
    failed("pxor xmm0, xmm0\nmovdq2q mm0, xmm0", 5, mmx);
    failed(
        "fwait",
        4,
        "wait is not allowed: it raises the caller's pending x87 exceptions",
    );
    // Accesses wider than 4 bytes, or misaligned, fault under EFLAGS.AC.
    let align = |m: &str, size: u32, disp: u32| {
        format!("{m} accesses {size} bytes at [rdi+{disp}], which may be misaligned (rdi is only 4-byte aligned) and faults when the caller enables alignment checking")
    };
    failed("mov r8, [rdi]", 4, &align("mov", 8, 0));
    failed("movq xmm0, [rdi+4]", 4, &align("movq", 8, 4));
    failed("vmovdqu xmm0, [rdi+4]", 4, "reads outside the array");
    failed("movd xmm0, [rdi+2]", 4, &align("movd", 4, 2));
    failed("mov r8w, [rdi+1]", 4, &align("mov", 2, 1));
    // Results the Intel SDM leaves undefined are undefined here, whatever this CPU does.
    failed(
        "mov r10d, 5\nbsf r10d, eax\nmov eax, r10d",
        6,
        "reads r10d before writing it",
    );
    failed(
        "mov r10d, 5\nbsr r10, rax\nmov eax, r10d",
        6,
        "reads r10d before writing it",
    );
    failed(
        "mov r9d, eax\nmov r10d, ecx\nshld r9w, r10w, 20\nmov eax, r9d",
        7,
        "reads r9d before writing it",
    );
    let flags = "reads flags that are undefined here (never set, or left undefined by an instruction such as imul)";
    failed("mov r9d, eax\nshl r9w, 16\nsetc r8b", 6, flags);
    failed("mov r9d, eax\nshr r9b, cl\ncmovc eax, ecx", 6, flags);
    defined("mov r9d, eax\nshl r9w, 15\nsetc r8b");
    // lzcnt and tzcnt run as bsr and bsf on CPUs without them.
    failed("lzcnt r8d, eax", 4, "lzcnt is not allowed: CPUs without it run its encoding as bsr (Intel SDM), with another result");
    failed("tzcnt r8d, eax", 4, "tzcnt is not allowed: CPUs without it run its encoding as bsf (Intel SDM), with another result");
    // rcr of a byte by 9 rotates by 0 but leaves OF undefined (masked count is not 1).
    failed(
        "cmp eax, ecx\nmov r8d, eax\nrcr r8b, 9\ncmovo eax, ecx",
        7,
        flags,
    );
    // lahf/sahf are missing in 64-bit mode on some early x86-64 CPUs; bt's ZF was undefined.
    failed(
        "xor r8d, r8d\nsahf",
        5,
        "sahf is not allowed: some x86-64 CPUs lack it in 64-bit mode (CPUID LAHF-SAHF)",
    );
    failed(
        "cmp eax, ecx\nlahf",
        5,
        "lahf is not allowed: some x86-64 CPUs lack it in 64-bit mode (CPUID LAHF-SAHF)",
    );
    failed(
        "cmp eax, ecx\nmov r8d, eax\nbt r8d, 0\ncmove eax, ecx",
        7,
        flags,
    );
    defined("cmp eax, ecx\nmov r8d, eax\nbt r8d, 0\ncmovc eax, ecx");
    // clflush is not a floating-point instruction.
    defined("clflush [rdi]");
}
