/* test_act: the vector activation kernels (act_avx2.c on x86-64 with AVX2, act_neon.c on aarch64)
 * against the portable ones over libm (act.c), element for element:
 *  - exp and tanh over every 4099th f32 bit pattern (all signs and magnitudes, subnormals, inf, NaN)
 *    and densely over [-20, 20]: at most EXP_ULP / TANH_ULP ulp from glibc, NaN where it is NaN;
 *  - the special values: +-0 (tanh keeps -0), +-inf, NaN, overflow to inf, underflow to 0, tanh's
 *    saturation at exactly +-1, silu of large negatives at -0 (no NaN);
 *  - silu_mul, softcap, swiglu_clamp (NaN and clamps included) in ulp of the result; gelu_tanh_mul in
 *    units of ulp(result) + |0.5 x u| 2^-24 (1 + tanh cancels for negative x in both versions, so
 *    tanh's own error, a few 2^-24, is what the result can carry); the softmax's exp_sum;
 *  - every length 0..19 (the padded tails) and in-place use;
 *  - the dispatch: act_get() is the vector table, portable under act_force_portable() and under
 *    cpu_kernels_force_scalar().
 * VLLMC_TEST_QUICK=1 (qemu) sweeps every 65521st pattern; VLLMC_ACT_STRIDE=N sets the stride (1: all
 * 2^32 floats, exp and tanh only: ~2 min on x86-64). */
#include <float.h>
#include <stdint.h>
#include <string.h>

#include "backend/cpu/act.h"
#include "backend/cpu/kernels.h"
#include "test.h"

/* the bounds; the measured worst cases are printed */
#define EXP_ULP 2.0
#define TANH_ULP 4.0
#define SILU_ULP 6.0
#define SOFTCAP_ULP 6.0
#define SWIGLU_ULP 6.0
#define GELU_UNITS 8.0

static const act_ops *V; /* the vector table under test */
static const act_ops *P = &act_portable;

static float from_bits(uint32_t b) {
    float f;
    memcpy(&f, &b, 4);
    return f;
}

/* position on the number line in ulps (-0 and +0 both 0) */
static int64_t ord(float f) {
    int32_t i;
    memcpy(&i, &f, 4);
    return i < 0 ? -(int64_t)(i & 0x7fffffff) : (int64_t)i;
}

/* ulps between a and b; both NaN: 0; one NaN: infinite */
static double ulps(float a, float b) {
    if (a != a || b != b) return (a != a && b != b) ? 0 : INFINITY;
    int64_t d = ord(a) - ord(b);
    return (double)(d < 0 ? -d : d);
}

static double ulp_of(float p) {
    float a = fabsf(p);
    if (a != a || a == INFINITY) return INFINITY;
    return (double)nextafterf(a, INFINITY) - (double)a;
}

typedef struct {
    const char *name;
    double worst;
    float at, at2; /* inputs of the worst case */
    long n;
} stat;

static void note(stat *s, double e, float x, float x2) {
    s->n++;
    if (e > s->worst || (e != e && s->worst == s->worst)) s->worst = e != e ? INFINITY : e, s->at = x, s->at2 = x2;
}

static void report(const stat *s, double bound, const char *unit) {
    printf("%s %-14s %9ld inputs, worst %.3g %s at (%.9g, %.9g)  (bound %g)\n", V->name, s->name, s->n, s->worst, unit,
           (double)s->at, (double)s->at2, bound);
    CHECK_MSG(s->worst <= bound, "%s %s: %.3g %s > %g at (%.9g, %.9g)", V->name, s->name, s->worst, unit, bound,
              (double)s->at, (double)s->at2);
}

/* ---- inputs ---- */

enum { CHUNK = 4096 };
static float xs[CHUNK], us[CHUNK], gu[2 * CHUNK], yv[CHUNK], yp[CHUNK];

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(float lo, float hi) {
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return lo + (hi - lo) * (float)((double)(rng >> 11) / 9007199254740992.0);
}

/* Calls fn(n) for chunks of inputs in xs: bit patterns 0, stride, 2 stride, ... < 2^32, then a dense
 * grid over [-20, 20]. */
