#!/usr/bin/env bash
# LoRA in `vllmc generate` (step 8): --lora NAME=PATH loads PEFT adapters (made by
# tests/fixtures/make_lora_adapter.sh for the chat model of make_chat_model.sh), --lora-name runs the
# command line's prompts with one, a --prompts-file line's "lora" picks its own. Greedy outputs of
# the base model and of two adapters differ; a prompt's output is the same alone and in a mixed
# batch; an unknown adapter name is an error naming the file and line; a bad adapter folder is an
# error naming the adapter and the file. Needs node (the fixture writes the adapters with it).
set -uo pipefail
V=${VLLMC:-build/vllmc}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

if ! command -v node >/dev/null; then echo "  FAIL: node is not installed (the adapter fixture needs it)" >&2; exit 1; fi
tests/fixtures/make_chat_model.sh "$tmp/m" || { echo "  FAIL: make_chat_model.sh" >&2; exit 1; }
tests/fixtures/make_lora_adapter.sh "$tmp/a" "$tmp/m" 8 q_proj,k_proj,v_proj,o_proj,gate_proj,up_proj,down_proj 1 &&
  tests/fixtures/make_lora_adapter.sh "$tmp/b" "$tmp/m" 8 q_proj,v_proj 2 &&
  tests/fixtures/make_lora_adapter.sh "$tmp/big" "$tmp/m" 32 q_proj 3 ||
  { echo "  FAIL: make_lora_adapter.sh" >&2; exit 1; }
M=$tmp/m
LET=259,260,261,262,263,264,265,266,267,268,269,270,271,272,273,274,275,276,277,278,279,280,281,282,283,284
# greedy, letters only (readable), a fixed length
gen() { "$V" generate "$M" --max-tokens 10 --ignore-eos --json "$@" 2>"$tmp/err"; }
text() { sed -n 's/.*"text":"\([^"]*\)".*/\1/p'; }
letters() { printf '{"prompt":"%s","allowed_token_ids":[%s]%s}\n' "$1" "$LET" "${2:+,\"lora\":\"$2\"}"; }

