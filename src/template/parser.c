/* parser.c: tokens -> AST for expressions, a recursive-descent port of jinja2's parser.py with the
 * same precedence (low to high): conditional `a if b else c`, or, and, not, comparisons (chained,
 * in, not in), + -, ~, * / // %, **, unary - +, then postfix (.attr, [item], [a:b:c], calls),
 * filters (|f) and tests (is t, with jinja2's one-argument form `is divisibleby 3`); plus the token
 * helpers both halves use. Statements are in stmt.c. Unknown filters and tests are errors at
 * compile time, as in jinja2. Nesting is bounded (jp_enter) so hostile input cannot exhaust the C stack. */
#include <string.h>

#include "template/jinja.h"
#include "template/parser.h"

static const char *describe(jtok *t) {
    switch (t->type) {
    case TK_EOF: return "end of template";
    case TK_DATA: return "template data";
    case TK_VAR_BEGIN: return "begin of print statement";
    case TK_VAR_END: return "end of print statement";
    case TK_BLOCK_BEGIN: return "begin of statement block";
    case TK_BLOCK_END: return "end of statement block";
    case TK_NAME: return "name";
    case TK_STRING: return "string";
    case TK_INT: return "integer";
    case TK_FLOAT: return "float";
    default: break;
    }
    static const char *const ops[] = {"+", "-", "*", "/", "//", "%", "**", "~", "(", ")", "[", "]", "{",
                                      "}", "==", "!=", "<", "<=", ">", ">=", "=", ".", ":", "|", ",", ";"};
    return t->op < sizeof ops / sizeof ops[0] ? ops[t->op] : "operator";
}

int jp_fail_tok(jparser *P, const char *what) {
    jtok *t = cur(P);
    if (t->type == TK_NAME)
        return jc_fail(P->c, t->line, "%s, got '%.*s'", what, (int)(t->s->len > 100 ? 100 : t->s->len), t->s->p);
    return jc_fail(P->c, t->line, "%s, got '%s'", what, describe(t));
}

int jp_nomem(jparser *P) {
    jc_fail(P->c, cur(P)->line, "out of memory");
    P->c->err->kind = TMPL_ERR_NOMEM;
    return JE_FAIL;
}

jnode *jp_node(jparser *P, int kind, int line) {
    jnode *n = ja_alloc(P->c->ar, sizeof *n);
    if (!n) {
        jp_nomem(P);
        return NULL;
    }
    n->kind = (uint8_t)kind;
    n->line = line;
    return n;
}

int jp_push(jparser *P, nvec *v, jnode *x) {
    if (v->n == v->cap) {
        uint32_t cap = v->cap ? v->cap * 2 : 8;
        jnode **nv = ja_alloc(P->c->ar, cap * sizeof *nv);
        if (!nv) return jp_nomem(P);
        if (v->n) memcpy(nv, v->v, v->n * sizeof *nv);
        v->v = nv;
        v->cap = cap;
    }
    v->v[v->n++] = x;
    return 0;
}

int jp_expect_op(jparser *P, int op, const char *what) {
    if (!is_op(cur(P), op)) return jp_fail_tok(P, what);
    adv(P);
    return 0;
}

int jp_expect_type(jparser *P, int type, const char *what) {
    if (cur(P)->type != type) return jp_fail_tok(P, what);
    adv(P);
    return 0;
}

/* Every recursion of the parser (expressions, statement bodies) passes here. PARSE_MAX_DEPTH is the
 * language's limit; the stack check is what keeps a small thread (or ASan's larger frames) from
 * overflowing before it. */
int jp_enter(jparser *P) {
    if (++P->depth > PARSE_MAX_DEPTH) return jc_fail(P->c, cur(P)->line, "template nested too deeply");
    if (vc_stack_low()) {
        int first = !P->c->err->kind;
        jc_fail(P->c, cur(P)->line, "template nested too deeply for this thread's stack");
        if (first) P->c->err->kind = TMPL_ERR_LIMIT;
        return JE_FAIL;
    }
    return 0;
}

static jnode *parse_unary(jparser *P, int with_filter);
static jnode *parse_postfix(jparser *P, jnode *node);

/* ---------------------------------------------------------------- expressions */

