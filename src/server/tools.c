/* tools: tool_choice "required" / a named function (see tools.h). The checks
 * and their wording follow vLLM's ChatCompletionRequest.check_tool_usage and
 * check_structured_outputs_count (protocol.py), the schemas its
 * get_json_schema_from_tools (tool_parsers/utils.py). */
#include "server/tools.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"
#include "server/structured.h"

static const char USAGE[] = "Correct usage: `{\"type\": \"function\", \"function\": {\"name\": \"my_function\"}}`";

/* A value as a message shows it (vLLM prints Python's repr; absent is None). */
static char *shown(const cJSON *v) {
    char *t = v && !cJSON_IsNull(v) ? cJSON_PrintUnformatted(v) : NULL;
    return t ? t : strdup(v && !cJSON_IsNull(v) ? "?" : "None");
}

/* The tool named `name` in tools, else NULL (tools are already checked for shape). */
static const cJSON *find_tool(const cJSON *tools, const char *name) {
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *n = js_field(js_field(t, "function"), "name");
        if (cJSON_IsString(n) && !strcmp(n->valuestring, name)) return t;
    }
    return NULL;
}

/* The named tool_choice: {"type": "function", "function": {"name": ...}} naming one of tools. */
static int read_named(const cJSON *tc, const cJSON *tools, const char **name, srv_error *err) {
    const cJSON *type = js_field(tc, "type"), *fn = js_field(tc, "function"), *n;
    if (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "function")))
        return srv_fail_parse(err, "tool_choice", "'tool_choice.type' must be \"function\"");
    if (!cJSON_IsObject(fn)) {
        char *s = shown(fn);
        srv_fail(err, 400, "tool_choice.function", "Invalid value for `function`: `%.200s` in `tool_choice`! %s",
                 s ? s : "?", USAGE);
        free(s);
        return -1;
    }
    if (!(n = cJSON_GetObjectItemCaseSensitive(fn, "name")))
        return srv_fail(err, 400, "tool_choice.function.name", "Expected field `name` in `function` in `tool_choice`! %s",
                        USAGE);
    if (!cJSON_IsString(n) || !n->valuestring[0]) {
        char *s = shown(n);
        srv_fail(err, 400, "tool_choice.function.name", "Invalid `name` in `function`: `%.200s` in `tool_choice`! %s",
                 s ? s : "?", USAGE);
        free(s);
        return -1;
    }
    if (!find_tool(tools, n->valuestring))
        return srv_fail(err, 400, "tool_choice", "The tool specified in `tool_choice` does not match any of the "
                                                 "specified `tools`");
    *name = n->valuestring;
    return 0;
}

/* vLLM refuses a named tool together with a structured-output constraint (check_structured_outputs_count);
 * with "required" its tools' schema simply replaces the constraint, as it replaces response_format. */
static int has_constraint(const cJSON *body) {
    const cJSON *so = js_field(body, "structured_outputs");
    static const char *const so_keys[] = {"json", "regex", "choice", "grammar"};
    for (size_t i = 0; cJSON_IsObject(so) && i < sizeof so_keys / sizeof *so_keys; i++)
        if (js_field(so, so_keys[i])) return 1;
    if (cJSON_IsObject(so) && cJSON_IsTrue(js_field(so, "json_object"))) return 1;
    static const char *const old[] = {"guided_json", "guided_regex", "guided_choice", "guided_grammar"};
    for (size_t i = 0; i < sizeof old / sizeof *old; i++)
        if (js_field(body, old[i])) return 1;
    return 0;
}

/* ---- the schemas (vLLM's get_json_schema_from_tools) ---- */

/* A tool's parameters, or vLLM's stand-in for none (absent or {}): an object of anything. NULL: out of memory. */
static cJSON *params_of(const cJSON *tool) {
    const cJSON *p = js_field(js_field(tool, "function"), "parameters");
    if (cJSON_IsObject(p) && p->child) return cJSON_Duplicate(p, 1);
    cJSON *d = cJSON_CreateObject();
    if (d && (!cJSON_AddStringToObject(d, "type", "object") || !cJSON_AddObjectToObject(d, "properties"))) {
        cJSON_Delete(d);
        d = NULL;
    }
    return d;
}

