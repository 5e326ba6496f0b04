#!/usr/bin/env bash
# The server e2e test again with every server on the GPU: test_serve.sh (the official openai client,
# raw HTTP, the load test, SIGINT mid-stream, the engine failure, a client that leaves) with
# VLLMC_TEST_DEVICE=gpu, which makes tests/js/server_util.mjs start each server with --device gpu
# and refuse one whose log does not say "device vulkan". Lavapipe in CI. Runs when `--device gpu`
# opens; with VLLMC_TEST_GPU=1 (./test.sh) a build or machine without a GPU fails instead of skipping.
set -uo pipefail
V=${VLLMC:-build/vllmc}
if ! err=$("$V" generate tests/golden/llama-f32 --device gpu --prompt-token-ids 1 --max-tokens 1 --json 2>&1 >/dev/null); then
  if [ "${VLLMC_TEST_GPU:-}" = 1 ]; then
    echo "  FAIL: --device gpu does not open (VLLMC_TEST_GPU=1 requires it): $(tail -n1 <<<"$err")" >&2
    exit 1
  fi
  echo "  skipped: --device gpu does not open: $(tail -n1 <<<"$err")"
  exit 0
fi
VLLMC_TEST_DEVICE=gpu exec bash "$(dirname "$0")/test_serve.sh"
