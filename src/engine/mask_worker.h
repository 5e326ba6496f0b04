/* mask_worker: one helper thread that runs one job at a time beside the engine thread. The engine
 * gives it the grammar masks of the sequences a step samples, so that they are computed while the
 * forward pass runs (on a GPU the CPU is otherwise idle then; on the CPU the warm masks are
 * microseconds, and a cold one costs no more than it did before the pass). */
#ifndef VLLMC_ENGINE_MASK_WORKER_H
#define VLLMC_ENGINE_MASK_WORKER_H

typedef struct eng_mask_worker eng_mask_worker;

/* A started worker, or VC_ENOMEM / VC_EIO (no thread: the caller does the work itself). */
int mw_start(eng_mask_worker **out);
/* Stop and join it (NULL-safe; not while a job runs: mw_wait first). */
void mw_free(eng_mask_worker *w);
/* Run fn(arg) on the worker; the caller must mw_wait before the next submit. */
void mw_submit(eng_mask_worker *w, int (*fn)(void *), void *arg);
/* Wait for the job submitted last; its return value. */
int mw_wait(eng_mask_worker *w);

#endif
