/* fuzz_grammar_regex: arbitrary bytes as a regular expression (compile.h), compiled under small
 * limits so each input runs fast. The pattern is the bytes up to the first NUL; the NUL-separated
 * pieces after it are strings to match. If it compiles, a matcher is fed the pattern itself, each
 * piece whole and byte by byte (the two must agree), with rollbacks and resets between. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grammar/compile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void feed(gram_matcher *m, const uint8_t *s, size_t n) {
    if (n > 256) n = 256;
    gram_matcher_reset(m);
    int whole = gram_matcher_feed(m, s, n);
    int acc = whole == 0 && gram_matcher_accepting(m);
    gram_matcher_reset(m);
    size_t i = 0;
    while (i < n && gram_matcher_feed(m, s + i, 1) == 0) i++;
    if (whole >= 0 && (i == n) != (whole == 0)) abort();
    if (i == n && whole == 0 && gram_matcher_accepting(m) != acc) abort();
    if (gram_matcher_consumed(m) != i) abort();
    if (i > 0 && gram_matcher_rollback(m, i / 2 + 1) == 0 && gram_matcher_consumed(m) != i - (i / 2 + 1)) abort();
    (void)gram_matcher_can_continue(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *nul = memchr(data, 0, size);
    size_t plen = nul ? (size_t)(nul - data) : size;
    gram_limits lim = {.max_elems = 20000, .max_repeat = 64};
    gram_grammar *g = NULL;
    if (gram_from_regex((const char *)data, plen, &lim, &g) != 0) return 0;
    gram_matcher *m = NULL;
    if (gram_matcher_new(g, &m) == 0) {
        feed(m, data, plen);
        const uint8_t *p = nul ? nul + 1 : data + size, *end = data + size;
        for (int k = 0; k < 4 && p <= end; k++) {
            const uint8_t *q = memchr(p, 0, (size_t)(end - p));
            size_t len = q ? (size_t)(q - p) : (size_t)(end - p);
            feed(m, p, len);
            if (!q) break;
            p = q + 1;
        }
        gram_matcher_free(m);
    }
    gram_free(g);
    return 0;
}
