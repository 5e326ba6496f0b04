/* schema: JSON Schema -> grammar (see schema.h). Each schema node becomes a
 * rule; rules are built bottom-up (a rule's parts exist before its own
 * alternatives are opened, since the builder appends to one alternative at a
 * time); a $ref target gets its rule index first, so recursive schemas close
 * on themselves. Number ranges and string formats go through the regex front
 * end. */
#include "grammar/schema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/sbuf.h"
#include "base/stack.h"

#define MAX_SCHEMA_DEPTH 128

typedef struct {
    const cJSON *node;
    int rule;
} ref_memo;

typedef struct {
    gram_builder *b;
    const cJSON *root;
    const gram_schema_opts *o;
    int max_repeat;
    int ws;                  /* optional whitespace run, -1 without */
    int string, chr, number, integer, any; /* shared rules, -1 until first use */
    ref_memo *refs;
    int n_refs, cap_refs;
    int depth;
} sc;

static int value(sc *c, const cJSON *s, const char *path);


/* ---- small builders ---- */

/* A rule with one alternative: the literal bytes. */
static int lit_rule(sc *c, const char *s, size_t n) {
    int r = gram_rule(c->b, NULL);
    if (r < 0) return r;
    int rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_bytes(c->b, s, n);
    return rc < 0 ? rc : r;
}

static int add_ws(sc *c) { return c->ws >= 0 ? gram_add_rule(c->b, c->ws) : 0; }

static int regex_rule(sc *c, const char *re) {
    int r, rc = gram_regex_rule(c->b, re, strlen(re), c->max_repeat, &r);
    return rc < 0 ? rc : r;
}

/* One whitespace run: a space, or a newline and up to 32 spaces of indentation. */
static int ws_rule(sc *c) {
    int sp = lit_rule(c, " ", 1);
    if (sp < 0) return sp;
    int ind = gram_repeat(c->b, sp, 0, 32);
    int r = ind < 0 ? ind : gram_rule(c->b, "ws");
    if (r < 0) return r;
    int rc = gram_alt(c->b, r);
    if (!rc) rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_byte(c->b, ' ');
    if (!rc) rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_byte(c->b, '\n');
    if (!rc) rc = gram_add_rule(c->b, ind);
    return rc < 0 ? rc : r;
}

/* One JSON string character: unescaped (not '"', '\\' or a control) or an escape. */
static int char_rule(sc *c) {
    if (c->chr >= 0) return c->chr;
    static const uint32_t plain[][2] = {{0x20, 0x21}, {0x23, 0x5B}, {0x5D, 0x10FFFF}};
    int u = gram_utf8_class(c->b, plain, 3, 0);
    int esc = u < 0 ? u : regex_rule(c, "\\\\([\"\\\\/bfnrt]|u[0-9a-fA-F]{4})");
    int r = esc < 0 ? esc : gram_rule(c->b, "char");
    if (r < 0) return r;
    int rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_rule(c->b, u);
    if (!rc) rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_rule(c->b, esc);
    return rc < 0 ? rc : (c->chr = r);
}

/* '"' body '"' where body is a rule (or, with body < 0 as -1 - n, n characters bounds given by lo/hi). */
static int quoted(sc *c, int body) {
    int r = gram_rule(c->b, "string");
    if (r < 0) return r;
    int rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_byte(c->b, '"');
    if (!rc) rc = gram_add_rule(c->b, body);
    if (!rc) rc = gram_add_byte(c->b, '"');
    return rc < 0 ? rc : r;
}

static int string_rule(sc *c, int min, int max) {
    if (min == 0 && max < 0 && c->string >= 0) return c->string;
    int ch = char_rule(c);
    int body = ch < 0 ? ch : gram_repeat(c->b, ch, min, max);
    int r = body < 0 ? body : quoted(c, body);
    if (r >= 0 && min == 0 && max < 0) c->string = r;
    return r;
}

static int number_rule(sc *c) {
    if (c->number < 0) c->number = regex_rule(c, "-?(0|[1-9][0-9]*)(\\.[0-9]+)?([eE][+-]?[0-9]+)?");
    return c->number;
}

/* ---- integer ranges as regular expressions ---- */

static int ndigits(unsigned long long x) {
    int d = 1;
    while (x >= 10) x /= 10, d++;
    return d;
}

static unsigned long long pow10u(int d) {
    unsigned long long p = 1;
    while (d-- > 0) p *= 10;
    return p;
}

