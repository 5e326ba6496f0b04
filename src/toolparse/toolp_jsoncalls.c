/* toolp_jsoncalls: the tool parsers whose calls are JSON: hermes, llama3_json, mistral.
 *
 * Read from vLLM's vllm/entrypoints/openai/tool_parsers/ (and vllm/tool_parsers/):
 * hermes_tool_parser.py, llama_tool_parser.py, mistral_tool_parser.py. Their non-streaming
 * extract_tool_calls is what toolp_parse does; each call's arguments are json.dumps(value,
 * ensure_ascii=False) of what json.loads read. vLLM's streaming side re-parses partial JSON
 * after every token and sends argument text as it guesses it (for hermes, the model's own text,
 * not json.dumps'), so its streamed arguments can differ from its non-streaming ones and a call
 * that turns out malformed has been half sent. Here a call (whose validity depends on the whole
 * output) is sent at toolp_stream_finish, content before the first marker as it comes. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "toolparse/internal.h"

#define HERMES_START "<tool_call>"
#define HERMES_END "</tool_call>"
#define PYTHON_TAG "<|python_tag|>"
#define MISTRAL_BOT "[TOOL_CALLS]"
#define MISTRAL_ARGS "[ARGS]"
#define MISTRAL_CALL_ID "[CALL_ID]"

/* One object from the text: parsed, checked, added to r. 0, -1 (not a call), VC_ENOMEM. */
static int add_json_call(toolp_result *r, const char *p, size_t n, const char *key, const char *alt) {
    js_error e;
    cJSON *j = js_parse(p, n, &e);
    if (!j) return e.oom ? vc_errf(VC_ENOMEM, "out of memory") : -1;
    char *name = NULL;
    size_t name_len = 0;
    sbuf args = {0};
    int rc = toolp_call_from_json(j, key, alt, &name, &name_len, &args);
    if (rc == 0) rc = toolp_add_call(r, name, name_len, args.b ? args.b : "", args.n);
    free(name);
    sb_free(&args);
    cJSON_Delete(j);
    return rc;
}

/* Content before the marker `m` as it comes, holding back what could still become m. Sets
 * s->mode to 1 once m is seen; returns whether it was seen. */
static int content_until(toolp_stream *s, const char *m) {
    const char *t = s->text.b;
    size_t n = s->text.n, from = s->sent_content, at = toolp_find(t, n, from, m);
    if (at != (size_t)-1) {
        toolp_emit_content(s, t + from, at - from);
        s->mode = 1;
        s->pos = at + strlen(m);
        return 1;
    }
    size_t end = toolp_utf8_end(t, from, n - toolp_partial(t, n, from, m));
    toolp_emit_content(s, t + from, end - from);
    return 0;
}

/* ---- hermes (Qwen2.5, Qwen3, Hermes 2/3): <tool_call>\n{"name": .., "arguments": ..}\n</tool_call> ----
 * Every <tool_call> region (to the next </tool_call>, the last one possibly to the end) must be one
 * JSON object with a string "name" and an "arguments" of any type; then the content is the text
 * before the first <tool_call> (None when empty) and text between or after the calls is dropped.
 * One region that is not makes the whole output content. */
int toolp_hermes_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    size_t first = toolp_find(t, n, 0, HERMES_START), from = first;
    if (first == (size_t)-1) return toolp_all_content(r, t, n);
    size_t ls = strlen(HERMES_START), le = strlen(HERMES_END);
    while (from != (size_t)-1) {
        size_t body = from + ls, end = toolp_find(t, n, body, HERMES_END);
        int rc = add_json_call(r, t + body, (end == (size_t)-1 ? n : end) - body, "arguments", NULL);
        if (rc == -1) return toolp_all_content(r, t, n);
        if (rc) return rc;
        if (end == (size_t)-1) break;
        from = toolp_find(t, n, end + le, HERMES_START);
    }
    r->tools_called = 1;
    return first ? toolp_set_content(r, t, first) : 0;
}

void toolp_hermes_progress(toolp_stream *s) {
    if (s->mode == 0) content_until(s, HERMES_START);
}

