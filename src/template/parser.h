/* parser.h: internals shared by the two halves of the parser (parser.c: expressions and token
 * helpers; stmt.c: statements and the template body). Parsing state is one jparser per compile. */
#ifndef VLLMC_TEMPLATE_PARSER_H
#define VLLMC_TEMPLATE_PARSER_H

#include <string.h>

#include "template/jinja.h"

#define PARSE_MAX_DEPTH 200

typedef struct {
    jcomp *c;
    size_t pos;     /* current token */
    int depth;      /* recursion depth, bounded by PARSE_MAX_DEPTH */
    int loop_depth; /* for loops around the current statement (break/continue need one) */
    jnode *macro;   /* innermost macro/call block being parsed, for caller/varargs/kwargs */
} jparser;

typedef struct {
    jnode **v;
    uint32_t n, cap;
} nvec;

static inline jtok *cur(jparser *P) { return &P->c->tok[P->pos]; }
static inline jtok *look(jparser *P) { return &P->c->tok[P->pos + 1 < P->c->ntok ? P->pos + 1 : P->pos]; }
static inline void adv(jparser *P) {
    if (P->pos + 1 < P->c->ntok) P->pos++;
}
static inline int is_name(jtok *t, const char *s) {
    return t->type == TK_NAME && t->s->len == strlen(s) && memcmp(t->s->p, s, t->s->len) == 0;
}
static inline int is_op(jtok *t, int op) { return t->type == TK_OP && t->op == op; }

int jp_fail_tok(jparser *P, const char *what); /* "what, got 'token'" at the current token */
int jp_nomem(jparser *P);
jnode *jp_node(jparser *P, int kind, int line);
int jp_push(jparser *P, nvec *v, jnode *x);
int jp_expect_op(jparser *P, int op, const char *what);
int jp_expect_type(jparser *P, int type, const char *what);
int jp_enter(jparser *P); /* depth++ or the "nested too deeply" error; callers do depth-- */

jnode *jp_expression(jparser *P, int with_condexpr);
jnode *jp_tuple(jparser *P, int simplified, int with_condexpr, const char *extra_end, int explicit_paren,
                int with_namespace);
jnode *jp_primary(jparser *P, int with_namespace);
jnode *jp_filter(jparser *P, jnode *node, int start_inline);
int jp_subparse(jparser *P, const char *const *ends, int nends, nvec *body);

#endif
