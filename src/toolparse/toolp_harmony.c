/* toolp_harmony: gpt-oss's harmony format, vLLM's "openai" tool and reasoning parsers.
 *
 * The model writes messages, each a header, <|message|>, its text and an end marker:
 *   <|channel|>analysis<|message|>thinking<|end|>
 *   <|start|>assistant<|channel|>commentary to=functions.get_weather <|constrain|>json<|message|>{"city": "Paris"}
 *   <|start|>assistant<|channel|>final<|message|>The answer.
 * (<|return|> and <|call|> end the output as stop tokens, so the text holds them only with
 * include_stop_str_in_output.) vLLM reads the token ids with openai-harmony's parser; this reads
 * the same markers in the text, which the server keeps for these parsers (skip_special_tokens off).
 * What each message becomes, as vLLM's harmony_utils.parse_chat_output and OpenAIToolParser have it:
 *   - a recipient "functions.NAME" (any channel): a tool call NAME, its arguments the text (when the
 *     content type is JSON or absent: json.dumps(json.loads(text)), ensure_ascii as Python's
 *     default; text that is not JSON is passed on as it is);
 *   - channel "analysis": reasoning (several joined by "\n");
 *   - channel "final": content (several joined by "\n");
 *   - channel "commentary" without a recipient (a preamble): content for the reasoning parser,
 *     dropped by the tool parser (vLLM's tool parser keeps only "final");
 *   - anything else (built-in tools such as browser.*, python): dropped.
 * An unfinished last message counts with the text it has (vLLM's current_content); an unfinished
 * header counts nothing. Differences from vLLM, chosen so that streaming never takes text back:
 * several "final" messages are joined where vLLM's tool parser keeps the last; text with no header
 * at all (no <|message|>) is content, where vLLM's parser would yield nothing.
 * The tool parser's result also carries the reasoning (toolp_parser_splits_reasoning): vLLM's
 * harmony path splits it whatever --reasoning-parser says. */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "toolparse/internal.h"

#define NONE ((size_t)-1)
static const char *const ENDS[] = {"<|end|>", "<|call|>", "<|return|>", "<|start|>"};
#define N_ENDS (sizeof ENDS / sizeof *ENDS)

enum { M_REASONING, M_CONTENT, M_PREAMBLE, M_CALL, M_OTHER };

typedef struct {
    size_t body, end;  /* the text [body, end) */
    size_t next;       /* where the next message's header starts; NONE: this one is unfinished */
    int kind;          /* M_* */
    size_t name, name_len, ctype, ctype_len; /* M_CALL: the function's name; the content type */
} h_msg;

static int stop_char(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '<'; }

/* The word at t[i, hend) up to a blank or a marker. */
static size_t word_len(const char *t, size_t i, size_t hend) {
    size_t k = i;
    while (k < hend && !stop_char(t[k])) k++;
    return k - i;
}

/* Read the header t[h, hend): channel, recipient (" to=..."), content type ("<|constrain|>X", or a
 * bare word after the channel). */