/* Move params' $defs (and definitions) to root, where "#/$defs/x" then points; vLLM refuses one name with two
 * schemas. 0, -1 with err set. */
static int hoist_defs(cJSON *root, cJSON *params, srv_error *err) {
    static const char *const keys[] = {"$defs", "definitions"};
    for (size_t k = 0; k < 2; k++) {
        cJSON *defs = cJSON_DetachItemFromObjectCaseSensitive(params, keys[k]);
        if (!defs) continue;
        cJSON *all = cJSON_GetObjectItemCaseSensitive(root, keys[k]);
        if (!all && !(all = cJSON_AddObjectToObject(root, keys[k]))) {
            cJSON_Delete(defs);
            return srv_fail(err, 500, NULL, "out of memory");
        }
        int rc = 0;
        for (cJSON *d = defs->child; d && !rc; d = defs->child) {
            const cJSON *had = cJSON_GetObjectItemCaseSensitive(all, d->string);
            cJSON_DetachItemViaPointer(defs, d);
            if (had && !cJSON_Compare(had, d, 1))
                rc = srv_fail(err, 400, "tools", "Tool definition '%.200s' has multiple schemas, which is not supported.",
                              d->string);
            if (had || rc) cJSON_Delete(d);
            else if (!cJSON_AddItemToObject(all, d->string, d)) {
                cJSON_Delete(d);
                rc = srv_fail(err, 500, NULL, "out of memory");
            }
        }
        cJSON_Delete(defs);
        if (rc) return rc;
    }
    return 0;
}

/* {"properties": {"name": {"type": "string", "enum": [name]}, "parameters": params}, "required": [...]}, plus
 * "additionalProperties": false: vLLM leaves that out, but its grammar backend (xgrammar, strict by default)
 * never lets a model add members there either. Takes params; NULL: out of memory. */
static cJSON *call_schema(const char *name, cJSON *params) {
    cJSON *s = cJSON_CreateObject(), *props = s ? cJSON_AddObjectToObject(s, "properties") : NULL;
    cJSON *n = props ? cJSON_AddObjectToObject(props, "name") : NULL; /* first: members are emitted in order */
    if (!n || !cJSON_AddItemToObject(props, "parameters", params)) {
        cJSON_Delete(params);
        cJSON_Delete(s);
        return NULL;
    }
    const char *req[] = {"name", "parameters"};
    cJSON *e = cJSON_AddStringToObject(n, "type", "string") ? cJSON_AddArrayToObject(n, "enum") : NULL;
    cJSON *ns = e ? cJSON_CreateString(name) : NULL, *r = NULL;
    if (!ns || !cJSON_AddItemToArray(e, ns) || !(r = cJSON_CreateStringArray(req, 2)) ||
        !cJSON_AddItemToObject(s, "required", r) || !cJSON_AddFalseToObject(s, "additionalProperties")) {
        if (ns && !ns->prev) cJSON_Delete(ns); /* not in the array */
        if (r && !r->prev) cJSON_Delete(r);
        cJSON_Delete(s);
        return NULL;
    }
    return s;
}

/* "required": {"type": "array", "minItems": 1, "items": {"type": "object", "anyOf": [call schemas]}, "$defs"}. */
static cJSON *required_schema(const cJSON *tools, srv_error *err) {
    cJSON *root = cJSON_CreateObject(), *items = NULL, *any = NULL;
    if (root && cJSON_AddStringToObject(root, "type", "array") && cJSON_AddNumberToObject(root, "minItems", 1) &&
        (items = cJSON_AddObjectToObject(root, "items")) && cJSON_AddStringToObject(items, "type", "object"))
        any = cJSON_AddArrayToObject(items, "anyOf");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        if (!any) break;
        cJSON *p = params_of(t), *cs = NULL;
        if (p && hoist_defs(root, p, err)) {
            cJSON_Delete(p);
            cJSON_Delete(root);
            return NULL;
        }
        if (!p || !(cs = call_schema(js_field(js_field(t, "function"), "name")->valuestring, p)) ||
            !cJSON_AddItemToArray(any, cs)) {
            if (p && cs) cJSON_Delete(cs);
            any = NULL;
            break;
        }
    }
    if (!any) {
        cJSON_Delete(root);
        srv_fail(err, 500, NULL, "out of memory");
        return NULL;
    }
    return root;
}

