/* bench_matmul: microbenchmark of cpu_matmul against the machine's ceilings.
 * Not part of `make test`. Build by hand from the repository root:
 *
 *   gcc -std=c11 -O2 -D_GNU_SOURCE -Isrc -pthread -o build/bench_matmul tools/bench_matmul.c \
 *       src/backend/cpu/matmul.c src/backend/cpu/measure.c src/base/threadpool.c src/base/err.c \
 *       build/obj/src/backend/cpu/matmul_avx2.o build/obj/src/backend/cpu/measure_avx2.o -lm
 *   (or compile the two *_avx2.c files with -mavx2 -mfma -mf16c; or link build/libvllmc.a)
 *
 * Usage: bench_matmul [-n N]... [-t dtype]... [-s MxK]... [-b bind] [-j threads] [-q] [--no-avx512]
 *   Default: n = 1 and 128, dtypes bf16 f16 f32, the Qwen2-0.5B / 1.5B-like shapes.
 *   Every figure is the best of 8 rounds (the machine may be shared). n <= 8 cycles the
 *   weights through >= 512 MiB of copies so they come from DRAM, as in a real decode
 *   step, and reports weight GB/s against a triad run just before each round ("local
 *   triad", the same neighbours); every row also shows GFLOP/s (2*n*M*K / time) and
 *   the fraction of the peak FMA figure.
 *   -q skips the triad/peak measurements; --no-avx512 keeps the AVX2 kernels where AVX-512 exists.
 *   Link build/obj/src/backend/cpu/matmul_avx512.o too (compiled with -mavx512f -mavx512bw). */
#include "backend/cpu/kernels.h"
#include "base/err.h"
#include "base/half.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static be_dtype parse_dt(const char *s) {
    if (!strcmp(s, "f16")) return BE_F16;
    if (!strcmp(s, "bf16")) return BE_BF16;
    if (!strcmp(s, "f32")) return BE_F32;
    fprintf(stderr, "unknown dtype %s\n", s);
    exit(2);
}

