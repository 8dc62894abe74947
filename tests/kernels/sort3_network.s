# The classic 3-comparator sorting network, 18 instructions (AT&T syntax).
mov (%rdi), %eax
mov 4(%rdi), %ecx
mov 8(%rdi), %edx
# comparator (0,1)
mov %eax, %esi
cmp %ecx, %eax
cmovg %ecx, %eax
cmovg %esi, %ecx
# comparator (1,2)
mov %ecx, %esi
cmp %edx, %ecx
cmovg %edx, %ecx
cmovg %esi, %edx
# comparator (0,1)
mov %eax, %esi
cmp %ecx, %eax
cmovg %ecx, %eax
cmovg %esi, %ecx
mov %eax, (%rdi)
mov %ecx, 4(%rdi)
mov %edx, 8(%rdi)
ret
