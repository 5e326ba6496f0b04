/* harmony: a chat request -> gpt-oss's harmony prompt, as vLLM's harmony path and openai_harmony make it (see
 * harmony.h). Two steps, as in vLLM: the request's messages become harmony messages (role, channel,
 * recipient, content type, content), then harmony renders them. Where vLLM's versions differ this follows
 * harmony_utils.py with build_harmony_preamble / extract_instructions_from_messages /
 * get_system_or_developer_message (VLLM_GPT_OSS_HARMONY_SYSTEM_INSTRUCTIONS unset, browsing and the code
 * interpreter off, as in the chat endpoint). */
#include "template/harmony.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/file.h"
#include "base/json.h"

/* harmony's SystemContent.new() defaults, which vLLM keeps */
#define MODEL_IDENTITY "You are ChatGPT, a large language model trained by OpenAI."
#define KNOWLEDGE_CUTOFF "2024-06"
#define CHANNELS "# Valid channels: analysis, commentary, final. Channel must be included for every message."
#define CALLS_NOTE "Calls to these tools must go to the commentary channel: 'functions'."

enum { R_SYSTEM, R_DEVELOPER, R_USER, R_ASSISTANT, R_TOOL };
static const char *const ROLE[] = {"system", "developer", "user", "assistant", "tool"};

/* One harmony message. Text content is either one string (`s`) or the parts of a content list, each
 * rendered on its own (`parts`: harmony renders each TextContent separately). */
typedef struct {
    int role;
    const char *channel;    /* NULL, "analysis", "commentary" or "final" */
    const char *fn;         /* assistant: recipient functions.<fn>; tool: author functions.<fn> */
    int to_assistant;       /* a tool result's recipient "assistant" */
    int json;               /* content type "json" (tool calls) */
    const char *s;          /* the text, or NULL */
    const cJSON *parts;     /* else a content list: each part's "text" ("" when it has none) */
    int dev;                /* developer content: `s` the instructions (NULL: none), tools when with_tools */
    int with_tools;
} hm_msg;

typedef struct {
    const hm_request *r;
    hm_prompt *out;
    hm_msg *m;
    size_t n, cap;
    char **owned; /* flattened texts, freed at the end */
    size_t n_owned, cap_owned;
    int has_function_tools;
} hm_ctx;

static int grow(void **p, size_t *cap, size_t need, size_t size) {
    if (need <= *cap) return 0;
    size_t c = *cap ? *cap * 2 : 16;
    while (c < need) c *= 2;
    void *q = realloc(*p, c * size);
    if (!q) return vc_errf(VC_ENOMEM, "out of memory");
    *p = q;
    *cap = c;
    return 0;
}

static int push_msg(hm_ctx *c, hm_msg m) {
    if (grow((void **)&c->m, &c->cap, c->n + 1, sizeof *c->m)) return VC_ENOMEM;
    c->m[c->n++] = m;
    return 0;
}

static const char *keep(hm_ctx *c, char *s) {
    if (!s || grow((void **)&c->owned, &c->cap_owned, c->n_owned + 1, sizeof *c->owned)) {
        free(s);
        vc_errf(VC_ENOMEM, "out of memory");
        return NULL;
    }
    return c->owned[c->n_owned++] = s;
}

/* ---- reading the request (vLLM's harmony_utils.py) ---- */

/* flatten_input_text_content: a string as it is; a list's strings and its objects' "text" joined with
 * nothing between; NULL (*none) for anything else or a list without text. */
