#!/usr/bin/env bash
# Hugging Face Hub downloads (issue #6, item 3): `vllmc generate|serve|bench ORG/NAME` against a fake Hub
# (tests/js/fake_hub.mjs on 127.0.0.1, no internet): the same output as the local folder, huggingface_hub's
# cache layout, offline use and the fallback to the cache, resumed downloads, gated and unknown repos,
# revisions, HF_HUB_CACHE / --download-dir, ENOSPC, the progress bar. Needs node; fails, never skips.
set -uo pipefail
V=${VLLMC:-build/vllmc}
fail=0
tmp=$(mktemp -d)
HUB_PID=
stop_hub() { if [ -n "$HUB_PID" ]; then kill "$HUB_PID" 2>/dev/null; wait "$HUB_PID" 2>/dev/null; HUB_PID=; fi; }
trap 'stop_hub; rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }
check() { if [ "$2" = "$3" ]; then ok "$1"; else bad "$1: got '$2' want '$3'"; fi; }

command -v node >/dev/null 2>&1 || { echo "  FAIL: node is not installed (needed for the fake Hub)" >&2; exit 1; }
# nothing from the caller's Hugging Face setup may leak in (or be written to)
unset HF_TOKEN HUGGING_FACE_HUB_TOKEN HF_TOKEN_PATH HF_HUB_CACHE HUGGINGFACE_HUB_CACHE HF_HUB_OFFLINE \
  TRANSFORMERS_OFFLINE HF_ENDPOINT HF_HOME XDG_CACHE_HOME HF_HUB_DISABLE_PROGRESS_BARS
export HOME="$tmp/home"
bash tests/fixtures/make_chat_model.sh "$tmp/repo" || { echo "  FAIL: make_chat_model.sh" >&2; exit 1; }

# start_hub LOG [ARGS]: the fake Hub in the background; sets HUB_PID, PORT, EP
start_hub() {
  local log=$1; shift
  node tests/js/fake_hub.mjs "$tmp/repo" "$@" >"$log" 2>&1 &
  HUB_PID=$!
  for _ in $(seq 200); do grep -q '^listening' "$log" && break; sleep 0.05; done
  PORT=$(awk '/^listening/{print $2}' "$log")
  [ -n "$PORT" ] || { echo "  FAIL: the fake Hub did not start: $(cat "$log")" >&2; exit 1; }
  EP=http://127.0.0.1:$PORT
}
GA=(--prompt-token-ids 1,2,3 --max-tokens 4 --json)
reqs() { grep -c '^REQ' "$1"; }
# run CMD...: stdout of CMD, stderr to $tmp/err; a failure or a sanitizer report is added to stdout, so that the
# caller's comparison fails and shows it
run() {
  "$@" 2>"$tmp/err" </dev/null; local rc=$?
  [ $rc -eq 0 ] || echo "EXIT $rc: $(head -c 400 "$tmp/err")"
  grep -q 'Sanitizer' "$tmp/err" && echo "SANITIZER: $(grep -m1 Sanitizer "$tmp/err")"
  return 0
}
# expect_error NAME CMD...: non-zero exit (no crash), nothing on stdout, stderr matching every PATS pattern
expect_error() {
  local name=$1; shift
  "$@" >"$tmp/out" 2>"$tmp/err" </dev/null; local rc=$?
  if [ $rc -eq 0 ]; then bad "$name: exit 0"; return; fi
  if [ $rc -gt 128 ] || grep -q Sanitizer "$tmp/err"; then bad "$name: crashed (rc $rc): $(head -c 300 "$tmp/err")"; return; fi
  if [ -s "$tmp/out" ]; then bad "$name: wrote to stdout"; return; fi
  for p in "${PATS[@]}"; do
    grep -q -- "$p" "$tmp/err" || { bad "$name: stderr lacks '$p': $(cat "$tmp/err")"; return; }
  done
  ok "$name ($(head -c 220 "$tmp/err"))"
}
git_sha1() { { printf 'blob %d\0' "$(stat -c %s "$1")"; cat "$1"; } | sha1sum | cut -c1-40; }
ST_SHA=$(sha256sum "$tmp/repo/model.safetensors" | cut -c1-64)

ref=$("$V" generate "$tmp/repo" "${GA[@]}" 2>/dev/null) || { echo "  FAIL: generate on the local folder" >&2; exit 1; }
start_hub "$tmp/hub.log"