/* (args, kw=args): into n->args / n->kwn / n->kwv. */
static int parse_call_args(jparser *P, jnode *n) {
    int line = cur(P)->line;
    if (jp_expect_op(P, OP_LPAREN, "expected '('")) return JE_FAIL;
    nvec pos = {0}, kwv = {0};
    const jstr **kwn = NULL;
    uint32_t nkw = 0, capkw = 0;
    int need_comma = 0;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (need_comma) {
            if (jp_expect_op(P, OP_COMMA, "expected ','")) return JE_FAIL;
            if (is_op(cur(P), OP_RPAREN)) break;
        }
        if (is_op(cur(P), OP_MUL) || is_op(cur(P), OP_POW)) {
            jc_fail(P->c, line, "*args and **kwargs in calls are not supported");
            P->c->err->kind = TMPL_ERR_UNSUPPORTED;
            return JE_FAIL;
        }
        if (cur(P)->type == TK_NAME && is_op(look(P), OP_ASSIGN)) {
            const jstr *key = cur(P)->s;
            adv(P);
            adv(P);
            jnode *v = jp_expression(P, 1);
            if (!v) return JE_FAIL;
            for (uint32_t i = 0; i < nkw; i++)
                if (kwn[i] == key) return jc_fail(P->c, line, "keyword argument repeated");
            if (nkw == capkw) {
                capkw = capkw ? capkw * 2 : 4;
                const jstr **nk = ja_alloc(P->c->ar, capkw * sizeof *nk);
                if (!nk) return jp_nomem(P);
                if (nkw) memcpy(nk, kwn, nkw * sizeof *nk);
                kwn = nk;
            }
            kwn[nkw++] = key;
            if (jp_push(P, &kwv, v)) return JE_FAIL;
        } else {
            if (nkw) return jc_fail(P->c, line, "invalid syntax for function call expression");
            jnode *v = jp_expression(P, 1);
            if (!v || jp_push(P, &pos, v)) return JE_FAIL;
        }
        need_comma = 1;
    }
    adv(P);
    n->args = pos.v;
    n->nargs = pos.n;
    n->kwn = kwn;
    n->kwv = kwv.v;
    n->nkw = nkw;
    return 0;
}

jnode *jp_filter(jparser *P, jnode *node, int start_inline) {
    while (is_op(cur(P), OP_PIPE) || start_inline) {
        if (!start_inline) adv(P);
        start_inline = 0;
        jtok *t = cur(P);
        if (t->type != TK_NAME) {
            jp_fail_tok(P, "expected a filter name");
            return NULL;
        }
        adv(P);
        if (is_op(cur(P), OP_DOT) || !jf_find(t->s->p, t->s->len)) {
            jc_fail(P->c, t->line, "No filter named '%.*s'.", (int)(t->s->len > 100 ? 100 : t->s->len), t->s->p);
            return NULL;
        }
        jnode *f = jp_node(P, N_FILTER, t->line);
        if (!f) return NULL;
        f->a = node;
        f->name = t->s;
        if (is_op(cur(P), OP_LPAREN) && parse_call_args(P, f)) return NULL;
        node = f;
    }
    return node;
}

static jnode *parse_test(jparser *P, jnode *node) {
    int line = cur(P)->line;
    adv(P); /* is */
    int negated = 0;
    if (is_name(cur(P), "not")) {
        adv(P);
        negated = 1;
    }
    jtok *t = cur(P);
    if (t->type != TK_NAME) {
        jp_fail_tok(P, "expected a test name");
        return NULL;
    }
    adv(P);
    if (is_op(cur(P), OP_DOT) || !jt_exists(t->s->p, t->s->len)) {
        jc_fail(P->c, t->line, "No test named '%.*s'.", (int)(t->s->len > 100 ? 100 : t->s->len), t->s->p);
        return NULL;
    }
    jnode *x = jp_node(P, N_TEST, line);
    if (!x) return NULL;
    x->a = node;
    x->name = t->s;
    jtok *c = cur(P);
    if (is_op(c, OP_LPAREN)) {
        if (parse_call_args(P, x)) return NULL;
    } else if ((c->type == TK_NAME || c->type == TK_STRING || c->type == TK_INT || c->type == TK_FLOAT ||
                is_op(c, OP_LPAREN) || is_op(c, OP_LBRACKET) || is_op(c, OP_LBRACE)) &&
               !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
        if (is_name(c, "is")) {
            jc_fail(P->c, c->line, "You cannot chain multiple tests with is");
            return NULL;
        }
        jnode *arg = jp_primary(P, 0);
        if (!arg || !(arg = parse_postfix(P, arg))) return NULL;
        x->args = ja_alloc(P->c->ar, sizeof(jnode *));
        if (!x->args) {
            jp_nomem(P);
            return NULL;
        }
        x->args[0] = arg;
        x->nargs = 1;
    }
    if (negated) {
        jnode *n = jp_node(P, N_NOT, line);
        if (!n) return NULL;
        n->a = x;
        x = n;
    }
    return x;
}

