/* test_backend_ops: every op of be_backend (backend/backend.h) on every backend
 * this build can open, against plain double-precision references computed
 * here, in the style of ggml's test-backend-ops.
 *
 * Backends: "cpu" always; "gpu" when be_open("gpu") succeeds. With
 * VLLMC_TEST_GPU=1 a GPU that cannot be opened is a failure, else it is
 * skipped with the reason. Only backend.h is used (plus base/half.h for the
 * reference rounding and base/err.h for messages), so a new backend is tested
 * by this file as it is.
 *
 * Every case:
 *  - draws fresh random inputs (uniform in [-1, 1], never |v| < 1e-3); weights
 *    and caches are rounded to their dtype before the reference is computed;
 *  - puts each tensor in a buffer of its own, mostly at a non-zero (and not
 *    16-byte aligned) element offset and, where the op allows it, with a row
 *    stride > cols; everything in the buffer outside the view is poisoned with
 *    NaN, so a kernel that reads outside its view produces NaN, and one that
 *    writes outside its view is caught because those bytes must come back
 *    unchanged;
 *  - poisons outputs with NaN (buffer_write before the op is recorded), so a
 *    row an op does not write fails; KV caches too, so attention must not
 *    touch slots it does not attend to (unused block-table entries are -1);
 *  - calls sync() and checks it returns 0 before reading anything back, and
 *    frees its buffers only after that sync (a GPU backend runs at sync());
 *  - compares with a relative error: per output row, max |got - ref| divided by
 *    max(1e-6, max |ref| of that row); NaN or Inf anywhere is an infinite error
 *    (tested with isfinite, and every threshold test is written `err <= tol`,
 *    which is false for NaN).
 * Thresholds are per dtype of the weights / cache (TOL_F32/F16/BF16 below);
 * ops with only f32 tensors use TOL_F32. Where a plausible kernel bug has a
 * closed form (missing bias, GPT-J rope pairing, no causal mask, no sliding
 * window, wrong GQA grouping, missing w_offset, off-by-one row) the test also
 * checks that the backend's result is FAR from that wrong reference, i.e. that
 * the threshold would catch the bug; and one case per backend corrupts its
 * own result (1% change, NaN, Inf, a stray write, swapped rows) and checks that
 * the comparison fails. */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/half.h"
#include "test.h"

/* Relative error thresholds by dtype of the weights / cache. The CPU's errors
 * are ~1e-7 (f32 rounding only: references use the rounded values); a GPU may
 * accumulate in another order or with fp16 arithmetic where the data is fp16. */
#define TOL_F32 1e-4
#define TOL_F16 2e-3
#define TOL_BF16 1e-2

static double dt_tol(be_dtype dt) { return dt == BE_F16 ? TOL_F16 : dt == BE_BF16 ? TOL_BF16 : TOL_F32; }
static const char *dt_str(be_dtype dt) {
    return dt == BE_F32 ? "f32" : dt == BE_F16 ? "f16" : dt == BE_BF16 ? "bf16" : "i32";
}