/* Compile schema (taken) through structured.c's cache, as {"structured_outputs": {"json": schema}}. */
static int compile(struct so_cache *c, cJSON *schema, gram_grammar **g, srv_error *err) {
    cJSON *body = cJSON_CreateObject(), *so = body ? cJSON_AddObjectToObject(body, "structured_outputs") : NULL;
    if (!so || !cJSON_AddItemToObject(so, "json", schema)) {
        cJSON_Delete(schema);
        cJSON_Delete(body);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    int rc = so_from_request(c, body, g, err);
    cJSON_Delete(body);
    return rc;
}

/* The compiler's reason in err, without structured.c's "structured_outputs: " (the field was ours). */
static void reason(const srv_error *err, char *out, size_t cap) {
    const char *m = err->message, *pre = "structured_outputs: ";
    snprintf(out, cap, "%s", strncmp(m, pre, strlen(pre)) ? m : m + strlen(pre));
}

/* A tool whose parameters do not compile: the 400 names it. */
static int blame(const char *name, srv_error *err) {
    char why[sizeof err->message];
    reason(err, why, sizeof why);
    return srv_fail(err, 400, "tools", "The parameters schema of tool '%.200s' is not supported: %s", name, why);
}

/* The "required" schema failed: name the first tool whose parameters fail alone, else the whole. */
static int diagnose(struct so_cache *c, const cJSON *tools, srv_error *err) {
    char why[sizeof err->message];
    reason(err, why, sizeof why);
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        gram_grammar *g = NULL;
        cJSON *p = params_of(t);
        if (!p) return srv_fail(err, 500, NULL, "out of memory");
        int rc = compile(c, p, &g, err);
        gram_free(g);
        if (rc && err->status != 400) return rc;
        if (rc) return blame(js_field(js_field(t, "function"), "name")->valuestring, err);
    }
    return srv_fail(err, 400, "tools", "The schema of the tool calls is not supported: %s", why);
}

int tool_from_request(struct so_cache *c, const cJSON *body, int auto_ok, int *mode, char **name, gram_grammar **g,
                      srv_error *err) {
    *mode = TOOL_NONE;
    *name = NULL;
    *g = NULL;
    const cJSON *tc = js_field(body, "tool_choice"), *tools = js_field(body, "tools");
    /* no tool_choice: vLLM defaults to "auto" when tools are given; without a parser (where vLLM's "auto"
     * is a 400) this server keeps the tools for the chat template only, as "none" does */
    if (!tc && auto_ok && cJSON_GetArraySize(tools) > 0) {
        *mode = TOOL_AUTO;
        return 0;
    }
    if (!tc || (cJSON_IsString(tc) && !strcmp(tc->valuestring, "none"))) return 0;
    if (!cJSON_IsString(tc) && !cJSON_IsObject(tc))
        return srv_fail_parse(err, "tool_choice", "'tool_choice' must be \"none\", \"auto\", \"required\" or "
                                                  "{\"type\": \"function\", \"function\": {\"name\": ...}}");
    if (!tools) return srv_fail(err, 400, "tool_choice", "When using `tool_choice`, `tools` must be set.");
    if (cJSON_IsString(tc) && !strcmp(tc->valuestring, "auto")) {
        if (!auto_ok)
            return srv_fail(err, 400, "tool_choice",
                            "\"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set");
        *mode = cJSON_GetArraySize(tools) > 0 ? TOOL_AUTO : TOOL_NONE; /* vLLM parses only when tools are given */
        return 0;
    }
    if (cJSON_IsString(tc) && strcmp(tc->valuestring, "required"))
        return srv_fail(err, 400, "tool_choice", "Invalid value for `tool_choice`: %.200s! Only named tools, \"none\", "
                                                 "\"auto\" or \"required\" are supported.", tc->valuestring);
    if (!cJSON_GetArraySize(tools))
        return srv_fail(err, 400, "tools", "`tools` must not be an empty array. Either provide at least one tool or "
                                           "omit the field entirely.");
    if (cJSON_IsString(tc)) {
        cJSON *schema = required_schema(tools, err);
        if (!schema) return -1;
        if (compile(c, schema, g, err)) return err->status == 400 ? diagnose(c, tools, err) : -1;
        *mode = TOOL_REQUIRED;
        return 0;
    }
    const char *fn = NULL;
    if (read_named(tc, tools, &fn, err)) return -1;
    if (has_constraint(body))
        return srv_fail(err, 400, NULL, "You can only either use constraints for structured outputs or tools, not both.");
    cJSON *p = params_of(find_tool(tools, fn));
    if (!p) return srv_fail(err, 500, NULL, "out of memory");
    if (compile(c, p, g, err)) return err->status == 400 ? blame(fn, err) : -1;
    if (!(*name = strdup(fn))) {
        gram_free(*g);
        *g = NULL;
        return srv_fail(err, 500, NULL, "out of memory");
    }
    *mode = TOOL_NAMED;
    return 0;
}

