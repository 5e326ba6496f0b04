/* cache: a grammar's cache of matcher states, byte transitions between them, and token masks (step 7:
 * masks in microseconds instead of a walk of the whole vocabulary through the Earley recognizer).
 *
 * Names. What a matcher can still accept depends only on the items of its top Earley set that are
 * not complete (those that scan a byte or wait on a rule) and, through their origins, on what their
 * rules' completions advance there. (A complete item has done its work in the closure of its set;
 * nothing reads it later, except acceptance, which asks for the root complete at origin 0.) So a set is
 * named by its key: whether it accepts, then the sorted (position, origin) pairs of its incomplete
 * items, each origin written as its sub-name (SELF for the set itself). The sub-name of (origin set o,
 * rule r) names what completing r at o advances: o's items that wait on r, and, for those that began
 * in o, what waits on their own rules there, and so on; so an origin's items that can never matter again
 * (the whitespace before a string's quote, the positions of a domain label before its '.') are not in
 * the name, and every such context shares it. Keys are interned exactly (compared in full, never by
 * hash alone), so two sets with one name accept the same byte strings after them: a mask computed for
 * one is the mask of the other, and a byte leads from one name to one name. A name is a state of a DFA
 * discovered lazily.
 *
 * Because a repetition x* is left recursive (gram_repeat), the sets inside a JSON string or after
 * each digit of a number repeat the same key: a handful of names cover long outputs.
 *
 * The mask walk (cache_walk) goes over the vocabulary's trie keeping the name at each depth. A node
 * whose (parent name, byte) transition is known costs a table read; an unknown one catches the
 * Earley matcher up along the path (its bytes were accepted, so they feed), feeds the byte, names the
 * new set and records the transition. A large subtree of the root (the tokens that begin with one
 * byte), once walked from the name its byte leads to, is kept as a bitset (a first-byte memo): every
 * state whose byte leads to that name takes it as it is. Masks are kept per name for the vocabulary
 * they were made for.
 *
 * A cold mask need not walk the whole trie (slices.c): a state that takes every JSON string text up
 * to some length takes the vocabulary's slice of such tokens and walks the few others, a state that
 * loops on one byte set does the same with that run's table (facts.c finds the lengths), and a state
 * inside a string takes the mask of its floored name, which does not depend on the string's context.
 *
 * Bounds: at most GRAM_CACHE_BYTES per grammar; a full cache names nothing new (the walk feeds the
 * matcher for those parts, exactly as the plain walk) and is emptied before the next mask. Sets of more
 * than SIG_MAX_ITEMS relevant items are not named. One mutex per grammar, held for one mask. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "grammar/cache.h"

#define SUB_MAX_RULES 64     /* rules one sub-name may gather (more: the set is not named) */
#define SUB_MAX_KEY 256      /* an origin whose name has a longer key is written as that name (no sub-name) */
#define MEMO_MIN_TOKENS 256  /* subtrees of fewer tokens are walked, never kept */
#define MEMO_MIN_NODES 1024  /* and walks of fewer nodes are cheaper than a memo's bits */

int gram_cache_new(gram_cache **out) {
    gram_cache *c = calloc(1, sizeof *c);
    *out = c;
    if (!c || pthread_mutex_init(&c->mu, NULL)) {
        free(c);
        *out = NULL;
        return vc_errf(VC_ENOMEM, "grammar: out of memory");
    }
    c->gen = 1;
    c->limit = GRAM_CACHE_BYTES;
    return 0;
}

static void drop_memos(gram_cache *c) {
    for (size_t i = 0; i < c->memo_cap; i++) {
        free(c->memo[i].bits);
        c->memo[i] = (memo){.y = -1};
    }
    c->memo_n = 0;
}

static void drop_states(gram_cache *c) {
    facts_drop_runs(c);
    drop_memos(c);
    for (size_t i = 0; i < c->sub_cap; i++) c->sub[i * 3] = -1;
    c->sub_n = 0;
    for (uint32_t i = 0; i < c->n_st; i++) {
        free(cache_st(c, i)->trans);
        free(cache_st(c, i)->mask);
    }
    c->n_st = 0;
    c->n_keys = 0;
    c->n_trans = 0;
    if (c->tab) memset(c->tab, 0xff, c->tab_cap * sizeof *c->tab);
    c->bytes = 0;
    c->gen++;
}

