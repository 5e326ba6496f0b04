#!/usr/bin/env bash
# The test job: install dependencies, then the whole suite: unit + golden + CLI
# tests, the same under ASan+UBSan, a CPU-only build, and a short fuzz run of
# every parser.
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh --test
make -j"$(nproc)" test
make -j"$(nproc)" asan
make -j"$(nproc)" BUILD=build/cpu-only VLLM_TARGET_DEVICE=cpu all
make fuzz FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
echo "test.sh: all passed"
