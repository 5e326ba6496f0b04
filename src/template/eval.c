/* eval.c: the AST walk: expressions with Python operator semantics, statements with jinja2's
 * scoping, macros, and the sandboxed attribute/item access.
 *
 * Scoping as jinja2 3.1 compiles it: `set` writes the innermost scope; every for-loop iteration,
 * macro call, call-block caller, with/filter/set block and {% generation %} body gets a fresh
 * scope (so a `set` inside a loop is gone at the next iteration and after the loop; namespaces
 * carry state out); `if` does not open a scope. A macro resolves free names through the scope it
 * was defined in, at call time. Attribute access follows the sandbox: obj.x tries the Python
 * attribute (str/dict/list methods) and then obj['x']; obj[k] tries the item and then the
 * attribute; failures give Undefined, and mutating methods (list.append, dict.update, ...) give an
 * undefined that raises a security error when used, as transformers' ImmutableSandboxedEnvironment
 * does. Every node costs a step; C recursion and macro nesting are bounded. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "template/jinja.h"
#include "template/strings.h"

enum { JC_BREAK = 1, JC_CONTINUE = 2 };

static int eval(jrt *r, const jnode *n, jscope *s, jv *out);
static int exec_body(jrt *r, jnode *const *body, uint32_t n, jscope *s, jbuf *out);

/* ---------------------------------------------------------------- scopes */

static jscope *scope_new(jrt *r, jscope *parent) {
    jscope *s = jr_alloc(r, sizeof *s);
    if (s) s->parent = parent;
    return s;
}

static int name_eq(const jstr *a, const jstr *b) { return a == b || (a->len == b->len && memcmp(a->p, b->p, a->len) == 0); }

static int scope_set(jrt *r, jscope *s, const jstr *name, jv v) {
    for (size_t i = 0; i < s->n; i++)
        if (name_eq(s->names[i], name)) {
            s->vals[i] = v;
            return 0;
        }
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        const jstr **nn = jr_alloc(r, cap * sizeof *nn);
        jv *nv = jr_alloc(r, cap * sizeof *nv);
        if (!nn || !nv) return JE_FAIL;
        if (s->n) {
            memcpy(nn, s->names, s->n * sizeof *nn);
            memcpy(nv, s->vals, s->n * sizeof *nv);
        }
        s->names = nn;
        s->vals = nv;
        s->cap = cap;
    }
    s->names[s->n] = name;
    s->vals[s->n++] = v;
    return 0;
}

static int scope_get(const jscope *s, const jstr *name, jv *out) {
    for (; s; s = s->parent)
        for (size_t i = s->n; i-- > 0;)
            if (name_eq(s->names[i], name)) {
                *out = s->vals[i];
                return 1;
            }
    return 0;
}

/* ---------------------------------------------------------------- access */

static int is_dunder(const jstr *k) { return k->len >= 2 && k->p[0] == '_' && k->p[1] == '_'; }

int je_getattr(jrt *r, jv obj, const jstr *name, jv *out) {
    if (obj.t == JT_UNDEF) return jv_undef_error(r, obj);
    if (is_dunder(name)) {
        *out = jv_undef_attr(r, obj, jv_str(name), UD_UNSAFE);
        return r->failed ? JE_FAIL : 0;
    }
    int found = jm_lookup(r, obj, name, out);
    if (found < 0) return JE_FAIL;
    if (found) return 0;
    if (obj.t == JT_DICT || obj.t == JT_NS) {
        if (jdict_get(obj.u.d, jv_str(name), out)) return 0;
    }
    *out = jv_undef_attr(r, obj, jv_str(name), UD_ATTR);
    return r->failed ? JE_FAIL : 0;
}

static int index_of(int64_t i, size_t n, size_t *at) {
    if (i < 0) i += (int64_t)n;
    if (i < 0 || (uint64_t)i >= n) return 0;
    *at = (size_t)i;
    return 1;
}

int je_getitem(jrt *r, jv obj, jv key, jv *out) {
    if (obj.t == JT_UNDEF) return jv_undef_error(r, obj);
    int is_int = key.t == JT_INT || key.t == JT_BOOL;
    size_t at;
    switch (obj.t) {
    case JT_DICT:
        if (key.t != JT_LIST || key.u.l->kind == JL_TUPLE) {
            if (key.t == JT_UNDEF) break; /* unhashable in Python: TypeError, swallowed */
            if (jdict_get(obj.u.d, key, out)) return 0;
        }
        break;
    case JT_LIST:
        if (is_int && (obj.u.l->kind == JL_LIST || obj.u.l->kind == JL_TUPLE) && index_of(key.u.i, obj.u.l->n, &at)) {
            *out = obj.u.l->v[at];
            return 0;
        }
        break;
    case JT_STR:
        if (is_int) {
            const jstr *s = obj.u.s;
            js_ncp(s);
            if (index_of(key.u.i, (size_t)s->ncp, &at)) {
                size_t b = s->ncp == (int64_t)s->len ? at : js_cp_offset(s->p, s->len, (int64_t)at);
                size_t e = b + 1;
                while (e < s->len && ((unsigned char)s->p[e] & 0xC0) == 0x80) e++;
                int rc = 0;
                *out = jv_strn(r, s->p + b, e - b, &rc);
                out->m = obj.m;
                return rc;
            }
        }
        break;
    default: break;
    }
    if (key.t == JT_STR) {
        if (is_dunder(key.u.s)) {
            *out = jv_undef_attr(r, obj, key, UD_UNSAFE);
            return r->failed ? JE_FAIL : 0;
        }
        int found = jm_lookup(r, obj, key.u.s, out);
        if (found < 0) return JE_FAIL;
        if (found) return 0;
        if (obj.t == JT_NS && jdict_get(obj.u.d, key, out)) return 0;
        *out = jv_undef_attr(r, obj, key, UD_ATTR);
    } else {
        *out = jv_undef_attr(r, obj, key, UD_ITEM);
    }
    return r->failed ? JE_FAIL : 0;
}