void gram_cache_free(gram_cache *c) {
    if (!c) return;
    drop_states(c);
    pthread_mutex_destroy(&c->mu);
    for (uint32_t i = 0; i < c->n_st_blocks; i++) free(c->st_block[i]);
    free(c->st_block);
    for (size_t i = 0; i < c->n_key_blocks; i++) free(c->key_block[i]);
    free(c->key_block);
    free(c->tab);
    free(c->scratch);
    free(c->pname);
    free(c->pbyte);
    gram_matcher_free(c->floor_m);
    free(c->rf);
    free(c->lhs);
    free(c->cls_bc);
    free(c->form_rep);
    free(c->sub);
    free(c->sub_key);
    free(c->memo);
    free(c);
}

int cache_oom(void) { return vc_errf(VC_ENOMEM, "grammar cache: out of memory"); }

static uint64_t hash_key(const uint64_t *k, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ k[i]) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int rehash(gram_cache *c) {
    size_t nc = c->tab_cap ? c->tab_cap * 2 : 2 * ST_BLOCK;
    int32_t *t = malloc(nc * sizeof *t);
    if (!t) return cache_oom();
    memset(t, 0xff, nc * sizeof *t);
    for (uint32_t i = 0; i < c->n_st; i++) {
        size_t h = (size_t)cache_st(c, i)->hash & (nc - 1);
        while (t[h] >= 0) h = (h + 1) & (nc - 1);
        t[h] = (int32_t)i;
    }
    c->bytes += (nc - c->tab_cap) * sizeof *t;
    free(c->tab);
    c->tab = t;
    c->tab_cap = nc;
    return 0;
}

/* Room for name n_st: its block made when it is the first (blocks stay when the cache is emptied). */
static int st_room(gram_cache *c) {
    uint32_t b = c->n_st / ST_BLOCK;
    if (b < c->n_st_blocks) return 0;
    size_t cap = c->cap_st_blocks;
    int rc = vc_grow((void **)&c->st_block, &cap, (size_t)b + 1, sizeof *c->st_block);
    if (rc) return rc;
    c->cap_st_blocks = (uint32_t)cap;
    if (!(c->st_block[b] = malloc(ST_BLOCK * sizeof **c->st_block))) return cache_oom();
    c->n_st_blocks = b + 1;
    return 0;
}

/* Room for a key of n entries at n_keys: the rest of the last block, or a new one (made once: an emptied
 * cache refills the blocks it has). */
static int key_room(gram_cache *c, size_t n) {
    if (c->n_keys % KEY_BLOCK + n <= KEY_BLOCK && c->n_keys / KEY_BLOCK < c->n_key_blocks) return 0;
    size_t b = c->n_keys % KEY_BLOCK ? c->n_keys / KEY_BLOCK + 1 : c->n_keys / KEY_BLOCK;
    c->n_keys = b * KEY_BLOCK;
    if (b < c->n_key_blocks) return 0;
    int rc = vc_grow((void **)&c->key_block, &c->cap_key_blocks, b + 1, sizeof *c->key_block);
    if (rc) return rc;
    if (!(c->key_block[b] = malloc(KEY_BLOCK * sizeof **c->key_block))) return cache_oom();
    c->n_key_blocks = b + 1;
    return 0;
}

