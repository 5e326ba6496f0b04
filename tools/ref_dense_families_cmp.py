#!/usr/bin/env python3
"""Compare vllmc's prompt log-probabilities with tools/ref_dense_families.py's (run from the repository
root after `make`): ARCH FOLDER DEVICE DTYPE [MAX_NUM_BATCHED_TOKENS]."""
import json, subprocess, sys
arch, folder, dev, dt = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
worst = 0
for plen in (10, 25):
    ref = json.load(open("%s/ref_%d.json" % (folder, plen)))
    ids = ref["ids"]
    out = subprocess.run(["build/vllmc", "generate", folder, "--prompt-token-ids",
                          ",".join(map(str, ids)), "--max-tokens", "1", "--prompt-logprobs", "40", "--max-logprobs",
                          "40", "--logprobs", "40", "--json", "--device", dev, "--dtype", dt, "--kv-cache-dtype", "float32",
                          "--block-size", "4", "--max-num-batched-tokens", sys.argv[5] if len(sys.argv) > 5 else "2048",
                          "--max-num-seqs", "1"],
                         capture_output=True, text=True)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not lines:
        print(out.stderr); sys.exit(1)
    j = json.loads(lines[0])
    dists = j["prompt_logprobs"][1:] + [j["logprobs"][0]]
    for t, d in enumerate(dists):
        for tok, v in d.items():
            e = abs(v - ref["lp"][t][int(tok)])
            worst = max(worst, e)
print(arch, dev, dt, "worst logprob error %.3g" % worst)
