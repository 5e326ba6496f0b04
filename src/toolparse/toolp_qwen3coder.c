/* toolp_qwen3coder: the "qwen3_coder" tool parser (Qwen3-Coder), and "qwen3_xml", for the format
 *   text<tool_call>\n<function=NAME>\n<parameter=KEY>\nVALUE\n</parameter>\n...</function>\n</tool_call>
 *
 * Read from vLLM's vllm/entrypoints/openai/tool_parsers/qwen3coder_tool_parser.py (extract_tool_calls,
 * the non-streaming result, which is what toolp_parse gives):
 *   - calls only when "<function=" is in the text;
 *   - blocks: <tool_call>(.*?)</tool_call>|<tool_call>(.*?)$ (re.DOTALL; no block: the whole text),
 *     in each block functions: <function=(.*?)</function>|<function=(.*)$, in each function the
 *     name up to its first '>' and, after it, parameters:
 *     <parameter=(.*?)(?:</parameter>|(?=<parameter=)|(?=</function>)|$), each KEY up to its first '>'
 *     and VALUE the rest, less one leading and one trailing "\n". ($ matches at the end and before a
 *     final "\n"; a lazy group ends at the first place one of them matches.) A repeated KEY keeps its
 *     first place and takes the last value (a Python dict);
 *   - each VALUE converted by the type of KEY in the request's tools (function.parameters.properties,
 *     or the parameters object itself when it has no "properties"): "null" in any case is None
 *     whatever the type; a KEY that is not there stays a string; then by str(type).strip().lower():
 *     string, str, text, varchar, char, enum: the string; int*, uint*, long*, short*, unsigned*:
 *     int(VALUE), else the string; num*, float*: float(VALUE), an int when integral, the string when
 *     it fails or is inf or nan (int() of them raises); boolean, bool, binary: VALUE.lower() == "true";
 *     object, array, arr, dict*, list*: json.loads, failing that ast.literal_eval, failing that the
 *     string; any other type (and a type that is not a string): ast.literal_eval, else the string;
 *   - arguments json.dumps(dict, ensure_ascii=False); content the text before the first "<tool_call>"
 *     (or "<function=" when there is none), None when empty;
 *   - any exception (a function or parameter without '>', json.dumps refusing a set or bytes, a
 *     "properties" that is not an object) makes the whole text content, without calls.
 * Python's int() and float() are read as CPython does for ASCII text: Unicode whitespace around,
 * a sign, '_' between digits, 4300 digits at most for an int; float's exponent, inf, infinity, nan.
 * Not covered: non-ASCII digits (int("٣") is 3 in Python, a string here); json.loads' NaN and
 * Infinity and nesting between 513 and ~1000 levels (js_parse refuses them; literal_eval then reads
 * the text); the literal_eval corner cases that toolp_pyeval.c lists.
 *
 * Newer vLLM (vllm/tool_parsers/qwen3coder_tool_parser.py) rewrote the parser (structural scanning
 * of </parameter> and </function>, "null" kept for string types, anyOf, a second literal_eval of
 * container strings); this file follows the older one, whose regexes the format's description
 * gives. vLLM's qwen3_xml (qwen3xml_tool_parser.py) reads the same format with an expat-based
 * streaming parser whose non-streaming result is its streamed deltas merged: values of unknown types
 * stay strings (no literal_eval), object and array values are not parsed either, and text between
 * calls can reach the content. Here "qwen3_xml" is this parser: one non-streaming result, the
 * qwen3_coder one, for both names.
 *
 * Streaming: the text before the first "<tool_call>" or "<function=" is content in every outcome,
 * so it streams as it comes (a possible prefix of either marker and an incomplete UTF-8 character
 * held back); the calls, which one malformed call anywhere turns into content, come at
 * toolp_stream_finish, as hermes' do. */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/err.h"
#include "base/json.h"
#include "toolparse/internal.h"

#define TC_START "<tool_call>"
#define TC_END "</tool_call>"
#define FN_START "<function="
#define FN_END "</function>"
#define PAR_START "<parameter="
#define PAR_END "</parameter>"
#define NONE ((size_t)-1)
#define PY_INT_MAX_DIGITS 4300 /* sys.get_int_max_str_digits() */

