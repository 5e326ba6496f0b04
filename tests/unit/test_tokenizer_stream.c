/* test_tokenizer_stream: incremental detokenization, the JSON reader, and
 * concurrent use of one tokenizer.
 *
 * Stream invariants checked on random id sequences for several decoder
 * chains: every piece is valid UTF-8, the pieces concatenate to tok_decode
 * (same flags), and the work per token stays O(1). */
#include <pthread.h>
#include <time.h>

#include "test_tokenizer_util.h"
#include "tokenizer/json.h"

static int valid_utf8(const char *s, size_t n) {
    const unsigned char *u = (const unsigned char *)s;
    for (size_t i = 0; i < n;) {
        unsigned c = u[i];
        size_t k = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
        if (!k || i + k > n) return 0;
        for (size_t j = 1; j < k; j++)
            if ((u[i + j] & 0xC0) != 0x80) return 0;
        if ((c == 0xE0 && u[i + 1] < 0xA0) || (c == 0xED && u[i + 1] > 0x9F) || (c == 0xF0 && u[i + 1] < 0x90) ||
            (c == 0xF4 && u[i + 1] > 0x8F))
            return 0;
        i += k;
    }
    return 1;
}

static uint64_t rng_state = 88172645463325252ull;
static uint32_t rnd(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

/* Streams ids and compares with tok_decode; returns the concatenation. */
static void check_stream(const tok_tokenizer *t, const int32_t *ids, size_t n, unsigned flags) {
    tok_stream *s = NULL;
    CHECK(tok_stream_init(t, flags, &s) == 0);
    tbuf acc = {0};
    tb_str(&acc, "");
    int ok_utf8 = 1;
    for (size_t i = 0; i <= n; i++) {
        const char *p;
        size_t pl;
        int rc = i < n ? tok_stream_push(s, ids[i], &p, &pl) : tok_stream_flush(s, &p, &pl);
        CHECK(rc == 0);
        if (!valid_utf8(p, pl)) ok_utf8 = 0;
        tb_put(&acc, p, pl);
    }
    tok_text full = {0};
    CHECK(tok_decode(t, ids, n, flags, &full) == 0);
    CHECK_MSG(ok_utf8, "a piece is not valid UTF-8");
    CHECK_MSG(full.len == acc.len && memcmp(full.s, acc.s, acc.len) == 0, "stream \"%s\" != decode \"%s\" (flags %u)",
              acc.s, full.s, flags);
    CHECK(valid_utf8(full.s, full.len));
    tok_text_free(&full);
    free(acc.s);
    tok_stream_free(s);
}

static const char *const sp_pieces[] = {"<0x61>", "<0xE5>", "<0x8F>", "<0xAB>", "<0xF0>", "<0x9F>", "<0xA6>",
                                        "<0x99>", "<0x20>", "<0xFF>", "<0xC3>", "<0xA9>", "\xE2\x96\x81Hey",
                                        "\xE2\x96\x81" "friend", "\xE2\x96\x81\xE2\x96\x81", "\xE6\x97\xA5", NULL};
static const char *const sp_added = "{\"id\":0,\"content\":\"<s>\",\"special\":true},{\"id\":1,\"content\":\"</s>\","
                                    "\"special\":true},{\"id\":2,\"content\":\"<x\xE2\x96\x81y>\",\"special\":false}";
static const char *const decoders[] = {
    /* llama 2 / mistral */
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"\xE2\x96\x81\"},\"content\":\" \"},"
    "{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}",
    /* byte-level (GPT-2, llama 3, qwen) */
    "{\"type\":\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,\"use_regex\":true}",
    /* older SentencePiece conversions */
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Metaspace\",\"replacement\":\"\xE2\x96\x81\","
    "\"prepend_scheme\":\"always\",\"split\":true}]}",
    /* steps after a fuse: literal and regex Replace, Strip both ends, ByteFallback on the fused token */
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\"Hey\xE2\x96\x81\"},"
    "\"content\":\"[H]\"},{\"type\":\"Replace\",\"pattern\":{\"Regex\":\"a+\"},\"content\":\"A\"},"
    "{\"type\":\"Strip\",\"content\":\"\xE2\x96\x81\",\"start\":2,\"stop\":3},{\"type\":\"ByteFallback\"}]}",
    /* ByteLevel after Fuse, Metaspace after ByteFallback */
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Fuse\"},{\"type\":\"ByteLevel\"}]}",
    /* no decoder: tokens joined with spaces */
    NULL,
};

static void test_stream_random(void) {
    for (size_t d = 0; d < sizeof decoders / sizeof decoders[0]; d++) {
        tok_tokenizer *t = mk_tok(NULL, NULL, NULL, decoders[d], sp_added, sp_pieces);
        CHECK(t != NULL);
        if (!t) continue;
        int32_t vs = (int32_t)tok_vocab_size(t);
        int32_t pool[64];
        size_t np = 0;
        for (int i = 0; sp_pieces[i]; i++) pool[np++] = tok_token_to_id(t, sp_pieces[i], strlen(sp_pieces[i]));
        for (int32_t id = 0; id < 3; id++) pool[np++] = id;
        for (const char *c = " aHey\xE2\x96\x81"; *c; c++)
            if ((unsigned char)*c < 0x80) pool[np++] = tok_token_to_id(t, c, 1);
        for (int iter = 0; iter < 3000; iter++) {
            int32_t ids[48];
            size_t n = rnd() % 48;
            for (size_t i = 0; i < n; i++) {
                uint32_t r = rnd() % 10;
                ids[i] = r < 7 ? pool[rnd() % np] : r < 9 ? (int32_t)(rnd() % (uint32_t)vs) : (int32_t)(rnd() % 1000) - 10;
            }
            check_stream(t, ids, n, 0);
            check_stream(t, ids, n, TOK_DECODE_SKIP_SPECIAL);
            check_stream(t, ids, n, TOK_DECODE_NO_SPACES_SPECIAL);
        }
        tok_free(t);
    }
}

/* What each push releases. */
static void test_stream_release(void) {
    tok_tokenizer *t = mk_tok(NULL, NULL, NULL, decoders[0], sp_added, sp_pieces);
    tok_stream *s = NULL;
    CHECK(tok_stream_init(t, 0, &s) == 0);
    const char *p;
    size_t n;
#define PUSH(tok, want)                                                                                          \
    do {                                                                                                         \
        CHECK(tok_stream_push(s, tok_token_to_id(t, tok, strlen(tok)), &p, &n) == 0);                           \
        CHECK_MSG(strcmp(p, want) == 0, "push %s: got \"%s\" want \"%s\"", tok, p, want);                         \
    } while (0)
    PUSH("\xE2\x96\x81Hey", "Hey"); /* Strip removes the first space */
    PUSH("\xE2\x96\x81" "friend", " friend");
    PUSH("<0xE5>", ""); /* a byte run is held until it ends: HF replaces a whole bad run */
    PUSH("<0x8F>", "");
    PUSH("<0xAB>", "");
    PUSH("\xE6\x97\xA5", "\xE5\x8F\xAB\xE6\x97\xA5");
    PUSH("<0xE5>", "");
    PUSH("<s>", "\xEF\xBF\xBD<s>");
    CHECK(tok_stream_flush(s, &p, &n) == 0 && n == 0);
    /* priming: the prompt's text is not emitted, its context is kept */
    int32_t prompt[2] = {tok_token_to_id(t, "<s>", 3), tok_token_to_id(t, "\xE2\x96\x81Hey", 6)};
    CHECK(tok_stream_prime(s, prompt, 2) == 0);
    PUSH("\xE2\x96\x81" "friend", " friend");
    tok_stream_reset(s);
    PUSH("\xE2\x96\x81" "friend", "friend");
    tok_stream_free(s);

    /* spaces_between_special_tokens=False (vLLM): an added token after an added token is raw */
    CHECK(tok_stream_init(t, TOK_DECODE_NO_SPACES_SPECIAL, &s) == 0);
    PUSH("<x\xE2\x96\x81y>", "<x y>");
    PUSH("<x\xE2\x96\x81y>", "<x\xE2\x96\x81y>");
    PUSH("a", "a");
    PUSH("<x\xE2\x96\x81y>", "<x y>");
    tok_stream_free(s);
    tok_free(t);

    /* byte-level: a character is released as soon as its last byte arrives */
    static const char *const bl[] = {"\xC3\xA6", "\xC4\xB9", "\xC2\xA5", "\xC4\xA0Hi", NULL};
    t = mk_tok(NULL, NULL, NULL, decoders[1], NULL, bl);
    CHECK(tok_stream_init(t, 0, &s) == 0);
    PUSH("\xC4\xA0Hi", " Hi");
    PUSH("\xC3\xA6", "");
    PUSH("\xC4\xB9", "");
    PUSH("\xC2\xA5", "\xE6\x97\xA5");
    PUSH("\xC3\xA6", "");
    PUSH("a", "\xEF\xBF\xBD" "a");
    tok_stream_free(s);
    tok_free(t);
#undef PUSH
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* O(1) per token: 4x the tokens must cost about 4x the time, not 16x. */
static void test_stream_linear(void) {
    tok_tokenizer *t = mk_tok(NULL, NULL, NULL, decoders[0], sp_added, sp_pieces);
    int32_t a = tok_token_to_id(t, "\xE2\x96\x81Hey", 6), b = tok_token_to_id(t, "<0xE5>", 6);
    double times[2];
    size_t counts[2] = {20000, 80000};
    for (int k = 0; k < 2; k++) {
        tok_stream *s = NULL;
        CHECK(tok_stream_init(t, 0, &s) == 0);
        double t0 = now();
        const char *p;
        size_t n;
        for (size_t i = 0; i < counts[k]; i++) CHECK(tok_stream_push(s, i % 3 ? a : b, &p, &n) == 0);
        times[k] = now() - t0;
        tok_stream_free(s);
    }
    CHECK_MSG(times[1] < 10 * times[0] + 0.05, "20k tokens %.4fs, 80k tokens %.4fs", times[0], times[1]);
    tok_free(t);
}

static void test_json(void) {
    tok_json *d = NULL;
    const char *src = " {\"a\": [1, -2.5e1, true, false, null, \"x\\u00e9\\ud83e\\udd99\\n\\u0000y\"], \"a\": {}, \"b\": []} ";
    CHECK(tok_json_parse(src, strlen(src), "t.json", &d) == 0);
    if (d) {
        const tok_jv *r = tok_json_root(d);
        const tok_jv *a = tok_jget(r, "a");
        CHECK(a && a->type == TOK_J_OBJ && a->len == 0); /* the last duplicate wins */
        const tok_jv *arr = &r->u.kids[0];
        CHECK(arr->type == TOK_J_ARR && arr->len == 6);
        long long v;
        CHECK(tok_jint(&arr->u.kids[0], 0, 10, &v) && v == 1);
        CHECK(tok_jint(&arr->u.kids[1], -100, 100, &v) && v == -25 && !tok_jint(&arr->u.kids[1], 0, 100, &v));
        CHECK(arr->u.kids[5].len == 10 && memcmp(arr->u.kids[5].u.str, "x\xC3\xA9\xF0\x9F\xA6\x99\n\0y", 10) == 0);
        tok_json_free(d);
    }
    static const struct {
        const char *src, *want;
    } bad[] = {
        {"", "unexpected end"},           {"[1,]", "unexpected character"}, {"{\"a\" 1}", "expected ':'"},
        {"[1] x", "trailing"},            {"\"\\x\"", "bad escape"},         {"\"\\udc00\"", "lone low surrogate"},
        {"\"a\xC3\"", "invalid UTF-8"},   {"\"\x01\"", "control character"}, {"01", "trailing"},
        {"[\n1,\n2 3]", "line 3 column 3"}, {"nul", "unexpected character"}, {"{\"a\":1,}", "expected a member name"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_MSG(tok_json_parse(bad[i].src, strlen(bad[i].src), "t.json", &d) == VC_EFORMAT, "case %zu parsed", i);
        CHECK_MSG(strstr(vc_errmsg(), bad[i].want) && strstr(vc_errmsg(), "t.json"), "case %zu: '%s' lacks '%s'", i,
                  vc_errmsg(), bad[i].want);
    }
    char deep[1000];
    memset(deep, '[', sizeof deep);
    CHECK(tok_json_parse(deep, sizeof deep, "t.json", &d) == VC_EFORMAT && strstr(vc_errmsg(), "nesting"));
}

typedef struct {
    const tok_tokenizer *t;
    const char *text;
    char want[512];
    int ok;
} thr_arg;

static void *thr_main(void *p) {
    thr_arg *a = p;
    a->ok = 1;
    for (int i = 0; i < 300; i++) {
        tok_ids ids = {0};
        if (tok_encode(a->t, a->text, strlen(a->text), 1, &ids)) a->ok = 0;
        char got[512];
        size_t o = 0;
        for (size_t k = 0; k < ids.n && o < sizeof got - 12; k++) o += (size_t)snprintf(got + o, sizeof got - o, "%d ", ids.ids[k]);
        got[o] = 0;
        if (strcmp(got, a->want) != 0) a->ok = 0;
        tok_ids_free(&ids);
    }
    return NULL;
}

static void test_threads(void) {
    static const char *const pieces[] = {"\xC4\xA0world", "Hello", NULL};
    tok_tokenizer *t = mk_tok("{\"type\":\"NFC\"}",
                              "{\"type\":\"Split\",\"pattern\":{\"Regex\":\"\\\\s?\\\\p{L}+|\\\\s+|\\\\p{N}\"},\"behavior\":"
                              "\"Isolated\",\"invert\":false}",
                              NULL, NULL, NULL, pieces);
    static const char *texts[2] = {"Hello world 12 e\xCC\x81", "world Hello\n\nx"};
    thr_arg args[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        args[i].t = t;
        args[i].text = texts[i % 2];
        tok_ids ids = {0};
        CHECK(tok_encode(t, args[i].text, strlen(args[i].text), 1, &ids) == 0);
        size_t o = 0;
        for (size_t k = 0; k < ids.n; k++) o += (size_t)snprintf(args[i].want + o, sizeof args[i].want - o, "%d ", ids.ids[k]);
        args[i].want[o] = 0;
        tok_ids_free(&ids);
    }
    for (int i = 0; i < 4; i++) CHECK(pthread_create(&th[i], NULL, thr_main, &args[i]) == 0);
    for (int i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
        CHECK(args[i].ok);
    }
    tok_free(t);
}

int main(void) {
    test_json();
    test_stream_release();
    test_stream_random();
    test_stream_linear();
    test_threads();
    TEST_END();
}
