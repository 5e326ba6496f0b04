/* jinja.h: internals of the chat-template interpreter (src/template/), shared by its files.
 *
 * Pipeline: lexer.c (source -> tokens, with HF's trim_blocks/lstrip_blocks whitespace rules) ->
 * parser.c + stmt.c (tokens -> AST of jnode: expressions, statements; parser.h) -> eval.c (the AST
 * walk: operators, scoping, macros, sandboxed attribute access). Builtins: filters.c + seqfilters.c
 * (filters; filters.h), methods.c (dict/list/loop methods, tests, globals), strings.c + strfmt.c
 * (Python str methods, % and format(); strings.h). Values: value.c (arena, constructors, Python
 * ==/ordering/len/iteration), json.c (inputs from JSON text or cJSON), format.c (str(), repr(),
 * json.dumps(), UTF-8). chat.c is the public API (template.h).
 *
 * Memory: a compiled template owns one arena (AST, literal strings with their code-point counts
 * precomputed) and is never written after tmpl_compile(), so renders may share it across threads.
 * Every render owns another arena for all of its values, scopes and output; nothing is freed
 * piecemeal, the arena goes at the end of the render. So values are plain structs passed by value
 * (jv) pointing into an arena; containers are never mutated after construction except namespaces.
 * Strings are UTF-8, always valid (inputs are checked), and not NUL-terminated.
 *
 * Bounds: steps (every node, iteration and item processed), bytes per string and in total, macro
 * call depth, evaluator C recursion (MAX_EVAL_DEPTH in chat.c), parser nesting (PARSE_MAX_DEPTH)
 * and value nesting (JF_MAX_NEST, JSON_MAX_NEST, JV_MAX_NEST) are all limited, so no template can
 * hang. Those counts mirror Python's limits; what keeps a deep template or value from crashing is
 * the stack check (base/stack.h) at the top of every recursive function: jr_stack_check() in the
 * renderer, jp_enter() in the parser. It fails with TMPL_ERR_LIMIT when the calling thread's own
 * stack runs low, however small that stack is.
 *
 * Errors: fallible functions return 0 or JE_FAIL after jr_fail() has recorded the error kind, the
 * template line and the message in the jrt; chat.c turns it into a VC_E* code and vc_errf(). */
#ifndef VLLMC_TEMPLATE_JINJA_H
#define VLLMC_TEMPLATE_JINJA_H

#include <stddef.h>
#include <stdint.h>

#include "base/err.h"
#include "base/stack.h"
#include "template/template.h"

#define JE_FAIL (-1)

/* ---------------------------------------------------------------- arena */

typedef struct ja_chunk ja_chunk;
typedef struct {
    ja_chunk *head;
    size_t total;  /* bytes obtained from malloc so far */
    size_t limit;  /* refuse to grow past this many bytes; 0 = no limit */
} jarena;

/* Zeroed, 16-byte aligned memory that lives until ja_free_all(); NULL when out of memory or over
 * the limit (the arena's limit field tells which). */
void *ja_alloc(jarena *a, size_t n);
void ja_free_all(jarena *a);

/* ---------------------------------------------------------------- values */

/* Growable backing store of strings and lists: values that end exactly at `used` may be extended
 * in place by concatenation (s = s + t in a loop stays linear), since every other value sharing the
 * store only ever looks at its own prefix. */
typedef struct {
    size_t used, cap;  /* bytes (strings) or items (lists) */
    void *data;
} jbuf;

typedef struct {
    const char *p;
    size_t len;   /* bytes */
    int64_t ncp;  /* code points, -1 while not counted */
    jbuf *buf;    /* the store p points into when it may grow in place, else NULL */
} jstr;

