#!/usr/bin/env python3
"""Goldens for gpt-oss (GptOssForCausalLM, issue 15): a tiny random-weight model stored as the published
checkpoints are (expert weights in MXFP4: *_blocks / *_scales; everything else in the folder's dtype;
config.json in the published spelling with quantization_config {"quant_method": "mxfp4"}), and the
greedy outputs that transformers gives for it, in the layout of tools/make_goldens.py:

    tests/golden/gptoss-<f32|bf16>/{config.json, generation_config.json, model.safetensors, golden.json}

How: a GptOssForCausalLM is made from the config in float32 and given random weights; its expert weights
are rounded to MXFP4 (per block of 32 along K: a power-of-two scale so that the largest magnitude fits
FP4's 6, each value to the nearest of FP4's 16 values) and written as blocks and scales; then the folder
is loaded back by transformers itself, with Mxfp4Config(dequantize=True), so that transformers' own
reading of the published layout (nibble order, scale bias, gate/up interleave) decides the reference;
its weights must equal those of the in-memory model holding the rounded weights, which checks that this
script wrote what it meant to. The goldens are computed by that loaded model (float32 compute on CPU).
(First run 2026-12-07, transformers 5.17: the weights were equal but the logits were not, 0.35-0.60 of ~42:
transformers dequantizes MXFP4 experts to bfloat16 whatever dtype is asked, so they computed in bf16; the
load is now cast to float32 and the script asserts equal logits too. GPTOSS_DIAG=1 prints where the two
models' weights differ, if they do.)

(intermediate 96 != hidden 64, so that the orientation of each expert tensor is unambiguous.)
The tiny config exercises what differs from the other families: attention sinks, alternating sliding
(window 24, inside the 100- and 200-token prompts) and full layers, YaRN rope (factor 4 over an original
64 positions, truncate false as published), q/k/v/o biases, router bias, top-2 of 4 experts with expert
biases, and the clamped SwiGLU (limit 7, which the random weights reach).

Status: run on 2026-12-07 (H100 machine, transformers 5.17); its output is tests/golden/gptoss-{f32,bf16}
(log: tests/golden/make_gptoss_goldens.log), which test_golden runs on the CPU (both) and the GPU (bf16).

Needs torch, transformers (5.x) and safetensors. Usage:
    PYTHONUNBUFFERED=1 python3 tools/make_gptoss_goldens.py --out tests/golden
"""

import argparse
import copy
import json
import math
import os
import shutil
import statistics
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import (VOCAB, make_prompts, read_safetensors_header, dump_golden,  # noqa: E402
                          reference_cases, greedy_diversity)

SEED = 11011
FP4 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0]
CONFIG = {
    "architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "vocab_size": VOCAB, "hidden_size": 64,
    "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
    "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2, "experts_per_token": 2,
    "rms_norm_eps": 1e-5, "max_position_embeddings": 512, "sliding_window": 24,
    "layer_types": ["sliding_attention", "full_attention"], "attention_bias": True,
    "rope_theta": 10000.0, "swiglu_limit": 7.0, "hidden_act": "silu", "tie_word_embeddings": False,
    "rope_scaling": {"rope_type": "yarn", "factor": 4.0, "beta_fast": 32.0, "beta_slow": 1.0,
                     "original_max_position_embeddings": 64, "truncate": False},
    "initial_context_length": 64,
    "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
        "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
    "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0,
}
DTYPES = [("f32", "float32"), ("bf16", "bfloat16")]


def init_weights(model):
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = torch.Generator().manual_seed(SEED * 1000003 + zlib.crc32(name.encode()))
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                v = r if name == "model.norm.weight" else 1.0 + 0.3 * r
            elif name.endswith("sinks"):
                v = 1.5 * r
            elif name.endswith("bias"):
                v = 0.5 * r if "gate_up" in name else 0.2 * r
            elif name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight"):
                v = r
            elif "router.weight" in name:
                v = 4.0 * r / math.sqrt(p.shape[-1])  # a wide spread of router logits: no near-ties
            elif "experts" in name:
                v = 2.0 * r / math.sqrt(model.config.hidden_size if "gate_up" in name else model.config.intermediate_size)
            else:
                v = r / math.sqrt(p.shape[-1]) * (3.0 if "o_proj" in name else 1.0)
            p.copy_(v)