/* ---------------------------------------------------------------- random */

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t rnd64(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}
static double urand(void) { return (double)(rnd64() >> 11) * (1.0 / 9007199254740992.0); } /* [0, 1) */
/* uniform in [-1, 1], never |v| < 1e-3 */
static float frand(void) {
    for (;;) {
        float v = (float)(urand() * 2.0 - 1.0);
        if (fabsf(v) >= 1e-3f) return v;
    }
}
static int irand(int n) { return (int)(urand() * n); }
static void shuffle(int *a, int n) {
    for (int i = n - 1; i > 0; i--) {
        int j = irand(i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* ---------------------------------------------------------------- dtypes */

static float dt_round(be_dtype dt, float v) {
    if (dt == BE_F16) return vc_f16_to_f32(vc_f32_to_f16(v));
    if (dt == BE_BF16) return vc_bf16_to_f32(vc_f32_to_bf16(v));
    return v;
}

/* element i of a buffer image as f32 */
static float get_elem(be_dtype dt, const unsigned char *p, int64_t i) {
    uint16_t h;
    float f;
    switch (dt) {
    case BE_F16: memcpy(&h, p + 2 * i, 2); return vc_f16_to_f32(h);
    case BE_BF16: memcpy(&h, p + 2 * i, 2); return vc_bf16_to_f32(h);
    default: memcpy(&f, p + 4 * i, 4); return f;
    }
}

/* store v (f32 value, or i32 for BE_I32) at element i */
static void put_elem(be_dtype dt, unsigned char *p, int64_t i, float v, int32_t iv) {
    uint16_t h;
    switch (dt) {
    case BE_F16: h = vc_f32_to_f16(v); memcpy(p + 2 * i, &h, 2); break;
    case BE_BF16: h = vc_f32_to_bf16(v); memcpy(p + 2 * i, &h, 2); break;
    case BE_I32: memcpy(p + 4 * i, &iv, 4); break;
    default: memcpy(p + 4 * i, &v, 4); break;
    }
}

/* The poison: quiet NaNs whose payload names the buffer (tag 0..63), so a NaN
 * read from one buffer's poison and written into another's padding still
 * changes its bytes; for i32 data a huge index. Never the default NaN. */
static void put_poison(be_dtype dt, unsigned char *p, int64_t i, int tag) {
    uint16_t h16 = (uint16_t)(0x7e00 | (0x100 + tag)), hb = (uint16_t)(0x7fc0 | (1 + tag % 63));
    uint32_t u = 0x7fc0de00u + (uint32_t)tag;
    switch (dt) {
    case BE_F16: memcpy(p + 2 * i, &h16, 2); break;
    case BE_BF16: memcpy(p + 2 * i, &hb, 2); break;
    default: memcpy(p + 4 * i, &u, 4); break;
    }
}

/* ---------------------------------------------------------------- buffers */

static be_backend *g_be;
static be_buffer *g_bufs[64];
static unsigned char *g_imgs[64];
static int g_nbufs, g_case_bad;

/* A tensor under test: a view into a buffer of its own, and the host image of
 * that whole buffer as last written (for the untouched-bytes checks). */
typedef struct {
    be_tensor t;
    size_t bytes;
    unsigned char *img;
} dten;

/* Make a [rows, cols] tensor of dtype dt with row stride cols + pad, starting
 * `off` elements into its buffer; the rest of the buffer is poison. vals
 * (rows*cols, row-major; int32_t for BE_I32, float otherwise) fills the view;
 * NULL leaves the view poisoned too (an output). */
static dten mk(be_dtype dt, int64_t rows, int64_t cols, int64_t pad, int64_t off, const void *vals) {
    dten d;
    size_t es = be_dtype_size(dt);
    int64_t stride = cols + pad, elems = off + rows * stride + 2; /* 2 more poison elements at the end */
    d.bytes = (size_t)elems * es;
    d.t = (be_tensor){NULL, (size_t)off * es, dt, rows, cols, stride};
    d.img = malloc(d.bytes);
    CHECK(d.img != NULL);
    for (int64_t i = 0; i < elems; i++) put_poison(dt, d.img, i, g_nbufs);
    if (vals)
        for (int64_t r = 0; r < rows; r++)
            for (int64_t c = 0; c < cols; c++) {
                int64_t i = r * cols + c, at = off + r * stride + c;
                if (dt == BE_I32) put_elem(dt, d.img, at, 0, ((const int32_t *)vals)[i]);
                else put_elem(dt, d.img, at, ((const float *)vals)[i], 0);
            }
    be_buffer *b = NULL;
    if (g_nbufs >= 64 || g_be->buffer_alloc(g_be->ctx, d.bytes, &b) != 0) {
        CHECK_MSG(0, "buffer_alloc of %zu bytes: %s", d.bytes, vc_errmsg());
        g_case_bad = 1;
        free(d.img);
        d.img = NULL;
        return d;
    }
    g_bufs[g_nbufs] = b;
    g_imgs[g_nbufs++] = d.img;
    d.t.buf = b;
    if (g_be->buffer_write(g_be->ctx, b, 0, d.img, d.bytes) != 0) {
        CHECK_MSG(0, "buffer_write: %s", vc_errmsg());
        g_case_bad = 1;
    }
    return d;
}

/* The view's element (r, c) from an image of its whole buffer. */
static float view_at(const be_tensor *v, const unsigned char *whole, int64_t r, int64_t c) {
    return get_elem(v->dtype, whole + v->offset, r * v->stride + c);
}

/* sync, then read the whole buffer of d back (NULL if either failed). Free the result. */
static int g_synced;
static int sync_ok(void) {
    int rc = g_be->sync(g_be->ctx);
    CHECK_MSG(rc == 0, "%s: sync() returned %d: %s", g_be->name, rc, vc_errmsg());
    g_synced = rc == 0;
    return g_synced;
}
static unsigned char *rd(const dten *d) {
    if (!g_synced || !d->t.buf) return NULL;
    unsigned char *p = malloc(d->bytes);
    if (!p) return NULL;
    int rc = g_be->buffer_read(g_be->ctx, d->t.buf, 0, p, d->bytes);
    CHECK_MSG(rc == 0, "%s: buffer_read: %s", g_be->name, vc_errmsg());
    if (rc) {
        free(p);
        return NULL;
    }
    return p;
}

/* Free the case's buffers: only after its sync. */
static void case_end(void) {
    for (int i = 0; i < g_nbufs; i++) {
        g_be->buffer_free(g_be->ctx, g_bufs[i]);
        free(g_imgs[i]);
    }
    g_nbufs = 0;
    g_case_bad = 0;
    g_synced = 0;
}

/* ---------------------------------------------------------------- comparison */

/* Relative error of view v (inside the buffer image `whole`) against ref
 * (v->rows x v->cols doubles, row-major): max over rows of
 * max |got - ref| / max(1e-6, max |ref| of the row). Any non-finite value in
 * the view is an infinite error. NULL whole (nothing was read) is infinite. */
/* VLLMC_TEST_EXPLAIN=1 (debugging a failed case): where a view holds non-finite values, row by row */
static void explain_nonfinite(const be_tensor *v, const unsigned char *whole, int64_t r0, int64_t c0) {
    fprintf(stderr, "  first non-finite at row %lld col %lld of %lld x %lld; non-finite per row:",
            (long long)r0, (long long)c0, (long long)v->rows, (long long)v->cols);
    for (int64_t r = 0; r < v->rows; r++) {
        int bad = 0;
        for (int64_t c = 0; c < v->cols; c++) bad += !isfinite(view_at(v, whole, r, c));
        fprintf(stderr, " %d", bad);
    }
    fprintf(stderr, "\n");
}

static double view_err(const be_tensor *v, const unsigned char *whole, const double *ref) {
    if (!whole) return INFINITY;
    double worst = 0;
    for (int64_t r = 0; r < v->rows; r++) {
        double scale = 1e-6;
        for (int64_t c = 0; c < v->cols; c++) scale = fmax(scale, fabs(ref[r * v->cols + c]));
        for (int64_t c = 0; c < v->cols; c++) {
            float g = view_at(v, whole, r, c);
            if (!isfinite(g)) {
                if (getenv("VLLMC_TEST_EXPLAIN")) explain_nonfinite(v, whole, r, c);
                return INFINITY;
            }
            double e = fabs((double)g - ref[r * v->cols + c]) / scale;
            if (!(e <= worst)) worst = e; /* also takes a NaN e, should a reference ever be one */
        }
    }
    return worst;
}

/* VLLMC_TEST_EXPLAIN=1: the elements outside d's view that changed (expected: the image `want`) */
static void explain_pad(const dten *d, const unsigned char *want, size_t es) {
    size_t n = d->bytes / es, first = n, bad = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(want + i * es, d->img + i * es, es)) bad++, first = first < i ? first : i;
    fprintf(stderr, "  %zu elements outside the view (offset %lld, %lld x %lld, stride %lld) changed; first at %zu\n",
            bad, (long long)d->t.offset, (long long)d->t.rows, (long long)d->t.cols, (long long)d->t.stride, first);
}

/* 1 if every byte of the buffer outside d's view is what was last written. */
static int pad_intact(const dten *d, const unsigned char *whole) {
    if (!whole) return 0;
    unsigned char *tmp = malloc(d->bytes);
    if (!tmp) return 0;
    memcpy(tmp, whole, d->bytes);
    size_t es = be_dtype_size(d->t.dtype);
    for (int64_t r = 0; r < d->t.rows; r++) {
        size_t at = d->t.offset + (size_t)(r * d->t.stride) * es;
        memcpy(tmp + at, d->img + at, (size_t)d->t.cols * es);
    }
    int ok = memcmp(tmp, d->img, d->bytes) == 0;
    if (!ok && getenv("VLLMC_TEST_EXPLAIN")) explain_pad(d, tmp, es);
    free(tmp);
    return ok;
}

/* 1 if every byte of d's buffer outside the views v[0..nv) (inside it) is what was last written. */
static int views_intact(const dten *d, const be_tensor *v, int nv, const unsigned char *whole) {
    if (!whole) return 0;
    unsigned char *tmp = malloc(d->bytes);
    if (!tmp) return 0;
    memcpy(tmp, whole, d->bytes);
    for (int i = 0; i < nv; i++) {
        size_t es = be_dtype_size(v[i].dtype);
        for (int64_t r = 0; r < v[i].rows; r++) {
            size_t at = v[i].offset + (size_t)(r * v[i].stride) * es;
            memcpy(tmp + at, d->img + at, (size_t)v[i].cols * es);
        }
    }
    int ok = memcmp(tmp, d->img, d->bytes) == 0;
    free(tmp);
    return ok;
}

/* view_err of d's own view, infinite if anything outside it changed. */
static double out_err(const dten *d, const unsigned char *whole, const double *ref) {
    if (!pad_intact(d, whole)) return INFINITY;
    return view_err(&d->t, whole, ref);
}

/* ---------------------------------------------------------------- statistics */

typedef struct {
    char key[24];
    double worst, tol, min_wrong;
    int cases;
} stat;
static stat g_stats[64];
static int g_nstats;

static stat *stat_for(const char *op, be_dtype dt) {
    char key[24];
    snprintf(key, sizeof key, "%s %s", op, dt_str(dt));
    for (int i = 0; i < g_nstats; i++)
        if (!strcmp(g_stats[i].key, key)) return &g_stats[i];
    stat *s = &g_stats[g_nstats < 63 ? g_nstats++ : 63];
    memset(s, 0, sizeof *s);
    snprintf(s->key, sizeof s->key, "%s", key);
    s->min_wrong = INFINITY;
    return s;
}

/* The result of one case: err must be <= tol. */
static void record(const char *op, be_dtype dt, double err, double tol, const char *fmt, ...) {
    char what[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    stat *s = stat_for(op, dt);
    s->cases++;
    s->tol = tol;
    if (!(err <= s->worst)) s->worst = err;
    CHECK_MSG(err <= tol, "%s: %s %s (%s): relative error %.3g > %.3g", g_be->name, op, dt_str(dt), what, err, tol);
}

/* A known-wrong reference (what a plausible bug would compute): the backend's
 * result must be far from it, i.e. the threshold would catch that bug. */
static void expect_far(const char *op, be_dtype dt, double err_wrong, double tol, const char *bug) {
    stat *s = stat_for(op, dt);
    if (err_wrong < s->min_wrong) s->min_wrong = err_wrong;
    CHECK_MSG(err_wrong > 4 * tol, "%s: %s %s: a result with '%s' would pass (error %.3g vs threshold %.3g)", g_be->name, op,
              dt_str(dt), bug, err_wrong, tol);
}

static void print_stats(const char *backend) {
    for (int i = 0; i < g_nstats; i++) {
        const stat *s = &g_stats[i];
        printf("%s: %-18s %3d cases  worst %.2e  (tol %.0e", backend, s->key, s->cases, s->worst, s->tol);
        if (isfinite(s->min_wrong)) printf("; nearest wrong kernel %.2e", s->min_wrong);
        printf(")\n");
    }
    g_nstats = 0;
}

/* ---------------------------------------------------------------- self-check */

/* The comparison itself must fail on corrupted results: run on a real result
 * (d, whole) that passed with ref. Needs rows >= 2 and padding in the buffer. */
static void self_check(const dten *d, const unsigned char *whole, const double *ref, double tol) {
    if (!whole) return;
    const be_tensor *v = &d->t;
    unsigned char *bad = malloc(d->bytes);
    if (!bad) return;
    size_t es = be_dtype_size(v->dtype);
    CHECK(v->dtype == BE_F32 && v->rows >= 2 && v->stride > v->cols);
    /* the largest |ref| of row 1 */
    int64_t cmax = 0;
    for (int64_t c = 0; c < v->cols; c++)
        if (fabs(ref[v->cols + c]) > fabs(ref[v->cols + cmax])) cmax = c;
    size_t at = v->offset + (size_t)(v->stride + cmax) * es; /* element (1, cmax) */
    float f;

    memcpy(bad, whole, d->bytes);
    CHECK_MSG(out_err(d, bad, ref) <= tol, "self-check: the unchanged result must pass");

    memcpy(&f, bad + at, 4);
    f *= 1.01f;
    memcpy(bad + at, &f, 4);
    CHECK_MSG(!(out_err(d, bad, ref) <= tol), "self-check: one element off by 1%% must fail");

    memcpy(bad, whole, d->bytes);
    f = NAN;
    memcpy(bad + at, &f, 4);
    CHECK_MSG(!(out_err(d, bad, ref) <= tol), "self-check: a NaN must fail");

    memcpy(bad, whole, d->bytes);
    f = -INFINITY;
    memcpy(bad + at, &f, 4);
    CHECK_MSG(!(out_err(d, bad, ref) <= tol), "self-check: an Inf must fail");

    memcpy(bad, whole, d->bytes); /* a write into the row padding */
    f = 0;
    memcpy(bad + v->offset + (size_t)(v->stride + v->cols) * es, &f, 4);
    CHECK_MSG(!(out_err(d, bad, ref) <= tol), "self-check: a write outside the view must fail");

    memcpy(bad, whole, d->bytes); /* rows 0 and 1 swapped */
    memcpy(bad + v->offset, whole + v->offset + (size_t)v->stride * es, (size_t)v->cols * es);
    memcpy(bad + v->offset + (size_t)v->stride * es, whole + v->offset, (size_t)v->cols * es);
    CHECK_MSG(!(out_err(d, bad, ref) <= tol), "self-check: swapped rows must fail");

    CHECK_MSG(!(out_err(d, NULL, ref) <= tol), "self-check: a failed read must fail");
    free(bad);
}

/* ---------------------------------------------------------------- get_rows */

static void t_get_rows(be_dtype dt, int V, int D, int n, int tpad, int opad) {
    float *tab = malloc(sizeof(float) * (size_t)V * D);
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)n);
    double *ref = malloc(sizeof(double) * (size_t)n * D), *wrong = malloc(sizeof(double) * (size_t)n * D);
    for (int i = 0; i < V * D; i++) tab[i] = dt_round(dt, frand());
    for (int i = 0; i < n; i++) ids[i] = i == 0 ? V - 1 : i == 1 ? 0 : i == 2 ? ids[0] : irand(V); /* last, first, a repeat */
    for (int i = 0; i < n; i++)
        for (int c = 0; c < D; c++) {
            ref[i * D + c] = tab[ids[i] * D + c];
            wrong[i * D + c] = tab[((ids[i] + 1) % V) * D + c];
        }
    dten T = mk(dt, V, D, tpad, 3, tab), I = mk(BE_I32, 1, n, 0, 1, ids), O = mk(BE_F32, n, D, opad, 5, NULL);
    if (!g_case_bad) {
        g_be->get_rows(g_be->ctx, &T.t, &I.t, &O.t);
        if (sync_ok()) {
            unsigned char *w = rd(&O);
            record("get_rows", dt, out_err(&O, w, ref), dt_tol(dt), "V=%d D=%d n=%d", V, D, n);
            expect_far("get_rows", dt, view_err(&O.t, w, wrong), dt_tol(dt), "the next row");
            free(w);
        }
    }
    case_end();
    free(tab), free(ids), free(ref), free(wrong);
}

/* ---------------------------------------------------------------- rmsnorm */

/* rows x D; heads > 1: x is [rows/heads, heads*D] in memory, normed head-wise
 * in place as a [rows, D] view (Qwen3 q_norm). Else x and out are separate
 * strided views (or the same one when inplace). */
static int g_rms_aligned; /* every offset and stride a multiple of 4 floats (the GPU's 16-byte path) */

static void t_rmsnorm(int rows, int D, int heads, float eps, float w_off, int inplace) {
    float *x = malloc(sizeof(float) * (size_t)rows * D), w[256];
    double *ref = malloc(sizeof(double) * (size_t)rows * D), *wrong = malloc(sizeof(double) * (size_t)rows * D);
    for (int r = 0; r < rows; r++) {
        float s = (float)pow(10.0, 2.0 * urand() - 1.0); /* rows of different scales: 0.1 .. 10 */
        for (int c = 0; c < D; c++) x[r * D + c] = s * frand();
    }
    for (int c = 0; c < D; c++) w[c] = w_off != 0 ? 0.5f * frand() : 1 + frand();
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int c = 0; c < D; c++) ss += (double)x[r * D + c] * x[r * D + c];
        double inv = 1.0 / sqrt(ss / D + eps);
        for (int c = 0; c < D; c++) {
            ref[r * D + c] = x[r * D + c] * inv * ((double)w[c] + w_off);
            wrong[r * D + c] = x[r * D + c] * inv * (w_off != 0 ? (double)w[c] : (double)w[c] + 1.0);
        }
    }
    int al = g_rms_aligned;
    dten W = mk(BE_F32, 1, D, 0, al ? 4 : 2, w), X, O;
    be_tensor xv, ov;
    if (heads > 1) {
        X = mk(BE_F32, rows / heads, heads * D, 0, 4, x);
        xv = be_view(X.t.buf, X.t.offset, BE_F32, rows, D);
        O = X, ov = xv;
    } else {
        X = mk(BE_F32, rows, D, inplace ? 0 : al ? 4 : 7, al ? 4 : 1, x);
        O = inplace ? X : mk(BE_F32, rows, D, al ? 4 : 3, al ? 8 : 6, NULL);
        xv = X.t, ov = O.t;
    }
    if (!g_case_bad) {
        g_be->rmsnorm(g_be->ctx, &xv, &W.t, eps, w_off, &ov);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            double e = pad_intact(&O, wh) ? view_err(&ov, wh, ref) : INFINITY;
            record("rmsnorm", BE_F32, e, TOL_F32, "%d x %d%s, eps %g, w_offset %g%s", rows, D,
                   heads > 1 ? " head-wise" : "", eps, w_off, inplace ? ", in place" : "");
            expect_far("rmsnorm", BE_F32, view_err(&ov, wh, wrong), TOL_F32,
                       w_off != 0 ? "w_offset ignored" : "w_offset 1 applied");
            free(wh);
        }
    }
    case_end();
    free(x), free(ref), free(wrong);
}

