#!/usr/bin/env bash
# gpt-oss's Vulkan kernels (MXFP4 matmuls, attention sinks with and without context splits, the clamped
# SwiGLU) under the Khronos validation layers with synchronization validation: test_backend_gptoss (its
# GPU passes, weights split into small bindings in the second) and test_model_gptoss (a whole tiny model,
# mapped memory and then VLLMC_VULKAN_STAGING=1). Any error, warning or performance warning fails, and
# each run must show the layer's "Validation Layer Active" line. test_vulkan.sh does the same for the
# other ops. test_backend_moe_route (issue 12: MoE routing on the device, moe_topk and the expert matvec by
# device-made ids, MXFP4 included) runs here too, mapped and staged. Runs where the GPU opens; VLLMC_TEST_GPU=1 makes a missing GPU or layer a failure.
set -uo pipefail
V=${VLLMC:-build/vllmc}
B=$(dirname "$V")/tests
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
required=0; [ "${VLLMC_TEST_GPU:-}" = 1 ] && required=1
skip() {
  if [ $required = 1 ]; then echo "  FAIL: $1 (VLLMC_TEST_GPU=1 requires it)" >&2; exit 1; fi
  echo "  skipped: $1"; exit 0
}
# The validation layers judge API use, which the build does not change: under ASan (make asan) the plain
# run's verdict stands, and the two tests run under ASan anyway as unit tests (CI time)
case "$V" in *asan*) echo "  skipped under ASan: the plain run checks the same calls"; exit 0 ;; esac
for t in test_backend_gptoss test_model_gptoss test_backend_moe_route; do
  [ -x "$B/$t" ] || { echo "  FAIL: $B/$t is not built (make test builds it)" >&2; exit 1; }
done
found=0
for d in "${XDG_DATA_HOME:-$HOME/.local/share}" /usr/local/share /usr/share; do
  [ -f "$d/vulkan/explicit_layer.d/VkLayer_khronos_validation.json" ] && found=1 && break
done
[ $found = 1 ] || skip "no Vulkan validation layers (Debian: vulkan-validationlayers)"
printf '%s\n' "khronos_validation.debug_action = VK_DBG_LAYER_ACTION_LOG_MSG" \
  "khronos_validation.report_flags = error,warn,perf,info" \
  "khronos_validation.enables = VK_VALIDATION_FEATURE_ENABLE_SYNCHRONIZATION_VALIDATION_EXT" >"$tmp/settings.txt"

# run NAME STAGING: the test under the layers must pass, with the layer active and silent
run() {
  local name=$1 staging=$2 log="$tmp/$1.$2" rc
  VLLMC_TEST_GPU=1 VLLMC_VULKAN_STAGING=$staging VK_INSTANCE_LAYERS=VK_LAYER_KHRONOS_validation \
    VK_LAYER_SETTINGS_PATH="$tmp/settings.txt" "$B/$name" >"$log" 2>&1
  rc=$?
  local what="$name (VLLMC_VULKAN_STAGING=$staging) under the validation layers"
  if grep -q "gpu: skipped\|be_open failed" "$log"; then
    skip "$name: the GPU does not open: $(grep -m1 'gpu:' "$log")"
  fi
  if [ $rc -ne 0 ]; then
    echo "  FAIL: $what: exit $rc: $(grep -v '^  \|Validation Information' "$log" | tail -c 600)" >&2; fail=1; return
  fi
  if ! grep -q "Khronos Validation Layer Active" "$log" || ! grep -q "SYNCHRONIZATION_VALIDATION" "$log"; then
    echo "  FAIL: $what: the layer did not load (no 'Validation Layer Active' line)" >&2; fail=1; return
  fi
  local re="Validation (Error|Warning|Performance Warning)|VUID-|SYNC-HAZARD|\((ERROR|WARN) /"
  if grep -qE "$re" "$log"; then
    echo "  FAIL: $what: $(grep -cE "$re" "$log") lines of reports; the first:" >&2
    grep -E "$re" "$log" | cut -c1-600 | head -n 3 | sed 's/^/      /' >&2
    fail=1; return
  fi
  echo "  ok: $what: passes, no validation error or warning"
}
run test_backend_gptoss 0
run test_model_gptoss 0
run test_model_gptoss 1
run test_backend_moe_route 0
run test_backend_moe_route 1
exit $fail