static void read_header(const char *t, size_t h, size_t hend, h_msg *m) {
    size_t ch = toolp_find(t, hend, h, "<|channel|>"), chan = NONE, chan_len = 0;
    if (ch != NONE) chan = ch + strlen("<|channel|>"), chan_len = word_len(t, chan, hend);
    size_t to = NONE;
    for (size_t k = h; k + 3 <= hend && to == NONE; k++)
        if (!memcmp(t + k, "to=", 3) && (k == h || stop_char(t[k - 1]) || t[k - 1] == '>')) to = k + 3;
    size_t rl = to == NONE ? 0 : word_len(t, to, hend);
    size_t con = toolp_find(t, hend, h, "<|constrain|>");
    m->ctype = NONE, m->ctype_len = 0;
    if (con != NONE) {
        m->ctype = con + strlen("<|constrain|>"), m->ctype_len = word_len(t, m->ctype, hend);
    } else if (chan != NONE) { /* "commentary json" */
        size_t k = chan + chan_len;
        while (k < hend && (t[k] == ' ' || t[k] == '\t')) k++;
        if (k < hend && t[k] != '<' && (hend - k < 3 || memcmp(t + k, "to=", 3)))
            m->ctype = k, m->ctype_len = word_len(t, k, hend);
    }
    static const char fn[] = "functions.";
    if (rl > strlen(fn) && !memcmp(t + to, fn, strlen(fn))) {
        m->kind = M_CALL, m->name = to + strlen(fn), m->name_len = rl - strlen(fn);
    } else if (chan_len == 8 && !memcmp(t + chan, "analysis", 8) && to == NONE) {
        m->kind = M_REASONING;
    } else if (chan_len == 5 && !memcmp(t + chan, "final", 5) && to == NONE) {
        m->kind = M_CONTENT;
    } else if (chan_len == 10 && !memcmp(t + chan, "commentary", 10) && to == NONE) {
        m->kind = M_PREAMBLE;
    } else {
        m->kind = M_OTHER;
    }
}

/* The message whose header starts at `from`: 1 with *m, 0 when its header is not complete yet. Its
 * end markers are looked for from max(body, scan): a stream passes what it has already sent, which
 * never holds the start of a marker. */
static int message_at(const char *t, size_t n, size_t from, size_t scan, h_msg *m) {
    size_t mk = toolp_find(t, n, from, "<|message|>");
    if (mk == NONE) return 0;
    read_header(t, from, mk, m);
    m->body = mk + strlen("<|message|>");
    m->end = n, m->next = NONE;
    if (scan < m->body) scan = m->body;
    for (size_t k = 0; k < N_ENDS; k++) { /* the earliest marker ends the text */
        size_t e = toolp_find(t, m->end, scan, ENDS[k]);
        if (e != NONE) m->end = e, m->next = k == 3 ? e : e + strlen(ENDS[k]); /* <|start|>: the next header */
    }
    return 1;
}

/* Where a message's text goes: 0 reasoning, 1 content, -1 neither. */
static int target(const h_msg *m, int tool_kind) {
    if (m->kind == M_REASONING) return 0;
    if (m->kind == M_CONTENT || (m->kind == M_PREAMBLE && !tool_kind)) return 1;
    return -1;
}

/* ASCII-only JSON as Python's json.dumps writes it by default: every non-ASCII character as \uXXXX
 * (a surrogate pair above U+FFFF). The input is toolp_pydumps' output (valid UTF-8 inside strings). */
static void ascii_json(sbuf *o, const char *p, size_t n) {
    const unsigned char *u = (const unsigned char *)p;
    for (size_t i = 0; i < n;) {
        if (u[i] < 0x80) {
            sb_raw(o, p + i, 1);
            i++;
            continue;
        }
        size_t l = u[i] >= 0xF0 ? 4 : u[i] >= 0xE0 ? 3 : 2;
        if (i + l > n) l = n - i;
        unsigned cp = l == 4 ? u[i] & 0x07u : l == 3 ? u[i] & 0x0Fu : u[i] & 0x1Fu;
        for (size_t k = 1; k < l; k++) cp = cp << 6 | (u[i + k] & 0x3Fu);
        if (cp >= 0x10000) {
            cp -= 0x10000;
            sb_printf(o, "\\u%04x\\u%04x", 0xD800 + (cp >> 10), 0xDC00 + (cp & 0x3FF));
        } else {
            sb_printf(o, "\\u%04x", cp);
        }
        i += l;
    }
}

