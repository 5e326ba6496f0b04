/* grammar: the cold-mask paths for runs of one byte set, floors and first-byte memos (cache.c, facts.c,
 * slices.c) against the plain walk, on a synthetic vocabulary made to hit their edges: tokens that stay in
 * a run (an email's local part, a domain label with its '-', a regex's classes) for 1..40 bytes, that leave
 * it at each exit byte ('@', '.', '-', '"', ',') or after it, that are exactly an exit byte, that begin
 * with one and then run on (".com", "-x", the thousands of ".word" tokens a real vocabulary has), that hold
 * whole, partial and invalid UTF-8, and that close a string and go on ("ab\",", ".\"}"). Each grammar is
 * walked by random generations through a cached matcher and a plain one fed the same tokens, with the
 * cache ample (names, memos and floored masks shared across contexts) and tiny (emptied before most
 * masks); every mask and its count must equal the plain walk's. */
#include <string.h>

#include "base/err.h"
#include "grammar/compile.h"
#include "grammar/grammar.h"
#include "grammar/internal.h"
#include "grammar/schema.h"
#include "test.h"

enum { N = 6000, TOKLEN = 48 };

static unsigned rng_state = 2027;
static unsigned rnd(void) {
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

static const char alnum[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";

/* A run of n bytes of alnum (with '-' and '_' now and then when dash). */
static size_t run_of(unsigned char *o, size_t n, int dash) {
    for (size_t i = 0; i < n; i++) {
        unsigned k = rnd() % 40;
        o[i] = (unsigned char)(dash && k == 0 ? '-' : dash && k == 1 ? '_' : alnum[rnd() % (sizeof alnum - 1)]);
    }
    return n;
}

/* Token i of the vocabulary into o (at most TOKLEN bytes); returns its length. */
static size_t make_token(int i, unsigned char *o) {
    static const char *const fixed[] = {
        "@", ".", "-", "\"", ",", "}", "_", "%", "+", ".com", ".org", ".io", "-x", "--", "---", "@b", "@gmail",
        "a@", "ab.", "ab-", "ab\"", "ab\",", "ab\"}", ".\"", ".\",", "-\"", "é", "ab\xc3\xa9", "\xc3", "\xa9",
        "\xe6\x97\xa5", "a\xe6\x97", "\xf0\x9f\x98\x80", "\xff", "a\xff", "\n", "a\nb", " ", " a", "..", "a..b",
        "a.b.c", "a-b-c", "x@y.z", "\",\"", "\":\"", "{\"", "\"]", "12345", "2024", "a1-b2.c3", "1", "\\", "\\\"",
        "\\n", "\\u00e9", "\\u00", "\\\\", "a\\\"b", "\\/\"", "id=", "x-", "ab-12", "ab.cd.ef"};
    enum { NF = sizeof fixed / sizeof *fixed };
    if (i < 256) { /* every byte alone */
        o[0] = (unsigned char)i;
        return 1;
    }
    if (i < 256 + 3 * NF) { /* each fixed token three times over the vocabulary's first ids */
        size_t l = strlen(fixed[(i - 256) % NF]);
        memcpy(o, fixed[(i - 256) % NF], l);
        return l;
    }
    static const char exits[] = "@.-\",}:/ ";
    size_t l = 0;
    switch (rnd() % 10) {
    case 0: /* a run, 1..40 bytes */
        return run_of(o, 1 + rnd() % 40, 1);
    case 1: /* a run, an exit, maybe more */
        l = run_of(o, 1 + rnd() % 12, 1);
        o[l++] = (unsigned char)exits[rnd() % (sizeof exits - 1)];
        return l + (rnd() % 2 ? run_of(o + l, rnd() % 8, 0) : 0);
    case 2: /* an exit, then a run (".word", "-word", "@word"; a real vocabulary has thousands of ".word") */
    case 8:
    case 9:
        o[l++] = (unsigned char)".-@."[rnd() % 4];
        return l + run_of(o + l, 1 + rnd() % 10, 0);
    case 3: /* an exit, a run, an exit */
        o[l++] = (unsigned char)exits[rnd() % (sizeof exits - 1)];
        l += run_of(o + l, 1 + rnd() % 6, 0);
        o[l++] = (unsigned char)exits[rnd() % (sizeof exits - 1)];
        return l;
    case 4: /* a run, then UTF-8 (whole or cut) */
        l = run_of(o, rnd() % 6, 0);
        memcpy(o + l, "\xe6\x97\xa5\xc3\xa9", 5);
        return l + 1 + rnd() % 5;
    case 5: /* a word with a leading space, as BPE vocabularies have */
        o[l++] = ' ';
        return l + run_of(o + l, 1 + rnd() % 9, 0);
    default: /* a short run */
        return run_of(o, 1 + rnd() % 5, 0);
    }
}

/* A random allowed token of mask, or -1. */
static int pick(const uint32_t *mask) {
    int count = 0;
    for (int t = 0; t < N; t++) count += mask[t >> 5] >> (t & 31) & 1;
    if (!count) return -1;
    int k = (int)(rnd() % (unsigned)count);
    for (int t = 0; t < N; t++)
        if ((mask[t >> 5] >> (t & 31) & 1) && k-- == 0) return t;
    return -1;
}

/* Random generations of up to 40 tokens through a cached matcher of g and a plain one of ref (g itself, or
 * g built another way), fed the same tokens; returns the masks compared. */
static int walks(gram_grammar *g, gram_grammar *ref, const gram_vocab *v, const unsigned char *const *tp,
                 const size_t *tl, int steps) {
    gram_matcher *m = NULL, *p = NULL;
    CHECK(gram_matcher_new(g, &m) == 0 && gram_matcher_new(ref, &p) == 0);
    if (!m || !p) return 0;
    gram_matcher_use_cache(p, 0);
    uint32_t a[(N + 31) / 32], b[(N + 31) / 32];
    int compared = 0, len = 0;
    for (int step = 0; step < steps; step++) {
        int na = gram_matcher_mask(m, v, a), nb = gram_matcher_mask(p, v, b);
        CHECK_MSG(na == nb && !memcmp(a, b, sizeof a), "step %d: cached mask (%d tokens) differs from the walk "
                  "(%d tokens) after %zu bytes", step, na, nb, gram_matcher_consumed(p));
        CHECK(gram_matcher_accepting(m) == gram_matcher_accepting(p));
        compared++;
        int t = pick(b);
        if (t < 0 || ++len > 40 || (gram_matcher_accepting(p) && rnd() % 3 == 0)) {
            gram_matcher_reset(m), gram_matcher_reset(p);
            len = 0;
            continue;
        }
        CHECK(gram_matcher_feed(m, tp[t], tl[t]) == 0 && gram_matcher_feed(p, tp[t], tl[t]) == 0);
    }
    gram_matcher_free(m);
    gram_matcher_free(p);
    return compared;
}

enum { N_COMPILED = 7 };

static int compile(int k, gram_grammar **g) {
    static const char *const schemas[] = {
        /* an email, twice in different contexts, and an array of them (floors shared by the contexts) */
        "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"n\":{\"type\":\"string\",\"maxLength\":3},\"b\":{\"type\":\"string\",\"format\":\"email\"},"
        "\"l\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"format\":\"email\"},\"maxItems\":3}},"
        "\"required\":[\"a\",\"n\",\"b\",\"l\"],\"additionalProperties\":false}",
        /* a hostname-like pattern: a long label with '-', dotted parts */
        "{\"type\":\"array\",\"items\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9]([a-z0-9-]{0,40}[a-z0-9])?"
        "(\\\\.[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?){1,3}$\"},\"maxItems\":4}",
        /* bounded strings in several contexts (an escape is one character), a hostname pattern, an email */
        "{\"type\":\"object\",\"properties\":{\"s\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":9},"
        "\"t\":{\"type\":\"array\",\"items\":{\"type\":\"string\",\"maxLength\":4},\"maxItems\":3},"
        "\"h\":{\"type\":\"string\",\"pattern\":\"^[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\\\\.[a-z]{2,6}){1,2}$\"},"
        "\"e\":{\"type\":\"string\",\"format\":\"email\"}},\"required\":[\"s\",\"t\",\"h\",\"e\"],"
        "\"additionalProperties\":false}",
    };
    static const char *const regexes[] = {
        "[a-z0-9._+-]{1,20}@[a-z0-9-]{1,16}\\.(com|org|net|io)",
        "\"[A-Za-z0-9_]{2,30}(-[A-Za-z0-9]{1,5}){0,3}\", [a-z]+\\.[a-z]{1,3}!",
        "(x[a-z]{0,3}-){1,4}[0-9]{2,5}(\\.([a-z0-9_]{1,3}){1,11}){0,2}", /* nested counts */
    };
    static const char gbnf[] = "root ::= \"id=\" [a-z0-9]{1,12} (\".\" [a-z]{2,4}){0,3} \" \" str\n"
                               "str ::= \"\\\"\" ([^\"\\\\] | \"\\\\\" [\"\\\\n]){0,10} \"\\\"\"\n";
    static const int which[N_COMPILED] = {0, 1, 0, 1, 2, 2, 0}; /* schemas[], regexes[], gbnf */
    static const int kind[N_COMPILED] = {0, 0, 1, 1, 0, 1, 2};
    const char *re = regexes[which[k]];
    if (kind[k] == 1) return gram_from_regex(re, strlen(re), NULL, g);
    if (kind[k] == 2) return gram_from_gbnf(gbnf, strlen(gbnf), NULL, g);
    cJSON *j = cJSON_Parse(schemas[which[k]]);
    gram_schema_opts o = {.any_whitespace = 1};
    int rc = gram_from_json_schema(j, &o, g);
    cJSON_Delete(j);
    return rc;
}

/* ---- counted repetitions against nested optionals ---- */

typedef int (*repeat_fn)(gram_builder *b, int r, int min, int max);

/* x{min,max} as gram_repeat built it before counted repetitions: x^min, then max - min nested optionals
 * (O_1 ::= "" | x, O_k ::= "" | x O_{k-1}), each byte of a run completing every level above it. */
static int nested_repeat(gram_builder *b, int r, int min, int max) {
    int tail = -1, rc = 0;
    for (int k = 1; k <= max - min && !rc; k++) {
        int o = gram_rule(b, NULL);
        rc = o < 0 ? o : gram_alt(b, o);
        if (!rc) rc = gram_alt(b, o);
        if (!rc) rc = gram_add_rule(b, r);
        if (!rc && tail >= 0) rc = gram_add_rule(b, tail);
        tail = o;
    }
    if (rc || (min == 0 && tail >= 0)) return rc ? rc : tail;
    int top = gram_rule(b, NULL);
    rc = top < 0 ? top : gram_alt(b, top);
    for (int i = 0; i < min && !rc; i++) rc = gram_add_rule(b, r);
    if (!rc && tail >= 0) rc = gram_add_rule(b, tail);
    return rc ? rc : top;
}

/* A rule of one byte of set ("a-z0-9-": ranges, and single bytes; a '-' first or last is itself). */
static int set_rule(gram_builder *b, const char *set) {
    gram_bytes s;
    gram_bytes_clear(&s);
    for (size_t i = 0, n = strlen(set); i < n; i++) {
        if (i + 2 < n && set[i + 1] == '-') {
            gram_bytes_add_range(&s, (unsigned char)set[i], (unsigned char)set[i + 2]);
            i += 2;
        } else {
            gram_bytes_add(&s, (unsigned char)set[i]);
        }
    }
    int r = gram_rule(b, NULL);
    if (r >= 0 && (gram_alt(b, r) || gram_add_class(b, &s))) return -1;
    return r;
}

/* A rule of one sequence: the elements > 0 are rules, the others literal bytes ~e. */
static int seq_rule(gram_builder *b, const int *e, int n) {
    int r = gram_rule(b, NULL), rc = r < 0 ? r : gram_alt(b, r);
    for (int i = 0; i < n && !rc; i++) rc = e[i] >= 0 ? gram_add_rule(b, e[i]) : gram_add_byte(b, (unsigned char)~e[i]);
    return rc ? -1 : r;
}
#define L(c) (~(int)(c))

/* '"' C{2,20} '"' (',' '"' C{0,5} '"'){0,3}, C a JSON string character (escapes, \uXXXX). */
static int pair_strings(gram_builder *b, repeat_fn rep) {
    static const uint32_t plain[][2] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}};
    int u = gram_utf8_class(b, plain, 3, 0), e = set_rule(b, "\"\\/bfnrt"), h = set_rule(b, "0-9a-fA-F");
    int h4 = rep(b, h, 4, 4), c = gram_rule(b, NULL);
    if (u < 0 || e < 0 || h4 < 0 || c < 0) return -1;
    if (gram_alt(b, c) || gram_add_rule(b, u) || gram_alt(b, c) || gram_add_byte(b, '\\') || gram_add_rule(b, e) ||
        gram_alt(b, c) || gram_add_bytes(b, "\\u", 2) || gram_add_rule(b, h4))
        return -1;
    int long_s = rep(b, c, 2, 20), short_s = rep(b, c, 0, 5);
    int more = seq_rule(b, (int[]){L(','), L('"'), short_s, L('"')}, 4);
    int mores = more < 0 ? -1 : rep(b, more, 0, 3);
    return mores < 0 ? -1 : seq_rule(b, (int[]){L('"'), long_s, L('"'), mores}, 4);
}

