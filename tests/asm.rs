//! Tests of the assembly front end (`superopt::asm`): these run the system GNU as.

use superopt::asm::{parse_file, parse_str, Kernel, Syntax};
use superopt::isa::{Cond, Insn, Reg};
use superopt::Error;

fn att(text: &str) -> Kernel {
    parse_str(text, Syntax::Att, "k.s").unwrap_or_else(|e| panic!("{e}"))
}

fn intel(text: &str) -> Kernel {
    parse_str(text, Syntax::Intel, "k.s").unwrap_or_else(|e| panic!("{e}"))
}

/// The `Error::Asm` of a text that must not parse, as `(line, message, Display)`.
fn asm_error(text: &str, syntax: Syntax) -> (usize, String, String) {
    match parse_str(text, syntax, "foo.s") {
        Err(e @ Error::Asm { .. }) => {
            let shown = e.to_string();
            let Error::Asm {
                path,
                line,
                message,
            } = e
            else {
                unreachable!()
            };
            assert_eq!(path, "foo.s");
            assert!(!shown.contains('\n'), "multi-line error: {shown:?}");
            (line, message, shown)
        }
        Err(e) => panic!("expected Error::Asm, got {e}"),
        Ok(k) => panic!("expected an error, parsed {:?}", k.text),
    }
}

/// A kernel made from raw bytes (one instruction per "line"), bypassing GNU as.
fn from_bytes(code: &[u8]) -> Kernel {
    let mut decoder = iced_x86::Decoder::with_ip(64, code, 0, iced_x86::DecoderOptions::NONE);
    let decoded: Vec<iced_x86::Instruction> = decoder.iter().collect();
    Kernel {
        source: "<bytes>".into(),
        lines: (1..=decoded.len()).collect(),
        text: decoded.iter().map(|i| i.to_string()).collect(),
        code: code.to_vec(),
        decoded,
        ret_line: None,
        cpp_checked: None,
    }
}

const SORT2_ATT: &str = "\
# sort2: buf[0], buf[1] = min, max
mov (%rdi), %eax
mov 4(%rdi), %ecx
mov %eax, %edx
cmp %ecx, %eax
cmovg %ecx, %eax
cmovg %edx, %ecx
mov %eax, (%rdi)
mov %ecx, 4(%rdi)
";

const SORT2_INTEL: &str = "\
# sort2 in Intel syntax
mov eax, dword ptr [rdi]
mov ecx, DWORD PTR [rdi+4]
mov edx, eax
cmp eax, ecx
cmovg eax, ecx
cmovg ecx, edx
mov [rdi], eax
mov dword ptr [rdi + 4], ecx
";

fn sort2() -> Vec<Insn> {
    use Reg::*;
    vec![
        Insn::Load { dst: Eax, slot: 0 },
        Insn::Load { dst: Ecx, slot: 1 },
        Insn::Mov { dst: Edx, src: Eax },
        Insn::Cmp { a: Eax, b: Ecx },
        Insn::Cmov {
            cc: Cond::G,
            dst: Eax,
            src: Ecx,
        },
        Insn::Cmov {
            cc: Cond::G,
            dst: Ecx,
            src: Edx,
        },
        Insn::Store { slot: 0, src: Eax },
        Insn::Store { slot: 1, src: Ecx },
    ]
}

#[test]
fn att_and_intel_decode_to_the_same_game_moves() {
    let a = att(SORT2_ATT);
    let i = intel(SORT2_INTEL);
    assert_eq!(a.to_game(2), Ok(sort2()));
    assert_eq!(i.to_game(2), Ok(sort2()));
    assert_eq!(a.code, i.code);
    assert_eq!(a.lines, vec![2, 3, 4, 5, 6, 7, 8, 9]);
    assert_eq!(a.text[0], "mov (%rdi), %eax");
    assert_eq!(i.text[1], "mov ecx, DWORD PTR [rdi+4]");
    assert_eq!(a.ret_line, None);
    assert_eq!(a.check_safe(2, &[]), Ok(()));
    assert_eq!(i.check_safe(2, &[]), Ok(()));
    // The bytes are what GNU as makes of `mov (%rdi),%eax` and `mov 4(%rdi),%ecx`.
    assert_eq!(&a.code[..5], &[0x8b, 0x07, 0x8b, 0x4f, 0x04]);
    assert_eq!(a.decoded.len(), 8);
}

