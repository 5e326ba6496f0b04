#!/usr/bin/env python3
"""Goldens for the model families of issue 15 (Gemma 2, Gemma 3 text, Phi-3, Mixtral, Qwen2-MoE,
Qwen3-MoE): tiny random-weight models saved by transformers and their greedy outputs, in the layout
of tools/make_goldens.py (whose prompts, decoding and golden.json format this reuses):

    tests/golden/<arch>-<f32|bf16>/{config.json, generation_config.json, model.safetensors, golden.json}

The two dtype folders of one architecture share weights (bf16 = the f32 weights rounded) and differ
in the spelling of config.json, so that the loader is tested on both:
  - f32:  config.json as transformers 5's save_pretrained writes it (rope_parameters, layer_types);
  - bf16: the spelling of the checkpoints published on the Hub (rope_theta, rope_scaling,
          rope_local_base_freq, sliding_window_pattern; no layer_types), verified to load into the
          same model (identical logits) before it is kept.
Mixture-of-experts weights are stored the way the published checkpoints store them, one tensor per
expert (Mixtral's block_sparse_moe.experts.E.w1/w2/w3, Qwen-MoE's mlp.experts.E.gate/up/down_proj),
whatever layout transformers keeps in memory; the reloaded model must give identical logits.

The tiny configs are chosen to exercise what differs from Llama: sliding windows shorter than the
100- and 200-token prompts, soft-capping that bites, query_pre_attn_scalar != head_dim, linear rope
scaling on Gemma 3's global layers only, Phi-3 partial rotary with longrope factors (prompts up to
33 tokens + 24 steps stay below original_max_position_embeddings 64 and use the short factors; the
100 and 200-token prompts are above it from the start and use the long ones), MoE with top-2 routing,
norm_topk_prob both ways, a shared expert with its sigmoid gate, and a dense layer among MoE ones.

Needs torch, transformers (5.x) and safetensors. Usage:
    PYTHONUNBUFFERED=1 python3 tools/make_family_goldens.py --out tests/golden [--only gemma2,phi3]
"""

import argparse
import copy
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import traceback
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_goldens import (VOCAB, STEPS, make_prompts, read_safetensors_header,  # noqa: E402
                          dump_golden, load_reference_model, reference_cases, greedy_diversity)

HIDDEN = 64
OUT_GAIN = 4.0
BASE = {"vocab_size": VOCAB, "hidden_size": HIDDEN, "max_position_embeddings": 512,
        "bos_token_id": 1, "eos_token_id": 2, "pad_token_id": 0}