static void sweep(uint64_t stride, double grid_step, void (*fn)(int64_t n, void *), void *arg) {
    int64_t k = 0;
    for (uint64_t b = 0; b < (1ull << 32); b += stride) {
        xs[k++] = from_bits((uint32_t)b);
        if (k == CHUNK) fn(k, arg), k = 0;
    }
    for (double x = -20; x <= 20; x += grid_step) {
        xs[k++] = (float)x;
        if (k == CHUNK) fn(k, arg), k = 0;
    }
    if (k) fn(k, arg);
}

/* ---- exp, tanh ---- */

static void chunk_exp(int64_t n, void *vs) {
    V->exp(yv, xs, n);
    P->exp(yp, xs, n);
    for (int64_t i = 0; i < n; i++) note(vs, ulps(yv[i], yp[i]), xs[i], 0);
}

static void chunk_tanh(int64_t n, void *vs) {
    V->tanh(yv, xs, n);
    P->tanh(yp, xs, n);
    for (int64_t i = 0; i < n; i++) note(vs, ulps(yv[i], yp[i]), xs[i], 0);
}

/* exp_sum: x - mx spread over the range where exp is finite and nonzero, mx varied */
static void chunk_exp_sum(int64_t n, void *vs) {
    stat *s = vs;
    float mx = frand(-30, 30);
    for (int64_t i = 0; i < n; i++) yv[i] = yp[i] = xs[i] * 0.25f + mx; /* x - mx = xs / 4 */
    float sv = V->exp_sum(yv, mx, n), sp = P->exp_sum(yp, mx, n);
    double ref = 0;
    for (int64_t i = 0; i < n; i++) {
        note(&s[0], ulps(yv[i], yp[i]), xs[i] * 0.25f + mx, mx);
        ref += yv[i];
    }
    /* the sum of the returned x, in lanes of 8 (4): at most n/8 + 3 roundings of 2^-24 of the total, in
     * units of that; the portable sum (one lane) may be 8 times further off */
    double e = !isfinite(sp) ? (ulps(sv, sp) == 0 ? 0 : INFINITY)
               : ref == 0    ? (sv == 0 ? 0 : INFINITY)
                             : fabs((double)sv - ref) / (((double)n / 8 + 3) * 0x1p-24 * ref);
    note(&s[1], e, mx, (float)n);
}

/* ---- the compound ops: xs is the gate, us random ups ---- */

static void chunk_silu(int64_t n, void *vs) {
    for (int64_t i = 0; i < n; i++) us[i] = frand(-4, 4);
    V->silu_mul(yv, xs, us, n);
    P->silu_mul(yp, xs, us, n);
    for (int64_t i = 0; i < n; i++) note(vs, ulps(yv[i], yp[i]), xs[i], us[i]);
}

static void chunk_gelu(int64_t n, void *vs) {
    for (int64_t i = 0; i < n; i++) us[i] = frand(-4, 4);
    V->gelu_tanh_mul(yv, xs, us, n);
    P->gelu_tanh_mul(yp, xs, us, n);
    for (int64_t i = 0; i < n; i++) {
        double e;
        if (yv[i] != yv[i] || yp[i] != yp[i] || isinf(yv[i]) || isinf(yp[i])) e = ulps(yv[i], yp[i]);
        else e = fabs((double)yv[i] - yp[i]) / (ulp_of(yp[i]) + fabs(0.5 * xs[i] * us[i]) * 0x1p-24);
        note(vs, e, xs[i], us[i]);
    }
}

static void chunk_softcap(int64_t n, void *vs) {
    static const float caps[] = {50.0f, 30.0f, 1.5f, 0.75f};
    for (int c = 0; c < 4; c++) {
        V->softcap(yv, xs, caps[c], n);
        P->softcap(yp, xs, caps[c], n);
        for (int64_t i = 0; i < n; i++) note(vs, ulps(yv[i], yp[i]), xs[i], caps[c]);
    }
}