typedef enum {
    JT_UNDEF, /* jinja2's default Undefined: prints as "", falsy, iterates empty, errors on use */
    JT_NONE,
    JT_BOOL,
    JT_INT,
    JT_FLOAT,
    JT_STR,
    JT_LIST,   /* list, tuple, generator or dict view (jlist.kind) */
    JT_DICT,
    JT_NS,     /* namespace(): a dict whose attributes `set ns.x = ...` may change */
    JT_MACRO,  /* macro or call-block caller */
    JT_FUNC,   /* global function (range, namespace, ...): u.i is a JG_* id */
    JT_METHOD, /* bound method of a str/dict/list/loop */
    JT_LOOP,   /* the `loop` variable of a for loop */
    JT_ABSENT, /* internal: argument slot not given; never visible to templates */
} jtype;

typedef struct jlist jlist;
typedef struct jdict jdict;
typedef struct jmacro jmacro;
typedef struct jmethod jmethod;
typedef struct jloop jloop;
typedef struct jundef jundef;

typedef struct {
    uint8_t t; /* jtype */
    uint8_t m; /* JT_STR: a markupsafe Markup (from |safe, |escape): `+`, `%` and its str methods
                * HTML-escape the plain strings they combine it with, as Python does */
    union {
        int64_t i; /* JT_BOOL (0/1), JT_INT, JT_FUNC */
        double f;
        const jstr *s;
        jlist *l;
        jdict *d; /* JT_DICT, JT_NS */
        jmacro *m;
        jmethod *bm;
        jloop *lp;
        const jundef *ud; /* may be NULL: a plain undefined */
    } u;
} jv;

enum { JL_LIST, JL_TUPLE, JL_GEN, JL_ITEMS, JL_KEYS, JL_VALUES };
struct jlist {
    uint8_t kind; /* JL_*: Python's list, tuple, generator, dict_items/keys/values */
    size_t n;
    jv *v;        /* n items (== buf->data when buf) */
    jbuf *buf;
};

/* Insertion-ordered map with Python key equality (1 == 1.0 == True); hash index past 8 keys. */
struct jdict {
    size_t n, cap;
    jv *k, *v;
    uint32_t *ht; /* open addressing, slot = index + 1, 0 = empty */
    size_t htcap;
};

struct jnode;
struct jscope;
struct jmacro {
    const struct jnode *node;  /* N_MACRO or N_CALLBLOCK */
    struct jscope *closure;    /* scope the macro was defined in */
};

struct jmethod {
    jv self;
    int id; /* JM_* */
};

struct jloop {
    int64_t index0, length;   /* current position, number of items */
    const jv *items;
    int depth;
};

enum { UD_PLAIN, UD_NAME, UD_ATTR, UD_ITEM, UD_UNSAFE, UD_HINT };
struct jundef {
    uint8_t kind;
    const char *objtype; /* "dict object", ... for UD_ATTR/UD_ITEM; the type name for UD_UNSAFE */
    jv key;              /* the missing name/attribute/item */
    const char *hint;    /* UD_HINT: the whole message */
};

/* ---------------------------------------------------------------- AST */

typedef enum {
    /* expressions */
    N_CONST,    /* val */
    N_NAME,     /* name */
    N_LIST,     /* args: items */
    N_TUPLE,    /* args: items */
    N_DICT,     /* args: keys, kwv: values (nkw == nargs) */
    N_GETATTR,  /* a.name */
    N_GETITEM,  /* a[b] */
    N_SLICE,    /* a[b:c:d], missing parts NULL */
    N_CALL,     /* a(args, kwn=kwv) */
    N_FILTER,   /* a|name(args, kw); a NULL inside filter blocks / set blocks */
    N_TEST,     /* a is name(args, kw) */
    N_NEG, N_POS, N_NOT, /* a */
    N_AND, N_OR,         /* a, b */
    N_BINOP,    /* a op b, op JOP_* */
    N_COMPARE,  /* a ops[0] args[0] ops[1] args[1] ... */
    N_CONCAT,   /* args joined with ~ */
    N_COND,     /* b if a else c (c may be NULL) */
    N_NSREF,    /* assignment target a.name where a is a N_NAME */
    /* statements */
    N_TEXT,     /* val: template data */
    N_OUTPUT,   /* {{ a }} */
    N_IF,       /* if a: args else body2 (elif: a nested N_IF in body2) */
    N_FOR,      /* for a in b [if c]: args else body2 */
    N_SET,      /* set a = b */
    N_SETBLOCK, /* set a [| filter chain b] : args */
    N_MACRO,    /* macro name(kwn = kwv defaults, NULL = none): args */
    N_CALLBLOCK,/* call(kwn = kwv) a: args  (a is an N_CALL) */
    N_FILTERBLOCK, /* filter b: args */
    N_WITH,     /* with kwn = kwv: args */
    N_SCOPE,    /* generation / block: args rendered in a new scope */
    N_BREAK, N_CONTINUE,
} jnkind;