/* Numbers a..b of the same digit count (no leading zeros: the first digit of a is not 0 unless a is 0). */
static void same_len(sbuf *o, const char *a, const char *b, int n) {
    int i = 0;
    while (i < n && a[i] == b[i]) i++;
    sb_raw(o, a, (size_t)i);
    if (i == n) return;
    int rest = n - i - 1, a0 = 1, b9 = 1;
    for (int k = i + 1; k < n; k++) a0 &= a[k] == '0', b9 &= b[k] == '9';
    if (a0 && b9) {
        sb_printf(o, "[%c-%c]", a[i], b[i]);
        if (rest) sb_printf(o, "[0-9]{%d}", rest);
        return;
    }
    char hi[24], lo[24];
    sb_str(o, "(?:");
    /* a[i] followed by a's tail .. 99..9 */
    memset(hi, '9', (size_t)rest);
    hi[rest] = 0;
    sb_raw(o, &a[i], 1);
    same_len(o, a + i + 1, hi, rest);
    if (b[i] - a[i] > 1) {
        sb_printf(o, "|[%c-%c]", a[i] + 1, b[i] - 1);
        if (rest) sb_printf(o, "[0-9]{%d}", rest);
    }
    /* b[i] followed by 00..0 .. b's tail */
    memset(lo, '0', (size_t)rest);
    lo[rest] = 0;
    sb_str(o, "|");
    sb_raw(o, &b[i], 1);
    same_len(o, lo, b + i + 1, rest);
    sb_str(o, ")");
}

/* a..b, 0 <= a <= b; b == ULLONG_MAX: unbounded. */
static void pos_range(sbuf *o, unsigned long long a, unsigned long long b) {
    int da = ndigits(a);
    if (b == ~0ULL) {
        char sa[24], s9[24];
        snprintf(sa, sizeof sa, "%llu", a);
        memset(s9, '9', (size_t)da);
        s9[da] = 0;
        sb_str(o, "(?:");
        same_len(o, sa, s9, da);
        sb_printf(o, "|[1-9][0-9]{%d,})", da);
        return;
    }
    int db = ndigits(b);
    sb_str(o, "(?:");
    for (int d = da; d <= db; d++) {
        unsigned long long lo = d == da ? a : pow10u(d - 1), hi = d == db ? b : pow10u(d) - 1;
        char sl[24], sh[24];
        snprintf(sl, sizeof sl, "%llu", lo);
        snprintf(sh, sizeof sh, "%llu", hi);
        if (d > da) sb_str(o, "|");
        same_len(o, sl, sh, d);
    }
    sb_str(o, ")");
}

/* The integers in [lo, hi]; has_lo / has_hi: bounded on that side. */
static int int_range_rule(sc *c, int has_lo, long long lo, int has_hi, long long hi) {
    sbuf o = {0};
    unsigned long long inf = ~0ULL;
    if (!has_lo && !has_hi) return c->integer >= 0 ? c->integer : (c->integer = regex_rule(c, "-?(0|[1-9][0-9]*)"));
    int neg = !has_lo || lo < 0, pos = !has_hi || hi >= 0;
    if (neg) { /* -(1 .. -lo) intersected with <= hi */
        unsigned long long nlo = has_hi && hi < 0 ? (unsigned long long)(-(hi + 1)) + 1 : 1;
        unsigned long long nhi = has_lo ? (unsigned long long)(-(lo + 1)) + 1 : inf;
        sb_str(&o, "-");
        pos_range(&o, nlo, nhi);
    }
    if (pos) {
        if (neg) sb_str(&o, "|");
        pos_range(&o, has_lo && lo > 0 ? (unsigned long long)lo : 0, has_hi ? (unsigned long long)hi : inf);
    }
    char *re = sb_take(&o, NULL);
    if (!re) return vc_errf(VC_ENOMEM, "out of memory");
    int r = regex_rule(c, re);
    free(re);
    return r;
}

/* ---- keywords ---- */

static int get_count(const cJSON *s, const char *k, const char *path, int *v) {
    const cJSON *x = js_field(s, k);
    if (!x) return 0;
    if (!cJSON_IsNumber(x) || x->valuedouble < 0 || x->valuedouble != floor(x->valuedouble) || x->valuedouble > 1e9)
        return vc_errf(VC_EINVAL, "%s: '%s' must be a non-negative integer", path, k);
    *v = (int)x->valuedouble;
    return 1;
}

static const char *const annotations[] = {
    "title", "description", "default", "examples", "$schema", "$id", "$comment", "deprecated", "readOnly",
    "writeOnly", "$defs", "definitions", "contentMediaType", "contentEncoding", "format", "strict", "name", NULL};
static const char *const supported[] = {
    "type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems", "maxItems",
    "enum", "const", "anyOf", "oneOf", "allOf", "$ref", "minLength", "maxLength", "pattern", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", NULL};

static int in_list(const char *k, const char *const *l) {
    for (; *l; l++)
        if (!strcmp(k, *l)) return 1;
    return 0;
}

static int check_keywords(const cJSON *s, const char *path) {
    const cJSON *x;
    cJSON_ArrayForEach(x, s) {
        if (in_list(x->string, annotations) || in_list(x->string, supported)) continue;
        char m[160];
        snprintf(m, sizeof m, "'%.100s' is not supported", x->string);
        return vc_errf(VC_EINVAL, "%s: %s", path, m);
    }
    return 0;
}

/* The JSON text of v, compact (enum and const members). */
static void json_text(sbuf *o, const cJSON *v) {
    if (cJSON_IsString(v)) {
        sb_jstrz(o, v->valuestring);
    } else if (cJSON_IsNumber(v)) {
        if (v->valuestring) sb_str(o, v->valuestring); /* js_parse kept the literal */
        else sb_printf(o, "%.17g", v->valuedouble);
    } else if (cJSON_IsBool(v)) {
        sb_str(o, cJSON_IsTrue(v) ? "true" : "false");
    } else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int obj = cJSON_IsObject(v), i = 0;
        sb_str(o, obj ? "{" : "[");
        const cJSON *e;
        cJSON_ArrayForEach(e, v) {
            if (i++) sb_str(o, ",");
            if (obj) {
                sb_jstrz(o, e->string);
                sb_str(o, ":");
            }
            json_text(o, e);
        }
        sb_str(o, obj ? "}" : "]");
    } else {
        sb_str(o, "null");
    }
}