/* The name of key[0..n): found, or made (GRAM_SIG_NONE once the cache is full). */
static int intern(gram_cache *c, const uint64_t *key, size_t n, int32_t *out) {
    uint64_t h = hash_key(key, n);
    if (c->tab_cap)
        for (size_t i = (size_t)h & (c->tab_cap - 1); c->tab[i] >= 0; i = (i + 1) & (c->tab_cap - 1)) {
            const cstate *s = cache_st(c, c->tab[i]);
            if (s->hash == h && s->key_len == n && !memcmp(cache_key(c, c->tab[i]), key, n * sizeof *key)) {
                *out = c->tab[i];
                return 0;
            }
        }
    *out = GRAM_SIG_NONE;
    if (c->bytes > c->limit || c->n_st >= INT32_MAX / 2) return 0;
    int rc = st_room(c);
    if (rc || (rc = key_room(c, n))) return rc;
    if (((size_t)c->n_st + 1) * 2 > c->tab_cap && (rc = rehash(c))) return rc;
    memcpy(c->key_block[c->n_keys / KEY_BLOCK] + c->n_keys % KEY_BLOCK, key, n * sizeof *key);
    *cache_st(c, (int32_t)c->n_st) = (cstate){.hash = h, .key_off = c->n_keys, .key_len = (uint32_t)n};
    c->n_keys += n;
    size_t i = (size_t)h & (c->tab_cap - 1);
    while (c->tab[i] >= 0) i = (i + 1) & (c->tab_cap - 1);
    c->tab[i] = (int32_t)c->n_st;
    c->bytes += n * sizeof *key + sizeof(cstate);
    *out = (int32_t)c->n_st++;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_u64(uint64_t *a, size_t n) {
    if (n > 32) {
        qsort(a, n, sizeof *a, cmp_u64);
        return;
    }
    for (size_t i = 1; i < n; i++) {
        uint64_t x = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > x; j--) a[j] = a[j - 1];
        a[j] = x;
    }
}

/* ---- sub-names: an origin written as what its rule's completion advances there ---- */

/* The grammar's tables the names and searches need: the rule of each position, a byte of each byte class,
 * the byte classes of each class, the byte classes of each of facts.c's UTF-8 ranges. */
static int grammar_tables(gram_cache *c, const gram_grammar *g) {
    if (c->lhs) return 0;
    c->lhs = malloc((g->n_pos + 1) * sizeof *c->lhs);
    c->cls_bc = calloc((size_t)g->n_classes + 1, sizeof *c->cls_bc);
    c->form_rep = malloc(UTF8_RANGES * sizeof *c->form_rep);
    if (!c->lhs || !c->cls_bc || !c->form_rep) {
        free(c->lhs), free(c->cls_bc), free(c->form_rep);
        c->lhs = NULL, c->cls_bc = NULL, c->form_rep = NULL;
        return cache_oom();
    }
    for (int r = 0; r < g->n_rules; r++)
        for (int a = g->alt_first[r]; a < g->alt_first[r + 1]; a++) {
            uint32_t p = g->alt_start[a];
            while (g->pos[p] >= 0) c->lhs[p++] = r;
            c->lhs[p] = r;
        }
    for (int b = 255; b >= 0; b--) c->rep[g->byte_class[b]] = (uint8_t)b;
    for (int k = 0; k < g->n_classes; k++)
        for (unsigned b = 0; b < 256; b++) {
            unsigned bc = g->byte_class[b];
            if (g->classes[k].w[b >> 5] >> (b & 31) & 1) c->cls_bc[k][bc >> 6] |= 1ull << (bc & 63);
        }
    facts_form_ranges(c, g);
    return 0;
}

static size_t sub_slot(const gram_cache *c, int32_t x, int32_t r) {
    return ((size_t)(uint32_t)x * 0x9E3779B1u ^ (size_t)(uint32_t)r * 0x85EBCA77u) & (c->sub_cap - 1);
}

static int sub_put(gram_cache *c, int32_t x, int32_t r, int32_t y) {
    if ((c->sub_n + 1) * 2 > c->sub_cap) {
        size_t oc = c->sub_cap, nc = oc ? oc * 2 : 1024;
        int32_t *t = malloc(nc * 3 * sizeof *t), *old = c->sub;
        if (!t) return cache_oom();
        for (size_t i = 0; i < nc; i++) t[i * 3] = -1;
        c->sub = t;
        c->sub_cap = nc;
        c->bytes += (nc - oc) * 3 * sizeof *t;
        for (size_t i = 0; i < oc; i++) {
            if (old[i * 3] < 0) continue;
            size_t j = sub_slot(c, old[i * 3], old[i * 3 + 1]);
            while (t[j * 3] >= 0) j = (j + 1) & (nc - 1);
            memcpy(t + j * 3, old + i * 3, 3 * sizeof *t);
        }
        free(old);
    }
    size_t j = sub_slot(c, x, r);
    while (c->sub[j * 3] >= 0) j = (j + 1) & (c->sub_cap - 1);
    c->sub[j * 3] = x, c->sub[j * 3 + 1] = r, c->sub[j * 3 + 2] = y;
    c->sub_n++;
    return 0;
}

