#!/usr/bin/env python3
"""A cross-check that needs no torch: a pure-Python (float64) forward pass of gpt-oss (GptOssForCausalLM)
as transformers computes it, written from reading modeling_gpt_oss.py, modeling_rope_utils.py
(_compute_yarn_parameters) and integrations/mxfp4.py (convert_moe_packed_tensors), not copied:

- attention with q/k/v/o biases, GQA, rotate-half RoPE with YaRN inverse frequencies and cos/sin times the
  attention factor, a learned per-head sink logit in every softmax (its probability dropped), and
  sliding_attention layers (layer_types) that see the last sliding_window positions;
- the router: logits = x W^T + b, top k of the logits, softmax of those k;
- the experts: gate_up = x W_gu + b_gu with gate = [..., ::2] and up = [..., 1::2], gate clamped above at
  limit, up clamped to [-limit, limit], (up + 1) * gate * sigmoid(1.702 gate), then down + b_d, weighted;
- expert weights stored as published, MXFP4: *_blocks u8 [E, rows, K/32, 16] (low nibble = the even
  element) and *_scales u8 [E, rows, K/32] (2^(s - 127)); with --dequant instead the unquantized
  transformers layout gate_up_proj [E, D, 2I] / down_proj [E, I, D] (x @ W), no quantization_config; with
--t5 the config in transformers 5's spelling (rope_parameters, default layer_types and truncate).

It writes config.json, model.safetensors (non-expert weights f32) and ref_<len>.json (every position's
log-probabilities for prompts of 10 and 25 tokens; the sliding window is 6). Compare with
tools/ref_dense_families_cmp.py (its last argument forces chunked prefill):

    python3 tools/ref_gptoss.py /tmp/ref/gptoss [--dequant] [--t5]
    python3 tools/ref_dense_families_cmp.py gptoss /tmp/ref/gptoss cpu float32 [max-num-batched-tokens]
"""
import json, math, os, random, sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from ref_common import save_st, f32, rows, mm, rmsnorm  # noqa: E402

FP4 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]


def dequant(blocks, scales, rows, K):
    """One expert's MXFP4 rows -> [rows][K] floats: element 2j of a block is the low nibble of byte j."""
    nb = K // 32
    out = []
    for r in range(rows):
        row = []
        for b in range(nb):
            sc = 2.0 ** (scales[r * nb + b] - 127)
            for byte in blocks[(r * nb + b) * 16:(r * nb + b + 1) * 16]:
                row += [FP4[byte & 15] * sc, FP4[byte >> 4] * sc]
        out.append(row)
    return out


