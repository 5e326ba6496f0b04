#!/usr/bin/env bash
# `vllmc bench serve` (vLLM's serving benchmark) against a fake OpenAI streaming
# server (tests/js/fake_stream_server.mjs: node's http module, no model), so the
# client is tested without `vllmc serve`: the report's counts and figures, the
# --json line, Poisson arrivals, failed requests (400s, SSE error events), the
# three body framings (chunked, Content-Length, close), and the exit statuses.
set -uo pipefail
V=${VLLMC:-build/vllmc}
fail=0
tmp=$(mktemp -d)
srv=
trap '[ -n "$srv" ] && kill "$srv" 2>/dev/null; rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

command -v node >/dev/null || { echo "  skip: node not found" >&2; exit 0; }
node tests/js/fake_stream_server.mjs 0 >"$tmp/srv.out" 2>"$tmp/srv.err" &
srv=$!
for _ in $(seq 100); do grep -q '^listening' "$tmp/srv.out" && break; sleep 0.1; done
PORT=$(awk '/^listening/ {print $2}' "$tmp/srv.out")
[ -n "$PORT" ] || { echo "  FAIL: fake server did not start: $(cat "$tmp/srv.err")" >&2; exit 1; }
URL=http://127.0.0.1:$PORT

# value LABEL FILE: the figure after "LABEL:" in the report (its last line: the result block's)
value() { awk -v k="$1:" 'index($0, k) == 1 { v = $(NF) } END { print v }' "$2"; }
# check NAME AWK-CONDITION: the condition over the variables given after it
check() { local name=$1 cond=$2; shift 2
  if awk "$@" "BEGIN { exit !($cond) }"; then ok "$name"; else bad "$name ($*)"; fi; }

# --- the main run ---
"$V" bench serve --base-url "$URL" --num-prompts 20 --max-concurrency 4 --random-input-len 8 \
  --random-output-len 5 --json >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && ok "exit 0" || bad "exit $rc: $(cat "$tmp/err")"
grep -q '^machine: triad [0-9.]* GB/s, peak FMA [0-9.]* GFLOP/s' "$tmp/out" && ok "machine line" || bad "no machine line"
grep -q '^============ Serving Benchmark Result ============$' "$tmp/out" && ok "vLLM's header" || bad "no header"
others=$(grep '^REQ' "$tmp/srv.out" | grep -v ' ua=vllmc/[0-9.]* bench-serve$')
grep -q '^REQ POST /v1/completions ua=vllmc/' "$tmp/srv.out" && [ -z "$others" ] \
  && ok "User-Agent: vllmc's own ($(grep -m1 -o 'ua=.*' "$tmp/srv.out"))" || bad "user agent: $(echo "$others" | head -3)"
check "20 successful" 's == 20' -v s="$(value 'Successful requests' "$tmp/out")"
check "0 failed" 'f == 0' -v f="$(value 'Failed requests' "$tmp/out")"
check "concurrency 4" 'c == 4' -v c="$(value 'Maximum request concurrency' "$tmp/out")"
check "160 input tokens" 'n == 160' -v n="$(value 'Total input tokens' "$tmp/out")"
check "100 generated tokens" 'n == 100' -v n="$(value 'Total generated tokens' "$tmp/out")"
for m in TTFT TPOT ITL E2EL; do
  for s in Mean Median P99; do
    check "$s $m > 0" 'x > 0' -v x="$(value "$s $m (ms)" "$tmp/out")"
  done
done
check "E2EL >= TTFT" 'e >= t' -v e="$(value 'Mean E2EL (ms)' "$tmp/out")" -v t="$(value 'Mean TTFT (ms)' "$tmp/out")"
# 5 tokens ~2 ms apart: TPOT and ITL are about 2 ms, E2EL about TTFT + 4 gaps
check "TPOT ~ 2 ms" 'x >= 1.5 && x < 50' -v x="$(value 'Mean TPOT (ms)' "$tmp/out")"
last=$(tail -n 1 "$tmp/out")
if node -e '
  const o = JSON.parse(process.argv[1]);
  const want = {completed: 20, failed: 0, total_input_tokens: 160, total_output_tokens: 100, max_concurrency: 4};
  for (const [k, v] of Object.entries(want)) if (o[k] !== v) throw new Error(`${k}: ${o[k]} != ${v}`);
  for (const m of ["ttft", "tpot", "itl", "e2el"])
    for (const s of ["mean", "median", "p99"]) if (!(o[`${s}_${m}_ms`] > 0)) throw new Error(`${s}_${m}_ms`);
  for (const k of ["duration", "request_throughput", "output_throughput", "total_token_throughput",
                   "machine_triad_gbs", "machine_peak_gflops"]) if (!(o[k] > 0)) throw new Error(k);
  if (o.request_rate !== "inf") throw new Error("request_rate");' "$last" 2>"$tmp/node.err"; then
  ok "JSON last line: ${last:0:100}..."
