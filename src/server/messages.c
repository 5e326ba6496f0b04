/* messages: chat messages and tools on their way to the template (see messages.h). */
#include "server/messages.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json.h"

/* Optional bool field: 0 ok (v set if present), -1 error. */
int srv_opt_bool(const cJSON *o, const char *k, int *v, srv_error *err) {
    const cJSON *x = js_field(o, k);
    if (!x) return 0;
    if (!cJSON_IsBool(x)) return srv_fail_parse(err, k, "'%s' must be a boolean", k);
    *v = cJSON_IsTrue(x);
    return 0;
}

/* Optional integer field: 1 present, 0 absent, -1 error. */
int srv_opt_int(const cJSON *o, const char *k, long long lo, long long hi, long long *v, srv_error *err) {
    const cJSON *x = js_field(o, k);
    if (!x) return 0;
    if (!cJSON_IsNumber(x) || x->valuedouble != floor(x->valuedouble))
        return srv_fail_parse(err, k, "'%s' must be an integer", k);
    if (x->valuedouble < (double)lo || x->valuedouble > (double)hi)
        return srv_fail_parse(err, k, "'%s' must be in [%lld, %lld], got %.17g", k, lo, hi, x->valuedouble);
    *v = (long long)x->valuedouble;
    return 1;
}

int srv_opt_string(const cJSON *o, const char *k, const char **v, srv_error *err) {
    const cJSON *x = js_field(o, k);
    if (!x) return 0;
    if (!cJSON_IsString(x)) return srv_fail_parse(err, k, "'%s' must be a string", k);
    *v = x->valuestring;
    return 1;
}

/* A content part's text (a "text" or "input_text" part), else NULL with err set. */
static const char *part_text(const cJSON *part, srv_error *err) {
    const char *type = NULL, *text = NULL;
    if (!cJSON_IsObject(part) || srv_opt_string(part, "type", &type, err) <= 0) {
        srv_fail_parse(err, "messages", "each content part must be an object with a 'type'");
        return NULL;
    }
    if (strcmp(type, "text") && strcmp(type, "input_text")) {
        srv_fail(err, 400, "messages", "content part type '%s' is not supported by this model (text only)", type);
        return NULL;
    }
    if (srv_opt_string(part, "text", &text, err) <= 0) {
        srv_fail_parse(err, "messages", "a text content part needs a 'text' string");
        return NULL;
    }
    return text;
}

int srv_content_text(const cJSON *content, sbuf *out, srv_error *err) {
    if (cJSON_IsString(content)) {
        sb_str(out, content->valuestring);
        return out->oom ? srv_fail(err, 500, NULL, "out of memory") : 0;
    }
    if (!cJSON_IsArray(content))
        return srv_fail_parse(err, "messages", "message content must be a string or a list of content parts");
    int k = 0;
    const cJSON *part;
    cJSON_ArrayForEach(part, content) {
        const char *text = part_text(part, err);
        if (!text) return -1;
        if (k++) sb_str(out, "\n");
        sb_str(out, text);
    }
    return out->oom ? srv_fail(err, 500, NULL, "out of memory") : 0;
}

/* Replace member `key` of o with v (taken). The new item takes the old one's key: cJSON_ReplaceItemInObject
 * would copy the key and not check that copy, leaving the object without it when memory runs out. */
static int replace_member(cJSON *o, const char *key, cJSON *v, srv_error *err) {
    cJSON *old = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v || !old) {
        cJSON_Delete(v);
        return srv_fail(err, 500, NULL, "out of memory");
    }
    v->string = old->string;
    old->string = NULL;
    cJSON_ReplaceItemViaPointer(o, old, v);
    return 0;
}

static int add_text_part(cJSON *parts, const char *text) {
    cJSON *p = cJSON_CreateObject();
    if (p && cJSON_AddStringToObject(p, "type", "text") && cJSON_AddStringToObject(p, "text", text) &&
        cJSON_AddItemToArray(parts, p))
        return 0;
    cJSON_Delete(p);
    return -1;
}

/* [{"type": "text", "text": t}] for each text part (a string content is one part). */
static cJSON *openai_parts(const cJSON *content, srv_error *err) {
    if (!cJSON_IsString(content) && !cJSON_IsArray(content)) {
        srv_fail_parse(err, "messages", "message content must be a string or a list of content parts");
        return NULL;
    }
    cJSON *parts = cJSON_CreateArray();
    int bad = !parts || (cJSON_IsString(content) && add_text_part(parts, content->valuestring));
    const cJSON *part;
    if (cJSON_IsArray(content)) cJSON_ArrayForEach(part, content) {
        if (bad) break;
        const char *text = part_text(part, err);
        if (!text) {
            cJSON_Delete(parts);
            return NULL;
        }
        bad = add_text_part(parts, text);
    }
    if (bad) {
        cJSON_Delete(parts);
        srv_fail(err, 500, NULL, "out of memory");
        return NULL;
    }
    return parts;
}

