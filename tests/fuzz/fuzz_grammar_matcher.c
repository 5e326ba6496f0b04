/* fuzz_grammar_matcher: a small grammar built from the first bytes of the input (up to 4 rules of
 * up to 3 alternatives of up to 3 elements: bytes and classes over "abcd", rule references, and
 * repeats and UTF-8 classes made in the middle of an alternative), then the rest drives a matcher:
 * feed a byte, roll back, or take a mask over a tiny vocabulary. Invariants (abort on violation):
 * a mask bit is set exactly when feeding that token alone succeeds, the mask's count is the number
 * of bits, a mask or a rejected byte leaves the state as it was, and rolling back a byte and
 * feeding it again gives the same accepting / can-continue answers. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/grammar.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NTOK 27

static int build(const uint8_t *data, size_t size, size_t *p, gram_grammar **g) {
    gram_builder *b;
    if (gram_builder_new(300, &b)) return -1;
    int nr = 1 + data[(*p)++] % 4, rules[4];
    for (int i = 0; i < nr; i++) rules[i] = gram_rule(b, i ? NULL : "root");
    for (int i = 0; i < nr; i++) {
        int na = *p < size ? 1 + data[(*p)++] % 3 : 1;
        for (int a = 0; a < na; a++) {
            gram_alt(b, rules[i]);
            int ne = *p < size ? data[(*p)++] % 4 : 0;
            for (int e = 0; e < ne && *p < size; e++) {
                unsigned x = data[(*p)++];
                gram_bytes s;
                switch (x >> 6) {
                case 0: gram_add_byte(b, (unsigned char)('a' + x % 4)); break;
                case 1:
                    gram_bytes_clear(&s);
                    gram_bytes_add_range(&s, 'a' + x % 4, 'a' + (x >> 2) % 4);
                    gram_add_class(b, &s);
                    break;
                case 2: gram_add_rule(b, rules[x % (unsigned)nr]); break;
                default: {
                    int h;
                    if (x & 1) {
                        int min = (int)(x >> 1) % 3, max = (int)((x >> 3) % 4) - 1;
                        h = gram_repeat(b, rules[(x >> 5) % (unsigned)nr], min, max >= 0 ? min + max : -1);
                    } else {
                        uint32_t r[2][2] = {{'a', 'a' + (x >> 1) % 3}, {0xE9, 0xE9 + (x >> 3) % 4 * 0x4000}};
                        h = gram_utf8_class(b, (const uint32_t(*)[2])r, 2, (x >> 5) & 1);
                    }
                    if (h >= 0) gram_add_rule(b, h);
                }
                }
            }
        }
    }
    int rc = gram_build(b, rules[0], g);
    gram_builder_free(b);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t p = 0;
    gram_grammar *g = NULL;
    if (build(data, size, &p, &g)) return 0;
    static const char *const toks[NTOK] = {"a",   "b",  "c",  "d",  "aa", "ab", "ba", "bb", "cd",   "dc",
                                           "ca",  "ad", "dd", "cc", "abc", "dcba", "aaaa", "bcd", "\xc3\xa9",
                                           "a\xc3", "\xa9", "", "da", "db", "aba", "ccc", "\xc3\xa9\x61"};
    const unsigned char *tp[NTOK];
    size_t tl[NTOK];
    for (int i = 0; i < NTOK; i++) tp[i] = (const unsigned char *)toks[i], tl[i] = strlen(toks[i]);
    gram_matcher *m = NULL;
    gram_vocab *v = NULL;
    if (gram_matcher_new(g, &m) || gram_vocab_new(tp, tl, NTOK, &v)) goto out;
    gram_matcher_set_item_limit(m, 5000);
    while (p < size) {
        unsigned op = data[p++];
        size_t before = gram_matcher_consumed(m);
        int acc = gram_matcher_accepting(m), cont = gram_matcher_can_continue(m);
        if (op % 4 == 0) {
            size_t n = (op >> 2) % (before + 1);
            if (gram_matcher_rollback(m, n) || gram_matcher_consumed(m) != before - n) abort();
        } else if (op % 4 == 1) {
            uint32_t mask[1];
            int n = gram_matcher_mask(m, v, mask);
            if (gram_matcher_consumed(m) != before || gram_matcher_accepting(m) != acc) abort();
            if (n < 0) continue;
            int count = 0, t = 0;
            for (; t < NTOK; t++) {
                int bit = mask[0] >> t & 1, rc = tl[t] ? gram_matcher_feed(m, tp[t], tl[t]) : 1;
                if (rc < 0) break;
                if (bit != (rc == 0)) abort();
                if (rc == 0 && gram_matcher_rollback(m, tl[t])) abort();
                count += bit;
                if (gram_matcher_consumed(m) != before) abort();
            }
            if ((t == NTOK && count != n) || (n > 0 && !cont)) abort();
        } else if (before < 256) {
            unsigned char c = (op >> 2) < 48 ? (unsigned char)('a' + (op >> 2) % 4) : (unsigned char)(op * 37);
            int rc = gram_matcher_feed(m, &c, 1);
            if (rc != 0) {
                if (gram_matcher_consumed(m) != before || gram_matcher_accepting(m) != acc) abort();
                continue;
            }
            if (!cont) abort();
            int a1 = gram_matcher_accepting(m), c1 = gram_matcher_can_continue(m);
            if (gram_matcher_rollback(m, 1) || gram_matcher_accepting(m) != acc) abort();
            if (gram_matcher_feed(m, &c, 1) != 0 || gram_matcher_accepting(m) != a1 ||
                gram_matcher_can_continue(m) != c1)
                abort();
        }
    }
out:
    gram_vocab_free(v);
    gram_matcher_free(m);
    gram_free(g);
    return 0;
}