# "config": the published spelling (what the bf16 folder keeps). "norm_offset": Gemma's RMSNorm
# multiplies by (1 + w), so its random norm weights are drawn around 0 instead of 1.
ARCHS = {
    "gemma2": dict(seed=5005, cls="Gemma2ForCausalLM", norm_offset=True, config=dict(BASE, **{
        "architectures": ["Gemma2ForCausalLM"], "model_type": "gemma2",
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "hidden_activation": "gelu_pytorch_tanh",
        "hidden_act": "gelu_pytorch_tanh", "rms_norm_eps": 1e-6, "rope_theta": 10000.0,
        "attention_bias": False, "query_pre_attn_scalar": 32, "sliding_window": 24,
        "attn_logit_softcapping": 10.0, "final_logit_softcapping": 15.0,
        "tie_word_embeddings": True})),
    "gemma3": dict(seed=6006, cls="Gemma3ForCausalLM", norm_offset=True, config=dict(BASE, **{
        "architectures": ["Gemma3ForCausalLM"], "model_type": "gemma3_text",
        "intermediate_size": 96, "num_hidden_layers": 4, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "hidden_activation": "gelu_pytorch_tanh",
        "rms_norm_eps": 1e-6, "rope_theta": 1000000.0, "rope_local_base_freq": 10000.0,
        "rope_scaling": {"rope_type": "linear", "factor": 2.0},
        "attention_bias": False, "query_pre_attn_scalar": 16, "sliding_window": 24,
        "sliding_window_pattern": 3, "attn_logit_softcapping": None,
        "final_logit_softcapping": None, "tie_word_embeddings": True})),
    "phi3": dict(seed=7007, cls="Phi3ForCausalLM", norm_offset=False, config=dict(BASE, **{
        "architectures": ["Phi3ForCausalLM"], "model_type": "phi3",
        "intermediate_size": 96, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "hidden_act": "silu", "rms_norm_eps": 1e-5,
        "rope_theta": 10000.0, "partial_rotary_factor": 0.5,
        "original_max_position_embeddings": 64, "sliding_window": 48,
        "rope_scaling": {"type": "longrope", "short_factor": [1.0, 1.25, 1.5, 2.0],
                         "long_factor": [1.5, 3.0, 6.0, 12.0]},
        "tie_word_embeddings": False})),
    "mixtral": dict(seed=8008, cls="MixtralForCausalLM", norm_offset=False, config=dict(BASE, **{
        "architectures": ["MixtralForCausalLM"], "model_type": "mixtral",
        "intermediate_size": 48, "num_hidden_layers": 2, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 16, "hidden_act": "silu", "rms_norm_eps": 1e-5,
        "rope_theta": 1000000.0, "sliding_window": None, "num_local_experts": 4,
        "num_experts_per_tok": 2, "router_jitter_noise": 0.0, "tie_word_embeddings": False})),
    "qwen2moe": dict(seed=9009, cls="Qwen2MoeForCausalLM", norm_offset=False, config=dict(BASE, **{
        "architectures": ["Qwen2MoeForCausalLM"], "model_type": "qwen2_moe",
        "intermediate_size": 96, "moe_intermediate_size": 32,
        "shared_expert_intermediate_size": 48, "num_experts": 6, "num_experts_per_tok": 2,
        "norm_topk_prob": False, "decoder_sparse_step": 1, "mlp_only_layers": [],
        "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
        "hidden_act": "silu", "rms_norm_eps": 1e-6, "rope_theta": 1000000.0,
        "use_sliding_window": False, "sliding_window": None, "qkv_bias": True,
        "tie_word_embeddings": False})),
    "qwen3moe": dict(seed=10010, cls="Qwen3MoeForCausalLM", norm_offset=False, config=dict(BASE, **{
        "architectures": ["Qwen3MoeForCausalLM"], "model_type": "qwen3_moe",
        "intermediate_size": 96, "moe_intermediate_size": 32, "num_experts": 8,
        "num_experts_per_tok": 2, "norm_topk_prob": True, "decoder_sparse_step": 1,
        "mlp_only_layers": [1], "num_hidden_layers": 3, "num_attention_heads": 4,
        "num_key_value_heads": 2, "head_dim": 32, "hidden_act": "silu", "rms_norm_eps": 1e-6,
        "rope_theta": 1000000.0, "use_sliding_window": False, "sliding_window": None,
        "attention_bias": False, "tie_word_embeddings": False})),
}
DTYPES = [("f32", "float32"), ("bf16", "bfloat16")]


def init_weights(model, seed, norm_offset):
    import torch
    with torch.no_grad():
        for name, p in model.named_parameters():
            g = torch.Generator().manual_seed(seed * 1000003 + zlib.crc32(name.encode()))
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                final = name == "model.norm.weight"
                v = r if final else 1.0 + 0.3 * r  # the final norm signed: see make_goldens.py
                if norm_offset:
                    v = v - 1.0
            elif name.endswith(".bias"):
                v = 0.2 * r
            elif name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight"):
                v = r
            else:
                v = r / math.sqrt(p.shape[-1])
                if any(s in name for s in ("o_proj", "down_proj", ".w2")):
                    v = v * OUT_GAIN
            p.copy_(v)


def expert_names(arch, layer, e):
    """The published per-expert tensor names: gate, up, down."""
    if arch == "mixtral":
        b = "model.layers.%d.block_sparse_moe.experts.%d." % (layer, e)
        return b + "w1.weight", b + "w3.weight", b + "w2.weight"
    b = "model.layers.%d.mlp.experts.%d." % (layer, e)
    return b + "gate_proj.weight", b + "up_proj.weight", b + "down_proj.weight"


def unfuse_experts(arch, folder):
    """Rewrite fused expert tensors ([E, 2I, H] gate_up, [E, H, I] down) as published per-expert
    ones. Returns the number of tensors rewritten (0 when already per expert)."""
    import re
    from safetensors.torch import load_file, save_file
    path = os.path.join(folder, "model.safetensors")
    sd = load_file(path)
    out, n = {}, 0
    for k, v in sd.items():
        m = re.match(r"model\.layers\.(\d+)\.(?:mlp|block_sparse_moe)\.experts\.(gate_up_proj|down_proj)$", k)
        if not m:
            out[k] = v
            continue
        layer, what = int(m.group(1)), m.group(2)
        for e in range(v.shape[0]):
            gname, uname, dname = expert_names(arch, layer, e)
            if what == "gate_up_proj":
                half = v.shape[1] // 2
                out[gname] = v[e, :half].contiguous()
                out[uname] = v[e, half:].contiguous()
            else:
                out[dname] = v[e].contiguous()
        n += 1
    # Mixtral's router is block_sparse_moe.gate in the published files
    if arch == "mixtral":
        for k in list(out):
            m = re.match(r"model\.layers\.(\d+)\.mlp\.gate\.weight$", k)
            if m:
                out["model.layers.%s.block_sparse_moe.gate.weight" % m.group(1)] = out.pop(k)
                n += 1
    if n:
        save_file(out, path, metadata={"format": "pt"})
    return n


