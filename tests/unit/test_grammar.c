/* grammar: the builder, the Earley matcher and token masks, each checked against an independent
 * reference written here: a fixpoint CYK-style membership and prefix test over the test's own copy
 * of each grammar, run on every byte string up to a length over the grammar's alphabet (walked
 * depth-first, descending only into viable prefixes, which is complete: a string with a
 * non-viable prefix is not viable). UTF-8 classes are checked against an encoder over all code
 * points; masks against feeding each token alone. Ends with a timing of masks over a synthetic
 * 150k-token vocabulary and a JSON grammar (printed, not checked). */
#include <string.h>
#include <time.h>

#include "base/err.h"
#include "grammar/compile.h"
#include "grammar/grammar.h"
#include "grammar/schema.h"
#include "test.h"

/* ---- the test's own grammar representation ---- */

#define MAXR 24
#define MAXA 8
#define MAXE 12
#define MAXN 12 /* longest string the reference handles */
enum { E_RULE = 256, E_CLASS = 512 };

typedef struct {
    int n, e[MAXE]; /* e: a byte (< 256), E_RULE + rule, E_CLASS + class */
} talt;
typedef struct {
    int nalt;
    talt alt[MAXA];
    int rep_of, rep_min, rep_max; /* rep_of >= 0: built in the builder with gram_repeat */
} trule;
typedef struct {
    int nr, ncls;
    trule r[MAXR];
    gram_bytes cls[8];
    char alpha[32]; /* the bytes the exhaustive walk tries */
} tgram;

static void tg_init(tgram *G, const char *alpha) {
    memset(G, 0, sizeof *G);
    snprintf(G->alpha, sizeof G->alpha, "%s", alpha);
    for (int i = 0; i < MAXR; i++) G->r[i].rep_of = -1;
}

/* Rules from lines "X=alt|alt": uppercase letters are rules (X is rule X - 'A'), '0'..'7' after '%'
 * are classes, other bytes are themselves; an empty alternative is the empty string. */
static void tg_rules(tgram *G, const char *const *lines, int n) {
    for (int l = 0; l < n; l++) {
        const char *s = lines[l];
        int r = s[0] - 'A';
        if (r + 1 > G->nr) G->nr = r + 1;
        trule *R = &G->r[r];
        talt *a = &R->alt[R->nalt++];
        for (s += 2; *s; s++) {
            if (*s == '|') {
                a = &R->alt[R->nalt++];
            } else if (*s >= 'A' && *s <= 'Z') {
                a->e[a->n++] = E_RULE + (*s - 'A');
            } else if (*s == '%') {
                a->e[a->n++] = E_CLASS + (*++s - '0');
            } else {
                a->e[a->n++] = (unsigned char)*s;
            }
        }
    }
}

/* Rule r = x{min,max} (max < 0: unbounded); the builder gets gram_repeat, the reference the
 * alternatives x^min .. x^max, or x^min S with S = "" | x S (right recursion, unlike the builder). */
static void tg_repeat(tgram *G, int r, int x, int min, int max, int s) {
    if (r + 1 > G->nr) G->nr = r + 1;
    trule *R = &G->r[r];
    R->rep_of = x, R->rep_min = min, R->rep_max = max;
    if (max >= 0) {
        for (int k = min; k <= max; k++) {
            talt *a = &R->alt[R->nalt++];
            for (int i = 0; i < k; i++) a->e[a->n++] = E_RULE + x;
        }
        return;
    }
    if (s + 1 > G->nr) G->nr = s + 1;
    talt *a = &R->alt[R->nalt++];
    for (int i = 0; i < min; i++) a->e[a->n++] = E_RULE + x;
    a->e[a->n++] = E_RULE + s;
    G->r[s].rep_of = -2; /* reference only */
    G->r[s].nalt = 2;
    G->r[s].alt[0].n = 0;
    G->r[s].alt[1] = (talt){2, {E_RULE + x, E_RULE + s}};
}

/* Load G into a builder (rule 0 the root). */
static int tg_build(const tgram *G, gram_grammar **out) {
    gram_builder *b;
    int map[MAXR], rc = gram_builder_new(0, &b);
    if (rc) return rc;
    for (int r = 0; r < G->nr; r++)
        if (G->r[r].rep_of == -1) map[r] = gram_rule(b, NULL);
    for (int r = 0; r < G->nr; r++)
        if (G->r[r].rep_of >= 0) map[r] = gram_repeat(b, map[G->r[r].rep_of], G->r[r].rep_min, G->r[r].rep_max);
    for (int r = 0; r < G->nr && !rc; r++) {
        if (G->r[r].rep_of != -1) continue;
        for (int a = 0; a < G->r[r].nalt && !rc; a++) {
            rc = gram_alt(b, map[r]);
            for (int i = 0; i < G->r[r].alt[a].n && !rc; i++) {
                int e = G->r[r].alt[a].e[i];
                rc = e < 256 ? gram_add_byte(b, (unsigned char)e)
                     : e < E_CLASS ? gram_add_rule(b, map[e - E_RULE]) : gram_add_class(b, &G->cls[e - E_CLASS]);
            }
        }
    }
    if (!rc) rc = gram_build(b, map[0], out);
    gram_builder_free(b);
    return rc;
}

/* ---- the reference: bitmask tables over positions 0..n of s ---- */

typedef struct {
    const tgram *G;
    const unsigned char *s;
    int n;
    unsigned full[MAXR][MAXN + 1]; /* bit j: rule derives s[i..j) */
    unsigned pre[MAXR];            /* bit i: s[i..n) is a prefix of something the rule derives */
    int prod[MAXR];
} ref_t;

static int elem_in(const ref_t *R, int e, int p) {
    if (p >= R->n) return 0;
    return e < 256 ? R->s[p] == e : gram_bytes_has(&R->G->cls[e - E_CLASS], R->s[p]);
}

/* end positions reachable from the positions in `from` over elements e[0..k) */
static unsigned seq_ends(const ref_t *R, const talt *a, int k, unsigned from) {
    for (int i = 0; i < k && from; i++) {
        unsigned to = 0;
        for (int p = 0; p <= R->n; p++) {
            if (!(from >> p & 1)) continue;
            int e = a->e[i];
            if (e >= E_RULE && e < E_CLASS) to |= R->full[e - E_RULE][p];
            else if (elem_in(R, e, p)) to |= 1u << (p + 1);
        }
        from = to;
    }
    return from;
}

static int elem_prod(const ref_t *R, int e) {
    if (e >= E_RULE && e < E_CLASS) return R->prod[e - E_RULE];
    if (e < 256) return 1;
    gram_bytes z;
    gram_bytes_clear(&z);
    return memcmp(&z, &R->G->cls[e - E_CLASS], sizeof z) != 0;
}

