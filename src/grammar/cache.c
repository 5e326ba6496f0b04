/* cache: a grammar's cache of matcher states, byte transitions between them, and token masks (step 7:
 * masks in microseconds instead of a walk of the whole vocabulary through the Earley recognizer).
 *
 * Names. What a matcher can still accept depends only on the items of its top Earley set that are
 * not complete (those that scan a byte or wait on a rule) and, through their origins, on the same
 * items of the sets they came from, recursively. (A complete item has done its work in the closure of
 * its set; nothing reads it later, except acceptance, which asks for the root complete at origin 0.)
 * So a set is named by its key: whether it accepts, then the sorted (position, origin) pairs of its
 * incomplete items, with each origin written as the name of that set (or SELF for the set itself).
 * Keys are interned exactly (compared in full, never by hash alone), so two sets with one name accept
 * the same byte strings after them: a mask computed for one is the mask of the other, and a byte
 * leads from one name to one name. A name is a state of a DFA discovered lazily.
 *
 * Because a repetition x* is left recursive (gram_repeat), the sets inside a JSON string or after
 * each digit of a number repeat the same key: a handful of names cover long outputs.
 *
 * The mask walk (cached_walk) goes over the vocabulary's trie keeping the name at each depth. A node
 * whose (parent name, byte) transition is known costs a table read; an unknown one catches the
 * Earley matcher up along the path (its bytes were accepted, so they feed), feeds the byte, names the
 * new set and records the transition. Masks are kept per name for the vocabulary they were made for.
 *
 * Bounds: at most GRAM_CACHE_BYTES per grammar; a full cache names nothing new (the walk feeds the
 * matcher for those parts, exactly as the plain walk) and is emptied before the next mask. Sets of more
 * than SIG_MAX_ITEMS relevant items are not named. One mutex per grammar, held for one mask. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "grammar/grammar.h"
#include "grammar/internal.h"

#define GRAM_CACHE_BYTES ((size_t)64 << 20)
#define SIG_MAX_ITEMS 4096
#define SELF_CODE 0xffffffffu
#define T_UNKNOWN (-2) /* trans[] entries besides a state id */
#define T_REJECT (-3)

typedef struct {
    uint64_t hash;
    size_t key_off;
    uint32_t key_len;
    int32_t mask_count;
    int32_t *trans; /* NULL or [the grammar's n_byte_classes], by byte class */
    uint16_t *group; /* NULL or [n_byte_classes]: byte classes this state's items cannot tell apart share
                      * a group (the lowest such class): one transition found is the transition of all */
    uint32_t *mask; /* NULL or [mask_words] for vocab_uid */
} cstate;

struct gram_cache {
    pthread_mutex_t mu;
    uint64_t gen; /* emptying the cache starts a new generation: names from before mean nothing */
    cstate *st;
    uint32_t n_st, cap_st;
    uint64_t *keys;
    size_t n_keys, cap_keys;
    int32_t *tab; /* open addressing over state ids, -1 empty; tab_cap a power of two (or 0) */
    size_t tab_cap;
    uint64_t vocab_uid;
    size_t mask_words;
    size_t bytes, limit;
    uint64_t *scratch;
    size_t cap_scratch;
    int32_t *pname; /* the walk's path: the name and byte at each depth */
    unsigned char *pbyte;
    size_t cap_path;
    uint64_t n_trans, masks, hits, flushes;
};

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

