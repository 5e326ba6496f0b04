/* harmony_ts: a function tool's JSON-schema parameters as the TypeScript-like type harmony writes into the
 * developer message (openai/harmony src/encoding.rs, json_schema_to_typescript), and serde_json's way of
 * printing a JSON value (for `// default: ...` comments). Every branch follows the Rust function: what it
 * reads with `.get(..)` on something that is not an object counts as absent, a `type` list wins over
 * everything but a top-level `oneOf`, and descriptions are written raw (newlines included). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/err.h"
#include "base/json.h"
#include "base/stack.h"
#include "template/harmony.h"

/* serde_json's Value::get(key): a member of an object, else NULL (null members count: Some(Null)). */
static const cJSON *get(const cJSON *v, const char *k) {
    return cJSON_IsObject(v) ? cJSON_GetObjectItemCaseSensitive(v, k) : NULL;
}

static const char *get_str(const cJSON *v, const char *k) {
    const cJSON *x = get(v, k);
    return cJSON_IsString(x) ? x->valuestring : NULL;
}

static int is_enum(const cJSON *v) {
    const cJSON *e = get(v, "enum");
    return cJSON_IsArray(e) && e->child;
}

static int nullable(const cJSON *v) { return cJSON_IsTrue(get(v, "nullable")); }

/* serde_json's escaping: \" \\ \b \f \n \r \t, other controls as \u00xx, everything else raw. */
static void serde_str(const char *s, sbuf *out) {
    sb_raw(out, "\"", 1);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned c = *p;
        if (c == 0xC0 && p[1] == 0x80) { /* U+0000 as js_parse keeps it */
            sb_str(out, "\\u0000");
            p++;
        } else if (c == '"' || c == '\\') {
            sb_printf(out, "\\%c", c);
        } else if (c < 0x20) {
            const char *e = c == '\b' ? "\\b" : c == '\f' ? "\\f" : c == '\n' ? "\\n" : c == '\r' ? "\\r"
                          : c == '\t' ? "\\t" : NULL;
            if (e) sb_str(out, e);
            else sb_printf(out, "\\u%04x", c);
        } else {
            sb_raw(out, (const char *)p, 1);
        }
    }
    sb_raw(out, "\"", 1);
}

/* An f64 as ryu (serde_json's float writer) formats it: the shortest digits that read back, then
 * "1234.0", "12.34", "0.001234", "1e30" or "1.234e33" by where the decimal point falls. */
static void serde_float(double v, sbuf *out) {
    if (!isfinite(v)) { /* serde_json writes null for these; JSON input cannot give them but 1e999 */
        sb_str(out, "null");
        return;
    }
    char buf[40];
    int prec = 0;
    for (; prec < 17; prec++) {
        snprintf(buf, sizeof buf, "%.*e", prec, v);
        if (strtod(buf, NULL) == v) break;
    }
    /* buf: [-]d[.ddd]e[+-]xx */
    char digits[24];
    int nd = 0, neg = buf[0] == '-';
    const char *p = buf + neg;
    for (; *p && *p != 'e'; p++)
        if (*p != '.') digits[nd++] = *p;
    int e10 = atoi(p + 1);
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    if (nd == 1 && digits[0] == '0') e10 = 0;
    int kk = e10 + 1; /* 10^(kk-1) <= |v| < 10^kk */
    if (neg) sb_raw(out, "-", 1);
    if (nd <= kk && kk <= 16) {
        sb_raw(out, digits, (size_t)nd);
        for (int i = nd; i < kk; i++) sb_raw(out, "0", 1);
        sb_str(out, ".0");
    } else if (0 < kk && kk <= 16) {
        sb_raw(out, digits, (size_t)kk);
        sb_raw(out, ".", 1);
        sb_raw(out, digits + kk, (size_t)(nd - kk));
    } else if (-5 < kk && kk <= 0) {
        sb_str(out, "0.");
        for (int i = kk; i < 0; i++) sb_raw(out, "0", 1);
        sb_raw(out, digits, (size_t)nd);
    } else {
        sb_raw(out, digits, 1);
        if (nd > 1) {
            sb_raw(out, ".", 1);
            sb_raw(out, digits + 1, (size_t)(nd - 1));
        }
        sb_printf(out, "e%d", kk - 1);
    }
}

/* A number as Python hands it to harmony (json.dumps) and serde_json reads it back: an integer literal
 * that fits i64/u64 stays an integer, anything else is an f64. */
static void serde_number(const cJSON *v, sbuf *out) {
    const char *lit = v->valuestring;
    if (lit && !strpbrk(lit, ".eE")) {
        long long i;
        if (!js_int64(v, &i)) {
            sb_printf(out, "%lld", i);
            return;
        }
        char *end;
        errno = 0;
        unsigned long long u = strtoull(lit, &end, 10);
        if (lit[0] != '-' && !*end && u != 0 && errno != ERANGE) {
            sb_printf(out, "%llu", u);
            return;
        }
    }
    serde_float(v->valuedouble, out);
}