#[test]
fn comments_blank_lines_directives_and_trailing_ret() {
    let text = "\n\
        # leading comment\n\
        .intel_syntax noprefix\n\
        \n\
        mov eax, [rdi]   # load\n\
        \t# indented comment\n\
        .att_syntax prefix\n\
        mov %eax, 4(%rdi) # store\n\
        ret   # dropped\n\
        \n";
    let k = att(text);
    assert_eq!(k.lines, vec![5, 8]);
    assert_eq!(
        k.text,
        vec![
            "mov eax, [rdi]".to_string(),
            "mov %eax, 4(%rdi)".to_string()
        ]
    );
    assert_eq!(k.ret_line, Some(9));
    assert_eq!(k.code, vec![0x8b, 0x07, 0x89, 0x47, 0x04]);
    assert_eq!(
        k.to_game(2),
        Ok(vec![
            Insn::Load {
                dst: Reg::Eax,
                slot: 0
            },
            Insn::Store {
                slot: 1,
                src: Reg::Eax
            }
        ])
    );
    // `retq` and `rep ret` count as a trailing ret too.
    assert_eq!(att("mov %eax, %ecx\nretq\n").ret_line, Some(2));
    assert_eq!(intel("mov eax, ecx\nrep ret").code, vec![0x89, 0xc8]);
}

#[test]
fn unsupported_instruction_for_the_game() {
    let k = att("mov %eax, %ecx\n\n sbb %eax,%eax\n");
    assert_eq!(
        k.to_game(3),
        Err((3, "unsupported instruction sbb".to_string()))
    );
    assert_eq!(k.check_safe(3, &[]), Ok(()));
}

#[test]
fn callee_saved_registers_are_moves_but_only_listed_ones_may_be_used() {
    let k = att("mov %ebx,%eax");
    assert_eq!(k.check_safe(3, &[]), Ok(()));
    // ebx is one of the game's registers (a task may list it as scratch) ...
    assert_eq!(
        k.to_game(3),
        Ok(vec![Insn::Mov {
            dst: Reg::Eax,
            src: Reg::Ebx
        }])
    );
    // ... but a task that does not list it refuses it, and a write needs it listed as saved.
    let scratch = [iced_x86::Register::EAX, iced_x86::Register::ECX];
    assert_eq!(
        k.check_registers("sort3", &scratch),
        Err((
            1,
            "uses ebx, which task sort3 does not list as scratch (eax, ecx)".to_string()
        ))
    );
    let w = att("mov %eax,%ebx");
    assert_eq!(
        w.check_safe(3, &[]),
        Err((1, "clobbers callee-saved rbx".to_string()))
    );
    assert_eq!(w.check_safe(3, &[iced_x86::Register::RBX]), Ok(()));
    // A 64-bit register is not a game register.
    assert_eq!(
        att("mov %rbx,%rax").to_game(3),
        Err((
            1,
            "unsupported operands for mov (the game's moves take 32-bit scratch registers and dword [rdi+4k] for i32 elements)"
                .to_string()
        ))
    );
    // The same line is a move for 64-bit elements, and a 32-bit one is not.
    use superopt::isa::{Element, Insn, Reg};
    assert_eq!(
        att("mov %rbx,%rax").to_game_as(3, Element::U64),
        Ok(vec![Insn::Mov {
            dst: Reg::Eax,
            src: Reg::Ebx
        }])
    );
    assert_eq!(
        att("mov 16(%rdi),%rax\ncmp %rcx,%rax\ncmovb %rcx,%rax\nmov %rax,8(%rdi)")
            .to_game_as(3, Element::U64),
        Ok(vec![
            Insn::Load {
                dst: Reg::Eax,
                slot: 2
            },
            Insn::Cmp {
                a: Reg::Eax,
                b: Reg::Ecx
            },
            Insn::Cmov {
                cc: superopt::isa::Cond::B,
                dst: Reg::Eax,
                src: Reg::Ecx
            },
            Insn::Store {
                slot: 1,
                src: Reg::Eax
            },
        ])
    );
    assert_eq!(
        att("mov %ebx,%eax").to_game_as(3, Element::I64),
        Err((
            1,
            "unsupported operands for mov (the game's moves take 64-bit scratch registers and qword [rdi+8k] for i64 elements)"
                .to_string()
        ))
    );
    assert_eq!(
        att("mov 24(%rdi),%rax").to_game_as(3, Element::I64),
        Err((
            1,
            "accesses [rdi+24], outside the array of 3 i64 elements".to_string()
        ))
    );
    // 8-byte accesses are safe inside a 64-bit array, not past it, and not misaligned.
    assert_eq!(
        att("mov 16(%rdi),%rax").check_safe_as(3, Element::I64, &[]),
        Ok(())
    );
    assert_eq!(
        att("mov 20(%rdi),%rax").check_safe_as(3, Element::I64, &[]),
        Err((1, "reads outside the array".to_string()))
    );
    assert_eq!(
        att("mov 4(%rdi),%rax").check_safe_as(3, Element::I64, &[]),
        Err((1, "mov accesses 8 bytes at [rdi+4], which may be misaligned (rdi is only 8-byte aligned) and faults when the caller enables alignment checking".to_string()))
    );
    assert_eq!(
        att("mov 4(%rdi),%rax").check_safe(3, &[]),
        Err((1, "mov accesses 8 bytes at [rdi+4], which may be misaligned (rdi is only 4-byte aligned) and faults when the caller enables alignment checking".to_string()))
    );
}

