/* autotool: a chat completion's text through vLLM's output parsers (--reasoning-parser,
 * --enable-auto-tool-choice --tool-call-parser; the parsers themselves are src/toolparse), as
 * vLLM's serving_chat.py applies them: the reasoning parser first, splitting reasoning from
 * content, then the tool parser over that content, splitting tool calls from the rest.
 *
 * Non-streaming (at_message): the message's content, tool_calls and reasoning fields.
 * Streaming (at_stream_*): the text fed in pieces gives delta fields that never take anything
 * back; their concatenation equals at_message's result (the parsers' own invariant, kept through
 * the chain: the reasoning parser's content events are what the tool parser is fed).
 *
 * Field shapes follow vLLM's protocol.py: `reasoning` (and its older name `reasoning_content`,
 * the same text), `tool_calls` items {"id": "chatcmpl-tool-<32 hex>", "type": "function",
 * "function": {"name", "arguments"}}, in a stream a call's first delta carries index, id, type and
 * name, later ones index and an arguments piece. parallel_tool_calls false keeps the first call
 * only (vLLM's maybe_filter_parallel_tool_calls). */
#ifndef VLLMC_SERVER_AUTOTOOL_H
#define VLLMC_SERVER_AUTOTOOL_H

#include <stddef.h>

#include "base/sbuf.h"
#include "toolparse/toolparse.h"

typedef struct {
    const toolp_parser *tool;      /* NULL: the content is left alone */
    const toolp_parser *reasoning; /* NULL: no reasoning split */
    int include_reasoning;         /* 0: the reasoning is dropped (the request's include_reasoning) */
    int first_call_only;           /* parallel_tool_calls: false */
    const struct cJSON *tools;     /* the request's tools array for the tool parser (qwen3_coder reads the
                                      parameter types), NULL: none; the caller's, valid while the message is
                                      made or the stream lives */
} at_opts;

/* Append `"content":...,"refusal":null,"annotations":null,"audio":null,"function_call":null,
 * "tool_calls":[...],"reasoning":...,"reasoning_content":...` for text (len bytes), echo (or NULL)
 * before the content. Returns 1 when the tool parser found calls (finish_reason "tool_calls"),
 * 0 when not, -1 out of memory (o may then be incomplete). */
int at_message(sbuf *o, const at_opts *op, const char *echo, const char *text, size_t len);

typedef struct at_stream at_stream;

/* op names at least one parser (the server goes through here only then: the parsers' events never split a
 * UTF-8 character, the detokenizer's deltas neither). NULL: out of memory. */
at_stream *at_stream_new(const at_opts *op);
/* The next n bytes of output (final: the output has ended, flush the rest). Appends the delta's
 * fields, each preceded by a comma (`,"reasoning":"..","reasoning_content":"..","content":"..",
 * "tool_calls":[..]`), for what is decided now. Returns 1 when something was appended, 0 when
 * nothing, -1 out of memory. */
int at_stream_feed(at_stream *s, const char *d, size_t n, int final, sbuf *o);
/* Tool calls were sent (finish_reason "tool_calls"). */
int at_stream_called(const at_stream *s);
void at_stream_free(at_stream *s);

/* prefix and 32 random hex digits: the ids of responses ("chatcmpl-", "cmpl-") and of tool calls
 * ("chatcmpl-tool-", vLLM's make_tool_call_id). Thread-safe (a generator per thread). */
void at_make_id(char *out, size_t cap, const char *prefix);

#endif
