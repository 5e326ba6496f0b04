/* facts: how a name treats strings of one byte set, searched over the cache's DFA and kept per name, so
 * that a cold mask can take a slice of the vocabulary instead of walking it (slices.c); and floors, where
 * the items below a string's start cannot act, so a state inside it has a name for every context.
 *
 * Text facts, for strings of P (internal.h), the vocabulary's slices: A(x), the longest L such that x
 * accepts every string of P of up to L code points (capped); B(x): x refuses every string of L + 1 code
 * points and every prefix of one that has begun its last code point. With A and B a mask is the slice of
 * L plus the walk of the tokens in no slice. They are found over the DFA: every code point of P is tried
 * from x one byte class at a time (one byte stands for its class: the grammar cannot tell the others from
 * it), and then from each name a whole code point reaches, to the depth the cap asks. A(x) = 1 + min A(y)
 * over those names y (a name that leads back to itself adds nothing), B(x) = every y has A(y) = A(x) - 1
 * and B(y). Facts are kept per name, so each is found once: a name's facts belong to its future,
 * whichever matcher (a real one, or a floored copy) was there when they were found. A search goes
 * GRAM_FACT_DEPTH deep, twice what a slice can use, so the names it passes keep facts deep enough for
 * their own masks (a bounded run's next positions search nothing).
 *
 * Run facts, for strings of one set R of ASCII bytes (a pattern's [a-z0-9._%+-]{1,64}): A and B as for P,
 * and E, the bytes outside R that some name reached by up to cap bytes of R accepts. A mask is then the
 * tokens of up to A bytes of R (gram_run.len), the tokens that begin with a byte of E (walked from the
 * trie's root), and the tokens that leave R at a byte of E after at most A bytes of R (gram_run's groups,
 * walked one by one); every other token is refused: it is too long a run, or leaves it by a byte no name
 * on the way accepts. */
#include <stdlib.h>
#include <string.h>

#include "grammar/cache.h"

static int is_class(int32_t v) { return v >= 0 && (v & GRAM_POS_CLASS); }

#define FACT_WORK_PER_NODE 4 /* transitions one search may look at: one per this many trie nodes (+256)... */
#define FACT_ITEMS_PER_NODE 2 /* ...and Earley items its feeds may make: this many per node (+2048), so a search
                               * never costs much more than the walk it saves (then the facts are unknown) */

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
    size_t work, work_end; /* transitions looked at, and how many the search may */
    int dead; /* the budget ran out: every frame of the search gives up, keeping nothing */
    uint64_t items_end; /* the cache's n_items past which the search gives up */
} search;

static search search_at(gram_cache *c, gram_matcher *m, const gram_vocab *v) {
    return (search){c, m, 0, 0, 256 + v->n_nodes / FACT_WORK_PER_NODE, 0,
                    c->n_items + 2048 + (uint64_t)v->n_nodes * FACT_ITEMS_PER_NODE};
}

static int out_of_work(search *e, int32_t y) {
    e->dead |= y == GRAM_SIG_NONE || ++e->work > e->work_end || e->c->n_items > e->items_end;
    return e->dead;
}

/* What the names reached from one name showed (other than itself): A's least and greatest, the least of the
 * exact ones, whether all are exact and all B. */
typedef struct {
    int min_a, max_a, min_exact, all_exact, all_b;
} afold;
#define AFOLD_INIT {.min_a = INT32_MAX, .max_a = -1, .min_exact = INT32_MAX, .all_exact = 1, .all_b = 1}

static void afold_add(afold *f, int a, int exact, int b) {
    if (a < f->min_a) f->min_a = a;
    if (a > f->max_a) f->max_a = a;
    if (exact && a < f->min_exact) f->min_exact = a;
    f->all_exact &= exact;
    f->all_b &= b;
}

/* What one name's code points showed, over the names they reach. */
typedef struct {
    int32_t x;
    int refused, lead;    /* some code point refused; some lead byte accepted */
    int unknown, self;    /* a name could not be made (or the work ran out); x reached itself */
    afold f;              /* over the names reached other than x */
} cpfold;

static int find_facts(search *e, uint32_t d, int cap, pfacts *out);

