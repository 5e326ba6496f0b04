/* test_tokenizer_util.h: helpers for the tokenizer unit tests.
 *
 * mk_tok() builds a small tokenizer.json around a "trick" BPE model: the
 * vocabulary holds every printable ASCII character, a few special characters
 * and the test's own pieces, with ignore_merges and no merges. A pre-token
 * that is a vocabulary entry becomes one token, anything else falls apart
 * into characters, so toks() (tokens joined by '|') shows exactly how the
 * text was normalized and split. */
#ifndef VLLMC_TEST_TOKENIZER_UTIL_H
#define VLLMC_TEST_TOKENIZER_UTIL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    char *s;
    size_t len, cap;
} tbuf;

static inline void tb_put(tbuf *b, const char *s, size_t n) {
    if (b->len + n + 1 > b->cap) {
        b->cap = (b->len + n + 1) * 2;
        b->s = realloc(b->s, b->cap);
        if (!b->s) abort();
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}
static inline void tb_str(tbuf *b, const char *s) { tb_put(b, s, strlen(s)); }
static inline void tb_fmt(tbuf *b, const char *fmt, ...) {
    char tmp[4096];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    tb_put(b, tmp, (size_t)n);
}
static inline void tb_json_str(tbuf *b, const char *s) {
    tb_str(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') tb_fmt(b, "\\%c", c);
        else if (c < 0x20) tb_fmt(b, "\\u%04x", c);
        else tb_put(b, (const char *)&c, 1);
    }
    tb_str(b, "\"");
}

/* JSON of a tokenizer. norm/pretok/post/dec: JSON values or NULL (= null);
 * added: the added_tokens list body or NULL; pieces: NULL-terminated extra
 * vocabulary entries. Ids: ASCII 0x20..0x7E are id = byte, then extras. */
/* Number of ids before a test's own pieces (printable ASCII + the extras of mk_json). */
static inline int32_t base_ids(void);

static const char *const mk_extra[] = {"\xE2\x96\x81", "\xC4\xA0", "\xC4\x8A", "\xC4\x89", "\n", "\t", "\xC3\xA9",
                                       "\xC3\xA8", "\xCC\x81", "\xCC\x87", "i\xCC\x87", "\xC4\xB0", "\xCF\x83", "\xCE\xA3", NULL};

static inline int32_t base_ids(void) {
    int32_t n = 0x7F - 0x20;
    while (mk_extra[n - (0x7F - 0x20)]) n++;
    return n;
}

static inline char *mk_json(const char *norm, const char *pretok, const char *post, const char *dec, const char *added,
                     const char *const *pieces) {
    const char *const *extra = mk_extra;
    tbuf b = {0};
    tb_str(&b, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,\"added_tokens\":[");
    if (added) tb_str(&b, added);
    tb_fmt(&b, "],\"normalizer\":%s,\"pre_tokenizer\":%s,\"post_processor\":%s,\"decoder\":%s,", norm ? norm : "null",
           pretok ? pretok : "null", post ? post : "null", dec ? dec : "null");
    tb_str(&b, "\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":null,\"ignore_merges\":true,\"vocab\":{");
    int id = 0;
    for (int c = 0x20; c < 0x7F; c++, id++) {
        char s[2] = {(char)c, 0};
        if (id) tb_str(&b, ",");
        tb_json_str(&b, s);
        tb_fmt(&b, ":%d", id);
    }
    for (int i = 0; extra[i]; i++, id++) {
        tb_str(&b, ",");
        tb_json_str(&b, extra[i]);
        tb_fmt(&b, ":%d", id);
    }
    for (int i = 0; pieces && pieces[i]; i++, id++) {
        tb_str(&b, ",");
        tb_json_str(&b, pieces[i]);
        tb_fmt(&b, ":%d", id);
    }
    tb_str(&b, "},\"merges\":[]}}");
    return b.s;
}

static inline tok_tokenizer *load_json(const char *json, const char *config) {
    tok_tokenizer *t = NULL;
    int rc = tok_load_mem(json, strlen(json), "test/tokenizer.json", config, config ? strlen(config) : 0, &t);
    if (rc) fprintf(stderr, "load failed: %s\n", vc_errmsg());
    return t;
}

static inline tok_tokenizer *mk_tok(const char *norm, const char *pretok, const char *post, const char *dec,
                             const char *added, const char *const *pieces) {
    char *j = mk_json(norm, pretok, post, dec, added, pieces);
    tok_tokenizer *t = load_json(j, NULL);
    free(j);
    return t;
}

/* The tokens of encode(text) joined by '|' (static buffer). */
static inline const char *toks(const tok_tokenizer *t, const char *text, int special) {
    static tbuf b;
    tok_ids ids = {0};
    b.len = 0;
    tb_str(&b, "");
    if (tok_encode(t, text, strlen(text), special, &ids)) {
        tb_fmt(&b, "ERROR: %s", vc_errmsg());
        return b.s;
    }
    for (size_t i = 0; i < ids.n; i++) {
        size_t n;
        const char *s = tok_id_to_token(t, ids.ids[i], &n);
        if (i) tb_str(&b, "|");
        if (s) tb_put(&b, s, n);
        else tb_fmt(&b, "#%d", ids.ids[i]);
    }
    tok_ids_free(&ids);
    return b.s;
}

/* The ids of encode(text) as "1 2 3" (static buffer). */
static inline const char *idstr(const tok_tokenizer *t, const char *text, int special) {
    static tbuf b;
    tok_ids ids = {0};
    b.len = 0;
    tb_str(&b, "");
    if (tok_encode(t, text, strlen(text), special, &ids)) {
        tb_fmt(&b, "ERROR: %s", vc_errmsg());
        return b.s;
    }
    for (size_t i = 0; i < ids.n; i++) tb_fmt(&b, i ? " %d" : "%d", ids.ids[i]);
    tok_ids_free(&ids);
    return b.s;
}

/* decode of the tokens named in "a|b|c" (static buffer). */
static inline const char *dec_toks(const tok_tokenizer *t, const char *names, unsigned flags) {
    static tbuf b;
    int32_t ids[256];
    size_t n = 0;
    char tmp[256];
    const char *p = names;
    while (*p && n < 256) {
        const char *e = strchr(p, '|');
        size_t l = e ? (size_t)(e - p) : strlen(p);
        memcpy(tmp, p, l);
        tmp[l] = 0;
        ids[n++] = tok_token_to_id(t, tmp, l);
        p += l + (e ? 1 : 0);
        if (!e) break;
    }
    tok_text out = {0};
    b.len = 0;
    tb_str(&b, "");
    if (tok_decode(t, ids, n, flags, &out)) tb_fmt(&b, "ERROR: %s", vc_errmsg());
    else tb_put(&b, out.s, out.len);
    tok_text_free(&out);
    return b.s;
}

#define CHECK_STR(got, want)                                                                                     \
    do {                                                                                                         \
        const char *g_ = (got), *w_ = (want);                                                                    \
        CHECK_MSG(strcmp(g_, w_) == 0, "got \"%s\" want \"%s\"", g_, w_);                                        \
    } while (0)

#endif
