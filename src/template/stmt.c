/* stmt.c: the statement half of the parser: the template body (data, {{ }} and {% %} in order),
 * if/elif/else, for (with its `if` filter and else), set (plain, tuple, namespace attribute, block
 * with filters), macro, call, filter, with, block, generation (transformers' extension) and
 * break/continue (loopcontrols, only inside loops); unknown and unsupported tags are errors that
 * name the tag, and an unclosed block names the end tags jinja2 was looking for. */
#include <string.h>

#include "template/jinja.h"
#include "template/parser.h"

/* ---------------------------------------------------------------- statements */

static int can_assign(jnode *t, int tuple_ok) {
    if (t->kind == N_NAME || t->kind == N_NSREF) return 1;
    if (t->kind == N_TUPLE && tuple_ok) {
        for (uint32_t i = 0; i < t->nargs; i++)
            if (t->args[i]->kind != N_NAME) return 0;
        return 1;
    }
    return 0;
}

static jnode *assign_target(jparser *P, const char *extra_end, int with_namespace) {
    int line = cur(P)->line;
    jnode *t = jp_tuple(P, 1, 1, extra_end, 0, with_namespace);
    if (!t) return NULL;
    if (!can_assign(t, 1) || (t->kind == N_NSREF && !with_namespace)) {
        jc_fail(P->c, line, "can't assign to '%s'", t->kind == N_CONST ? "const" : "expression");
        return NULL;
    }
    return t;
}

static const jstr *expect_name(jparser *P, const char *what) {
    jtok *t = cur(P);
    if (t->type != TK_NAME) {
        jp_fail_tok(P, what);
        return NULL;
    }
    adv(P);
    return t->s;
}

/* Body up to one of `ends`; leaves the parser after the end tag name when drop, at it otherwise. */
static int parse_body(jparser *P, const char *const *ends, int nends, nvec *body, int drop) {
    if (is_op(cur(P), OP_COLON)) adv(P);
    if (jp_expect_type(P, TK_BLOCK_END, "expected end of statement block")) return JE_FAIL;
    if (jp_subparse(P, ends, nends, body)) return JE_FAIL;
    if (drop) adv(P);
    return 0;
}

static int parse_signature(jparser *P, jnode *n) {
    if (jp_expect_op(P, OP_LPAREN, "expected '('")) return JE_FAIL;
    nvec defs = {0};
    const jstr **names = NULL;
    uint32_t cnt = 0, cap = 0;
    int have_default = 0;
    while (!is_op(cur(P), OP_RPAREN)) {
        if (cnt && jp_expect_op(P, OP_COMMA, "expected ','")) return JE_FAIL;
        const jstr *nm = expect_name(P, "expected a parameter name");
        if (!nm) return JE_FAIL;
        jnode *d = NULL;
        if (is_op(cur(P), OP_ASSIGN)) {
            adv(P);
            if (!(d = jp_expression(P, 1))) return JE_FAIL;
            have_default = 1;
        } else if (have_default) {
            return jc_fail(P->c, cur(P)->line, "non-default argument follows default argument");
        }
        if (cnt == cap) {
            cap = cap ? cap * 2 : 4;
            const jstr **nnm = ja_alloc(P->c->ar, cap * sizeof *nnm);
            if (!nnm) return jp_nomem(P);
            if (cnt) memcpy(nnm, names, cnt * sizeof *nnm);
            names = nnm;
        }
        names[cnt++] = nm;
        if (jp_push(P, &defs, d)) return JE_FAIL;
    }
    adv(P);
    n->kwn = names;
    n->kwv = defs.v;
    n->nkw = cnt;
    return 0;
}

static jnode *parse_macro_like(jparser *P, jnode *n, const char *end) {
    jnode *saved = P->macro;
    int saved_loops = P->loop_depth;
    P->macro = n;
    P->loop_depth = 0;
    nvec body = {0};
    const char *ends[] = {end};
    int rc = parse_body(P, ends, 1, &body, 1);
    P->macro = saved;
    P->loop_depth = saved_loops;
    if (rc) return NULL;
    n->args = body.v;
    n->nargs = body.n;
    return n;
}