/* Python slicing of a list/tuple/str; other objects give Undefined (TypeError, swallowed). */
static int do_slice(jrt *r, jv obj, jv a, jv b, jv c, jv *out) {
    if (obj.t == JT_UNDEF) return jv_undef_error(r, obj);
    int seq = obj.t == JT_STR || (obj.t == JT_LIST && (obj.u.l->kind == JL_LIST || obj.u.l->kind == JL_TUPLE));
    jv parts[3] = {a, b, c};
    for (int i = 0; i < 3; i++)
        if (parts[i].t != JT_NONE && parts[i].t != JT_INT && parts[i].t != JT_BOOL) seq = 0;
    if (!seq) {
        *out = jv_undef_attr(r, obj, jv_none(), UD_ITEM);
        return r->failed ? JE_FAIL : 0;
    }
    int64_t step = c.t == JT_NONE ? 1 : c.u.i;
    if (step == 0) return jr_fail(r, TMPL_ERR_TYPE, "slice step cannot be zero");
    int64_t len;
    if (obj.t == JT_STR) {
        js_ncp(obj.u.s);
        len = obj.u.s->ncp;
    } else {
        len = (int64_t)obj.u.l->n;
    }
    int64_t start, stop;
    /* CPython's PySlice_AdjustIndices */
    if (a.t == JT_NONE) start = step < 0 ? len - 1 : 0;
    else {
        start = a.u.i;
        if (start < 0) {
            start += len;
            if (start < 0) start = step < 0 ? -1 : 0;
        } else if (start >= len) start = step < 0 ? len - 1 : len;
    }
    if (b.t == JT_NONE) stop = step < 0 ? -1 : len;
    else {
        stop = b.u.i;
        if (stop < 0) {
            stop += len;
            if (stop < 0) stop = step < 0 ? -1 : 0;
        } else if (stop >= len) stop = step < 0 ? len - 1 : len;
    }
    int64_t cnt = 0;
    if (step < 0) {
        if (stop < start) cnt = (start - stop - 1) / (-step) + 1;
    } else if (start < stop) {
        cnt = (stop - start - 1) / step + 1;
    }
    if (jr_step(r, (uint64_t)cnt / 16)) return JE_FAIL;
    if (obj.t == JT_LIST) {
        jlist *l = jlist_new(r, obj.u.l->kind, (size_t)cnt);
        if (!l) return JE_FAIL;
        for (int64_t i = 0; i < cnt; i++) l->v[i] = obj.u.l->v[start + i * step];
        out->t = JT_LIST;
        out->u.l = l;
        return 0;
    }
    const jstr *s = obj.u.s;
    if (step == 1) {
        size_t bo = js_cp_offset(s->p, s->len, start), eo = bo + js_cp_offset(s->p + bo, s->len - bo, cnt);
        int rc = 0;
        *out = jv_strn(r, s->p + bo, eo - bo, &rc);
        out->m = obj.m;
        return rc;
    }
    /* general step: index the code points once */
    size_t *offs = jr_alloc(r, ((size_t)len + 1) * sizeof(size_t));
    jbuf *buf = jb_new(r, (size_t)cnt * 2);
    if (!offs || !buf) return JE_FAIL;
    size_t k = 0;
    for (size_t i = 0; i < s->len; i++)
        if (((unsigned char)s->p[i] & 0xC0) != 0x80) offs[k++] = i;
    offs[k] = s->len;
    for (int64_t i = 0; i < cnt; i++) {
        int64_t cp = start + i * step;
        if (jb_put(r, buf, s->p + offs[cp], offs[cp + 1] - offs[cp])) return JE_FAIL;
    }
    const jstr *res = jb_str(r, buf);
    if (!res) return JE_FAIL;
    *out = jv_str(res);
    out->m = obj.m;
    return 0;
}

/* ---------------------------------------------------------------- operators */

static int is_num(jv v) { return v.t == JT_INT || v.t == JT_BOOL || v.t == JT_FLOAT; }
static double as_f(jv v) { return v.t == JT_FLOAT ? v.u.f : (double)v.u.i; }

static const char *opsym(int op) {
    static const char *const s[] = {"+", "-", "*", "/", "//", "%", "**"};
    return s[op];
}

static int overflow(jrt *r) { return jr_fail(r, TMPL_ERR_UNSUPPORTED, "integer overflow (beyond 64 bits)"); }

