#!/usr/bin/env bash
# The test job: install dependencies, then the whole suite: unit + golden + CLI + server tests on the
# CPU and on the GPU (Mesa's lavapipe runs the Vulkan backend here; VLLMC_TEST_GPU=1 makes a GPU that
# does not open a failure, not a skip), the same under ASan+UBSan, a CPU-only build checked to hold
# no Vulkan code, allocation failures swept through every operation and the server (make test-faults),
# and a short fuzz run of every parser. Prints the time of each phase at the end.
set -euo pipefail
cd "$(dirname "$0")"
export VLLMC_TEST_GPU=1
jobs=$(nproc)
times=()
phase() { # phase NAME CMD...: run CMD, remember how long it took
  local name=$1 t0=$SECONDS
  shift
  echo "test.sh: == $name"
  "$@"
  times+=("$(printf '%-34s %5d s' "$name" $((SECONDS - t0)))")
}

# The CPU-only build (make VLLM_TARGET_DEVICE=cpu): no Vulkan code compiled in, no libvulkan linked
# or opened, no SPIR-V embedded, and --device gpu is a clear error while auto runs on the CPU. The
# same probes must find Vulkan in the default build, so an empty answer means something.
cpu_only_checks() {
  local cpu=build/cpu-only/vllmc full=build/vllmc out
  vulkan_traces() { # what of Vulkan a binary holds, one line per kind found
    ldd "$1" | grep -i vulkan | sed 's/^/ldd: /'
    nm "$1" | grep -E ' [TtDdBbRr] (be_vk_|vk_|vk[A-Z])' | head -n 3 | sed 's/^/nm: /'
    strings -a "$1" | grep -E 'libvulkan|vkGetInstanceProcAddr|vkCreateInstance' | head -n 3 | sed 's/^/strings: /'
    LC_ALL=C grep -c -aP '\x03\x02\x23\x07' "$1" | grep -v '^0$' | sed 's/^/SPIR-V magic words: /'
    return 0
  }
  out=$(vulkan_traces "$full")
  if [ "$(grep -c '^nm:' <<<"$out")" -eq 0 ] || [ "$(grep -c '^strings:' <<<"$out")" -eq 0 ] ||
     [ "$(grep -c '^SPIR-V' <<<"$out")" -eq 0 ]; then
    echo "test.sh: FAIL: the probes find no Vulkan code in $full either: they test nothing" >&2
    return 1
  fi
  out=$(vulkan_traces "$cpu")
  if [ -n "$out" ]; then
    printf 'test.sh: FAIL: the CPU-only build holds Vulkan code:\n%s\n' "$out" >&2
    return 1
  fi
  echo "  ok: $cpu: no Vulkan symbols, strings, SPIR-V or libvulkan link ($(ldd "$cpu" | wc -l) libraries)"
  local err rc=0
  err=$("$cpu" generate tests/golden/llama-f32 --device gpu --prompt-token-ids 1,5 --max-tokens 2 --json 2>&1 >/dev/null) || rc=$?
  if [ $rc -eq 0 ] || [ $rc -ge 128 ] || ! grep -q "no GPU code" <<<"$err"; then
    echo "test.sh: FAIL: CPU-only build, --device gpu: exit $rc, want an error saying 'no GPU code': $err" >&2
    return 1
  fi
  echo "  ok: --device gpu exits $rc: $err"
  rc=0
  err=$("$cpu" generate tests/golden/llama-f32 --prompt-token-ids 1,5 --max-tokens 2 --json 2>&1 >/dev/null) || rc=$?
  if [ $rc -ne 0 ] || ! grep -q "^INFO vllmc: device cpu" <<<"$err"; then
    echo "test.sh: FAIL: CPU-only build, --device auto: exit $rc: $err" >&2
    return 1
  fi
  echo "  ok: --device auto runs on the CPU"
}

phase "deps (apt, npm)" scripts/deps.sh --test
phase "make test" make -j"$jobs" test
phase "make asan" make -j"$jobs" asan
phase "make test-faults" make -j"$jobs" test-faults
phase "CPU-only build" make -j"$jobs" BUILD=build/cpu-only VLLM_TARGET_DEVICE=cpu all
phase "CPU-only checks" cpu_only_checks
phase "make fuzz" make -j"$jobs" fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-7}"
echo "test.sh: phases (wall time, $jobs CPUs):"
printf '  %s\n' "${times[@]}"
echo "test.sh: all passed"