#[test]
fn check_safe_register_rules() {
    let err = |t: &str| att(t).check_safe(3, &[]).unwrap_err();
    assert_eq!(
        err("mov %eax,%ecx\nmov $1,%ebx"),
        (2, "clobbers callee-saved rbx".to_string())
    );
    assert_eq!(
        err("mov $1,%bpl"),
        (1, "clobbers callee-saved rbp".to_string())
    );
    assert_eq!(
        err("add %eax,%r12d"),
        (1, "clobbers callee-saved r12".to_string())
    );
    assert_eq!(
        err("cmovl %eax,%r15d"),
        (1, "clobbers callee-saved r15".to_string())
    );
    assert_eq!(
        err("mov %eax,%edi"),
        (1, "writes the array pointer rdi".to_string())
    );
    assert_eq!(
        err("add $4,%rdi"),
        (1, "writes the array pointer rdi".to_string())
    );
    assert_eq!(
        err("push %rax"),
        (1, "stack instruction push is not allowed".to_string())
    );
    assert_eq!(
        err("pop %rax"),
        (1, "stack instruction pop is not allowed".to_string())
    );
    assert_eq!(
        err("mov %rsp,%rax"),
        (1, "uses the stack pointer rsp".to_string())
    );
    assert_eq!(
        err("mov (%rsp),%eax"),
        (1, "uses the stack pointer rsp".to_string())
    );
    assert_eq!(
        err("std"),
        (
            1,
            "std is not allowed: it sets the direction flag, which must stay clear".to_string()
        )
    );
    assert_eq!(
        att("cld\nmov %ebx,%eax\nxor %r11d,%r11d").check_safe(3, &[]),
        Ok(())
    );
}