/* An email: L{1,64} '@' label ('.' label){1,3}, label = A (D{0,61} A)?. */
static int pair_email(gram_builder *b, repeat_fn rep) {
    int l = set_rule(b, "a-zA-Z0-9._%+-"), a = set_rule(b, "a-zA-Z0-9"), d = set_rule(b, "a-zA-Z0-9-");
    int local = rep(b, l, 1, 64), ds = rep(b, d, 0, 61);
    int inner = seq_rule(b, (int[]){ds, a}, 2), opt = inner < 0 ? -1 : rep(b, inner, 0, 1);
    int label = seq_rule(b, (int[]){a, opt}, 2), dot = seq_rule(b, (int[]){L('.'), label}, 2);
    int dots = dot < 0 ? -1 : rep(b, dot, 1, 3);
    return dots < 0 ? -1 : seq_rule(b, (int[]){local, L('@'), label, dots}, 4);
}

/* Nested counts: ([a-z]{1,3} '.'){0,4} [a-z]{2,6} ('-' [0-9]{0,2}){2,3}. */
static int pair_nested(gram_builder *b, repeat_fn rep) {
    int az = set_rule(b, "a-z"), dg = set_rule(b, "0-9");
    int w = rep(b, az, 1, 3), g = seq_rule(b, (int[]){w, L('.')}, 2), gs = rep(b, g, 0, 4), last = rep(b, az, 2, 6);
    int ds = rep(b, dg, 0, 2), t = seq_rule(b, (int[]){L('-'), ds}, 2), ts = t < 0 ? -1 : rep(b, t, 2, 3);
    return ts < 0 ? -1 : seq_rule(b, (int[]){gs, last, ts}, 3);
}