/* x += h, out = rmsnorm(x) * (w + w_off) through be_add_rmsnorm (a backend's fused op, or add then
 * rmsnorm): both the updated residual and the norm are checked; out_is_h writes the norm over h. */
static void t_add_rmsnorm(int rows, int D, int xpad, int xoff, int out_is_h) {
    float *x = malloc(sizeof(float) * (size_t)rows * D), *h = malloc(sizeof(float) * (size_t)rows * D), w[256];
    double *rx = malloc(sizeof(double) * (size_t)rows * D), *ref = malloc(sizeof(double) * (size_t)rows * D);
    for (int i = 0; i < rows * D; i++) x[i] = 3 * frand(), h[i] = frand();
    for (int c = 0; c < D; c++) w[c] = 1 + frand();
    for (int r = 0; r < rows; r++) {
        double ss = 0;
        for (int c = 0; c < D; c++) {
            rx[r * D + c] = (double)(x[r * D + c] + h[r * D + c]); /* the f32 sum the op stores */
            ss += rx[r * D + c] * rx[r * D + c];
        }
        double inv = 1.0 / sqrt(ss / D + 1e-5);
        for (int c = 0; c < D; c++) ref[r * D + c] = rx[r * D + c] * inv * w[c];
    }
    dten W = mk(BE_F32, 1, D, 0, xoff, w), X = mk(BE_F32, rows, D, xpad, xoff, x), Hh = mk(BE_F32, rows, D, xpad, xoff, h);
    dten O = out_is_h ? Hh : mk(BE_F32, rows, D, xpad, xoff, NULL);
    if (!g_case_bad) {
        be_add_rmsnorm(g_be, &X.t, &Hh.t, &W.t, 1e-5f, 0.0f, &O.t);
        if (sync_ok()) {
            unsigned char *xo = rd(&X), *oo = rd(&O);
            double ex = pad_intact(&X, xo) ? view_err(&X.t, xo, rx) : INFINITY;
            double eo = pad_intact(&O, oo) ? view_err(&O.t, oo, ref) : INFINITY;
            record("add_rmsnorm", BE_F32, ex > eo ? ex : eo, TOL_F32, "%d x %d, stride %d, offset %d%s", rows, D, D + xpad,
                   xoff, out_is_h ? ", norm written over h" : "");
            free(xo), free(oo);
        }
    }
    case_end();
    free(x), free(h), free(rx), free(ref);
}

/* ---------------------------------------------------------------- matmul */

/* x [n, K] @ w[M, K]^T (+ bias): x and out strided by xpad/opad, w at element offset woff. */
static void t_matmul(be_dtype dt, int n, int K, int M, int has_bias, int xpad, int opad, int woff, int self) {
    float *x = malloc(sizeof(float) * (size_t)n * K), *w = malloc(sizeof(float) * (size_t)M * K), *b = malloc(sizeof(float) * (size_t)M);
    double *ref = malloc(sizeof(double) * (size_t)n * M), *nob = malloc(sizeof(double) * (size_t)n * M);
    /* On the CPU x is representable in the weights' dtype: its kernels that round the activations to it
     * (AVX-512 BF16 / BFMMLA / FMLAL, as a bf16 model computes) then match the f32 ones; that rounding's
     * own bound is test_matmul's. Other backends get x with all its bits: the GPU's tensor-core GEMM rounds
     * a 16-bit weight's activations to f16 (more bits than a bf16 model's own), and that must stay within
     * dt_tol; its f32 kernels within the f32 tolerance. */
    int round_x = !strcmp(g_be->name, "cpu");
    for (int i = 0; i < n * K; i++) x[i] = round_x ? dt_round(dt, frand()) : frand();
    for (int i = 0; i < M * K; i++) w[i] = dt_round(dt, frand());
    for (int i = 0; i < M; i++) b[i] = frand();
    for (int t = 0; t < n; t++)
        for (int m = 0; m < M; m++) {
            double s = 0;
            for (int k = 0; k < K; k++) s += (double)x[t * K + k] * w[m * K + k];
            nob[t * M + m] = s;
            ref[t * M + m] = s + (has_bias ? b[m] : 0);
        }
    dten X = mk(BE_F32, n, K, xpad, xpad ? 3 : 0, x), W = mk(dt, M, K, 0, woff, w), B = mk(BE_F32, 1, M, 0, 1, b);
    dten O = mk(BE_F32, n, M, opad, opad ? 5 : 0, NULL);
    if (!g_case_bad) {
        g_be->matmul(g_be->ctx, &X.t, &W.t, has_bias ? &B.t : NULL, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("matmul", dt, out_err(&O, wh, ref), dt_tol(dt), "n=%d K=%d M=%d%s, x stride %d, out stride %d", n, K, M,
                   has_bias ? " +bias" : "", K + xpad, M + opad);
            if (has_bias && M >= 8) expect_far("matmul", dt, view_err(&O.t, wh, nob), dt_tol(dt), "bias missing");
            if (self) self_check(&O, wh, ref, dt_tol(dt));
            free(wh);
        }
    }
    case_end();
    free(x), free(w), free(b), free(ref), free(nob);
}

/* be_lora_shrink + be_lora_expand: rows in segments of three adapter slots (one slot in two segments, some
 * rows without an adapter), out added to (not overwritten), x and out strided. 11 * f rows: the GPU's fused
 * kernels up to its lora_max_rows (4096), its matmuls per segment above (f = 400). */
static void t_lora(be_dtype dt, int K, int M, int R, int f) {
    enum { S = 3 };
    const int N = 11 * f;
    const be_lora_seg seg[3] = {{0, 3 * f, 2}, {5 * f, 4 * f, 0}, {9 * f, 2 * f, 2}};
    int32_t *rs = malloc(sizeof(int32_t) * (size_t)N);
    for (int i = 0; i < N; i++) rs[i] = -1;
    for (int s = 0; s < 3; s++)
        for (int64_t i = seg[s].row0; i < seg[s].row0 + seg[s].n; i++) rs[i] = seg[s].slot;
    float *x = malloc(sizeof(float) * (size_t)N * (size_t)K), *o0 = malloc(sizeof(float) * (size_t)N * (size_t)M);
    float *a = malloc(sizeof(float) * S * (size_t)R * K), *b = malloc(sizeof(float) * S * (size_t)M * R);
    double *ref = malloc(sizeof(double) * (size_t)N * (size_t)M);
    for (int i = 0; i < N * K; i++) x[i] = frand();
    for (int i = 0; i < N * M; i++) o0[i] = frand();
    for (int i = 0; i < S * R * K; i++) a[i] = dt_round(dt, frand());
    for (int i = 0; i < S * M * R; i++) b[i] = dt_round(dt, frand());
    for (int t = 0; t < N; t++)
        for (int m = 0; m < M; m++) {
            double v = o0[t * M + m];
            for (int j = 0; rs[t] >= 0 && j < R; j++) {
                double xa = 0;
                for (int k = 0; k < K; k++) xa += (double)x[t * K + k] * a[((size_t)rs[t] * R + j) * K + k];
                v += xa * b[((size_t)rs[t] * M + m) * R + j];
            }
            ref[t * M + m] = v;
        }
    dten X = mk(BE_F32, N, K, 3, 2, x), A = mk(dt, S * R, K, 0, 1, a), B = mk(dt, S * M, R, 0, 3, b);
    dten RS = mk(BE_I32, 1, N, 0, 1, rs), T = mk(BE_F32, N, R, 0, 0, NULL), D = mk(BE_F32, N, M, 0, 0, NULL);
    dten O = mk(BE_F32, N, M, 2, 1, o0);
    if (!g_case_bad) {
        be_lora_shrink(g_be, &X.t, &A.t, 3, seg, &RS.t, &T.t);
        be_lora_expand(g_be, &X.t, &A.t, &T.t, &B.t, 3, seg, &RS.t, &D.t, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("lora", dt, out_err(&O, wh, ref), dt_tol(dt), "%d rows, 3 slots, K=%d M=%d R=%d", N, K, M, R);
            free(wh);
        }
    }
    case_end();
    free(x), free(o0), free(a), free(b), free(ref), free(rs);
}

/* ---------------------------------------------------------------- argmax */

/* out[i] = the first maximum of row i of x (backend.h): ties, all -inf, a NaN first (0) and NaNs later
 * (never win), +0 after -0, the maximum last; V below and above a workgroup's width; x strided. */
static void t_argmax(int V, int xpad, int xoff) {
    enum { R = 8 };
    float *x = malloc(sizeof(float) * (size_t)R * V);
    int want[R];
    for (int i = 0; i < R * V; i++) x[i] = frand() * 4.0f - 8.0f; /* all negative */
    for (int r = 0; r < R; r++) {
        float *row = x + (size_t)r * V;
        int a = V / 3, b = V - 2 > a ? V - 2 : a;
        switch (r) {
        case 0: row[a] = 3.0f; break;                                                   /* one maximum */
        case 1: row[a] = row[b] = 5.0f; break;                                          /* a tie: the first */
        case 2: for (int j = 0; j < V; j++) row[j] = -INFINITY; break;                  /* all -inf: 0 */
        case 3: row[0] = NAN, row[a] = 7.0f; break;                                     /* NaN first: 0 */
        case 4: row[1 % V] = NAN, row[b] = 2.0f, row[V - 1] = NAN; break;               /* later NaNs lose */
        case 5: row[V - 1] = 1.0f; break;                                               /* the last */
        case 6: row[a] = -0.0f, row[b] = 0.0f; break;                                   /* -0 then +0: equal */
        default: row[a] = 1e30f, row[b] = INFINITY; break;                              /* +inf wins */
        }
        int best = 0;
        for (int j = 1; j < V; j++)
            if (row[j] > row[best]) best = j;
        want[r] = best;
    }
    dten X = mk(BE_F32, R, V, xpad, xoff, x), O = mk(BE_I32, 1, R, 0, 3, NULL);
    if (!g_case_bad) {
        g_be->argmax(g_be->ctx, &X.t, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            int wrong = wh ? 0 : R;
            for (int r = 0; wh && r < R; r++) {
                int32_t got;
                memcpy(&got, wh + O.t.offset + 4 * (size_t)r, 4);
                if (got != want[r]) {
                    wrong++;
                    printf("  argmax V=%d row %d: got %d want %d\n", V, r, got, want[r]);
                }
            }
            record("argmax", BE_F32, wrong, 0, "V=%d, x stride %d", V, V + xpad);
            free(wh);
        }
    }
    case_end();
    free(x);
}