static int flatten(hm_ctx *c, const cJSON *content, const char **out) {
    *out = NULL;
    if (cJSON_IsString(content)) {
        *out = content->valuestring;
        return 0;
    }
    if (!cJSON_IsArray(content)) return 0;
    sbuf s = {0};
    int any = 0;
    const cJSON *p;
    cJSON_ArrayForEach(p, content) {
        const cJSON *t = cJSON_IsObject(p) ? js_field(p, "text") : p;
        if (!t || (!cJSON_IsString(t) && !cJSON_IsObject(p))) continue;
        if (!cJSON_IsString(t)) {
            sb_free(&s);
            return vc_errf(VC_EINVAL, "a content part's 'text' must be a string");
        }
        sb_str(&s, t->valuestring);
        any = 1;
    }
    if (!any) {
        sb_free(&s);
        return 0;
    }
    if (s.oom) {
        sb_free(&s);
        return vc_errf(VC_ENOMEM, "out of memory");
    }
    char *t = sb_take(&s, NULL);
    if (!t) t = calloc(1, 1);
    return (*out = keep(c, t)) ? 0 : VC_ENOMEM;
}

/* The content of a plain message: a string, or a list of parts (objects; a part's "text", "" without one). */
static int check_parts(const cJSON *content) {
    const cJSON *p;
    cJSON_ArrayForEach(p, content) {
        if (!cJSON_IsObject(p)) return vc_errf(VC_EINVAL, "each content part must be an object");
        const cJSON *t = js_field(p, "text");
        if (t && !cJSON_IsString(t)) return vc_errf(VC_EINVAL, "a content part's 'text' must be a string");
    }
    return 0;
}

static const char *part_text(const cJSON *p) {
    const cJSON *t = js_field(p, "text");
    return t ? t->valuestring : "";
}

/* A message's tool_calls: NULL/absent or a list of {"id"?, "function": {"name", "arguments"?}}. */
static int check_calls(const cJSON *calls) {
    if (!calls) return 0;
    if (!cJSON_IsArray(calls)) return vc_errf(VC_EINVAL, "a message's 'tool_calls' must be a list");
    const cJSON *call;
    cJSON_ArrayForEach(call, calls) {
        const cJSON *f = cJSON_IsObject(call) ? js_field(call, "function") : NULL, *id = js_field(call, "id");
        const cJSON *name = cJSON_IsObject(f) ? js_field(f, "name") : NULL, *args = f ? js_field(f, "arguments") : NULL;
        if (!cJSON_IsString(name) || (id && !cJSON_IsString(id)) || (args && !cJSON_IsString(args)))
            return vc_errf(VC_EINVAL, "each item of a message's 'tool_calls' must be {\"id\": a string, \"type\": "
                                      "\"function\", \"function\": {\"name\": a string, \"arguments\": a string}}");
    }
    return 0;
}

/* tool_id_names: the name of the function whose call has id `id` (the last such call), "" when none. */
static const char *call_name(const cJSON *from, const char *id) {
    const char *name = "";
    for (const cJSON *m = from; m; m = m->next) {
        const cJSON *call;
        cJSON_ArrayForEach(call, js_field(m, "tool_calls")) {
            const cJSON *cid = js_field(call, "id");
            if (cid && !strcmp(cid->valuestring, id)) name = js_field(js_field(call, "function"), "name")->valuestring;
        }
    }
    return name;
}

static int role_of(const char *s) {
    for (int i = 0; i < 5; i++)
        if (!strcmp(s, ROLE[i])) return i;
    return -1;
}