static jnode *parse_statement(jparser *P) {
    jtok *t = cur(P);
    if (t->type != TK_NAME) {
        jp_fail_tok(P, "tag name expected");
        return NULL;
    }
    int line = t->line;
    adv(P);
    if (is_name(t, "if")) {
        jnode *root = NULL, *node = NULL;
        for (;;) {
            jnode *x = jp_node(P, N_IF, line);
            if (!x || !(x->a = jp_tuple(P, 0, 0, NULL, 0, 0))) return NULL;
            nvec body = {0};
            const char *ends[] = {"elif", "else", "endif"};
            if (parse_body(P, ends, 3, &body, 0)) return NULL;
            x->args = body.v;
            x->nargs = body.n;
            if (!root) root = x;
            else {
                node->body2 = ja_alloc(P->c->ar, sizeof(jnode *));
                if (!node->body2) return jp_nomem(P), NULL;
                node->body2[0] = x;
                node->nbody2 = 1;
            }
            node = x;
            jtok *end = cur(P);
            line = end->line;
            adv(P);
            if (is_name(end, "elif")) continue;
            if (is_name(end, "else")) {
                nvec eb = {0};
                const char *e2[] = {"endif"};
                if (parse_body(P, e2, 1, &eb, 1)) return NULL;
                node->body2 = eb.v;
                node->nbody2 = eb.n;
            }
            return root;
        }
    }
    if (is_name(t, "for")) {
        jnode *x = jp_node(P, N_FOR, line);
        if (!x || !(x->a = assign_target(P, "in", 0))) return NULL;
        if (x->a->kind == N_NSREF) {
            jc_fail(P->c, line, "can't assign to a namespace attribute in a for loop");
            return NULL;
        }
        if (!is_name(cur(P), "in")) {
            jp_fail_tok(P, "expected 'in'");
            return NULL;
        }
        adv(P);
        if (!(x->b = jp_tuple(P, 0, 0, "recursive", 0, 0))) return NULL;
        if (is_name(cur(P), "if")) {
            adv(P);
            if (!(x->c = jp_expression(P, 1))) return NULL;
        }
        if (is_name(cur(P), "recursive")) {
            jc_fail(P->c, line, "recursive for loops are not supported");
            P->c->err->kind = TMPL_ERR_UNSUPPORTED;
            return NULL;
        }
        P->loop_depth++;
        nvec body = {0};
        const char *ends[] = {"endfor", "else"};
        int rc = parse_body(P, ends, 2, &body, 0);
        P->loop_depth--;
        if (rc) return NULL;
        x->args = body.v;
        x->nargs = body.n;
        jtok *end = cur(P);
        adv(P);
        if (is_name(end, "else")) {
            nvec eb = {0};
            const char *e2[] = {"endfor"};
            if (parse_body(P, e2, 1, &eb, 1)) return NULL;
            x->body2 = eb.v;
            x->nbody2 = eb.n;
        }
        return x;
    }
    if (is_name(t, "set")) {
        jnode *target = assign_target(P, NULL, 1);
        if (!target) return NULL;
        if (is_op(cur(P), OP_ASSIGN)) {
            adv(P);
            jnode *x = jp_node(P, N_SET, line);
            if (!x || !(x->b = jp_tuple(P, 0, 1, NULL, 0, 0))) return NULL;
            x->a = target;
            return x;
        }
        jnode *x = jp_node(P, N_SETBLOCK, line);
        if (!x) return NULL;
        x->a = target;
        if (is_op(cur(P), OP_PIPE) && !(x->b = jp_filter(P, NULL, 0))) return NULL;
        nvec body = {0};
        const char *ends[] = {"endset"};
        if (parse_body(P, ends, 1, &body, 1)) return NULL;
        x->args = body.v;
        x->nargs = body.n;
        return x;
    }
    if (is_name(t, "macro")) {
        jnode *x = jp_node(P, N_MACRO, line);
        if (!x || !(x->name = expect_name(P, "expected a macro name")) || parse_signature(P, x)) return NULL;
        return parse_macro_like(P, x, "endmacro");
    }
    if (is_name(t, "call")) {
        jnode *x = jp_node(P, N_CALLBLOCK, line);
        if (!x) return NULL;
        if (is_op(cur(P), OP_LPAREN) && parse_signature(P, x)) return NULL;
        if (!(x->a = jp_expression(P, 1))) return NULL;
        if (x->a->kind != N_CALL) {
            jc_fail(P->c, line, "expected call");
            return NULL;
        }
        return parse_macro_like(P, x, "endcall");
    }
    if (is_name(t, "filter")) {
        jnode *x = jp_node(P, N_FILTERBLOCK, line);
        if (!x || !(x->b = jp_filter(P, NULL, 1))) return NULL;
        nvec body = {0};
        const char *ends[] = {"endfilter"};
        if (parse_body(P, ends, 1, &body, 1)) return NULL;
        x->args = body.v;
        x->nargs = body.n;
        return x;
    }
    if (is_name(t, "with")) {
        jnode *x = jp_node(P, N_WITH, line);
        if (!x) return NULL;
        nvec vals = {0};
        const jstr **names = NULL;
        uint32_t cnt = 0, cap = 0;
        while (cur(P)->type != TK_BLOCK_END) {
            if (cnt && jp_expect_op(P, OP_COMMA, "expected ','")) return NULL;
            const jstr *nm = expect_name(P, "expected a name");
            if (!nm || jp_expect_op(P, OP_ASSIGN, "expected '='")) return NULL;
            jnode *v = jp_expression(P, 1);
            if (!v || jp_push(P, &vals, v)) return NULL;
            if (cnt == cap) {
                cap = cap ? cap * 2 : 4;
                const jstr **nnm = ja_alloc(P->c->ar, cap * sizeof *nnm);
                if (!nnm) return jp_nomem(P), NULL;
                if (cnt) memcpy(nnm, names, cnt * sizeof *nnm);
                names = nnm;
            }
            names[cnt++] = nm;
        }
        x->kwn = names;
        x->kwv = vals.v;
        x->nkw = cnt;
        nvec body = {0};
        const char *ends[] = {"endwith"};
        if (parse_body(P, ends, 1, &body, 1)) return NULL;
        x->args = body.v;
        x->nargs = body.n;
        return x;
    }
    if (is_name(t, "block") || is_name(t, "generation")) {
        int is_block = is_name(t, "block");
        const jstr *bname = NULL;
        if (is_block) {
            if (!(bname = expect_name(P, "expected a block name"))) return NULL;
            if (is_name(cur(P), "scoped")) adv(P);
            if (is_name(cur(P), "required")) adv(P);
        }
        jnode *x = jp_node(P, N_SCOPE, line);
        if (!x) return NULL;
        nvec body = {0};
        const char *ends[] = {is_block ? "endblock" : "endgeneration"};
        if (parse_body(P, ends, 1, &body, 1)) return NULL;
        if (is_block && cur(P)->type == TK_NAME && cur(P)->s == bname) adv(P);
        x->args = body.v;
        x->nargs = body.n;
        return x;
    }
    if (is_name(t, "break") || is_name(t, "continue")) {
        if (!P->loop_depth) {
            jc_fail(P->c, line, "'%s' outside loop", t->s->p[0] == 'b' ? "break" : "continue");
            return NULL;
        }
        return jp_node(P, t->s->p[0] == 'b' ? N_BREAK : N_CONTINUE, line);
    }
    static const char *const unsupported[] = {"extends", "include", "import", "from", "autoescape", "print"};
    for (size_t i = 0; i < sizeof unsupported / sizeof unsupported[0]; i++)
        if (is_name(t, unsupported[i])) {
            jc_fail(P->c, line, "the '%s' tag is not supported in chat templates", unsupported[i]);
            P->c->err->kind = TMPL_ERR_UNSUPPORTED;
            return NULL;
        }
    jc_fail(P->c, line, "Encountered unknown tag '%.*s'.", (int)(t->s->len > 100 ? 100 : t->s->len), t->s->p);
    return NULL;
}

