/* test_backend_moe_route: the device-routing ops of be_backend (issue 12), moe_topk and moe_matmul_ids, on
 * every backend this build can open, against double-precision references computed here (the method of
 * test_backend_moe.c).
 *
 * moe_topk: both routing flavours (softmax then top k, with and without renormalisation; gpt-oss's top k of
 * the logits then their softmax), k = 1..8 and k = E, E up to 128 (and 1024, the limit), logits with many
 * ties (the lower index must come first, as the host path), the shared-expert gate column, and columns past
 * k left alone without it. The CPU must match be_moe_route_row (the host path's code) bit for bit.
 * moe_matmul_ids: one or two weight sets sharing x (gate and up), f32/f16/bf16/MXFP4 experts stacked in
 * one buffer (the fused layout, gpt-oss, packed copies) or each in its own buffer (per-expert tensors),
 * x shared by a token's pairs or one row per pair, bias rows by id, experts shared by several tokens (each expert read once for all its pairs), and an
 * id of -1, whose output row must stay untouched (NaN poison). Backends: "cpu" (then its portable C
 * kernels forced) and "gpu" when it opens (VLLMC_TEST_GPU=1: a GPU that cannot be opened is a failure). */
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

static const char *g_name;
static uint64_t rng = 0x51ed270b2a9f3c1dull;

static uint64_t next(void) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return rng;
}
static double urand(void) { return (double)(next() >> 11) * (1.0 / 9007199254740992.0); }
static float frand(void) { return (float)(urand() * 2.0 - 1.0); }
static int irand(int n) { return (int)(urand() * n); }

/* --- moe_topk --- */

/* The reference in double: experts (ties to the lower index) and weights. */
static void ref_route(const float *l, int E, int k, int flags, int *sel, double *w) {
    double p[BE_MOE_MAX_EXPERTS];
    char taken[BE_MOE_MAX_EXPERTS] = {0};
    double mx = l[0], sum = 0;
    for (int e = 0; e < E; e++) mx = l[e] > mx ? l[e] : mx;
    for (int e = 0; e < E; e++) p[e] = flags & BE_MOE_TOPK_FIRST ? l[e] : exp((double)l[e] - mx);
    for (int e = 0; e < E; e++) sum += p[e];
    for (int e = 0; e < E && !(flags & BE_MOE_TOPK_FIRST); e++) p[e] /= sum;
    for (int j = 0; j < k; j++) {
        int b = -1;
        for (int e = 0; e < E; e++)
            if (!taken[e] && (b < 0 || p[e] > p[b])) b = e;
        taken[b] = 1, sel[j] = b;
    }
    double tot = 0;
    for (int j = 0; j < k; j++) tot += (w[j] = flags & BE_MOE_TOPK_FIRST ? exp(p[sel[j]] - p[sel[0]]) : p[sel[j]]);
    for (int j = 0; j < k; j++)
        if (flags & (BE_MOE_TOPK_FIRST | BE_MOE_NORM)) w[j] /= tot;
}

