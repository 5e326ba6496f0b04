/* The engine: request intake, one step of scheduled work, outputs. */
#include "engine/engine_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/err.h"
#include "base/rng.h"

void eng_config_default(eng_config *c) {
    memset(c, 0, sizeof *c);
    c->block_size = 16;
    c->max_num_seqs = 256;
    c->max_num_batched_tokens = 4096;
    c->enable_prefix_caching = 1;
    c->max_logprobs = 20;
    c->max_lora_rank = 16;
    c->policy = ENG_FCFS;
    c->kv_dtype = -1;
}

/* KV cache bytes, as vLLM sizes it: VLLM_CPU_KVCACHE_SPACE GiB when set (any device);
 * unset, half the memory of a CPU or unified-memory GPU, and on a discrete GPU
 * gpu_memory_utilization of its memory less what is already in use (weights) and
 * the runner's activations (act_bytes). */
static int kv_space_bytes(const eng_config *c, const be_info *info, uint64_t act_bytes, double *out, const char **how) {
    const char *env = getenv("VLLM_CPU_KVCACHE_SPACE");
    *how = "VLLM_CPU_KVCACHE_SPACE";
    if (c->kv_cache_gib > 0) {
        *out = c->kv_cache_gib * 1073741824.0;
        return VC_OK;
    }
    if (env && *env) {
        char *end;
        double v = strtod(env, &end);
        if (end == env || *end || !(v > 0))
            return vc_errf(VC_EINVAL, "VLLM_CPU_KVCACHE_SPACE must be a positive number of GiB, got '%s'", env);
        *out = v * 1073741824.0;
        return VC_OK;
    }
    if (info->unified || info->mem_free == 0) {
        *how = "50% of memory";
        *out = info->mem_total ? 0.5 * (double)info->mem_total : 4.0 * 1073741824.0;
        return VC_OK;
    }
    double util = c->gpu_memory_utilization > 0 ? c->gpu_memory_utilization : 0.9;
    if (util > 1) return vc_errf(VC_EINVAL, "--gpu-memory-utilization must be in (0, 1], got %g", util);
    double used = (double)(info->mem_total - (info->mem_free < info->mem_total ? info->mem_free : info->mem_total));
    *how = "--gpu-memory-utilization";
    *out = util * (double)info->mem_total - used - (double)act_bytes;
    if (*out <= 0)
        return vc_errf(VC_ENOMEM,
                       "%s: no memory left for the KV cache: %.2f GiB in use of %.2f GiB with "
                       "--gpu-memory-utilization %.2f, and activations need %.2f GiB",
                       info->desc, used / 1073741824.0, (double)info->mem_total / 1073741824.0, util,
                       (double)act_bytes / 1073741824.0);
    return VC_OK;
}

void eng_seq_free(eng_seq *s) {
    if (!s) return;
    free(s->id);
    free(s->tokens);
    free(s->blocks);
    free(s->hashes);
    free(s->plp_ids);
    free(s->plp_vals);
    free(s->plp_tok);
    free(s->plp_rank);
    lp_state_free(&s->lp);
    eng_params_free(&s->sp);
    eng_lora_unref(s->lora);
    free(s);
}

