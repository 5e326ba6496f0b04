/* logits_proc: vLLM V1's per-request logits processors (allowed_token_ids,
 * bad_words, min_tokens, logit_bias, repetition/frequency/presence penalties),
 * the grammar mask of structured output, and the logprobs record. Order and
 * formulas: see logits_proc.h. */
#include "engine/logits_proc.h"

#define LP_GRAMMAR_ITEMS 20000

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "engine/sampler.h"

static int cmp_i32(const void *a, const void *b) {
    int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    return (x > y) - (x < y);
}

/* Sort a[0..n) and drop duplicates; returns the new length. */
static int sort_unique(int32_t *a, int n) {
    if (n <= 1) return n;
    qsort(a, (size_t)n, sizeof *a, cmp_i32);
    int m = 1;
    for (int i = 1; i < n; i++)
        if (a[i] != a[m - 1]) a[m++] = a[i];
    return m;
}

static int in_sorted(const int32_t *a, int n, int32_t v) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        if (a[mid] < v) lo = mid + 1;
        else hi = mid;
    }
    return lo < n && a[lo] == v;
}

static int32_t *dup_ids(const int32_t *src, int n) {
    int32_t *d = malloc(sizeof *d * (size_t)(n > 0 ? n : 1));
    if (d && n > 0) memcpy(d, src, sizeof *d * (size_t)n);
    return d;
}

static int check_ids(const char *what, const int32_t *ids, int n, int vocab) {
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= vocab)
            return vc_errf(VC_EINVAL, "%s: token id %d is outside the vocabulary [0, %d)", what, (int)ids[i], vocab);
    return VC_OK;
}

typedef struct {
    int32_t tok;
    int idx;
} bias_ord;

static int cmp_bias(const void *a, const void *b) {
    const bias_ord *x = a, *y = b;
    if (x->tok != y->tok) return (x->tok > y->tok) - (x->tok < y->tok);
    return (x->idx > y->idx) - (x->idx < y->idx);
}

static int init_bias(lp_state *st, const eng_sampling_params *p) {
    int n = p->n_logit_bias;
    bias_ord *o = malloc(sizeof *o * (size_t)n);
    st->bias_tok = malloc(sizeof *st->bias_tok * (size_t)n);
    st->bias_val = malloc(sizeof *st->bias_val * (size_t)n);
    if (!o || !st->bias_tok || !st->bias_val) {
        free(o);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    for (int i = 0; i < n; i++) o[i] = (bias_ord){p->logit_bias[i].token, i};
    qsort(o, (size_t)n, sizeof *o, cmp_bias);
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (i + 1 < n && o[i + 1].tok == o[i].tok) continue; /* a later entry for this token wins */
        st->bias_tok[m] = o[i].tok;
        st->bias_val[m++] = p->logit_bias[o[i].idx].bias;
    }
    free(o);
    st->n_bias = m;
    return VC_OK;
}

static int init_bad_words(lp_state *st, const eng_sampling_params *p) {
    int total = 0;
    for (int i = 0; i < p->n_bad_words; i++) {
        if (p->bad_words_len[i] <= 0)
            return vc_errf(VC_EINVAL, "bad_words entries must tokenize to at least one token.");
        total += p->bad_words_len[i];
    }
    st->bw_off = malloc(sizeof *st->bw_off * (size_t)(p->n_bad_words + 1));
    st->bw_tok = malloc(sizeof *st->bw_tok * (size_t)total);
    if (!st->bw_off || !st->bw_tok) return vc_errf(VC_ENOMEM, "out of memory");
    int off = 0;
    for (int i = 0; i < p->n_bad_words; i++) {
        int rc = check_ids("bad_words", p->bad_words[i], p->bad_words_len[i], st->vocab);
        if (rc) return rc;
        st->bw_off[i] = off;
        memcpy(st->bw_tok + off, p->bad_words[i], sizeof(int32_t) * (size_t)p->bad_words_len[i]);
        off += p->bad_words_len[i];
    }
    st->bw_off[p->n_bad_words] = off;
    st->n_bw = p->n_bad_words;
    return VC_OK;
}

/* Reasoning first: has the prompt already ended the reasoning (its last reasoning token is the end, as
 * vLLM's is_reasoning_end scans it)? The grammar then applies from the first output token. */
