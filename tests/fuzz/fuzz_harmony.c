/* fuzz_harmony: gpt-oss's harmony prompt (src/template/harmony.c) from an arbitrary chat request body. The
 * first byte picks the path: even, the renderer itself (hm_request_from_body, hm_render, hm_tokenize); odd,
 * the server's (srv_parse_request / srv_tokenize with harmony on, tools checked as the server checks them).
 * A rendered prompt must be pieces that tile its text, formatting tokens only where harmony puts them,
 * ending in "<|start|>assistant", and tokenize; a refusal must carry a message (a 4xx/5xx in the server). A
 * byte-fallback tokenizer with harmony's formatting tokens, built here, stands in for o200k_harmony. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/json.h"
#include "server/request.h"
#include "template/harmony.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const SPECIAL[] = {"<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|call|>"};
static srv_ctx ctx;

static void setup(void) {
    sbuf j = {0};
    sb_str(&j, "{\"version\":\"1.0\",\"added_tokens\":[{\"id\":0,\"content\":\"<unk>\",\"special\":true}");
    for (int i = 0; i < 5; i++) sb_printf(&j, ",{\"id\":%d,\"content\":\"%s\",\"special\":true}", 300 + i, SPECIAL[i]);
    sb_str(&j, "],\"normalizer\":null,\"pre_tokenizer\":null,\"decoder\":{\"type\":\"Sequence\",\"decoders\":"
               "[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\","
               "\"byte_fallback\":true,\"fuse_unk\":true,\"vocab\":{\"<unk>\":0");
    for (int i = 0; i < 256; i++) sb_printf(&j, ",\"<0x%02X>\":%d", i, i + 3);
    for (int i = 0; i < 5; i++) sb_printf(&j, ",\"%s\":%d", SPECIAL[i], 300 + i);
    sb_str(&j, "},\"merges\":[]}}");
    tok_tokenizer *t = NULL;
    if (!j.b || tok_load_mem(j.b, j.n, "fuzz harmony tokenizer", NULL, 0, &t)) {
        fprintf(stderr, "fuzz_harmony: tokenizer setup failed\n");
        abort();
    }
    sb_free(&j);
    static const char *names[] = {"gpt-oss"};
    ctx.tok = t;
    ctx.harmony = 1;
    ctx.names = names;
    ctx.n_names = 1;
    ctx.max_model_len = 1 << 20;
    ctx.vocab_size = 320;
    ctx.max_logprobs = 5;
    setenv("VLLM_SYSTEM_START_DATE", "2025-06-28", 1);
}

static int is_special(const char *s, size_t n) {
    for (int i = 0; i < 5; i++)
        if (strlen(SPECIAL[i]) == n && !memcmp(SPECIAL[i], s, n)) return 1;
    return 0;
}

static void check_prompt(const hm_prompt *p) {
    size_t at = 0;
    for (size_t i = 0; i < p->n; i++) {
        if (p->p[i].off != at || !p->p[i].len) abort(); /* pieces tile the text, none empty */
        if (p->p[i].special && !is_special(p->text.b + at, p->p[i].len)) abort();
        at += p->p[i].len;
    }
    if (at != p->text.n || p->n < 2 || !p->p[p->n - 2].special || p->text.b[p->text.n] != 0) abort();
    static const char tail[] = "<|start|>assistant";
    if (p->text.n < sizeof tail - 1 || memcmp(p->text.b + p->text.n - (sizeof tail - 1), tail, sizeof tail - 1)) abort();
    tok_ids ids = {0};
    int rc = hm_tokenize(p, ctx.tok, &ids);
    if (rc && rc != VC_ENOMEM) abort();
    tok_ids_free(&ids);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ctx.tok) setup();
    if (size < 1) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    if (data[0] & 1) {
        srv_error err;
        srv_request r;
        if (data[0] & 2) {
            char *out = NULL;
            size_t n = 0;
            if (srv_tokenize(&ctx, body, len, &out, &n, &err) == 0) free(out);
            else if (err.status < 400 || !err.message[0]) abort();
        } else if (srv_parse_request(&ctx, body, len, 1, &r, &err) == 0) {
            if (r.n_prompts != 1 || r.len[0] < 1 || r.ids[0][0] != 300) abort();
            srv_request_free(&r);
        } else if (err.status < 400 || err.status > 599 || !err.message[0]) {
            abort();
        }
        return 0;
    }
    cJSON *o = js_parse(body, len, NULL);
    if (!cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return 0;
    }
    hm_request r;
    hm_prompt p = {0};
    int rc = hm_request_from_body(o, "2025-06-28", &r);
    if (!rc) rc = hm_render(&r, &p);
    if (!rc) check_prompt(&p);
    else if (!vc_errmsg()[0]) abort();
    hm_prompt_free(&p);
    cJSON_Delete(o);
    return 0;
}
