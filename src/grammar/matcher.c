/* matcher: an Earley recognizer over bytes, with Aycock & Horspool's fix for nullable rules
 * (predicting a nullable rule also moves the dot over it), so empty alternatives and left recursion
 * need no special case. A counted repetition's tail (grammar.h, rep_end) adds its rule's end beside each
 * of its items, so a bounded run is one rule whose items advance a count: O(1) items a byte.
 *
 * The state is the stack of Earley sets, one per consumed byte plus the initial one, all in one
 * flat item array: set k is items[set_start[k] .. set_start[k + 1]), and set_start[n_sets] is
 * n_items. Feeding a byte builds one set on top (scan, then closure); a byte that leaves the new
 * set empty is rejected and the set dropped; rolling back n bytes pops n sets. The arrays only
 * grow, so feeding and rolling back allocate nothing once they have reached their working size.
 * Each committed set also keeps the union of the byte classes its items expect, so a byte no item
 * can scan (most bytes, in the mask walk) is rejected without looking at the items.
 *
 * Items of the set being built are deduplicated by a hash table whose slots carry a stamp (one per
 * set built), so starting a set clears nothing. */
#include <stdlib.h>
#include <string.h>

#include "base/ckd.h"
#include "base/err.h"
#include "grammar/grammar.h"
#include "grammar/internal.h"

#define GRAM_DEFAULT_ITEM_LIMIT 1000000
/* Sets smaller than this are scanned whole by a completion; larger ones get a sorted index of the
 * items that wait on a rule (made the first time a completion looks there), so a chain of completions
 * into one big set stays cheap (a set looked into again and again: the start of a run, of a value). */
#define GRAM_INDEX_MIN 8
#define SMALL_SET ((size_t)-1)
#define UNINDEXED ((size_t)-2)

static inline int has(const gram_bytes *s, unsigned char c) { return s->w[c >> 5] >> (c & 31) & 1; }

static int oom(void) { return vc_errf(VC_ENOMEM, "grammar matcher: out of memory"); }

static inline uint32_t item_hash(uint32_t pos, uint32_t origin) {
    uint64_t k = ((uint64_t)pos << 32 | origin) * 0x9E3779B97F4A7C15ull;
    return (uint32_t)(k >> 32);
}

/* A fresh stamp for a new set (on wrap-around, the stamped arrays are cleared). */
static void new_stamp(gram_matcher *m) {
    if (++m->stamp == 0) {
        memset(m->h_stamp, 0, m->h_cap * sizeof *m->h_stamp);
        memset(m->pred, 0, (size_t)m->g->n_rules * sizeof *m->pred);
        m->stamp = 1;
    }
}

/* Double the hash table and re-enter the items of the set being built (from start). */
static int rehash(gram_matcher *m, size_t start) {
    size_t nc = m->h_cap * 2;
    uint32_t *st = calloc(nc, sizeof *st), *ix = malloc(nc * sizeof *ix);
    if (!st || !ix) {
        free(st);
        free(ix);
        return oom();
    }
    for (size_t i = start; i < m->n_items; i++) {
        uint32_t h = item_hash(m->items[i].pos, m->items[i].origin) & (uint32_t)(nc - 1);
        while (st[h] == m->stamp) h = (h + 1) & (uint32_t)(nc - 1);
        st[h] = m->stamp;
        ix[h] = (uint32_t)(i - start);
    }
    free(m->h_stamp);
    free(m->h_idx);
    m->h_stamp = st;
    m->h_idx = ix;
    m->h_cap = nc;
    return 0;
}

