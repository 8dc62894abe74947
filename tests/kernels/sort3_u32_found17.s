# A 17-instruction sort3 for u32 found by superopt (`superopt search sort3-u32 --budget 5s`,
# seed 0), Intel syntax: unsigned conditions (cmova/cmovae/cmovb).
mov eax, [rdi]
mov ecx, [rdi+4]
mov edx, [rdi+8]
cmp ecx, edx
mov esi, edx
cmova edx, ecx
cmova ecx, esi
cmp eax, ecx
cmovae esi, eax
cmovb esi, ecx
cmovb ecx, eax
cmp edx, esi
cmovae eax, edx
cmovb esi, edx
mov [rdi], ecx
mov [rdi+4], esi
mov [rdi+8], eax