def published_config(spec, dname):
    cj = copy.deepcopy(spec["config"])
    cj["torch_dtype"] = dname
    return cj


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--only", default="")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    tv = transformers.__version__
    print("transformers", tv, "torch", torch.__version__, flush=True)
    torch.set_num_threads(1)
    prompts = make_prompts()
    probe = torch.tensor([prompts[4] + prompts[3]], dtype=torch.long)  # 133 tokens: past every window
    archs = [a for a in ARCHS if not args.only or a in args.only.split(",")]
    failures, summary = [], []

    def logits_of(folder):
        m = load_reference_model(folder)
        with torch.no_grad():
            out = m(input_ids=probe, use_cache=False).logits
        return m, out

    for arch in archs:
        spec = ARCHS[arch]
        try:
            print("\n==================== %s ====================" % arch, flush=True)
            with tempfile.TemporaryDirectory() as td:
                with open(os.path.join(td, "config.json"), "w") as f:
                    json.dump(spec["config"], f)
                config = AutoConfig.from_pretrained(td)
            base = AutoModelForCausalLM.from_config(config, attn_implementation="eager").to(torch.float32).eval()
            assert type(base).__name__ == spec["cls"], type(base).__name__
            init_weights(base, spec["seed"], spec["norm_offset"])
            print("config as transformers reads it:", json.dumps(config.to_dict(), sort_keys=True, default=str))
            for n, p in base.named_parameters():
                print("  %-55s %s" % (n, tuple(p.shape)))
            with torch.no_grad():
                ref = base(input_ids=probe, use_cache=False).logits
            for suffix, dname in DTYPES:
                name = "%s-%s" % (arch, suffix)
                folder = os.path.join(args.out, name)
                if os.path.isdir(folder):
                    shutil.rmtree(folder)
                m = copy.deepcopy(base).to(getattr(torch, dname))
                m.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2, pad_token_id=0)
                m.save_pretrained(folder)
                del m
                _, la = logits_of(folder)
                if suffix == "f32":
                    d = float((la - ref).abs().max())
                    assert d == 0.0, ("f32 save/load changed the logits", d)
                nfused = unfuse_experts(arch, folder)
                if nfused:
                    print("  rewrote %d fused expert/router tensors as published" % nfused)
                    _, lu = logits_of(folder)
                    assert torch.equal(la, lu), "per-expert rewrite changed the logits"
                if suffix == "bf16":
                    saved = open(os.path.join(folder, "config.json")).read()
                    with open(os.path.join(folder, "config.json"), "w") as f:
                        json.dump(published_config(spec, dname), f, indent=2, sort_keys=True)
                        f.write("\n")
                    _, lp = logits_of(folder)
                    if not torch.equal(la, lp):
                        print("  WARNING: the published spelling loads differently (max diff %g); keeping"
                              " transformers' own config" % float((la - lp).abs().max()))
                        with open(os.path.join(folder, "config.json"), "w") as f:
                            f.write(saved)
                    else:
                        print("  published-spelling config.json verified (identical logits)")
                mb = load_reference_model(folder)
                cases, margins = reference_cases(mb, prompts)
                del mb
                hdr = read_safetensors_header(os.path.join(folder, "model.safetensors"))
                head = {"model": name, "transformers_version": tv, "torch_version": torch.__version__,
                        "dtype": dname, "compute": "float32 on CPU"}
                dump_golden(os.path.join(folder, "golden.json"), head, cases)
                size = os.path.getsize(os.path.join(folder, "model.safetensors"))
                line = "%-14s file=%7d B margins min=%.4g median=%.4g <0.1: %d/%d  %s" % (
                    name, size, min(margins), statistics.median(margins),
                    sum(v < 0.1 for v in margins), len(margins), greedy_diversity(cases))
                print(line, flush=True)
                print("  config.json:", open(os.path.join(folder, "config.json")).read().replace("\n", " "))
                for k in sorted(hdr):
                    print("    %-55s %-5s %s" % (k, hdr[k]["dtype"], hdr[k]["shape"]))
                summary.append(line)
        except Exception:
            traceback.print_exc()
            failures.append(arch)
            sys.stdout.flush()
    print("\n==================== summary ====================")
    for line in summary:
        print(line)
    if failures:
        print("FAILED:", failures)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