/* The key of sub-name (x, r) into c->sub_key: 2 (no set's key begins so), then the items of x's key that
 * wait on r, or on the rule of an item so taken that began in x (SELF), sorted. Its length, 0: too many rules. */
static size_t sub_key(gram_cache *c, const gram_grammar *g, int32_t x, int32_t r) {
    const cstate *s = cache_st(c, x);
    const uint64_t *key = cache_key(c, x);
    int32_t rules[SUB_MAX_RULES];
    int nr = 1;
    size_t n = 1;
    rules[0] = r;
    c->sub_key[0] = 2;
    for (int q = 0; q < nr; q++)
        for (uint32_t i = 1; i < s->key_len; i++) {
            uint32_t p = (uint32_t)(key[i] >> 32);
            if (g->pos[p] != rules[q]) continue;
            c->sub_key[n++] = key[i]; /* (each item waits on one rule: taken once) */
            if ((uint32_t)key[i] != SELF_CODE) continue;
            int z = 0;
            while (z < nr && rules[z] != c->lhs[p]) z++;
            if (z < nr) continue;
            if (nr == SUB_MAX_RULES) return 0;
            rules[nr++] = c->lhs[p];
        }
    sort_u64(c->sub_key + 1, n - 1);
    return n;
}

/* The sub-name of (set named x, rule r): found, or made (GRAM_SIG_NONE: none can be). */
static int sub_name(gram_cache *c, const gram_grammar *g, int32_t x, int32_t r, int32_t *out) {
    if (c->sub_cap)
        for (size_t j = sub_slot(c, x, r); c->sub[j * 3] >= 0; j = (j + 1) & (c->sub_cap - 1))
            if (c->sub[j * 3] == x && c->sub[j * 3 + 1] == r) {
                *out = c->sub[j * 3 + 2];
                return 0;
            }
    *out = GRAM_SIG_NONE;
    int rc = vc_grow((void **)&c->sub_key, &c->cap_sub_key, (size_t)cache_st(c, x)->key_len + 1, sizeof *c->sub_key);
    if (rc) return rc;
    size_t n = sub_key(c, g, x, r);
    if (!n || (rc = intern(c, c->sub_key, n, out)) || *out < 0) return rc;
    return sub_put(c, x, r, *out);
}

/* Name committed set k of m as if the sets below f (0: none) were one empty set named below: the name
 * of each origin set o >= f in sig[o - f] (the sets below k are named already). A set named with f > 0
 * is named as gram_matcher_load_floor's copy of it is: one name, whichever matcher holds the items. */
static int name_set_from(gram_cache *c, const gram_matcher *m, size_t k, size_t f, const int32_t *sig, int32_t below,
                         int32_t *out) {
    const gram_grammar *g = m->g;
    size_t s = m->set_start[k], e = m->set_start[k + 1];
    *out = GRAM_SIG_NONE;
    int rc = vc_grow((void **)&c->scratch, &c->cap_scratch, SIG_MAX_ITEMS + 1, sizeof *c->scratch);
    if (rc || (rc = grammar_tables(c, g))) return rc;
    uint64_t *key = c->scratch;
    size_t n = 1;
    key[0] = 0;
    for (size_t i = s; i < e; i++) {
        gitem it = m->items[i];
        int from_below = f ? it.origin < f : it.origin == 0; /* (the copy's origin 0) */
        if (g->pos[it.pos] < 0) { /* complete: only acceptance reads it again */
            if (from_below && g->pos[it.pos] == ~(int32_t)g->root) key[0] = 1;
            continue;
        }
        uint32_t code = SELF_CODE;
        if (it.origin != k) {
            int32_t o = f && it.origin < f ? below : sig[it.origin - f], y;
            if (o < 0) return 0; /* from an unnamed set */
            if (cache_st(c, o)->key_len > SUB_MAX_KEY) { /* its sub-names would cost more than they share */
                code = (uint32_t)o;
            } else {
                if ((rc = sub_name(c, g, o, c->lhs[it.pos], &y)) || y < 0) return rc;
                code = (uint32_t)y;
            }
        }
        if (n > SIG_MAX_ITEMS) return 0;
        key[n++] = (uint64_t)it.pos << 32 | code;
    }
    sort_u64(key + 1, n - 1);
    size_t u = 1; /* distinct origins may share a name: keep one pair */
    for (size_t i = 1; i < n; i++)
        if (u == 1 || key[i] != key[u - 1]) key[u++] = key[i];
    return intern(c, key, u, out);
}

