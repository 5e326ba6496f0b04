#!/usr/bin/env bash
# The main job: install dependencies, build, run vllmc.
#   ./run.sh                      latency benchmark of Qwen2.5-0.5B-Instruct's architecture (random bf16 weights)
#   ./run.sh generate DIR --prompt-token-ids 1,2,3 --max-tokens 16 --json
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
make -j"$(nproc)" >/dev/null
if [ $# -eq 0 ]; then
  set -- bench latency --random-weights bench/configs/Qwen2.5-0.5B-Instruct.json --input-len 128 --output-len 64
fi
exec build/vllmc "$@"