static int pair_build(int k, repeat_fn rep, gram_grammar **g) {
    static int (*const make[])(gram_builder *, repeat_fn) = {pair_strings, pair_email, pair_nested};
    gram_builder *b = NULL;
    int rc = gram_builder_new(0, &b), root = rc ? -1 : make[k](b, rep);
    rc = root < 0 ? VC_EINVAL : gram_build(b, root, g);
    gram_builder_free(b);
    return rc;
}

/* The masks of grammars with counted repetitions (cached) equal those of the same grammars with nested
 * optionals (plain walks): the language did not change, and the cache's names, facts and floors are exact. */
static void test_pairs(const gram_vocab *v, const unsigned char *const *tp, const size_t *tl, int steps) {
    for (int k = 0; k < 3; k++) {
        gram_grammar *gc = NULL, *gn = NULL;
        CHECK_MSG(pair_build(k, gram_repeat, &gc) == 0 && pair_build(k, nested_repeat, &gn) == 0, "pair %d: %s", k,
                  vc_errmsg());
        if (gc && gn) {
            int n = walks(gc, gn, v, tp, tl, steps);
            gram_grammar_cache_limit(gc, 40000);
            n += walks(gc, gn, v, tp, tl, steps / 2);
            printf("  pair %d: %d masks of counted repetitions equal to nested optionals' (%d positions, was %d)\n", k,
                   n, (int)gc->n_pos, (int)gn->n_pos);
            CHECK(n == steps + steps / 2);
        }
        gram_free(gc);
        gram_free(gn);
    }
}