/* ---- reading the output ---- */

/* Where the scanner is inside an item {"name": .., "parameters": ..} (depth 2). */
enum { ST_KEY, ST_COLON, ST_VALUE, ST_AFTER };
enum { KEY_OTHER, KEY_NAME, KEY_PARAMS };
/* What the bytes being read are: nothing kept, a key or name string (tok), a value (args when kept). */
enum { RD_NONE, RD_STRING, RD_VALUE };

static tool_call *add_call(tool_scan *s) {
    if (s->n_calls == s->cap_calls) {
        int nc = s->cap_calls ? 2 * s->cap_calls : 4;
        tool_call *n = realloc(s->calls, sizeof *n * (size_t)nc);
        if (!n) {
            s->oom = 1;
            return NULL;
        }
        s->calls = n;
        s->cap_calls = nc;
    }
    tool_call *t = &s->calls[s->n_calls++];
    memset(t, 0, sizeof *t);
    return t;
}

int tool_scan_init(tool_scan *s, int mode, const char *name) {
    memset(s, 0, sizeof *s);
    s->mode = mode;
    if (mode == TOOL_NAMED) {
        tool_call *t = add_call(s);
        if (!t || !(t->name = strdup(name))) return -1;
    }
    return 0;
}

void tool_scan_free(tool_scan *s) {
    for (int i = 0; i < s->n_calls; i++) {
        free(s->calls[i].name);
        sb_free(&s->calls[i].args);
    }
    free(s->calls);
    sb_free(&s->tok);
    memset(s, 0, sizeof *s);
}

static tool_call *current(tool_scan *s) { return s->n_calls ? &s->calls[s->n_calls - 1] : NULL; }

/* A key or the name's string ended (s->tok holds it raw, escapes kept). */
static void string_done(tool_scan *s) {
    const char *t = s->tok.b ? s->tok.b : "";
    if (s->state == ST_KEY) {
        s->key = !strcmp(t, "name") ? KEY_NAME : !strcmp(t, "parameters") ? KEY_PARAMS : KEY_OTHER;
        s->state = ST_COLON;
        return;
    }
    /* the name: decoded as the JSON string it is */
    sbuf q = {0};
    sb_str(&q, "\"");
    sb_raw(&q, s->tok.b ? s->tok.b : "", s->tok.n);
    sb_str(&q, "\"");
    cJSON *v = q.oom ? NULL : js_parse(q.b, q.n, NULL);
    tool_call *c = current(s);
    if (c && cJSON_IsString(v) && !c->name && !(c->name = strdup(v->valuestring))) s->oom = 1;
    if (q.oom) s->oom = 1;
    cJSON_Delete(v);
    sb_free(&q);
    s->state = ST_AFTER;
}

