/* toolparse: vLLM's output parsers (--tool-call-parser, --reasoning-parser) over the model's text,
 * server-neutral. Tool parsers split the text into content and tool calls {name, arguments};
 * reasoning parsers split it into reasoning_content and content. Each parser has two faces that
 * agree exactly:
 *   toolp_parse     the whole text at once (a non-streaming response);
 *   toolp_stream_*  the text fed in pieces (streaming), giving events.
 * Invariants of the streaming face (tests/unit/test_toolparse.c checks them at every cut):
 *   - nothing is taken back: an event is final;
 *   - the content events concatenate to toolp_parse's content (NULL counts as ""), the reasoning
 *     events to its reasoning, each call's argument events to its arguments;
 *   - a call's TOOLP_EV_CALL (its name) comes before its TOOLP_EV_ARGS, calls begin in index order;
 *   - no event splits a UTF-8 character, however the text is cut, until toolp_stream_finish.
 * To keep them, text is held back until it is decided: a possible prefix of a marker
 * ("<tool_call>", "</think>", ...) and, where vLLM's result depends on the rest of the output
 * (its JSON, pythonic and qwen3_coder calls are all-or-nothing: one malformed call makes the whole
 * output plain content), the calls themselves until toolp_stream_finish; content and reasoning stream as they
 * come, and so do mistral's [TOOL_CALLS]name[ARGS]{...} calls (vLLM passes those arguments on
 * verbatim). A malformed call is never an error: it is content. Where a result differs from
 * vLLM's non-streaming one (so that streaming can keep to it), the parser's file says how and why.
 * Pure: no I/O, no globals besides the constant parser table. */
#ifndef VLLMC_TOOLPARSE_TOOLPARSE_H
#define VLLMC_TOOLPARSE_TOOLPARSE_H

#include <stddef.h>

enum {
    TOOLP_KIND_TOOL = 1,      /* --tool-call-parser */
    TOOLP_KIND_REASONING = 2, /* --reasoning-parser */
};

typedef struct toolp_parser toolp_parser; /* a constant descriptor, never freed */

/* The parser called `name` of kind TOOLP_KIND_*, NULL when there is none. vLLM's two name spaces
 * overlap ("openai" is both a tool and a reasoning parser), hence the kind. */
const toolp_parser *toolp_parser_by_name(int kind, const char *name);
/* The names of one kind, for an error message: "hermes, llama3_json, ...". */
const char *toolp_parser_names(int kind);
const char *toolp_parser_name(const toolp_parser *p);
int toolp_parser_kind(const toolp_parser *p);
/* 1 for a tool parser whose results and streams carry the reasoning too (the harmony "openai" parser:
 * its format marks both); the caller then runs no separate reasoning parser before it. */
int toolp_parser_splits_reasoning(const toolp_parser *p);

/* One tool call. name and args are NUL-terminated (the lengths count without it); args is the
 * arguments as vLLM sends them: for parsers that read JSON, Python's json.dumps(value,
 * ensure_ascii=False) of what the model wrote (", " and ": " separators, floats as repr). */
typedef struct {
    char *name;
    size_t name_len;
    char *args;
    size_t args_len;
} toolp_call;

/* What toolp_parse found. A NULL string is vLLM's None (e.g. no text outside the calls). */
typedef struct {
    char *content;        /* text for message.content */
    size_t content_len;
    char *reasoning;      /* reasoning parsers: message.reasoning_content */
    size_t reasoning_len;
    toolp_call *calls;       /* tool parsers: n_calls of them */
    int n_calls;
    int tools_called;     /* vLLM's tools_called (can be 1 with n_calls 0: mistral's "[TOOL_CALLS][]") */
} toolp_result;

/* The request's `tools` (a cJSON array as the request sends it: [{"type": "function", "function":
 * {"name", "parameters"}}, ...]) for parsers whose result depends on it: qwen3_coder converts each
 * parameter by its type in the schema. NULL is no tools; the other parsers ignore it. */
struct cJSON;

/* Parse len bytes of model output (no NUL needed). 0, or VC_ENOMEM with *out zeroed.
 * toolp_parse is toolp_parse_tools with tools NULL. */
int toolp_parse(const toolp_parser *p, const char *text, size_t len, toolp_result *out);
int toolp_parse_tools(const toolp_parser *p, const char *text, size_t len, const struct cJSON *tools,
                      toolp_result *out);
void toolp_result_free(toolp_result *r); /* safe on a zeroed result */

enum {
    TOOLP_EV_CONTENT = 1,   /* text: a piece of content */
    TOOLP_EV_REASONING = 2, /* text: a piece of reasoning_content */
    TOOLP_EV_CALL = 3,      /* a tool call begins: index, text = its name (the id is the caller's) */
    TOOLP_EV_ARGS = 4,      /* text: a piece of call `index`'s arguments */
};

typedef struct {
    int kind;            /* TOOLP_EV_* */
    int index;           /* TOOLP_EV_CALL, TOOLP_EV_ARGS: the call, 0-based */
    const char *text;    /* not NUL-terminated; owned by the stream, valid until its next call */
    size_t len;
} toolp_event;

typedef struct toolp_stream toolp_stream;

/* NULL when out of memory. toolp_stream_new is toolp_stream_new_tools with tools NULL. The stream
 * keeps the pointer, not a copy: tools must stay valid (and unchanged) until toolp_stream_free. */
toolp_stream *toolp_stream_new(const toolp_parser *p);
toolp_stream *toolp_stream_new_tools(const toolp_parser *p, const struct cJSON *tools);
/* The next len bytes of the output. *ev, *n_ev: what may be sent now (often nothing). 0, or
 * VC_ENOMEM (the stream is then unusable), or VC_EINVAL after toolp_stream_finish. */
int toolp_stream_feed(toolp_stream *s, const char *delta, size_t len, toolp_event **ev, int *n_ev);
/* The output has ended: the rest. 0 or VC_ENOMEM / VC_EINVAL as toolp_stream_feed. */
int toolp_stream_finish(toolp_stream *s, toolp_event **ev, int *n_ev);
void toolp_stream_free(toolp_stream *s); /* NULL is fine */

#endif
