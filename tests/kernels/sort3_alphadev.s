; AlphaDev's 17-instruction sort3 (Nature 618:257, Fig. 3) in loads-first, stores-last form.
mov eax, [rdi]
mov ecx, [rdi+4]
mov edx, [rdi+8]
mov esi, ecx
cmp ecx, edx
cmovg ecx, edx      ; ecx = b' = min(b, c)
cmovg edx, esi      ; edx = c' = max(b, c)
mov esi, edx
cmp eax, edx
cmovg edx, eax      ; edx = max(a, c'): the maximum
cmovl esi, eax      ; esi = min(a, c')
cmp ecx, esi
cmovle eax, ecx     ; eax = b' if b' <= min(a, c') else a: the minimum
cmovl ecx, esi      ; ecx = max(b', min(a, c')): the median
mov [rdi], eax
mov [rdi+4], ecx
mov [rdi+8], edx