/* parse_chat_input_to_harmony_message: one chat message -> zero or more harmony messages. */
static int read_message(hm_ctx *c, const cJSON *first, const cJSON *m) {
    const cJSON *jrole = cJSON_IsObject(m) ? js_field(m, "role") : NULL;
    if (!cJSON_IsString(jrole)) return vc_errf(VC_EINVAL, "each message must be an object with a 'role' string");
    int role = role_of(jrole->valuestring);
    if (role < 0)
        return vc_errf(VC_EINVAL, "message role '%.100s' is not one of harmony's roles (system, developer, user, "
                                  "assistant, tool)", jrole->valuestring);
    const cJSON *content = js_field(m, "content"), *calls = js_field(m, "tool_calls"), *reasoning = js_field(m, "reasoning");
    if (content && !cJSON_IsString(content) && !cJSON_IsArray(content))
        return vc_errf(VC_EINVAL, "message content must be a string or a list of content parts");
    if (reasoning && !cJSON_IsString(reasoning)) return vc_errf(VC_EINVAL, "a message's 'reasoning' must be a string");
    const char *rtext = reasoning && reasoning->valuestring[0] ? reasoning->valuestring : NULL;
    const char *flat;
    int rc;
    if (role == R_ASSISTANT && cJSON_GetArraySize(calls) > 0) {
        if ((rc = flatten(c, content, &flat))) return rc;
        if (flat && flat[0] && (rc = push_msg(c, (hm_msg){.role = R_ASSISTANT, .channel = "commentary", .s = flat})))
            return rc;
        if (rtext && (rc = push_msg(c, (hm_msg){.role = R_ASSISTANT, .channel = "analysis", .s = rtext}))) return rc;
        const cJSON *call;
        cJSON_ArrayForEach(call, calls) {
            const cJSON *f = js_field(call, "function"), *args = js_field(f, "arguments");
            hm_msg h = {.role = R_ASSISTANT, .channel = "commentary", .fn = js_field(f, "name")->valuestring,
                        .json = 1, .s = args ? args->valuestring : ""};
            if ((rc = push_msg(c, h))) return rc;
        }
        return 0;
    }
    if (role == R_TOOL) {
        const cJSON *id = js_field(m, "tool_call_id");
        if (id && !cJSON_IsString(id)) return vc_errf(VC_EINVAL, "a tool message's 'tool_call_id' must be a string");
        if ((rc = flatten(c, content, &flat))) return rc;
        return push_msg(c, (hm_msg){.role = R_TOOL, .channel = "commentary", .to_assistant = 1,
                                    .fn = call_name(first, id ? id->valuestring : ""), .s = flat ? flat : ""});
    }
    if (role == R_ASSISTANT && rtext &&
        (rc = push_msg(c, (hm_msg){.role = R_ASSISTANT, .channel = "analysis", .s = rtext})))
        return rc;
    /* content `or ""`: null, "" and [] are one empty text */
    int empty = !content || (cJSON_IsString(content) && !content->valuestring[0]) ||
                (cJSON_IsArray(content) && !content->child);
    if (!empty && cJSON_IsArray(content) && (rc = check_parts(content))) return rc;
    hm_msg h = {.role = role};
    if (empty) h.s = "";
    else if (cJSON_IsString(content)) h.s = content->valuestring;
    else h.parts = content;
    if (role == R_ASSISTANT) { /* only when its first text is not empty: the final channel */
        const char *lead = h.s ? h.s : part_text(h.parts->child);
        if (!lead[0]) return 0;
        h.channel = "final";
        return push_msg(c, h);
    }
    if (role == R_SYSTEM || role == R_DEVELOPER) { /* later instructions: a developer message of their own */
        if ((rc = flatten(c, content, &flat))) return rc;
        return flat ? push_msg(c, (hm_msg){.role = R_DEVELOPER, .dev = 1, .s = flat}) : 0;
    }
    return push_msg(c, h);
}