/* backend.topk (where the backend has it): rows with one peak, ties (few distinct values), NaNs, -inf, the
 * best at the very end; against a sort by (value desc, index asc), a NaN counting as -inf. */
static const float *g_topk_row;
static int topk_cmp(const void *a, const void *b) {
    int i = *(const int *)a, j = *(const int *)b;
    float x = isnan(g_topk_row[i]) ? -INFINITY : g_topk_row[i], y = isnan(g_topk_row[j]) ? -INFINITY : g_topk_row[j];
    if (x != y) return x > y ? -1 : 1;
    return i < j ? -1 : i > j;
}

static void t_topk(int V, int k, int xpad, int xoff) {
    enum { R = 6 };
    if (!g_be->topk) return;
    float *x = malloc(sizeof(float) * (size_t)R * V);
    int *ord = malloc(sizeof(int) * (size_t)V);
    for (int i = 0; i < R * V; i++) x[i] = frand() * 8.0f - 4.0f;
    for (int r = 0; r < R; r++) {
        float *row = x + (size_t)r * V;
        switch (r) {
        case 1: for (int j = 0; j < V; j++) row[j] = (float)(int)(row[j]); break; /* 8 values: ties everywhere */
        case 2: for (int j = 0; j < V; j += 3) row[j] = NAN; break;
        case 3: for (int j = 0; j < V; j++) row[j] = j % 2 ? -INFINITY : row[j]; break;
        case 4: row[V - 1] = 100.0f; row[0] = -0.0f; break;
        case 5: for (int j = 0; j < V; j++) row[j] = j < V - k / 2 ? -INFINITY : row[j]; break; /* -inf ties at the edge */
        default: break;
        }
    }
    dten X = mk(BE_F32, R, V, xpad, xoff, x), I = mk(BE_I32, R, k, 1, 2, NULL), W = mk(BE_F32, R, k, 3, 1, NULL);
    if (!g_case_bad) {
        g_be->topk(g_be->ctx, &X.t, k, &I.t, &W.t);
        if (sync_ok()) {
            unsigned char *wi = rd(&I), *wv = rd(&W);
            int wrong = wi && wv ? 0 : R * k;
            for (int r = 0; wi && wv && r < R; r++) {
                g_topk_row = x + (size_t)r * V;
                for (int j = 0; j < V; j++) ord[j] = j;
                qsort(ord, (size_t)V, sizeof(int), topk_cmp);
                for (int q = 0; q < k; q++) {
                    int32_t gi;
                    float gv, want = isnan(g_topk_row[ord[q]]) ? -INFINITY : g_topk_row[ord[q]];
                    memcpy(&gi, wi + I.t.offset + 4 * ((size_t)r * I.t.stride + q), 4);
                    memcpy(&gv, wv + W.t.offset + 4 * ((size_t)r * W.t.stride + q), 4);
                    if (gi != ord[q] || !(gv == want)) {
                        if (wrong++ < 4) printf("  topk V=%d k=%d row %d #%d: got %d (%g) want %d (%g)\n", V, k, r, q, gi, gv, ord[q], want);
                    }
                }
            }
            record("topk", BE_F32, wrong, 0, "V=%d k=%d, x stride %d", V, k, V + xpad);
            free(wi), free(wv);
        }
    }
    case_end();
    free(x), free(ord);
}

/* be_matmul_multi: 3 weights sharing x; bias[1] is NULL; outputs are column
 * slices of one [n, M0+M1+M2] buffer (strided views). */
static void t_matmul_multi(const be_dtype dts[3], int n, int K, const int Ms[3]) {
    int Mt = Ms[0] + Ms[1] + Ms[2];
    float *x = malloc(sizeof(float) * (size_t)n * K), *w[3], *b[3];
    double *ref[3];
    for (int i = 0; i < n * K; i++) x[i] = frand();
    dten X = mk(BE_F32, n, K, 4, 2, x), W[3], B[3];
    for (int p = 0; p < 3; p++) {
        w[p] = malloc(sizeof(float) * (size_t)Ms[p] * K);
        b[p] = malloc(sizeof(float) * (size_t)Ms[p]);
        ref[p] = malloc(sizeof(double) * (size_t)n * Ms[p]);
        for (int i = 0; i < Ms[p] * K; i++) w[p][i] = dt_round(dts[p], frand());
        for (int i = 0; i < Ms[p]; i++) b[p][i] = frand();
        for (int t = 0; t < n; t++)
            for (int m = 0; m < Ms[p]; m++) {
                double s = 0;
                for (int k = 0; k < K; k++) s += (double)x[t * K + k] * w[p][m * K + k];
                ref[p][t * Ms[p] + m] = s + (p != 1 ? b[p][m] : 0);
            }
        W[p] = mk(dts[p], Ms[p], K, 0, p, w[p]);
        B[p] = mk(BE_F32, 1, Ms[p], 0, 0, b[p]);
    }
    dten O = mk(BE_F32, n, Mt, 2, 1, NULL);
    be_tensor ov[3];
    for (int p = 0, c0 = 0; p < 3; c0 += Ms[p++]) ov[p] = be_cols(&O.t, c0, Ms[p]);
    if (!g_case_bad) {
        const be_tensor *wp[3] = {&W[0].t, &W[1].t, &W[2].t}, *bp[3] = {&B[0].t, NULL, &B[2].t};
        const be_tensor *op[3] = {&ov[0], &ov[1], &ov[2]};
        be_matmul_multi(g_be, &X.t, 3, wp, bp, op);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            int intact = pad_intact(&O, wh);
            for (int p = 0; p < 3; p++)
                record("matmul_multi", dts[p], intact ? view_err(&ov[p], wh, ref[p]) : INFINITY, dt_tol(dts[p]),
                       "part %d of 3, n=%d K=%d M=%d%s", p, n, K, Ms[p], p == 1 ? " (bias NULL)" : " +bias");
            free(wh);
        }
    }
    case_end();
    free(x);
    for (int p = 0; p < 3; p++) free(w[p]), free(b[p]), free(ref[p]);
}

/* x's rows as rmsnorm(x) = x / rms(x) * (nw + off) in double, in place (be_mm's folded norm) */
static void norm_ref(float *x, int n, int K, const float *nw, float off, float eps) {
    for (int t = 0; t < n; t++) {
        double ss = 0;
        for (int k = 0; k < K; k++) ss += (double)x[t * K + k] * x[t * K + k];
        double inv = 1.0 / sqrt(ss / K + eps);
        for (int k = 0; k < K; k++) x[t * K + k] = (float)(x[t * K + k] * inv * (nw[k] + off));
    }
}

/* be_matmul_multi over nw weights stacked in one buffer (the model's q/k/v layout on a copying backend: the
 * GPU's one-dispatch path), outputs in separate regions of one buffer with their own strides (as the
 * runner's q, k and v), biases all absent or all in one buffer. */
static void t_matmul_stacked(be_dtype dt, int n, int K, const int Ms[3], int nw, int has_bias, int norm) {
    int Mt = 0;
    for (int p = 0; p < nw; p++) Mt += Ms[p];
    float *x = malloc(sizeof(float) * (size_t)n * K), *w = malloc(sizeof(float) * (size_t)Mt * K);
    float *b = malloc(sizeof(float) * (size_t)Mt);
    double *ref = malloc(sizeof(double) * (size_t)n * Mt), *rp[3];
    int round_x = !strcmp(g_be->name, "cpu"); /* as t_matmul */
    for (int i = 0; i < n * K; i++) x[i] = round_x ? dt_round(dt, frand()) : frand();
    for (int i = 0; i < Mt * K; i++) w[i] = dt_round(dt, frand());
    for (int i = 0; i < Mt; i++) b[i] = frand();
    float *nv = malloc(sizeof(float) * (size_t)K), *xr = malloc(sizeof(float) * (size_t)n * K);
    for (int k = 0; k < K; k++) nv[k] = 1.0f + 0.5f * frand();
    memcpy(xr, x, sizeof(float) * (size_t)n * K);
    if (norm) norm_ref(xr, n, K, nv, 0.0f, 1e-5f); /* the reference's x (see run_all on the CPU's dot16) */
    int64_t base[3], total = 1;
    for (int p = 0; p < nw; p++) base[p] = total + 3, total = base[p] + (int64_t)n * (Ms[p] + 1 + p);
    dten X = mk(BE_F32, n, K, 0, 4, x), W = mk(dt, Mt, K, 0, 0, w), B = mk(BE_F32, 1, Mt, 0, 2, b);
    dten O = mk(BE_F32, 1, total, 0, 0, NULL), NW = mk(BE_F32, 1, K, 0, 4, nv), H = mk(BE_F32, n, K, 0, 0, NULL);
    be_tensor wv[3], bv[3], ov[3];
    for (int p = 0, r0 = 0; p < nw; r0 += Ms[p++]) {
        wv[p] = be_rows(&W.t, r0, Ms[p]), bv[p] = be_cols(&B.t, r0, Ms[p]);
        ov[p] = be_view(O.t.buf, (size_t)base[p] * sizeof(float), BE_F32, n, Ms[p]);
        ov[p].stride = Ms[p] + 1 + p;
        rp[p] = ref + (size_t)n * r0;
        for (int t = 0; t < n; t++)
            for (int m = 0; m < Ms[p]; m++) {
                double acc = has_bias ? b[r0 + m] : 0;
                for (int k = 0; k < K; k++) acc += (double)xr[t * K + k] * w[(size_t)(r0 + m) * K + k];
                rp[p][(size_t)t * Ms[p] + m] = acc;
            }
    }
    if (!g_case_bad) {
        be_mm op = {.x = &X.t, .norm_w = norm ? &NW.t : NULL, .eps = 1e-5f, .nw = nw, .h = &H.t};
        for (int p = 0; p < nw; p++) op.w[p] = &wv[p], op.bias[p] = has_bias ? &bv[p] : NULL, op.out[p] = &ov[p];
        if (norm) be_matmul_fused(g_be, &op);
        else be_matmul_multi(g_be, &X.t, nw, op.w, op.bias, op.out); /* the backend's matmul_multi, stacked */
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            double err = views_intact(&O, ov, nw, wh) ? 0 : INFINITY;
            for (int p = 0; p < nw; p++) err = fmax(err, view_err(&ov[p], wh, rp[p]));
            record("matmul_stacked", dt, err, dt_tol(dt), "%d parts, n=%d K=%d M=%d/%d/%d%s%s", nw, n, K,
                   Ms[0], Ms[1], nw > 2 ? Ms[2] : 0, has_bias ? " +bias" : "", norm ? ", norm folded" : "");
            free(wh);
        }
    }
    case_end();
    free(x), free(w), free(b), free(ref), free(nv), free(xr);
}

/* be_matmul_fused with an activation: out = act(x gate^T) * (x up^T), gate and up stacked in one buffer
 * (the GPU's one-dispatch path) or apart (its fallback); the scratch `up` may hold anything afterwards. */
