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
 * A cold mask need not walk the whole trie (masked, below): a state that takes every JSON string text
 * up to some length takes the vocabulary's slice of such tokens and walks the few others ("facts"), a
 * state that loops on one byte set does the same with that run's table ("runs"), and a state inside a
 * string finds those facts through a name that does not depend on the string's context ("floors").
 *
 * Bounds: at most GRAM_CACHE_BYTES per grammar; a full cache names nothing new (the walk feeds the
 * matcher for those parts, exactly as the plain walk) and is emptied before the next mask. Sets of more
 * than SIG_MAX_ITEMS relevant items are not named. One mutex per grammar, held for one mask. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

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
    uint8_t pf_a;   /* with PF_KNOWN: every string of P (internal.h) of up to pf_a code points is accepted */
    uint8_t pf;     /* PF_* */
} cstate;

#define PF_KNOWN 1 /* pf_a holds (a lower bound of the longest such length, capped, or PF_INF) */
#define PF_EXACT 2 /* pf_a is that length itself (some string of P of pf_a + 1 code points is refused) */
#define PF_B 4     /* with PF_EXACT: every string of P of pf_a + 1 code points, and every prefix of one that
                    * begins its last code point, is refused */
#define PF_BUSY 8  /* being found (a cycle of names) */
#define PF_INF 255 /* every string of P is accepted */

#define RUN_MIN_SHARE 150 /* a run that fewer than 1/150 of the tokens (1,000 of 150k) are made of is not worth
                           * its tables: the walk is cheap */
#define RUN_WALK_MAX 16384 /* tokens one mask may walk one by one (~10 lookups each) before the walk of the whole
                           * trie (~330k nodes for 150k tokens) is the cheaper */

/* The facts of a name for the strings of one run's bytes (run_facts). */
typedef struct {
    int32_t x;       /* the name, -1: an empty slot */
    uint8_t run, a, pf, cap; /* a, pf as cstate's pf_a and pf (PF_*); cap: the depth they were found to */
    uint32_t e[8];   /* the bytes outside the run that some name within cap bytes of the run accepts */
} runfact;

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
    uint64_t n_trans, masks, hits, flushes, sliced;
    uint64_t n_feeds;      /* bytes fed to a matcher by the cache (step_matcher), for searches' budgets */
    gram_matcher *floor_m; /* NULL or the floored copy of a matcher (find_floor), to find facts with */
    runfact *rf;           /* facts per (name, run): open addressing on rf_cap (a power of two, or 0) */
    size_t rf_n, rf_cap;
    int32_t *fsig;         /* [cap_fsig] floored names of a matcher's sets from the floor up */
    size_t cap_fsig;
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

static void drop_runs(gram_cache *c) {
    for (size_t i = 0; i < c->rf_cap; i++) c->rf[i].x = -1;
    c->rf_n = 0;
}