enum { JOP_ADD, JOP_SUB, JOP_MUL, JOP_DIV, JOP_FLOORDIV, JOP_MOD, JOP_POW };
enum { JCMP_EQ, JCMP_NE, JCMP_LT, JCMP_LE, JCMP_GT, JCMP_GE, JCMP_IN, JCMP_NOTIN };
enum { NF_USES_CALLER = 1, NF_USES_VARARGS = 2, NF_USES_KWARGS = 4, NF_STRIP_LAST_NL = 8 };

typedef struct jnode jnode;
struct jnode {
    uint8_t kind, op;
    uint16_t flags;
    int line;
    jv val;
    const jstr *name;
    jnode *a, *b, *c, *d;
    jnode **args;
    uint32_t nargs;
    uint32_t nkw;
    jnode **kwv;
    const jstr **kwn;
    jnode **body2;
    uint32_t nbody2;
    uint8_t *ops;
};

/* ---------------------------------------------------------------- lexer */

typedef enum {
    TK_EOF, TK_DATA, TK_VAR_BEGIN, TK_VAR_END, TK_BLOCK_BEGIN, TK_BLOCK_END,
    TK_NAME, TK_STRING, TK_INT, TK_FLOAT, TK_OP,
} jtktype;

enum {
    OP_ADD, OP_SUB, OP_MUL, OP_DIV, OP_FLOORDIV, OP_MOD, OP_POW, OP_TILDE,
    OP_LPAREN, OP_RPAREN, OP_LBRACKET, OP_RBRACKET, OP_LBRACE, OP_RBRACE,
    OP_EQ, OP_NE, OP_LT, OP_LE, OP_GT, OP_GE, OP_ASSIGN, OP_DOT, OP_COLON,
    OP_PIPE, OP_COMMA, OP_SEMICOLON,
};

typedef struct {
    uint8_t type, op;
    int line;
    const jstr *s; /* TK_DATA, TK_NAME (interned), TK_STRING */
    int64_t i;
    double f;
} jtok;

/* Compile-time state shared by lexer and parser; errors go to `err`. */
typedef struct {
    jarena *ar;
    jtok *tok;
    size_t ntok, cap;
    tmpl_error *err;
    /* interned names */
    const jstr **names;
    size_t nnames, capnames;
} jcomp;

int jl_lex(jcomp *c, const char *src, size_t len);
int jp_parse(jcomp *c, jnode ***body, uint32_t *n);
int jc_fail(jcomp *c, int line, const char *fmt, ...) VC_PRINTF(3, 4);
const jstr *jc_intern(jcomp *c, const char *p, size_t n);

/* ---------------------------------------------------------------- runtime */

typedef struct jscope {
    struct jscope *parent;
    size_t n, cap;
    const jstr **names;
    jv *vals;
    int captured; /* a macro closes over this scope (or one below it): it cannot be reused */
} jscope;

