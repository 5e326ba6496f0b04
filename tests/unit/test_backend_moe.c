/* test_backend_moe: the mixture-of-experts ops of be_backend (matmul_grouped through be_matmul_grouped,
 * and moe_combine) on every backend this build can open, against double-precision references computed
 * here (the method of test_backend_ops.c, in a file of its own).
 *
 * Backends: "cpu" (its AVX2/NEON kernels, then the portable C ones forced, then the be_matmul_grouped
 * fallback with the entry removed, which is what a backend without the op runs) and "gpu" when it opens
 * (VLLMC_TEST_GPU=1: a GPU that cannot be opened is a failure). Inputs are random, never near 0;
 * weights are rounded to their dtype before the reference; each expert's weight lies in its own buffer
 * or as a row range of one shared buffer (transformers 5's fused layout) at an offset; outputs have a
 * row stride above their width and are poisoned with NaN first, so rows outside every group must come
 * back untouched and every row of a group must be written. Groups cover token counts of 1 (decode), a
 * few, and >= 64 (the CPU's GEMM path), empty experts, and more groups than one CPU task takes. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/half.h"
#include "test.h"
#include "test_backend_util.h"

#define TOL_F32 1e-4
#define TOL_F16 2e-3
#define TOL_BF16 1e-2

static uint64_t rng = 0x2545f4914f6cdd1dull;

static double urand(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (double)(rng >> 11) * (1.0 / 9007199254740992.0);
}
static float frand(void) {
    for (;;) {
        float v = (float)(urand() * 2.0 - 1.0);
        if (fabsf(v) >= 1e-3f) return v;
    }
}
static int irand(int n) { return (int)(urand() * n); }

enum { MAXE = 80, MAXN = 300 };

typedef struct {
    int E, n, K, M[2], nw, fused;
    be_dtype dt;
} gm_case;

static float *rand_vals(int64_t n) {
    float *v = malloc(sizeof(float) * (size_t)n);
    for (int64_t i = 0; i < n; i++) v[i] = frand();
    return v;
}

/* Random groups over n rows: experts in random order, some empty, sizes from `sizes`. */
static int make_groups(const gm_case *g, be_moe_group *grp) {
    int ng = 0, row = 0;
    while (row < g->n) {
        int e = irand(g->E), sz = 1 + irand(g->n - row < 80 ? g->n - row : 80);
        if (irand(4) == 0) row += 1; /* a row outside every group: must stay untouched */
        if (row + sz > g->n) sz = g->n - row;
        if (sz <= 0) break;
        int used = 0;
        for (int i = 0; i < ng; i++) used |= grp[i].expert == e;
        if (used) continue;
        grp[ng++] = (be_moe_group){e, row, sz};
        row += sz;
    }
    return ng;
}

static void t_grouped(const gm_case *g) {
    int K = g->K, n = g->n;
    float *x = rand_vals((int64_t)n * K), *w[2][MAXE] = {{0}};
    be_tensor wt[2][MAXE], out[2];
    be_moe_group grp[MAXE];
    int ng = make_groups(g, grp);
    be_tensor xt = put(BE_F32, x, n, K, K + 3, 5);
    for (int i = 0; i < g->nw; i++) {
        int M = g->M[i];
        if (g->fused) { /* one buffer, each expert a row range of it */
            float *all = rand_vals((int64_t)g->E * M * K);
            be_tensor big = put(g->dt, all, (int64_t)g->E * M, K, K, 7);
            for (int e = 0; e < g->E; e++) {
                wt[i][e] = be_rows(&big, (int64_t)e * M, M);
                w[i][e] = malloc(sizeof(float) * (size_t)M * (size_t)K);
                memcpy(w[i][e], all + (size_t)e * M * K, sizeof(float) * (size_t)M * (size_t)K);
            }
            free(all);
        } else {
            for (int e = 0; e < g->E; e++) {
                w[i][e] = rand_vals((int64_t)M * K);
                wt[i][e] = put(g->dt, w[i][e], M, K, K, e % 3);
            }
        }
        out[i] = put(BE_F32, NULL, n, M, M + 2, 3);
    }
    const be_tensor *wp[2] = {wt[0], wt[1]}, *op[2] = {&out[0], &out[1]};
    be_matmul_grouped(g_be, &xt, ng, grp, g->nw, wp, op);
    CHECK_MSG(g_be->sync(g_be->ctx) == 0, "sync: %s", vc_errmsg());
    double tol = g->dt == BE_F16 ? TOL_F16 : g->dt == BE_BF16 ? TOL_BF16 : TOL_F32, worst = 0;
    int in_group[MAXN] = {0}, ge[MAXN];
    for (int i = 0; i < ng; i++)
        for (int64_t r = grp[i].row0; r < grp[i].row0 + grp[i].n; r++) in_group[r] = 1, ge[r] = grp[i].expert;
    for (int i = 0; i < g->nw; i++) {
        int M = g->M[i];
        float *got = malloc(sizeof(float) * (size_t)n * (size_t)M);
        get_raw(&out[i], got);
        for (int r = 0; r < n; r++) {
            double mx = 1e-6, err = 0;
            for (int m = 0; m < M && in_group[r]; m++) {
                double s = 0;
                for (int k = 0; k < K; k++) s += (double)x[r * K + k] * w[i][ge[r]][m * K + k];
                mx = fabs(s) > mx ? fabs(s) : mx;
                double d = fabs(got[r * M + m] - s);
                err = !(d <= err) ? d : err; /* NaN stays */
            }
            for (int m = 0; m < M && !in_group[r]; m++) err = isnan(got[r * M + m]) ? err : INFINITY;
            err /= mx;
            if (!(err <= worst)) worst = err;
        }
        free(got);
        for (int e = 0; e < g->E; e++) free(w[i][e]);
    }
    CHECK_MSG(worst <= tol, "matmul_grouped %s E=%d n=%d K=%d M=%d,%d nw=%d fused=%d: error %.3g (tol %.3g)",
              be_dtype_name(g->dt), g->E, n, K, g->M[0], g->M[1], g->nw, g->fused, worst, tol);
    free(x);
    case_end();
}