void facts_form_ranges(gram_cache *c, const gram_grammar *g) {
    for (int f = 0; f < (int)(sizeof utf8_form / sizeof *utf8_form); f++)
        for (int lv = 0; lv < 4; lv++) {
            int r = f * 4 + lv, n = 0;
            unsigned lo = lv ? utf8_form[f].c[lv - 1][0] : utf8_form[f].lo;
            unsigned hi = lv ? utf8_form[f].c[lv - 1][1] : utf8_form[f].hi;
            uint32_t seen[8] = {0}; /* byte classes taken */
            for (unsigned b = lo; lv <= utf8_form[f].n && b <= hi; b++) {
                unsigned bc = g->byte_class[b];
                if (b == '"' || b == '\\' || (seen[bc >> 5] >> (bc & 31) & 1)) continue;
                seen[bc >> 5] |= 1u << (bc & 31);
                c->form_rep[r][n++] = (uint8_t)b;
            }
            c->form_n[r] = (uint8_t)n;
        }
}

/* One byte of the code points of form f from depth d (lv: 0 the lead byte, then the continuations): one
 * byte of each byte class of its range (facts_form_ranges). */
static int cp_walk(search *e, uint32_t d, int f, int lv, int cap, cpfold *s) {
    gram_cache *c = e->c;
    for (int i = 0; i < c->form_n[f * 4 + lv]; i++) {
        unsigned b = c->form_rep[f * 4 + lv][i];
        int32_t y;
        int rc = cache_next_name(c, e->m, &e->cur, d + 1, (unsigned char)b, &y);
        if (rc) return rc;
        if (out_of_work(e, y)) {
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
        if ((s->unknown = e->dead)) return 0;
        afold_add(&s->f, p.a, p.exact, p.b);
    }
    return 0;
}

/* The facts of the name at depth d of the path, A capped at cap. */
static int find_facts(search *e, uint32_t d, int cap, pfacts *out) {
    gram_cache *c = e->c;
    int32_t x = c->pname[d];
    *out = (pfacts){0, 0, 0};
    if (cap <= 0 || e->dead || (cache_st(c, x)->pf & PF_BUSY)) return 0; /* a lower bound of 0 holds */
    uint8_t pf = cache_st(c, x)->pf, pa = cache_st(c, x)->pf_a;
    if ((pf & PF_KNOWN) && ((pf & PF_EXACT) || pa >= cap)) {
        *out = pa >= cap ? (pfacts){cap, 0, 0} : (pfacts){pa, 1, !!(pf & PF_B)};
        return 0;
    }
    cpfold s = {.x = x, .f = AFOLD_INIT};
    cache_st(c, x)->pf |= PF_BUSY;
    int rc = 0;
    for (int f = 0; f < (int)(sizeof utf8_form / sizeof *utf8_form) && !rc; f++) {
        rc = cp_walk(e, d, f, 0, cap, &s);
        if (s.unknown || (s.refused && s.lead)) break;
    }
    cache_st(c, x)->pf &= (uint8_t)~PF_BUSY;
    if (rc || s.unknown) return rc;
    if (s.refused) {
        *out = (pfacts){0, 1, !s.lead};
    } else if (s.f.max_a < 0) { /* every code point comes back to x */
        *out = (pfacts){cap, 0, 0};
        pa = PF_INF;
    } else {
        /* exact when the least is an exact successor's; B when every successor is exactly that */
        int a = 1 + s.f.min_a, exact = s.f.min_exact == s.f.min_a;
        *out = a >= cap ? (pfacts){cap, 0, 0}
                        : (pfacts){a, exact, exact && !s.self && s.f.all_exact && s.f.min_a == s.f.max_a && s.f.all_b};
    }
    if (pa != PF_INF) pa = (uint8_t)out->a;
    cache_st(c, x)->pf_a = pa;
    cache_st(c, x)->pf = (uint8_t)(PF_KNOWN | (pa == PF_INF || out->exact ? PF_EXACT : 0) | (out->b ? PF_B : 0));
    return 0;
}

/* The ASCII bytes of the widest class s0's items scan whose ASCII bytes s0 all accepts (to[]), in cls. */
static void class_run(const gram_cache *c, const gram_grammar *g, int32_t s0, const int32_t *to, uint32_t cls[8]) {
    const cstate *s = cache_st(c, s0);
    const uint64_t *key = cache_key(c, s0);
    int best = 0;
    for (uint32_t i = 1; i < s->key_len; i++) {
        int32_t v = g->pos[key[i] >> 32];
        if (!is_class(v)) continue;
        const uint32_t *w = g->classes[v & GRAM_POS_INDEX].w;
        int n = popcount32(w[0]) + popcount32(w[1]) + popcount32(w[2]) + popcount32(w[3]);
        if (n <= best) continue;
        int all = 1;
        for (unsigned b = 0; b < 0x80 && all; b++) all = !(w[b >> 5] >> (b & 31) & 1) || to[b] != T_REJECT;
        if (!all) continue;
        best = n;
        memset(cls, 0, 8 * sizeof *cls);
        memcpy(cls, w, 4 * sizeof *cls);
    }
}

int facts_ascii_scan(gram_cache *c, gram_matcher *m, int32_t s0, int *acc_p, int *mixed, uint32_t run[8],
                     uint32_t cls[8]) {
    const gram_grammar *g = m->g;
    int32_t to[128];
    int16_t first[256]; /* the first byte of each class seen */
    int acc = 0, ref = 0, best = -1, best_n = 0;
    size_t base = gram_matcher_consumed(m), cur = 0;
    int rc = cache_path_room(c, 1);
    c->pname[0] = s0;
    memset(first, 0xff, sizeof first);
    for (unsigned b = 0; b < 0x80 && !rc; b++) {
        unsigned bc = g->byte_class[b];
        if (first[bc] >= 0) to[b] = to[first[bc]]; /* one byte stands for its class */
        else first[bc] = (int16_t)b, rc = cache_next_name(c, m, &cur, 1, (unsigned char)b, &to[b]);
        if (!rc && b >= 0x20 && b != '"' && b != '\\') {
            acc |= to[b] != T_REJECT;
            ref |= to[b] == T_REJECT;
        }
    }
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    *mixed = acc && ref;
    *acc_p = acc;
    memset(run, 0, 8 * sizeof *run);
    memset(cls, 0, 8 * sizeof *cls);
    for (unsigned b = 0; b < 0x80 && !rc; b++) { /* the name most bytes lead to */
        int n = 0;
        if (to[b] < 0 || first[g->byte_class[b]] != (int16_t)b) continue;
        for (unsigned a = b; a < 0x80; a++) n += to[a] == to[b];
        if (n > best_n) best_n = n, best = (int)b;
    }
    for (unsigned b = 0; best >= 0 && b < 0x80; b++)
        if (to[b] == to[best]) run[b >> 5] |= 1u << (b & 31);
    if (!rc) class_run(c, g, s0, to, cls);
    return rc;
}

/* ---- floors ----
 *
 * Inside a JSON string a name still says where the string sits (its items' sub-names reach down to the
 * item that waits for the closing quote, and that one's to the whole output around the string). But the
 * items from below the string's start take no part while its text is fed. The floor of a state is the
 * highest set f such that every item of the sets f..top from below f (origin < f) that waits on a rule
 * scans a byte once past it (so the one that waits for a string's text floors the string's first set);
 * the exits are the bytes those items scan (or will, once past their rule). Fed any string of other
 * bytes, the items from below f never complete: they stay as they are or move past their rule to one
 * more byte to scan, wherever they began. The floored copy (gram_matcher_load_floor) holds the same items
 * with every origin below f made one empty set, so it accepts the same strings of other bytes, and the
 * same single byte after one (an exit byte too: the same items scan it); its name does not say where the
 * string sits. After an exit byte the copy accepts less than the matcher (what completes into its empty
 * set advances nothing), never more. */

#define FLOOR_SCAN 4096 /* sets below the top that facts_floor looks through */

static void add_class(const gram_grammar *g, int32_t v, uint32_t *set) {
    const gram_bytes *s = &g->classes[v & GRAM_POS_INDEX];
    for (int w = 0; w < 8; w++) set[w] |= s->w[w];
}

/* The bytes that the items from below f scan, or will once past their rule. */
static void floor_exits(const gram_matcher *m, size_t f, uint32_t *set) {
    const gram_grammar *g = m->g;
    size_t k = m->n_sets - 1;
    for (size_t j = f; j <= k; j++)
        for (size_t i = m->set_start[j]; i < m->set_start[j + 1]; i++) {
            gitem it = m->items[i];
            int32_t v = g->pos[it.pos];
            if (it.origin >= f || v < 0) continue;
            if (j == k && is_class(v)) add_class(g, v, set);
            if (!is_class(v)) add_class(g, g->pos[it.pos + 1], set); /* a class (facts_floor) */
        }
}

size_t facts_floor(const gram_matcher *m, uint32_t exits[8]) {
    const gram_grammar *g = m->g;
    size_t k = m->n_sets - 1, h = k; /* h: the least origin of an item that must be above the floor */
    memset(exits, 0, 8 * sizeof *exits);
    for (size_t j = k; j >= 1 && k - j <= FLOOR_SCAN; j--) {
        for (size_t i = m->set_start[j]; i < m->set_start[j + 1]; i++) {
            gitem it = m->items[i];
            int32_t v = g->pos[it.pos];
            if (v < 0 || (v & GRAM_POS_CLASS)) continue;
            if (!is_class(g->pos[it.pos + 1]) && it.origin < h) h = it.origin;
        }
        if (j <= h) {
            floor_exits(m, j, exits);
            return j;
        }
    }
    return 0;
}

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
        if (!t) return NULL; /* (no room: the facts are not kept) */
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

/* The bytes that name x accepts next: those its scanning items scan (the bytes its set can take). */
static void scanned(const gram_cache *c, const gram_grammar *g, int32_t x, uint32_t next[8]) {
    const cstate *s = cache_st(c, x);
    const uint64_t *key = cache_key(c, x);
    memset(next, 0, 8 * sizeof *next);
    for (uint32_t i = 1; i < s->key_len; i++) {
        int32_t v = g->pos[key[i] >> 32];
        if (is_class(v)) add_class(g, v, next);
    }
}

/* What one name's run bytes showed, over the names they reach (find_run_facts). */
typedef struct {
    int refused, lead, self, unknown;
    afold f;
} runfold;

static int find_run_facts(search *e, uint32_t d, int cap, const uint32_t *set, int run, rfacts *out);

/* Follow the name y that run byte b leads to from depth d (each class's name once, cap above 0). */
static int run_follow(search *e, uint32_t d, int cap, const uint32_t *set, int run, unsigned b, int32_t y, runfold *s,
                      rfacts *out) {
    rfacts p;
    e->c->pname[d + 1] = y;
    e->c->pbyte[d + 1] = (unsigned char)b;
    int rc = find_run_facts(e, d + 1, cap - 1, set, run, &p);
    if (rc || (s->unknown = e->dead)) return rc;
    for (int i = 0; i < 8; i++) out->e[i] |= p.e[i];
    afold_add(&s->f, p.a, p.exact, p.b);
    return 0;
}

/* The run's bytes from the name x at depth d (next: the bytes x accepts), one byte of each class. */
static int run_bytes(search *e, uint32_t d, int cap, const uint32_t *set, int run, const uint32_t *next, runfold *s,
                     rfacts *out) {
    const gram_grammar *g = e->m->g;
    int32_t x = e->c->pname[d], to[256];
    int16_t first[256]; /* the first byte of each class tried */
    uint8_t followed[256] = {0}; /* classes whose name was followed */
    int rc = 0;
    memset(first, 0xff, sizeof first);
    for (unsigned b = 0; b < 0x80 && !rc && !s->unknown; b++) {
        unsigned bc = g->byte_class[b];
        if (!(set[b >> 5] >> (b & 31) & 1)) continue;
        if (first[bc] >= 0) {
            to[b] = to[first[bc]];
        } else if (!(next[b >> 5] >> (b & 31) & 1)) {
            to[b] = T_REJECT;
        } else {
            first[bc] = (int16_t)b;
            if ((rc = cache_next_name(e->c, e->m, &e->cur, d + 1, (unsigned char)b, &to[b]))) break;
            s->unknown = out_of_work(e, to[b]);
        }
        if (to[b] == T_REJECT) {
            s->refused = 1;
            continue;
        }
        s->lead = 1;
        if (to[b] == x) {
            s->self = 1;
            continue;
        }
        if (followed[bc] || cap <= 0 || s->refused) continue;
        followed[bc] = 1;
        rc = run_follow(e, d, cap, set, run, b, to[b], s, out);
    }
    return rc;
}

/* A, exact and B from the fold (and E in out already), kept in w. */
static void run_result(runfact *w, int cap, const runfold *s, rfacts *out) {
    if (s->refused) {
        out->a = 0, out->exact = 1, out->b = !s->lead;
    } else if (cap <= 0) {
        out->a = 0; /* a lower bound: the run's bytes were not followed */
    } else if (s->f.max_a < 0) { /* every byte of the run back to x (or nowhere: no byte in the set at all) */
        out->a = cap;
    } else {
        int a = 1 + s->f.min_a, exact = s->f.min_exact == s->f.min_a;
        if (a >= cap) out->a = cap;
        else out->a = a, out->exact = exact, out->b = exact && !s->self && s->f.all_exact && s->f.min_a == s->f.max_a;
        out->b &= s->f.all_b;
    }
    uint8_t pa = !s->refused && cap > 0 && s->f.max_a < 0 ? PF_INF : (uint8_t)out->a;
    w->a = pa;
    w->cap = (uint8_t)(cap < 0 ? 0 : cap);
    w->pf = (uint8_t)(PF_KNOWN | (pa == PF_INF || out->exact ? PF_EXACT : 0) | (out->b ? PF_B : 0));
    memcpy(w->e, out->e, sizeof w->e);
}

/* The run facts of the name at depth d of the path, A capped at cap (E: to cap bytes of the run). */
static int find_run_facts(search *e, uint32_t d, int cap, const uint32_t *set, int run, rfacts *out) {
    gram_cache *c = e->c;
    int32_t x = c->pname[d];
    memset(out, 0, sizeof *out);
    const runfact *r = rf_find(c, x, run);
    if (e->dead || (r && (r->pf & PF_BUSY))) { /* given up, or a cycle: nothing known of E */
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
    uint32_t next[8];
    scanned(c, e->m->g, x, next);
    for (int i = 0; i < 8; i++) out->e[i] = next[i] & ~(i < 4 ? set[i] : 0); /* the exits x takes */
    runfold s = {.f = AFOLD_INIT};
    int rc = run_bytes(e, d, cap, set, run, next, &s, out);
    if (!(w = (runfact *)rf_find(c, x, run))) return rc; /* (the table may have moved) */
    w->pf &= (uint8_t)~PF_BUSY;
    if (rc || s.unknown) {
        memset(out->e, 0xff, sizeof out->e);
        out->a = out->exact = out->b = 0;
        return rc;
    }
    run_result(w, cap, &s, out);
    return 0;
}

/* ---- the entry points ---- */

int facts_text(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, pfacts *out) {
    *out = (pfacts){0, 0, 0};
    int rc = cache_path_room(c, 4 * (GRAM_FACT_DEPTH + 1));
    if (rc) return rc;
    search e = search_at(c, m, v);
    size_t base = gram_matcher_consumed(m);
    c->pname[0] = s0;
    rc = find_facts(&e, 0, GRAM_FACT_DEPTH, out);
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    return rc;
}

int facts_run(gram_cache *c, gram_matcher *m, const gram_vocab *v, int32_t s0, const uint32_t *set, int run,
              rfacts *out) {
    int rc = cache_path_room(c, GRAM_FACT_DEPTH + 1);
    if (rc) return rc;
    search e = search_at(c, m, v);
    size_t base = gram_matcher_consumed(m);
    c->pname[0] = s0;
    rc = find_run_facts(&e, 0, GRAM_FACT_DEPTH, set, run, out);
    gram_matcher_rollback(m, gram_matcher_consumed(m) - base);
    return rc;
}

void facts_drop_runs(gram_cache *c) {
    for (size_t i = 0; i < c->rf_cap; i++) c->rf[i].x = -1;
    c->rf_n = 0;
}