static int repeat(jrt *r, jv seq, int64_t times, jv *out) {
    if (times < 0) times = 0;
    if (seq.t == JT_STR) {
        const jstr *s = seq.u.s;
        if (s->len && (uint64_t)times > r->max_output / s->len)
            return jr_fail(r, TMPL_ERR_LIMIT, "string longer than the output limit (%zu bytes)", r->max_output);
        jbuf *b = jb_new(r, s->len * (size_t)times);
        if (!b) return JE_FAIL;
        for (int64_t i = 0; i < times; i++)
            if (jb_put(r, b, s->p, s->len)) return JE_FAIL;
        const jstr *res = jb_str(r, b);
        if (!res) return JE_FAIL;
        *out = jv_str(res);
        return jr_step(r, (uint64_t)times / 16);
    }
    const jlist *l = seq.u.l;
    if (l->n && (uint64_t)times > (r->max_output / sizeof(jv)) / l->n)
        return jr_fail(r, TMPL_ERR_LIMIT, "list too long");
    jlist *nl = jlist_new(r, l->kind, l->n * (size_t)times);
    if (!nl) return JE_FAIL;
    for (int64_t i = 0; i < times; i++) memcpy(nl->v + (size_t)i * l->n, l->v, l->n * sizeof(jv));
    out->t = JT_LIST;
    out->u.l = nl;
    return jr_step(r, nl->n / 16);
}

static int binop(jrt *r, int op, jv a, jv b, jv *out) {
    if (a.t == JT_UNDEF) return jv_undef_error(r, a);
    if (b.t == JT_UNDEF) return jv_undef_error(r, b);
    if (is_num(a) && is_num(b)) {
        int fl = a.t == JT_FLOAT || b.t == JT_FLOAT;
        int64_t x = a.u.i, y = b.u.i, z;
        double fx = as_f(a), fy = as_f(b);
        switch (op) {
        case JOP_ADD:
            if (fl) return *out = jv_float(fx + fy), 0;
            if (__builtin_add_overflow(x, y, &z)) return overflow(r);
            return *out = jv_int(z), 0;
        case JOP_SUB:
            if (fl) return *out = jv_float(fx - fy), 0;
            if (__builtin_sub_overflow(x, y, &z)) return overflow(r);
            return *out = jv_int(z), 0;
        case JOP_MUL:
            if (fl) return *out = jv_float(fx * fy), 0;
            if (__builtin_mul_overflow(x, y, &z)) return overflow(r);
            return *out = jv_int(z), 0;
        case JOP_DIV:
            if (fy == 0.0) return jr_fail(r, TMPL_ERR_TYPE, "division by zero");
            return *out = jv_float(fx / fy), 0;
        case JOP_FLOORDIV:
        case JOP_MOD:
            if (!fl) {
                if (y == 0) return jr_fail(r, TMPL_ERR_TYPE, "integer division or modulo by zero");
                if (x == INT64_MIN && y == -1) {
                    if (op == JOP_MOD) return *out = jv_int(0), 0;
                    return overflow(r);
                }
                int64_t q = x / y, m = x % y;
                if (m != 0 && ((m < 0) != (y < 0))) {
                    q -= 1;
                    m += y;
                }
                return *out = jv_int(op == JOP_FLOORDIV ? q : m), 0;
            } else {
                if (fy == 0.0) return jr_fail(r, TMPL_ERR_TYPE, "float floor division by zero");
                double mod = fmod(fx, fy), div = (fx - mod) / fy;
                if (mod != 0.0) {
                    if ((fy < 0) != (mod < 0)) {
                        mod += fy;
                        div -= 1.0;
                    }
                } else {
                    mod = copysign(0.0, fy);
                }
                double fd;
                if (div != 0.0) {
                    fd = floor(div);
                    if (div - fd > 0.5) fd += 1.0;
                } else {
                    fd = copysign(0.0, fx / fy);
                }
                return *out = jv_float(op == JOP_FLOORDIV ? fd : mod), 0;
            }
        case JOP_POW:
            if (!fl && y >= 0) {
                int64_t res = 1, base = x;
                uint64_t e = (uint64_t)y;
                while (e) {
                    if (e & 1 && __builtin_mul_overflow(res, base, &res)) return overflow(r);
                    e >>= 1;
                    if (e && __builtin_mul_overflow(base, base, &base)) return overflow(r);
                }
                return *out = jv_int(res), 0;
            }
            if (fx == 0.0 && fy < 0) return jr_fail(r, TMPL_ERR_TYPE, "0.0 cannot be raised to a negative power");
            if (fx < 0 && fy != floor(fy))
                return jr_fail(r, TMPL_ERR_UNSUPPORTED, "a negative number to a fractional power is complex");
            {
                double res = pow(fx, fy);
                if (isinf(res) && !isinf(fx)) return jr_fail(r, TMPL_ERR_TYPE, "(34, 'Numerical result out of range')");
                return *out = jv_float(res), 0;
            }
        }
    }
    if (op == JOP_ADD) {
        if (a.t == JT_STR && b.t == JT_STR) {
            if (a.m != b.m && (a.m ? jm_escape_val(r, b, &b) : jm_escape_val(r, a, &a))) return JE_FAIL;
            const jstr *s = js_concat(r, a.u.s, b.u.s);
            if (!s) return JE_FAIL;
            *out = jv_str(s);
            out->m = a.m;
            return 0;
        }
        if (a.t == JT_LIST && b.t == JT_LIST && a.u.l->kind == b.u.l->kind &&
            (a.u.l->kind == JL_LIST || a.u.l->kind == JL_TUPLE))
            return jlist_concat(r, a.u.l, b.u.l, out);
        if (a.t == JT_STR)
            return jr_fail(r, TMPL_ERR_TYPE, "can only concatenate str (not \"%s\") to str", jv_typename(b));
        if (a.t == JT_LIST && (a.u.l->kind == JL_LIST || a.u.l->kind == JL_TUPLE))
            return jr_fail(r, TMPL_ERR_TYPE, "can only concatenate %s (not \"%s\") to %s", jv_typename(a),
                           jv_typename(b), jv_typename(a));
    }
    if (op == JOP_MUL) {
        int aseq = a.t == JT_STR || (a.t == JT_LIST && (a.u.l->kind == JL_LIST || a.u.l->kind == JL_TUPLE));
        int bseq = b.t == JT_STR || (b.t == JT_LIST && (b.u.l->kind == JL_LIST || b.u.l->kind == JL_TUPLE));
        if (aseq && (b.t == JT_INT || b.t == JT_BOOL)) return repeat(r, a, b.u.i, out) || (out->m = a.m, 0);
        if (bseq && (a.t == JT_INT || a.t == JT_BOOL)) return repeat(r, b, a.u.i, out) || (out->m = b.m, 0);
    }
    if (op == JOP_MOD && a.t == JT_STR) return jm_percent_format(r, a.u.s, b, out, a.m);
    return jr_fail(r, TMPL_ERR_TYPE, "unsupported operand type(s) for %s: '%s' and '%s'", opsym(op), jv_typename(a),
                   jv_typename(b));
}