static void chunk_swiglu(int64_t n, void *vs) {
    for (int64_t i = 0; i < n; i++) gu[2 * i] = xs[i], gu[2 * i + 1] = i % 7 == 3 ? xs[n - 1 - i] : frand(-9, 9);
    V->swiglu_clamp(yv, gu, 1.702f, 7.0f, n);
    P->swiglu_clamp(yp, gu, 1.702f, 7.0f, n);
    for (int64_t i = 0; i < n; i++) note(vs, ulps(yv[i], yp[i]), gu[2 * i], gu[2 * i + 1]);
}

/* ---- special values ---- */

static int same_class(float v, float p) {
    if (p != p) return v != v;
    if (isinf(p)) return v == p;
    if (p == 0) return v == 0 && signbit(v) == signbit(p);
    return isfinite(v) && v != 0;
}

/* 1 (and a line on stderr) when not ok */
static int wrong(const char *fn, float x, float v, float p, int ok) {
    if (!ok) fprintf(stderr, "  %s(%.9g): %.9g, libm %.9g\n", fn, (double)x, (double)v, (double)p);
    return !ok;
}

static void t_specials(void) {
    const float sp[] = {0.0f, -0.0f, INFINITY, -INFINITY, NAN, -NAN, FLT_MAX, -FLT_MAX, FLT_MIN, -FLT_MIN,
                        0x1p-149f, -0x1p-149f, 1e-20f, -1e-20f, 88.72283f, 88.72284f, 88.7229f, 89.0f, 100.0f,
                        -87.33654f, -87.3366f, -103.972f, -103.973f, -104.0f, -150.0f, -1e10f, 0.55f, -0.55f,
                        0.5499999f, 9.0f, -9.0f, 9.1f, -9.1f, 20.0f, -20.0f, 45.0f, -45.0f, 1e30f, -1e30f};
    enum { N = sizeof sp / sizeof sp[0] };
    float yv2[N], yp2[N], u1[N];
    int bad = 0;
    V->exp(yv2, sp, N);
    P->exp(yp2, sp, N);
    for (int i = 0; i < N; i++) {
        int ok = same_class(yv2[i], yp2[i]) && ulps(yv2[i], yp2[i]) <= EXP_ULP;
        bad += wrong("exp", sp[i], yv2[i], yp2[i], ok);
    }
    V->tanh(yv2, sp, N);
    P->tanh(yp2, sp, N);
    for (int i = 0; i < N; i++) {
        int ok = same_class(yv2[i], yp2[i]) && ulps(yv2[i], yp2[i]) <= TANH_ULP;
        if (fabsf(sp[i]) >= 9.1f) ok = ok && yv2[i] == (sp[i] > 0 ? 1.0f : -1.0f); /* saturated: exactly +-1 */
        bad += wrong("tanh", sp[i], yv2[i], yp2[i], ok);
    }
    for (int i = 0; i < N; i++) u1[i] = 1.0f;
    V->silu_mul(yv2, sp, u1, N);
    P->silu_mul(yp2, sp, u1, N);
    for (int i = 0; i < N; i++) {
        int ok = same_class(yv2[i], yp2[i]) && ulps(yv2[i], yp2[i]) <= SILU_ULP;
        if (sp[i] < -89 && sp[i] != -INFINITY) ok = ok && yv2[i] == 0 && signbit(yv2[i]); /* -0, not NaN */
        bad += wrong("silu", sp[i], yv2[i], yp2[i], ok);
    }
    V->gelu_tanh_mul(yv2, sp, u1, N);
    P->gelu_tanh_mul(yp2, sp, u1, N);
    for (int i = 0; i < N; i++) {
        /* cancellation: a zero's sign may differ */
        int ok = same_class(yv2[i], yp2[i]) || (yp2[i] == 0 && yv2[i] == 0);
        ok = ok && (yp2[i] != yp2[i] || isinf(yp2[i]) ||
                    fabs((double)yv2[i] - yp2[i]) <= GELU_UNITS * (ulp_of(yp2[i]) + fabs(0.5 * sp[i]) * 0x1p-24));
        bad += wrong("gelu", sp[i], yv2[i], yp2[i], ok);
    }
    V->softcap(yv2, sp, 30.0f, N);
    P->softcap(yp2, sp, 30.0f, N);
    for (int i = 0; i < N; i++) {
        int ok = same_class(yv2[i], yp2[i]) && ulps(yv2[i], yp2[i]) <= SOFTCAP_ULP;
        bad += wrong("softcap", sp[i], yv2[i], yp2[i], ok);
    }
    float g2[2 * N];
    for (int i = 0; i < N; i++) g2[2 * i] = sp[i], g2[2 * i + 1] = sp[N - 1 - i];
    V->swiglu_clamp(yv2, g2, 1.702f, 7.0f, N);
    P->swiglu_clamp(yp2, g2, 1.702f, 7.0f, N);
    for (int i = 0; i < N; i++) {
        int ok = same_class(yv2[i], yp2[i]) && ulps(yv2[i], yp2[i]) <= SWIGLU_ULP;
        if (!ok)
            bad++, fprintf(stderr, "  swiglu(%.9g, %.9g): %.9g, libm %.9g\n", (double)g2[2 * i], (double)g2[2 * i + 1],
                           (double)yv2[i], (double)yp2[i]);
    }
    CHECK_MSG(bad == 0, "%s: %d special values wrong (above)", V->name, bad);
    printf("%s special values: %d inputs through exp, tanh, silu, gelu, softcap, swiglu: %s\n", V->name, N,
           bad ? "FAILED" : "as libm");
}