/* A call's arguments as vLLM's OpenAIToolParser passes them on. 0 or VC_ENOMEM. */
static int call_args(const char *t, const h_msg *m, sbuf *out) {
    int json = m->ctype == NONE || memmem(t + m->ctype, m->ctype_len, "json", 4);
    cJSON *v = json ? js_parse(t + m->body, m->end - m->body, NULL) : NULL;
    sbuf d = {0};
    if (v && !toolp_pydumps(&d, v) && !d.oom) ascii_json(out, d.b, d.n);
    else sb_raw(out, t + m->body, m->end - m->body);
    int oom = d.oom || out->oom;
    sb_free(&d);
    cJSON_Delete(v);
    return oom ? vc_errf(VC_ENOMEM, "out of memory") : 0;
}

static int parse(const char *t, size_t n, toolp_result *r, int tool_kind) {
    sbuf part[2] = {{0}, {0}};
    int seen[2] = {0, 0}, any = 0, rc = 0;
    h_msg m;
    for (size_t pos = 0; pos != NONE && message_at(t, n, pos, 0, &m); pos = m.next) {
        any = 1;
        int to = target(&m, tool_kind);
        if (to >= 0) {
            if (seen[to]++) sb_raw(&part[to], "\n", 1);
            sb_raw(&part[to], t + m.body, m.end - m.body);
        } else if (m.kind == M_CALL && tool_kind) {
            sbuf a = {0};
            rc = call_args(t, &m, &a);
            if (!rc) rc = toolp_add_call(r, t + m.name, m.name_len, a.b ? a.b : "", a.n);
            sb_free(&a);
            if (rc) break;
        }
    }
    if (!rc && !any) rc = toolp_set_content(r, t, n); /* no harmony at all: plain text */
    for (int k = 0; k < 2 && !rc && any; k++)
        if (seen[k]) rc = k ? toolp_set_content(r, part[k].b ? part[k].b : "", part[k].n)
                            : toolp_set_reasoning(r, part[k].b ? part[k].b : "", part[k].n);
    if (!rc && (part[0].oom || part[1].oom)) rc = vc_errf(VC_ENOMEM, "out of memory");
    r->tools_called = r->n_calls > 0;
    sb_free(&part[0]);
    sb_free(&part[1]);
    return rc;
}

int toolp_harmony_tool_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    return parse(t, n, r, 1);
}

int toolp_harmony_reasoning_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    return parse(t, n, r, 0);
}

/* ---- streaming ----
 * s->mode 0: s->pos is where the next header starts; 1: inside the text of the message whose header
 * started at s->pos, sent up to s->mark. s->count[0/1]: reasoning / content messages begun. */

static void emit_to(toolp_stream *s, int to, const char *p, size_t n) {
    if (to == 0) toolp_emit_reasoning(s, p, n);
    else if (to == 1) toolp_emit_content(s, p, n);
}

static void progress(toolp_stream *s, int tool_kind) {
    const char *t = s->text.b;
    size_t n = s->text.n;
    h_msg m;
    while (!s->oom && message_at(t, n, s->pos, s->mode ? s->mark : 0, &m)) {
        int to = target(&m, tool_kind);
        if (s->mode == 0) { /* a new message: its separator, or its call */
            if (to >= 0 && s->count[to]++) emit_to(s, to, "\n", 1);
            if (m.kind == M_CALL && tool_kind) toolp_emit_call(s, t + m.name, m.name_len);
            s->mode = 1, s->mark = m.body;
        }
        size_t upto = m.end;
        if (m.next == NONE) { /* unfinished: hold back what could become an end marker or a character */
            size_t hold = 0;
            for (size_t k = 0; k < N_ENDS; k++) {
                size_t h = toolp_partial(t, n, s->mark, ENDS[k]);
                if (h > hold) hold = h;
            }
            upto = toolp_utf8_end(t, s->mark, n - hold);
        }
        if (upto > s->mark) emit_to(s, to, t + s->mark, upto - s->mark);
        s->mark = upto;
        if (m.next == NONE) return;
        s->pos = m.next, s->mode = 0;
    }
}

void toolp_harmony_tool_progress(toolp_stream *s) { progress(s, 1); }
void toolp_harmony_reasoning_progress(toolp_stream *s) { progress(s, 0); }