static void ref_run(ref_t *R, const tgram *G, const unsigned char *s, int n) {
    R->G = G, R->s = s, R->n = n;
    memset(R->full, 0, sizeof R->full);
    memset(R->pre, 0, sizeof R->pre);
    memset(R->prod, 0, sizeof R->prod);
    for (int ch = 1; ch;) { /* productive rules */
        ch = 0;
        for (int r = 0; r < G->nr; r++)
            for (int a = 0; a < G->r[r].nalt && !R->prod[r]; a++) {
                int ok = 1;
                for (int i = 0; i < G->r[r].alt[a].n; i++) ok &= elem_prod(R, G->r[r].alt[a].e[i]);
                if (ok) R->prod[r] = ch = 1;
            }
    }
    for (int ch = 1; ch;) {
        ch = 0;
        for (int r = 0; r < G->nr; r++)
            for (int a = 0; a < G->r[r].nalt; a++) {
                const talt *A = &G->r[r].alt[a];
                for (int i = 0; i <= n; i++) {
                    unsigned f = R->full[r][i] | seq_ends(R, A, A->n, 1u << i);
                    if (f != R->full[r][i]) R->full[r][i] = f, ch = 1;
                    if (R->pre[r] >> i & 1) continue;
                    int ok = A->n == 0 && i == n;
                    for (int k = 0; k < A->n && !ok; k++) {
                        int rest = 1;
                        for (int j = k + 1; j < A->n; j++) rest &= elem_prod(R, A->e[j]);
                        if (!rest) continue;
                        unsigned from = seq_ends(R, A, k, 1u << i);
                        int e = A->e[k];
                        for (int p = 0; p <= n && !ok; p++) {
                            if (!(from >> p & 1)) continue;
                            if (e >= E_RULE && e < E_CLASS) ok = R->pre[e - E_RULE] >> p & 1;
                            else ok = (p == n && elem_prod(R, e)) || (p == n - 1 && elem_in(R, e, p));
                        }
                    }
                    if (ok) R->pre[r] |= 1u << i, ch = 1;
                }
            }
    }
}

/* ---- exhaustive comparison ---- */

typedef struct {
    const tgram *G;
    gram_matcher *m;
    int maxlen;
    unsigned char s[MAXN];
    long visited, sentences;
    /* tiny vocabulary for masks */
    gram_vocab *v;
    const unsigned char *tok[64];
    size_t tlen[64];
    int ntok;
} walk_t;

static void check_mask(walk_t *W) {
    if (!W->v) return;
    uint32_t mask[2] = {0, 0};
    size_t before = gram_matcher_consumed(W->m);
    int acc = gram_matcher_accepting(W->m), n = gram_matcher_mask(W->m, W->v, mask), want = 0;
    CHECK(gram_matcher_consumed(W->m) == before && gram_matcher_accepting(W->m) == acc);
    for (int t = 0; t < W->ntok; t++) {
        int ok = W->tlen[t] > 0 && gram_matcher_feed(W->m, W->tok[t], W->tlen[t]) == 0;
        if (ok) gram_matcher_rollback(W->m, W->tlen[t]), want++;
        CHECK_MSG(ok == (int)(mask[t >> 5] >> (t & 31) & 1), "token %d at depth %zu", t, before);
    }
    CHECK(n == want);
}

static void walk(walk_t *W, int len) {
    ref_t R;
    int cont = gram_matcher_can_continue(W->m), any = 0;
    check_mask(W);
    for (const char *c = W->G->alpha; *c; c++) {
        W->s[len] = (unsigned char)*c;
        ref_run(&R, W->G, W->s, len + 1);
        int viable = R.pre[0] & 1, sentence = R.full[0][0] >> (len + 1) & 1;
        int rc = gram_matcher_feed(W->m, c, 1);
        W->visited++;
        CHECK_MSG((rc == 0) == viable, "'%.*s' viable %d, matcher %d", len + 1, W->s, viable, rc);
        if (rc) {
            CHECK(gram_matcher_consumed(W->m) == (size_t)len);
            continue;
        }
        any = 1;
        CHECK_MSG(gram_matcher_accepting(W->m) == sentence, "'%.*s' sentence %d", len + 1, W->s, sentence);
        W->sentences += sentence;
        if (len + 1 < W->maxlen) walk(W, len + 1);
        CHECK(gram_matcher_rollback(W->m, 1) == 0);
    }
    CHECK_MSG(cont == any, "can_continue after '%.*s'", len, W->s);
}

static unsigned rng_state = 12345;
static unsigned rnd(void) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 17, rng_state ^= rng_state << 5;
    return rng_state;
}

/* Build G, then compare every string up to maxlen over its alphabet, with masks over a tiny
 * random vocabulary of the alphabet's bytes. */
static void exhaustive(const char *name, const tgram *G, int maxlen) {
    gram_grammar *g = NULL;
    gram_matcher *m = NULL;
    int rc = tg_build(G, &g);
    CHECK_MSG(rc == 0, "%s: %s", name, vc_errmsg());
    if (rc) return;
    CHECK(gram_matcher_new(g, &m) == 0);
    walk_t W = {.G = G, .m = m, .maxlen = maxlen};
    static unsigned char tb[64][4];
    int na = (int)strlen(G->alpha);
    W.ntok = 50;
    for (int t = 0; t < W.ntok; t++) {
        W.tlen[t] = t == 7 ? 0 : 1 + rnd() % 4;
        for (size_t i = 0; i < W.tlen[t]; i++) tb[t][i] = (unsigned char)G->alpha[rnd() % na];
        if (t == 9) memcpy(tb[t], tb[3], 4), W.tlen[t] = W.tlen[3]; /* a duplicate */
        W.tok[t] = tb[t];
    }
    CHECK(gram_vocab_new(W.tok, W.tlen, W.ntok, &W.v) == 0);
    ref_t R;
    ref_run(&R, G, W.s, 0);
    CHECK_MSG(gram_matcher_accepting(m) == (int)(R.full[0][0] & 1), "%s: empty string", name);
    walk(&W, 0);
    if (getenv("GRAM_VERBOSE") || test_failures) fprintf(stderr, "%s: %ld strings, %ld sentences\n", name, W.visited, W.sentences);
    gram_vocab_free(W.v);
    gram_matcher_free(m);
    gram_free(g);
}