/* Where a lazy (.*?)$ that starts at `from` ends in t[0, n): before a final "\n", else at n. */
static size_t dollar(const char *t, size_t n, size_t from) { return n > from && t[n - 1] == '\n' ? n - 1 : n; }

static size_t min_pos(size_t a, size_t b) { return a < b ? a : b; }

/* A copy with each NUL byte as C0 80, as cJSON strings of js_parse trees keep U+0000. */
static char *masked(const char *p, size_t n) {
    size_t z = 0;
    for (size_t i = 0; i < n; i++) z += p[i] == 0;
    char *d = malloc(n + z + 1);
    if (!d) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (p[i]) d[k++] = p[i];
        else d[k++] = (char)0xC0, d[k++] = (char)0x80;
    }
    d[k] = 0;
    return d;
}

static cJSON *py_str(const char *p, size_t n) {
    char *m = masked(p, n);
    cJSON *v = m ? cJSON_CreateString(m) : NULL;
    free(m);
    return v;
}

/* ---- the schema ---- */

/* t[*a, *b) less Python whitespace at both ends. */
static void strip(const char *t, size_t *a, size_t *b) {
    size_t l;
    while (*a < *b && toolp_py_space(t, *b, *a, &l)) *a += l;
    while (*b > *a) {
        size_t k = *b - 1;
        while (k > *a && ((unsigned char)t[k] & 0xC0) == 0x80) k--;
        if (!toolp_py_space(t, *b, k, &l) || k + l != *b) break;
        *b = k;
    }
}


enum { T_STRING, T_INT, T_NUM, T_BOOL, T_CONTAINER, T_OTHER };

/* The parameter config of function `name` (vLLM's _get_arguments_config): NULL for {}. */
static const cJSON *arg_config(const cJSON *tools, const char *name, size_t len) {
    const cJSON *tool, *list = cJSON_IsArray(tools) ? tools : NULL;
    cJSON_ArrayForEach(tool, list) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(tool, "type");
        const cJSON *fn = cJSON_GetObjectItemCaseSensitive(tool, "function");
        const cJSON *fname = cJSON_GetObjectItemCaseSensitive(fn, "name");
        if ((type && !(cJSON_IsString(type) && !strcmp(type->valuestring, "function"))) || !cJSON_IsString(fname))
            continue;
        if (strlen(fname->valuestring) != len || memcmp(fname->valuestring, name, len)) continue;
        const cJSON *params = cJSON_GetObjectItemCaseSensitive(fn, "parameters");
        if (!cJSON_IsObject(params)) return NULL;
        const cJSON *props = cJSON_GetObjectItemCaseSensitive(params, "properties");
        return props ? props : params;
    }
    return NULL;
}

/* str(type).strip().lower() sorted into vLLM's branches. Non-ASCII letters never lower into the
 * ASCII names compared, so ASCII lowering decides the same. */
static int type_class(const cJSON *type) {
    if (!cJSON_IsString(type)) return T_OTHER; /* str() of a list, number, bool or None: none of the names */
    const char *s = type->valuestring;
    size_t a = 0, b = strlen(s);
    strip(s, &a, &b);
    char w[16];
    size_t n = b - a < sizeof w - 1 ? b - a : sizeof w - 1;
    for (size_t i = 0; i < n; i++) w[i] = (char)(s[a + i] >= 'A' && s[a + i] <= 'Z' ? s[a + i] + 32 : s[a + i]);
    w[n] = 0;
    int whole = b - a == n; /* equality needs all of it; a prefix only its start */
    static const char *const STR[] = {"string", "str", "text", "varchar", "char", "enum"};
    for (size_t i = 0; whole && i < sizeof STR / sizeof *STR; i++)
        if (!strcmp(w, STR[i])) return T_STRING;
    static const char *const INTP[] = {"int", "uint", "long", "short", "unsigned"};
    for (size_t i = 0; i < sizeof INTP / sizeof *INTP; i++)
        if (!strncmp(w, INTP[i], strlen(INTP[i]))) return T_INT;
    if (!strncmp(w, "num", 3) || !strncmp(w, "float", 5)) return T_NUM;
    if (whole && (!strcmp(w, "boolean") || !strcmp(w, "bool") || !strcmp(w, "binary"))) return T_BOOL;
    if ((whole && (!strcmp(w, "object") || !strcmp(w, "array") || !strcmp(w, "arr"))) || !strncmp(w, "dict", 4) ||
        !strncmp(w, "list", 4))
        return T_CONTAINER;
    return T_OTHER;
}

