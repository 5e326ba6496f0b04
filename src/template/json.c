/* json.c: template inputs (messages, tools, kwargs) from JSON, as Python's json.loads builds them:
 * objects keep key order (a repeated key keeps its first position and its last value), numbers
 * without a fraction or exponent are ints (1 and 1.0 stay distinct), NaN/Infinity are accepted,
 * strings must be valid UTF-8. The cJSON path cannot see how a number was written, so whole
 * numbers become ints there. Inputs are hostile: nesting is bounded and every byte is checked. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "base/json.h"
#include "template/jinja.h"

#define JSON_MAX_NEST 512

typedef struct {
    jrt *r;
    const char *start, *p, *end;
} jparse;

static int perr(jparse *s, const char *what) {
    return jr_fail(s->r, TMPL_ERR_INPUT, "invalid JSON input at byte %zu: %s",
                   (size_t)(s->p - s->start), what);
}

static void skip_ws(jparse *s) {
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\t' || *s->p == '\n' || *s->p == '\r')) s->p++;
}

static int hex4(const char *p, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        v <<= 4;
        if (c >= '0' && c <= '9') v |= (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f') v |= (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F') v |= (uint32_t)(c - 'A' + 10);
        else return -1;
    }
    *out = v;
    return 0;
}

static int parse_string(jparse *s, const jstr **out) {
    s->p++; /* opening quote */
    const char *start = s->p;
    int simple = 1;
    while (s->p < s->end && *s->p != '"') {
        unsigned char c = (unsigned char)*s->p;
        if (c < 0x20) return perr(s, "control character in string");
        if (c == '\\') {
            simple = 0;
            s->p++;
            if (s->p >= s->end) break;
        }
        s->p++;
    }
    if (s->p >= s->end) return perr(s, "unterminated string");
    const char *stop = s->p++;
    if (!ju_valid(start, (size_t)(stop - start))) return perr(s, "string is not valid UTF-8");
    if (simple) {
        *out = js_new(s->r, start, (size_t)(stop - start));
        return *out ? 0 : JE_FAIL;
    }
    jbuf *b = jb_new(s->r, (size_t)(stop - start));
    if (!b) return JE_FAIL;
    for (const char *q = start; q < stop;) {
        if (*q != '\\') {
            const char *run = q;
            while (q < stop && *q != '\\') q++;
            if (jb_put(s->r, b, run, (size_t)(q - run))) return JE_FAIL;
            continue;
        }
        q++;
        char c = *q++, ch;
        switch (c) {
        case '"': ch = '"'; break;
        case '\\': ch = '\\'; break;
        case '/': ch = '/'; break;
        case 'b': ch = '\b'; break;
        case 'f': ch = '\f'; break;
        case 'n': ch = '\n'; break;
        case 'r': ch = '\r'; break;
        case 't': ch = '\t'; break;
        case 'u': {
            uint32_t cp;
            if (stop - q < 4 || hex4(q, &cp)) return perr(s, "bad \\u escape");
            q += 4;
            if (cp >= 0xD800 && cp <= 0xDBFF && stop - q >= 6 && q[0] == '\\' && q[1] == 'u') {
                uint32_t lo;
                if (!hex4(q + 2, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                    q += 6;
                }
            }
            if (cp >= 0xD800 && cp <= 0xDFFF) cp = 0xFFFD; /* lone surrogate: not representable in UTF-8 */
            char enc[4];
            if (jb_put(s->r, b, enc, ju_encode(cp, enc))) return JE_FAIL;
            continue;
        }
        default: return perr(s, "bad escape");
        }
        if (jb_putc(s->r, b, ch)) return JE_FAIL;
    }
    *out = js_new(s->r, b->data, b->used);
    return *out ? 0 : JE_FAIL;
}

static int match_word(jparse *s, const char *w) {
    size_t n = strlen(w);
    if ((size_t)(s->end - s->p) >= n && memcmp(s->p, w, n) == 0) {
        s->p += n;
        return 1;
    }
    return 0;
}

