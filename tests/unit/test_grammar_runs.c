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
        "a.b.c", "a-b-c", "x@y.z", "\",\"", "\":\"", "{\"", "\"]", "12345", "2024", "a1-b2.c3", "1", "\\", "\\\""};
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

/* Random generations of up to 40 tokens through a cached and a plain matcher of g, fed the same tokens
 * (now and then a token of the run that leaves it next, to reach long runs); returns the masks compared. */
static int walks(gram_grammar *g, const gram_vocab *v, const unsigned char *const *tp, const size_t *tl, int steps) {
    gram_matcher *m = NULL, *p = NULL;
    CHECK(gram_matcher_new(g, &m) == 0 && gram_matcher_new(g, &p) == 0);
    if (!m || !p) return 0;
    gram_matcher_use_cache(p, 0);
    uint32_t a[(N + 31) / 32], b[(N + 31) / 32];
    int compared = 0, len = 0;
    for (int step = 0; step < steps; step++) {
        int na = gram_matcher_mask(m, v, a), nb = gram_matcher_mask(p, v, b);
        CHECK_MSG(na == nb && !memcmp(a, b, sizeof a), "step %d: cached mask (%d tokens) differs from the walk "
                  "(%d tokens) after %zu bytes", step, na, nb, gram_matcher_consumed(p));
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
    };
    static const char *const regexes[] = {
        "[a-z0-9._+-]{1,20}@[a-z0-9-]{1,16}\\.(com|org|net|io)",
        "\"[A-Za-z0-9_]{2,30}(-[A-Za-z0-9]{1,5}){0,3}\", [a-z]+\\.[a-z]{1,3}!",
    };
    if (k < 2) {
        cJSON *j = cJSON_Parse(schemas[k]);
        gram_schema_opts o = {.any_whitespace = 1};
        int rc = gram_from_json_schema(j, &o, g);
        cJSON_Delete(j);
        return rc;
    }
    return gram_from_regex(regexes[k - 2], strlen(regexes[k - 2]), NULL, g);
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
    for (int k = 0; v && k < 4; k++) {
        gram_grammar *g = NULL;
        CHECK_MSG(compile(k, &g) == 0, "grammar %d: %s", k, vc_errmsg());
        if (!g) continue;
        int n = walks(g, v, tp, tl, STEPS);
        gram_cache_stats st;
        gram_grammar_cache_stats(g, &st);
        sliced += st.sliced, floored += st.floored, memos += st.memo_hits;
        gram_grammar_cache_limit(g, 40000);
        n += walks(g, v, tp, tl, STEPS / 2);
        gram_grammar_cache_stats(g, &st);
        printf("  grammar %d: %d masks equal to the walk; %llu from slices or runs, %llu from floored names, "
               "%llu subtrees from memos (%llu emptyings)\n", k, n, (unsigned long long)st.sliced,
               (unsigned long long)st.floored, (unsigned long long)st.memo_hits, (unsigned long long)st.flushes);
        CHECK(n == STEPS + STEPS / 2);
        gram_free(g);
    }
    CHECK(sliced > 100 && floored > 100 && memos > 20); /* the runs, the floors and the memos did take their paths */
    gram_vocab_free(v);
    TEST_END();
}
