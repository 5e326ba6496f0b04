/* toolparse internals: the parser descriptor, the stream that every parser's incremental side
 * drives, and the helpers the parser families share. Not for use outside src/toolparse/.
 *
 * How a stream works: every feed appends to `text` (all of the output so far) and calls the
 * parser's `progress`, which emits only what is already certain (content before a marker that
 * cannot be taken back, reasoning, a verbatim argument fragment). At finish, the parser's `parse`
 * runs over the whole text and the stream emits what the result holds beyond what was sent. So
 * the two faces agree as long as `progress` emits prefixes of the final result, which is what
 * each progress function must guarantee (and the unit tests check at every cut). */
#ifndef VLLMC_TOOLPARSE_INTERNAL_H
#define VLLMC_TOOLPARSE_INTERNAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/sbuf.h"
#include "toolparse/toolparse.h"

struct toolp_parser {
    const char *name;
    int kind;                                               /* TOOLP_KIND_* */
    /* 0 or VC_ENOMEM; tools: the request's tools array (NULL: none), read only by parsers that need
     * the parameter types */
    int (*parse)(const char *t, size_t n, const cJSON *tools, toolp_result *out);
    void (*progress)(toolp_stream *s);                         /* NULL: hold everything until finish */
    int splits_reasoning;                                      /* a tool parser whose result has reasoning too */
};

struct toolp_stream {
    const toolp_parser *p;
    const cJSON *tools;        /* the caller's, for parse at finish (toolp_stream_new_tools) */
    sbuf text;                 /* the output so far */
    /* what has been sent */
    size_t sent_content, sent_reasoning;
    int n_begun;               /* calls whose TOOLP_EV_CALL went out */
    size_t *sent_args;         /* [cap_args] bytes of each begun call's arguments sent */
    size_t cap_args;
    /* the parser's progress state (meaning per parser) */
    int mode;
    size_t pos, mark;
    int count[2];
    /* this call's events; texts point into `text` or `final` */
    toolp_event *ev;
    size_t n_ev, cap_ev;
    toolp_result final;
    int finished, oom;
};

/* ---- stream: events (each sets s->oom on failure) ---- */
void toolp_emit_content(toolp_stream *s, const char *p, size_t n);
void toolp_emit_reasoning(toolp_stream *s, const char *p, size_t n);
void toolp_emit_call(toolp_stream *s, const char *name, size_t n);      /* the next index */
void toolp_emit_args(toolp_stream *s, int index, const char *p, size_t n);

/* ---- text helpers ---- */
/* First occurrence of the NUL-terminated m in t[from, n), or (size_t)-1. */
size_t toolp_find(const char *t, size_t n, size_t from, const char *m);
/* Length of the longest suffix of t[from, n) that is a proper prefix of m (text that could still
 * turn into m). */
size_t toolp_partial(const char *t, size_t n, size_t from, const char *m);
/* The largest e in [from, end] such that t[from, e) does not end inside a UTF-8 character that
 * the next bytes could complete. */
size_t toolp_utf8_end(const char *t, size_t from, size_t end);
/* A copy of n bytes, NUL-terminated; NULL when out of memory. */
char *toolp_dup(const char *p, size_t n);
/* Set r's content (or reasoning) to a copy; 0 or VC_ENOMEM. */
int toolp_set_content(toolp_result *r, const char *p, size_t n);
int toolp_set_reasoning(toolp_result *r, const char *p, size_t n);
/* Append a call (copies); 0 or VC_ENOMEM. */
int toolp_add_call(toolp_result *r, const char *name, size_t name_len, const char *args, size_t args_len);
/* The result "no calls, all of t is content". 0 or VC_ENOMEM. */
int toolp_all_content(toolp_result *r, const char *t, size_t n);

/* ---- Python's json module (toolp_json.c) ---- */
/* json.dumps(v, ensure_ascii=False) of a tree from js_parse (or built alike: numbers carry their
 * literal in valuestring, NUL in strings is C0 80). 0; -1 where Python raises (an integer of
 * more than 4300 digits); s->oom on allocation failure. */
