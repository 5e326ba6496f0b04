/* lora/registry: the LoRA adapters a server (or `vllmc generate`) knows by name (step 8).
 *
 * An entry is a name, a path (a folder, or a Hub id resolved into the HF cache as models are) and
 * an id (> 0, never reused: the prefix-cache key). Loaded adapters are held in host memory, at most
 * max_cpu_loras of them (vLLM's --max-cpu-loras); the least recently used one is dropped past that
 * and read again from its folder when a request names it. Every adapter is read once when added
 * (lora_reg_add), so a bad folder is an error there. Unloading removes the name: requests that hold
 * the adapter (eng_lora references) finish with it, and its memory goes with the last reference.
 * All functions are thread-safe. */
#ifndef VLLMC_LORA_REGISTRY_H
#define VLLMC_LORA_REGISTRY_H

#include "engine/lora.h"
#include "model/model.h"

typedef struct lora_registry lora_registry;

typedef struct {
    const mdl_model *m;       /* the base model (its shape) */
    int max_lora_rank;        /* --max-lora-rank */
    int max_cpu_loras;        /* --max-cpu-loras (>= 1) */
    const char *download_dir; /* --download-dir, for Hub ids (NULL: the HF cache) */
    const char *revision;     /* NULL: "main" */
} lora_reg_opts;

int lora_reg_new(const lora_reg_opts *o, lora_registry **out);
void lora_reg_free(lora_registry *r);
/* Add NAME -> PATH (a folder or a Hub id), reading and checking the adapter now. base (may be NULL):
 * the base model name /v1/models gives as its parent. VC_EEXIST (as vLLM: 400) when the name is
 * taken; errors of the adapter's files name the file. */
int lora_reg_add(lora_registry *r, const char *name, const char *path, const char *base);
/* Remove NAME: VC_ENOENT when unknown. */
int lora_reg_remove(lora_registry *r, const char *name);
/* A reference to NAME's adapter (read again if it was dropped from memory), or NULL with
 * VC_ENOENT when unknown (other codes: the folder went bad since). */
int lora_reg_get(lora_registry *r, const char *name, eng_lora **out);
/* The entries in the order added: calls fn(arg, name, path, base, id) for each (under the lock). */
void lora_reg_each(lora_registry *r, void (*fn)(void *arg, const char *name, const char *path, const char *base, int id),
                   void *arg);
/* The name of the adapter with this id (malloc'd), or NULL. */
char *lora_reg_name_of(lora_registry *r, int id);

#endif