static int enum_rule(sc *c, const cJSON *list, int is_const) {
    int n = is_const ? 1 : cJSON_GetArraySize(list);
    int *alt = malloc(sizeof *alt * (size_t)(n ? n : 1));
    if (!alt) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = 0, i = 0;
    const cJSON *e = is_const ? list : list->child;
    for (; i < n && e && !rc; i++, e = e->next) {
        sbuf t = {0};
        json_text(&t, e);
        rc = t.oom ? vc_errf(VC_ENOMEM, "out of memory") : (alt[i] = lit_rule(c, t.b ? t.b : "", t.n));
        rc = rc < 0 ? rc : 0;
        sb_free(&t);
    }
    int r = rc < 0 ? rc : gram_rule(c->b, "enum");
    for (int k = 0; r >= 0 && k < i; k++) {
        rc = gram_alt(c->b, r);
        if (!rc) rc = gram_add_rule(c->b, alt[k]);
        if (rc < 0) r = rc;
    }
    free(alt);
    return r;
}


/* ---- arrays ---- */

/* A rule of alternatives (-1 entries skipped); VC_EINVAL-free: at least one must exist. */
static int alts(sc *c, const char *name, const int *r, int n) {
    int out = gram_rule(c->b, name);
    for (int i = 0; out >= 0 && i < n; i++) {
        if (r[i] < -1) return r[i];
        if (r[i] < 0) continue;
        int rc = gram_alt(c->b, out);
        if (!rc) rc = gram_add_rule(c->b, r[i]);
        if (rc < 0) out = rc;
    }
    return out;
}

/* A sequence rule of the parts (-1 entries skipped, ws where a part is -2 - 1 == WS). */
#define WS (-100)
static int seq(sc *c, const char *name, const int *p, int n) {
    for (int i = 0; i < n; i++)
        if (p[i] < 0 && p[i] != WS && p[i] != -1) return p[i];
    int r = gram_rule(c->b, name);
    int rc = r < 0 ? r : gram_alt(c->b, r);
    for (int i = 0; !rc && i < n; i++)
        rc = p[i] == WS ? add_ws(c) : p[i] >= 0 ? gram_add_rule(c->b, p[i]) : 0;
    return rc < 0 ? rc : r;
}

static int sep_rule(sc *c) {
    int comma = lit_rule(c, ",", 1);
    int p[] = {WS, comma, WS};
    return seq(c, "sep", p, 3);
}

static int array_rule(sc *c, const cJSON *s, const char *path) {
    int min = 0, max = -1, rc;
    if ((rc = get_count(s, "minItems", path, &min)) < 0 || (rc = get_count(s, "maxItems", path, &max)) < 0) return rc;
    if (js_field(s, "maxItems") && max < min) return vc_errf(VC_EINVAL, "%s: 'minItems' %d is above 'maxItems' %d", path, min, max);
    const cJSON *pre = js_field(s, "prefixItems"), *items = js_field(s, "items");
    if (pre && !cJSON_IsArray(pre)) return vc_errf(VC_EINVAL, "%s: 'prefixItems' must be a list of schemas", path);
    int k = pre ? cJSON_GetArraySize(pre) : 0, rest_ok = !(cJSON_IsFalse(items));
    if (!rest_ok && (max < 0 || max > k)) max = k;
    if (max >= 0 && min > max) return vc_errf(VC_EINVAL, "%s: 'minItems' %d cannot be met", path, min);
    int *el = calloc((size_t)k + 1, sizeof *el);
    if (!el) return vc_errf(VC_ENOMEM, "out of memory");
    char sub[512];
    int i = 0, r = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, pre) {
        snprintf(sub, sizeof sub, "%s.prefixItems[%d]", path, i);
        if ((el[i++] = value(c, e, sub)) < 0) {
            r = el[i - 1];
            goto out;
        }
    }
    snprintf(sub, sizeof sub, "%s.items", path);
    int rest = rest_ok ? value(c, items && !cJSON_IsTrue(items) ? items : NULL, sub) : -1;
    int sep = rest < -1 ? rest : sep_rule(c);
    if ((r = sep) < 0) goto out;
    /* tail(i): what follows item i-1; tail(k) repeats the rest items */
    int tail = -1;
    if (rest >= 0) {
        int p[] = {sep, rest};
        int one = seq(c, "item", p, 2);
        int used = k > 0 ? k : 1; /* items before the repeated ones: the prefix, or the first element */
        int lo = min > used ? min - used : 0, hi = max < 0 ? -1 : max - used;
        tail = one < 0 ? one : gram_repeat(c->b, one, lo, hi);
    } else {
        tail = lit_rule(c, "", 0);
    }
    for (int j = k - 1; tail >= 0 && j >= 1; j--) {
        int p[] = {sep, el[j], tail};
        int take = seq(c, "items", p, 3), skip = -1;
        if (j >= min) skip = lit_rule(c, "", 0); /* the array may end before item j */
        int a[] = {take, skip};
        tail = take < 0 ? take : alts(c, "items", a, 2);
    }
    if ((r = tail) < 0) goto out;
    int first = k > 0 ? el[0] : rest, body = -1;
    if (first >= 0 && (max < 0 || max > 0)) {
        int p[] = {first, tail};
        if ((body = seq(c, "elements", p, 2)) < 0) {
            r = body;
            goto out;
        }
    }
    int open = lit_rule(c, "[", 1), close = open < 0 ? open : lit_rule(c, "]", 1);
    int p[] = {open, WS, body, WS, close}, empty[] = {open, close};
    int full = body >= 0 ? seq(c, "array", p, 5) : -1, none = min == 0 ? seq(c, "array", empty, 2) : -1;
    int a[] = {full, none};
    r = full < -1 ? full : none < -1 ? none : alts(c, "array", a, 2);