typedef struct {
    jarena *ar;
    uint64_t steps, max_steps;
    size_t max_output;
    int depth, max_depth;           /* C recursion of the evaluator */
    int calls, max_calls;           /* nested macro calls */
    int line;                       /* template line being evaluated */
    int failed;
    tmpl_error *err;
    jscope *root;
    int64_t now;                    /* seconds since the epoch for strftime_now; 0 = time(NULL) */
} jrt;

/* Record an error of kind TMPL_ERR_* at the current line; returns JE_FAIL. The first error wins. */
int jr_fail(jrt *r, int kind, const char *fmt, ...) VC_PRINTF(3, 4);
/* Arena allocation that records "out of memory"/"memory limit" on failure. */
void *jr_alloc(jrt *r, size_t n);
/* Count `n` units of work against the step budget. */
int jr_step(jrt *r, uint64_t n);
/* 0, or JE_FAIL with a TMPL_ERR_LIMIT error when this thread's stack is nearly used up: called at
 * the top of every recursive function of the renderer, so depth is bounded by the real stack. */
static inline int jr_stack_check(jrt *r) {
    return vc_stack_low() ? jr_fail(r, TMPL_ERR_LIMIT, "template nested too deeply for this thread's stack") : 0;
}

/* Arguments of a filter, test, method or function call. */
typedef struct {
    jv *pos;
    size_t npos;
    const jstr **kwn;
    jv *kwv;
    size_t nkw;
} jargs;

/* Bind args to Python-style parameters (positional or keyword): slots[i] gets the value or stays
 * JT_ABSENT. Errors name `fname` as Python would ("... got an unexpected keyword argument"). */
int jargs_bind(jrt *r, const char *fname, const jargs *a, const char *const *params, size_t nparams,
               jv *slots);

/* ---- value.c: constructors */
jv jv_undef(void);
jv jv_none(void);
jv jv_bool(int b);
jv jv_int(int64_t i);
jv jv_float(double f);
jv jv_str(const jstr *s);
jv jv_markup(const jstr *s);
jv jv_undef_name(jrt *r, const jstr *name);
jv jv_undef_attr(jrt *r, jv obj, jv key, int kind);
jv jv_undef_hint(jrt *r, const char *hint);
const jstr *js_new(jrt *r, const char *p, size_t n);     /* copy */
const jstr *js_lit(jrt *r, const char *cstr);             /* copy of a C string */
const jstr *js_concat(jrt *r, const jstr *a, const jstr *b);
jbuf *jb_new(jrt *r, size_t cap);
int jb_put(jrt *r, jbuf *b, const void *p, size_t n);
int jb_putc(jrt *r, jbuf *b, char ch);
int jb_printf(jrt *r, jbuf *b, const char *fmt, ...) VC_PRINTF(3, 4);
const jstr *jb_str(jrt *r, jbuf *b); /* the buffer's content as a string that may grow in place */
jlist *jlist_new(jrt *r, int kind, size_t n); /* n zeroed (JT_UNDEF) items */
int jlist_concat(jrt *r, const jlist *a, const jlist *b, jv *out);
jdict *jdict_new(jrt *r, size_t cap);
int jdict_set(jrt *r, jdict *d, jv k, jv v);
int jdict_get(const jdict *d, jv k, jv *out); /* 1 found, 0 not */
const jv *jdict_get_str(const jdict *d, const char *key, size_t n);
jv jv_strn(jrt *r, const char *p, size_t n, int *rc);