/* One subscript: an expression or a slice (returned as N_SLICE with a == NULL). */
static jnode *parse_subscribed(jparser *P) {
    int line = cur(P)->line;
    jnode *parts[3] = {NULL, NULL, NULL};
    if (is_op(cur(P), OP_COLON)) {
        adv(P);
    } else {
        jnode *e = jp_expression(P, 1);
        if (!e) return NULL;
        if (!is_op(cur(P), OP_COLON)) return e;
        adv(P);
        parts[0] = e;
    }
    if (!is_op(cur(P), OP_COLON) && !is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA)) {
        if (!(parts[1] = jp_expression(P, 1))) return NULL;
    }
    if (is_op(cur(P), OP_COLON)) {
        adv(P);
        if (!is_op(cur(P), OP_RBRACKET) && !is_op(cur(P), OP_COMMA) && !(parts[2] = jp_expression(P, 1)))
            return NULL;
    }
    jnode *s = jp_node(P, N_SLICE, line);
    if (!s) return NULL;
    s->b = parts[0];
    s->c = parts[1];
    s->d = parts[2];
    return s;
}

static jnode *parse_subscript(jparser *P, jnode *node) {
    jtok *t = cur(P);
    adv(P);
    if (t->type == TK_OP && t->op == OP_DOT) {
        jtok *a = cur(P);
        adv(P);
        if (a->type == TK_NAME) {
            jnode *g = jp_node(P, N_GETATTR, t->line);
            if (!g) return NULL;
            g->a = node;
            g->name = a->s;
            return g;
        }
        if (a->type != TK_INT) {
            P->pos--;
            jp_fail_tok(P, "expected name or number");
            return NULL;
        }
        jnode *k = jp_node(P, N_CONST, a->line), *g = jp_node(P, N_GETITEM, t->line);
        if (!k || !g) return NULL;
        k->val = jv_int(a->i);
        g->a = node;
        g->b = k;
        return g;
    }
    /* [ */
    nvec args = {0};
    while (!is_op(cur(P), OP_RBRACKET)) {
        if (args.n && jp_expect_op(P, OP_COMMA, "expected ','")) return NULL;
        jnode *s = parse_subscribed(P);
        if (!s || jp_push(P, &args, s)) return NULL;
    }
    if (jp_expect_op(P, OP_RBRACKET, "expected ']'")) return NULL;
    if (args.n == 1 && args.v[0]->kind == N_SLICE && !args.v[0]->a) {
        jnode *s = args.v[0];
        s->a = node;
        return s;
    }
    if (args.n == 0) {
        jc_fail(P->c, t->line, "expected subscript expression");
        return NULL;
    }
    jnode *key = args.v[0];
    if (args.n > 1) {
        for (uint32_t i = 0; i < args.n; i++)
            if (args.v[i]->kind == N_SLICE && !args.v[i]->a) {
                jc_fail(P->c, t->line, "slices inside tuple subscripts are not supported");
                P->c->err->kind = TMPL_ERR_UNSUPPORTED;
                return NULL;
            }
        if (!(key = jp_node(P, N_TUPLE, t->line))) return NULL;
        key->args = args.v;
        key->nargs = args.n;
    }
    jnode *g = jp_node(P, N_GETITEM, t->line);
    if (!g) return NULL;
    g->a = node;
    g->b = key;
    return g;
}

static jnode *parse_call(jparser *P, jnode *node) {
    jnode *c = jp_node(P, N_CALL, cur(P)->line);
    if (!c) return NULL;
    c->a = node;
    if (parse_call_args(P, c)) return NULL;
    return c;
}

