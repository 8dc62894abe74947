//! Stage 2 of the oracle on real kernels: correct networks pass, and each kind of misbehaviour
//! (wrong result, leftover registers, writes next to the array, clobbered callee-saved
//! registers) is caught with its one-line reason.
#![cfg(target_arch = "x86_64")]

use iced_x86::code_asm::*;
use superopt::game::network::network_kernel_with;
use superopt::game::network::{classic_comparators, network_kernel};
use superopt::isa::{encode, encode_as, Cond, Element, Reg};
use superopt::oracle::native::{run_native, NativeConfig, NativeFailure, NativeReport};

fn sort_net(n: usize) -> &'static [(usize, usize)] {
    classic_comparators(n).unwrap()
}
/// A sorting network on `n` values as machine code (temporary: scratch register `n`).
fn network(n: usize, comparators: &[(usize, usize)]) -> Vec<u8> {
    encode(&network_kernel(&Reg::ALL, n, comparators))
}

/// Assembles a kernel with iced's code assembler, for instructions outside the game ISA.
fn asm(build: impl FnOnce(&mut CodeAssembler) -> Result<(), IcedError>) -> Vec<u8> {
    let mut a = CodeAssembler::new(64).unwrap();
    build(&mut a).unwrap();
    a.assemble(0).unwrap()
}

/// `code` followed by a correct sort3 network, so that only the extra code can fail.
fn then_sort3(code: Vec<u8>) -> Vec<u8> {
    [code, network(3, sort_net(3))].concat()
}

fn quick() -> NativeConfig {
    NativeConfig {
        random: 2000,
        seed: 1,
    }
}

fn pass(code: &[u8], n: usize, cfg: &NativeConfig) -> NativeReport {
    match run_native(code, n, Element::I32, cfg).expect("JIT works") {
        Ok(report) => report,
        Err(f) => panic!("expected a pass, got: {f}"),
    }
}

fn fail(code: &[u8], n: usize) -> NativeFailure {
    match run_native(code, n, Element::I32, &quick()).expect("JIT works") {
        Ok(report) => panic!("expected a failure, got a pass: {report:?}"),
        Err(f) => f,
    }
}

#[test]
fn sort3_network_passes() {
    let report = pass(&network(3, sort_net(3)), 3, &NativeConfig::default());
    assert!(!report.checks.is_empty());
    assert_eq!(report.checks[0], "all 27 tuples over {0..2}^3");
    assert_eq!(report.calls, (27 + 343 + 100_000) * 4);
}

#[test]
fn sort4_network_passes() {
    let report = pass(&network(4, sort_net(4)), 4, &quick());
    assert_eq!(report.checks[0], "all 256 tuples over {0..3}^4");
    assert_eq!(report.calls, (256 + 2401 + 2000) * 4);
}

#[test]
fn sort5_network_passes_quickly() {
    let start = std::time::Instant::now();
    let report = pass(&network(5, sort_net(5)), 5, &NativeConfig::default());
    let elapsed = start.elapsed();
    eprintln!("sort5: {} calls in {elapsed:?}", report.calls);
    assert_eq!(report.calls, (3125 + 16807 + 100_000) * 4);
    assert_eq!(
        report.checks[..3],
        [
            "all 3125 tuples over {0..4}^5",
            "all 16807 tuples over {0, 1, -1, INT_MIN, INT_MIN+1, INT_MAX-1, INT_MAX}^5",
            "100000 random tuples (seed 0)",
        ]
    );
}

#[test]
fn sort7_network_passes() {
    // 7 values plus the temporary use all eight scratch registers.
    let report = pass(
        &network(7, sort_net(7)),
        7,
        &NativeConfig {
            random: 10_000,
            seed: 3,
        },
    );
    assert_eq!(report.calls, (823_543 * 2 + 10_000) * 4);
}

#[test]
fn sort7_network_missing_its_last_comparator_fails() {
    let f = fail(&network(7, &sort_net(7)[..15]), 7);
    assert!(matches!(f, NativeFailure::NotSorted { .. }), "{f}");
}

#[test]
fn missing_comparator_fails_first_on_a_small_input() {
    // (0,1),(1,2) without the final (0,1): every tuple before [1,1,0] happens to come out
    // sorted, so the first failure reported is that one.
    let f = fail(&network(3, &sort_net(3)[..2]), 3);
    assert_eq!(f.to_string(), "not sorted: [1,1,0] -> [1,0,1]");
    assert_eq!(
        f,
        NativeFailure::NotSorted {
            input: vec![1, 1, 0],
            output: vec![1, 0, 1]
        }
    );
}

