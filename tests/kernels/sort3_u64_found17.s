# A 17-instruction sort3 for u64 found by superopt (`superopt search sort3-u64 --budget 5s`,
# seed 0), AT&T syntax: 64-bit registers, stride 8, unsigned conditions.
mov (%rdi), %rax
mov 8(%rdi), %rcx
mov 0x10(%rdi), %rdx
cmp %rdx, %rcx
mov %rdx, %rsi
cmova %rcx, %rdx
cmova %rsi, %rcx
cmp %rcx, %rax
cmovae %rax, %rsi
cmovb %rcx, %rsi
cmovb %rax, %rcx
cmp %rsi, %rdx
cmovae %rdx, %rax
cmovb %rdx, %rsi
mov %rcx, (%rdi)
mov %rsi, 8(%rdi)
mov %rax, 0x10(%rdi)