/* ---- int() and float() ---- */

/* digit (_? digit)* at t[*i]: appended to o without underscores; the count of digits. */
static size_t digit_run(const char *t, size_t n, size_t *i, sbuf *o) {
    size_t k = 0;
    while (*i < n) {
        char c = t[*i];
        if (c == '_' && k && *i + 1 < n && py_digit((unsigned char)t[*i + 1])) {
            (*i)++;
            continue;
        }
        if (!py_digit((unsigned char)c)) break;
        sb_raw(o, &c, 1);
        (*i)++, k++;
    }
    return k;
}

/* A number item printing as the given integer literal (owned). */
static cJSON *int_item(char *lit) {
    cJSON *v = lit ? cJSON_CreateNumber(0) : NULL;
    if (v) v->valuestring = lit;
    else free(lit);
    return v;
}

/* int(s): 1 with *v, 0 when Python raises ValueError, -1 out of memory. */
static int py_int(const char *t, size_t n, cJSON **v) {
    size_t a = 0, b = n, i;
    strip(t, &a, &b);
    i = a;
    int neg = i < b && t[i] == '-';
    if (i < b && (t[i] == '-' || t[i] == '+')) i++;
    sbuf d = {0};
    size_t k = digit_run(t, b, &i, &d);
    if (!k || i != b || k > PY_INT_MAX_DIGITS || d.oom) {
        int oom = d.oom;
        sb_free(&d);
        return oom ? -1 : 0;
    }
    size_t z = 0;
    while (z + 1 < d.n && d.b[z] == '0') z++;
    int zero = d.n - z == 1 && d.b[z] == '0';
    sbuf lit = {0};
    if (neg && !zero) sb_raw(&lit, "-", 1);
    sb_raw(&lit, d.b + z, d.n - z);
    sb_free(&d);
    if (lit.oom) {
        sb_free(&lit);
        return -1;
    }
    return (*v = int_item(lit.b)) ? 1 : -1;
}

static int ci_eq(const char *t, size_t n, const char *w) { return n == strlen(w) && !strncasecmp(t, w, n); }

/* float(s), an int when integral: 1 with *v, 0 when Python raises (inf and nan included: int() of
 * them raises), -1 out of memory. */
static int py_float(const char *t, size_t n, cJSON **v) {
    size_t a = 0, b = n, i;
    strip(t, &a, &b);
    i = a;
    if (i < b && (t[i] == '-' || t[i] == '+')) i++;
    if (ci_eq(t + i, b - i, "inf") || ci_eq(t + i, b - i, "infinity") || ci_eq(t + i, b - i, "nan")) return 0;
    sbuf d = {0};
    if (a < b && t[a] == '-') sb_raw(&d, "-", 1);
    size_t ki = digit_run(t, b, &i, &d), kf = 0;
    if (i < b && t[i] == '.') {
        sb_raw(&d, ".", 1);
        i++;
        kf = digit_run(t, b, &i, &d);
    }
    int ok = ki || kf;
    if (ok && i < b && (t[i] == 'e' || t[i] == 'E')) {
        sb_raw(&d, "e", 1);
        i++;
        if (i < b && (t[i] == '-' || t[i] == '+')) sb_raw(&d, t + i++, 1);
        ok = digit_run(t, b, &i, &d) > 0;
    }
    if (d.oom) {
        sb_free(&d);
        return -1;
    }
    if (!ok || i != b) {
        sb_free(&d);
        return 0;
    }
    double x = strtod(d.b, NULL);
    sb_free(&d);
    if (isinf(x) || isnan(x)) return 0;
    if (x != trunc(x)) return (*v = cJSON_CreateNumber(x)) ? 1 : -1; /* no literal: printed as repr() */
    sbuf lit = {0};
    toolp_int_digits(&lit, x == 0 ? 0.0 : x);
    if (lit.oom) {
        sb_free(&lit);
        return -1;
    }
    return (*v = int_item(lit.b)) ? 1 : -1;
}

/* ---- one parameter ---- */