/* ---- value.c: Python semantics */
int jv_truthy(jv v);
int jv_eq(jv a, jv b);
int jv_cmp(jrt *r, jv a, jv b, int *res);           /* -1, 0, 1, 2 (unordered: NaN) or a TypeError */
int jv_cmp_op(jrt *r, jv a, jv b, const char *op, int *res); /* the same, naming `op` in the error */
int jv_len(jrt *r, jv v, int64_t *n);               /* len() or a TypeError */
int jv_iter(jrt *r, jv v, const jv **items, size_t *n); /* materialised iteration */
const char *jv_typename(jv v);                      /* Python type name: str, int, dict, ... */
const char *jv_objdesc(jv v);                       /* jinja2's object_type_repr: "dict object" */
int jv_is_str(jv v, const char *s);
uint64_t jv_hash(jv v);
int js_ncp(const jstr *s);                          /* ensures s->ncp is set (not on shared literals) */
int64_t js_count_cp(const char *p, size_t n);
size_t js_cp_offset(const char *p, size_t n, int64_t cp); /* byte offset of code point cp */
int jv_undef_error(jrt *r, jv u);                   /* raise the UndefinedError an undefined carries */

/* ---- value.c: JSON input */
int jv_from_json_text(jrt *r, const char *p, size_t n, jv *out);
struct cJSON;
int jv_from_cjson(jrt *r, const struct cJSON *j, jv *out);

/* ---- format.c: Python str(), repr(), json.dumps() */
int jv_write_str(jrt *r, jbuf *b, jv v);   /* str(v); undefined writes nothing */
int jv_write_repr(jrt *r, jbuf *b, jv v);
int jv_to_str(jrt *r, jv v, const jstr **out);
typedef struct {
    int ensure_ascii, sort_keys;
    const jstr *indent;    /* NULL: no newlines */
    const jstr *item_sep, *key_sep;
} jjson_opts;
int jv_write_json(jrt *r, jbuf *b, jv v, const jjson_opts *o, int depth);
void jf_float_repr(double f, char out[40]);
int ju_isspace(uint32_t cp);
uint32_t ju_decode(const char *p, size_t n, size_t *adv); /* valid UTF-8 assumed */
size_t ju_encode(uint32_t cp, char out[4]);
int ju_valid(const char *p, size_t n);

/* ---- eval.c */
int je_render(jrt *r, jnode *const *body, uint32_t n, jbuf *out);
int je_call(jrt *r, jv fn, jargs *a, jv *out);              /* call a macro/method/function */
int je_getattr(jrt *r, jv obj, const jstr *name, jv *out);  /* sandboxed obj.name */
int je_getitem(jrt *r, jv obj, jv key, jv *out);            /* sandboxed obj[key] */
int je_contains(jrt *r, jv hay, jv needle, int *res);       /* needle in hay */

/* ---- filters.c */
typedef int (*jfilter_fn)(jrt *r, jv in, jargs *a, jv *out);
jfilter_fn jf_find(const char *name, size_t n);
int jf_apply(jrt *r, const jstr *name, jv in, jargs *a, jv *out);

/* ---- methods.c: tests, methods, globals */
int jt_exists(const char *name, size_t n);
int jt_apply(jrt *r, const jstr *name, jv in, jargs *a, int *res);
int jm_lookup(jrt *r, jv self, const jstr *name, jv *out); /* 1 found (out = bound method or value) */
int jm_call(jrt *r, jmethod *m, jargs *a, jv *out);
enum { JG_RANGE = 1, JG_NAMESPACE, JG_DICT, JG_RAISE, JG_STRFTIME, JG_NONE_ };
int jg_lookup(const jstr *name, jv *out);
int jg_call(jrt *r, int id, jargs *a, jv *out);
/* String helpers shared with filters. */
int jm_strip(jrt *r, const jstr *s, const jstr *chars, int left, int right, jv *out);
int jm_case(jrt *r, const jstr *s, int mode, jv *out); /* 0 lower, 1 upper, 2 str.title, 3 capitalize */
int jm_replace(jrt *r, const jstr *s, const jstr *old, const jstr *new_, int64_t count, jv *out);
int jm_escape(jrt *r, const jstr *s, const jstr **out);  /* markupsafe.escape of a plain string */
int jm_escape_val(jrt *r, jv v, jv *out);                /* markupsafe.escape(v): Markup stays as is */

#endif