#[test]
fn check_safe_memory_rules() {
    let err = |t: &str, n: usize| att(t).check_safe(n, &[]).unwrap_err();
    assert_eq!(
        err("mov %eax,12(%rdi)", 3),
        (1, "writes outside the array".to_string())
    );
    assert_eq!(att("mov %eax,12(%rdi)").check_safe(4, &[]), Ok(()));
    assert_eq!(
        err("mov -4(%rdi),%eax", 3),
        (1, "reads outside the array".to_string())
    );
    assert_eq!(
        err("mov 10(%rdi),%eax", 3),
        (1, "reads outside the array".to_string())
    );
    assert_eq!(att("mov 8(%rdi),%eax").check_safe(3, &[]), Ok(()));
    // A byte access at the last byte is fine; a qword straddling the end is not.
    assert_eq!(att("movb $1, 11(%rdi)").check_safe(3, &[]), Ok(()));
    assert_eq!(
        err("mov 8(%rdi),%rax", 3),
        (1, "reads outside the array".to_string())
    );
    assert_eq!(
        err("addl $1, 12(%rdi)", 3),
        (1, "writes outside the array".to_string())
    );
    assert_eq!(
        err("cmovl 12(%rdi),%eax", 3),
        (1, "reads outside the array".to_string())
    );
    assert_eq!(
        err("mov (%rdi,%rax,4),%eax", 3),
        (1, "accesses memory other than [rdi + disp]".to_string())
    );
    assert_eq!(
        err("mov (%rsi),%eax", 3),
        (1, "accesses memory other than [rdi + disp]".to_string())
    );
    assert_eq!(
        err("mov (%edi),%eax", 3),
        (1, "accesses memory other than [rdi + disp]".to_string())
    );
    assert_eq!(
        err("mov 0(%rip),%eax", 3),
        (1, "accesses memory other than [rdi + disp]".to_string())
    );
    assert_eq!(
        err("mov %fs:(%rdi),%eax", 3),
        (1, "accesses memory through segment fs".to_string())
    );
    assert_eq!(
        err("stosl", 3),
        (1, "stosd accesses memory implicitly".to_string())
    );
    assert_eq!(
        err("movsl", 3),
        (1, "movsd accesses memory implicitly".to_string())
    );
    assert_eq!(
        err("btl %eax,(%rdi)", 3),
        (
            1,
            "bt with a register bit offset may access memory outside the array".to_string()
        )
    );
    assert_eq!(
        err("movaps (%rdi),%xmm0", 4),
        (
            1,
            "movaps may fault on a misaligned address (rdi's alignment is unknown)".to_string()
        )
    );
    assert_eq!(
        err("paddd (%rdi),%xmm0", 4),
        (
            1,
            "paddd may fault on a misaligned address (rdi's alignment is unknown)".to_string()
        )
    );
    // Unaligned-capable 16-byte accesses are still refused: rdi is only 4-byte aligned, and
    // a caller with EFLAGS.AC set would fault on any access wider than that.
    assert_eq!(
        err("movdqu (%rdi),%xmm0\nmovdqu %xmm0,(%rdi)", 4),
        (
            1,
            "movdqu accesses 16 bytes at [rdi+0], which may be misaligned (rdi is only 4-byte aligned) and faults when the caller enables alignment checking".to_string()
        )
    );
    assert_eq!(
        err("mov (%rdi),%rax", 4),
        (
            1,
            "mov accesses 8 bytes at [rdi+0], which may be misaligned (rdi is only 4-byte aligned) and faults when the caller enables alignment checking".to_string()
        )
    );
    assert_eq!(
        err("mov 2(%rdi),%eax", 4),
        (
            1,
            "mov accesses 4 bytes at [rdi+2], which may be misaligned (rdi is only 4-byte aligned) and faults when the caller enables alignment checking".to_string()
        )
    );
    assert_eq!(
        att("movw 2(%rdi),%ax\nmovb 3(%rdi),%al").check_safe(4, &[]),
        Ok(())
    );
    assert_eq!(
        err("movdqu (%rdi),%xmm0", 3),
        (1, "reads outside the array".to_string())
    );
    // lea computes an address without accessing memory.
    assert_eq!(att("lea 100(%rdi),%rax").check_safe(3, &[]), Ok(()));
}