out:
    free(el);
    return r;
}

/* ---- objects ---- */

/* "key" ws ":" ws value */
static int member(sc *c, int key, int val) {
    int colon = lit_rule(c, ":", 1);
    int p[] = {key, WS, colon, WS, val};
    return seq(c, "member", p, 5);
}

static int key_rule(sc *c, const char *k) {
    sbuf t = {0};
    sb_jstrz(&t, k);
    int r = t.oom ? vc_errf(VC_ENOMEM, "out of memory") : lit_rule(c, t.b, t.n);
    sb_free(&t);
    return r;
}

static int is_required(const cJSON *req, const char *k) {
    const cJSON *e;
    cJSON_ArrayForEach(e, req) if (cJSON_IsString(e) && !strcmp(e->valuestring, k)) return 1;
    return 0;
}

/* The members in order (each optional or not), then extra members (extra >= 0: a member rule for them).
 * S(i): members from i on, nothing written yet; C(i): the same after a member (each starts with sep).
 * Only the non-empty forms are built for S, so "{}" stays the one way to write an empty object. */
static int members_rule(sc *c, const int *m, const int *opt, int n, int extra, int sep, int *can_empty) {
    int S = -1, C = -1, empty = lit_rule(c, "", 0);
    if (empty < 0) return empty;
    if (extra >= 0) {
        int p[] = {sep, extra};
        int more = seq(c, "extra", p, 2);
        int star = more < 0 ? more : gram_repeat(c->b, more, 0, -1);
        int q[] = {extra, star};
        S = star < 0 ? star : seq(c, "extras", q, 2);
        C = star;
    } else {
        C = empty;
    }
    int all_opt = 1;
    for (int i = n - 1; i >= 0 && S >= -1 && C >= 0; i--) {
        int ps[] = {m[i], C}, pc[] = {sep, m[i], C};
        int s_take = seq(c, "props", ps, 2), c_take = s_take < 0 ? s_take : seq(c, "props", pc, 3);
        if (c_take < 0) return c_take;
        int sa[] = {s_take, opt[i] ? S : -1}, ca[] = {c_take, opt[i] ? C : -1};
        S = alts(c, "props", sa, 2);
        C = S < 0 ? S : alts(c, "props", ca, 2);
        all_opt &= opt[i];
    }
    *can_empty = all_opt;
    return S < -1 ? S : C < 0 ? C : S;
}