static void t_matmul_glu(be_dtype dt, int n, int K, int F, int act, int stacked, int norm) {
    float *x = malloc(sizeof(float) * (size_t)n * K), *w = malloc(sizeof(float) * (size_t)2 * F * K);
    float *nv = malloc(sizeof(float) * (size_t)K), *x0 = malloc(sizeof(float) * (size_t)n * K);
    double *ref = malloc(sizeof(double) * (size_t)n * F);
    int round_x = !strcmp(g_be->name, "cpu");
    for (int i = 0; i < n * K; i++) x[i] = round_x ? dt_round(dt, frand()) : frand();
    for (int i = 0; i < 2 * F * K; i++) w[i] = dt_round(dt, frand());
    for (int k = 0; k < K; k++) nv[k] = 0.5f * frand(); /* with w_offset 1, Gemma-style */
    memcpy(x0, x, sizeof(float) * (size_t)n * K);
    if (norm) norm_ref(x, n, K, nv, 1.0f, 1e-6f); /* the reference's x; x0 goes to the backend */
    for (int t = 0; t < n; t++)
        for (int m = 0; m < F; m++) {
            double g = 0, u = 0;
            for (int k = 0; k < K; k++) {
                g += (double)x[t * K + k] * w[(size_t)m * K + k];
                u += (double)x[t * K + k] * w[(size_t)(F + m) * K + k];
            }
            double a = act == BE_ACT_SILU ? g / (1.0 + exp(-g))
                                          : 0.5 * g * (1.0 + tanh(0.7978845608028654 * (g + 0.044715 * g * g * g)));
            ref[(size_t)t * F + m] = a * u;
        }
    dten X = mk(BE_F32, n, K, 4, 0, x0), O = mk(BE_F32, n, F, 1, 3, NULL), U = mk(BE_F32, n, F, 0, 0, NULL);
    dten NW = mk(BE_F32, 1, K, 0, 8, nv), H = mk(BE_F32, n, K, 0, 0, NULL);
    dten W = mk(dt, stacked ? 2 * F : F, K, 0, 0, w), W2 = {0};
    be_tensor wg = be_rows(&W.t, 0, F), wu;
    if (stacked) {
        wu = be_rows(&W.t, F, F);
    } else {
        W2 = mk(dt, F, K, 0, 3, w + (size_t)F * K);
        wu = W2.t;
    }
    if (!g_case_bad) {
        be_mm op = {.x = &X.t, .norm_w = norm ? &NW.t : NULL, .eps = 1e-6f, .w_offset = 1.0f, .nw = 2,
                    .w = {&wg, &wu}, .out = {&O.t, &U.t}, .act = act, .h = &H.t};
        be_matmul_fused(g_be, &op);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("matmul_glu", dt, out_err(&O, wh, ref), dt_tol(dt), "%s, n=%d K=%d F=%d, %s%s",
                   act == BE_ACT_SILU ? "silu" : "gelu_tanh", n, K, F, stacked ? "stacked" : "apart",
                   norm ? ", norm folded" : "");
            free(wh);
        }
    }
    case_end();
    free(x), free(w), free(ref), free(nv), free(x0);
}

/* be_mm's accumulate: out (a residual, strided) += x w^T (+ bias). */
static void t_matmul_acc(be_dtype dt, int n, int K, int M, int has_bias) {
    float *x = malloc(sizeof(float) * (size_t)n * K), *w = malloc(sizeof(float) * (size_t)M * K);
    float *b = malloc(sizeof(float) * (size_t)M), *r0 = malloc(sizeof(float) * (size_t)n * M);
    double *ref = malloc(sizeof(double) * (size_t)n * M);
    int round_x = !strcmp(g_be->name, "cpu");
    for (int i = 0; i < n * K; i++) x[i] = round_x ? dt_round(dt, frand()) : frand();
    for (int i = 0; i < M * K; i++) w[i] = dt_round(dt, frand());
    for (int i = 0; i < M; i++) b[i] = frand();
    for (int i = 0; i < n * M; i++) r0[i] = 4.0f * frand();
    for (int t = 0; t < n; t++)
        for (int m = 0; m < M; m++) {
            double acc = (double)r0[t * M + m] + (has_bias ? b[m] : 0);
            for (int k = 0; k < K; k++) acc += (double)x[t * K + k] * w[(size_t)m * K + k];
            ref[(size_t)t * M + m] = acc;
        }
    dten X = mk(BE_F32, n, K, 0, 0, x), W = mk(dt, M, K, 0, 0, w), B = mk(BE_F32, 1, M, 0, 3, b);
    dten O = mk(BE_F32, n, M, 4, 2, r0), T = mk(BE_F32, n, M, 0, 0, NULL);
    if (!g_case_bad) {
        be_mm op = {.x = &X.t, .nw = 1, .w = {&W.t}, .bias = {has_bias ? &B.t : NULL}, .out = {&O.t}, .accumulate = 1,
                    .tmp = &T.t};
        be_matmul_fused(g_be, &op);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("matmul_acc", dt, out_err(&O, wh, ref), dt_tol(dt), "n=%d K=%d M=%d%s", n, K, M,
                   has_bias ? " +bias" : "");
            free(wh);
        }
    }
    case_end();
    free(x), free(w), free(b), free(r0), free(ref);
}

/* ---------------------------------------------------------------- rope */

/* In place on x = columns [col0, col0 + heads*hd) of an [n, total] buffer
 * (k inside a fused qkv row). The angle is pos * inv_freq in f32 (as HF). */
static void t_rope(int n, int heads, int hd, int rot, const float *inv, const int32_t *pos, int col0, int total,
                   float ms) {
    int C = heads * hd, half = rot / 2;
    float *x = malloc(sizeof(float) * (size_t)n * C);
    double *ref = malloc(sizeof(double) * (size_t)n * C), *gptj = malloc(sizeof(double) * (size_t)n * C);
    for (int i = 0; i < n * C; i++) x[i] = frand();
    for (int t = 0; t < n; t++)
        for (int h = 0; h < heads; h++) {
            const float *v = x + t * C + h * hd;
            double *o = ref + t * C + h * hd, *g = gptj + t * C + h * hd;
            for (int c = 0; c < hd; c++) o[c] = g[c] = v[c];
            for (int i = 0; i < half; i++) {
                double a = (double)((float)pos[t] * inv[i]), cs = cos(a) * ms, sn = sin(a) * ms;
                o[i] = v[i] * cs - v[i + half] * sn; /* rotate_half: i with i + rot/2 */
                o[i + half] = v[i + half] * cs + v[i] * sn;
                g[2 * i] = v[2 * i] * cs - v[2 * i + 1] * sn; /* GPT-J: 2i with 2i+1 (a wrong kernel) */
                g[2 * i + 1] = v[2 * i + 1] * cs + v[2 * i] * sn;
            }
        }
    dten X = mk(BE_F32, n, C, total - C, col0, x), P = mk(BE_I32, 1, n, 0, 2, pos), I = mk(BE_F32, 1, half, 0, 1, inv);
    if (!g_case_bad) {
        g_be->rope(g_be->ctx, &X.t, hd, rot, &P.t, &I.t, ms);
        if (sync_ok()) {
            unsigned char *wh = rd(&X);
            record("rope", BE_F32, out_err(&X, wh, ref), TOL_F32, "n=%d heads=%d head_dim=%d rot_dim=%d mscale=%g", n,
                   heads, hd, rot, ms);
            expect_far("rope", BE_F32, view_err(&X.t, wh, gptj), TOL_F32, "GPT-J pairing");
            free(wh);
        }
    }
    case_end();
    free(x), free(ref), free(gptj);
}

/* ---------------------------------------------------------------- kv_write */

/* k rows to cache[slot] (negative slots skipped); every other cache row keeps its bytes. */
static void t_kv_write(be_dtype cdt, int n, int C, int SL, const int32_t *slot) {
    float *k = malloc(sizeof(float) * (size_t)n * C);
    for (int i = 0; i < n * C; i++) k[i] = frand();
    dten K = mk(BE_F32, n, C, 8, 8, k), S = mk(BE_I32, 1, n, 0, 3, slot), Cc = mk(cdt, SL, C, 0, 2 * C, NULL);
    if (!g_case_bad) {
        g_be->kv_write(g_be->ctx, &K.t, &S.t, &Cc.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&Cc);
            double worst = wh ? 0 : INFINITY, ref[256];
            int stray = 0;
            for (int t = 0; wh && t < n; t++) {
                if (slot[t] < 0) continue;
                for (int c = 0; c < C; c++) ref[c] = dt_round(cdt, k[t * C + c]);
                be_tensor row = be_rows(&Cc.t, slot[t], 1);
                double e = view_err(&row, wh, ref);
                if (!(e <= worst)) worst = e;
            }
            if (wh) { /* every other byte of the buffer is still the poison written before */
                unsigned char *tmp = malloc(Cc.bytes);
                memcpy(tmp, wh, Cc.bytes);
                for (int t = 0; t < n; t++)
                    if (slot[t] >= 0) {
                        size_t at = Cc.t.offset + (size_t)slot[t] * (size_t)C * be_dtype_size(cdt);
                        memcpy(tmp + at, Cc.img + at, (size_t)C * be_dtype_size(cdt));
                    }
                stray = memcmp(tmp, Cc.img, Cc.bytes) != 0;
                free(tmp);
            }
            CHECK_MSG(!stray, "%s: kv_write %s wrote outside the slots given (a negative slot not skipped?)", g_be->name,
                      dt_str(cdt));
            record("kv_write", cdt, stray ? INFINITY : worst, dt_tol(cdt), "n=%d C=%d slots=%d", n, C, SL);
            free(wh);
        }
    }
    case_end();
    free(k);
}

/* be_rope_kv_write (a backend's fused op, or rope, rope, kv_write, kv_write): q rotated in place,
 * the K cache rows hold rotated k, the V rows v, in the cache dtype; other rows keep their poison. */
