/* The scheduler: vLLM V1's unified token budget.
 *
 * Each step first continues the running sequences in order (a decode is one
 * token, an unfinished prefill takes the next chunk), then admits waiting
 * sequences (FCFS, or by (priority, arrival)) while the budget, the sequence
 * limit and the free blocks allow. Admission starts with a prefix-cache lookup
 * (at least one token is always left to compute, so there are logits to
 * sample from). When a running sequence cannot get its blocks, the
 * lowest-priority running sequence (FCFS: the newest) is preempted: its
 * blocks are released and it goes back to the head of the waiting queue to be
 * recomputed from its tokens; no new sequence is admitted in that step.
 * Full blocks are committed to the prefix cache at scheduling time, so a
 * sequence admitted later in the same step (another completion of the same
 * prompt) already shares them: within a layer every new token's K/V is written
 * before any attention reads it. */
#include <string.h>

#include "engine/engine_internal.h"

static int need_blocks(const eng_engine *e, const eng_seq *s, int upto) {
    int bs = e->cfg.block_size;
    int n = (upto + bs - 1) / bs - s->n_blocks;
    return n > 0 ? n : 0;
}

static int grow(eng_engine *e, eng_seq *s, int upto) {
    int n = need_blocks(e, s, upto);
    if (n == 0) return 0;
    if (kv_alloc(e->kv, n, s->blocks + s->n_blocks) != 0) return -1;
    s->n_blocks += n;
    return 0;
}

/* Register the blocks that are full once `upto` tokens are computed. */
static void commit_full(eng_engine *e, eng_seq *s, int upto) {
    int bs = e->cfg.block_size, full = upto / bs;
    while (s->n_hashed < full && s->n_hashed < s->n_blocks) {
        uint64_t parent = s->n_hashed ? s->hashes[s->n_hashed - 1] : KV_NO_HASH;
        s->hashes[s->n_hashed] = kv_commit(e->kv, s->blocks[s->n_hashed], parent, s->tokens + (size_t)s->n_hashed * bs,
                                          sched_cache_key(s));
        s->n_hashed++;
    }
}

static void schedule(eng_engine *e, eng_seq *s, int k) {
    s->sched_tokens = k;
    e->b_seqs[e->n_sched++] = s;
    commit_full(e, s, s->n_computed + k);
}

static void unschedule(eng_engine *e, eng_seq *s) {
    for (int i = 0; i < e->n_sched; i++)
        if (e->b_seqs[i] == s) {
            memmove(e->b_seqs + i, e->b_seqs + i + 1, sizeof *e->b_seqs * (size_t)(e->n_sched - i - 1));
            e->n_sched--;
            break;
        }
    s->sched_tokens = 0;
}

static int before(const eng_seq *a, const eng_seq *b) { /* a is served first */
    if (a->priority != b->priority) return a->priority < b->priority;
    return a->arrival < b->arrival;
}

static int victim_index(const eng_engine *e) {
    int v = e->n_running - 1;
    if (e->cfg.policy == ENG_PRIORITY)
        for (int i = 0; i < e->n_running; i++)
            if (before(e->running[v], e->running[i])) v = i;
    return v;
}

static void running_remove(eng_engine *e, eng_seq *s) {
    for (int i = 0; i < e->n_running; i++)
        if (e->running[i] == s) {
            memmove(e->running + i, e->running + i + 1, sizeof *e->running * (size_t)(e->n_running - i - 1));
            e->n_running--;
            return;
        }
}

void sched_release(eng_engine *e, eng_seq *s) {
    kv_release(e->kv, s->blocks, s->n_blocks);
    s->n_blocks = s->n_hashed = 0;
}

void sched_preempt(eng_engine *e, eng_seq *s) {
    sched_release(e, s);
    s->n_computed = 0;
    s->status = RQ_WAITING;
    running_remove(e, s);
    memmove(e->waiting + 1, e->waiting, sizeof *e->waiting * (size_t)e->n_waiting);
    e->waiting[0] = s;
    e->n_waiting++;
    e->preemptions++;
}

void sched_unwind(eng_engine *e) {
    int bs = e->cfg.block_size;
    /* blocks past each sequence's computed prefix were committed for this step's K/V, which were
     * never written; a sequence admitted later in the step may hold such a block as a cache hit,
     * so every scheduled sequence is recomputed (from what the cache really holds) */
    for (int i = 0; i < e->n_sched; i++) {
        eng_seq *s = e->b_seqs[i];
        for (int b = s->n_computed / bs; b < s->n_hashed; b++) kv_uncommit(e->kv, s->blocks[b]);
    }
    for (int i = e->n_sched - 1; i >= 0; i--) {
        e->b_seqs[i]->sched_tokens = 0;
        sched_preempt(e, e->b_seqs[i]);
        e->preemptions--; /* not a preemption for the metrics */
    }
    e->n_sched = 0;
}