int je_contains(jrt *r, jv hay, jv needle, int *res) {
    switch (hay.t) {
    case JT_UNDEF: *res = 0; return 0;
    case JT_STR:
        if (needle.t == JT_UNDEF) return jv_undef_error(r, needle);
        if (needle.t != JT_STR)
            return jr_fail(r, TMPL_ERR_TYPE, "'in <string>' requires string as left operand, not %s",
                           jv_typename(needle));
        if (needle.u.s->len == 0) return *res = 1, 0;
        *res = memmem(hay.u.s->p, hay.u.s->len, needle.u.s->p, needle.u.s->len) != NULL;
        return 0;
    case JT_DICT:
        if ((needle.t == JT_LIST && needle.u.l->kind != JL_TUPLE) || needle.t == JT_DICT || needle.t == JT_NS)
            return jr_fail(r, TMPL_ERR_TYPE, "unhashable type: '%s'", jv_typename(needle));
        {
            jv tmp;
            *res = jdict_get(hay.u.d, needle, &tmp);
        }
        return 0;
    case JT_LIST: {
        const jlist *l = hay.u.l;
        const jv *items = l->v;
        size_t n = l->n;
        if (l->kind == JL_ITEMS && !(needle.t == JT_LIST && needle.u.l->kind == JL_TUPLE)) return *res = 0, 0;
        if (jr_step(r, n / 16)) return JE_FAIL;
        *res = 0;
        for (size_t i = 0; i < n && !*res; i++) *res = jv_eq(items[i], needle);
        return 0;
    }
    default:
        return jr_fail(r, TMPL_ERR_TYPE, "argument of type '%s' is not iterable", jv_typename(hay));
    }
}

static int compare(jrt *r, int op, jv a, jv b, int *res) {
    int c;
    switch (op) {
    case JCMP_EQ: *res = jv_eq(a, b); return 0;
    case JCMP_NE: *res = !jv_eq(a, b); return 0;
    case JCMP_IN: return je_contains(r, b, a, res);
    case JCMP_NOTIN:
        if (je_contains(r, b, a, res)) return JE_FAIL;
        *res = !*res;
        return 0;
    default: break;
    }
    static const char *const sy[] = {"==", "!=", "<", "<=", ">", ">="};
    if (jv_cmp_op(r, a, b, sy[op], &c)) return JE_FAIL;
    if (c == 2) return *res = 0, 0; /* NaN */
    switch (op) {
    case JCMP_LT: *res = c < 0; break;
    case JCMP_LE: *res = c <= 0; break;
    case JCMP_GT: *res = c > 0; break;
    default: *res = c >= 0; break;
    }
    return 0;
}

/* ---------------------------------------------------------------- calls */

static int eval_args(jrt *r, const jnode *n, jscope *s, jargs *a) {
    a->npos = n->nargs;
    a->nkw = n->nkw;
    a->pos = jr_alloc(r, (n->nargs + 1) * sizeof(jv));
    a->kwv = jr_alloc(r, (n->nkw + 1) * sizeof(jv));
    if (!a->pos || !a->kwv) return JE_FAIL;
    a->kwn = n->kwn;
    for (uint32_t i = 0; i < n->nargs; i++)
        if (eval(r, n->args[i], s, &a->pos[i])) return JE_FAIL;
    for (uint32_t i = 0; i < n->nkw; i++)
        if (eval(r, n->kwv[i], s, &a->kwv[i])) return JE_FAIL;
    return 0;
}

static const jstr s_caller = {"caller", 6, 6, NULL}, s_varargs = {"varargs", 7, 7, NULL},
                  s_kwargs = {"kwargs", 6, 6, NULL};