static void drop_states(gram_cache *c) {
    drop_runs(c);
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
    free(c->fsig);
    gram_matcher_free(c->floor_m);
    free(c->rf);
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

/* Name committed set k of m as if the sets below f (0: none) were one empty set named below: the name
 * of each origin set o >= f in sig[o - f] (the sets below k are named already). A set named with f > 0
 * is named as gram_matcher_load_floor's copy of it is: one name, whichever matcher holds the items. */
static int name_set_from(gram_cache *c, const gram_matcher *m, size_t k, size_t f, const int32_t *sig, int32_t below,
                         int32_t *out) {
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
        int from_below = f ? it.origin < f : it.origin == 0; /* (the copy's origin 0) */
        if (g->pos[it.pos] < 0) { /* complete: only acceptance reads it again */
            if (from_below && g->pos[it.pos] == ~(int32_t)g->root) key[0] = 1;
            continue;
        }
        uint32_t code = SELF_CODE;
        if (it.origin != k) {
            int32_t o = f && it.origin < f ? below : sig[it.origin - f];
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

/* Name committed set k of m (its origins' sets are named already). */
static int name_set(gram_cache *c, const gram_matcher *m, size_t k, int32_t *out) {
    return name_set_from(c, m, k, 0, m->set_sig, GRAM_SIG_NONE, out);
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
    c->n_feeds += d - *cur;
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

/* Room in the walk's path for depth bytes beyond the matcher's base. */
static int path_room(gram_cache *c, size_t depth) {
    size_t cap = c->cap_path;
    int rc = vc_grow((void **)&c->pname, &cap, depth + 1, sizeof *c->pname);
    return rc ? rc : vc_grow((void **)&c->pbyte, &c->cap_path, depth + 1, sizeof *c->pbyte);
}

/* Where byte b leads from the name at depth d - 1 of the path (pname; the bytes pbyte[1 .. d - 1] lead
 * there from the matcher's base, and the matcher holds *cur of them): the cached transition, or the
 * matcher's answer (recorded). *y: T_REJECT, a name, or GRAM_SIG_NONE. */
static int learn_name(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b, int32_t *y) {
    int32_t x = c->pname[d - 1];
    int rc = step_matcher(c, m, cur, d, b, y);
    if (!rc && x >= 0 && *y != GRAM_SIG_NONE) rc = set_trans(c, m->g, x, m->g->byte_class[b], *y);
    return rc;
}

static inline int next_name(gram_cache *c, gram_matcher *m, size_t *cur, uint32_t d, unsigned char b, int32_t *y) {
    if (*cur >= d) {
        gram_matcher_rollback(m, *cur - d + 1);
        *cur = d - 1;
    }
    int32_t x = c->pname[d - 1];
    *y = x >= 0 && c->st[x].trans ? c->st[x].trans[m->g->byte_class[b]] : T_UNKNOWN;
    return *y != T_UNKNOWN ? 0 : learn_name(c, m, cur, d, b, y); /* the walk's hot path is the lookup */
}

/* Mark in mask the tokens of trie t's nodes [lo, hi) (a subtree of the root, or all) that name s0 (the
 * matcher's top set) accepts, walking the trie through the DFA; returns how many. */
static int cached_walk_range(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t lo, uint32_t hi,
                             uint32_t *mask) {
    int rc = path_room(c, t->max_depth);
    if (rc) return rc;
    size_t base = gram_matcher_consumed(m), cur = 0; /* cur: bytes the matcher holds beyond base */
    int count = 0;
    c->pname[0] = s0;
    for (uint32_t i = lo; i < hi;) {
        uint32_t d = t->depth[i];
        int32_t y;
        if ((rc = next_name(c, m, &cur, d, t->byte[i], &y))) break;
        if (y == T_REJECT) {
            i = t->end[i];
            continue;
        }
        c->pname[d] = y;
        c->pbyte[d] = t->byte[i];
        count += gram_vocab_mark(t, i, mask);
        i++;
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    return rc < 0 ? rc : count;
}

static int cached_walk(gram_cache *c, gram_matcher *m, const gram_vocab *t, int32_t s0, uint32_t *mask) {
    return cached_walk_range(c, m, t, s0, 1, t->n_nodes, mask);
}

/* ---- facts: how a name treats strings of P (internal.h), for the vocabulary's slices ----
 *
 * A(x): the longest L such that x accepts every string of P of up to L code points (capped at the
 * slices' GRAM_SLICE_MAX); B(x): x refuses every string of L + 1 code points and every prefix of one
 * that has begun its last code point. With A and B a mask is the slice of L plus the walk of the tokens
 * in no slice. They are found over the DFA: every code point of P is tried from x one byte class at a
 * time (one byte stands for its class: the grammar cannot tell the others from it), and then from
 * each name a whole code point reaches, to the depth the cap asks. A(x) = 1 + min A(y) over those
 * names y (a name that leads back to itself adds nothing), B(x) = every y has A(y) = A(x) - 1 and
 * B(y). Facts are kept per name, so each is found once: a name's facts belong to its future, whichever
 * matcher (a real one, or a floored copy) was there when they were found. */

#define FACT_WORK 200000 /* transitions one search may look at before it gives up (facts unknown) */
#define FACT_FEEDS_PER_NODE 16 /* and bytes it may feed the matcher: one per this many trie nodes (+64), so
                                * a search never costs much more than the walk it saves */

/* The UTF-8 forms of P's code points: the lead bytes, then each continuation byte's range. */
static const struct {
    unsigned char lo, hi, n, c[3][2];
} utf8_form[] = {
    {0x20, 0x7F, 0, {{0}}}, /* but '"' and '\\' */
    {0xC2, 0xDF, 1, {{0x80, 0xBF}}},
    {0xE0, 0xE0, 2, {{0xA0, 0xBF}, {0x80, 0xBF}}},
    {0xE1, 0xEC, 2, {{0x80, 0xBF}, {0x80, 0xBF}}},
    {0xED, 0xED, 2, {{0x80, 0x9F}, {0x80, 0xBF}}}, /* no surrogates */
    {0xEE, 0xEF, 2, {{0x80, 0xBF}, {0x80, 0xBF}}},
    {0xF0, 0xF0, 3, {{0x90, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {0xF1, 0xF3, 3, {{0x80, 0xBF}, {0x80, 0xBF}, {0x80, 0xBF}}},
    {0xF4, 0xF4, 3, {{0x80, 0x8F}, {0x80, 0xBF}, {0x80, 0xBF}}},
};

typedef struct {
    gram_cache *c;
    gram_matcher *m;
    size_t cur;  /* bytes the matcher holds beyond its base (next_name) */
    size_t work; /* transitions looked at */
    uint64_t feeds_end; /* the cache's n_feeds past which the search gives up */
} search;

static search search_at(gram_cache *c, gram_matcher *m, const gram_vocab *v) {
    return (search){c, m, 0, 0, c->n_feeds + 64 + v->n_nodes / FACT_FEEDS_PER_NODE};
}

typedef struct {
    int a, exact, b; /* A (a lower bound unless exact), B (meaningful when exact) */
} pfacts;

/* What one name's code points showed, over the names they reach. */
typedef struct {
    int32_t x;
    int refused, lead;    /* some code point refused; some lead byte accepted */
    int unknown, self;    /* a name could not be made (or the work ran out); x reached itself */
    int min_a, max_a, min_exact;          /* over the names reached other than x: A's least and greatest... */
    int all_exact, all_b;                 /* ...the least of the exact ones; whether all are exact, all B */
} cpfold;

static int find_facts(search *e, uint32_t d, int cap, pfacts *out);

/* One byte of the code points of form f from depth d (lv: 0 the lead byte, then the continuations). */
static int cp_walk(search *e, uint32_t d, int f, int lv, int cap, cpfold *s) {
    gram_cache *c = e->c;
    const gram_grammar *g = e->m->g;
    unsigned lo = lv ? utf8_form[f].c[lv - 1][0] : utf8_form[f].lo;
    unsigned hi = lv ? utf8_form[f].c[lv - 1][1] : utf8_form[f].hi;
    uint32_t seen[8] = {0}; /* byte classes tried */
    for (unsigned b = lo; b <= hi; b++) {
        if (b == '"' || b == '\\') continue;
        unsigned bc = g->byte_class[b];
        if (seen[bc >> 5] >> (bc & 31) & 1) continue;
        seen[bc >> 5] |= 1u << (bc & 31);
        int32_t y;
        int rc = next_name(c, e->m, &e->cur, d + 1, (unsigned char)b, &y);
        if (rc) return rc;
        if (y == GRAM_SIG_NONE || ++e->work > FACT_WORK || c->n_feeds > e->feeds_end) {
            s->unknown = 1;
            return 0;
        }
        if (y == T_REJECT) {
            s->refused = 1;
        } else if (!lv) {
            s->lead = 1;
        }
        if (s->refused && s->lead) return 0; /* A = 0 and no B: nothing more to learn */
        if (y == T_REJECT || s->refused) continue; /* only whether some lead byte is accepted is left */
        c->pname[d + 1] = y;
        c->pbyte[d + 1] = (unsigned char)b;
        if (lv < utf8_form[f].n) {
            if ((rc = cp_walk(e, d + 1, f, lv + 1, cap, s))) return rc;
            if (s->unknown) return 0;
            continue;
        }
        if (y == s->x) { /* a whole code point back to x */
            s->self = 1;
            continue;
        }
        pfacts p;
        if ((rc = find_facts(e, d + 1, cap - 1, &p))) return rc;
        if (p.a < s->min_a) s->min_a = p.a;
        if (p.a > s->max_a) s->max_a = p.a;
        if (p.exact && p.a < s->min_exact) s->min_exact = p.a;
        s->all_exact &= p.exact;
        s->all_b &= p.b;
    }
    return 0;
}

/* The facts of the name at depth d of the path, A capped at cap. */
static int find_facts(search *e, uint32_t d, int cap, pfacts *out) {
    gram_cache *c = e->c;
    int32_t x = c->pname[d];
    *out = (pfacts){0, 0, 0};
    if (cap <= 0 || (c->st[x].pf & PF_BUSY)) return 0; /* a lower bound of 0 holds */
    uint8_t pf = c->st[x].pf, pa = c->st[x].pf_a;
    if ((pf & PF_KNOWN) && ((pf & PF_EXACT) || pa >= cap)) {
        *out = pa >= cap ? (pfacts){cap, 0, 0} : (pfacts){pa, 1, !!(pf & PF_B)};
        return 0;
    }
    cpfold s = {.x = x, .min_a = INT32_MAX, .max_a = -1, .min_exact = INT32_MAX, .all_exact = 1, .all_b = 1};
    c->st[x].pf |= PF_BUSY;
    int rc = 0;
    for (int f = 0; f < (int)(sizeof utf8_form / sizeof *utf8_form) && !rc; f++) {
        rc = cp_walk(e, d, f, 0, cap, &s);
        if (s.unknown || (s.refused && s.lead)) break;
    }
    c->st[x].pf &= (uint8_t)~PF_BUSY;
    if (rc || s.unknown) return rc;
    if (s.refused) {
        *out = (pfacts){0, 1, !s.lead};
    } else if (s.max_a < 0) { /* every code point comes back to x */
        *out = (pfacts){cap, 0, 0};
        pa = PF_INF;
    } else {
        /* exact when the least is an exact successor's; B when every successor is exactly that */
        int a = 1 + s.min_a, exact = s.min_exact == s.min_a;
        *out = a >= cap ? (pfacts){cap, 0, 0}
                        : (pfacts){a, exact, exact && !s.self && s.all_exact && s.min_a == s.max_a && s.all_b};
    }
    if (pa != PF_INF) pa = (uint8_t)out->a;
    c->st[x].pf_a = pa;
    c->st[x].pf = (uint8_t)(PF_KNOWN | (pa == PF_INF || out->exact ? PF_EXACT : 0) | (out->b ? PF_B : 0));
    return 0;
}

/* ---- floors: one search of facts for every context a string appears in ----
 *
 * Inside a JSON string the name of the matcher's state says where the string sits (the key's origins
 * reach down to the set before the opening quote, and that set's name to the whole output so far), so
 * each context, and each amount of whitespace before it, makes new names whose facts would be searched
 * anew. But the items from below the string's start take no part while its text is fed: only the item
 * that waits for the closing quote is there. The floor of a state is the highest set f such that
 *   - every item of the top set from below f (origin < f) that is not complete scans a byte, and
 *   - every item of the sets f..top from below f that waits on a rule scans a byte once past it,
 * and none of the bytes those items scan (or will, once past their rule) begins or continues a code
 * point of P (or, for a run, is one of its bytes). Then, fed any string of P, the items from below f
 * never complete: they stay as they are or move past their rule to one more byte to scan, wherever
 * they began. The floored copy (gram_matcher_load_floor) holds the same items with every origin below
 * f made one empty set, so it accepts the same strings of P, and the same single byte after one; its
 * name (name_set_from, the same for the real matcher's sets) does not say where the string sits, so
 * every context shares it and its facts, found once. */

#define FLOOR_SCAN 4096 /* sets below the top that find_floor looks through */

/* The bytes that begin or continue a code point of P. */
static const uint32_t p_bytes[8] = {0,           0xFFFFFFFBu, 0xEFFFFFFFu, 0xFFFFFFFFu,
                                    0xFFFFFFFFu, 0xFFFFFFFFu, 0xFFFFFFFCu, 0x001FFFFFu};

/* Whether class position v scans one of the bytes in set. */
static int scans(const gram_grammar *g, int32_t v, const uint32_t *set) {
    const gram_bytes *s = &g->classes[v & GRAM_POS_INDEX];
    for (int w = 0; w < 8; w++)
        if (s->w[w] & set[w]) return 1;
    return 0;
}

static int is_class(int32_t v) { return v >= 0 && (v & GRAM_POS_CLASS); }

/* Whether the items from below f leave the strings of set (P's bytes, or a run's) to the items above. */
static int floor_clear(const gram_matcher *m, size_t f, const uint32_t *set) {
    const gram_grammar *g = m->g;
    size_t k = m->n_sets - 1;
    for (size_t j = f; j <= k; j++)
        for (size_t i = m->set_start[j]; i < m->set_start[j + 1]; i++) {
            gitem it = m->items[i];
            int32_t v = g->pos[it.pos];
            if (it.origin >= f || v < 0) continue;
            if (j == k && (v & GRAM_POS_CLASS) && scans(g, v, set)) return 0;
            if (!(v & GRAM_POS_CLASS) && scans(g, g->pos[it.pos + 1], set)) return 0; /* a class (find_floor) */
        }
    return 1;
}

/* The floor of m's top set for the strings of set, or 0 when it has none (above). */
static size_t find_floor(const gram_matcher *m, const uint32_t *set) {
    const gram_grammar *g = m->g;
    size_t k = m->n_sets - 1, h = k; /* h: the least origin of an item that must be above the floor */
    for (size_t j = k; j >= 1 && k - j <= FLOOR_SCAN; j--) {
        for (size_t i = m->set_start[j]; i < m->set_start[j + 1]; i++) {
            gitem it = m->items[i];
            int32_t v = g->pos[it.pos];
            if (v < 0 || (v & GRAM_POS_CLASS)) continue;
            if ((j == k || !is_class(g->pos[it.pos + 1])) && it.origin < h) h = it.origin;
        }
        if (j <= h) return floor_clear(m, j, set) ? j : 0;
    }
    return 0;
}

/* The floored name of m's top set (floor f): every set from f up named seeing only the items from f up. */
static int floor_name(gram_cache *c, const gram_matcher *m, size_t f, int32_t *out) {
    size_t k = m->n_sets - 1;
    uint64_t empty = 0; /* the key of the copy's set 0 */
    int32_t below;
    int rc = vc_grow((void **)&c->fsig, &c->cap_fsig, k - f + 1, sizeof *c->fsig);
    if (!rc) rc = intern(c, &empty, 1, &below);
    for (size_t j = f; j <= k && !rc; j++) rc = name_set_from(c, m, j, f, c->fsig, below, &c->fsig[j - f]);
    *out = rc ? GRAM_SIG_NONE : c->fsig[k - f];
    return rc;
}

static int facts_ready(const cstate *s) {
    return (s->pf & PF_KNOWN) && ((s->pf & PF_EXACT) || s->pf_a >= GRAM_SLICE_MAX);
}

/* Where name s0 (m's top set) takes the ASCII bytes. *acc: it accepts some byte of ASCII text of P;
 * *mixed: and refuses others (then A = 0 without B: a number, a key, a pattern's character class); run[]
 * is the set of ASCII bytes that lead to the one name most of them lead to (a run, below). */
static int ascii_scan(gram_cache *c, gram_matcher *m, int32_t s0, int *acc_p, int *mixed, uint32_t run[8]) {
    const gram_grammar *g = m->g;
    int32_t to[128];
    int16_t first[256]; /* the first byte of each class seen */
    int acc = 0, ref = 0, rc = 0, best = -1, best_n = 0;
    size_t base = gram_matcher_consumed(m), cur = 0;
    c->pname[0] = s0;
    memset(first, 0xff, sizeof first);
    for (unsigned b = 0; b < 0x80 && !rc; b++) {
        unsigned bc = g->byte_class[b];
        if (first[bc] >= 0) to[b] = to[first[bc]]; /* one byte stands for its class */
        else first[bc] = (int16_t)b, rc = next_name(c, m, &cur, 1, (unsigned char)b, &to[b]);
        if (!rc && b >= 0x20 && b != '"' && b != '\\') {
            acc |= to[b] != T_REJECT;
            ref |= to[b] == T_REJECT;
        }
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    *mixed = acc && ref;
    *acc_p = acc;
    memset(run, 0, 8 * sizeof *run);
    for (unsigned b = 0; b < 0x80 && !rc; b++) { /* the name most bytes lead to */
        int n = 0;
        if (to[b] < 0 || first[g->byte_class[b]] != (int16_t)b) continue;
        for (unsigned a = b; a < 0x80; a++) n += to[a] == to[b];
        if (n > best_n) best_n = n, best = (int)b;
    }
    for (unsigned b = 0; best >= 0 && b < 0x80; b++)
        if (to[b] == to[best]) run[b >> 5] |= 1u << (b & 31);
    return rc;
}

/* The facts of m's top set (name s0): through its floored name when it has a floor, else its own. */
static int state_facts(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, pfacts *out) {
    *out = (pfacts){0, 0, 0};
    gram_matcher *em = m;
    int32_t x = s0;
    int rc = path_room(c, 4 * (GRAM_SLICE_MAX + 1));
    size_t f = facts_ready(&c->st[s0]) ? 0 : find_floor(m, p_bytes);
    if (f) {
        int32_t fx;
        if ((rc = floor_name(c, m, f, &fx))) return rc;
        if (fx >= 0) {
            x = fx;
            if (!facts_ready(&c->st[fx])) { /* search from the floored copy */
                if (!c->floor_m && (rc = gram_matcher_new(m->g, &c->floor_m))) return rc;
                if ((rc = gram_matcher_load_floor(c->floor_m, m, f)) || (rc = name_sets(c, c->floor_m))) return rc;
                em = c->floor_m;
            }
        }
    }
    if (rc) return rc;
    search e = search_at(c, em, v);
    size_t base = gram_matcher_consumed(em);
    c->pname[0] = x;
    rc = find_facts(&e, 0, GRAM_SLICE_MAX, out);
    gram_matcher_rollback(em, gram_matcher_consumed(em) - base);
    if (!rc && x != s0 && (c->st[x].pf & PF_KNOWN)) {
        c->st[s0].pf = c->st[x].pf;
        c->st[s0].pf_a = c->st[x].pf_a;
    }
    return rc;
}

/* ---- runs: states that loop on a set of ASCII bytes (a pattern's [a-z0-9._%+-]{1,64}) ----
 *
 * The same idea for strings of one byte set R (ascii_scan picks it: the bytes that lead to the one name
 * most bytes lead to): A and B as for P, and E, the bytes outside R that some name reached by up to cap
 * bytes of R accepts. A mask is then the tokens of up to A bytes of R (gram_run.len), the tokens that
 * begin with a byte of E (walked from the trie's root), and the tokens that leave R at a byte of E after
 * at most A bytes of R (gram_run's groups, walked one by one); every other token is refused: it is too
 * long a run, or leaves it by a byte no name on the way accepts. */

static runfact *rf_find(gram_cache *c, int32_t x, int run) {
    if (!c->rf_cap) return NULL;
    for (size_t i = ((size_t)x * 8 + (size_t)run) * 0x9E3779B1u & (c->rf_cap - 1);; i = (i + 1) & (c->rf_cap - 1)) {
        if (c->rf[i].x < 0) return NULL;
        if (c->rf[i].x == x && c->rf[i].run == run) return &c->rf[i];
    }
}

/* The slot for (x, run), made when missing (NULL: no memory, or the cache is full). */
static runfact *rf_get(gram_cache *c, int32_t x, int run) {
    runfact *r = rf_find(c, x, run);
    if (r || c->bytes > c->limit) return r;
    if ((c->rf_n + 1) * 2 > c->rf_cap) {
        size_t nc = c->rf_cap ? c->rf_cap * 2 : 1024;
        runfact *t = malloc(nc * sizeof *t), *old = c->rf;
        if (!t) return NULL;
        for (size_t i = 0; i < nc; i++) t[i].x = -1;
        size_t oc = c->rf_cap;
        c->rf = t;
        c->rf_cap = nc;
        c->bytes += (nc - oc) * sizeof *t;
        for (size_t i = 0; i < oc; i++) {
            if (old[i].x < 0) continue;
            size_t j = ((size_t)old[i].x * 8 + old[i].run) * 0x9E3779B1u & (nc - 1);
            while (t[j].x >= 0) j = (j + 1) & (nc - 1);
            t[j] = old[i];
        }
        free(old);
    }
    size_t i = ((size_t)x * 8 + (size_t)run) * 0x9E3779B1u & (c->rf_cap - 1);
    while (c->rf[i].x >= 0) i = (i + 1) & (c->rf_cap - 1);
    c->rf[i] = (runfact){.x = x, .run = (uint8_t)run};
    c->rf_n++;
    return &c->rf[i];
}

typedef struct {
    int a, exact, b;
    uint32_t e[8];
} rfacts;

/* The run facts of the name at depth d of the path, A capped at cap (E: to cap bytes of the run). */
static int find_run_facts(search *e, uint32_t d, int cap, const uint32_t *set, int run, rfacts *out) {
    gram_cache *c = e->c;
    const gram_grammar *g = e->m->g;
    int32_t x = c->pname[d];
    memset(out, 0, sizeof *out);
    const runfact *r = rf_find(c, x, run);
    if (r && (r->pf & PF_BUSY)) { /* a cycle: nothing known of E */
        memset(out->e, 0xff, sizeof out->e);
        return 0;
    }
    if (r && (r->pf & PF_KNOWN) && ((r->pf & PF_EXACT) || r->cap >= cap)) {
        out->a = r->a >= cap ? cap : r->a;
        out->exact = r->a < cap && (r->pf & PF_EXACT);
        out->b = out->exact && (r->pf & PF_B);
        memcpy(out->e, r->e, sizeof out->e);
        return 0;
    }
    runfact *w = rf_get(c, x, run);
    if (!w) { /* no room to keep them: a = 0 is a lower bound, and E is not known */
        memset(out->e, 0xff, sizeof out->e);
        return 0;
    }
    w->pf |= PF_BUSY;
    int32_t to[256];
    int16_t first[256];
    uint8_t followed[256] = {0}; /* classes whose name was followed */
    memset(first, 0xff, sizeof first);
    int rc = 0, refused = 0, lead = 0, self = 0, unknown = 0;
    int min_a = INT32_MAX, max_a = -1, min_exact = INT32_MAX, all_exact = 1, all_b = 1;
    for (unsigned b = 0; b < 256 && !rc && !unknown; b++) {
        unsigned bc = g->byte_class[b];
        int in = b < 0x80 && (set[b >> 5] >> (b & 31) & 1);
        if (first[bc] >= 0) {
            to[b] = to[first[bc]];
        } else {
            first[bc] = (int16_t)b;
            if ((rc = next_name(c, e->m, &e->cur, d + 1, (unsigned char)b, &to[b]))) break;
            if (to[b] == GRAM_SIG_NONE || ++e->work > FACT_WORK || c->n_feeds > e->feeds_end) unknown = 1;
        }
        int32_t y = to[b];
        if (!in) {
            if (y != T_REJECT) out->e[b >> 5] |= 1u << (b & 31);
            continue;
        }
        if (y == T_REJECT) {
            refused = 1;
            continue;
        }
        lead = 1;
        if (y == x) {
            self = 1;
            continue;
        }
        if (followed[bc] || cap <= 0 || refused) continue; /* each class's name once */
        followed[bc] = 1;
        c->pname[d + 1] = y;
        c->pbyte[d + 1] = (unsigned char)b;
        rfacts p;
        if ((rc = find_run_facts(e, d + 1, cap - 1, set, run, &p))) break;
        for (int i = 0; i < 8; i++) out->e[i] |= p.e[i];
        if (p.a < min_a) min_a = p.a;
        if (p.a > max_a) max_a = p.a;
        if (p.exact && p.a < min_exact) min_exact = p.a;
        all_exact &= p.exact;
        all_b &= p.b;
    }
    if (!(w = (runfact *)rf_find(c, x, run))) return rc; /* (the table may have moved) */
    w->pf &= (uint8_t)~PF_BUSY;
    if (rc || unknown) {
        memset(out->e, 0xff, sizeof out->e);
        out->a = out->exact = out->b = 0;
        return rc;
    }
    uint8_t pa;
    if (refused) {
        out->a = 0, out->exact = 1, out->b = !lead;
    } else if (cap <= 0) {
        out->a = 0; /* a lower bound: the run's bytes were not followed */
    } else if (max_a < 0) { /* every byte of the run back to x (or nowhere: no byte in the set at all) */
        out->a = cap;
    } else {
        int a = 1 + min_a, exact = min_exact == min_a;
        if (a >= cap) out->a = cap;
        else out->a = a, out->exact = exact, out->b = exact && !self && all_exact && min_a == max_a && all_b;
    }
    pa = !refused && cap > 0 && max_a < 0 ? PF_INF : (uint8_t)out->a;
    w->a = pa;
    w->cap = (uint8_t)(cap < 0 ? 0 : cap);
    w->pf = (uint8_t)(PF_KNOWN | (pa == PF_INF || out->exact ? PF_EXACT : 0) | (out->b ? PF_B : 0));
    memcpy(w->e, out->e, sizeof w->e);
    return 0;
}

/* The run facts of m's top set (name s0), through its floored name when it has a floor. */
static int run_state_facts(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, const uint32_t *set, int run,
                           rfacts *out) {
    gram_matcher *em = m;
    int32_t x = s0;
    int rc = 0;
    size_t f = find_floor(m, set);
    if (f) {
        int32_t fx;
        if ((rc = floor_name(c, m, f, &fx))) return rc;
        if (fx >= 0) {
            const runfact *r = rf_find(c, fx, run);
            x = fx;
            if (!r || !(r->pf & PF_KNOWN) || !((r->pf & PF_EXACT) || r->cap >= GRAM_SLICE_MAX)) {
                if (!c->floor_m && (rc = gram_matcher_new(m->g, &c->floor_m))) return rc;
                if ((rc = gram_matcher_load_floor(c->floor_m, m, f)) || (rc = name_sets(c, c->floor_m))) return rc;
                em = c->floor_m;
            }
        }
    }
    search e = search_at(c, em, v);
    size_t base = gram_matcher_consumed(em);
    c->pname[0] = x;
    rc = find_run_facts(&e, 0, GRAM_SLICE_MAX, set, run, out);
    gram_matcher_rollback(em, gram_matcher_consumed(em) - base);
    return rc;
}

/* The run of set when it is worth its tables, else NULL: when few tokens are made of its bytes alone
 * the walk is cheap. (Counted on the trie, following only the set's bytes, until enough are seen.) */
static int run_of(const gram_vocab *v, const uint32_t *set, const gram_run **r, int *run) {
    size_t least = (size_t)v->n_tokens / RUN_MIN_SHARE, n = 0;
    *r = NULL;
    for (uint32_t i = 1; i < v->n_nodes && n < least;) {
        unsigned b = v->byte[i];
        if (b >= 0x80 || !(set[b >> 5] >> (b & 31) & 1) || v->depth[i] > GRAM_SLICE_MAX) {
            i = v->end[i];
            continue;
        }
        n += v->tok_first[i + 1] - v->tok_first[i];
        i++;
    }
    if (n < least) return 0;
    int rc = gram_vocab_run(v, set, (int)least, r, run);
    if (!rc && *r && !(*r)->len) *r = NULL;
    return rc;
}

/* Mark the tokens of up to a bytes of the run; returns how many. */
static int run_slice(const gram_run *r, int n, int a, uint32_t *mask) {
    int count = 0, t = 0;
#ifdef __SSE2__
    const __m128i one = _mm_set1_epi8(1), top = _mm_set1_epi8((char)(a - 1));
    for (; t + 32 <= n; t += 32) { /* len - 1 <= a - 1, unsigned: a len of 0 wraps to 255 */
        __m128i v0 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(r->len + t)), one);
        __m128i v1 = _mm_sub_epi8(_mm_loadu_si128((const __m128i *)(r->len + t + 16)), one);
        uint32_t w = (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v0, top), v0)) |
                     (uint32_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v1, top), v1)) << 16;
        mask[t >> 5] = w;
        count += __builtin_popcount(w);
    }
#endif
    for (; t < n; t++)
        if ((unsigned)r->len[t] - 1 < (unsigned)a) {
            mask[t >> 5] |= 1u << (t & 31);
            count++;
        }
    return count;
}

/* Walk token t alone from name s0 through the DFA; 1 when it is accepted. */
static int walk_token(gram_cache *c, gram_matcher *m, size_t *cur, const gram_vocab *v, int t, int *ok) {
    const unsigned char *s = v->text + v->text_off[t];
    uint32_t l = v->text_off[t + 1] - v->text_off[t];
    *ok = 0;
    for (uint32_t d = 1; d <= l; d++) {
        int32_t y;
        int rc = next_name(c, m, cur, d, s[d - 1], &y);
        if (rc) return rc;
        if (y == T_REJECT) return 0;
        c->pname[d] = y;
        c->pbyte[d] = s[d - 1];
    }
    *ok = 1;
    return 0;
}

/* The mask of name s0 from its run facts (run_slices above); *count -1: not cheaper than the walk. */
static int run_mask(gram_cache *c, gram_matcher *m, const gram_vocab *v, const gram_run *r, int32_t s0,
                    const rfacts *p, uint32_t *mask, int *count) {
    *count = -1;
    int a = p->a, longer = a >= GRAM_SLICE_MAX; /* a >= GRAM_SLICE_MAX: a lower bound, the rest walked */
    if (!longer && !(p->exact && p->b)) return 0;
    size_t walk = longer ? r->first[257] - r->first[256] : 0;
    for (int b = 0; b < 256; b++)
        if (p->e[b >> 5] >> (b & 31) & 1) walk += r->first[b + 1] - r->first[b];
    if (walk > RUN_WALK_MAX) return 0;
    int rc = path_room(c, v->max_depth);
    if (rc) return rc;
    memset(mask, 0, c->mask_words * sizeof *mask);
    int n = a ? run_slice(r, v->n_tokens, a, mask) : 0;
    uint32_t child[256] = {0}; /* the root's child of each first byte */
    for (uint32_t i = 1; i < v->n_nodes; i = v->end[i]) child[v->byte[i]] = i;
    for (int b = 0; b < 256 && !rc; b++) {
        if (!(p->e[b >> 5] >> (b & 31) & 1)) continue;
        if (child[b]) {
            int k = cached_walk_range(c, m, v, s0, child[b], v->end[child[b]], mask);
            if (k < 0) return k;
            n += k;
        }
        size_t base = gram_matcher_consumed(m), cur = 0;
        c->pname[0] = s0;
        for (uint32_t i = r->first[b]; i < r->first[b + 1] && !rc; i++) {
            int ok, t = r->tok[i];
            if (r->at[i] > a || (rc = walk_token(c, m, &cur, v, t, &ok)) || !ok) continue;
            mask[t >> 5] |= 1u << (t & 31);
            n++;
        }
        gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    }
    if (longer && !rc) {
        size_t base = gram_matcher_consumed(m), cur = 0;
        c->pname[0] = s0;
        for (uint32_t i = r->first[256]; i < r->first[257] && !rc; i++) {
            int ok, t = r->tok[i];
            if ((rc = walk_token(c, m, &cur, v, t, &ok)) || !ok) continue;
            mask[t >> 5] |= 1u << (t & 31);
            n++;
        }
        gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    }
    if (!rc) *count = n;
    return rc;
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
        drop_runs(c); /* facts per run: runs are the vocabulary's */
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
    /* A state that takes no ASCII text (a structural one, where few tokens pass) is walked: the walk
     * is cheap there. One that takes all of it may take strings of P up to a length: a slice and the
     * rest. Else it may take a run of some bytes: a slice of those, and the tokens that leave it. */
    int count = -1, acc = 0, mixed = 0, run = -1;
    uint32_t set[8];
    if (s0 >= 0 && v->slice && !(rc = path_room(c, 4 * (GRAM_SLICE_MAX + 1))))
        rc = ascii_scan(c, m, s0, &acc, &mixed, set);
    if (rc) return rc;
    if (acc && !mixed) {
        pfacts p;
        if ((rc = state_facts(c, m, v, s0, &p))) return rc;
        if (p.a >= GRAM_SLICE_MAX || (p.exact && p.b)) {
            if (p.a) memcpy(mask, v->slice + (size_t)(p.a - 1) * c->mask_words, c->mask_words * sizeof *mask);
            else memset(mask, 0, c->mask_words * sizeof *mask);
            int r = cached_walk(c, m, v->rest, s0, mask);
            if (r < 0) return r;
            count = (p.a ? v->slice_count[p.a - 1] : 0) + r;
            c->sliced++;
        }
    }
    if (acc && count < 0) {
        rfacts p;
        const gram_run *r;
        if (!(rc = run_of(v, set, &r, &run)) && r && !(rc = run_state_facts(c, m, v, s0, set, run, &p)))
            rc = run_mask(c, m, v, r, s0, &p, mask, &count);
        if (rc) return rc;
        if (count >= 0) c->sliced++;
    }
    if (count < 0) {
        memset(mask, 0, c->mask_words * sizeof *mask);
        count = cached_walk(c, m, v, s0, mask);
    }
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
    *out = (gram_cache_stats){.masks = c->masks, .mask_hits = c->hits, .sliced = c->sliced, .transitions = c->n_trans,
                              .states = c->n_st, .bytes = c->bytes, .flushes = c->flushes};
    pthread_mutex_unlock(&c->mu);
}