# --- first download: same output as the local folder, huggingface_hub's layout ---
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama "${GA[@]}")
check "generate ORG/NAME = generate on the folder" "$out" "$ref"
grep -q '%|' "$tmp/err" && bad "progress bar drawn on a non-TTY stderr" || ok "no progress bar when stderr is not a TTY"
C=$tmp/hf/hub/models--test-org--tiny-llama
commit=$(cat "$C/refs/main" 2>/dev/null)
[[ $commit =~ ^[0-9a-f]{40}$ ]] && ok "refs/main holds the commit ($commit)" || bad "refs/main: '$commit'"
S=$C/snapshots/$commit
[ -L "$S/config.json" ] && ok "snapshots/<commit>/config.json is a symlink" || bad "config.json is not a symlink"
check "config.json -> ../../blobs/<git blob sha1>" "$(readlink "$S/config.json")" "../../blobs/$(git_sha1 "$tmp/repo/config.json")"
check "model.safetensors (LFS) -> ../../blobs/<X-Linked-Etag = sha256>" "$(readlink "$S/model.safetensors")" "../../blobs/$ST_SHA"
cmp -s "$C/blobs/$ST_SHA" "$tmp/repo/model.safetensors" && ok "the safetensors blob is byte-identical" || bad "blob differs"
check "snapshot files (only what vLLM reads)" "$(cd "$S" && find . -mindepth 1 | sort | tr '\n' ' ')" \
  "./config.json ./generation_config.json ./model.safetensors ./tokenizer.json ./tokenizer_config.json "
check "blobs: one per file, no .incomplete left" "$(ls "$C/blobs" | wc -l)" 5
grep -q 'onnx\|pytorch_model.bin\|consolidated\|README' "$tmp/hub.log" && bad "fetched a file vLLM does not read" \
  || ok "README.md, pytorch_model.bin, consolidated.safetensors, onnx/ not fetched"
grep -q "^REQ HEAD /test-org/tiny-llama/resolve/$commit/model.safetensors " "$tmp/hub.log" \
  && grep -q "^REQ GET /cdn/$ST_SHA " "$tmp/hub.log" \
  && ok "HEAD on resolve/<commit>, then GET on the CDN redirect" || bad "request sequence: $(cat "$tmp/hub.log")"
others=$(grep '^REQ' "$tmp/hub.log" | grep -v ' ua=vllmc/[0-9.]*$')
[ -z "$others" ] && ok "every request says User-Agent: vllmc/VERSION ($(grep -m1 -o 'ua=.*' "$tmp/hub.log"))" \
  || bad "a request with another user agent: $(echo "$others" | head -3)"

# --- the cache is reused: online = one API call; offline = no network at all ---
n0=$(reqs "$tmp/hub.log")
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama "${GA[@]}")
check "second run: same output" "$out" "$ref"
check "second run: only the model info request" "$(($(reqs "$tmp/hub.log") - n0))" 1
n0=$(reqs "$tmp/hub.log")
out=$(run env HF_HUB_OFFLINE=1 HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama "${GA[@]}")
check "HF_HUB_OFFLINE=1: from the cache" "$out" "$ref"
check "HF_HUB_OFFLINE=1: no request" "$(($(reqs "$tmp/hub.log") - n0))" 0
PATS=("HF_HUB_OFFLINE" "test-org/tiny-llama")
expect_error "HF_HUB_OFFLINE=1 with an empty cache" env HF_HUB_OFFLINE=1 HF_ENDPOINT="$EP" HF_HOME="$tmp/empty" \
  "$V" generate test-org/tiny-llama --prompt-token-ids 1 --json

# --- revisions ---
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama "${GA[@]}" --revision v1.0)
check "--revision v1.0 (a tag)" "$out" "$ref"
check "refs/v1.0 holds the commit" "$(cat "$C/refs/v1.0" 2>/dev/null)" "$commit"
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama "${GA[@]}" --revision "$commit")
check "--revision <commit>" "$out" "$ref"
[ -e "$C/refs/$commit" ] && bad "wrote refs/<commit>" || ok "no refs file for a commit revision"
PATS=("Revision Not Found" "nope" "test-org/tiny-llama")
expect_error "unknown --revision" env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama \
  --revision nope --prompt-token-ids 1 --json
PATS=("Revision Not Found")
expect_error "unknown --revision is not hidden by the cache (online)" env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" \
  "$V" generate test-org/tiny-llama --revision v9 --prompt-token-ids 1 --json

# --- errors ---
PATS=("Repository Not Found" "test-org/nope" "HF_TOKEN" "$EP/api/models/test-org/nope")
expect_error "unknown repo" env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/nope --prompt-token-ids 1 --json
PATS=("no safetensors weights in test-org/no-weights")
expect_error "no safetensors" env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/no-weights --prompt-token-ids 1 --json
PATS=("no such model directory" "$tmp/nope")
expect_error "missing folder (not a repo id)" "$V" generate "$tmp/nope" --prompt-token-ids 1 --json
PATS=("restricted (gated)" "HF_TOKEN" "test-org/gated")
expect_error "gated repo without a token" env HF_ENDPOINT="$EP" HF_HOME="$tmp/g1" "$V" generate test-org/gated \
  --prompt-token-ids 1 --json