static int call_macro(jrt *r, const jmacro *m, const jargs *a, jv caller, jv *out) {
    const jnode *def = m->node;
    const char *mname = def->kind == N_MACRO ? def->name->p : "caller";
    int mlen = def->kind == N_MACRO ? (int)def->name->len : 6;
    if (r->calls >= r->max_calls)
        return jr_fail(r, TMPL_ERR_LIMIT, "maximum macro recursion depth (%d) exceeded", r->max_calls);
    if (jr_stack_check(r)) return JE_FAIL;
    jscope *s = scope_new(r, m->closure);
    if (!s) return JE_FAIL;
    uint32_t np = def->nkw;
    uint8_t *given = jr_alloc(r, np + 1);
    if (!given) return JE_FAIL;
    size_t npos = a->npos < np ? a->npos : np;
    for (size_t i = 0; i < npos; i++) {
        if (scope_set(r, s, def->kwn[i], a->pos[i])) return JE_FAIL;
        given[i] = 1;
    }
    if (a->npos > np) {
        if (!(def->flags & NF_USES_VARARGS))
            return jr_fail(r, TMPL_ERR_TYPE, "macro '%.*s' takes not more than %u argument(s)", mlen, mname, np);
        jlist *l = jlist_new(r, JL_TUPLE, a->npos - np);
        if (!l) return JE_FAIL;
        memcpy(l->v, a->pos + np, (a->npos - np) * sizeof(jv));
        jv t = {.t = JT_LIST};
        t.u.l = l;
        if (scope_set(r, s, &s_varargs, t)) return JE_FAIL;
    } else if (def->flags & NF_USES_VARARGS) {
        jlist *l = jlist_new(r, JL_TUPLE, 0);
        jv t = {.t = JT_LIST};
        t.u.l = l;
        if (!l || scope_set(r, s, &s_varargs, t)) return JE_FAIL;
    }
    jdict *extra = NULL;
    if (def->flags & NF_USES_KWARGS) {
        if (!(extra = jdict_new(r, 4))) return JE_FAIL;
    }
    for (size_t k = 0; k < a->nkw; k++) {
        uint32_t i = 0;
        while (i < np && !name_eq(def->kwn[i], a->kwn[k])) i++;
        if (i < np) {
            if (given[i])
                return jr_fail(r, TMPL_ERR_TYPE, "macro '%.*s' got multiple values for argument '%.*s'", mlen, mname,
                               (int)a->kwn[k]->len, a->kwn[k]->p);
            if (scope_set(r, s, def->kwn[i], a->kwv[k])) return JE_FAIL;
            given[i] = 1;
        } else if (name_eq(a->kwn[k], &s_caller) && (def->flags & NF_USES_CALLER)) {
            caller = a->kwv[k];
        } else if (extra) {
            if (jdict_set(r, extra, jv_str(a->kwn[k]), a->kwv[k])) return JE_FAIL;
        } else {
            return jr_fail(r, TMPL_ERR_TYPE, "macro '%.*s' takes no keyword argument '%.*s'", mlen, mname,
                           (int)a->kwn[k]->len, a->kwn[k]->p);
        }
    }
    if (extra) {
        jv d = {.t = JT_DICT};
        d.u.d = extra;
        if (scope_set(r, s, &s_kwargs, d)) return JE_FAIL;
    }
    if (def->flags & NF_USES_CALLER) {
        if (caller.t == JT_ABSENT) caller = jv_undef_hint(r, "No caller defined");
        if (scope_set(r, s, &s_caller, caller)) return JE_FAIL;
    }
    for (uint32_t i = 0; i < np; i++) {
        if (given[i]) continue;
        jv v;
        if (def->kwv[i]) {
            if (eval(r, def->kwv[i], s, &v)) return JE_FAIL;
        } else {
            char *hint = jr_alloc(r, def->kwn[i]->len + 40);
            if (!hint) return JE_FAIL;
            memcpy(hint, "parameter '", 11);
            memcpy(hint + 11, def->kwn[i]->p, def->kwn[i]->len);
            memcpy(hint + 11 + def->kwn[i]->len, "' was not provided", 19);
            v = jv_undef_hint(r, hint);
        }
        if (scope_set(r, s, def->kwn[i], v)) return JE_FAIL;
    }
    jbuf *b = jb_new(r, 256);
    if (!b) return JE_FAIL;
    r->calls++;
    int saved_line = r->line;
    int rc = exec_body(r, def->args, def->nargs, s, b);
    r->calls--;
    if (rc < 0) return JE_FAIL;
    r->line = saved_line;
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    *out = jv_str(res);
    return 0;
}

int je_call(jrt *r, jv fn, jargs *a, jv *out) {
    jv none = {.t = JT_ABSENT};
    switch (fn.t) {
    case JT_MACRO: return call_macro(r, fn.u.m, a, none, out);
    case JT_FUNC: return jg_call(r, (int)fn.u.i, a, out);
    case JT_METHOD: return jm_call(r, fn.u.bm, a, out);
    case JT_UNDEF: return jv_undef_error(r, fn);
    default: return jr_fail(r, TMPL_ERR_TYPE, "'%s' object is not callable", jv_typename(fn));
    }
}

