/* slices: cold masks without the whole walk of the vocabulary (cache.c calls slices_mask for a name
 * whose mask it does not hold).
 *
 * A state inside a string (one with a floor, facts.c) takes the mask of its floored name, the same name in
 * every context the string appears in, so made once (by the rest of this file, on the floored copy of the
 * matcher) and kept in the cache; the copy decides every token whose bytes before its last leave out the
 * floor's exits, and the others (for a JSON string, those that hold a '"' before their end: 1,178 of
 * Qwen2.5's 151,665) are walked from the real state (gram_vocab_exits). After an exit byte the copy
 * accepts less than the real state, never more, so the union is exact.
 *
 * Else: a state that takes no ASCII text (a structural one, where few tokens pass) is walked: the walk is
 * cheap there. One that takes all of it may take strings of P up to a length: a slice and the rest. Else
 * it may take a run of some bytes (its widest character class, or the bytes that lead to the one name
 * most bytes lead to): the run's slice of those, and the tokens that leave it (facts.c has the why). */
#include <stdlib.h>
#include <string.h>

#include "grammar/cache.h"

#define RUN_WALK_MAX 16384 /* tokens one mask may walk one by one (~10 lookups each) before the walk of the whole
                           * trie (~330k nodes for 150k tokens) is the cheaper */

/* The run of set when it is worth its tables, else NULL: when few tokens are made of its bytes alone
 * the walk is cheap (counted once per vocabulary, gram_vocab_run_of). */
static int run_of(const gram_vocab *v, const uint32_t *set, const gram_run **r, int *run) {
    return gram_vocab_run_of(v, set, v->n_tokens / GRAM_RUN_MIN_SHARE, r, run);
}

/* Walk token t alone from name s0 through the DFA; 1 when it is accepted. */
static int walk_token(gram_cache *c, gram_matcher *m, size_t *cur, const gram_vocab *v, int t, int *ok) {
    const unsigned char *s = v->text + v->text_off[t];
    uint32_t l = v->text_off[t + 1] - v->text_off[t];
    *ok = 0;
    for (uint32_t d = 1; d <= l; d++) {
        int32_t y;
        int rc = cache_next_name(c, m, cur, d, s[d - 1], &y);
        if (rc) return rc;
        if (y == T_REJECT) return 0;
        c->pname[d] = y;
        c->pbyte[d] = s[d - 1];
    }
    *ok = 1;
    return 0;
}

/* Walk the tokens tok[lo, hi) of run table r one by one from name s0, those of at most a bytes of the run
 * before they leave it; mark the accepted; returns how many (all of them new: the groups are disjoint). */