static void init_reasoning(lp_state *st, const eng_sampling_params *p, const int32_t *prompt, int n_prompt) {
    st->g_end_id = -1;
    st->g_begin = 0;
    if (!p->grammar_after_reasoning) return;
    st->g_end_id = p->reasoning_end_id;
    st->g_begin = -1;
    for (int i = n_prompt - 1; i >= 0; i--) {
        if (prompt[i] == p->reasoning_end_id) st->g_prompt_ended = 1, st->g_begin = 0;
        if (prompt[i] == p->reasoning_end_id || (p->reasoning_start_id >= 0 && prompt[i] == p->reasoning_start_id))
            break;
    }
}

static int init_grammar(lp_state *st, const eng_sampling_params *p, const int32_t *eos_ids, int n_eos,
                        const lp_grammar_vocab *gv) {
    if (!gv || !gv->vocab || !gv->tok || !gv->len)
        return vc_errf(VC_EINVAL, "structured output needs the model's tokenizer");
    if (gram_vocab_size(gv->vocab) != st->vocab)
        return vc_errf(VC_EINVAL, "structured output: the grammar vocabulary has %d tokens, the model %d",
                       gram_vocab_size(gv->vocab), st->vocab);
    st->gv = *gv;
    st->grammar = gram_retain(p->grammar);
    st->g_mask_at = -1;
    int rc = gram_matcher_new(p->grammar, &st->gm);
    if (rc) return rc;
    /* The matcher runs on the engine thread for every token of every constrained sequence: a grammar so
     * ambiguous that one input position holds more than LP_GRAMMAR_ITEMS Earley items (real JSON, regex
     * and GBNF grammars hold tens to hundreds) ends its request with an error instead of stalling the
     * engine for everyone ((a?b?){0,1000} reaches millions after a few hundred bytes). */
    gram_matcher_set_item_limit(st->gm, LP_GRAMMAR_ITEMS);
    st->g_mask = malloc(sizeof *st->g_mask * (((size_t)st->vocab + 31) / 32));
    st->g_eos = malloc(sizeof *st->g_eos * (size_t)(n_eos > 0 ? n_eos : 1));
    if (!st->g_mask || !st->g_eos) return vc_errf(VC_ENOMEM, "out of memory");
    for (int i = 0; i < n_eos; i++)
        if (eos_ids[i] >= 0 && eos_ids[i] < st->vocab) st->g_eos[st->n_g_eos++] = eos_ids[i];
    return VC_OK;
}

int lp_state_init(lp_state *st, const eng_sampling_params *p, int vocab, const int32_t *eos_ids, int n_eos,
                  const int32_t *prompt, int n_prompt) {
    return lp_state_init_gv(st, p, vocab, eos_ids, n_eos, prompt, n_prompt, NULL);
}