/* A filter chain from a set/filter block: innermost filter (a == NULL) gets `in`. The chain is as
 * long as the template makes it, so its recursion counts like eval's. */
static int apply_chain(jrt *r, const jnode *f, jv in, jscope *s, jv *out) {
    if (!f) return *out = in, 0;
    if (r->depth >= r->max_depth) return jr_fail(r, TMPL_ERR_LIMIT, "template nested too deeply at run time");
    if (jr_stack_check(r)) return JE_FAIL;
    jv x = in;
    r->depth++;
    int rc = f->a ? apply_chain(r, f->a, in, s, &x) : 0;
    r->depth--;
    if (rc) return JE_FAIL;
    jargs a;
    if (eval_args(r, f, s, &a)) return JE_FAIL;
    r->line = f->line;
    return jf_apply(r, f->name, x, &a, out);
}

/* ---------------------------------------------------------------- expressions */

static int eval_inner(jrt *r, const jnode *n, jscope *s, jv *out) {
    jv a, b;
    switch (n->kind) {
    case N_CONST: *out = n->val; return 0;
    case N_NAME:
        if (scope_get(s, n->name, out) || jg_lookup(n->name, out)) return 0;
        *out = jv_undef_name(r, n->name);
        return r->failed ? JE_FAIL : 0;
    case N_LIST:
    case N_TUPLE: {
        jlist *l = jlist_new(r, n->kind == N_LIST ? JL_LIST : JL_TUPLE, n->nargs);
        if (!l) return JE_FAIL;
        for (uint32_t i = 0; i < n->nargs; i++)
            if (eval(r, n->args[i], s, &l->v[i])) return JE_FAIL;
        out->t = JT_LIST;
        out->u.l = l;
        return 0;
    }
    case N_DICT: {
        jdict *d = jdict_new(r, n->nargs);
        if (!d) return JE_FAIL;
        for (uint32_t i = 0; i < n->nargs; i++)
            if (eval(r, n->args[i], s, &a) || eval(r, n->kwv[i], s, &b) || jdict_set(r, d, a, b)) return JE_FAIL;
        out->t = JT_DICT;
        out->u.d = d;
        return 0;
    }
    case N_GETATTR:
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        r->line = n->line;
        return je_getattr(r, a, n->name, out);
    case N_GETITEM:
        if (eval(r, n->a, s, &a) || eval(r, n->b, s, &b)) return JE_FAIL;
        r->line = n->line;
        return je_getitem(r, a, b, out);
    case N_SLICE: {
        jv p[3] = {jv_none(), jv_none(), jv_none()};
        const jnode *parts[3] = {n->b, n->c, n->d};
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        for (int i = 0; i < 3; i++)
            if (parts[i] && eval(r, parts[i], s, &p[i])) return JE_FAIL;
        r->line = n->line;
        return do_slice(r, a, p[0], p[1], p[2], out);
    }
    case N_CALL: {
        jargs args;
        if (eval(r, n->a, s, &a) || eval_args(r, n, s, &args)) return JE_FAIL;
        r->line = n->line;
        return je_call(r, a, &args, out);
    }
    case N_FILTER: {
        jargs args;
        if (eval(r, n->a, s, &a) || eval_args(r, n, s, &args)) return JE_FAIL;
        r->line = n->line;
        return jf_apply(r, n->name, a, &args, out);
    }
    case N_TEST: {
        jargs args;
        int res;
        if (eval(r, n->a, s, &a) || eval_args(r, n, s, &args)) return JE_FAIL;
        r->line = n->line;
        if (jt_apply(r, n->name, a, &args, &res)) return JE_FAIL;
        *out = jv_bool(res);
        return 0;
    }
    case N_NEG:
    case N_POS:
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        if (a.t == JT_UNDEF) return jv_undef_error(r, a);
        if (a.t == JT_FLOAT) return *out = jv_float(n->kind == N_NEG ? -a.u.f : a.u.f), 0;
        if (a.t == JT_INT || a.t == JT_BOOL) {
            if (n->kind == N_NEG && a.u.i == INT64_MIN) return overflow(r);
            return *out = jv_int(n->kind == N_NEG ? -a.u.i : a.u.i), 0;
        }
        return jr_fail(r, TMPL_ERR_TYPE, "bad operand type for unary %c: '%s'", n->kind == N_NEG ? '-' : '+',
                       jv_typename(a));
    case N_NOT:
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        *out = jv_bool(!jv_truthy(a));
        return 0;
    case N_AND:
    case N_OR:
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        if (jv_truthy(a) == (n->kind == N_OR)) return *out = a, 0;
        return eval(r, n->b, s, out);
    case N_BINOP:
        if (eval(r, n->a, s, &a) || eval(r, n->b, s, &b)) return JE_FAIL;
        r->line = n->line;
        return binop(r, n->op, a, b, out);
    case N_COMPARE: {
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        int res = 1;
        for (uint32_t i = 0; i < n->nargs && res; i++) {
            if (eval(r, n->args[i], s, &b)) return JE_FAIL;
            r->line = n->line;
            if (compare(r, n->ops[i], a, b, &res)) return JE_FAIL;
            a = b;
        }
        *out = jv_bool(res);
        return 0;
    }
    case N_CONCAT: {
        jbuf *buf = jb_new(r, 64);
        if (!buf) return JE_FAIL;
        for (uint32_t i = 0; i < n->nargs; i++)
            if (eval(r, n->args[i], s, &a) || jv_write_str(r, buf, a)) return JE_FAIL;
        const jstr *res = jb_str(r, buf);
        if (!res) return JE_FAIL;
        *out = jv_str(res);
        return 0;
    }
    case N_COND:
        if (eval(r, n->a, s, &a)) return JE_FAIL;
        if (jv_truthy(a)) return eval(r, n->b, s, out);
        if (n->c) return eval(r, n->c, s, out);
        *out = jv_undef_hint(r, "the inline if-expression evaluated to false and no else section was defined.");
        return r->failed ? JE_FAIL : 0;
    default: return jr_fail(r, TMPL_ERR_TYPE, "internal error: bad expression node %d", n->kind);
    }
}