/* build_harmony_preamble + the messages, then auto_drop_analysis_messages. */
static int read_request(hm_ctx *c) {
    const hm_request *r = c->r;
    if (!cJSON_IsArray(r->messages)) return vc_errf(VC_EINVAL, "'messages' must be a list of message objects");
    const cJSON *first = r->messages->child, *m;
    for (m = first; m; m = m->next) {
        if (!cJSON_IsObject(m)) return vc_errf(VC_EINVAL, "each message must be an object with a 'role' string");
        int rc = check_calls(js_field(m, "tool_calls"));
        if (rc) return rc;
    }
    /* extract_instructions_from_messages: a leading system/developer message is the instructions */
    const char *instructions = NULL;
    const cJSON *role = first ? js_field(first, "role") : NULL;
    if (cJSON_IsString(role) && (!strcmp(role->valuestring, "system") || !strcmp(role->valuestring, "developer"))) {
        const cJSON *content = js_field(first, "content");
        if (content && !cJSON_IsString(content) && !cJSON_IsArray(content))
            return vc_errf(VC_EINVAL, "message content must be a string or a list of content parts");
        int rc = flatten(c, content, &instructions);
        if (rc) return rc;
        first = first->next;
    }
    if (r->tools && !cJSON_IsArray(r->tools)) return vc_errf(VC_EINVAL, "'tools' must be a list");
    const cJSON *t;
    cJSON_ArrayForEach(t, r->tools) {
        const cJSON *f = cJSON_IsObject(t) ? js_field(t, "function") : NULL, *d = f ? js_field(f, "description") : NULL;
        if (!cJSON_IsObject(f) || !cJSON_IsString(js_field(f, "name")) || (d && !cJSON_IsString(d)))
            return vc_errf(VC_EINVAL, "each item of 'tools' must be {\"type\": \"function\", \"function\": {\"name\": a "
                                      "string, \"description\": a string, \"parameters\": an object}}");
    }
    int rc = push_msg(c, (hm_msg){.role = R_SYSTEM});
    int tools = r->tools && r->tools->child;
    if (!rc && ((instructions && instructions[0]) || tools))
        rc = push_msg(c, (hm_msg){.role = R_DEVELOPER, .dev = 1, .s = instructions, .with_tools = tools});
    c->has_function_tools = tools;
    for (m = first; m && !rc; m = m->next) rc = read_message(c, first, m);
    if (rc) return rc;
    /* vLLM drops every analysis message before the last assistant message to the final channel; harmony's own
     * auto_drop_analysis (analysis before the first final, when the last assistant message is final) then
     * finds nothing more to drop */
    size_t last_final = 0, k = 0;
    for (size_t i = c->n; i-- > 0;)
        if (c->m[i].role == R_ASSISTANT && c->m[i].channel && !strcmp(c->m[i].channel, "final")) {
            last_final = i;
            break;
        }
    for (size_t i = 0; i < c->n; i++)
        if (!(i < last_final && c->m[i].channel && !strcmp(c->m[i].channel, "analysis"))) c->m[k++] = c->m[i];
    c->n = k;
    return 0;
}

/* ---- rendering (harmony's encoding.rs) ---- */

static void piece(hm_prompt *p, const char *s, size_t n, int special) {
    if (!n || p->text.oom) return;
    if (grow((void **)&p->p, &p->cap, p->n + 1, sizeof *p->p)) {
        p->text.oom = 1;
        return;
    }
    size_t off = p->text.n;
    sb_raw(&p->text, s, n);
    if (p->text.oom) return;
    size_t len = js_unmask_nul(p->text.b + off, n); /* U+0000 travels as C0 80 in js_parse's strings */
    p->text.n = off + len;
    p->p[p->n++] = (hm_piece){off, len, special};
}

static void text(hm_prompt *p, const char *s) { piece(p, s, strlen(s), 0); }
static void special(hm_prompt *p, const char *s) { piece(p, s, strlen(s), 1); }

/* `// line` for each of str::lines (split at \n, a \r before it dropped, no empty last line). */
static void comment_lines(sbuf *b, const char *s) {
    while (*s) {
        const char *nl = strchr(s, '\n');
        size_t n = nl ? (size_t)(nl - s) : strlen(s);
        size_t k = nl && n && s[n - 1] == '\r' ? n - 1 : n;
        sb_str(b, "// ");
        sb_raw(b, s, k);
        sb_raw(b, "\n", 1);
        s += nl ? n + 1 : n;
    }
}