int lp_state_init_gv(lp_state *st, const eng_sampling_params *p, int vocab, const int32_t *eos_ids, int n_eos,
                     const int32_t *prompt, int n_prompt, const lp_grammar_vocab *gv) {
    memset(st, 0, sizeof *st);
    st->vocab = vocab;
    if (vocab <= 0) return vc_errf(VC_EINVAL, "logits processors: vocabulary size must be positive, got %d", vocab);
    int rc;

    if (p->allowed_token_ids) {
        if (p->n_allowed <= 0) return vc_errf(VC_EINVAL, "allowed_token_ids is not None and empty!");
        if (check_ids("allowed_token_ids", p->allowed_token_ids, p->n_allowed, vocab))
            return vc_errf(VC_EINVAL, "allowed_token_ids contains out-of-vocab token id!");
        if (!(st->allowed = dup_ids(p->allowed_token_ids, p->n_allowed))) goto oom;
        st->n_allowed = sort_unique(st->allowed, p->n_allowed);
        if (!(st->saved = malloc(sizeof *st->saved * (size_t)st->n_allowed))) goto oom;
    }

    if (p->n_bad_words > 0 && (rc = init_bad_words(st, p))) goto fail;

    if (p->min_tokens > 0 && p->n_stop_token_ids + n_eos > 0) {
        int n = p->n_stop_token_ids + n_eos;
        if (!(st->min_ban = malloc(sizeof *st->min_ban * (size_t)n))) goto oom;
        if (p->n_stop_token_ids) memcpy(st->min_ban, p->stop_token_ids, sizeof(int32_t) * (size_t)p->n_stop_token_ids);
        if (n_eos) memcpy(st->min_ban + p->n_stop_token_ids, eos_ids, sizeof(int32_t) * (size_t)n_eos);
        if ((rc = check_ids("stop_token_ids / eos", st->min_ban, n, vocab))) goto fail;
        st->n_min_ban = sort_unique(st->min_ban, n);
        st->min_tokens = p->min_tokens;
    }

    if (p->n_logit_bias > 0) {
        if ((rc = init_bias(st, p))) goto fail;
        if ((rc = check_ids("logit_bias", st->bias_tok, st->n_bias, vocab))) goto fail;
    }

    st->rep = p->repetition_penalty;
    st->freq = p->frequency_penalty;
    st->pres = p->presence_penalty;
    st->penalties = st->rep != 1.0f || st->freq != 0.0f || st->pres != 0.0f;
    if (st->penalties && st->rep != 1.0f && n_prompt > 0) {
        if ((rc = check_ids("prompt", prompt, n_prompt, vocab))) goto fail;
        if (!(st->prompt_set = dup_ids(prompt, n_prompt))) goto oom;
        st->n_prompt_set = sort_unique(st->prompt_set, n_prompt);
    }

    if (p->grammar && (rc = init_grammar(st, p, eos_ids, n_eos, gv))) goto fail;
    if (p->grammar) init_reasoning(st, p, prompt, n_prompt);

    st->active = st->n_allowed > 0 || st->n_bw > 0 || st->min_tokens > 0 || st->n_bias > 0 || st->penalties ||
                 st->gm != NULL;
    return VC_OK;
oom:
    rc = vc_errf(VC_ENOMEM, "out of memory");
fail:
    lp_state_free(st);
    return rc;
}

void lp_state_free(lp_state *st) {
    if (!st) return;
    free(st->allowed);
    free(st->saved);
    free(st->bw_tok);
    free(st->bw_off);
    free(st->min_ban);
    free(st->bias_tok);
    free(st->bias_val);
    free(st->prompt_set);
    free(st->out_tok);
    free(st->out_cnt);
    free(st->out_in_prompt);
    free(st->ht);
    gram_matcher_free(st->gm);
    gram_free(st->grammar);
    free(st->g_mask);
    free(st->g_eos);
    memset(st, 0, sizeof *st);
}

/* ---- output token counts ---- */

static uint32_t slot_of(int32_t tok, int cap) { return ((uint32_t)tok * 2654435761u) & (uint32_t)(cap - 1); }

static int ht_grow(lp_state *st) {
    int cap = st->ht_cap ? st->ht_cap * 2 : 64;
    int32_t *ht = malloc(sizeof *ht * (size_t)cap);
    if (!ht) return vc_errf(VC_ENOMEM, "out of memory");
    memset(ht, 0xff, sizeof *ht * (size_t)cap); /* -1: empty */
    for (int i = 0; i < st->n_out; i++) {
        uint32_t s = slot_of(st->out_tok[i], cap);
        while (ht[s] >= 0) s = (s + 1) & (uint32_t)(cap - 1);
        ht[s] = i;
    }
    free(st->ht);
    st->ht = ht;
    st->ht_cap = cap;
    return VC_OK;
}

static int out_grow(lp_state *st, int need) {
    if (need <= st->out_cap) return VC_OK;
    int cap = st->out_cap ? st->out_cap : 32;
    while (cap < need) cap *= 2;
    int32_t *t = realloc(st->out_tok, sizeof *t * (size_t)cap);
    if (t) st->out_tok = t;
    int32_t *c = t ? realloc(st->out_cnt, sizeof *c * (size_t)cap) : NULL;
    if (c) st->out_cnt = c;
    uint8_t *f = c ? realloc(st->out_in_prompt, (size_t)cap) : NULL;
    if (f) st->out_in_prompt = f;
    if (!f) return vc_errf(VC_ENOMEM, "out of memory");
    st->out_cap = cap;
    return VC_OK;
}

