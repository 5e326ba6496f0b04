/* grammar: the builder (rules, alternatives, elements; the UTF-8 and repeat helpers) and
 * gram_build, which checks the rules and freezes them into the layout the matcher reads
 * (grammar.h, "the frozen layout"). The matcher is matcher.c, the vocabulary trie vocab.c. */
#include "grammar/grammar.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "grammar/internal.h"

#define GRAM_DEFAULT_MAX_ELEMS 1000000
#define GRAM_MAX_REPEAT 100000

void gram_bytes_clear(gram_bytes *s) { memset(s, 0, sizeof *s); }
void gram_bytes_add(gram_bytes *s, unsigned b) {
    if (b < 256) s->w[b >> 5] |= 1u << (b & 31);
}
void gram_bytes_add_range(gram_bytes *s, unsigned lo, unsigned hi) {
    for (unsigned b = lo; b <= hi && b < 256; b++) gram_bytes_add(s, b);
}
int gram_bytes_has(const gram_bytes *s, unsigned b) { return b < 256 && (s->w[b >> 5] >> (b & 31)) & 1; }

static int bytes_empty(const gram_bytes *s) {
    uint32_t o = 0;
    for (int i = 0; i < 8; i++) o |= s->w[i];
    return o == 0;
}

/* Elements are kept as (alternative, symbol) pairs in the order they were added, so that a helper
 * may build rules in the middle of a front end's alternative; gram_build groups them by
 * alternative (a stable counting sort). A symbol >= 0 is a rule, < 0 is byte class ~sym. */
typedef struct {
    int alt;
    int32_t sym;
} belem;

struct gram_builder {
    size_t max_elems;
    char **names;       /* [n_rules] */
    int *rule_nalts;    /* [n_rules] */
    int n_rules, cap_rules;
    int *alt_rule;      /* [n_alts] */
    int *alt_tail;      /* [n_alts] 0, or the element from which the alternative may end (gram_repeat's
                         * counted repetitions: the elements from there on are an optional tail) */
    int n_alts, cap_alts;
    int cur_alt;        /* -1: none started */
    belem *elems;
    size_t n_elems, cap_elems;
    gram_bytes *classes;
    int n_classes, cap_classes;
    int *chash;         /* open addressing over class indices, -1 empty; [chash_cap] */
    int chash_cap;
    int failed; /* VC_ENOMEM or VC_EINVAL (too large) once a call failed so: gram_build fails too */
};

/* Grow *p (of *cap elements of size sz) to hold at least need: 0 or VC_ENOMEM (no message). */
static int grow(void *p, int *cap, int need, size_t sz) {
    if (need <= *cap) return 0;
    int nc = *cap ? *cap : 16;
    while (nc < need) {
        if (nc > (1 << 29)) return VC_ENOMEM;
        nc *= 2;
    }
    size_t bytes;
    if (vc_ckd_array((size_t)nc, sz, &bytes)) return VC_ENOMEM;
    void *q = realloc(*(void **)p, bytes);
    if (!q) return VC_ENOMEM;
    *(void **)p = q;
    *cap = nc;
    return 0;
}

int gram_builder_new(size_t max_elems, gram_builder **out) {
    *out = NULL;
    gram_builder *b = calloc(1, sizeof *b);
    if (!b) return vc_errf(VC_ENOMEM, "grammar: out of memory");
    b->max_elems = max_elems ? max_elems : GRAM_DEFAULT_MAX_ELEMS;
    b->cur_alt = -1;
    *out = b;
    return 0;
}

void gram_builder_free(gram_builder *b) {
    if (!b) return;
    for (int i = 0; i < b->n_rules; i++) free(b->names[i]);
    free(b->names);
    free(b->rule_nalts);
    free(b->alt_rule);
    free(b->alt_tail);
    free(b->elems);
    free(b->classes);
    free(b->chash);
    free(b);
}

static int nomem(gram_builder *b) {
    b->failed = VC_ENOMEM;
    return vc_errf(VC_ENOMEM, "grammar: out of memory");
}

