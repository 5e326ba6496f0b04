/* fault: the allocation counters and the --wrap entry points (see fault.h). Only a
 * -DVLLMC_FAULTS build has the wrappers; any other build gets the no-op API below. */
#include "base/fault.h"

#ifndef VLLMC_FAULTS

int vc_fault_enabled(void) { return 0; }
void vc_fault_init(void) {}
void vc_fault_arm(long n) { (void)n; }
void vc_fault_arm_persistent(long n) { (void)n; }
void vc_fault_disarm(void) {}
long vc_fault_count(void) { return 0; }
int vc_fault_hit(void) { return 0; }
long vc_fault_failures(void) { return 0; }
void vc_fault_trace(int on) { (void)on; }
void vc_fault_thread_only(int which) { (void)which; }
void vc_fault_thread_mark(void) {}
void vc_fault_thread_unmark(void) {}

#else

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

/* The linker sends the project's calls of X to __wrap_X; __real_X is the original. */
void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
void *__real_aligned_alloc(size_t align, size_t n);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
void *__wrap_aligned_alloc(size_t align, size_t n);

/* armed is written last by arm and first by disarm, so a thread that sees it set sees the rest. */
static atomic_int armed;
static atomic_long target;     /* the allocation that fails (1-based); <= 0: none */
static atomic_int persistent;  /* later ones fail too */
static atomic_long count;      /* counted allocations since arm */
static atomic_long failures;
static atomic_int hit;
static atomic_int which_threads = VC_FAULT_ALL_THREADS;
static atomic_int trace;
static _Thread_local int marked;

/* the sanitizer runtime's, when linked in */
void __sanitizer_print_stack_trace(void) __attribute__((weak));

int vc_fault_enabled(void) { return 1; }

void vc_fault_init(void) {
    cJSON_Hooks h = {.malloc_fn = __wrap_malloc, .free_fn = free};
    cJSON_InitHooks(&h);
}

__attribute__((constructor)) static void fault_ctor(void) {
    vc_fault_init();
    const char *t = getenv("VLLMC_FAULT_TRACE");
    if (t && !strcmp(t, "1")) atomic_store(&trace, 1);
}

static void arm(long n, int pers) {
    atomic_store(&armed, 0);
    atomic_store(&count, 0);
    atomic_store(&failures, 0);
    atomic_store(&hit, 0);
    atomic_store(&target, n);
    atomic_store(&persistent, pers);
    atomic_store_explicit(&armed, 1, memory_order_release);
}

void vc_fault_arm(long n) { arm(n, 0); }
void vc_fault_arm_persistent(long n) { arm(n, 1); }
void vc_fault_disarm(void) { atomic_store(&armed, 0); }
long vc_fault_count(void) { return atomic_load(&count); }
int vc_fault_hit(void) { return atomic_load(&hit); }
long vc_fault_failures(void) { return atomic_load(&failures); }
void vc_fault_trace(int on) { atomic_store(&trace, on); }
void vc_fault_thread_only(int which) { atomic_store(&which_threads, which); }
void vc_fault_thread_mark(void) { marked = 1; }
void vc_fault_thread_unmark(void) { marked = 0; }

/* Count this allocation; 1 if it must fail. */
static int should_fail(void) {
    if (!atomic_load_explicit(&armed, memory_order_acquire)) return 0;
    int w = atomic_load_explicit(&which_threads, memory_order_relaxed);
    if ((w == VC_FAULT_MARKED && !marked) || (w == VC_FAULT_UNMARKED && marked)) return 0;
    long n = atomic_fetch_add(&count, 1) + 1, t = atomic_load(&target);
    if (t <= 0 || n < t || (n > t && !atomic_load(&persistent))) return 0;
    if (n == t) atomic_store(&hit, 1);
    atomic_fetch_add(&failures, 1);
    if (atomic_load(&trace) && __sanitizer_print_stack_trace) {
        fprintf(stderr, "vc_fault: allocation %ld fails here:\n", n);
        __sanitizer_print_stack_trace();
    }
    errno = ENOMEM;
    return 1;
}

void *__wrap_malloc(size_t n) { return should_fail() ? NULL : __real_malloc(n); }
void *__wrap_calloc(size_t n, size_t size) { return should_fail() ? NULL : __real_calloc(n, size); }
void *__wrap_realloc(void *p, size_t n) { return should_fail() ? NULL : __real_realloc(p, n); }
char *__wrap_strdup(const char *s) { return should_fail() ? NULL : __real_strdup(s); }
char *__wrap_strndup(const char *s, size_t n) { return should_fail() ? NULL : __real_strndup(s, n); }
void *__wrap_aligned_alloc(size_t align, size_t n) { return should_fail() ? NULL : __real_aligned_alloc(align, n); }

#endif
