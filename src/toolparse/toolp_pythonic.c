/* toolp_pythonic: the "pythonic" tool parser (Llama 3.2, Llama 4, ToolACE): [f(a=1, b="x"), g()].
 *
 * From vLLM's pythonic_tool_parser.py: the output must match its TOOL_CALL_REGEX at the start
 * (py_gate below mirrors what that regex accepts) and then be a Python module (ast.parse) whose
 * first statement is a list of calls f(kw=literal, ...); a literal is a str, number, True, False,
 * None, or a list/dict of literals (dict keys constants). Arguments are json.dumps of the keyword
 * dict; content is None. Anything else, and every Python error, is content. vLLM's quirks kept:
 * negative numbers are not literals (-1 is a unary operation); bytes, complex numbers and ... are
 * literals but not JSON (json.dumps raises, unless a repeated keyword replaced them); a repeated
 * keyword is a dict's last value (ast.parse lets it through); positional arguments are ignored
 * (f(x, a=1) is {"a": 1}; the regex lets them in after the first call, or after a keyword with '*').
 * Python subset (differences, all rare in model output): identifiers are ASCII (Python normalizes
 * others by NFKC); \N{name} escapes are refused; a positional argument must be a literal or a
 * name (vLLM ignores any expression there); **kwargs is refused; after the list only whitespace,
 * comments and newlines may follow (Python would also accept more statements, e.g. "; x"); dict
 * keys that are equal in Python but print differently (1, 1.0, True) are kept apart.
 * Streaming as vLLM: output that does not start with '[' is content as it comes; output that does
 * is held to the end (a call is valid only once the whole list is). */
#include <stdlib.h>
#include <string.h>

#include "base/err.h"
#include "toolparse/internal.h"


/* ---- the regex gate ---- */

static int re_space(int c) { return c == ' ' || (c >= '\t' && c <= '\r'); }

/* What TOOL_CALL_REGEX.match accepts: "[" then calls name(...) and "]". A call whose first
 * parameter is name= lets the regex's ".*" swallow anything, so then only a later ")\s*]" counts. */
static int py_gate(const char *t, size_t n) {
    size_t i = 1;
    int commas = 1; /* still in the regex's first group: calls followed by "," */
    if (!n || t[0] != '[') return 0;
    for (;;) {
        if (i >= n || !py_alpha((unsigned char)t[i])) return 0;
        while (i < n && (py_word((unsigned char)t[i]) || (unsigned char)t[i] >= 0x80)) i++;
        if (i >= n || t[i] != '(') return 0;
        i++;
        if (i < n && py_alpha((unsigned char)t[i])) {
            size_t j = i;
            while (j < n && (py_word((unsigned char)t[j]) || (unsigned char)t[j] >= 0x80)) j++;
            if (j >= n || t[j] != '=') return 0;
            for (size_t k = j + 1; k < n; k++) {
                if (t[k] != ')') continue;
                size_t m = k + 1;
                while (m < n && re_space((unsigned char)t[m])) m++;
                if (m < n && t[m] == ']') return 1;
            }
            return 0;
        }
        if (i >= n || t[i] != ')') return 0;
        i++;
        if (commas && i < n && t[i] == ',') {
            for (i++; i < n && re_space((unsigned char)t[i]); i++) {}
            continue;
        }
        while (i < n && re_space((unsigned char)t[i])) i++;
        if (i < n && t[i] == ']') return 1;
        commas = 0;
    }
}

/* ---- tokens ---- */

static int eat(toolp_py *p, int c) {
    toolp_py_ws(p);
    if (py_at(p, 0) != c) return 0;
    p->i++;
    return 1;
}

static const char *const KEYWORDS[] = {"False", "None", "True", "and", "as", "assert", "async", "await",
                                       "break", "class", "continue", "def", "del", "elif", "else", "except",
                                       "finally", "for", "from", "global", "if", "import", "in", "is",
                                       "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try",
                                       "while", "with", "yield"};

/* An identifier at p->i (ASCII): its length, 0 if none. */
static size_t ident(const toolp_py *p) {
    size_t k = 0;
    if (!(py_alpha(py_at(p, 0)) || py_at(p, 0) == '_')) return 0;
    while (py_word(py_at(p, k))) k++;
    if (py_at(p, k) >= 0x80) return 0; /* a non-ASCII identifier: not supported */
    return k;
}

static int is_keyword(const char *s, size_t k) {
    for (size_t i = 0; i < sizeof KEYWORDS / sizeof *KEYWORDS; i++)
        if (strlen(KEYWORDS[i]) == k && !memcmp(KEYWORDS[i], s, k)) return 1;
    return 0;
}
/* ---- literals ---- */

static cJSON *value(toolp_py *p);