/* ---- llama3_json (Llama 3.1-3.3, 4): {"name": .., "parameters": {..}}; {..} after <|python_tag|> or not ----
 * vLLM reads every '{' that is not inside an object already read (nor right after one: its
 * raw_decode end index is inclusive) with json.JSONDecoder.raw_decode; each must be an object
 * with a string "name" and "arguments" (else "parameters"); any that is not, or a '{' that does not
 * start valid JSON, makes the whole output content. With calls, content is None: text around
 * them is dropped.
 * Difference: vLLM's non-streaming side finds calls after leading text too ("Sure! {...}"), its
 * streaming side only when the output starts with '{' or <|python_tag|>. Deciding that late would
 * hold every plain answer back to the end, so here the output is calls only when it starts (after
 * whitespace) with '{' or <|python_tag|>, as vLLM streams it; otherwise it is all content. */
static size_t skip_json_ws(const char *t, size_t n, size_t i) {
    while (i < n && (t[i] == ' ' || t[i] == '\t' || t[i] == '\n' || t[i] == '\r')) i++;
    return i;
}

static int llama_starts_calls(const char *t, size_t n) {
    size_t i = skip_json_ws(t, n, 0), k = strlen(PYTHON_TAG);
    return i < n && (t[i] == '{' || (n - i >= k && !memcmp(t + i, PYTHON_TAG, k)));
}

int toolp_llama_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    if (!llama_starts_calls(t, n)) return toolp_all_content(r, t, n);
    for (size_t at = 0; (at = toolp_find(t, n, at, "{")) != (size_t)-1;) {
        size_t end = toolp_json_extent(t, n, at);
        int rc = end == (size_t)-1 ? -1 : add_json_call(r, t + at, end - at, "arguments", "parameters");
        if (rc == -1) return toolp_all_content(r, t, n);
        if (rc) return rc;
        at = end + 1;
    }
    if (!r->n_calls) return toolp_all_content(r, t, n); /* <|python_tag|> without JSON */
    r->tools_called = 1;
    return 0;
}

/* mode 0: undecided (leading whitespace, a partial <|python_tag|>; s->pos: the whitespace read),
 * 1: calls (held to the end), 2: content. */
void toolp_llama_progress(toolp_stream *s) {
    const char *t = s->text.b;
    size_t n = s->text.n;
    if (s->mode == 0) {
        size_t i = s->pos = skip_json_ws(t, n, s->pos), k = strlen(PYTHON_TAG);
        if (i == n || (n - i < k && !memcmp(t + i, PYTHON_TAG, n - i))) return;
        s->mode = llama_starts_calls(t, n) ? 1 : 2;
    }
    if (s->mode == 2) toolp_emit_content(s, t + s->sent_content, toolp_utf8_end(t, s->sent_content, n) - s->sent_content);
}

/* ---- mistral: content[TOOL_CALLS][{"name": .., "arguments": {..}}, ..]  or  [TOOL_CALLS]name[ARGS]{..} ----
 * vLLM picks the form by tokenizer: with a Hugging Face tokenizer (all vllmc has) it expects the
 * JSON array (the "pre-v11" form); the newer form it reads only through mistral_common (v11+),
 * whose decoding drops [ARGS], as name{args}: the name up to the first '{', the arguments the
 * rest of the segment verbatim (not checked, not re-serialized), a segment without '{' skipped.
 * Here the form is chosen by what follows the first [TOOL_CALLS]: '[' or '{' (not a marker) is
 * the array, anything else the newer form, where [ARGS] (visible in a Hugging Face decoding) ends
 * the name and [CALL_ID]id is dropped from it.
 * The array form as vLLM: one [TOOL_CALLS]; the rest stripped (Python whitespace) is json.loads'd,
 * failing that the span from the first "[{" to the last "}]"; each item needs a string "name" and
 * an "arguments"; content is the text before [TOOL_CALLS] (None when empty).
 * Difference: where that fails vLLM's content is the stripped rest alone (and where the items are
 * wrong, or there are two markers, it raises); here it is the text before the marker followed by
 * the stripped rest, so that content already streamed stays true. */
enum { M_PRE = 0, M_DETECT, M_ARRAY, M_NAME, M_ARGS };

static int starts(const char *t, size_t n, size_t i, const char *m) {
    size_t k = strlen(m);
    return n - i >= k && !memcmp(t + i, m, k);
}

