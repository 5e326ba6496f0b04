#!/usr/bin/env bash
# The `vllmc generate` contract (issue #2, item 5) and its errors on bad model
# folders. Uses the committed tiny golden models; needs only bash and coreutils.
set -uo pipefail
V=${VLLMC:-build/vllmc}
M=tests/golden/llama-f32
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

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

# --- output contract ---
out=$("$V" generate "$M" --prompt-token-ids 1,5,9 --prompt-token-ids 7 --max-tokens 5 --ignore-eos --json) || bad "generate failed"
[ "$(echo "$out" | wc -l)" -eq 2 ] && ok "one line per prompt" || bad "expected 2 lines: $out"
line1=$(echo "$out" | sed -n 1p)
echo "$line1" | grep -Eq '^\{"prompt_token_ids":\[1,5,9\],"token_ids":\[[0-9]+(,[0-9]+){4}\],"logprobs":null,"finish_reason":"length","stop_reason":null,"num_cached_tokens":0\}$' \
  && ok "JSON shape" || bad "JSON shape: $line1"
echo "$out" | sed -n 2p | grep -q '"prompt_token_ids":\[7\]' && ok "prompt order" || bad "prompt order"

# the same prompt alone and in a batch gives the same greedy tokens
solo=$("$V" generate "$M" --prompt-token-ids 1,5,9 --max-tokens 5 --ignore-eos --json)
[ "$solo" = "$line1" ] && ok "batch-independent" || bad "batched differs from alone: $solo vs $line1"

# logprobs: K entries per generated token, keys are ids, values <= 0
lp=$("$V" generate "$M" --prompt-token-ids 3,4 --max-tokens 3 --logprobs 4 --ignore-eos --json)
n=$(echo "$lp" | grep -o '{"[0-9]*":-\?[0-9.e-]*,"[0-9]*":-\?[0-9.e-]*,"[0-9]*":-\?[0-9.e-]*,"[0-9]*":-\?[0-9.e-]*}' | wc -l)
[ "$n" -eq 3 ] && ok "logprobs: 3 tokens x 4 entries" || bad "logprobs: $lp"

# seeded sampling is reproducible; another seed differs
s1=$("$V" generate "$M" --prompt-token-ids 2 --max-tokens 24 --temperature 1.5 --top-p 0.95 --top-k 50 --min-p 0.01 --seed 11 --ignore-eos --json)
s2=$("$V" generate "$M" --prompt-token-ids 2 --max-tokens 24 --temperature 1.5 --top-p 0.95 --top-k 50 --min-p 0.01 --seed 11 --ignore-eos --json)
s3=$("$V" generate "$M" --prompt-token-ids 2 --max-tokens 24 --temperature 1.5 --top-p 0.95 --top-k 50 --min-p 0.01 --seed 12 --ignore-eos --json)
[ "$s1" = "$s2" ] && ok "seed reproducible" || bad "same seed differs"
[ "$s1" != "$s3" ] && ok "seeds differ" || bad "different seeds gave the same 24 tokens"

# EOS stops (finish_reason stop, EOS included) unless --ignore-eos
first=$(echo "$line1" | sed -E 's/.*"token_ids":\[([0-9]+).*/\1/')
cp -r "$M" "$tmp/eos"
echo "{\"eos_token_id\": $first, \"bos_token_id\": 1}" >"$tmp/eos/generation_config.json"
e=$("$V" generate "$tmp/eos" --prompt-token-ids 1,5,9 --max-tokens 5 --json)
echo "$e" | grep -q "\"token_ids\":\[$first\],\"logprobs\":null,\"finish_reason\":\"stop\",\"stop_reason\":null" && ok "EOS stops" || bad "EOS: $e"
e=$("$V" generate "$tmp/eos" --prompt-token-ids 1,5,9 --max-tokens 5 --ignore-eos --json)
echo "$e" | grep -q '"finish_reason":"length"' && ok "--ignore-eos" || bad "--ignore-eos: $e"

# dtypes: every --dtype spelling loads and runs
for d in auto half float16 bfloat16 float float32; do
  "$V" generate "$M" --prompt-token-ids 1 --max-tokens 2 --dtype $d --json >/dev/null 2>"$tmp/err" && ok "--dtype $d" || bad "--dtype $d: $(cat "$tmp/err")"
