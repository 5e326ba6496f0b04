/* stack: the calling thread's stack bounds, found once per thread, and the cheap check (stack.h).
 *
 * The reserve is what may still be used below a check that said "not low", until the next check:
 * the deepest chain of frames between two checks, with the leaf calls at its end (vsnprintf, the
 * arena's calloc, pcre2_match, glibc's lookup of the bounds on a thread's first check). Measured on
 * x86-64 with a --wrap=vc_stack_low shim that paints the stack below each check and finds, at the
 * next check, the lowest byte written since, over test_template, test_template_errors,
 * test_tokenizer, test_stack_guard and every template in tests/data/chat_templates: the deepest
 * chain is 20 KiB, tok_pretok_run -> pcre2_match (which keeps its first 20 KiB of backtracking
 * frames on the stack) -> tok_pretok_run, under gcc -O2 and under clang -O1 with ASan+UBSan alike
 * (libpcre2 is not instrumented). Template chains are smaller: 3.6 KiB with gcc -O2 (a filter or
 * eval down to write_val and vsnprintf), 7 KiB under ASan, whose frames carry redzones. So 64 KiB
 * is three times the worst measured chain, and 256 KiB under ASan leaves room for its larger
 * frames on paths the corpus does not reach (error paths, interceptors).
 *
 * A thread whose whole stack is not much larger than the reserve (128 KiB under ASan) would be
 * low from its first frame; there the reserve is half of the stack instead, which still covers
 * the measured chains.
 *
 * Main thread: glibc reports the RLIMIT_STACK-sized region below the stack's top. With an
 * unlimited RLIMIT_STACK it reports the whole gap down to the next mapping, part of which the
 * kernel keeps as a guard gap: there the check can come too late. vllmc renders templates on its
 * server's threads, whose stacks are exact. */
#include "base/stack.h"

#include <pthread.h>
#include <stdint.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VC_STACK_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define VC_STACK_ASAN 1
#endif

#ifdef VC_STACK_ASAN
#define RESERVE ((uintptr_t)256 << 10) /* bytes */
#else
#define RESERVE ((uintptr_t)64 << 10) /* bytes */
#endif

/* This thread's stack: lo is its lowest usable address (above the guard page), reserve the bytes
 * above lo that count as low. Unknown bounds leave lo = reserve = 0: never low. */
typedef struct {
    uintptr_t lo, reserve;
    int ready;
} stack_info;

static _Thread_local stack_info t_stack;

/* The calling thread's stack as [*lo, *lo + *size); -1 where this platform cannot say. */
static int find_bounds(uintptr_t *lo, size_t *size) {
#if defined(__APPLE__)
    pthread_t self = pthread_self();
    uintptr_t top = (uintptr_t)pthread_get_stackaddr_np(self); /* the highest address, not the lowest */
    *size = pthread_get_stacksize_np(self);
    if (!*size || *size > top) return -1;
    *lo = top - *size;
    return 0;
#elif defined(__linux__)
    /* glibc and musl; for the main thread glibc reports the RLIMIT_STACK-sized region below the
     * stack's top (cut where the next mapping starts), and without the guard page for others */
    pthread_attr_t a;
    void *addr;
    if (pthread_getattr_np(pthread_self(), &a)) return -1;
    int rc = pthread_attr_getstack(&a, &addr, size);
    pthread_attr_destroy(&a);
    if (rc || !*size) return -1;
    *lo = (uintptr_t)addr;
    return 0;
#else
    (void)lo, (void)size;
    return -1;
#endif
}

static void init(void) {
    uintptr_t lo;
    size_t size;
    t_stack.ready = 1;
    if (find_bounds(&lo, &size)) return;
    t_stack.lo = lo;
    t_stack.reserve = size / 2 < RESERVE ? size / 2 : RESERVE;
}

/* noinline: the frame compared is this function's, just below its caller's, whether or not the
 * compiler would have inlined it; __builtin_frame_address is the real stack also under ASan, whose
 * fake stacks (detect_stack_use_after_return) move only the locals. */
__attribute__((noinline)) int vc_stack_low(void) {
    if (__builtin_expect(!t_stack.ready, 0)) init();
    /* unsigned: a frame outside [lo, lo + reserve), on another stack (sigaltstack) too, is not low */
    return (uintptr_t)__builtin_frame_address(0) - t_stack.lo < t_stack.reserve;
}

__attribute__((noinline)) size_t vc_stack_left(void) {
    if (!t_stack.ready) init();
    if (!t_stack.reserve) return SIZE_MAX;
    return (size_t)((uintptr_t)__builtin_frame_address(0) - t_stack.lo);
}
