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