static void test_exhaustive(void) {
    tgram G;
    tg_init(&G, "()x");
    tg_rules(&G, (const char *[]){"A=A(A)|"}, 1); /* balanced parentheses, left recursive */
    exhaustive("parens-left", &G, 12);

    tg_init(&G, "()x");
    tg_rules(&G, (const char *[]){"A=(A)A|"}, 1);
    exhaustive("parens-right", &G, 12);

    tg_init(&G, "{}[],:\"a1 ");
    tg_rules(&G, (const char *[]){"A=O|L|N|S", "O={}|{M}", "M=P|M,P", "P=S:A", "S=\"\"|\"C\"", "C=a|Ca",
                                  "L=[]|[I]", "I=A|A,I", "N=1|N1"},
             9); /* a JSON subset: objects, arrays, strings, numbers */
    exhaustive("json", &G, 8);

    tg_init(&G, "abc");
    tg_rules(&G, (const char *[]){"A=BCB", "B=|C", "C=D|", "D=|a", "D=bD"}, 5); /* nullable chains */
    exhaustive("nullable", &G, 9);

    tg_init(&G, "abc");
    tg_rules(&G, (const char *[]){"A=AA|a|", "A=b"}, 2); /* ambiguous, cyclic through nulls */
    exhaustive("ambiguous", &G, 8);

    tg_init(&G, "abcd");
    tg_rules(&G, (const char *[]){"A=aB|c|dC", "B=bB", "C=%0C|%1"}, 3); /* B derives nothing */
    gram_bytes_add_range(&G.cls[0], 'a', 'b');
    gram_bytes_add(&G.cls[1], 'd');
    exhaustive("unproductive", &G, 8);

    for (int kind = 0; kind < 6; kind++) { /* repeats of A = a | bc, inside x...y */
        static const int mm[6][2] = {{0, -1}, {1, -1}, {2, -1}, {0, 1}, {2, 4}, {3, 3}};
        tg_init(&G, "abcxy");
        tg_rules(&G, (const char *[]){"A=xCy", "B=a|bc"}, 2);
        tg_repeat(&G, 2, 1, mm[kind][0], mm[kind][1], 3);
        char name[32];
        snprintf(name, sizeof name, "repeat{%d,%d}", mm[kind][0], mm[kind][1]);
        exhaustive(name, &G, 9);
    }
    for (int kind = 0; kind < 6; kind++) { /* counted repetitions (gram_repeat's tail), after and before more */
        static const int mm[6][2] = {{0, 3}, {1, 5}, {0, 0}, {2, 2}, {3, 6}, {0, 7}};
        tg_init(&G, "abcxy");
        tg_rules(&G, (const char *[]){"A=xCy|xCa", "B=a|bc|ab"}, 2);
        tg_repeat(&G, 2, 1, mm[kind][0], mm[kind][1], 3);
        char name[32];
        snprintf(name, sizeof name, "count{%d,%d}", mm[kind][0], mm[kind][1]);
        exhaustive(name, &G, 9);
    }
    tg_init(&G, "abx"); /* nested counts: (B{1,2}){0,3}, and one right after another */
    tg_rules(&G, (const char *[]){"A=xDy|DE", "B=a|ab"}, 2);
    tg_repeat(&G, 2, 1, 1, 2, 5);
    tg_repeat(&G, 3, 2, 0, 3, 5);
    tg_repeat(&G, 4, 1, 0, 2, 5);
    G.alpha[3] = 'y';
    exhaustive("count-nested", &G, 9);
    for (int kind = 0; kind < 3; kind++) { /* a repeat of a nullable rule */
        static const int mm[3][2] = {{2, 3}, {0, 3}, {1, 6}};
        tg_init(&G, "ab");
        tg_rules(&G, (const char *[]){"A=Cb|C", "B=a|"}, 2);
        tg_repeat(&G, 2, 1, mm[kind][0], mm[kind][1], 3);
        char name[40];
        snprintf(name, sizeof name, "repeat-nullable{%d,%d}", mm[kind][0], mm[kind][1]);
        exhaustive(name, &G, 8);
    }
    tg_init(&G, "ab"); /* a count of a rule that derives nothing: only its empty part is left */
    tg_rules(&G, (const char *[]){"A=aCb", "B=bB"}, 2);
    tg_repeat(&G, 2, 1, 0, 3, 3);
    exhaustive("count-unproductive", &G, 6);
}

/* ---- UTF-8 classes ---- */

static int in_ranges(uint32_t c, const uint32_t (*r)[2], int n, int neg) {
    if (c >= 0xD800 && c <= 0xDFFF) return 0;
    int in = 0;
    for (int i = 0; i < n; i++) in |= c >= r[i][0] && c <= r[i][1];
    return in != neg;
}

static int enc(uint32_t c, unsigned char *o) {
    if (c < 0x80) return o[0] = (unsigned char)c, 1;
    if (c < 0x800) return o[0] = (unsigned char)(0xC0 | c >> 6), o[1] = (unsigned char)(0x80 | (c & 63)), 2;
    if (c < 0x10000)
        return o[0] = (unsigned char)(0xE0 | c >> 12), o[1] = (unsigned char)(0x80 | (c >> 6 & 63)),
               o[2] = (unsigned char)(0x80 | (c & 63)), 3;
    o[0] = (unsigned char)(0xF0 | c >> 18), o[1] = (unsigned char)(0x80 | (c >> 12 & 63));
    o[2] = (unsigned char)(0x80 | (c >> 6 & 63)), o[3] = (unsigned char)(0x80 | (c & 63));
    return 4;
}

typedef struct {
    gram_matcher *m;
    unsigned char *p1, *p2, *p3; /* proper-prefix bitmaps of 1, 2, 3 bytes */
    unsigned char s[4];
    const uint32_t (*r)[2];
    int n, neg;
    long fed;
} u8walk_t;

static int u8_complete(const u8walk_t *U, int len) { /* s[0..len) encodes an in-set code point */
    uint32_t c;
    unsigned char e[4];
    if (len == 1) c = U->s[0];
    else if (len == 2) c = (U->s[0] & 0x1Fu) << 6 | (U->s[1] & 63u);
    else if (len == 3) c = (U->s[0] & 0x0Fu) << 12 | (U->s[1] & 63u) << 6 | (U->s[2] & 63u);
    else c = (U->s[0] & 0x07u) << 18 | (U->s[1] & 63u) << 12 | (U->s[2] & 63u) << 6 | (U->s[3] & 63u);
    if (c > 0x10FFFF || enc(c, e) != len || memcmp(e, U->s, (size_t)len)) return 0;
    return in_ranges(c, U->r, U->n, U->neg);
}

static int u8_prefix(const u8walk_t *U, int len) {
    unsigned i = len == 1 ? U->s[0] : len == 2 ? (unsigned)U->s[0] << 8 | U->s[1]
                                               : (unsigned)U->s[0] << 16 | (unsigned)U->s[1] << 8 | U->s[2];
    const unsigned char *b = len == 1 ? U->p1 : len == 2 ? U->p2 : len == 3 ? U->p3 : NULL;
    return b && (b[i >> 3] >> (i & 7) & 1);
}

static void u8walk(u8walk_t *U, int len) {
    static const unsigned char few[] = {0x00, 0x41, 0x7F, 0x80, 0x81, 0x8F, 0x90, 0x9F, 0xA0, 0xA5, 0xBF,
                                        0xC0, 0xC1, 0xC2, 0xDF, 0xE0, 0xED, 0xEF, 0xF0, 0xF4, 0xF5, 0xFF};
    int nb = len < 2 ? 256 : (int)sizeof few;
    for (int k = 0; k < nb; k++) {
        unsigned char c = len < 2 ? (unsigned char)k : few[k];
        U->s[len] = c;
        int full = u8_complete(U, len + 1), pre = u8_prefix(U, len + 1);
        int rc = gram_matcher_feed(U->m, &c, 1);
        U->fed++;
        CHECK_MSG((rc == 0) == (full || pre), "utf8 %02x %02x %02x %02x (len %d)", U->s[0], U->s[1], U->s[2],
                  U->s[3], len + 1);
        if (rc) continue;
        CHECK(gram_matcher_accepting(U->m) == full);
        CHECK(gram_matcher_can_continue(U->m) == pre);
        if (len < 3) u8walk(U, len + 1);
        gram_matcher_rollback(U->m, 1);
    }
}