/* Add (pos, origin) to the set being built (which began at start) unless it is there. */
static int add_item(gram_matcher *m, size_t start, uint32_t pos, uint32_t origin) {
    size_t n = m->n_items - start;
    if ((n + 1) * 2 > m->h_cap) {
        int rc = rehash(m, start);
        if (rc) return rc;
    }
    uint32_t mask = (uint32_t)(m->h_cap - 1), h = item_hash(pos, origin) & mask;
    for (; m->h_stamp[h] == m->stamp; h = (h + 1) & mask) {
        const gitem *it = &m->items[start + m->h_idx[h]];
        if (it->pos == pos && it->origin == origin) return 0;
    }
    if (n >= m->limit)
        return vc_errf(VC_EINVAL, "grammar: more than %zu parse states at one position (too ambiguous)", m->limit);
    if (m->n_items == m->cap_items) {
        size_t nc = m->cap_items * 2, bytes;
        if (vc_ckd_array(nc, sizeof *m->items, &bytes)) return oom();
        gitem *q = realloc(m->items, bytes);
        if (!q) return oom();
        m->items = q;
        m->cap_items = nc;
    }
    m->items[m->n_items++] = (gitem){pos, origin};
    m->h_stamp[h] = m->stamp;
    m->h_idx[h] = (uint32_t)n;
    return 0;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void sort_keys(uint64_t *a, size_t n) {
    if (n > 32) {
        qsort(a, n, sizeof *a, cmp_u64);
        return;
    }
    for (size_t i = 1; i < n; i++) { /* most sets are small: an insertion sort */
        uint64_t x = a[i];
        size_t j = i;
        for (; j > 0 && a[j - 1] > x; j--) a[j] = a[j - 1];
        a[j] = x;
    }
}

/* Index committed set k's items that wait on a rule (wkey from set_start[k], sorted); *nw: how many. */
static int index_set(gram_matcher *m, size_t k, size_t *nw) {
    const gram_grammar *g = m->g;
    size_t start = m->set_start[k], end = m->set_start[k + 1];
    if (m->cap_wkey < end) {
        size_t nc = m->cap_items, bytes; /* >= n_items >= end */
        if (vc_ckd_array(nc, sizeof *m->wkey, &bytes)) return oom();
        uint64_t *q = realloc(m->wkey, bytes);
        if (!q) return oom();
        m->wkey = q;
        m->cap_wkey = nc;
    }
    *nw = 0;
    for (size_t i = start; i < end; i++) {
        int32_t v = g->pos[m->items[i].pos];
        if (v >= 0 && !(v & GRAM_POS_CLASS)) m->wkey[start + (*nw)++] = (uint64_t)v << 32 | (i - start);
    }
    sort_keys(m->wkey + start, *nw);
    m->set_nwait[k] = *nw;
    return 0;
}

/* Predict and complete over set k (items from start) until nothing new appears. */
static int closure(gram_matcher *m, size_t k, size_t start) {
    const gram_grammar *g = m->g;
    int rc;
    size_t work = 0;
    for (size_t i = start; i < m->n_items; i++) {
        gitem it = m->items[i];
        int32_t v = g->pos[it.pos];
        if (v < 0 && it.origin < k) { /* complete: advance what waited on this rule in the origin set */
            /* (origin k: the rule matched nothing here, so it is nullable, and predicting it already
             * moved every item of this set that waits on it over it) */
            int32_t r = ~v;
            size_t os = m->set_start[it.origin], oe = m->set_start[it.origin + 1], nw = m->set_nwait[it.origin];
            if (nw == UNINDEXED && (rc = index_set(m, it.origin, &nw))) return rc;
            if (nw == SMALL_SET) {
                work += oe - os;
                for (size_t j = os; j < oe; j++) {
                    gitem w = m->items[j];
                    if (g->pos[w.pos] == r && (rc = add_item(m, start, w.pos + 1, w.origin))) return rc;
                }
            } else { /* the first index entry of rule r, then its run */
                const uint64_t *key = m->wkey + os, want = (uint64_t)r << 32;
                size_t lo = 0, hi = nw;
                while (lo < hi) {
                    size_t mid = lo + (hi - lo) / 2;
                    if (key[mid] < want) lo = mid + 1;
                    else hi = mid;
                }
                for (; lo < nw && key[lo] >> 32 == (uint64_t)r; lo++, work++) {
                    gitem w = m->items[os + (uint32_t)key[lo]];
                    if ((rc = add_item(m, start, w.pos + 1, w.origin))) return rc;
                }
            }
            /* bound the work as well as the items, or an ambiguous grammar could take hours per
             * byte while staying under the item limit */
            if (work > m->limit * 16)
                return vc_errf(VC_EINVAL, "grammar: too much parsing work at one position (too ambiguous)");
        } else if (v >= 0 && !(v & GRAM_POS_CLASS)) { /* predict */
            /* in a counted repetition's tail the rule may end here too: its end item, as if reached */
            uint32_t end = g->rep_end ? g->rep_end[it.pos] : 0;
            if (end && (rc = add_item(m, start, end, it.origin))) return rc;
            if (m->pred[v] != m->stamp) {
                m->pred[v] = m->stamp;
                for (int a = g->alt_first[v]; a < g->alt_first[v + 1]; a++)
                    if ((rc = add_item(m, start, g->alt_start[a], (uint32_t)k))) return rc;
            }
            /* (in a tail, the item one count on accepts less than this one when x is nullable: not added,
             * so a nullable x{m,n} makes m items a set, not n) */
            if (g->nullable[v] && !end && (rc = add_item(m, start, it.pos + 1, it.origin))) return rc;
        }
    }
    return 0;
}

/* Room for need sets (and the set_start entry past the last). */
static int reserve_sets(gram_matcher *m, size_t need) {
    if (need <= m->cap_sets) return 0;
    size_t nc = m->cap_sets * 2, bytes;
    while (nc < need) nc *= 2;
    if (vc_ckd_array(nc, sizeof *m->set_next, &bytes)) return oom();
    size_t *q = realloc(m->set_start, nc * sizeof *q);
    if (!q) return oom();
    m->set_start = q;
    gram_bytes *nx = realloc(m->set_next, bytes);
    if (!nx) return oom(); /* set_start grew, which is harmless; cap_sets still tells the smaller */
    m->set_next = nx;
    size_t *nw = realloc(m->set_nwait, nc * sizeof *nw);
    if (!nw) return oom();
    m->set_nwait = nw;
    int32_t *sg = realloc(m->set_sig, nc * sizeof *sg);
    if (!sg) return oom();
    m->set_sig = sg;
    if (!(sg = realloc(m->fl_sig, nc * sizeof *sg))) return oom();
    m->fl_sig = sg;
    m->cap_sets = nc;
    return 0;
}

static int reserve_set(gram_matcher *m) { return reserve_sets(m, m->n_sets + 2); }


/* Commit the set being built as set k (it ends at n_items): record the bytes it can scan (a large set's
 * waiting items are indexed when a completion first needs them). */
static int commit_set(gram_matcher *m, size_t k) {
    const gram_grammar *g = m->g;
    size_t start = m->set_start[k];
    gram_bytes u;
    gram_bytes_clear(&u);
    for (size_t i = start; i < m->n_items; i++) {
        int32_t v = g->pos[m->items[i].pos];
        if (v >= 0 && (v & GRAM_POS_CLASS))
            for (int w = 0; w < 8; w++) u.w[w] |= g->classes[v & GRAM_POS_INDEX].w[w];
    }
    m->set_nwait[k] = m->n_items - start >= GRAM_INDEX_MIN ? UNINDEXED : SMALL_SET;
    m->set_next[k] = u;
    m->n_sets = k + 1;
    m->set_start[k + 1] = m->n_items;
    return 0;
}

/* The initial set: the root's alternatives at origin 0 and their closure. */
static int start_set(gram_matcher *m) {
    m->n_sets = 0;
    m->n_items = 0;
    m->set_start[0] = 0;
    new_stamp(m);
    const gram_grammar *g = m->g;
    int rc = 0;
    m->pred[g->root] = m->stamp;
    for (int a = g->alt_first[g->root]; a < g->alt_first[g->root + 1] && !rc; a++)
        rc = add_item(m, 0, g->alt_start[a], 0);
    if (!rc) rc = closure(m, 0, 0);
    if (rc) {
        m->n_items = 0;
        return rc;
    }
    if ((rc = commit_set(m, 0))) m->n_items = 0;
    return rc;
}

int gram_matcher_new(const gram_grammar *g, gram_matcher **out) {
    *out = NULL;
    gram_matcher *m = calloc(1, sizeof *m);
    if (!m) return oom();
    m->g = g;
    m->limit = GRAM_DEFAULT_ITEM_LIMIT;
    m->cap_items = 8192; /* room for a JSON output of a few hundred bytes (~25 items a byte): a doubling in */
    m->cap_sets = 512;   /* the middle of a token's feed copies it all (10-30 us); malloc touches none of it */
    m->h_cap = 256;
    m->items = malloc(m->cap_items * sizeof *m->items);
    m->set_start = malloc(m->cap_sets * sizeof *m->set_start);
    m->set_next = malloc(m->cap_sets * sizeof *m->set_next);
    m->set_nwait = malloc(m->cap_sets * sizeof *m->set_nwait);
    m->set_sig = malloc(m->cap_sets * sizeof *m->set_sig);
    m->fl_sig = malloc(m->cap_sets * sizeof *m->fl_sig);
    m->use_cache = 1;
    m->h_stamp = calloc(m->h_cap, sizeof *m->h_stamp);
    m->h_idx = malloc(m->h_cap * sizeof *m->h_idx);
    m->pred = calloc((size_t)g->n_rules + 1, sizeof *m->pred);
    int rc = oom();
    if (!m->items || !m->set_start || !m->set_next || !m->set_nwait || !m->set_sig || !m->fl_sig || !m->h_stamp ||
        !m->h_idx || !m->pred || (rc = start_set(m))) {
        gram_matcher_free(m);
        return rc;
    }
    *out = m;
    return 0;
}

void gram_matcher_free(gram_matcher *m) {
    if (!m) return;
    free(m->items);
    free(m->set_start);
    free(m->set_next);
    free(m->set_nwait);
    free(m->set_sig);
    free(m->fl_sig);
    free(m->wkey);
    free(m->h_stamp);
    free(m->h_idx);
    free(m->pred);
    free(m);
}

void gram_matcher_set_item_limit(gram_matcher *m, size_t limit) {
    /* item offsets within a set are 32-bit, and 16 * limit must not overflow */
    m->limit = !limit ? GRAM_DEFAULT_ITEM_LIMIT : limit > ((size_t)1 << 30) ? (size_t)1 << 30 : limit;
}

int gram_matcher_feed_byte(gram_matcher *m, unsigned char c) {
    size_t k = m->n_sets;
    if (!has(&m->set_next[k - 1], c)) return 1;
    int rc = reserve_set(m);
    if (rc) return rc;
    const gram_grammar *g = m->g;
    size_t start = m->n_items, ps = m->set_start[k - 1];
    new_stamp(m);
    for (size_t i = ps; i < start; i++) {
        gitem it = m->items[i];
        int32_t v = g->pos[it.pos];
        if (v >= 0 && (v & GRAM_POS_CLASS) && has(&g->classes[v & GRAM_POS_INDEX], c) &&
            (rc = add_item(m, start, it.pos + 1, it.origin)))
            break;
    }
    if (!rc && m->n_items == start) return 1;
    if (!rc) rc = closure(m, k, start);
    if (!rc) rc = commit_set(m, k);
    if (rc) m->n_items = start;
    return rc;
}

int gram_matcher_feed(gram_matcher *m, const void *bytes, size_t n) {
    const unsigned char *p = bytes;
    for (size_t i = 0; i < n; i++) {
        int rc = gram_matcher_feed_byte(m, p[i]);
        if (rc) {
            gram_matcher_rollback(m, i);
            return rc;
        }
    }
    return 0;
}

int gram_matcher_accepting(const gram_matcher *m) {
    const gram_grammar *g = m->g;
    for (size_t i = m->set_start[m->n_sets - 1]; i < m->n_items; i++)
        if (m->items[i].origin == 0 && g->pos[m->items[i].pos] == ~(int32_t)g->root) return 1;
    return 0;
}

int gram_matcher_can_continue(const gram_matcher *m) {
    const gram_bytes *u = &m->set_next[m->n_sets - 1];
    uint32_t any = 0;
    for (int w = 0; w < 8; w++) any |= u->w[w];
    return any != 0;
}

/* The cache's names of sets that are gone mean nothing (the sets at those indices may be rebuilt). */
static void drop_names(gram_matcher *m) {
    if (m->n_sig > m->n_sets) m->n_sig = m->n_sets;
    if (m->fl_f + m->n_fl > m->n_sets) m->n_fl = m->n_sets > m->fl_f ? m->n_sets - m->fl_f : 0;
}

int gram_matcher_rollback(gram_matcher *m, size_t n) {
    if (n > m->n_sets - 1)
        return vc_errf(VC_EINVAL, "grammar matcher: cannot roll back %zu bytes (%zu consumed)", n, m->n_sets - 1);
    m->n_sets -= n;
    m->n_items = m->set_start[m->n_sets];
    drop_names(m);
    return 0;
}

size_t gram_matcher_consumed(const gram_matcher *m) { return m->n_sets - 1; }

int gram_matcher_load_floor(gram_matcher *dst, const gram_matcher *src, size_t f) {
    size_t k = src->n_sets - 1, n = src->set_start[k + 1] - src->set_start[f];
    int rc = reserve_sets(dst, k - f + 3);
    if (rc) return rc;
    if (dst->cap_items < n) {
        size_t bytes;
        if (vc_ckd_array(n, sizeof *dst->items, &bytes)) return oom();
        gitem *q = realloc(dst->items, bytes);
        if (!q) return oom();
        dst->items = q;
        dst->cap_items = n;
    }
    /* set 0: empty, the stand-in for every set below the floor. (Items from below that differed only
     * in their origin become one pair twice over: harmless, as feeding and naming deduplicate.) */
    dst->n_items = 0;
    dst->set_start[0] = 0;
    dst->n_sig = 0;
    dst->n_fl = 0;
    rc = commit_set(dst, 0);
    for (size_t j = f; j <= k && !rc; j++) {
        for (size_t i = src->set_start[j]; i < src->set_start[j + 1]; i++) {
            gitem it = src->items[i];
            dst->items[dst->n_items++] = (gitem){it.pos, it.origin < f ? 0 : (uint32_t)(it.origin - f + 1)};
        }
        rc = commit_set(dst, j - f + 1);
    }
    if (rc) {
        dst->n_sets = 0;
        dst->n_items = 0;
    }
    return rc;
}

void gram_matcher_reset(gram_matcher *m) {
    /* set 0 never changes once built, so the empty input is a rollback to it */
    m->n_sets = 1;
    m->n_items = m->set_start[1];
    drop_names(m);
}