static void value_done(tool_scan *s) {
    tool_call *c = current(s);
    if (s->key == KEY_PARAMS && c) c->args_done = 1;
    s->state = ST_AFTER;
    s->scalar = 0;
    s->key = KEY_OTHER;
}

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The arguments being read, or NULL when the value being read is not kept. */
static sbuf *args_of(tool_scan *s) {
    tool_call *c = current(s);
    return s->key == KEY_PARAMS && c && !c->args_done ? &c->args : NULL;
}

/* One byte of [{"name": "..", "parameters": ..}, ..]. The grammar makes the text a prefix of that; anything
 * else is skipped without harm. */
static void scan_byte(tool_scan *s, char ch) {
    int rd = s->in_str && s->val_depth == 0 ? RD_STRING : s->val_depth ? RD_VALUE : RD_NONE;
    if (rd == RD_VALUE) {
        sbuf *a = args_of(s);
        if (s->scalar && !s->in_str && (is_ws(ch) || ch == ',' || ch == '}' || ch == ']')) {
            s->val_depth = 0;
            value_done(s); /* and ch is read at item depth below */
        } else {
            if (a) sb_raw(a, &ch, 1);
            if (a && a->oom) s->oom = 1;
            if (s->in_str) {
                if (s->esc) s->esc = 0;
                else if (ch == '\\') s->esc = 1;
                else if (ch == '"') s->in_str = 0;
            } else if (ch == '"') {
                s->in_str = 1;
            } else if (ch == '{' || ch == '[') {
                s->depth++;
            } else if (ch == '}' || ch == ']') {
                s->depth--;
            }
            if (!s->in_str && !s->scalar && s->depth == s->val_depth) { /* back at item depth: the value ended */
                s->val_depth = 0;
                value_done(s);
            }
            return;
        }
    }
    if (rd == RD_STRING) {
        if (s->esc) s->esc = 0;
        else if (ch == '\\') s->esc = 1;
        else if (ch == '"') {
            s->in_str = 0;
            string_done(s);
            return;
        }
        sb_raw(&s->tok, &ch, 1);
        if (s->tok.oom) s->oom = 1;
        return;
    }
    if (is_ws(ch)) return;
    if (s->depth == 0) {
        if (ch == '[') s->depth = 1;
        return;
    }
    if (s->depth == 1) {
        if (ch == '{') {
            s->depth = 2;
            s->state = ST_KEY;
            add_call(s);
        } else if (ch == ']') {
            s->depth = 0;
        }
        return;
    }
    switch (s->state) { /* depth 2: inside an item */
    case ST_KEY:
        if (ch == '"') {
            s->in_str = 1;
            s->tok.n = 0;
        } else if (ch == '}') {
            s->depth = 1;
        }
        return;
    case ST_COLON:
        if (ch == ':') s->state = ST_VALUE;
        return;
    case ST_VALUE:
        if (s->key == KEY_NAME && ch == '"') { /* the name: read as a string, like a key */
            s->in_str = 1;
            s->tok.n = 0;
            return;
        }
        s->val_depth = 2; /* a value that ends when the scanner is back at depth 2 */
        s->scalar = ch != '"' && ch != '{' && ch != '[';
        if (s->scalar) { /* a number, true, false or null: ends at the first byte that is not its own */
            sbuf *a = args_of(s);
            if (a) sb_raw(a, &ch, 1);
            if (a && a->oom) s->oom = 1;
            return;
        }
        scan_byte(s, ch); /* the opening quote or bracket, as part of the value */
        return;
    case ST_AFTER:
        if (ch == ',') s->state = ST_KEY;
        else if (ch == '}') s->depth = 1;
        return;
    }
}

void tool_scan_feed(tool_scan *s, const char *p, size_t n) {
    if (s->mode == TOOL_NAMED) { /* the whole output is the arguments */
        if (s->n_calls) {
            sb_raw(&s->calls[0].args, p, n);
            if (s->calls[0].args.oom) s->oom = 1;
        }
        return;
    }
    for (size_t i = 0; i < n; i++) scan_byte(s, p[i]);
}
