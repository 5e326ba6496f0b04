#!/usr/bin/env bash
# `vllmc serve`, the OpenAI-compatible server, judged against vLLM's behaviour: the official
# `openai` npm client (tests/js/server_openai.mjs), raw HTTP (tests/js/server_http.mjs: errors,
# auth, tokenize, metrics, disconnects), a load test (tests/js/server_load.mjs) and LoRA adapters
# (tests/js/server_lora.mjs, adapters from tests/fixtures/make_lora_adapter.sh), all on the tiny
# random-weight chat model of tests/fixtures/make_chat_model.sh; plus the CLI side here: an unknown
# flag is refused with a suggestion, and SIGINT in the middle of a streaming request exits 0.
# Needs node and tests/js/node_modules (./test.sh runs `npm ci` in tests/js); fails, never skips,
# when they are missing.
set -uo pipefail
V=${VLLMC:-build/vllmc}
NM=tests/js/node_modules
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }

if ! command -v node >/dev/null 2>&1; then
  echo "  FAIL: node is not installed (needed for the server tests): run ./test.sh" >&2
  exit 1
fi
if [ ! -f "$NM/openai/package.json" ]; then
  echo "  FAIL: $NM/openai is missing: run ./test.sh or 'cd tests/js && npm ci'" >&2
  exit 1
fi
if [ ! -x "$V" ]; then
  echo "  FAIL: $V is not built (make)" >&2
  exit 1
fi

tests/fixtures/make_chat_model.sh "$tmp/model" || { echo "  FAIL: make_chat_model.sh" >&2; exit 1; }
export VLLMC="$V" VLLMC_TEST_MODEL="$tmp/model"

# --- CLI: --help, unknown flag ---
if "$V" serve --help >"$tmp/help" 2>&1 && grep -q -- "--max-num-seqs" "$tmp/help"; then
  ok "serve --help exits 0 and lists --max-num-seqs"
else
  bad "serve --help: $(head -c 300 "$tmp/help")"
fi
timeout 30 "$V" serve "$tmp/model" --host 127.0.0.1 --port 0 --max-num-seq 4 >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && grep -q -- "--max-num-seqs" "$tmp/err"; then
  ok "unknown flag --max-num-seq: exit $rc, suggests --max-num-seqs ($(grep -m1 -- '--max-num-seqs' "$tmp/err" | head -c 150))"
else
  bad "unknown flag --max-num-seq: exit $rc (124 = still serving after 30 s), stderr: $(head -c 300 "$tmp/err")"
fi

timeout 30 "$V" serve "$tmp/model" --host 127.0.0.1 --port 0 --kv-cache-dtype fp8 >"$tmp/out" 2>"$tmp/err" </dev/null; rc=$?
[ $rc -eq 2 ] && grep -q "vllmc has no KV cache quantization" "$tmp/err" && ok "--kv-cache-dtype fp8: exit 2, $(head -c 120 "$tmp/err")" \
  || bad "--kv-cache-dtype fp8: exit $rc: $(head -c 300 "$tmp/err")"

# --- SIGINT in the middle of a streaming request: exit 0 within 10 s ---
# (the server is started by node: libuv resets signal dispositions, whereas a background job of
# this non-interactive shell would start with SIGINT ignored)
if UTIL="$PWD/tests/js/server_util.mjs" node --input-type=module -e '
const { startServer, streamPost } = await import(process.env.UTIL);
const s = await startServer([], { name: "sigint" });
let signalled = false, events = 0;
const stream = streamPost(s.port, "/v1/completions",
  { model: "test-model", prompt: "hi", max_tokens: 500, ignore_eos: true, stream: true },
  { onEvent: () => { events++; if (!signalled) { signalled = true; s.child.kill("SIGINT"); } } })
  .catch((e) => ({ error: e.message }));
const t0 = Date.now();
const r = await Promise.race([s.exited, new Promise((res) => setTimeout(() => res(null), 15000))]);
const ms = Date.now() - t0;
if (!signalled) { console.error("no chunk arrived before the server exited"); process.exit(1); }
if (r === null) { s.child.kill("SIGKILL"); console.error("still running 15 s after SIGINT"); process.exit(1); }
const st = await stream;
console.log(`exit code ${r.code}, signal ${r.signal}, ${ms} ms after SIGINT, ${events} events seen, stream ${st.error ? "error: " + st.error : st.done ? "ended with [DONE]" : "closed"}`);
process.exit(r.code === 0 && ms <= 10000 ? 0 : 1);
' >"$tmp/sigint" 2>&1; then
  ok "SIGINT mid-stream: $(tail -n1 "$tmp/sigint")"