static int walk_group(gram_cache *c, gram_matcher *m, const gram_vocab *v, const gram_run *r, int32_t s0, uint32_t lo,
                      uint32_t hi, int a, uint32_t *mask) {
    size_t base = gram_matcher_consumed(m), cur = 0;
    int n = 0, rc = 0;
    c->pname[0] = s0;
    for (uint32_t i = lo; i < hi && !rc; i++) {
        int ok, t = r->tok[i];
        if (r->at[i] > a || (rc = walk_token(c, m, &cur, v, t, &ok)) || !ok) continue;
        mask[t >> 5] |= 1u << (t & 31);
        n++;
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    return rc ? rc : n;
}

/* The mask of name s0 from its run facts (facts.c); *count -1: not cheaper than the walk. The tokens that
 * begin with a byte of the run are its slice, its groups and the longer ones; so E, which a search that met
 * a cycle of names leaves full, counts only outside the run. */
static int run_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, const gram_run *r, int run, int32_t s0,
                    const rfacts *p, uint32_t *mask, int *count) {
    *count = -1;
    int a = p->a, longer = a >= GRAM_SLICE_MAX; /* a >= GRAM_SLICE_MAX: a lower bound, the rest walked */
    if (!longer && !(p->exact && p->b)) return 0;
    uint32_t e[8];
    for (int i = 0; i < 8; i++) e[i] = p->e[i] & ~(i < 4 ? r->set[i] : 0);
    size_t walk = longer ? r->first[257] - r->first[256] : 0;
    for (int b = 0; b < 256; b++)
        if (e[b >> 5] >> (b & 31) & 1) walk += r->first[b + 1] - r->first[b];
    if (walk > RUN_WALK_MAX) return 0;
    int rc = cache_path_room(c, v->max_depth);
    if (rc) return rc;
    int n = a ? gram_vocab_run_slice(v, run, a, mask) : 0;
    if (!a) memset(mask, 0, c->mask_words * sizeof *mask);
    uint32_t child[256] = {0}; /* the root's child of each first byte */
    for (uint32_t i = 1; i < v->n_nodes; i = v->end[i]) child[v->byte[i]] = i;
    for (int b = 0; b < 256; b++) {
        if (!(e[b >> 5] >> (b & 31) & 1)) continue;
        int k = child[b] ? cache_walk_child(c, m, v, s0, child[b], mask) : 0, g = 0;
        if (k < 0 || (g = walk_group(c, m, v, r, s0, r->first[b], r->first[b + 1], a, mask)) < 0) return k < 0 ? k : g;
        n += k + g;
    }
    int g = longer ? walk_group(c, m, v, r, s0, r->first[256], r->first[257], 255, mask) : 0;
    if (g < 0) return g;
    *count = n + g;
    return 0;
}

/* The mask of s0 from the slice of the text facts: *count -1 when they do not allow it. */
static int text_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, uint32_t *mask, int *count) {
    pfacts p;
    int rc = facts_text(c, m, v, s0, &p);
    *count = -1;
    if (rc || !(p.a >= GRAM_SLICE_MAX || (p.exact && p.b))) return rc;
    int a = p.a > GRAM_SLICE_MAX ? GRAM_SLICE_MAX : p.a;
    if (a) memcpy(mask, v->slice + (size_t)(a - 1) * c->mask_words, c->mask_words * sizeof *mask);
    else memset(mask, 0, c->mask_words * sizeof *mask);
    int r = cache_walk(c, m, v->rest, s0, mask);
    if (r < 0) return r;
    *count = (a ? v->slice_count[a - 1] : 0) + r;
    return 0;
}

/* The mask of s0 from the run of set (its facts, then its table): *count -1 when they do not allow it. */
static int run_try(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, const uint32_t *set, uint32_t *mask,
                   int *count) {
    rfacts p;
    const gram_run *r;
    int run, rc = run_of(v, set, &r, &run);
    *count = -1;
    if (rc || !r || (rc = facts_run(c, m, v, s0, set, run, &p))) return rc;
    return run_mask(c, m, v, r, run, s0, &p, mask, count);
}

static int empty_set(const uint32_t *set) { return !(set[0] | set[1] | set[2] | set[3]); }

/* The mask of name s0 (m's top set) from a slice, a run, or the walk. */
static int state_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, uint32_t *mask) {
    int count = -1, acc = 0, mixed = 0, rc = 0;
    uint32_t major[8], cls[8];
    if (s0 >= 0 && v->slice) rc = facts_ascii_scan(c, m, s0, &acc, &mixed, major, cls);
    if (!rc && acc && !mixed) rc = text_mask(c, m, v, s0, mask, &count);
    if (!rc && acc && count < 0 && !empty_set(cls) && memcmp(cls, major, 4 * sizeof *cls))
        rc = run_try(c, m, v, s0, cls, mask, &count);
    if (!rc && acc && count < 0 && !empty_set(major)) rc = run_try(c, m, v, s0, major, mask, &count);
    if (rc) return rc;
    if (count >= 0) {
        c->sliced++;
        return count;
    }
    memset(mask, 0, c->mask_words * sizeof *mask);
    return cache_walk(c, m, v, s0, mask);
}