def mxfp4_round(rows):
    """rows: f32 [E, R, K] -> (dequantized [E, R, K], blocks u8 [E, R, K/32, 16], scales u8 [E, R, K/32])."""
    import torch
    E, R, K = rows.shape
    b = rows.reshape(E, R, K // 32, 32)
    amax = b.abs().amax(dim=-1)
    e = torch.where(amax > 0, torch.ceil(torch.log2(amax / 6.0)), torch.full_like(amax, -127.0)).clamp(-127, 127)
    scale = torch.pow(2.0, e).unsqueeze(-1)
    mags = torch.tensor(FP4)
    q = (b / scale).abs()
    idx = (q.unsqueeze(-1) - mags).abs().argmin(dim=-1)  # nearest magnitude (ties to the lower index)
    code = idx + 8 * (b < 0).to(torch.long)
    deq = (mags[idx] * torch.sign(b) * scale).reshape(E, R, K)
    code = code.to(torch.uint8)
    blocks = (code[..., 0::2] | (code[..., 1::2] << 4)).contiguous()
    scales = (e + 127).to(torch.uint8).contiguous()
    return deq, blocks, scales


def expert_rows(p, rows_out, k):
    """The expert parameter as [E, rows, K] (rows = output features) whatever layout transformers keeps."""
    if p.shape[1] == rows_out and p.shape[2] == k:
        return p.detach().clone(), False
    assert p.shape[1] == k and p.shape[2] == rows_out, tuple(p.shape)
    return p.detach().transpose(1, 2).contiguous(), True


def quantize_experts(model):
    """Round every expert weight to MXFP4 in place; returns {published name: (blocks, scales)}."""
    import torch
    c, out = model.config, {}
    with torch.no_grad():
        for layer, blk in enumerate(model.model.layers):
            ex = blk.mlp.experts
            for nm, rows_out, k in (("gate_up_proj", 2 * c.intermediate_size, c.hidden_size),
                                    ("down_proj", c.hidden_size, c.intermediate_size)):
                p = getattr(ex, nm)
                w, transposed = expert_rows(p, rows_out, k)
                deq, blocks, scales = mxfp4_round(w)
                p.copy_(deq.transpose(1, 2) if transposed else deq)
                out["model.layers.%d.mlp.experts.%s" % (layer, nm)] = (blocks, scales)
    return out


def write_folder(model, packed, folder, dname):
    import torch
    from safetensors.torch import save_file
    from transformers import GenerationConfig
    os.makedirs(folder)
    dt = getattr(torch, dname)
    tensors = {}
    for n, p in model.state_dict().items():
        if n.endswith("experts.gate_up_proj") or n.endswith("experts.down_proj"):
            continue
        tensors[n] = p.detach().to(dt).contiguous()
    for n, (blocks, scales) in packed.items():
        tensors[n + "_blocks"] = blocks
        tensors[n + "_scales"] = scales
    save_file(tensors, os.path.join(folder, "model.safetensors"), metadata={"format": "pt"})
    cj = copy.deepcopy(CONFIG)
    cj["torch_dtype"] = dname
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cj, f, indent=2, sort_keys=True)
        f.write("\n")
    GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0).save_pretrained(folder)