PATS=("restricted (gated)" "granted access")
expect_error "gated repo with a token that has no access (403)" env HF_TOKEN=hf_wrong HF_ENDPOINT="$EP" \
  HF_HOME="$tmp/g1" "$V" generate test-org/gated --prompt-token-ids 1 --json
out=$(run env HF_TOKEN=hf_test HF_ENDPOINT="$EP" HF_HOME="$tmp/g1" "$V" generate test-org/gated "${GA[@]}")
check "gated repo with HF_TOKEN=hf_test" "$out" "$ref"
grep -q "^REQ HEAD /test-org/gated/resolve/.* auth=Bearer hf_test" "$tmp/hub.log" && ok "the token is sent as Bearer" \
  || bad "no Authorization: Bearer hf_test in $(grep gated "$tmp/hub.log" | head -3)"
mkdir -p "$tmp/g2" && printf 'hf_test\n' >"$tmp/g2/token"
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/g2" "$V" generate test-org/gated "${GA[@]}")
check "gated repo with the token in HF_HOME/token" "$out" "$ref"

# --- where the cache is ---
out=$(run env HF_HUB_CACHE="$tmp/hc" HF_ENDPOINT="$EP" HF_HOME="$tmp/h3" "$V" generate test-org/tiny-llama "${GA[@]}")
check "HF_HUB_CACHE: output" "$out" "$ref"
[ -f "$tmp/hc/models--test-org--tiny-llama/refs/main" ] && [ ! -e "$tmp/h3/hub" ] && ok "HF_HUB_CACHE is the cache" \
  || bad "HF_HUB_CACHE not honoured: $(find "$tmp/hc" "$tmp/h3" -maxdepth 2 2>&1 | head -5)"
out=$(run env HF_HUB_CACHE="$tmp/hc2" HF_ENDPOINT="$EP" HF_HOME="$tmp/h3" "$V" generate test-org/tiny-llama "${GA[@]}" --download-dir "$tmp/dd")
check "--download-dir: output" "$out" "$ref"
[ -L "$tmp/dd/models--test-org--tiny-llama/snapshots/$commit/model.safetensors" ] && [ ! -e "$tmp/hc2" ] \
  && ok "--download-dir wins over HF_HUB_CACHE" || bad "--download-dir not honoured"

# --- an index with shards; consolidated.safetensors left out ---
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama-sharded "${GA[@]}")
check "sharded repo: output" "$out" "$ref"
CS=$tmp/hf/hub/models--test-org--tiny-llama-sharded
SS=$CS/snapshots/$(cat "$CS/refs/main" 2>/dev/null)
check "sharded snapshot: the index and its shards" "$(cd "$SS" && ls | grep safetensors | tr '\n' ' ')" \
  "model-00001-of-00002.safetensors model-00002-of-00002.safetensors model.safetensors.index.json "

# --- resume: a .incomplete left by an earlier run; a connection dropped mid-file ---
B=$tmp/r1/hub/models--test-org--tiny-llama/blobs
mkdir -p "$B" && head -c 1000 "$tmp/repo/model.safetensors" >"$B/$ST_SHA.incomplete"
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/r1" "$V" generate test-org/tiny-llama "${GA[@]}")
check "resume a .incomplete: output" "$out" "$ref"
grep -q "^REQ GET /cdn/$ST_SHA range=bytes=1000- " "$tmp/hub.log" && ok "resumed with Range: bytes=1000-" \
  || bad "no Range request: $(grep cdn "$tmp/hub.log" | tail -3)"
cmp -s "$B/$ST_SHA" "$tmp/repo/model.safetensors" && [ ! -e "$B/$ST_SHA.incomplete" ] \
  && ok "resumed blob is complete and renamed" || bad "resumed blob differs or .incomplete left"
stop_hub
start_hub "$tmp/hub2.log" --drop-once
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/r2" "$V" generate test-org/tiny-llama "${GA[@]}")
check "connection dropped halfway: output" "$out" "$ref"
grep -Eq "^REQ GET /cdn/$ST_SHA range=bytes=[1-9][0-9]*- " "$tmp/hub2.log" && grep -q "trying to resume" "$tmp/err" \
  && ok "dropped connection resumed ($(grep -o 'range=bytes=[0-9]*-' "$tmp/hub2.log" | head -1))" \
  || bad "no resume after the drop: $(grep cdn "$tmp/hub2.log"; cat "$tmp/err")"