int jp_subparse(jparser *P, const char *const *ends, int nends, nvec *body) {
    if (jp_enter(P)) return JE_FAIL;
    for (;;) {
        jtok *t = cur(P);
        if (t->type == TK_EOF) {
            if (nends) {
                char want[128] = "";
                for (int i = 0; i < nends; i++) {
                    strncat(want, i ? " or '" : "'", sizeof want - strlen(want) - 1);
                    strncat(want, ends[i], sizeof want - strlen(want) - 1);
                    strncat(want, "'", sizeof want - strlen(want) - 1);
                }
                return jc_fail(P->c, t->line, "Unexpected end of template. Jinja was looking for the following tags: %s.",
                               want);
            }
            break;
        }
        if (t->type == TK_DATA) {
            jnode *n = jp_node(P, N_TEXT, t->line);
            if (!n) return JE_FAIL;
            n->val = jv_str(t->s);
            if (jp_push(P, body, n)) return JE_FAIL;
            adv(P);
        } else if (t->type == TK_VAR_BEGIN) {
            adv(P);
            jnode *n = jp_node(P, N_OUTPUT, t->line);
            if (!n || !(n->a = jp_tuple(P, 0, 1, NULL, 0, 0))) return JE_FAIL;
            if (jp_expect_type(P, TK_VAR_END, "expected end of print statement")) return JE_FAIL;
            if (jp_push(P, body, n)) return JE_FAIL;
        } else if (t->type == TK_BLOCK_BEGIN) {
            adv(P);
            for (int i = 0; i < nends; i++)
                if (is_name(cur(P), ends[i])) {
                    P->depth--;
                    return 0;
                }
            jnode *n = parse_statement(P);
            if (!n) return JE_FAIL;
            if (jp_expect_type(P, TK_BLOCK_END, "expected end of statement block")) return JE_FAIL;
            if (jp_push(P, body, n)) return JE_FAIL;
        } else {
            return jp_fail_tok(P, "unexpected token");
        }
    }
    P->depth--;
    return 0;
}

int jp_parse(jcomp *c, jnode ***body, uint32_t *n) {
    jparser P = {.c = c};
    nvec b = {0};
    if (jp_subparse(&P, NULL, 0, &b)) return JE_FAIL;
    *body = b.v;
    *n = b.n;
    return 0;
}
