#!/usr/bin/env python3
"""Batching check for the mixture-of-experts path (run from the repository root after `make`): three prompts
decoded together with chunked prefill (--max-num-batched-tokens 8, so steps mix prefill chunks and decodes
and the experts' token groups span sequences) must give the greedy tokens and the log-probabilities of each
prompt decoded alone. FOLDER is a model made by tools/ref_moe_families.py; DEVICE cpu or gpu.

    python3 tools/ref_moe_batch_cmp.py /tmp/ref/qwen3moe cpu
"""
import json, subprocess, sys
folder, dev = sys.argv[1], sys.argv[2]
ps = [[3,4,5,6,7,8,9,10,11,12,13], [20,21,22], [30,31,32,33,34,35,36,37,38,39,3,4,5,6,7,8,9,10,11,12]]
def run(prompts, extra=()):
    args = ["build/vllmc", "generate", folder, "--json", "--max-tokens", "12", "--logprobs", "5", "--device", dev,
            "--kv-cache-dtype", "float32", "--block-size", "4"] + list(extra)
    for p in prompts: args += ["--prompt-token-ids", ",".join(map(str, p))]
    out = subprocess.run(args, capture_output=True, text=True)
    return [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
batch = run(ps, ["--max-num-batched-tokens", "8", "--max-num-seqs", "3"])
worst = 0
for i, p in enumerate(ps):
    one = run([p])[0]
    assert one["token_ids"] == batch[i]["token_ids"], (i, one["token_ids"], batch[i]["token_ids"])
    for a, b in zip(one["logprobs"], batch[i]["logprobs"]):
        for k, v in a.items():
            if k in b: worst = max(worst, abs(v - b[k]))
print(folder, dev, "batched == single; worst logprob diff %.2g" % worst)