# --- the command line's prompts: base, then with --lora-name a / b ---
base=$(gen --prompts-file <(letters hello) | text)
A=$(gen --lora a="$tmp/a" --lora-name a --prompts-file <(letters hello) | text)
B=$(gen --lora a="$tmp/a" --lora b="$tmp/b" --lora-name b --prompts-file <(letters hello) | text)
if [ ${#base} = 10 ] && [ ${#A} = 10 ] && [ ${#B} = 10 ] &&
   [ "$A" != "$base" ] && [ "$B" != "$base" ] && [ "$A" != "$B" ]; then
  ok "greedy outputs differ: base '$base', a '$A', b '$B'"
else
  bad "outputs base '$base' a '$A' b '$B': $(grep -v '^INFO' "$tmp/err" | head -c 300)"
fi
again=$(gen --lora a="$tmp/a" --lora-name a --prompts-file <(letters hello) | text)
[ "$again" = "$A" ] && ok "an adapter's greedy output repeats" || bad "a: '$A' then '$again'"

# --- a prompts file mixing adapters: each line as alone; no "lora" takes --lora-name's, "" the base ---
{ letters hello a; letters hello; letters hello b; letters hello ""; letters "other words" a; } >"$tmp/mix.jsonl"
out=$(gen --lora a="$tmp/a" --lora b="$tmp/b" --max-loras 2 --prompts-file "$tmp/mix.jsonl" | text | tr '\n' ' ')
other=$(gen --lora a="$tmp/a" --prompts-file <(letters "other words" a) | text)
want="$A $base $B $base $other "
[ "$out" = "$want" ] && ok "prompts file with \"lora\" per line, mixed batch (--max-loras 2): $out" ||
  bad "prompts file: got '$out', want '$want' ($(grep -v '^INFO' "$tmp/err" | head -c 300))"
out1=$(gen --lora a="$tmp/a" --lora b="$tmp/b" --prompts-file "$tmp/mix.jsonl" | text | tr '\n' ' ')
[ "$out1" = "$want" ] && ok "the same with --max-loras 1 (one adapter per step)" || bad "--max-loras 1: '$out1' vs '$want'"
out=$(gen --lora a="$tmp/a" --lora-name a --prompts-file "$tmp/mix.jsonl" --lora b="$tmp/b" | text | sed -n 2p)
[ "$out" = "$A" ] && ok "a line without \"lora\" takes --lora-name's adapter" || bad "default adapter: '$out' vs '$A'"

# --- errors ---
# expect_error NAME RC PATTERN CMD...: exit RC, stderr matching PATTERN, nothing on stdout
expect_error() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [ $rc -ne "$want" ]; then bad "$name: exit $rc, want $want: $(grep -v '^INFO' "$tmp/err" | head -c 300)"; return; fi
  if ! grep -q -- "$pat" "$tmp/err"; then bad "$name: stderr lacks '$pat': $(grep -v '^INFO' "$tmp/err")"; return; fi
  if [ -s "$tmp/out" ]; then bad "$name: wrote to stdout"; return; fi
  ok "$name ($(grep -v '^INFO' "$tmp/err" | head -c 160))"
}
printf '{"prompt":"hi"}\n\n{"prompt":"hi","lora":"zz"}\n' >"$tmp/unknown.jsonl"
expect_error "unknown adapter in a prompts-file line names the file and line" 2 "unknown.jsonl:3: unknown LoRA adapter 'zz'" \
  "$V" generate "$M" --lora a="$tmp/a" --prompts-file "$tmp/unknown.jsonl" --json
expect_error "a \"lora\" line without any --lora" 2 "unknown.jsonl:3: unknown LoRA adapter 'zz'" \
  "$V" generate "$M" --prompts-file "$tmp/unknown.jsonl" --json
printf '{"prompt":"hi","lora":7}\n' >"$tmp/num.jsonl"
expect_error "\"lora\" that is not a string" 2 "num.jsonl:1: 'lora' must be a string" \
  "$V" generate "$M" --lora a="$tmp/a" --prompts-file "$tmp/num.jsonl" --json
expect_error "--lora-name of no loaded adapter" 2 "--lora-name zz: no adapter of that name" \
  "$V" generate "$M" --lora a="$tmp/a" --lora-name zz --prompt hi --json
expect_error "a bad adapter folder names the adapter and the file" 1 "'bad'.*adapter_config.json" \
  "$V" generate "$M" --lora bad="$tmp" --prompt hi --json
expect_error "an adapter above --max-lora-rank" 1 "rank 32, above --max-lora-rank 16" \
  "$V" generate "$M" --lora big="$tmp/big" --prompt hi --json
expect_error "--lora PATH without NAME= (read as the JSON form, as vLLM)" 2 "Invalid JSON format for --lora: .*name=path" \
  "$V" generate "$M" --lora "$tmp/a" --prompt hi --json
expect_error "--lora with two '='" 2 "--lora: expected name=path" "$V" generate "$M" --lora "a=b=$tmp/a" --prompt hi --json
expect_error "--max-lora-rank outside vLLM's choices" 2 "invalid choice: '4'" \
  "$V" generate "$M" --lora a="$tmp/a" --max-lora-rank 4 --prompt hi --json

# bench throughput --num-loras: random in-memory adapters, the line naming them, a rank the flag refuses
out=$("$V" bench throughput "$M" --input-len 8 --output-len 4 --num-prompts 4 --num-loras 2 2>"$tmp/berr")
if [ $? -eq 0 ] && grep -q "output tokens/s" <<<"$out" && grep -q "^LoRA: 2 adapters of rank 16" <<<"$out"; then
  ok "bench throughput --num-loras 2 runs and says so"
else
  bad "bench throughput --num-loras 2: $out $(grep -v '^INFO' "$tmp/berr" | head -c 300)"
fi
expect_error "bench --num-loras with --max-lora-rank below the adapters' 16" 2 "max-lora-rank 8 is below it" \
  "$V" bench throughput "$M" --input-len 8 --output-len 4 --num-prompts 4 --num-loras 2 --max-lora-rank 8

# --- a Hub id as the adapter's path: downloaded into the Hugging Face cache (a fake Hub on 127.0.0.1) ---
node tests/js/fake_hub.mjs "$M" --adapter "$tmp/a" >"$tmp/hub.log" 2>&1 &
hub=$!
for _ in $(seq 200); do grep -q '^listening' "$tmp/hub.log" && break; sleep 0.05; done
port=$(awk '/^listening/{print $2}' "$tmp/hub.log")
hubgen() { env -u HF_TOKEN -u HF_HUB_OFFLINE -u HF_HUB_CACHE HF_ENDPOINT="http://127.0.0.1:$port" HF_HOME="$tmp/hf" \
  "$V" generate "$M" --max-tokens 10 --ignore-eos --json --lora a=test-org/tiny-lora --lora-name a "$@" 2>"$tmp/err"; }
H=$(hubgen --prompts-file <(letters hello) | text)
snap=$(ls -d "$tmp"/hf/hub/models--test-org--tiny-lora/snapshots/*/ 2>/dev/null | head -1)
files=$( [ -n "$snap" ] && cd "$snap" && ls | tr '\n' ' ')
if [ -n "$port" ] && [ "$H" = "$A" ] && [ "$files" = "adapter_config.json adapter_model.safetensors " ] &&
   ! grep -q 'adapter_model.bin\|README' "$tmp/hub.log"; then
  ok "--lora a=ORG/NAME downloads the adapter (only its two files) and gives the folder's output '$A'"
else
  bad "Hub adapter: output '$H' (want '$A'), snapshot files '$files': $(grep -v '^INFO' "$tmp/err" | head -c 300)"
fi
H2=$(HF_HUB_OFFLINE=1 hubgen --prompts-file <(letters hello) | text)
[ "$H2" = "$A" ] && ok "the cached adapter serves offline (HF_HUB_OFFLINE=1)" || bad "offline: '$H2' vs '$A'"
expect_error "an unknown adapter repo" 1 "test-org/nope" env HF_ENDPOINT="http://127.0.0.1:$port" HF_HOME="$tmp/hf" \
  "$V" generate "$M" --lora a=test-org/nope --lora-name a --prompt hi --json
kill $hub 2>/dev/null; wait $hub 2>/dev/null

exit $fail