#[test]
fn reading_an_unwritten_register_is_poison_dependent() {
    let code = asm(|a| a.mov(dword_ptr(rdi), ecx));
    let f = fail(&code, 3);
    assert_eq!(
        f.to_string(),
        "result depends on leftover register values: [0,0,0] -> [0,0,0] or [-1,0,0]"
    );
}

#[test]
fn high_halves_of_scratch_registers_are_poisoned() {
    // The kernel stores the upper half of r8, which it never wrote.
    let code = asm(|a| {
        a.shr(r8, 32)?;
        a.mov(dword_ptr(rdi + 4), r8d)
    });
    let f = fail(&code, 2);
    assert_eq!(
        f.to_string(),
        "result depends on leftover register values: [0,0] -> [0,0] or [0,-1]"
    );
}

#[test]
fn reading_flags_before_any_compare_is_poison_dependent() {
    let code = asm(|a| {
        a.mov(eax, dword_ptr(rdi))?;
        a.mov(edx, 5)?;
        a.cmovl(eax, edx)?; // flags not yet set by the kernel
        a.mov(dword_ptr(rdi), eax)
    });
    let f = fail(&code, 1);
    assert_eq!(
        f.to_string(),
        "result depends on leftover register values: [0] -> [0] or [5]"
    );
}

#[test]
fn correct_kernel_may_overwrite_poisoned_registers_first() {
    let code = then_sort3(asm(|a| {
        a.mov(rax, rcx)?;
        a.mov(rdx, -1i64)?;
        a.cmp(esi, r8d)?;
        a.cmovl(r9, r10)
    }));
    pass(&code, 3, &quick());
}

#[test]
fn write_after_the_array_is_caught() {
    let code = then_sort3(asm(|a| a.mov(dword_ptr(rdi + 12), eax)));
    let f = fail(&code, 3);
    assert_eq!(
        f.to_string(),
        "writes outside the array: guard word after it changed on [0,0,0]"
    );
    assert_eq!(
        f,
        NativeFailure::OutsideArray {
            input: vec![0, 0, 0],
            before: false
        }
    );
}

#[test]
fn write_before_the_array_is_caught() {
    let code = then_sort3(asm(|a| a.mov(dword_ptr(rdi - 4), eax)));
    let f = fail(&code, 3);
    assert_eq!(
        f.to_string(),
        "writes outside the array: guard word before it changed on [0,0,0]"
    );
}

#[test]
fn reading_next_to_the_array_is_caught() {
    // Guard words differ between poison patterns, so a read past the end shows up.
    let code = asm(|a| {
        a.mov(eax, dword_ptr(rdi + 4))?;
        a.mov(dword_ptr(rdi), eax)
    });
    let f = fail(&code, 1);
    assert!(matches!(f, NativeFailure::PoisonDependent { .. }), "{f}");
}

#[test]
fn clobbering_callee_saved_registers_is_caught() {
    let f = fail(&then_sort3(asm(|a| a.mov(ebx, 1))), 3);
    assert_eq!(f.to_string(), "clobbers callee-saved rbx");
    assert_eq!(
        f,
        NativeFailure::CalleeSaved {
            reg: "rbx",
            input: vec![0, 0, 0]
        }
    );
    for (code, reg) in [
        (asm(|a| a.xor(ebp, ebp)), "rbp"),
        (asm(|a| a.inc(r12)), "r12"),
        (asm(|a| a.mov(r13d, r13d)), "r13"), // clears the upper half
        (asm(|a| a.not(r14)), "r14"),
        (asm(|a| a.mov(r15b, 0)), "r15"),
        (asm(|a| a.lea(rsp, qword_ptr(rsp - 8))), "rsp"),
        (asm(|a| a.push(rax)), "rsp"),
    ] {
        let f = fail(&then_sort3(code), 3);
        assert_eq!(f.to_string(), format!("clobbers callee-saved {reg}"));
    }
}

#[test]
fn saving_and_restoring_a_callee_saved_register_passes() {
    let code = then_sort3(asm(|a| {
        a.xchg(rbx, rax)?;
        a.xchg(rbx, rax)
    }));
    pass(&code, 3, &quick());
}

/// A sort3 network like [`network`] but with `cmov` in place of `cmovg`, for conditions
/// outside the game ISA.
fn sort3_with(
    cmov: fn(&mut CodeAssembler, AsmRegister32, AsmRegister32) -> Result<(), IcedError>,
) -> Vec<u8> {
    let regs = [eax, ecx, edx];
    asm(|a| {
        for (i, &r) in regs.iter().enumerate() {
            a.mov(r, dword_ptr(rdi + 4 * i as i32))?;
        }
        for &(i, j) in sort_net(3) {
            a.mov(r11d, regs[i])?;
            a.cmp(regs[i], regs[j])?;
            cmov(a, regs[i], regs[j])?;
            cmov(a, regs[j], r11d)?;
        }
        for (i, &r) in regs.iter().enumerate() {
            a.mov(dword_ptr(rdi + 4 * i as i32), r)?;
        }
        Ok(())
    })
}