def load_mxfp4(folder):
    """transformers' own reading of the folder: MXFP4 experts dequantized on load, eager attention, then
    every parameter cast to float32. (transformers dequantizes MXFP4 to bfloat16 whatever `dtype` asks:
    MXFP4 values are exact in bf16, but a bf16 parameter makes its module compute in bf16, which the
    first run of this script measured as a 0.35-0.60 logit gap to the same weights in float32.)"""
    import torch
    from transformers import AutoModelForCausalLM, Mxfp4Config
    m = AutoModelForCausalLM.from_pretrained(folder, quantization_config=Mxfp4Config(dequantize=True),
                                             attn_implementation="eager", dtype=torch.float32)
    other = sorted({"%s %s" % (n.split(".")[-1], p.dtype) for n, p in m.named_parameters()
                    if p.dtype != torch.float32})
    print("  transformers' load: parameters not in float32 before the cast:", other or "none", flush=True)
    return m.to(torch.float32).eval()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()

    import tempfile
    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM

    tv = transformers.__version__
    print("transformers", tv, "torch", torch.__version__, flush=True)
    torch.set_num_threads(4)
    prompts = make_prompts()
    probe = torch.tensor([prompts[4] + prompts[3]], dtype=torch.long)  # 133 tokens: past the window
    plain = {k: v for k, v in CONFIG.items() if k != "quantization_config"}
    with tempfile.TemporaryDirectory() as td:
        with open(os.path.join(td, "config.json"), "w") as f:
            json.dump(plain, f)
        config = AutoConfig.from_pretrained(td)
    base = AutoModelForCausalLM.from_config(config, attn_implementation="eager").to(torch.float32).eval()
    assert type(base).__name__ == "GptOssForCausalLM", type(base).__name__
    init_weights(base)
    packed = quantize_experts(base)
    print("config as transformers reads it:", json.dumps(config.to_dict(), sort_keys=True, default=str))
    for n, p in base.named_parameters():
        print("  %-55s %s" % (n, tuple(p.shape)))
    for suffix, dname in DTYPES:
        name = "gptoss-%s" % suffix
        folder = os.path.join(args.out, name)
        if os.path.isdir(folder):
            shutil.rmtree(folder)
        # the in-memory model with the folder's rounding of the non-expert weights (experts are exact); only
        # the parameters are rounded (a round trip of the whole module would round buffers too: the rotary
        # inv_freq in bf16 moved the logits by 0.21 in the second run)
        mem = copy.deepcopy(base).eval()
        with torch.no_grad():
            for p in mem.parameters():
                p.copy_(p.to(getattr(torch, dname)).to(torch.float32))
        write_folder(base, packed, folder, dname)
        compute = "float32 on CPU (MXFP4 experts dequantized by transformers, cast to float32)"
        try:
            ref = load_mxfp4(folder)
        except Exception as e:  # noqa: BLE001 (reported; the goldens then say where they come from)
            import traceback
            traceback.print_exc()
            print("WARNING: transformers could not load the MXFP4 folder (%s): goldens from the in-memory"
                  " model" % e, flush=True)
            ref, compute = mem, "float32 on CPU (the in-memory model with MXFP4-rounded experts)"
        with torch.no_grad():
            a = mem(input_ids=probe, use_cache=False).logits
            b = ref(input_ids=probe, use_cache=False).logits
        d = float((a - b).abs().max())
        print("%s: transformers' MXFP4 load vs the in-memory model: max |logit diff| %.3g (logits up to %.3g)"
              % (name, d, float(a.abs().max())), flush=True)
        if os.environ.get("GPTOSS_DIAG"):  # where the two models' weights differ
            ms, rs = mem.state_dict(), ref.state_dict()
            for k in sorted(ms):
                if k not in rs:
                    print("  only in memory:", k, tuple(ms[k].shape))
                    continue
                x, y = ms[k].float(), rs[k].float()
                if x.shape != y.shape:
                    print("  shape %-50s %s vs %s" % (k, tuple(x.shape), tuple(y.shape)))
                    if x.dim() == 3 and x.transpose(1, 2).shape == y.shape:
                        print("    transposed diff %.3g" % float((x.transpose(1, 2) - y).abs().max()))
                    continue
                dd = float((x - y).abs().max())
                if dd > 0:
                    print("  diff %-50s %.3g %s" % (k, dd, tuple(x.shape)))
                    if x.dim() == 3:
                        print("    mem", [round(v, 3) for v in x[0, 0, :8].tolist()], "ref", [round(v, 3) for v in y[0, 0, :8].tolist()])
                        print("    mem col", [round(v, 3) for v in x[0, :8, 0].tolist()], "ref col", [round(v, 3) for v in y[0, :8, 0].tolist()])
                        print("    transposed-shape diff?", x.shape, "sorted-equal", bool(torch.equal(x.flatten().sort()[0], y.flatten().sort()[0])))
                        if x.shape[-1] % 2 == 0:
                            sw = x.reshape(*x.shape[:-1], -1, 2).flip(-1).reshape(x.shape)
                            print("    pair-swapped diff %.3g" % float((sw - y).abs().max()))
                        if x.shape[-1] >= 2:
                            il = torch.cat([x[..., 0::2], x[..., 1::2]], -1)
                            print("    deinterleaved(last) diff %.3g" % float((il - y).abs().max()))
                            il2 = torch.stack([x[..., : x.shape[-1] // 2], x[..., x.shape[-1] // 2:]], -1).reshape(x.shape)
                            print("    interleaved(last) diff %.3g" % float((il2 - y).abs().max()))
            for k in sorted(rs):
                if k not in ms:
                    print("  only in transformers' load:", k, tuple(rs[k].shape))
        # what the folder holds, as transformers reads it, must be the in-memory model's weights exactly;
        # and, all in float32, the two models must compute the same logits (the first run, without the cast
        # in load_mxfp4, measured 0.35-0.60 of ~42 with equal weights); the goldens are those of
        # transformers' own load of the folder, as a published checkpoint is loaded
        ms, rs = mem.state_dict(), ref.state_dict()
        assert sorted(ms) == sorted(rs), "transformers' load has other parameters"
        wd = max(float((ms[k].float() - rs[k].float()).abs().max()) for k in ms)
        print("%s: weights as transformers reads them vs the in-memory model: max |diff| %.3g" % (name, wd))
        assert wd == 0.0, "transformers reads the folder differently"
        assert d < 1e-3, "the same weights in float32 give other logits: another code path in transformers"
        cases, margins = reference_cases(ref, prompts)
        hdr = read_safetensors_header(os.path.join(folder, "model.safetensors"))
        head = {"model": name, "transformers_version": tv, "torch_version": torch.__version__,
                "dtype": dname, "compute": compute}
        dump_golden(os.path.join(folder, "golden.json"), head, cases)
        print("%-12s file=%7d B margins min=%.4g median=%.4g <0.1: %d/%d  %s" % (
            name, os.path.getsize(os.path.join(folder, "model.safetensors")), min(margins),
            statistics.median(margins), sum(v < 0.1 for v in margins), len(margins), greedy_diversity(cases)))
        for k in sorted(hdr):
            print("    %-55s %-5s %s" % (k, hdr[k]["dtype"], hdr[k]["shape"]))
    print("OK")


if __name__ == "__main__":
    main()