/* Name committed set k of m (its origins' sets are named already). */
static int name_set(gram_cache *c, const gram_matcher *m, size_t k, int32_t *out) {
    return name_set_from(c, m, k, 0, m->set_sig, GRAM_SIG_NONE, out);
}

int cache_name_sets(gram_cache *c, gram_matcher *m) {
    if (m->sig_gen != c->gen) {
        m->sig_gen = c->gen;
        m->n_sig = 0;
    }
    for (; m->n_sig < m->n_sets; m->n_sig++) {
        int rc = name_set(c, m, m->n_sig, &m->set_sig[m->n_sig]);
        if (rc) return rc;
    }
    return 0;
}

int cache_floor_name(gram_cache *c, gram_matcher *m, size_t f, int32_t *out, int32_t *below) {
    uint64_t empty = 0; /* the key of the copy's set 0 */
    int rc = intern(c, &empty, 1, below);
    *out = GRAM_SIG_NONE;
    if (rc || *below < 0) return rc;
    if (m->fl_gen != c->gen || m->fl_f != f) {
        m->fl_gen = c->gen;
        m->fl_f = f;
        m->n_fl = 0;
    }
    for (; f + m->n_fl < m->n_sets; m->n_fl++) /* (names of unnamed sets are GRAM_SIG_NONE: kept, they stay so) */
        if ((rc = name_set_from(c, m, f + m->n_fl, f, m->fl_sig + f, *below, &m->fl_sig[f + m->n_fl]))) return rc;
    *out = m->fl_sig[m->n_sets - 1];
    return 0;
}

/* ---- transitions ---- */

/* The byte classes that state x cannot tell apart, into grp (NULL: no grouping). A byte only enters a new
 * set through the items of x's set that scan it, and those are in x's key (its incomplete items), so two
 * bytes that every scanning item of x accepts or refuses alike lead x to the same state (or are both
 * refused). The grammar's byte classes are the same thing for all states at once; one state's items
 * usually use few of the grammar's classes (inside a string: the content, the quote, the backslash, the
 * UTF-8 lead bytes), so a state's groups are far fewer than the grammar's classes, and each transition
 * found by the Earley matcher is recorded for its whole group. The groups are found by refining the
 * partition of the byte classes by each class x's items scan (as bitsets). */
static void make_groups(const gram_cache *c, const gram_grammar *g, int32_t x, uint16_t *grp) {
    const cstate *s = cache_st(c, x);
    const uint64_t *key = cache_key(c, x);
    int nbc = g->n_byte_classes, ng = 1;
    uint64_t part[256][4] = {{0}}; /* the groups so far, as sets of byte classes */
    for (int bc = 0; bc < nbc; bc++) part[0][bc >> 6] |= 1ull << (bc & 63);
    for (uint32_t i = 1; i < s->key_len && ng < nbc; i++) {
        int32_t v = g->pos[key[i] >> 32];
        if (v < 0 || !(v & GRAM_POS_CLASS)) continue;
        const uint64_t *k = c->cls_bc[v & GRAM_POS_INDEX];
        for (int q = 0, n0 = ng; q < n0; q++) { /* split each group by the class (again: a no-op) */
            uint64_t in = 0, out = 0;
            for (int w = 0; w < 4; w++) in |= part[q][w] & k[w], out |= part[q][w] & ~k[w];
            if (!in || !out) continue;
            for (int w = 0; w < 4; w++) part[ng][w] = part[q][w] & ~k[w], part[q][w] &= k[w];
            ng++;
        }
    }
    for (int q = 0; q < ng; q++) {
        int low = -1;
        for (int w = 0; w < 4; w++)
            for (uint64_t b = part[q][w]; b; b &= b - 1) {
                int bc = w * 64 + __builtin_ctzll(b);
                if (low < 0) low = bc;
                grp[bc] = (uint16_t)low;
            }
    }
}