static void t_combine(int A, int n, int k, int D) {
    float *y = rand_vals((int64_t)A * D), *wv = rand_vals((int64_t)n * k), *iv = malloc(sizeof(float) * (size_t)(n * k));
    for (int i = 0; i < n * k; i++) iv[i] = (float)irand(A);
    be_tensor yt = put(BE_F32, y, A, D, D + 1, 2), it = put(BE_I32, iv, n, k, k, 1);
    be_tensor wt = put(BE_F32, wv, n, k, k + 1, 0), ot = put(BE_F32, NULL, n, D, D + 4, 6);
    g_be->moe_combine(g_be->ctx, &yt, &it, &wt, &ot);
    CHECK_MSG(g_be->sync(g_be->ctx) == 0, "sync: %s", vc_errmsg());
    float *got = malloc(sizeof(float) * (size_t)n * (size_t)D);
    get_raw(&ot, got);
    double worst = 0;
    for (int t = 0; t < n; t++) {
        double mx = 1e-6, err = 0;
        for (int d = 0; d < D; d++) {
            double s = 0;
            for (int j = 0; j < k; j++) s += (double)wv[t * k + j] * y[(int)iv[t * k + j] * D + d];
            mx = fabs(s) > mx ? fabs(s) : mx;
            double e = fabs(got[t * D + d] - s);
            err = !(e <= err) ? e : err;
        }
        if (!(err / mx <= worst)) worst = err / mx;
    }
    CHECK_MSG(worst <= TOL_F32, "moe_combine A=%d n=%d k=%d D=%d: error %.3g", A, n, k, D, worst);
    free(y), free(wv), free(iv), free(got);
    case_end();
}

static void run_all(void) {
    static const be_dtype dts[3] = {BE_F32, BE_F16, BE_BF16};
    for (int d = 0; d < 3; d++) {
        gm_case c1 = {8, 3, 64, {24, 24}, 2, 0, dts[d]};     /* decode: a few rows, gate and up */
        gm_case c2 = {6, 200, 96, {40, 0}, 1, 1, dts[d]};    /* prefill: groups up to 80 rows (GEMM), fused */
        gm_case c3 = {70, 140, 33, {13, 7}, 2, 0, dts[d]};   /* many small groups, odd shapes */
        gm_case c4 = {4, 1, 128, {64, 64}, 2, 1, dts[d]};    /* one token */
        t_grouped(&c1), t_grouped(&c2), t_grouped(&c3), t_grouped(&c4);
    }
    t_combine(16, 8, 2, 64);
    t_combine(40, 13, 3, 70);
    t_combine(1, 1, 1, 5);
}

int main(void) {
    static const char *names[] = {"cpu", "gpu"};
    const char *want_gpu = getenv("VLLMC_TEST_GPU");
    for (int i = 0; i < 2; i++) {
        be_backend *be = NULL;
        if (be_open(names[i], &be) != 0 || !be) {
            if (i == 0 || (want_gpu && !strcmp(want_gpu, "1"))) CHECK_MSG(0, "%s: be_open failed: %s", names[i], vc_errmsg());
            else printf("%s: skipped (%s)\n", names[i], vc_errmsg());
            continue;
        }
        g_be = be;
        int before = test_failures;
        run_all();
        if (i == 0) {
            cpu_kernels_force_scalar(1); /* the portable C kernels */
            run_all();
            cpu_kernels_force_scalar(0);
            void (*op)(void *, const be_tensor *, int, const be_moe_group *, int, const be_tensor *const *,
                       const be_tensor *const *) = be->matmul_grouped;
            be->matmul_grouped = NULL; /* the wrapper's fallback: matmul_multi per group */
            run_all();
            be->matmul_grouped = op;
        }
        printf("%s: %d failed checks\n", names[i], test_failures - before);
        be_free(be);
        g_be = NULL;
    }
    TEST_END();
}
