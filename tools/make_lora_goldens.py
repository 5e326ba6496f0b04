#!/usr/bin/env python3
"""Make PEFT LoRA adapters for some of vllmc's golden base models, and the
reference outputs (goldens) that transformers + PEFT give with them applied.

Writes, under --out, one folder per (base model, adapter shape):
    <base>-<adapter>/adapter_config.json
                     adapter_model.safetensors
                     golden.json
and rewrites --out/README.md (only after a full run with no failure). Nothing
else goes into an adapter folder. Existing folders of the same names are
replaced; other files under --out are left alone. A folder is built in a
staging folder under --out and only moved into place once every check passed,
so a failed run leaves the old folder as it was.

Base models are read, as they are on disk, from --golden/<base>/ (made by
tools/make_goldens.py): BASES below. Adapter shapes: ADAPTERS below.

Steps for each (base, adapter):
 1. load the base folder exactly as make_goldens.py's reference does
    (AutoModelForCausalLM.from_pretrained(folder, dtype=float32,
    attn_implementation="eager"), CPU) and compute its cases, for comparison;
 2. peft.get_peft_model(base, LoraConfig(...)); check every LoRA layer's r,
    alpha, scaling and shapes against a plan computed from config.json alone;
 3. overwrite every lora_A / lora_B weight (PEFT leaves lora_B zero) with seeded
    random values, rounded to the base folder's dtype (f32/bf16/f16);
 4. check the adapter changes the outputs, and that a wrong scaling (rsLoRA,
    rank_pattern or alpha_pattern ignored, ...) would change them too;
 5. PeftModel.save_pretrained(tmp, safe_serialization=True) with the LoRA
    weights cast to the folder's dtype; keep adapter_config.json (target_modules
    sorted, base_model_name_or_path set) and adapter_model.safetensors; check
    the tensor names, shapes, dtypes and values in the file;
 6. load the base from disk again + PeftModel.from_pretrained(folder); check
    its LoRA weights and logits equal the in-memory model's; compute the
    reference outputs with it (f32 compute, eager attention, no KV cache, a
    full forward over prompt + generated tokens at each greedy step, EOS
    ignored): the same prompts, STEPS and golden.json layout as make_goldens.py
    (its make_prompts, reference_cases and dump_golden), plus top-level "base",
    "adapter" and "peft_version".

Needs torch, transformers, peft and safetensors (imported only when needed).
--check-only runs the parts that need none of them (prompts, seeds, plans,
file layout, README rendering) and writes nothing.

Usage: PYTHONUNBUFFERED=1 python3 tools/make_lora_goldens.py --golden tests/golden --out tests/golden/lora
"""

import argparse
import contextlib
import inspect
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
import make_goldens as mg  # noqa: E402  (pure at import: constants and functions)

# Base folders under --golden: llama has q/k/v/o and MLP biases and tied
# embeddings; qwen2 has q/k/v biases; qwen3 has q_norm/k_norm and a q
# projection wider than hidden (4 heads x 32).
BASES = ["llama-f32", "qwen2-bf16", "qwen3-f16"]
BASE_NOTES = {
    "llama-f32": "q/k/v/o and MLP biases, tied lm_head, GQA",
    "qwen2-bf16": "q/k/v biases",
    "qwen3-f16": "q_norm/k_norm, head_dim 32 so q_proj is 128 wide and o_proj's input is too",
}

ATTN_MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")
MLP_MODULES = ("gate_proj", "up_proj", "down_proj")
ALL7 = list(ATTN_MODULES + MLP_MODULES)

# rank_pattern / alpha_pattern keys here are plain module names (PEFT matches
# them as regexes against the module path; a plain name matches that module).
ADAPTERS = {
    "all7": dict(
        target_modules=ALL7,
        r=8,
        lora_alpha=16,
        use_rslora=False,
        rank_pattern={"down_proj": 4},
        alpha_pattern={"o_proj": 32},
    ),
    "qv_rs": dict(
        target_modules=["q_proj", "v_proj"],
        r=4,
        lora_alpha=8,
        use_rslora=True,
        rank_pattern={},
        alpha_pattern={},
    ),
}

ADAPTER_NAME = "default"  # PEFT's adapter name in memory (not stored in the file's keys)
KEY_PREFIX = "base_model.model.model.layers."
ADAPTER_FILES = ["adapter_config.json", "adapter_model.safetensors"]
FOLDER_FILES = sorted(ADAPTER_FILES + ["golden.json"])

# Seeds: LORA_SEED * 1000003 + crc32("<base>/<adapter>/<stored tensor name>")
# (make_goldens.py seeds base parameters as arch seed * 1000003 + crc32(name)).
LORA_SEED = 5005
# lora_A [r, in] ~ N(0,1)/sqrt(in); lora_B [out, r] ~ N(0,1)/sqrt(r) * B_GAIN * g / scaling,
# g = OUT_GAIN for o_proj/down_proj (their base weights carry it too), else 1.
# Then scaling * B @ A has entries of spread B_GAIN * g / sqrt(in): B_GAIN times
# that of the base weight it is added to, whatever r, alpha and rsLoRA are.
# These tiny random models are sensitive: with --scan (torch 2.11, transformers
# 5.17), B_GAIN 0.1 changed the logits by 0.29-0.38 x the base logits (RMS) for
# all7 and 0.14-0.20 x for qv_rs, and greedy tokens differed from the base's
# within the first steps; 0.5 gave about 1.0 x for all7 (the adapter swamped
# the base).
B_GAIN = 0.1
SCAN_GAINS = (0.05, 0.1, 0.15, 0.2, 0.3, 0.5)
# The adapter must move some step-0 log-probability of every prompt by at least
# this much (the golden test's tolerance is 1e-3 for f32, 3e-2 for f16/bf16), and
# so must each wrong scaling from wrong_scalings() for at least one prompt.
VISIBLE_MIN = 0.05
# Reloaded-from-disk vs in-memory logits.
RELOAD_TOL = 1e-6
# Warn when the adapter's change of the logits (RMS) is over this fraction of the base logits.
SWAMP_WARN = 0.5


class CheckError(Exception):
    pass


def check(cond, *msg):
    if not cond:
        raise CheckError(" ".join(str(m) for m in msg))


# ---------------------------------------------------------------- pure helpers
# (no torch: these run with --check-only)

def pairs(only=""):
    want = [x for x in only.split(",") if x]
    out = []
    for base in BASES:
        for adapter in ADAPTERS:
            name = folder_name(base, adapter)
            if not want or base in want or adapter in want or name in want:
                out.append((base, adapter))
    return out


def folder_name(base, adapter):
    return "%s-%s" % (base, adapter)


def base_dtype(base):
    """'qwen2-bf16' -> 'bfloat16' (the stored dtype named by the folder suffix)."""
    suffix = base.rsplit("-", 1)[-1]
    d = dict(mg.DTYPES)
    check(suffix in d, "base folder %r: unknown dtype suffix %r" % (base, suffix))
    return d[suffix]


