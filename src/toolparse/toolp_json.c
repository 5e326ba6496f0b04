/* toolp_json: what vLLM's tool parsers get from Python's json module. Arguments reach the client as
 * json.dumps(value, ensure_ascii=False): ", " and ": " separators, keys in the model's order,
 * strings escaped as sb_jstr does (Python's rules), integers exact, floats as repr() (shortest
 * round-trip digits, "1.0", "1e-05", "1e+16"), infinities as Infinity. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "base/json.h"
#include "base/stack.h"
#include "toolparse/internal.h"

/* Python 3.11+ refuses to convert integers of more digits than this to or from text
 * (sys.get_int_max_str_digits()): json.loads and json.dumps raise, so vLLM falls back to content. */
#define PY_INT_MAX_DIGITS 4300

/* ---- repr(float) ---- */

/* digits (no dot, no sign) and exponent of the first digit; *nd digits. From "%.*e" output. */
static void split_e(const char *buf, char *digits, int *nd, int *exp10) {
    int k = 0;
    const char *p = buf;
    if (*p == '-') p++;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[k++] = *p;
    digits[k] = 0;
    *nd = k;
    *exp10 = *p == 'e' ? atoi(p + 1) : 0;
}

/* digits +- 1 in the last place, in place; returns the exponent change (carry into a new digit:
 * +1, a leading digit lost: -1), or -2 when the result would be zero. */
static int bump(char *d, int nd, int up) {
    int i = nd - 1;
    if (up) {
        while (i >= 0 && d[i] == '9') d[i--] = '0';
        if (i < 0) { /* 999 -> 1000: keep nd digits, 100 with exponent + 1 */
            d[0] = '1';
            return 1;
        }
        d[i]++;
        return 0;
    }
    while (i >= 0 && d[i] == '0') d[i--] = '9';
    if (i < 0) return -2;
    d[i]--;
    if (d[0] == '0') { /* 1.00eE -> 9.99e(E-1), the p-digit number just below */
        if (nd == 1) return -2;
        memmove(d, d + 1, (size_t)nd - 1);
        d[nd - 1] = '9';
        return -1;
    }
    return 0;
}

static int round_trips(const char *digits, int nd, int exp10, int neg, double v) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s0.%.*se%d", neg ? "-" : "", nd, digits, exp10 + 1);
    return strtod(buf, NULL) == v;
}