static void utf8_case(const uint32_t (*r)[2], int n, int neg, int max_alts) {
    gram_builder *b;
    gram_grammar *g = NULL;
    CHECK(gram_builder_new(0, &b) == 0);
    int u = gram_utf8_class(b, r, n, neg);
    CHECK(u >= 0);
    CHECK(gram_build(b, u, &g) == 0);
    gram_builder_free(b);
    if (!g) return;
    int nalts = g->alt_first[u + 1] - g->alt_first[u];
    CHECK_MSG(nalts <= max_alts, "%d alternatives", nalts);
    u8walk_t U = {.r = r, .n = n, .neg = neg};
    U.p1 = calloc(32, 1), U.p2 = calloc(8192, 1), U.p3 = calloc(1 << 21, 1);
    for (uint32_t c = 0; c <= 0x10FFFF; c++) {
        if (!in_ranges(c, r, n, neg)) continue;
        unsigned char e[4];
        int l = enc(c, e);
        if (l > 1) U.p1[e[0] >> 3] |= (unsigned char)(1 << (e[0] & 7));
        unsigned i2 = (unsigned)e[0] << 8 | e[1], i3 = i2 << 8 | e[2];
        if (l > 2) U.p2[i2 >> 3] |= (unsigned char)(1 << (i2 & 7));
        if (l > 3) U.p3[i3 >> 3] |= (unsigned char)(1 << (i3 & 7));
    }
    CHECK(gram_matcher_new(g, &U.m) == 0);
    u8walk(&U, 0);
    for (int i = 0; i < 20000; i++) { /* random code points, and the ends of each range */
        static const int d[4] = {-1, 0, 0, 1};
        uint32_t c = i < 4 * n ? r[i / 4][(i % 4) / 2] + (uint32_t)d[i % 4] : rnd() % 0x110000;
        if (c > 0x10FFFF) continue;
        unsigned char e[4];
        int l = enc(c, e);
        gram_matcher_reset(U.m);
        int rc = gram_matcher_feed(U.m, e, (size_t)l);
        int want = in_ranges(c, r, n, neg);
        CHECK_MSG((rc == 0 && gram_matcher_accepting(U.m)) == want, "U+%04X want %d", c, want);
    }
    gram_matcher_free(U.m);
    free(U.p1), free(U.p2), free(U.p3);
    gram_free(g);
}

static void test_utf8(void) {
    static const uint32_t all[1][2] = {{0, 0x10FFFF}};
    utf8_case(all, 1, 0, 10);
    utf8_case(all, 1, 1, 2); /* nothing: one alternative that never matches */
    static const uint32_t some[5][2] = {{0x41, 0x5A}, {0x3B1, 0x3C9}, {0x4E00, 0x9FFF}, {0x1F600, 0x1F64F},
                                        {0x10FFF0, 0x10FFFF}};
    utf8_case(some, 5, 0, 40);
    utf8_case(some, 5, 1, 60);
    static const uint32_t sur[3][2] = {{0xD000, 0xE100}, {0x7F, 0x80}, {0x10000, 0x10000}};
    utf8_case(sur, 3, 0, 40);
    utf8_case(sur, 3, 1, 60);
    static const uint32_t nl[1][2] = {{'\n', '\n'}}; /* regex '.' */
    utf8_case(nl, 1, 1, 12);
}

/* ---- errors, limits, rollback ---- */

static double now_s(void);

static void test_errors(void) {
    gram_builder *b;
    gram_grammar *g = (gram_grammar *)1;
    CHECK(gram_builder_new(10, &b) == 0);
    int r = gram_rule(b, "root"), v = gram_rule(b, "value");
    CHECK(r == 0 && v == 1);
    CHECK(gram_add_byte(b, 'a') == VC_EINVAL); /* no alternative yet */
    CHECK(gram_alt(b, r) == 0);
    CHECK(gram_add_bytes(b, "abcd", 4) == 0);
    CHECK(gram_add_rule(b, v) == 0);
    CHECK(gram_build(b, r, &g) == VC_EINVAL && g == NULL);
    CHECK_MSG(strstr(vc_errmsg(), "'value'") != NULL, "%s", vc_errmsg());
    CHECK(gram_add_bytes(b, "abcde", 5) == 0); /* 10 elements */
    CHECK(gram_add_byte(b, 'x') == VC_EINVAL);
    CHECK_MSG(!strcmp(vc_errmsg(), "grammar too large (more than 10 elements)"), "%s", vc_errmsg());
    CHECK(gram_repeat(b, r, 0, 100001) == VC_EINVAL);
    gram_builder_free(b);

    CHECK(gram_builder_new(1000, &b) == 0);
    r = gram_rule(b, NULL);
    CHECK(gram_alt(b, r) == 0 && gram_add_byte(b, 'a') == 0);
    CHECK(gram_repeat(b, r, 0, 5000) == VC_EINVAL);
    CHECK_MSG(strstr(vc_errmsg(), "grammar too large") != NULL, "%s", vc_errmsg());
    CHECK(gram_repeat(b, r, 10, 5) == VC_EINVAL);
    int x = gram_repeat(b, r, 100, 400);
    CHECK(x >= 0);
    CHECK(gram_build(b, x, &g) == 0);
    gram_builder_free(b);
    if (!g) return;
    gram_matcher *m;
    CHECK(gram_matcher_new(g, &m) == 0);
    char as[401];
    memset(as, 'a', sizeof as);
    CHECK(gram_matcher_feed(m, as, 99) == 0 && !gram_matcher_accepting(m));
    CHECK(gram_matcher_feed(m, as, 1) == 0 && gram_matcher_accepting(m));
    CHECK(gram_matcher_feed(m, as, 300) == 0 && gram_matcher_accepting(m) && !gram_matcher_can_continue(m));
    CHECK(gram_matcher_feed(m, as, 1) == 1 && gram_matcher_consumed(m) == 400);
    CHECK(gram_matcher_rollback(m, 401) == VC_EINVAL);
    gram_matcher_reset(m);
    CHECK(gram_matcher_feed(m, as, 401) == 1 && gram_matcher_consumed(m) == 0);
    gram_matcher_free(m);
    gram_free(g);

    /* pathological ambiguity: A = A A | a | "" grows sets; the item bound refuses it */
    CHECK(gram_builder_new(0, &b) == 0);
    r = gram_rule(b, "A");
    gram_alt(b, r), gram_add_rule(b, r), gram_add_rule(b, r);
    gram_alt(b, r), gram_add_byte(b, 'a');
    gram_alt(b, r);
    x = gram_rule(b, "S");
    gram_alt(b, x), gram_add_rule(b, r), gram_add_rule(b, r), gram_add_rule(b, r), gram_add_byte(b, 'b');
    CHECK(gram_build(b, x, &g) == 0);
    gram_builder_free(b);
    CHECK(gram_matcher_new(g, &m) == 0);
    gram_matcher_set_item_limit(m, 30);
    int rc = 0;
    size_t fed = 0;
    while (rc == 0 && fed < 100) rc = gram_matcher_feed(m, "a", 1), fed += rc == 0;
    CHECK(rc == VC_EINVAL && gram_matcher_consumed(m) == fed && fed < 100);
    CHECK(gram_matcher_feed(m, "b", 1) == 0 && gram_matcher_accepting(m));
    gram_matcher_set_item_limit(m, 0); /* back to the default: large sets (the hash table grows) */
    gram_matcher_reset(m);
    for (int i = 0; i < 120; i++) CHECK(gram_matcher_feed(m, "a", 1) == 0);
    CHECK(gram_matcher_feed(m, "b", 1) == 0 && gram_matcher_accepting(m) && !gram_matcher_can_continue(m));
    gram_matcher_free(m);
    gram_free(g);

    /* rules referencing later rules: the fixed points at build are linear, not rules x elements */
    enum { CHAIN = 50000 };
    CHECK(gram_builder_new(0, &b) == 0);
    for (int i = 0; i < CHAIN; i++) gram_rule(b, NULL);
    for (int i = 0; i < CHAIN - 1; i++) gram_alt(b, i), gram_add_rule(b, i + 1), gram_alt(b, i), gram_add_byte(b, 'x');
    gram_alt(b, CHAIN - 1), gram_add_byte(b, 'a');
    gram_alt(b, CHAIN - 1); /* nullable: so is every rule of the chain */
    double t0 = now_s();
    CHECK(gram_build(b, 0, &g) == 0);
    CHECK_MSG(now_s() - t0 < 1.0, "build took %.2f s", now_s() - t0);
    gram_builder_free(b);
    CHECK(g && g->nullable[0] && gram_matcher_new(g, &m) == 0);
    /* 'a' completes the whole chain into set 0 (50,000 items): the set's index keeps that linear */
    CHECK(gram_matcher_accepting(m) && gram_matcher_feed(m, "a", 1) == 0 && gram_matcher_accepting(m));
    CHECK(!gram_matcher_can_continue(m) && gram_matcher_feed(m, "a", 1) == 1 && gram_matcher_rollback(m, 1) == 0);
    CHECK(gram_matcher_feed(m, "x", 1) == 0 && gram_matcher_accepting(m) && !gram_matcher_can_continue(m));
    gram_matcher_free(m);
    gram_free(g);

    /* a builder call that failed makes gram_build fail, even if its caller missed it */
    CHECK(gram_builder_new(3, &b) == 0);
    r = gram_rule(b, "r");
    gram_alt(b, r), gram_add_bytes(b, "abcd", 4);
    CHECK(gram_build(b, r, &g) == VC_EINVAL && !strcmp(vc_errmsg(), "grammar too large (more than 3 elements)"));
    gram_builder_free(b);
}

