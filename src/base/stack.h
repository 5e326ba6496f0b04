/* stack: how much C stack the calling thread has left, so that recursive parsers and evaluators
 * (chat templates, JSON inputs, tokenizer.json Sequences) stop with an error instead of running off
 * the end of a thread's stack. Their count limits (MAX_EVAL_DEPTH, JSON_MAX_NEST, ...) stay as
 * semantic limits; how deep a thread can really go depends on its stack size (the server's
 * connection threads have 512 KiB, the main thread RLIMIT_STACK) and on frame sizes (2-3x larger
 * under AddressSanitizer), which only this check knows.
 *
 * Call vc_stack_low() at the top of every function that recurses on input. The first call on a
 * thread looks up the thread's stack bounds and caches them in thread-local storage; later calls
 * are a TLS load and a compare. Where the bounds cannot be found, the check never says low. */
#ifndef VLLMC_BASE_STACK_H
#define VLLMC_BASE_STACK_H

#include <stddef.h>

/* Non-zero when the calling thread has less than its reserve of stack left below the caller: the
 * caller should fail (a "nested too deeply" error) rather than recurse. The reserve (stack.c) is
 * what the deepest chain of calls between two checks needs: 64 KiB, 256 KiB under ASan, at most
 * half of a small thread's whole stack. */
int vc_stack_low(void);

/* Bytes of stack between the caller's frame and the thread's low bound; SIZE_MAX when the bounds
 * are unknown. For tests and diagnostics. */
size_t vc_stack_left(void);

#endif