static void t_rope_kv(be_dtype cdt, int n, int Hq, int Hk, int hd, int rot, const int32_t *slot, int SL, float ms) {
    int Cq = Hq * hd, C = Hk * hd, half = rot / 2;
    float *q = malloc(sizeof(float) * (size_t)n * Cq), *k = malloc(sizeof(float) * (size_t)n * C), inv[64];
    float *v = malloc(sizeof(float) * (size_t)n * C);
    double *rq = malloc(sizeof(double) * (size_t)n * Cq), *rk = malloc(sizeof(double) * (size_t)n * C);
    int32_t pos[64];
    for (int i = 0; i < n * Cq; i++) q[i] = frand();
    for (int i = 0; i < n * C; i++) k[i] = frand(), v[i] = frand();
    for (int i = 0; i < half; i++) inv[i] = (float)pow(10000.0, -2.0 * i / rot);
    for (int t = 0; t < n; t++) pos[t] = 7 + 97 * t;
    for (int t = 0; t < n; t++) /* reference rotation (rotate_half pairing); the angle in f32 as HF */
        for (int pass = 0; pass < 2; pass++) {
            const float *src = pass ? k + (size_t)t * C : q + (size_t)t * Cq;
            double *dst = pass ? rk + (size_t)t * C : rq + (size_t)t * Cq;
            for (int h = 0; h < (pass ? Hk : Hq); h++)
                for (int d = 0; d < hd; d++) {
                    const float *x = src + h * hd;
                    double val = x[d];
                    if (d < rot) {
                        float ang = (float)pos[t] * inv[d % half];
                        double cs = cos((double)ang) * ms, sn = sin((double)ang) * ms;
                        val = d < half ? x[d] * cs - x[d + half] * sn : x[d] * cs + x[d - half] * sn;
                    }
                    dst[h * hd + d] = val;
                }
        }
    dten Q = mk(BE_F32, n, Cq, 4, 4, q), K = mk(BE_F32, n, C, 0, 4, k), V = mk(BE_F32, n, C, 2, 6, v);
    dten P = mk(BE_I32, 1, n, 0, 1, pos), F = mk(BE_F32, 1, half, 0, 3, inv), S = mk(BE_I32, 1, n, 0, 2, slot);
    dten KC = mk(cdt, SL, C, 0, 2 * C, NULL), VC = mk(cdt, SL, C, 0, 4 * C, NULL);
    if (!g_case_bad) {
        be_rope_kv_write(g_be, &Q.t, &K.t, &V.t, hd, rot, &P.t, &F.t, ms, &S.t, &KC.t, &VC.t);
        if (sync_ok()) {
            unsigned char *qo = rd(&Q), *ko = rd(&KC), *vo = rd(&VC);
            double worst = qo && pad_intact(&Q, qo) ? view_err(&Q.t, qo, rq) : INFINITY, ref[512];
            size_t es = be_dtype_size(cdt);
            int stray = !ko || !vo;
            for (int r = 0; r < SL && !stray; r++) {
                int t = -1;
                for (int i = 0; i < n; i++)
                    if (slot[i] == r) t = i;
                size_t ak = KC.t.offset + (size_t)r * (size_t)C * es, av = VC.t.offset + (size_t)r * (size_t)C * es;
                if (t < 0) { /* a row no token wrote keeps its poison */
                    stray |= memcmp(ko + ak, KC.img + ak, (size_t)C * es) != 0 || memcmp(vo + av, VC.img + av, (size_t)C * es) != 0;
                    continue;
                }
                be_tensor kr = be_rows(&KC.t, r, 1), vr = be_rows(&VC.t, r, 1);
                for (int c = 0; c < C; c++) ref[c] = dt_round(cdt, (float)rk[t * C + c]);
                double e = view_err(&kr, ko, ref);
                if (!(e <= worst)) worst = e;
                for (int c = 0; c < C; c++) ref[c] = dt_round(cdt, v[t * C + c]);
                e = view_err(&vr, vo, ref);
                if (!(e <= worst)) worst = e;
            }
            record("rope_kv_write", cdt, stray ? INFINITY : worst, cdt == BE_F32 ? 1e-4 : dt_tol(cdt),
                   "n=%d heads %d/%d, head_dim %d, rotary %d", n, Hq, Hk, hd, rot);
            free(qo), free(ko), free(vo);
        }
    }
    case_end();
    free(q), free(k), free(v), free(rq), free(rk);
}

/* ---------------------------------------------------------------- attention */

typedef struct {
    int S, H, HKV, HD, window, n, C;
    const int *seq_len, *q_len;
    int *q0;        /* [S+1] first query row of each sequence */
    int *kv0;       /* [S] first row of each sequence's tokens in Kh/Vh */
    float *Kh, *Vh; /* all tokens of all sequences, rounded to the cache dtype */
    float *Q;       /* [n, H*HD] */
    double scale;
    double softcap; /* 0: none */
} attn_case;

/* The reference, and variants that model bugs: window ignored, no causal mask
 * (a chunk sees the whole sequence), GQA heads grouped h % HKV instead of h / G. */
static void attn_ref(const attn_case *a, double *ref, int window, int causal, int gqa_mod) {
    int G = a->H / a->HKV, QC = a->H * a->HD;
    double *sc = malloc(sizeof(double) * 1024);
    for (int s = 0; s < a->S; s++)
        for (int i = 0; i < a->q_len[s]; i++) {
            int r = a->q0[s] + i, pos = a->seq_len[s] - a->q_len[s] + i, last = causal ? pos : a->seq_len[s] - 1;
            int j0 = window > 0 && pos + 1 > window ? pos + 1 - window : 0;
            for (int h = 0; h < a->H; h++) {
                int kvh = gqa_mod ? h % a->HKV : h / G;
                double mx = -INFINITY, z = 0;
                for (int j = j0; j <= last; j++) {
                    const float *kr = a->Kh + (size_t)(a->kv0[s] + j) * a->C + kvh * a->HD;
                    double d = 0;
                    for (int c = 0; c < a->HD; c++) d += (double)a->Q[r * QC + h * a->HD + c] * kr[c];
                    sc[j] = d * a->scale;
                    if (a->softcap > 0) sc[j] = tanh(sc[j] / a->softcap) * a->softcap;
                    mx = fmax(mx, sc[j]);
                }
                for (int j = j0; j <= last; j++) z += sc[j] = exp(sc[j] - mx);
                for (int c = 0; c < a->HD; c++) {
                    double o = 0;
                    for (int j = j0; j <= last; j++) o += sc[j] / z * a->Vh[(size_t)(a->kv0[s] + j) * a->C + kvh * a->HD + c];
                    ref[(size_t)r * QC + h * a->HD + c] = o;
                }
            }
        }
    free(sc);
}

/* S sequences: sequence s has seq_len[s] tokens in context, the last q_len[s]
 * of them new in this batch. Block size 4, blocks shuffled across a pool with
 * spare (poisoned) blocks; unused block-table entries are -1. The history's
 * K/V are written with one kv_write, the new tokens' with another (with
 * padding rows of slot -1), then attention reads them: all in one recording. */
static float g_softcap; /* attention cases: soft-capping (Gemma 2), 0 none */
static void t_attention(be_dtype cdt, int window, int H, int HKV, int HD, int S, const int *seq_len, const int *q_len) {
    enum { BS = 4 };
    attn_case a = {S, H, HKV, HD, window, 0, HKV * HD, seq_len, q_len, NULL, NULL, NULL, NULL, NULL, 1.0 / sqrt(HD),
                   g_softcap};
    int maxb = 0, nblk = 0, ntok = 0, maxlen = 0, QC = H * HD;
    a.q0 = calloc((size_t)S + 1, sizeof(int));
    a.kv0 = calloc((size_t)S, sizeof(int));
    for (int s = 0; s < S; s++) {
        int b = (seq_len[s] + BS - 1) / BS;
        maxb = b > maxb ? b : maxb;
        nblk += b;
        a.kv0[s] = ntok;
        ntok += seq_len[s];
        a.q0[s + 1] = a.q0[s] + q_len[s];
        maxlen = seq_len[s] > maxlen ? seq_len[s] : maxlen;
    }
    a.n = a.q0[S];
    int MAXB = maxb + 1, NB = nblk + 5, C = a.C;
    int *perm = malloc(sizeof(int) * (size_t)NB);
    int32_t *bt = malloc(sizeof(int32_t) * (size_t)S * MAXB);
    for (int i = 0; i < NB; i++) perm[i] = i;
    shuffle(perm, NB);
    for (int s = 0, k = 0; s < S; s++)
        for (int j = 0; j < MAXB; j++) bt[s * MAXB + j] = j < (seq_len[s] + BS - 1) / BS ? perm[k++] : -1;
    a.Kh = malloc(sizeof(float) * (size_t)ntok * C);
    a.Vh = malloc(sizeof(float) * (size_t)ntok * C);
    a.Q = malloc(sizeof(float) * (size_t)a.n * QC);
    for (int i = 0; i < ntok * C; i++) a.Kh[i] = dt_round(cdt, frand()), a.Vh[i] = dt_round(cdt, frand());
    for (int i = 0; i < a.n * QC; i++) a.Q[i] = 2 * frand(); /* a peakier softmax than 1/sqrt(HD) alone */
    /* kv_write inputs: [0] history (first row padding), [1] new tokens (a padding row after sequence 0) */
    float *kin[2], *vin[2];
    int32_t *slots[2];
    int rows[2] = {0, 0};
    for (int p = 0; p < 2; p++) {
        kin[p] = malloc(sizeof(float) * (size_t)(ntok + 2) * C);
        vin[p] = malloc(sizeof(float) * (size_t)(ntok + 2) * C);
        slots[p] = malloc(sizeof(int32_t) * (size_t)(ntok + 2));
    }
    for (int c = 0; c < C; c++) kin[0][c] = vin[0][c] = frand();
    slots[0][rows[0]++] = -1;
    for (int s = 0; s < S; s++)
        for (int t = 0; t < seq_len[s]; t++) {
            int p = t >= seq_len[s] - q_len[s];
            memcpy(kin[p] + (size_t)rows[p] * C, a.Kh + (size_t)(a.kv0[s] + t) * C, sizeof(float) * (size_t)C);
            memcpy(vin[p] + (size_t)rows[p] * C, a.Vh + (size_t)(a.kv0[s] + t) * C, sizeof(float) * (size_t)C);
            slots[p][rows[p]++] = bt[s * MAXB + t / BS] * BS + t % BS;
            if (p == 1 && s == 0 && t == seq_len[s] - 1) {
                for (int c = 0; c < C; c++) kin[1][(size_t)rows[1] * C + c] = vin[1][(size_t)rows[1] * C + c] = frand();
                slots[1][rows[1]++] = -5;
            }
        }
    double *ref = malloc(sizeof(double) * (size_t)a.n * QC), *wrong = malloc(sizeof(double) * (size_t)a.n * QC);
    attn_ref(&a, ref, window, 1, 0);

    dten Kc = mk(cdt, (int64_t)NB * BS, C, 0, C, NULL), Vc = mk(cdt, (int64_t)NB * BS, C, 0, 0, NULL);
    dten Kin[2], Vin[2], Sl[2];
    for (int p = 0; p < 2; p++) { /* both have rows: each has a padding row at least */
        Kin[p] = mk(BE_F32, rows[p], C, p, 1, kin[p]);
        Vin[p] = mk(BE_F32, rows[p], C, 0, 2, vin[p]);
        Sl[p] = mk(BE_I32, 1, rows[p], 0, 1, slots[p]);
    }
    dten Q = mk(BE_F32, a.n, QC, 3, 5, a.Q), O = mk(BE_F32, a.n, QC, 2, 7, NULL);
    dten Qs = mk(BE_I32, 1, S + 1, 0, 1, a.q0), Ls = mk(BE_I32, 1, S, 0, 2, seq_len), Bt = mk(BE_I32, S, MAXB, 2, 3, bt);
    if (!g_case_bad) {
        for (int p = 0; p < 2; p++) {
            g_be->kv_write(g_be->ctx, &Kin[p].t, &Sl[p].t, &Kc.t);
            g_be->kv_write(g_be->ctx, &Vin[p].t, &Sl[p].t, &Vc.t);
        }
        be_attn_meta meta = {S, Qs.t, Ls.t, Bt.t, BS, maxlen};
        be_attn_shape shape = {H, HKV, HD, (float)a.scale, window, g_softcap, NULL};
        g_be->attention(g_be->ctx, &Q.t, &Kc.t, &Vc.t, &meta, &shape, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            double tol = dt_tol(cdt);
            char what[160];
            int at = 0;
            at += snprintf(what + at, sizeof what - (size_t)at, "%d/%d heads, head_dim %d, window %d, softcap %g, seqs",
                           H, HKV, HD, window, g_softcap);
            for (int s = 0; s < S && at < 140; s++) at += snprintf(what + at, sizeof what - (size_t)at, " %d/%d", q_len[s], seq_len[s]);
            record("attention", cdt, out_err(&O, wh, ref), tol, "%s", what);
            int chunked = 0, windowed = 0;
            for (int s = 0; s < S; s++) {
                chunked |= q_len[s] > 1;
                windowed |= window > 0 && seq_len[s] > window;
            }
            if (windowed) {
                attn_ref(&a, wrong, 0, 1, 0);
                expect_far("attention", cdt, view_err(&O.t, wh, wrong), tol, "sliding window ignored");
            }
            if (chunked) {
                attn_ref(&a, wrong, window, 0, 0);
                expect_far("attention", cdt, view_err(&O.t, wh, wrong), tol, "no causal mask");
            }
            if (a.softcap > 0) {
                attn_case nc = a;
                nc.softcap = 0;
                attn_ref(&nc, wrong, window, 1, 0);
                expect_far("attention", cdt, view_err(&O.t, wh, wrong), tol, "no soft-capping");
            }
            if (HKV > 1 && H > HKV) {
                attn_ref(&a, wrong, window, 1, 1);
                expect_far("attention", cdt, view_err(&O.t, wh, wrong), tol, "GQA heads grouped h % n_kv_heads");
            }
            free(wh);
        }
    }
    case_end();
    for (int p = 0; p < 2; p++) free(kin[p]), free(vin[p]), free(slots[p]);
    free(a.q0), free(a.kv0), free(a.Kh), free(a.Vh), free(a.Q), free(perm), free(bt), free(ref), free(wrong);
}