/* Rollback restores the state exactly: the masks and flags after rolling back equal those first seen. */
static void test_rollback(void) {
    tgram G;
    tg_init(&G, "");
    tg_rules(&G, (const char *[]){"A=O|L|N|S", "O={}|{M}", "M=P|M,P", "P=S:A", "S=\"\"|\"C\"", "C=a|Ca",
                                  "L=[]|[I]", "I=A|A,I", "N=1|N1"},
             9);
    gram_grammar *g;
    gram_matcher *m;
    CHECK(tg_build(&G, &g) == 0);
    CHECK(gram_matcher_new(g, &m) == 0);
    static const char *const toks[] = {"{", "}", "[", "]", ",", ":", "\"", "a", "1", "\"a\"", "{\"", "\":", "11",
                                       "[1", ",\"", "aa", "]}", "}]", "1,", "\"}"};
    const unsigned char *tp[20];
    size_t tl[20];
    for (int i = 0; i < 20; i++) tp[i] = (const unsigned char *)toks[i], tl[i] = strlen(toks[i]);
    gram_vocab *v;
    CHECK(gram_vocab_new(tp, tl, 20, &v) == 0);
    const char *doc = "{\"aa\":[1,{\"a\":\"\"},[[]],11],\"a\":{}}";
    size_t n = strlen(doc);
    uint32_t masks[64][1];
    int acc[64];
    for (size_t i = 0; i <= n; i++) {
        CHECK(gram_matcher_mask(m, v, masks[i]) > 0 || i == n);
        acc[i] = gram_matcher_accepting(m);
        if (i < n) CHECK(gram_matcher_feed(m, doc + i, 1) == 0);
    }
    CHECK(acc[n] && !acc[n - 1]);
    for (size_t back = 1; back <= n; back++) {
        CHECK(gram_matcher_rollback(m, back) == 0);
        uint32_t mk[1];
        gram_matcher_mask(m, v, mk);
        CHECK(mk[0] == masks[n - back][0] && gram_matcher_accepting(m) == acc[n - back]);
        CHECK(gram_matcher_feed(m, doc + n - back, back) == 0 && gram_matcher_accepting(m));
    }
    CHECK(gram_matcher_feed(m, "x", 1) == 1 && gram_matcher_consumed(m) == n);
    CHECK(gram_matcher_feed(m, "]", 1) == 1);
    gram_vocab_free(v);
    gram_matcher_free(m);
    gram_free(g);
}

/* ---- timing: a JSON grammar and a synthetic 150k vocabulary ---- */

