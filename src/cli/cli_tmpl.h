/* cli_tmpl: the chat-template subcommand (src/cli/chat_template.c). argv[0] is the first argument
 * after the subcommand word; returns the process exit status (0 ok, 1 the template failed or an
 * input is bad, 2 usage) and reports errors on stderr.
 *
 *   vllmc chat-template DIR --messages FILE.json [--add-generation-prompt] [--chat-template FILE]
 *       prints the rendered prompt exactly, with no newline added. FILE.json ("-" = stdin) is a
 *       JSON array of messages, or an object like an OpenAI chat request whose "messages",
 *       "tools", "documents", "chat_template_kwargs" and "add_generation_prompt" are used.
 *   extras: --tools FILE.json, --documents FILE.json, --chat-template-kwargs JSON,
 *       --chat-template-name NAME (a named template of the model, e.g. tool_use)
 *   vllmc chat-template DIR --jsonl [--chat-template FILE]
 *       one request object per stdin line -> one line {"text": "..."} or {"error": "..."} each
 *       (for tests that render many conversations in one process).
 *   gpt-oss (DIR/config.json model_type "gpt_oss"): the harmony prompt vLLM builds instead (template/harmony.h;
 *       --chat-template is not used, as in vLLM; the date: --now, else $VLLM_SYSTEM_START_DATE, else today);
 *       --token-ids prints its token ids (or adds "ids" to each --jsonl line).
 * The template is --chat-template FILE (or, as in vLLM, the template text itself when FILE does
 * not exist and looks like a template), else the model's own (tmpl_model_load); the special
 * tokens always come from DIR. */
#ifndef VLLMC_CLI_TMPL_H
#define VLLMC_CLI_TMPL_H

int cli_chat_template(int argc, char **argv);

#endif