/* ---------------------------------------------------------------- silu_mul, add */

/* mode 0: separate strided out (gate and up: the halves of one [n, 2F] row, as a
 * fused gate_up); mode 1: in place, out == gate. */
static void t_silu_mul(int n, int F, int inplace) {
    float *g = malloc(sizeof(float) * (size_t)n * F), *u = malloc(sizeof(float) * (size_t)n * F);
    double *ref = malloc(sizeof(double) * (size_t)n * F);
    for (int i = 0; i < n * F; i++) {
        g[i] = 6 * frand(); /* silu over [-6, 6] */
        u[i] = frand();
        ref[i] = g[i] / (1.0 + exp(-(double)g[i])) * u[i];
    }
    dten G, U, O;
    if (inplace) {
        G = mk(BE_F32, n, F, 0, 3, g);
        U = mk(BE_F32, n, F, 0, 0, u);
        O = G;
    } else {
        G = mk(BE_F32, n, F, F, 0, g); /* [n, 2F]: gate | up */
        U = mk(BE_F32, n, F, F, F, u);
        O = mk(BE_F32, n, F, 5, 2, NULL);
    }
    if (!g_case_bad) {
        g_be->silu_mul(g_be->ctx, &G.t, &U.t, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("silu_mul", BE_F32, out_err(&O, wh, ref), TOL_F32, "n=%d F=%d%s", n, F, inplace ? ", in place" : "");
            free(wh);
        }
    }
    case_end();
    free(g), free(u), free(ref);
}

static void t_add(int n, int D, int inplace) {
    float *x = malloc(sizeof(float) * (size_t)n * D), *y = malloc(sizeof(float) * (size_t)n * D);
    double *ref = malloc(sizeof(double) * (size_t)n * D);
    for (int i = 0; i < n * D; i++) {
        x[i] = 4 * frand();
        y[i] = frand();
        ref[i] = (double)x[i] + y[i];
    }
    dten A = mk(BE_F32, n, D, inplace ? 0 : 3, 1, x), B = mk(BE_F32, n, D, inplace ? 0 : 6, 2, y);
    dten O = inplace ? A : mk(BE_F32, n, D, 1, 4, NULL);
    if (!g_case_bad) {
        g_be->add(g_be->ctx, &A.t, &B.t, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("add", BE_F32, out_err(&O, wh, ref), TOL_F32, "n=%d D=%d%s", n, D, inplace ? ", in place" : "");
            free(wh);
        }
    }
    case_end();
    free(x), free(y), free(ref);
}

/* ---------------------------------------------------------------- gelu_tanh_mul, scale, softcap */

/* GeGLU (Gemma): gelu with the tanh approximation of the gate, times up; layouts as t_silu_mul. */
static void t_gelu_tanh_mul(int n, int F, int inplace) {
    float *g = malloc(sizeof(float) * (size_t)n * F), *u = malloc(sizeof(float) * (size_t)n * F);
    double *ref = malloc(sizeof(double) * (size_t)n * F), *wrong = malloc(sizeof(double) * (size_t)n * F);
    for (int i = 0; i < n * F; i++) {
        double x = g[i] = 6 * frand();
        u[i] = frand();
        ref[i] = 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x))) * u[i];
        wrong[i] = x / (1.0 + exp(-x)) * u[i]; /* silu where gelu was wanted */
    }
    dten G = mk(BE_F32, n, F, inplace ? 0 : F, inplace ? 3 : 0, g), U = mk(BE_F32, n, F, inplace ? 0 : F, inplace ? 0 : F, u);
    dten O = inplace ? G : mk(BE_F32, n, F, 5, 2, NULL);
    if (!g_case_bad) {
        g_be->gelu_tanh_mul(g_be->ctx, &G.t, &U.t, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record("gelu_tanh_mul", BE_F32, out_err(&O, wh, ref), TOL_F32, "n=%d F=%d%s", n, F, inplace ? ", in place" : "");
            expect_far("gelu_tanh_mul", BE_F32, view_err(&O.t, wh, wrong), TOL_F32, "silu instead of gelu");
            free(wh);
        }
    }
    case_end();
    free(g), free(u), free(ref), free(wrong);
}

/* op 0: scale (out = x * s); op 1: softcap (out = tanh(x / s) * s), inputs large enough to saturate. */
static void t_unary(int op, int n, int D, int inplace) {
    float *x = malloc(sizeof(float) * (size_t)n * D), s = op ? 15.0f : 8.0f;
    double *ref = malloc(sizeof(double) * (size_t)n * D), *wrong = malloc(sizeof(double) * (size_t)n * D);
    for (int i = 0; i < n * D; i++) {
        x[i] = 40 * frand();
        ref[i] = op ? tanh((double)x[i] / s) * s : (double)x[i] * s;
        wrong[i] = op ? x[i] : x[i] / s; /* no capping; a division for the scale */
    }
    dten X = mk(BE_F32, n, D, inplace ? 0 : 3, 1, x), O = inplace ? X : mk(BE_F32, n, D, 2, 5, NULL);
    const char *name = op ? "softcap" : "scale";
    if (!g_case_bad) {
        if (op) g_be->softcap(g_be->ctx, &X.t, s, &O.t);
        else g_be->scale(g_be->ctx, &X.t, s, &O.t);
        if (sync_ok()) {
            unsigned char *wh = rd(&O);
            record(name, BE_F32, out_err(&O, wh, ref), TOL_F32, "n=%d D=%d%s", n, D, inplace ? ", in place" : "");
            expect_far(name, BE_F32, view_err(&O.t, wh, wrong), TOL_F32, op ? "no capping" : "x / s");
            free(wh);
        }
    }
    case_end();
    free(x), free(ref), free(wrong);
}

/* ---------------------------------------------------------------- all cases */

