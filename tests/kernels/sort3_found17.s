# A 17-instruction sort3 found by superopt (`superopt search sort3 --seed 1`, the best kernel
# of search-logs/examples/sort3-mcts-seed1.json), Intel syntax, loads first and stores last.
mov eax, [rdi]
mov ecx, [rdi+4]
mov edx, [rdi+8]
cmp eax, ecx
mov esi, eax
cmovl eax, ecx
cmovl ecx, esi
cmp eax, edx
cmovg esi, eax
cmovle esi, edx
cmovg eax, edx
cmp eax, ecx
cmovge edx, ecx
cmovl eax, ecx
mov [rdi], edx
mov [rdi+4], eax
mov [rdi+8], esi
