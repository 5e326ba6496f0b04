/* test.h: the few macros the unit tests share. A failed CHECK prints the
 * location and the expression and counts a failure; TEST_END returns non-zero
 * if anything failed. */
#ifndef VLLMC_TEST_H
#define VLLMC_TEST_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

static int test_failures;

#define CHECK(cond)                                                              \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (!(cond)) {                                                           \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                        \
            fputc('\n', stderr);                                                 \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                    \
    do {                                                                         \
        double a_ = (a), b_ = (b);                                               \
        if (!(fabs(a_ - b_) <= (tol))) {                                         \
            fprintf(stderr, "%s:%d: CHECK_NEAR failed: %s=%g %s=%g tol=%g\n",    \
                    __FILE__, __LINE__, #a, a_, #b, b_, (double)(tol));          \
            test_failures++;                                                     \
        }                                                                        \
    } while (0)

#define TEST_END()                                                               \
    do {                                                                         \
        if (test_failures) {                                                     \
            fprintf(stderr, "%d check(s) failed\n", test_failures);             \
            return 1;                                                            \
        }                                                                        \
        printf("ok\n");                                                          \
        return 0;                                                                \
    } while (0)

#endif