/* May s run next to the running sequences under --max-loras (vLLM: a request whose adapter would be
 * one too many waits, and the ones behind it may go first)? The running sequences' adapters count
 * whether or not this step schedules them: they keep their slots. */
static int lora_fits(const eng_engine *e, const eng_seq *s) {
    if (!s->lora) return 1;
    int distinct = 0;
    for (int i = 0; i < e->n_running; i++) {
        const eng_lora *l = e->running[i]->lora;
        if (!l) continue;
        if (l == s->lora) return 1;
        int seen = 0;
        for (int j = 0; j < i && !seen; j++) seen = e->running[j]->lora == l;
        distinct += !seen;
    }
    return distinct < e->cfg.max_loras;
}

/* The waiting sequence to admit next (FCFS: the first; priority: the best), or -1. */
static int waiting_pick(const eng_engine *e) {
    int best = -1;
    for (int i = 0; i < e->n_waiting; i++) {
        if (!lora_fits(e, e->waiting[i])) continue;
        if (best < 0) best = i;
        if (e->cfg.policy != ENG_PRIORITY) break;
        if (before(e->waiting[i], e->waiting[best])) best = i;
    }
    return best;
}

/* prompt_logprobs need one logit row per prompt token: such a sequence's
 * prefill chunk is cut to the rows left in this step's ENG_PLP_ROWS. */
static int plp_cap(const eng_seq *s, int k, int *plp_left) {
    if (s->sp.prompt_logprobs < 0) return k;
    int rows_left = s->n_prompt - 1 - s->n_computed; /* positions whose next token is a prompt token */
    if (rows_left <= 0) return k;
    int rows = k < rows_left ? k : rows_left;
    if (rows > *plp_left) k = rows = *plp_left;
    *plp_left -= rows;
    return k;
}

void sched_step(eng_engine *e) {
    int budget = e->cfg.max_num_batched_tokens, preempted = 0, plp_left = ENG_PLP_ROWS;
    e->n_sched = 0;
    for (int i = 0; i < e->n_running && budget > 0;) {
        eng_seq *s = e->running[i];
        int k = s->n_tokens - s->n_computed;
        if (k > budget) k = budget;
        k = plp_cap(s, k, &plp_left);
        if (k == 0) {
            i++;
            continue;
        }
        int self = 0;
        while (grow(e, s, s->n_computed + k) != 0) {
            int vi = victim_index(e);
            eng_seq *v = e->running[vi];
            if (v->sched_tokens > 0) {
                budget += v->sched_tokens;
                unschedule(e, v);
            }
            if (vi < i) i--;
            sched_preempt(e, v);
            preempted = 1;
            if (v == s) {
                self = 1;
                break;
            }
        }
        if (self) continue; /* s left the running list; i already points at the next */
        schedule(e, s, k);
        budget -= k;
        i++;
    }
    if (preempted) return;
    while (e->n_waiting > 0 && budget > 0 && e->n_running < e->cfg.max_num_seqs) {
        int wi = waiting_pick(e);
        if (wi < 0) break;
        eng_seq *s = e->waiting[wi];
        int bs = e->cfg.block_size;
        if (s->n_blocks == 0) {
            /* prompt_logprobs need the logits of every prompt token: no cache hits (as vLLM) */
            int max_hit = s->sp.prompt_logprobs >= 0 ? 0 : (s->n_tokens - 1) / bs;
            int hit = kv_lookup(e->kv, s->tokens, max_hit, sched_cache_key(s), s->n_cached < 0 ? s->n_prompt : 0,
                                s->blocks, s->hashes);
            s->n_blocks = s->n_hashed = hit;
            s->n_computed = hit * bs;
            if (s->n_cached < 0) s->n_cached = hit * bs < s->n_prompt ? hit * bs : s->n_prompt;
        }
        int k = s->n_tokens - s->n_computed;
        if (k > budget) k = budget;
        k = plp_cap(s, k, &plp_left);
        if (k == 0) break;
        if (grow(e, s, s->n_computed + k) != 0) {
            sched_release(e, s); /* give back the cache hits; try again next step */
            s->n_computed = 0;
            break;
        }
        memmove(e->waiting + wi, e->waiting + wi + 1, sizeof *e->waiting * (size_t)(e->n_waiting - wi - 1));
        e->n_waiting--;
        e->running[e->n_running++] = s;
        s->status = RQ_RUNNING;
        schedule(e, s, k);
        budget -= k;
    }
}
