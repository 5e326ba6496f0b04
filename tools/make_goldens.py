#!/usr/bin/env python3
"""Make tiny random-weight Hugging Face models and their transformers reference
outputs ("goldens") for vllmc's golden tests.

Writes, under --out, one folder per model (4 architectures x 3 stored dtypes):
    <arch>-<f32|f16|bf16>/config.json
                          generation_config.json
                          model.safetensors
                          golden.json
Nothing else goes into a model folder (no tokenizer: these models have none).
Existing model folders of the same names are replaced; other files under --out
(e.g. README.md) are left alone.

Needs torch, transformers and safetensors. Reference computation: the saved
folder is loaded back with AutoModelForCausalLM.from_pretrained(folder,
dtype=float32, attn_implementation="eager") on CPU, i.e. float32 compute on the
stored (possibly f16/bf16-rounded) weights; greedy decoding re-runs a full
forward over prompt + generated tokens at each step (no KV cache) and ignores EOS.

Weights are random (seeded per architecture and parameter name), with random
norm weights and biases; see OUT_GAIN and FINAL_NORM below and
tests/golden/README.md.

Usage: PYTHONUNBUFFERED=1 python3 tools/make_goldens.py --out tests/golden
"""

import argparse
import copy
import inspect
import json
import math
import os
import random
import shutil
import statistics
import struct
import sys
import tempfile
import traceback
import zlib

VOCAB = 512
HIDDEN = 64
STEPS = 24
PROMPT_LENS = [1, 2, 7, 33, 100, 200]
PROMPT_SEED = 20240611
MAX_FILE_BYTES = 1_000_000
# Extra gain on the residual-branch output projections (o_proj, down_proj).
# With gain 1 the token embedding dominates the final hidden state, and with
# tied embeddings greedy decoding then just repeats the last token forever.
OUT_GAIN = 4.0
# Final RMSNorm weight: "signed" = N(0,1) (about half negative), "positive" =
# 1 + 0.3*N(0,1) like the other norms. With tied embeddings and positive
# weights, logit(t) = sum_i w_i h_i E[t,i] always favours the token whose
# embedding is in the residual stream, so greedy decoding gets stuck repeating
# one token; signed weights remove that bias.
FINAL_NORM = "signed"