static int too_large(gram_builder *b) {
    b->failed = VC_EINVAL;
    return vc_errf(VC_EINVAL, "grammar too large (more than %zu elements)", b->max_elems);
}

int gram_rule(gram_builder *b, const char *name) {
    if (b->n_rules >= GRAM_POS_INDEX / 2) return too_large(b);
    int cap = b->cap_rules;
    if (grow(&b->names, &cap, b->n_rules + 1, sizeof *b->names)) return nomem(b);
    cap = b->cap_rules;
    if (grow(&b->rule_nalts, &cap, b->n_rules + 1, sizeof *b->rule_nalts)) return nomem(b);
    b->cap_rules = cap;
    char *copy = NULL;
    if (name && !(copy = strdup(name))) return nomem(b);
    b->names[b->n_rules] = copy;
    b->rule_nalts[b->n_rules] = 0;
    return b->n_rules++;
}

int gram_alt(gram_builder *b, int r) {
    if (r < 0 || r >= b->n_rules) return vc_errf(VC_EINVAL, "grammar: no rule %d", r);
    if (b->n_alts >= GRAM_POS_INDEX / 2) return too_large(b);
    int cap = b->cap_alts;
    if (grow(&b->alt_tail, &cap, b->n_alts + 1, sizeof *b->alt_tail)) return nomem(b);
    if (grow(&b->alt_rule, &b->cap_alts, b->n_alts + 1, sizeof *b->alt_rule)) return nomem(b);
    b->alt_rule[b->n_alts] = r;
    b->alt_tail[b->n_alts] = 0;
    b->rule_nalts[r]++;
    b->cur_alt = b->n_alts++;
    return 0;
}

static int add_sym(gram_builder *b, int32_t sym) {
    if (b->cur_alt < 0) return vc_errf(VC_EINVAL, "grammar: element added before any alternative");
    if (b->n_elems >= b->max_elems) return too_large(b);
    if (b->n_elems == b->cap_elems) {
        size_t nc = b->cap_elems ? b->cap_elems * 2 : 64, bytes;
        if (vc_ckd_array(nc, sizeof *b->elems, &bytes)) return nomem(b);
        belem *q = realloc(b->elems, bytes);
        if (!q) return nomem(b);
        b->elems = q;
        b->cap_elems = nc;
    }
    b->elems[b->n_elems++] = (belem){b->cur_alt, sym};
    return 0;
}

static unsigned class_hash(const gram_bytes *s) {
    uint32_t h = 2166136261u;
    for (int i = 0; i < 8; i++) h = (h ^ s->w[i]) * 16777619u;
    return h ^ (h >> 15);
}

/* The index of class s in the deduplicated table (added if new). */
static int class_index(gram_builder *b, const gram_bytes *s) {
    if (b->n_classes * 2 >= b->chash_cap) {
        int nc = b->chash_cap ? b->chash_cap * 2 : 64;
        int *h = malloc((size_t)nc * sizeof *h);
        if (!h) return nomem(b);
        for (int i = 0; i < nc; i++) h[i] = -1;
        for (int c = 0; c < b->n_classes; c++) {
            unsigned i = class_hash(&b->classes[c]) & (unsigned)(nc - 1);
            while (h[i] >= 0) i = (i + 1) & (unsigned)(nc - 1);
            h[i] = c;
        }
        free(b->chash);
        b->chash = h;
        b->chash_cap = nc;
    }
    unsigned i = class_hash(s) & (unsigned)(b->chash_cap - 1);
    for (; b->chash[i] >= 0; i = (i + 1) & (unsigned)(b->chash_cap - 1))
        if (!memcmp(&b->classes[b->chash[i]], s, sizeof *s)) return b->chash[i];
    if (grow(&b->classes, &b->cap_classes, b->n_classes + 1, sizeof *b->classes)) return nomem(b);
    b->classes[b->n_classes] = *s;
    b->chash[i] = b->n_classes;
    return b->n_classes++;
}

int gram_add_class(gram_builder *b, const gram_bytes *set) {
    if (b->cur_alt < 0) return vc_errf(VC_EINVAL, "grammar: element added before any alternative");
    int c = class_index(b, set);
    if (c < 0) return c;
    return add_sym(b, ~(int32_t)c);
}

