/* measure: STREAM triad bandwidth, peak f32 FMA and bf16 dot-product throughput (see kernels.h).
 * The benchmark compares kernel speed against these ceilings. */
#include "backend/cpu/kernels.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(__aarch64__) && defined(__ARM_NEON)
#include <arm_neon.h>
#endif

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void run(tp_pool *pool, tp_fn fn, void *arg) {
    if (pool) tp_run(pool, fn, arg);
    else fn(arg, 0, 1);
}

typedef struct {
    float *a, *b, *c;
    size_t n;
    int init;
} triad_task;

static void triad_run(void *arg, int ith, int nth) {
    triad_task *t = arg;
    /* slices of whole 64-byte lines */
    size_t lines = t->n / 16;
    size_t i0 = lines * (size_t)ith / (size_t)nth * 16, i1 = lines * (size_t)(ith + 1) / (size_t)nth * 16;
    if (ith == nth - 1) i1 = t->n;
    if (t->init) { /* first touch by the thread that will use the pages */
        for (size_t i = i0; i < i1; i++) {
            t->a[i] = 0.0f;
            t->b[i] = 1.0f;
            t->c[i] = 2.0f;
        }
        return;
    }
#if defined(__x86_64__)
    if (cpu_have_avx2()) {
        cpu_avx2_triad(t->a + i0, t->b + i0, t->c + i0, 3.0f, i1 - i0);
        return;
    }
#endif
    float *a = t->a;
    const float *b = t->b, *c = t->c;
    for (size_t i = i0; i < i1; i++) a[i] = b[i] + 3.0f * c[i];
}

double cpu_measure_triad_gbs(tp_pool *pool, size_t bytes_per_array, int reps) {
    size_t n = bytes_per_array / sizeof(float) / 16 * 16;
    if (n == 0) return 0.0;
    size_t bytes = n * sizeof(float);
    triad_task t = {aligned_alloc(64, bytes), aligned_alloc(64, bytes), aligned_alloc(64, bytes), n, 1};
    double best = 0.0;
    if (t.a && t.b && t.c) {
        run(pool, triad_run, &t);
        t.init = 0;
        run(pool, triad_run, &t); /* warm-up */
        for (int r = 0; r < (reps > 0 ? reps : 1); r++) {
            double t0 = now_s();
            run(pool, triad_run, &t);
            double dt = now_s() - t0;
            if (dt > 0 && (best == 0.0 || dt < best)) best = dt;
        }
    }
    free(t.a);
    free(t.b);
    free(t.c);
    return best > 0 ? 3.0 * (double)bytes / best / 1e9 : 0.0;
}

typedef struct {
    long iters;
    int bf16;      /* 0: the f32 FMA loop; 1: the bf16 dot-product loop (where the CPU has one) */
    double flops;  /* per iteration of the loop that ran (thread 0's) */
    float sink[256];
} peak_task;

static float fma_loop_portable(long iters, int *lanes) {
#if defined(__aarch64__) && defined(__ARM_NEON)
    float32x4_t acc[12], m = vdupq_n_f32(0.999999f), a = vdupq_n_f32(1e-7f);
    for (int j = 0; j < 12; j++) acc[j] = vdupq_n_f32((float)j);
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++) acc[j] = vfmaq_f32(a, acc[j], m);
    float32x4_t s = acc[0];
    for (int j = 1; j < 12; j++) s = vaddq_f32(s, acc[j]);
    *lanes = 4;
    return vaddvq_f32(s);
#else
    float acc[12];
    for (int j = 0; j < 12; j++) acc[j] = (float)j;
    for (long i = 0; i < iters; i++)
        for (int j = 0; j < 12; j++) acc[j] = acc[j] * 0.999999f + 1e-7f;
    float s = 0;
    for (int j = 0; j < 12; j++) s += acc[j];
    *lanes = 1;
    return s;
#endif
}

int cpu_have_bf16_dot(void) {
#if defined(__x86_64__)
    return cpu_have_avx512bf16();
#elif defined(__aarch64__) && defined(__ARM_NEON)
    return cpu_have_neon_bf16();
#else
    return 0;
#endif
}

static void peak_run(void *arg, int ith, int nth) {
    peak_task *t = arg;
    (void)nth;
    double flops = 0;
    float r = 0;
    if (t->bf16) {
#if defined(__x86_64__)
        if (cpu_have_amx()) { /* the prefill GEMM's own instruction where it runs: TDPBF16PS */
            r = cpu_amx_dot_loop(t->iters);
            flops = 4.0 * 16 * 16 * 32 * 2; /* 4 tiles x 16 x 16 outputs x 32 products x 2 flops */
        } else {
            r = cpu_avx512bf16_dot_loop(t->iters);
            flops = 12.0 * 16 * 2 * 2; /* 12 chains x 16 lanes x 2 products x 2 flops */
        }
#elif defined(__aarch64__) && defined(__ARM_NEON)
        r = cpu_neon_bfmmla_loop(t->iters);
        flops = 12.0 * 16 * 2; /* 12 chains x 16 multiply-adds (2x4 by 4x2) x 2 flops */
#endif
    } else {
        int lanes = 8;
#if defined(__x86_64__)
        if (cpu_have_avx2()) r = cpu_avx2_fma_loop(t->iters);
        else r = fma_loop_portable(t->iters, &lanes);
#else
        r = fma_loop_portable(t->iters, &lanes);
#endif
        flops = 12.0 * lanes * 2.0;
    }
    t->sink[ith % 256] = r;
    if (ith == 0) t->flops = flops;
}

static double measure_peak(tp_pool *pool, int bf16) {
    peak_task t;
    memset(&t, 0, sizeof t);
    t.bf16 = bf16;
    int nth = pool ? tp_nthreads(pool) : 1;
    t.iters = 1000;
    run(pool, peak_run, &t);
    /* grow until one run takes >= 20 ms, then keep the best of 10 */
    double dt = 0;
    for (;;) {
        double t0 = now_s();
        run(pool, peak_run, &t);
        dt = now_s() - t0;
        if (dt >= 0.02 || t.iters > (1L << 40)) break;
        t.iters *= dt > 0.002 ? (long)(0.025 / dt) + 1 : 10;
    }
    for (int r = 0; r < 10; r++) {
        double t0 = now_s();
        run(pool, peak_run, &t);
        double d = now_s() - t0;
        if (d < dt) dt = d;
    }
    return (double)nth * (double)t.iters * t.flops / dt / 1e9;
}

double cpu_measure_peak_gflops(tp_pool *pool) { return measure_peak(pool, 0); }

double cpu_measure_peak_bf16_gflops(tp_pool *pool) { return cpu_have_bf16_dot() ? measure_peak(pool, 1) : 0.0; }