/* template_tools_section for the "functions" namespace: "# Tools", "## functions", the namespace. */
static int tools_section(const cJSON *tools, sbuf *b) {
    sb_str(b, "# Tools\n\n## functions\n\nnamespace functions {\n\n");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *f = js_field(t, "function"), *params = cJSON_GetObjectItemCaseSensitive(f, "parameters");
        const cJSON *desc = js_field(f, "description");
        if (cJSON_IsString(desc)) comment_lines(b, desc->valuestring);
        sb_printf(b, "type %s = ", js_field(f, "name")->valuestring);
        if (params && !cJSON_IsNull(params)) {
            sb_str(b, "(_: ");
            int rc = hm_schema_ts(params, "", b);
            if (rc) return rc;
            sb_str(b, ") => any;\n\n");
        } else {
            sb_str(b, "() => any;\n\n");
        }
        if (b->n > HM_MAX_TEXT) return vc_errf(VC_EINVAL, "the tools render larger than %zu MiB", HM_MAX_TEXT >> 20);
    }
    sb_str(b, "} // namespace functions");
    return 0;
}

static int system_content(hm_ctx *c, sbuf *b) {
    sb_printf(b, MODEL_IDENTITY "\nKnowledge cutoff: " KNOWLEDGE_CUTOFF "\nCurrent date: %s\n\nReasoning: %s\n\n" CHANNELS,
              c->r->date ? c->r->date : "", c->r->reasoning_effort ? c->r->reasoning_effort : "medium");
    if (c->has_function_tools) sb_str(b, "\n" CALLS_NOTE);
    return 0;
}

static int developer_content(hm_ctx *c, const hm_msg *m, sbuf *b) {
    if (m->s) {
        sb_str(b, "# Instructions\n\n");
        sb_str(b, m->s);
        if (m->with_tools) sb_str(b, "\n\n");
    }
    return m->with_tools ? tools_section(c->r->tools, b) : 0;
}

static int render_message(hm_ctx *c, const hm_msg *m) {
    hm_prompt *p = c->out;
    special(p, "<|start|>");
    if (m->role == R_TOOL) {
        sbuf h = {0};
        sb_str(&h, "functions.");
        sb_str(&h, m->fn);
        if (h.b) text(p, h.b);
        if (h.oom) p->text.oom = 1;
        sb_free(&h);
    } else {
        text(p, ROLE[m->role]);
    }
    if (m->to_assistant || (m->role != R_TOOL && m->fn)) {
        sbuf h = {0};
        sb_str(&h, m->to_assistant ? " to=assistant" : " to=functions.");
        if (!m->to_assistant) sb_str(&h, m->fn);
        if (h.b) text(p, h.b);
        if (h.oom) p->text.oom = 1;
        sb_free(&h);
    }
    if (m->channel) {
        special(p, "<|channel|>");
        text(p, m->channel);
    }
    if (m->json) text(p, " json");
    special(p, "<|message|>");
    int rc = 0;
    if (m->role == R_SYSTEM || m->dev) {
        sbuf b = {0};
        rc = m->role == R_SYSTEM ? system_content(c, &b) : developer_content(c, m, &b);
        if (!rc && b.b) text(p, b.b);
        if (b.oom) p->text.oom = 1;
        sb_free(&b);
    } else if (m->s) {
        text(p, m->s);
    } else {
        const cJSON *part;
        cJSON_ArrayForEach(part, m->parts) text(p, part_text(part));
    }
    special(p, m->role == R_ASSISTANT && m->fn ? "<|call|>" : "<|end|>");
    if (!rc && p->text.n > HM_MAX_TEXT)
        rc = vc_errf(VC_EINVAL, "the harmony prompt is larger than %zu MiB", HM_MAX_TEXT >> 20);
    return rc;
}

int hm_render(const hm_request *r, hm_prompt *out) {
    memset(out, 0, sizeof *out);
    hm_ctx c = {.r = r, .out = out};
    int rc = read_request(&c);
    for (size_t i = 0; i < c.n && !rc; i++) rc = render_message(&c, &c.m[i]);
    if (!rc) { /* render_conversation_for_completion: the next turn's role */
        special(out, "<|start|>");
        text(out, "assistant");
    }
    if (!rc && out->text.oom) rc = vc_errf(VC_ENOMEM, "out of memory");
    if (!rc && !out->text.b) sb_raw(&out->text, "", 0);
    if (!rc && out->text.oom) rc = vc_errf(VC_ENOMEM, "out of memory");
    if (!rc) out->text.b[out->text.n] = 0;
    for (size_t i = 0; i < c.n_owned; i++) free(c.owned[i]);
    free(c.owned);
    free(c.m);
    return rc;
}