void hm_json_serde(const cJSON *v, sbuf *out) {
    const cJSON *x;
    int k = 0;
    if (vc_stack_low()) { /* js_parse bounds nesting at JS_MAX_DEPTH; a small thread may still be short */
        sb_str(out, "null");
        return;
    }
    if (cJSON_IsString(v)) {
        serde_str(v->valuestring, out);
    } else if (cJSON_IsNumber(v)) {
        serde_number(v, out);
    } else if (cJSON_IsBool(v)) {
        sb_str(out, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v)) {
        sb_raw(out, "[", 1);
        cJSON_ArrayForEach(x, v) {
            if (k++) sb_raw(out, ",", 1);
            hm_json_serde(x, out);
        }
        sb_raw(out, "]", 1);
    } else if (cJSON_IsObject(v)) {
        sb_raw(out, "{", 1);
        cJSON_ArrayForEach(x, v) {
            if (k++) sb_raw(out, ",", 1);
            serde_str(x->string, out);
            sb_raw(out, ":", 1);
            hm_json_serde(x, out);
        }
        sb_raw(out, "}", 1);
    } else {
        sb_str(out, "null");
    }
}

/* `default: "x"` for a string default of a non-enum, `default: x` for an enum's, else the JSON value. */
static void default_text(const cJSON *schema, const cJSON *d, sbuf *out) {
    sb_str(out, "default: ");
    if (cJSON_IsString(d) && !is_enum(schema)) {
        sb_raw(out, "\"", 1);
        sb_str(out, d->valuestring);
        sb_raw(out, "\"", 1);
    } else if (cJSON_IsString(d)) {
        sb_str(out, d->valuestring);
    } else {
        hm_json_serde(d, out);
    }
}

typedef struct {
    sbuf *out;
    int failed;
} ts_ctx;

static void ts(ts_ctx *c, const cJSON *schema, const char *indent);

/* One oneOf variant after its " | ": its type, " | null" when nullable, then " // comments" (a variant's
 * description unless skipped, its default). */
static void variant(ts_ctx *c, const cJSON *v, const char *deeper, int skip_desc, const char *not_desc) {
    sbuf t = {0};
    ts_ctx sub = {&t, 0};
    ts(&sub, v, deeper);
    if (sub.failed) c->failed = 1;
    if (nullable(v) && !(t.b && strstr(t.b, "null"))) sb_str(&t, " | null");
    if (t.b) sb_raw(c->out, t.b, t.n);
    if (t.oom) c->out->oom = 1;
    sb_free(&t);
    const char *desc = skip_desc ? NULL : get_str(v, "description");
    if (desc && not_desc && !strcmp(desc, not_desc)) desc = NULL;
    const cJSON *d = get(v, "default");
    if (desc || d) {
        sb_str(c->out, " // ");
        if (desc) sb_str(c->out, desc);
        if (desc && d) sb_raw(c->out, " ", 1);
        if (d) default_text(v, d, c->out);
    }
}

/* A property whose oneOf is a list: comments above, "key?:", then one " | variant" line each. */
static void one_of_property(ts_ctx *c, const cJSON *val, const cJSON *arr, const char *key, int required,
                            const char *indent, const char *deeper) {
    const char *pdesc = get_str(val, "description");
    const char *first_desc = arr->child ? get_str(arr->child, "description") : NULL;
    int above = 0;
    if (pdesc && !(first_desc && !strcmp(pdesc, first_desc))) {
        sb_printf(c->out, "%s// %s\n", indent, pdesc);
        above = 1;
    }
    const cJSON *d = get(val, "default");
    if (d) {
        sb_printf(c->out, "%s// ", indent);
        default_text(val, d, c->out);
        sb_raw(c->out, "\n", 1);
    }
    sb_printf(c->out, "%s%s%s:\n", indent, key, required ? "" : "?");
    int i = 0;
    const cJSON *v;
    cJSON_ArrayForEach(v, arr) {
        sb_printf(c->out, "%s | ", indent);
        variant(c, v, deeper, i == 0 && above, pdesc);
        sb_raw(c->out, "\n", 1);
        i++;
    }
    sb_printf(c->out, "%s,\n", indent);
}

static int in_required(const cJSON *schema, const char *key) {
    const cJSON *req = get(schema, "required"), *r;
    if (!cJSON_IsArray(req)) return 0;
    cJSON_ArrayForEach(r, req) if (cJSON_IsString(r) && !strcmp(r->valuestring, key)) return 1;
    return 0;
}