int eng_create(mdl_model *m, const eng_config *cin, eng_engine **out) {
    *out = NULL;
    eng_config c = *cin;
    const model_config *mc = &m->cfg;
    if (c.block_size < 1 || c.block_size > 1024) return vc_errf(VC_EINVAL, "--block-size must be in [1, 1024], got %d", c.block_size);
    if (c.max_num_seqs < 1) return vc_errf(VC_EINVAL, "--max-num-seqs must be at least 1");
    int mml = c.max_model_len > 0 ? c.max_model_len : mc->max_position_embeddings;
    if (mml > mc->max_position_embeddings)
        return vc_errf(VC_EINVAL,
                       "--max-model-len %d is greater than the model's max_position_embeddings (%d) in config.json",
                       mml, mc->max_position_embeddings);
    if (c.max_num_batched_tokens < 1) return vc_errf(VC_EINVAL, "--max-num-batched-tokens must be at least 1");
    if (c.max_num_batched_tokens < c.max_num_seqs) c.max_num_batched_tokens = c.max_num_seqs;
    int bs = c.block_size, per_seq = (mml + bs - 1) / bs;
    be_dtype kvt = c.kv_dtype < 0 ? m->wdtype : (be_dtype)c.kv_dtype;
    if (kvt != BE_F32 && kvt != BE_F16 && kvt != BE_BF16) return vc_errf(VC_EINVAL, "KV cache dtype must be f32, f16 or bf16");
    uint64_t block_bytes = rn_kv_bytes_per_block(m, bs, kvt);
    be_info info;
    int rc0 = m->be->info(m->be->ctx, &info);
    if (rc0) return rc0;
    double space = 0;
    const char *how;
    if (c.max_loras < 0 || (c.max_loras > 0 && c.max_lora_rank < 1))
        return vc_errf(VC_EINVAL, "--max-loras must be >= 0 and --max-lora-rank >= 1");
    uint64_t act = rn_activation_bytes(m, c.max_num_batched_tokens, c.max_num_seqs + ENG_PLP_ROWS) +
                   rn_lora_bytes(m, c.max_num_batched_tokens, c.max_loras, c.max_lora_rank);
    if ((rc0 = kv_space_bytes(&c, &info, act, &space, &how))) return rc0;
    double gib = space / 1073741824.0;
    double nb = space / (double)block_bytes;
    /* each layer's K (and V) cache is one tensor: it must fit one view of the device */
    uint64_t layer_block = block_bytes / (2ull * (uint64_t)mc->n_layers);
    if (layer_block && nb > (double)(info.max_view_bytes / layer_block)) nb = (double)(info.max_view_bytes / layer_block);
    /* More blocks than every sequence at full length could use only feed the
     * prefix cache; cap at 4x that to keep the block table metadata small. */
    double useful = 4.0 * (double)per_seq * (double)c.max_num_seqs;
    if (nb > useful) nb = useful;
    if (nb > 1 << 30) nb = 1 << 30;
    int num_blocks = (int)nb;
    if (num_blocks < per_seq) {
        double need = (double)per_seq * (double)block_bytes / (1024.0 * 1024.0 * 1024.0);
        int est = num_blocks * bs;
        return vc_errf(VC_EINVAL,
                       "To serve at least one request with the model's max seq len (%d), %.2f GiB KV cache is needed, "
                       "which is larger than the available KV cache memory (%.2f GiB). Based on the available memory, "
                       "the estimated maximum model length is %d. Try increasing VLLM_CPU_KVCACHE_SPACE or decreasing "
                       "max_model_len when initializing the engine.",
                       mml, need, gib, est);
    }
    if (c.grammar_vocab && (gram_vocab_size(c.grammar_vocab) != mc->vocab_size || !c.grammar_tok || !c.grammar_tok_len))
        return vc_errf(VC_EINVAL, "engine: the grammar vocabulary has %d tokens (the model %d) or lacks token bytes",
                       gram_vocab_size(c.grammar_vocab), mc->vocab_size);
    eng_engine *e = calloc(1, sizeof *e);
    if (!e) return vc_errf(VC_ENOMEM, "out of memory");
    pthread_mutex_init(&e->mu, NULL);
    e->m = m;
    e->cfg = c;
    e->max_model_len = mml;
    e->max_blocks_per_seq = per_seq;
    e->seed_state = c.seed;
    int rc;
    int T = c.max_num_batched_tokens, S = c.max_num_seqs, V = mc->vocab_size;
    rn_params rp = {.max_tokens = T, .max_seqs = S, .max_blocks = per_seq, .num_blocks = num_blocks,
                    .block_size = bs, .max_logits = S + ENG_PLP_ROWS, .kv_dtype = kvt,
                    .max_loras = c.max_loras, .max_lora_rank = c.max_lora_rank};
    if ((rc = rn_create(m, &rp, &e->runner))) goto err;
    if ((rc = kv_create(num_blocks, bs, c.enable_prefix_caching, &e->kv))) goto err;
    e->running = calloc((size_t)S, sizeof *e->running);
    e->b_seqs = calloc((size_t)S, sizeof *e->b_seqs);
    e->b_tokens = malloc(sizeof(int32_t) * (size_t)T);
    e->b_pos = malloc(sizeof(int32_t) * (size_t)T);
    e->b_slots = malloc(sizeof(int32_t) * (size_t)T);
    e->b_qstart = malloc(sizeof(int32_t) * (size_t)(S + 1));
    e->b_seqlen = malloc(sizeof(int32_t) * (size_t)S);
    e->b_ropelen = malloc(sizeof(int32_t) * (size_t)S);
    e->b_lrows = malloc(sizeof(int32_t) * (size_t)(S + ENG_PLP_ROWS));
    e->b_bt = malloc(sizeof(int32_t) * (size_t)S * (size_t)per_seq);
    e->logits = malloc(sizeof(float) * (size_t)(S + ENG_PLP_ROWS) * (size_t)V);
    e->row_seq = malloc(sizeof(int32_t) * (size_t)(S + ENG_PLP_ROWS));
    e->row_pos = malloc(sizeof(int32_t) * (size_t)(S + ENG_PLP_ROWS));
    e->raw = malloc(sizeof(float) * (size_t)V);
    e->amax = malloc(sizeof(int32_t) * (size_t)(S + ENG_PLP_ROWS));
    e->top_ids = malloc(sizeof(int32_t) * (size_t)(S + ENG_PLP_ROWS) * BE_TOPK_MAX);
    e->top_vals = malloc(sizeof(float) * (size_t)(S + ENG_PLP_ROWS) * BE_TOPK_MAX);
    const char *ntk = getenv("VLLMC_NO_TOPK_STEP");
    e->no_topk = ntk && !strcmp(ntk, "1");
    e->b_lora = malloc(sizeof(int32_t) * (size_t)S);
    if (c.max_loras > 0) {
        e->lslot = calloc((size_t)c.max_loras, sizeof *e->lslot);
        e->lstamp = calloc((size_t)c.max_loras, sizeof *e->lstamp);
    }
    if (!e->b_lora || (c.max_loras > 0 && (!e->lslot || !e->lstamp)) || !e->running || !e->b_seqs || !e->b_tokens || !e->b_pos || !e->b_slots || !e->b_qstart || !e->b_seqlen || !e->b_ropelen ||
        !e->b_lrows || !e->b_bt || !e->logits || !e->raw || !e->amax || !e->top_ids || !e->top_vals || !e->row_seq || !e->row_pos) {
        rc = vc_errf(VC_ENOMEM, "out of memory");
        goto err;
    }
    if ((rc = samp_scratch_init(&e->sc, V))) goto err;
    if (!c.quiet)
        fprintf(stderr,
                "INFO vllmc: KV cache on %s: %d blocks of %d tokens (%.2f GiB %s, from %s), %lld tokens; maximum "
                "concurrency for %d tokens per request: %.2fx\n",
                m->be->name, num_blocks, bs, (double)num_blocks * (double)block_bytes / (1024.0 * 1024.0 * 1024.0),
                be_dtype_name(kvt), how, (long long)num_blocks * bs, mml, (double)num_blocks / (double)per_seq);
    e->stats.num_blocks = num_blocks;
    e->stats.block_size = bs;
    e->stats.cache_dtype = c.kv_dtype < 0 ? "auto" : c.kv_dtype == BE_BF16 ? "bfloat16" : c.kv_dtype == BE_F16 ? "float16" : "float32";
    e->stats.gpu_memory_utilization = c.gpu_memory_utilization > 0 ? c.gpu_memory_utilization : 0.9;
    e->stats.enable_prefix_caching = c.enable_prefix_caching;
    *out = e;
    return VC_OK;
err:
    eng_free(e);
    return rc;
}