done
# --kv-cache-dtype: auto follows the run dtype (this f32 checkpoint runs in f16), or as asked
for kv in auto:f16 float32:f32 float16:f16 bfloat16:bf16; do
  "$V" generate "$M" --prompt-token-ids 1 --max-tokens 2 --kv-cache-dtype "${kv%:*}" --gpu-memory-utilization 0.5 --json \
    >/dev/null 2>"$tmp/err" && grep -q "GiB ${kv#*:}," "$tmp/err" && ok "--kv-cache-dtype ${kv%:*}: ${kv#*:} cache" \
    || bad "--kv-cache-dtype ${kv%:*}: $(cat "$tmp/err")"
done

# --- errors: bad arguments ---
expect_error "no model" "MODEL_DIR" "$V" generate --prompt-token-ids 1 --json
expect_error "bad ids" "prompt-token-ids" "$V" generate "$M" --prompt-token-ids 1,x --json
expect_error "id out of vocab" "out of vocabulary" "$V" generate "$M" --prompt-token-ids 99999 --json
expect_error "bad dtype" "unknown --dtype" "$V" generate "$M" --prompt-token-ids 1 --dtype int8 --json
expect_error "bad device" "not available" "$V" generate "$M" --prompt-token-ids 1 --device tpu --json
expect_error "fp8 KV cache" "not supported: vllmc has no KV cache quantization" "$V" generate "$M" --prompt-token-ids 1 \
  --kv-cache-dtype fp8_e4m3 --json
expect_error "bad --kv-cache-dtype" "expected auto, bfloat16, float16, float32" "$V" generate "$M" --prompt-token-ids 1 \
  --kv-cache-dtype int8 --json
expect_error "--gpu-memory-utilization 0" "(0, 1\]" "$V" generate "$M" --prompt-token-ids 1 --gpu-memory-utilization 0 --json
expect_error "--gpu-memory-utilization 1.5" "(0, 1\]" "$V" generate "$M" --prompt-token-ids 1 --gpu-memory-utilization 1.5 --json
# flags are checked before a download: a repo id with a bad flag never reaches the (unreachable) Hub
for f in "--dtype int8" "--kv-cache-dtype fp8" "--device tpu"; do
  # shellcheck disable=SC2086
  expect_error "$f with a repo id: no download" "${f#* }" env HF_ENDPOINT=http://127.0.0.1:9 HF_HOME="$tmp/hf" \
    "$V" generate test-org/some-model --prompt-token-ids 1 $f --json
  grep -q "127.0.0.1:9" "$tmp/err" && bad "$f: the Hub was asked: $(cat "$tmp/err")"
done
expect_error "bad top_p" "top_p" "$V" generate "$M" --prompt-token-ids 1 --temperature 1 --top-p 0 --json
expect_error "unknown flag" "unknown option" "$V" generate "$M" --prompt-token-ids 1 --bogus --json
expect_error "bad bind" "VLLM_CPU_OMP_THREADS_BIND" env VLLM_CPU_OMP_THREADS_BIND=9999 "$V" generate "$M" --prompt-token-ids 1 --json

# --- errors: bad model folders name the file and the problem ---
mk() { rm -rf "$tmp/m"; cp -r "$M" "$tmp/m"; }
expect_error "missing folder" "$tmp/nope" "$V" generate "$tmp/nope" --prompt-token-ids 1 --json
mk; echo '{"architectures": ["LlamaForCausalLM"], "hidden_size": ' >"$tmp/m/config.json"
expect_error "bad config JSON" "config.json" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; sed -i 's/LlamaForCausalLM/GPTBigCodeForCausalLM/' "$tmp/m/config.json"
expect_error "unknown architecture" "GPTBigCodeForCausalLM" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; sed -i 's/"num_hidden_layers": *2/"num_hidden_layers": 3/' "$tmp/m/config.json"
expect_error "missing tensor" "missing tensor 'model.layers.2" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; sed -i 's/"intermediate_size": *\([0-9]*\)/"intermediate_size": 40/' "$tmp/m/config.json"
expect_error "mis-shaped tensor" "has shape" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; head -c 5000 "$M/model.safetensors" >"$tmp/m/model.safetensors"
expect_error "truncated weights" "model.safetensors" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; : >"$tmp/m/model.safetensors"
expect_error "empty weights" "model.safetensors" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; rm "$tmp/m/model.safetensors"
expect_error "no weights" "safetensors" "$V" generate "$tmp/m" --prompt-token-ids 1 --json
mk; rm "$tmp/m/config.json"
expect_error "no config" "config.json" "$V" generate "$tmp/m" --prompt-token-ids 1 --json

# --- the CPU-only switch is honoured ---
"$V" --version | grep -q "devices: cpu" && ok "--version names the devices" || bad "--version"

exit $fail