static void object_type(ts_ctx *c, const cJSON *schema, const char *indent) {
    size_t il = strlen(indent);
    char *deeper = malloc(il + 5), *variant_indent = malloc(il + 4);
    if (!deeper || !variant_indent) {
        free(deeper);
        free(variant_indent);
        c->out->oom = 1;
        return;
    }
    memcpy(deeper, indent, il);
    memcpy(deeper + il, "    ", 5);
    memcpy(variant_indent, indent, il);
    memcpy(variant_indent + il, "   ", 4);
    const char *desc = get_str(schema, "description");
    if (desc) sb_printf(c->out, "%s// %s\n", indent, desc);
    sb_str(c->out, "{\n");
    const cJSON *props = get(schema, "properties"), *val;
    if (cJSON_IsObject(props)) cJSON_ArrayForEach(val, props) {
        if (c->failed || c->out->oom) break;
        const char *key = val->string;
        int req = in_required(schema, key);
        const char *title = get_str(val, "title");
        if (title) sb_printf(c->out, "%s// %s\n%s//\n", indent, title, indent);
        const cJSON *one_of = get(val, "oneOf");
        const char *vdesc = get_str(val, "description");
        if (!one_of && vdesc) sb_printf(c->out, "%s// %s\n", indent, vdesc);
        const cJSON *ex = get(val, "examples"), *e;
        if (cJSON_IsArray(ex) && ex->child) {
            sb_printf(c->out, "%s// Examples:\n", indent);
            cJSON_ArrayForEach(e, ex) if (cJSON_IsString(e)) sb_printf(c->out, "%s// - \"%s\"\n", indent, e->valuestring);
        }
        if (cJSON_IsArray(one_of)) {
            one_of_property(c, val, one_of, key, req, indent, variant_indent);
            continue;
        }
        sb_printf(c->out, "%s%s%s: ", indent, key, req ? "" : "?");
        sbuf t = {0};
        ts_ctx sub = {&t, 0};
        ts(&sub, val, deeper);
        if (sub.failed) c->failed = 1;
        if (nullable(val) && !(t.b && strstr(t.b, "null"))) sb_str(&t, " | null");
        if (t.b) sb_raw(c->out, t.b, t.n);
        if (t.oom) c->out->oom = 1;
        sb_free(&t);
        sb_raw(c->out, ",", 1);
        const cJSON *d = get(val, "default");
        if (!one_of && d) {
            sb_raw(c->out, " // ", 4);
            default_text(val, d, c->out);
        }
        sb_raw(c->out, "\n", 1);
    }
    sb_printf(c->out, "%s}", indent);
    free(deeper);
    free(variant_indent);
}

static void ts(ts_ctx *c, const cJSON *schema, const char *indent) {
    if (c->failed || c->out->oom) return;
    if (vc_stack_low() || c->out->n > HM_MAX_TEXT) {
        c->failed = 1;
        return;
    }
    const cJSON *one_of = get(schema, "oneOf"), *type = get(schema, "type"), *x;
    if (cJSON_IsArray(one_of)) {
        size_t il = strlen(indent);
        char *deeper = malloc(il + 4);
        if (!deeper) {
            c->out->oom = 1;
            return;
        }
        memcpy(deeper, indent, il);
        memcpy(deeper + il, "   ", 4);
        cJSON_ArrayForEach(x, one_of) {
            sb_printf(c->out, "\n%s | ", indent);
            variant(c, x, deeper, 0, NULL);
        }
        free(deeper);
        return;
    }
    if (cJSON_IsArray(type)) {
        int k = 0;
        cJSON_ArrayForEach(x, type) {
            if (!cJSON_IsString(x)) continue;
            if (k++) sb_str(c->out, " | ");
            sb_str(c->out, strcmp(x->valuestring, "integer") ? x->valuestring : "number");
        }
        if (k) return;
    }
    const char *t = cJSON_IsString(type) ? type->valuestring : NULL;
    if (!t) {
        sb_str(c->out, "any");
    } else if (!strcmp(t, "object")) {
        object_type(c, schema, indent);
    } else if (!strcmp(t, "string")) {
        const cJSON *en = get(schema, "enum");
        int k = 0;
        if (cJSON_IsArray(en)) cJSON_ArrayForEach(x, en) {
            if (!cJSON_IsString(x)) continue;
            sb_printf(c->out, "%s\"%s\"", k++ ? " | " : "", x->valuestring);
        }
        if (!k) sb_str(c->out, "string");
    } else if (!strcmp(t, "number") || !strcmp(t, "integer")) {
        sb_str(c->out, "number");
    } else if (!strcmp(t, "boolean")) {
        sb_str(c->out, "boolean");
    } else if (!strcmp(t, "array")) {
        const cJSON *items = get(schema, "items");
        if (items) {
            ts(c, items, indent);
            sb_str(c->out, "[]");
        } else {
            sb_str(c->out, "Array<any>");
        }
    } else {
        sb_str(c->out, "any");
    }
}

int hm_schema_ts(const cJSON *schema, const char *indent, sbuf *out) {
    ts_ctx c = {out, 0};
    ts(&c, schema, indent);
    if (out->oom) return vc_errf(VC_ENOMEM, "out of memory");
    if (c.failed || out->n > HM_MAX_TEXT)
        return vc_errf(VC_EINVAL, "a tool's parameters are nested too deeply or render larger than %zu MiB",
                       HM_MAX_TEXT >> 20);
    return 0;
}