/* n output tokens hold at most n distinct ones; the index is kept at most half full */
int lp_reserve(lp_state *st, int n_output) {
    if (!st->penalties || n_output <= 0) return VC_OK;
    int n = n_output < st->vocab ? n_output : st->vocab, rc;
    while (st->ht_cap < 2 * n)
        if ((rc = ht_grow(st))) return rc;
    return out_grow(st, n);
}

static int count_token(lp_state *st, int32_t tok) {
    if (tok < 0 || tok >= st->vocab)
        return vc_errf(VC_EINVAL, "output token id %d is outside the vocabulary [0, %d)", (int)tok, st->vocab);
    if ((st->n_out + 1) * 2 > st->ht_cap) {
        int rc = ht_grow(st);
        if (rc) return rc;
    }
    uint32_t s = slot_of(tok, st->ht_cap);
    for (; st->ht[s] >= 0; s = (s + 1) & (uint32_t)(st->ht_cap - 1))
        if (st->out_tok[st->ht[s]] == tok) {
            st->out_cnt[st->ht[s]]++;
            return VC_OK;
        }
    if (st->n_out == st->out_cap) {
        int rc = out_grow(st, st->n_out + 1);
        if (rc) return rc;
    }
    int i = st->n_out++;
    st->out_tok[i] = tok;
    st->out_cnt[i] = 1;
    st->out_in_prompt[i] = (uint8_t)in_sorted(st->prompt_set, st->n_prompt_set, tok);
    st->ht[s] = i;
    return VC_OK;
}

static int update_counts(lp_state *st, const int32_t *output, int n_output) {
    if (n_output < st->n_seen || (st->n_seen > 0 && output[st->n_seen - 1] != st->last_seen)) {
        st->n_out = 0;
        st->n_seen = 0;
        if (st->ht) memset(st->ht, 0xff, sizeof *st->ht * (size_t)st->ht_cap);
    }
    for (int i = st->n_seen; i < n_output; i++) {
        int rc = count_token(st, output[i]);
        if (rc) {
            st->n_seen = i;
            st->last_seen = i > 0 ? output[i - 1] : 0;
            return rc;
        }
    }
    st->n_seen = n_output;
    st->last_seen = n_output > 0 ? output[n_output - 1] : 0;
    return VC_OK;
}

/* ---- grammar ---- */

/* A violation ends the request: kept in the state (lp_apply reports it), never an engine error. */
__attribute__((format(printf, 2, 3))) static int g_fail(lp_state *st, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st->g_msg, sizeof st->g_msg, fmt, ap);
    va_end(ap);
    st->g_err = VC_EINVAL;
    return VC_OK;
}

static int g_is_eos(const lp_state *st, int32_t t) {
    for (int i = 0; i < st->n_g_eos; i++)
        if (st->g_eos[i] == t) return 1;
    return 0;
}

/* Feed the output tokens not fed yet (a changed history starts over). Negative: VC_ENOMEM only. */
static int g_feed(lp_state *st, const int32_t *output, int n_output) {
    if (n_output < st->g_fed || (st->g_fed > 0 && output[st->g_fed - 1] != st->g_last)) {
        gram_matcher_reset(st->gm);
        st->g_fed = 0;
        st->g_mask_at = -1;
    }
    for (int i = st->g_fed; i < n_output; i++) {
        int32_t t = output[i];
        if (t < 0 || t >= st->vocab)
            return g_fail(st, "output token id %d is outside the vocabulary [0, %d)", (int)t, st->vocab);
        size_t n = st->gv.len[t];
        if (n == 0 && !g_is_eos(st, t))
            return g_fail(st, "structured output: output token %d (at %d) has no text and is not EOS: the grammar "
                              "does not allow it", (int)t, i);
        int rc = n ? gram_matcher_feed(st->gm, st->gv.tok[t], n) : 0;
        if (rc == VC_ENOMEM) return rc;
        if (rc < 0) {
            st->g_err = VC_EINVAL;
            snprintf(st->g_msg, sizeof st->g_msg, "structured output: %s", vc_errmsg());
            return VC_OK;
        }
        if (rc == 1)
            return g_fail(st, "structured output: output token %d (at %d) does not continue the grammar", (int)t, i);
        st->g_fed = i + 1;
        st->g_last = t;
        st->g_mask_at = -1;
    }
    return VC_OK;
}

/* The allowed tokens after the fed output: the trie walk, then EOS exactly when the output is a
 * sentence (and only EOS once nothing may follow). Negative: VC_ENOMEM only. */
