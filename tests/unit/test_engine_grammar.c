/* Structured output in the engine: requests with grammars from the front ends (regex, choice, JSON
 * Schema), sampled at temperature 1 with several seeds and n = 2 on the tiny golden Llama (random
 * weights) with the chat fixture's byte-fallback tokenizer. Every output must be a sentence of its
 * grammar when it ends with EOS and a prefix of one when it ends by length; a choice grammar gives
 * exactly one of the choices; a grammar that the output already satisfies changes no greedy token.
 * An engine without a vocabulary refuses grammar requests; a grammar the vocabulary cannot spell
 * fails its request, not the engine. Also prints the mask time per step. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "backend/backend.h"
#include "backend/cpu/cpu_backend.h"
#include "base/err.h"
#include "engine/engine.h"
#include "grammar/compile.h"
#include "grammar/schema.h"
#include "test.h"
#include "tokenizer/tokenizer.h"

#define V 512
#define MAXT 96

/* tests/fixtures/make_chat_model.sh's tokenizer: <unk> <s> </s>, <0x00>..<0xFF> at 3.., a..z at
 * 259.., <|im_start|> 285 and <|im_end|> 286 (special); ids 287..511 have no token. */
static char *chat_json(void) {
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
#define PUT(...) len += (size_t)snprintf(s + len, cap - len, __VA_ARGS__)
    PUT("{\"version\":\"1.0\",\"added_tokens\":[");
    const char *added[] = {"<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"};
    const int aid[] = {0, 1, 2, 285, 286};
    for (int i = 0; i < 5; i++)
        PUT("%s{\"id\":%d,\"content\":\"%s\",\"single_word\":false,\"lstrip\":false,\"rstrip\":false,"
            "\"normalized\":false,\"special\":true}", i ? "," : "", aid[i], added[i]);
    PUT("],\"normalizer\":null,\"pre_tokenizer\":null,\"post_processor\":null,\"decoder\":{\"type\":\"Sequence\","
        "\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},\"model\":{\"type\":\"BPE\",\"dropout\":null,"
        "\"unk_token\":\"<unk>\",\"fuse_unk\":true,\"byte_fallback\":true,\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int i = 0; i < 256; i++) PUT(",\"<0x%02X>\":%d", i, i + 3);
    for (int i = 0; i < 26; i++) PUT(",\"%c\":%d", 'a' + i, 259 + i);
    PUT(",\"<|im_start|>\":285,\"<|im_end|>\":286},\"merges\":[]}}");
#undef PUT
    return s;
}

typedef struct {
    unsigned char *tok[V];
    size_t len[V];
    gram_vocab *vocab;
} vocab_set;

/* As the model stack builds it (stack.c). */
static int make_vocab(const tok_tokenizer *t, vocab_set *vs) {
    for (int i = 0; i < V; i++) {
        char *b;
        if (tok_token_bytes(t, i, &b, &vs->len[i])) return -1;
        vs->tok[i] = (unsigned char *)b;
    }
    return gram_vocab_new((const unsigned char *const *)vs->tok, vs->len, V, &vs->vocab);
}

typedef struct {
    int32_t tok[MAXT];
    int n;
    eng_finish finish;
    const char *error;
    char errbuf[256];
} result;

/* Runs requests "g0".. (n completions each, results[i * 2 + index]). */
static int run(eng_engine *e, int nreq, const int32_t *prompt, int np, eng_sampling_params *sp, result *res) {
    memset(res, 0, sizeof *res * (size_t)nreq * 2);
    for (int i = 0; i < nreq; i++) {
        char id[16];
        snprintf(id, sizeof id, "g%d", i);
        if (eng_add(e, id, prompt, np, &sp[i], 0)) {
            fprintf(stderr, "eng_add: %s\n", vc_errmsg());
            return -1;
        }
    }
    int steps = 0;
    while (eng_has_unfinished(e)) {
        const eng_output *o;
        int no;
        if (eng_step(e, &o, &no)) {
            fprintf(stderr, "eng_step: %s\n", vc_errmsg());
            return -1;
        }
        for (int k = 0; k < no; k++) {
            result *x = &res[atoi(o[k].request_id + 1) * 2 + o[k].index];
            if (o[k].has_token && x->n < MAXT) x->tok[x->n++] = o[k].token;
            if (o[k].finish) {
                x->finish = o[k].finish;
                if (o[k].error) {
                    snprintf(x->errbuf, sizeof x->errbuf, "%s", o[k].error);
                    x->error = x->errbuf;
                }
            }
        }
        if (++steps > 10000) return -1;
    }
    return steps;
}