/* m's content in the template's format. */
static int format_content(cJSON *m, int format, srv_error *err) {
    const cJSON *content = js_field(m, "content");
    if (!content) return 0;
    if (format == SRV_CONTENT_OPENAI) {
        cJSON *parts = openai_parts(content, err);
        return parts ? replace_member(m, "content", parts, err) : -1;
    }
    if (cJSON_IsString(content)) return 0;
    sbuf s = {0};
    if (srv_content_text(content, &s, err)) {
        sb_free(&s);
        return -1;
    }
    cJSON *flat = s.oom ? NULL : cJSON_CreateString(s.b ? s.b : "");
    sb_free(&s);
    return replace_member(m, "content", flat, err);
}

/* An assistant message's tool_calls: each function.arguments string parsed (vLLM's _postprocess_messages:
 * tool-use templates expect a mapping; an empty or missing one is {}). */
static int parse_tool_args(cJSON *m, srv_error *err) {
    cJSON *calls = cJSON_GetObjectItemCaseSensitive(m, "tool_calls"), *call;
    if (!cJSON_IsArray(calls)) return 0;
    cJSON_ArrayForEach(call, calls) {
        cJSON *fn = cJSON_IsObject(call) ? cJSON_GetObjectItemCaseSensitive(call, "function") : NULL;
        if (!cJSON_IsObject(fn))
            return srv_fail_parse(err, "messages", "each item of an assistant message's 'tool_calls' must be "
                                                   "{\"id\", \"type\": \"function\", \"function\": {\"name\", \"arguments\"}}");
        cJSON *a = cJSON_GetObjectItemCaseSensitive(fn, "arguments");
        if (a && (cJSON_IsObject(a) || cJSON_IsArray(a))) continue;
        if (a && !cJSON_IsNull(a) && !cJSON_IsString(a))
            return srv_fail_parse(err, "messages", "a tool call's 'function.arguments' must be a string");
        cJSON *v;
        if (cJSON_IsString(a) && a->valuestring[0]) {
            js_error je = {0};
            if (!(v = js_parse(a->valuestring, strlen(a->valuestring), &je)))
                return je.oom ? srv_fail(err, 500, NULL, "out of memory")
                              : srv_fail(err, 400, "messages", "a tool call's 'function.arguments' is not valid JSON: %s",
                                         je.message);
        } else {
            v = cJSON_CreateObject();
        }
        if (a ? replace_member(fn, "arguments", v, err) : !cJSON_AddItemToObject(fn, "arguments", v)) {
            if (!a) cJSON_Delete(v);
            return srv_fail(err, 500, NULL, "out of memory");
        }
    }
    return 0;
}

cJSON *srv_normalize_messages(const cJSON *msgs, int format, srv_error *err) {
    if (!cJSON_IsArray(msgs)) {
        srv_fail_parse(err, "messages", "'messages' must be a list of message objects");
        return NULL;
    }
    cJSON *out = cJSON_CreateArray();
    if (!out) {
        srv_fail(err, 500, NULL, "out of memory");
        return NULL;
    }
    const cJSON *m;
    cJSON_ArrayForEach(m, msgs) {
        const char *role = NULL;
        if (!cJSON_IsObject(m) || srv_opt_string(m, "role", &role, err) <= 0) {
            srv_fail_parse(err, "messages", "each message must be an object with a 'role' string");
            cJSON_Delete(out);
            return NULL;
        }
        cJSON *d = cJSON_Duplicate(m, 1);
        if (!d || !cJSON_AddItemToArray(out, d)) {
            cJSON_Delete(d);
            cJSON_Delete(out);
            srv_fail(err, 500, NULL, "out of memory");
            return NULL;
        }
        if (format_content(d, format, err) || (!strcmp(role, "assistant") && parse_tool_args(d, err))) {
            cJSON_Delete(out);
            return NULL;
        }
    }
    return out;
}

/* ---- content format detection ---- */

static size_t skip_space(const char *s, size_t i, size_t n) {
    while (i < n && isspace((unsigned char)s[i])) i++;
    return i;
}

static size_t skip_ident(const char *s, size_t i, size_t n) {
    while (i < n && (isalnum((unsigned char)s[i]) || s[i] == '_')) i++;
    return i;
}

/* At i: `content` reached as ['content'], ["content"] or .content, then not more of a name. */
static int content_access(const char *s, size_t i, size_t n) {
    static const char *const forms[] = {"['content']", "[\"content\"]", ".content"};
    for (int k = 0; k < 3; k++) {
        size_t l = strlen(forms[k]);
        if (i + l <= n && !memcmp(s + i, forms[k], l) &&
            (i + l == n || !(isalnum((unsigned char)s[i + l]) || s[i + l] == '_')))
            return 1;
    }
    return 0;
}