def module_dims(cfg):
    """config.json dict -> {module: (submodule, in_features, out_features)}."""
    h = cfg["hidden_size"]
    nh = cfg["num_attention_heads"]
    nkv = cfg.get("num_key_value_heads") or nh
    hd = cfg.get("head_dim") or h // nh
    inter = cfg["intermediate_size"]
    return {
        "q_proj": ("self_attn", h, nh * hd),
        "k_proj": ("self_attn", h, nkv * hd),
        "v_proj": ("self_attn", h, nkv * hd),
        "o_proj": ("self_attn", nh * hd, h),
        "gate_proj": ("mlp", h, inter),
        "up_proj": ("mlp", h, inter),
        "down_proj": ("mlp", inter, h),
    }


def lora_scaling(alpha, r, rslora):
    return alpha / math.sqrt(r) if rslora else alpha / r


def module_rank_alpha(spec, module):
    r = spec["rank_pattern"].get(module, spec["r"])
    alpha = spec["alpha_pattern"].get(module, spec["lora_alpha"])
    return r, alpha, lora_scaling(alpha, r, spec["use_rslora"])


def validate_spec(spec):
    mods = spec["target_modules"]
    check(len(set(mods)) == len(mods) and set(mods) <= set(ALL7), "bad target_modules", mods)
    for pat in ("rank_pattern", "alpha_pattern"):
        for k in spec[pat]:
            check(k in mods, "%s key %r is not a target module" % (pat, k))


def lora_plan(cfg, spec):
    """Every LoRA layer the adapter must have, from config.json and the spec alone."""
    validate_spec(spec)
    dims = module_dims(cfg)
    plan = []
    for layer in range(cfg["num_hidden_layers"]):
        for mod in spec["target_modules"]:
            sub, fin, fout = dims[mod]
            r, alpha, scaling = module_rank_alpha(spec, mod)
            plan.append(dict(
                module="%s%d.%s.%s" % (KEY_PREFIX, layer, sub, mod),
                base_weight="model.layers.%d.%s.%s.weight" % (layer, sub, mod),
                name=mod, layer=layer, in_features=fin, out_features=fout,
                r=r, alpha=alpha, scaling=scaling,
                out_gain=mg.OUT_GAIN if mod in ("o_proj", "down_proj") else 1.0,
            ))
    return plan


def expected_tensors(plan, dname):
    """Stored tensor name -> (safetensors dtype, shape, plan entry, 'A' | 'B')."""
    st = mg.ST_DTYPE[dname]
    out = {}
    for e in plan:
        out[e["module"] + ".lora_A.weight"] = (st, [e["r"], e["in_features"]], e, "A")
        out[e["module"] + ".lora_B.weight"] = (st, [e["out_features"], e["r"]], e, "B")
    return out


def saved_key(param_name, adapter_name=ADAPTER_NAME):
    """In-memory PEFT parameter name -> the name save_pretrained stores it under
    (PEFT drops the adapter name): '...q_proj.lora_A.default.weight' -> '...q_proj.lora_A.weight'."""
    for ab in ("lora_A", "lora_B"):
        mid = ".%s.%s." % (ab, adapter_name)
        if param_name.endswith(mid + "weight"):
            return param_name[: -len(mid + "weight")] + ".%s.weight" % ab
    raise CheckError("unexpected LoRA parameter %r (only lora_A/lora_B .%s.weight expected)"
                     % (param_name, adapter_name))


def lora_seed(base, adapter, key):
    return LORA_SEED * 1000003 + zlib.crc32(("%s/%s/%s" % (base, adapter, key)).encode())


def lora_std(entry, which, b_gain=B_GAIN):
    if which == "A":
        return 1.0 / math.sqrt(entry["in_features"])
    return b_gain * entry["out_gain"] / (math.sqrt(entry["r"]) * entry["scaling"])


def wrong_scalings(spec, plan):
    """[(label, {module path: scaling})]: scalings a wrong implementation might use."""
    out = [("every scaling x0.5", {e["module"]: e["scaling"] * 0.5 for e in plan})]
    rs = spec["use_rslora"]
    for mod in spec["rank_pattern"]:
        out.append(("rank_pattern ignored for %s's scaling (global r=%d)" % (mod, spec["r"]),
                    {e["module"]: lora_scaling(e["alpha"], spec["r"], rs) for e in plan if e["name"] == mod}))
    for mod in spec["alpha_pattern"]:
        out.append(("alpha_pattern ignored for %s (global alpha=%g)" % (mod, spec["lora_alpha"]),
                    {e["module"]: lora_scaling(spec["lora_alpha"], e["r"], rs) for e in plan if e["name"] == mod}))
    if rs:
        out.append(("use_rslora ignored (alpha/r)", {e["module"]: e["alpha"] / e["r"] for e in plan}))
    else:
        out.append(("rsLoRA wrongly applied (alpha/sqrt(r))",
                    {e["module"]: e["alpha"] / math.sqrt(e["r"]) for e in plan}))
    scal = {e["module"]: e["scaling"] for e in plan}
    for label, ov in out:
        check(ov and any(abs(v - scal[m]) > 1e-9 * scal[m] for m, v in ov.items()),
              "wrong scaling %r equals the right one" % label)
    return out