int main(int argc, char **argv) {
    int ns[16], nn = 0, nd = 0, nsh = 0, nthreads = 0, quick = 0;
    be_dtype dts[3];
    int shapes[32][2];
    const char *bind = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-n") && i + 1 < argc && nn < 16) ns[nn++] = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-t") && i + 1 < argc && nd < 3) dts[nd++] = parse_dt(argv[++i]);
        else if (!strcmp(argv[i], "-s") && i + 1 < argc && nsh < 32) {
            if (sscanf(argv[++i], "%dx%d", &shapes[nsh][0], &shapes[nsh][1]) == 2) nsh++;
        } else if (!strcmp(argv[i], "-b") && i + 1 < argc) bind = argv[++i];
        else if (!strcmp(argv[i], "-j") && i + 1 < argc) nthreads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "-q")) quick = 1;
        else if (!strcmp(argv[i], "--no-avx512")) cpu_kernels_no_avx512(1);
        else {
            fprintf(stderr, "usage: %s [-n N]... [-t f32|f16|bf16]... [-s MxK]... [-b bind] [-j threads] [-q]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!nn) {
        ns[nn++] = 1;
        ns[nn++] = 128;
    }
    if (!nd) {
        dts[nd++] = BE_BF16;
        dts[nd++] = BE_F16;
        dts[nd++] = BE_F32;
    }
    static const int def_shapes[][2] = {{4864, 896}, {896, 4864}, {151936, 896}, {8192, 2048}, {2048, 8192}};
    if (!nsh)
        for (size_t i = 0; i < sizeof def_shapes / sizeof def_shapes[0]; i++) {
            shapes[nsh][0] = def_shapes[i][0];
            shapes[nsh][1] = def_shapes[i][1];
            nsh++;
        }

    tp_pool *pool;
    if (tp_create(&pool, nthreads, bind) != 0) {
        fprintf(stderr, "tp_create: %s\n", vc_errmsg());
        return 1;
    }
    printf("pool: %s; kernels: %s\n", tp_describe(pool), cpu_kernels_isa());
    double triad = 0, peak = 0;
    if (!quick) {
        triad = cpu_measure_triad_gbs(pool, (size_t)256 << 20, 10);
        peak = cpu_measure_peak_gflops(pool);
        printf("triad: %.1f GB/s (3 x 256 MiB arrays, best of 10)\npeak FMA: %.1f GFLOP/s\n", triad, peak);
    }

    for (int si = 0; si < nsh; si++)
        for (int di = 0; di < nd; di++)
            for (int ni = 0; ni < nn; ni++) {
                int M = shapes[si][0], K = shapes[si][1], n = ns[ni];
                be_dtype dt = dts[di];
                size_t wbytes = (size_t)M * K * be_dtype_size(dt);
                /* decode: enough copies that the weights never stay in the 32 MiB L3 */
                int copies = n <= 8 ? (int)(((size_t)512 << 20) / wbytes) + 1 : 1;
                void **w = malloc(sizeof(void *) * (size_t)copies);
                float *x = malloc(sizeof(float) * (size_t)n * K);
                float *y = malloc(sizeof(float) * (size_t)n * M);
                for (int c = 0; c < copies; c++) {
                    w[c] = malloc(wbytes);
                    if (c == 0) {
                        for (size_t i = 0; i < (size_t)M * K; i++) {
                            float v = frand() * 0.05f;
                            if (dt == BE_F32) ((float *)w[0])[i] = v;
                            else if (dt == BE_F16) ((uint16_t *)w[0])[i] = vc_f32_to_f16(v);
                            else ((uint16_t *)w[0])[i] = vc_f32_to_bf16(v);
                        }
                    } else memcpy(w[c], w[0], wbytes);
                }
                for (size_t i = 0; i < (size_t)n * K; i++) x[i] = frand();
                /* warm up, then run for >= 1 s (at least 3 calls) */
                for (int c = 0; c < copies; c++) cpu_matmul(pool, x, K, n, K, w[c], dt, K, M, NULL, y, M);
                /* best of 8 rounds of >= 0.15 s (>= 2 calls): the machine is shared and
                 * noisy. For decode, a triad runs before each round and the best of those
                 * is this row's reference ("local triad"), so both see the same neighbours. */
                double per = 1e30, ltriad = 0;
                long calls = 0;
                for (int round = 0; round < 8; round++) {
                    if (!quick && n <= 8) {
                        double tg = cpu_measure_triad_gbs(pool, (size_t)128 << 20, 2);
                        if (tg > ltriad) ltriad = tg;
                    }
                    long c0 = 0;
                    double t0 = now_s(), el = 0;
                    while (el < 0.15 || c0 < 2) {
                        cpu_matmul(pool, x, K, n, K, w[calls++ % copies], dt, K, M, NULL, y, M);
                        c0++;
                        el = now_s() - t0;
                    }
                    if (el / (double)c0 < per) per = el / (double)c0;
                }
                double gbs = (double)wbytes / per / 1e9, gflops = 2.0 * n * (double)M * K / per / 1e9;
                printf("M=%6d K=%5d %-4s n=%4d: %9.1f us  %6.1f GB/s", M, K, dt == BE_F32 ? "f32" : dt == BE_F16 ? "f16" : "bf16", n, per * 1e6, gbs);
                if (ltriad > 0) printf(" (%3.0f%% of local triad %.1f)", 100.0 * gbs / ltriad, ltriad);
                else if (triad > 0) printf(" (%3.0f%% triad)", 100.0 * gbs / triad);
                printf("  %6.1f GFLOP/s", gflops);
                if (peak > 0) printf(" (%3.0f%% peak)", 100.0 * gflops / peak);
                printf("\n");
                fflush(stdout);
                for (int c = 0; c < copies; c++) free(w[c]);
                free(w);
                free(x);
                free(y);
            }
    tp_free(pool);
    return 0;
}