static int eval(jrt *r, const jnode *n, jscope *s, jv *out) {
    if (r->depth >= r->max_depth) return jr_fail(r, TMPL_ERR_LIMIT, "template nested too deeply at run time");
    r->line = n->line;
    if (jr_stack_check(r) || jr_step(r, 1)) return JE_FAIL;
    r->depth++;
    int rc = eval_inner(r, n, s, out);
    r->depth--;
    return rc;
}

/* ---------------------------------------------------------------- statements */

static int unpack(jrt *r, const jnode *target, jv v, jscope *s) {
    if (target->kind == N_NAME) return scope_set(r, s, target->name, v);
    const jv *items;
    size_t n;
    if (v.t == JT_UNDEF) return jv_undef_error(r, v);
    if (v.t != JT_LIST && v.t != JT_STR && v.t != JT_DICT)
        return jr_fail(r, TMPL_ERR_TYPE, "cannot unpack non-iterable %s object", jv_typename(v));
    if (jv_iter(r, v, &items, &n)) return JE_FAIL;
    if (n != target->nargs) {
        if (n > target->nargs)
            return jr_fail(r, TMPL_ERR_TYPE, "too many values to unpack (expected %u)", target->nargs);
        return jr_fail(r, TMPL_ERR_TYPE, "not enough values to unpack (expected %u, got %zu)", target->nargs, n);
    }
    for (uint32_t i = 0; i < n; i++)
        if (scope_set(r, s, target->args[i]->name, items[i])) return JE_FAIL;
    return 0;
}

static const jstr s_loop = {"loop", 4, 4, NULL};

static int exec_for(jrt *r, const jnode *n, jscope *s, jbuf *out) {
    jv it;
    const jv *items;
    size_t cnt;
    if (eval(r, n->b, s, &it)) return JE_FAIL;
    if (it.t == JT_NS || it.t == JT_LOOP || it.t == JT_MACRO)
        return jr_fail(r, TMPL_ERR_TYPE, "'%s' object is not iterable", jv_typename(it));
    if (jv_iter(r, it, &items, &cnt)) return JE_FAIL;
    if (n->c) { /* {% for x in xs if cond %}: filter first, so loop.length counts the kept items */
        jv *kept = jr_alloc(r, (cnt + 1) * sizeof(jv));
        if (!kept) return JE_FAIL;
        size_t k = 0;
        for (size_t i = 0; i < cnt; i++) {
            jscope *ts = scope_new(r, s);
            jv t;
            if (!ts || unpack(r, n->a, items[i], ts) || eval(r, n->c, ts, &t)) return JE_FAIL;
            if (jv_truthy(t)) kept[k++] = items[i];
        }
        items = kept;
        cnt = k;
    }
    if (cnt == 0) {
        jscope *es = scope_new(r, s);
        if (!es) return JE_FAIL;
        return exec_body(r, n->body2, n->nbody2, es, out) < 0 ? JE_FAIL : 0;
    }
    jloop *lp = jr_alloc(r, sizeof *lp);
    if (!lp) return JE_FAIL;
    lp->items = items;
    lp->length = (int64_t)cnt;
    lp->depth = 1;
    jv lv = {.t = JT_LOOP};
    lv.u.lp = lp;
    jscope *is = NULL;
    for (size_t i = 0; i < cnt; i++) {
        if (jr_step(r, 1)) return JE_FAIL;
        lp->index0 = (int64_t)i;
        /* every iteration starts with a fresh scope; the old one is recycled unless a macro kept it */
        if (is && !is->captured) is->n = 0;
        else if (!(is = scope_new(r, s))) return JE_FAIL;
        if (scope_set(r, is, &s_loop, lv) || unpack(r, n->a, items[i], is)) return JE_FAIL;
        int rc = exec_body(r, n->args, n->nargs, is, out);
        if (rc < 0) return JE_FAIL;
        if (rc == JC_BREAK) break;
    }
    return 0;
}

static int assign(jrt *r, const jnode *target, jv v, jscope *s) {
    if (target->kind == N_NSREF) {
        jv ns;
        if (!scope_get(s, target->a->name, &ns) && !jg_lookup(target->a->name, &ns)) ns = jv_undef();
        if (ns.t != JT_NS) return jr_fail(r, TMPL_ERR_TYPE, "cannot assign attribute on non-namespace object");
        return jdict_set(r, ns.u.d, jv_str(target->name), v);
    }
    return unpack(r, target, v, s);
}

