/* Fuzz target: an OpenAI request body as the server reads it (issue #5: the
 * request parser). The first byte picks the endpoint (completions, chat
 * completions, /tokenize, /detokenize: bits 0-1), whether the server has output
 * parsers (bit 2: hermes and qwen3, as --enable-auto-tool-choice does) and the
 * chat content format (bit 3: openai, else string); the rest is the body. A small
 * byte-fallback tokenizer and a ChatML template, built here, stand in for the
 * model's. Responses are never built: this is the parser, validation,
 * template rendering and tokenization. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/request.h"
#include "toolparse/toolparse.h"

static srv_ctx ctx;

static void setup(void) {
    static char json[16384];
    size_t n = 0;
    n += (size_t)snprintf(json + n, sizeof json - n,
                          "{\"version\":\"1.0\",\"added_tokens\":["
                          "{\"id\":0,\"content\":\"<unk>\",\"special\":true},{\"id\":1,\"content\":\"<s>\",\"special\":true},"
                          "{\"id\":2,\"content\":\"</s>\",\"special\":true},{\"id\":285,\"content\":\"<|im_start|>\",\"special\":true},"
                          "{\"id\":286,\"content\":\"<|im_end|>\",\"special\":true}],\"normalizer\":null,\"pre_tokenizer\":null,"
                          "\"decoder\":{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"}]},"
                          "\"model\":{\"type\":\"BPE\",\"unk_token\":\"<unk>\",\"byte_fallback\":true,\"fuse_unk\":true,"
                          "\"vocab\":{\"<unk>\":0,\"<s>\":1,\"</s>\":2");
    for (int i = 0; i < 256; i++) n += (size_t)snprintf(json + n, sizeof json - n, ",\"<0x%02X>\":%d", i, i + 3);
    for (int i = 0; i < 26; i++) n += (size_t)snprintf(json + n, sizeof json - n, ",\"%c\":%d", 'a' + i, 259 + i);
    n += (size_t)snprintf(json + n, sizeof json - n, ",\"<|im_start|>\":285,\"<|im_end|>\":286},\"merges\":[]}}");
    static const char cfg[] = "{\"bos_token\":\"<s>\",\"eos_token\":\"</s>\",\"add_bos_token\":true}";
    tok_tokenizer *tok = NULL;
    if (tok_load_mem(json, n, "fuzz tokenizer", cfg, sizeof cfg - 1, &tok)) {
        fprintf(stderr, "fuzz_request: tokenizer setup failed\n");
        abort();
    }
    static const char tsrc[] = "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
                               "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}";
    tmpl_template *t = NULL;
    if (tmpl_compile(tsrc, sizeof tsrc - 1, &t, NULL)) abort();
    static const char *names[] = {"test-model", "alias"};
    ctx.tok = tok;
    ctx.tmpl = t;
    ctx.bos_token = "<s>";
    ctx.eos_token = "</s>";
    ctx.names = names;
    ctx.n_names = 2;
    ctx.max_model_len = 512;
    ctx.vocab_size = 512;
    ctx.max_logprobs = 20;
    ctx.has_max_new_tokens = 1;
    ctx.max_new_tokens = 100;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!ctx.tok) setup();
    if (size < 1) return 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    srv_error err;
    int mode = data[0] & 3;
    ctx.tool_parser = data[0] & 4 ? toolp_parser_by_name(TOOLP_KIND_TOOL, "hermes") : NULL;
    ctx.reasoning_parser = data[0] & 4 ? toolp_parser_by_name(TOOLP_KIND_REASONING, "qwen3") : NULL;
    ctx.content_format = data[0] & 8 ? SRV_CONTENT_OPENAI : SRV_CONTENT_STRING;
    if (mode <= 1) {
        srv_request r;
        if (srv_parse_request(&ctx, body, len, mode, &r, &err) == 0) {
            if (r.n_prompts < 1 || r.sp.max_tokens < 1 || r.sp.n < 1) abort(); /* an accepted request is runnable */
            for (int i = 0; i < r.n_prompts; i++)
                if (r.len[i] + r.max_tokens[i] > ctx.max_model_len) abort();
            srv_request_free(&r);
        } else if (err.status < 400 || err.status > 599 || !err.message[0]) {
            abort(); /* every refusal is an HTTP error with a message */
        }
    } else {
        char *out = NULL;
        size_t n = 0;
        int rc = mode == 2 ? srv_tokenize(&ctx, body, len, &out, &n, &err)
                           : srv_detokenize(&ctx, body, len, &out, &n, &err);
        if (rc == 0 && (!out || strlen(out) != n)) abort();
        free(out);
    }
    return 0;
}