static int json_grammar(gram_grammar **out) {
    gram_builder *b;
    int rc = gram_builder_new(0, &b);
    if (rc) return rc;
    int value = gram_rule(b, "value"), obj = gram_rule(b, "object"), arr = gram_rule(b, "array");
    int str = gram_rule(b, "string"), num = gram_rule(b, "number"), ws1 = gram_rule(b, "ws1");
    int member = gram_rule(b, "member"), chr = gram_rule(b, "char"), digit = gram_rule(b, "digit");
    gram_bytes s;
    gram_alt(b, ws1);
    gram_bytes_clear(&s), gram_bytes_add(&s, ' '), gram_bytes_add(&s, '\n'), gram_add_class(b, &s);
    int ws = gram_repeat(b, ws1, 0, -1);
    gram_alt(b, value), gram_add_rule(b, obj);
    gram_alt(b, value), gram_add_rule(b, arr);
    gram_alt(b, value), gram_add_rule(b, str);
    gram_alt(b, value), gram_add_rule(b, num);
    gram_alt(b, value), gram_add_bytes(b, "true", 4);
    gram_alt(b, value), gram_add_bytes(b, "false", 5);
    gram_alt(b, value), gram_add_bytes(b, "null", 4);
    gram_alt(b, member), gram_add_rule(b, ws), gram_add_rule(b, str), gram_add_rule(b, ws), gram_add_byte(b, ':'),
        gram_add_rule(b, ws), gram_add_rule(b, value), gram_add_rule(b, ws);
    int mtail1 = gram_rule(b, "mtail1");
    gram_alt(b, mtail1), gram_add_byte(b, ','), gram_add_rule(b, member);
    int mtail = gram_repeat(b, mtail1, 0, -1);
    gram_alt(b, obj), gram_add_byte(b, '{'), gram_add_rule(b, ws), gram_add_byte(b, '}');
    gram_alt(b, obj), gram_add_byte(b, '{'), gram_add_rule(b, member), gram_add_rule(b, mtail), gram_add_byte(b, '}');
    int elem = gram_rule(b, "element"), etail1 = gram_rule(b, "etail1");
    gram_alt(b, elem), gram_add_rule(b, ws), gram_add_rule(b, value), gram_add_rule(b, ws);
    gram_alt(b, etail1), gram_add_byte(b, ','), gram_add_rule(b, elem);
    int etail = gram_repeat(b, etail1, 0, -1);
    gram_alt(b, arr), gram_add_byte(b, '['), gram_add_rule(b, ws), gram_add_byte(b, ']');
    gram_alt(b, arr), gram_add_byte(b, '['), gram_add_rule(b, elem), gram_add_rule(b, etail), gram_add_byte(b, ']');
    uint32_t ex[3][2] = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
    int plain = gram_utf8_class(b, (const uint32_t(*)[2])ex, 3, 1);
    gram_alt(b, chr), gram_add_rule(b, plain);
    gram_alt(b, chr), gram_add_byte(b, '\\');
    gram_bytes_clear(&s);
    for (const char *e = "\"\\/bfnrt"; *e; e++) gram_bytes_add(&s, (unsigned char)*e);
    gram_add_class(b, &s);
    int chars = gram_repeat(b, chr, 0, -1);
    gram_alt(b, str), gram_add_byte(b, '"'), gram_add_rule(b, chars), gram_add_byte(b, '"');
    gram_alt(b, digit);
    gram_bytes_clear(&s), gram_bytes_add_range(&s, '0', '9'), gram_add_class(b, &s);
    int digits = gram_repeat(b, digit, 1, -1);
    gram_alt(b, num), gram_add_rule(b, digits);
    gram_alt(b, num), gram_add_byte(b, '-'), gram_add_rule(b, digits);
    int root = gram_rule(b, "root");
    gram_alt(b, root), gram_add_rule(b, ws), gram_add_rule(b, obj), gram_add_rule(b, ws);
    rc = gram_build(b, root, out);
    gram_builder_free(b);
    return rc;
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* A BPE-like synthetic vocabulary of n tokens: words with a leading space, punctuation runs, raw bytes. */
static void synth_vocab(int n, unsigned char (*buf)[12], const unsigned char **tp, size_t *tl) {
    static const char punct[] = "{}[]\",:. -_'()0123456789\n";
    for (int i = 0; i < n; i++) {
        unsigned k = rnd() % 10;
        size_t l = 0;
        if (i < 256) buf[i][l++] = (unsigned char)i;
        else if (k < 6) {
            if (rnd() & 1) buf[i][l++] = ' ';
            for (size_t c = 1 + rnd() % 9; c--;) buf[i][l++] = (unsigned char)('a' + rnd() % 26);
        } else if (k < 9) {
            for (size_t c = 1 + rnd() % 4; c--;) buf[i][l++] = (unsigned char)punct[rnd() % (sizeof punct - 1)];
        } else {
            for (size_t c = 1 + rnd() % 3; c--;) buf[i][l++] = (unsigned char)(0x80 + rnd() % 0x80);
        }
        tp[i] = buf[i], tl[i] = l;
    }
}

/* A random allowed token of mask (n tokens), or -1. */
static int pick(const uint32_t *mask, int n) {
    int count = 0;
    for (int t = 0; t < n; t++) count += mask[t >> 5] >> (t & 31) & 1;
    if (!count) return -1;
    int k = (int)(rnd() % (unsigned)count);
    for (int t = 0; t < n; t++)
        if ((mask[t >> 5] >> (t & 31) & 1) && k-- == 0) return t;
    return -1;
}

/* Random generations through two cached matchers of g (which share its cache) and one plain matcher,
 * all fed the same tokens: at every step a cached mask equals the plain walk's. Returns the masks compared. */
static int cache_walks(gram_grammar *g, const gram_vocab *v, const unsigned char *const *tp, const size_t *tl, int n,
                       int steps) {
    gram_matcher *m[3] = {NULL, NULL, NULL};
    for (int i = 0; i < 3; i++) CHECK(gram_matcher_new(g, &m[i]) == 0);
    if (!m[0] || !m[1] || !m[2]) return 0;
    gram_matcher_use_cache(m[2], 0);
    size_t words = ((size_t)n + 31) / 32;
    uint32_t *mk[3];
    for (int i = 0; i < 3; i++) mk[i] = calloc(words, sizeof *mk[i]);
    int compared = 0;
    for (int step = 0; step < steps; step++) {
        int who = (int)(rnd() % 2); /* either cached matcher (all three hold the same input) */
        int a = gram_matcher_mask(m[who], v, mk[who]), b = gram_matcher_mask(m[2], v, mk[2]);
        CHECK_MSG(a == b && !memcmp(mk[who], mk[2], words * sizeof *mk[2]), "step %d: cached mask (%d tokens) "
                  "differs from the walk (%d tokens) after %zu bytes", step, a, b, gram_matcher_consumed(m[2]));
        compared++;
        int t = pick(mk[2], n);
        if (t < 0 || rnd() % 64 == 0) { /* the end, or a restart */
            for (int i = 0; i < 3; i++) gram_matcher_reset(m[i]);
            continue;
        }
        for (int i = 0; i < 3; i++) CHECK(gram_matcher_feed(m[i], tp[t], tl[t]) == 0);
        if (rnd() % 16 == 0) { /* and some rollbacks */
            size_t back = rnd() % (gram_matcher_consumed(m[2]) + 1);
            for (int i = 0; i < 3; i++) gram_matcher_rollback(m[i], back);
        }
    }
    for (int i = 0; i < 3; i++) free(mk[i]), gram_matcher_free(m[i]);
    return compared;
}

/* The cache (cache.c) answers exactly as the plain walk: on the JSON grammar, with its memory bound
 * ample and tiny (emptied again and again), and on a right-recursive grammar (every set a new name). */
static void test_mask_cache(void) {
    enum { N = 3000 };
    unsigned char(*buf)[12] = malloc(N * sizeof *buf);
    const unsigned char **tp = malloc(N * sizeof *tp);
    size_t *tl = malloc(N * sizeof *tl);
    synth_vocab(N, buf, tp, tl);
    for (int i = 256; i < 300; i++) { /* and tokens that close strings and open values */
        static const char *const extra[] = {"\":", "\", \"", "\"}", "{\"", "\":\"", "\":[", "],", "\\n", "\\\""};
        const char *e = extra[i % 9];
        tl[i] = strlen(e);
        memcpy(buf[i], e, tl[i]);
    }
    gram_vocab *v = NULL;
    gram_grammar *g = NULL;
    CHECK(gram_vocab_new(tp, tl, N, &v) == 0);
    CHECK(json_grammar(&g) == 0);
    if (!v || !g) return;
    int n = cache_walks(g, v, tp, tl, N, 600);
    gram_cache_stats st;
    gram_grammar_cache_stats(g, &st);
    printf("  JSON: %d masks equal to the walk; cache: %llu of %llu masks hit, %llu states, %llu transitions, "
           "%llu KiB\n", n, (unsigned long long)st.mask_hits, (unsigned long long)st.masks,
           (unsigned long long)st.states, (unsigned long long)st.transitions, (unsigned long long)(st.bytes >> 10));
    CHECK(st.mask_hits > st.masks / 4 && st.flushes == 0);
    gram_grammar_cache_limit(g, 6000); /* a few states and masks: emptied again and again */
    n = cache_walks(g, v, tp, tl, N, 300);
    gram_grammar_cache_stats(g, &st);
    printf("  JSON, 6 kB cache: %d masks equal to the walk; emptied %llu times\n", n, (unsigned long long)st.flushes);
    CHECK(st.flushes > 5);
    gram_free(g);
    /* r ::= 'a' r | '{' r '}' | 'b': nested, right recursive, so names keep growing */
    gram_builder *b = NULL;
    CHECK(gram_builder_new(0, &b) == 0);
    int r = gram_rule(b, "r");
    gram_alt(b, r), gram_add_byte(b, 'a'), gram_add_rule(b, r);
    gram_alt(b, r), gram_add_byte(b, '{'), gram_add_rule(b, r), gram_add_byte(b, '}');
    gram_alt(b, r), gram_add_byte(b, 'b');
    g = NULL;
    CHECK(gram_build(b, r, &g) == 0);
    gram_builder_free(b);
    const char *small[] = {"a", "b", "{", "}", "aa", "ab", "{a", "}}", "b}", "a{b}", "{{", "aaaa"};
    const unsigned char *sp[12];
    size_t sl[12];
    for (int i = 0; i < 12; i++) sp[i] = (const unsigned char *)small[i], sl[i] = strlen(small[i]);
    gram_vocab *sv = NULL;
    CHECK(gram_vocab_new(sp, sl, 12, &sv) == 0);
    if (g && sv) printf("  right recursion: %d masks equal to the walk\n", cache_walks(g, sv, sp, sl, 12, 400));
    gram_free(g);
    gram_vocab_free(sv);
    gram_vocab_free(v);
    free(buf), free(tp), free(tl);
}

/* Cold masks of the front ends' grammars (schema with bounded strings, formats and patterns; regex;
 * choice; GBNF) against the plain walk: random generations with the cache ample, then with a tiny
 * cache emptied before most masks, so nearly every mask is a state's first (its transitions found by
 * the Earley matcher and shared across the byte classes its items cannot tell apart, cache.c). */
static void test_mask_cache_fronts(void) {
    enum { N = 3000 };
    unsigned char(*buf)[12] = malloc(N * sizeof *buf);
    const unsigned char **tp = malloc(N * sizeof *tp);
    size_t *tl = malloc(N * sizeof *tl);
    synth_vocab(N, buf, tp, tl);
    static const char *const extra[] = {"\":", "\", \"", "\"}", "{\"", "\":\"", "\":[", "],", "\\n", "\\\"",
                                        "\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "a\xc3", "\xa9\x62", "@", ".com", "12",
                                        "true", "\"a", "x\"", "+", "(", "))", "*3"};
    enum { NX = sizeof extra / sizeof *extra };
    for (int i = 256; i < 256 + 2 * NX; i++) {
        const char *e = extra[i % NX];
        tl[i] = strlen(e);
        memcpy(buf[i], e, tl[i]);
    }
    gram_vocab *v = NULL;
    CHECK(gram_vocab_new(tp, tl, N, &v) == 0);
    static const char schema[] =
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":1,\"maxLength\":6},"
        "\"email\":{\"type\":\"string\",\"format\":\"email\"},\"free\":{\"type\":\"string\"},"
        "\"zip\":{\"type\":\"string\",\"pattern\":\"[0-9]{3}\"},\"n\":{\"type\":\"integer\"},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":3},\"maxItems\":3}},"
        "\"required\":[\"name\",\"email\",\"free\",\"zip\",\"n\",\"tags\"],\"additionalProperties\":false}";
    static const char re[] = "[a-z0-9._+-]{1,8}@[a-z0-9-]{1,5}\\.(com|org)";
    static const char gbnf[] = "root ::= expr\nexpr ::= term ((\"+\" | \"-\") term)*\n"
                               "term ::= num | \"(\" expr \")\"\nnum ::= [0-9]{1,3}\n";
    const char *choice[] = {"true", "trueish", "{\"a\"}", "x"};
    size_t choice_len[] = {4, 7, 5, 1};
    for (int k = 0; v && k < 4; k++) {
        gram_grammar *g = NULL;
        int rc;
        if (k == 0) {
            cJSON *j = cJSON_Parse(schema);
            gram_schema_opts o = {.any_whitespace = 1};
            rc = gram_from_json_schema(j, &o, &g);
            cJSON_Delete(j);
        } else if (k == 1) rc = gram_from_regex(re, strlen(re), NULL, &g);
        else if (k == 2) rc = gram_from_gbnf(gbnf, strlen(gbnf), NULL, &g);
        else rc = gram_from_choice(choice, choice_len, 4, &g);
        CHECK_MSG(rc == 0, "front end %d: %s", k, vc_errmsg());
        if (!g) continue;
        int n = cache_walks(g, v, tp, tl, N, 300);
        gram_grammar_cache_limit(g, 6000);
        n += cache_walks(g, v, tp, tl, N, 300);
        gram_cache_stats st;
        gram_grammar_cache_stats(g, &st);
        printf("  front end %d: %d masks equal to the walk (%llu emptyings)\n", k, n, (unsigned long long)st.flushes);
        CHECK(n >= 600);
        gram_free(g);
    }
    gram_vocab_free(v);
    free(buf), free(tp), free(tl);
}