class GptOss:
    def __init__(s, cfg, seed):
        s.c, s.t = cfg, {}
        rnd = random.Random(seed)
        D, V, E, I = cfg["hidden_size"], cfg["vocab_size"], cfg["num_local_experts"], cfg["intermediate_size"]
        H, KV, hd = cfg["num_attention_heads"], cfg["num_key_value_heads"], cfg["head_dim"]

        def mat(name, r, c, g=1.0):
            s.t[name] = ("F32", [r, c], [f32(rnd.gauss(0, 1) / math.sqrt(c) * g) for _ in range(r * c)])

        def vec(name, shape, mean, sd):
            n = math.prod(shape)
            s.t[name] = ("F32", shape, [f32(mean + sd * rnd.gauss(0, 1)) for _ in range(n)])

        def mxfp4(name, rows, K):
            nb = E * rows * (K // 32)
            s.t[name + "_blocks"] = ("U8", [E, rows, K // 32, 16], [rnd.randrange(256) for _ in range(nb * 16)])
            s.t[name + "_scales"] = ("U8", [E, rows, K // 32], [rnd.choice((123, 124, 125)) for _ in range(nb)])

        s.t["model.embed_tokens.weight"] = ("F32", [V, D], [f32(rnd.gauss(0, 1)) for _ in range(V * D)])
        for l in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d." % l
            vec(p + "input_layernorm.weight", [D], 1.0, 0.3)
            vec(p + "post_attention_layernorm.weight", [D], 1.0, 0.3)
            for n, r, c, g in (("q", H * hd, D, 1.0), ("k", KV * hd, D, 1.0), ("v", KV * hd, D, 1.0),
                               ("o", D, H * hd, 3.0)):
                mat(p + "self_attn.%s_proj.weight" % n, r, c, g)
                vec(p + "self_attn.%s_proj.bias" % n, [r], 0.0, 0.2)
            vec(p + "self_attn.sinks", [H], 0.0, 1.5)
            mat(p + "mlp.router.weight", E, D, 4.0)  # a wide spread of logits: no near-ties in the top k
            vec(p + "mlp.router.bias", [E], 0.0, 1.0)
            mxfp4(p + "mlp.experts.gate_up_proj", 2 * I, D)
            vec(p + "mlp.experts.gate_up_proj_bias", [E, 2 * I], 0.0, 0.5)
            mxfp4(p + "mlp.experts.down_proj", D, I)
            vec(p + "mlp.experts.down_proj_bias", [E, D], 0.0, 0.2)
        vec("model.norm.weight", [D], 0.0, 1.0)
        s.t["lm_head.weight"] = ("F32", [V, D], [f32(rnd.gauss(0, 1)) for _ in range(V * D)])
        s.experts = {}
        for l in range(cfg["num_hidden_layers"]):
            p = "model.layers.%d.mlp.experts." % l
            for nm, rows, K in (("gate_up_proj", 2 * I, D), ("down_proj", D, I)):
                bl, sc = s.t[p + nm + "_blocks"][2], s.t[p + nm + "_scales"][2]
                per = rows * (K // 32)
                s.experts[p + nm] = [dequant(bl[e * per * 16:(e + 1) * per * 16], sc[e * per:(e + 1) * per], rows, K)
                                     for e in range(E)]

    def W(s, n):
        return rows(*s.t[n][1:])

    def mm(s, x, w, b=None):
        return mm(x, w, b)

    def norm(s, x, w):
        return rmsnorm(x, w, s.c["rms_norm_eps"])

    def yarn(s):
        """inv_freq and the attention factor of rope_scaling {"rope_type": "yarn"}."""
        c = s.c
        rs = c.get("rope_parameters") or c["rope_scaling"]
        dim, base, factor = c["head_dim"], rs.get("rope_theta", c.get("rope_theta")), rs["factor"]
        orig = rs.get("original_max_position_embeddings", c["max_position_embeddings"])
        att = 0.1 * math.log(factor) + 1.0 if factor > 1 else 1.0

        def corr(rot):
            return dim * math.log(orig / (rot * 2 * math.pi)) / (2 * math.log(base))

        lo, hi = corr(rs.get("beta_fast", 32)), corr(rs.get("beta_slow", 1))
        if rs.get("truncate", True):
            lo, hi = math.floor(lo), math.ceil(hi)
        lo, hi = max(lo, 0), min(hi, dim - 1)
        if lo == hi:
            hi += 0.001
        inv = []
        for i in range(dim // 2):
            pf = base ** (2 * i / dim)
            extra = 1 - min(max((i - lo) / (hi - lo), 0.0), 1.0)
            inv.append(1 / (factor * pf) * (1 - extra) + 1 / pf * extra)
        return inv, att

    def rope(s, v, pos):
        inv, att = s.yarn()
        h = len(v) // 2
        out = list(v)
        for i in range(h):
            cs, sn = math.cos(pos * inv[i]) * att, math.sin(pos * inv[i]) * att
            out[i] = v[i] * cs - v[i + h] * sn
            out[i + h] = v[i + h] * cs + v[i] * sn
        return out

    def attention(s, h, l):
        c, p = s.c, "model.layers.%d.self_attn." % l
        H, KV, hd, T = c["num_attention_heads"], c["num_key_value_heads"], c["head_dim"], len(h)
        proj = {n: [s.mm(r, s.W(p + n + "_proj.weight"), s.W(p + n + "_proj.bias")) for r in h] for n in "qkv"}

        def heads(rows, n):
            return [[r[j * hd:(j + 1) * hd] for j in range(n)] for r in rows]

        q, k, v = heads(proj["q"], H), heads(proj["k"], KV), heads(proj["v"], KV)
        q = [[s.rope(hh, t) for hh in q[t]] for t in range(T)]
        k = [[s.rope(hh, t) for hh in k[t]] for t in range(T)]
        types = c.get("layer_types") or ["sliding_attention" if i % 2 == 0 else "full_attention"
                                         for i in range(c["num_hidden_layers"])]  # GptOssConfig's default
        win = c["sliding_window"] if types[l] == "sliding_attention" else None
        sinks = s.W(p + "sinks")
        att = []
        for t in range(T):
            row = []
            for hh in range(H):
                g = hh // (H // KV)
                js = [j for j in range(t + 1) if win is None or j > t - win]
                sc = [sum(a * b for a, b in zip(q[t][hh], k[j][g])) / math.sqrt(hd) for j in js]
                mx = max(sc + [sinks[hh]])
                e = [math.exp(z - mx) for z in sc]
                z = sum(e) + math.exp(sinks[hh] - mx)
                row += [sum(e[i] / z * v[js[i]][g][d] for i in range(len(js))) for d in range(hd)]
            att.append(row)
        return [s.mm(r, s.W(p + "o_proj.weight"), s.W(p + "o_proj.bias")) for r in att]

    def moe(s, x, l):
        c, p = s.c, "model.layers.%d.mlp." % l
        lg = s.mm(x, s.W(p + "router.weight"), s.W(p + "router.bias"))
        k, lim = c["num_experts_per_tok"], c.get("swiglu_limit", 7.0)
        top = sorted(range(len(lg)), key=lambda i: (-lg[i], i))[:k]
        mx = max(lg[i] for i in top)
        e = [math.exp(lg[i] - mx) for i in top]
        w = [v / sum(e) for v in e]
        out = [0.0] * len(x)
        for ex, wt in zip(top, w):
            gu = s.mm(x, s.experts[p + "experts.gate_up_proj"][ex], s.W(p + "experts.gate_up_proj_bias")[ex])
            gate = [min(g, lim) for g in gu[0::2]]
            up = [min(max(u, -lim), lim) for u in gu[1::2]]
            act = [(u + 1) * g / (1 + math.exp(-1.702 * g)) for g, u in zip(gate, up)]
            y = s.mm(act, s.experts[p + "experts.down_proj"][ex], s.W(p + "experts.down_proj_bias")[ex])
            out = [a + wt * b for a, b in zip(out, y)]
        return out

    def forward(s, ids):
        c = s.c
        x = [list(s.W("model.embed_tokens.weight")[i]) for i in ids]
        for l in range(c["num_hidden_layers"]):
            p = "model.layers.%d." % l
            o = s.attention([s.norm(r, s.W(p + "input_layernorm.weight")) for r in x], l)
            x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, o)]
            d = [s.moe(s.norm(r, s.W(p + "post_attention_layernorm.weight")), l) for r in x]
            x = [[a + b for a, b in zip(r, rr)] for r, rr in zip(x, d)]
        out = []
        for r in [s.norm(r, s.W("model.norm.weight")) for r in x]:
            lg = s.mm(r, s.W("lm_head.weight"))
            mx = max(lg)
            lse = mx + math.log(sum(math.exp(z - mx) for z in lg))
            out.append([z - lse for z in lg])
        return out


def transformers5(c):
    """transformers 5's spelling: rope_parameters (with rope_theta, truncate left to its default true),
    no layer_types (GptOssConfig's alternation), no experts_per_token."""
    rp = dict(c.pop("rope_scaling"), rope_theta=c.pop("rope_theta"))
    del rp["truncate"]
    c["rope_parameters"] = rp
    del c["layer_types"], c["experts_per_token"]


def unquantize(m):
    """transformers' dequantized layout: gate_up_proj [E, D, 2I] and down_proj [E, I, D] (x @ W), f32."""
    for name in list(m.experts):
        ws = m.experts[name]
        del m.t[name + "_blocks"], m.t[name + "_scales"]
        rows, K = len(ws[0]), len(ws[0][0])
        m.t[name] = ("F32", [len(ws), K, rows], [f32(w[r][kk]) for w in ws for kk in range(K) for r in range(rows)])
    del m.c["quantization_config"]


cfg = {"architectures": ["GptOssForCausalLM"], "model_type": "gpt_oss", "vocab_size": 40, "hidden_size": 64,
       "intermediate_size": 32, "num_hidden_layers": 3, "num_attention_heads": 4, "num_key_value_heads": 2,
       "head_dim": 16, "num_local_experts": 4, "num_experts_per_tok": 2, "experts_per_token": 2,
       "rms_norm_eps": 1e-5, "max_position_embeddings": 512, "sliding_window": 6,
       "layer_types": ["sliding_attention", "full_attention", "sliding_attention"], "attention_bias": True,
       "rope_theta": 10000.0, "swiglu_limit": 7.0, "hidden_act": "silu", "tie_word_embeddings": False,
       "rope_scaling": {"rope_type": "yarn", "factor": 8.0, "beta_fast": 32.0, "beta_slow": 1.0,
                        "original_max_position_embeddings": 64, "truncate": False},
       "quantization_config": {"quant_method": "mxfp4", "modules_to_not_convert": [
           "model.layers.*.self_attn", "model.layers.*.mlp.router", "model.embed_tokens", "lm_head"]},
       "bos_token_id": 1, "eos_token_id": 2, "torch_dtype": "float32"}

if __name__ == "__main__":
    out = sys.argv[1]
    c = json.loads(json.dumps(cfg))
    if "--t5" in sys.argv:
        transformers5(c)
    m = GptOss(c, 4321)
    os.makedirs(out, exist_ok=True)
    refs = {}
    for plen in (10, 25):
        rr = random.Random(plen)
        ids = [rr.randrange(3, 40) for _ in range(plen)]
        refs[plen] = {"ids": ids, "lp": m.forward(ids)}
    if "--dequant" in sys.argv:
        unquantize(m)
    json.dump(m.c, open(out + "/config.json", "w"))
    save_st(out + "/model.safetensors", m.t)
    for plen, r in refs.items():
        json.dump(r, open(out + "/ref_%d.json" % plen, "w"))
    print("ok gptoss", out)