static int mistral_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }

/* Which form follows the first marker, whose text (after whitespace) starts at i: M_ARRAY,
 * M_NAME, or 0 when the text so far cannot tell (only when !final). */
static int mistral_form(const char *t, size_t n, size_t i, int final) {
    while (i < n && mistral_space(t[i])) i++;
    if (i == n) return final ? M_NAME : 0;
    if (starts(t, n, i, MISTRAL_BOT) || starts(t, n, i, MISTRAL_ARGS)) return M_NAME;
    if (!final && t[i] == '[' && (n - i < strlen(MISTRAL_BOT) && !memcmp(t + i, MISTRAL_BOT, n - i))) return 0;
    if (!final && t[i] == '[' && (n - i < strlen(MISTRAL_ARGS) && !memcmp(t + i, MISTRAL_ARGS, n - i))) return 0;
    return t[i] == '[' || t[i] == '{' ? M_ARRAY : M_NAME;
}

/* t[a, b) stripped of Python whitespace at both ends. */
static void py_strip(const char *t, size_t *a, size_t *b) {
    size_t l;
    while (*a < *b && toolp_py_space(t, *b, *a, &l)) *a += l;
    while (*b > *a) {
        size_t k = *b - 1; /* the start of the last character */
        while (k > *a && ((unsigned char)t[k] & 0xC0) == 0x80) k--;
        if (!toolp_py_space(t, *b, k, &l) || k + l != *b) break;
        *b = k;
    }
}

static int mistral_array(const char *t, size_t n, size_t bot, toolp_result *r) {
    size_t a = bot + strlen(MISTRAL_BOT), b = n;
    py_strip(t, &a, &b);
    int rc = -1;
    cJSON *j = NULL;
    if (toolp_find(t, n, bot + 1, MISTRAL_BOT) == (size_t)-1) {
        js_error e;
        j = js_parse(t + a, b - a, &e);
        if (!j && e.oom) return vc_errf(VC_ENOMEM, "out of memory");
        if (!j) { /* regex \[{.*}\] (DOTALL): the first "[{" to the last "}]" after it */
            size_t i = toolp_find(t, b, a, "[{"), k = (size_t)-1;
            for (size_t f = i; i != (size_t)-1 && (f = toolp_find(t, b, f + 1, "}]")) != (size_t)-1;)
                if (f >= i + 2) k = f;
            if (k != (size_t)-1 && !(j = js_parse(t + i, k + 2 - i, &e)) && e.oom)
                return vc_errf(VC_ENOMEM, "out of memory");
        }
    }
    /* Python iterates what it loaded: a list's items, a dict's keys, a string's characters; an
     * empty one gives no calls, anything else in it fails */
    if (j && (cJSON_IsArray(j) || cJSON_IsObject(j) || cJSON_IsString(j))) {
        rc = 0;
        if (cJSON_IsArray(j)) {
            for (const cJSON *c = j->child; c && !rc; c = c->next) {
                char *name = NULL;
                size_t name_len = 0;
                sbuf args = {0};
                rc = toolp_call_from_json(c, "arguments", NULL, &name, &name_len, &args);
                if (rc == 0) rc = toolp_add_call(r, name, name_len, args.b ? args.b : "", args.n);
                free(name);
                sb_free(&args);
            }
        } else if (cJSON_IsObject(j) ? j->child != NULL : j->valuestring[0] != 0) {
            rc = -1;
        }
    }
    cJSON_Delete(j);
    if (rc == VC_ENOMEM) return rc;
    if (rc == -1) { /* content: before the marker, then the stripped rest */
        sbuf c = {0};
        sb_raw(&c, t, bot);
        sb_raw(&c, t + a, b - a);
        if (c.oom) return vc_errf(VC_ENOMEM, "out of memory");
        toolp_result_free(r);
        r->content = c.b ? c.b : toolp_dup("", 0);
        r->content_len = c.n;
        return r->content ? 0 : vc_errf(VC_ENOMEM, "out of memory");
    }
    r->tools_called = 1;
    return bot ? toolp_set_content(r, t, bot) : 0;
}