static jnode *parse_postfix(jparser *P, jnode *node) {
    while (node) {
        if (is_op(cur(P), OP_DOT) || is_op(cur(P), OP_LBRACKET)) node = parse_subscript(P, node);
        else if (is_op(cur(P), OP_LPAREN)) node = parse_call(P, node);
        else break;
    }
    return node;
}

static jnode *parse_filter_expr(jparser *P, jnode *node) {
    while (node) {
        if (is_op(cur(P), OP_PIPE)) node = jp_filter(P, node, 0);
        else if (is_name(cur(P), "is")) node = parse_test(P, node);
        else if (is_op(cur(P), OP_LPAREN)) node = parse_call(P, node);
        else break;
    }
    return node;
}

jnode *jp_primary(jparser *P, int with_namespace) {
    if (jp_enter(P)) return NULL;
    jtok *t = cur(P);
    jnode *node = NULL;
    switch (t->type) {
    case TK_NAME:
        adv(P);
        if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
            if ((node = jp_node(P, N_CONST, t->line))) node->val = jv_bool(t->s->p[0] == 't' || t->s->p[0] == 'T');
        } else if (is_name(t, "none") || is_name(t, "None")) {
            if ((node = jp_node(P, N_CONST, t->line))) node->val = jv_none();
        } else if (with_namespace && is_op(cur(P), OP_DOT)) {
            adv(P);
            jtok *a = cur(P);
            if (a->type != TK_NAME) {
                jp_fail_tok(P, "expected name");
                return NULL;
            }
            adv(P);
            jnode *ns = jp_node(P, N_NAME, t->line);
            if (!ns || !(node = jp_node(P, N_NSREF, t->line))) return NULL;
            ns->name = t->s;
            node->a = ns;
            node->name = a->s;
        } else if ((node = jp_node(P, N_NAME, t->line))) {
            node->name = t->s;
            if (P->macro) {
                if (is_name(t, "caller")) P->macro->flags |= NF_USES_CALLER;
                else if (is_name(t, "varargs")) P->macro->flags |= NF_USES_VARARGS;
                else if (is_name(t, "kwargs")) P->macro->flags |= NF_USES_KWARGS;
            }
        }
        break;
    case TK_STRING: {
        adv(P);
        const jstr *s = t->s;
        if (cur(P)->type == TK_STRING) {
            size_t total = s->len;
            for (size_t k = P->pos; P->c->tok[k].type == TK_STRING; k++) total += P->c->tok[k].s->len;
            char *d = ja_alloc(P->c->ar, total + 1);
            jstr *ns = ja_alloc(P->c->ar, sizeof *ns);
            if (!d || !ns) {
                jp_nomem(P);
                return NULL;
            }
            memcpy(d, s->p, s->len);
            size_t o = s->len;
            while (cur(P)->type == TK_STRING) {
                memcpy(d + o, cur(P)->s->p, cur(P)->s->len);
                o += cur(P)->s->len;
                adv(P);
            }
            ns->p = d;
            ns->len = o;
            ns->ncp = js_count_cp(d, o);
            s = ns;
        }
        if ((node = jp_node(P, N_CONST, t->line))) node->val = jv_str(s);
        break;
    }
    case TK_INT:
    case TK_FLOAT:
        adv(P);
        if ((node = jp_node(P, N_CONST, t->line))) node->val = t->type == TK_INT ? jv_int(t->i) : jv_float(t->f);
        break;
    case TK_OP:
        if (t->op == OP_LPAREN) {
            adv(P);
            node = jp_tuple(P, 0, 1, NULL, 1, 0);
            if (node && jp_expect_op(P, OP_RPAREN, "expected ')'")) node = NULL;
        } else if (t->op == OP_LBRACKET) {
            adv(P);
            nvec items = {0};
            while (!is_op(cur(P), OP_RBRACKET)) {
                if (items.n && jp_expect_op(P, OP_COMMA, "expected ','")) return NULL;
                if (is_op(cur(P), OP_RBRACKET)) break;
                jnode *e = jp_expression(P, 1);
                if (!e || jp_push(P, &items, e)) return NULL;
            }
            if (jp_expect_op(P, OP_RBRACKET, "expected ']'")) return NULL;
            if ((node = jp_node(P, N_LIST, t->line))) {
                node->args = items.v;
                node->nargs = items.n;
            }
        } else if (t->op == OP_LBRACE) {
            adv(P);
            nvec keys = {0}, vals = {0};
            while (!is_op(cur(P), OP_RBRACE)) {
                if (keys.n && jp_expect_op(P, OP_COMMA, "expected ','")) return NULL;
                if (is_op(cur(P), OP_RBRACE)) break;
                jnode *k = jp_expression(P, 1);
                if (!k || jp_expect_op(P, OP_COLON, "expected ':'")) return NULL;
                jnode *v = jp_expression(P, 1);
                if (!v || jp_push(P, &keys, k) || jp_push(P, &vals, v)) return NULL;
            }
            if (jp_expect_op(P, OP_RBRACE, "expected '}'")) return NULL;
            if ((node = jp_node(P, N_DICT, t->line))) {
                node->args = keys.v;
                node->nargs = keys.n;
                node->kwv = vals.v;
                node->nkw = vals.n;
            }
        } else {
            jp_fail_tok(P, "unexpected token");
        }
        break;
    default: jp_fail_tok(P, "unexpected token"); break;
    }
    P->depth--;
    return node;
}