static int g_compute_mask(lp_state *st, int n_output) {
    size_t words = ((size_t)st->vocab + 31) / 32;
    int accepting = gram_matcher_accepting(st->gm), count = 0;
    if (gram_matcher_can_continue(st->gm)) {
        count = gram_matcher_mask(st->gm, st->gv.vocab, st->g_mask);
        if (count == VC_ENOMEM) return count;
        if (count < 0) {
            st->g_err = VC_EINVAL;
            snprintf(st->g_msg, sizeof st->g_msg, "structured output: %s", vc_errmsg());
            return VC_OK;
        }
    } else {
        memset(st->g_mask, 0, sizeof *st->g_mask * words);
    }
    for (int i = 0; i < st->n_g_eos; i++) {
        int32_t t = st->g_eos[i];
        if (accepting) st->g_mask[t >> 5] |= 1u << (t & 31);
        else if (st->g_mask[t >> 5] >> (t & 31) & 1) {
            st->g_mask[t >> 5] &= ~(1u << (t & 31)); /* an EOS with text: it still ends the output */
            count--;
        }
    }
    if (count <= 0 && !(accepting && st->n_g_eos > 0))
        return g_fail(st, "structured output: no token can continue the output after %d tokens (%lld bytes): the "
                          "grammar allows no token of the vocabulary here",
                      n_output, (long long)gram_matcher_consumed(st->gm));
    st->g_mask_at = n_output;
    return VC_OK;
}

int lp_pending(const lp_state *st, int n_output) { return st->gm && !st->g_err && st->g_mask_at != n_output; }

/* Where the grammar's part of the output begins: 0, or after the reasoning's end token; -1 while the
 * reasoning goes on (no mask: the thinking is free). A shorter history (a recomputed sequence) looks
 * again. */
static int g_begin(lp_state *st, const int32_t *output, int n_output) {
    if (st->g_end_id < 0 || st->g_prompt_ended) return 0;
    if (n_output < st->g_scan) st->g_scan = 0, st->g_begin = -1;
    for (; st->g_begin < 0 && st->g_scan < n_output; st->g_scan++)
        if (output[st->g_scan] == st->g_end_id) st->g_begin = st->g_scan + 1;
    return st->g_begin;
}

int lp_prepare(lp_state *st, const int32_t *output, int n_output) {
    if (!st->gm || st->g_err) return VC_OK;
    int b = g_begin(st, output, n_output);
    if (b < 0) {
        st->g_mask_at = n_output; /* nothing to compute for this token */
        return VC_OK;
    }
    int rc = g_feed(st, output + b, n_output - b);
    if (rc || st->g_err || st->g_mask_at == n_output) return rc;
    return g_compute_mask(st, n_output);
}

/* 6: every token outside the mask -> -inf; some allowed token must stay possible. */
static int g_apply(lp_state *st, const int32_t *output, int n_output, float *logits) {
    int rc = lp_prepare(st, output, n_output);
    if (rc) return rc;
    if (st->g_err) return vc_errf(st->g_err, "%s", st->g_msg);
    if (st->g_begin < 0) return VC_OK; /* reasoning: unconstrained */
    const float ninf = -INFINITY;
    int any = 0, V = st->vocab;
    for (int w = 0; w * 32 < V; w++) { /* a word at a time, visiting only the bits that need work */
        int lo = w * 32, n = V - lo < 32 ? V - lo : 32;
        uint32_t valid = n == 32 ? 0xffffffffu : (1u << n) - 1, m = st->g_mask[w] & valid;
        if (m == 0) {
            for (int i = lo; i < lo + n; i++) logits[i] = ninf;
            continue;
        }
        for (uint32_t z = ~m & valid; z; z &= z - 1) logits[lo + __builtin_ctz(z)] = ninf;
        for (uint32_t a = m; a && !any; a &= a - 1) any = logits[lo + __builtin_ctz(a)] > ninf;
    }
    if (!any) {
        g_fail(st, "structured output: every token the grammar allows after %d tokens is excluded by "
                   "allowed_token_ids, bad_words or min_tokens", n_output);
        return vc_errf(st->g_err, "%s", st->g_msg);
    }
    return VC_OK;
}

/* ---- apply ---- */