/* The segment t[a, b) of the newer form: *name_end, *args_at when it is a call, else -1. */
static int mistral_segment(const char *t, size_t b, size_t a, size_t *name_end, size_t *args_at) {
    const char *brace = memchr(t + a, '{', b - a);
    size_t pb = brace ? (size_t)(brace - t) : (size_t)-1, pa = toolp_find(t, b, a, MISTRAL_ARGS);
    if (pa != (size_t)-1 && (pb == (size_t)-1 || pa < pb)) {
        *name_end = pa;
        *args_at = pa + strlen(MISTRAL_ARGS);
    } else if (pb != (size_t)-1) {
        *name_end = *args_at = pb;
    } else {
        return -1;
    }
    size_t id = toolp_find(t, *name_end, a, MISTRAL_CALL_ID);
    if (id != (size_t)-1) *name_end = id;
    return 0;
}

int toolp_mistral_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    size_t bot = toolp_find(t, n, 0, MISTRAL_BOT), k = strlen(MISTRAL_BOT);
    if (bot == (size_t)-1) return toolp_all_content(r, t, n);
    if (mistral_form(t, n, bot + k, 1) == M_ARRAY) return mistral_array(t, n, bot, r);
    for (size_t a = bot + k; a <= n;) {
        size_t next = toolp_find(t, n, a, MISTRAL_BOT), b = next == (size_t)-1 ? n : next, name_end, args_at;
        if (mistral_segment(t, b, a, &name_end, &args_at) == 0) {
            int rc = toolp_add_call(r, t + a, name_end - a, t + args_at, b - args_at);
            if (rc) return rc;
        }
        if (next == (size_t)-1) break;
        a = next + k;
    }
    r->tools_called = 1;
    return bot ? toolp_set_content(r, t, bot) : 0;
}

/* The array form is held to the end; the newer one streams: the name once [ARGS] or '{' ends it,
 * then the arguments verbatim up to the next marker. s->pos: where the segment (M_NAME) or the
 * unsent arguments (M_ARGS) start; s->mark: how far M_DETECT and M_NAME have looked (so that a
 * long name or run of whitespace fed byte by byte is not scanned again and again). */
void toolp_mistral_progress(toolp_stream *s) {
    const char *t = s->text.b;
    size_t n = s->text.n, k = strlen(MISTRAL_BOT), overlap = k - 1;
    if (s->mode == M_PRE) {
        if (!content_until(s, MISTRAL_BOT)) return;
        s->mode = M_DETECT;
        s->mark = s->pos;
    }
    if (s->mode == M_DETECT) {
        while (s->mark < n && mistral_space(t[s->mark])) s->mark++;
        int f = mistral_form(t, n, s->mark, 0);
        if (!f) return;
        s->mode = f;
        s->mark = s->pos;
    }
    while (s->mode == M_NAME || s->mode == M_ARGS) {
        if (s->mode == M_NAME) {
            size_t from = s->mark > s->pos ? s->mark : s->pos, next = toolp_find(t, n, from, MISTRAL_BOT);
            size_t b = next == (size_t)-1 ? n : next, name_end, args_at;
            if ((memchr(t + from, '{', b - from) || toolp_find(t, b, from, MISTRAL_ARGS) != (size_t)-1) &&
                mistral_segment(t, b, s->pos, &name_end, &args_at) == 0) {
                toolp_emit_call(s, t + s->pos, name_end - s->pos);
                s->pos = args_at;
                s->mode = M_ARGS;
            } else if (next != (size_t)-1) {
                s->mark = s->pos = next + k; /* a segment without arguments: skipped */
            } else {
                s->mark = n > s->pos + overlap ? n - overlap : s->pos; /* the name goes on */
                return;
            }
        } else {
            size_t next = toolp_find(t, n, s->pos, MISTRAL_BOT);
            if (next != (size_t)-1) {
                toolp_emit_args(s, s->n_begun - 1, t + s->pos, next - s->pos);
                s->mark = s->pos = next + k;
                s->mode = M_NAME;
            } else {
                size_t end = toolp_utf8_end(t, s->pos, n - toolp_partial(t, n, s->pos, MISTRAL_BOT));
                toolp_emit_args(s, s->n_begun - 1, t + s->pos, end - s->pos);
                s->pos = end;
                return;
            }
        }
    }
}