/* json.loads(s) where it gives a value json.dumps can print again (an int of more than 4300 digits
 * makes json.loads raise). NULL: it raised; *oom on allocation failure. */
static cJSON *json_loads(const char *t, size_t n, int *oom) {
    js_error e;
    cJSON *j = js_parse(t, n, &e);
    if (!j) {
        *oom = e.oom;
        return NULL;
    }
    sbuf s = {0};
    int bad = toolp_pydumps(&s, j);
    *oom = s.oom;
    sb_free(&s);
    if (bad || *oom) {
        cJSON_Delete(j);
        return NULL;
    }
    return j;
}

/* vLLM's _convert_param_value: *v the value; 0, -1 when Python raises there (the whole text is
 * content), VC_ENOMEM. */
static int convert(const char *val, size_t vn, const char *key, const cJSON *cfg, cJSON **v) {
    *v = NULL;
    int r = 0, oom = 0;
    if (ci_eq(val, vn, "null")) return (*v = cJSON_CreateNull()) ? 0 : vc_errf(VC_ENOMEM, "out of memory");
    const cJSON *entry = NULL;
    int present = 0;
    if (cJSON_IsObject(cfg)) {
        entry = cJSON_GetObjectItemCaseSensitive(cfg, key);
        present = entry != NULL;
    } else if (cJSON_IsArray(cfg)) { /* `key in list`, then list[key]: TypeError */
        const cJSON *e;
        cJSON_ArrayForEach(e, cfg) present |= cJSON_IsString(e) && !strcmp(e->valuestring, key);
        if (present) return -1;
    } else if (cJSON_IsString(cfg)) { /* a substring, then str[key]: TypeError */
        if (strstr(cfg->valuestring, key)) return -1;
    } else if (cfg) {
        return -1; /* `key in 5`: TypeError */
    }
    int cls = T_STRING;
    if (present && cJSON_IsObject(entry) && cJSON_GetObjectItemCaseSensitive(entry, "type"))
        cls = type_class(cJSON_GetObjectItemCaseSensitive(entry, "type"));
    if (!present) cls = T_STRING;
    if (cls == T_INT) r = py_int(val, vn, v);
    else if (cls == T_NUM) r = py_float(val, vn, v);
    else if (cls == T_BOOL) return (*v = cJSON_CreateBool(ci_eq(val, vn, "true"))) ? 0 : vc_errf(VC_ENOMEM, "out of memory");
    else if (cls == T_CONTAINER || cls == T_OTHER) {
        if (cls == T_CONTAINER) *v = json_loads(val, vn, &oom);
        if (!*v && !oom) *v = toolp_py_literal_eval(val, vn, &oom);
        r = oom ? -1 : *v != NULL;
    }
    if (r < 0) return vc_errf(VC_ENOMEM, "out of memory");
    if (!*v && !(*v = py_str(val, vn))) return vc_errf(VC_ENOMEM, "out of memory"); /* the string itself */
    return 0;
}

/* ---- the regexes ---- */

/* The parameters of one function (its text after the name's '>', t[a, b)) into dict d. 0, -1 (the
 * whole text is content), VC_ENOMEM. */
static int parameters(const char *t, size_t a, size_t b, const cJSON *cfg, cJSON *d) {
    size_t ls = strlen(PAR_START), close = 0, next = 0, fend = 0; /* the next of each marker, found once */
    for (size_t k = a, q; (q = toolp_find(t, b, k, PAR_START)) != NONE;) {
        size_t vs = q + ls;
        if (close != NONE && close < vs) close = toolp_find(t, b, vs, PAR_END);
        if (next != NONE && next < vs) next = toolp_find(t, b, vs, PAR_START);
        if (fend != NONE && fend < vs) fend = toolp_find(t, b, vs, FN_END);
        size_t end = min_pos(min_pos(close, next), min_pos(fend, dollar(t, b, vs)));
        k = end == close ? end + strlen(PAR_END) : end;
        const char *gt = memchr(t + vs, '>', end - vs);
        if (!gt) return -1; /* match_text.index(">"): ValueError */
        size_t ks = vs, ke = (size_t)(gt - t), va = ke + 1, ve = end;
        if (va < ve && t[va] == '\n') va++;
        if (ve > va && t[ve - 1] == '\n') ve--;
        char *key = masked(t + ks, ke - ks);
        if (!key) return vc_errf(VC_ENOMEM, "out of memory");
        cJSON *v;
        int rc = convert(t + va, ve - va, key, cfg, &v);
        if (rc == 0 && !(cJSON_GetObjectItemCaseSensitive(d, key) ? cJSON_ReplaceItemInObjectCaseSensitive(d, key, v)
                                                                  : cJSON_AddItemToObject(d, key, v))) {
            cJSON_Delete(v);
            rc = vc_errf(VC_ENOMEM, "out of memory");
        }
        free(key);
        if (rc) return rc;
    }
    return 0;
}

