/* The public API (include/vllmc.h) over the model stack (stack.h). */
#include "vllmc.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "lora/registry.h"
#include "stack.h"

struct vllmc_engine {
    stk_stack *st;
    eng_engine *e;               /* st->e */
    lora_registry *loras;        /* with enable_lora */
    atomic_ullong unnamed; /* requests added without an id */
};

void vllmc_sampling_params_default(vllmc_sampling_params *p) { eng_params_default(p); }

void vllmc_engine_args_default(vllmc_engine_args *a) {
    eng_config c;
    eng_config_default(&c);
    *a = (vllmc_engine_args){
        .block_size = c.block_size,
        .max_num_seqs = c.max_num_seqs,
        .max_num_batched_tokens = c.max_num_batched_tokens,
        .enable_prefix_caching = 1,
        .max_logprobs = c.max_logprobs,
        .max_loras = 1,
        .max_lora_rank = c.max_lora_rank,
    };
}

int vllmc_engine_create(const vllmc_engine_args *a, vllmc_engine **out) {
    *out = NULL;
    if (!a || !a->model) return vc_errf(VC_EINVAL, "vllmc_engine_args.model is required");
    stk_params p;
    stk_params_default(&p);
    p.model = a->model;
    p.revision = a->revision;
    p.download_dir = a->download_dir;
    p.dtype = a->dtype;
    p.device = a->device;
    p.kv_cache_dtype = a->kv_cache_dtype;
    p.tokenizer = 0; /* the API takes and returns token ids */
    p.quiet = 1;
    eng_config *c = &p.ec;
    c->block_size = a->block_size;
    c->max_num_seqs = a->max_num_seqs;
    c->max_num_batched_tokens = a->max_num_batched_tokens;
    c->max_model_len = a->max_model_len;
    c->enable_prefix_caching = a->enable_prefix_caching;
    c->kv_cache_gib = a->kv_cache_gib;
    c->gpu_memory_utilization = a->gpu_memory_utilization;
    c->policy = a->priority_scheduling ? ENG_PRIORITY : ENG_FCFS;
    c->seed = a->seed;
    c->max_logprobs = a->max_logprobs;
    c->quiet = 1; /* a library: no start-up log line (p.quiet above, for the stack's own) */
    if (a->enable_lora && (a->max_loras < 1 || a->max_lora_rank < 1 || a->max_cpu_loras < 0))
        return vc_errf(VC_EINVAL, "LoRA: max_loras and max_lora_rank must be at least 1");
    c->max_loras = a->enable_lora ? a->max_loras : 0;
    c->max_lora_rank = a->max_lora_rank;
    vllmc_engine *v = calloc(1, sizeof *v);
    if (!v) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = stk_open(&p, &v->st);
    if (rc) {
        free(v);
        return rc;
    }
    v->e = v->st->e;
    if (a->enable_lora) {
        lora_reg_opts lo = {.m = v->st->m, .max_lora_rank = a->max_lora_rank,
                            .max_cpu_loras = a->max_cpu_loras > 0 ? a->max_cpu_loras : a->max_loras,
                            .download_dir = a->download_dir};
        if ((rc = lora_reg_new(&lo, &v->loras))) {
            vllmc_engine_free(v);
            return rc;
        }
    }
    *out = v;
    return VC_OK;
}

int vllmc_lora_load(vllmc_engine *e, const char *name, const char *path) {
    if (!e->loras) return vc_errf(VC_EINVAL, "LoRA is not enabled (vllmc_engine_args.enable_lora)");
    return lora_reg_add(e->loras, name, path, NULL);
}

int vllmc_lora_unload(vllmc_engine *e, const char *name) {
    if (!e->loras) return vc_errf(VC_EINVAL, "LoRA is not enabled (vllmc_engine_args.enable_lora)");
    return lora_reg_remove(e->loras, name);
}

int vllmc_add_request(vllmc_engine *e, const char *request_id, const int32_t *prompt, int n_prompt,
                      const vllmc_sampling_params *p, int priority) {
    return vllmc_add_request_lora(e, request_id, prompt, n_prompt, p, priority, NULL);
}

int vllmc_add_request_lora(vllmc_engine *e, const char *request_id, const int32_t *prompt, int n_prompt,
                           const vllmc_sampling_params *p, int priority, const char *lora_name) {
    char name[32];
    eng_lora *l = NULL;
    if (lora_name && !e->loras) return vc_errf(VC_EINVAL, "LoRA is not enabled (vllmc_engine_args.enable_lora)");
    if (lora_name) {
        int rc = lora_reg_get(e->loras, lora_name, &l);
        if (rc) return rc;
    }
    if (!request_id) {
        snprintf(name, sizeof name, "req-%llu", (unsigned long long)atomic_fetch_add(&e->unnamed, 1));
        request_id = name;
    }
    int rc = eng_add_lora(e->e, request_id, prompt, n_prompt, p, priority, l);
    eng_lora_unref(l); /* the sequences hold their own references */
    return rc;
}

int vllmc_abort(vllmc_engine *e, const char *request_id) { return eng_abort(e->e, request_id, -1, ENG_FINISH_ABORT); }

int vllmc_step(vllmc_engine *e, const vllmc_output **outs, int *n_outs) { return eng_step(e->e, outs, n_outs); }

int vllmc_has_unfinished(vllmc_engine *e) { return eng_has_unfinished(e->e); }

int vllmc_vocab_size(const vllmc_engine *e) { return e->st->m->cfg.vocab_size; }

void vllmc_engine_free(vllmc_engine *e) {
    if (!e) return;
    stk_free(e->st); /* the engine first: its sequences and slots hold adapter references */
    lora_reg_free(e->loras);
    free(e);
}

const char *vllmc_last_error(void) { return vc_errmsg(); }
