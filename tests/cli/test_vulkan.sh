#!/usr/bin/env bash
# The Vulkan backend beyond the op and golden tests (issue #12, section 6 and "Bad input and faults"):
#  1. Khronos validation layers (with synchronization validation) over test_backend_ops (mapped
#     memory and VLLMC_VULKAN_STAGING=1), test_engine's GPU pass, `vllmc generate --device gpu` on
#     golden models (f32 runs give the CPU's tokens) and `vllmc serve --device gpu` answering a plain,
#     a streaming and a chat request: any validation error, warning or performance warning fails, and
#     each run must show the layer's "Validation Layer Active" line, so a layer that did not load
#     cannot pass silently.
#  2. Faults: no Vulkan loader, a loader without entry points, no driver, a bad VLLMC_VULKAN_DEVICE,
#     a device too small for the weights or the KV cache (VLLMC_VULKAN_MEMORY_LIMIT), a device lost
#     (VLLMC_VULKAN_FAULT_AFTER_SUBMITS) under generate and under serve. `--device auto` must run on
#     the CPU and say why; `--device gpu` must exit non-zero with a message naming the device and the
#     figures; a device lost while serving is the engine failure (error event, 500, then 503 and
#     /health 503), never a crash.
# Runs when the build has GPU code and `--device gpu` opens (lavapipe in CI); with VLLMC_TEST_GPU=1
# (./test.sh) a missing GPU, validation layer, node or compiler fails instead of skipping.
set -uo pipefail
V=${VLLMC:-build/vllmc}
B=$(dirname "$V")
G=tests/golden
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }
required=0; [ "${VLLMC_TEST_GPU:-}" = 1 ] && required=1
skip() { if [ $required = 1 ]; then echo "  FAIL: $1 (VLLMC_TEST_GPU=1 requires it)" >&2; exit 1; fi; echo "  skipped: $1"; exit 0; }

[ -x "$V" ] || { echo "  FAIL: $V is not built (make)" >&2; exit 1; }
gen() { "$V" generate "$@" --json; }
P=(--prompt-token-ids 1,5,9,33,7 --prompt-token-ids 3,4 --prompt-token-ids 200,100,50,25,12,6,3,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17)
if ! gen $G/llama-f32 --device gpu --prompt-token-ids 1 --max-tokens 1 >/dev/null 2>"$tmp/probe"; then
  skip "--device gpu does not open: $(tail -n1 "$tmp/probe")"
fi
# a run that died on a signal (or ASan's abort) is a crash, whatever it printed
crashed() { [ "$1" -ge 128 ] || grep -q "ERROR: AddressSanitizer\|runtime error:" "$2"; }

# ---------------------------------------------------------------------------------------------
# 1. validation layers
VL_JSON=""
for d in "${XDG_DATA_HOME:-$HOME/.local/share}" /usr/local/share /usr/share; do
  [ -f "$d/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" ] && VL_JSON="$d" && break
