#!/usr/bin/env bash
# The main job (`make run` runs this): install what is missing, build, and serve the bundled demo
# model at http://127.0.0.1:8000 with vLLM's OpenAI-compatible API. Arguments, if any, replace the
# command: ./run.sh serve Qwen/Qwen2.5-0.5B-Instruct, ./run.sh bench latency --random-weights ...
set -euo pipefail
cd "$(dirname "$0")"
scripts/deps.sh
make -j"$(nproc)" >/dev/null
if [ $# -gt 0 ]; then exec build/vllmc "$@"; fi
cat <<'MSG'
Serving the demo model (models/demo) at http://127.0.0.1:8000 (Ctrl+C stops it). Try:

  curl http://127.0.0.1:8000/v1/chat/completions -H 'Content-Type: application/json' \
    -d '{"model": "demo", "messages": [{"role": "user", "content": "Tell me a story."}], "max_tokens": 80}'

MSG
exec build/vllmc serve --host 127.0.0.1 --port 8000