/* every length 0..19 at odd offsets (the tails) and in place: the same as the long-row results */
static void t_lengths(void) {
    float x[64], u[64], g2[128], ref[64], out[64 + 2];
    for (int i = 0; i < 64; i++) x[i] = frand(-12, 12), u[i] = frand(-2, 2), g2[2 * i] = x[i], g2[2 * i + 1] = u[i] * 5;
    int bad = 0;
    for (int op = 0; op < 6; op++) {
        /* op 0 exp, 1 tanh, 2 silu, 3 gelu, 4 softcap, 5 swiglu: the 64-long row is the reference */
#define RUN(y, off, n)                                                       \
    do {                                                                     \
        if (op == 0) V->exp(y, x + (off), n);                                \
        if (op == 1) V->tanh(y, x + (off), n);                               \
        if (op == 2) V->silu_mul(y, x + (off), u + (off), n);                \
        if (op == 3) V->gelu_tanh_mul(y, x + (off), u + (off), n);           \
        if (op == 4) V->softcap(y, x + (off), 3.0f, n);                      \
        if (op == 5) V->swiglu_clamp(y, g2 + 2 * (off), 1.702f, 7.0f, n);    \
    } while (0)
        RUN(ref, 0, 64);
        for (int n = 0; n < 20; n++)
            for (int off = 1; off < 4; off++) {
                for (int i = 0; i < 66; i++) out[i] = 12345.0f;
                RUN(out + 1, off, n);
                for (int i = 0; i < n; i++) bad += memcmp(&out[1 + i], &ref[off + i], 4) != 0;
                bad += out[0] != 12345.0f || out[1 + n] != 12345.0f; /* nothing written outside */
            }
#undef RUN
    }
    /* in place: y == the gate / x */
    float a[37], b[37], c[37];
    for (int i = 0; i < 37; i++) a[i] = b[i] = frand(-8, 8), c[i] = frand(-2, 2);
    float r1[37];
    V->silu_mul(r1, a, c, 37);
    V->silu_mul(b, b, c, 37);
    bad += memcmp(r1, b, sizeof r1) != 0;
    for (int i = 0; i < 37; i++) b[i] = a[i];
    V->softcap(r1, a, 2.0f, 37);
    V->softcap(b, b, 2.0f, 37);
    bad += memcmp(r1, b, sizeof r1) != 0;
    for (int i = 0; i < 37; i++) b[i] = a[i];
    float s1 = V->exp_sum(b, 1.0f, 37), s2 = 0;
    for (int i = 0; i < 37; i++) a[i] -= 1.0f;
    V->exp(r1, a, 37);
    for (int i = 0; i < 37; i++) s2 += r1[i];
    bad += memcmp(r1, b, sizeof r1) != 0;
    bad += !(fabsf(s1 - s2) <= 1e-6f * s2);
    for (int n = 0; n < 20; n++) { /* exp_sum's tail lanes add nothing */
        for (int i = 0; i < 20; i++) b[i] = frand(-3, 0);
        float s = V->exp_sum(b, 0.0f, n), t = 0;
        for (int i = 0; i < n; i++) t += b[i];
        bad += !(fabsf(s - t) <= 1e-6f * (t + 1e-30f)) && n > 0;
        bad += n == 0 && s != 0;
    }
    CHECK_MSG(bad == 0, "%s: %d mismatches between tails / in-place use and whole rows", V->name, bad);
    printf("%s lengths 0..19 at offsets 1..3, in place, exp_sum tails: %s\n", V->name, bad ? "FAILED" : "ok");
}