else
  bad "SIGINT mid-stream: $(tail -c 600 "$tmp/sigint")"
fi

# --- a model folder without tokenizer files: token-id prompts work (empty text), chat is a 400 ---
if UTIL="$PWD/tests/js/server_util.mjs" VLLMC_TEST_MODEL="$PWD/tests/golden/llama-f32" node --input-type=module -e '
const { startServer } = await import(process.env.UTIL);
const s = await startServer([], { name: "notok" });
const post = (path, body) => fetch(`http://127.0.0.1:${s.port}${path}`, { method: "POST",
  headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
const a = await post("/v1/completions", { model: "test-model", prompt: [1, 2, 3], max_tokens: 4, ignore_eos: true });
const aj = await a.json();
const b = await post("/v1/chat/completions", { model: "test-model", messages: [{ role: "user", content: "hi" }] });
const c = await post("/v1/completions", { model: "test-model", prompt: "text", max_tokens: 2 });
const alive = (await fetch(`http://127.0.0.1:${s.port}/health`)).status;
await s.stop();
const good = a.status === 200 && aj.choices[0].text === "" && aj.usage.completion_tokens === 4 &&
  b.status === 400 && c.status === 400 && alive === 200;
console.log(`token ids ${a.status} text ${JSON.stringify(aj.choices && aj.choices[0].text)} tokens ${aj.usage && aj.usage.completion_tokens}, chat ${b.status}, text prompt ${c.status}, health ${alive}`);
process.exit(good ? 0 : 1);
' >"$tmp/notok" 2>&1; then
  ok "no tokenizer: $(tail -n1 "$tmp/notok")"
else
  bad "no tokenizer: $(tail -c 600 "$tmp/notok")"
fi

# --- generation_config.json defaults (vLLM's default_sampling_params), --generation-config vllm ---
cp -r "$tmp/model" "$tmp/gcmodel"
echo '{"bos_token_id": 1, "eos_token_id": 2, "temperature": 0.0, "max_new_tokens": 5}' >"$tmp/gcmodel/generation_config.json"
if UTIL="$PWD/tests/js/server_util.mjs" VLLMC_TEST_MODEL="$tmp/gcmodel" node --input-type=module -e '
const { startServer } = await import(process.env.UTIL);
const run = async (args) => {
  const s = await startServer(args, { name: "gc" });
  const post = (body) => fetch(`http://127.0.0.1:${s.port}/v1/chat/completions`, { method: "POST",
    headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json());
  const body = { model: "test-model", messages: [{ role: "user", content: "hi" }], ignore_eos: true };
  const a = await post(body), b = await post(body), c = await post({ ...body, max_tokens: 9 });
  await s.stop();
  return { same: a.choices[0].message.content === b.choices[0].message.content, n: a.usage.completion_tokens,
           n9: c.usage.completion_tokens };
};
const auto = await run([]), vllm = await run(["--generation-config", "vllm"]);
console.log(`auto: greedy ${auto.same}, ${auto.n} tokens (max_tokens 9 capped: ${auto.n9}); vllm: same text ${vllm.same}, ${vllm.n} tokens`);
process.exit(auto.same && auto.n === 5 && auto.n9 === 5 && !vllm.same && vllm.n > 5 ? 0 : 1);
' >"$tmp/gc" 2>&1; then
  ok "generation_config defaults: $(tail -n1 "$tmp/gc")"
else
  bad "generation_config defaults: $(tail -c 600 "$tmp/gc")"
fi

# --- a failing engine (fault injected after 12 steps): the open stream gets an error event and
# [DONE], in-flight plain requests a 500, new requests 503, /health 503; SIGTERM still exits 0 ---
if UTIL="$PWD/tests/js/server_util.mjs" node --input-type=module -e '
const { startServer, streamPost } = await import(process.env.UTIL);
const s = await startServer([], { name: "fault", env: { VLLMC_FAULT_AFTER_STEPS: "12" } });
const body = { model: "test-model", prompt: "hi", max_tokens: 200, ignore_eos: true };
const st = await streamPost(s.port, "/v1/completions", { ...body, stream: true });
const errEv = st.events.find((e) => e.json && e.json.error);
const post = (b) => fetch(`http://127.0.0.1:${s.port}/v1/completions`, { method: "POST",
  headers: { "Content-Type": "application/json" }, body: JSON.stringify(b) });
const after = await post(body);
const aj = await after.json();
const health = (await fetch(`http://127.0.0.1:${s.port}/health`)).status;
const r = await s.stop("SIGTERM");
const good = st.status === 200 && errEv && typeof errEv.json.error.message === "string" && st.done &&
  after.status === 503 && aj.error && aj.error.code === 503 && health === 503 && r.code === 0;
console.log(`stream: error event ${errEv ? JSON.stringify(errEv.json.error.message) : "none"}, [DONE] ${st.done}; ` +
  `next request ${after.status}; /health ${health}; exit ${r.code}`);
process.exit(good ? 0 : 1);
' >"$tmp/fault" 2>&1; then
  ok "engine failure: $(tail -n1 "$tmp/fault")"
else
  bad "engine failure: $(tail -c 800 "$tmp/fault")"
fi

# --- a plain (non-streaming) request whose client leaves while tokens are flowing is aborted too
# (the demo model: ~1 ms a token, so 900 tokens take about a second) ---
if UTIL="$PWD/tests/js/server_util.mjs" VLLMC_TEST_MODEL="$PWD/models/demo" node --input-type=module -e '
const { startServer, fetchMetrics, metricSum } = await import(process.env.UTIL);
const s = await startServer([], { name: "plaincut" });
const ac = new AbortController();
const req = fetch(`http://127.0.0.1:${s.port}/v1/completions`, { method: "POST", signal: ac.signal,
  headers: { "Content-Type": "application/json" },
  body: JSON.stringify({ model: "test-model", prompt: "Once", max_tokens: 900, ignore_eos: true }) }).catch(() => null);
await new Promise((r) => setTimeout(r, 150));
ac.abort();
await req;
let running = -1, abort = 0;
for (let i = 0; i < 20; i++) {
  const m = await fetchMetrics(s.port);
  running = metricSum(m, "vllm:num_requests_running");
  abort = metricSum(m, "vllm:request_success_total", { finished_reason: "abort" });
  if (running === 0 && abort === 1) break;
  await new Promise((r) => setTimeout(r, 50));
}
const gen = metricSum(await fetchMetrics(s.port), "vllm:generation_tokens_total");
await s.stop();
console.log(`after the client left: running ${running}, aborted ${abort}, tokens generated ${gen} of 900`);
process.exit(running === 0 && abort === 1 && gen < 900 ? 0 : 1);
' >"$tmp/plaincut" 2>&1; then
  ok "plain request, client gone: $(tail -n1 "$tmp/plaincut")"
else
  bad "plain request, client gone: $(tail -c 600 "$tmp/plaincut")"
fi

# --- the JS suites ---
hostile=server_hostile lora=server_lora autotool=server_autotool
# the hostile client tests the HTTP layer, which does not depend on the device: once, on the CPU; the
# LoRA suite tests the server's adapter handling (27 s on lavapipe): once, on the CPU, while LoRA on the
# GPU is test_lora's, test_golden's (peft goldens) and test_backend_ops' (the lora op); the output
# parsers (auto tool choice, reasoning) read text, whatever made it: once, on the CPU
[ "${VLLMC_TEST_DEVICE:-}" = gpu ] && hostile= && lora= && autotool=
# under ASan (make asan) the tool_choice suite is left to the plain run (its code is fuzzed under ASan by
# fuzz_request): at 2.5 minutes it is the slowest suite there (CI time)
tools=server_tools
case "$V" in *asan*) tools= ;; esac
# under ASan on the GPU (lavapipe, ~2 minutes for the four suites) only the openai client's suite: the
# HTTP layer, the load test and structured output run on the host whatever the device, and run under
# ASan in the CPU pass; the Vulkan backend's host code is under ASan in test_golden and test_vulkan.sh
rest="server_http server_load server_structured"
case "$V:${VLLMC_TEST_DEVICE:-}" in *asan*:gpu) rest= ;; esac
for t in server_openai $rest $tools $autotool $lora $hostile; do
  echo "  node tests/js/$t.mjs"
  if node "tests/js/$t.mjs"; then ok "$t.mjs"; else bad "$t.mjs (see the FAIL lines above)"; fi
done

exit $fail