static void drop_states(gram_cache *c) {
    for (uint32_t i = 0; i < c->n_st; i++) {
        free(c->st[i].trans);
        free(c->st[i].group);
        free(c->st[i].mask);
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
    free(c->st);
    free(c->keys);
    free(c->tab);
    free(c->scratch);
    free(c->pname);
    free(c->pbyte);
    free(c);
}

static int oom(void) { return vc_errf(VC_ENOMEM, "grammar cache: out of memory"); }

static uint64_t hash_key(const uint64_t *k, size_t n) {
    uint64_t h = 0x9E3779B97F4A7C15ull ^ n;
    for (size_t i = 0; i < n; i++) {
        h = (h ^ k[i]) * 0xff51afd7ed558ccdull;
        h ^= h >> 32;
    }
    return h;
}

static int rehash(gram_cache *c) {
    size_t nc = c->tab_cap ? c->tab_cap * 2 : 1024;
    int32_t *t = malloc(nc * sizeof *t);
    if (!t) return oom();
    memset(t, 0xff, nc * sizeof *t);
    for (uint32_t i = 0; i < c->n_st; i++) {
        size_t h = (size_t)c->st[i].hash & (nc - 1);
        while (t[h] >= 0) h = (h + 1) & (nc - 1);
        t[h] = (int32_t)i;
    }
    c->bytes += (nc - c->tab_cap) * sizeof *t;
    free(c->tab);
    c->tab = t;
    c->tab_cap = nc;
    return 0;
}

/* The name of key[0..n): found, or made (GRAM_SIG_NONE once the cache is full). */
static int intern(gram_cache *c, const uint64_t *key, size_t n, int32_t *out) {
    uint64_t h = hash_key(key, n);
    if (c->tab_cap)
        for (size_t i = (size_t)h & (c->tab_cap - 1); c->tab[i] >= 0; i = (i + 1) & (c->tab_cap - 1)) {
            const cstate *s = &c->st[c->tab[i]];
            if (s->hash == h && s->key_len == n && !memcmp(c->keys + s->key_off, key, n * sizeof *key)) {
                *out = c->tab[i];
                return 0;
            }
        }
    *out = GRAM_SIG_NONE;
    if (c->bytes > c->limit || c->n_st >= INT32_MAX / 2) return 0;
    size_t cap = c->cap_st;
    int rc = vc_grow((void **)&c->st, &cap, (size_t)c->n_st + 1, sizeof *c->st);
    if (rc) return rc;
    c->cap_st = (uint32_t)cap;
    if ((rc = vc_grow((void **)&c->keys, &c->cap_keys, c->n_keys + n, sizeof *c->keys))) return rc;
    if (((size_t)c->n_st + 1) * 2 > c->tab_cap && (rc = rehash(c))) return rc;
    memcpy(c->keys + c->n_keys, key, n * sizeof *key);
    c->st[c->n_st] = (cstate){.hash = h, .key_off = c->n_keys, .key_len = (uint32_t)n};
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

/* Name committed set k of m (its origins' sets are named already). */
static int name_set(gram_cache *c, const gram_matcher *m, size_t k, int32_t *out) {
    const gram_grammar *g = m->g;
    size_t s = m->set_start[k], e = m->set_start[k + 1];
    *out = GRAM_SIG_NONE;
    int rc = vc_grow((void **)&c->scratch, &c->cap_scratch, SIG_MAX_ITEMS + 1, sizeof *c->scratch);
    if (rc) return rc;
    uint64_t *key = c->scratch;
    size_t n = 1;
    key[0] = 0;
    for (size_t i = s; i < e; i++) {
        gitem it = m->items[i];
        if (g->pos[it.pos] < 0) { /* complete: only acceptance reads it again */
            if (it.origin == 0 && g->pos[it.pos] == ~(int32_t)g->root) key[0] = 1;
            continue;
        }
        uint32_t code = SELF_CODE;
        if (it.origin != k) {
            int32_t o = m->set_sig[it.origin];
            if (o < 0) return 0; /* from an unnamed set */
            code = (uint32_t)o;
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

/* Name every set of m (after a new generation, from the bottom). */
static int name_sets(gram_cache *c, gram_matcher *m) {
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

/* The byte classes that state x cannot tell apart. A byte only enters a new set through the items of
 * x's set that scan it, and those are in x's key (its incomplete items), so two bytes that every
 * scanning item of x accepts or refuses alike lead x to the same state (or are both refused). The
 * grammar's byte classes are the same thing for all states at once; one state's items usually use
 * few of the grammar's classes (inside a string: the content, the quote, the backslash, the UTF-8
 * lead bytes), so a state's groups are far fewer than the grammar's classes, and each transition
 * found by the Earley matcher is recorded for its whole group. NULL: more than 64 distinct classes
 * scan from x (no grouping; every class is found on its own). */
static uint16_t *make_groups(const gram_cache *c, const gram_grammar *g, int32_t x) {
    const cstate *s = &c->st[x];
    const uint64_t *key = c->keys + s->key_off;
    int cls[64], n = 0, nbc = g->n_byte_classes;
    for (uint32_t i = 1; i < s->key_len; i++) {
        int32_t v = g->pos[key[i] >> 32];
        if (v < 0 || !(v & GRAM_POS_CLASS)) continue;
        int k = v & GRAM_POS_INDEX, j = 0;
        while (j < n && cls[j] != k) j++;
        if (j < n) continue;
        if (n == 64) return NULL;
        cls[n++] = k;
    }
    uint64_t sig[256];
    int seen[256] = {0};
    for (int b = 0; b < 256; b++) { /* one byte per byte class stands for its class */
        int bc = g->byte_class[b];
        if (seen[bc]) continue;
        seen[bc] = 1;
        uint64_t w = 0;
        for (int j = 0; j < n; j++) w |= (uint64_t)gram_bytes_has(&g->classes[cls[j]], (unsigned)b) << j;
        sig[bc] = w;
    }
    uint16_t *grp = malloc((size_t)nbc * sizeof *grp);
    if (!grp) return NULL;
    for (int i = 0; i < nbc; i++) {
        int j = 0;
        while (sig[j] != sig[i]) j++; /* ends at i at the latest */
        grp[i] = (uint16_t)j;
    }
    return grp;
}

static int set_trans(gram_cache *c, const gram_grammar *g, int32_t x, unsigned bc, int32_t y) {
    cstate *s = &c->st[x];
    int nbc = g->n_byte_classes;
    if (!s->trans) {
        if (c->bytes > c->limit) return 0;
        if (!(s->trans = malloc((size_t)nbc * sizeof *s->trans))) return oom();
        for (int i = 0; i < nbc; i++) s->trans[i] = T_UNKNOWN;
        c->bytes += (size_t)nbc * sizeof *s->trans;
        if (nbc <= UINT16_MAX && (s->group = make_groups(c, g, x))) c->bytes += (size_t)nbc * sizeof *s->group;
    }
    s->trans[bc] = y;
    c->n_trans++;
    if (s->group)
        for (int i = 0; i < nbc; i++)
            if (s->group[i] == s->group[bc]) s->trans[i] = y;
    return 0;
}

/* The byte b at depth d is not in the DFA from x: feed the matcher (caught up along the path) and
 * name what it reaches. *y: T_REJECT, a name, or GRAM_SIG_NONE. */
static int step_matcher(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b, int32_t *y) {
    for (; *cur + 1 < d; ++*cur) { /* bytes the DFA accepted: they feed, and their names are known */
        int rc = gram_matcher_feed_byte(m, c->pbyte[*cur + 1]);
        if (rc) return rc < 0 ? rc : vc_errf(VC_EINVAL, "grammar cache: a cached transition disagrees with the matcher");
        m->set_sig[m->n_sets - 1] = c->pname[*cur + 1];
        m->n_sig = m->n_sets;
    }
    int rc = gram_matcher_feed_byte(m, b);
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

/* The mask from name s0 (the matcher's top set), over the trie through the DFA. */
static int cached_walk(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, uint32_t *mask) {
    size_t need = (size_t)v->max_depth + 1, cap = c->cap_path;
    int rc = vc_grow((void **)&c->pname, &cap, need, sizeof *c->pname);
    if (!rc) rc = vc_grow((void **)&c->pbyte, &c->cap_path, need, sizeof *c->pbyte);
    if (rc) return rc;
    memset(mask, 0, ((size_t)v->n_tokens + 31) / 32 * sizeof *mask);
    size_t base = gram_matcher_consumed(m), cur = 0; /* cur: bytes the matcher holds beyond base */
    int count = 0;
    const uint8_t *bclass = m->g->byte_class;
    c->pname[0] = s0;
    for (uint32_t i = 1; i < v->n_nodes;) {
        uint32_t d = v->depth[i];
        unsigned char b = v->byte[i];
        unsigned bc = bclass[b];
        if (cur >= d) {
            gram_matcher_rollback(m, cur - d + 1);
            cur = d - 1;
        }
        int32_t x = c->pname[d - 1], y = T_UNKNOWN;
        if (x >= 0 && c->st[x].trans) y = c->st[x].trans[bc];
        if (y == T_UNKNOWN) {
            if ((rc = step_matcher(c, m, &cur, d, b, &y))) break;
            if (x >= 0 && y != GRAM_SIG_NONE && (rc = set_trans(c, m->g, x, bc, y))) break;
        }
        if (y == T_REJECT) {
            i = v->end[i];
            continue;
        }
        c->pname[d] = y;
        c->pbyte[d] = b;
        count += gram_vocab_mark(v, i, mask);
        i++;
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    return rc < 0 ? rc : count;
}

/* Keep the mask made for name s (when there is room). */
static int keep_mask(gram_cache *c, int32_t s, const uint32_t *mask, int count) {
    if (c->bytes > c->limit) return 0;
    uint32_t *q = malloc(c->mask_words * sizeof *q);
    if (!q) return oom();
    memcpy(q, mask, c->mask_words * sizeof *q);
    c->st[s].mask = q;
    c->st[s].mask_count = count;
    c->bytes += c->mask_words * sizeof *q;
    return 0;
}

static int masked(gram_cache *c, gram_matcher *m, const gram_vocab *v, uint32_t *mask) {
    if (c->bytes > c->limit) {
        drop_states(c);
        c->flushes++;
    }
    if (c->vocab_uid != v->uid) { /* masks are per vocabulary: drop those of another */
        for (uint32_t i = 0; i < c->n_st; i++) {
            if (c->st[i].mask) c->bytes -= c->mask_words * sizeof *c->st[i].mask;
            free(c->st[i].mask);
            c->st[i].mask = NULL;
        }
        c->vocab_uid = v->uid;
        c->mask_words = ((size_t)v->n_tokens + 31) / 32;
    }
    int rc = name_sets(c, m);
    if (rc) return rc;
    int32_t s0 = m->set_sig[m->n_sets - 1];
    c->masks++;
    if (s0 >= 0 && c->st[s0].mask) {
        c->hits++;
        memcpy(mask, c->st[s0].mask, c->mask_words * sizeof *mask);
        return c->st[s0].mask_count;
    }
    int count = cached_walk(c, m, v, s0, mask);
    if (count >= 0 && s0 >= 0 && (rc = keep_mask(c, s0, mask, count))) return rc;
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
    *out = (gram_cache_stats){.masks = c->masks, .mask_hits = c->hits, .transitions = c->n_trans,
                              .states = c->n_st, .bytes = c->bytes, .flushes = c->flushes};
    pthread_mutex_unlock(&c->mu);
}