/* ---- a run's count kept with the vocabulary (gram_vocab_run_of) ---- */

/* The tokens made of 1..max bytes of set, counted token by token (and marked in mask, when given). */
static int count_made_of(const uint32_t set[4], const unsigned char *const *tp, const size_t *tl, size_t max,
                         uint32_t *mask) {
    int n = 0;
    for (int t = 0; t < N; t++) {
        size_t j = 0;
        while (j < tl[t] && tp[t][j] < 0x80 && (set[tp[t][j] >> 5] >> (tp[t][j] & 31) & 1)) j++;
        int in = tl[t] && j == tl[t] && j <= max;
        n += in;
        if (mask && in) mask[t >> 5] |= 1u << (t & 31);
    }
    return n;
}

/* gram_vocab_run_slice against the tokens counted one by one, for every length (past GRAM_SLICE_MAX: all of len),
 * scanned the first time and copied from the kept bitset the second; every word of the mask written. */
static void check_run_slices(const gram_vocab *v, int index, const uint32_t set[4], const unsigned char *const *tp,
                             const size_t *tl) {
    static uint32_t got[(N + 31) / 32], want[(N + 31) / 32];
    for (int a = 1; a <= GRAM_SLICE_MAX + 2; a++)
        for (int again = 0; again < 2; again++) {
            memset(got, again ? 0x5a : 0xff, sizeof got);
            memset(want, 0, sizeof want);
            int n = gram_vocab_run_slice(v, index, a, got), k = count_made_of(set, tp, tl, (size_t)(a < GRAM_SLICE_MAX ? a : GRAM_SLICE_MAX), want);
            CHECK_MSG(n == k && !memcmp(got, want, sizeof got), "run %d, up to %d bytes (%s): %d tokens, want %d", index,
                      a, again ? "kept" : "scanned", n, k);
        }
}