static jnode *parse_unary(jparser *P, int with_filter) {
    if (jp_enter(P)) return NULL;
    jtok *t = cur(P);
    jnode *node;
    if (is_op(t, OP_SUB) || is_op(t, OP_ADD)) {
        adv(P);
        node = jp_node(P, is_op(t, OP_SUB) ? N_NEG : N_POS, t->line);
        if (node && !(node->a = parse_unary(P, 0))) node = NULL;
    } else {
        node = jp_primary(P, 0);
    }
    node = parse_postfix(P, node);
    if (with_filter) node = parse_filter_expr(P, node);
    P->depth--;
    return node;
}

static jnode *binop(jparser *P, int kind, int op, jnode *a, jnode *b, int line) {
    if (!a || !b) return NULL;
    jnode *n = jp_node(P, kind, line);
    if (!n) return NULL;
    n->op = (uint8_t)op;
    n->a = a;
    n->b = b;
    return n;
}

static jnode *parse_pow(jparser *P) {
    jnode *left = parse_unary(P, 1);
    while (left && is_op(cur(P), OP_POW)) {
        int line = cur(P)->line;
        adv(P);
        left = binop(P, N_BINOP, JOP_POW, left, parse_unary(P, 1), line);
    }
    return left;
}

static jnode *parse_math2(jparser *P) {
    jnode *left = parse_pow(P);
    while (left) {
        jtok *t = cur(P);
        int op = is_op(t, OP_MUL) ? JOP_MUL : is_op(t, OP_DIV) ? JOP_DIV : is_op(t, OP_FLOORDIV) ? JOP_FLOORDIV
                 : is_op(t, OP_MOD) ? JOP_MOD : -1;
        if (op < 0) break;
        adv(P);
        left = binop(P, N_BINOP, op, left, parse_pow(P), t->line);
    }
    return left;
}

static jnode *parse_concat(jparser *P) {
    int line = cur(P)->line;
    jnode *first = parse_math2(P);
    if (!first || !is_op(cur(P), OP_TILDE)) return first;
    nvec args = {0};
    if (jp_push(P, &args, first)) return NULL;
    while (is_op(cur(P), OP_TILDE)) {
        adv(P);
        jnode *e = parse_math2(P);
        if (!e || jp_push(P, &args, e)) return NULL;
    }
    jnode *n = jp_node(P, N_CONCAT, line);
    if (!n) return NULL;
    n->args = args.v;
    n->nargs = args.n;
    return n;
}

static jnode *parse_math1(jparser *P) {
    jnode *left = parse_concat(P);
    while (left && (is_op(cur(P), OP_ADD) || is_op(cur(P), OP_SUB))) {
        jtok *t = cur(P);
        adv(P);
        left = binop(P, N_BINOP, t->op == OP_ADD ? JOP_ADD : JOP_SUB, left, parse_concat(P), t->line);
    }
    return left;
}

