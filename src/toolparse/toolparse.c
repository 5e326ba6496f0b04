/* toolparse: the parser table, results, and the stream every parser drives (see internal.h). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/grow.h"
#include "toolparse/internal.h"

/* vLLM's names; llama4_json is its second name for the same parser (Llama3JsonToolParser); qwen3_xml
 * is vLLM's second parser of the qwen3_coder format, here the same one (toolp_qwen3coder.c says why). */
static const toolp_parser PARSERS[] = {
    {"hermes", TOOLP_KIND_TOOL, toolp_hermes_parse, toolp_hermes_progress, 0},
    {"llama3_json", TOOLP_KIND_TOOL, toolp_llama_parse, toolp_llama_progress, 0},
    {"llama4_json", TOOLP_KIND_TOOL, toolp_llama_parse, toolp_llama_progress, 0},
    {"mistral", TOOLP_KIND_TOOL, toolp_mistral_parse, toolp_mistral_progress, 0},
    {"pythonic", TOOLP_KIND_TOOL, toolp_pythonic_parse, toolp_pythonic_progress, 0},
    {"openai", TOOLP_KIND_TOOL, toolp_harmony_tool_parse, toolp_harmony_tool_progress, 1},
    {"qwen3_coder", TOOLP_KIND_TOOL, toolp_qwen3coder_parse, toolp_qwen3coder_progress, 0},
    {"qwen3_xml", TOOLP_KIND_TOOL, toolp_qwen3coder_parse, toolp_qwen3coder_progress, 0},
    {"deepseek_r1", TOOLP_KIND_REASONING, toolp_r1_parse, toolp_r1_progress, 0},
    {"qwen3", TOOLP_KIND_REASONING, toolp_qwen3_parse, toolp_qwen3_progress, 0},
    {"openai", TOOLP_KIND_REASONING, toolp_harmony_reasoning_parse, toolp_harmony_reasoning_progress, 0},
};
#define N_PARSERS (sizeof PARSERS / sizeof *PARSERS)

const toolp_parser *toolp_parser_by_name(int kind, const char *name) {
    for (size_t i = 0; name && i < N_PARSERS; i++)
        if (PARSERS[i].kind == kind && !strcmp(PARSERS[i].name, name)) return &PARSERS[i];
    return NULL;
}

const char *toolp_parser_names(int kind) {
    switch (kind) {
    case TOOLP_KIND_TOOL: return "hermes, llama3_json, llama4_json, mistral, pythonic, openai, qwen3_coder, qwen3_xml";
    case TOOLP_KIND_REASONING: return "deepseek_r1, qwen3, openai";
    default: return "";
    }
}

const char *toolp_parser_name(const toolp_parser *p) { return p->name; }
int toolp_parser_kind(const toolp_parser *p) { return p->kind; }
int toolp_parser_splits_reasoning(const toolp_parser *p) { return p->splits_reasoning; }

/* ---- results ---- */

char *toolp_dup(const char *p, size_t n) {
    char *d = malloc(n + 1);
    if (!d) return NULL;
    if (n) memcpy(d, p, n);
    d[n] = 0;
    return d;
}

int toolp_set_content(toolp_result *r, const char *p, size_t n) {
    free(r->content);
    r->content_len = 0;
    if (!(r->content = toolp_dup(p, n))) return vc_errf(VC_ENOMEM, "out of memory");
    r->content_len = n;
    return 0;
}

int toolp_set_reasoning(toolp_result *r, const char *p, size_t n) {
    free(r->reasoning);
    r->reasoning_len = 0;
    if (!(r->reasoning = toolp_dup(p, n))) return vc_errf(VC_ENOMEM, "out of memory");
    r->reasoning_len = n;
    return 0;
}