void eng_free(eng_engine *e) {
    if (!e) return;
    for (int i = 0; i < e->n_running; i++) eng_seq_free(e->running[i]);
    for (int i = 0; i < e->n_waiting; i++) eng_seq_free(e->waiting[i]);
    for (int i = 0; i < e->n_inbox; i++) eng_seq_free(e->inbox[i]);
    for (int i = 0; i < e->n_finished; i++) eng_seq_free(e->finished[i]);
    for (int i = 0; i < e->n_aborts; i++) free(e->aborts[i]);
    free(e->running);
    free(e->waiting);
    free(e->inbox);
    free(e->aborts);
    free(e->abort_why);
    free(e->abort_index);
    free(e->finished);
    free(e->b_seqs);
    free(e->b_tokens);
    free(e->b_pos);
    free(e->b_slots);
    free(e->b_qstart);
    free(e->b_seqlen);
    free(e->b_ropelen);
    free(e->b_lrows);
    free(e->b_bt);
    free(e->logits);
    free(e->row_seq);
    free(e->row_pos);
    free(e->raw);
    free(e->amax);
    free(e->top_ids);
    free(e->top_vals);
    free(e->b_lora);
    for (int i = 0; e->lslot && i < e->cfg.max_loras; i++) eng_lora_unref(e->lslot[i]);
    free(e->lslot);
    free(e->lstamp);
    free(e->outs);
    free(e->lp_ids);
    free(e->lp_vals);
    samp_scratch_free(&e->sc);
    rn_free(e->runner);
    kv_free(e->kv);
    mw_free(e->mw);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

int eng_max_model_len(const eng_engine *e) { return e->max_model_len; }

static int grow_ptrs(void *arrp, int *cap, int need, size_t elem) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap : 16;
    while (nc < need) nc *= 2;
    void *n = realloc(*(void **)arrp, elem * (size_t)nc);
    if (!n) return -1;
    *(void **)arrp = n;
    *cap = nc;
    return 0;
}

