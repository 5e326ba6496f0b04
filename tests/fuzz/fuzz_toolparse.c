/* fuzz_toolparse: vLLM's tool-call and reasoning parsers (src/toolparse) over arbitrary output.
 * The first byte picks the parser, the rest is the model's text. toolp_parse must not fail (except
 * for memory), and streaming the text must give exactly its result: fed at cut points drawn from
 * the input itself, and (for short inputs) byte by byte; events in order, and for valid UTF-8 text
 * no event that splits a character. qwen3_coder reads a small fixed tools schema (Q_TOOLS), so that
 * its typed conversions (int, float, bool, json.loads, ast.literal_eval) run too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/sbuf.h"
#include "toolparse/toolparse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const NAMES[] = {"hermes",  "llama3_json", "mistral",  "pythonic",   "deepseek_r1",
                                    "qwen3",   "openai",      "openai/r", "qwen3_coder"};

#define Q_TOOLS                                                                                                 \
    "[{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\": {\"type\": \"object\", \"properties\": " \
    "{\"s\": {\"type\": \"string\"}, \"i\": {\"type\": \"integer\"}, \"n\": {\"type\": \"number\"}, \"b\": "          \
    "{\"type\": \"boolean\"}, \"o\": {\"type\": \"object\"}, \"a\": {\"type\": \"array\"}, \"x\": {\"type\": "        \
    "\"custom\"}}}}}, {\"type\": \"function\", \"function\": {\"name\": \"g\", \"parameters\": {\"i\": {\"type\": "    \
    "\"int\"}}}}, {\"type\": \"function\", \"function\": {\"name\": \"h\", \"parameters\": {\"properties\": [\"i\"]}}}]"

/* The tools the parser reads: Q_TOOLS for qwen3_coder, none for the others. */
static const cJSON *tools_for(const toolp_parser *p) {
    static cJSON *tools;
    if (strcmp(toolp_parser_name(p), "qwen3_coder")) return NULL;
    if (!tools && !(tools = cJSON_Parse(Q_TOOLS))) abort();
    return tools;
}
#define N_NAMES (sizeof NAMES / sizeof *NAMES)

static int whole_utf8(const unsigned char *p, size_t n) {
    for (size_t i = 0; i < n;) {
        unsigned c = p[i];
        size_t l = c < 0x80 ? 1 : c >= 0xC2 && c <= 0xDF ? 2 : c >= 0xE0 && c <= 0xEF ? 3 : c >= 0xF0 && c <= 0xF4 ? 4 : 0;
        if (!l || i + l > n) return 0;
        for (size_t k = 1; k < l; k++)
            if ((p[i + k] & 0xC0) != 0x80) return 0;
        i += l;
    }
    return 1;
}

typedef struct {
    sbuf content, reasoning, *args;
    char **names;
    size_t *name_len;
    int n_calls, cap;
} got;

static void take(got *g, const toolp_event *ev, int n, int utf8) {
    for (int i = 0; i < n; i++) {
        const toolp_event *e = &ev[i];
        if (utf8 && e->kind != TOOLP_EV_CALL && !whole_utf8((const unsigned char *)e->text, e->len)) abort();
        if (e->kind == TOOLP_EV_CONTENT) sb_raw(&g->content, e->text, e->len);
        else if (e->kind == TOOLP_EV_REASONING) sb_raw(&g->reasoning, e->text, e->len);
        else if (e->kind == TOOLP_EV_CALL) {
            if (e->index != g->n_calls) abort(); /* calls begin in order */
            if (g->n_calls == g->cap) {
                g->cap = g->cap ? 2 * g->cap : 8;
                g->args = realloc(g->args, (size_t)g->cap * sizeof *g->args);
                g->names = realloc(g->names, (size_t)g->cap * sizeof *g->names);
                g->name_len = realloc(g->name_len, (size_t)g->cap * sizeof *g->name_len);
                if (!g->args || !g->names || !g->name_len) abort();
            }
            memset(&g->args[g->n_calls], 0, sizeof *g->args);
            g->names[g->n_calls] = malloc(e->len + 1);
            if (!g->names[g->n_calls]) abort();
            memcpy(g->names[g->n_calls], e->text, e->len);
            g->name_len[g->n_calls++] = e->len;
        } else if (e->kind == TOOLP_EV_ARGS) {
            if (e->index < 0 || e->index >= g->n_calls) abort(); /* arguments after their name */
            sb_raw(&g->args[e->index], e->text, e->len);
        } else {
            abort();
        }
    }
}