int gram_add_byte(gram_builder *b, unsigned char c) {
    gram_bytes s;
    gram_bytes_clear(&s);
    gram_bytes_add(&s, c);
    return gram_add_class(b, &s);
}

int gram_add_bytes(gram_builder *b, const void *s, size_t n) {
    const unsigned char *p = s;
    for (size_t i = 0; i < n; i++) {
        int rc = gram_add_byte(b, p[i]);
        if (rc) return rc;
    }
    return 0;
}

int gram_add_rule(gram_builder *b, int r) {
    if (r < 0 || r >= GRAM_POS_CLASS) return vc_errf(VC_EINVAL, "grammar: no rule %d", r);
    return add_sym(b, r);
}

/* ---- UTF-8 ---- */

typedef struct {
    uint32_t lo, hi;
} cprange;

static int cmp_range(const void *a, const void *b) {
    const cprange *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

static int utf8_encode(uint32_t c, unsigned char *o) {
    if (c < 0x80) return o[0] = (unsigned char)c, 1;
    if (c < 0x800) return o[0] = (unsigned char)(0xC0 | c >> 6), o[1] = (unsigned char)(0x80 | (c & 0x3F)), 2;
    if (c < 0x10000) {
        o[0] = (unsigned char)(0xE0 | c >> 12);
        o[1] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
        o[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    o[0] = (unsigned char)(0xF0 | c >> 18);
    o[1] = (unsigned char)(0x80 | (c >> 12 & 0x3F));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 0x3F));
    o[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}

/* One alternative of rule r: the byte sequences from lo's encoding to hi's, position by position.
 * The caller has split [lo, hi] so that this is exact (same length, and every byte position but
 * the ranging ones spans whole continuation blocks). */
static int utf8_emit(gram_builder *b, int r, uint32_t lo, uint32_t hi) {
    unsigned char el[4], eh[4];
    int n = utf8_encode(lo, el), rc;
    utf8_encode(hi, eh);
    if ((rc = gram_alt(b, r))) return rc;
    for (int i = 0; i < n; i++) {
        gram_bytes s;
        gram_bytes_clear(&s);
        gram_bytes_add_range(&s, el[i], eh[i]);
        if ((rc = gram_add_class(b, &s))) return rc;
    }
    return 0;
}

/* Split [lo, hi] (no surrogates inside) into ranges that each are one byte-class sequence (the
 * classic splitting, as Russ Cox's utf8 ranges / Rust's Utf8Sequences do). */
static int utf8_split(gram_builder *b, int r, uint32_t lo, uint32_t hi) {
    static const uint32_t lenmax[3] = {0x7F, 0x7FF, 0xFFFF};
    for (int i = 0; i < 3; i++)
        if (lo <= lenmax[i] && hi > lenmax[i]) {
            int rc = utf8_split(b, r, lo, lenmax[i]);
            return rc ? rc : utf8_split(b, r, lenmax[i] + 1, hi);
        }
    if (hi < 0x80) return utf8_emit(b, r, lo, hi);
    for (int i = 1; i < 4; i++) {
        uint32_t m = (1u << (6 * i)) - 1;
        if ((lo & ~m) != (hi & ~m)) {
            if (lo & m) {
                int rc = utf8_split(b, r, lo, lo | m);
                return rc ? rc : utf8_split(b, r, (lo | m) + 1, hi);
            }
            if ((hi & m) != m) {
                int rc = utf8_split(b, r, lo, (hi & ~m) - 1);
                return rc ? rc : utf8_split(b, r, hi & ~m, hi);
            }
        }
    }
    return utf8_emit(b, r, lo, hi);
}

int gram_utf8_class(gram_builder *b, const uint32_t (*ranges)[2], int n, int negate) {
    if (n < 0) return vc_errf(VC_EINVAL, "grammar: negative range count");
    /* normalized: sorted, merged, clipped to the scalar values, surrogates cut out */
    cprange *v = malloc(((size_t)n + 3) * sizeof *v);
    if (!v) return nomem(b);
    int k = 0;
    for (int i = 0; i < n; i++) {
        uint32_t lo = ranges[i][0], hi = ranges[i][1];
        if (lo > hi || lo > 0x10FFFF) continue;
        if (hi > 0x10FFFF) hi = 0x10FFFF;
        v[k++] = (cprange){lo, hi};
    }
    qsort(v, (size_t)k, sizeof *v, cmp_range);
    int m = 0;
    for (int i = 0; i < k; i++) {
        if (m && v[i].lo <= v[m - 1].hi + 1) {
            if (v[i].hi > v[m - 1].hi) v[m - 1].hi = v[i].hi;
        } else {
            v[m++] = v[i];
        }
    }
    if (negate) { /* complement in place: at most m + 1 ranges */
        cprange *c = malloc(((size_t)m + 3) * sizeof *c);
        if (!c) {
            free(v);
            return nomem(b);
        }
        int nc = 0;
        uint32_t next = 0;
        for (int i = 0; i < m; i++) {
            if (v[i].lo > next) c[nc++] = (cprange){next, v[i].lo - 1};
            next = v[i].hi + 1;
        }
        if (next <= 0x10FFFF) c[nc++] = (cprange){next, 0x10FFFF};
        free(v);
        v = c;
        m = nc;
    }
    int saved = b->cur_alt, r = gram_rule(b, "utf8-class"), rc = 0, any = 0;
    if (r < 0) {
        free(v);
        return r;
    }
    for (int i = 0; i < m && !rc; i++) {
        uint32_t lo = v[i].lo, hi = v[i].hi;
        if (lo < 0xD800 && hi >= 0xD800) {
            if (!(rc = utf8_split(b, r, lo, 0xD7FF))) any = 1;
            lo = 0xE000;
        }
        if (lo >= 0xD800 && lo <= 0xDFFF) lo = 0xE000;
        if (lo > hi || rc) continue;
        if (!(rc = utf8_split(b, r, lo, hi))) any = 1;
    }
    free(v);
    if (!rc && !any) { /* the empty set: an alternative that can never match */
        gram_bytes none;
        gram_bytes_clear(&none);
        if (!(rc = gram_alt(b, r))) rc = gram_add_class(b, &none);
    }
    b->cur_alt = saved;
    return rc ? rc : r;
}

/* ---- repetition ---- */

/* x* as S ::= "" | S x (left recursion: the Earley matcher's cheap case); its rule or a negative VC_E*. */
static int repeat_star(gram_builder *b, int r) {
    int s = gram_rule(b, "repeat-star"), rc;
    if (s < 0) return s;
    if ((rc = gram_alt(b, s)) || (rc = gram_alt(b, s)) || (rc = gram_add_rule(b, s)) || (rc = gram_add_rule(b, r)))
        return rc;
    return s;
}

/* x{min,max} (0 <= min <= max) into rule top: one alternative of max references to x, which may end after
 * the min-th (a counted repetition: the item's position is its count, and the matcher's closure adds the
 * rule's end beside every item of the tail), and for min 0 an empty one (so the tail begins at 1, and the
 * rule derives "" even when x derives nothing). Nested optionals (O_k ::= "" | x O_{k-1}) would make each
 * byte of a run complete every level above it: O(count) items a byte, where this makes O(1). */
static int repeat_count(gram_builder *b, int top, int r, int min, int max) {
    int rc = 0;
    if (min == 0 && max > 0 && (rc = gram_alt(b, top))) return rc;
    if ((rc = gram_alt(b, top))) return rc;
    for (int i = 0; i < max && !rc; i++) rc = gram_add_rule(b, r);
    if (!rc && min < max) b->alt_tail[b->cur_alt] = min ? min : 1;
    return rc;
}

int gram_repeat(gram_builder *b, int r, int min, int max) {
    if (r < 0 || r >= b->n_rules) return vc_errf(VC_EINVAL, "grammar: no rule %d", r);
    if (min < 0 || (max >= 0 && max < min)) return vc_errf(VC_EINVAL, "grammar: bad repeat {%d,%d}", min, max);
    if (min > GRAM_MAX_REPEAT || max > GRAM_MAX_REPEAT)
        return vc_errf(VC_EINVAL, "grammar: repeat bound over %d", GRAM_MAX_REPEAT);
    /* a star (2 elements) after r{min} (min + 1), or the max references of a count */
    size_t need = max < 0 ? (size_t)min + 3 : (size_t)max;
    if (need > b->max_elems - b->n_elems) /* refused before any change: not sticky */
        return vc_errf(VC_EINVAL, "grammar too large (more than %zu elements)", b->max_elems);
    int saved = b->cur_alt, rc = 0, star = -1, top = -1;
    if (max < 0 && (star = rc = repeat_star(b, r)) >= 0 && min == 0) {
        b->cur_alt = saved;
        return star;
    }
    if (rc >= 0 && (top = rc = gram_rule(b, "repeat")) >= 0) {
        if (max >= 0) {
            rc = repeat_count(b, top, r, min, max);
        } else if (!(rc = gram_alt(b, top))) {
            for (int i = 0; i < min && !rc; i++) rc = gram_add_rule(b, r);
            if (!rc) rc = gram_add_rule(b, star);
        }
    }
    b->cur_alt = saved;
    return rc < 0 ? rc : top;
}

/* ---- build ---- */

static const char *rule_name(const gram_builder *b, int r, char *buf, size_t n) {
    if (b->names[r]) return b->names[r];
    snprintf(buf, n, "#%d", r);
    return buf;
}

gram_grammar *gram_retain(gram_grammar *g) {
    if (g) atomic_fetch_add_explicit(&g->refs, 1, memory_order_relaxed);
    return g;
}

void gram_free(gram_grammar *g) {
    if (!g) return;
    /* acq_rel: every use by other holders happens before the last one frees */
    if (atomic_fetch_sub_explicit(&g->refs, 1, memory_order_acq_rel) > 1) return;
    if (g->names)
        for (int i = 0; i < g->n_rules; i++) free(g->names[i]);
    free(g->names);
    free(g->classes);
    free(g->pos);
    free(g->alt_first);
    free(g->alt_start);
    free(g->nullable);
    free(g->rep_end);
    gram_cache_free(g->cache);
    free(g);
}

int gram_n_rules(const gram_grammar *g) { return g->n_rules; }

/* A least fixed point over the rules, by worklist, so linear in the grammar's size whatever the
 * order of its rules: alternative a holds once need[a] reaches 0, need[a] being the number of its
 * rule references not yet marked (plus BIG where it can never hold); its rule is then marked.
 * occ[occ_first[r] .. occ_first[r + 1]) are the alternatives that reference rule r, once per
 * reference. stack holds n_rules. */
#define BIG ((size_t)1 << 40)
static void mark_rules(const gram_builder *b, size_t *need, const size_t *occ_first, const int *occ, uint8_t *mark,
                       int *stack) {
    int top = 0;
    for (int a = 0; a < b->n_alts; a++)
        if (need[a] == 0 && !mark[b->alt_rule[a]]) mark[b->alt_rule[a]] = 1, stack[top++] = b->alt_rule[a];
    while (top) {
        int r = stack[--top];
        for (size_t i = occ_first[r]; i < occ_first[r + 1]; i++) {
            int a = occ[i];
            if (--need[a] == 0 && !mark[b->alt_rule[a]]) mark[b->alt_rule[a]] = 1, stack[top++] = b->alt_rule[a];
        }
    }
}

/* The coarsest partition of the byte values that no class of the grammar splits: bytes in one part
 * are fed alike by every state, so the cache records one transition per part. */
static void byte_partition(gram_grammar *g) {
    int n = 1;
    memset(g->byte_class, 0, sizeof g->byte_class);
    for (int k = 0; k < g->n_classes && n < 256; k++) {
        int16_t map[2][256];
        memset(map, 0xff, sizeof map);
        int m = 0;
        for (int c = 0; c < 256; c++) {
            int in = gram_bytes_has(&g->classes[k], (unsigned)c), p = g->byte_class[c];
            if (map[in][p] < 0) map[in][p] = (int16_t)m++;
            g->byte_class[c] = (uint8_t)map[in][p];
        }
        n = m;
    }
    g->n_byte_classes = n;
}

/* rep_end for the kept alternatives that have an optional tail (laid out in order from position 0). */
static int lay_tails(const gram_builder *b, gram_grammar *g, const size_t *first, const uint8_t *keep) {
    size_t p = 0;
    for (int a = 0; a < b->n_alts; a++) {
        if (!keep[a]) continue;
        size_t len = first[a + 1] - first[a];
        if (b->alt_tail[a]) {
            if (!g->rep_end && !(g->rep_end = calloc(g->n_pos + 1, sizeof *g->rep_end))) return VC_ENOMEM;
            for (size_t i = (size_t)b->alt_tail[a]; i < len; i++) g->rep_end[p + i] = (uint32_t)(p + len);
        }
        p += len + 1;
    }
    return 0;
}

int gram_build(gram_builder *b, int root, gram_grammar **out) {
    *out = NULL;
    char nb[32];
    /* a front end that missed one failed call must not get a grammar that silently lacks a part */
    if (b->failed == VC_ENOMEM) return vc_errf(VC_ENOMEM, "grammar: out of memory (in an earlier call)");
    if (b->failed) return too_large(b);
    if (root < 0 || root >= b->n_rules) return vc_errf(VC_EINVAL, "grammar: no root rule %d", root);
    if (!b->rule_nalts[root])
        return vc_errf(VC_EINVAL, "grammar: rule '%s' has no alternatives", rule_name(b, root, nb, sizeof nb));
    for (size_t i = 0; i < b->n_elems; i++) {
        int32_t s = b->elems[i].sym;
        if (s < 0) continue;
        if (s >= b->n_rules) return vc_errf(VC_EINVAL, "grammar: reference to undefined rule #%d", (int)s);
        if (!b->rule_nalts[s])
            return vc_errf(VC_EINVAL, "grammar: rule '%s' is referenced but has no alternatives",
                           rule_name(b, s, nb, sizeof nb));
    }
    int rc = VC_ENOMEM, nr = b->n_rules, na = b->n_alts;
    size_t ne = b->n_elems;
    gram_grammar *g = calloc(1, sizeof *g);
    if (g) atomic_init(&g->refs, 1);
    size_t *first = calloc((size_t)na + 1, sizeof *first);
    int32_t *e = malloc((ne ? ne : 1) * sizeof *e);
    uint8_t *prod = calloc((size_t)nr, 1), *keep = calloc((size_t)na, 1);
    size_t *need = NULL, *occ_first = NULL;
    int *occ = NULL, *stack = NULL;
    if (!g || !first || !e || !prod || !keep) goto fail;
    /* group the elements by alternative, keeping their order */
    for (size_t i = 0; i < ne; i++) first[b->elems[i].alt + 1]++;
    for (int a = 0; a < na; a++) first[a + 1] += first[a];
    {
        size_t *fill = malloc(((size_t)na + 1) * sizeof *fill);
        if (!fill) goto fail;
        memcpy(fill, first, ((size_t)na + 1) * sizeof *fill);
        for (size_t i = 0; i < ne; i++) e[fill[b->elems[i].alt]++] = b->elems[i].sym;
        free(fill);
    }
    /* who references whom, for the fixed points */
    size_t nref = 0;
    for (size_t i = 0; i < ne; i++) nref += e[i] >= 0;
    need = malloc(((size_t)na + 1) * sizeof *need);
    occ_first = calloc((size_t)nr + 1, sizeof *occ_first);
    occ = calloc(nref + 1, sizeof *occ);
    stack = malloc(((size_t)nr + 1) * sizeof *stack);
    if (!need || !occ_first || !occ || !stack) goto fail;
    for (size_t i = 0; i < ne; i++)
        if (e[i] >= 0) occ_first[e[i] + 1]++;
    for (int r = 0; r < nr; r++) occ_first[r + 1] += occ_first[r];
    for (int a = 0; a < na; a++)
        for (size_t i = first[a]; i < first[a + 1]; i++)
            if (e[i] >= 0) occ[--occ_first[e[i] + 1]] = a; /* fills each rule's run from its end */
    /* occ_first[r + 1] is now where rule r's run starts: shift back by one */
    memmove(occ_first, occ_first + 1, (size_t)nr * sizeof *occ_first);
    occ_first[nr] = nref;
    /* productive rules (derive some string); then keep only the alternatives made of productive
     * parts, so that no item can lead to a dead end */
    for (int a = 0; a < na; a++) {
        need[a] = 0;
        for (size_t i = first[a]; i < first[a + 1]; i++)
            need[a] += e[i] >= 0 ? 1 : bytes_empty(&b->classes[~e[i]]) ? BIG : 0;
    }
    mark_rules(b, need, occ_first, occ, prod, stack);
    size_t npos = 0;
    int nkept = 0;
    for (int a = 0; a < na; a++) {
        keep[a] = need[a] == 0;
        if (keep[a]) npos += first[a + 1] - first[a] + 1, nkept++;
    }
    g->n_rules = nr;
    g->root = root;
    g->n_classes = b->n_classes;
    g->n_pos = npos;
    g->classes = malloc(((size_t)b->n_classes + 1) * sizeof *g->classes);
    g->pos = malloc((npos + 1) * sizeof *g->pos);
    g->alt_first = calloc((size_t)nr + 1, sizeof *g->alt_first);
    g->alt_start = malloc(((size_t)nkept + 1) * sizeof *g->alt_start);
    g->nullable = calloc((size_t)nr + 1, 1);
    g->names = calloc((size_t)nr + 1, sizeof *g->names);
    if (!g->classes || !g->pos || !g->alt_first || !g->alt_start || !g->nullable || !g->names) goto fail;
    if (gram_cache_new(&g->cache)) goto fail;
    if (b->n_classes) memcpy(g->classes, b->classes, (size_t)b->n_classes * sizeof *g->classes);
    for (int r = 0; r < nr; r++)
        if (b->names[r] && !(g->names[r] = strdup(b->names[r]))) goto fail;
    /* positions, rule by rule */
    for (int a = 0; a < na; a++)
        if (keep[a]) g->alt_first[b->alt_rule[a] + 1]++;
    for (int r = 0; r < nr; r++) g->alt_first[r + 1] += g->alt_first[r];
    {
        int *afill = malloc(((size_t)nr + 1) * sizeof *afill);
        if (!afill) goto fail;
        memcpy(afill, g->alt_first, (size_t)nr * sizeof *afill);
        size_t p = 0;
        for (int a = 0; a < na; a++) {
            if (!keep[a]) continue;
            g->alt_start[afill[b->alt_rule[a]]++] = (uint32_t)p;
            for (size_t i = first[a]; i < first[a + 1]; i++)
                g->pos[p++] = e[i] >= 0 ? e[i] : (GRAM_POS_CLASS | ~e[i]);
            g->pos[p++] = ~(int32_t)b->alt_rule[a];
        }
        free(afill);
    }
    if (lay_tails(b, g, first, keep)) goto fail;
    /* nullable rules: alternatives of rule references only, all nullable */
    for (int a = 0; a < na; a++) {
        need[a] = keep[a] ? 0 : BIG;
        for (size_t i = first[a]; i < first[a + 1]; i++) need[a] += e[i] >= 0 ? 1 : BIG;
    }
    mark_rules(b, need, occ_first, occ, g->nullable, stack);
    byte_partition(g);
    free(first);
    free(e);
    free(prod);
    free(keep);
    free(need);
    free(occ_first);
    free(occ);
    free(stack);
    *out = g;
    return 0;
fail:
    free(first);
    free(e);
    free(prod);
    free(keep);
    free(need);
    free(occ_first);
    free(occ);
    free(stack);
    gram_free(g);
    return vc_errf(rc, "grammar: out of memory");
}