static int parse_number(jparse *s, jv *out) {
    const char *a = s->p;
    if (s->p < s->end && *s->p == '-') s->p++;
    if (match_word(s, "Infinity")) {
        *out = jv_float(*a == '-' ? -INFINITY : INFINITY);
        return 0;
    }
    if (s->p >= s->end || *s->p < '0' || *s->p > '9') return perr(s, "bad number");
    if (*s->p == '0') s->p++;
    else
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    int isf = 0;
    if (s->p < s->end && *s->p == '.') {
        isf = 1;
        s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return perr(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    if (s->p < s->end && (*s->p == 'e' || *s->p == 'E')) {
        isf = 1;
        s->p++;
        if (s->p < s->end && (*s->p == '+' || *s->p == '-')) s->p++;
        if (s->p >= s->end || *s->p < '0' || *s->p > '9') return perr(s, "bad number");
        while (s->p < s->end && *s->p >= '0' && *s->p <= '9') s->p++;
    }
    size_t n = (size_t)(s->p - a);
    char tmp[64], *buf = tmp;
    if (n >= sizeof tmp) {
        buf = jr_alloc(s->r, n + 1);
        if (!buf) return JE_FAIL;
    }
    memcpy(buf, a, n);
    buf[n] = 0;
    if (!isf) {
        /* digits only: exact int64 or an error (Python would keep a big integer) */
        int neg = buf[0] == '-';
        uint64_t v = 0;
        for (const char *q = buf + neg; *q; q++) {
            if (v > (UINT64_MAX - 9) / 10) return perr(s, "integer out of the 64-bit range");
            v = v * 10 + (uint64_t)(*q - '0');
        }
        if ((!neg && v > INT64_MAX) || (neg && v > (uint64_t)INT64_MAX + 1))
            return perr(s, "integer out of the 64-bit range");
        *out = jv_int(neg ? (int64_t)(0 - v) : (int64_t)v);
        return 0;
    }
    *out = jv_float(strtod(buf, NULL));
    return 0;
}

static int parse_value(jparse *s, jv *out, int depth) {
    if (depth > JSON_MAX_NEST) return perr(s, "nested too deeply");
    if (vc_stack_low()) return perr(s, "nested too deeply for this thread's stack");
    if (jr_step(s->r, 1)) return JE_FAIL;
    skip_ws(s);
    if (s->p >= s->end) return perr(s, "unexpected end");
    char c = *s->p;
    if (c == '"') {
        const jstr *str;
        if (parse_string(s, &str)) return JE_FAIL;
        *out = jv_str(str);
        return 0;
    }
    if (c == '{') {
        s->p++;
        jdict *d = jdict_new(s->r, 4);
        if (!d) return JE_FAIL;
        skip_ws(s);
        if (s->p < s->end && *s->p == '}') {
            s->p++;
        } else {
            for (;;) {
                skip_ws(s);
                if (s->p >= s->end || *s->p != '"') return perr(s, "expected a string key");
                const jstr *k;
                jv v;
                if (parse_string(s, &k)) return JE_FAIL;
                skip_ws(s);
                if (s->p >= s->end || *s->p != ':') return perr(s, "expected ':'");
                s->p++;
                if (parse_value(s, &v, depth + 1) || jdict_set(s->r, d, jv_str(k), v)) return JE_FAIL;
                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                    s->p++;
                    continue;
                }
                if (s->p < s->end && *s->p == '}') {
                    s->p++;
                    break;
                }
                return perr(s, "expected ',' or '}'");
            }
        }
        out->t = JT_DICT;
        out->u.d = d;
        return 0;
    }
    if (c == '[') {
        s->p++;
        size_t n = 0, cap = 8;
        jv *items = jr_alloc(s->r, cap * sizeof(jv));
        if (!items) return JE_FAIL;
        skip_ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
        } else {
            for (;;) {
                if (n == cap) {
                    jv *ni = jr_alloc(s->r, cap * 2 * sizeof(jv));
                    if (!ni) return JE_FAIL;
                    memcpy(ni, items, n * sizeof(jv));
                    items = ni;
                    cap *= 2;
                }
                if (parse_value(s, &items[n], depth + 1)) return JE_FAIL;
                n++;
                skip_ws(s);
                if (s->p < s->end && *s->p == ',') {
                    s->p++;
                    continue;
                }
                if (s->p < s->end && *s->p == ']') {
                    s->p++;
                    break;
                }
                return perr(s, "expected ',' or ']'");
            }
        }
        jlist *l = jr_alloc(s->r, sizeof *l);
        if (!l) return JE_FAIL;
        l->kind = JL_LIST;
        l->n = n;
        l->v = items;
        out->t = JT_LIST;
        out->u.l = l;
        return 0;
    }
    if (match_word(s, "true")) return *out = jv_bool(1), 0;
    if (match_word(s, "false")) return *out = jv_bool(0), 0;
    if (match_word(s, "null")) return *out = jv_none(), 0;
    if (match_word(s, "NaN")) return *out = jv_float(NAN), 0;
    return parse_number(s, out);
}