static inline float rep_penalty(float x, float rep, float inv) { return x > 0.0f ? x * inv : x * rep; }

static int apply_penalties(lp_state *st, const int32_t *output, int n_output, float *logits);

int lp_apply(lp_state *st, const int32_t *output, int n_output, float *logits) {
    if (!st->active) return VC_OK;
    const float ninf = -INFINITY;

    /* 1. allowed_token_ids */
    if (st->n_allowed > 0) {
        for (int j = 0; j < st->n_allowed; j++) st->saved[j] = logits[st->allowed[j]];
        for (int i = 0; i < st->vocab; i++) logits[i] = ninf;
        for (int j = 0; j < st->n_allowed; j++) logits[st->allowed[j]] = st->saved[j];
    }

    /* 2. bad_words: the prefix must match the end of the output */
    for (int w = 0; w < st->n_bw; w++) {
        const int32_t *word = st->bw_tok + st->bw_off[w];
        int pre = st->bw_off[w + 1] - st->bw_off[w] - 1;
        if (pre > n_output) continue;
        if (pre == 0 || memcmp(output + n_output - pre, word, sizeof *word * (size_t)pre) == 0) logits[word[pre]] = ninf;
    }

    /* 3. min_tokens */
    if (n_output < st->min_tokens)
        for (int j = 0; j < st->n_min_ban; j++) logits[st->min_ban[j]] = ninf;

    /* 4. logit_bias */
    for (int j = 0; j < st->n_bias; j++) logits[st->bias_tok[j]] += st->bias_val[j];

    /* 5. penalties */
    if (st->penalties) {
        int rc = apply_penalties(st, output, n_output, logits);
        if (rc) return rc;
    }

    /* 6. grammar, last */
    return st->gm ? g_apply(st, output, n_output, logits) : VC_OK;
}

static int apply_penalties(lp_state *st, const int32_t *output, int n_output, float *logits) {
    int rc = update_counts(st, output, n_output);
    if (rc) return rc;
    if (st->rep != 1.0f) {
        float rep = st->rep, inv = 1.0f / rep; /* vLLM (CPU path): logits *= 1/rp when positive */
        for (int j = 0; j < st->n_prompt_set; j++) {
            float *l = &logits[st->prompt_set[j]];
            *l = rep_penalty(*l, rep, inv);
        }
        for (int j = 0; j < st->n_out; j++)
            if (!st->out_in_prompt[j]) {
                float *l = &logits[st->out_tok[j]];
                *l = rep_penalty(*l, rep, inv);
            }
    }
    if (st->freq != 0.0f || st->pres != 0.0f)
        for (int j = 0; j < st->n_out; j++) {
            float *l = &logits[st->out_tok[j]];
            *l -= st->freq * (float)st->out_cnt[j];
            *l -= st->pres;
        }
    return VC_OK;
}

/* ---- logprobs ---- */

int lp_logprobs(const float *logits, int vocab, int token, int k, int32_t *top_ids, float *top_logprobs,
                float *token_logprob, int *token_rank) {
    if (vocab <= 0) return vc_errf(VC_EINVAL, "logprobs: vocabulary size must be positive, got %d", vocab);
    int n = k > 0 ? samp_top_logprobs(logits, vocab, k, top_ids, top_logprobs) : 0;
    if (!token_logprob && !token_rank) return n;
    if (token < 0 || token >= vocab)
        return vc_errf(VC_EINVAL, "logprobs: token id %d is outside the vocabulary [0, %d)", token, vocab);
    float lt = logits[token];
    int j = 0;
    while (j < n && top_ids[j] != token) j++;
    /* The top list is sorted by logit: if a strictly smaller logit follows the
     * token there, every token with logit >= the token's is in the list. */
    int closed = 0;
    for (int m = j + 1; m < n && !closed; m++) closed = logits[top_ids[m]] < lt;
    if (token_logprob) *token_logprob = j < n ? top_logprobs[j] : samp_logprob_of(logits, vocab, token);
    if (token_rank) {
        int rank = 0;
        if (j < n && closed) {
            for (int m = 0; m < n; m++) rank += logits[top_ids[m]] >= lt;
        } else {
            for (int i = 0; i < vocab; i++) rank += logits[i] >= lt;
        }
        *token_rank = rank;
    }
    return n;
}