static int render_block(jrt *r, jnode *const *body, uint32_t n, jscope *parent, jv *out) {
    jscope *bs = scope_new(r, parent);
    jbuf *b = jb_new(r, 128);
    if (!bs || !b || exec_body(r, body, n, bs, b) < 0) return JE_FAIL;
    const jstr *res = jb_str(r, b);
    if (!res) return JE_FAIL;
    *out = jv_str(res);
    return 0;
}

static int exec_stmt(jrt *r, const jnode *n, jscope *s, jbuf *out) {
    jv v;
    r->line = n->line;
    if (jr_step(r, 1)) return JE_FAIL;
    switch (n->kind) {
    case N_TEXT: return jb_put(r, out, n->val.u.s->p, n->val.u.s->len);
    case N_OUTPUT:
        if (eval(r, n->a, s, &v)) return JE_FAIL;
        return jv_write_str(r, out, v);
    case N_IF:
        if (eval(r, n->a, s, &v)) return JE_FAIL;
        if (jv_truthy(v)) return exec_body(r, n->args, n->nargs, s, out);
        return exec_body(r, n->body2, n->nbody2, s, out);
    case N_FOR: return exec_for(r, n, s, out);
    case N_SET:
        if (eval(r, n->b, s, &v)) return JE_FAIL;
        r->line = n->line;
        return assign(r, n->a, v, s);
    case N_SETBLOCK:
        if (render_block(r, n->args, n->nargs, s, &v) || apply_chain(r, n->b, v, s, &v)) return JE_FAIL;
        r->line = n->line;
        return assign(r, n->a, v, s);
    case N_FILTERBLOCK:
        if (render_block(r, n->args, n->nargs, s, &v) || apply_chain(r, n->b, v, s, &v)) return JE_FAIL;
        return jv_write_str(r, out, v);
    case N_MACRO:
    case N_CALLBLOCK: {
        jmacro *m = jr_alloc(r, sizeof *m);
        if (!m) return JE_FAIL;
        m->node = n;
        m->closure = s;
        for (jscope *c = s; c && !c->captured; c = c->parent) c->captured = 1;
        jv mv = {.t = JT_MACRO};
        mv.u.m = m;
        if (n->kind == N_MACRO) return scope_set(r, s, n->name, mv);
        const jnode *call = n->a;
        jv fn;
        jargs a;
        if (eval(r, call->a, s, &fn) || eval_args(r, call, s, &a)) return JE_FAIL;
        r->line = n->line;
        if (fn.t == JT_MACRO) {
            if (call_macro(r, fn.u.m, &a, mv, &v)) return JE_FAIL;
        } else {
            jargs b = a;
            b.kwn = jr_alloc(r, (a.nkw + 1) * sizeof(*b.kwn));
            b.kwv = jr_alloc(r, (a.nkw + 1) * sizeof(jv));
            if (!b.kwn || !b.kwv) return JE_FAIL;
            if (a.nkw) {
                memcpy(b.kwn, a.kwn, a.nkw * sizeof(*b.kwn));
                memcpy(b.kwv, a.kwv, a.nkw * sizeof(jv));
            }
            b.kwn[a.nkw] = &s_caller;
            b.kwv[a.nkw] = mv;
            b.nkw++;
            if (je_call(r, fn, &b, &v)) return JE_FAIL;
        }
        return jv_write_str(r, out, v);
    }
    case N_WITH: {
        jscope *ws = scope_new(r, s);
        if (!ws) return JE_FAIL;
        jv *vals = jr_alloc(r, (n->nkw + 1) * sizeof(jv));
        if (!vals) return JE_FAIL;
        for (uint32_t i = 0; i < n->nkw; i++)
            if (eval(r, n->kwv[i], s, &vals[i])) return JE_FAIL;
        for (uint32_t i = 0; i < n->nkw; i++)
            if (scope_set(r, ws, n->kwn[i], vals[i])) return JE_FAIL;
        return exec_body(r, n->args, n->nargs, ws, out);
    }
    case N_SCOPE: {
        jscope *bs = scope_new(r, s);
        if (!bs) return JE_FAIL;
        return exec_body(r, n->args, n->nargs, bs, out);
    }
    case N_BREAK: return JC_BREAK;
    case N_CONTINUE: return JC_CONTINUE;
    default: return jr_fail(r, TMPL_ERR_TYPE, "internal error: bad statement node %d", n->kind);
    }
}

/* Returns 0, JE_FAIL, or JC_BREAK/JC_CONTINUE to the enclosing loop. */
static int exec_body(jrt *r, jnode *const *body, uint32_t n, jscope *s, jbuf *out) {
    if (r->depth >= r->max_depth) return jr_fail(r, TMPL_ERR_LIMIT, "template nested too deeply at run time");
    if (jr_stack_check(r)) return JE_FAIL;
    r->depth++;
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) rc = exec_stmt(r, body[i], s, out);
    r->depth--;
    return rc;
}

int je_render(jrt *r, jnode *const *body, uint32_t n, jbuf *out) {
    jscope *s = scope_new(r, r->root);
    if (!s) return JE_FAIL;
    int rc = exec_body(r, body, n, s, out);
    return rc < 0 ? JE_FAIL : 0;
}