static void run_all(void) {
    static const be_dtype dts[] = {BE_F32, BE_F16, BE_BF16};
    rng = 0x9e3779b97f4a7c15ull; /* every backend sees the same inputs */

    for (int d = 0; d < 3; d++) {
        t_get_rows(dts[d], 50, 24, 1, 0, 0);
        t_get_rows(dts[d], 50, 37, 9, 3, 2);
    }

    t_rmsnorm(7, 48, 1, 1e-5f, 0.0f, 0);
    t_rmsnorm(1, 67, 1, 1e-6f, 0.0f, 0);
    t_rmsnorm(4, 40, 1, 1e-6f, 0.0f, 1);  /* in place (final norm of the selected rows) */
    t_rmsnorm(15, 8, 3, 1e-6f, 1.0f, 1);  /* head-wise, in place, w_offset 1 (Gemma-style weights) */
    t_rmsnorm(6, 16, 2, 1e-6f, 0.0f, 1);  /* head-wise (Qwen3 q_norm/k_norm) */
    g_rms_aligned = 1;
    t_rmsnorm(3, 64, 1, 1e-5f, 0.0f, 0);  /* 16-byte aligned rows */
    t_rmsnorm(2, 256, 1, 1e-5f, 0.0f, 1);  /* aligned, in place */
    g_rms_aligned = 0;
    t_add_rmsnorm(3, 64, 0, 4, 1);  /* aligned (the GPU's 16-byte path), norm over h as the runner does */
    t_add_rmsnorm(5, 37, 3, 1, 0);  /* odd width, strided, unaligned */

    static const int ns[] = {1, 2, 5, 17, 70};
    for (int d = 0; d < 3; d++)
        for (int i = 0; i < 5; i++)
            for (int bias = 0; bias < 2; bias++) {
                t_matmul(dts[d], ns[i], 67, 33, bias, 5, 3, 1, d == 0 && i == 2 && bias == 1);
                t_matmul(dts[d], ns[i], 128, 24, bias, 0, 0, 0, 0);
                t_matmul(dts[d], ns[i], 64, 7, bias, 0, 0, 0, 0); /* aligned rows, odd row count */
                if (ns[i] <= 8) /* more rows than the GPU's K-split matvec takes (4096): its other kernel */
                    t_matmul(dts[d], ns[i], 32, 4099, bias, 0, 0, 0, 0);
                t_matmul(dts[d], ns[i], 8, 3, bias, 1, 1, 2, 0);
            }
    for (int d = 0; d < 3; d++) {
        t_lora(dts[d], 40, 24, 4, 1);
        t_lora(dts[d], 67, 33, 16, 1); /* unaligned K, more than 8 dots per row */
        t_lora(dts[d], 64, 40, 8, 10);
        t_lora(dts[d], 64, 40, 8, 400); /* 4,400 rows: above the GPU's fused kernels' 4096 */
        t_lora(dts[d], 2056, 24, 12, 1); /* aligned K beyond one pass of 256 threads x 8, R not a multiple of 8 */
    }
    for (int d = 0; d < 3; d++) { /* several 128-token and 128-row tiles, partial ones, and K steps */
        t_matmul(dts[d], 200, 96, 150, 1, 0, 0, 0, 0);
        /* a few tokens, deep K: the GPU's split along K (rows of 2-4 KiB: not under test_vulkan.sh's
         * VLLMC_VULKAN_SPLIT_RANGE=1000, where one weight row must fit 1000 bytes) */
        if (!getenv("VLLMC_VULKAN_SPLIT_RANGE")) t_matmul(dts[d], 20, 1040, 40, 1, 0, 0, 0, 0);
        /* the shapes of the GPU's direct tensor-core GEMM (K and M multiples of 16): 16-, 32- and 64-token
         * tiles, a weight at an offset, partial tiles and K blocks, and its split along K */
        t_matmul(dts[d], 12, 80, 48, 1, 0, 0, 0, 0);
        t_matmul(dts[d], 33, 144, 32, 0, 0, 4, 8, 0);
        t_matmul(dts[d], 70, 208, 160, 1, 0, 0, 0, 0);
        if (!getenv("VLLMC_VULKAN_SPLIT_RANGE")) t_matmul(dts[d], 20, 1040, 48, 1, 0, 0, 0, 0);
    }

    if (g_be->argmax) {
        t_argmax(33, 0, 0);
        t_argmax(1000, 5, 7);
        t_argmax(4099, 0, 0);
        /* rows on 16 bytes (the GPU's vector loads): several passes of 2,048 vectors, a tail of V % 4 */
        t_argmax(36, 0, 0);
        t_argmax(20480, 0, 0);
        t_argmax(20483, 1, 4);
        /* rows of 4+ slices of 8,192: the GPU's two passes (slices, then their pairs) */
        t_argmax(40000, 0, 0);
        t_argmax(70001, 3, 4);
        t_topk(67, 1, 0, 0);
        t_topk(67, 64, 2, 3);
        t_topk(5000, 64, 0, 1); /* two slices */
        t_topk(70001, 50, 3, 4); /* 18 slices */
        t_topk(4096, 9, 0, 0);
    }
    static const int Ms[3] = {33, 16, 16};
    for (int d = 0; d < 3; d++) {
        const be_dtype same[3] = {dts[d], dts[d], dts[d]};
        t_matmul_multi(same, 1, 67, Ms);
        t_matmul_multi(same, 5, 67, Ms);
        t_matmul_multi(same, 70, 67, Ms);
    }
    t_matmul_multi(dts, 17, 40, Ms); /* one weight of each dtype */
    static const int Mq[3] = {33, 7, 7}, Mw[3] = {4100, 8, 8}, Mg[3] = {40, 24, 0}, Mp[3] = {200, 72, 40};
    /* A folded norm's x is not representable in a 16-bit dtype, so the CPU's 16-bit dot products (which
     * round activations to it: test_matmul bounds that) are off here and the f32 reference holds */
    cpu_kernels_no_dot16(1);
    for (int d = 0; d < 3; d++) {
        t_matmul_stacked(dts[d], 1, 64, Mq, 3, 1, 0); /* odd parts: a row pair across a part's end */
        t_matmul_stacked(dts[d], 3, 136, Mq, 3, 0, 1);
        t_matmul_stacked(dts[d], 8, 64, Mg, 2, 1, 1);
        t_matmul_stacked(dts[d], 2, 67, Mq, 3, 1, 1); /* unaligned K: the decomposition */
        t_matmul_stacked(dts[d], 12, 64, Mq, 3, 1, 1); /* more tokens than the decode kernels take */
        /* a prompt's q/k/v without biases: one tensor-core GEMM over the stacked weights where the GPU has one
         * (parts that end inside a 128-row tile) */
        t_matmul_stacked(dts[d], 130, 64, Mp, 3, 0, 0);
        t_matmul_stacked(dts[d], 70, 136, Mp, 2, 0, 1);
        if (!getenv("VLLMC_VULKAN_SPLIT_RANGE")) t_matmul_stacked(dts[d], 2, 16, Mw, 3, 1, 1); /* > 4096 rows */
        for (int act = BE_ACT_SILU; act <= BE_ACT_GELU_TANH; act++) {
            t_matmul_glu(dts[d], 1, 64, 40, act, 1, 0);
            t_matmul_glu(dts[d], 5, 136, 17, act, 1, 1);
            t_matmul_glu(dts[d], 3, 64, 40, act, 0, 1);
            t_matmul_glu(dts[d], 9, 64, 24, act, 1, 1); /* more tokens than the decode kernels take */
            t_matmul_glu(dts[d], 70, 64, 72, act, 1, 0); /* a prompt: one stacked tensor-core GEMM on a GPU */
            t_matmul_glu(dts[d], 2, 67, 24, act, 1, 0); /* unaligned K */
        }
        t_matmul_acc(dts[d], 1, 64, 40, 1);
        t_matmul_acc(dts[d], 8, 136, 33, 0);
        t_matmul_acc(dts[d], 3, 67, 24, 1); /* unaligned K: matmul into tmp, then add */
        t_matmul_acc(dts[d], 12, 64, 24, 1);
        if (!getenv("VLLMC_VULKAN_SPLIT_RANGE")) t_matmul_acc(dts[d], 2, 16, 4100, 1); /* > 4096 rows */
        if (!getenv("VLLMC_VULKAN_SPLIT_RANGE")) t_matmul_glu(dts[d], 4, 16, 4100, BE_ACT_SILU, 1, 1); /* > 4096 rows */
    }
    cpu_kernels_no_dot16(0);

    {
        const float inv_a[3] = {1.0f, 0.1f, 0.01f};
        const int32_t pos_a[5] = {0, 1, 7, 100, 511};
        t_rope(5, 3, 8, 6, inv_a, pos_a, 0, 24, 1.0f); /* partial rotary: 6 of 8 dims */
        t_rope(5, 3, 8, 4, inv_a, pos_a, 0, 24, 1.2247449f); /* longrope: half rotary, cos/sin scaled */
        float inv_b[8];
        for (int i = 0; i < 8; i++) inv_b[i] = (float)pow(10000.0, -2.0 * i / 16);
        /* positions up to 3000: cos/sin must be accurate there (Vulkan's built-in
         * sin/cos only promise 2^-11 absolute error, and that within [-pi, pi]) */
        const int32_t pos_b[4] = {3, 0, 1000, 3000};
        t_rope(4, 2, 16, 16, inv_b, pos_b, 64, 128, 1.0f); /* k inside a [q 64 | k 32 | v 32] row */
        t_rope(1, 4, 16, 16, inv_b, pos_b + 2, 0, 64, 1.0f); /* decode */
    }

    {
        const int32_t slot[7] = {5, -1, 39, 0, 17, -7, 22};
        for (int d = 0; d < 3; d++) t_kv_write(dts[d], 7, 24, 40, slot);
    }

    {
        static const int32_t sl[5] = {3, -1, 0, 6, 2};
        for (int d = 0; d < 3; d++) {
            t_rope_kv(dts[d], 5, 4, 2, 16, 16, sl, 8, 1.0f); /* full rotary, GQA, a skipped slot */
            t_rope_kv(dts[d], 5, 3, 1, 8, 6, sl, 8, 1.0f);   /* partial rotary (6 of 8 dims) */
            t_rope_kv(dts[d], 5, 4, 2, 16, 8, sl, 8, 1.2247449f); /* longrope: half rotary, cos/sin scaled */
        }
    }

    {
        static const int sl3[3] = {5, 17, 30}, ql3[3] = {5, 3, 1}; /* a full prefill, a chunk, a decode */
        static const int sl4[4] = {1, 9, 16, 23}, ql4[4] = {1, 1, 1, 1}; /* a decode batch */
        static const int sl2[2] = {33, 7}, ql2[2] = {4, 7};
        /* decode rows of long contexts: split over the context on the GPU (128-key chunks, a partial one at the
         * end, V loads issued VU at a time past the chunk's end), the splits merged by attn_combine */
        static const int slL[2] = {300, 521}, qlL[2] = {1, 1};
        for (int d = 0; d < 3; d++) {
            t_attention(dts[d], 0, 8, 2, 64, 2, slL, qlL);
            t_attention(dts[d], 0, 8, 2, 128, 2, slL, qlL);
        }
        /* prompt rows at head_dim 64 and 128 (attn_prefill.comp on the GPU for 16-bit caches: blocks of rows x
         * query heads): a block spanning two sequences, a chunk that continues a context, a decode row beside */
        static const int slP[3] = {45, 70, 9}, qlP[3] = {45, 37, 1}, slM[2] = {600, 300}, qlM[2] = {24, 1};
        for (int d = 0; d < 3; d++) {
            t_attention(dts[d], 0, 8, 2, 128, 2, slM, qlM); /* few rows: the decode row's context in splits */
            t_attention(dts[d], 0, 8, 2, 128, 3, slP, qlP);  /* 4 heads per KV head: blocks of 8 rows */
            t_attention(dts[d], 20, 4, 4, 64, 3, slP, qlP);  /* no GQA (32 rows a block), a sliding window */
            t_attention(dts[d], 0, 14, 2, 64, 3, slP, qlP);  /* 7 heads per KV head: 4 rows, 28 query vectors */
            t_attention(dts[d], 0, 40, 1, 64, 2, slP, qlP);  /* 40 heads on one: head blocks of 32 and 8 */
            g_softcap = 1.5f;
            t_attention(dts[d], 9, 8, 2, 128, 3, slP, qlP);
            g_softcap = 0;
        }
        for (int d = 0; d < 3; d++) {
            t_attention(dts[d], 0, 4, 2, 16, 3, sl3, ql3);
            t_attention(dts[d], 6, 4, 2, 16, 3, sl3, ql3);
            t_attention(dts[d], 0, 20, 2, 16, 3, sl3, ql3); /* 10 heads per KV head */
            t_attention(dts[d], 3, 7, 1, 16, 3, sl3, ql3);
            t_attention(dts[d], 0, 8, 2, 16, 4, sl4, ql4);
            t_attention(dts[d], 5, 4, 2, 128, 2, sl2, ql2);
            g_softcap = 1.5f; /* Gemma 2: tanh bites at this scale (scores reach ~3) */
            t_attention(dts[d], 6, 4, 2, 16, 3, sl3, ql3);
            t_attention(dts[d], 0, 8, 2, 16, 4, sl4, ql4);
            g_softcap = 0;
        }
    }

    t_silu_mul(5, 40, 0);
    t_silu_mul(1, 67, 0);
    t_silu_mul(5, 40, 1);
    t_add(5, 48, 0);
    t_add(1, 67, 0);
    t_add(7, 48, 1);
    t_gelu_tanh_mul(5, 40, 0);
    t_gelu_tanh_mul(1, 67, 0);
    t_gelu_tanh_mul(5, 40, 1);
    for (int op = 0; op < 2; op++) {
        t_unary(op, 5, 48, 0);
        t_unary(op, 3, 67, 1);
    }
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int main(void) {
    static const char *names[] = {"cpu", "gpu"};
    const char *want_gpu = getenv("VLLMC_TEST_GPU");
    for (int i = 0; i < 2; i++) {
        be_backend *be = NULL;
        int rc = be_open(names[i], &be);
        if (rc != 0 || !be) {
            if (i == 0 || (want_gpu && !strcmp(want_gpu, "1")))
                CHECK_MSG(0, "%s: be_open failed: %s", names[i], vc_errmsg());
            else
                printf("%s: skipped (%s)\n", names[i], vc_errmsg());
            continue;
        }
        g_be = be;
        if (be->info) {
            be_info info;
            if (be->info(be->ctx, &info) == 0) printf("%s: %s\n", names[i], info.desc);
        }
        int failures_before = test_failures;
        double t0 = now_s();
        run_all();
        printf("%s: %d failed checks, %.2f s\n", names[i], test_failures - failures_before, now_s() - t0);
        print_stats(names[i]);
        be_free(be);
        g_be = NULL;
    }
    TEST_END();
}