static int object_rule(sc *c, const cJSON *s, const char *path) {
    const cJSON *props = js_field(s, "properties"), *req = js_field(s, "required"), *add = js_field(s, "additionalProperties");
    if (props && !cJSON_IsObject(props)) return vc_errf(VC_EINVAL, "%s: 'properties' must be an object", path);
    if (req && !cJSON_IsArray(req)) return vc_errf(VC_EINVAL, "%s: 'required' must be a list of names", path);
    const cJSON *e;
    cJSON_ArrayForEach(e, req) if (!cJSON_IsString(e)) return vc_errf(VC_EINVAL, "%s: 'required' must be a list of names", path);
    int n = props ? cJSON_GetArraySize(props) : 0, n_req = req ? cJSON_GetArraySize(req) : 0;
    int *m = calloc((size_t)(n + n_req) + 1, sizeof *m), *opt = calloc((size_t)(n + n_req) + 1, sizeof *opt);
    int r = m && opt ? 0 : vc_errf(VC_ENOMEM, "out of memory"), k = 0;
    char sub[512];
    cJSON_ArrayForEach(e, props) {
        if (r < 0) break;
        snprintf(sub, sizeof sub, "%s.properties.%.200s", path, e->string);
        int key = key_rule(c, e->string), val = key < 0 ? key : value(c, e, sub);
        r = val < 0 ? val : (m[k] = member(c, key, val));
        opt[k++] = !is_required(req, e->string);
    }
    cJSON_ArrayForEach(e, req) { /* required but not described: any value */
        if (r < 0 || (props && cJSON_GetObjectItemCaseSensitive(props, e->valuestring))) continue;
        int key = key_rule(c, e->valuestring), val = key < 0 ? key : value(c, NULL, path);
        r = val < 0 ? val : (m[k] = member(c, key, val));
        opt[k++] = 0;
    }
    int extra = -1;
    if (r >= 0 && (add ? !cJSON_IsFalse(add) : !c->o->strict)) {
        snprintf(sub, sizeof sub, "%s.additionalProperties", path);
        int key = string_rule(c, 0, -1), val = key < 0 ? key : value(c, add && !cJSON_IsTrue(add) ? add : NULL, sub);
        r = extra = val < 0 ? val : member(c, key, val);
    }
    int sep = r < 0 ? r : sep_rule(c), can_empty = 1;
    int body = sep < 0 ? sep : k || extra >= 0 ? members_rule(c, m, opt, k, extra, sep, &can_empty) : -1;
    free(m);
    free(opt);
    if (body < -1) return body;
    int open = lit_rule(c, "{", 1), close = open < 0 ? open : lit_rule(c, "}", 1);
    int p[] = {open, WS, body, WS, close}, q[] = {open, close};
    int full = body >= 0 ? seq(c, "object", p, 5) : -1, none = can_empty ? seq(c, "object", q, 2) : -1;
    int a[] = {full, none};
    return full < -1 ? full : none < -1 ? none : alts(c, "object", a, 2);
}

/* ---- strings, numbers ---- */

static const struct {
    const char *name, *re;
} formats[] = {
    {"date", "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"},
    {"time", "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"},
    {"date-time", "[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
                  "(\\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"},
    {"uuid", "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"},
    {"email", "[a-zA-Z0-9._%+-]{1,64}@[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(\\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}"
              "[a-zA-Z0-9])?){1,8}"},
    {"ipv4", "((25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"},
};

static int string_type(sc *c, const cJSON *s, const char *path) {
    int min = 0, max = -1, rc;
    if ((rc = get_count(s, "minLength", path, &min)) < 0 || (rc = get_count(s, "maxLength", path, &max)) < 0) return rc;
    if (js_field(s, "maxLength") && max < min)
        return vc_errf(VC_EINVAL, "%s: 'minLength' %d is above 'maxLength' %d", path, min, max);
    const cJSON *pat = js_field(s, "pattern"), *fmt = js_field(s, "format");
    const char *re = NULL;
    if (pat) {
        if (!cJSON_IsString(pat)) return vc_errf(VC_EINVAL, "%s: 'pattern' must be a string", path);
        re = pat->valuestring;
    } else if (cJSON_IsString(fmt)) {
        for (size_t i = 0; i < sizeof formats / sizeof *formats; i++)
            if (!strcmp(fmt->valuestring, formats[i].name)) re = formats[i].re;
    }
    if (!re) return string_rule(c, min, max);
    if (min || max >= 0)
        return vc_errf(VC_EINVAL, "%s: 'minLength'/'maxLength' together with 'pattern' or 'format' is not supported", path);
    int body;
    if ((rc = gram_regex_rule(c->b, re, strlen(re), c->max_repeat, &body)) < 0)
        return vc_err_prefix(rc, "%s: 'pattern'", path);
    return quoted(c, body);
}

/* A bound as an integer: minimum rounds up, maximum down; exclusive ones step past. */
static int int_bound(const cJSON *s, const char *k, int up, int excl, long long *v, const char *path) {
    const cJSON *x = js_field(s, k);
    if (!x) return 0;
    if (!cJSON_IsNumber(x)) return vc_errf(VC_EINVAL, "%s: '%s' must be a number", path, k);
    double d = up ? ceil(x->valuedouble) : floor(x->valuedouble);
    if (excl && d == x->valuedouble) d += up ? 1 : -1;
    if (!(d > -9.2e18 && d < 9.2e18)) return vc_errf(VC_EINVAL, "%s: '%s' is out of range", path, k);
    *v = (long long)d;
    return 1;
}