cmp -s "$tmp/r2/hub/models--test-org--tiny-llama/blobs/$ST_SHA" "$tmp/repo/model.safetensors" \
  && ok "blob after the drop is byte-identical" || bad "blob after the drop differs"

# --- disk full while writing a blob (the .incomplete is /dev/full) ---
if [ -c /dev/full ]; then
  B=$tmp/df/hub/models--test-org--tiny-llama/blobs
  mkdir -p "$B" && ln -s /dev/full "$B/$ST_SHA.incomplete"
  PATS=("no space left on device while writing" "$ST_SHA.incomplete")
  expect_error "ENOSPC" env HF_ENDPOINT="$EP" HF_HOME="$tmp/df" "$V" generate test-org/tiny-llama --prompt-token-ids 1 --json
else
  bad "/dev/full is missing: cannot test ENOSPC"
fi

# --- progress bar on a TTY (script(1) gives the command one) ---
env HF_ENDPOINT="$EP" HF_HOME="$tmp/p1" V="$V" script -qec \
  '"$V" generate test-org/tiny-llama --prompt-token-ids 1 --max-tokens 1 --json >/dev/null' /dev/null >"$tmp/tty" 2>&1
grep -aq 'model.safetensors: 100%|██████████| 376k/376k \[' "$tmp/tty" && ok "progress bar on a TTY ($(tr '\r\033' '\n ' <"$tmp/tty" | grep -a 'model.safetensors: 100%' | head -1))" \
  || bad "no progress bar on a TTY: $(head -c 600 "$tmp/tty")"

# --- serve and bench take ORG/NAME too ---
env HF_HUB_OFFLINE=1 HF_HOME="$tmp/hf" timeout 60 "$V" serve test-org/tiny-llama --host 127.0.0.1 --port 0 \
  --disable-log-stats >"$tmp/serve.out" 2>"$tmp/serve.err" </dev/null &
SPID=$!
for _ in $(seq 300); do grep -q 'INFO vllmc: listening on http://' "$tmp/serve.err" && break; sleep 0.05; done
SPORT=$(grep -o 'listening on http://127.0.0.1:[0-9]*' "$tmp/serve.err" | grep -o '[0-9]*$')
models=$(node -e 'fetch(process.argv[1]).then(r => r.json()).then(j => console.log(j.data.map(m => m.id).join(",")))' \
  "http://127.0.0.1:${SPORT:-1}/v1/models" 2>&1)
check "serve ORG/NAME: /v1/models reports ORG/NAME" "$models" "test-org/tiny-llama"
kill -TERM "$SPID" 2>/dev/null; wait "$SPID"; src=$?
[ $src -eq 0 ] && ! grep -q Sanitizer "$tmp/serve.err" && ok "serve ORG/NAME: clean exit on SIGTERM" \
  || bad "serve ORG/NAME: exit $src: $(grep -v INFO "$tmp/serve.err" | head -c 400)"
env HF_HUB_OFFLINE=1 HF_HOME="$tmp/hf" "$V" bench throughput test-org/tiny-llama --input-len 4 --output-len 2 \
  --num-prompts 2 >"$tmp/bench" 2>&1 && grep -q Throughput "$tmp/bench" && ! grep -q Sanitizer "$tmp/bench" && ok "bench throughput ORG/NAME" \
  || bad "bench throughput ORG/NAME: $(tail -3 "$tmp/bench")"
# (through files: with pipefail, `grep -q` leaving early would make the writer's SIGPIPE a failure)
"$V" serve --help >"$tmp/help1" && "$V" generate --help >"$tmp/help2" && grep -q -- "--download-dir" "$tmp/help1" \
  && grep -q -- "--revision" "$tmp/help2" \
  && ok "--revision / --download-dir in the usage texts" || bad "usage texts lack the flags"

# --- the Hub goes away: the cache stands in, with a warning ---
stop_hub
out=$(run env HF_ENDPOINT="$EP" HF_HOME="$tmp/hf" "$V" generate test-org/tiny-llama "${GA[@]}")
check "Hub unreachable: output from the cache" "$out" "$ref"
grep -q "warning:.*cannot reach .*using the cached snapshot $commit" "$tmp/err" && ok "Hub unreachable: warning" \
  || bad "Hub unreachable: no warning: $(cat "$tmp/err")"
PATS=("cannot reach $EP/api/models/test-org/tiny-llama/revision/main" "onnect")
expect_error "Hub unreachable, nothing cached" env HF_ENDPOINT="$EP" HF_HOME="$tmp/empty" "$V" generate test-org/tiny-llama \
  --prompt-token-ids 1 --json

[ $fail -eq 0 ] && echo "test_hub: all passed" || echo "test_hub: FAILED" >&2
exit $fail