def wrong_scaling_labels(spec):
    cfg = {"hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 96, "num_hidden_layers": 1}
    return [lab for lab, _ in wrong_scalings(spec, lora_plan(cfg, spec))]


LORA_CONFIG_REQUIRED = ("r", "lora_alpha", "target_modules", "lora_dropout", "bias", "use_rslora",
                        "rank_pattern", "alpha_pattern", "task_type", "init_lora_weights")


def lora_config_kwargs(spec):
    """Keyword arguments for peft.LoraConfig (those in LORA_CONFIG_REQUIRED must exist
    in the installed peft; fan_in_fan_out/use_dora/lora_bias are passed where they exist)."""
    return dict(
        r=spec["r"],
        lora_alpha=spec["lora_alpha"],
        target_modules=list(spec["target_modules"]),
        lora_dropout=0.0,
        bias="none",
        use_rslora=spec["use_rslora"],
        rank_pattern=dict(spec["rank_pattern"]),
        alpha_pattern=dict(spec["alpha_pattern"]),
        task_type="CAUSAL_LM",
        init_lora_weights=True,
        fan_in_fan_out=False,
        use_dora=False,
        lora_bias=False,
    )


def base_ref(base_dir):
    """base_model_name_or_path written into adapter_config.json: the base folder
    relative to the working directory (tests/golden/<base> for the usage line)."""
    p = os.path.relpath(base_dir)
    if p.startswith(".."):
        p = os.path.basename(os.path.normpath(base_dir))
    return p.replace(os.sep, "/")


def normalize_adapter_config(d, ref):
    """PEFT writes target_modules from a set (order varies run to run): sort it,
    and set base_model_name_or_path to `ref`. Nothing else is changed."""
    d = dict(d)
    for k in ("target_modules", "exclude_modules"):
        if isinstance(d.get(k), list) and all(isinstance(x, str) for x in d[k]):
            d[k] = sorted(d[k])
    d["base_model_name_or_path"] = ref
    return d


def adapter_config_text(d):
    return json.dumps(d, indent=2, sort_keys=True) + "\n"  # PEFT's own layout, plus a newline


def check_adapter_config(d, spec):
    """adapter_config.json dict -> list of problems (empty if it says what spec says)."""
    bad = []

    def want(k, v, missing_ok=False, default=None):
        if k not in d:
            if not missing_ok:
                bad.append("%s missing" % k)
            elif default != v:
                bad.append("%s missing (want %r)" % (k, v))
            return
        if d[k] != v:
            bad.append("%s=%r, want %r" % (k, d[k], v))

    want("peft_type", "LORA")
    want("task_type", "CAUSAL_LM")
    want("r", spec["r"])
    want("lora_alpha", spec["lora_alpha"])
    want("use_rslora", spec["use_rslora"])
    want("rank_pattern", spec["rank_pattern"])
    want("alpha_pattern", spec["alpha_pattern"])
    want("bias", "none")
    want("lora_dropout", 0.0)
    want("fan_in_fan_out", False, missing_ok=True, default=False)
    want("use_dora", False, missing_ok=True, default=False)
    want("lora_bias", False, missing_ok=True, default=False)
    tm = d.get("target_modules")
    if not isinstance(tm, list) or sorted(tm) != sorted(spec["target_modules"]):
        bad.append("target_modules=%r, want %r" % (tm, sorted(spec["target_modules"])))
    for k in ("modules_to_save", "layers_to_transform", "layers_pattern", "trainable_token_indices",
              "target_parameters", "layer_replication"):
        if d.get(k) not in (None, [], {}):
            bad.append("%s=%r, want unset" % (k, d[k]))
    return bad


def golden_head(base, adapter, dname, versions, inv):
    return {
        "model": folder_name(base, adapter),
        "base": base,
        "adapter": adapter,
        "transformers_version": versions["transformers"],
        "torch_version": versions["torch"],
        "peft_version": versions["peft"],
        "dtype": dname,
        "compute": "float32 on CPU",
        "rope_inv_freq": inv,
    }


def first_diff_steps(cases, base_cases):
    """Per case: the first step whose greedy token differs from the base model's, or None."""
    out = []
    for c, b in zip(cases, base_cases):
        d = [i for i, (x, y) in enumerate(zip(c["greedy"], b["greedy"])) if x != y]
        out.append(d[0] if d else None)
    return out


def max_abs_diff(a, b):
    check(len(a) == len(b), "length mismatch", len(a), len(b))
    return max((abs(x - y) for x, y in zip(a, b)), default=0.0)


def margin_stats(margins):
    return (min(margins), statistics.median(margins), sum(1 for v in margins if v < 0.1), len(margins))


def fmt_g(x, digits=2):
    """Short number for tables: 0.0063, 1.8, 12."""
    if x == 0:
        return "0"
    return "%.*g" % (digits, x)


def estimate_adapter_bytes(tensors):
    size = {"F32": 4, "F16": 2, "BF16": 2}
    data = sum(size[st] * math.prod(shape) for st, shape, _, _ in tensors.values())
    return data + 8 + 200 * len(tensors)  # header: about 200 bytes a tensor


def shape_text(spec):
    mods = spec["target_modules"]
    short = ", ".join(m.replace("_proj", "") for m in mods)
    pats = []
    for k, v in spec["rank_pattern"].items():
        pats.append("rank_pattern `{%s: %d}`" % (k, v))
    for k, v in spec["alpha_pattern"].items():
        pats.append("alpha_pattern `{%s: %g}`" % (k, v))
    return short, ", ".join(pats) or "none"


def scaling_text(spec):
    rs = spec["use_rslora"]
    main = "%g (%g/%s%d)" % (lora_scaling(spec["lora_alpha"], spec["r"], rs), spec["lora_alpha"],
                             "sqrt " if rs else "", spec["r"])
    extra = []
    for mod in spec["target_modules"]:
        r, alpha, sc = module_rank_alpha(spec, mod)
        if (r, alpha) != (spec["r"], spec["lora_alpha"]):
            extra.append("%s %g (%g/%s%d)" % (mod, sc, alpha, "sqrt " if rs else "", r))
    return "; ".join([main] + extra)


def render_readme(info):
    """info: versions, b_gain, rows (one per folder, in pairs() order), see main()."""
    v = info["versions"]
    rows = info["rows"]
    L = []
    a = L.append
    a("# LoRA adapters and reference outputs")
    a("")
    a("PEFT LoRA adapters for three of the golden base models in `..`, with the greedy")
    a("outputs and logprobs that transformers + PEFT give with each adapter applied.")
    a("A test loads the base folder `tests/golden/<base>` and the adapter folder the way")
    a("it would load a real checkpoint and adapter, and compares its results with")
    a("`golden.json`, exactly as for the base models (same prompts, steps and layout).")
    a("")
    a("Made by `tools/make_lora_goldens.py` with peft %s, transformers %s, torch %s and"
      % (v["peft"], v["transformers"], v["torch"]))
    a("safetensors %s (on CPU, Python %s)." % (v["safetensors"], v["python"]))
    a("")
    a("## Folders")
    a("")
    a("%d folders, `<base>-<adapter>`: bases %s, adapters %s."
      % (len(rows), ", ".join("`%s`" % b for b in BASES), ", ".join("`%s`" % x for x in ADAPTERS)))
    a("Every folder holds these three files and nothing else. The bases cover the")
    a("three stored dtypes and these features: %s." % "; ".join("`%s`: %s" % kv for kv in BASE_NOTES.items()))
    a("")
    a("| file | contents |")
    a("| --- | --- |")
    a("| `adapter_config.json` | written by `PeftModel.save_pretrained`; then `target_modules` sorted (PEFT writes it from a set, in no fixed order) and `base_model_name_or_path` set to `tests/golden/<base>` |")
    a("| `adapter_model.safetensors` | `base_model.model.model.layers.<i>.{self_attn,mlp}.<module>.lora_A.weight` [r, in] and `...lora_B.weight` [out, r] for each layer and target module, in the base folder's dtype (F32 / BF16 / F16); no other tensors |")
    a("| `golden.json` | reference outputs (below) |")
    a("")
    a("Adapter shapes (`lora_dropout` 0, `bias` \"none\", no DoRA, `task_type` CAUSAL_LM):")
    a("")
    a("| adapter | target_modules | r | lora_alpha | use_rslora | patterns | scaling |")
    a("| --- | --- | --- | --- | --- | --- | --- |")
    for name, spec in ADAPTERS.items():
        short, pats = shape_text(spec)
        a("| %s | %s | %d | %g | %s | %s | %s |" % (name, short, spec["r"], spec["lora_alpha"],
                                                   "true" if spec["use_rslora"] else "false", pats,
                                                   scaling_text(spec)))
    a("")
    a("scaling is `lora_alpha / r`, or `lora_alpha / sqrt(r)` with `use_rslora`; the output of a")
    a("target module is `base(x) + scaling * lora_B(lora_A(x))`.")
    a("")
    a("| folder | base (stored dtype) | LoRA tensors | adapter_model.safetensors |")
    a("| --- | --- | --- | --- |")
    for r in rows:
        a("| %s | %s (%s) | %d | %d bytes |" % (r["folder"], r["base"], r["dtype"], r["ntensors"], r["bytes"]))
    a("")
    a("## Weights")
    a("")
    a("PEFT's own initialisation leaves lora_B at zero, so the script overwrites every")
    a("lora_A and lora_B. Each is drawn with a `torch.Generator` seeded with")
    a("`%d * 1000003 + crc32(\"<base>/<adapter>/<tensor name>\")`, the tensor name as" % LORA_SEED)
    a("stored in the file:")
    a("- lora_A [r, in]: N(0,1)/sqrt(in).")
    a("- lora_B [out, r]: N(0,1)/sqrt(r) * %g * g / scaling, with g = %g for o_proj and" % (info["b_gain"], mg.OUT_GAIN))
    a("  down_proj (their base weights carry the same gain) and 1 otherwise.")
    a("")
    a("So the added weight `scaling * B @ A` has entries with %g times the spread of the" % info["b_gain"])
    a("base weight it is added to: the adapter changes the outputs clearly, and the base")
    a("weights still dominate. The values are rounded (nearest-even) to the folder's dtype")
    a("before anything is computed, so the reference uses exactly the stored values.")
    a("")
    a("## golden.json")
    a("")
    a("The same layout as the base models' (see `../README.md`), with three more fields:")
    a("")
    a("```")
    a('{"model": "llama-f32-all7", "base": "llama-f32", "adapter": "all7",')
    a(' "transformers_version": "%s", "torch_version": "%s", "peft_version": "%s",'
      % (v["transformers"], v["torch"], v["peft"]))
    a(' "dtype": "<the base folder\'s dtype>", "compute": "float32 on CPU",')
    a(' "rope_inv_freq": [the base model\'s inv_freq buffer],')
    a(' "cases": [{"prompt": [ids], "greedy": [%d ids], "margins": [%d floats], "first_logprobs": [%d floats]}, ...]}'
      % (mg.STEPS, mg.STEPS, mg.VOCAB))
    a("```")
    a("")
    a("The %d prompts are the base models' (lengths %s)." % (len(mg.PROMPT_LENS), ", ".join(map(str, mg.PROMPT_LENS))))
    a("`dtype` is the base folder's stored dtype, which is also the adapter's.")
    a("")
    a("How the reference outputs were computed:")
    a("- Loading: the base folder with `AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation=\"eager\")`, then `PeftModel.from_pretrained(base, adapter_folder)`. On CPU with one thread, `eval()`, `no_grad`, deterministic algorithms. The outputs come from the adapter as loaded back from its folder, and they were checked against the model that wrote it (same logits on a 40-token prompt, within %g)." % RELOAD_TOL)
    a("- Compute: float32 throughout. f16/bf16 base and adapter weights are upcast exactly. PEFT adds `scaling * lora_B(lora_A(x))` to each target module's output, without merging.")
    a("- `greedy`, `margins`, `first_logprobs`: as for the base models (make_goldens.py's `reference_cases`): %d steps, each a full forward over prompt + tokens so far with no KV cache, EOS ignored; margins are top-1 minus top-2 logit; `first_logprobs` is `log_softmax` of step 0's logits in float64." % mg.STEPS)
    a("")
    a("Margins over all %d steps of each folder, and how far the adapter moves the outputs:" % (len(mg.PROMPT_LENS) * mg.STEPS))
    a("")
    a("| folder | margin min | median | steps < 0.1 | first step whose greedy token differs from the base's, per prompt | smallest per-prompt max \\|step-0 logprob change\\| | smallest change from a wrong scaling | logit change / base logits (RMS) |")
    a("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        mn, md, ns, _ = r["margins"]
        fd = ", ".join("-" if x is None else str(x) for x in r["first_diff"])
        a("| %s | %s | %s | %d | %s | %s | %s | %s |" % (r["folder"], fmt_g(mn), fmt_g(md, 3), ns, fd,
                                                       fmt_g(r["visible_min"]), fmt_g(r["wrong_min"]),
                                                       fmt_g(r["ratio"])))
    a("")
    a("A step with a small margin can flip under a different but correct summation")
    a("order: a test should stop comparing a sequence at such a step, as the base")
    a("golden test does.")
    a("")
    a("Wrong scalings tried (each must move some step-0 logprob by at least %g):" % VISIBLE_MIN)
    for name, spec in ADAPTERS.items():
        a("- %s: %s." % (name, "; ".join(wrong_scaling_labels(spec))))
    a("")
    a("## Regenerating")
    a("")
    a("This needs torch, transformers, peft and safetensors, and the base folders in")
    a("`tests/golden`. No GPU is used; it takes seconds. From the repository root:")
    a("")
    a("```")
    a("PYTHONUNBUFFERED=1 python3 tools/make_lora_goldens.py --golden tests/golden --out tests/golden/lora")
    a("```")
    a("")
    a("The script replaces the %d folders and rewrites this README. It exits non-zero" % len(rows))
    a("if a check fails, and then leaves the old folder in place. The checks are:")
    a("- every LoRA layer PEFT made has the planned r, alpha, scaling and shapes;")
    a("- the adapter moves every prompt's step-0 logprobs by at least %g, and so does each wrong scaling above for some prompt;" % VISIBLE_MIN)
    a("- the stored tensors have exactly the planned names, shapes and dtype, and hold the values used for the reference;")
    a("- `adapter_config.json` says what was asked;")
    a("- loaded back (base from disk + `PeftModel.from_pretrained`), the adapter has the same weights and gives the same logits;")
    a("- every file is under 1 MB, and the folder holds exactly the expected files.")
    a("")
    a("`--only` takes comma-separated bases, adapters or folder names and makes the folders")
    a("that any of them names (and leaves this README alone).")
    a("`--scan` prints margin and adapter-effect statistics for lora_B gains %s and saves" % ", ".join("%g" % g for g in SCAN_GAINS))
    a("nothing. `--check-only` runs the parts that need no torch. Another peft,")
    a("transformers or torch version can change the last bits of the outputs. Record the")
    a("versions when regenerating.")
    return "\n".join(L) + "\n"


# ---------------------------------------------------------------- --check-only

def check_only(args):
    """Everything that needs no torch; writes nothing."""
    print("check-only: no torch, nothing written")
    prompts = mg.make_prompts()
    check([len(p) for p in prompts] == mg.PROMPT_LENS, "prompt lengths", [len(p) for p in prompts])
    check(prompts == mg.make_prompts(), "prompts not deterministic")
    check(all(3 <= t < mg.VOCAB for p in prompts[1:] for t in p) and prompts[0] == [1], "prompt ids")
    print("prompts: lengths %s" % [len(p) for p in prompts])

    # saved_key
    k = saved_key(KEY_PREFIX + "0.self_attn.q_proj.lora_A.default.weight")
    check(k == KEY_PREFIX + "0.self_attn.q_proj.lora_A.weight", k)
    k = saved_key(KEY_PREFIX + "1.mlp.down_proj.lora_B.default.weight")
    check(k == KEY_PREFIX + "1.mlp.down_proj.lora_B.weight", k)
    for badname in (KEY_PREFIX + "0.mlp.down_proj.lora_B.default.bias",
                    KEY_PREFIX + "0.mlp.down_proj.lora_magnitude_vector.default.weight",
                    KEY_PREFIX + "0.mlp.down_proj.lora_A.other.weight"):
        try:
            saved_key(badname)
        except CheckError:
            pass
        else:
            raise CheckError("saved_key accepted %r" % badname)

    all_seeds = {}
    rows = []
    for base, adapter in pairs(args.only):
        spec = ADAPTERS[adapter]
        name = folder_name(base, adapter)
        base_dir = os.path.join(args.golden, base)
        dname = base_dtype(base)
        with open(os.path.join(base_dir, "config.json")) as f:
            cfg = json.load(f)
        check(cfg.get("dtype", cfg.get("torch_dtype")) == dname, base, "config dtype", cfg.get("dtype"), dname)
        plan = lora_plan(cfg, spec)
        tensors = expected_tensors(plan, dname)
        check(len(tensors) == 2 * cfg["num_hidden_layers"] * len(spec["target_modules"]), "tensor count")

        # plan dims agree with the base weights as stored
        hdr = mg.read_safetensors_header(os.path.join(base_dir, "model.safetensors"))
        for e in plan:
            check(e["base_weight"] in hdr, base, "has no", e["base_weight"])
            check(hdr[e["base_weight"]]["shape"] == [e["out_features"], e["in_features"]], base, e["base_weight"],
                  hdr[e["base_weight"]]["shape"], "planned", [e["out_features"], e["in_features"]])
            check(hdr[e["base_weight"]]["dtype"] == mg.ST_DTYPE[dname], base, "stored dtype")

        # the base golden's prompts are ours
        gpath = os.path.join(base_dir, "golden.json")
        if os.path.exists(gpath):
            with open(gpath) as f:
                g = json.load(f)
            check([c["prompt"] for c in g["cases"]] == prompts, base, "golden.json prompts differ")
            check(all(len(c["greedy"]) == mg.STEPS for c in g["cases"]), base, "golden.json steps")
            check(g.get("dtype") == dname, base, "golden.json dtype", g.get("dtype"))
        else:
            print("  note: %s missing (prompt cross-check skipped)" % gpath)

        # seeds: deterministic, distinct, in range for torch.Generator.manual_seed
        for key in tensors:
            s = lora_seed(base, adapter, key)
            check(s == lora_seed(base, adapter, key) and 0 <= s < 2 ** 63, "seed", key)
            check(s not in all_seeds, "seed collision", key, all_seeds.get(s))
            all_seeds[s] = (name, key)

        # stds finite and positive; the effective added weight has B_GAIN x the base spread
        for key, (_, _, e, which) in tensors.items():
            check(lora_std(e, which) > 0, key)
        for e in plan:
            eff = e["scaling"] * lora_std(e, "B") * lora_std(e, "A") * math.sqrt(e["r"])
            want = B_GAIN * e["out_gain"] / math.sqrt(e["in_features"])
            check(abs(eff - want) <= 1e-12 * want, "effective spread", e["module"], eff, want)

        wrong = wrong_scalings(spec, plan)

        # adapter_config checker: accepts what LoraConfig would write, rejects a change
        kw = lora_config_kwargs(spec)
        check(set(LORA_CONFIG_REQUIRED) <= set(kw), "LoraConfig kwargs")
        fake = dict(kw, peft_type="LORA", target_modules=list(reversed(kw["target_modules"])),
                    modules_to_save=None, layers_to_transform=None, base_model_name_or_path="/abs/x")
        probs = check_adapter_config(fake, spec)
        check(not probs, "adapter_config checker rejects a good config", probs)
        norm = normalize_adapter_config(fake, base_ref(base_dir))
        check(norm["target_modules"] == sorted(spec["target_modules"]), "normalize")
        check(not norm["base_model_name_or_path"].startswith("/"), "base ref", norm["base_model_name_or_path"])
        check(json.loads(adapter_config_text(norm)) == norm, "adapter_config text")
        for mut in ({"r": spec["r"] * 2}, {"use_rslora": not spec["use_rslora"]}, {"rank_pattern": {"k_proj": 2}},
                    {"alpha_pattern": {"q_proj": 99}}, {"target_modules": ["q_proj"]}, {"modules_to_save": ["lm_head"]}):
            check(check_adapter_config(dict(fake, **mut), spec), "checker accepted", mut)

        est = estimate_adapter_bytes(tensors)
        check(est < mg.MAX_FILE_BYTES, name, "adapter too large", est)
        scal = sorted({(e["name"], e["r"], e["alpha"], round(e["scaling"], 6)) for e in plan})
        print("%-22s dtype=%-8s tensors=%2d ~%6d B  base=%s  (module, r, alpha, scaling)=%s"
              % (name, dname, len(tensors), est, base_ref(base_dir), scal))
        for lab, ov in wrong:
            print("    wrong scaling: %s (%d modules)" % (lab, len(ov)))
        rows.append(dict(folder=name, base=base, dtype=dname, ntensors=len(tensors), bytes=est,
                         margins=(0.01, 1.5, 3, 144), first_diff=[0, None, 3, 1, 0, 2],
                         visible_min=0.5, wrong_min=0.2, ratio=0.3))

    # output layout planning
    out = args.out
    print("layout: %s/{%s}/{%s} + %s/README.md"
          % (out, ",".join(r["folder"] for r in rows), ",".join(FOLDER_FILES), out))
    check(len({r["folder"] for r in rows}) == len(rows), "folder names collide")
    check(all(r["folder"] not in ("README.md",) for r in rows), "folder name")

    # golden.json written by make_goldens.dump_golden with our head, read back
    versions = {"transformers": "X.Y", "torch": "X.Y", "peft": "X.Y", "safetensors": "X.Y",
                "python": sys.version.split()[0]}
    with tempfile.TemporaryDirectory() as td:
        head = golden_head("llama-f32", "all7", "float32", versions, [1.0, 0.5])
        cases = [{"prompt": p, "greedy": [5] * mg.STEPS, "margins": [0.25] * mg.STEPS,
                  "first_logprobs": [-math.log(mg.VOCAB)] * mg.VOCAB} for p in prompts]
        path = os.path.join(td, "golden.json")
        mg.dump_golden(path, head, cases)
        with open(path) as f:
            g = json.load(f)
        check(list(g)[:len(head)] == list(head) and g["cases"] == cases, "golden.json round trip")
        for k in ("base", "adapter", "peft_version", "dtype", "model"):
            check(k in g, "golden.json lacks", k)
        size = os.path.getsize(path)
        check(size < mg.MAX_FILE_BYTES, "golden.json size", size)
        print("golden.json layout OK (%d bytes with dummy values)" % size)

    text = render_readme({"versions": versions, "b_gain": B_GAIN, "rows": rows})
    for r in rows:
        check(r["folder"] in text, "README lacks", r["folder"])
    print("README renders: %d lines" % text.count("\n"))
    if args.print_readme:
        print(text)

    for mod in ("torch", "transformers", "peft", "safetensors"):
        check(mod not in sys.modules, mod, "was imported")
    print("check-only OK")


# ---------------------------------------------------------------- torch part

def lora_layers(peft_model):
    """module path -> PEFT LoRA layer."""
    try:
        from peft.tuners.lora import LoraLayer
    except Exception as e:
        raise CheckError("cannot import peft.tuners.lora.LoraLayer (%s): this script needs a peft with it" % e)
    return {n: m for n, m in peft_model.named_modules() if isinstance(m, LoraLayer)}


def check_lora_layers(layers, plan):
    import torch

    want = {e["module"]: e for e in plan}
    check(set(layers) == set(want), "LoRA layers differ from the plan: missing %s, extra %s"
          % (sorted(set(want) - set(layers)), sorted(set(layers) - set(want))))
    for name, e in want.items():
        m = layers[name]
        for attr in ("r", "lora_alpha", "scaling", "lora_A", "lora_B"):
            check(hasattr(m, attr) and ADAPTER_NAME in getattr(m, attr),
                  name, "has no %s[%r]: unknown PEFT LoRA layer layout" % (attr, ADAPTER_NAME))
        r, alpha, sc = m.r[ADAPTER_NAME], m.lora_alpha[ADAPTER_NAME], m.scaling[ADAPTER_NAME]
        check(r == e["r"], name, "r", r, "want", e["r"])
        check(alpha == e["alpha"], name, "lora_alpha", alpha, "want", e["alpha"])
        check(abs(sc - e["scaling"]) <= 1e-12 * e["scaling"], name, "scaling", sc, "want", e["scaling"])
        A, B = m.lora_A[ADAPTER_NAME], m.lora_B[ADAPTER_NAME]
        check(isinstance(A, torch.nn.Linear) and isinstance(B, torch.nn.Linear), name, "lora_A/B not Linear")
        check(A.bias is None and B.bias is None, name, "lora_A/B have a bias")
        check(tuple(A.weight.shape) == (e["r"], e["in_features"]), name, "lora_A", tuple(A.weight.shape))
        check(tuple(B.weight.shape) == (e["out_features"], e["r"]), name, "lora_B", tuple(B.weight.shape))
        bl = m.get_base_layer() if hasattr(m, "get_base_layer") else m.base_layer
        check(tuple(bl.weight.shape) == (e["out_features"], e["in_features"]), name, "base", tuple(bl.weight.shape))
        if hasattr(m, "use_dora"):
            check(not m.use_dora.get(ADAPTER_NAME, False), name, "uses DoRA")
        if hasattr(m, "lora_dropout") and ADAPTER_NAME in m.lora_dropout:
            d = m.lora_dropout[ADAPTER_NAME]
            check(isinstance(d, torch.nn.Identity) or getattr(d, "p", 0) == 0, name, "dropout", d)
        if hasattr(m, "merged"):
            check(not m.merged, name, "is merged")
        if hasattr(m, "disable_adapters"):
            check(not m.disable_adapters, name, "adapters disabled")


def lora_params(peft_model, tensors):
    """stored name -> in-memory Parameter; every LoRA parameter must be a planned tensor."""
    out = {}
    for n, p in peft_model.named_parameters():
        if "lora_" not in n:
            continue
        k = saved_key(n)
        check(k not in out, "two parameters map to", k)
        out[k] = p
    check(set(out) == set(tensors), "LoRA parameters differ from the plan: missing %s, extra %s"
          % (sorted(set(tensors) - set(out))[:4], sorted(set(out) - set(tensors))[:4]))
    return out


def init_lora(params, tensors, base, adapter, tdt, b_gain):
    """Seeded random lora_A/lora_B, rounded to tdt, copied into the (float32) parameters."""
    import torch

    values = {}
    with torch.no_grad():
        for key in sorted(params):
            p = params[key]
            check(p.dtype == torch.float32, key, "in-memory dtype", p.dtype)
            _, shape, e, which = tensors[key]
            check(list(p.shape) == shape, key, "shape", list(p.shape), shape)
            g = torch.Generator().manual_seed(lora_seed(base, adapter, key))
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            v = (r * lora_std(e, which, b_gain)).to(tdt).to(torch.float32)
            p.copy_(v)
            values[key] = v.clone()
    return values


def rms_ratio(a, b):
    """RMS(a - b) / RMS(b)."""
    return float((a - b).double().pow(2).mean().sqrt() / b.double().pow(2).mean().sqrt())


def step0_logprobs(model, prompts):
    import torch

    out = []
    with torch.no_grad():
        for p in prompts:
            logits = model(input_ids=torch.tensor([p], dtype=torch.long), use_cache=False).logits[0, -1]
            out.append(torch.log_softmax(logits.double(), dim=-1))
    return out


@contextlib.contextmanager
def scalings_set(layers, overrides):
    saved = {}
    try:
        for name, v in overrides.items():
            saved[name] = layers[name].scaling[ADAPTER_NAME]
            layers[name].scaling[ADAPTER_NAME] = v
        yield
    finally:
        for name, v in saved.items():
            layers[name].scaling[ADAPTER_NAME] = v


def versions_now():
    import peft
    import safetensors
    import torch
    import transformers

    return {"transformers": transformers.__version__, "torch": torch.__version__, "peft": peft.__version__,
            "safetensors": getattr(safetensors, "__version__", "unknown"), "python": sys.version.split()[0]}


def make_lora_config(spec):
    import dataclasses

    from peft import LoraConfig

    names = {f.name for f in dataclasses.fields(LoraConfig)}
    missing = [k for k in LORA_CONFIG_REQUIRED if k not in names]
    check(not missing, "this peft's LoraConfig lacks %s (rank_pattern/alpha_pattern need peft >= 0.7, "
          "use_rslora >= 0.7)" % missing)
    kw = {k: v for k, v in lora_config_kwargs(spec).items() if k in names}
    return LoraConfig(**kw)


def adapted(base_dir, base, adapter, plan, tensors, tdt, b_gain):
    """Base from disk + get_peft_model + seeded weights: (peft model, layers, params, values)."""
    from peft import get_peft_model

    model = mg.load_reference_model(base_dir)
    pm = get_peft_model(model, make_lora_config(ADAPTERS[adapter]))
    pm.eval()
    layers = lora_layers(pm)
    check_lora_layers(layers, plan)
    params = lora_params(pm, tensors)
    values = init_lora(params, tensors, base, adapter, tdt, b_gain)
    return pm, layers, params, values


def effect(pm, layers, prompts, base_lp, plan, spec):
    """(per prompt max |step-0 logprob change| vs base, [(wrong scaling label, max change)])."""
    import torch

    inner = pm.get_base_model()
    lp = step0_logprobs(inner, prompts)
    vis = [float((a - b).abs().max()) for a, b in zip(lp, base_lp)]
    wrong = []
    for label, ov in wrong_scalings(spec, plan):
        with scalings_set(layers, ov):
            lw = step0_logprobs(inner, prompts)
        wrong.append((label, max(float((a - b).abs().max()) for a, b in zip(lw, lp))))
    again = step0_logprobs(inner, prompts)
    check(all(torch.equal(a, b) for a, b in zip(again, lp)), "scalings not restored")
    return vis, wrong


def build_one(args, base, adapter, prompts, probe, versions, staging):
    """Make one folder in `staging`; returns its README row. Raises on any failed check."""
    import safetensors.torch
    import torch
    from peft import PeftModel

    spec = ADAPTERS[adapter]
    name = folder_name(base, adapter)
    base_dir = os.path.join(args.golden, base)
    dname = base_dtype(base)
    tdt = getattr(torch, dname)
    with open(os.path.join(base_dir, "config.json")) as f:
        cfg = json.load(f)
    plan = lora_plan(cfg, spec)
    tensors = expected_tensors(plan, dname)

    # 1. the base alone, as make_goldens.py computes it
    bm = mg.load_reference_model(base_dir)
    base_cases, _ = mg.reference_cases(bm, prompts)
    base_lp = step0_logprobs(bm, prompts)
    with torch.no_grad():
        base_probe = bm(input_ids=probe, use_cache=False).logits
    inv = bm.model.rotary_emb.inv_freq.detach().double().tolist()
    del bm
    gpath = os.path.join(base_dir, "golden.json")
    if os.path.exists(gpath):
        with open(gpath) as f:
            g = json.load(f)
        same_tok = all(c["greedy"] == b["greedy"] for c, b in zip(g["cases"], base_cases))
        lp_d = max(max_abs_diff(c["first_logprobs"], b["first_logprobs"]) for c, b in zip(g["cases"], base_cases))
        print("  base %s vs its golden.json (made with transformers %s): greedy %s, max first-logprob diff %.3g"
              % (base, g.get("transformers_version"), "identical" if same_tok else "DIFFERENT", lp_d))
        if g.get("rope_inv_freq") != inv:
            print("  WARNING: rope_inv_freq differs from the base golden.json's")

    # 2-3. adapter in memory
    pm, layers, params, values = adapted(base_dir, base, adapter, plan, tensors, tdt, args.b_gain)
    print("  LoRA layers: %d, r/alpha/scaling as planned: %s"
          % (len(layers), sorted({(e["name"], e["r"], e["alpha"], round(e["scaling"], 6)) for e in plan})))
    inner = pm.get_base_model()
    with torch.no_grad():
        mem_probe = inner(input_ids=probe, use_cache=False).logits
        try:
            wrap_probe = pm(input_ids=probe, use_cache=False).logits
        except Exception as e:  # the reference uses the injected model; the wrapper is only cross-checked
            print("  WARNING: PeftModel.forward failed (%s: %s); reference uses get_base_model()" % (type(e).__name__, e))
            wrap_probe = None
    if wrap_probe is not None:
        check(torch.equal(mem_probe, wrap_probe), "PeftModel.forward and get_base_model() differ")
    mem_cases, _ = mg.reference_cases(inner, prompts)

    # 4. visible effect; wrong scalings visible too
    vis, wrong = effect(pm, layers, prompts, base_lp, plan, spec)
    first_diff = first_diff_steps(mem_cases, base_cases)
    print("  adapter effect: per-prompt max |step-0 logprob change| %s" % ["%.3g" % x for x in vis])
    print("  first step whose greedy token differs from the base's: %s" % first_diff)
    for lab, d in wrong:
        print("  wrong scaling %-55s max step-0 logprob change %.3g" % (lab, d))
    ratio = rms_ratio(mem_probe, base_probe)
    print("  adapter's logit change / base logits (RMS over a 40-token prompt): %.3g" % ratio)
    if ratio > SWAMP_WARN:
        print("  WARNING: the adapter swamps the base: logit change > %g x the base logits (lower --b-gain)" % SWAMP_WARN)
    check(min(vis) >= VISIBLE_MIN, "adapter barely changes prompt %d's outputs (%.3g < %g): raise --b-gain"
          % (vis.index(min(vis)), min(vis), VISIBLE_MIN))
    for lab, d in wrong:
        check(d >= VISIBLE_MIN, "a wrong scaling (%s) changes the outputs by only %.3g < %g" % (lab, d, VISIBLE_MIN))

    # 5. save (LoRA weights cast to the folder's dtype), keep the two adapter files
    folder = os.path.join(staging, name)
    os.makedirs(folder)
    with tempfile.TemporaryDirectory() as td:
        with torch.no_grad():
            for k, p in params.items():
                p.data = p.data.to(tdt)
        try:
            kw = {"safe_serialization": True}
            if "save_embedding_layers" in inspect.signature(pm.save_pretrained).parameters:
                kw["save_embedding_layers"] = False
            pm.save_pretrained(td, **kw)
        finally:
            with torch.no_grad():
                for k, p in params.items():
                    p.data = p.data.to(torch.float32)
        for k, p in params.items():
            check(torch.equal(p.detach(), values[k]), k, "changed by the dtype round trip")
        written = sorted(os.listdir(td))
        for fn in ADAPTER_FILES:
            check(fn in written, "save_pretrained wrote no", fn, "(wrote %s)" % written)
        extra = [fn for fn in written if fn not in ADAPTER_FILES]
        if extra:
            print("  save_pretrained also wrote %s (not kept)" % extra)
        with open(os.path.join(td, "adapter_config.json")) as f:
            acfg = json.load(f)
        shutil.copyfile(os.path.join(td, "adapter_model.safetensors"), os.path.join(folder, "adapter_model.safetensors"))
    acfg = normalize_adapter_config(acfg, base_ref(base_dir))
    probs = check_adapter_config(acfg, spec)
    check(not probs, "adapter_config.json:", "; ".join(probs))
    with open(os.path.join(folder, "adapter_config.json"), "w") as f:
        f.write(adapter_config_text(acfg))

    # the stored tensors: names, shapes, dtype, values
    st = os.path.join(folder, "adapter_model.safetensors")
    hdr = mg.read_safetensors_header(st)
    check(set(hdr) == set(tensors), "stored tensors differ from the plan: missing %s, extra %s"
          % (sorted(set(tensors) - set(hdr))[:4], sorted(set(hdr) - set(tensors))[:4]))
    for k, (sd, shape, _, _) in tensors.items():
        check(hdr[k]["dtype"] == sd and hdr[k]["shape"] == shape, k, "stored as", hdr[k]["dtype"], hdr[k]["shape"],
              "want", sd, shape)
    loaded = safetensors.torch.load_file(st)
    for k, v in values.items():
        check(loaded[k].dtype == tdt and torch.equal(loaded[k].to(torch.float32), v), k, "stored values differ")
    del loaded

    # 6. load back from disk; the reference comes from this model
    pm2 = PeftModel.from_pretrained(mg.load_reference_model(base_dir), folder)
    pm2.eval()
    layers2 = lora_layers(pm2)
    check_lora_layers(layers2, plan)
    params2 = lora_params(pm2, tensors)
    for k, v in values.items():
        p = params2[k]
        check(p.dtype == torch.float32, k, "reloaded as", p.dtype, "(reference must be float32 compute)")
        check(torch.equal(p.detach(), v), k, "reloaded values differ")
    inner2 = pm2.get_base_model()
    with torch.no_grad():
        disk_probe = inner2(input_ids=probe, use_cache=False).logits
    dmax = float((disk_probe - mem_probe).abs().max())
    check(dmax <= RELOAD_TOL, "reloaded logits differ from in-memory by %.3g" % dmax)
    cases, all_margins = mg.reference_cases(inner2, prompts)
    exact = cases == mem_cases
    for c, m in zip(cases, mem_cases):
        check(c["greedy"] == m["greedy"], "reloaded greedy differs from in-memory")
        check(max_abs_diff(c["first_logprobs"], m["first_logprobs"]) <= 1e-5, "reloaded logprobs differ")
    print("  reloaded from disk: probe logits %s, cases %s"
          % ("identical" if dmax == 0 else "max diff %.3g" % dmax, "identical" if exact else "within 1e-5"))

    head = golden_head(base, adapter, dname, versions, inv)
    mg.dump_golden(os.path.join(folder, "golden.json"), head, cases)

    files = sorted(os.listdir(folder))
    check(files == FOLDER_FILES, "folder holds", files)
    for fn in files:
        sz = os.path.getsize(os.path.join(folder, fn))
        check(sz < mg.MAX_FILE_BYTES, fn, "too large", sz)

    mn, md, ns, nt = margin_stats(all_margins)
    size = os.path.getsize(st)
    print("  stored tensors:")
    for k in sorted(hdr):
        print("    %-62s %-5s %s" % (k, hdr[k]["dtype"], hdr[k]["shape"]))
    print("  adapter_config.json:", json.dumps({k: acfg[k] for k in sorted(acfg) if acfg[k] not in (None, [], {})}))
    print("%-22s adapter=%6d B  margins: min=%.4g median=%.4g <0.1: %d/%d  %s"
          % (name, size, mn, md, ns, nt, mg.greedy_diversity(cases)), flush=True)
    return dict(folder=name, base=base, dtype=dname, ntensors=len(tensors), bytes=size,
                margins=(mn, md, ns, nt), first_diff=first_diff, visible_min=min(vis),
                wrong_min=min(d for _, d in wrong), ratio=ratio)


def scan(args, prompts):
    import torch

    probe = torch.tensor([prompts[3] + prompts[2]], dtype=torch.long)
    for base, adapter in pairs(args.only):
        spec = ADAPTERS[adapter]
        base_dir = os.path.join(args.golden, base)
        dname = base_dtype(base)
        with open(os.path.join(base_dir, "config.json")) as f:
            cfg = json.load(f)
        plan = lora_plan(cfg, spec)
        tensors = expected_tensors(plan, dname)
        bm = mg.load_reference_model(base_dir)
        base_cases, _ = mg.reference_cases(bm, prompts)
        base_lp = step0_logprobs(bm, prompts)
        with torch.no_grad():
            base_probe = bm(input_ids=probe, use_cache=False).logits
        del bm
        pm, layers, params, _ = adapted(base_dir, base, adapter, plan, tensors, getattr(torch, dname), SCAN_GAINS[0])
        for gain in SCAN_GAINS:
            init_lora(params, tensors, base, adapter, getattr(torch, dname), gain)
            inner = pm.get_base_model()
            cases, ms = mg.reference_cases(inner, prompts)
            vis, wrong = effect(pm, layers, prompts, base_lp, plan, spec)
            with torch.no_grad():
                ratio = rms_ratio(inner(input_ids=probe, use_cache=False).logits, base_probe)
            mn, md, ns, nt = margin_stats(ms)
            print("scan %-17s b_gain=%-4g rms ratio=%.3g margins min=%.3g median=%.3g <0.1: %2d/%d  step-0 change "
                  "min=%.3g wrong-scaling min=%.3g  first diff=%s  %s"
                  % (folder_name(base, adapter), gain, ratio, mn, md, ns, nt, min(vis), min(d for _, d in wrong),
                     first_diff_steps(cases, base_cases), mg.greedy_diversity(cases)), flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--golden", default="tests/golden", help="folder holding the base model folders (default tests/golden)")
    ap.add_argument("--out", default="tests/golden/lora", help="output folder (default tests/golden/lora)")
    ap.add_argument("--only", default="", help="comma-separated bases, adapters or folder names (default: all); "
                    "README.md is then left alone")
    ap.add_argument("--b-gain", type=float, default=B_GAIN, help="lora_B gain (default %g)" % B_GAIN)
    ap.add_argument("--scan", action="store_true", help="only print statistics for lora_B gains %s; nothing saved"
                    % (SCAN_GAINS,))
    ap.add_argument("--check-only", action="store_true", help="run the parts that need no torch; nothing written")
    ap.add_argument("--print-readme", action="store_true", help="with --check-only: print the README as rendered "
                    "with placeholder values")
    args = ap.parse_args()

    for a in args.only.split(","):
        check(not a or a in BASES or a in ADAPTERS or a in [folder_name(*p) for p in pairs()],
              "--only: unknown %r" % a)
    todo = pairs(args.only)
    check(todo, "--only selects nothing")

    if args.check_only:
        check_only(args)
        return

    # no hub look-ups: everything is local (set before transformers/peft import huggingface_hub)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    versions = versions_now()
    print("peft %(peft)s transformers %(transformers)s torch %(torch)s safetensors %(safetensors)s python %(python)s"
          % versions, flush=True)
    torch.set_num_threads(1)
    try:
        torch.use_deterministic_algorithms(True, warn_only=True)
    except Exception as e:  # pragma: no cover
        print("note: use_deterministic_algorithms failed:", e)

    prompts = mg.make_prompts()
    if args.scan:
        scan(args, prompts)
        return

    probe = torch.tensor([prompts[3] + prompts[2]], dtype=torch.long)  # as make_goldens.py's
    os.makedirs(args.out, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".staging-", dir=args.out)
    rows, failures, summary = [], [], []
    try:
        for base, adapter in todo:
            name = folder_name(base, adapter)
            print("\n==================== %s ====================" % name, flush=True)
            try:
                row = build_one(args, base, adapter, prompts, probe, versions, staging)
            except Exception:
                traceback.print_exc()
                failures.append(name)
                sys.stdout.flush()
                continue
            final = os.path.join(args.out, name)
            if os.path.isdir(final):
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            rows.append(row)
            mn, md, ns, nt = row["margins"]
            summary.append("%-22s margins min=%.4g median=%.4g <0.1: %d/%d  step-0 change min=%.3g  "
                           "wrong-scaling min=%.3g" % (name, mn, md, ns, nt, row["visible_min"], row["wrong_min"]))
    finally:
        shutil.rmtree(staging, ignore_errors=True)

    print("\n==================== summary ====================")
    print("peft %(peft)s transformers %(transformers)s torch %(torch)s" % versions)
    for line in summary:
        print(line)
    if failures:
        print("FAILED:", failures, "(their old folders, if any, are unchanged; README.md not rewritten)")
        sys.exit(1)
    if todo == pairs():
        with open(os.path.join(args.out, "README.md"), "w") as f:
            f.write(render_readme({"versions": versions, "b_gain": args.b_gain, "rows": rows}))
        print("wrote", os.path.join(args.out, "README.md"))
    else:
        print("--only: README.md left alone")
    print("OK")


if __name__ == "__main__":
    try:
        main()
    except CheckError as e:
        print("FAILED:", e, file=sys.stderr)
        sys.exit(1)