int eng_add(eng_engine *e, const char *id, const int32_t *prompt, int n_prompt, const eng_sampling_params *sp,
            int priority) {
    return eng_add_lora(e, id, prompt, n_prompt, sp, priority, NULL);
}

int eng_add_lora(eng_engine *e, const char *id, const int32_t *prompt, int n_prompt, const eng_sampling_params *sp,
                 int priority, eng_lora *lora) {
    const model_config *mc = &e->m->cfg;
    if (!id || !*id) return vc_errf(VC_EINVAL, "request id must not be empty");
    if (lora && e->cfg.max_loras <= 0) return vc_errf(VC_EINVAL, "LoRA is not enabled (--enable-lora)");
    if (lora && eng_lora_max_rank(lora) > e->cfg.max_lora_rank)
        return vc_errf(VC_EINVAL, "LoRA rank %d is greater than max_lora_rank %d", eng_lora_max_rank(lora),
                       e->cfg.max_lora_rank);
    if (n_prompt < 1) return vc_errf(VC_EINVAL, "The decoder prompt cannot be empty");
    if (n_prompt > e->max_model_len)
        return vc_errf(VC_EINVAL, "The decoder prompt (length %d) is longer than the maximum model length of %d.",
                       n_prompt, e->max_model_len);
    for (int i = 0; i < n_prompt; i++)
        if (prompt[i] < 0 || prompt[i] >= mc->vocab_size)
            return vc_errf(VC_EINVAL, "Token id %d is out of vocabulary (size %d)", prompt[i], mc->vocab_size);
    int rc = eng_params_validate(sp, mc->vocab_size);
    if (!rc) rc = eng_params_check_max_logprobs(sp, e->cfg.max_logprobs, mc->vocab_size);
    if (rc) return rc;
    if (sp->grammar && !e->cfg.grammar_vocab) return vc_errf(VC_EINVAL, "structured output needs the model's tokenizer");
    lp_grammar_vocab gv = {e->cfg.grammar_vocab, e->cfg.grammar_tok, e->cfg.grammar_tok_len};
    int n = sp->n;
    eng_seq **made = calloc((size_t)n, sizeof *made);
    if (!made) return vc_errf(VC_ENOMEM, "out of memory");
    pthread_mutex_lock(&e->mu);
    uint64_t base_seed = vc_splitmix64(&e->seed_state);
    pthread_mutex_unlock(&e->mu);
    for (int i = 0; i < n; i++) {
        eng_seq *s = calloc(1, sizeof *s);
        if (!s) goto oom;
        made[i] = s;
        int64_t cap64 = (int64_t)n_prompt + sp->max_tokens; /* max_tokens may be huge: bound by the context */
        int cap = cap64 > (int64_t)e->max_model_len + 1 ? e->max_model_len + 1 : (int)cap64;
        s->id = strdup(id);
        s->tokens = malloc(sizeof(int32_t) * (size_t)cap);
        s->blocks = malloc(sizeof(int32_t) * (size_t)e->max_blocks_per_seq);
        s->hashes = malloc(sizeof(uint64_t) * (size_t)e->max_blocks_per_seq);
        if (!s->id || !s->tokens || !s->blocks || !s->hashes) goto oom;
        if (eng_params_copy(&s->sp, sp)) goto oom;
        eng_params_normalize(&s->sp);
        if (sp->prompt_logprobs >= 0) {
            int k = sp->prompt_logprobs < mc->vocab_size ? sp->prompt_logprobs : mc->vocab_size;
            s->plp_k = k;
            s->plp_ids = malloc(sizeof(int32_t) * (size_t)n_prompt * (size_t)(k ? k : 1));
            s->plp_vals = malloc(sizeof(float) * (size_t)n_prompt * (size_t)(k ? k : 1));
            s->plp_tok = calloc((size_t)n_prompt, sizeof(float));
            s->plp_rank = calloc((size_t)n_prompt, sizeof(int));
            if (!s->plp_ids || !s->plp_vals || !s->plp_tok || !s->plp_rank) goto oom;
        }
        memcpy(s->tokens, prompt, sizeof(int32_t) * (size_t)n_prompt);
        s->n_tokens = s->n_prompt = n_prompt;
        s->cap = cap;
        s->index = i;
        s->n_cached = -1;
        s->stop_token = -1;
        s->priority = priority;
        s->lora = eng_lora_ref(lora);
        s->lslot = -1;
        s->sp.n = 1;
        /* vLLM V1: a seeded request's completion i draws from seed + i */
        samp_rng_seed(&s->rng, sp->has_seed ? (uint64_t)sp->seed + (uint64_t)i : base_seed + (uint64_t)i);
        if ((rc = lp_state_init_gv(&s->lp, &s->sp, mc->vocab_size, mc->eos_token_ids, mc->n_eos, prompt, n_prompt,
                                   gv.vocab ? &gv : NULL)))
            goto fail;
    }
    pthread_mutex_lock(&e->mu);
    if (grow_ptrs(&e->inbox, &e->cap_inbox, e->n_inbox + n, sizeof *e->inbox)) {
        pthread_mutex_unlock(&e->mu);
        goto oom;
    }
    for (int i = 0; i < n; i++) {
        made[i]->arrival = e->arrivals++;
        e->inbox[e->n_inbox++] = made[i];
    }
    e->live += n;
    pthread_mutex_unlock(&e->mu);
    free(made);
    return VC_OK;
oom:
    rc = vc_errf(VC_ENOMEM, "out of memory");
fail:
    for (int i = 0; i < n; i++) eng_seq_free(made[i]);
    free(made);
    return rc;
}

