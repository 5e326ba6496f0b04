#!/usr/bin/env bash
# `vllmc generate` through the engine (issue #4 item 6): prompts files, n > 1,
# prefix-cache reporting, scheduling flags, text prompts and stop strings with
# the byte-fallback tokenizer of tests/fixtures/make_chat_model.sh (the model is a committed golden one).
set -uo pipefail
V=${VLLMC:-build/vllmc}
M=tests/golden/llama-f32
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

# prompts file: token ids + per-line sampling fields; order kept
cat >"$tmp/p.jsonl" <<'J'
{"prompt_token_ids": [1, 2, 3, 4], "max_tokens": 3, "ignore_eos": true}

{"prompt_token_ids": [5, 6], "max_tokens": 5, "temperature": 0.9, "seed": 7, "n": 2, "ignore_eos": true}
J
out=$("$V" generate "$M" --prompts-file "$tmp/p.jsonl" --json 2>/dev/null) || bad "prompts file run failed"
[ "$(echo "$out" | wc -l)" -eq 2 ] && ok "one line per prompt of the file" || bad "lines: $out"
echo "$out" | sed -n 1p | grep -Eq '"prompt_token_ids":\[1,2,3,4\],"token_ids":\[[0-9]+,[0-9]+,[0-9]+\],' && ok "per-line max_tokens" || bad "line 1: $out"
echo "$out" | sed -n 2p | grep -q '"outputs":\[{"index":0,' && echo "$out" | sed -n 2p | grep -q '{"index":1,' && ok "n=2 completions" || bad "n=2: $out"
bad_line() {
  printf '%s\n' "$1" >"$tmp/b.jsonl"
  "$V" generate "$M" --prompts-file "$tmp/b.jsonl" --json >"$tmp/o" 2>"$tmp/e"
  rc=$?
  if [ $rc -ne 0 ] && [ $rc -lt 128 ] && grep -q "$2" "$tmp/e" && [ ! -s "$tmp/o" ]; then ok "bad line rejected: $(head -c 120 "$tmp/e")"; else bad "bad line '$1' (rc $rc): $(cat "$tmp/e")"; fi
}
bad_line '{"prompt_token_ids": [1], "temperature": "hot"}' "temperature"
bad_line '{"prompt_token_ids": [1], "top_p": 2}' "top_p"
bad_line '{"max_tokens": 3}' "prompt"
bad_line '[1, 2]' "JSON object"
bad_line '{"prompt_token_ids": [1], "n": 2, "temperature": 0}' "greedy"

