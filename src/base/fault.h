/* fault: allocation-failure injection, as SQLite's test harness does it (allocation number N
 * fails), for `make test-faults`.
 *
 * The build mode: `make asan` / `make test-faults` build everything in build/asan with clang, ASan +
 * UBSan + LeakSanitizer and -DVLLMC_FAULTS, and link its binaries (tests and build/asan/vllmc) with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc,--wrap=strdup,--wrap=strndup,--wrap=aligned_alloc:
 * every such call from vllmc's own objects goes to __wrap_X here, which counts it and either fails
 * it (NULL, errno ENOMEM; a failed realloc leaves the block as it was) or calls __real_X (libc's,
 * or the sanitizer's). cJSON's allocations are routed here too (cJSON_InitHooks, from
 * vc_fault_init(), which a constructor also runs). Allocations made inside other libraries
 * (PCRE2, utf8proc, libcurl, libmicrohttpd, libc's own vasprintf) are not counted. In any other
 * build these functions are no-ops (vc_fault_enabled() is 0) and allocation is untouched.
 *
 * The sweep (tests/faults/test_faults.c): for N = 1, 2, ...: vc_fault_arm(N), run an operation,
 * vc_fault_disarm(). The operation must either fail with an error and a message or, where
 * vc_fault_hit() says the failure never happened, succeed; then it is run once more unarmed and
 * must give what a clean run gives (nothing left poisoned); the sweep ends at the first N that is
 * not hit. ASan/LeakSanitizer catch the crashes and leaks on the failure paths.
 *
 * Modes: one-shot (vc_fault_arm: only allocation N fails) and persistent (vc_fault_arm_persistent:
 * N and every later one fail until disarmed). Counting is over all threads, atomically; with
 * vc_fault_thread_only() it is over the threads that called vc_fault_thread_mark() (or those that
 * did not), e.g. to include or exclude an engine thread. */
#ifndef VLLMC_BASE_FAULT_H
#define VLLMC_BASE_FAULT_H

/* 1 in a -DVLLMC_FAULTS build, 0 otherwise (every other function is then a no-op). */
int vc_fault_enabled(void);
/* Route cJSON's allocations through the counters (idempotent; a constructor calls it). */
void vc_fault_init(void);

/* Reset the counters; the n-th counted allocation from now (1-based) fails, and only that one.
 * n <= 0: count only, fail nothing. */
void vc_fault_arm(long n);
/* As vc_fault_arm, but allocation n and every later counted one fail until vc_fault_disarm(). */
void vc_fault_arm_persistent(long n);
/* Stop failing and counting; the counters keep their values for the calls below. */
void vc_fault_disarm(void);
/* Counted allocations since the last arm (failed ones included). */
long vc_fault_count(void);
/* 1 if the armed allocation has been reached (and failed) since the last arm. */
int vc_fault_hit(void);
/* Allocations failed since the last arm (0 or 1 one-shot; any number persistent). */
long vc_fault_failures(void);

/* Print a stack trace (the sanitizers') at each allocation made to fail, to see where a failure
 * went; also on when the environment has VLLMC_FAULT_TRACE=1. */
void vc_fault_trace(int on);

/* Which threads' allocations count (default VC_FAULT_ALL_THREADS). */
enum { VC_FAULT_ALL_THREADS = 0, VC_FAULT_MARKED = 1, VC_FAULT_UNMARKED = 2 };
void vc_fault_thread_only(int which);
/* Mark (or unmark) the calling thread for vc_fault_thread_only(). */
void vc_fault_thread_mark(void);
void vc_fault_thread_unmark(void);

#endif