/* One function's text t[a, b) ("NAME>..."): a call in r. 0, -1, VC_ENOMEM. */
static int function(const char *t, size_t a, size_t b, const cJSON *tools, toolp_result *r) {
    const char *gt = memchr(t + a, '>', b - a);
    if (!gt) return -1; /* function_call_str.index(">"): ValueError */
    size_t ne = (size_t)(gt - t);
    cJSON *d = cJSON_CreateObject();
    if (!d) return vc_errf(VC_ENOMEM, "out of memory");
    int rc = parameters(t, ne + 1, b, arg_config(tools, t + a, ne - a), d);
    sbuf s = {0};
    if (rc == 0 && toolp_pydumps(&s, d)) rc = -1; /* json.dumps raised: a set, bytes, a tuple key */
    if (rc == 0 && s.oom) rc = vc_errf(VC_ENOMEM, "out of memory");
    if (rc == 0) rc = toolp_add_call(r, t + a, ne - a, s.b ? s.b : "{}", s.n);
    sb_free(&s);
    cJSON_Delete(d);
    return rc;
}

/* The functions of one block t[a, b). */
static int functions(const char *t, size_t a, size_t b, const cJSON *tools, toolp_result *r) {
    size_t ls = strlen(FN_START);
    for (size_t k = a, f; (f = toolp_find(t, b, k, FN_START)) != NONE;) {
        size_t body = f + ls, e = toolp_find(t, b, body, FN_END);
        size_t end = e == NONE ? b : e; /* <function=(.*)$: greedy, to the block's end */
        int rc = function(t, body, end, tools, r);
        if (rc) return rc;
        k = e == NONE ? b : e + strlen(FN_END);
    }
    return 0;
}

int toolp_qwen3coder_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    size_t fn = toolp_find(t, n, 0, FN_START), first = toolp_find(t, n, 0, TC_START);
    if (fn == NONE) return toolp_all_content(r, t, n);
    int rc = 0;
    if (first == NONE) {
        rc = functions(t, 0, n, tools, r);
    } else {
        size_t ls = strlen(TC_START);
        for (size_t k = 0, s; !rc && (s = toolp_find(t, n, k, TC_START)) != NONE;) {
            size_t body = s + ls, e = toolp_find(t, n, body, TC_END);
            size_t end = e == NONE ? dollar(t, n, body) : e;
            rc = functions(t, body, end, tools, r);
            k = e == NONE ? end : e + strlen(TC_END);
        }
    }
    if (rc == -1 || (!rc && !r->n_calls)) return toolp_all_content(r, t, n);
    if (rc) return rc;
    r->tools_called = 1;
    size_t c = first == NONE ? fn : first;
    return c ? toolp_set_content(r, t, c) : 0;
}

/* mode 0: content up to the first marker (held back: what could still become one); 1: a marker was
 * seen, the rest waits for toolp_stream_finish. */
void toolp_qwen3coder_progress(toolp_stream *s) {
    if (s->mode) return;
    const char *t = s->text.b;
    size_t n = s->text.n, from = s->sent_content;
    size_t at = min_pos(toolp_find(t, n, from, TC_START), toolp_find(t, n, from, FN_START));
    if (at != NONE) {
        toolp_emit_content(s, t + from, at - from);
        s->mode = 1;
        return;
    }
    size_t hold = toolp_partial(t, n, from, TC_START), h2 = toolp_partial(t, n, from, FN_START);
    size_t end = toolp_utf8_end(t, from, n - (hold > h2 ? hold : h2));
    toolp_emit_content(s, t + from, end - from);
}