/* gram_vocab_run_of answers as the count on the trie would, the first time (counted), the second (kept:
 * a run found by its key, or a set remembered as too few) and for another least (a kept count is exact). */
static void test_run_counts(const unsigned char *const *tp, const size_t *tl) {
    gram_vocab *v = NULL; /* (its own: the runs made here take table room that the grammars' would use) */
    CHECK(gram_vocab_new(tp, tl, N, &v) == 0);
    if (!v) return;
    static const char *const sets[] = {"abcdefghijklmnopqrstuvwxyz0123456789", "0123456789", "@", "-", ".-",
                                       "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._%+-", "xyz",
                                       "abcdefghijklmnopqrstuvwxyz", "\"\\"};
    int least = N / GRAM_RUN_MIN_SHARE, runs = 0, few = 0;
    for (size_t k = 0; k < sizeof sets / sizeof *sets; k++) {
        uint32_t set[4] = {0};
        for (const char *c = sets[k]; *c; c++) set[(unsigned char)*c >> 5] |= 1u << ((unsigned char)*c & 31);
        int n = count_made_of(set, tp, tl, GRAM_SLICE_MAX, NULL);
        for (int l = 0; l < 4; l++) { /* least, again, a lower least (where n is below least), least again */
            int lst = l == 2 && n < least ? (n > 1 ? n - 1 : 1) : least, index = -2;
            const gram_run *r = (const gram_run *)1;
            CHECK(gram_vocab_run_of(v, set, lst, &r, &index) == 0);
            CHECK_MSG((r != NULL) == (n >= lst), "set \"%s\" (%d tokens made of it), least %d: run %p", sets[k], n, lst,
                      (const void *)r);
            CHECK(r ? index >= 0 && r->len && r->n_len == n && !memcmp(r->set, set, sizeof set) : index == -1);
            runs += r != NULL, few += r == NULL;
            if (r && l == 0) check_run_slices(v, index, set, tp, tl);
        }
    }
    printf("  run counts: %d answers with a run, %d without, equal to the counts token by token\n", runs, few);
    CHECK(runs > 4 && few > 4);
    gram_vocab_free(v);
}

/* under ASan (CI's time: ~27 s at full length) 2/5 of the steps */
#if defined(__SANITIZE_ADDRESS__)
#define STEPS 200
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define STEPS 200
#endif
#endif
#ifndef STEPS
#define STEPS 500
#endif

int main(void) {
    static unsigned char buf[N][TOKLEN];
    static const unsigned char *tp[N];
    static size_t tl[N];
    for (int i = 0; i < N; i++) tp[i] = buf[i], tl[i] = make_token(i, buf[i]);
    gram_vocab *v = NULL;
    CHECK(gram_vocab_new(tp, tl, N, &v) == 0);
    uint64_t sliced = 0, floored = 0, memos = 0;
    for (int k = 0; v && k < N_COMPILED; k++) {
        gram_grammar *g = NULL;
        CHECK_MSG(compile(k, &g) == 0, "grammar %d: %s", k, vc_errmsg());
        if (!g) continue;
        int n = walks(g, g, v, tp, tl, STEPS);
        gram_cache_stats st;
        gram_grammar_cache_stats(g, &st);
        sliced += st.sliced, floored += st.floored, memos += st.memo_hits;
        gram_grammar_cache_limit(g, 40000);
        n += walks(g, g, v, tp, tl, STEPS / 2);
        gram_grammar_cache_stats(g, &st);
        printf("  grammar %d: %d masks equal to the walk; %llu from slices or runs, %llu from floored names, "
               "%llu subtrees from memos (%llu emptyings)\n", k, n, (unsigned long long)st.sliced,
               (unsigned long long)st.floored, (unsigned long long)st.memo_hits, (unsigned long long)st.flushes);
        CHECK(n == STEPS + STEPS / 2);
        gram_free(g);
    }
    test_run_counts(tp, tl);
    if (v) test_pairs(v, tp, tl, STEPS / 4); /* (the nested optionals' plain walks of long runs are slow) */
    CHECK(sliced > 100 && floored > 100 && memos > 20); /* the runs, the floors and the memos did take their paths */
    gram_vocab_free(v);
    TEST_END();
}