/* A cJSON string (or key) as template text. js_parse keeps U+0000 as the bytes C0 80 so that cJSON's
 * NUL-terminated strings hold it: here it becomes the real character again (template strings carry
 * their length). NULL with the error set on failure. */
static const jstr *cjson_text(jrt *r, const char *z, const char *what) {
    z = z ? z : "";
    size_t n = strlen(z);
    char *copy = NULL;
    if (memmem(z, n, "\xC0\x80", 2)) {
        if (!(copy = malloc(n + 1))) {
            jr_fail(r, TMPL_ERR_NOMEM, "out of memory");
            return NULL;
        }
        memcpy(copy, z, n + 1);
        n = js_unmask_nul(copy, n);
        z = copy;
    }
    const jstr *s = NULL;
    if (!ju_valid(z, n)) jr_fail(r, TMPL_ERR_INPUT, "JSON input %s is not valid UTF-8", what);
    else s = js_new(r, z, n);
    free(copy);
    return s;
}

int jv_from_json_text(jrt *r, const char *p, size_t n, jv *out) {
    jparse s = {r, p, p, p + n};
    if (parse_value(&s, out, 0)) return JE_FAIL;
    skip_ws(&s);
    if (s.p != s.end) return perr(&s, "trailing characters");
    return 0;
}

static int from_cjson(jrt *r, const cJSON *j, jv *out, int depth) {
    if (depth > JSON_MAX_NEST) return jr_fail(r, TMPL_ERR_INPUT, "JSON input nested too deeply");
    if (vc_stack_low()) return jr_fail(r, TMPL_ERR_INPUT, "JSON input nested too deeply for this thread's stack");
    if (jr_step(r, 1)) return JE_FAIL;
    if (cJSON_IsNull(j)) return *out = jv_none(), 0;
    if (cJSON_IsTrue(j)) return *out = jv_bool(1), 0;
    if (cJSON_IsFalse(j)) return *out = jv_bool(0), 0;
    if (cJSON_IsNumber(j)) {
        double d = j->valuedouble;
        if (d == floor(d) && fabs(d) < 9.2e18) *out = jv_int((int64_t)d);
        else *out = jv_float(d);
        return 0;
    }
    if (cJSON_IsString(j)) {
        const jstr *s = cjson_text(r, j->valuestring, "string");
        if (!s) return JE_FAIL;
        *out = jv_str(s);
        return 0;
    }
    if (cJSON_IsArray(j)) {
        size_t n = (size_t)cJSON_GetArraySize(j), i = 0;
        jlist *l = jlist_new(r, JL_LIST, n);
        if (!l) return JE_FAIL;
        for (const cJSON *c = j->child; c && i < n; c = c->next, i++)
            if (from_cjson(r, c, &l->v[i], depth + 1)) return JE_FAIL;
        out->t = JT_LIST;
        out->u.l = l;
        return 0;
    }
    if (cJSON_IsObject(j)) {
        jdict *d = jdict_new(r, 4);
        if (!d) return JE_FAIL;
        for (const cJSON *c = j->child; c; c = c->next) {
            const jstr *ks = cjson_text(r, c->string, "key");
            jv v;
            if (!ks || from_cjson(r, c, &v, depth + 1) || jdict_set(r, d, jv_str(ks), v)) return JE_FAIL;
        }
        out->t = JT_DICT;
        out->u.d = d;
        return 0;
    }
    return jr_fail(r, TMPL_ERR_INPUT, "unsupported JSON value");
}

int jv_from_cjson(jrt *r, const struct cJSON *j, jv *out) { return from_cjson(r, j, out, 0); }