/* The cache's floored copy of m from set f, its sets named already (m's floored names). */
static int load_floor(gram_cache *c, gram_matcher *m, size_t f, int32_t below) {
    int rc = c->floor_m ? 0 : gram_matcher_new(m->g, &c->floor_m);
    gram_matcher *fm = c->floor_m;
    if (rc || (rc = gram_matcher_load_floor(fm, m, f))) return rc;
    fm->set_sig[0] = below;
    for (size_t j = f; j < m->n_sets; j++) fm->set_sig[j - f + 1] = m->fl_sig[j];
    fm->n_sig = fm->n_sets;
    fm->sig_gen = c->gen;
    return 0;
}

/* After the cold floored mask of a string's text state (fx, the floored copy's top set): the masks of the
 * states that the next code points of text lead to, made now, while the copy is loaded. A bounded string
 * (maxLength) names a state per count, and a generation meets the counts its tokens land on, each once,
 * in whichever sequence gets there first: made together, they cost one mask's time once instead of a
 * cold mask in many steps (the schema's cold p99, issue 13). Each is made by state_mask on the copy in
 * exactly that state, so it is the mask a later visit would make. Stops at the first state that is not
 * plain text, that has its mask already, or after PRECOMPUTE_MAX code points. */
#define PRECOMPUTE_MAX 32
static int precompute_text(gram_cache *c, const gram_vocab *v) {
    gram_matcher *fm = c->floor_m;
    size_t base = gram_matcher_consumed(fm);
    uint32_t *mask = malloc(c->mask_words * sizeof *mask);
    int rc = mask ? 0 : cache_oom();
    for (int i = 0; i < PRECOMPUTE_MAX && !rc; i++) {
        int f = gram_matcher_feed_byte(fm, 'a'), acc = 0, mixed = 0, n;
        uint32_t major[8], cls[8];
        if (f) { /* 1: the string takes no more text; < 0: out of memory */
            rc = f < 0 ? f : 0;
            break;
        }
        if ((rc = cache_name_sets(c, fm))) break;
        int32_t y = fm->set_sig[fm->n_sets - 1];
        if (y < 0 || cache_st(c, y)->mask) break;
        if ((rc = facts_ascii_scan(c, fm, y, &acc, &mixed, major, cls)) || !acc || mixed) break;
        if ((n = state_mask(c, fm, v, y, mask)) < 0) {
            rc = n;
            break;
        }
        rc = cache_keep_mask(c, y, mask, n);
    }
    gram_matcher_rollback(fm, gram_matcher_consumed(fm) - base);
    free(mask);
    return rc;
}

/* The mask of s0 from its floored name's (above); *count -1 when it has no floor worth it. */
static int floored_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, uint32_t *mask, int *count) {
    uint32_t exits[8];
    const gram_vocab *out;
    int32_t fx, below;
    int n, rc;
    *count = -1;
    size_t f = facts_floor(m, exits);
    if (f <= 1) return 0; /* (below set 1 is the initial set, the same in every context: nothing to share) */
    if ((rc = gram_vocab_exits(v, exits, &out)) || !out) return rc;
    if ((rc = cache_floor_name(c, m, f, &fx, &below)) || fx < 0 || fx == s0) return rc;
    if (cache_st(c, fx)->mask) {
        memcpy(mask, cache_st(c, fx)->mask, c->mask_words * sizeof *mask);
        n = cache_st(c, fx)->mask_count;
    } else {
        if ((rc = load_floor(c, m, f, below))) return rc;
        if ((n = state_mask(c, c->floor_m, v, fx, mask)) < 0) return n;
        if ((rc = cache_keep_mask(c, fx, mask, n))) return rc;
        if ((rc = precompute_text(c, v))) return rc;
    }
    int k = cache_walk(c, m, out, s0, mask);
    if (k < 0) return k;
    c->floored++;
    *count = n + k;
    return 0;
}

int slices_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, uint32_t *mask) {
    int count = -1, rc = s0 >= 0 && v->slice ? floored_mask(c, m, v, s0, mask, &count) : 0;
    if (rc) return rc;
    return count >= 0 ? count : state_mask(c, m, v, s0, mask);
}