# the same 40-token prompt twice in one run: the second shares the first's full blocks
ids=$(seq -s, 3 42)
out=$("$V" generate "$M" --prompt-token-ids "$ids" --prompt-token-ids "$ids" --max-tokens 2 --ignore-eos --json 2>/dev/null)
c1=$(echo "$out" | sed -n 1p | sed -E 's/.*"num_cached_tokens":([0-9]+).*/\1/')
c2=$(echo "$out" | sed -n 2p | sed -E 's/.*"num_cached_tokens":([0-9]+).*/\1/')
t1=$(echo "$out" | sed -n 1p | sed -E 's/.*"token_ids":(\[[0-9,]*\]).*/\1/')
t2=$(echo "$out" | sed -n 2p | sed -E 's/.*"token_ids":(\[[0-9,]*\]).*/\1/')
[ "$c1" = 0 ] && [ "$c2" = 32 ] && [ "$t1" = "$t2" ] && ok "prefix cache: second prompt served 32 cached tokens" || bad "prefix cache: $c1 $c2 $t1 $t2"
out=$("$V" generate "$M" --prompt-token-ids "$ids" --prompt-token-ids "$ids" --max-tokens 2 --ignore-eos --no-enable-prefix-caching --json 2>/dev/null)
echo "$out" | grep -q '"num_cached_tokens":32' && bad "--no-enable-prefix-caching still cached" || ok "--no-enable-prefix-caching"
# scheduling flags do not change greedy results
a=$("$V" generate "$M" --prompt-token-ids "$ids" --prompt-token-ids 7,8,9 --max-tokens 6 --ignore-eos --json 2>/dev/null | sed 's/"num_cached_tokens":[0-9]*//')
b=$("$V" generate "$M" --prompt-token-ids "$ids" --prompt-token-ids 7,8,9 --max-tokens 6 --ignore-eos --max-num-seqs 1 --max-num-batched-tokens 8 --block-size 4 --max-model-len 128 --json 2>/dev/null | sed 's/"num_cached_tokens":[0-9]*//')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "max-num-seqs/batched-tokens/block-size/max-model-len keep results" || bad "scheduling flags changed results: $a / $b"
"$V" generate "$M" --prompt-token-ids "$ids" --max-model-len 30 --json >/dev/null 2>"$tmp/e"; rc=$?
[ $rc -ne 0 ] && grep -q "maximum model length" "$tmp/e" && ok "prompt longer than --max-model-len" || bad "max-model-len: $(cat "$tmp/e")"
# preemption forced by a tiny VLLM_CPU_KVCACHE_SPACE (13 blocks of 16 tokens for 6 prompts; the f32
# checkpoint runs in f16, so does its cache) changes nothing
args=(--prompt-token-ids "$ids" --prompt-token-ids 7,8,9 --prompt-token-ids "$(seq -s, 100 160)" --prompt-token-ids "$(seq -s, 200 230)"
      --prompt-token-ids "$(seq -s, 300 355)" --prompt-token-ids 11,12 --max-tokens 40 --ignore-eos --max-model-len 128 --json)
a=$("$V" generate "$M" "${args[@]}" 2>/dev/null | sed 's/"num_cached_tokens":[0-9]*//')
b=$(VLLM_CPU_KVCACHE_SPACE=0.00005 "$V" generate "$M" "${args[@]}" 2>"$tmp/e" | sed 's/"num_cached_tokens":[0-9]*//')
grep -q "KV cache on [a-z]*: 13 blocks" "$tmp/e" && [ -n "$a" ] && [ "$a" = "$b" ] && ok "VLLM_CPU_KVCACHE_SPACE=0.00005 (13 blocks of the f16 cache, preemption): same tokens" || bad "tiny KV cache: $(head -c 300 "$tmp/e") / $b"
VLLM_CPU_KVCACHE_SPACE=0.00001 "$V" generate "$M" --prompt-token-ids 1 --max-model-len 128 --json >/dev/null 2>"$tmp/e"; rc=$?
[ $rc -ne 0 ] && grep -q "KV cache is needed" "$tmp/e" && ok "a cache smaller than one sequence is an error" || bad "tiny cache error: $(cat "$tmp/e")"
# --max-logprobs bounds logprobs (generate's default: the whole vocabulary)
"$V" generate "$M" --prompt-token-ids 1,2 --max-tokens 1 --logprobs 21 --max-logprobs 20 --json >/dev/null 2>"$tmp/e"; rc=$?
[ $rc -ne 0 ] && grep -q "greater than max allowed: 20" "$tmp/e" && ok "logprobs above --max-logprobs rejected" || bad "max-logprobs: $(cat "$tmp/e")"
o=$("$V" generate "$M" --prompt-token-ids 1,2 --max-tokens 1 --logprobs 512 --json 2>/dev/null)
[ "$(echo "$o" | grep -o '"[0-9]*":-\?[0-9.e-]*' | wc -l)" -eq 512 ] && ok "--logprobs 512 (whole vocabulary) by default" || bad "--logprobs 512: $(echo "$o" | head -c 200)"
# a huge max_tokens is bounded by the context, not allocated
printf '{"prompt_token_ids":[1,2],"max_tokens":2000000000,"ignore_eos":true}\n' >"$tmp/big.jsonl"
o=$("$V" generate "$M" --prompts-file "$tmp/big.jsonl" --max-model-len 20 --json 2>/dev/null)
n=$(echo "$o" | sed -E 's/.*"token_ids":\[([0-9,]*)\].*/\1/' | tr ',' '\n' | wc -l)
[ "$n" -eq 18 ] && echo "$o" | grep -q '"finish_reason":"length"' && ok "max_tokens 2e9 stops at max-model-len (18 tokens)" || bad "huge max_tokens: $o"
# stop_token_ids: stop_reason is the token id
first=$(echo "$out" | sed -n 1p | sed -E 's/.*"token_ids":\[([0-9]+).*/\1/')
s=$("$V" generate "$M" --prompt-token-ids "$ids" --max-tokens 6 --stop-token-ids "$first" --json 2>/dev/null)
echo "$s" | grep -q "\"token_ids\":\[$first\],\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":$first" && ok "stop_token_ids" || bad "stop_token_ids: $s"