/* A dict key as json.dumps writes it: the str, or a number/True/False/None as text. */
static char *key_text(toolp_py *p, cJSON *k) {
    sbuf b = {0};
    if (cJSON_IsString(k)) sb_str(&b, k->valuestring);
    else if (cJSON_IsTrue(k)) sb_str(&b, "true");
    else if (cJSON_IsFalse(k)) sb_str(&b, "false");
    else if (cJSON_IsNull(k)) sb_str(&b, "null");
    else if (cJSON_IsNumber(k) && toolp_pydumps(&b, k) == 0) {}
    else p->bad = 1; /* not a constant */
    if (b.oom) p->oom = 1;
    char *s = p->bad || p->oom ? NULL : (b.b ? b.b : toolp_dup("", 0));
    if (!s) sb_free(&b);
    if (!s && !p->bad) p->oom = 1;
    return s;
}

/* [v, ...] or {k: v, ...} (p->i on the bracket). */
static cJSON *container(toolp_py *p, int dict) {
    int close = dict ? '}' : ']';
    p->i++;
    cJSON *c = dict ? cJSON_CreateObject() : cJSON_CreateArray();
    int bad_key = 0; /* a key json.dumps refuses (bytes, ...): the dict cannot be printed */
    if (!c) p->oom = 1;
    if (!c || !toolp_py_open_level(p)) goto fail;
    while (!eat(p, close)) {
        cJSON *k = NULL, *v;
        if (dict) {
            if (!(k = value(p)) || cJSON_IsArray(k) || cJSON_IsObject(k) || !eat(p, ':')) {
                if (k) p->bad = 1;
                cJSON_Delete(k);
                goto fail;
            }
        }
        if (!(v = value(p))) {
            cJSON_Delete(k);
            goto fail;
        }
        if (dict && cJSON_IsRaw(k)) {
            bad_key = 1;
            cJSON_Delete(k);
            cJSON_Delete(v);
        } else if (dict) { /* a repeated key keeps its first place and takes the last value, as a dict does */
            char *kt = key_text(p, k);
            cJSON_Delete(k);
            int ok = kt && (cJSON_GetObjectItemCaseSensitive(c, kt) ? cJSON_ReplaceItemInObjectCaseSensitive(c, kt, v)
                                                                     : cJSON_AddItemToObject(c, kt, v));
            free(kt);
            if (!ok) {
                if (!p->bad) p->oom = 1;
                cJSON_Delete(v);
                goto fail;
            }
        } else {
            cJSON_AddItemToArray(c, v);
        }
        if (!eat(p, ',')) {
            if (!eat(p, close)) p->bad = 1;
            break;
        }
    }
    if (p->bad || p->oom) goto fail;
    p->level--;
    if (bad_key) {
        cJSON_Delete(c);
        return toolp_py_poison(p);
    }
    return c;
fail:
    cJSON_Delete(c);
    return NULL;
}

/* A literal as vLLM's _get_parameter_value takes it, into a cJSON tree. NULL: p->bad or p->oom. */
static cJSON *value(toolp_py *p) {
    toolp_py_ws(p);
    int c = py_at(p, 0), raw, kind;
    cJSON *v = NULL;
    if (c == '[' || c == '{') return container(p, c == '{');
    if (c == '.' && py_at(p, 1) == '.' && py_at(p, 2) == '.') { /* Ellipsis */
        p->i += 3;
        return toolp_py_poison(p);
    }
    if (c == '(') { /* a parenthesized literal (not a tuple) */
        p->i++;
        if (!toolp_py_open_level(p)) return NULL;
        v = value(p);
        if (v && !eat(p, ')')) {
            p->bad = 1;
            cJSON_Delete(v);
            return NULL;
        }
        p->level--;
        return v;
    }
    if (toolp_py_str_prefix(p, &raw, &kind) >= 0) return toolp_py_strings(p);
    if (py_digit(c) || (c == '.' && py_digit(py_at(p, 1)))) return toolp_py_number(p);
    size_t k = ident(p);
    if (k == 4 && !memcmp(p->t + p->i, "True", 4)) v = cJSON_CreateTrue();
    else if (k == 5 && !memcmp(p->t + p->i, "False", 5)) v = cJSON_CreateFalse();
    else if (k == 4 && !memcmp(p->t + p->i, "None", 4)) v = cJSON_CreateNull();
    else {
        p->bad = 1; /* a name, -1, an expression: not a literal */
        return NULL;
    }
    if (!v) p->oom = 1;
    p->i += k;
    return v;
}

/* After an identifier of k bytes at p->i: "=" (not "=="), consumed with the identifier. */
static int eat_kw(toolp_py *p, size_t k) {
    size_t save = p->i;
    p->i += k;
    if (eat(p, '=') && py_at(p, 0) != '=') return 1;
    p->i = save;
    return 0;
}

/* A positional argument: vLLM reads only the keywords (call.keywords), so f(x, a=1) is {"a": 1}.
 * Here a positional argument may be a literal or a (dotted) name, signed, or after '*'; Python allows
 * one after keywords only with '*'. Any other expression is not parsed (content). 0: p->bad. */