static void t_topk(int n, int E, int k, int flags, int gate, int ties) {
    float *lg = malloc(sizeof(float) * (size_t)n * (size_t)E), *gv = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n * E; i++) lg[i] = ties ? (float)(irand(5) - 2) * 0.75f : 4.0f * frand();
    for (int t = 0; t < n; t++) gv[t] = 3.0f * frand();
    int kk = k + 2; /* two columns past k: the gate's, then one that must stay NaN */
    be_tensor lt = put(BE_F32, lg, n, E, E + 3, 1), gt = put(BE_F32, gv, n, 1, 2, 3);
    be_tensor it = put(BE_I32, NULL, n, k, k, 0), wt = put(BE_F32, NULL, n, kk, kk + 1, 2);
    g_be->moe_topk(g_be->ctx, &lt, k, flags, gate ? &gt : NULL, &it, &wt);
    CHECK_MSG(g_be->sync(g_be->ctx) == 0, "sync: %s", vc_errmsg());
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n * (size_t)k);
    float *w = malloc(sizeof(float) * (size_t)n * (size_t)kk);
    get_raw(&it, ids), get_raw(&wt, w);
    int bad_ids = 0, bad_bits = 0, bad_rest = 0;
    double worst = 0;
    for (int t = 0; t < n; t++) {
        int sel[BE_MOE_MAX_K];
        double rw[BE_MOE_MAX_K];
        ref_route(lg + (size_t)t * E, E, k, flags, sel, rw);
        int32_t hs[BE_MOE_MAX_K];
        float hw[BE_MOE_MAX_K];
        be_moe_route_row(lg + (size_t)t * E, E, k, flags, hs, hw);
        for (int j = 0; j < k; j++) {
            bad_ids += ids[t * k + j] != sel[j] || hs[j] != sel[j];
            double e = fabs(w[t * kk + j] - rw[j]) / (fabs(rw[j]) + 1e-30);
            worst = !(e <= worst) ? e : worst;
            bad_bits += !strcmp(g_name, "cpu") && memcmp(&w[t * kk + j], &hw[j], 4) != 0;
        }
        double sg = 1.0 / (1.0 + exp(-(double)gv[t]));
        if (gate) {
            double e = fabs(w[t * kk + k] - sg) / sg;
            worst = !(e <= worst) ? e : worst;
        } else bad_rest += !isnan(w[t * kk + k]);
        bad_rest += !isnan(w[t * kk + k + 1]);
    }
    CHECK_MSG(!bad_ids && !bad_rest && !bad_bits && worst < 2e-6,
              "%s: moe_topk n=%d E=%d k=%d flags=%d gate=%d ties=%d: %d wrong ids, %d columns past k written, %d "
              "weights not be_moe_route_row's bits, weight error %.3g",
              g_name, n, E, k, flags, gate, ties, bad_ids, bad_rest, bad_bits, worst);
    free(lg), free(gv), free(ids), free(w);
    case_end();
}

/* --- moe_matmul_ids --- */

/* e2m1: sign, 2 exponent bits (bias 1), 1 mantissa bit; exponent 0 is subnormal (m * 0.5). */
static double e2m1(int c) {
    int e = (c >> 1) & 3, m = c & 1;
    double v = e == 0 ? 0.5 * m : (1.0 + 0.5 * m) * ldexp(1.0, e - 1);
    return c & 8 ? -v : v;
}

typedef struct {
    be_dtype dt;
    int E, n, k, K, M;
    int x_per_pair; /* x has n * k rows (down) rather than n (gate/up) */
    int bias, stacked, shared; /* shared: tokens pick overlapping experts */
    int nw;         /* weight sets sharing x (gate and up): the second has M + 5 rows */
} ids_case;

/* The E experts of one weight set ([M, K] each) as views, and their values in double. */
static void make_experts(const ids_case *c, int M, be_tensor *w, double *wd) {
    int E = c->E, K = c->K;
    if (c->dt == BE_MXFP4) { /* one stacked buffer of 17-byte blocks at an odd byte offset */
        size_t row = be_dtype_bytes(BE_MXFP4, K), bytes = 5 + (size_t)E * M * row;
        uint8_t *img = malloc(bytes);
        for (size_t i = 0; i < bytes; i++) img[i] = (uint8_t)next();
        for (int64_t r = 0; r < (int64_t)E * M; r++)
            for (int bl = 0; bl < K / 32; bl++) {
                uint8_t *blk = img + 5 + (size_t)r * row + (size_t)bl * 17;
                blk[0] = (uint8_t)(122 + next() % 8);
                for (int q = 0; q < 32; q++) {
                    int byte = blk[1 + q / 2], cd = q % 2 ? byte >> 4 : byte & 15;
                    wd[(size_t)r * K + (size_t)bl * 32 + q] = e2m1(cd) * ldexp(1.0, blk[0] - 127);
                }
            }
        be_tensor all = {buf_of(bytes, img), 5, BE_MXFP4, (int64_t)E * M, K, K};
        for (int e = 0; e < E; e++) w[e] = be_rows(&all, (int64_t)e * M, M);
        free(img);
        return;
    }
    float *wv = malloc(sizeof(float) * (size_t)E * (size_t)M * (size_t)K);
    for (int i = 0; i < E * M * K; i++) wv[i] = frand();
    if (c->stacked) {
        be_tensor all = put(c->dt, wv, (int64_t)E * M, K, K, 8);
        for (int e = 0; e < E; e++) w[e] = be_rows(&all, (int64_t)e * M, M);
    } else {
        for (int e = 0; e < E; e++) w[e] = put(c->dt, wv + (size_t)e * M * K, M, K, K, e % 3);
    }
    for (int i = 0; i < E * M * K; i++) wd[i] = wv[i];
    free(wv);
}