# Legacy spelling (top-level rope_theta + rope_scaling) is used to *create* each
# config; after save_pretrained the on-disk config.json is rewritten to the
# spelling named by "disk_rope" ("rope_scaling" = legacy, "rope_parameters" =
# transformers-5 style) and re-verified.
ARCHS = {
    "llama": dict(
        seed=1001,
        cls="LlamaForCausalLM",
        disk_rope="rope_scaling",
        head_dim=16,
        config={
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "vocab_size": VOCAB,
            "hidden_size": HIDDEN,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-5,
            "rope_theta": 500000.0,
            "rope_scaling": {
                "rope_type": "llama3",
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 128,
            },
            "tie_word_embeddings": True,
            "attention_bias": True,
            "mlp_bias": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
    "mistral": dict(
        seed=2002,
        cls="MistralForCausalLM",
        disk_rope="rope_scaling",
        head_dim=16,
        config={
            "architectures": ["MistralForCausalLM"],
            "model_type": "mistral",
            "vocab_size": VOCAB,
            "hidden_size": HIDDEN,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 1,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 10000.0,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
    "qwen2": dict(
        seed=3003,
        cls="Qwen2ForCausalLM",
        disk_rope="rope_parameters",
        head_dim=16,
        config={
            "architectures": ["Qwen2ForCausalLM"],
            "model_type": "qwen2",
            "vocab_size": VOCAB,
            "hidden_size": HIDDEN,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "use_sliding_window": False,
            "sliding_window": None,
            "tie_word_embeddings": False,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
    "qwen3": dict(
        seed=4004,
        cls="Qwen3ForCausalLM",
        disk_rope="rope_parameters",
        head_dim=32,
        config={
            "architectures": ["Qwen3ForCausalLM"],
            "model_type": "qwen3",
            "vocab_size": VOCAB,
            "hidden_size": HIDDEN,
            "head_dim": 32,
            "intermediate_size": 96,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "hidden_act": "silu",
            "max_position_embeddings": 512,
            "rms_norm_eps": 1e-6,
            "rope_theta": 1000000.0,
            "rope_scaling": {"rope_type": "linear", "factor": 2.0},
            "use_sliding_window": False,
            "sliding_window": None,
            "attention_bias": False,
            "tie_word_embeddings": True,
            "bos_token_id": 1,
            "eos_token_id": 2,
        },
    ),
}

DTYPES = [("f32", "float32"), ("f16", "float16"), ("bf16", "bfloat16")]
ST_DTYPE = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}


# ---------------------------------------------------------------- pure helpers
# (no torch: these are testable anywhere)

def make_prompts():
    rng = random.Random(PROMPT_SEED)
    prompts = []
    for n in PROMPT_LENS:
        if n == 1:
            prompts.append([1])
        else:
            prompts.append([rng.randint(3, VOCAB - 1) for _ in range(n)])
    return prompts


def read_safetensors_header(path):
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
    header.pop("__metadata__", None)
    return header


def rope_to_legacy(cfg):
    """config dict -> top-level rope_theta + rope_scaling (dict or null)."""
    cfg = dict(cfg)
    rp = cfg.pop("rope_parameters", None)
    if rp is None:
        assert "rope_theta" in cfg, "no rope_theta and no rope_parameters"
        cfg.setdefault("rope_scaling", None)
        return cfg
    rp = dict(rp)
    assert "rope_type" in rp, "nested (per layer type) rope_parameters not supported: %r" % (rp,)
    cfg["rope_theta"] = rp.pop("rope_theta")
    if rp.get("rope_type") == "default" and set(rp) <= {"rope_type"}:
        cfg["rope_scaling"] = None
    else:
        cfg["rope_scaling"] = rp
    return cfg


def rope_to_new(cfg):
    """config dict -> rope_parameters (with rope_theta inside), no rope_scaling/rope_theta."""
    cfg = dict(cfg)
    if "rope_parameters" in cfg and cfg["rope_parameters"] is not None:
        rp = dict(cfg["rope_parameters"])
        assert "rope_type" in rp, "nested rope_parameters not supported: %r" % (rp,)
        if "rope_theta" not in rp:
            rp["rope_theta"] = cfg["rope_theta"]
        cfg.pop("rope_scaling", None)
        cfg.pop("rope_theta", None)
        cfg["rope_parameters"] = rp
        return cfg
    rs = cfg.pop("rope_scaling", None)
    rp = dict(rs) if rs else {"rope_type": "default"}
    if "type" in rp:
        t = rp.pop("type")
        rp.setdefault("rope_type", t)
    rp["rope_theta"] = cfg.pop("rope_theta")
    cfg["rope_parameters"] = rp
    return cfg


def expected_inv_freq(theta, head_dim, scaling):
    """Independent float64 re-derivation of the RoPE inverse frequencies."""
    inv = [1.0 / (theta ** (i / head_dim)) for i in range(0, head_dim, 2)]
    t = (scaling or {}).get("rope_type", (scaling or {}).get("type", "default"))
    if t == "default":
        return inv
    if t == "linear":
        return [x / scaling["factor"] for x in inv]
    if t == "llama3":
        f = scaling["factor"]
        lo = scaling["low_freq_factor"]
        hi = scaling["high_freq_factor"]
        old = scaling["original_max_position_embeddings"]
        lo_wl, hi_wl = old / lo, old / hi
        out = []
        for x in inv:
            wl = 2 * math.pi / x
            if wl < hi_wl:
                out.append(x)
            elif wl > lo_wl:
                out.append(x / f)
            else:
                s = (old / wl - lo) / (hi - lo)
                out.append((1 - s) * x / f + s * x)
        return out
    raise ValueError("unknown rope type %r" % t)


def dump_golden(path, head, cases):
    """JSON with one case per line; floats via repr (shortest round-trip)."""
    lines = ["{"]
    for k, v in head.items():
        lines.append(" %s: %s," % (json.dumps(k), json.dumps(v, allow_nan=False)))
    lines.append(' "cases": [')
    for i, c in enumerate(cases):
        s = json.dumps(c, allow_nan=False, separators=(", ", ": "))
        lines.append("  " + s + ("," if i + 1 < len(cases) else ""))
    lines.append(" ]")
    lines.append("}")
    text = "\n".join(lines) + "\n"
    json.loads(text)  # must parse
    with open(path, "w") as f:
        f.write(text)


# ---------------------------------------------------------------- torch helpers
# (torch imported lazily; tools/make_lora_goldens.py uses these too)

def load_reference_model(folder):
    """folder -> the reference model: float32 compute on CPU, eager attention, eval()."""
    import torch
    import transformers
    from transformers import AutoModelForCausalLM

    tmaj, tmin = (int(x) for x in transformers.__version__.split(".")[:2])
    dtype_kw = "dtype" if (tmaj, tmin) >= (4, 56) else "torch_dtype"
    m = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager", **{dtype_kw: torch.float32})
    m.eval()
    return m


def reference_cases(model, prompts):
    """Greedy decoding of STEPS tokens per prompt, each step a full forward over
    prompt + tokens so far (no KV cache, EOS ignored). Returns (cases, all margins)."""
    import torch

    cases, all_margins = [], []
    with torch.no_grad():
        for prompt in prompts:
            ids = list(prompt)
            greedy, margins, first_lp = [], [], None
            for step in range(STEPS):
                x = torch.tensor([ids], dtype=torch.long)
                logits = model(input_ids=x, use_cache=False).logits[0, -1]
                assert logits.dtype == torch.float32 and logits.shape == (VOCAB,)
                top = torch.topk(logits, 2)
                nxt = int(torch.argmax(logits))
                margins.append(float(top.values[0] - top.values[1]))
                if step == 0:
                    first_lp = torch.log_softmax(logits.double(), dim=-1).tolist()
                greedy.append(nxt)
                ids.append(nxt)
            cases.append({"prompt": list(prompt), "greedy": greedy,
                          "margins": margins, "first_logprobs": first_lp})
            all_margins += margins
    return cases, all_margins


def greedy_diversity(cases):
    distinct = [len(set(c["greedy"])) for c in cases]
    stuck = sum(1 for c in cases if len(set(c["greedy"][-12:])) == 1)
    return "distinct/case=%s stuck(last 12 same)=%d/%d" % (distinct, stuck, len(cases))


# ---------------------------------------------------------------- torch part

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="output folder (e.g. tests/golden)")
    ap.add_argument("--only", default="", help="comma-separated architectures (default: all)")
    ap.add_argument("--scan", action="store_true",
                    help="only print greedy-diversity/margin stats for several OUT_GAIN values (f32, nothing saved)")
    args = ap.parse_args()

    import torch
    import transformers
    from transformers import AutoConfig, AutoModelForCausalLM, GenerationConfig

    tv = transformers.__version__
    tmaj, tmin = (int(x) for x in tv.split(".")[:2])
    print("transformers", tv, "torch", torch.__version__, "python", sys.version.split()[0], flush=True)
    new_spelling_ok = tmaj >= 5

    torch.set_num_threads(1)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception as e:  # pragma: no cover
        print("note: use_deterministic_algorithms failed:", e)

    os.makedirs(args.out, exist_ok=True)
    prompts = make_prompts()
    probe = torch.tensor([prompts[3] + prompts[2]], dtype=torch.long)
    archs = [a for a in ARCHS if not args.only or a in args.only.split(",")]
    summary = []
    failures = []

    def load_fp32(folder):
        return load_reference_model(folder)

    def canon(obj):
        return json.dumps(obj, sort_keys=True, default=str)

    def rope_state(m):
        re = m.model.rotary_emb
        cfg = m.config
        return (
            re.inv_freq.detach().clone(),
            float(getattr(re, "attention_scaling", 1.0)),
            canon(getattr(cfg, "rope_parameters", None)),
            canon(getattr(cfg, "rope_scaling", None)),
            canon(getattr(cfg, "rope_theta", None)),
        )

    save_kw = {}
    if "safe_serialization" in inspect.signature(transformers.PreTrainedModel.save_pretrained).parameters:
        save_kw["safe_serialization"] = True

    def init_weights(model, seed, out_gain=OUT_GAIN, final_norm=FINAL_NORM):
        with torch.no_grad():
            for name, p in model.named_parameters():
                g = torch.Generator().manual_seed(seed * 1000003 + zlib.crc32(name.encode()))
                r = torch.randn(p.shape, generator=g, dtype=torch.float32)
                if name == "model.norm.weight" and final_norm == "signed":
                    v = r
                elif name.endswith("norm.weight"):
                    v = 1.0 + 0.3 * r
                elif name.endswith(".bias"):
                    v = 0.2 * r
                elif name.endswith("embed_tokens.weight") or name.endswith("lm_head.weight"):
                    v = r  # std 1: logits std ~ sqrt(hidden) -> peaked
                else:
                    assert p.dim() == 2, name
                    v = r / math.sqrt(p.shape[1])
                    if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                        v = v * out_gain
                p.copy_(v)

    def run_cases(model):
        return reference_cases(model, prompts)

    def diversity(cases):
        return greedy_diversity(cases)

    def build(arch, out_gain=OUT_GAIN, final_norm=FINAL_NORM):
        spec = ARCHS[arch]
        with tempfile.TemporaryDirectory() as td:
            with open(os.path.join(td, "config.json"), "w") as f:
                json.dump(spec["config"], f)
            config = AutoConfig.from_pretrained(td)
        model = AutoModelForCausalLM.from_config(config, attn_implementation="eager")
        model = model.to(torch.float32).eval()
        init_weights(model, spec["seed"], out_gain, final_norm)
        return model

    if args.scan:
        for arch in archs:
            for fn, gain in [(fn, g) for fn in ("positive", "signed") for g in (1.0, 2.0, 4.0)]:
                cases, ms = run_cases(build(arch, gain, fn))
                print("scan %-8s %-8s gain=%-4g margins min=%.4g median=%.4g <0.1: %3d/%d  %s"
                      % (arch, fn, gain, min(ms), statistics.median(ms), sum(v < 0.1 for v in ms), len(ms),
                         diversity(cases)), flush=True)
        return

    for arch in archs:
        spec = ARCHS[arch]
        try:
            print("\n==================== %s ====================" % arch, flush=True)
            base = build(arch)
            assert type(base).__name__ == spec["cls"], type(base).__name__
            tied = spec["config"]["tie_word_embeddings"]
            same = base.lm_head.weight.data_ptr() == base.model.embed_tokens.weight.data_ptr()
            assert same == tied, ("tie mismatch", same, tied)
            ref_sd = {k: v.detach().clone() for k, v in base.state_dict().items()}

            print("parameters (in-memory, %s):" % spec["cls"])
            for n, p in base.named_parameters():
                print("  %-45s %s" % (n, tuple(p.shape)))
            nparams = sum(p.numel() for p in base.parameters())
            print("  total parameters:", nparams)

            theta = spec["config"]["rope_theta"]
            exp_inv = expected_inv_freq(theta, spec["head_dim"], spec["config"].get("rope_scaling"))

            for suffix, dname in DTYPES:
                name = "%s-%s" % (arch, suffix)
                folder = os.path.join(args.out, name)
                if os.path.isdir(folder):
                    shutil.rmtree(folder)
                tdt = getattr(torch, dname)
                m = copy.deepcopy(base).to(tdt)
                m.generation_config = GenerationConfig(bos_token_id=1, eos_token_id=2)
                m.save_pretrained(folder, **save_kw)
                del m

                # stored dtype really is dname
                st = os.path.join(folder, "model.safetensors")
                hdr = read_safetensors_header(st)
                bad = {k: v["dtype"] for k, v in hdr.items() if v["dtype"] != ST_DTYPE[dname]}
                assert not bad, ("wrong stored dtype", bad)
                size = os.path.getsize(st)
                assert size < MAX_FILE_BYTES, ("model too large", size)

                # config's dtype key
                with open(os.path.join(folder, "config.json")) as f:
                    cj = json.load(f)
                natural = "rope_parameters" if "rope_parameters" in cj else "rope_scaling/rope_theta"
                dkeys = {k: cj[k] for k in ("dtype", "torch_dtype") if k in cj}
                if not dkeys or any(v != dname for v in dkeys.values()):
                    print("  WARNING: config dtype keys %r; setting dtype=%s" % (dkeys, dname))
                    cj["dtype" if tmaj >= 5 else "torch_dtype"] = dname
                    for k in dkeys:
                        cj[k] = dname
                    with open(os.path.join(folder, "config.json"), "w") as f:
                        json.dump(cj, f, indent=2, sort_keys=True)
                        f.write("\n")

                with open(os.path.join(folder, "generation_config.json")) as f:
                    gj = json.load(f)
                assert gj.get("eos_token_id") == 2 and gj.get("bos_token_id") == 1, gj

                # reference before any rewrite
                ma = load_fp32(folder)
                with torch.no_grad():
                    la = ma(input_ids=probe, use_cache=False).logits
                ra = rope_state(ma)
                del ma

                # rewrite to the chosen on-disk RoPE spelling
                want = spec["disk_rope"]
                if want == "rope_parameters" and not new_spelling_ok:
                    print("  WARNING: transformers %s < 5 cannot read rope_parameters; keeping legacy" % tv)
                    want = "rope_scaling"
                new = rope_to_legacy(cj) if want == "rope_scaling" else rope_to_new(cj)
                if want == "rope_scaling":
                    assert "rope_parameters" not in new and "rope_theta" in new and "rope_scaling" in new
                else:
                    assert "rope_parameters" in new and "rope_scaling" not in new and "rope_theta" not in new
                with open(os.path.join(folder, "config.json"), "w") as f:
                    json.dump(new, f, indent=2, sort_keys=True)
                    f.write("\n")

                # reload from disk as written; must parse identically
                mb = load_fp32(folder)
                assert type(mb).__name__ == spec["cls"], type(mb).__name__
                assert mb.config._attn_implementation == "eager", mb.config._attn_implementation
                with torch.no_grad():
                    lb = mb(input_ids=probe, use_cache=False).logits
                rb = rope_state(mb)
                assert torch.equal(ra[0], rb[0]), "inv_freq changed by rewrite"
                assert ra[1] == rb[1], ("attention_scaling changed by rewrite", ra[1], rb[1])
                if ra[2:] != rb[2:]:
                    print("  WARNING: parsed rope config differs after rewrite:\n    before %r\n    after  %r"
                          % (ra[2:], rb[2:]))
                else:
                    print("  parsed rope config identical after rewrite: %s" % (rb[2],))
                assert torch.equal(la, lb), "logits changed by rewrite"
                inv = rb[0].double().tolist()
                assert len(inv) == len(exp_inv), (len(inv), len(exp_inv))
                for a, b in zip(inv, exp_inv):
                    assert abs(a - b) <= 1e-6 * abs(b) + 1e-12, ("inv_freq mismatch", inv, exp_inv)
                assert rb[1] == 1.0, ("attention_scaling", rb[1])

                # weights == f32 weights rounded to dname
                sd = mb.state_dict()
                assert set(sd) == set(ref_sd), (sorted(set(sd) ^ set(ref_sd)))
                for k, v in ref_sd.items():
                    assert torch.equal(sd[k], v.to(tdt).to(torch.float32)), ("weight mismatch", k)
                if tied:
                    assert mb.lm_head.weight.data_ptr() == mb.model.embed_tokens.weight.data_ptr()
                    if "lm_head.weight" in hdr:
                        print("  WARNING: tied model stores lm_head.weight too")
                else:
                    assert "lm_head.weight" in hdr

                # goldens
                cases, all_margins = run_cases(mb)
                del mb

                files = sorted(os.listdir(folder))
                assert files == ["config.json", "generation_config.json", "model.safetensors"], files
                head = {
                    "model": name,
                    "transformers_version": tv,
                    "torch_version": torch.__version__,
                    "dtype": dname,
                    "compute": "float32 on CPU",
                    "rope_inv_freq": inv,
                }
                dump_golden(os.path.join(folder, "golden.json"), head, cases)

                mn, md = min(all_margins), statistics.median(all_margins)
                nsmall = sum(1 for v in all_margins if v < 0.1)
                line = ("%-12s file=%7d B  natural=%-24s disk=%-15s margins: min=%.4g median=%.4g <0.1: %d/%d"
                        % (name, size, natural, want, mn, md, nsmall, len(all_margins)))
                print(line, flush=True)
                print("  stored tensors:")
                for k in sorted(hdr):
                    print("    %-45s %-5s %s" % (k, hdr[k]["dtype"], hdr[k]["shape"]))
                print("  greedy[len 7]:", cases[2]["greedy"])
                print("  " + diversity(cases))
                summary.append(line)
        except Exception:
            traceback.print_exc()
            failures.append(arch)
            sys.stdout.flush()

    print("\n==================== summary ====================")
    print("transformers", tv, "torch", torch.__version__)
    for line in summary:
        print(line)
    if failures:
        print("FAILED:", failures)
        sys.exit(1)
    print("OK")


if __name__ == "__main__":
    main()