static int positional(toolp_py *p, int after_keywords) {
    toolp_py_ws(p);
    int star = py_at(p, 0) == '*' && py_at(p, 1) != '*';
    if (star) p->i++;
    else if (after_keywords) return !(p->bad = 1);
    for (toolp_py_ws(p); py_at(p, 0) == '-' || py_at(p, 0) == '+' || py_at(p, 0) == '~'; toolp_py_ws(p)) p->i++; /* -1 */
    size_t k = ident(p);
    int raw, kind;
    if (k && !is_keyword(p->t + p->i, k) && toolp_py_str_prefix(p, &raw, &kind) < 0) {
        for (p->i += k; py_at(p, 0) == '.';) { /* a.b.c */
            p->i++;
            if (!(k = ident(p)) || is_keyword(p->t + p->i, k)) return !(p->bad = 1);
            p->i += k;
        }
        return 1;
    }
    cJSON *v = value(p);
    cJSON_Delete(v);
    return v != NULL;
}

/* name(kw=literal, ...) into r. */
static void call(toolp_py *p, toolp_result *r) {
    toolp_py_ws(p);
    size_t k = ident(p), start = p->i;
    if (!k || is_keyword(p->t + start, k)) {
        p->bad = 1;
        return;
    }
    p->i += k;
    if (!eat(p, '(') || !toolp_py_open_level(p)) {
        p->bad = 1;
        return;
    }
    cJSON *args = cJSON_CreateObject();
    int closed = 0;
    if (!args) p->oom = 1;
    while (!p->bad && !p->oom) {
        if (eat(p, ')')) {
            closed = 1;
            break;
        }
        toolp_py_ws(p);
        size_t kk = ident(p), ks = p->i;
        if (!kk || is_keyword(p->t + ks, kk) || !eat_kw(p, kk)) {
            p->i = ks; /* not name=: a positional argument, which vLLM ignores */
            if (!positional(p, args->child != NULL) || eat(p, ',')) continue;
            if (eat(p, ')')) closed = 1;
            else p->bad = 1;
            break;
        }
        char *key = toolp_dup(p->t + ks, kk);
        if (!key) {
            p->oom = 1;
            break;
        }
        /* a keyword repeated: ast.parse lets it through (the compiler would refuse it) and vLLM's
         * dict keeps its first place with the last value */
        cJSON *v = value(p);
        if (v && !(cJSON_GetObjectItemCaseSensitive(args, key) ? cJSON_ReplaceItemInObjectCaseSensitive(args, key, v)
                                                               : cJSON_AddItemToObject(args, key, v))) {
            cJSON_Delete(v);
            v = NULL;
            p->oom = 1;
        }
        free(key);
        if (!v || eat(p, ',')) continue;
        if (eat(p, ')')) closed = 1;
        else p->bad = 1;
        break;
    }
    if (closed) {
        sbuf s = {0};
        if (toolp_pydumps(&s, args)) p->bad = 1;
        else if (s.oom || toolp_add_call(r, p->t + start, k, s.b ? s.b : "{}", s.n)) p->oom = 1;
        sb_free(&s);
        p->level--;
    }
    cJSON_Delete(args);
}

int toolp_pythonic_parse(const char *t, size_t n, const cJSON *tools, toolp_result *r) {
    (void)tools;
    /* Python refuses source with a NUL byte anywhere */
    if (!py_gate(t, n) || memchr(t, 0, n)) return toolp_all_content(r, t, n);
    toolp_py p = {t, n, 1, 1, 0, 0};
    while (!p.bad && !p.oom && !eat(&p, ']')) {
        call(&p, r);
        if (p.bad || p.oom || eat(&p, ',')) continue;
        if (!eat(&p, ']')) p.bad = 1;
        break;
    }
    /* after the list: blank lines and comments only */
    while (!p.bad && p.i < n) {
        int c = py_at(&p, 0);
        if (c == ' ' || c == '\t' || c == '\f' || c == '\n' || c == '\r') p.i++;
        else if (c == '#') while (p.i < n && t[p.i] != '\n' && t[p.i] != '\r') p.i++;
        else p.bad = 1;
    }
    if (p.oom) return vc_errf(VC_ENOMEM, "out of memory");
    if (p.bad || !r->n_calls) return toolp_all_content(r, t, n);
    r->tools_called = 1;
    return 0;
}

/* mode 0: nothing yet, 1: starts with '[' (held to the end), 2: content. */
void toolp_pythonic_progress(toolp_stream *s) {
    const char *t = s->text.b;
    size_t n = s->text.n;
    if (s->mode == 0) s->mode = t[0] == '[' ? 1 : 2;
    if (s->mode == 2) toolp_emit_content(s, t + s->sent_content, toolp_utf8_end(t, s->sent_content, n) - s->sent_content);
}