int srv_content_format_of(const char *s, size_t n) {
    for (size_t i = 0; i + 4 <= n; i++) {
        if (memcmp(s + i, "for", 3) || !isspace((unsigned char)s[i + 3])) continue;
        if (i && (isalnum((unsigned char)s[i - 1]) || s[i - 1] == '_')) continue;
        size_t j = skip_space(s, i + 3, n), k = skip_ident(s, j, n); /* the loop variable */
        if (k == j) continue;
        j = skip_space(s, k, n);
        if (j + 3 > n || memcmp(s + j, "in", 2) || !isspace((unsigned char)s[j + 2])) continue;
        j = skip_space(s, j + 2, n);
        k = skip_ident(s, j, n); /* the message variable */
        if (k > j && content_access(s, k, n)) return SRV_CONTENT_OPENAI;
    }
    return SRV_CONTENT_STRING;
}

/* ---- tools ---- */

static int is_type_name(const cJSON *t) {
    static const char *const names[] = {"object", "array", "string", "number", "integer", "boolean", "null"};
    for (size_t k = 0; cJSON_IsString(t) && k < sizeof names / sizeof *names; k++)
        if (!strcmp(t->valuestring, names[k])) return 1;
    return 0;
}

/* The top of a parameters schema: what no JSON Schema can be. NULL: fine, else what is wrong. */
static const char *schema_problem(const cJSON *p) {
    const cJSON *type = js_field(p, "type"), *props = js_field(p, "properties"), *req = js_field(p, "required"), *x;
    if (type && !is_type_name(type)) {
        if (!cJSON_IsArray(type) || !cJSON_GetArraySize(type)) return "'type' is not a JSON Schema type name";
        cJSON_ArrayForEach(x, type) if (!is_type_name(x)) return "'type' is not a JSON Schema type name";
    }
    if (props) {
        if (!cJSON_IsObject(props)) return "'properties' is not an object";
        cJSON_ArrayForEach(x, props) if (!cJSON_IsObject(x) && !cJSON_IsBool(x))
            return "a member of 'properties' is not a schema (an object or a boolean)";
    }
    if (req) {
        if (!cJSON_IsArray(req)) return "'required' is not a list";
        cJSON_ArrayForEach(x, req) if (!cJSON_IsString(x)) return "'required' is not a list of strings";
    }
    return NULL;
}

int srv_check_tools(const cJSON *tools, srv_error *err) {
    if (!tools) return 0;
    if (!cJSON_IsArray(tools)) return srv_fail_parse(err, "tools", "'tools' must be a list");
    const cJSON *t;
    cJSON_ArrayForEach(t, tools) {
        const cJSON *type = cJSON_IsObject(t) ? js_field(t, "type") : NULL, *f = cJSON_IsObject(t) ? js_field(t, "function") : NULL;
        const char *name = NULL, *desc = NULL;
        int strict = 0;
        if (!cJSON_IsObject(t) || (type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "function"))) ||
            !cJSON_IsObject(f) || srv_opt_string(f, "name", &name, err) <= 0 ||
            srv_opt_string(f, "description", &desc, err) < 0 || srv_opt_bool(f, "strict", &strict, err) ||
            (js_field(f, "parameters") && !cJSON_IsObject(js_field(f, "parameters"))))
            return srv_fail_parse(err, "tools",
                                  "each item of 'tools' must be {\"type\": \"function\", \"function\": {\"name\": a string, "
                                  "\"description\": a string, \"parameters\": an object}}");
        const char *why = schema_problem(js_field(f, "parameters"));
        if (why) return srv_fail(err, 400, "tools", "The parameters of tool '%.200s' are not a JSON Schema: %s", name, why);
        for (const cJSON *u = tools->child; u != t; u = u->next) {
            const cJSON *un = js_field(js_field(u, "function"), "name");
            if (!strcmp(un->valuestring, name))
                return srv_fail(err, 400, "tools", "Tool names must be unique: '%.200s' is given twice", name);
        }
    }
    return 0;
}

int srv_check_documents(const cJSON *docs, srv_error *err) {
    if (!docs) return 0;
    if (!cJSON_IsArray(docs)) return srv_fail_parse(err, "documents", "'documents' must be a list");
    const cJSON *d, *x;
    cJSON_ArrayForEach(d, docs) {
        if (!cJSON_IsObject(d)) return srv_fail_parse(err, "documents", "each document must be an object of strings");
        cJSON_ArrayForEach(x, d) if (!cJSON_IsString(x))
            return srv_fail_parse(err, "documents", "each document must be an object of strings");
    }
    return 0;
}