int toolp_pydumps(sbuf *s, const cJSON *v);
/* Python's repr() of a double ("1.0", "1e-05", "Infinity" as json.dumps writes inf). */
void toolp_pyrepr(sbuf *s, double v);
/* Where the JSON value that starts at t[from] ('{' or '[') ends, brackets counted outside
 * strings: the index after its closing bracket, or (size_t)-1 when the text ends first. Where
 * t[from, end) is valid JSON this is where Python's raw_decode stops. */
size_t toolp_json_extent(const char *t, size_t n, size_t from);
/* The call fields vLLM reads from a parsed object: o["name"] (a string) and o[args_key];
 * 0 with *name (NUL unmasked, malloc'd) and the dumped arguments in *args, -1 when the object
 * does not qualify (not an object, a key missing, name not a string, a number Python cannot
 * print), VC_ENOMEM. */
int toolp_call_from_json(const cJSON *o, const char *args_key, const char *alt_key, char **name, size_t *name_len,
                      sbuf *args);

/* Python's str.isspace() for the code point that starts at t[i]; *len gets its byte length. */
int toolp_py_space(const char *t, size_t n, size_t i, size_t *len);

/* ---- Python source (toolp_pylex.c), for the pythonic parser ---- */
typedef struct {
    const char *t;
    size_t n, i;   /* the text, its length, where the reader is */
    int level;     /* brackets open */
    int bad;       /* not a tool call (a Python error, or not what vLLM accepts): content */
    int oom;
} toolp_py;

static inline int py_at(const toolp_py *p, size_t k) { return p->i + k < p->n ? (unsigned char)p->t[p->i + k] : -1; }
static inline int py_alpha(int c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static inline int py_digit(int c) { return c >= '0' && c <= '9'; }
static inline int py_word(int c) { return py_alpha(c) || py_digit(c) || c == '_'; }

void toolp_py_ws(toolp_py *p);                                      /* blanks, newlines, comments, \ + newline */
int toolp_py_open_level(toolp_py *p);                               /* one more bracket open: 0 (and bad) past Python's
                                                                       200 levels or when the stack runs low */
int toolp_py_str_prefix(const toolp_py *p, int *raw, int *kind);    /* a string literal starts: its prefix length, else -1 */
cJSON *toolp_py_strings(toolp_py *p);                               /* adjacent string literals */
cJSON *toolp_py_number(toolp_py *p);                                /* a number literal */
/* A constant that is not JSON (bytes, complex, ..., an int too long to print): a raw item, which
 * toolp_pydumps refuses, so it fails only if it is still in the arguments at the end. */
cJSON *toolp_py_poison(toolp_py *p);

/* ---- Python's ast.literal_eval (toolp_pyeval.c), for the qwen3_coder parser ---- */
/* ast.literal_eval(t[0, n)) as a cJSON tree (tuples as arrays; sets, bytes, complex numbers and
 * Ellipsis as poison items, which toolp_pydumps refuses). NULL where Python raises (the caller
 * keeps the text), or with *oom set when out of memory. */
cJSON *toolp_py_literal_eval(const char *t, size_t n, int *oom);
/* Python's int(x) of an integral double, all its digits, appended to s. */
void toolp_int_digits(sbuf *s, double x);

/* ---- the parsers ---- */
int toolp_hermes_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_hermes_progress(toolp_stream *s);
int toolp_llama_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_llama_progress(toolp_stream *s);
int toolp_mistral_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_mistral_progress(toolp_stream *s);
int toolp_pythonic_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_pythonic_progress(toolp_stream *s);
int toolp_harmony_tool_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_harmony_tool_progress(toolp_stream *s);
int toolp_harmony_reasoning_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_harmony_reasoning_progress(toolp_stream *s);
int toolp_r1_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_r1_progress(toolp_stream *s);
int toolp_qwen3_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_qwen3_progress(toolp_stream *s);
int toolp_qwen3coder_parse(const char *t, size_t n, const cJSON *tools, toolp_result *out);
void toolp_qwen3coder_progress(toolp_stream *s);

#endif