else
  bad "JSON last line: $(cat "$tmp/node.err" | grep -m1 Error) in: $last"
fi

# --- Poisson arrivals at 50 req/s, --host/--port, the model named ---
"$V" bench serve --host 127.0.0.1 --port "$PORT" --model fake-model --num-prompts 10 --request-rate 50 \
  --random-input-len 4 --random-output-len 3 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && check "--request-rate 50: 10 successful" 's == 10' -v s="$(value 'Successful requests' "$tmp/out")" \
  || bad "--request-rate 50: exit $rc: $(cat "$tmp/err")"
check "--request-rate 50 reported" 'r == 50' -v r="$(value 'Request rate configured (RPS)' "$tmp/out")"
# 10 arrivals at 50/s take ~0.2 s (seeded gaps): far from all-at-once
check "--request-rate 50 spreads arrivals" 'd > 0.05' -v d="$(value 'Benchmark duration (s)' "$tmp/out")"

# --- the other body framings: Content-Length and close-delimited ---
for m in fake-model-length fake-model-close; do
  "$V" bench serve --base-url "$URL/" --model $m --num-prompts 6 --max-concurrency 3 --random-input-len 8 \
    --random-output-len 5 >"$tmp/out" 2>"$tmp/err"
  rc=$?
  check "$m: exit 0, 6 successful, 30 tokens" 'rc == 0 && s == 6 && n == 30' -v rc=$rc \
    -v s="$(value 'Successful requests' "$tmp/out")" -v n="$(value 'Total generated tokens' "$tmp/out")"
done

# --- failed requests: still exit 0, counted, the first error printed ---
"$V" bench serve --base-url "$URL" --model fake-model-error --num-prompts 6 --max-concurrency 2 \
  --random-input-len 8 --random-output-len 5 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "SSE error events: exit 0, 3 of 6 failed" 'rc == 0 && s == 3 && f == 3' -v rc=$rc \
  -v s="$(value 'Successful requests' "$tmp/out")" -v f="$(value 'Failed requests' "$tmp/out")"
grep -q 'requests failed; the first: error event: engine died' "$tmp/err" && ok "error event message" \
  || bad "error event message: $(cat "$tmp/err")"
# empty prompts (input length 1 +- 90% draws 0 or 1) get the server's 400
"$V" bench serve --base-url "$URL" --num-prompts 10 --random-input-len 1 --random-range-ratio 0.9 \
  --random-output-len 3 --seed 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
check "HTTP 400s: exit 0, some failed" 'rc == 0 && f > 0 && s + f == 10' -v rc=$rc \
  -v s="$(value 'Successful requests' "$tmp/out")" -v f="$(value 'Failed requests' "$tmp/out")"
grep -q 'the first: HTTP 400 Bad Request: bad' "$tmp/err" && ok "400 message" || bad "400 message: $(cat "$tmp/err")"

# --- errors ---
closed=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); })')
"$V" bench serve --base-url "http://127.0.0.1:$closed" --num-prompts 2 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "http://127.0.0.1:$closed" "$tmp/err" && ok "refused: exit 1 naming the URL ($(head -c 120 "$tmp/err"))" \
  || bad "refused: exit $rc: $(cat "$tmp/err")"
"$V" bench serve --base-url "http://127.0.0.1:$closed" --model m --num-prompts 2 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "http://127.0.0.1:$closed/v1/completions" "$tmp/err" && ok "refused with --model: exit 1" \
  || bad "refused with --model: exit $rc: $(cat "$tmp/err")"
"$V" bench serve --base-url "$URL" --bogus-flag 1 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && grep -q -- "--bogus-flag" "$tmp/err" && ok "unknown flag: exit 2" || bad "unknown flag: exit $rc: $(cat "$tmp/err")"
"$V" bench serve --base-url https://127.0.0.1:1 >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 2 ] && grep -q "https is not supported" "$tmp/err" && ok "https: exit 2" || bad "https: exit $rc: $(cat "$tmp/err")"
"$V" bench serve --help >"$tmp/out" 2>&1 && grep -q "https is not supported" "$tmp/out" && ok "--help" || bad "--help"

exit $fail
