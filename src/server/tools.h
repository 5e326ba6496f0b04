/* tools: `tool_choice` on /v1/chat/completions, as vLLM does it without a
 * tool parser. "required" and a named function constrain the output with a
 * JSON schema built from the request's `tools` (vLLM's
 * get_json_schema_from_tools), compiled through structured.c's cache; the
 * output is then read back into tool calls. "none" (and no tool_choice at
 * all, without a tool parser) leaves the output alone; "auto" with a tool parser
 * (--enable-auto-tool-choice --tool-call-parser) is TOOL_AUTO: autotool.h reads
 * the calls from free output; without one it is vLLM's 400.
 *
 * Reading the output is a resumable scanner (tool_scan): fed the text as it
 * comes (streaming) or whole (not), it keeps every call's name and its
 * arguments text so far. The caller decides what to send: the scanner owns
 * the calls, the caller only counts what it has sent of them. */
#ifndef VLLMC_SERVER_TOOLS_H
#define VLLMC_SERVER_TOOLS_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/sbuf.h"
#include "grammar/grammar.h"
#include "server/request.h"

struct so_cache;

enum {
    TOOL_NONE = 0,     /* no constraint: plain content */
    TOOL_REQUIRED,     /* the output is [{"name": ..., "parameters": ...}, ...] */
    TOOL_NAMED,        /* the output is the named function's arguments */
    TOOL_AUTO,         /* "auto" with a tool parser: the output is free, the parser reads calls from it */
};

/* Read body's tool_choice and tools (a chat request; tools already checked for
 * shape). *mode is TOOL_*; for TOOL_REQUIRED and TOOL_NAMED *g is the compiled
 * constraint (one reference for the caller) and, for TOOL_NAMED, *name the
 * function's name (malloc'd). auto_ok: the server has a tool parser, so "auto"
 * (and tools without tool_choice, vLLM's default) is TOOL_AUTO. 0 ok; -1: *err
 * says why (400 with vLLM's wording and param, 500 out of memory). */
int tool_from_request(struct so_cache *c, const cJSON *body, int auto_ok, int *mode, char **name, gram_grammar **g,
                      srv_error *err);

/* One call read from the output. */
typedef struct {
    char *name;                /* NULL until the name is complete */
    sbuf args;                 /* the arguments' JSON text so far */
    int args_done;             /* the arguments' value is complete */
    /* the caller's (streaming): what it has sent of this call */
    int sent_head;             /* id, type and name */
    size_t sent_args;          /* bytes of args */
} tool_call;

typedef struct {
    int mode;                  /* TOOL_REQUIRED or TOOL_NAMED */
    tool_call *calls;
    int n_calls, cap_calls;
    int oom;                   /* sticky: something could not be kept */
    /* TOOL_REQUIRED: where the scanner is in [{"name": "..", "parameters": ..}, ..] */
    int depth;                 /* [ and { open outside strings */
    int in_str, esc;
    int state;                 /* what the next token at item depth is (tools.c) */
    int key;                   /* the member being read: 0 other, 1 name, 2 parameters */
    int val_depth;             /* depth at which the parameters value started */
    int scalar;                /* the parameters value is a number/true/false/null being read */
    sbuf tok;                  /* the key or name string being read (raw, escapes kept) */
} tool_scan;

/* mode TOOL_REQUIRED; TOOL_NAMED with the function's name. */
int tool_scan_init(tool_scan *s, int mode, const char *name);
/* More output text. Never fails: out of memory sets s->oom. */
void tool_scan_feed(tool_scan *s, const char *p, size_t n);
void tool_scan_free(tool_scan *s);

#endif
