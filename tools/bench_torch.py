#!/usr/bin/env python3
"""PyTorch/transformers baseline for `vllmc bench` on the same GPU, same session.

Random-weight models from a config.json (as `vllmc bench --random-weights`), bf16 on CUDA:
  - device-to-device copy bandwidth (bytes read + written, as `vllmc bench` prints it);
  - prefill: one forward pass over a 512-token prompt (pp512), tokens/s;
  - single-sequence decode: generate 128 new tokens after a 1-token prompt (tg128), tokens/s
    over the decode steps (the first step, a prefill, is timed apart and subtracted);
  - batched decode: 64 sequences of 128 prompt tokens, 128 new tokens each, output tokens/s.
Usage: python3 tools/bench_torch.py CONFIG.json [...] > result.json
"""
import json
import sys
import time

import torch
from transformers import AutoConfig, AutoModelForCausalLM


def sync_time(fn, reps=1):
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    for _ in range(reps):
        out = fn()
    torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps, out


def copy_bw():
    n = 1 << 28  # 256 MiB of bytes
    a = torch.empty(n, dtype=torch.uint8, device="cuda")
    b = torch.empty_like(a)
    b.copy_(a)
    t, _ = sync_time(lambda: b.copy_(a), reps=20)
    return 2 * n / t / 1e9


def gen(model, ids, new):
    return model.generate(ids, max_new_tokens=new, min_new_tokens=new, do_sample=False,
                          pad_token_id=0, eos_token_id=None)


def bench(path):
    cfg = AutoConfig.from_pretrained(path)
    with torch.device("cuda"):
        model = AutoModelForCausalLM.from_config(cfg, dtype=torch.bfloat16)
    model.eval()
    V = cfg.vocab_size
    res = {"config": path, "params": sum(p.numel() for p in model.parameters())}
    with torch.no_grad():
        ids = torch.randint(0, V, (1, 512), device="cuda")
        model(ids)
        t, _ = sync_time(lambda: model(ids), reps=5)
        res["prefill_pp512_tokens_per_s"] = 512 / t
        one = torch.randint(0, V, (1, 1), device="cuda")
        gen(model, one, 4)
        t1, _ = sync_time(lambda: gen(model, one, 1))
        t128, _ = sync_time(lambda: gen(model, one, 128))
        res["decode_tg128_tokens_per_s"] = 127 / (t128 - t1)
        batch = torch.randint(0, V, (64, 128), device="cuda")
        tb, _ = sync_time(lambda: gen(model, batch, 128))
        res["batch64_output_tokens_per_s"] = 64 * 128 / tb
    del model
    torch.cuda.empty_cache()
    return res


def main():
    out = {"device": torch.cuda.get_device_name(0), "torch": torch.__version__,
           "copy_bandwidth_gbs": copy_bw(), "models": []}
    import transformers
    out["transformers"] = transformers.__version__
    for p in sys.argv[1:]:
        out["models"].append(bench(p))
        print(json.dumps(out["models"][-1]), file=sys.stderr, flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
