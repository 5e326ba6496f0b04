#!/usr/bin/env bash
# `vllmc bench latency` runs on random weights and ends with one JSON object
# holding the contract's fields (tiny shapes: this checks function, not speed).
set -uo pipefail
V=${VLLMC:-build/vllmc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cat >"$tmp/config.json" <<'JSON'
{"architectures": ["Qwen2ForCausalLM"], "hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
 "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 1000, "max_position_embeddings": 256,
 "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16"}
JSON
out=$("$V" bench latency --random-weights "$tmp/config.json" --input-len 16 --output-len 8 --num-iters 1 --json 2>"$tmp/err") || { echo "FAIL: bench: $(cat "$tmp/err")" >&2; exit 1; }
last=$(echo "$out" | tail -n 1)
for k in prefill_tokens_per_s decode_tokens_per_s decode_bandwidth_fraction machine_bandwidth_gbs; do
  echo "$last" | grep -Eq "\"$k\":[0-9.]+[,}]" || { echo "FAIL: field $k missing in: $last" >&2; exit 1; }
done
echo "  ok: bench latency JSON: $last"

# `vllmc bench structured` on random weights with the chat fixture's tokenizer (512 tokens): it runs
# every built-in constraint and the schema corpus and prints its fields (function, not speed).
tests/fixtures/make_chat_model.sh "$tmp/chat" >/dev/null || { echo "FAIL: make_chat_model.sh" >&2; exit 1; }
out=$("$V" bench structured --random-weights tests/golden/llama-f32/config.json --tokenizer "$tmp/chat" \
  --input-len 8 --output-len 16 --batch-size 4 --json 2>"$tmp/err") || { echo "FAIL: bench structured: $(cat "$tmp/err")" >&2; exit 1; }
last=$(echo "$out" | tail -n 1)
for k in mask_apply_us unconstrained_us_per_token_batch1 unconstrained_us_per_token_batchN compile_ms masks_per_pass \
  compile_median_ms compile_max_ms; do
  echo "$last" | grep -Eq "\"$k\":[0-9.]+[,}]" || { echo "FAIL: bench structured: field $k missing in: $last" >&2; exit 1; }
done
for k in json_schema regex grammar; do
  echo "$last" | grep -q "\"kind\":\"$k\"" || { echo "FAIL: bench structured: no $k in: $last" >&2; exit 1; }
done
for k in mask_cold mask_warm feed_cold decode_batch1 decode_batchN; do
  echo "$last" | grep -Eq "\"$k\":\\{[^}]*\"(count|tokens)\":[1-9]" || { echo "FAIL: bench structured: $k empty in: $last" >&2; exit 1; }
done
echo "$last" | grep -q '"abort":[1-9]' && { echo "FAIL: bench structured: the engine ended a sequence: $last" >&2; exit 1; }
echo "  ok: bench structured JSON: $(echo "$last" | head -c 300)..."
# the text form names every figure; a user's regex replaces the built-in set
"$V" bench structured "$tmp/chat" --regex '[a-z]{2,6}' --input-len 8 --output-len 8 --batch-size 2 >"$tmp/out" 2>"$tmp/err" \
  || { echo "FAIL: bench structured --regex: $(cat "$tmp/err")" >&2; exit 1; }
for k in 'regex ([a-z]{2,6}): compile' 'mask cold' 'mask warm' 'decode batch 1:' 'decode batch 2:' 'slowdown' 'schema corpus'; do
  grep -qF "$k" "$tmp/out" || { echo "FAIL: bench structured text: '$k' missing in: $(cat "$tmp/out")" >&2; exit 1; }
done
grep -q '^json_schema' "$tmp/out" && { echo "FAIL: bench structured --regex still ran the built-in schema" >&2; exit 1; }
"$V" bench structured --random-weights tests/golden/llama-f32/config.json >/dev/null 2>"$tmp/err"; rc=$?
[ $rc -eq 2 ] && grep -q -- "--tokenizer" "$tmp/err" || { echo "FAIL: --random-weights without --tokenizer: exit $rc: $(cat "$tmp/err")" >&2; exit 1; }
echo "  ok: bench structured text output, --regex, and --random-weights without --tokenizer (exit 2)"