static void t_dispatch(void) {
    CHECK_MSG(act_get() == V, "act_get() is %s, want %s", act_get()->name, V->name);
    act_force_portable(1);
    CHECK(act_get() == &act_portable);
    act_force_portable(0);
    cpu_kernels_force_scalar(1);
    CHECK(act_get() == &act_portable);
    cpu_kernels_force_scalar(0);
    CHECK(act_get() == V);
    printf("dispatch: %s; portable under act_force_portable and cpu_kernels_force_scalar\n", act_get()->name);
}

int main(void) {
#if defined(__x86_64__)
    if (!cpu_have_avx2()) {
        printf("skipped: this CPU has no AVX2+FMA (only the portable kernels run)\n");
        CHECK(act_get() == &act_portable);
        TEST_END();
    }
    V = &act_avx2;
#elif defined(__aarch64__) && defined(__ARM_NEON)
    V = &act_neon;
#else
    printf("skipped: no vector activation kernels on this architecture\n");
    CHECK(act_get() == &act_portable);
    TEST_END();
#endif
    const char *q = getenv("VLLMC_TEST_QUICK"), *st = getenv("VLLMC_ACT_STRIDE");
    int quick = q && *q == '1';
    uint64_t stride = quick ? 65521 : 4099;
    if (st && atoll(st) > 0) stride = (uint64_t)atoll(st);
    double step = quick ? 1.0 / 64 : 1.0 / 4096;

    stat s_exp = {"exp", 0, 0, 0, 0}, s_tanh = {"tanh", 0, 0, 0, 0}, s_silu = {"silu_mul", 0, 0, 0, 0},
         s_gelu = {"gelu_tanh_mul", 0, 0, 0, 0}, s_cap = {"softcap", 0, 0, 0, 0}, s_sw = {"swiglu_clamp", 0, 0, 0, 0},
         s_es[2] = {{"exp_sum (x)", 0, 0, 0, 0}, {"exp_sum (sum)", 0, 0, 0, 0}};
    sweep(stride, step, chunk_exp, &s_exp);
    report(&s_exp, EXP_ULP, "ulp");
    sweep(stride, step, chunk_tanh, &s_tanh);
    report(&s_tanh, TANH_ULP, "ulp");
    if (stride == 1) TEST_END(); /* the exhaustive run: exp and tanh only */
    sweep(stride, step, chunk_silu, &s_silu);
    report(&s_silu, SILU_ULP, "ulp");
    sweep(stride, step, chunk_gelu, &s_gelu);
    report(&s_gelu, GELU_UNITS, "units");
    sweep(stride, step, chunk_softcap, &s_cap);
    report(&s_cap, SOFTCAP_ULP, "ulp");
    sweep(stride, step, chunk_swiglu, &s_sw);
    report(&s_sw, SWIGLU_ULP, "ulp");
    sweep(stride * 4, step * 4, chunk_exp_sum, s_es);
    report(&s_es[0], EXP_ULP, "ulp");
    report(&s_es[1], 1, "units");
    t_specials();
    t_lengths();
    t_dispatch();
    TEST_END();
}