done
[ -n "$VL_JSON" ] || skip "no Vulkan validation layers (Debian: vulkan-validationlayers; ./test.sh installs it)"
# Messages go to stdout (the layer's default), with every severity on: "info" lets a run prove the
# layer was active (its status message at instance creation names the settings and enables).
cat >"$tmp/vk_layer_settings.txt" <<'EOF'
khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG
khronos_validation.report_flags = error,warn,perf,info
khronos_validation.enables = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT
EOF
vl_env=(env VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation VK_LAYER_SETTINGS_PATH="$tmp/vk_layer_settings.txt")
# The layers judge API use, which the build does not change: under ASan (make asan) the plain run's
# verdict stands and only the host-side checks below run (the split bindings, the faults; CI time)
vl=1
case "$V" in *asan*) vl=0; echo "  validation-layer runs: skipped under ASan (the plain run checks the same calls)" ;; esac
# vl_quiet NAME FILE...: the layer was active in the run that printed FILE... and reported no
# error, warning or performance warning (else the first distinct messages are shown)
vl_quiet() {
  local name=$1; shift
  if ! grep -q "Khronos Validation Layer Active" "$@" || ! grep -q "SYNCHRONIZATION_VALIDATION" "$@"; then
    bad "$name: no 'Khronos Validation Layer Active' line with synchronization validation: the layer did not load"
    return 1
  fi
  local re="Validation (Error|Warning|Performance Warning)|VUID-|SYNC-HAZARD|\((ERROR|WARN) /"
  if grep -qE "$re" "$@"; then
    bad "$name: the validation layers reported problems ($(grep -hE "$re" "$@" | wc -l) lines); the first ones:"
    grep -hE "$re" "$@" | cut -c1-700 | awk '!seen[$0]++' | head -n 5 | sed 's/^/      /' >&2
    return 1
  fi
}
# vl_check NAME FILE RC: a run under the layers that must also have exited 0
vl_check() {
  local name=$1 f=$2 rc=$3
  if crashed "$rc" "$f" || [ "$rc" -ne 0 ]; then bad "$name under the validation layers: exit $rc: $(grep -v '^  \|^INFO' "$f" | tail -c 600)"; return; fi
  vl_quiet "$name" "$f" && ok "$name: no validation error or warning (synchronization validation on)"
}

if [ $vl = 1 ]; then
  for staging in 0 1; do
    t=$B/tests/test_backend_ops
    [ -x "$t" ] || { bad "$t is not built (make test builds it)"; break; }
    # the staging pass also runs attention.comp's opt-in staged K reads (VLLMC_VULKAN_ATTN_KSTAGE=1)
    VLLMC_TEST_GPU=1 VLLMC_VULKAN_STAGING=$staging VLLMC_VULKAN_ATTN_KSTAGE=$staging "${vl_env[@]}" "$t" >"$tmp/ops$staging" 2>&1
    vl_check "test_backend_ops (VLLMC_VULKAN_STAGING=$staging, VLLMC_VULKAN_ATTN_KSTAGE=$staging)" "$tmp/ops$staging" $?
  done
  # weights and tables split into row ranges, as a tensor beyond maxStorageBufferRange is (a big LM head
  # in f32 on lavapipe's 128 MiB): here every weight row range of ~1000 bytes is a dispatch of its own;
  # attention.comp in its opt-in groups of 128 (VLLMC_VULKAN_ATTN_GROUPS=4) in the same pass
  VLLMC_TEST_GPU=1 VLLMC_VULKAN_SPLIT_RANGE=1000 VLLMC_VULKAN_ATTN_GROUPS=4 "${vl_env[@]}" "$B/tests/test_backend_ops" >"$tmp/ops_split" 2>&1
  vl_check "test_backend_ops (weights split at 1000-byte bindings, attention in 4 groups)" "$tmp/ops_split" $?
  # MoE routing on the device (issue 12) with every expert in a binding of its own: one expert matvec
  # dispatch per expert, as for per-expert tensors that do not lie at equal steps in one buffer
  VLLMC_TEST_GPU=1 VLLMC_VULKAN_SPLIT_RANGE=1000 "${vl_env[@]}" "$B/tests/test_backend_moe_route" >"$tmp/moe_split" 2>&1
  vl_check "test_backend_moe_route (experts in 1000-byte bindings)" "$tmp/moe_split" $?
