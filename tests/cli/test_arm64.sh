#!/usr/bin/env bash
# The CPU backend built for arm64 (the NEON paths, which no x86-64 build compiles) and run under
# qemu-user on this machine:
#  1. the kernels (src/backend/cpu/ but the *_avx2/*_avx512 files), the backend wrappers, the thread
#     pool and err.c, cross-compiled with aarch64-linux-gnu-gcc -O2 -march=armv8.2-a+fp16 -Wall -Wextra
#     -Werror, static; none of them needs cJSON, curl, microhttpd, pcre2 or utf8proc;
#  2. the same sources compiled (not linked) by clang for -mcpu=apple-m1 with -Werror: the first
#     target's compiler finds other warnings;
#  3. under qemu-aarch64 -cpu max: test_matmul (VLLMC_TEST_QUICK=1: one shape case in 7), test_backend_ops,
#     test_backend_gptoss, test_threadpool and tests/arm64/test_neon.c (the NEON kernels against the
#     portable ones, or a double sum, on the same inputs); test_matmul and test_backend_gptoss run both
#     the NEON path and the forced portable C one; test_act: act_neon.c's exp, tanh and activations
#     (in LIB with the other *_neon.c) against the portable libm ones, in ulp.
#  4. test_matmul again under qemu-aarch64 -cpu neoverse-n1 (no BF16, no FHM): the run-time checks must
#     keep the BFMMLA / FMLAL kernels off there.
# Objects and binaries go to build/arm64 (VLLMC_ARM64_BUILD); ~25 s on 2 cores, a third of it building.
# Missing tools: with VLLMC_TEST_GPU=1 (./test.sh) or VLLMC_TEST_ARM64=1 (make test-arm64) a failure,
# else a skip. On an arm64 machine `make test` runs the NEON paths natively, and under the sanitizer
# builds nothing here changes: both skip.
set -uo pipefail
V=${VLLMC:-build/vllmc}
B=${VLLMC_ARM64_BUILD:-build/arm64}
CC=${VLLMC_ARM64_CC:-aarch64-linux-gnu-gcc}
QEMU=${VLLMC_ARM64_QEMU:-qemu-aarch64}
required=0; [ "${VLLMC_TEST_GPU:-}" = 1 ] || [ "${VLLMC_TEST_ARM64:-}" = 1 ] && required=1
skip() { if [ $required = 1 ]; then echo "  FAIL: $1 (required here)" >&2; exit 1; fi; echo "  skipped: $1"; exit 0; }
case "$(uname -m)" in
  aarch64|arm64) echo "  skipped: this machine is arm64 (make test runs NEON natively)"; exit 0 ;;
esac
case "$V" in
  *asan*|*faults*|*fuzz*) echo "  skipped: sanitizer build (the plain make test runs the arm64 build)"; exit 0 ;;