/* Bytes of the output (token bytes concatenated); the decoded text must be the same where valid. */
static size_t out_bytes(const vocab_set *vs, const result *r, char *buf, size_t cap) {
    size_t n = 0;
    for (int i = 0; i < r->n; i++) {
        if (n + vs->len[r->tok[i]] >= cap) break;
        memcpy(buf + n, vs->tok[r->tok[i]], vs->len[r->tok[i]]);
        n += vs->len[r->tok[i]];
    }
    buf[n] = 0;
    return n;
}

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

/* Checks one finished output against g; returns 1 when it ended with EOS. */
static int check_output(const char *what, const tok_tokenizer *t, const vocab_set *vs, const gram_grammar *g,
                        const result *r, int max_tokens) {
    CHECK_MSG(r->finish == ENG_FINISH_STOP || r->finish == ENG_FINISH_LENGTH, "%s: finish %d (%s)", what, r->finish,
              r->error ? r->error : "");
    tok_text txt = {0};
    CHECK(tok_decode(t, r->tok, (size_t)r->n, TOK_DECODE_SKIP_SPECIAL, &txt) == 0);
    static char bytes[4096];
    size_t nb = out_bytes(vs, r, bytes, sizeof bytes);
    if (valid_utf8(bytes, nb)) CHECK_MSG(txt.len == nb && !memcmp(txt.s, bytes, nb), "%s: decode '%s' vs bytes '%s'", what, txt.s, bytes);
    gram_matcher *m = NULL;
    CHECK(gram_matcher_new(g, &m) == 0);
    int fed = m ? gram_matcher_feed(m, txt.len == nb ? txt.s : bytes, nb) : -1;
    CHECK_MSG(fed == 0, "%s: output '%s' is not a prefix of the grammar", what, bytes);
    int eos = r->finish == ENG_FINISH_STOP;
    if (eos) {
        CHECK_MSG(fed == 0 && gram_matcher_accepting(m), "%s: output '%s' ended with EOS but is not a sentence", what, bytes);
        CHECK(r->n > 0 && r->tok[r->n - 1] == 2);
    } else {
        CHECK_MSG(r->n == max_tokens, "%s: ended by length after %d of %d tokens", what, r->n, max_tokens);
    }
    gram_matcher_free(m);
    tok_text_free(&txt);
    return eos;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static eng_engine *mk(mdl_model *m, const vocab_set *vs) {
    eng_config c;
    eng_config_default(&c);
    c.max_num_seqs = 8;
    c.max_num_batched_tokens = 256;
    c.kv_cache_gib = 0.01;
    c.max_model_len = 256;
    c.quiet = 1;
    if (vs) {
        c.grammar_vocab = vs->vocab;
        c.grammar_tok = (const unsigned char *const *)vs->tok;
        c.grammar_tok_len = vs->len;
    }
    eng_engine *e = NULL;
    if (eng_create(m, &c, &e)) fprintf(stderr, "eng_create: %s\n", vc_errmsg());
    return e;
}

static gram_grammar *from_schema(const char *json) {
    cJSON *j = cJSON_Parse(json);
    gram_schema_opts o = {0};
    gram_grammar *g = NULL;
    if (!j || gram_from_json_schema(j, &o, &g)) fprintf(stderr, "schema: %s\n", vc_errmsg());
    cJSON_Delete(j);
    return g;
}

/* Stand-ins for "<think>" and "</think>": the letters 'b' and 'v' (one this model writes often); the grammar
 * wants digits. The output is free (letters, digits) until 'v', then digits only; a prompt whose last of
 * the two is 'v' constrains from the first token; without grammar_after_reasoning the grammar rules from
 * the start. */
static void test_reasoning_first(eng_engine *e, const int32_t *prompt7) {
    enum { START = 260, END = 280, DIG0 = '0' + 3 };
    gram_grammar *g = NULL;
    CHECK(gram_from_regex("[0-9]+", 6, NULL, &g) == 0);
    int32_t allowed[26 + 10 + 1];
    for (int i = 0; i < 26; i++) allowed[i] = 259 + i;
    for (int i = 0; i < 10; i++) allowed[26 + i] = DIG0 + i;
    allowed[36] = 2;
    int32_t open_prompt[9], ended_prompt[9];
    memcpy(open_prompt, prompt7, sizeof(int32_t) * 7);
    memcpy(ended_prompt, prompt7, sizeof(int32_t) * 7);
    open_prompt[7] = END, open_prompt[8] = START;   /* the reasoning reopened: free */
    ended_prompt[7] = START, ended_prompt[8] = END; /* ended in the prompt: constrained at once */
    const int32_t *prompts[3] = {open_prompt, ended_prompt, open_prompt};
    int reached = 0, longest_free = 0;
    for (int mode = 0; mode < 3; mode++) { /* 0: open prompt; 1: ended prompt; 2: open, no reasoning-first */
        eng_sampling_params sp[4];
        for (int s = 0; s < 4; s++) {
            eng_params_default(&sp[s]);
            sp[s].temperature = 1.0f, sp[s].has_seed = 1, sp[s].seed = 100 + s, sp[s].max_tokens = 24;
            sp[s].allowed_token_ids = allowed, sp[s].n_allowed = 37;
            sp[s].grammar = g;
            sp[s].grammar_after_reasoning = mode != 2, sp[s].reasoning_end_id = END, sp[s].reasoning_start_id = START;
        }
        static result res[8];
        CHECK(run(e, 4, prompts[mode], 9, sp, res) > 0);
        for (int r = 0; r < 8; r += 2) {
            int free_until = mode == 0 ? res[r].n : 0, letters = 0;
            if (mode == 0)
                for (int i = 0; i < res[r].n; i++)
                    if (res[r].tok[i] == END) {
                        free_until = i + 1;
                        reached++;
                        break;
                    }
            for (int i = 0; i < free_until; i++) letters += res[r].tok[i] >= 259 && res[r].tok[i] < 285;
            for (int i = free_until; i < res[r].n; i++)
                CHECK_MSG((res[r].tok[i] >= DIG0 && res[r].tok[i] < DIG0 + 10) || res[r].tok[i] == 2,
                          "mode %d seed %d: token %d at %d is not a digit after the reasoning", mode, r / 2,
                          (int)res[r].tok[i], i);
            if (mode == 0 && letters > longest_free) longest_free = letters;
            CHECK(res[r].finish == ENG_FINISH_STOP || res[r].finish == ENG_FINISH_LENGTH);
        }
    }
    CHECK_MSG(reached >= 2, "only %d of 4 outputs ended their reasoning", reached);
    CHECK_MSG(longest_free >= 1, "the reasoning was never free: no letter (which the grammar forbids) in it");
    gram_free(g);
    CHECK(eng_check_kv(e, 0) == 0);
}

int main(void) {
    be_backend *be = NULL;
    mdl_model *m = NULL;
    tok_tokenizer *t = NULL;
    vocab_set vs = {0};
    char *tj = chat_json();
    CHECK_MSG(be_cpu_create(&be, 0, NULL) == 0, "%s", vc_errmsg());
    CHECK_MSG(mdl_load("tests/golden/llama-f32", "float32", be, &m) == 0, "%s", vc_errmsg());
    CHECK_MSG(tok_load_mem(tj, strlen(tj), "chat", NULL, 0, &t) == 0, "%s", vc_errmsg());
    CHECK_MSG(t && make_vocab(t, &vs) == 0, "%s", vc_errmsg());
    if (!m || !t || !vs.vocab) TEST_END();
    CHECK(m->cfg.vocab_size == V);
    eng_engine *e = mk(m, &vs);
    if (!e) TEST_END();
    const int32_t prompt[] = {1, 259, 260, 261, 262, 32, 40};

    /* 1. grammars from the three front ends, temperature 1, seeds 0..5, n = 2 */
    const char *re = "[a-e]{2,6}(x|yz)?";
    const char *choices[] = {"yes", "no", "maybe", "it depends"};
    size_t clen[4];
    for (int i = 0; i < 4; i++) clen[i] = strlen(choices[i]);
    gram_grammar *g[3] = {NULL, NULL, NULL};
    CHECK_MSG(gram_from_regex(re, strlen(re), NULL, &g[0]) == 0, "%s", vc_errmsg());
    CHECK_MSG(gram_from_choice(choices, clen, 4, &g[1]) == 0, "%s", vc_errmsg());
    g[2] = from_schema("{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"integer\",\"minimum\":0,\"maximum\":999},"
                       "\"tag\":{\"enum\":[\"x\",\"yz\"]},\"ok\":{\"type\":\"boolean\"}},\"required\":[\"id\",\"tag\",\"ok\"]}");
    CHECK(g[0] && g[1] && g[2]);
    const int max_tokens[3] = {10, 12, 40};
    int stops[3] = {0, 0, 0}, total[3] = {0, 0, 0};
    double t0 = now();
    long tokens = 0;
    for (int k = 0; k < 3 && g[k]; k++) {
        eng_sampling_params sp[6];
        for (int s = 0; s < 6; s++) {
            eng_params_default(&sp[s]);
            sp[s].n = 2;
            sp[s].temperature = 1.0f;
            sp[s].has_seed = 1;
            sp[s].seed = s;
            sp[s].max_tokens = max_tokens[k];
            sp[s].grammar = g[k]; /* borrowed: eng_add copies, taking references */
        }
        static result res[12];
        CHECK(run(e, 6, prompt, 7, sp, res) > 0);
        for (int r = 0; r < 12; r++) {
            char what[64];
            snprintf(what, sizeof what, "grammar %d, seed %d, completion %d", k, r / 2, r % 2);
            stops[k] += check_output(what, t, &vs, g[k], &res[r], max_tokens[k]);
            total[k]++;
            tokens += res[r].n;
            if (k == 1 && res[r].finish == ENG_FINISH_STOP) { /* exactly one of the choices */
                char b[64];
                size_t nb = out_bytes(&vs, &res[r], b, sizeof b);
                int one = 0;
                for (int c = 0; c < 4; c++) one += nb == clen[c] && !memcmp(b, choices[c], nb);
                CHECK_MSG(one == 1, "choice output '%s'", b);
            }
        }
        CHECK(eng_check_kv(e, 0) == 0);
    }
    double dt = now() - t0;
    printf("  regex %d/%d, choice %d/%d, schema %d/%d ended with EOS; %ld tokens in %.3f s\n", stops[0], total[0],
           stops[1], total[1], stops[2], total[2], tokens, dt);
    CHECK(stops[1] == total[1]); /* a choice of <= 10 bytes always ends within 12 tokens */
    CHECK(stops[0] > 0 && stops[2] + total[2] > 0);

    /* 2. the grammar changes nothing where the greedy output already satisfies it: take the
     * unconstrained greedy output and make the grammar its exact text (a choice of one) */
    {
        eng_sampling_params sp;
        eng_params_default(&sp);
        sp.temperature = 0;
        sp.max_tokens = 8;
        sp.ignore_eos = 1;
        sp.allowed_token_ids = (int32_t[26]){0};
        sp.n_allowed = 26;
        for (int i = 0; i < 26; i++) sp.allowed_token_ids[i] = 259 + i; /* letters only: text with no ambiguity */
        static result plain[2], con[2];
        CHECK(run(e, 1, prompt, 7, &sp, plain) > 0);
        char b[64];
        size_t nb = out_bytes(&vs, &plain[0], b, sizeof b);
        const char *one[1] = {b};
        gram_grammar *gg = NULL;
        CHECK(gram_from_choice(one, &nb, 1, &gg) == 0);
        sp.grammar = gg;
        CHECK(run(e, 1, prompt, 7, &sp, con) > 0);
        CHECK_MSG(con[0].n == plain[0].n && !memcmp(con[0].tok, plain[0].tok, sizeof(int32_t) * (size_t)con[0].n),
                  "greedy with the grammar '%s' differs", b);
        /* regex that the greedy text matches, with more freedom: still the same tokens */
        gram_free(gg);
        gg = NULL;
        CHECK(gram_from_regex("[a-z]+", 6, NULL, &gg) == 0);
        sp.grammar = gg;
        CHECK(run(e, 1, prompt, 7, &sp, con) > 0);
        CHECK(con[0].n == plain[0].n && !memcmp(con[0].tok, plain[0].tok, sizeof(int32_t) * (size_t)con[0].n));
        /* 3. a grammar the allowed tokens cannot continue fails the request with a message, and the
         * engine goes on (letters only, but the grammar wants a digit) */
        gram_free(gg);
        gg = NULL;
        CHECK(gram_from_regex("[0-9]+", 6, NULL, &gg) == 0);
        sp.grammar = gg;
        CHECK(run(e, 1, prompt, 7, &sp, con) > 0);
        CHECK_MSG(con[0].finish == ENG_FINISH_ABORT && con[0].n == 0 && con[0].error &&
                      strstr(con[0].error, "structured output"),
                  "finish %d error %s", con[0].finish, con[0].error ? con[0].error : "(none)");
        gram_free(gg);
        CHECK(eng_check_kv(e, 0) == 0);
    }

    /* 4. mask time per step: the JSON Schema grammar after a few bytes, over this vocabulary */
    {
        gram_matcher *gm = NULL;
        uint32_t mask[(V + 31) / 32];
        CHECK(gram_matcher_new(g[2], &gm) == 0);
        const char *pre[] = {"", "{\"id\":", "{\"id\":12,\"tag\":\"", "{\"id\":12,\"tag\":\"yz\",\"ok\":"};
        for (int p = 0; p < 4 && gm; p++) {
            gram_matcher_reset(gm);
            CHECK(gram_matcher_feed(gm, pre[p], strlen(pre[p])) == 0);
            int reps = 2000, cnt = 0;
            double a = now();
            for (int r = 0; r < reps; r++) cnt = gram_matcher_mask(gm, vs.vocab, mask);
            printf("  mask after %-32s %3d tokens allowed, %.2f us per mask (%d-token vocabulary)\n", pre[p], cnt,
                   (now() - a) / reps * 1e6, V);
        }
        gram_matcher_free(gm);
    }

    /* 5. an engine without a vocabulary refuses grammar requests */
    eng_engine *e2 = mk(m, NULL);
    if (e2) {
        eng_sampling_params sp;
        eng_params_default(&sp);
        sp.grammar = g[0];
        CHECK(eng_add(e2, "x", prompt, 7, &sp, 0) == VC_EINVAL &&
              strstr(vc_errmsg(), "structured output needs the model's tokenizer"));
        sp.grammar = NULL;
        CHECK(eng_add(e2, "y", prompt, 7, &sp, 0) == 0);
        eng_free(e2);
    }

    /* 6. reasoning first (grammar_after_reasoning, as the server sets it with a reasoning parser) */
    test_reasoning_first(e, prompt);

    /* 7. the references: params copies retain, the engine's sequences released theirs */
    for (int k = 0; k < 3; k++) {
        if (g[k]) CHECK(atomic_load(&g[k]->refs) == 1);
        gram_free(g[k]);
    }
    eng_free(e);
    gram_vocab_free(vs.vocab);
    for (int i = 0; i < V; i++) free(vs.tok[i]);
    tok_free(t);
    mdl_free(m);
    be_free(be);
    free(tj);
    TEST_END();
}