static int same(const char *a, size_t an, const char *b, size_t bn) { return an == bn && (!an || !memcmp(a, b, an)); }

/* Stream text in pieces of the sizes that `step` gives (0: sizes drawn from seed), compare to r. */
static void stream(const toolp_parser *p, const char *text, size_t n, const toolp_result *r, size_t step, uint64_t seed) {
    toolp_stream *s = toolp_stream_new_tools(p, tools_for(p));
    if (!s) return;
    got g;
    memset(&g, 0, sizeof g);
    int utf8 = whole_utf8((const unsigned char *)text, n);
    toolp_event *ev;
    int n_ev;
    for (size_t at = 0; at < n;) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        size_t k = step ? step : 1 + (size_t)(seed >> 33) % 17;
        if (k > n - at) k = n - at;
        if (toolp_stream_feed(s, text + at, k, &ev, &n_ev)) abort();
        take(&g, ev, n_ev, utf8);
        at += k;
    }
    if (toolp_stream_finish(s, &ev, &n_ev)) abort();
    take(&g, ev, n_ev, utf8);
    if (toolp_stream_feed(s, "x", 1, &ev, &n_ev) == 0) abort();
    if (!same(g.content.b, g.content.n, r->content, r->content_len)) abort();
    if (!same(g.reasoning.b, g.reasoning.n, r->reasoning, r->reasoning_len)) abort();
    if (g.n_calls != r->n_calls) abort();
    for (int i = 0; i < g.n_calls; i++) {
        if (!same(g.names[i], g.name_len[i], r->calls[i].name, r->calls[i].name_len)) abort();
        if (!same(g.args[i].b, g.args[i].n, r->calls[i].args, r->calls[i].args_len)) abort();
        free(g.names[i]);
        sb_free(&g.args[i]);
    }
    free(g.names);
    free(g.args);
    free(g.name_len);
    sb_free(&g.content);
    sb_free(&g.reasoning);
    toolp_stream_free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (!size) return 0;
    const char *name = NAMES[data[0] % N_NAMES];
    const toolp_parser *p = !strcmp(name, "openai/r") ? toolp_parser_by_name(TOOLP_KIND_REASONING, "openai")
                                                      : toolp_parser_by_name(TOOLP_KIND_TOOL, name);
    if (!p) p = toolp_parser_by_name(TOOLP_KIND_REASONING, name);
    if (!p) abort();
    const char *text = (const char *)data + 1;
    size_t n = size - 1;
    toolp_result r;
    if (toolp_parse_tools(p, text, n, tools_for(p), &r)) return 0; /* out of memory */
    /* the result's own shape */
    if (r.n_calls < 0 || (r.n_calls && !r.tools_called)) abort();
    if ((r.content && r.content[r.content_len]) || (r.reasoning && r.reasoning[r.reasoning_len])) abort();
    if (toolp_parser_kind(p) == TOOLP_KIND_REASONING && r.n_calls) abort();
    for (int i = 0; i < r.n_calls; i++)
        if (!r.calls[i].name || !r.calls[i].args || r.calls[i].args[r.calls[i].args_len]) abort();
    uint64_t seed = 1469598103934665603ull;
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 1099511628211ull;
    stream(p, text, n, &r, 0, seed);
    if (n <= 4096) {
        stream(p, text, n, &r, 1, 0);
        stream(p, text, n, &r, n ? n : 1, 0);
    }
    toolp_result_free(&r);
    return 0;
}