static int set_trans(gram_cache *c, const gram_grammar *g, int32_t x, unsigned bc, int32_t y) {
    cstate *s = cache_st(c, x);
    int nbc = g->n_byte_classes;
    if (!s->trans) {
        size_t bytes = (size_t)nbc * (sizeof *s->trans + sizeof *s->group);
        if (c->bytes > c->limit) return 0;
        if (!(s->trans = malloc(bytes))) return cache_oom();
        for (int i = 0; i < nbc; i++) s->trans[i] = T_UNKNOWN;
        c->bytes += bytes;
        s->group = (uint16_t *)(s->trans + nbc);
        make_groups(c, g, x, s->group);
    }
    s->trans[bc] = y;
    c->n_trans++;
    if (s->group)
        for (int i = 0; i < nbc; i++)
            if (s->group[i] == s->group[bc]) s->trans[i] = y;
    return 0;
}

/* Catch the matcher up along the path to depth d - 1 (*cur bytes held): bytes the DFA accepted, so they
 * feed, and their names are known. */
static int feed_path(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d) {
    for (; *cur + 1 < d; ++*cur) {
        int rc = gram_matcher_feed_byte(m, c->pbyte[*cur + 1]);
        if (rc < 0) return rc;
        if (rc) return vc_errf(VC_EINVAL, "grammar cache: a cached transition disagrees with the matcher");
        m->set_sig[m->n_sets - 1] = c->pname[*cur + 1];
        m->n_sig = m->n_sets;
    }
    return 0;
}

/* The byte b at depth d is not in the DFA from x: feed the matcher (caught up along the path) and
 * name what it reaches. *y: T_REJECT, a name, or GRAM_SIG_NONE. */
static int step_matcher(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b, int32_t *y) {
    size_t items = m->n_items;
    int rc = feed_path(c, m, cur, d);
    if (!rc) rc = gram_matcher_feed_byte(m, b);
    c->n_items += m->n_items - items;
    if (rc == 1) {
        *y = T_REJECT;
        return 0;
    }
    if (rc) return rc;
    *cur = d;
    if ((rc = name_set(c, m, m->n_sets - 1, &m->set_sig[m->n_sets - 1]))) return rc;
    m->n_sig = m->n_sets;
    *y = m->set_sig[m->n_sets - 1];
    return 0;
}

int cache_path_room(gram_cache *c, size_t depth) {
    size_t cap = c->cap_path;
    int rc = vc_grow((void **)&c->pname, &cap, depth + 1, sizeof *c->pname);
    return rc ? rc : vc_grow((void **)&c->pbyte, &c->cap_path, depth + 1, sizeof *c->pbyte);
}

int cache_learn_name(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b, int32_t *y) {
    int32_t x = c->pname[d - 1];
    int rc = step_matcher(c, m, cur, d, b, y);
    if (!rc && x >= 0 && *y != GRAM_SIG_NONE) rc = set_trans(c, m->g, x, m->g->byte_class[b], *y);
    return rc;
}

/* ---- walks ---- */

/* Mark the tokens that end at trie node i (and their bits in memo bits, numbered from token lo); returns
 * how many were not marked yet. */
static inline int mark_node(const gram_vocab *t, uint32_t i, uint32_t *mask, uint32_t *bits, uint32_t lo) {
    int fresh = 0;
    for (uint32_t j = t->tok_first[i]; j < t->tok_first[i + 1]; j++) {
        int32_t k = t->tok_ids[j];
        uint32_t *w = &mask[k >> 5], bit = 1u << (k & 31);
        fresh += !(*w & bit);
        *w |= bit;
        if (bits) bits[(j - lo) >> 5] |= 1u << ((j - lo) & 31);
    }
    return fresh;
}

/* Mark in mask the tokens of trie t's nodes [lo, hi) (a subtree of the root) that name s0 (the matcher's
 * top set) accepts, walking the trie through the DFA (and in bits, numbered from token tlo, with bits);
 * returns how many were not marked yet; *nodes: the nodes looked at. */