static int integer_type(sc *c, const cJSON *s, const char *path) {
    long long lo = 0, hi = 0, v = 0;
    int has_lo = 0, has_hi = 0, rc;
    const char *const keys[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    for (int i = 0; i < 4; i++) {
        if ((rc = int_bound(s, keys[i], i < 2, i & 1, &v, path)) < 0) return rc;
        if (rc && i < 2 && (!has_lo || v > lo)) lo = v, has_lo = 1;
        if (rc && i >= 2 && (!has_hi || v < hi)) hi = v, has_hi = 1;
    }
    if (has_lo && has_hi && lo > hi) return vc_errf(VC_EINVAL, "%s: no integer lies between the minimum and the maximum", path);
    return int_range_rule(c, has_lo, lo, has_hi, hi);
}

static int number_type(sc *c, const cJSON *s, const char *path) {
    static const char *const keys[] = {"minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"};
    for (int i = 0; i < 4; i++)
        if (js_field(s, keys[i]))
            return vc_errf(VC_EINVAL, "%s: '%s' on a number is not supported (on an integer it is)", path, keys[i]);
    return number_rule(c);
}

/* ---- any value ---- */

static int any_rule(sc *c) {
    if (c->any >= 0) return c->any;
    int r = c->any = gram_rule(c->b, "any");
    if (r < 0) return r;
    int str = string_rule(c, 0, -1), num = str < 0 ? str : number_rule(c), sep = num < 0 ? num : sep_rule(c);
    if (sep < 0) return sep;
    /* arrays and objects of any values: the rule refers to itself */
    int more = gram_rule(c->b, "any-items");
    int m = more < 0 ? more : member(c, str, r);
    int mores = m < 0 ? m : gram_rule(c->b, "any-members");
    if (mores < 0) return mores;
    int rc = gram_alt(c->b, more);
    if (!rc) rc = gram_add_rule(c->b, r);
    if (!rc) rc = gram_alt(c->b, more);
    if (!rc) rc = gram_add_rule(c->b, more);
    if (!rc) rc = gram_add_rule(c->b, sep);
    if (!rc) rc = gram_add_rule(c->b, r);
    if (!rc) rc = gram_alt(c->b, mores);
    if (!rc) rc = gram_add_rule(c->b, m);
    if (!rc) rc = gram_alt(c->b, mores);
    if (!rc) rc = gram_add_rule(c->b, mores);
    if (!rc) rc = gram_add_rule(c->b, sep);
    if (!rc) rc = gram_add_rule(c->b, m);
    static const char *const lits[] = {"true", "false", "null", "[]", "{}"};
    for (int i = 0; !rc && i < 5; i++) {
        rc = gram_alt(c->b, r);
        if (!rc) rc = gram_add_bytes(c->b, lits[i], strlen(lits[i]));
    }
    int parts[][2] = {{str, -1}, {num, -1}};
    for (int i = 0; !rc && i < 2; i++) {
        rc = gram_alt(c->b, r);
        if (!rc) rc = gram_add_rule(c->b, parts[i][0]);
    }
    const char open[] = "[{", close[] = "]}";
    int body[] = {more, mores};
    for (int i = 0; !rc && i < 2; i++) {
        rc = gram_alt(c->b, r);
        if (!rc) rc = gram_add_byte(c->b, (unsigned char)open[i]);
        if (!rc) rc = add_ws(c);
        if (!rc) rc = gram_add_rule(c->b, body[i]);
        if (!rc) rc = add_ws(c);
        if (!rc) rc = gram_add_byte(c->b, (unsigned char)close[i]);
    }
    return rc < 0 ? rc : r;
}

/* ---- references, combinators, types ---- */

/* "#", "#/$defs/x", "#/definitions/x", or any JSON pointer into the root document. */
static const cJSON *resolve(const sc *c, const char *ref) {
    if (ref[0] != '#') return NULL;
    const cJSON *n = c->root;
    const char *p = ref + 1;
    while (n && *p == '/') {
        char key[256];
        size_t k = 0;
        for (p++; *p && *p != '/' && k + 1 < sizeof key; p++) {
            if (p[0] == '~' && (p[1] == '0' || p[1] == '1')) key[k++] = p[1] == '0' ? '~' : '/', p++;
            else key[k++] = *p;
        }
        key[k] = 0;
        n = cJSON_IsArray(n) ? cJSON_GetArrayItem(n, atoi(key)) : cJSON_GetObjectItemCaseSensitive(n, key);
    }
    return *p ? NULL : n;
}

static int ref_rule(sc *c, const char *ref, const char *path) {
    const cJSON *t = resolve(c, ref);
    if (!t) return vc_errf(VC_EINVAL, "%s: '$ref' \"%.200s\" does not point into this schema", path, ref);
    for (int i = 0; i < c->n_refs; i++)
        if (c->refs[i].node == t) return c->refs[i].rule;
    if (c->n_refs == c->cap_refs) {
        int nc = c->cap_refs ? 2 * c->cap_refs : 16;
        ref_memo *nr = realloc(c->refs, sizeof *nr * (size_t)nc);
        if (!nr) return vc_errf(VC_ENOMEM, "out of memory");
        c->refs = nr, c->cap_refs = nc;
    }
    int r = gram_rule(c->b, ref);
    if (r < 0) return r;
    c->refs[c->n_refs++] = (ref_memo){t, r}; /* before building t: a recursive $ref finds it */
    char sub[512];
    snprintf(sub, sizeof sub, "%.200s", ref);
    int v = value(c, t, sub);
    if (v < 0) return v;
    int rc = gram_alt(c->b, r);
    if (!rc) rc = gram_add_rule(c->b, v);
    return rc < 0 ? rc : r;
}

/* s without key k, with the members of add on top (later wins; properties and required merged). */
static cJSON *merged(const cJSON *s, const char *k, const cJSON *add) {
    cJSON *m = cJSON_Duplicate(s, 1);
    if (!m) return NULL;
    cJSON_DeleteItemFromObjectCaseSensitive(m, k);
    const cJSON *e;
    cJSON_ArrayForEach(e, add) {
        cJSON *have = cJSON_GetObjectItemCaseSensitive(m, e->string);
        if (have && cJSON_IsObject(have) && cJSON_IsObject(e) && !strcmp(e->string, "properties")) {
            const cJSON *p;
            cJSON_ArrayForEach(p, e) {
                cJSON *d = cJSON_Duplicate(p, 1);
                if (!d) goto oom;
                cJSON_DeleteItemFromObjectCaseSensitive(have, p->string);
                cJSON_AddItemToObject(have, p->string, d);
            }
        } else if (have && cJSON_IsArray(have) && cJSON_IsArray(e) && !strcmp(e->string, "required")) {
            const cJSON *p;
            cJSON_ArrayForEach(p, e) {
                cJSON *d = cJSON_Duplicate(p, 1);
                if (!d) goto oom;
                cJSON_AddItemToArray(have, d);
            }
        } else {
            cJSON *d = cJSON_Duplicate(e, 1);
            if (!d) goto oom;
            cJSON_DeleteItemFromObjectCaseSensitive(m, e->string);
            cJSON_AddItemToObject(m, e->string, d);
        }
    }
    return m;
oom:
    cJSON_Delete(m);
    return NULL;
}

static int has_constraints(const cJSON *s, const char *except) {
    const cJSON *x;
    cJSON_ArrayForEach(x, s) if (strcmp(x->string, except) && !in_list(x->string, annotations)) return 1;
    return 0;
}

static int any_of(sc *c, const cJSON *s, const char *k, const char *path) {
    const cJSON *list = js_field(s, k);
    if (!cJSON_IsArray(list) || !cJSON_GetArraySize(list))
        return vc_errf(VC_EINVAL, "%s: '%s' must be a non-empty list of schemas", path, k);
    int n = cJSON_GetArraySize(list), i = 0, r = 0;
    int *alt = malloc(sizeof *alt * (size_t)n);
    if (!alt) return vc_errf(VC_ENOMEM, "out of memory");
    int mix = has_constraints(s, k);
    const cJSON *e;
    char sub[512];
    cJSON_ArrayForEach(e, list) {
        snprintf(sub, sizeof sub, "%s.%s[%d]", path, k, i);
        cJSON *m = mix && cJSON_IsObject(e) ? merged(s, k, e) : NULL;
        if (mix && cJSON_IsObject(e) && !m) r = vc_errf(VC_ENOMEM, "out of memory");
        else r = alt[i++] = value(c, m ? m : e, sub);
        cJSON_Delete(m);
        if (r < 0) break;
    }
    if (r >= 0) r = alts(c, k, alt, i);
    free(alt);
    return r;
}

static int all_of(sc *c, const cJSON *s, const char *path) {
    const cJSON *list = js_field(s, "allOf"), *e;
    if (!cJSON_IsArray(list)) return vc_errf(VC_EINVAL, "%s: 'allOf' must be a list of schemas", path);
    cJSON *m = cJSON_Duplicate(s, 1);
    if (m) cJSON_DeleteItemFromObjectCaseSensitive(m, "allOf");
    cJSON_ArrayForEach(e, list) {
        if (!m) break;
        if (!cJSON_IsObject(e)) {
            cJSON_Delete(m);
            return vc_errf(VC_EINVAL, "%s: 'allOf' members must be schema objects", path);
        }
        const cJSON *ref = js_field(e, "$ref"); /* a referenced part is merged as what it points to */
        const cJSON *part = cJSON_IsString(ref) ? resolve(c, ref->valuestring) : e;
        if (!part) {
            cJSON_Delete(m);
            return vc_errf(VC_EINVAL, "%s: '$ref' in 'allOf' does not point into this schema", path);
        }
        cJSON *next = merged(m, "allOf", part);
        cJSON_Delete(m);
        m = next;
    }
    if (!m) return vc_errf(VC_ENOMEM, "out of memory");
    int r = value(c, m, path);
    cJSON_Delete(m);
    return r;
}

static int type_rule(sc *c, const cJSON *s, const char *t, const char *path) {
    if (!strcmp(t, "string")) return string_type(c, s, path);
    if (!strcmp(t, "integer")) return integer_type(c, s, path);
    if (!strcmp(t, "number")) return number_type(c, s, path);
    if (!strcmp(t, "boolean")) {
        int a[] = {lit_rule(c, "true", 4), lit_rule(c, "false", 5)};
        return alts(c, "boolean", a, 2);
    }
    if (!strcmp(t, "null")) return lit_rule(c, "null", 4);
    if (!strcmp(t, "array")) return array_rule(c, s, path);
    if (!strcmp(t, "object")) return object_rule(c, s, path);
    return vc_errf(VC_EINVAL, "%s: unknown type '%.100s'", path, t);
}

/* No type: what the keywords imply, else any value. */
static const char *implied_type(const cJSON *s) {
    if (js_field(s, "properties") || js_field(s, "required") || js_field(s, "additionalProperties")) return "object";
    if (js_field(s, "items") || js_field(s, "prefixItems") || js_field(s, "minItems") || js_field(s, "maxItems")) return "array";
    if (js_field(s, "minLength") || js_field(s, "maxLength") || js_field(s, "pattern")) return "string";
    if (js_field(s, "minimum") || js_field(s, "maximum") || js_field(s, "exclusiveMinimum") || js_field(s, "exclusiveMaximum")) return "number";
    return NULL;
}

static int value_at(sc *c, const cJSON *s, const char *path) {
    if (!s || cJSON_IsTrue(s)) return any_rule(c);
    if (cJSON_IsFalse(s)) return vc_errf(VC_EINVAL, "%s: the schema false matches no value", path);
    if (!cJSON_IsObject(s)) return vc_errf(VC_EINVAL, "%s: a schema must be an object or a boolean", path);
    int rc = check_keywords(s, path);
    if (rc) return rc;
    const cJSON *ref = js_field(s, "$ref"), *type = js_field(s, "type");
    if (ref) {
        if (!cJSON_IsString(ref)) return vc_errf(VC_EINVAL, "%s: '$ref' must be a string", path);
        if (has_constraints(s, "$ref")) return vc_errf(VC_EINVAL, "%s: keywords beside '$ref' are not supported", path);
        return ref_rule(c, ref->valuestring, path);
    }
    if (js_field(s, "allOf")) return all_of(c, s, path);
    if (js_field(s, "anyOf")) return any_of(c, s, "anyOf", path);
    if (js_field(s, "oneOf")) return any_of(c, s, "oneOf", path);
    if (js_field(s, "const")) return enum_rule(c, js_field(s, "const"), 1);
    if (js_field(s, "enum")) {
        const cJSON *e = js_field(s, "enum");
        if (!cJSON_IsArray(e) || !cJSON_GetArraySize(e)) return vc_errf(VC_EINVAL, "%s: 'enum' must be a non-empty list", path);
        return enum_rule(c, e, 0);
    }
    if (!type) {
        const char *t = implied_type(s);
        return t ? type_rule(c, s, t, path) : any_rule(c);
    }
    if (cJSON_IsString(type)) return type_rule(c, s, type->valuestring, path);
    if (!cJSON_IsArray(type) || !cJSON_GetArraySize(type))
        return vc_errf(VC_EINVAL, "%s: 'type' must be a type name or a non-empty list of them", path);
    int n = cJSON_GetArraySize(type), i = 0, r = 0;
    int *alt = malloc(sizeof *alt * (size_t)n);
    if (!alt) return vc_errf(VC_ENOMEM, "out of memory");
    const cJSON *t;
    cJSON_ArrayForEach(t, type) {
        if (!cJSON_IsString(t)) {
            r = vc_errf(VC_EINVAL, "%s: 'type' must be a type name or a list of them", path);
            break;
        }
        if ((r = alt[i++] = type_rule(c, s, t->valuestring, path)) < 0) break;
    }
    if (r >= 0) r = alts(c, "types", alt, i);
    free(alt);
    return r;
}

static int value(sc *c, const cJSON *s, const char *path) {
    if (c->depth >= MAX_SCHEMA_DEPTH || vc_stack_low())
        return vc_errf(VC_EINVAL, "%s: the schema is nested too deeply", path);
    c->depth++;
    int r = value_at(c, s, path);
    c->depth--;
    return r;
}

int gram_from_json_schema(const cJSON *schema, const gram_schema_opts *o, gram_grammar **out) {
    static const gram_schema_opts defaults = {.any_whitespace = 1};
    if (!o) o = &defaults;
    *out = NULL;
    sc c = {.root = schema, .o = o, .max_repeat = o->lim.max_repeat ? o->lim.max_repeat : 1000, .ws = -1,
            .string = -1, .chr = -1, .number = -1, .integer = -1, .any = -1};
    int rc = gram_builder_new(o->lim.max_elems, &c.b);
    if (rc) return rc;
    if (o->ws_pattern) {
        rc = gram_regex_rule(c.b, o->ws_pattern, strlen(o->ws_pattern), c.max_repeat, &c.ws);
        if (rc) vc_err_prefix(rc, "whitespace_pattern");
    } else if (o->any_whitespace) {
        rc = c.ws = ws_rule(&c);
    }
    int root = rc < 0 ? rc : value(&c, schema, "schema");
    if (root >= 0) {
        /* the whole output: the value, with an optional whitespace run around it */
        int r = gram_rule(c.b, "root");
        rc = r < 0 ? r : gram_alt(c.b, r);
        if (!rc) rc = add_ws(&c);
        if (!rc) rc = gram_add_rule(c.b, root);
        if (!rc) rc = gram_build(c.b, r, out);
    } else {
        rc = root;
    }
    gram_builder_free(c.b);
    free(c.refs);
    return rc;
}