esac
command -v "$CC" >/dev/null 2>&1 || skip "no $CC (Debian: gcc-aarch64-linux-gnu; scripts/deps.sh --test)"
command -v "$QEMU" >/dev/null 2>&1 || skip "no $QEMU (Debian: qemu-user; scripts/deps.sh --test)"
command -v clang >/dev/null 2>&1 || skip "no clang (scripts/deps.sh --test)"
t0=$SECONDS
fail=0
ok() { echo "  ok: $1"; }
bad() { echo "  FAIL: $1" >&2; fail=1; }
mkdir -p "$B/obj" || exit 1
rm -f "$B"/obj/*.o "$B"/obj/*.ok

FLAGS=(-std=c11 -O2 -Wall -Wextra -Werror -pthread -Isrc -Iinclude -Itests/unit -D_GNU_SOURCE
       -DVLLMC_TARGET_DEVICE_cpu)
LIB=()
for f in src/backend/cpu/*.c; do case $f in *_avx2.c|*_avx512.c|*_avx512bf16.c) ;; *) LIB+=("$f") ;; esac; done
LIB+=(src/backend/backend.c src/backend/registry.c src/base/threadpool.c src/base/err.c)
TESTS=(tests/unit/test_matmul.c tests/unit/test_backend_ops.c tests/unit/test_backend_gptoss.c
       tests/unit/test_threadpool.c tests/arm64/test_neon.c tests/unit/test_act.c)

# compile, nproc jobs at a time: every file with gcc (linked below), the library and test_neon.c also
# with clang (checked only: the tests' other files have no arm64 code)
jobs=$(nproc 2>/dev/null || echo 2) running=0
# march FILE DEFAULT: the Makefile's per-file target of the BFMMLA / FMLAL kernels (picked at run time),
# else -march=DEFAULT (gcc) / -mcpu=apple-m1 (clang)
march() {
  case $1 in
    *_neon_bf16.c) echo -march=armv8.6-a+bf16 ;;
    *_neon_fhm.c) echo -march=armv8.2-a+fp16+fp16fml ;;
    *) [ "$2" = apple-m1 ] && echo -mcpu=apple-m1 || echo "-march=$2" ;;
  esac
}
job() { "$@" & running=$((running + 1)); if [ $running -ge "$jobs" ]; then wait -n; running=$((running - 1)); fi; }
logged() { local log=$1; shift; "$@" >"$log" 2>&1 && touch "$log.ok"; } # logged LOG CMD...: LOG.ok if it passed
for f in "${LIB[@]}" "${TESTS[@]}"; do
  o=$B/obj/$(basename "${f%.c}")
  job logged "$o.gcc" "$CC" "${FLAGS[@]}" $(march "$f" armv8.2-a+fp16) -c -o "$o.o" "$f"
  case $f in tests/unit/*) continue ;; esac
  job logged "$o.clang" clang --target=aarch64-linux-gnu $(march "$f" apple-m1) "${FLAGS[@]}" -fsyntax-only "$f"
done
wait
for f in "${LIB[@]}" "${TESTS[@]}"; do
  o=$B/obj/$(basename "${f%.c}")
  [ -f "$o.gcc.ok" ] || { bad "$CC: $f"; cat "$o.gcc" >&2; }
  case $f in tests/unit/*) continue ;; esac
  [ -f "$o.clang.ok" ] || { bad "clang -mcpu=apple-m1: $f"; cat "$o.clang" >&2; }
done
[ $fail = 0 ] || exit 1
ok "${#LIB[@]} sources and ${#TESTS[@]} tests built for arm64 with -Werror ($CC -march=armv8.2-a+fp16;\
 the sources and test_neon.c checked by clang -mcpu=apple-m1; *_neon_bf16.c and *_neon_fhm.c with their
 Makefile -march)"
libobjs=()
for f in "${LIB[@]}"; do libobjs+=("$B/obj/$(basename "${f%.c}").o"); done
for f in "${TESTS[@]}"; do
  n=$(basename "${f%.c}")
  "$CC" -static -pthread -o "$B/$n" "$B/obj/$n.o" "${libobjs[@]}" -lm || bad "link $n"
done
[ $fail = 0 ] || exit 1
echo "  build: $((SECONDS - t0)) s"

# run: a GPU pass has nothing to open in this build (VLLMC_TEST_GPU=0 keeps its skip a skip)
for f in "${TESTS[@]}"; do
  n=$(basename "${f%.c}") s=$SECONDS
  if out=$(VLLMC_TEST_GPU=0 VLLMC_TEST_QUICK=1 "$QEMU" -cpu max "$B/$n" 2>&1); then
    [ "$n" = test_matmul ] && matmul_max=$out
    ok "$n under $QEMU -cpu max ($((SECONDS - s)) s)"
    grep -E '^(kernels|native|dot16|neon|scalar|gemv|mxfp4|attention|measurements|cpu: (worst|0 failed)|cpu \(portable\)|auto)' \
      <<<"$out" | sed 's/^/      /'
  else
    bad "$n under $QEMU -cpu max"
    tail -n 40 <<<"$out" >&2
  fi
done
# the 16-bit dot-product kernels ran under -cpu max (BF16 and FHM); under neoverse-n1 (armv8.2 with
# fp16, no BF16, no FHM) the run-time check must pick the f32-activation NEON kernels for every n
s=$SECONDS
if ! grep -qx 'native 16-bit dot products: bfmmla+fhm' <<<"${matmul_max:-}"; then
  bad "test_matmul under $QEMU -cpu max did not report BFMMLA and FMLAL"
elif out=$(VLLMC_TEST_GPU=0 VLLMC_TEST_QUICK=1 "$QEMU" -cpu neoverse-n1 "$B/test_matmul" 2>&1) &&
   grep -qx 'native 16-bit dot products: none' <<<"$out" && grep -q '^dot16 bfmmla: skipped' <<<"$out" &&
   grep -q '^dot16 fhm: skipped' <<<"$out" && grep -q '^neon: .*(0 through a 16-bit' <<<"$out"; then
  ok "test_matmul under $QEMU -cpu neoverse-n1: no BF16/FHM, the f32-activation kernels ($((SECONDS - s)) s)"
  grep -E '^(native|dot16|neon|scalar)' <<<"$out" | sed 's/^/      /'
else
  bad "test_matmul under $QEMU -cpu neoverse-n1 (the run-time fallback)"
  tail -n 40 <<<"$out" >&2
fi
echo "  arm64 total: $((SECONDS - t0)) s"
exit $fail