# the model with a byte-fallback tokenizer: <unk>, <s>, </s>, <0x00>..<0xFF>, then a..z (ids 259..284)
tests/fixtures/make_chat_model.sh "$tmp/tm"
t=$("$V" generate "$tmp/tm" --prompt "hi there" --max-tokens 12 --ignore-eos --json 2>"$tmp/e")
echo "$t" | grep -q '"prompt_token_ids":\[1,266,267,35,278,266,263,276,263\]' && ok "text prompt tokenized (BOS, letters, a byte)" || bad "text prompt: $t $(cat "$tmp/e")"
echo "$t" | grep -q '"text":"' && ok "text field present" || bad "no text: $t"
# letters only (allowed_token_ids = the tokens a..z), then stop on the third letter
letters=$(seq -s, 259 284)
echo "{\"prompt\": \"hi there\", \"max_tokens\": 12, \"ignore_eos\": true, \"allowed_token_ids\": [$letters]}" >"$tmp/t.jsonl"
t=$("$V" generate "$tmp/tm" --prompts-file "$tmp/t.jsonl" --json 2>/dev/null)
txt=$(echo "$t" | sed -E 's/.*"text":"([a-z]*)".*/\1/')
[ ${#txt} -eq 12 ] && ok "allowed_token_ids: 12 letters '$txt'" || bad "allowed_token_ids: $t"
stopstr=${txt:2:1}
pre=${txt%%"$stopstr"*}
echo "{\"prompt\": \"hi there\", \"max_tokens\": 12, \"ignore_eos\": true, \"allowed_token_ids\": [$letters], \"stop\": [\"$stopstr\"]}" >"$tmp/t.jsonl"
s=$("$V" generate "$tmp/tm" --prompts-file "$tmp/t.jsonl" --json 2>/dev/null)
echo "$s" | grep -q "\"text\":\"$pre\",\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":\"$stopstr\"" && ok "stop string '$stopstr': text '$pre'" || bad "stop string '$stopstr' (want text '$pre'): $s"
sed -i 's/"stop"/"include_stop_str_in_output": true, "stop"/' "$tmp/t.jsonl"
s=$("$V" generate "$tmp/tm" --prompts-file "$tmp/t.jsonl" --json 2>/dev/null)
echo "$s" | grep -q "\"text\":\"$pre$stopstr\"," && ok "include_stop_str_in_output" || bad "include_stop_str_in_output: $s"
# bad_words (strings, tokenized as vLLM does): the letter the stop test found is never generated
echo "{\"prompt\": \"hi there\", \"max_tokens\": 12, \"ignore_eos\": true, \"allowed_token_ids\": [$letters], \"bad_words\": [\"$stopstr\"]}" >"$tmp/t.jsonl"
s=$("$V" generate "$tmp/tm" --prompts-file "$tmp/t.jsonl" --json 2>/dev/null)
bt=$(echo "$s" | sed -E 's/.*"text":"([a-z]*)".*/\1/')
[ ${#bt} -eq 12 ] && [[ "$bt" != *"$stopstr"* ]] && ok "bad_words '$stopstr': '$bt'" || bad "bad_words '$stopstr': $s"
exit $fail
