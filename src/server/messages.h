/* messages: the parts of a chat request that reach the chat template (vLLM's chat_utils.py):
 * messages with their content in the template's format, assistant tool calls with their
 * arguments parsed, and the checks on `tools` and `documents`; also the request-field helpers
 * that request.c and this file share. */
#ifndef VLLMC_SERVER_MESSAGES_H
#define VLLMC_SERVER_MESSAGES_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "base/sbuf.h"
#include "server/request.h"

/* Optional fields of a request object (a JSON null counts as absent).
 * srv_opt_bool: 0 ok (v set if present), -1 error. srv_opt_int, srv_opt_string: 1 present, 0 absent,
 * -1 error (err set, naming the field). */
int srv_opt_bool(const cJSON *o, const char *k, int *v, srv_error *err);
int srv_opt_int(const cJSON *o, const char *k, long long lo, long long hi, long long *v, srv_error *err);
int srv_opt_string(const cJSON *o, const char *k, const char **v, srv_error *err);

/* A message's content as text: a string, or the text parts joined by "\n" (vLLM's "string" content
 * format). 0, or -1 with err set (a part that is not text is a 400: text-only models). */
int srv_content_text(const cJSON *content, sbuf *out, srv_error *err);

/* A copy of msgs as the template gets them: each content in `format` (SRV_CONTENT_STRING: a string;
 * SRV_CONTENT_OPENAI: a list of {"type": "text", "text": ...}); each assistant tool call's
 * function.arguments, a JSON string in the OpenAI API, parsed into its value ({} when empty), as
 * vLLM hands them to templates. NULL: err set (or out of memory: 500). */
cJSON *srv_normalize_messages(const cJSON *msgs, int format, srv_error *err);

/* The content format --chat-template-content-format auto picks for a template's source (vLLM's
 * _detect_content_format): SRV_CONTENT_OPENAI when the template loops over a message's content
 * (`for x in message['content']`, `.content`), else SRV_CONTENT_STRING. */
int srv_content_format_of(const char *src, size_t n);

/* `tools` (vLLM's ChatCompletionToolsParam): a list of {"type": "function", "function": {"name",
 * "description"?, "parameters"?, "strict"?}}, names unique, parameters a JSON Schema object
 * (`type` a type name or a list of them, `properties` an object of schemas, `required` a list of
 * strings). 0, or -1 with a 400 naming the tool. */
int srv_check_tools(const cJSON *tools, srv_error *err);
/* `documents`: a list of objects of strings. */
int srv_check_documents(const cJSON *docs, srv_error *err);

#endif