#[test]
fn check_safe_control_flow_and_faults() {
    let err = |t: &str| att(t).check_safe(3, &[]).unwrap_err();
    // Direct branches need a target the parser refuses (`.+2`, labels, symbols), so the
    // static check is tested on decoded bytes: it is defence in depth behind the parser.
    let err_bytes = |b: &[u8]| from_bytes(b).check_safe(3, &[]).unwrap_err();
    assert_eq!(
        err_bytes(&[0x89, 0xc1, 0xeb, 0x00, 0x89, 0xc8]),
        (2, "control-flow instruction jmp is not allowed".to_string())
    );
    assert_eq!(
        err_bytes(&[0x7c, 0x00]),
        (1, "control-flow instruction jl is not allowed".to_string())
    );
    assert_eq!(
        err_bytes(&[0xe8, 0x00, 0x00, 0x00, 0x00]),
        (
            1,
            "control-flow instruction call is not allowed".to_string()
        )
    );
    assert_eq!(
        asm_error("jmp .+2", Syntax::Att).1,
        "'.' is not allowed in an instruction (no directives, no location counter)"
    );
    assert_eq!(
        err("call *%rax"),
        (
            1,
            "control-flow instruction call is not allowed".to_string()
        )
    );
    assert_eq!(
        err("ret\nmov %eax,%ecx"),
        (1, "ret is only allowed as the last line".to_string())
    );
    assert_eq!(
        err("int3"),
        (
            1,
            "control-flow instruction int3 is not allowed".to_string()
        )
    );
    assert_eq!(
        err("syscall"),
        (
            1,
            "control-flow instruction syscall is not allowed".to_string()
        )
    );
    assert_eq!(
        err("ud2"),
        (1, "control-flow instruction ud2 is not allowed".to_string())
    );
    assert_eq!(
        err("hlt"),
        (1, "privileged instruction hlt is not allowed".to_string())
    );
    assert_eq!(
        err("inb $0x60,%al"),
        (1, "privileged instruction in is not allowed".to_string())
    );
    assert_eq!(
        err("cli"),
        (1, "privileged instruction cli is not allowed".to_string())
    );
    assert_eq!(
        err("div %ecx"),
        (
            1,
            "div is not allowed: it may fault (divide error)".to_string()
        )
    );
    assert_eq!(
        err("idivl (%rdi)"),
        (
            1,
            "idiv is not allowed: it may fault (divide error)".to_string()
        )
    );
    assert_eq!(
        err("fld1"),
        (
            1,
            "fld1 needs CPU feature FPU, which the verifier does not allow".to_string()
        )
    );
    assert_eq!(
        err("rdtsc"),
        (
            1,
            "rdtsc needs CPU feature TSC, which the verifier does not allow".to_string()
        )
    );
    assert_eq!(
        err("ldmxcsr (%rdi)"),
        (
            1,
            "ldmxcsr is not allowed: it changes MXCSR, which the caller owns".to_string()
        )
    );
    assert_eq!(
        err("mov %eax,%fs"),
        (1, "writes segment register fs".to_string())
    );
}

#[test]
fn bad_text_is_an_asm_error_with_the_line() {
    let (line, msg, shown) = asm_error("mov %eax,%ecx\n\nfoo bar\n", Syntax::Att);
    assert_eq!((line, msg.as_str()), (3, "no such instruction: `foo bar'"));
    assert_eq!(shown, "foo.s:3: no such instruction: `foo bar'");

    let (line, msg, _) = asm_error("# c\nmov eax, ecx\nmovz eax, ecx", Syntax::Intel);
    assert_eq!(
        (line, msg.as_str()),
        (3, "no such instruction: `movz eax,ecx'")
    );

    // A file in the other syntax gets a hint.
    let (_, msg, _) = asm_error("mov eax, [rdi]\nmov ecx, eax\n", Syntax::Att);
    assert_eq!(
        msg,
        "operand size mismatch for `mov' (no %registers in the file: Intel syntax? try --syntax intel)"
    );
    let (_, msg, _) = asm_error("mov (%rdi), %eax\n", Syntax::Intel);
    assert!(
        msg.ends_with(" (%registers in the file: AT&T syntax? try --syntax att)"),
        "{msg}"
    );

    // The earliest problem wins, whether GNU as or we found it.
    let (line, msg, _) = asm_error("mov %eax,%ecx\n.byte 0x90\nfoo", Syntax::Att);
    assert_eq!(
        (line, msg.as_str()),
        (
            2,
            "directive .byte is not allowed (only .intel_syntax noprefix and .att_syntax)"
        )
    );
    let (line, _, _) = asm_error("foo\n.byte 0x90", Syntax::Att);
    assert_eq!(line, 1);

    let (line, msg, _) = asm_error("mov %eax,%ecx\nl1: mov %ecx,%eax", Syntax::Att);
    assert_eq!(
        (line, msg.as_str()),
        (
            2,
            "label l1: is not allowed (one instruction per line, no branches)"
        )
    );

    // A GNU as warning (ambiguous operand size) is an error here.
    let (line, msg, _) = asm_error("\nincl (%rdi)\ninc (%rdi)", Syntax::Att);
    assert_eq!(line, 3);
    assert!(
        msg.starts_with("warning: no instruction mnemonic suffix given"),
        "{msg}"
    );

    // A typo that GNU as reads as a symbol reference.
    let (line, msg, _) = asm_error("mov eax, exc", Syntax::Intel);
    assert_eq!(
        (line, msg.as_str()),
        (
            1,
            "refers to symbol 'exc'; symbols and labels are not allowed"
        )
    );
    let (line, msg, _) = asm_error("nop\ncall memcpy", Syntax::Att);
    assert_eq!(
        (line, msg.as_str()),
        (
            2,
            "refers to symbol 'memcpy'; symbols and labels are not allowed"
        )
    );
}