int hm_request_from_body(const cJSON *o, const char *date, hm_request *r) {
    memset(r, 0, sizeof *r);
    r->messages = js_field(o, "messages");
    r->tools = js_field(o, "tools");
    r->date = date;
    if (!cJSON_IsArray(r->messages)) return vc_errf(VC_EINVAL, "'messages' must be a list of message objects");
    const cJSON *e = js_field(o, "reasoning_effort");
    if (!e) return 0;
    if (!cJSON_IsString(e)) return vc_errf(VC_EINVAL, "'reasoning_effort' must be a string");
    const char *v = e->valuestring;
    if (!strcmp(v, "none")) return vc_errf(VC_EINVAL, "Harmony does not support reasoning_effort='none'");
    if (strcmp(v, "low") && strcmp(v, "medium") && strcmp(v, "high"))
        return vc_errf(VC_EINVAL, "reasoning_effort='%.50s' is not supported by Harmony. Supported values are: high, "
                                  "medium, low.", v);
    r->reasoning_effort = v;
    return 0;
}

void hm_start_date(int64_t now, char *buf, size_t size) {
    const char *pin = now ? NULL : getenv("VLLM_SYSTEM_START_DATE");
    if (pin && *pin) {
        snprintf(buf, size, "%s", pin);
        return;
    }
    time_t t = now ? (time_t)now : time(NULL);
    struct tm tm;
    if (!localtime_r(&t, &tm) || !strftime(buf, size, "%Y-%m-%d", &tm)) snprintf(buf, size, "1970-01-01");
}

static int append_ids(tok_ids *out, const int32_t *ids, size_t n) {
    if (grow((void **)&out->ids, &out->cap, out->n + n + 1, sizeof *out->ids)) return VC_ENOMEM;
    if (n) memcpy(out->ids + out->n, ids, n * sizeof *ids);
    out->n += n;
    return 0;
}

int hm_tokenize(const hm_prompt *p, const tok_tokenizer *t, tok_ids *out) {
    out->n = 0;
    tok_ids part = {0};
    int rc = 0;
    for (size_t i = 0; i < p->n && !rc; i++) {
        const char *s = p->text.b + p->p[i].off;
        size_t n = p->p[i].len;
        if (p->p[i].special) {
            int32_t id = tok_token_to_id(t, s, n);
            rc = id < 0 ? vc_errf(VC_EINVAL, "the tokenizer has no harmony token %.*s (gpt-oss needs o200k_harmony)",
                                  (int)n, s)
                        : append_ids(out, &id, 1);
        } else if (!(rc = tok_encode_ordinary(t, s, n, &part))) {
            rc = append_ids(out, part.ids, part.n);
        }
    }
    tok_ids_free(&part);
    return rc;
}

void hm_prompt_free(hm_prompt *p) {
    sb_free(&p->text);
    free(p->p);
    memset(p, 0, sizeof *p);
}

int hm_dir_is_gpt_oss(const char *dir) {
    char path[4096];
    char *text = NULL;
    size_t len = 0;
    if (snprintf(path, sizeof path, "%s/config.json", dir) >= (int)sizeof path || !vc_file_exists(path) ||
        vc_read_file(path, (size_t)16 << 20, &text, &len))
        return 0;
    cJSON *j = js_parse(text, len, NULL);
    const cJSON *mt = js_field(j, "model_type");
    int yes = cJSON_IsString(mt) && !strcmp(mt->valuestring, "gpt_oss");
    cJSON_Delete(j);
    free(text);
    return yes;
}