fi
a=$(VLLMC_VULKAN_SPLIT_RANGE=1000 "$V" generate $G/llama-f32 --prompt-token-ids 1,2,3,4 --max-tokens 8 --device gpu --json 2>/dev/null | grep -o '"token_ids":[^]]*')
b=$("$V" generate $G/llama-f32 --prompt-token-ids 1,2,3,4 --max-tokens 8 --device cpu --json 2>/dev/null | grep -o '"token_ids":[^]]*')
[ -n "$a" ] && [ "$a" = "$b" ] && ok "generate with weights split at 1000-byte bindings: the CPU's tokens" || bad "split weights: '$a' vs '$b'"
if [ $vl = 1 ]; then
  t=$B/tests/test_engine
  if [ -x "$t" ]; then
    VLLMC_TEST_GPU=1 "${vl_env[@]}" "$t" >"$tmp/engine" 2>&1
    vl_check "test_engine (batching, chunked prefill, preemption, prefix cache on the GPU)" "$tmp/engine" $?
  else
    bad "$t is not built (make test builds it)"
  fi
fi

# generate on golden models: f32 weights in f32 give the CPU's tokens; bf16/f16 runs are for coverage
if [ $vl = 1 ]; then
  for m in llama-f32 mistral-f32 qwen2-f32 qwen3-f32 llama-bf16 qwen3-bf16 mistral-f16; do
    dt=(); case $m in *-f32) dt=(--dtype float32) ;; esac
    st=0; [ $m = qwen3-bf16 ] && st=1 # one run through the staging paths of a discrete GPU
    VLLMC_VULKAN_STAGING=$st "${vl_env[@]}" "$V" generate $G/$m "${P[@]}" --max-tokens 16 "${dt[@]}" --device gpu --json >"$tmp/g_$m" 2>&1
    rc=$?
    vl_check "generate --device gpu $G/$m ${dt[*]}$([ $st = 1 ] && echo ' VLLMC_VULKAN_STAGING=1')" "$tmp/g_$m" $rc
    [ $rc -eq 0 ] || continue
    n=$(grep -c '^{"prompt_token_ids"' "$tmp/g_$m")
    [ "$n" -eq 3 ] || bad "generate --device gpu $G/$m: $n JSON lines, want 3"
    if [ ${#dt[@]} -gt 0 ]; then
      gen $G/$m "${P[@]}" --max-tokens 16 "${dt[@]}" --device cpu 2>/dev/null >"$tmp/c_$m"
      if cmp -s <(grep '^{"prompt_token_ids"' "$tmp/g_$m") "$tmp/c_$m"; then
        ok "generate $G/$m: --device gpu gives the CPU's tokens (3 prompts x 16)"
      else
        bad "generate $G/$m: gpu and cpu differ: $(diff <(grep '^{"prompt_token_ids"' "$tmp/g_$m") "$tmp/c_$m" | head -c 600)"
      fi
    fi
  done
fi

# node runs the servers (port 0: it reads the "listening on" line), as test_serve.sh does
have_node=1
command -v node >/dev/null 2>&1 && [ -f tests/js/node_modules/openai/package.json ] || have_node=0
[ $have_node = 1 ] || [ $required = 0 ] || bad "node or tests/js/node_modules missing (./test.sh installs them): the serve checks cannot run"
if [ $have_node = 1 ]; then
  tests/fixtures/make_chat_model.sh "$tmp/model" || bad "make_chat_model.sh"
  export VLLMC="$V" VLLMC_TEST_MODEL="$tmp/model" UTIL="$PWD/tests/js/server_util.mjs"
fi

# serve under the validation layers: a plain, a streaming and a chat request, then SIGTERM
if [ $have_node = 1 ] && [ $vl = 1 ]; then
  VL_SETTINGS="$tmp/vk_layer_settings.txt" node --input-type=module -e '
const { startServer, post, streamPost } = await import(process.env.UTIL);
const env = { VK_INSTANCE_LAYERS: "VK_LAYER_KHRONOS_validation", VK_LAYER_SETTINGS_PATH: process.env.VL_SETTINGS };
const s = await startServer(["--device", "gpu"], { name: "vl", env });
const a = await post(s.port, "/v1/completions", { model: "test-model", prompt: "hello", max_tokens: 8, ignore_eos: true });
const b = await streamPost(s.port, "/v1/completions", { model: "test-model", prompt: "abc", max_tokens: 8, ignore_eos: true, stream: true, n: 2 });
const c = await post(s.port, "/v1/chat/completions", { model: "test-model", messages: [{ role: "user", content: "hi" }], max_tokens: 6, ignore_eos: true, logprobs: true, top_logprobs: 3 });
const r = await s.stop("SIGTERM");
process.stdout.write(s.log());
const good = a.status === 200 && a.json.usage.completion_tokens === 8 && b.status === 200 && b.done &&
  c.status === 200 && c.json.choices[0].logprobs.content.length === 6 && r.code === 0;
console.log(`\nRESULT plain ${a.status}, stream ${b.status} ([DONE] ${b.done}), chat ${c.status}, exit ${r.code}`);
process.exit(good ? 0 : 1);
' >"$tmp/vlserve" 2>&1
  rc=$?
  grep -q "INFO vllmc: device vulkan" "$tmp/vlserve" || bad "serve --device gpu under the validation layers: no 'device vulkan' line"
  vl_check "serve --device gpu: $(grep '^RESULT' "$tmp/vlserve" | cut -c8-)" "$tmp/vlserve" $rc
fi

# ---------------------------------------------------------------------------------------------
# 2. faults. The CPU's answer, for the runs that must fall back to it:
M=models/demo
gen $M --prompt "Once upon" --max-tokens 6 --device cpu >"$tmp/cpu_demo" 2>/dev/null || bad "generate --device cpu $M"
gen $G/llama-f32 "${P[@]}" --max-tokens 6 --device cpu >"$tmp/cpu_llama" 2>/dev/null || bad "generate --device cpu llama-f32"

# expect_cpu NAME OUT ERR RC WANT WHY_REGEX: --device auto ran on the CPU, answered as the CPU does,
# and said why on stderr
expect_cpu() {
  local name=$1 out=$2 err=$3 rc=$4 want=$5 why=$6
  if crashed "$rc" "$err" || [ "$rc" -ne 0 ]; then bad "$name: --device auto exit $rc: $(tail -c 400 "$err")"; return; fi
  if ! grep -qE "$why" "$err"; then bad "$name: --device auto: no line matching '$why' on stderr: $(head -c 500 "$err")"; return; fi
  if ! grep -q "^INFO vllmc: device cpu" "$err"; then bad "$name: --device auto did not run on the CPU: $(head -c 400 "$err")"; return; fi
  if ! cmp -s "$out" "$want"; then bad "$name: --device auto answered differently from --device cpu: $(head -c 300 "$out")"; return; fi
  ok "$name: --device auto runs on the CPU: $(grep -m1 -E "$why" "$err" | cut -c1-200)"
}
# expect_err NAME ERR RC REGEX: --device gpu exited non-zero (not a crash) with a message matching REGEX
expect_err() {
  local name=$1 err=$2 rc=$3 re=$4
  if crashed "$rc" "$err"; then bad "$name: --device gpu crashed (exit $rc): $(tail -c 600 "$err")"; return; fi
  if [ "$rc" -eq 0 ]; then bad "$name: --device gpu exited 0"; return; fi
  if ! grep -E "^vllmc: error: " "$err" | grep -qE "$re"; then bad "$name: --device gpu exit $rc, but no 'vllmc: error:' line matching '$re': $(tail -c 500 "$err")"; return; fi
  ok "$name: --device gpu exits $rc: $(grep -m1 '^vllmc: error: ' "$err" | cut -c1-220)"
}
fault_pair() { # NAME WHY_REGEX ERR_REGEX env...: the same conditions under auto and under gpu
  local name=$1 why=$2 re=$3; shift 3
  env "$@" "$V" generate $G/llama-f32 "${P[@]}" --max-tokens 6 --json >"$tmp/fo" 2>"$tmp/fe"
  expect_cpu "$name" "$tmp/fo" "$tmp/fe" $? "$tmp/cpu_llama" "$why"
  env "$@" "$V" generate $G/llama-f32 "${P[@]}" --max-tokens 6 --device gpu --json >"$tmp/fo" 2>"$tmp/fe"
  expect_err "$name" "$tmp/fe" $? "$re"
}

cc_ok=1; command -v cc >/dev/null 2>&1 || cc_ok=0
if [ $cc_ok = 1 ]; then
  # no loader: libvulkan.so.1 found first on LD_LIBRARY_PATH but unloadable (a dependency is missing)
  mkdir -p "$tmp/noloader" "$tmp/emptyloader"
  echo 'int vllmc_fake_dep;' >"$tmp/dep.c"
  echo 'int vllmc_fake_loader(void) { return 0; }' >"$tmp/loader.c"
  if cc -shared -fPIC -o "$tmp/noloader/libvllmcfakedep.so" "$tmp/dep.c" &&
     cc -shared -fPIC -o "$tmp/noloader/libvulkan.so.1" "$tmp/loader.c" -L"$tmp/noloader" -Wl,--no-as-needed -lvllmcfakedep &&
     cc -shared -fPIC -o "$tmp/emptyloader/libvulkan.so.1" "$tmp/loader.c"; then
    rm -f "$tmp/noloader/libvllmcfakedep.so"
    cp "$tmp/noloader/libvulkan.so.1" "$tmp/noloader/libvulkan.so"
    cp "$tmp/emptyloader/libvulkan.so.1" "$tmp/emptyloader/libvulkan.so"
    fault_pair "no Vulkan loader" "^INFO vllmc: no GPU used \((no Vulkan loader|.*[Ll]oader.*not found).*\); running on the CPU" "no Vulkan loader|[Ll]oader.*not found" \
      LD_LIBRARY_PATH="$tmp/noloader"
    fault_pair "a loader without vkGetInstanceProcAddr" "^INFO vllmc: no GPU used \(.*vkGetInstanceProcAddr" "vkGetInstanceProcAddr" \
      LD_LIBRARY_PATH="$tmp/emptyloader"
  else
    bad "cc could not build the fake loaders"
  fi
else
  [ $required = 0 ] && echo "  skipped: no cc for the fake loaders" || bad "no cc: the missing-loader checks cannot run"
fi
# no driver: the loader finds no ICD (VK_DRIVER_FILES is the newer loaders' name for VK_ICD_FILENAMES)
fault_pair "no Vulkan driver" "^INFO vllmc: no GPU used \(.*(driver|device).*\); running on the CPU" "[Vv]ulkan.*(driver|device)" \
  VK_ICD_FILENAMES=/nonexistent/icd.json VK_DRIVER_FILES=/nonexistent/icd.json
# with no knob, auto takes a real GPU or says why not (lavapipe: a CPU implementation)
"$V" generate $G/llama-f32 "${P[@]}" --max-tokens 6 --json >"$tmp/fo" 2>"$tmp/fe"
rc=$?
if [ $rc -eq 0 ] && grep -q "^INFO vllmc: device vulkan" "$tmp/fe"; then
  ok "--device auto takes the GPU: $(grep -m1 '^INFO vllmc: device vulkan' "$tmp/fe" | cut -c1-160)"
else
  expect_cpu "no real GPU" "$tmp/fo" "$tmp/fe" $rc "$tmp/cpu_llama" "^INFO vllmc: no GPU used \(.+\); running on the CPU"
fi
VLLMC_VULKAN_DEVICE=99 "$V" generate $G/llama-f32 "${P[@]}" --max-tokens 6 --device gpu --json >"$tmp/fo" 2>"$tmp/fe"
expect_err "VLLMC_VULKAN_DEVICE=99" "$tmp/fe" $? "VLLMC_VULKAN_DEVICE=99.*devices: 0: "

# a device too small (VLLMC_VULKAN_ALLOW_CPU=1: auto takes lavapipe, then finds it cannot hold the
# model): auto warns with the device and the figures and uses the CPU; gpu is an error with the same
dev=$("$V" generate $G/llama-f32 --device gpu --prompt-token-ids 1 --max-tokens 1 --json 2>&1 >/dev/null |
      sed -n 's/^INFO vllmc: device vulkan: Vulkan [0-9.]*: \([^ ,(]*\).*/\1/p' | head -n1)
[ -n "$dev" ] || bad "no 'INFO vllmc: device vulkan: Vulkan X.Y: NAME' line to take the device name from"
fig="[1-9][0-9]*(\.[0-9]+)? (KiB|MiB|GiB)"
# (weights copied into device memory, as on a discrete GPU: VLLMC_VULKAN_NO_IMPORT=1; imported in place
# they are not device allocations)
for case in "weights:4000000:tensor 'model" "KV cache:150000000:KV cache"; do
  IFS=: read -r what lim need <<<"$case"
  export VLLMC_VULKAN_NO_IMPORT=1
  VLLMC_VULKAN_ALLOW_CPU=1 VLLMC_VULKAN_MEMORY_LIMIT=$lim VLLM_CPU_KVCACHE_SPACE=0.25 \
    "$V" generate $M --prompt "Once upon" --max-tokens 6 --json >"$tmp/fo" 2>"$tmp/fe"
  expect_cpu "device memory for the $what (limit $lim bytes)" "$tmp/fo" "$tmp/fe" $? "$tmp/cpu_demo" \
    "^WARNING vllmc: .*${need}.*${dev}.*${fig}.*falls back to the CPU"
  VLLMC_VULKAN_MEMORY_LIMIT=$lim VLLM_CPU_KVCACHE_SPACE=0.25 "${vl_env[@]}" \
    "$V" generate $M --prompt "Once upon" --max-tokens 6 --device gpu --json >"$tmp/fo" 2>"$tmp/fe"
  expect_err "device memory for the $what (limit $lim bytes)" "$tmp/fe" $? "${need}.*${dev}.*${fig}"
  vl_quiet "the failed allocation's clean-up" "$tmp/fo" "$tmp/fe"
  unset VLLMC_VULKAN_NO_IMPORT
done

# weight files used in place (VK_EXT_external_memory_host, which lavapipe has): the checkpoint's bytes are
# not copied; VLLMC_VULKAN_NO_IMPORT=1 and VLLMC_VULKAN_STAGING=1 copy them; the tokens are the same
inplace() { grep -o '[0-9.]* GiB used in place' "$1" | cut -d' ' -f1; }
for env in "" VLLMC_VULKAN_NO_IMPORT=1 VLLMC_VULKAN_STAGING=1; do
  env $env "$V" generate $G/llama-bf16 "${P[@]}" --max-tokens 8 --device gpu --json >"$tmp/io" 2>"$tmp/ie"
  rc=$?
  got=$(inplace "$tmp/ie")
  want_in=1; [ -n "$env" ] && want_in=0
  if [ $rc -ne 0 ] || [ -z "$got" ]; then bad "generate --device gpu ${env:-(import)}: exit $rc: $(tail -c 300 "$tmp/ie")"; continue; fi
  if [ $want_in = 1 ] && ! grep -q "weight files used in place" "$tmp/ie"; then
    bad "the device line does not say 'weight files used in place' (lavapipe has VK_EXT_external_memory_host)"
  elif [ $want_in = 1 ] && [ "$got" = "0.0000" ]; then bad "import: no bytes used in place: $(grep 'model weights' "$tmp/ie")"
  elif [ $want_in = 0 ] && [ "$got" != "0.0000" ]; then bad "$env: $got GiB used in place, want copies"
  else ok "weights ${env:+($env) }$([ $want_in = 1 ] && echo "imported in place ($got GiB)" || echo copied)"; fi
  grep '^{"prompt_token_ids"' "$tmp/io" >"$tmp/io_$want_in.$RANDOM"
done
n=$(cat "$tmp"/io_* | sort | uniq | wc -l)
[ "$n" -eq 3 ] && ok "imported and copied weights give the same tokens" || bad "imported vs copied weights: $n distinct lines for 3 prompts"

# a device lost mid-run (the 3rd queue submission) under generate: an error exit, not a crash
VLLMC_VULKAN_FAULT_AFTER_SUBMITS=3 "${vl_env[@]}" "$V" generate $G/llama-f32 "${P[@]}" --max-tokens 16 --device gpu --json >"$tmp/fo" 2>"$tmp/fe"
expect_err "device lost during generate" "$tmp/fe" $? "${dev}.*device lost"
vl_quiet "the lost device's clean-up" "$tmp/fo" "$tmp/fe"

if [ $have_node = 1 ]; then
  # auto on a device too small for the weights still serves (on the CPU)
  if node --input-type=module -e '
const { startServer, post } = await import(process.env.UTIL);
const s = await startServer([], { name: "oom", env: { VLLMC_VULKAN_ALLOW_CPU: "1", VLLMC_VULKAN_MEMORY_LIMIT: "4000000" },
  model: "models/demo" });
const a = await post(s.port, "/v1/completions", { model: "test-model", prompt: "Once upon a time", max_tokens: 8 });
const r = await s.stop("SIGTERM");
const log = s.log();
const warn = /WARNING vllmc: .*falls back to the CPU/.test(log), cpu = /INFO vllmc: device cpu/.test(log);
console.log(`completion ${a.status} (${a.json && a.json.usage && a.json.usage.completion_tokens} tokens), fallback warning ${warn}, device cpu ${cpu}, exit ${r.code}`);
process.exit(a.status === 200 && warn && cpu && r.code === 0 ? 0 : 1);
' >"$tmp/oomserve" 2>&1; then
    ok "serve --device auto, device too small: $(tail -n1 "$tmp/oomserve")"
  else
    bad "serve --device auto, device too small: $(tail -c 800 "$tmp/oomserve")"
  fi

  # a device lost while serving: the open stream gets an error event and [DONE], the plain request
  # in flight a 500, the next request 503, /health 503; SIGTERM still exits 0
  if node --input-type=module -e '
const { startServer, streamPost, post, get } = await import(process.env.UTIL);
const s = await startServer(["--device", "gpu"], { name: "lost", env: { VLLMC_VULKAN_FAULT_AFTER_SUBMITS: "40" } });
const body = { model: "test-model", prompt: "hi", max_tokens: 400, ignore_eos: true };
const [plain, st] = await Promise.all([post(s.port, "/v1/completions", body),
  streamPost(s.port, "/v1/completions", { ...body, stream: true })]);
const errEv = st.events.find((e) => e.json && e.json.error);
const after = await post(s.port, "/v1/completions", body);
const health = (await get(s.port, "/health")).status;
const r = await s.stop("SIGTERM");
const lost = /device lost/.test(s.log());
const good = st.status === 200 && errEv && typeof errEv.json.error.message === "string" && st.done &&
  plain.status === 500 && after.status === 503 && after.json && after.json.error && health === 503 && r.code === 0 && r.signal === null;
console.log(`stream: error event ${errEv ? JSON.stringify(errEv.json.error.message) : "none"}, [DONE] ${st.done}; plain ${plain.status}; ` +
  `next request ${after.status}; /health ${health}; "device lost" logged ${lost}; exit ${r.code}${r.signal ? " signal " + r.signal : ""}`);
process.exit(good ? 0 : 1);
' >"$tmp/lost" 2>&1; then
    ok "device lost while serving: $(tail -n1 "$tmp/lost")"
  else
    bad "device lost while serving: $(tail -c 1200 "$tmp/lost")"
  fi
fi

exit $fail