static void t_ids(const ids_case *c) {
    int E = c->E, n = c->n, k = c->k, K = c->K, A = n * k, xr = c->x_per_pair ? A : n, nw = c->nw;
    float *x = malloc(sizeof(float) * (size_t)xr * (size_t)K), *b[2];
    double *wd[2];
    be_tensor w[2][128], bt[2], ot[2];
    /* On the CPU x is representable in the weights' dtype: its kernels that round the activations to it
     * (AVX-512 BF16 / BFMMLA / FMLAL from 8-16 tokens per expert, as a bf16 model computes) then match the
     * f32 reference, as in test_backend_ops (MXFP4 experts keep f32 activations) */
    int round_x = !strcmp(g_name, "cpu") && c->dt != BE_MXFP4;
    for (int i = 0; i < xr * K; i++) x[i] = round_x ? rnd_dt(c->dt, frand()) : frand();
    for (int i = 0; i < nw; i++) {
        int M = c->M + 5 * i;
        b[i] = malloc(sizeof(float) * (size_t)E * (size_t)M);
        for (int q = 0; q < E * M; q++) b[i][q] = frand();
        wd[i] = malloc(sizeof(double) * (size_t)E * (size_t)M * (size_t)K);
        make_experts(c, M, w[i], wd[i]);
        bt[i] = put(BE_F32, b[i], E, M, M + 1, 3);
        ot[i] = put(BE_F32, NULL, A, M, M + 2, 6);
    }
    /* each token's k distinct experts (from a small pool when shared), and one -1 */
    float *iv = malloc(sizeof(float) * (size_t)A);
    int pool = c->shared ? (k + 2 < E ? k + 2 : E) : E;
    for (int t = 0; t < n; t++)
        for (int j = 0; j < k; j++) {
            int e, dup;
            do {
                e = irand(pool);
                dup = 0;
                for (int q = 0; q < j; q++) dup |= (int)iv[t * k + q] == e;
            } while (dup);
            iv[t * k + j] = (float)e;
        }
    int hole = A > 2 ? irand(A) : -1;
    if (hole >= 0) iv[hole] = -1;
    be_tensor xt = put(BE_F32, x, xr, K, K + 4, 4), it = put(BE_I32, iv, n, k, k, 1);
    const be_tensor *wp[2] = {w[0], w[1]}, *bp[2] = {&bt[0], &bt[1]}, *op[2] = {&ot[0], &ot[1]};
    g_be->moe_matmul_ids(g_be->ctx, &xt, E, nw, wp, c->bias ? bp : NULL, &it, op);
    CHECK_MSG(g_be->sync(g_be->ctx) == 0, "sync: %s", vc_errmsg());
    double worst = 0;
    int untouched_bad = 0;
    for (int i = 0; i < nw; i++) {
        int M = c->M + 5 * i;
        float *got = malloc(sizeof(float) * (size_t)A * (size_t)M);
        get_raw(&ot[i], got);
        for (int p = 0; p < A; p++) {
            int e = (int)iv[p];
            if (e < 0) {
                for (int m = 0; m < M; m++) untouched_bad += !isnan(got[p * M + m]);
                continue;
            }
            const float *xrow = x + (size_t)(c->x_per_pair ? p : p / k) * K;
            double mx = 1e-6, err = 0;
            for (int m = 0; m < M; m++) {
                double s = c->bias ? b[i][e * M + m] : 0;
                for (int q = 0; q < K; q++) s += (double)xrow[q] * wd[i][((size_t)e * M + m) * K + q];
                mx = fabs(s) > mx ? fabs(s) : mx;
                double d = fabs(got[p * M + m] - s);
                err = !(d <= err) ? d : err;
            }
            if (!(err / mx <= worst)) worst = err / mx;
        }
        free(got), free(b[i]), free(wd[i]);
    }
    CHECK_MSG(worst <= 1e-5 && !untouched_bad,
              "%s: moe_matmul_ids %s E=%d n=%d k=%d K=%d M=%d nw=%d x_per_pair=%d bias=%d stacked=%d shared=%d: "
              "error %.3g, %d elements of the id -1 row written",
              g_name, be_dtype_name(c->dt), E, n, k, K, c->M, nw, c->x_per_pair, c->bias, c->stacked, c->shared,
              worst, untouched_bad);
    free(x), free(iv);
    case_end();
}