#[test]
fn lines_that_are_not_one_instruction() {
    let (line, msg, _) = asm_error("mov %eax,%ecx\nrep", Syntax::Att);
    assert_eq!(
        (line, msg.as_str()),
        (2, "does not assemble to a complete instruction (f3)")
    );
    let (line, msg, _) = asm_error("x = 1", Syntax::Att);
    assert_eq!(
        (line, msg.as_str()),
        (1, "symbol assignment x = ... is not allowed")
    );
}

#[test]
fn empty_kernels() {
    for text in [
        "",
        "\n\n",
        "# only a comment\n# and another",
        "ret",
        "\n.intel_syntax noprefix\nret\n",
    ] {
        let (line, msg, shown) = asm_error(text, Syntax::Att);
        assert_eq!((line, msg.as_str()), (1, "no instructions"), "{text:?}");
        assert_eq!(shown, "foo.s:1: no instructions");
    }
}

#[test]
fn parse_file_reads_and_reports_io_errors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sort2.s");
    std::fs::write(&path, SORT2_INTEL).unwrap();
    let k = parse_file(&path, Syntax::Intel).unwrap();
    assert_eq!(k.source, path.display().to_string());
    assert_eq!(k.to_game(2), Ok(sort2()));

    std::fs::write(&path, "mov eax, ecx\nbogus\n").unwrap();
    match parse_file(&path, Syntax::Intel) {
        Err(Error::Asm {
            path: p, line: 2, ..
        }) => assert_eq!(p, path.display().to_string()),
        other => panic!("{other:?}"),
    }
    match parse_file(&dir.path().join("missing.s"), Syntax::Att) {
        Err(Error::Io { .. }) => {}
        other => panic!("{other:?}"),
    }
}

/// Every game move of a task with `n` elements.
fn all_moves(n: u8) -> Vec<Insn> {
    let mut all = Vec::new();
    for &a in &Reg::ALL {
        for slot in 0..n {
            all.push(Insn::Load { dst: a, slot });
            all.push(Insn::Store { slot, src: a });
        }
        for &b in &Reg::ALL {
            all.push(Insn::Mov { dst: a, src: b });
            all.push(Insn::Cmp { a, b });
            for &cc in &Cond::ALL {
                all.push(Insn::Cmov { cc, dst: a, src: b });
            }
        }
    }
    all
}

/// Every game move, formatted by `format`, assembles with GNU as in `syntax` and decodes
/// back to itself (one file, one line per move).
fn round_trip(syntax: Syntax, format: fn(Insn) -> String) {
    let n = 5;
    let all = all_moves(n as u8);
    let text: Vec<String> = all.iter().map(|&i| format(i)).collect();
    let k = parse_str(&text.join("\n"), syntax, "<moves>").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(k.to_game(n), Ok(all.clone()));
    use iced_x86::Register::*;
    assert_eq!(k.check_safe(n, &[RBX, RBP, R12, R13, R14, R15]), Ok(()));
    assert_eq!(k.lines, (1..=all.len()).collect::<Vec<_>>());
    assert_eq!(k.text, text);
}

#[test]
fn every_game_move_round_trips_in_att_syntax() {
    round_trip(Syntax::Att, Insn::att);
}

#[test]
fn every_game_move_round_trips_in_intel_syntax() {
    round_trip(Syntax::Intel, Insn::intel);
}
