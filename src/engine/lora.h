/* engine/lora: LoRA adapters as the engine runs them (step 8).
 *
 * An eng_lora is an adapter's weights (host f32, per layer and module) under an integer id, shared
 * by reference: the server's registry holds one reference, every request (each of its sequences)
 * another, and the engine one for each LoRA slot of the runner the adapter occupies. Unloading an
 * adapter drops the registry's reference: requests that use it run to their end and the memory goes
 * with the last reference, never while in use.
 *
 * Slots: the runner has max_loras slots in device memory. Each step the engine puts the adapters
 * of the scheduled sequences into slots (one already holding the adapter, else a free one, else the
 * least recently used one no sequence of this step needs), and the scheduler admits a waiting
 * request only if its adapter fits the step's max_loras (vLLM's rule). The id is the prefix cache's
 * extra key: two adapters never share KV blocks. */
#ifndef VLLMC_ENGINE_LORA_H
#define VLLMC_ENGINE_LORA_H

#include "runner/runner.h"

typedef struct eng_lora eng_lora;

/* id > 0, unique among the adapters of one engine (the prefix-cache key). w: [n_layers *
 * RN_LORA_MODULES], layer-major, borrowed from `owner`, which free_owner(owner) releases with the
 * last reference (free_owner may be NULL). The new adapter holds one reference. */
int eng_lora_new(int id, const rn_lora_weight *w, int n_layers, void *owner, void (*free_owner)(void *),
                 eng_lora **out);
/* A random adapter for benchmarks and tests (as mdl_random is a random model): rank `rank` on the modules
 * whose bit (1 << RN_LORA_*) is in mask, scale 2, values uniform in [-1, 1] times 1/sqrt(in) for A and
 * 1/(2 sqrt(rank)) for B (B zero with zero_b), from an xorshift state seeded with `seed` (nonzero); kept
 * in the weights' dtype wdt (rn_lora_prepare), as a loaded adapter is. */
int eng_lora_random(const model_config *c, be_dtype wdt, int id, unsigned mask, int rank, int zero_b, uint64_t seed,
                    eng_lora **out);
eng_lora *eng_lora_ref(eng_lora *l);
void eng_lora_unref(eng_lora *l); /* NULL is fine */
int eng_lora_id(const eng_lora *l);
int eng_lora_refs(const eng_lora *l);
const rn_lora_weight *eng_lora_weights(const eng_lora *l);
int eng_lora_max_rank(const eng_lora *l);

#endif