#[test]
fn sort3_with_cmovg_written_by_hand_passes() {
    pass(&sort3_with(|a, d, s| a.cmovg(d, s)), 3, &quick());
}

#[test]
fn unsigned_compare_fails_on_negative_values() {
    let f = fail(&sort3_with(|a, d, s| a.cmova(d, s)), 3);
    // The smallest tuple over the extremes with a negative value: -1 is unsigned 0xFFFFFFFF.
    assert_eq!(f.to_string(), "not sorted: [0,0,-1] -> [0,0,-1]");
    match f {
        NativeFailure::NotSorted { input, .. } => assert!(input.iter().any(|&x| x < 0)),
        other => panic!("expected NotSorted, got {other}"),
    }
}

#[test]
fn sign_flag_compare_fails_on_overflow() {
    // `cmovns` after `cmp` tests the sign of ri - rj, ignoring overflow: right for small
    // values, wrong when the difference overflows. 0 - INT_MIN overflows to INT_MIN, whose
    // sign is set, so the pair (0, INT_MIN) is left as it is.
    let f = fail(&sort3_with(|a, d, s| a.cmovns(d, s)), 3);
    assert_eq!(
        f.to_string(),
        "not sorted: [0,0,-2147483648] -> [0,0,-2147483648]"
    );
}

#[test]
fn random_tuples_follow_the_seed() {
    let a = pass(
        &network(3, sort_net(3)),
        3,
        &NativeConfig {
            random: 10,
            seed: 42,
        },
    );
    assert_eq!(a.checks[2], "10 random tuples (seed 42)");
    assert_eq!(a.calls, (27 + 343 + 10) * 4);
}

/// The sort4 network for elements of type `el`, exchanging with `cmov{cc}`.
fn network_as(el: Element, cc: Cond) -> Vec<u8> {
    encode_as(&network_kernel_with(&Reg::ALL, 4, sort_net(4), cc), el)
}

#[test]
fn each_element_type_passes_its_own_network_with_its_extremes() {
    let lines = [
        (
            Element::I32,
            Cond::G,
            "{0, 1, -1, INT_MIN, INT_MIN+1, INT_MAX-1, INT_MAX}",
            2401,
        ),
        (Element::U32, Cond::A, "{0, 1, UINT_MAX-1, UINT_MAX}", 256),
        (
            Element::I64,
            Cond::G,
            "{0, 1, -1, INT64_MIN, INT64_MIN+1, INT64_MAX-1, INT64_MAX}",
            2401,
        ),
        (
            Element::U64,
            Cond::A,
            "{0, 1, UINT64_MAX-1, UINT64_MAX}",
            256,
        ),
    ];
    for (el, cc, extremes, count) in lines {
        let report = match run_native(&network_as(el, cc), 4, el, &quick()).unwrap() {
            Ok(r) => r,
            Err(f) => panic!("{el}: {f}"),
        };
        assert_eq!(
            report.checks[1],
            format!("all {count} tuples over {extremes}^4")
        );
        assert_eq!(report.calls, (256 + count + 2000) * 4, "{el}");
    }
}

#[test]
fn each_element_types_native_stage_catches_the_other_signedness() {
    // A network right for the other signedness fails on a small input of the type's extremes.
    let cases = [
        (
            Element::I32,
            Cond::A,
            "not sorted: [0,0,0,-1] -> [0,0,0,-1]",
        ),
        (
            Element::U32,
            Cond::G,
            "not sorted: [0,0,0,4294967294] -> [4294967294,0,0,0]",
        ),
        (
            Element::I64,
            Cond::A,
            "not sorted: [0,0,0,-1] -> [0,0,0,-1]",
        ),
        (
            Element::U64,
            Cond::G,
            "not sorted: [0,0,0,18446744073709551614] -> [18446744073709551614,0,0,0]",
        ),
    ];
    for (el, cc, want) in cases {
        let verdict = run_native(&network_as(el, cc), 4, el, &quick()).unwrap();
        assert_eq!(verdict.unwrap_err().to_string(), want, "{el}");
    }
}

#[test]
fn a_32_bit_kernel_fails_on_64_bit_elements() {
    // The i32 network reads the low halves of the i64 elements: wrong on the first tuples.
    let verdict = run_native(
        &network_as(Element::I32, Cond::G),
        4,
        Element::I64,
        &quick(),
    );
    assert_eq!(
        verdict.unwrap().unwrap_err().to_string(),
        "not sorted: [0,0,1,0] -> [0,0,1,0]"
    );
}