/* Masks made from the vocabulary's slices (cache.c: a state that takes every JSON string text up to a
 * length, its floor shared across contexts) against the plain walk: schemas with bounded and unbounded
 * strings, patterns, formats, enums and consts inside strings, any JSON, a regex, a GBNF grammar, a choice
 * list, over a vocabulary whose tokens close strings, escape, and hold whole, partial and invalid UTF-8
 * and runs longer than the slices; with the cache ample and tiny (emptied before most masks). */
static void test_mask_slices(void) {
    enum { N = 4000 };
    unsigned char(*buf)[48] = malloc(N * sizeof *buf);
    unsigned char(*small)[12] = malloc(N * sizeof *small);
    const unsigned char **tp = malloc(N * sizeof *tp);
    size_t *tl = malloc(N * sizeof *tl);
    synth_vocab(N, small, tp, tl);
    for (int i = 0; i < N; i++) memcpy(buf[i], small[i], tl[i]), tp[i] = buf[i];
    static const char *const extra[] = {
        "\"", "\\", "\\\"", "\\n", "\\u00e9", "\\u", "a\"", "ab\",", "xyz\"}", "\",\"", "\":\"", "\"]", "é",
        "\xc3", "\xa9", "\xa9z", "ab\xc3", "\xe6\x97\xa5\xe6\x9c\xac", "\xe6\x97", "x\xe6\x97", "\xf0\x9f\x98\x80",
        "\xf0\x9f", "\xed\xa0\x80", "\xed\x9f\xbf", "\xc0\xaf", "\xff", "\x7f", "a\x7f", "\t", "a\nb", "\x01",
        "----------------------------------------", "                                   ", "abcdefghijkl",
        "abcdefghijklmnopqrstuvwxyzabcdef", "abcdefghijklmnopqrstuvwxyzabcdefg", "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6",
        "abc\\", "ab\\\"", "12345", "2024-01-02", "a@b.co", "Bob", "active", "\"active\"", "t\xc3\xa9", "\\\\"};
    enum { NX = sizeof extra / sizeof *extra };
    for (int i = 0; i < 4 * NX && 300 + i * 17 < N; i++) { /* each a few times, at ids spread over the vocabulary */
        int at = 300 + i * 17;
        const char *e = extra[i % NX];
        tl[at] = strlen(e);
        memcpy(buf[at], e, tl[at]);
    }
    gram_vocab *v = NULL;
    CHECK(gram_vocab_new(tp, tl, N, &v) == 0);
    static const char *const schemas[] = {
        "{\"type\":\"object\",\"properties\":{\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":5},"
        "\"free\":{\"type\":\"string\"},\"long\":{\"type\":\"string\",\"maxLength\":40},"
        "\"tags\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":3},\"maxItems\":3}},"
        "\"required\":[\"name\",\"free\",\"long\",\"tags\"],\"additionalProperties\":false}",
        "{\"type\":\"object\",\"properties\":{\"e\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"d\":{\"type\":\"string\",\"format\":\"date\"},\"p\":{\"type\":\"string\",\"pattern\":\"^[a-z]{0,4}\\\\.?$\"},"
        "\"s\":{\"enum\":[\"active\",\"a\\\"b\",\"\\u00e9t\\u00e9\"]},\"c\":{\"const\":\"fixed value\"},"
        "\"m\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\",\"maxLength\":2}}},"
        "\"required\":[\"e\",\"d\",\"p\",\"s\",\"c\",\"m\"]}",
        "{\"type\":\"object\"}",
        "{\"anyOf\":[{\"type\":\"string\",\"maxLength\":3},{\"type\":\"string\",\"pattern\":\"^ab*$\"},{\"type\":\"integer\"}]}",
    };
    static const char re[] = "\"([^\"\\\\]|\\\\.){0,6}\" or [a-z]{1,3}é?";
    static const char gbnf[] = "root ::= \"say \" str (\", \" str)*\nstr ::= \"\\\"\" [^\"\\\\]{0,4} \"\\\"\"\n";
    const char *choice[] = {"\"ab\"", "\"abc\"", "é", "x"};
    size_t choice_len[] = {4, 5, 2, 1};
    enum { NS = sizeof schemas / sizeof *schemas };
    uint64_t sliced = 0;
    for (int k = 0; v && k < NS + 3; k++) {
        gram_grammar *g = NULL;
        int rc;
        if (k < NS) {
            cJSON *j = cJSON_Parse(schemas[k]);
            gram_schema_opts o = {.any_whitespace = k != 1};
            rc = gram_from_json_schema(j, &o, &g);
            cJSON_Delete(j);
        } else if (k == NS) rc = gram_from_regex(re, strlen(re), NULL, &g);
        else if (k == NS + 1) rc = gram_from_gbnf(gbnf, strlen(gbnf), NULL, &g);
        else rc = gram_from_choice(choice, choice_len, 4, &g);
        CHECK_MSG(rc == 0, "grammar %d: %s", k, vc_errmsg());
        if (!g) continue;
        int n = cache_walks(g, v, tp, tl, N, 400);
        gram_grammar_cache_limit(g, 20000);
        n += cache_walks(g, v, tp, tl, N, 200);
        gram_cache_stats st;
        gram_grammar_cache_stats(g, &st);
        printf("  grammar %d: %d masks equal to the walk, %llu from slices (%llu emptyings)\n", k, n,
               (unsigned long long)st.sliced, (unsigned long long)st.flushes);
        CHECK(n >= 600);
        sliced += k < NS ? st.sliced : 0;
        gram_free(g);
    }
    CHECK(sliced > 100); /* the schemas' string states did take the sliced path */
    gram_vocab_free(v);
    free(buf), free(small), free(tp), free(tl);
}

