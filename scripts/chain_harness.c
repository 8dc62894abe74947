/* A timing harness independent of superopt's JIT chain loop (issue 13: "the same kernels
 * timed by a second, independent path"). scripts/chain_harness.py writes kernels.h, which
 * defines N (elements per array) and KERNELS, an X-macro list of exported functions
 * `void NAME(int32_t *buf)` linked from their .S files, then builds this file with gcc.
 *
 * For each kernel, each pass runs it over ARRAYS arrays laid end to end, called through a
 * function pointer, in two loops:
 *   dependent:   the next array's address depends on this call's outputs (their OR, masked
 *                with a zero read from a volatile), so calls cannot overlap: latency;
 *   independent: the next array is the next one: reciprocal throughput.
 * A pass is timed with rdtscp (reference cycles); passes interleave kernels and modes; the
 * figure is the 5th percentile of PASSES passes per kernel and mode (after a tenth more as
 * warm-up), in reference cycles per call, call overhead included. Inputs are drawn with
 * xorshift64 before each pass, outside the timed region, the same for every kernel.
 * Every pass's output is checked against insertion sort: a wrong kernel stops the harness.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <x86intrin.h>

#include "kernels.h"

#define ARRAYS 1000
#define PASSES 1000

typedef void (*kernel_fn)(int32_t *);

static volatile uint32_t zero_source = 0;

static uint64_t state = 0x9e3779b97f4a7c15ull;

static uint32_t next(void) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return (uint32_t)(state >> 32);
}

static void fill(int32_t *buf, uint64_t seed) {
    state = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < (size_t)N * ARRAYS; i++) {
        uint32_t r = next();
        buf[i] = (r & 1) ? (int32_t)r : (int32_t)(r % 3);
    }
}

static int sorted_as(const int32_t *in, const int32_t *out) {
    for (size_t a = 0; a < ARRAYS; a++) {
        int32_t want[N];
        memcpy(want, in + a * N, sizeof want);
        for (int i = 1; i < N; i++)
            for (int j = i; j > 0 && want[j - 1] > want[j]; j--) {
                int32_t t = want[j];
                want[j] = want[j - 1];
                want[j - 1] = t;
            }
        if (memcmp(want, out + a * N, sizeof want) != 0) return 0;
    }
    return 1;
}

static uint64_t start(void) {
    _mm_lfence();
    uint64_t t = __rdtsc();
    _mm_lfence();
    return t;
}

static uint64_t stop(void) {
    unsigned aux;
    uint64_t t = __rdtscp(&aux);
    _mm_lfence();
    return t;
}

static uint64_t dependent(kernel_fn f, int32_t *buf) {
    uint32_t zero = zero_source;
    int32_t *p = buf;
    uint64_t t0 = start();
    for (size_t a = 0; a < ARRAYS; a++) {
        f(p);
        /* One 4-byte load per output, as the kernel stored them: a wider (vectorised) load
         * would miss store-to-load forwarding and time the harness, not the kernel. */
        const volatile int32_t *out = p;
        uint32_t o = 0;
        /* Unrolled for every N: gcc -O2 leaves the loop rolled for N = 5 (a counted loop
         * with its own branch around the loads), which made that chain alone slower. */
#pragma GCC unroll 8
        for (int k = 0; k < N; k++) o |= (uint32_t)out[k];
        p += N + (o & zero);
    }
    return stop() - t0;
}

static uint64_t independent(kernel_fn f, int32_t *buf) {
    int32_t *p = buf;
    uint64_t t0 = start();
    for (size_t a = 0; a < ARRAYS; a++) {
        f(p);
        p += N;
    }
    return stop() - t0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

struct subject {
    const char *name;
    kernel_fn f;
};

#define X(name) {#name, name},
static const struct subject subjects[] = {KERNELS};
#undef X
#define COUNT (sizeof subjects / sizeof subjects[0])

int main(void) {
    static int32_t in[N * ARRAYS], buf[N * ARRAYS];
    static uint64_t t[COUNT][2][PASSES];
    /* Passes interleave the subjects and modes, so that warm-up, frequency and drift fall on
     * all of them alike; the first tenth of the passes is discarded. */
    for (int pass = 0; pass < PASSES + PASSES / 10; pass++) {
        fill(in, (uint64_t)pass);
        for (size_t s = 0; s < COUNT; s++) {
            for (int dep = 1; dep >= 0; dep--) {
                memcpy(buf, in, sizeof buf);
                uint64_t c = dep ? dependent(subjects[s].f, buf) : independent(subjects[s].f, buf);
                if (!sorted_as(in, buf)) {
                    fprintf(stderr, "%s: wrong output in pass %d\n", subjects[s].name, pass);
                    return 1;
                }
                if (pass >= PASSES / 10) t[s][dep][pass - PASSES / 10] = c;
            }
        }
    }
    printf("kernel\tdependent\tindependent\n");
    for (size_t s = 0; s < COUNT; s++) {
        double fig[2];
        for (int dep = 0; dep < 2; dep++) {
            qsort(t[s][dep], PASSES, sizeof t[s][dep][0], cmp_u64);
            fig[dep] = (double)t[s][dep][PASSES / 20] / ARRAYS;
        }
        printf("%s\t%.2f\t%.2f\n", subjects[s].name, fig[1], fig[0]);
    }
    return 0;
}
