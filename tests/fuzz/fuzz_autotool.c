/* fuzz_autotool: a chat completion's text through the output-parser chain (src/server/autotool.c:
 * the reasoning parser, then the tool parser over its content) whole and streamed. The first byte
 * picks the parsers and options, the rest is the model's text. Every message and every delta must
 * be valid JSON; the deltas joined (content, reasoning, each call's name and arguments) must equal
 * the message; a call's first piece must carry its id, type and name. qwen3_coder gets a small fixed
 * tools schema (the request's tools, which it reads for the parameter types). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "base/sbuf.h"
#include "server/autotool.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const TOOLS[] = {NULL, "hermes", "llama3_json", "mistral", "pythonic", "openai", "qwen3_coder"};
#define N_TOOLS (sizeof TOOLS / sizeof *TOOLS)
static const char Q_TOOLS[] =
    "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": "
    "{\"s\": {\"type\": \"string\"}, \"i\": {\"type\": \"integer\"}, \"n\": {\"type\": \"number\"}, \"b\": "
    "{\"type\": \"boolean\"}, \"o\": {\"type\": \"object\"}, \"a\": {\"type\": \"array\"}}}}}]";
static const char *const REASONING[] = {NULL, "deepseek_r1", "qwen3", "openai"};

/* {prefix + body} parsed, or abort: what the server sends must be JSON. */
static cJSON *must_parse(const char *prefix, const char *body, size_t n) {
    sbuf s = {0};
    sb_str(&s, "{");
    sb_str(&s, prefix);
    sb_raw(&s, body, n);
    sb_str(&s, "}");
    if (s.oom) abort();
    cJSON *j = js_parse(s.b, s.n, NULL);
    if (!j) abort();
    sb_free(&s);
    return j;
}

static const char *str_or_empty(const cJSON *o, const char *k) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if (v && !cJSON_IsNull(v) && !cJSON_IsString(v)) abort();
    return cJSON_IsString(v) ? v->valuestring : "";
}

typedef struct {
    sbuf content, reasoning;
    sbuf names[64], args[64];
    int n_calls;
} joined;

static void take_delta(joined *g, const cJSON *d) {
    sb_str(&g->content, str_or_empty(d, "content"));
    const char *r = str_or_empty(d, "reasoning");
    if (strcmp(r, str_or_empty(d, "reasoning_content"))) abort();
    sb_str(&g->reasoning, r);
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(d, "tool_calls"), *c;
    cJSON_ArrayForEach(c, calls) {
        int idx = cJSON_GetObjectItemCaseSensitive(c, "index")->valueint;
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        if (idx == g->n_calls) { /* a first piece: id, type, name */
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "id")) || idx >= 64) abort();
            if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(fn, "name"))) abort();
            sb_str(&g->names[g->n_calls++], cJSON_GetObjectItemCaseSensitive(fn, "name")->valuestring);
        } else if (idx < 0 || idx > g->n_calls || cJSON_GetObjectItemCaseSensitive(c, "id")) {
            abort();
        }
        sb_str(&g->args[idx], str_or_empty(fn, "arguments"));
    }
}

static void check_equal(const joined *g, const cJSON *msg) {
    if (strcmp(g->content.b ? g->content.b : "", str_or_empty(msg, "content"))) abort();
    if (strcmp(g->reasoning.b ? g->reasoning.b : "", str_or_empty(msg, "reasoning"))) abort();
    const cJSON *calls = cJSON_GetObjectItemCaseSensitive(msg, "tool_calls"), *c;
    if (cJSON_GetArraySize(calls) != g->n_calls) abort();
    int k = 0;
    cJSON_ArrayForEach(c, calls) {
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(c, "function");
        if (strcmp(g->names[k].b ? g->names[k].b : "", str_or_empty(fn, "name"))) abort();
        if (strcmp(g->args[k].b ? g->args[k].b : "", str_or_empty(fn, "arguments"))) abort();
        k++;
    }
}

/* The bytes with every invalid UTF-8 sequence made '?': the server's text comes from the detokenizer,
 * which never gives invalid UTF-8 (it writes U+FFFD), and JSON escaping of invalid bytes depends on
 * where a piece is cut. */
static char *valid_utf8(const uint8_t *p, size_t n) {
    char *o = malloc(n + 1);
    if (!o) abort();
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        int ok = l && i + l <= n;
        for (size_t k = 1; ok && k < l; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && l == 3) ok = !(c == 0xE0 && p[i + 1] < 0xA0) && !(c == 0xED && p[i + 1] >= 0xA0);
        if (ok && l == 4) ok = !(c == 0xF0 && p[i + 1] < 0x90) && !(c == 0xF4 && p[i + 1] >= 0x90);
        if (!ok) l = 1, o[i] = '?';
        else memcpy(o + i, p + i, l);
        i += l;
    }
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    unsigned b = data[0];
    static cJSON *qtools;
    if (!qtools && !(qtools = cJSON_Parse(Q_TOOLS))) abort();
    at_opts op = {.tool = toolp_parser_by_name(TOOLP_KIND_TOOL, TOOLS[b % N_TOOLS]),
                  .reasoning = toolp_parser_by_name(TOOLP_KIND_REASONING, REASONING[(b / N_TOOLS) % 4]),
                  .include_reasoning = !(b & 0x40), .first_call_only = !!(b & 0x80)};
    if (!op.tool && !op.reasoning) op.tool = toolp_parser_by_name(TOOLP_KIND_TOOL, "hermes"); /* the server's rule */
    if (op.tool && !strcmp(toolp_parser_name(op.tool), "qwen3_coder")) op.tools = qtools;
    char *owned = valid_utf8(data + 1, size - 1);
    const char *text = owned;
    size_t n = size - 1;
    sbuf m = {0};
    int called = at_message(&m, &op, NULL, text, n);
    if (called < 0) abort();
    cJSON *msg = must_parse("", m.b, m.n);
    sb_free(&m);
    at_stream *s = at_stream_new(&op);
    if (!s) abort();
    joined g = {0};
    size_t step = 1 + (b * 7 + n) % 13; /* cut points vary with the input */
    for (size_t i = 0; i <= n; i += step) {
        size_t len = i + step <= n ? step : n - i;
        sbuf f = {0};
        int any = at_stream_feed(s, text + i, len, i + step > n, &f);
        if (any < 0 || (any > 0) != (f.n > 0)) abort();
        if (f.n) {
            if (f.b[0] != ',') abort();
            cJSON *d = must_parse("", f.b + 1, f.n - 1);
            take_delta(&g, d);
            cJSON_Delete(d);
        }
        sb_free(&f);
    }
    if (at_stream_called(s) != (g.n_calls > 0)) abort();
    check_equal(&g, msg);
    at_stream_free(s);
    cJSON_Delete(msg);
    sb_free(&g.content);
    sb_free(&g.reasoning);
    for (int k = 0; k < 64; k++) {
        sb_free(&g.names[k]);
        sb_free(&g.args[k]);
    }
    free(owned);
    return 0;
}