static int walk_range(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t lo, uint32_t hi,
                      uint32_t *mask, uint32_t *bits, uint32_t tlo, uint32_t *nodes) {
    int rc = cache_path_room(c, t->max_depth);
    if (rc) return rc;
    size_t base = gram_matcher_consumed(m), cur = 0; /* cur: bytes the matcher holds beyond base */
    int count = 0;
    uint32_t seen = 0;
    c->pname[0] = s0;
    for (uint32_t i = lo; i < hi; seen++) {
        uint32_t d = t->depth[i];
        int32_t y;
        if ((rc = cache_next_name(c, m, &cur, d, t->byte[i], &y))) break;
        if (y == T_REJECT) {
            i = t->end[i];
            continue;
        }
        c->pname[d] = y;
        c->pbyte[d] = t->byte[i];
        count += mark_node(t, i, mask, bits, tlo);
        i++;
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    *nodes = seen;
    return rc < 0 ? rc : count;
}

static size_t memo_slot(const gram_cache *c, int32_t y, uint32_t node, uint64_t trie) {
    uint64_t h = ((uint64_t)(uint32_t)y << 32 | node) * 0x9E3779B97F4A7C15ull ^ trie * 0xff51afd7ed558ccdull;
    return (size_t)(h >> 20) & (c->memo_cap - 1);
}

static const memo *memo_find(const gram_cache *c, int32_t y, uint32_t node, uint64_t trie) {
    if (!c->memo_cap) return NULL;
    for (size_t i = memo_slot(c, y, node, trie);; i = (i + 1) & (c->memo_cap - 1)) {
        const memo *e = &c->memo[i];
        if (e->y < 0) return NULL;
        if (e->y == y && e->node == node && e->trie == trie) return e;
    }
}

/* Keep bits as the memo of (y, node, trie) (freed when there is no room). */
static int memo_put(gram_cache *c, int32_t y, uint32_t node, uint64_t trie, uint32_t *bits, size_t words) {
    if (c->bytes > c->limit) {
        free(bits);
        return 0;
    }
    if ((c->memo_n + 1) * 2 > c->memo_cap) {
        size_t oc = c->memo_cap, nc = oc ? oc * 2 : 64;
        memo *t = malloc(nc * sizeof *t), *old = c->memo;
        if (!t) {
            free(bits);
            return cache_oom();
        }
        for (size_t i = 0; i < nc; i++) t[i] = (memo){.y = -1};
        c->memo = t;
        c->memo_cap = nc;
        c->bytes += (nc - oc) * sizeof *t;
        for (size_t i = 0; i < oc; i++) {
            if (old[i].y < 0) continue;
            size_t j = memo_slot(c, old[i].y, old[i].node, old[i].trie);
            while (t[j].y >= 0) j = (j + 1) & (nc - 1);
            t[j] = old[i];
        }
        free(old);
    }
    size_t i = memo_slot(c, y, node, trie);
    while (c->memo[i].y >= 0) i = (i + 1) & (c->memo_cap - 1);
    c->memo[i] = (memo){.y = y, .node = node, .trie = trie, .bits = bits};
    c->memo_n++;
    c->bytes += words * sizeof *bits;
    return 0;
}

/* Mark the tokens of memo e (the subtree of t's node e->node); returns how many were not marked yet. */
static int memo_mark(const gram_vocab *t, const memo *e, uint32_t *mask) {
    uint32_t lo = t->tok_first[e->node], n = t->tok_first[t->end[e->node]] - lo;
    int fresh = 0;
    for (uint32_t w = 0; w < (n + 31) / 32; w++)
        for (uint32_t b = e->bits[w]; b; b &= b - 1) {
            int32_t k = t->tok_ids[lo + w * 32 + (uint32_t)__builtin_ctz(b)];
            fresh += !(mask[k >> 5] >> (k & 31) & 1);
            mask[k >> 5] |= 1u << (k & 31);
        }
    return fresh;
}

int cache_walk_child(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t u, uint32_t *mask) {
    uint32_t lo = t->tok_first[u], n = t->tok_first[t->end[u]] - lo, seen;
    if (n < MEMO_MIN_TOKENS || s0 < 0) return walk_range(c, m, t, s0, u, t->end[u], mask, NULL, 0, &seen);
    int32_t y;
    size_t base = gram_matcher_consumed(m), cur = 0;
    int rc = cache_path_room(c, 1);
    if (rc) return rc;
    c->pname[0] = s0;
    rc = cache_next_name(c, m, &cur, 1, t->byte[u], &y);
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    if (rc || y == T_REJECT) return rc;
    const memo *e = y >= 0 ? memo_find(c, y, u, t->uid) : NULL;
    if (e) {
        c->memo_hits++;
        return memo_mark(t, e, mask);
    }
    size_t words = (n + 31) / 32;
    uint32_t *bits = y >= 0 ? calloc(words, sizeof *bits) : NULL;
    int count = walk_range(c, m, t, s0, u, t->end[u], mask, bits, lo, &seen);
    if (count < 0 || seen < MEMO_MIN_NODES || !bits) {
        free(bits);
        return count;
    }
    rc = memo_put(c, y, u, t->uid, bits, words);
    return rc ? rc : count;
}

int cache_walk(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t *mask) {
    int count = 0;
    for (uint32_t u = 1; u < t->n_nodes; u = t->end[u]) {
        int k = cache_walk_child(c, m, t, s0, u, mask);
        if (k < 0) return k;
        count += k;
    }
    return count;
}

/* ---- the masks ---- */

int cache_keep_mask(gram_cache *c, int32_t s, const uint32_t *mask, int count) {
    if (c->bytes > c->limit) return 0;
    uint32_t *q = malloc(c->mask_words * sizeof *q);
    if (!q) return cache_oom();
    memcpy(q, mask, c->mask_words * sizeof *q);
    cache_st(c, s)->mask = q;
    cache_st(c, s)->mask_count = count;
    c->bytes += c->mask_words * sizeof *q;
    return 0;
}

/* Masks, memos and run facts are per vocabulary: drop those of another. */
static void use_vocab(gram_cache *c, const gram_vocab *v) {
    for (uint32_t i = 0; i < c->n_st; i++) {
        if (cache_st(c, i)->mask) c->bytes -= c->mask_words * sizeof *cache_st(c, i)->mask;
        free(cache_st(c, i)->mask);
        cache_st(c, i)->mask = NULL;
    }
    drop_memos(c);
    facts_drop_runs(c);
    c->vocab_uid = v->uid;
    c->mask_words = ((size_t)v->n_tokens + 31) / 32;
}

static int masked(gram_cache *c, gram_matcher *m, const gram_vocab *v, uint32_t *mask) {
    if (c->bytes > c->limit) {
        drop_states(c);
        c->flushes++;
    }
    if (c->vocab_uid != v->uid) use_vocab(c, v);
    int rc = cache_name_sets(c, m);
    if (rc) return rc;
    int32_t s0 = m->set_sig[m->n_sets - 1];
    c->masks++;
    if (s0 >= 0 && cache_st(c, s0)->mask) {
        c->hits++;
        memcpy(mask, cache_st(c, s0)->mask, c->mask_words * sizeof *mask);
        return cache_st(c, s0)->mask_count;
    }
    int count = slices_mask(c, m, v, s0, mask);
    if (count >= 0 && s0 >= 0 && (rc = cache_keep_mask(c, s0, mask, count))) return rc;
    return count;
}

int gram_matcher_mask(gram_matcher *m, const gram_vocab *v, uint32_t *mask) {
    gram_cache *c = m->g->cache;
    if (!m->use_cache || !c) return gram_mask_walk(m, v, mask);
    pthread_mutex_lock(&c->mu);
    int rc = masked(c, m, v, mask);
    pthread_mutex_unlock(&c->mu);
    return rc;
}

void gram_grammar_cache_limit(gram_grammar *g, size_t bytes) {
    gram_cache *c = g->cache;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    c->limit = bytes ? bytes : GRAM_CACHE_BYTES;
    pthread_mutex_unlock(&c->mu);
}

void gram_matcher_use_cache(gram_matcher *m, int on) { m->use_cache = on != 0; }

void gram_grammar_cache_stats(const gram_grammar *g, gram_cache_stats *out) {
    memset(out, 0, sizeof *out);
    gram_cache *c = g->cache;
    if (!c) return;
    pthread_mutex_lock(&c->mu);
    *out = (gram_cache_stats){.masks = c->masks, .mask_hits = c->hits, .sliced = c->sliced, .floored = c->floored,
                              .memo_hits = c->memo_hits, .transitions = c->n_trans, .states = c->n_st,
                              .bytes = c->bytes, .flushes = c->flushes};
    pthread_mutex_unlock(&c->mu);
}