int toolp_add_call(toolp_result *r, const char *name, size_t name_len, const char *args, size_t args_len) {
    size_t cap = (size_t)r->n_calls; /* grown one at a time: calls are few */
    toolp_call *c = realloc(r->calls, (cap + 1) * sizeof *c);
    if (!c) return vc_errf(VC_ENOMEM, "out of memory");
    r->calls = c;
    c += r->n_calls;
    c->name = toolp_dup(name, name_len);
    c->args = toolp_dup(args, args_len);
    if (!c->name || !c->args) {
        free(c->name);
        free(c->args);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    c->name_len = name_len;
    c->args_len = args_len;
    r->n_calls++;
    return 0;
}

void toolp_result_free(toolp_result *r) {
    if (!r) return;
    for (int i = 0; i < r->n_calls; i++) {
        free(r->calls[i].name);
        free(r->calls[i].args);
    }
    free(r->calls);
    free(r->content);
    free(r->reasoning);
    memset(r, 0, sizeof *r);
}

int toolp_all_content(toolp_result *r, const char *t, size_t n) {
    toolp_result_free(r);
    return toolp_set_content(r, t, n);
}

int toolp_parse(const toolp_parser *p, const char *text, size_t len, toolp_result *out) {
    return toolp_parse_tools(p, text, len, NULL, out);
}

int toolp_parse_tools(const toolp_parser *p, const char *text, size_t len, const cJSON *tools, toolp_result *out) {
    memset(out, 0, sizeof *out);
    int rc = p->parse(text ? text : "", text ? len : 0, tools, out);
    if (rc) toolp_result_free(out);
    return rc;
}

/* ---- text helpers ---- */

size_t toolp_find(const char *t, size_t n, size_t from, const char *m) {
    size_t k = strlen(m);
    if (from > n || n - from < k) return (size_t)-1;
    const char *hit = memmem(t + from, n - from, m, k);
    return hit ? (size_t)(hit - t) : (size_t)-1;
}

size_t toolp_partial(const char *t, size_t n, size_t from, const char *m) {
    size_t k = strlen(m);
    for (size_t l = k - 1; l > 0; l--)
        if (l <= n - from && !memcmp(t + n - l, m, l)) return l;
    return 0;
}

size_t toolp_utf8_end(const char *t, size_t from, size_t end) {
    const unsigned char *u = (const unsigned char *)t;
    /* look back over at most 3 continuation bytes for the lead byte of the last character */
    for (size_t k = 1; k <= 4 && k <= end - from; k++) {
        unsigned c = u[end - k];
        if ((c & 0xC0) == 0x80) continue;           /* continuation: keep looking */
        size_t need = c >= 0xF0 && c <= 0xF4 ? 4 : c >= 0xE0 ? (c <= 0xEF ? 3 : 1) : c >= 0xC2 ? 2 : 1;
        return need > k ? end - k : end;            /* incomplete: hold it back */
    }
    return end;
}

int toolp_py_space(const char *t, size_t n, size_t i, size_t *len) {
    const unsigned char *u = (const unsigned char *)t + i;
    size_t left = n - i;
    unsigned cp;
    *len = 1;
    if (u[0] < 0x80) {
        cp = u[0];
    } else if ((u[0] & 0xE0) == 0xC0 && left >= 2 && (u[1] & 0xC0) == 0x80) {
        cp = (u[0] & 0x1Fu) << 6 | (u[1] & 0x3Fu);
        *len = 2;
    } else if ((u[0] & 0xF0) == 0xE0 && left >= 3 && (u[1] & 0xC0) == 0x80 && (u[2] & 0xC0) == 0x80) {
        cp = (u[0] & 0x0Fu) << 12 | (u[1] & 0x3Fu) << 6 | (u[2] & 0x3Fu);
        *len = 3;
    } else {
        return 0;
    }
    return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
           cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
           cp == 0x205F || cp == 0x3000;
}

/* ---- the stream ---- */

toolp_stream *toolp_stream_new(const toolp_parser *p) { return toolp_stream_new_tools(p, NULL); }

toolp_stream *toolp_stream_new_tools(const toolp_parser *p, const cJSON *tools) {
    toolp_stream *s = calloc(1, sizeof *s);
    if (s) s->p = p, s->tools = tools;
    return s;
}

void toolp_stream_free(toolp_stream *s) {
    if (!s) return;
    sb_free(&s->text);
    free(s->sent_args);
    free(s->ev);
    toolp_result_free(&s->final);
    free(s);
}

static void push(toolp_stream *s, int kind, int index, const char *p, size_t n) {
    if (s->oom || !n) return;
    if (vc_grow((void **)&s->ev, &s->cap_ev, s->n_ev + 1, sizeof *s->ev)) {
        s->oom = 1;
        return;
    }
    s->ev[s->n_ev++] = (toolp_event){kind, index, p, n};
}

void toolp_emit_content(toolp_stream *s, const char *p, size_t n) {
    push(s, TOOLP_EV_CONTENT, 0, p, n);
    s->sent_content += n;
}

void toolp_emit_reasoning(toolp_stream *s, const char *p, size_t n) {
    push(s, TOOLP_EV_REASONING, 0, p, n);
    s->sent_reasoning += n;
}

void toolp_emit_call(toolp_stream *s, const char *name, size_t n) {
    if (s->oom) return;
    if (vc_grow((void **)&s->sent_args, &s->cap_args, (size_t)s->n_begun + 1, sizeof *s->sent_args)) {
        s->oom = 1;
        return;
    }
    /* a name may be empty (mistral's "[TOOL_CALLS][ARGS]{}"): the event still goes out */
    if (vc_grow((void **)&s->ev, &s->cap_ev, s->n_ev + 1, sizeof *s->ev)) {
        s->oom = 1;
        return;
    }
    s->ev[s->n_ev++] = (toolp_event){TOOLP_EV_CALL, s->n_begun, name, n};
    s->sent_args[s->n_begun++] = 0;
}

void toolp_emit_args(toolp_stream *s, int index, const char *p, size_t n) {
    if (s->oom || index >= s->n_begun) return;
    push(s, TOOLP_EV_ARGS, index, p, n);
    s->sent_args[index] += n;
}

int toolp_stream_feed(toolp_stream *s, const char *delta, size_t len, toolp_event **ev, int *n_ev) {
    *ev = NULL;
    *n_ev = 0;
    if (s->finished) return vc_errf(VC_EINVAL, "tool parser stream already finished");
    if (s->oom) return vc_errf(VC_ENOMEM, "out of memory");
    s->n_ev = 0;
    if (len) sb_raw(&s->text, delta, len);
    if (s->text.oom) s->oom = 1;
    if (!s->oom && len && s->p->progress) s->p->progress(s);
    if (s->oom) return vc_errf(VC_ENOMEM, "out of memory");
    *ev = s->ev;
    *n_ev = (int)s->n_ev;
    return 0;
}

/* The final result, less what progress already sent: progress only ever sent prefixes of it. */
int toolp_stream_finish(toolp_stream *s, toolp_event **ev, int *n_ev) {
    *ev = NULL;
    *n_ev = 0;
    if (s->finished) return vc_errf(VC_EINVAL, "tool parser stream already finished");
    if (s->oom) return vc_errf(VC_ENOMEM, "out of memory");
    s->finished = 1;
    s->n_ev = 0;
    toolp_result *r = &s->final;
    if (toolp_parse_tools(s->p, s->text.b, s->text.n, s->tools, r)) {
        s->oom = 1;
        return VC_ENOMEM;
    }
    if (r->reasoning_len > s->sent_reasoning)
        toolp_emit_reasoning(s, r->reasoning + s->sent_reasoning, r->reasoning_len - s->sent_reasoning);
    if (r->content_len > s->sent_content)
        toolp_emit_content(s, r->content + s->sent_content, r->content_len - s->sent_content);
    for (int i = 0; i < r->n_calls; i++) {
        if (i >= s->n_begun) toolp_emit_call(s, r->calls[i].name, r->calls[i].name_len);
        if (s->oom) break;
        size_t sent = s->sent_args[i];
        if (r->calls[i].args_len > sent) toolp_emit_args(s, i, r->calls[i].args + sent, r->calls[i].args_len - sent);
    }
    if (s->oom) return vc_errf(VC_ENOMEM, "out of memory");
    *ev = s->ev;
    *n_ev = (int)s->n_ev;
    return 0;
}