/* Mask time after a few JSON prefixes over a synthetic 150k vocabulary: the plain walk, the first
 * cached mask of the state (the cache holds only what earlier states left), and a repeated one. */
static void test_mask_timing(void) {
    enum { N = 150000 };
    unsigned char(*buf)[12] = malloc(N * sizeof *buf);
    const unsigned char **tp = malloc(N * sizeof *tp);
    size_t *tl = malloc(N * sizeof *tl);
    synth_vocab(N, buf, tp, tl);
    gram_vocab *v = NULL;
    gram_grammar *g = NULL;
    gram_matcher *m = NULL, *plain = NULL;
    CHECK(gram_vocab_new(tp, tl, N, &v) == 0);
    CHECK(json_grammar(&g) == 0);
    CHECK(g && gram_matcher_new(g, &m) == 0 && gram_matcher_new(g, &plain) == 0);
    if (plain) gram_matcher_use_cache(plain, 0);
    size_t words = (N + 31) / 32;
    uint32_t *mask = malloc(words * sizeof *mask), *ref = malloc(words * sizeof *ref);
    static const char *const states[] = {"", "{", "{\"key\"", "{\"key\": ", "{\"key\": 12", "{\"key\": \"val",
                                         "{\"key\": \"value with more"};
    for (int s = 0; m && plain && s < 7; s++) {
        gram_matcher_reset(m);
        gram_matcher_reset(plain);
        CHECK(gram_matcher_feed(m, states[s], strlen(states[s])) == 0);
        CHECK(gram_matcher_feed(plain, states[s], strlen(states[s])) == 0);
        double t0 = now_s();
        int nref = gram_matcher_mask(plain, v, ref);
        double walk = now_s() - t0;
        t0 = now_s();
        int n = gram_matcher_mask(m, v, mask);
        double first = now_s() - t0;
        CHECK_MSG(n == nref && !memcmp(mask, ref, words * sizeof *ref), "state %s: cached mask differs", states[s]);
        int reps = 0;
        t0 = now_s();
        do /* up to 50 masks or 50 ms (the sanitizer builds are slower) */
            n = gram_matcher_mask(m, v, mask), reps++;
        while (reps < 50 && now_s() - t0 < 0.05);
        double again = (now_s() - t0) / reps;
        printf("  mask after %-26s %6d of %d allowed: walk %8.1f us, cached first %8.1f us, again %6.1f us\n",
               states[s], n, N, walk * 1e6, first * 1e6, again * 1e6);
        CHECK(n > 0);
    }
    free(mask), free(ref);
    gram_matcher_free(m);
    gram_matcher_free(plain);
    gram_free(g);
    gram_vocab_free(v);
    free(buf), free(tp), free(tl);
}

int main(void) {
    test_exhaustive();
    test_utf8();
    test_errors();
    test_rollback();
    test_mask_cache();
    test_mask_cache_fronts();
    test_mask_slices();
    test_mask_timing();
    TEST_END();
}
