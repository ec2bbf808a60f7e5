/* The machine's single-precision FMA peak, GFLOP/s, on 1 and on N threads (default 2): each
 * thread runs 12 independent chains of fused multiply-adds on the widest vectors the compiler
 * targets with -march=native (AVX-512: 16 floats), enough chains to cover the FMA latency on
 * every x86 core of the last decade; the best of 5 rounds. Used by `just bench` to state the
 * matrix products' achieved rate against the machine's limit.
 *
 *   cc -O2 -march=native -pthread scripts/fma_peak.c -o fma_peak && ./fma_peak [threads]
 */
#include <immintrin.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define FMA _mm512_fmadd_ps
#define ADD _mm512_add_ps
#define SUM _mm512_reduce_add_ps
#elif defined(__FMA__)
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define FMA _mm256_fmadd_ps
#define ADD _mm256_add_ps
static float SUM(__m256 v) {
    float x[8];
    _mm256_storeu_ps(x, v);
    return x[0] + x[1] + x[2] + x[3] + x[4] + x[5] + x[6] + x[7];
}
#else
#error "needs FMA (x86-64 with AVX2/FMA or AVX-512)"
#endif

#define CHAINS 12
static const long ITERS = 200000000L / CHAINS;

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static void *run(void *out) {
    /* Twelve named accumulators, so that they live in registers. */
    vec c0 = SET1(1.000f), c1 = SET1(1.001f), c2 = SET1(1.002f), c3 = SET1(1.003f);
    vec c4 = SET1(1.004f), c5 = SET1(1.005f), c6 = SET1(1.006f), c7 = SET1(1.007f);
    vec c8 = SET1(1.008f), c9 = SET1(1.009f), c10 = SET1(1.010f), c11 = SET1(1.011f);
    const vec a = SET1(0.999999f), b = SET1(1e-7f);
    for (long i = 0; i < ITERS; i++) {
        c0 = FMA(c0, a, b); c1 = FMA(c1, a, b); c2 = FMA(c2, a, b); c3 = FMA(c3, a, b);
        c4 = FMA(c4, a, b); c5 = FMA(c5, a, b); c6 = FMA(c6, a, b); c7 = FMA(c7, a, b);
        c8 = FMA(c8, a, b); c9 = FMA(c9, a, b); c10 = FMA(c10, a, b); c11 = FMA(c11, a, b);
    }
    vec s = ADD(ADD(ADD(c0, c1), ADD(c2, c3)), ADD(ADD(c4, c5), ADD(c6, c7)));
    s = ADD(s, ADD(ADD(c8, c9), ADD(c10, c11)));
    *(float *)out = SUM(s);
    return NULL;
}

static double rate(int threads) {
    pthread_t t[64];
    float sink[64];
    double best = 0;
    for (int round = 0; round < 5; round++) {
        double start = now();
        for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, run, &sink[i]);
        for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
        double flops = 2.0 * LANES * CHAINS * (double)ITERS * threads;
        double r = flops / (now() - start) / 1e9;
        if (r > best) best = r;
        if (sink[0] == 12345.0f) puts(""); /* keep the chains alive */
    }
    return best;
}

int main(int argc, char **argv) {
    int threads = argc > 1 ? atoi(argv[1]) : 2;
    if (threads < 1 || threads > 64) {
        fprintf(stderr, "threads: expected 1 to 64\n");
        return 2;
    }
    printf("fma_peak vector_floats=%d one_thread_gflops=%.1f threads=%d gflops=%.1f\n", LANES,
           rate(1), threads, rate(threads));
    return 0;
}