void toolp_pyrepr(sbuf *s, double v) {
    if (isnan(v)) {
        sb_str(s, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_str(s, v < 0 ? "-Infinity" : "Infinity");
        return;
    }
    if (v == 0) {
        sb_str(s, signbit(v) ? "-0.0" : "0.0");
        return;
    }
    int neg = v < 0, nd = 0, e10 = 0;
    char d[40], buf[64];
    /* the shortest digits that read back as v: the correctly rounded p digits, or (where the
     * rounding interval is lopsided, at powers of two) the neighbour above or below them */
    for (int p = 1; p <= 17; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        split_e(buf, d, &nd, &e10);
        if (strtod(buf, NULL) == v) break;
        int found = 0;
        for (int up = 1; up >= 0 && !found; up--) {
            char c[40];
            memcpy(c, d, (size_t)nd + 1);
            int de = bump(c, nd, up);
            if (de == -2) continue;
            if (round_trips(c, nd, e10 + de, neg, v)) {
                memcpy(d, c, (size_t)nd + 1);
                e10 += de;
                found = 1;
            }
        }
        if (found) break;
    }
    while (nd > 1 && d[nd - 1] == '0') nd--;
    d[nd] = 0;
    int decpt = e10 + 1; /* v = 0.d * 10^decpt */
    if (neg) sb_raw(s, "-", 1);
    if (decpt > -4 && decpt <= 16) {
        if (decpt <= 0) {
            sb_raw(s, "0.", 2);
            for (int i = 0; i < -decpt; i++) sb_raw(s, "0", 1);
            sb_raw(s, d, (size_t)nd);
        } else if (decpt >= nd) {
            sb_raw(s, d, (size_t)nd);
            for (int i = nd; i < decpt; i++) sb_raw(s, "0", 1);
            sb_raw(s, ".0", 2);
        } else {
            sb_raw(s, d, (size_t)decpt);
            sb_raw(s, ".", 1);
            sb_raw(s, d + decpt, (size_t)(nd - decpt));
        }
    } else {
        sb_raw(s, d, 1);
        if (nd > 1) {
            sb_raw(s, ".", 1);
            sb_raw(s, d + 1, (size_t)nd - 1);
        }
        int x = decpt - 1;
        sb_printf(s, "e%c%02d", x < 0 ? '-' : '+', x < 0 ? -x : x);
    }
}

/* ---- json.dumps ---- */

static int dump_number(sbuf *s, const cJSON *v) {
    const char *lit = v->valuestring;
    if (!lit) { /* not from js_parse: judged by its double */
        toolp_pyrepr(s, v->valuedouble);
        return 0;
    }
    if (strpbrk(lit, ".eE")) {
        toolp_pyrepr(s, strtod(lit, NULL));
        return 0;
    }
    /* an integer: Python's int, printed exactly ("-0" is 0) */
    const char *dg = lit + (*lit == '-');
    size_t n = strlen(dg);
    if (n > PY_INT_MAX_DIGITS) return -1;
    int zero = strspn(dg, "0") == n;
    if (*lit == '-' && !zero) sb_raw(s, "-", 1);
    sb_raw(s, dg, n);
    return 0;
}

int toolp_pydumps(sbuf *s, const cJSON *v) {
    if (vc_stack_low()) return -1; /* Python would raise RecursionError */
    if (cJSON_IsNull(v)) sb_str(s, "null");
    else if (cJSON_IsTrue(v)) sb_str(s, "true");
    else if (cJSON_IsFalse(v)) sb_str(s, "false");
    else if (cJSON_IsNumber(v)) return dump_number(s, v);
    else if (cJSON_IsString(v)) sb_jstr(s, v->valuestring, strlen(v->valuestring));
    else if (cJSON_IsArray(v) || cJSON_IsObject(v)) {
        int obj = cJSON_IsObject(v);
        sb_raw(s, obj ? "{" : "[", 1);
        for (const cJSON *c = v->child; c; c = c->next) {
            if (c != v->child) sb_raw(s, ", ", 2);
            if (obj) {
                sb_jstr(s, c->string, strlen(c->string));
                sb_raw(s, ": ", 2);
            }
            if (toolp_pydumps(s, c)) return -1;
        }
        sb_raw(s, obj ? "}" : "]", 1);
    } else {
        return -1;
    }
    return 0;
}

size_t toolp_json_extent(const char *t, size_t n, size_t from) {
    size_t depth = 0;
    int in_str = 0, esc = 0;
    for (size_t i = from; i < n; i++) {
        char c = t[i];
        if (in_str) {
            if (esc) esc = 0;
            else if (c == '\\') esc = 1;
            else if (c == '"') in_str = 0;
        } else if (c == '"') {
            in_str = 1;
        } else if (c == '{' || c == '[') {
            depth++;
        } else if (c == '}' || c == ']') {
            if (depth == 0) return (size_t)-1;
            if (--depth == 0) return i + 1;
        }
    }
    return (size_t)-1;
}

int toolp_call_from_json(const cJSON *o, const char *args_key, const char *alt_key, char **name, size_t *name_len,
                      sbuf *args) {
    *name = NULL;
    if (!cJSON_IsObject(o)) return -1;
    /* o["name"]: a KeyError when missing; FunctionCall(name=...) takes only a str */
    const cJSON *nm = cJSON_GetObjectItemCaseSensitive(o, "name");
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, args_key);
    if (!a && alt_key) a = cJSON_GetObjectItemCaseSensitive(o, alt_key);
    if (!cJSON_IsString(nm) || !a) return -1;
    if (toolp_pydumps(args, a)) return -1;
    if (args->oom) return vc_errf(VC_ENOMEM, "out of memory");
    size_t n = strlen(nm->valuestring);
    if (!(*name = toolp_dup(nm->valuestring, n))) return vc_errf(VC_ENOMEM, "out of memory");
    *name_len = js_unmask_nul(*name, n);
    return 0;
}