static jnode *parse_compare(jparser *P) {
    int line = cur(P)->line;
    jnode *expr = parse_math1(P);
    if (!expr) return NULL;
    nvec operands = {0};
    uint8_t opsbuf[64], *ops = opsbuf;
    for (;;) {
        jtok *t = cur(P);
        int op = -1;
        if (t->type == TK_OP) {
            switch (t->op) {
            case OP_EQ: op = JCMP_EQ; break;
            case OP_NE: op = JCMP_NE; break;
            case OP_LT: op = JCMP_LT; break;
            case OP_LE: op = JCMP_LE; break;
            case OP_GT: op = JCMP_GT; break;
            case OP_GE: op = JCMP_GE; break;
            default: break;
            }
            if (op >= 0) adv(P);
        } else if (is_name(t, "in")) {
            op = JCMP_IN;
            adv(P);
        } else if (is_name(t, "not") && is_name(look(P), "in")) {
            op = JCMP_NOTIN;
            adv(P);
            adv(P);
        }
        if (op < 0) break;
        if (operands.n == sizeof opsbuf) {
            jc_fail(P->c, t->line, "comparison chain too long");
            return NULL;
        }
        jnode *e = parse_math1(P);
        if (!e || jp_push(P, &operands, e)) return NULL;
        ops[operands.n - 1] = (uint8_t)op;
    }
    if (!operands.n) return expr;
    jnode *n = jp_node(P, N_COMPARE, line);
    if (!n) return NULL;
    n->a = expr;
    n->args = operands.v;
    n->nargs = operands.n;
    n->ops = ja_alloc(P->c->ar, operands.n);
    if (!n->ops) {
        jp_nomem(P);
        return NULL;
    }
    memcpy(n->ops, ops, operands.n);
    return n;
}

static jnode *parse_not(jparser *P) {
    if (is_name(cur(P), "not")) {
        int line = cur(P)->line;
        adv(P);
        if (jp_enter(P)) return NULL;
        jnode *n = jp_node(P, N_NOT, line);
        if (n && !(n->a = parse_not(P))) n = NULL;
        P->depth--;
        return n;
    }
    return parse_compare(P);
}

static jnode *parse_and(jparser *P) {
    jnode *left = parse_not(P);
    while (left && is_name(cur(P), "and")) {
        int line = cur(P)->line;
        adv(P);
        left = binop(P, N_AND, 0, left, parse_not(P), line);
    }
    return left;
}

static jnode *parse_or(jparser *P) {
    jnode *left = parse_and(P);
    while (left && is_name(cur(P), "or")) {
        int line = cur(P)->line;
        adv(P);
        left = binop(P, N_OR, 0, left, parse_and(P), line);
    }
    return left;
}

jnode *jp_expression(jparser *P, int with_condexpr) {
    if (jp_enter(P)) return NULL;
    int line = cur(P)->line;
    jnode *e1 = parse_or(P);
    while (with_condexpr && e1 && is_name(cur(P), "if")) {
        adv(P);
        jnode *n = jp_node(P, N_COND, line), *test = parse_or(P);
        if (!n || !test) return NULL;
        n->a = test;
        n->b = e1;
        if (is_name(cur(P), "else")) {
            adv(P);
            if (!(n->c = jp_expression(P, 1))) return NULL;
        }
        e1 = n;
        line = cur(P)->line;
    }
    P->depth--;
    return e1;
}

static int is_tuple_end(jparser *P, const char *extra_end) {
    jtok *t = cur(P);
    if (t->type == TK_VAR_END || t->type == TK_BLOCK_END || is_op(t, OP_RPAREN)) return 1;
    return extra_end && is_name(t, extra_end);
}

jnode *jp_tuple(jparser *P, int simplified, int with_condexpr, const char *extra_end, int explicit_paren,
                          int with_namespace) {
    int line = cur(P)->line;
    nvec args = {0};
    int is_tuple = 0;
    for (;;) {
        if (args.n && jp_expect_op(P, OP_COMMA, "expected ','")) return NULL;
        if (is_tuple_end(P, extra_end)) break;
        jnode *e = simplified ? jp_primary(P, with_namespace) : jp_expression(P, with_condexpr);
        if (!e || jp_push(P, &args, e)) return NULL;
        if (is_op(cur(P), OP_COMMA)) is_tuple = 1;
        else break;
    }
    if (!is_tuple) {
        if (args.n) return args.v[0];
        if (!explicit_paren) {
            jp_fail_tok(P, "Expected an expression");
            return NULL;
        }
    }
    jnode *n = jp_node(P, N_TUPLE, line);
    if (!n) return NULL;
    n->args = args.v;
    n->nargs = args.n;
    return n;
}