static void run_all(void) {
    static const int flags[3] = {0, BE_MOE_NORM, BE_MOE_TOPK_FIRST};
    for (int f = 0; f < 3; f++)
        for (int k = 1; k <= 8; k++) {
            t_topk(3, 8 + 7 * k, k, flags[f], k % 2, 0);
            t_topk(16, 128, k, flags[f], k % 2 == 0, k % 3 == 0);
            t_topk(1, 60, k, flags[f], 1, 1);
        }
    t_topk(2, 8, 8, 0, 0, 1);                  /* k = E */
    t_topk(2, 8, 8, BE_MOE_TOPK_FIRST, 1, 1);
    t_topk(4, BE_MOE_MAX_EXPERTS, 8, BE_MOE_NORM, 1, 0);
    t_topk(5, 300, 4, 0, 0, 1);
    static const be_dtype dts[4] = {BE_F32, BE_F16, BE_BF16, BE_MXFP4};
    for (int d = 0; d < 4; d++) {
        be_dtype dt = dts[d];
        int mx = dt == BE_MXFP4;
        ids_case cs[] = {
            {dt, 8, 1, 2, 64, 24, 0, 0, 1, 0, 2},        /* decode, gate and up: x shared by the pairs */
            {dt, 8, 1, 2, 96, 40, 1, mx, 1, 0, 1},       /* decode, down: a row per pair */
            {dt, 32, 16, 4, 128, 48, 0, 1, !mx, 1, 2},   /* 16 tokens over 6 experts: grouped pairs */
            {dt, 128, 16, 8, 64, 20, 1, 0, 1, 0, 1},     /* Qwen3-MoE's E and k */
            {dt, 6, 5, 6, 32, 33, 0, 1, 1, 1, 2},        /* k = E, odd M */
            {dt, 4, 3, 1, 32, 7, 1, mx, !mx, 0, 1},      /* k = 1 */
        };
        for (size_t i = 0; i < sizeof cs / sizeof cs[0]; i++) t_ids(&cs[i]);
        if (!mx) { /* unaligned K: the element-wise path */
            ids_case odd = {dt, 5, 2, 2, 37, 11, 0, 1, 1, 1, 2};
            t_ids(&odd);
        }
    }
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
        g_be = be, g_name = names[i];
        int before = test_failures;
        CHECK_MSG(be->moe_topk && be->moe_matmul_ids, "%s: no device-routing ops", names[i]);
        if (be->moe_topk && be->moe_matmul_ids) {
            run_all();
            if (i == 0) {
                cpu_kernels_force_scalar(1); /* the portable C kernels */
                run_all();
                cpu_kernels_force_scalar(0);
            }
        }
        printf("%s: %d failed checks\n", names[i], test_failures - before);
        be_free(be);
        g_be = NULL;
    }
    TEST_END();
}