int eng_abort(eng_engine *e, const char *id, int index, eng_finish why) {
    char *copy = strdup(id);
    if (!copy) return vc_errf(VC_ENOMEM, "out of memory");
    pthread_mutex_lock(&e->mu);
    int ok = !grow_ptrs(&e->aborts, &e->cap_aborts, e->n_aborts + 1, sizeof *e->aborts);
    int cap = e->cap_aborts;
    if (ok) {
        eng_finish *w = realloc(e->abort_why, sizeof *w * (size_t)cap);
        if (w) e->abort_why = w;
        int *x = realloc(e->abort_index, sizeof *x * (size_t)cap);
        if (x) e->abort_index = x;
        ok = w != NULL && x != NULL;
    }
    if (ok) {
        e->aborts[e->n_aborts] = copy;
        e->abort_why[e->n_aborts] = why;
        e->abort_index[e->n_aborts] = index;
        e->n_aborts++;
    }
    pthread_mutex_unlock(&e->mu);
    if (!ok) {
        free(copy);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    return VC_OK;
}

int eng_has_unfinished(eng_engine *e) {
    pthread_mutex_lock(&e->mu);
    int n = e->live;
    pthread_mutex_unlock(&e->mu);
    return n > 0;
}

eng_stats eng_get_stats(eng_engine *e) {
    pthread_mutex_lock(&e->mu);
    eng_stats s = e->stats;
    pthread_mutex_unlock(&e->mu);
    return s;
}

int eng_check_kv(eng_engine *e, int referenced) { return kv_check(e->kv, referenced); }
